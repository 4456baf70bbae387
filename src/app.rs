//! The command-line application: turns a parsed [`Cli`] and loaded configuration into
//! work and an exit code. Reading and importing commands run in-process here; when a
//! daemon is running they go through its control socket instead (it holds the
//! archive's lock).

use crate::archive::{Archive, OpenOptions};
use crate::cli::{Cli, Command};
use crate::commands::{self, CommandError, Context, Request};
use crate::config::{Loaded, PlatformDirs};
use crate::ingest::ProgressMode;
use std::io::{IsTerminal, Write};
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
        Command::Status(a) => Request::Status(a.clone()),
        Command::List(a) => Request::List(a.clone()),
        Command::Show(a) => Request::Show(a.clone()),
        Command::Search(a) => Request::Search(a.clone()),
        Command::Export(a) => Request::Export(a.clone()),
        Command::Import(a) => Request::Import(a.clone()),
        Command::Sync(a) => {
            return crate::auth_sync::sync_command(&loaded, platform, a.full, cli.quiet == 0);
        }
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
        Command::Run => {
            return Err(AppError::from(anyhow::anyhow!(
                "`{}` is not available in this build yet",
                command_name(&cli.command)
            )));
        }
    };
    let cwd = std::env::current_dir()?;
    let request = request.absolutize(&cwd);
    let ctx = open_context(&loaded, platform, cli.quiet == 0)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = commands::handle(&ctx, &request, &mut out);
    let flushed = out.flush();
    match result {
        Ok(()) => ignore_broken_pipe(flushed),
        Err(CommandError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::with_code(e.exit_code(), e.into())),
    }
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
    })
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Run => "run",
        Command::Sync(_) => "sync",
        Command::Import(_) => "import",
        Command::Auth(_) => "auth",
        Command::Status(_) => "status",
        Command::List(_) => "list",
        Command::Show(_) => "show",
        Command::Search(_) => "search",
        Command::Export(_) => "export",
        Command::Service(_) => "service",
    }
}
