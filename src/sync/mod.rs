//! Incremental sync from chatgpt.com: walk the listings newest first down to the
//! stored frontier (plus an overlap), fetch only conversations whose listing time
//! moved, store them through [`Archive::upsert`], then fetch missing attachments.
//!
//! Essential are the session exchange, the listings and the conversation details:
//! their failure ends a run. Optional are the project sidebar, the per-project
//! listings, file metadata and attachment downloads: their failure (unless it ends
//! every request, like a 429 or a Cloudflare challenge) is one warning per run and a
//! `degraded` line in the report, and the run goes on without them. An unreadable
//! listing row is counted and skipped; paging goes by the rows the server sent.
//!
//! The frontier only advances past conversations actually archived, so a failed
//! detail is retried next run, never skipped. Listing times are compared with the
//! listing time seen when a conversation was last fetched (list and detail times of
//! one version differ by seconds); a conversation no listing has shown yet (one that
//! came from an export) is compared with its export time, with a tolerance.

mod fetch;
mod report;
mod walk;

pub use report::{Rendered, StopReason, SyncReport};

use crate::api::{ApiError, Client, Project};
use crate::archive::{Archive, ArchiveError};
use crate::config::SyncConfig;
use crate::model::time::{now_secs, secs_to_rfc3339};
use crate::util::blocking;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
        }
    }
}

/// Sync bookkeeping kept in the archive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Newest listing time of the normal listing below which everything is archived.
    pub normal_frontier: Option<f64>,
    /// The same for the archived listing.
    pub archived_frontier: Option<f64>,
    /// Project id → name.
    pub projects: BTreeMap<String, String>,
    /// Whether per-project listings have been walked once.
    pub projects_walked: bool,
    /// File id → failed download attempts (for backoff).
    pub file_failures: BTreeMap<String, FileFailure>,
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

/// One run in progress: what it was given, what it learnt, and its report.
struct Run<'a> {
    client: &'a Client,
    archive: &'a Archive,
    opts: &'a SyncOptions,
    cancel: &'a AtomicBool,
    state: SyncState,
    report: SyncReport,
    seen: HashSet<String>,
    transient_in_a_row: u32,
    /// Optional parts that failed this run (each warned about once).
    degraded: HashSet<Optional>,
    /// The sidebar as answered this run (asked at most once per run).
    sidebar: Option<Vec<Project>>,
    /// Unreadable rows already counted (listing, offset): overlapping pages repeat rows.
    unreadable_seen: HashSet<(String, u64)>,
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
    let mut run = match Run::start(client, archive, opts, cancel, now).await {
        Ok(run) => run,
        Err(reason) => return SyncReport::stopped(reason),
    };
    let mut result = run.conversations().await;
    if result.is_ok() && opts.attachments && !run.cancelled() {
        result = run.attachments(now).await;
    }
    if result.is_ok() && run.cancelled() {
        result = Err(StopReason::Cancelled);
    }
    if result == Err(StopReason::SessionExpired) {
        tracing::error!("session expired: run `convos auth` with a fresh cookie from chatgpt.com");
    }
    run.report.stop = result.err();
    run.report.requests = client.requests() - requests_before;
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
            state,
            report: SyncReport {
                started_at: rfc(now),
                full: opts.full,
                ..SyncReport::default()
            },
            seen: HashSet::new(),
            transient_in_a_row: 0,
            degraded: HashSet::new(),
            sidebar: None,
            unreadable_seen: HashSet::new(),
        })
    }

    /// Whether the run was asked to stop (at its next safe point).
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Saves the state and the report, logs the report and hands it back.
    async fn finish(self) -> SyncReport {
        let mut report = self.report;
        report.finished_at = rfc(now_secs());
        report.frontier = self.state.normal_frontier.map(rfc);
        self.client.pacer().save().await;
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

    /// Walks the listings (and the projects when due), fetching what changed; on a
    /// full run, marks what is gone from chatgpt.com.
    async fn conversations(&mut self) -> Result<(), StopReason> {
        let first_run = self.state.normal_frontier.is_none();
        self.walk(crate::api::Listing::Normal).await?;
        if self.opts.archived {
            self.walk(crate::api::Listing::Archived).await?;
        }
        if self.opts.projects && (self.opts.full || first_run || !self.state.projects_walked) {
            self.walk_projects().await?;
        }
        if self.opts.full && !self.cancelled() {
            if self.walk_complete() {
                self.mark_deletions().await;
            } else {
                tracing::warn!(
                    "not marking conversations deleted on chatgpt.com this run: some listing \
                     rows or project listings could not be read, so an absent conversation \
                     may still exist"
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
