//! The daemon's schedule: one tokio-cron-scheduler [`JobScheduler`] owns its jobs, each
//! named, with its next run shown by `convos status`:
//! - `sync`: `[sync] schedule`, plus once at start;
//! - `reconcile`: `[sync] reconcile_schedule`, a full sync (what `convos sync --full`
//!   does): every listing walked to its end, what changed fetched, flags, stars and
//!   project moves applied, and conversations that no listing shows and whose detail
//!   answers 404 marked deleted on chatgpt.com;
//! - `token refresh`: once, shortly before the access token expires, planned again
//!   whenever the client or its token changes;
//! - `rescan`: the folder watcher's periodic rescan, every `[watch] rescan_secs`.
//!
//! Cron schedules are read in the local time zone unless `[sync] timezone` names one.
//! tokio-cron-scheduler turns a zone into a fixed UTC offset when a job is created, so
//! the cron jobs are created again whenever the zone's offset is no longer the one they
//! were created with (a DST change, a suspend across one): checked after every run and
//! every [`ZONE_CHECK`]. A job created anew computes its next run in the real zone.
//!
//! Runs never overlap (the sync runs share one lock; see [`super::sync_runs`]) and
//! failed ones back off. The crate stops for good a job whose body panicked, so every
//! body runs in a task of its own: a panic is logged and the job runs again next time.
//! The crate's loop wakes every 500 ms; its cost is measured by `cargo bench --bench
//! daemon` (see the README).

use super::Daemon;
use super::sync_runs;
use crate::commands::status::JobStatus;
use crate::config::{Config, Zone};
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

/// How often the zone's UTC offset is compared with the cron jobs' (besides after
/// every run).
pub const ZONE_CHECK: Duration = Duration::from_secs(15 * 60);

/// A job of the daemon's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum JobName {
    Sync,
    Reconcile,
    TokenRefresh,
    Rescan,
    /// Internal: compares the zone's offset with the cron jobs' (not shown in status).
    ZoneCheck,
}

impl JobName {
    fn as_str(self) -> &'static str {
        match self {
            JobName::Sync => "sync",
            JobName::Reconcile => "reconcile",
            JobName::TokenRefresh => "token refresh",
            JobName::Rescan => "rescan",
            JobName::ZoneCheck => "zone check",
        }
    }
}

impl std::fmt::Display for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job added to the scheduler.
struct Planned {
    id: Uuid,
    /// Cron jobs: the zone's offset when the job was created (the crate keeps it).
    offset: Option<FixedOffset>,
    /// The token refresh: when it was planned for.
    due: Option<DateTime<Utc>>,
}

/// The schedule and the jobs on it.
pub(super) struct Jobs {
    scheduler: JobScheduler,
    zone: Zone,
    sync_cron: String,
    reconcile_cron: String,
    rescan_every: Option<Duration>,
    planned: tokio::sync::Mutex<BTreeMap<JobName, Planned>>,
    /// Wakes the folder watcher for its periodic rescan.
    pub(super) rescan: Notify,
}

impl Jobs {
    /// An empty schedule for this configuration (jobs are added by [`start`]).
    pub(super) async fn new(config: &Config) -> Result<Self, JobSchedulerError> {
        Ok(Self {
            scheduler: JobScheduler::new().await?,
            zone: config.sync.zone(),
            sync_cron: config.sync.schedule.clone(),
            reconcile_cron: config.sync.reconcile_schedule.clone(),
            rescan_every: config
                .watch
                .enabled
                .then(|| Duration::from_secs(config.watch.rescan_secs.max(1))),
            planned: tokio::sync::Mutex::new(BTreeMap::new()),
            rescan: Notify::new(),
        })
    }

    fn describe(&self, name: JobName) -> String {
        match name {
            JobName::Sync => format!("{} ({})", self.sync_cron, self.zone),
            JobName::Reconcile => format!(
                "{} ({}), a full sync that also finds deletions",
                self.reconcile_cron, self.zone
            ),
            JobName::TokenRefresh => "10 minutes before the access token expires".to_owned(),
            JobName::Rescan => format!(
                "every {} s",
                self.rescan_every.unwrap_or_default().as_secs()
            ),
            JobName::ZoneCheck => format!("every {} s", ZONE_CHECK.as_secs()),
        }
    }
}

/// Puts the jobs on the schedule, starts it, and runs the first sync now.
pub(super) async fn start(d: &Arc<Daemon>) -> Result<(), JobSchedulerError> {
    {
        let mut planned = d.jobs.planned.lock().await;
        for name in [JobName::Sync, JobName::Reconcile] {
            let p = add_cron(d, name).await?;
            planned.insert(name, p);
        }
        let mut repeated = vec![(JobName::ZoneCheck, ZONE_CHECK)];
        if let Some(every) = d.jobs.rescan_every {
            repeated.push((JobName::Rescan, every));
        }
        for (name, every) in repeated {
            let job = Job::new_repeated_async(every, body(d, name))?;
            let id = d.jobs.scheduler.add(job).await?;
            planned.insert(
                name,
                Planned {
                    id,
                    offset: None,
                    due: None,
                },
            );
        }
    }
    d.jobs.scheduler.start().await?;
    refresh_view(d).await;
    let d2 = d.clone();
    d.tracker
        .spawn(async move { sync_runs::scheduled(&d2, false).await });
    Ok(())
}

/// Stops the schedule: no job starts after this (running ones finish on their own).
pub(super) async fn stop(d: &Daemon) {
    let mut scheduler = d.jobs.scheduler.clone();
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!("stopping the job schedule: {e}");
    }
}

/// Adds a cron job in the configured zone.
async fn add_cron(d: &Arc<Daemon>, name: JobName) -> Result<Planned, JobSchedulerError> {
    let expr = match name {
        JobName::Reconcile => d.jobs.reconcile_cron.clone(),
        _ => d.jobs.sync_cron.clone(),
    };
    let job = match d.jobs.zone {
        Zone::Local => Job::new_async_tz(expr.as_str(), chrono::Local, body(d, name))?,
        Zone::Named(tz) => Job::new_async_tz(expr.as_str(), tz, body(d, name))?,
    };
    let id = d.jobs.scheduler.add(job).await?;
    Ok(Planned {
        id,
        offset: Some(d.jobs.zone.offset_at(Utc::now())),
        due: None,
    })
}

type Body = Box<
    dyn FnMut(Uuid, JobScheduler) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// A job's body for the scheduler. It holds the daemon weakly: the scheduler lives in
/// the daemon, and must not keep it alive.
fn body(d: &Arc<Daemon>, name: JobName) -> Body {
    let weak = Arc::downgrade(d);
    Box::new(move |_, _| {
        let weak = weak.clone();
        Box::pin(async move { fire(weak, name).await })
    })
}

/// Runs a job's work in a task of its own (a panic is caught there and logged; the job
/// runs again at its next time), then plans what follows from it.
async fn fire(weak: Weak<Daemon>, name: JobName) {
    let Some(d) = weak.upgrade() else { return };
    if d.shutdown.is_cancelled() {
        return;
    }
    let d2 = d.clone();
    let work = async move {
        match name {
            JobName::Sync => sync_runs::scheduled(&d2, false).await,
            JobName::Reconcile => sync_runs::scheduled(&d2, true).await,
            JobName::TokenRefresh => {
                // A one-shot job: it is spent now, whatever the next plan is.
                d2.jobs.planned.lock().await.remove(&JobName::TokenRefresh);
                let next = sync_runs::refresh_token(&d2).await;
                plan_refresh_at(&d2, next).await;
            }
            JobName::Rescan => d2.jobs.rescan.notify_one(),
            JobName::ZoneCheck => {}
        }
    };
    if !run_caught(&d.tracker, name, work).await && name == JobName::TokenRefresh {
        // A one-shot job: plan it again, or the token would never be refreshed.
        plan_refresh(&d).await;
    }
    follow_zone(&d).await;
}

/// Runs a job's work in a task of its own on `tracker` (so shutdown waits for it): a
/// panic there is logged and reported as `false`; the daemon and the job go on.
async fn run_caught(
    tracker: &tokio_util::task::TaskTracker,
    name: JobName,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> bool {
    match tracker.spawn(work).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(
                "the {name} job failed unexpectedly: {}; it runs again at its next time",
                crate::util::blocking::panic_message_of(e)
            );
            false
        }
    }
}

/// Creates the cron jobs again when the zone's UTC offset is no longer the one they were
/// created with (the crate would otherwise run them an hour off after a DST change).
async fn follow_zone(d: &Arc<Daemon>) {
    let at = Utc::now();
    let now = d.jobs.zone.offset_at(at);
    let mut planned = d.jobs.planned.lock().await;
    for name in [JobName::Sync, JobName::Reconcile] {
        let Some(p) = planned.get(&name) else {
            continue;
        };
        if !offset_moved(p.offset, d.jobs.zone, at) {
            continue;
        }
        let old = p.id;
        match add_cron(d, name).await {
            Ok(new) => {
                if let Err(e) = d.jobs.scheduler.remove(&old).await {
                    tracing::warn!("replacing the {name} job: {e}");
                }
                tracing::info!(
                    "the UTC offset of {} is now {now}: the {name} schedule follows it",
                    d.jobs.zone
                );
                planned.insert(name, new);
            }
            Err(e) => {
                tracing::warn!("could not re-create the {name} job: {e}; it keeps its old offset")
            }
        }
    }
}

/// Whether a cron job created with the zone's offset `created` must be created again
/// at `at`: its zone's offset is another one now (a job without one is not a cron job).
fn offset_moved(created: Option<FixedOffset>, zone: Zone, at: DateTime<Utc>) -> bool {
    created.is_some_and(|o| o != zone.offset_at(at))
}

/// Plans the token refresh for the client in use (ten minutes before its access token
/// expires), or none while no expiry is known.
pub(super) async fn plan_refresh(d: &Arc<Daemon>) {
    let due = match sync_runs::current_client(d).await {
        Some(c) => sync_runs::refresh_due(&c),
        None => None,
    };
    plan_refresh_at(d, due).await;
}

/// Replaces the token refresh job with one due at `due` (none when `None`).
async fn plan_refresh_at(d: &Arc<Daemon>, due: Option<DateTime<Utc>>) {
    let mut planned = d.jobs.planned.lock().await;
    if let Some(p) = planned.get(&JobName::TokenRefresh)
        && p.due == due
    {
        return;
    }
    if let Some(old) = planned.remove(&JobName::TokenRefresh) {
        // A one-shot job that has run is gone already; removing it again is harmless.
        let _ = d.jobs.scheduler.remove(&old.id).await;
    }
    let Some(due) = due else { return };
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    let added = match Job::new_one_shot_async(wait, body(d, JobName::TokenRefresh)) {
        Ok(job) => d.jobs.scheduler.add(job).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(id) => {
            planned.insert(
                JobName::TokenRefresh,
                Planned {
                    id,
                    offset: None,
                    due: Some(due),
                },
            );
        }
        Err(e) => tracing::warn!("could not plan the token refresh: {e}"),
    }
}

/// Reads the jobs' next runs from the scheduler into the view `status` shows.
pub(super) async fn refresh_view(d: &Daemon) {
    let planned: Vec<(JobName, Uuid)> = d
        .jobs
        .planned
        .lock()
        .await
        .iter()
        .filter(|(name, _)| **name != JobName::ZoneCheck)
        .map(|(name, p)| (*name, p.id))
        .collect();
    let mut scheduler = d.jobs.scheduler.clone();
    let mut view = Vec::new();
    for name in [
        JobName::Sync,
        JobName::Reconcile,
        JobName::TokenRefresh,
        JobName::Rescan,
    ] {
        let next = match planned.iter().find(|(n, _)| *n == name) {
            Some((_, id)) => scheduler.next_tick_for_job(*id).await.ok().flatten(),
            None => None,
        };
        if name == JobName::Rescan && d.jobs.rescan_every.is_none() {
            continue;
        }
        view.push(JobStatus {
            name: name.as_str().to_owned(),
            schedule: d.jobs.describe(name),
            next_run: next.map(crate::model::time::rfc3339_secs),
            next_run_local: next.map(|t| d.jobs.zone.wall_clock(t)),
            running: false,
        });
    }
    d.live.set_jobs(view);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_job_that_panics_is_caught_and_the_next_run_goes_ahead() {
        let tracker = tokio_util::task::TaskTracker::new();
        assert!(!run_caught(&tracker, JobName::Rescan, async { panic!("boom") }).await);
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let work = async move { r.store(true, std::sync::atomic::Ordering::Relaxed) };
        assert!(run_caught(&tracker, JobName::Rescan, work).await);
        assert!(ran.load(std::sync::atomic::Ordering::Relaxed));
    }

    #[test]
    fn cron_jobs_are_recreated_once_the_zone_changes_its_offset() {
        let paris = Zone::parse("Europe/Paris").expect("zone");
        // Created in winter (UTC+1); Paris moves to UTC+2 at 01:00 UTC on 29 March 2026.
        let winter = Some(paris.offset_at(at("2026-03-28T12:00:00Z")));
        assert!(!offset_moved(winter, paris, at("2026-03-29T00:59:00Z")));
        assert!(offset_moved(winter, paris, at("2026-03-29T01:01:00Z")));
        let summer = Some(paris.offset_at(at("2026-03-29T12:00:00Z")));
        assert!(!offset_moved(summer, paris, at("2026-06-01T00:00:00Z")));
        // UTC never moves; a job that is not a cron job is never re-created.
        let utc = Zone::parse("UTC").expect("utc");
        let created = Some(utc.offset_at(at("2026-03-28T12:00:00Z")));
        assert!(!offset_moved(created, utc, at("2026-07-01T00:00:00Z")));
        assert!(!offset_moved(None, paris, at("2026-03-29T01:01:00Z")));
    }
}
