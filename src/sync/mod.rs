//! Incremental sync from chatgpt.com, at the service's own pace: walk the listings
//! first (newest first, down to the stored frontier plus an overlap; pages are cheap,
//! 100 conversations a request), collect what changed, then fetch it, ten at a time
//! through the batch endpoint where the service offers it, and store every
//! conversation through [`Archive::upsert`]. Then the first page is read again to catch
//! what changed during a long run, and only then are missing attachments downloaded,
//! with the budget that is left.
//!
//! Essential are the session exchange, the listings and the conversation fetches: their
//! failure ends a run. Optional are the project sidebar, the per-project listings, file
//! metadata and attachment downloads: their failure (unless it ends every request, like
//! a 429 or a Cloudflare challenge) is one warning per run and a `degraded` line in the
//! report, and the run goes on without them. An unreadable listing row is counted and
//! skipped; paging goes by the rows the server sent (`total` is only a hint).
//!
//! The frontier only advances after a complete walk, and never past a conversation that
//! is not archived yet (a failed fetch, or one the run did not get to), so nothing is
//! ever skipped. Listing times are compared with the listing time seen when a
//! conversation was last fetched (list and detail times of one version differ by
//! seconds); a conversation no listing has shown yet (one that came from an export) is
//! compared with its export time, with a tolerance.
//!
//! Every run walks the archived listing completely (archiving does not move
//! `update_time`). A full run (`convos sync --full`, the daemon's reconcile job) walks
//! every listing to its end and confirms each conversation that none of them showed with
//! a detail request: only a 404 marks it `deleted_remotely`.

mod fetch;
mod reconcile;
mod report;
mod walk;

pub use report::{Rendered, StopReason, SyncReport};

use crate::api::{ApiError, Client, Listing, Project};
use crate::archive::{Archive, ArchiveError};
use crate::config::SyncConfig;
use crate::model::time::{now_secs, secs_to_rfc3339};
use crate::util::blocking;
use fetch::Pending;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Items per listing page (the service's maximum).
pub const PAGE: u32 = 100;
/// Details failing in a row (after their retries) that end a run as an outage.
const OUTAGE_AFTER: u32 = 5;
/// Conversations stored between flushes during a run.
const FLUSH_EVERY: u64 = 20;
/// A listing time must be this much newer to count as a change (float noise).
const EPSILON: f64 = 1e-6;
/// Unreadable rows and failures listed by position in a report (the count is complete).
const REPORT_LIST_MAX: usize = 20;
/// A run that has lasted this long since it read the first page reads it again at its
/// end (a short run leaves changes made meanwhile to the next one).
pub const REREAD_AFTER: Duration = Duration::from_secs(60);
/// How long a run's attachments may wait for the pace once the budget is spent: long
/// enough to keep the pace learning (only requests that wait for it raise it), short
/// enough that a run ends well before the next scheduled one.
pub const ATTACHMENT_WAIT: Duration = Duration::from_secs(5 * 60);
/// How long the service's lack of the batch endpoint is remembered (seconds).
pub const BATCH_RETRY_SECS: f64 = 86_400.0;

/// How to sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Walk everything and detect deletions.
    pub full: bool,
    /// Items re-checked past the frontier.
    pub overlap: u32,
    /// Export-vs-listing time tolerance, seconds.
    pub tolerance_secs: f64,
    /// Walk archived conversations.
    pub archived: bool,
    /// Walk projects (names; per-project listings on full runs).
    pub projects: bool,
    /// Download missing attachments.
    pub attachments: bool,
    /// How long the attachments may wait for the pace in one run, once the budget left
    /// by the conversations is spent (the rest wait for later runs).
    pub attachment_wait: Duration,
}

impl SyncOptions {
    /// Options from the configuration.
    pub fn from_config(sync: &SyncConfig, download_attachments: bool, full: bool) -> Self {
        Self {
            full,
            overlap: sync.overlap,
            tolerance_secs: sync.time_tolerance_secs,
            archived: sync.archived,
            projects: sync.projects,
            attachments: download_attachments,
            attachment_wait: ATTACHMENT_WAIT,
        }
    }
}

/// Sync bookkeeping kept in the archive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Newest listing time of the normal listing below which everything is archived.
    pub normal_frontier: Option<f64>,
    /// Kept for archives written when the archived listing had a frontier (it is now
    /// walked whole every run).
    pub archived_frontier: Option<f64>,
    /// Project id → name.
    pub projects: BTreeMap<String, String>,
    /// Whether per-project listings have been walked once.
    pub projects_walked: bool,
    /// File id → failed download attempts (for backoff).
    pub file_failures: BTreeMap<String, FileFailure>,
    /// Until when (epoch seconds) the batch endpoint is known to be missing: fetches
    /// go one by one until then.
    #[serde(default)]
    pub batch_unavailable_until: Option<f64>,
}

/// Download failures of one file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileFailure {
    /// Attempts that failed.
    pub count: u32,
    /// When the last one failed (epoch seconds).
    pub last: f64,
}

/// Archive state keys.
pub const STATE_KEY: &str = "sync";
/// The last run's report.
pub const REPORT_KEY: &str = "last_sync";

fn rfc(secs: f64) -> String {
    secs_to_rfc3339(secs).unwrap_or_default()
}

/// An optional part of a sync: its failure degrades the run instead of ending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Optional {
    /// The project sidebar.
    ProjectNames,
    /// The per-project listings.
    ProjectListings,
    /// File metadata (where to download an attachment).
    FileMetadata,
    /// The attachment bytes.
    FileDownloads,
}

impl Optional {
    /// What the user misses, as the report's degraded line names it.
    fn what(self) -> &'static str {
        match self {
            Optional::ProjectNames => "project names",
            Optional::ProjectListings => "project listings",
            Optional::FileMetadata => "attachment metadata",
            Optional::FileDownloads => "attachment downloads",
        }
    }

    fn endpoint(self) -> &'static str {
        match self {
            Optional::ProjectNames => "GET /backend-api/gizmos/snorlax/sidebar",
            Optional::ProjectListings => "GET /backend-api/gizmos/{project}/conversations",
            Optional::FileMetadata => "GET /backend-api/files/download/{file}",
            Optional::FileDownloads => "the attachment download",
        }
    }

    fn consequence(self) -> &'static str {
        match self {
            Optional::ProjectNames => {
                "conversations are archived without new project names, which a later run fills in"
            }
            Optional::ProjectListings => {
                "project conversations are archived from the main listing; the project walk is \
                 retried next run"
            }
            Optional::FileMetadata | Optional::FileDownloads => {
                "the remaining attachments wait for a later run"
            }
        }
    }
}

/// How far a listing's walk got.
#[derive(Clone, Copy, Debug, Default)]
struct Walked {
    /// Reached its end (or, incrementally, the frontier plus the overlap).
    complete: bool,
    /// Rows of it that could not be read.
    unreadable: u64,
}

/// One run in progress: what it was given, what it learnt, and its report.
struct Run<'a> {
    client: &'a Client,
    archive: &'a Archive,
    opts: &'a SyncOptions,
    cancel: &'a AtomicBool,
    /// The wall time the run started at (epoch seconds).
    now: f64,
    state: SyncState,
    report: SyncReport,
    /// Conversations seen in a listing this run, with the listing time they had.
    seen: HashMap<String, Option<f64>>,
    /// Listed conversations that changed, waiting to be fetched (newest first).
    queue: Vec<Pending>,
    /// Conversations queued and not archived yet (failed, or not got to).
    unsettled: HashSet<String>,
    /// Those of them from the normal listing, with their listing times: the frontier
    /// must not pass them.
    unsettled_normal: HashMap<String, f64>,
    /// The newest listing time the normal listing showed.
    normal_newest: Option<f64>,
    normal: Walked,
    archived: Walked,
    /// Every project listing was read whole.
    projects_complete: bool,
    /// When the normal listing's first page was read.
    first_page_at: Option<Instant>,
    transient_in_a_row: u32,
    /// Optional parts that failed this run (each warned about once).
    degraded: HashSet<Optional>,
    /// The sidebar as answered this run (asked at most once per run).
    sidebar: Option<Vec<Project>>,
    /// Unreadable rows already counted (listing, offset): overlapping pages repeat rows.
    unreadable_seen: HashSet<(String, u64)>,
    /// Conversations stored since the last flush.
    unflushed: u64,
}

/// One sync run. `now` is the wall time the run is considered to start at.
pub async fn sync_once(
    client: &Client,
    archive: &Archive,
    opts: &SyncOptions,
    now: f64,
    cancel: &AtomicBool,
) -> SyncReport {
    let started = Instant::now();
    let requests_before = client.requests();
    let limited_before = client.rate_limited();
    let mut run = match Run::start(client, archive, opts, cancel, now).await {
        Ok(run) => run,
        Err(reason) => return SyncReport::stopped(reason),
    };
    let mut result = run.conversations().await;
    if result.is_ok() && opts.attachments && !run.cancelled() {
        result = run.attachments().await;
    }
    if result.is_ok() && run.cancelled() {
        result = Err(StopReason::Cancelled);
    }
    if result == Err(StopReason::SessionExpired) {
        tracing::error!("session expired: run `convos auth` with a fresh cookie from chatgpt.com");
    }
    run.report.stop = result.err();
    run.report.requests = client.requests() - requests_before;
    run.report.rate_limited = client.rate_limited() - limited_before;
    run.report.seconds = started.elapsed().as_secs_f64();
    run.finish().await
}

impl<'a> Run<'a> {
    /// Reads the sync state the last run left.
    async fn start(
        client: &'a Client,
        archive: &'a Archive,
        opts: &'a SyncOptions,
        cancel: &'a AtomicBool,
        now: f64,
    ) -> Result<Self, StopReason> {
        let a = archive.clone();
        let state = match blocking("reading the sync state", move || {
            a.state::<SyncState>(STATE_KEY)
        })
        .await
        {
            Ok(Ok(state)) => state.unwrap_or_default(),
            Ok(Err(e)) => {
                // Starting over from no frontier re-lists, never loses.
                tracing::warn!("could not read the sync state ({e}); walking from the start");
                SyncState::default()
            }
            Err(e) => {
                return Err(StopReason::Internal {
                    error: e.to_string(),
                });
            }
        };
        Ok(Run {
            client,
            archive,
            opts,
            cancel,
            now,
            state,
            report: SyncReport {
                started_at: rfc(now),
                full: opts.full,
                ..SyncReport::default()
            },
            seen: HashMap::new(),
            queue: Vec::new(),
            unsettled: HashSet::new(),
            unsettled_normal: HashMap::new(),
            normal_newest: None,
            normal: Walked::default(),
            archived: Walked::default(),
            projects_complete: false,
            first_page_at: None,
            transient_in_a_row: 0,
            degraded: HashSet::new(),
            sidebar: None,
            unreadable_seen: HashSet::new(),
            unflushed: 0,
        })
    }

    /// Whether the run was asked to stop (at its next safe point).
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Saves the state and the report, logs the report and hands it back.
    async fn finish(mut self) -> SyncReport {
        self.advance_frontier();
        let mut report = self.report;
        report.finished_at = rfc(now_secs());
        report.frontier = self.state.normal_frontier.map(rfc);
        let pacer = self.client.pacer();
        report.pacing = Some(pacer.mode().as_str().to_owned());
        report.rate_per_minute = Some(pacer.rate_per_minute());
        report.remaining = self.unsettled.len() as u64;
        if report.remaining > 0 {
            let batch = self
                .state
                .batch_unavailable_until
                .is_none_or(|u| u <= self.now);
            let requests = if batch {
                report.remaining.div_ceil(crate::api::BATCH_MAX as u64)
            } else {
                report.remaining
            };
            report.eta_secs = Some(pacer.eta(requests).as_secs_f64());
        }
        pacer.save().await;
        let (a, state, saved_report) = (self.archive.clone(), self.state, report.clone());
        let saved = blocking(
            "saving the sync state",
            move || -> Result<(), ArchiveError> {
                a.set_state(STATE_KEY, &state)?;
                a.set_state(REPORT_KEY, &saved_report)?;
                a.flush()
            },
        )
        .await;
        if let Ok(Err(e)) = saved {
            tracing::error!("could not save the sync state: {e}");
        }
        report.log();
        report
    }

    /// Walks the listings, then fetches what changed; walks the projects when due and
    /// fetches what they add; reads the first page again after a long run; notices
    /// conversations unarchived below the frontier; on a full run, reconciles.
    async fn conversations(&mut self) -> Result<(), StopReason> {
        let first_run = self.state.normal_frontier.is_none();
        self.walk(Listing::Normal).await?;
        if self.opts.archived {
            self.walk(Listing::Archived).await?;
        }
        self.fetch_queue().await?;
        if self.opts.projects && (self.opts.full || first_run || !self.state.projects_walked) {
            self.walk_projects().await?;
            self.fetch_queue().await?;
        }
        self.reread().await?;
        if self.opts.archived {
            self.note_unarchived().await;
        }
        if self.opts.full && !self.cancelled() {
            if self.walk_complete() {
                self.reconcile().await?;
            } else {
                tracing::warn!(
                    "not marking conversations deleted on chatgpt.com this run: some listing \
                     could not be read to its end (an unreadable row, a failed project \
                     listing, or the run was stopped), so an absent conversation may still \
                     exist"
                );
            }
        }
        Ok(())
    }

    /// Notes an optional part's failure: one warning per part per run and a line in the
    /// report; the run goes on. An error that ends every request (a 429, a challenge, a
    /// dead session) is handed back: it ends the run whichever endpoint met it.
    fn degrade(&mut self, part: Optional, e: ApiError) -> Result<(), StopReason> {
        if e.ends_run() {
            return Err(e.into());
        }
        if self.degraded.insert(part) {
            tracing::warn!(
                "{} failed ({}: {e}); {}; the sync goes on",
                part.endpoint(),
                e.status_label(),
                part.consequence()
            );
            self.report.degraded.push(format!(
                "{} unavailable ({})",
                part.what(),
                e.status_label()
            ));
        }
        Ok(())
    }

    /// Counts a conversation that failed this run (it is retried next run).
    fn fail(&mut self, what: String) {
        self.report.failed += 1;
        if self.report.failures.len() < REPORT_LIST_MAX {
            self.report.failures.push(what);
        }
    }
}

/// A shared stop flag for long runs.
pub type Cancel = Arc<AtomicBool>;
