//! The [`SearchProvider`] the daemon connects: its full-text index ([`LiveIndex`]),
//! the same one `convos search` asks inside the daemon.

use super::search::{SearchError, SearchHit, SearchProvider, SearchQuery, SearchResults};
use crate::archive::Archive;
use crate::search::{self, Filters, LiveIndex, Query, SearchRequest};
use std::sync::Arc;
use std::time::Duration;

/// How long a search waits for the indexer to take in recent writes (as `convos
/// search` does in the daemon).
const WAIT: Duration = Duration::from_secs(5);
/// The most hits the index returns for one search.
const MOST: usize = 10_000;

/// Searches the daemon's index.
#[derive(Clone)]
pub struct IndexSearch {
    live: Arc<LiveIndex>,
    archive: Archive,
}

impl std::fmt::Debug for IndexSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexSearch").finish_non_exhaustive()
    }
}

impl IndexSearch {
    /// A provider over `live`, reading titles and snippets from `archive`.
    pub fn new(live: Arc<LiveIndex>, archive: Archive) -> Self {
        Self { live, archive }
    }
}

impl SearchProvider for IndexSearch {
    fn search(&self, q: &SearchQuery) -> Result<SearchResults, SearchError> {
        let query = Query::parse(&q.text).map_err(|e| SearchError::BadQuery(e.to_string()))?;
        let filters = Filters {
            project: q.project.clone(),
            archived: q.archived,
            deleted: q.deleted,
            ..Filters::default()
        };
        // The index has no offset: ask for everything up to the end of the page.
        let want = q.offset.saturating_add(q.limit).min(MOST);
        let failed = |e: search::SearchError| {
            if e.is_usage() {
                SearchError::BadQuery(e.to_string())
            } else {
                SearchError::Unavailable(e.to_string())
            }
        };
        self.live.prepare_query(WAIT).map_err(failed)?;
        let req = SearchRequest {
            query,
            filters,
            limit: want,
        };
        let found = self
            .live
            .index()
            .search(&self.archive, &req)
            .map_err(failed)?;
        // Fewer than asked for: that is all of them.
        let total = (found.len() < want).then_some(found.len());
        let hits = found
            .into_iter()
            .skip(q.offset)
            .map(|h| SearchHit {
                conversation_id: h.id,
                title: h.title,
                update_time: h.update_time,
                message_id: h.node_id.or(h.message_id),
                role: h.role,
                snippet: h.snippet,
                highlights: h.highlights,
                score: h.score,
            })
            .collect();
        Ok(SearchResults { hits, total })
    }
}
