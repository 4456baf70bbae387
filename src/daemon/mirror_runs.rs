//! The Markdown mirror in the daemon (`[mirror] dir`): one task keeps the folder current.
//! It runs once at start, then sleeps on the archive's change feed (no polling: an idle
//! daemon stays idle) and, once writes pause for [`QUIET`] (at most [`MAX_WAIT`] after
//! the first), brings the mirror up to date from the feed: an import or a sync storing
//! twenty conversations makes one run, not twenty. Runs happen off the async threads and
//! off the write path: imports and syncs never wait for them. A run the folder stops
//! (missing, read-only, full) is tried again after a backoff until the folder works,
//! and `status` shows its error meanwhile. Runs never overlap: `convos mirror` takes
//! the same lock.

use super::{Daemon, trim_heap};
use crate::commands::Context;
use crate::mirror::{Mirror, MirrorError, MirrorReport, Scope};
use crate::model::time::now_secs;
use crate::util::blocking;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, watch};
use tokio_util::sync::CancellationToken;

/// How long the archive must stay unchanged before a run starts.
const QUIET: Duration = Duration::from_secs(1);
/// The longest a run waits for writes to pause (a long sync is mirrored as it goes).
const MAX_WAIT: Duration = Duration::from_secs(10);
/// The first retry after a failed run; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(2);
/// The longest wait between retries while the folder stays unusable.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The daemon's mirror: the configured one, and the lock every run holds.
pub(super) struct MirrorRuns {
    mirror: Option<Mirror>,
    running: Mutex<()>,
}

impl MirrorRuns {
    /// The configured mirror (none without `[mirror] dir`).
    pub(super) fn new(ctx: &Context) -> Result<Self, MirrorError> {
        let mirror = match &ctx.paths.mirror_dir {
            Some(dir) => Some(Mirror::new(
                ctx.archive.clone(),
                dir,
                crate::commands::mirror::options(ctx, false),
            )?),
            None => None,
        };
        Ok(Self {
            mirror,
            running: Mutex::new(()),
        })
    }

    /// Waits until no mirror run is going on; runs hold the guard.
    pub(super) async fn lock(&self) -> MutexGuard<'_, ()> {
        self.running.lock().await
    }
}

/// Starts the task that keeps the configured mirror current, if there is one.
pub(super) fn spawn(d: &Arc<Daemon>) {
    if let Some(mirror) = d.mirror_runs.mirror.clone() {
        tracing::info!(
            "keeping the Markdown mirror in {} current",
            mirror.dir().display()
        );
        d.tracker.spawn(keep_current(d.clone(), mirror));
    }
}

/// Runs the mirror at start and after every burst of changes until shutdown.
async fn keep_current(d: Arc<Daemon>, mirror: Mirror) {
    let mut changes = d.ctx.archive.subscribe_changes();
    let mut failures = 0u32;
    let mut last_error: Option<String> = None;
    loop {
        // Changes from here on wake the next run (this one may miss them).
        changes.borrow_and_update();
        let retry = match run_once(&d, &mirror).await {
            Ok(report) => {
                if last_error.take().is_some() {
                    tracing::info!(
                        "the Markdown mirror in {} works again and is up to date",
                        mirror.dir().display()
                    );
                }
                log_report(&mirror, &report);
                failures = 0;
                None
            }
            Err(RunError::Stopped) => return,
            Err(RunError::Failed(why)) => {
                failures += 1;
                let wait = crate::util::backoff(RETRY_FIRST, failures, RETRY_MAX);
                // One warning per new error, not one per retry.
                if last_error.as_deref() != Some(why.as_str()) {
                    tracing::warn!(
                        "the Markdown mirror is not up to date: {why}; imports and syncs go \
                         on, and the mirror catches up once the folder works (next try in {} s)",
                        wait.as_secs()
                    );
                    last_error = Some(why);
                }
                Some(wait)
            }
        };
        tokio::select! {
            () = d.shutdown.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() || !settle(&d.shutdown, &mut changes).await {
                    return;
                }
            }
            () = tokio::time::sleep(retry.unwrap_or(RETRY_MAX)), if retry.is_some() => {}
        }
    }
}

/// Why a run did not bring the mirror up to date.
enum RunError {
    /// The daemon is stopping.
    Stopped,
    /// The folder, the archive or the run failed; tried again later.
    Failed(String),
}

/// One run from the change feed, under the lock, off the async threads; the archive is
/// flushed after it (the mirror's record becomes durable with it, as any unit of work's).
async fn run_once(d: &Arc<Daemon>, mirror: &Mirror) -> Result<MirrorReport, RunError> {
    let _guard = d.mirror_runs.lock().await;
    if d.shutdown.is_cancelled() {
        return Err(RunError::Stopped);
    }
    let (m, archive, cancel) = (mirror.clone(), d.ctx.archive.clone(), d.ctx.cancel.clone());
    let result = blocking("updating the Markdown mirror", move || {
        let r = m.run(Scope::Feed, now_secs(), &cancel);
        if let Err(e) = archive.flush() {
            tracing::warn!("cannot flush the archive after the mirror's run: {e}");
        }
        trim_heap();
        r
    })
    .await;
    match result {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(MirrorError::Cancelled)) => Err(RunError::Stopped),
        Ok(Err(e)) => Err(RunError::Failed(e.to_string())),
        Err(panicked) => Err(RunError::Failed(panicked.to_string())),
    }
}

/// One line when a run wrote something; nothing when it did not (an idle daemon is quiet).
fn log_report(mirror: &Mirror, r: &MirrorReport) {
    if r.files_written == 0 && r.errors == 0 {
        tracing::debug!("the Markdown mirror is up to date");
        return;
    }
    tracing::info!(
        "Markdown mirror {}: {} notes written ({} new), {} unchanged, {} conflicts, {} failed, \
         {} attachments copied{}",
        mirror.dir().display(),
        r.written,
        r.created,
        r.unchanged,
        r.conflicts,
        r.errors,
        r.attachments_copied,
        if r.index_written {
            ", index.md written"
        } else {
            ""
        }
    );
}

/// Waits until the archive has not changed for [`QUIET`], or [`MAX_WAIT`] has passed
/// since the change that woke us; `false` when the daemon stops meanwhile.
async fn settle(shutdown: &CancellationToken, changes: &mut watch::Receiver<u64>) -> bool {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    loop {
        let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
        tokio::select! {
            () = shutdown.cancelled() => return false,
            changed = changes.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
            () = tokio::time::sleep_until(quiet_until) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_waited_out_but_not_for_ever() {
        let (tx, mut rx) = watch::channel(0u64);
        let token = CancellationToken::new();
        // Changes every 0.5 s for 3 s: the run starts 1 s after the last one.
        let start = Instant::now();
        let writer = tokio::spawn({
            let tx = tx.clone();
            async move {
                for i in 1..=6 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    tx.send_replace(i);
                }
            }
        });
        assert!(settle(&token, &mut rx).await);
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        writer.await.expect("writer");

        // Changes that never pause: the run starts MAX_WAIT after the first.
        let start = Instant::now();
        let writer = tokio::spawn({
            let tx = tx.clone();
            async move {
                for i in 10.. {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if tx.send(i).is_err() {
                        break;
                    }
                }
            }
        });
        assert!(settle(&token, &mut rx).await);
        assert_eq!(start.elapsed(), MAX_WAIT);
        writer.abort();

        // Shutdown ends the wait at once.
        token.cancel();
        assert!(!settle(&token, &mut rx).await);
    }
}
