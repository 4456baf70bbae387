//! The import pipeline: attachments first, then one thread inflates and splits the
//! conversation files into elements while the calling thread parses and stores them,
//! so both cores work and at most a bounded queue of conversations is in memory.
//!
//! Attachments go first because a conversation stored before its attachment must be
//! moved up the change feed again when the bytes arrive (so the mirror and the search
//! index show them), which rewrites its record: on a first import that doubled the
//! archive's writes. Stored first, the bytes are there when the conversation lands.

use super::guard::{Guarded, LimitError};
use super::layout::{self, Entry, Layout, SmallFiles};
use super::progress::Progress;
use super::stream::{self, ArrayReader, Item, StreamError};
use super::{FileReport, ImportOptions, Problem};
use crate::archive::{Archive, Outcome, Prepared, StagedFile};
use crate::model::{ModelError, RawConversation};
use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use zip::ZipArchive;

/// Conversations queued between the reader and the writer.
const QUEUE: usize = 16;
/// Bytes of conversation JSON allowed in memory between the file and the archive, so
/// memory stays bounded however large single conversations are.
const IN_FLIGHT_BYTES: usize = 16 << 20;

/// A byte budget for conversation JSON between the file and the archive: what the
/// reader holds (the element it is reading, what it keeps to resynchronise) plus what
/// it passed on and the writer has not stored yet. The reader waits before holding
/// more than fits; only with nothing in flight may it hold more (one element larger
/// than the budget, alone), so memory stays within the budget plus one largest element.
struct Budget {
    limit: usize,
    usage: std::sync::Mutex<Usage>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct Usage {
    /// Held by the reader.
    held: usize,
    /// Passed on, not yet released by the writer.
    in_flight: usize,
    /// The most ever held and in flight together.
    peak: usize,
    /// The reader is waiting for room.
    waiting: bool,
    /// The writer is gone: nothing will be released any more.
    closed: bool,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            usage: std::sync::Mutex::default(),
            changed: std::sync::Condvar::new(),
        }
    }

    /// The reader is about to hold `n` bytes in all: waits until they fit.
    fn hold(&self, n: usize) {
        // A poisoned lock means the writer panicked; the import is failing anyway.
        let Ok(mut u) = self.usage.lock() else {
            return;
        };
        while !u.closed && u.in_flight > 0 && u.in_flight + n > self.limit {
            u.waiting = true;
            self.changed.notify_all();
            u = match self.changed.wait(u) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
        u.waiting = false;
        u.held = n;
        u.peak = u.peak.max(u.held + u.in_flight);
    }

    /// The reader passes `n` of the bytes it holds on to the writer.
    fn pass(&self, n: usize) {
        if let Ok(mut u) = self.usage.lock() {
            u.held = u.held.saturating_sub(n);
            u.in_flight += n;
            u.peak = u.peak.max(u.held + u.in_flight);
        }
    }

    /// The reader is done with a file: it holds nothing.
    fn drop_held(&self) {
        if let Ok(mut u) = self.usage.lock() {
            u.held = 0;
        }
    }

    /// The writer stored (or dropped) `n` bytes.
    fn release(&self, n: usize) {
        if let Ok(mut u) = self.usage.lock() {
            u.in_flight = u.in_flight.saturating_sub(n);
            self.changed.notify_all();
        }
    }

    /// The writer is gone: the reader never waits again (it stops at its next send).
    fn close(&self) {
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        u.closed = true;
        self.changed.notify_all();
    }
}

/// Largest index file (manifest, asset names) read into memory.
const SMALL_FILE_LIMIT: u64 = 64 << 20;

/// Opens export members for reading.
trait Members: Send {
    fn open(&mut self, entry: &Entry) -> io::Result<Box<dyn Read + '_>>;
}

struct ZipMembers {
    zip: ZipArchive<File>,
    total: Arc<AtomicU64>,
    opts: ImportOptions,
}

impl Members for ZipMembers {
    fn open(&mut self, entry: &Entry) -> io::Result<Box<dyn Read + '_>> {
        let index = entry
            .index
            .ok_or_else(|| io::Error::other("not a ZIP member"))?;
        let file = self.zip.by_index(index).map_err(zip_io)?;
        Ok(Box::new(Guarded::new(
            file,
            &entry.name,
            entry.compressed,
            self.total.clone(),
            &self.opts.limits,
        )))
    }
}

impl SmallFiles for ZipMembers {
    fn read_small(&mut self, entry: &Entry) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.open(entry)
            .ok()?
            .take(SMALL_FILE_LIMIT)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    }
}

struct DirMembers {
    root: PathBuf,
}

impl Members for DirMembers {
    fn open(&mut self, entry: &Entry) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.root.join(&entry.name))?))
    }
}

impl SmallFiles for DirMembers {
    fn read_small(&mut self, entry: &Entry) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        File::open(self.root.join(&entry.name))
            .ok()?
            .take(SMALL_FILE_LIMIT)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    }
}

fn zip_io(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Imports an export ZIP.
pub(super) fn import_zip(
    archive: &Archive,
    path: &Path,
    opts: &ImportOptions,
    cancel: &AtomicBool,
    mut report: FileReport,
) -> FileReport {
    let shown = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return report.fail(format!("{shown}: cannot open it: {e}")),
    };
    let zip = match ZipArchive::new(file) {
        Ok(z) => z,
        Err(e) => {
            return report.fail(format!(
                "{shown}: not a readable ZIP ({e}): the file is damaged or incomplete (still \
                 downloading?); download the export again"
            ));
        }
    };
    if zip.len() as u64 > opts.limits.max_entries {
        let e = LimitError::Entries {
            entries: zip.len() as u64,
            max_entries: opts.limits.max_entries,
        };
        return report.fail(format!("{shown}: {e}"));
    }
    let mut entries = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let Ok(data) = zip.by_index_data(i) else {
            continue;
        };
        if data.is_dir() || data.is_symlink() {
            continue;
        }
        let Ok(name) = data.name() else { continue };
        entries.push(Entry {
            name: name.into_owned(),
            index: Some(i),
            size: data.size(),
            compressed: data.compressed_size(),
        });
    }
    let mut members = ZipMembers {
        zip,
        total: Arc::new(AtomicU64::new(0)),
        opts: opts.clone(),
    };
    let layout = layout::detect(entries, &mut members);
    run(
        archive,
        &shown,
        layout,
        &mut members,
        opts,
        cancel,
        &mut report,
    );
    report
}

/// Imports an unpacked export folder.
pub(super) fn import_folder(
    archive: &Archive,
    path: &Path,
    opts: &ImportOptions,
    cancel: &AtomicBool,
    mut report: FileReport,
) -> FileReport {
    let shown = path.display().to_string();
    let mut entries = Vec::new();
    if let Err(e) = list_dir(path, "", 0, &mut entries) {
        return report.fail(format!("{shown}: cannot list the folder: {e}"));
    }
    let mut members = DirMembers {
        root: path.to_path_buf(),
    };
    let layout = layout::detect(entries, &mut members);
    run(
        archive,
        &shown,
        layout,
        &mut members,
        opts,
        cancel,
        &mut report,
    );
    report
}

/// Imports a JSON file: an array of conversations or one conversation object.
pub(super) fn import_json(
    archive: &Archive,
    path: &Path,
    opts: &ImportOptions,
    cancel: &AtomicBool,
    mut report: FileReport,
) -> FileReport {
    let shown = path.display().to_string();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return report.fail(format!("{shown}: not a file"));
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let entry = Entry {
        name: name.to_string_lossy().into_owned(),
        index: None,
        size,
        compressed: size,
    };
    let layout = Layout {
        conversations: vec![entry],
        ..Layout::default()
    };
    let mut members = DirMembers {
        root: dir.to_path_buf(),
    };
    run(
        archive,
        &shown,
        layout,
        &mut members,
        opts,
        cancel,
        &mut report,
    );
    report
}

/// Lists regular files under a folder (a few levels deep, symlinks not followed).
fn list_dir(root: &Path, rel: &str, depth: usize, out: &mut Vec<Entry>) -> io::Result<()> {
    if depth > 4 {
        return Ok(());
    }
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut items: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).collect();
    items.sort_by_key(|d| d.file_name());
    for item in items {
        let Ok(ft) = item.file_type() else { continue };
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let rel_name = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if ft.is_dir() {
            list_dir(root, &rel_name, depth + 1, out)?;
        } else if ft.is_file() {
            let size = item.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Entry {
                name: rel_name,
                index: None,
                size,
                compressed: size,
            });
        }
    }
    Ok(())
}

/// Messages from the reader thread.
enum Msg {
    /// An element of `size` bytes of JSON, parsed.
    Item {
        member: usize,
        size: usize,
        item: Ready,
    },
    MemberError {
        member: usize,
        message: String,
    },
    Warning(String),
}

fn run<M: Members + SmallFiles>(
    archive: &Archive,
    shown: &str,
    layout: Layout,
    members: &mut M,
    opts: &ImportOptions,
    cancel: &AtomicBool,
    report: &mut FileReport,
) {
    for name in &layout.unsafe_names {
        report.warnings.push(format!(
            "entry {name:?} has an unsafe name (absolute or with `..`); ignored"
        ));
    }
    if layout.conversations.is_empty() {
        report.error = Some(format!(
            "{shown}: no conversations.json or conversations-NNN.json in it: is this a ChatGPT \
             data export? (request one in ChatGPT: Settings → Data controls → Export data)"
        ));
        return;
    }
    store_assets(archive, &layout, members, cancel, report);
    if report.interrupted {
        return;
    }
    let total: u64 = layout.conversations.iter().map(|e| e.size).sum();
    let progress = Progress::start(opts.progress, shown, total);
    let read_bytes = AtomicU64::new(0);
    let budget = Budget::new(IN_FLIGHT_BYTES);
    let member_names: Vec<String> = layout
        .conversations
        .iter()
        .map(|e| e.name.clone())
        .collect();
    let max = opts.max_conversation_bytes;
    let entries = &layout.conversations;
    let mut group = Group::default();
    let mut archive_failed = false;
    stream_members(members, entries, &read_bytes, &budget, max, |msg| {
        if cancel.load(Ordering::Relaxed) {
            report.interrupted = true;
            return false;
        }
        match msg {
            Msg::Item { member, size, item } => {
                let go_on = consume(
                    archive,
                    &mut group,
                    &member_names[member],
                    size,
                    item,
                    report,
                );
                budget.release(size);
                if !go_on {
                    archive_failed = true;
                    return false;
                }
            }
            Msg::MemberError { member, message } => report.problems.push(Problem {
                location: member_names[member].clone(),
                conversation: None,
                message,
            }),
            Msg::Warning(w) => report.warnings.push(w),
        }
        progress.update(read_bytes.load(Ordering::Relaxed));
        true
    });
    // What was parsed before the end (or an interruption) is stored, unless the
    // archive itself failed (attachments it could not store do not stop this).
    if !archive_failed {
        group.store(archive, report);
    }
    progress.finish();
    if report.error.is_none() && !layout.missing.is_empty() {
        // What is there was imported; the file stays unrecorded so a complete copy
        // is imported when it comes.
        report.error = Some(layout::missing_shards_error(shown, &layout.missing));
    }
}

/// Largest group of conversations stored in one archive transaction, in bytes of JSON
/// and in conversations. The archive writes its log out at every transaction, so small
/// conversations are stored in groups; the group's bytes come on top of the in-flight
/// budget, so it stays small.
const GROUP_BYTES: usize = 2 << 20;
const GROUP_CONVERSATIONS: usize = 256;

/// Parsed conversations waiting to be stored together.
#[derive(Default)]
struct Group {
    convs: Vec<Prepared>,
    bytes: usize,
}

impl Group {
    /// Adds a conversation, storing the group first when it would grow too large.
    /// False when the archive failed (the import stops).
    fn add(&mut self, archive: &Archive, conv: Prepared, report: &mut FileReport) -> bool {
        let size = conv.len();
        if !self.convs.is_empty()
            && (self.bytes + size > GROUP_BYTES || self.convs.len() >= GROUP_CONVERSATIONS)
            && !self.store(archive, report)
        {
            return false;
        }
        self.bytes += size;
        self.convs.push(conv);
        true
    }

    /// Stores the group, counting each outcome; false (with the file's error set) when
    /// the archive failed.
    fn store(&mut self, archive: &Archive, report: &mut FileReport) -> bool {
        self.bytes = 0;
        let convs = std::mem::take(&mut self.convs);
        if convs.is_empty() {
            return true;
        }
        for outcome in archive.upsert_many(convs) {
            match outcome {
                Ok(Outcome::New) => report.new += 1,
                Ok(Outcome::Updated) => report.updated += 1,
                Ok(Outcome::Unchanged) => report.unchanged += 1,
                Err(e) => {
                    report.error = Some(format!(
                        "{}: the archive failed: {e}",
                        report.path.display()
                    ));
                    return false;
                }
            }
        }
        true
    }
}

/// Reads the conversations files on a thread of their own and hands what they hold to
/// `each` on this one, until `each` returns false. However this side ends (done,
/// stopped, or a panic), the reader is never left waiting for room that will not come.
fn stream_members<M: Members>(
    members: &mut M,
    entries: &[Entry],
    read_bytes: &AtomicU64,
    budget: &Budget,
    max_element: usize,
    mut each: impl FnMut(Msg) -> bool,
) {
    struct CloseOnDrop<'a>(&'a Budget);
    impl Drop for CloseOnDrop<'_> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        s.spawn(move || produce(members, entries, tx, read_bytes, budget, max_element));
        let _close = CloseOnDrop(budget);
        for msg in rx {
            if !each(msg) {
                break;
            }
        }
        // Dropping the receiver stops the reader at its next send.
    });
}

/// Reader thread: streams every conversations file and sends its elements.
fn produce<M: Members>(
    members: &mut M,
    entries: &[Entry],
    tx: mpsc::SyncSender<Msg>,
    read_bytes: &AtomicU64,
    budget: &Budget,
    max_element: usize,
) {
    let mut done_before = 0u64;
    for (i, entry) in entries.iter().enumerate() {
        let reader = match members.open(entry) {
            Ok(r) => r,
            Err(e) => {
                let message = format!("cannot read it: {e}; download the export again");
                if tx.send(Msg::MemberError { member: i, message }).is_err() {
                    return;
                }
                continue;
            }
        };
        let counted = Counted {
            inner: reader,
            base: done_before,
            n: 0,
            shared: read_bytes,
        };
        let mut ar = ArrayReader::new(BufReader::with_capacity(256 * 1024, counted), max_element)
            .allow_single_object()
            .with_gate(|n| budget.hold(n));
        loop {
            match ar.next() {
                Ok(Some(item)) => {
                    let size = item_size(&item);
                    budget.pass(size);
                    // Parsed here, beside the inflating and splitting, so the other
                    // thread only stores (it was the busy one).
                    let item = Ready::from(item);
                    if tx
                        .send(Msg::Item {
                            member: i,
                            size,
                            item,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if let Some(t) = ar.trailing() {
                        let w = format!("{}: {t}", entry.name);
                        if tx.send(Msg::Warning(w)).is_err() {
                            return;
                        }
                    }
                    break;
                }
                Err(e) => {
                    let message = describe_stream_error(&e);
                    if tx.send(Msg::MemberError { member: i, message }).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        done_before += ar.offset();
        drop(ar);
        budget.drop_held();
    }
}

fn item_size(item: &Item) -> usize {
    match item {
        Item::Element { bytes, .. } => bytes.len(),
        Item::Malformed { .. } => 0,
    }
}

fn describe_stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Io(io) => match LimitError::find(io) {
            Some(limit) => limit.to_string(),
            None => format!(
                "reading stopped: {io}; the file is damaged or incomplete: download the export again"
            ),
        },
        StreamError::Empty => "the file is empty: download the export again".into(),
        StreamError::NotAnArray(what) => format!(
            "expected a JSON array of conversations (or one conversation object), found {what}"
        ),
    }
}

/// Conversations of this size or more are compressed by the storing thread: with
/// large conversations the reader (inflate, split, validate, parse) is the busy thread
/// and lz4 was the largest part of its work; small ones keep it off the storing thread,
/// which is busy with sled's per-transaction work when there are many.
const WRITER_PACKS: usize = 256 * 1024;

/// An element as the reader thread hands it over: parsed, or why not.
#[derive(Debug)]
enum Ready {
    /// A conversation ready to store; `repaired_utf8` as [`RawConversation::repaired_utf8`].
    Conversation {
        index: usize,
        // Boxed: a prepared conversation's summary would make every message large.
        conv: Box<Prepared>,
        repaired_utf8: bool,
    },
    /// An element that is not a conversation; `head` is its start, to describe it.
    Invalid {
        index: usize,
        offset: u64,
        head: Vec<u8>,
        error: ModelError,
    },
    /// An element that could not be delimited ([`Item::Malformed`]).
    Malformed {
        index: usize,
        offset: u64,
        reason: String,
        hint: Option<String>,
        resumed_at: Option<u64>,
    },
}

impl From<Item> for Ready {
    fn from(item: Item) -> Self {
        match item {
            Item::Element {
                index,
                offset,
                bytes,
            } => {
                // Kept only for a failure's message (a copy for every element cost more
                // than the failures it describes).
                let head = bytes[..bytes.len().min(4096)].to_vec();
                match RawConversation::from_bytes(bytes) {
                    Ok(conv) => Ready::Conversation {
                        index,
                        repaired_utf8: conv.repaired_utf8(),
                        conv: Box::new(if conv.bytes().len() >= WRITER_PACKS {
                            Prepared::unpacked(conv)
                        } else {
                            Prepared::from(conv)
                        }),
                    },
                    Err(error) => Ready::Invalid {
                        index,
                        offset,
                        head,
                        error,
                    },
                }
            }
            Item::Malformed {
                index,
                offset,
                reason,
                hint,
                resumed_at,
            } => Ready::Malformed {
                index,
                offset,
                reason,
                hint,
                resumed_at,
            },
        }
    }
}

/// Adds a parsed element to the group to store, or reports why it cannot be; false
/// stops the import (the archive failed).
fn consume(
    archive: &Archive,
    group: &mut Group,
    member: &str,
    size: usize,
    item: Ready,
    report: &mut FileReport,
) -> bool {
    match item {
        Ready::Conversation {
            index,
            conv,
            repaired_utf8,
        } => {
            report.bytes += size as u64;
            if repaired_utf8 {
                report.warnings.push(format!(
                    "{member}, conversation #{index} (id {:?}): contained bytes that are \
                     not UTF-8; they were replaced with U+FFFD",
                    conv.id()
                ));
            }
            if !group.add(archive, *conv, report) {
                return false;
            }
        }
        Ready::Invalid {
            index,
            offset,
            head,
            error,
        } => {
            report.bytes += size as u64;
            match error {
                ModelError::MissingId if is_list_page(&head) => {
                    report.warnings.push(format!(
                        "{member} is a conversation list page (GET /backend-api/conversations): it \
                         holds titles but no messages, so there is nothing to import from it"
                    ));
                }
                e => report.problems.push(Problem {
                    location: format!("{member}, conversation #{index} (at byte {offset})"),
                    conversation: stream::hint_of(&head),
                    message: advice(&e),
                }),
            }
        }
        Ready::Malformed {
            index,
            offset,
            reason,
            hint,
            resumed_at,
        } => {
            let next = match resumed_at {
                Some(at) => format!("reading resumed at byte {at} with the next conversation"),
                None => "nothing after it could be read".into(),
            };
            report.problems.push(Problem {
                location: format!("{member}, conversation #{index} (at byte {offset})"),
                conversation: hint,
                message: format!(
                    "malformed JSON: {reason}; skipped, {next}. Download the export again to \
                     recover it"
                ),
            });
        }
    }
    true
}

/// Whether an object starts like a `/backend-api/conversations` page (`{"items":[…`).
fn is_list_page(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start().trim_start_matches('{').trim_start();
    t.starts_with("\"items\"")
        || (text.contains("\"items\"") && text.contains("\"has_missing_conversations\""))
}

fn advice(e: &ModelError) -> String {
    match e {
        ModelError::Syntax(inner) => {
            format!("not valid JSON ({inner}); skipped. Download the export again to recover it")
        }
        ModelError::MissingMapping { .. } => {
            format!("{e}; skipped (the export holds no messages for it)")
        }
        other => format!("{other}; skipped"),
    }
}

/// Attachment records written per transaction (each one writes sled's log out).
const FILE_GROUP: usize = 256;

/// Stores the export's attachments, skipping ones already stored with the same size.
/// The bytes go in one by one; their records are written in groups.
///
/// An attachment the export cannot deliver (a damaged member, a limit) is a warning:
/// importing the same file again would not help. One the archive fails to store (disk
/// full, permissions) fails the file, so it is not recorded as imported and importing
/// it again, once the cause is fixed, stores the rest.
fn store_assets<M: Members>(
    archive: &Archive,
    layout: &Layout,
    members: &mut M,
    cancel: &AtomicBool,
    report: &mut FileReport,
) {
    let mut assets: Vec<&layout::Asset> = layout.assets.iter().collect();
    assets.sort_by_key(|a| a.entry.index);
    let mut unstored = Unstored::default();
    let mut staged = Staged::default();
    for asset in assets {
        if cancel.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        if let Ok(Some(rec)) = archive.file(&asset.file_id)
            && rec.size == asset.entry.size
            && archive.holds_file(&rec)
        {
            continue;
        }
        let read_error = Cell::new(None);
        let stored = match members.open(&asset.entry) {
            Err(e) => {
                read_error.set(Some(describe_read_error(&e)));
                None
            }
            Ok(r) => {
                let r = NoteReadError {
                    inner: r,
                    note: &read_error,
                };
                let name = asset.name.as_deref();
                let mime = asset.mime_type.as_deref();
                Some(archive.stage_file(&asset.file_id, name, mime, r))
            }
        };
        let why = match (stored, read_error.take()) {
            (Some(Ok(file)), _) => {
                staged.entries.push(&asset.entry.name);
                staged.files.push(file);
                if staged.files.len() >= FILE_GROUP {
                    commit_staged(archive, &mut staged, report, &mut unstored);
                }
                continue;
            }
            (_, Some(read)) => read,
            (Some(Err(e)), None) => unstored.failed(e.to_string()),
            (None, None) => "cannot read it".to_owned(),
        };
        report.warnings.push(format!(
            "attachment {} ({}): not stored: {why}",
            asset.entry.name, asset.file_id
        ));
    }
    // Also when interrupted: the bytes stored so far keep their records.
    commit_staged(archive, &mut staged, report, &mut unstored);
    if let Some(first) = unstored.first {
        report.error.get_or_insert_with(|| {
            format!(
                "{}: {} attachment(s) could not be stored in the archive ({first}); \
                 the conversations were imported, but the file is not recorded as imported: \
                 fix the cause (disk full? permissions?) and import it again",
                report.path.display(),
                unstored.count
            )
        });
    }
}

/// Attachments the archive failed to store: how many, and the first error.
#[derive(Default)]
struct Unstored {
    count: u64,
    first: Option<String>,
}

impl Unstored {
    /// Counts a failure and returns its message.
    fn failed(&mut self, message: String) -> String {
        self.count += 1;
        self.first.get_or_insert_with(|| message.clone());
        message
    }
}

/// Attachments whose bytes are stored and whose records wait to be written, with the
/// export members they came from.
#[derive(Default)]
struct Staged<'a> {
    entries: Vec<&'a str>,
    files: Vec<StagedFile>,
}

/// Writes the staged attachment records: in one transaction, or one by one when the
/// group fails, so only a record that cannot be written fails.
fn commit_staged(
    archive: &Archive,
    staged: &mut Staged<'_>,
    report: &mut FileReport,
    unstored: &mut Unstored,
) {
    let entries = std::mem::take(&mut staged.entries);
    let files = std::mem::take(&mut staged.files);
    if files.is_empty() {
        return;
    }
    if archive.commit_files(&files).is_ok() {
        report.attachments += files.len() as u64;
        return;
    }
    for (entry, file) in entries.into_iter().zip(files) {
        match archive.commit_files(std::slice::from_ref(&file)) {
            Ok(()) => report.attachments += 1,
            Err(e) => {
                let why = unstored.failed(e.to_string());
                report.warnings.push(format!(
                    "attachment {entry} ({}): not stored: {why}",
                    file.file_id()
                ));
            }
        }
    }
}

fn describe_read_error(e: &io::Error) -> String {
    LimitError::find(e).map_or_else(|| e.to_string(), ToString::to_string)
}

/// Passes reads through, noting the first failure: it tells an export member that
/// cannot be read from an archive that cannot store what was read.
struct NoteReadError<'a, R> {
    inner: R,
    note: &'a Cell<Option<String>>,
}

impl<R: Read> Read for NoteReadError<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if let Err(e) = &r
            && e.kind() != io::ErrorKind::Interrupted
        {
            let first = self.note.take().unwrap_or_else(|| describe_read_error(e));
            self.note.set(Some(first));
        }
        r
    }
}

/// Counts bytes read for progress.
struct Counted<'a, R> {
    inner: R,
    base: u64,
    n: u64,
    shared: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        self.shared.store(self.base + self.n, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Budget {
        /// Waits until the reader waits for room.
        fn until_reader_waits(&self) {
            let mut u = self.usage.lock().expect("lock");
            while !u.waiting {
                u = self.changed.wait(u).expect("wait");
            }
        }

        fn peak(&self) -> usize {
            self.usage.lock().expect("lock").peak
        }
    }

    /// A `conversations.json` of `n` conversations of about `size` bytes each, in a
    /// fresh folder; returns the folder, its entry and the largest element's size.
    fn big_export(n: usize, size: usize) -> (tempfile::TempDir, Entry, usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pad = "x".repeat(size);
        let convs: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":"big-{i}","mapping":{{}},"pad":"{pad}"}}"#))
            .collect();
        let largest = convs.iter().map(String::len).max().expect("convs");
        let json = format!("[{}]", convs.join(","));
        std::fs::write(dir.path().join("conversations.json"), &json).expect("write");
        let entry = Entry {
            name: "conversations.json".into(),
            index: None,
            size: json.len() as u64,
            compressed: json.len() as u64,
        };
        (dir, entry, largest)
    }

    #[test]
    fn the_reader_holds_no_more_than_the_budget_plus_one_largest_element() {
        // Four conversations of about 3 MiB under a 4 MiB cap, and a 1 MiB budget: while
        // the writer holds one, the reader must not read the next one into memory.
        let (dir, entry, largest) = big_export(4, 3 << 20);
        let mut members = DirMembers {
            root: dir.path().to_path_buf(),
        };
        let limit = 1 << 20;
        let budget = Budget::new(limit);
        let read_bytes = AtomicU64::new(0);
        let (mut most_unstored, mut released, mut elements) = (0u64, 0u64, 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                stream_members(
                    &mut members,
                    &[entry],
                    &read_bytes,
                    &budget,
                    4 << 20,
                    |msg| {
                        let Msg::Item { item, size, .. } = msg else {
                            panic!("unexpected message");
                        };
                        assert!(size > 3 << 20, "{item:?}");
                        elements += 1;
                        // A slow writer: the reader runs until it must wait (each element
                        // but the last is followed by one that does not fit), and what it
                        // took from the file beyond what was stored is in memory.
                        if elements < 4 {
                            budget.until_reader_waits();
                        }
                        let unstored = read_bytes.load(Ordering::SeqCst) - released;
                        most_unstored = most_unstored.max(unstored);
                        released += size as u64;
                        budget.release(size);
                        true
                    },
                );
            });
        });
        assert_eq!(elements, 4);
        // The reader's buffer (256 KiB) is the only slack.
        let bound = (limit + largest + (256 << 10)) as u64;
        assert!(
            most_unstored <= bound,
            "{most_unstored} bytes read but not stored, more than {bound}"
        );
        assert!(
            budget.peak() <= limit + largest + (256 << 10),
            "{}",
            budget.peak()
        );
    }

    #[test]
    fn a_writer_that_panics_never_leaves_the_reader_waiting() {
        let (dir, entry, _) = big_export(4, 64 << 10);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut members = DirMembers {
                root: dir.path().to_path_buf(),
            };
            let budget = Budget::new(1024);
            let read_bytes = AtomicU64::new(0);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stream_members(
                    &mut members,
                    &[entry],
                    &read_bytes,
                    &budget,
                    1 << 20,
                    |_| {
                        // The reader is waiting for this element to be released: a bug here
                        // must fail the import, not hang it.
                        budget.until_reader_waits();
                        panic!("a bug in the writer");
                    },
                );
            }));
            let _ = tx.send(outcome.is_err());
        });
        let panicked = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the import ends (a reader left waiting would hang it)");
        assert!(panicked);
    }
}
