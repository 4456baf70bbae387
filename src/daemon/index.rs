//! The search index in the daemon: its indexer is woken by the archive's change feed
//! (every write, whether from sync, import or the watcher, bumps it), and the reader
//! queries opened is dropped after a while without queries, so an idle daemon holds
//! neither writer nor reader.

use super::Daemon;
use crate::archive::Archive;
use crate::search::LiveIndex;
use std::sync::Arc;
use std::time::Duration;

/// A reader unused this long is dropped.
const READER_IDLE: Duration = Duration::from_secs(120);

/// Opens the index (or starts it over) and starts its indexer; `None`, with a log
/// line, when it cannot be opened (the daemon runs on without search).
pub(super) fn open(data_dir: &std::path::Path, archive: Archive) -> Option<Arc<LiveIndex>> {
    let dir = crate::search::index_dir(data_dir);
    match LiveIndex::start(&dir, archive) {
        Ok(live) => Some(Arc::new(live)),
        Err(e) => {
            tracing::error!("search is unavailable: {e}");
            None
        }
    }
}

/// Wakes the indexer after each archive write, and drops an idle reader, until
/// shutdown.
pub(super) async fn follow(daemon: Arc<Daemon>, live: Arc<LiveIndex>) {
    let mut changes = daemon.ctx.archive.subscribe_changes();
    let mut tick = tokio::time::interval(READER_IDLE / 2);
    loop {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                live.poke();
            }
            _ = tick.tick() => live.release_if_idle(READER_IDLE),
        }
    }
}

/// Stops the indexer at a safe point (what it committed stays; the rest is taken in
/// at the next start).
pub(super) async fn stop(live: Arc<LiveIndex>) {
    if let Err(e) = crate::util::blocking("stopping the search indexer", move || live.stop()).await
    {
        tracing::warn!("{e}");
    }
}
