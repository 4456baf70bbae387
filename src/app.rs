//! The command-line application: turns a parsed [`Cli`] and loaded configuration into
//! work and an exit code. Reading and importing commands run in-process here; when a
//! daemon is running they go through its control socket instead (it holds the
//! archive's lock).

use crate::archive::{Archive, OpenOptions};
use crate::cli::{Cli, Command, ExportFormat, ShowFormat};
use crate::commands::{self, CommandError, Context, Request};
use crate::config::{Loaded, PlatformDirs};
use crate::daemon::control::{self, ControlRequest};
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
    let mut out = std::io::BufWriter::new(CleanWriter::new(stdout.lock(), !prints_json(&request)));
    let result = commands::handle(&ctx, &request, &mut out);
    let flushed = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(CleanWriter::finish)
        .map(drop);
    match result {
        Ok(()) => ignore_broken_pipe(flushed),
        Err(CommandError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::with_code(e.exit_code(), e.into())),
    }
}

/// Whether a request prints JSON, which stays exact, rather than text for people, whose
/// control characters (from titles, messages, file names) are made visible on the way to
/// standard output: one filter for every human output, whoever wrote it.
fn prints_json(req: &Request) -> bool {
    match req {
        Request::Status(a) => a.json,
        Request::List(a) => a.json,
        Request::Search(a) => a.json,
        Request::Show(a) => matches!(a.format, ShowFormat::Json),
        Request::Export(a) => a.out == "-" && !matches!(a.format, ExportFormat::Md),
        Request::Import(_) | Request::Sync(_) => false,
    }
}

/// Sends a request to the running daemon, if one answers on the socket.
pub fn via_daemon(
    socket: &std::path::Path,
    req: &ControlRequest,
) -> Result<Option<Result<(), AppError>>, AppError> {
    let exact = matches!(req, ControlRequest::Command(r) if prints_json(r));
    let mut out = CleanWriter::new(std::io::stdout(), !exact);
    let mut err = std::io::stderr();
    let called = control::call(socket, req, &mut out, &mut err)
        // A byte held back at the very end (a lone `\r`) is written now.
        .and_then(|exit| out.finish().map(|_| exit));
    match called {
        Ok(None) => Ok(None),
        Ok(Some(exit)) if exit.code == 0 => Ok(Some(Ok(()))),
        Ok(Some(exit)) => Ok(Some(Err(AppError::with_code(
            exit.code,
            anyhow::anyhow!(
                exit.error
                    .unwrap_or_else(|| "the daemon reported a failure".into())
            ),
        )))),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(Ok(()))),
        Err(e) => Err(AppError::from(anyhow::anyhow!(
            "the running daemon did not answer on {}: {e}",
            socket.display()
        ))),
    }
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
