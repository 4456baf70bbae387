//! Importing exports: ZIPs, unpacked folders and JSON files → raw conversations →
//! [`Archive::upsert`]. Streaming throughout: one conversation in memory at a time.
//!
//! A file whose digest was imported before is skipped with no writes. A file is
//! recorded as imported only when all of it is stored and durable: its conversations
//! and attachments written and flushed (a store that failed, an interruption or a
//! crash leaves it unrecorded, so importing it again completes it). Problems with one
//! conversation (bad input) are reported and the rest of the file still imports.

pub mod guard;
pub mod layout;
mod pipeline;
pub mod progress;
pub mod stream;

use crate::archive::schema::ImportRecord;
use crate::archive::{Archive, ArchiveError};
use crate::config::ImportConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use progress::ProgressMode;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// ZIP limits.
    pub limits: ImportConfig,
    /// Import even when the file's digest was imported before.
    pub force: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// Largest single conversation accepted, in bytes.
    pub max_conversation_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            limits: ImportConfig::default(),
            force: false,
            progress: ProgressMode::Off,
            max_conversation_bytes: 1 << 30,
        }
    }
}

/// One conversation that could not be imported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Where: the member and the conversation's position.
    pub location: String,
    /// The conversation's id or title, when it could be read.
    pub conversation: Option<String>,
    /// What went wrong and what to do.
    pub message: String,
}

/// What importing one path did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The path given.
    pub path: PathBuf,
    /// `zip`, `folder` or `json`.
    pub kind: String,
    /// SHA-256 of the file (not for folders).
    pub digest: Option<String>,
    /// Set when the same file was imported before and so was skipped.
    pub already_imported: Option<ImportRecord>,
    /// New conversations.
    pub new: u64,
    /// Updated conversations.
    pub updated: u64,
    /// Unchanged conversations.
    pub unchanged: u64,
    /// Attachments stored (new bytes or new file ids).
    pub attachments: u64,
    /// Conversations that failed.
    pub problems: Vec<Problem>,
    /// Things worth knowing that did not fail anything.
    pub warnings: Vec<String>,
    /// Why the file failed, if it did: as a whole, or in part because the archive
    /// could not store some of it. A file with an error is not recorded as imported.
    pub error: Option<String>,
    /// Conversation JSON bytes read.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Stopped early by a shutdown; re-importing completes it.
    pub interrupted: bool,
}

impl FileReport {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.error.is_some() || !self.problems.is_empty()
    }

    /// Whether all of it was stored: no error and not interrupted (only such a file
    /// is recorded as imported, and only such a file may be moved away).
    pub fn stored_completely(&self) -> bool {
        self.error.is_none() && !self.interrupted
    }

    fn fail(mut self, message: String) -> Self {
        self.error = Some(message);
        self
    }

    /// The report of an import that stopped on a panic (`what` says where).
    pub fn crashed(path: &Path, what: &str) -> Self {
        let shown = path.display();
        tracing::error!("{shown}: the import stopped on an internal error: {what}");
        Self {
            path: path.to_path_buf(),
            error: Some(format!(
                "{shown}: the import stopped on an internal error ({what}); this is a bug, \
                 please report it. What was stored before it is kept, and the file is not \
                 recorded as imported"
            )),
            ..Self::default()
        }
    }
}

/// What importing several paths did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// One report per path.
    pub files: Vec<FileReport>,
}

impl ImportReport {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.files.iter().any(FileReport::failed)
    }

    /// The report of imports that stopped on a panic: every path failed.
    pub fn crashed(paths: &[PathBuf], what: &str) -> Self {
        Self {
            files: paths.iter().map(|p| FileReport::crashed(p, what)).collect(),
        }
    }
}

/// Imports every path in order; a failing path never stops the others.
pub fn import_paths(
    archive: &Archive,
    paths: &[PathBuf],
    opts: &ImportOptions,
    cancel: &AtomicBool,
) -> ImportReport {
    import_each(paths, cancel, |p| import_path(archive, p, opts, cancel))
}

/// Runs `import_one` on each path in order. A panic is a failure of that path (never
/// an empty report that reads as success), and the next path still imports.
fn import_each(
    paths: &[PathBuf],
    cancel: &AtomicBool,
    mut import_one: impl FnMut(&Path) -> FileReport,
) -> ImportReport {
    let mut report = ImportReport::default();
    for p in paths {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        // Unwind safety: what a panic leaves behind is the archive (whose writes are
        // atomic one by one) and this file's unrecorded import, which a retry redoes.
        let file = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| import_one(p)))
            .unwrap_or_else(|panic| FileReport::crashed(p, &panic_message(panic.as_ref())));
        report.files.push(file);
    }
    report
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Imports one ZIP, folder or JSON file.
pub fn import_path(
    archive: &Archive,
    path: &Path,
    opts: &ImportOptions,
    cancel: &AtomicBool,
) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport {
        path: path.to_path_buf(),
        ..FileReport::default()
    };
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return report.fail(format!("{shown}: cannot read it: {e}")),
    };
    let mut report = if meta.is_dir() {
        report.kind = "folder".into();
        pipeline::import_folder(archive, path, opts, cancel, report)
    } else {
        if meta.len() == 0 {
            report.kind = "json".into();
            return report.fail(format!(
                "{shown}: the file is empty (an interrupted download?): download the export again"
            ));
        }
        let is_zip = match sniff_zip(path) {
            Ok(z) => z,
            Err(e) => return report.fail(format!("{shown}: cannot read it: {e}")),
        };
        report.kind = if is_zip { "zip" } else { "json" }.into();
        let digest = match cached_digest(archive, path, &meta) {
            Ok(d) => d,
            Err(e) => return report.fail(format!("{shown}: cannot read it: {e}")),
        };
        report.digest = Some(digest.clone());
        if !opts.force {
            match archive.import_record(&digest) {
                Ok(Some(prev)) => {
                    tracing::info!(
                        "{shown}: already imported (same contents as {} on {}); skipped",
                        prev.path,
                        crate::model::time::secs_to_rfc3339(prev.at).unwrap_or_default()
                    );
                    report.already_imported = Some(prev);
                    report.seconds = started.elapsed().as_secs_f64();
                    return report;
                }
                Ok(None) => {}
                Err(e) => return report.fail(format!("{shown}: {e}")),
            }
        }
        if is_zip {
            pipeline::import_zip(archive, path, opts, cancel, report)
        } else {
            pipeline::import_json(archive, path, opts, cancel, report)
        }
    };
    if let Err(e) = finish(archive, &mut report) {
        report.error.get_or_insert_with(|| format!("{shown}: {e}"));
    }
    report.seconds = started.elapsed().as_secs_f64();
    log_report(&report);
    report
}

/// Makes what was stored durable (attachment folders synced, then the database
/// flushed), then records the file as imported (only when all of it was stored), then
/// flushes the record.
fn finish(archive: &Archive, report: &mut FileReport) -> Result<(), ArchiveError> {
    archive.sync_blobs()?;
    archive.flush()?;
    if !report.stored_completely() {
        return Ok(());
    }
    if let Some(d) = &report.digest {
        let now = crate::model::time::now_secs();
        archive.record_import(
            d,
            &ImportRecord {
                path: report.path.display().to_string(),
                at: now,
                new: report.new,
                updated: report.updated,
                unchanged: report.unchanged,
                failed: report.problems.len() as u64,
            },
        )?;
        archive.flush()?;
    }
    Ok(())
}

fn log_report(r: &FileReport) {
    let mb = r.bytes as f64 / 1e6;
    let rate = if r.seconds > 0.0 { mb / r.seconds } else { 0.0 };
    for p in &r.problems {
        match &p.conversation {
            Some(c) => tracing::warn!("{}: {} ({c}): {}", r.path.display(), p.location, p.message),
            None => tracing::warn!("{}: {}: {}", r.path.display(), p.location, p.message),
        }
    }
    for w in &r.warnings {
        tracing::warn!("{}: {w}", r.path.display());
    }
    if let Some(e) = &r.error {
        tracing::error!("{e}");
    }
    if r.already_imported.is_none() {
        tracing::info!(
            "{} {}: {} new, {} updated, {} unchanged, {} failed, {} attachments ({mb:.1} MB in {:.1} s, {rate:.0} MB/s)",
            if r.interrupted {
                "interrupted import of"
            } else {
                "imported"
            },
            r.path.display(),
            r.new,
            r.updated,
            r.unchanged,
            r.problems.len(),
            r.attachments,
            r.seconds,
        );
    }
}

/// Whether a file starts like a ZIP (local header or an empty archive's end record).
fn sniff_zip(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 4];
    let mut f = File::open(path)?;
    let n = f.read(&mut head)?;
    Ok(n == 4 && (head == *b"PK\x03\x04" || head == *b"PK\x05\x06" || head == *b"PK\x07\x08"))
}

/// What identified a file's contents last time: when its path, size, modification
/// time and inode are unchanged, its digest is too, and hashing it again is skipped.
#[derive(Serialize, Deserialize, PartialEq)]
struct DigestCacheEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    digest: String,
}

fn stat_key(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    (meta.len(), mtime_ns, inode)
}

/// The file's SHA-256, from the stat cache when the file is unchanged since last time.
fn cached_digest(archive: &Archive, path: &Path, meta: &std::fs::Metadata) -> io::Result<String> {
    let key = format!(
        "digest/{}",
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
    );
    let (size, mtime_ns, inode) = stat_key(meta);
    if let Ok(Some(c)) = archive.state::<DigestCacheEntry>(&key)
        && c.size == size
        && c.mtime_ns == mtime_ns
        && c.inode == inode
    {
        return Ok(c.digest);
    }
    let digest = file_digest(path)?;
    let entry = DigestCacheEntry {
        size,
        mtime_ns,
        inode,
        digest: digest.clone(),
    };
    if let Err(e) = archive.set_state(&key, &entry) {
        tracing::debug!("digest cache not updated: {e}");
    }
    Ok(digest)
}

/// SHA-256 of a file, hex.
pub fn file_digest(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(crate::util::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_import_is_a_failure_of_that_file_and_the_next_still_imports() {
        let paths = [PathBuf::from("/dl/boom.zip"), PathBuf::from("/dl/fine.zip")];
        let report = import_each(&paths, &AtomicBool::new(false), |p| {
            if p.ends_with("boom.zip") {
                panic!("index out of bounds in a test");
            }
            FileReport {
                path: p.to_path_buf(),
                new: 3,
                ..FileReport::default()
            }
        });
        assert_eq!(report.files.len(), 2);
        let boom = &report.files[0];
        assert_eq!(boom.path, paths[0]);
        let e = boom.error.as_deref().expect("an error");
        assert!(
            e.contains("/dl/boom.zip") && e.contains("index out of bounds in a test"),
            "{e}"
        );
        assert!(e.contains("not recorded as imported"), "{e}");
        assert!(boom.failed() && !boom.stored_completely());
        assert!(report.failed());
        assert_eq!(report.files[1].new, 3);
        assert!(report.files[1].stored_completely());
    }

    #[test]
    fn a_crashed_import_fails_every_path() {
        let paths = [PathBuf::from("a.zip"), PathBuf::from("b.json")];
        let r = ImportReport::crashed(&paths, "task 7 panicked");
        assert_eq!(r.files.len(), 2);
        assert!(r.files.iter().all(|f| f.failed() && !f.stored_completely()));
        assert!(r.failed());
    }
}
