//! Full-text search: a tantivy index of every visible message, a derived store the
//! archive can always rebuild.
//!
//! - [`SearchIndex`] (index.rs) owns the index directory: it is opened, or started
//!   over with a log line when it is missing, damaged, or from another schema version
//!   (older or newer); the writer is taken per batch and released when idle, the
//!   reader opened on the first query.
//! - build.rs turns archived conversations into documents (one per visible message,
//!   every branch) and keeps the index current: [`SearchIndex::update`] re-indexes
//!   conversations by id in one commit, [`SearchIndex::rebuild`] indexes the whole
//!   archive, and [`SearchIndex::catch_up`] follows a [`ChangeFeed`] from the
//!   high-water mark kept in the index's own commit payload, so a crash between an
//!   archive write and the index commit re-indexes, never skips.
//! - worker.rs runs that catching up on a thread of its own, off the write path;
//!   [`LiveIndex`] (live.rs) is the daemon's index: that thread woken by the change
//!   feed, queries that wait briefly for it, a reader dropped when idle.
//! - query.rs reads the query syntax and filters; exec.rs ranks (BM25, title matches
//!   boosted, adjacent words boosted), groups one hit per conversation and cuts
//!   snippets; tokenize.rs is the text analysis both sides share.

mod build;
mod exec;
mod index;
mod live;
pub mod query;
pub mod schema;
pub mod tokenize;
mod worker;

pub use build::{BuildReport, ChangeFeed, NoFeed, Progress, Stage, UpdateReport};
pub use exec::{Hit, SearchRequest};
pub use index::{IndexOptions, IndexStats, Opened, SearchIndex};
pub use live::{IndexStatus, LiveIndex, pending};
pub use query::{Filters, Query, QueryError, Role};
pub use worker::Indexer;

use crate::archive::ArchiveError;
use std::path::{Path, PathBuf};

/// Where the index of the data dir `data_dir` lives: `<data dir>/index/`.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

/// Errors from the search index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query or a filter is unusable (a usage error).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Another process is writing the index.
    #[error(
        "the search index at {0} is being updated by another convos process; try again when \
         it is done"
    )]
    Busy(PathBuf),
    /// The index failed.
    #[error("search index at {dir}: {detail}")]
    Index {
        /// The index directory.
        dir: PathBuf,
        /// What tantivy said.
        detail: String,
    },
    /// The index's files are damaged in a way only a query revealed.
    #[error("the search index at {dir} is damaged ({detail}); rebuild it with `convos reindex`")]
    Damaged {
        /// The index directory.
        dir: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading the archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Stopped on request before finishing; what was committed stays.
    #[error("indexing stopped before it finished")]
    Cancelled,
}

impl SearchError {
    /// Whether the user asked for something unusable (exit code 2), rather than the
    /// index failing (exit code 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, SearchError::Query(_))
    }
}
