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

use crate::api::{ApiError, Client, ListItem, Listing, Project};
use crate::archive::schema::ConvRecord;
use crate::archive::{Archive, Outcome};
use crate::config::SyncConfig;
use crate::model::RawConversation;
use crate::model::time::{now_secs, secs_to_rfc3339};
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

/// What a sync run did (also saved for `convos status`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// A `--full` run.
    pub full: bool,
    /// Distinct conversations seen in listings.
    pub listed: u64,
    /// Fetched and new.
    pub new: u64,
    /// Fetched and updated.
    pub updated: u64,
    /// Not fetched (listing unchanged) or fetched and unchanged.
    pub unchanged: u64,
    /// Failed this run (retried next run).
    pub failed: u64,
    /// The first few failures.
    pub failures: Vec<String>,
    /// Newly marked deleted on chatgpt.com (`--full`).
    pub deleted_remotely: u64,
    /// Archive/star/project flags updated without a fetch.
    pub flags_updated: u64,
    /// Attachments downloaded.
    pub attachments: u64,
    /// Attachments that could not be downloaded (retried later).
    pub attachments_failed: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// The normal listing's frontier after the run (RFC 3339).
    pub frontier: Option<String>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// Optional parts that failed this run, e.g. `project names unavailable (404)`; the
    /// run went on without them.
    #[serde(default)]
    pub degraded: Vec<String>,
    /// Listing rows that could not be read (skipped; the walk went on).
    #[serde(default)]
    pub unreadable_rows: u64,
    /// Where the first few of them were (listing and offset, never their content).
    #[serde(default)]
    pub unreadable: Vec<String>,
}

impl SyncReport {
    /// Whether the run failed or left conversations unfetched.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.failed > 0
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

/// Runs blocking archive work off the async worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

enum Step {
    Fetched,
    Skipped,
    Failed,
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

/// What a listing row says about a conversation's project name.
#[derive(Clone, Debug, PartialEq)]
enum ProjectName {
    /// In this project.
    Set(String),
    /// In no project (the row names no project gizmo).
    Clear,
    /// Unknown: the row does not say, or the project's name is not known (yet).
    Keep,
}

/// Why an attachment could not be stored.
enum DownloadError {
    /// An endpoint failed.
    Endpoint(Optional, ApiError),
    /// The archive could not store it.
    Store(String),
}

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
    let a = archive.clone();
    let state = blocking(move || a.state::<SyncState>(STATE_KEY))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut run = Run {
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
    };
    let result = run.conversations().await;
    if let Err(e) = &result {
        run.report.error = Some(e.to_string());
    }
    if result.is_ok()
        && opts.attachments
        && !cancel.load(Ordering::Relaxed)
        && let Err(e) = run.attachments(now).await
    {
        run.report.error = Some(e.to_string());
    }
    if matches!(result, Err(ApiError::SessionExpired)) {
        tracing::error!("session expired: run `convos auth` with a fresh cookie from chatgpt.com");
    }
    let mut report = run.report;
    report.requests = client.requests() - requests_before;
    report.seconds = started.elapsed().as_secs_f64();
    report.finished_at = rfc(now_secs());
    report.frontier = run.state.normal_frontier.map(rfc);
    client.pacer().save().await;
    let (a, state, saved_report) = (archive.clone(), run.state, report.clone());
    let saved = blocking(move || -> Result<(), crate::archive::ArchiveError> {
        a.set_state(STATE_KEY, &state)?;
        a.set_state(REPORT_KEY, &saved_report)?;
        a.flush()
    })
    .await;
    if let Err(e) = saved {
        tracing::error!("could not save the sync state: {e}");
    }
    log_report(&report);
    report
}

fn log_report(r: &SyncReport) {
    let mut msg = format!(
        "sync {}: {} listed, {} new, {} updated, {} unchanged, {} failed, {} attachments, {} requests in {:.1} s; next frontier {}",
        if r.error.is_some() {
            "stopped"
        } else {
            "finished"
        },
        r.listed,
        r.new,
        r.updated,
        r.unchanged,
        r.failed,
        r.attachments,
        r.requests,
        r.seconds,
        r.frontier.as_deref().unwrap_or("none")
    );
    if r.unreadable_rows > 0 {
        msg.push_str(&format!(
            "; {} unreadable listing rows skipped",
            r.unreadable_rows
        ));
    }
    if !r.degraded.is_empty() {
        msg.push_str(&format!("; degraded: {}", r.degraded.join(", ")));
    }
    match &r.error {
        Some(e) => tracing::warn!("{msg}; stopped because: {e}"),
        None => tracing::info!("{msg}"),
    }
}

impl Run<'_> {
    async fn conversations(&mut self) -> Result<(), ApiError> {
        let first_run = self.state.normal_frontier.is_none();
        self.walk(Listing::Normal).await?;
        if self.opts.archived {
            self.walk(Listing::Archived).await?;
        }
        if self.opts.projects && (self.opts.full || first_run || !self.state.projects_walked) {
            self.walk_projects().await?;
        }
        if self.opts.full && !self.cancel.load(Ordering::Relaxed) {
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

    /// Whether every listing was read whole, so what was not seen is really gone.
    fn walk_complete(&self) -> bool {
        self.report.unreadable_rows == 0
            && !(self.opts.projects
                && (self.degraded.contains(&Optional::ProjectNames)
                    || self.degraded.contains(&Optional::ProjectListings)))
    }

    /// Notes an optional part's failure: one warning per part per run and a line in the
    /// report; the run goes on. An error that ends every request (a 429, a challenge, a
    /// dead session) is handed back: it ends the run whichever endpoint met it.
    fn degrade(&mut self, part: Optional, e: ApiError) -> Result<(), ApiError> {
        if e.ends_run() {
            return Err(e);
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

    /// Counts unreadable rows of a page starting at `offset` of `listing`, once each.
    fn note_unreadable(&mut self, listing: &str, offset: u64, rows: &[usize]) -> usize {
        let mut new = 0;
        for &i in rows {
            let at = offset + i as u64;
            if !self.unreadable_seen.insert((listing.to_owned(), at)) {
                continue;
            }
            new += 1;
            self.report.unreadable_rows += 1;
            let place = format!("{listing} at offset {at}");
            tracing::warn!(
                "the row of the {place} could not be read (no conversation id); skipped, the \
                 walk goes on"
            );
            if self.report.unreadable.len() < REPORT_LIST_MAX {
                self.report.unreadable.push(place);
            }
        }
        new
    }

    fn frontier(&self, listing: Listing) -> Option<f64> {
        match listing {
            Listing::Normal => self.state.normal_frontier,
            Listing::Archived => self.state.archived_frontier,
        }
    }

    async fn walk(&mut self, listing: Listing) -> Result<(), ApiError> {
        let frontier = if self.opts.full {
            None
        } else {
            self.frontier(listing)
        };
        let name = match listing {
            Listing::Normal => "normal listing",
            Listing::Archived => "archived listing",
        };
        let mut offset = 0u64;
        let mut below = 0u32;
        let mut newest_ok: Option<f64> = None;
        let mut oldest_failed: Option<f64> = None;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let page = self.client.list(listing, offset, PAGE).await?;
            // Page by the rows the server sent, not by the rows that could be read.
            let n = page.rows;
            let mut fresh = self.note_unreadable(name, offset, &page.unreadable);
            for item in page.items {
                let t = item.update_time.secs();
                if !self.seen.insert(item.id.clone()) {
                    continue;
                }
                fresh += 1;
                if let (Some(f), Some(t)) = (frontier, t)
                    && t <= f
                {
                    below += 1;
                }
                self.report.listed += 1;
                if self.cancel.load(Ordering::Relaxed) {
                    return Ok(());
                }
                match self.item(&item, listing == Listing::Archived, None).await? {
                    Step::Failed => {
                        if let Some(t) = t {
                            oldest_failed = Some(oldest_failed.map_or(t, |o: f64| o.min(t)));
                        }
                    }
                    _ => {
                        if let Some(t) = t {
                            newest_ok = Some(newest_ok.map_or(t, |o: f64| o.max(t)));
                        }
                    }
                }
            }
            if n < PAGE as usize || (frontier.is_some() && below >= self.opts.overlap.max(1)) {
                break;
            }
            if fresh == 0 {
                // A full page of nothing new: the server is not paging (it ignores the
                // offset), and asking on would go round for ever.
                tracing::warn!(
                    "the {name} answered offset {offset} with rows already seen; stopping its walk here"
                );
                break;
            }
            // Offsets shift while paging: a conversation archived or deleted meanwhile
            // moves everything after it up, so a page that starts right after this one
            // would skip whatever crossed the boundary. Overlap the pages; `seen` drops
            // the repeats.
            offset += (n as u64).saturating_sub(u64::from(self.opts.overlap.min(PAGE / 2)));
        }
        // Advance only past what was archived: a failure holds the frontier below it.
        let old = self.frontier(listing);
        let new = match (oldest_failed, old, newest_ok) {
            // Just below the oldest failure, so the next run lists it again.
            (Some(f), _, _) => Some(f - EPSILON),
            (None, Some(o), Some(n)) => Some(o.max(n)),
            (None, o, n) => o.or(n),
        };
        match listing {
            Listing::Normal => self.state.normal_frontier = new,
            Listing::Archived => self.state.archived_frontier = new,
        }
        Ok(())
    }

    /// Every page of the project sidebar (asked once per run), with the names
    /// remembered; `None` when the sidebar failed (a degraded part).
    async fn sidebar(&mut self) -> Result<Option<Vec<Project>>, ApiError> {
        if let Some(projects) = &self.sidebar {
            return Ok(Some(projects.clone()));
        }
        if self.degraded.contains(&Optional::ProjectNames) {
            return Ok(None);
        }
        let mut cursor: Option<String> = None;
        let mut projects = Vec::new();
        loop {
            match self.client.projects(cursor.as_deref()).await {
                Ok((page, next)) => {
                    projects.extend(page);
                    match next {
                        Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                        _ => break,
                    }
                }
                Err(e) => {
                    self.degrade(Optional::ProjectNames, e)?;
                    return Ok(None);
                }
            }
        }
        for p in &projects {
            self.state.projects.insert(p.id.clone(), p.name.clone());
        }
        self.sidebar = Some(projects.clone());
        Ok(Some(projects))
    }

    /// Walks each project's own listing. Incomplete (a failed sidebar or listing) leaves
    /// `projects_walked` unset, so the next run walks them again and fills in names.
    async fn walk_projects(&mut self) -> Result<(), ApiError> {
        let Some(projects) = self.sidebar().await? else {
            return Ok(());
        };
        for p in projects {
            let name = format!("listing of project {}", p.id);
            let mut cursor: Option<String> = None;
            let mut offset = 0u64;
            loop {
                if self.cancel.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (page, next) = match self
                    .client
                    .project_conversations(&p.id, cursor.as_deref())
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => {
                        self.degrade(Optional::ProjectListings, e)?;
                        return Ok(());
                    }
                };
                self.note_unreadable(&name, offset, &page.unreadable);
                offset += page.rows as u64;
                for item in page.items {
                    if !self.seen.insert(item.id.clone()) {
                        continue;
                    }
                    self.report.listed += 1;
                    self.item(&item, false, Some(&p.id)).await?;
                }
                match next {
                    Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                    _ => break,
                }
            }
        }
        self.state.projects_walked = true;
        Ok(())
    }

    /// The project name for a listing item (`in_project`: the project whose own listing
    /// showed it), asking the sidebar once per run when an unknown project appears.
    async fn project_name(
        &mut self,
        item: &ListItem,
        in_project: Option<&str>,
    ) -> Result<ProjectName, ApiError> {
        let gizmo = in_project.or(item.gizmo_id.as_deref());
        let Some(g) = gizmo.filter(|g| g.starts_with("g-p-")) else {
            // A row that names no project gizmo (none, or a custom GPT's) is in no
            // project; one that does not carry `gizmo_id` at all says nothing.
            return Ok(if item.gizmo_listed || gizmo.is_some() {
                ProjectName::Clear
            } else {
                ProjectName::Keep
            });
        };
        if !self.state.projects.contains_key(g)
            && self.opts.projects
            && self.sidebar().await?.is_some()
        {
            // Remember an id the sidebar does not list as nameless, so it is asked
            // once; after a failed sidebar nothing is remembered and a later run asks.
            self.state.projects.entry(g.to_owned()).or_default();
        }
        Ok(match self.state.projects.get(g).filter(|n| !n.is_empty()) {
            Some(n) => ProjectName::Set(n.clone()),
            None => ProjectName::Keep,
        })
    }

    async fn item(
        &mut self,
        item: &ListItem,
        archived_listing: bool,
        in_project: Option<&str>,
    ) -> Result<Step, ApiError> {
        let id = item.id.clone();
        let t_list = item.update_time.secs();
        let a = self.archive.clone();
        let rid = id.clone();
        let record = blocking(move || a.record(&rid)).await.ok().flatten();
        let project = self.project_name(item, in_project).await?;
        let is_archived = archived_listing || item.is_archived == Some(true);
        let fetch = match (&record, t_list) {
            (None, _) => true,
            (Some(r), Some(t)) => match r.remote.list_update_time {
                Some(lt) => t > lt + EPSILON,
                None => {
                    t > r.summary.update_time.unwrap_or(f64::NEG_INFINITY)
                        + self.opts.tolerance_secs
                }
            },
            (Some(_), None) => false,
        };
        let starred = item.is_starred;
        let apply = move |r: &mut ConvRecord| {
            r.remote.is_archived = Some(is_archived);
            if starred.is_some() {
                r.remote.is_starred = starred;
            }
            if t_list.is_some() {
                r.remote.list_update_time = t_list;
            }
            match &project {
                ProjectName::Set(name) => r.remote.project = Some(name.clone()),
                ProjectName::Clear => r.remote.project = None,
                ProjectName::Keep => {}
            }
            r.deleted_remotely = false;
        };
        if !fetch {
            self.report.unchanged += 1;
            if let Some(r) = &record {
                let mut updated = r.clone();
                apply(&mut updated);
                if &updated != r {
                    let a = self.archive.clone();
                    let rid = id.clone();
                    let ok = blocking(move || a.update_remote(&rid, apply)).await;
                    if let Err(e) = ok {
                        tracing::warn!("could not update flags of {id}: {e}");
                    } else if updated.remote.is_archived != r.remote.is_archived
                        || updated.remote.is_starred != r.remote.is_starred
                        || updated.remote.project != r.remote.project
                        || updated.deleted_remotely != r.deleted_remotely
                    {
                        self.report.flags_updated += 1;
                    }
                }
            }
            return Ok(Step::Skipped);
        }
        let bytes = match self.client.conversation(&id).await {
            Ok(b) => b,
            Err(ApiError::NotFound) => {
                tracing::warn!(
                    "conversation {id} is listed but its detail answers 404; skipped for this run"
                );
                self.fail(format!("{id}: detail not found (404)"));
                return Ok(Step::Failed);
            }
            Err(e) if e.ends_run() => return Err(e),
            Err(e) => {
                tracing::warn!("conversation {id}: {e}; it will be retried next run");
                self.fail(format!("{id}: {e}"));
                self.transient_in_a_row += 1;
                if self.transient_in_a_row >= OUTAGE_AFTER {
                    // Each failure already cost several retries: the service is down.
                    tracing::warn!(
                        "{OUTAGE_AFTER} conversations in a row failed; chatgpt.com seems to be \
                         having an outage, so this run stops here"
                    );
                    return Err(e);
                }
                return Ok(Step::Failed);
            }
        };
        self.transient_in_a_row = 0;
        let a = self.archive.clone();
        let stored = blocking(move || -> Result<Outcome, String> {
            let raw = RawConversation::from_bytes(bytes).map_err(|e| e.to_string())?;
            let got = raw.id().to_owned();
            let outcome = a.upsert(raw).map_err(|e| e.to_string())?;
            a.update_remote(&got, apply).map_err(|e| e.to_string())?;
            Ok(outcome)
        })
        .await;
        match stored {
            Ok(outcome) => {
                match outcome {
                    Outcome::New => self.report.new += 1,
                    Outcome::Updated => self.report.updated += 1,
                    Outcome::Unchanged => self.report.unchanged += 1,
                }
                if (self.report.new + self.report.updated).is_multiple_of(FLUSH_EVERY) {
                    // A long backfill keeps what it fetched even if it is killed.
                    let a = self.archive.clone();
                    if let Err(e) = blocking(move || a.flush()).await {
                        tracing::warn!("flush failed: {e}");
                    }
                }
                tracing::debug!("conversation {id}: {outcome:?}");
                Ok(Step::Fetched)
            }
            Err(e) => {
                tracing::warn!(
                    "conversation {id} could not be archived: {e}; it will be retried next run"
                );
                self.fail(format!("{id}: {e}"));
                Ok(Step::Failed)
            }
        }
    }

    fn fail(&mut self, what: String) {
        self.report.failed += 1;
        if self.report.failures.len() < REPORT_LIST_MAX {
            self.report.failures.push(what);
        }
    }

    async fn mark_deletions(&mut self) {
        let a = self.archive.clone();
        let seen = std::mem::take(&mut self.seen);
        let marked = blocking(move || -> Result<u64, crate::archive::ArchiveError> {
            let mut marked = 0;
            let ids: Vec<(String, bool)> = a
                .iter_newest_first()
                .filter_map(Result::ok)
                .map(|r| (r.summary.id.clone(), r.deleted_remotely))
                .collect();
            for (id, deleted) in ids {
                let gone = !seen.contains(&id);
                if gone != deleted {
                    a.update_remote(&id, |r| r.deleted_remotely = gone)?;
                    if gone {
                        tracing::info!("conversation {id} is no longer on chatgpt.com; kept and marked deleted_remotely");
                        marked += 1;
                    }
                }
            }
            Ok(marked)
        })
        .await;
        match marked {
            Ok(n) => self.report.deleted_remotely = n,
            Err(e) => tracing::warn!("could not mark deleted conversations: {e}"),
        }
    }

    /// Downloads missing attachments. The first endpoint failure (after its retries)
    /// ends this phase for the run: the rest wait for a later run rather than spending
    /// requests on an endpoint that is down.
    async fn attachments(&mut self, now: f64) -> Result<(), ApiError> {
        let a = self.archive.clone();
        let missing = blocking(move || a.missing_files())
            .await
            .unwrap_or_default();
        let mut done_files = HashSet::new();
        for (conv, file) in missing {
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            if !done_files.insert(file.clone()) {
                continue;
            }
            if let Some(f) = self.state.file_failures.get(&file) {
                // Back off: a day, doubling, at most a month.
                let wait = 86_400.0 * f64::from(1u32 << f.count.saturating_sub(1).min(5));
                if now - f.last < wait.min(30.0 * 86_400.0) {
                    continue;
                }
            }
            match self.download(&conv, &file).await {
                Ok(true) => {
                    self.report.attachments += 1;
                    self.state.file_failures.remove(&file);
                }
                Ok(false) => self.file_failed(&file, now),
                Err(DownloadError::Endpoint(part, e)) => {
                    tracing::debug!("attachment {file} of {conv}: {e}");
                    self.degrade(part, e)?;
                    self.file_failed(&file, now);
                    return Ok(());
                }
                Err(DownloadError::Store(e)) => {
                    tracing::warn!(
                        "attachment {file} of {conv} could not be stored: {e}; will retry later"
                    );
                    self.file_failed(&file, now);
                }
            }
        }
        Ok(())
    }

    fn file_failed(&mut self, file: &str, now: f64) {
        self.report.attachments_failed += 1;
        let f = self.state.file_failures.entry(file.to_owned()).or_default();
        f.count += 1;
        f.last = now;
    }

    /// Downloads one attachment; `Ok(false)` when the service says it has no such file.
    async fn download(&self, conv: &str, file: &str) -> Result<bool, DownloadError> {
        let info = match self.client.file_info(file, conv).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                tracing::debug!("attachment {file} of {conv} is not available on chatgpt.com");
                return Ok(false);
            }
            Err(e) => return Err(DownloadError::Endpoint(Optional::FileMetadata, e)),
        };
        let bytes = self
            .client
            .download(&info.download_url, info.mime_type.as_deref())
            .await
            .map_err(|e| DownloadError::Endpoint(Optional::FileDownloads, e))?;
        let a = self.archive.clone();
        let file = file.to_owned();
        let stored = blocking(move || {
            a.store_file(
                &file,
                info.file_name.as_deref(),
                info.mime_type.as_deref(),
                &bytes[..],
            )
        })
        .await;
        stored
            .map(|_| true)
            .map_err(|e| DownloadError::Store(e.to_string()))
    }
}

/// A shared stop flag for long runs.
pub type Cancel = Arc<AtomicBool>;
