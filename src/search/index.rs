//! The index directory: opening (or starting over), the writer and the reader.
//!
//! The writer holds tantivy's directory lock, its worker threads and a memory arena,
//! so it is created for a batch and released ([`SearchIndex::release_writer`]) when
//! the work is done; the reader maps the segment files and is opened on the first
//! query. An idle daemon holds neither.

use super::SearchError;
use super::schema::{self, Fields, Payload, SCHEMA_VERSION};
use super::tokenize;
use crate::archive::private::create_private_dir;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use tantivy::directory::error::LockError;
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyError,
    indexer::IndexWriterOptions,
};

/// tantivy's minimum memory arena per indexing thread.
const MIN_THREAD_MEMORY: usize = 15_000_000;

/// How the index is written.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Indexing threads for batches of changed conversations.
    pub writer_threads: usize,
    /// Indexing threads for a full build.
    pub build_threads: usize,
    /// Memory arena per indexing thread, in bytes (tantivy's minimum is 15 MB); a
    /// thread writes a segment to disk when its arena fills.
    pub thread_memory: usize,
    /// Conversations per commit when catching up with the change feed.
    pub batch: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            writer_threads: 1,
            build_threads: cores.clamp(1, 2),
            thread_memory: 32_000_000,
            batch: 500,
        }
    }
}

/// How the index was found when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// An index of this schema: it is used as it is.
    Existing,
    /// There was none: a new empty one was created.
    Missing,
    /// Its files could not be read: it was started over.
    Damaged(String),
    /// It was written with an older schema: it was started over.
    Older(u32),
    /// It was written by a newer convos: it was started over.
    Newer {
        /// Its schema version.
        schema: u32,
        /// The convos version that wrote it.
        writer: String,
    },
}

/// Figures for `convos status`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexStats {
    /// Message documents.
    pub messages: u64,
    /// Segments.
    pub segments: usize,
    /// Bytes on disk.
    pub bytes: u64,
    /// The change-feed sequence number the index is complete up to; `None` until a
    /// full build finishes.
    pub mark: Option<u64>,
}

/// The search index in one directory.
pub struct SearchIndex {
    dir: PathBuf,
    index: RwLock<Index>,
    fields: Fields,
    opts: IndexOptions,
    opened: Opened,
    /// The writer and its thread count.
    writer: Mutex<Option<(IndexWriter, usize)>>,
    reader: Mutex<Option<IndexReader>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a usable value (an index handle); carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SearchIndex {
    /// Opens the index in `dir` (created 0700 if needed). An index that is missing,
    /// damaged, or of another schema version is started over, with a log line; the
    /// new one is empty and has no mark, so the next [`Self::catch_up`] builds it.
    /// An existing index is checked by opening its reader, which is kept for the first
    /// query (a process that searches once opens it once); a long-lived process that
    /// does not search right away drops it with [`Self::release_reader`].
    pub fn open(dir: &Path, opts: IndexOptions) -> Result<SearchIndex, SearchError> {
        create_private_dir(dir).map_err(|source| SearchError::Io {
            what: "cannot create the search index directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let (index, reader, opened) = match inspect(dir, &schema) {
            Ok((index, reader)) => (index, Some(reader), Opened::Existing),
            Err(opened) => {
                log_start_over(dir, &opened);
                wipe(dir)?;
                let index = Index::create_in_dir(dir, schema).map_err(|e| index_err(dir, e))?;
                (index, None, opened)
            }
        };
        register_tokenizers(&index);
        Ok(SearchIndex {
            dir: dir.to_path_buf(),
            index: RwLock::new(index),
            fields,
            opts,
            opened,
            writer: Mutex::new(None),
            reader: Mutex::new(reader),
        })
    }

    /// How the index was found when opened.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &IndexOptions {
        &self.opts
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }

    pub(crate) fn index(&self) -> Index {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The change-feed sequence number the index is complete up to, read from its last
    /// commit; `None` when it needs a full build.
    pub fn mark(&self) -> Result<Option<u64>, SearchError> {
        let metas = self
            .index()
            .load_metas()
            .map_err(|e| index_err(&self.dir, e))?;
        Ok(Payload::parse(metas.payload.as_deref()).and_then(|p| p.mark))
    }

    /// Drops everything and starts an empty index (for an index a query found
    /// damaged); the next [`Self::catch_up`] builds it.
    pub fn reset(&self) -> Result<(), SearchError> {
        let mut writer = lock(&self.writer);
        if let Some((w, _)) = writer.take() {
            drop(w);
        }
        lock(&self.reader).take();
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wipe(&self.dir)?;
        let (schema, _) = schema::build();
        let fresh = Index::create_in_dir(&self.dir, schema).map_err(|e| index_err(&self.dir, e))?;
        register_tokenizers(&fresh);
        *index = fresh;
        tracing::info!("search index at {} started over", self.dir.display());
        Ok(())
    }

    /// Runs `f` with the writer, creating it with `threads` indexing threads if needed.
    /// On error the uncommitted work is rolled back.
    pub(crate) fn with_writer<T>(
        &self,
        threads: usize,
        f: impl FnOnce(&mut IndexWriter) -> Result<T, SearchError>,
    ) -> Result<T, SearchError> {
        let mut guard = lock(&self.writer);
        if guard.as_ref().is_some_and(|(_, n)| *n != threads)
            && let Some((w, _)) = guard.take()
        {
            finish(&self.dir, w);
        }
        if guard.is_none() {
            let options = IndexWriterOptions::builder()
                .num_worker_threads(threads.max(1))
                .memory_budget_per_thread(self.opts.thread_memory.max(MIN_THREAD_MEMORY))
                .num_merge_threads(1)
                .build();
            let w = self
                .index()
                .writer_with_options(options)
                .map_err(|e| match e {
                    TantivyError::LockFailure(LockError::LockBusy, _) => {
                        SearchError::Busy(self.dir.clone())
                    }
                    e => index_err(&self.dir, e),
                })?;
            *guard = Some((w, threads));
        }
        let Some((w, _)) = guard.as_mut() else {
            return Err(index_err(&self.dir, "no writer"));
        };
        let result = f(w);
        if result.is_err()
            && let Err(e) = w.rollback()
        {
            tracing::warn!(
                "search index at {}: cannot roll back a failed batch: {e}",
                self.dir.display()
            );
            guard.take();
        }
        result
    }

    /// Commits the writer's work with the payload that records `mark`.
    pub(crate) fn commit(&self, w: &mut IndexWriter, mark: Option<u64>) -> Result<(), SearchError> {
        let mut prepared = w.prepare_commit().map_err(|e| index_err(&self.dir, e))?;
        prepared.set_payload(&Payload::current(mark).to_json());
        prepared.commit().map_err(|e| index_err(&self.dir, e))?;
        if let Some(r) = lock(&self.reader).as_ref()
            && let Err(e) = r.reload()
        {
            tracing::warn!("search index at {}: cannot reload: {e}", self.dir.display());
        }
        Ok(())
    }

    /// Releases the writer: its lock, threads and memory (after letting running
    /// merges finish). Call when a run of batches is done.
    pub fn release_writer(&self) {
        if let Some((w, _)) = lock(&self.writer).take() {
            finish(&self.dir, w);
        }
    }

    /// Releases the reader and its mapped files (the next query opens it again).
    pub fn release_reader(&self) {
        lock(&self.reader).take();
    }

    /// Whether a writer is held.
    pub fn holds_writer(&self) -> bool {
        lock(&self.writer).is_some()
    }

    /// Whether a reader is open.
    pub fn holds_reader(&self) -> bool {
        lock(&self.reader).is_some()
    }

    /// A searcher over the last commit, opening the reader if needed.
    pub(crate) fn searcher(&self) -> Result<Searcher, SearchError> {
        let mut guard = lock(&self.reader);
        if let Some(r) = guard.as_ref() {
            return Ok(r.searcher());
        }
        let reader: IndexReader = self
            .index()
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| index_err(&self.dir, e))?;
        let searcher = reader.searcher();
        *guard = Some(reader);
        Ok(searcher)
    }

    /// Figures for status output.
    pub fn stats(&self) -> Result<IndexStats, SearchError> {
        let metas = self
            .index()
            .load_metas()
            .map_err(|e| index_err(&self.dir, e))?;
        Ok(stats_of(&self.dir, &metas))
    }

    /// Figures of the index in `dir`, read without changing anything (for a status
    /// taken while another process may write it); `None` when there is no index yet.
    pub fn peek(dir: &Path) -> Result<Option<IndexStats>, SearchError> {
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let index = Index::open_in_dir(dir).map_err(|e| index_err(dir, e))?;
        let metas = index.load_metas().map_err(|e| index_err(dir, e))?;
        Ok(Some(stats_of(dir, &metas)))
    }
}

fn stats_of(dir: &Path, metas: &tantivy::IndexMeta) -> IndexStats {
    {
        let messages = metas.segments.iter().map(|s| u64::from(s.num_docs())).sum();
        let bytes = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        IndexStats {
            messages,
            segments: metas.segments.len(),
            bytes,
            mark: Payload::parse(metas.payload.as_deref()).and_then(|p| p.mark),
        }
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.release_writer();
    }
}

/// Waits for a writer's merges and drops it.
fn finish(dir: &Path, w: IndexWriter) {
    if let Err(e) = w.wait_merging_threads() {
        tracing::warn!(
            "search index at {}: merging segments failed: {e}",
            dir.display()
        );
    }
}

pub(crate) fn index_err(dir: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Index {
        dir: dir.to_path_buf(),
        detail: e.to_string(),
    }
}

fn register_tokenizers(index: &Index) {
    index
        .tokenizers()
        .register(tokenize::TEXT, tokenize::text_analyzer());
    index
        .tokenizers()
        .register(tokenize::KEYWORD, tokenize::keyword_analyzer());
}

/// Opens an existing index of this schema, or says why it cannot be used.
fn inspect(dir: &Path, schema: &tantivy::schema::Schema) -> Result<(Index, IndexReader), Opened> {
    if !dir.join("meta.json").exists() {
        return Err(Opened::Missing);
    }
    let damaged = |e: TantivyError| Opened::Damaged(e.to_string());
    let index = Index::open_in_dir(dir).map_err(damaged)?;
    let metas = index.load_metas().map_err(damaged)?;
    match Payload::parse(metas.payload.as_deref()) {
        // Created but never committed: empty, and usable.
        None if metas.segments.is_empty() => {}
        None => return Err(Opened::Damaged("its commit record is unreadable".into())),
        Some(p) if p.schema > SCHEMA_VERSION => {
            return Err(Opened::Newer {
                schema: p.schema,
                writer: p.writer,
            });
        }
        Some(p) if p.schema < SCHEMA_VERSION => return Err(Opened::Older(p.schema)),
        Some(_) => {}
    }
    if index.schema() != *schema {
        return Err(Opened::Damaged("its fields are not this version's".into()));
    }
    // Open every segment once, so missing or truncated files show now rather than
    // at the first query.
    register_tokenizers(&index);
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(damaged)?;
    Ok((index, reader))
}

fn log_start_over(dir: &Path, why: &Opened) {
    let d = dir.display();
    match why {
        Opened::Existing => {}
        Opened::Missing => tracing::info!("creating the search index at {d}"),
        Opened::Damaged(e) => tracing::warn!(
            "the search index at {d} cannot be read ({e}); rebuilding it from the archive"
        ),
        Opened::Older(v) => tracing::info!(
            "the search index at {d} has schema {v}, this convos writes {SCHEMA_VERSION}; \
             rebuilding it from the archive"
        ),
        Opened::Newer { schema, writer } => tracing::warn!(
            "the search index at {d} was written by a newer convos ({writer}, schema {schema}; \
             this one writes {SCHEMA_VERSION}); rebuilding it from the archive"
        ),
    }
}

/// Removes the index's files (only plain files: the directory holds nothing else).
fn wipe(dir: &Path) -> Result<(), SearchError> {
    let io = |what, path: &Path, source| SearchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| io("cannot read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot read", dir, e))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(|e| io("cannot inspect", &path, e))?
            .is_file();
        if is_file {
            std::fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
        }
    }
    Ok(())
}
