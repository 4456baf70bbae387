//! The daemon's index: one [`SearchIndex`] shared by the indexer thread (which
//! follows the archive's change feed) and the queries that arrive on the control
//! socket. The reader is opened by the first query and dropped again after a while
//! without one; the writer is held only while the indexer works.

use super::SearchError;
use super::build::ChangeFeed;
use super::index::{IndexOptions, IndexStats, SearchIndex};
use super::worker::Indexer;
use crate::archive::Archive;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A search index kept current by a thread of its own, for a long-lived process.
pub struct LiveIndex {
    index: Arc<SearchIndex>,
    indexer: Indexer,
    archive: Archive,
    last_query: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex")
            .field("dir", &self.index.dir())
            .finish()
    }
}

/// What `convos status` shows of the index.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexStatus {
    /// Figures of the last commit; `None` when the index cannot be read.
    pub stats: Option<IndexStats>,
    /// The archive's newest change-feed sequence number.
    pub feed: u64,
    /// Conversations changed in the archive since the index's mark (not yet indexed);
    /// `None` when the index has no mark (it needs a full build).
    #[serde(default)]
    pub pending: Option<u64>,
    /// Whether indexing is running or pending.
    pub busy: bool,
    /// The last indexing error, if the last round failed.
    pub last_error: Option<String>,
}

impl LiveIndex {
    /// Opens (or starts over) the index in `dir` and starts its indexer, which
    /// catches up with the archive right away and then whenever [`Self::poke`]d.
    pub fn start(dir: &Path, archive: Archive) -> Result<LiveIndex, SearchError> {
        let index = Arc::new(SearchIndex::open(dir, IndexOptions::default())?);
        // The check at open left a reader; queries open their own when they come.
        index.release_reader();
        let feed: Arc<dyn ChangeFeed + Send + Sync> = Arc::new(archive.clone());
        let indexer = Indexer::start(index.clone(), archive.clone(), feed).map_err(|source| {
            SearchError::Io {
                what: "cannot start the search indexer for",
                path: dir.to_path_buf(),
                source,
            }
        })?;
        Ok(LiveIndex {
            index,
            indexer,
            archive,
            last_query: Mutex::new(None),
        })
    }

    /// The index.
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Says the archive changed.
    pub fn poke(&self) {
        self.indexer.poke();
    }

    /// Gets ready for a query: when the index is behind the archive's change feed, waits
    /// up to `wait` for the indexer to catch up. Returns how many conversations it is
    /// still behind by (0 when current), or `None` while its first build runs.
    pub fn prepare_query(&self, wait: Duration) -> Result<Option<u64>, SearchError> {
        *self
            .last_query
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        if self.behind()? != Some(0) {
            self.indexer.poke();
            self.indexer.wait_idle(wait);
            return self.behind();
        }
        Ok(Some(0))
    }

    /// Conversations changed since the index's mark; `None` when it has none (it needs
    /// a full build).
    pub fn behind(&self) -> Result<Option<u64>, SearchError> {
        self.index
            .mark()?
            .map(|m| pending(&self.archive, m))
            .transpose()
    }

    /// Drops the reader when no query came for `idle` (it maps the index's files).
    pub fn release_if_idle(&self, idle: Duration) {
        let last = *self
            .last_query
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= idle) && self.index.holds_reader() {
            self.index.release_reader();
            tracing::debug!(
                "search index reader released after {} s idle",
                idle.as_secs()
            );
        }
    }

    /// The index's state for `convos status`.
    pub fn status(&self) -> IndexStatus {
        let stats = self.index.stats().ok();
        let mark = stats.as_ref().and_then(|s| s.mark);
        IndexStatus {
            pending: mark.and_then(|m| pending(&self.archive, m).ok()),
            stats,
            feed: self.archive.last_change_seq().unwrap_or(0),
            busy: self.indexer.is_busy(),
            last_error: self.indexer.last_error(),
        }
    }

    /// Stops the indexer at its next safe point and waits for it.
    pub fn stop(&self) {
        self.indexer.stop();
        self.index.release_writer();
    }
}

/// Conversations the archive's change feed lists after `mark` (sequence numbers are
/// not dense: sled hands them out in blocks across restarts, so this counts entries).
pub fn pending(archive: &Archive, mark: u64) -> Result<u64, SearchError> {
    let mut n = 0;
    for entry in archive.changes_since(mark) {
        entry?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RawConversation;
    use crate::search::{Filters, Query, SearchRequest};

    fn put(archive: &Archive, id: &str, text: &str) {
        let conv = serde_json::json!({
            "id": id, "title": "T", "create_time": 1.7e9, "update_time": 1.7e9,
            "current_node": "m",
            "mapping": {
                "root": {"id": "root", "message": null, "parent": null, "children": ["m"]},
                "m": {"id": "m", "parent": "root", "children": [], "message": {
                    "id": "m", "author": {"role": "user"}, "create_time": 1.7e9,
                    "content": {"content_type": "text", "parts": [text]}}}
            }
        });
        let raw = RawConversation::from_bytes(serde_json::to_vec(&conv).expect("json"))
            .expect("conversation");
        archive.upsert(raw).expect("upsert");
    }

    #[test]
    fn queries_wait_for_the_indexer_and_an_idle_reader_is_dropped() {
        let archive = Archive::temporary().expect("archive");
        let dir = tempfile::tempdir().expect("tempdir");
        put(&archive, "a", "ocelot");
        let live = LiveIndex::start(&dir.path().join("index"), archive.clone()).expect("start");
        assert!(!live.index().holds_reader(), "no reader until a query");
        // Written after the start, never poked: the query itself waits for it.
        put(&archive, "b", "ocelot");
        assert_eq!(
            live.prepare_query(Duration::from_secs(30)).expect("ready"),
            Some(0)
        );
        let req = SearchRequest {
            query: Query::parse("ocelot").expect("query"),
            filters: Filters::default(),
            limit: 10,
        };
        assert_eq!(
            live.index().search(&archive, &req).expect("search").len(),
            2
        );
        assert!(live.index().holds_reader());
        assert!(
            !live.index().holds_writer(),
            "the writer is let go when idle"
        );
        live.release_if_idle(Duration::from_secs(600));
        assert!(live.index().holds_reader(), "a recent query keeps it");
        live.release_if_idle(Duration::ZERO);
        assert!(!live.index().holds_reader());
        let st = live.status();
        assert_eq!(st.pending, Some(0));
        assert_eq!(
            st.stats.and_then(|s| s.mark),
            Some(archive.last_change_seq().expect("seq"))
        );
        live.stop();
    }
}
