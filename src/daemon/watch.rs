//! The folder watcher: imports ChatGPT export ZIPs and `conversations*.json` files
//! that appear in the watched folders (create, write or rename), once they are
//! complete.
//!
//! Browsers download under a temporary name (`.crdownload`, `.part`…) and rename at
//! the end; Firefox even creates an empty file with the final name first. So only
//! final names are candidates, and a candidate is imported only when its size has
//! stayed the same for the settle period and, for a ZIP, its central directory reads.
//! A ZIP that does not open yet is retried with backoff while it grows, then given up
//! on with one log line until the file changes again. A scan at start and the periodic
//! `rescan` job catch files that arrived while the daemon was stopped or events were
//! lost.
//! Files are never modified or deleted (`[watch] after_import = "move"` moves them).

use super::Daemon;
use crate::config::AfterImport;
use crate::ingest::{FileReport, layout};
use notify::{RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Suffixes browsers use while downloading.
const PARTIAL: &[&str] = &[".crdownload", ".part", ".download", ".tmp", ".partial"];
/// How many times a complete-looking ZIP that does not open is retried.
const MAX_ZIP_ATTEMPTS: u32 = 6;

/// Whether a file name is one the watcher imports: a final `*.zip` or
/// `conversations*.json`, not a partial download or a dotfile.
pub fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    if name.starts_with('.') || PARTIAL.iter().any(|s| lower.ends_with(s)) {
        return false;
    }
    lower.ends_with(".zip") || (lower.starts_with("conversations") && lower.ends_with(".json"))
}

/// A file's identity for "has it changed": size and modification time.
type Stamp = (u64, Option<SystemTime>);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file().then(|| (m.len(), m.modified().ok()))
}

struct Pending {
    last: Option<Stamp>,
    stable_since: Instant,
    next_check: Instant,
    zip_attempts: u32,
}

enum Verdict {
    /// Not complete yet: look again at this time.
    Later(Instant),
    /// Complete: import it.
    Ready,
    /// Gone, or given up on.
    Drop,
}

struct Watcher {
    daemon: Arc<Daemon>,
    dirs: Vec<PathBuf>,
    settle: Duration,
    pending: HashMap<PathBuf, Pending>,
    /// Files already handled (imported, skipped or not exports), by their stamp.
    done: HashMap<PathBuf, Stamp>,
}

/// Watches `dirs` until the daemon shuts down.
pub async fn run(daemon: Arc<Daemon>, dirs: Vec<PathBuf>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    // notify's own watcher, not notify-debouncer-full: the debouncer's thread wakes
    // every quarter of its timeout forever, and the settle logic below already waits
    // out bursts of events. A rename's paths include the final name, which is all the
    // decisions here look at.
    let watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) => {
                for p in event.paths {
                    let _ = tx.send(p);
                }
            }
            Err(e) => tracing::warn!("folder watcher: {e}"),
        });
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!("cannot start the folder watcher ({e}); relying on periodic rescans");
            None
        }
    };
    // Folders without an OS watch (missing at start, or refused): the rescan tries again.
    let mut unwatched = Vec::new();
    for dir in &dirs {
        if !dir.is_dir() {
            tracing::info!(
                "{} does not exist yet; it is watched once it is created",
                dir.display()
            );
            unwatched.push(dir.clone());
            continue;
        }
        match watcher
            .as_mut()
            .map(|w| w.watch(dir, RecursiveMode::NonRecursive))
        {
            Some(Ok(())) => tracing::debug!("watching {}", dir.display()),
            Some(Err(e)) => {
                tracing::warn!(
                    "cannot watch {} ({e}); it is rescanned every few minutes instead",
                    dir.display()
                );
                unwatched.push(dir.clone());
            }
            None => {}
        }
    }
    let cfg = &daemon.ctx.config.watch;
    let mut w = Watcher {
        settle: Duration::from_secs_f64(cfg.settle_secs),
        dirs,
        daemon: daemon.clone(),
        pending: HashMap::new(),
        done: HashMap::new(),
    };
    w.scan();
    loop {
        let next_check = w.pending.values().map(|p| p.next_check).min();
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            Some(path) = rx.recv() => w.saw(path),
            _ = async {
                match next_check {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending::<()>().await,
                }
            } => w.check_due().await,
            // The `rescan` job (see `jobs`), every `[watch] rescan_secs`.
            _ = daemon.jobs.rescan.notified() => {
                if let Some(os) = watcher.as_mut() {
                    watch_created(os, &mut unwatched);
                }
                w.scan();
            }
        }
    }
    drop(watcher);
}

/// Starts OS watches on the folders of `unwatched` that exist now (a Downloads folder
/// created after the daemon started), keeping the others for the next rescan.
fn watch_created(os: &mut notify::RecommendedWatcher, unwatched: &mut Vec<PathBuf>) {
    unwatched.retain(|dir| {
        if !dir.is_dir() {
            return true;
        }
        match os.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::info!("now watching {}", dir.display());
                false
            }
            Err(e) => {
                tracing::debug!("still cannot watch {}: {e}", dir.display());
                true
            }
        }
    });
}

impl Watcher {
    /// Adds every candidate in the watched folders not already handled.
    fn scan(&mut self) {
        for dir in self.dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if is_candidate(&p) && !self.pending.contains_key(&p) {
                    let s = stamp(&p);
                    if s.is_some() && self.done.get(&p) != s.as_ref() {
                        self.add(p);
                    }
                }
            }
        }
    }

    /// An event named this path.
    fn saw(&mut self, path: PathBuf) {
        if !is_candidate(&path) || !self.dirs.iter().any(|d| path.parent() == Some(d.as_path())) {
            return;
        }
        let s = stamp(&path);
        if s.is_none() || self.done.get(&path) == s.as_ref() {
            return;
        }
        // A changed file re-arms: its wait starts over.
        self.add(path);
    }

    fn add(&mut self, path: PathBuf) {
        tracing::debug!("candidate export {}", path.display());
        let now = Instant::now();
        self.pending.insert(
            path,
            Pending {
                last: None,
                stable_since: now,
                next_check: now,
                zip_attempts: 0,
            },
        );
    }

    async fn check_due(&mut self) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_check <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for path in due {
            let verdict = self.judge(&path);
            match verdict {
                Verdict::Later(t) => {
                    if let Some(p) = self.pending.get_mut(&path) {
                        p.next_check = t;
                    }
                }
                Verdict::Drop => {
                    if let Some(s) = stamp(&path) {
                        self.done.insert(path.clone(), s);
                    }
                    self.pending.remove(&path);
                }
                Verdict::Ready => {
                    self.pending.remove(&path);
                    self.handle(path).await;
                }
            }
        }
    }

    /// Decides whether a candidate is complete: its size and modification time are the
    /// same as at the previous look and it was last written at least the settle period
    /// ago (by its mtime, so a file finished before its final rename, or moved in
    /// already complete, does not wait longer than needed).
    fn judge(&mut self, path: &Path) -> Verdict {
        let now = Instant::now();
        let settle = self.settle;
        let Some(p) = self.pending.get_mut(path) else {
            return Verdict::Drop;
        };
        let Some(s) = stamp(path) else {
            return Verdict::Drop;
        };
        let quiet_for =
            s.1.and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
        if p.last != Some(s) {
            p.last = Some(s);
            p.stable_since = now;
            let wait = settle
                .saturating_sub(quiet_for)
                .max(Duration::from_millis(100));
            return Verdict::Later(now + wait);
        }
        let observed = now.saturating_duration_since(p.stable_since);
        if quiet_for < settle && observed < settle {
            return Verdict::Later(
                now + (settle - quiet_for.max(observed)).max(Duration::from_millis(50)),
            );
        }
        if s.0 == 0 {
            // Firefox's empty placeholder: the data arrives by a rename over it.
            return Verdict::Later(now + settle * 4);
        }
        let is_zip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip
            && let Err(e) = std::fs::File::open(path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    zip::ZipArchive::new(f)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
        {
            p.zip_attempts += 1;
            if p.zip_attempts >= MAX_ZIP_ATTEMPTS {
                tracing::warn!(
                    "gave up waiting for {} to become a readable ZIP ({e}); it is retried if the file changes",
                    path.display()
                );
                return Verdict::Drop;
            }
            let backoff = crate::util::backoff(
                settle.max(Duration::from_secs(1)),
                p.zip_attempts + 1,
                Duration::MAX,
            );
            tracing::debug!(
                "{} is not a readable ZIP yet ({e}); checking again in {} s",
                path.display(),
                backoff.as_secs()
            );
            return Verdict::Later(now + backoff);
        }
        Verdict::Ready
    }

    /// Imports a complete candidate unless it was imported before or is not an export.
    async fn handle(&mut self, path: PathBuf) {
        let Some(s) = stamp(&path) else { return };
        let archive = self.daemon.ctx.archive.clone();
        let p2 = path.clone();
        let check =
            crate::util::blocking("checking a new export", move || preflight(&archive, &p2)).await;
        match check {
            Ok(Preflight::Import) => {
                tracing::info!("new export in the watched folder: {}", path.display());
                let report = self.daemon.import(vec![path.clone()]).await;
                // Only a file stored completely (and so recorded as imported) may move.
                let stored = !report.files.is_empty()
                    && report.files.iter().all(FileReport::stored_completely);
                if self.daemon.ctx.config.watch.after_import == AfterImport::Move {
                    if stored {
                        self.move_away(&path);
                    } else {
                        tracing::warn!(
                            "{} is left where it is: its import did not complete (see `convos status`)",
                            path.display()
                        );
                    }
                }
            }
            Ok(Preflight::AlreadyImported) => {
                tracing::debug!("{} was imported before; skipped", path.display())
            }
            Ok(Preflight::NotAnExport) => {
                tracing::debug!("{} is not a ChatGPT export; ignored", path.display())
            }
            Ok(Preflight::Unreadable(e)) => tracing::warn!("cannot read {}: {e}", path.display()),
            Err(_) => {} // logged by `blocking`
        }
        self.done.insert(path, s);
    }

    fn move_away(&self, path: &Path) {
        let Some(dir) = path.parent() else { return };
        let target_dir = self
            .daemon
            .ctx
            .config
            .watch
            .processed_dir
            .as_ref()
            .map(|d| crate::config::expand_tilde(d, self.daemon.ctx.platform.home.as_deref()))
            .unwrap_or_else(|| dir.join("convos-imported"));
        let Some(name) = path.file_name() else { return };
        let mut dest = target_dir.join(name);
        let mut n = 2;
        while dest.exists() {
            dest = target_dir.join(format!("{} ({n})", name.to_string_lossy()));
            n += 1;
        }
        match std::fs::create_dir_all(&target_dir).and_then(|_| std::fs::rename(path, &dest)) {
            Ok(()) => tracing::info!("moved {} to {}", path.display(), dest.display()),
            Err(e) => tracing::warn!(
                "could not move {} to {}: {e}",
                path.display(),
                dest.display()
            ),
        }
    }
}

enum Preflight {
    Import,
    AlreadyImported,
    NotAnExport,
    Unreadable(String),
}

/// Cheap checks before importing: the digest was not imported before, and a ZIP holds
/// a conversations file.
fn preflight(archive: &crate::archive::Archive, path: &Path) -> Preflight {
    let digest = match crate::ingest::file_digest(path) {
        Ok(d) => d,
        Err(e) => return Preflight::Unreadable(e.to_string()),
    };
    if archive.import_record(&digest).ok().flatten().is_some() {
        return Preflight::AlreadyImported;
    }
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if is_zip {
        let names: Vec<String> = match std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| zip::ZipArchive::new(f).map_err(|e| e.to_string()))
        {
            Ok(z) => z
                .file_names()
                .filter_map(Result::ok)
                .map(|n| n.into_owned())
                .collect(),
            Err(e) => return Preflight::Unreadable(e),
        };
        let has_conversations = names
            .iter()
            .filter(|n| !n.starts_with("__MACOSX/"))
            .any(|n| layout::is_conversations_file(n.rsplit('/').next().unwrap_or(n)));
        if !has_conversations {
            return Preflight::NotAnExport;
        }
    }
    Preflight::Import
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_final_names_of_exports() {
        for yes in [
            "a.zip",
            "Export.ZIP",
            "conversations.json",
            "conversations-003.json",
            "x/y/abc-2026-01-01.zip",
        ] {
            assert!(is_candidate(Path::new(yes)), "{yes}");
        }
        for no in [
            "a.zip.crdownload",
            "a.zip.part",
            "a.zip.download",
            "a.zip.tmp",
            "a.zip.partial",
            ".hidden.zip",
            "notes.json",
            "photo.png",
        ] {
            assert!(!is_candidate(Path::new(no)), "{no}");
        }
    }
}
