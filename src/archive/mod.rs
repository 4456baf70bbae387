//! The archive: every conversation ever seen, stored verbatim in an embedded sled
//! database, with attachments stored once by content hash.
//!
//! [`Archive::upsert`] is the one door every source writes conversations through.
//! sled is named only inside this module.

pub mod blobs;
mod merge;
pub mod private;
pub mod schema;
mod totals;

use crate::model::time::now_secs;
use crate::model::{Conversation, ModelError, RawConversation, Summary};
use blobs::BlobStore;
use schema::{ConvRecord, FileRecord, ImportRecord, RemoteState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use totals::Delta;

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The conversation was not archived before.
    New,
    /// A newer version replaced the stored one, or an older one added unseen nodes.
    Updated,
    /// Nothing was written.
    Unchanged,
}

/// Errors from the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Another process holds the database.
    #[error(
        "the archive at {0} is in use by another process (is `convos run` running? then use the \
         commands through it, or stop it first)"
    )]
    Locked(PathBuf),
    /// Written by a newer convos.
    #[error(
        "the archive at {path} uses schema version {found}, but this convos only knows up to \
         {supported}: upgrade convos"
    )]
    TooNew {
        /// Database path.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Highest version this build supports.
        supported: u32,
    },
    /// Stored bytes that cannot be decoded.
    #[error("archive record {0} is damaged and cannot be read")]
    Corrupt(String),
    /// The storage engine failed.
    #[error("archive storage error: {0}")]
    Storage(String),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Stored JSON no longer parses as a conversation.
    #[error("stored conversation {id} cannot be read: {source}")]
    Model {
        /// Conversation id.
        id: String,
        /// The cause.
        source: ModelError,
    },
}

impl From<sled::Error> for ArchiveError {
    fn from(e: sled::Error) -> Self {
        ArchiveError::Storage(e.to_string())
    }
}

/// sled segment size; see [`schema::CHUNK`].
const SEGMENT_SIZE: usize = 1 << 20;

/// Writes a packed document as chunks, removing chunks the old version had beyond them.
fn tx_put_doc(
    t: &sled::transaction::TransactionalTree,
    id: &str,
    packed: &[u8],
    old_chunks: u32,
) -> std::result::Result<u32, sled::transaction::UnabortableTransactionError> {
    let mut n = 0u32;
    for (i, c) in packed.chunks(schema::CHUNK).enumerate() {
        n = i as u32 + 1;
        t.insert(schema::chunk_key(id, i as u32), c)?;
    }
    for i in n..old_chunks {
        t.remove(schema::chunk_key(id, i))?;
    }
    Ok(n)
}

/// Joins and unpacks a document's chunks, read through `get`; `None` when a chunk
/// is missing or the bytes do not unpack.
fn read_doc<E>(
    id: &str,
    chunks: u32,
    mut get: impl FnMut(Vec<u8>) -> std::result::Result<Option<sled::IVec>, E>,
) -> std::result::Result<Option<Vec<u8>>, E> {
    let mut packed = Vec::new();
    for i in 0..chunks {
        match get(schema::chunk_key(id, i))? {
            Some(c) => packed.extend_from_slice(&c),
            None => return Ok(None),
        }
    }
    Ok(schema::unpack(&packed))
}

/// Reads a chunked document inside a transaction.
fn tx_get_doc(
    t: &sled::transaction::TransactionalTree,
    id: &str,
    chunks: u32,
) -> std::result::Result<Option<Vec<u8>>, sled::transaction::UnabortableTransactionError> {
    read_doc(id, chunks, |k| t.get(k))
}

/// Reads a chunked document.
/// The second halves of a pair tree's keys (`conv_files`: conversation → its files;
/// `file_convs`: file → its conversations) that start with `first`.
fn pair_seconds(tree: &sled::Tree, first: &str) -> Result<Vec<String>> {
    let prefix = schema::conv_file_key(first, "");
    let mut out = Vec::new();
    for k in tree.scan_prefix(&prefix).keys() {
        let k = k?;
        out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
    }
    Ok(out)
}

fn get_doc(t: &sled::Tree, id: &str, chunks: u32) -> Result<Option<Vec<u8>>> {
    read_doc(id, chunks, |k| t.get(k)).map_err(ArchiveError::from)
}

/// Result alias for archive operations.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Options for opening the archive.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// sled page cache size in bytes (its default of 1 GB is far more than needed).
    pub cache_bytes: u64,
    /// sled's background flush interval. The daemon turns it off (its thread would
    /// wake every interval while idle) and flushes after each unit of work instead.
    pub flush_every_ms: Option<u64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 16 * 1024 * 1024,
            flush_every_ms: Some(1000),
        }
    }
}

/// A conversation as stored.
#[derive(Clone, Debug)]
pub struct StoredConversation {
    /// The verbatim JSON of the newest version.
    pub raw: Vec<u8>,
    /// Nodes retained from older versions (a JSON object), if any.
    pub extra: Option<Vec<u8>>,
    /// The archive's record.
    pub record: ConvRecord,
}

impl StoredConversation {
    /// Parses the stored JSON together with its retained nodes.
    pub fn parse(&self) -> Result<Conversation<'_>> {
        Conversation::parse(&self.raw, self.extra.as_deref()).map_err(|source| {
            ArchiveError::Model {
                id: self.record.summary.id.clone(),
                source,
            }
        })
    }
}

/// Totals for `convos status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Conversations archived.
    pub conversations: u64,
    /// Visible messages on their active branches.
    pub messages: u64,
    /// Attachments stored.
    pub attachments: u64,
    /// Conversations marked deleted on chatgpt.com.
    pub deleted_remotely: u64,
}

/// An attachment whose bytes are stored and whose record waits for
/// [`Archive::commit_files`]: every sled transaction writes the log out, and an export
/// holds thousands of small images, so the import writes their records in groups.
#[derive(Debug)]
pub struct StagedFile {
    file_id: String,
    record: FileRecord,
    /// The record differs from the stored one (or there is none).
    changed: bool,
    /// The bytes differ from the stored ones (or there were none).
    new_bytes: bool,
}

impl StagedFile {
    /// The file id.
    pub fn file_id(&self) -> &str {
        &self.file_id
    }
}

/// The archive handle; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Archive {
    db: sled::Db,
    raw: sled::Tree,
    extra: sled::Tree,
    meta: sled::Tree,
    by_updated: sled::Tree,
    files: sled::Tree,
    conv_files: sled::Tree,
    imports: sled::Tree,
    file_convs: sled::Tree,
    changes: sled::Tree,
    totals: sled::Tree,
    feed: std::sync::Arc<Feed>,
    blobs: BlobStore,
    dir: PathBuf,
    // Keeps a temporary archive's directory alive as long as any handle.
    _temp: Option<std::sync::Arc<TempDirGuard>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("dir", &self.dir).finish()
    }
}

struct TempDirGuard(PathBuf);

/// The change feed's writer side. Sequence numbers are allocated and committed under
/// one lock, so they commit in order: a consumer that has read up to N can never later
/// see an entry below N appear (two unordered writers could otherwise commit 6 before
/// 5, and a consumer marking 6 would skip 5 for ever).
struct Feed {
    lock: std::sync::Mutex<()>,
    newest: tokio::sync::watch::Sender<u64>,
}

impl Feed {
    fn new(newest: u64) -> Self {
        Self {
            lock: std::sync::Mutex::new(()),
            newest: tokio::sync::watch::Sender::new(newest),
        }
    }

    /// Holds the feed's order for one write. The guarded value is `()`, so a panic
    /// elsewhere while it was held leaves nothing inconsistent behind.
    fn order(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells subscribers a write committed (after the commit, still in order).
    fn published(&self, seq: u64) {
        self.newest.send_if_modified(|n| {
            let newer = seq > *n;
            if newer {
                *n = seq;
            }
            newer
        });
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A conversation made ready for [`Archive::upsert_many`] (compressed for storage), so
/// that work can be done on another thread than the one writing.
#[derive(Debug)]
pub struct Prepared(Incoming);

impl From<RawConversation> for Prepared {
    fn from(conv: RawConversation) -> Self {
        Self(Incoming::new(conv, true))
    }
}

impl Prepared {
    /// Like [`Prepared::from`], but leaves the compression to the thread that stores
    /// it (an import's reader is the busy thread when conversations are large).
    pub fn unpacked(conv: RawConversation) -> Self {
        Self(Incoming::new(conv, false))
    }

    /// The conversation id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Bytes of JSON.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether the JSON is empty (never, for a parsed conversation).
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }
}

/// A conversation on its way into the archive.
#[derive(Debug)]
struct Incoming {
    id: String,
    bytes: Vec<u8>,
    /// The lz4 form, made when first needed unless made up front.
    packed: std::cell::OnceCell<Vec<u8>>,
    summary: Summary,
    version: i64,
    now: f64,
}

impl From<RawConversation> for Incoming {
    fn from(conv: RawConversation) -> Self {
        Self::new(conv, true)
    }
}

impl Incoming {
    /// The conversation, compressed now when `pack` (else when first stored, by
    /// [`Self::packed`]).
    fn new(conv: RawConversation, pack: bool) -> Self {
        let (bytes, summary) = conv.into_parts();
        let version = summary
            .update_time
            .or(summary.create_time)
            .map(crate::model::time::secs_to_micros)
            .unwrap_or(0);
        Self {
            id: summary.id.clone(),
            packed: if pack {
                schema::pack(&bytes).into()
            } else {
                std::cell::OnceCell::new()
            },
            bytes,
            summary,
            version,
            now: now_secs(),
        }
    }

    /// The compressed form (made now if it was left for later: an unchanged
    /// conversation never needs it).
    fn packed(&self) -> &[u8] {
        self.packed.get_or_init(|| schema::pack(&self.bytes))
    }
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<ArchiveError>>;

/// The three ways an upsert goes, inside its transaction.
struct UpsertTx<'t> {
    raw: &'t sled::transaction::TransactionalTree,
    extra: &'t sled::transaction::TransactionalTree,
    records: RecordWriter<'t>,
    c: &'t Incoming,
    seq: &'t Seq,
}

impl UpsertTx<'_> {
    /// Reads the stored version, then takes one of the three branches.
    fn upsert(&self) -> TxResult<Outcome> {
        let (raw, extra, meta) = (self.raw, self.extra, self.records.meta);
        let id = &self.c.id;
        let Some(old) = meta.get(id.as_bytes())? else {
            return self.insert_new();
        };
        let old: ConvRecord = from_json(id, &old).map_err(abort)?;
        let corrupt = || abort(ArchiveError::Corrupt(id.clone()));
        let stored_raw = tx_get_doc(raw, id, old.raw_chunks)?.ok_or_else(corrupt)?;
        let stored_extra = match old.extra_chunks {
            0 => None,
            n => Some(tx_get_doc(extra, id, n)?.ok_or_else(corrupt)?),
        };
        if self.c.version == old.version {
            self.merge_equal(&old, &stored_raw, stored_extra.as_deref())
        } else if self.c.version > old.version {
            self.replace_older(&old, &stored_raw, stored_extra.as_deref())
        } else {
            self.keep_newer(&old, &stored_raw, stored_extra.as_deref())
        }
    }

    /// A conversation the archive has never seen: stored as it came.
    fn insert_new(&self) -> TxResult<Outcome> {
        let c = self.c;
        let raw_chunks = tx_put_doc(self.raw, &c.id, c.packed(), 0)?;
        let record = ConvRecord {
            node_count: c.summary.node_count,
            summary: c.summary.clone(),
            version: c.version,
            raw_chunks,
            extra_chunks: 0,
            archived_at: c.now,
            written_at: c.now,
            deleted_remotely: false,
            remote: RemoteState::default(),
            change_seq: 0,
        };
        self.records.write(&c.id, record, None, self.seq)?;
        Ok(Outcome::New)
    }

    /// A newer version replaces the stored one; nodes only the stored one has are kept
    /// beside it.
    fn replace_older(
        &self,
        old: &ConvRecord,
        stored_raw: &[u8],
        stored_extra: Option<&[u8]>,
    ) -> TxResult<Outcome> {
        let c = self.c;
        let kept = merge::retained_after_replace(stored_raw, stored_extra, &c.bytes)
            .map_err(|_| abort(ArchiveError::Corrupt(c.id.clone())))?;
        let summary = match &kept {
            Some(k) => resummarize(&c.id, &c.bytes, Some(k)).map_err(abort)?,
            None => c.summary.clone(),
        };
        let raw_chunks = tx_put_doc(self.raw, &c.id, c.packed(), old.raw_chunks)?;
        let extra_packed = kept.as_deref().map(schema::pack).unwrap_or_default();
        let extra_chunks = tx_put_doc(self.extra, &c.id, &extra_packed, old.extra_chunks)?;
        let record = ConvRecord {
            node_count: summary.node_count,
            summary,
            version: c.version,
            raw_chunks,
            extra_chunks,
            written_at: c.now,
            ..old.clone()
        };
        self.records.write(&c.id, record, Some(old), self.seq)?;
        Ok(Outcome::Updated)
    }

    /// The same version again: the stored document gains the top-level keys it lacks
    /// and this copy has (see [`merge::with_missing_keys`]), like an older version adds
    /// the nodes it lacks. Nothing is written when it lacks none.
    fn merge_equal(
        &self,
        old: &ConvRecord,
        stored_raw: &[u8],
        stored_extra: Option<&[u8]>,
    ) -> TxResult<Outcome> {
        let c = self.c;
        let Some(merged) = merge::with_missing_keys(stored_raw, &c.bytes)
            .map_err(|_| abort(ArchiveError::Corrupt(c.id.clone())))?
        else {
            return Ok(Outcome::Unchanged);
        };
        let summary = resummarize(&c.id, &merged, stored_extra).map_err(abort)?;
        let raw_chunks = tx_put_doc(self.raw, &c.id, &schema::pack(&merged), old.raw_chunks)?;
        let record = ConvRecord {
            node_count: summary.node_count,
            summary,
            raw_chunks,
            written_at: c.now,
            ..old.clone()
        };
        self.records.write(&c.id, record, Some(old), self.seq)?;
        Ok(Outcome::Updated)
    }

    /// An older version: the stored one stays; nodes only the older one has are kept
    /// beside it (when there are none, nothing is written).
    fn keep_newer(
        &self,
        old: &ConvRecord,
        stored_raw: &[u8],
        stored_extra: Option<&[u8]>,
    ) -> TxResult<Outcome> {
        let c = self.c;
        let Some(kept) = merge::retained_after_older(stored_raw, stored_extra, &c.bytes)
            .map_err(|_| abort(ArchiveError::Corrupt(c.id.clone())))?
        else {
            return Ok(Outcome::Unchanged);
        };
        let summary = resummarize(&c.id, stored_raw, Some(&kept)).map_err(abort)?;
        let extra_chunks = tx_put_doc(self.extra, &c.id, &schema::pack(&kept), old.extra_chunks)?;
        let record = ConvRecord {
            node_count: summary.node_count,
            summary,
            extra_chunks,
            written_at: c.now,
            ..old.clone()
        };
        self.records.write(&c.id, record, Some(old), self.seq)?;
        Ok(Outcome::Updated)
    }
}

/// Writes what every upsert branch writes besides the documents, inside its
/// transaction: the record, its entry in the update-time index, its file links, its
/// change-feed entry and its part of the running totals.
struct RecordWriter<'t> {
    /// What this transaction's writes add to the archive's totals.
    delta: &'t std::cell::Cell<Delta>,
    meta: &'t sled::transaction::TransactionalTree,
    by_updated: &'t sled::transaction::TransactionalTree,
    conv_files: &'t sled::transaction::TransactionalTree,
    file_convs: &'t sled::transaction::TransactionalTree,
    changes: &'t sled::transaction::TransactionalTree,
}

/// The sequence number the last successful write in a transaction allocated.
type Seq = std::cell::Cell<u64>;

impl RecordWriter<'_> {
    /// Writes `record`, which replaces `old` (`None` for a new conversation), with a
    /// new change-feed entry (recorded in `seq`).
    fn write(
        &self,
        id: &str,
        mut record: ConvRecord,
        old: Option<&ConvRecord>,
        seq: &Seq,
    ) -> std::result::Result<(), sled::transaction::UnabortableTransactionError> {
        tx_bump_change(self.changes, id, &mut record)?;
        seq.set(record.change_seq);
        self.meta.insert(id.as_bytes(), to_json(&record))?;
        if let Some(old) = old
            && old.version != record.version
        {
            self.by_updated
                .remove(schema::version_key(old.version, id))?;
        }
        let counted = |r: &ConvRecord| (r.summary.message_count, r.deleted_remotely);
        Delta::conversation(old.map(counted), counted(&record)).add_to(self.delta);
        self.by_updated.insert(
            schema::version_key(record.version, id),
            &schema::index_value(record.summary.message_count, record.deleted_remotely)[..],
        )?;
        for f in &record.summary.file_ids {
            self.conv_files
                .insert(schema::conv_file_key(id, f), &[][..])?;
            self.file_convs
                .insert(schema::conv_file_key(f, id), &[][..])?;
        }
        Ok(())
    }
}

/// Moves a conversation's change-feed entry to a new sequence number (inside a
/// transaction holding the feed's order).
fn tx_bump_change(
    changes: &sled::transaction::TransactionalTree,
    id: &str,
    record: &mut ConvRecord,
) -> std::result::Result<(), sled::transaction::UnabortableTransactionError> {
    // sled's ids start at 0; the feed keeps 0 for "never in the feed".
    let seq = changes.generate_id()? + 1;
    if record.change_seq != 0 {
        changes.remove(&schema::change_key(record.change_seq)[..])?;
    }
    changes.insert(&schema::change_key(seq)[..], id.as_bytes())?;
    record.change_seq = seq;
    Ok(())
}

fn abort(e: ArchiveError) -> ConflictableTransactionError<ArchiveError> {
    ConflictableTransactionError::Abort(e)
}

fn tx_result<T>(r: std::result::Result<T, TransactionError<ArchiveError>>) -> Result<T> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Our records are plain data; serializing them cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|_| ArchiveError::Corrupt(what.to_owned()))
}

/// Takes group and other access away from the archive in `dir` when it has any. A new
/// archive needs this only when the process umask let sled create loose files (never in
/// the `convos` binary, whose umask is 077), so only an existing one is warned about. A
/// failure is logged, not fatal: the archive still reads.
fn secure(dir: &Path, existed: bool) {
    if !private::looks_loose(dir) {
        return;
    }
    match private::make_private(dir) {
        Ok(n) if existed && n > 0 => tracing::warn!(
            "the archive at {} was readable by other users; made it private to you \
             ({n} files and folders: chmod go-rwx)",
            dir.display()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "the archive at {} is readable by other users and could not be made private \
             ({e}); fix it with `chmod -R go-rwx {}`",
            dir.display(),
            dir.display()
        ),
    }
}

impl Archive {
    /// Opens (creating) the archive in `dir`: the database in `dir/db`, attachments in
    /// `dir/blobs`. The archive is private to its owner: created 0700, and an existing
    /// one that others can read is made private with one warning.
    pub fn open(dir: &Path, opts: &OpenOptions) -> Result<Self> {
        private::create_private_dir(dir).map_err(|source| ArchiveError::Io {
            what: "cannot create the archive directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let db_path = dir.join("db");
        let existed = db_path.exists();
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(opts.cache_bytes)
            .flush_every_ms(opts.flush_every_ms)
            .segment_size(SEGMENT_SIZE)
            .open()
            .map_err(|e| match &e {
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    ArchiveError::Locked(db_path.clone())
                }
                _ => ArchiveError::from(e),
            })?;
        let blobs = BlobStore::open(&dir.join("blobs")).map_err(|source| ArchiveError::Io {
            what: "cannot create the attachment store",
            path: dir.join("blobs"),
            source,
        })?;
        let archive = Archive {
            raw: db.open_tree(schema::RAW)?,
            extra: db.open_tree(schema::EXTRA)?,
            meta: db.open_tree(schema::META)?,
            by_updated: db.open_tree(schema::BY_UPDATED)?,
            files: db.open_tree(schema::FILES)?,
            conv_files: db.open_tree(schema::CONV_FILES)?,
            imports: db.open_tree(schema::IMPORTS)?,
            file_convs: db.open_tree(schema::FILE_CONVS)?,
            changes: db.open_tree(schema::CHANGES)?,
            totals: db.open_tree(schema::TOTALS)?,
            feed: std::sync::Arc::new(Feed::new(0)),
            db,
            blobs,
            dir: dir.to_path_buf(),
            _temp: None,
        };
        archive.check_schema(&db_path)?;
        archive.fill_file_convs()?;
        archive.start_totals()?;
        archive.feed.published(archive.last_change_seq()?);
        secure(dir, existed);
        Ok(archive)
    }

    /// A throw-away archive in a fresh temporary directory, removed when the last
    /// handle drops (for tests and dry runs).
    pub fn temporary() -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("convos-tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut a = Self::open(&dir, &OpenOptions::default())?;
        a._temp = Some(std::sync::Arc::new(TempDirGuard(dir)));
        Ok(a)
    }

    fn check_schema(&self, db_path: &Path) -> Result<()> {
        match self.db.get(schema::SCHEMA_KEY)? {
            None => {
                self.db.insert(
                    schema::SCHEMA_KEY,
                    schema::SCHEMA_VERSION.to_string().as_bytes(),
                )?;
                Ok(())
            }
            Some(v) => {
                let found: u32 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ArchiveError::Corrupt("schema_version".into()))?;
                if found > schema::SCHEMA_VERSION {
                    return Err(ArchiveError::TooNew {
                        path: db_path.to_path_buf(),
                        found,
                        supported: schema::SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
        }
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema version stored on disk.
    pub fn schema_version(&self) -> Result<u32> {
        let v = self.db.get(schema::SCHEMA_KEY)?.unwrap_or_default();
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ArchiveError::Corrupt("schema_version".into()))
    }

    /// Stores a conversation: new ones are added; a newer `update_time` replaces the
    /// stored version but keeps nodes it lacks; an equal one only adds top-level keys
    /// the stored copy lacks (nothing when it lacks none); an older one only adds nodes
    /// the archive has never seen. Nothing is ever deleted.
    pub fn upsert(&self, conv: RawConversation) -> Result<Outcome> {
        let incoming = [Incoming::from(conv)];
        let outcomes = self.upsert_group(&incoming)?;
        Ok(outcomes.first().copied().unwrap_or(Outcome::Unchanged))
    }

    /// Stores several conversations, each exactly as [`Self::upsert`] would (same
    /// rules, same change-feed entries, same outcome, in order), in one transaction:
    /// sled writes its log out at every transaction's start and end, so a group of
    /// small conversations costs one round of disk writes instead of one each. When the
    /// group fails as a whole, each conversation is stored on its own, so one that
    /// cannot be stored fails alone.
    pub fn upsert_many(&self, convs: Vec<Prepared>) -> Vec<Result<Outcome>> {
        let incoming: Vec<Incoming> = convs.into_iter().map(|p| p.0).collect();
        if incoming.len() > 1
            && let Ok(outcomes) = self.upsert_group(&incoming)
        {
            return outcomes.into_iter().map(Ok).collect();
        }
        incoming
            .iter()
            .map(|c| {
                let outcomes = self.upsert_group(std::slice::from_ref(c))?;
                Ok(outcomes.first().copied().unwrap_or(Outcome::Unchanged))
            })
            .collect()
    }

    /// Upserts `group` in one transaction, returning each conversation's outcome.
    fn upsert_group(&self, group: &[Incoming]) -> Result<Vec<Outcome>> {
        let trees = (
            &self.raw,
            &self.extra,
            &self.meta,
            &self.by_updated,
            &self.conv_files,
            &self.file_convs,
            &self.changes,
            &self.totals,
        );
        let seq = Seq::new(0);
        let delta = std::cell::Cell::new(Delta::default());
        let _order = self.feed.order();
        let outcomes = tx_result(trees.transaction(
            |(raw, extra, meta, by_updated, conv_files, file_convs, changes, totals)| {
                seq.set(0);
                delta.set(Delta::default());
                let mut outcomes = Vec::with_capacity(group.len());
                for incoming in group {
                    let tx = UpsertTx {
                        raw,
                        extra,
                        records: RecordWriter {
                            delta: &delta,
                            meta,
                            by_updated,
                            conv_files,
                            file_convs,
                            changes,
                        },
                        c: incoming,
                        seq: &seq,
                    };
                    outcomes.push(tx.upsert()?);
                }
                totals::tx_apply(totals, delta.get())?;
                Ok(outcomes)
            },
        ))?;
        if seq.get() != 0 {
            self.feed.published(seq.get());
        }
        Ok(outcomes)
    }

    /// The stored conversation with this exact id.
    pub fn get(&self, id: &str) -> Result<Option<StoredConversation>> {
        let Some(meta) = self.meta.get(id.as_bytes())? else {
            return Ok(None);
        };
        let record: ConvRecord = from_json(id, &meta)?;
        let raw = get_doc(&self.raw, id, record.raw_chunks)?
            .ok_or_else(|| ArchiveError::Corrupt(id.to_owned()))?;
        let extra = match record.extra_chunks {
            0 => None,
            n => Some(
                get_doc(&self.extra, id, n)?.ok_or_else(|| ArchiveError::Corrupt(id.to_owned()))?,
            ),
        };
        Ok(Some(StoredConversation { raw, extra, record }))
    }

    /// The record of a conversation, without its JSON.
    pub fn record(&self, id: &str) -> Result<Option<ConvRecord>> {
        match self.meta.get(id.as_bytes())? {
            Some(b) => Ok(Some(from_json(id, &b)?)),
            None => Ok(None),
        }
    }

    /// Ids that equal `prefix` or start with it (at most `limit`), for `show` by prefix.
    pub fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        if self.meta.contains_key(prefix.as_bytes())? {
            return Ok(vec![prefix.to_owned()]);
        }
        let mut out = Vec::new();
        for kv in self.meta.scan_prefix(prefix.as_bytes()).keys().take(limit) {
            out.push(String::from_utf8_lossy(&kv?).into_owned());
        }
        Ok(out)
    }

    /// Conversation records, newest update first, read through the update-time index.
    pub fn iter_newest_first(&self) -> impl Iterator<Item = Result<ConvRecord>> + '_ {
        self.by_updated.iter().rev().filter_map(move |kv| {
            let k = match kv {
                Ok((k, _)) => k,
                Err(e) => return Some(Err(e.into())),
            };
            let id = schema::id_from_version_key(&k)?;
            self.record(id).transpose()
        })
    }

    /// Number of conversations archived.
    pub fn len(&self) -> usize {
        match self.counts() {
            Ok(c) => usize::try_from(c.conversations).unwrap_or(usize::MAX),
            Err(_) => self.meta.len(),
        }
    }

    /// Whether the archive holds no conversation.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Totals for status output: the running totals every write keeps, counted once
    /// first in an archive written before them.
    pub fn counts(&self) -> Result<Counts> {
        if let Some(c) = self.stored_totals()? {
            return Ok(c);
        }
        // No write may land between the count and the stored key.
        let _order = self.feed.order();
        if let Some(c) = self.stored_totals()? {
            return Ok(c);
        }
        let c = self.count_by_walk()?;
        self.totals.insert(totals::KEY, &totals::encode(&c)[..])?;
        Ok(c)
    }

    /// The running totals as stored; `None` when not counted yet (or unreadable).
    fn stored_totals(&self) -> Result<Option<Counts>> {
        Ok(self
            .totals
            .get(totals::KEY)?
            .and_then(|v| totals::decode(&v)))
    }

    /// Starts the running totals at zero in a new archive (an older one counts them on
    /// first use instead, see [`Self::counts`]).
    fn start_totals(&self) -> Result<()> {
        let _order = self.feed.order();
        if self.totals.get(totals::KEY)?.is_none() && self.meta.is_empty() && self.files.is_empty()
        {
            self.totals
                .insert(totals::KEY, &totals::encode(&Counts::default())[..])?;
        }
        Ok(())
    }

    /// The totals counted from the records: one pass over the update-time index.
    fn count_by_walk(&self) -> Result<Counts> {
        let mut c = Counts {
            attachments: self.files.len() as u64,
            ..Counts::default()
        };
        // The index carries what the totals need, so no record is read (a status
        // call on 10,000 conversations otherwise pulls megabytes into the cache).
        for kv in self.by_updated.iter() {
            let (k, v) = kv?;
            let (messages, deleted) = match schema::parse_index_value(&v) {
                Some(x) => x,
                None => {
                    let Some(id) = schema::id_from_version_key(&k) else {
                        continue;
                    };
                    match self.record(id)? {
                        Some(r) => (r.summary.message_count, r.deleted_remotely),
                        None => continue,
                    }
                }
            };
            c.conversations += 1;
            c.messages += u64::from(messages);
            c.deleted_remotely += u64::from(deleted);
        }
        Ok(c)
    }

    /// Applies facts from a chatgpt.com listing to a stored conversation (flags that
    /// change without an `update_time` bump, the list time, the project name).
    /// Returns false when the conversation is not archived. A change a reader can see
    /// (flags, project, the deleted mark) moves the conversation up the change feed.
    pub fn update_remote(&self, id: &str, f: impl Fn(&mut ConvRecord)) -> Result<bool> {
        let seq = Seq::new(0);
        let _order = self.feed.order();
        let trees = (&self.meta, &self.by_updated, &self.changes, &self.totals);
        let found = tx_result(trees.transaction(|(meta, by_updated, changes, totals)| {
            seq.set(0);
            let Some(old) = meta.get(id.as_bytes())? else {
                return Ok(false);
            };
            let old: ConvRecord = from_json(id, &old).map_err(abort)?;
            let mut rec = old.clone();
            f(&mut rec);
            if rec == old {
                return Ok(true);
            }
            if shows_differently(&old, &rec) {
                tx_bump_change(changes, id, &mut rec)?;
                seq.set(rec.change_seq);
            }
            meta.insert(id.as_bytes(), to_json(&rec))?;
            // Keep the index's copy of the deleted flag in step.
            by_updated.insert(
                schema::version_key(rec.version, id),
                &schema::index_value(rec.summary.message_count, rec.deleted_remotely)[..],
            )?;
            let counted = |r: &ConvRecord| (r.summary.message_count, r.deleted_remotely);
            totals::tx_apply(
                totals,
                Delta::conversation(Some(counted(&old)), counted(&rec)),
            )?;
            Ok(true)
        }))?;
        if seq.get() != 0 {
            self.feed.published(seq.get());
        }
        Ok(found)
    }

    /// Attachment record for a file id.
    pub fn file(&self, file_id: &str) -> Result<Option<FileRecord>> {
        match self.files.get(file_id.as_bytes())? {
            Some(b) => Ok(Some(from_json(file_id, &b)?)),
            None => Ok(None),
        }
    }

    /// Stores attachment bytes (once per content hash) under a file id.
    pub fn store_file(
        &self,
        file_id: &str,
        name: Option<&str>,
        mime_type: Option<&str>,
        reader: impl std::io::Read,
    ) -> Result<FileRecord> {
        let staged = self.stage_file(file_id, name, mime_type, reader)?;
        self.commit_files(std::slice::from_ref(&staged))?;
        Ok(staged.record)
    }

    /// Stores attachment bytes and prepares their record, which
    /// [`Self::commit_files`] writes (the import writes them in groups).
    pub fn stage_file(
        &self,
        file_id: &str,
        name: Option<&str>,
        mime_type: Option<&str>,
        reader: impl std::io::Read,
    ) -> Result<StagedFile> {
        let (sha256, size) = self.blobs.put(reader).map_err(|source| ArchiveError::Io {
            what: "cannot store attachment in",
            path: self.dir.join("blobs"),
            source,
        })?;
        let old = self.file(file_id)?;
        let record = FileRecord {
            sha256,
            size,
            name: name
                .map(str::to_owned)
                .or_else(|| old.as_ref().and_then(|o| o.name.clone())),
            mime_type: mime_type
                .map(str::to_owned)
                .or_else(|| old.as_ref().and_then(|o| o.mime_type.clone())),
        };
        Ok(StagedFile {
            file_id: file_id.to_owned(),
            changed: old.as_ref() != Some(&record),
            new_bytes: old.as_ref().map(|o| &o.sha256) != Some(&record.sha256),
            record,
        })
    }

    /// Writes staged attachment records in one transaction (counting new file ids in
    /// the totals), then moves the conversations that show a file whose bytes are new
    /// up the change feed.
    pub fn commit_files(&self, staged: &[StagedFile]) -> Result<()> {
        let changed: Vec<&StagedFile> = staged.iter().filter(|s| s.changed).collect();
        if changed.is_empty() {
            return Ok(());
        }
        {
            let _order = self.feed.order();
            tx_result((&self.files, &self.totals).transaction(|(files, totals)| {
                let mut new = 0;
                for s in &changed {
                    let key = s.file_id.as_bytes();
                    if files.insert(key, to_json(&s.record))?.is_none() {
                        new += 1;
                    }
                }
                totals::tx_apply(totals, Delta::attachments(new))?;
                Ok(())
            }))?;
        }
        for s in changed.iter().filter(|s| s.new_bytes) {
            // Notes and pages that showed a placeholder can now show the bytes.
            for conv in self.file_conversations(&s.file_id)? {
                self.touch(&conv)?;
            }
        }
        Ok(())
    }

    /// Conversations that reference a file id.
    pub fn file_conversations(&self, file_id: &str) -> Result<Vec<String>> {
        pair_seconds(&self.file_convs, file_id)
    }

    /// Moves a conversation up the change feed without changing it (something it
    /// shows, such as an attachment's bytes, arrived). False when it is not archived.
    pub fn touch(&self, id: &str) -> Result<bool> {
        let seq = Seq::new(0);
        let _order = self.feed.order();
        let found = tx_result((&self.meta, &self.changes).transaction(|(meta, changes)| {
            let Some(old) = meta.get(id.as_bytes())? else {
                return Ok(false);
            };
            let mut rec: ConvRecord = from_json(id, &old).map_err(abort)?;
            tx_bump_change(changes, id, &mut rec)?;
            seq.set(rec.change_seq);
            meta.insert(id.as_bytes(), to_json(&rec))?;
            Ok(true)
        }))?;
        if found {
            self.feed.published(seq.get());
        }
        Ok(found)
    }

    /// Change-feed entries after `after`, oldest first: `(sequence number, conversation
    /// id)`. Each conversation appears once, at its latest change. A consumer keeps the
    /// last number it has processed and asks again from there.
    pub fn changes_since(&self, after: u64) -> impl Iterator<Item = Result<(u64, String)>> + '_ {
        let start = after.saturating_add(1);
        self.changes
            .range(schema::change_key(start)..)
            .filter_map(|kv| match kv {
                Ok((k, v)) => Some(Ok((
                    schema::parse_change_key(&k)?,
                    String::from_utf8_lossy(&v).into_owned(),
                ))),
                Err(e) => Some(Err(e.into())),
            })
    }

    /// The newest change-feed sequence number (0 when the feed is empty). A consumer
    /// starting from nothing takes this BEFORE a full scan, so writes made during the
    /// scan are caught by its next catch-up.
    pub fn last_change_seq(&self) -> Result<u64> {
        Ok(match self.changes.last()? {
            Some((k, _)) => schema::parse_change_key(&k).unwrap_or(0),
            None => 0,
        })
    }

    /// A receiver told the newest change-feed sequence number after every write, so a
    /// consumer can sleep until there is something to catch up on (no polling).
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.feed.newest.subscribe()
    }

    /// Builds the file → conversation links of archives written before they existed.
    fn fill_file_convs(&self) -> Result<()> {
        if !self.file_convs.is_empty() || self.conv_files.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for k in self.conv_files.iter().keys() {
            let k = k?;
            let Some(split) = k.iter().position(|&b| b == 0) else {
                continue;
            };
            let (conv, file) = (&k[..split], &k[split + 1..]);
            let mut rk = Vec::with_capacity(k.len());
            rk.extend_from_slice(file);
            rk.push(0);
            rk.extend_from_slice(conv);
            batch.insert(rk, &[][..]);
        }
        self.file_convs.apply_batch(batch)?;
        Ok(())
    }

    /// Where an attachment's bytes live on disk.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs.path(sha256)
    }

    /// Whether a file's bytes are stored whole (present, with its recorded length).
    pub fn holds_file(&self, record: &FileRecord) -> bool {
        self.blobs.holds(&record.sha256, record.size)
    }

    /// File ids a conversation references.
    pub fn conversation_files(&self, conv_id: &str) -> Result<Vec<String>> {
        pair_seconds(&self.conv_files, conv_id)
    }

    /// Referenced file ids whose bytes are not stored yet, as (conversation, file) pairs.
    pub fn missing_files(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for k in self.conv_files.iter().keys() {
            let k = k?;
            let Some(split) = k.iter().position(|&b| b == 0) else {
                continue;
            };
            let file_id = String::from_utf8_lossy(&k[split + 1..]).into_owned();
            if !self.files.contains_key(file_id.as_bytes())? {
                out.push((String::from_utf8_lossy(&k[..split]).into_owned(), file_id));
            }
        }
        Ok(out)
    }

    /// The import record of a file digest, if that file was imported before.
    pub fn import_record(&self, digest: &str) -> Result<Option<ImportRecord>> {
        match self.imports.get(digest.as_bytes())? {
            Some(b) => Ok(Some(from_json(digest, &b)?)),
            None => Ok(None),
        }
    }

    /// Records a file digest as imported; call only after [`Self::flush`].
    pub fn record_import(&self, digest: &str, record: &ImportRecord) -> Result<()> {
        self.imports.insert(digest.as_bytes(), to_json(record))?;
        Ok(())
    }

    /// Reads a named piece of state (sync frontier, pacing cooldown…).
    pub fn state<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.db.get(format!("state/{name}"))? {
            Some(b) => Ok(Some(from_json(name, &b)?)),
            None => Ok(None),
        }
    }

    /// Writes a named piece of state.
    pub fn set_state<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.db.insert(format!("state/{name}"), to_json(value))?;
        Ok(())
    }

    /// Makes the attachments stored since the last call durable (their bytes, then the
    /// blob directories they were renamed into). A unit of work (an import, a sync run)
    /// calls it, or [`Self::flush`], at its end, before recording itself as done.
    pub fn sync_blobs(&self) -> Result<()> {
        self.blobs
            .sync_dirty()
            .map(drop)
            .map_err(|source| ArchiveError::Io {
                what: "cannot sync the attachment store",
                path: self.dir.join("blobs"),
                source,
            })
    }

    /// Blob directories changed since the last [`Self::sync_blobs`].
    pub fn unsynced_blob_dirs(&self) -> Vec<PathBuf> {
        self.blobs.dirty_dirs()
    }

    /// Attachments stored since the last [`Self::sync_blobs`] whose bytes are not
    /// synced yet.
    pub fn unsynced_blobs(&self) -> usize {
        self.blobs.unsynced_blobs()
    }

    /// Writes everything to disk: the blob directories synced, then sled's flush (data
    /// pages written and waited for).
    pub fn flush(&self) -> Result<()> {
        self.sync_blobs()?;
        self.db.flush()?;
        Ok(())
    }
}

/// Whether two versions of a record show differently to a reader (the listing time
/// alone does not).
fn shows_differently(a: &ConvRecord, b: &ConvRecord) -> bool {
    let strip = |r: &ConvRecord| {
        let mut r = r.clone();
        r.remote.list_update_time = None;
        r.written_at = 0.0;
        r
    };
    strip(a) != strip(b)
}

/// Recomputes a summary over a document and its retained nodes.
fn resummarize(id: &str, raw: &[u8], extra: Option<&[u8]>) -> Result<Summary> {
    let model_err = |source| ArchiveError::Model {
        id: id.to_owned(),
        source,
    };
    Conversation::parse(raw, extra)
        .map_err(model_err)?
        .summary()
        .map_err(model_err)
}

#[cfg(test)]
mod tests;
