//! Running syncs in the daemon: scheduled, asked for by `convos sync`, or the weekly
//! full one; never two at once. Keeps the client across runs (its access token is
//! reused), re-authenticates from the browser when the session dies, backs off after
//! failed runs, and refreshes the access token before it expires. The schedule itself
//! is in [`super::jobs`].

use super::{Daemon, notify};
use crate::api::Client;
use crate::api::auth::Credentials;
use crate::session::{self, ClientSlot, SessionError};
use crate::sync::{self, SyncOptions, SyncReport};
use crate::util::blocking;
use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest pause after repeated failed syncs.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// How soon a token refresh that failed (other than by a dead session) is tried again.
const REFRESH_RETRY: Duration = Duration::from_secs(300);

/// What the daemon's sync runs share.
pub(super) struct SyncRuns {
    /// Held while a sync runs.
    running: tokio::sync::Mutex<()>,
    /// The client, kept across runs so access tokens are reused. It owns the
    /// credentials file (it saves the cookies the service rotates).
    client: ClientSlot,
    failures: AtomicU32,
    backoff_until: Mutex<Option<tokio::time::Instant>>,
    logged_no_creds: AtomicBool,
    logged_dead: AtomicBool,
    /// Browser re-authentication attempts that failed, and when to try again.
    reauth: Mutex<(u32, Option<tokio::time::Instant>)>,
}

impl SyncRuns {
    pub(super) fn new() -> Self {
        Self {
            running: tokio::sync::Mutex::new(()),
            client: ClientSlot::default(),
            failures: AtomicU32::new(0),
            backoff_until: Mutex::new(None),
            logged_no_creds: AtomicBool::new(false),
            logged_dead: AtomicBool::new(false),
            reauth: Mutex::new((0, None)),
        }
    }
}

/// A scheduled run (`full` for the reconcile job): skipped while another runs or
/// during backoff.
pub(super) async fn scheduled(d: &Arc<Daemon>, full: bool) {
    let what = if full {
        "scheduled full sync (reconcile)"
    } else {
        "scheduled sync"
    };
    let Ok(guard) = d.runs.running.try_lock() else {
        tracing::info!("the previous sync is still running; skipping this {what}");
        return;
    };
    let backoff = d.runs.backoff_until.lock().ok().and_then(|b| *b);
    if let Some(until) = backoff
        && until > tokio::time::Instant::now()
    {
        tracing::info!(
            "skipping this {what}: backing off after {} failed run(s) (next attempt in {} s or later)",
            d.runs.failures.load(Ordering::Relaxed),
            (until - tokio::time::Instant::now()).as_secs()
        );
        return;
    }
    guarded_run(d, full, guard).await;
}

/// A sync asked for by `convos sync`: runs now, or after the one running. A run already
/// under way may have listed before the user's request (they ask because they just
/// changed something), so its report would not answer it; `waiting` hears when that wait
/// starts.
pub(super) async fn sync_now(d: &Arc<Daemon>, full: bool, waiting: impl FnOnce()) -> SyncReport {
    let guard = match d.runs.running.try_lock() {
        Ok(guard) => guard,
        Err(_) => {
            waiting();
            d.runs.running.lock().await
        }
    };
    guarded_run(d, full, guard).await
}

/// Runs one sync in its own task (so a panic is contained), holding the run lock.
async fn guarded_run(
    d: &Arc<Daemon>,
    full: bool,
    guard: tokio::sync::MutexGuard<'_, ()>,
) -> SyncReport {
    d.live.sync_running.store(true, Ordering::Relaxed);
    let d2 = d.clone();
    let report = match tokio::spawn(async move { run_sync(&d2, full).await }).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("the sync job failed unexpectedly: {e}; the daemon keeps running");
            SyncReport::stopped(sync::StopReason::Internal {
                error: format!("internal error: {e}"),
            })
        }
    };
    d.live.sync_running.store(false, Ordering::Relaxed);
    let failed = report.stop.is_some();
    let n = if failed {
        d.runs.failures.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        d.runs.failures.store(0, Ordering::Relaxed);
        0
    };
    if let Ok(mut b) = d.runs.backoff_until.lock() {
        *b = (n > 0).then(|| {
            let wait = crate::util::backoff(Duration::from_secs(60), n, MAX_BACKOFF);
            tokio::time::Instant::now() + wait
        });
    }
    drop(guard);
    // The run may have exchanged the session: the refresh goes by the new expiry.
    super::jobs::plan_refresh(d).await;
    report
}

/// The client for the current credentials (with their fingerprint), built or
/// reused; `Err` says why there is none.
async fn client(d: &Arc<Daemon>) -> Result<(String, Arc<Client>), SessionError> {
    let paths = d.ctx.paths.clone();
    let creds = match blocking("reading the credentials", move || {
        session::load_credentials(&paths)
    })
    .await??
    {
        Some(c) => c,
        None => {
            if !d.runs.logged_no_creds.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    "no ChatGPT session stored: scheduled syncs do nothing until you run `convos auth` \
                     (or `convos auth --from-browser`); exports dropped into the watched folders are still imported"
                );
            }
            return Err(SessionError::NoCredentials);
        }
    };
    d.runs.logged_no_creds.store(false, Ordering::Relaxed);
    let fp = creds.fingerprint();
    let (a, c2) = (d.ctx.archive.clone(), creds.clone());
    if blocking("reading the credentials state", move || {
        session::known_dead(&a, &c2)
    })
    .await??
    {
        if let Some(fresh) = reauth_from_browser(d, &fp).await {
            return Ok(fresh);
        }
        if !d.runs.logged_dead.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "session expired: run `convos auth` with a fresh cookie from chatgpt.com (syncing resumes as soon as you do)"
            );
        }
        return Err(SessionError::DeadSession);
    }
    d.runs.logged_dead.store(false, Ordering::Relaxed);
    let ctx = &d.ctx;
    let (c, new) = d
        .runs
        .client
        .for_credentials(&ctx.config, &ctx.paths, &ctx.archive, creds)
        .await?;
    if new {
        tracing::debug!(
            "a new client for the credentials in {}",
            d.ctx.paths.credentials.display()
        );
    }
    Ok((fp, c))
}

/// When the session dies, re-reads the session cookie from the configured browser,
/// verifies it and switches to it. At most one browser read per failed exchange, with
/// backoff after failures; one log line either way.
async fn reauth_from_browser(
    d: &Arc<Daemon>,
    dead_fingerprint: &str,
) -> Option<(String, Arc<Client>)> {
    let (choice, archive) = (d.ctx.config.auth.browser.clone(), d.ctx.archive.clone());
    let browser = blocking("reading the browser choice", move || {
        session::browser::reauth_browser(&choice, &archive)
    })
    .await
    .ok()
    .flatten()?;
    {
        let r = d.runs.reauth.lock().ok()?;
        if let Some(at) = r.1
            && at > tokio::time::Instant::now()
        {
            tracing::debug!(
                "not re-reading {browser} yet (backing off after {} failure(s))",
                r.0
            );
            return None;
        }
    }
    let fail = |why: String| {
        let mut r = match d.runs.reauth.lock() {
            Ok(r) => r,
            Err(_) => return,
        };
        r.0 += 1;
        let wait = crate::util::backoff(Duration::from_secs(300), r.0, MAX_BACKOFF);
        r.1 = Some(tokio::time::Instant::now() + wait);
        tracing::warn!(
            "session expired and re-authentication from {browser} failed: {why}; next try in {} min (or run `convos auth`)",
            wait.as_secs() / 60
        );
    };
    let (home, b2, dead) = (
        d.ctx.platform.home.clone(),
        browser.clone(),
        dead_fingerprint.to_owned(),
    );
    let read = blocking("reading the browser's cookies", move || {
        session::browser::reread(&b2, home.as_deref(), &dead)
    })
    .await;
    let creds = match read {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            fail(e.to_string());
            return None;
        }
        Err(e) => {
            fail(e.to_string());
            return None;
        }
    };
    match adopt(d, &creds, Some(&browser)).await {
        Ok(adopted) => {
            if let Ok(mut r) = d.runs.reauth.lock() {
                *r = (0, None);
            }
            tracing::info!(
                "session expired; re-authenticated with the session cookie from {}",
                creds.source
            );
            Some((adopted.stored.fingerprint(), adopted.client))
        }
        Err(why) => {
            fail(why.to_string());
            None
        }
    }
}

/// Verifies credentials by an exchange, stores them and makes them the daemon's
/// client (see [`session::verify_and_store`]).
async fn adopt(
    d: &Arc<Daemon>,
    creds: &Credentials,
    browser: Option<&str>,
) -> Result<session::Adopted, SessionError> {
    let ctx = &d.ctx;
    let adopted = session::verify_and_store(
        &ctx.config,
        &ctx.paths,
        &ctx.archive,
        creds.clone(),
        browser,
        &d.runs.client,
    )
    .await?;
    d.runs.logged_dead.store(false, Ordering::Relaxed);
    super::jobs::plan_refresh(d).await;
    Ok(adopted)
}

async fn run_sync(d: &Arc<Daemon>, full: bool) -> SyncReport {
    let (fp, client) = match client(d).await {
        Ok(c) => c,
        Err(e) => {
            return SyncReport::stopped(e.into());
        }
    };
    let mut report = one_run(d, &client, full).await;
    if report.session_died()
        && !d.shutdown.is_cancelled()
        && let Some((_, fresh)) = reauth_from_browser(d, &fp).await
    {
        report = one_run(d, &fresh, full).await;
    }
    report
}

/// One sync with this client, stopped at a safe point on shutdown.
async fn one_run(d: &Arc<Daemon>, client: &Arc<Client>, full: bool) -> SyncReport {
    notify(&[sd_notify::NotifyState::Status("syncing from chatgpt.com")]);
    let opts = SyncOptions::from_config(
        &d.ctx.config.sync,
        d.ctx.config.api.download_attachments,
        full,
    );
    let now = crate::model::time::now_secs();
    let run = sync::sync_once(client, &d.ctx.archive, &opts, now, &d.ctx.cancel);
    let report = tokio::select! {
        r = run => r,
        _ = async {
            d.shutdown.cancelled().await;
            // The run stops at its next safe point; a request in flight gets a moment.
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {
            tracing::info!("sync interrupted by shutdown; it resumes on the next run");
            SyncReport::stopped(sync::StopReason::Cancelled)
        }
    };
    let expired = report.session_expired();
    let (paths, archive, c2) = (d.ctx.paths.clone(), d.ctx.archive.clone(), client.clone());
    let _ = blocking("recording the credentials state", move || {
        session::record_after_use(&paths, &archive, &c2, expired)
    })
    .await;
    if expired {
        d.runs.logged_dead.store(true, Ordering::Relaxed);
    }
    super::trim_heap();
    let mut summary = match &report.stop {
        None => format!(
            "last sync: {} new, {} updated, {} failed",
            report.new, report.updated, report.failed
        ),
        Some(e) => format!("last sync stopped: {e}"),
    };
    if !report.degraded.is_empty() {
        summary.push_str(&format!("; degraded: {}", report.degraded.join(", ")));
    }
    notify(&[sd_notify::NotifyState::Status(&summary)]);
    report
}

/// The token refresh job: re-exchanges the session when the access token is about to
/// expire. When the service says the session died, records it and tries the browser;
/// another failure is tried again in [`REFRESH_RETRY`]. Returns when to run next, if
/// ever (the job is re-planned from it).
pub(super) async fn refresh_token(d: &Arc<Daemon>) -> Option<chrono::DateTime<chrono::Utc>> {
    let c = d.runs.client.current().await?;
    if !c.needs_refresh().await {
        return refresh_due(&c);
    }
    match c.refresh_session().await {
        Ok(info) => {
            tracing::info!(
                "access token refreshed; valid until {}",
                info.access_token_expires
                    .map(crate::model::time::rfc3339_secs)
                    .unwrap_or_else(|| "?".into())
            );
            refresh_due(&c)
        }
        Err(e) => {
            tracing::warn!("token refresh failed: {e}");
            if matches!(e, crate::api::ApiError::SessionExpired) {
                let (paths, archive, c2) = (d.ctx.paths.clone(), d.ctx.archive.clone(), c.clone());
                let _ = blocking("recording the credentials state", move || {
                    session::record_after_use(&paths, &archive, &c2, true)
                })
                .await;
                let fp = c.fingerprint().await;
                if let Some((_, fresh)) = reauth_from_browser(d, &fp).await {
                    return refresh_due(&fresh);
                }
            }
            // Try again after a while rather than spinning.
            chrono::TimeDelta::from_std(REFRESH_RETRY)
                .ok()
                .and_then(|r| chrono::Utc::now().checked_add_signed(r))
        }
    }
}

/// When the client's access token should be refreshed (at once when that is past);
/// `None` when its expiry is unknown.
pub(super) fn refresh_due(c: &Client) -> Option<chrono::DateTime<chrono::Utc>> {
    c.refresh_at().map(|at| at.max(chrono::Utc::now()))
}

/// The client in use, if any (for the refresh plan).
pub(super) async fn current_client(d: &Daemon) -> Option<Arc<Client>> {
    d.runs.client.current().await
}

/// Verifies new cookies (from `convos auth` while the daemon runs) and stores them.
pub(super) async fn authenticate(
    d: &Arc<Daemon>,
    payload: crate::control::AuthPayload,
) -> Result<String, SessionError> {
    let cookies = payload
        .cookies
        .into_iter()
        .map(|(n, v)| (n, SecretString::from(v)))
        .collect();
    let creds = Credentials::from_cookies(cookies, &payload.source)?;
    let info = adopt(d, &creds, payload.browser.as_deref()).await?.info;
    d.runs.failures.store(0, Ordering::Relaxed);
    if let Ok(mut b) = d.runs.backoff_until.lock() {
        *b = None;
    }
    tracing::info!(
        "new session stored (from {}); syncing can resume",
        creds.source
    );
    Ok(format!(
        "{} (the running daemon uses it now)",
        session::verified_message(&creds, &info, &d.ctx.paths)
    ))
}
