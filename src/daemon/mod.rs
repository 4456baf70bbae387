//! `convos run`: the composition root. Takes the data dir's lock, opens the archive,
//! imports the configured paths, starts the sync schedule, the token refresh, the
//! folder watcher, the Markdown mirror and the control socket, reports readiness to
//! systemd, and on shutdown stops taking work, lets the running unit of work reach a
//! safe point, flushes the archive and exits.

mod index;
mod jobs;
mod mirror_runs;
pub mod server;
mod sync_runs;
pub mod watch;
mod web;

use crate::archive::{Archive, ArchiveError, OpenOptions};
use crate::commands::Context;
use crate::commands::status::{DaemonInfo, DaemonSnapshot, JobStatus};
use crate::config::{Loaded, PlatformDirs};
use crate::ingest::{ImportReport, ProgressMode};
use crate::sync::SyncReport;
use crate::util::blocking;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for running work before flushing and exiting.
const DRAIN: Duration = Duration::from_secs(3);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the data dir.
    #[error(
        "convos is already running for {dir} (pid {pid}); stop it first (`systemctl --user stop convos`) or use its commands, which reach it through its socket"
    )]
    AlreadyRunning {
        /// The data dir.
        dir: PathBuf,
        /// The other process, as its lock file says.
        pid: String,
    },
    /// The lock file could not be used.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The archive could not be opened.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The job schedule could not be set up.
    #[error("cannot start the job schedule: {0}")]
    Scheduler(tokio_cron_scheduler::JobSchedulerError),
    /// The Markdown mirror cannot be set up.
    #[error("cannot keep the Markdown mirror: {0}")]
    Mirror(#[from] crate::mirror::MirrorError),
    /// Start-up work panicked.
    #[error(transparent)]
    Internal(#[from] crate::util::Panicked),
    /// The control socket could not be created.
    #[error("cannot create the control socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Live facts for `convos status`.
struct Live {
    pid: u32,
    started: Instant,
    sync_running: AtomicBool,
    watching: Vec<String>,
    timezone: String,
    /// The jobs' next runs, as the scheduler last told them (see `jobs::refresh_view`).
    jobs: Mutex<Vec<JobStatus>>,
    /// Where the web viewer is served, or why it is not.
    web: Mutex<web::WebState>,
    /// The search index and its indexer (`None` when it could not be opened).
    search: Option<Arc<crate::search::LiveIndex>>,
}

impl Live {
    fn set_web(&self, state: web::WebState) {
        if let Ok(mut w) = self.web.lock() {
            *w = state;
        }
    }

    fn set_jobs(&self, jobs: Vec<JobStatus>) {
        if let Ok(mut j) = self.jobs.lock() {
            *j = jobs;
        }
    }
}

impl DaemonInfo for Live {
    fn snapshot(&self) -> DaemonSnapshot {
        let sync_running = self.sync_running.load(Ordering::Relaxed);
        let mut jobs = self.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        let web = self.web.lock().map(|w| w.clone()).unwrap_or_default();
        for j in &mut jobs {
            j.running = j.name == "sync" && sync_running;
        }
        DaemonSnapshot {
            pid: self.pid,
            uptime_secs: self.started.elapsed().as_secs(),
            next_sync: jobs
                .iter()
                .find(|j| j.name == "sync")
                .and_then(|j| j.next_run.clone()),
            sync_running,
            watching: self.watching.clone(),
            timezone: Some(self.timezone.clone()),
            jobs,
            web_url: web.url,
            web_problem: web.problem,
        }
    }

    fn search(&self) -> Option<Arc<crate::search::LiveIndex>> {
        self.search.clone()
    }
}

/// The running daemon, shared by its tasks.
pub struct Daemon {
    pub(crate) ctx: Context,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) import_lock: tokio::sync::Mutex<()>,
    live: Arc<Live>,
    runs: sync_runs::SyncRuns,
    jobs: jobs::Jobs,
    mirror_runs: mirror_runs::MirrorRuns,
}

/// Sends a notification to systemd (a no-op outside systemd).
fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Returns freed memory to the system after big work (glibc keeps it otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Takes the data dir's exclusive lock and writes our pid into it.
fn lock_data_dir(dir: &std::path::Path, path: &std::path::Path) -> Result<File, DaemonError> {
    crate::archive::private::create_private_dir(dir).map_err(|source| DaemonError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| DaemonError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            return Err(DaemonError::AlreadyRunning {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(DaemonError::Lock {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    let _ = f.sync_all();
    Ok(f)
}

/// Opens the archive, waiting a little while a one-shot command still holds it (a
/// `convos status` started just before the daemon got its socket up).
async fn open_archive(dir: &std::path::Path) -> Result<Archive, DaemonError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = dir.to_path_buf();
        let opened = blocking("opening the archive", move || {
            let opts = OpenOptions {
                flush_every_ms: None,
                ..OpenOptions::default()
            };
            Archive::open(&d, &opts)
        })
        .await?;
        match opened {
            Err(ArchiveError::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn run(
    loaded: Loaded,
    platform: PlatformDirs,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let (dir, lock_path) = (
        loaded.paths.data_dir.clone(),
        loaded.paths.lock_file.clone(),
    );
    let lock = blocking("locking the data dir", move || {
        lock_data_dir(&dir, &lock_path)
    })
    .await??;
    let daemon = assemble(&loaded, platform, &shutdown).await?;
    if let Some(search) = daemon.live.search.clone() {
        daemon.tracker.spawn(index::follow(daemon.clone(), search));
    }
    if !start_up_import(&daemon).await {
        tracing::info!("shut down during the start-up import; it resumes on the next start");
        finish(&daemon, lock).await;
        return Ok(());
    }
    let listener =
        server::bind(&daemon.ctx.paths.socket).map_err(|source| DaemonError::Socket {
            path: daemon.ctx.paths.socket.clone(),
            source,
        })?;
    daemon
        .tracker
        .spawn(server::serve(daemon.clone(), listener));
    web::start(&daemon).await;
    if !daemon.live.watching.is_empty() {
        let dirs = daemon.ctx.paths.watch_dirs.clone();
        daemon.tracker.spawn(watch::run(daemon.clone(), dirs));
    }
    log_start(&daemon).await;
    mirror_runs::spawn(&daemon);
    jobs::start(&daemon).await.map_err(DaemonError::Scheduler)?;
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("running; first sync starting"),
    ]);
    spawn_watchdog(&daemon);

    shutdown.cancelled().await;
    drain(&daemon).await;
    finish(&daemon, lock).await;
    Ok(())
}

/// Opens the archive and builds the daemon's shared state.
async fn assemble(
    loaded: &Loaded,
    platform: PlatformDirs,
    shutdown: &CancellationToken,
) -> Result<Arc<Daemon>, DaemonError> {
    let archive = open_archive(&loaded.paths.archive_dir).await?;
    let (data_dir, a) = (loaded.paths.data_dir.clone(), archive.clone());
    let search = blocking("opening the search index", move || {
        index::open(&data_dir, a)
    })
    .await?;
    let watch_dirs: &[PathBuf] = if loaded.config.watch.enabled {
        &loaded.paths.watch_dirs
    } else {
        &[]
    };
    let live = Arc::new(Live {
        pid: std::process::id(),
        started: Instant::now(),
        sync_running: AtomicBool::new(false),
        watching: watch_dirs.iter().map(|d| d.display().to_string()).collect(),
        timezone: loaded.config.sync.zone().to_string(),
        jobs: Mutex::new(Vec::new()),
        web: Mutex::new(web::WebState::default()),
        search,
    });
    let ctx = Context {
        archive,
        config: loaded.config.clone(),
        paths: loaded.paths.clone(),
        platform,
        progress: ProgressMode::Log,
        cancel: Arc::new(AtomicBool::new(false)),
        daemon: Some(live.clone() as Arc<dyn DaemonInfo>),
        config_file: loaded.file.clone(),
        user_modes: loaded.user_modes,
    };
    Ok(Arc::new(Daemon {
        jobs: jobs::Jobs::new(&ctx.config)
            .await
            .map_err(DaemonError::Scheduler)?,
        runs: sync_runs::SyncRuns::new(),
        mirror_runs: mirror_runs::MirrorRuns::new(&ctx)?,
        ctx,
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
        import_lock: tokio::sync::Mutex::new(()),
        live,
    }))
}

/// Imports `CONVOS_IMPORT_PATHS` / `[sync] import_paths` before the service starts.
/// A shutdown meanwhile stops the import at a safe point (the cancel flag is otherwise
/// set only once the service is up); `false` then, and the service does not start.
async fn start_up_import(daemon: &Arc<Daemon>) -> bool {
    let import_paths = daemon.ctx.config.import_paths(&daemon.ctx.platform);
    if import_paths.is_empty() {
        return true;
    }
    tracing::info!(
        "importing {} file(s) from CONVOS_IMPORT_PATHS / [sync] import_paths",
        import_paths.len()
    );
    let import = daemon.import(import_paths);
    tokio::pin!(import);
    tokio::select! {
        _ = &mut import => {}
        _ = daemon.shutdown.cancelled() => {
            daemon.ctx.cancel.store(true, Ordering::Relaxed);
            import.await;
        }
    }
    !daemon.shutdown.is_cancelled()
}

/// The start line: what the daemon watches, its schedule, its credentials, its socket.
async fn log_start(daemon: &Daemon) {
    let (config, paths) = (&daemon.ctx.config, &daemon.ctx.paths);
    let p = paths.clone();
    let creds_line = match blocking("reading the credentials", move || {
        crate::session::load_credentials(&p)
    })
    .await
    {
        Ok(Ok(Some(c))) => format!("credentials present (from {})", c.source),
        Ok(Ok(None)) => {
            "no credentials (run `convos auth` to sync from chatgpt.com; imports work without)"
                .to_owned()
        }
        Ok(Err(e)) => format!("credentials unusable: {e}"),
        Err(_) => "credentials unknown".to_owned(),
    };
    let a = daemon.ctx.archive.clone();
    let token_line = blocking("reading the credentials state", move || {
        a.state::<crate::session::CredentialsStatus>(crate::session::CREDENTIALS_KEY)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .flatten()
    .and_then(|s| s.access_token_expires)
    .map(|e| format!("; access token expires {e}"))
    .unwrap_or_default();
    let zone = config.sync.zone();
    let next = crate::config::parse_schedule(&config.sync.schedule)
        .ok()
        .and_then(|c| zone.next_after(&c, chrono::Utc::now()))
        .map(|n| format!(", then next at {}", zone.wall_clock(n)))
        .unwrap_or_default();
    let watching = if config.watch.enabled {
        format!(
            "watching {}",
            crate::commands::status::describe_watch(true, &paths.watch_dirs, |d| d.is_dir())
        )
    } else {
        "not watching folders ([watch] enabled = false)".to_owned()
    };
    tracing::info!(
        "convos {} running (pid {}): data dir {}; {watching}; sync schedule \"{}\" ({zone}), first sync now{next}; full sync \"{}\"; {creds_line}{token_line}; control socket {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        paths.data_dir.display(),
        config.sync.schedule,
        config.sync.reconcile_schedule,
        paths.socket.display()
    );
}

/// Tells systemd the daemon is alive, at half its watchdog interval (when it asks).
fn spawn_watchdog(daemon: &Daemon) {
    let Some(every) = sd_notify::watchdog_enabled() else {
        return;
    };
    let token = daemon.shutdown.clone();
    daemon.tracker.spawn(async move {
        let mut tick = tokio::time::interval(every / 2);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => notify(&[sd_notify::NotifyState::Watchdog]),
            }
        }
    });
}

/// Stops taking work and lets the running unit of work reach a safe point (for at
/// most [`DRAIN`]).
async fn drain(daemon: &Daemon) {
    tracing::info!("shutting down: finishing the current unit of work");
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping"),
    ]);
    jobs::stop(daemon).await;
    daemon.ctx.cancel.store(true, Ordering::Relaxed);
    daemon.tracker.close();
    if tokio::time::timeout(DRAIN, daemon.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "work still running after {} s; stopping it at a safe point",
            DRAIN.as_secs()
        );
    }
    if let Some(search) = daemon.live.search.clone() {
        index::stop(search).await;
    }
}

/// Flushes the archive, removes the socket and lets go of the data dir.
async fn finish(daemon: &Daemon, lock: File) {
    let a = daemon.ctx.archive.clone();
    if let Ok(Err(e)) = blocking("flushing the archive", move || a.flush()).await {
        tracing::error!("final flush failed: {e}");
    }
    let _ = std::fs::remove_file(&daemon.ctx.paths.socket);
    drop(lock);
    tracing::info!("stopped");
}

impl Daemon {
    /// Imports paths (one import at a time), off the async threads.
    pub(crate) async fn import(&self, paths: Vec<PathBuf>) -> ImportReport {
        let _guard = self.import_lock.lock().await;
        let (ctx, given) = (self.ctx.clone(), paths.clone());
        let report = match blocking("importing", move || {
            let r = crate::commands::import(&ctx, &paths, false);
            trim_heap();
            r
        })
        .await
        {
            Ok(r) => r,
            // A panic is a failure of every path (shown in `status`), never a success.
            Err(e) => {
                let r = ImportReport::crashed(&given, &e.to_string());
                let (archive, remembered) = (self.ctx.archive.clone(), r.clone());
                let _ = blocking("recording the import", move || {
                    crate::commands::status::remember_import(&archive, &remembered)
                })
                .await;
                r
            }
        };
        let imported: u64 = report.files.iter().map(|f| f.new + f.updated).sum();
        if imported > 0 {
            notify(&[sd_notify::NotifyState::Status(&format!(
                "imported {imported} conversations"
            ))]);
        }
        report
    }

    /// Runs a sync now (or after the one running) and returns its report.
    pub(crate) async fn sync_now(
        self: &Arc<Self>,
        full: bool,
        waiting: impl FnOnce(),
    ) -> SyncReport {
        sync_runs::sync_now(self, full, waiting).await
    }

    /// Verifies and stores new credentials sent by `convos auth`.
    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        payload: crate::control::AuthPayload,
    ) -> Result<String, crate::session::SessionError> {
        sync_runs::authenticate(self, payload).await
    }
}
