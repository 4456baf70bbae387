//! The command-line application: turns a parsed [`Cli`] and loaded configuration into
//! work and an exit code. Reading and importing commands run in-process here; when a
//! daemon is running they go through its control socket instead (it holds the
//! archive's lock).

use crate::archive::{Archive, OpenOptions};
use crate::cli::{Cli, Command};
use crate::commands::{self, CommandError, Context};
use crate::config::{Loaded, PlatformDirs};
use crate::control::client::{self, Reply};
use crate::control::{ControlRequest, FailureKind, Request};
use crate::ingest::ProgressMode;
use crate::render::terminal::CleanWriter;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct AppError {
    /// Process exit code.
    pub code: u8,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError {
            code: 1,
            error: e.into(),
        }
    }
}

impl AppError {
    /// An error with a specific exit code.
    pub fn with_code(code: u8, error: anyhow::Error) -> Self {
        AppError { code, error }
    }
}

/// Runs the command.
pub fn run(cli: Cli, loaded: Loaded, platform: PlatformDirs) -> Result<(), AppError> {
    let request = match &cli.command {
        Command::Run => return run_daemon(loaded, platform),
        Command::Auth(a) => return crate::auth_sync::auth_command(&loaded, platform, a),
        Command::Service(a) => {
            if cli.config.is_some() || cli.data_dir.is_some() {
                // The service starts `convos run` without flags or CONVOS_* variables.
                eprintln!(
                    "convos: note: --config/--data-dir (or CONVOS_CONFIG/CONVOS_DATA_DIR) apply \
                     to this command only; the service reads the default config file, so set \
                     data_dir there if you need another location"
                );
            }
            let report = crate::service::run(a.action, a.dry_run)?;
            print!("{report}");
            return Ok(());
        }
        Command::Status(a) => Request::Status(a.clone()),
        Command::List(a) => Request::List(a.clone()),
        Command::Show(a) => Request::Show(a.clone()),
        Command::Search(a) => Request::Search(a.clone()),
        Command::Export(a) => Request::Export(a.clone()),
        Command::Import(a) => Request::Import(a.clone()),
        Command::Sync(a) => Request::Sync(a.clone()),
    };
    let cwd = std::env::current_dir()?;
    let request = request.absolutize(&cwd);
    // A running daemon holds the archive: go through it.
    if let Some(result) = via_daemon(
        &loaded.paths.socket,
        &ControlRequest::Command(request.clone()),
    )? {
        return result;
    }
    if let Request::Sync(a) = &request {
        return crate::auth_sync::sync_command(&loaded, platform, a.full, cli.quiet == 0);
    }
    let ctx = open_context(&loaded, platform, cli.quiet == 0)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(CleanWriter::new(stdout.lock(), !request.prints_json()));
    let result = commands::handle(&ctx, &request, &mut out);
    let flushed = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(CleanWriter::finish)
        .map(drop);
    match result {
        Ok(()) => ignore_broken_pipe(flushed),
        Err(CommandError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::with_code(exit_code(e.kind()), e.into())),
    }
}

/// The exit code of a kind of failure.
pub fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Failed => 1,
        FailureKind::Usage => 2,
        FailureKind::Config => crate::config::EXIT_CONFIG,
    }
}

/// Sends a request to the running daemon, if one answers on the socket.
pub fn via_daemon(
    socket: &std::path::Path,
    req: &ControlRequest,
) -> Result<Option<Result<(), AppError>>, AppError> {
    Ok(client::via_daemon(socket, req)?.map(|reply| match reply {
        Reply::Done => Ok(()),
        Reply::Failed { kind, message } => Err(AppError::with_code(
            exit_code(kind),
            anyhow::anyhow!(message),
        )),
    }))
}

/// `convos run`: the daemon in the foreground until SIGTERM or SIGINT.
fn run_daemon(loaded: Loaded, platform: PlatformDirs) -> Result<(), AppError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM received"); t.cancel(); }
                    _ = int.recv() => { tracing::info!("SIGINT received"); t.cancel(); }
                    _ = hup.recv() => tracing::info!(
                        "SIGHUP received: configuration changes take effect after a restart \
                         (systemctl --user restart convos)"
                    ),
                }
            }
        });
        crate::daemon::run(loaded, platform, token).await
    });
    // Blocking work still running (an import at a safe point) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map_err(AppError::from)
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<(), AppError> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Opens the archive and builds the handler context for in-process commands.
pub fn open_context(
    loaded: &Loaded,
    platform: PlatformDirs,
    show_progress: bool,
) -> Result<Context, AppError> {
    let archive = Archive::open(&loaded.paths.archive_dir, &OpenOptions::default())?;
    let progress = if show_progress && std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Log
    };
    Ok(Context {
        archive,
        config: loaded.config.clone(),
        paths: loaded.paths.clone(),
        platform,
        progress,
        cancel: Arc::new(AtomicBool::new(false)),
        daemon: None,
        config_file: loaded.file.clone(),
    })
}
