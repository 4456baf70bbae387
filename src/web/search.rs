//! What the search page asks of a full-text index. The daemon connects its index
//! (`search/`) through [`SearchProvider`]; without one, `/?q=` says search is not
//! available.

use std::ops::Range;

/// A search as the page's form sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words, as typed (the index's own syntax: phrases, `-excluded`, `prefix*`).
    pub text: String,
    /// Only conversations in this project.
    pub project: Option<String>,
    /// `Some(true)`: only archived conversations; `Some(false)`: none of them.
    pub archived: Option<bool>,
    /// `Some(true)`: only conversations deleted on chatgpt.com; `Some(false)`: none.
    pub deleted: Option<bool>,
    /// Hits to skip (paging).
    pub offset: usize,
    /// Hits wanted.
    pub limit: usize,
}

/// One conversation found (its best message).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchHit {
    /// Conversation id.
    pub conversation_id: String,
    /// Its title.
    pub title: Option<String>,
    /// Its update time (RFC 3339).
    pub update_time: Option<String>,
    /// The best-matching message: its node or message id, so the page opens the
    /// branch holding it.
    pub message_id: Option<String>,
    /// That message's role.
    pub role: Option<String>,
    /// Text around the match.
    pub snippet: String,
    /// Byte ranges of `snippet` to highlight (ranges off char boundaries are ignored).
    pub highlights: Vec<Range<usize>>,
    /// Rank score (higher is better).
    pub score: f32,
}

/// A page of hits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResults {
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
    /// How many conversations match in all, when the index knows.
    pub total: Option<usize>,
}

/// Why a search gave no results.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SearchError {
    /// The query cannot be run (unbalanced quotes, only stop words…): said to the user.
    #[error("{0}")]
    BadQuery(String),
    /// The index cannot answer now (being rebuilt, damaged…).
    #[error("{0}")]
    Unavailable(String),
}

/// A full-text index the viewer can query. Called off the async threads.
pub trait SearchProvider: Send + Sync {
    /// Runs one search.
    fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError>;
}

impl<F> SearchProvider for F
where
    F: Fn(&SearchQuery) -> Result<SearchResults, SearchError> + Send + Sync,
{
    fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        self(query)
    }
}
