//! The command-line application: turns a parsed [`Cli`] and loaded configuration into
//! work and an exit code. Reading and importing commands run in-process here; when a
//! daemon is running they go through its control socket instead (it holds the
//! archive's lock). One file per command family; every exit code is in [`exit`].

mod auth;
mod commands;
mod daemon;
pub mod exit;
mod service;
pub mod sync;
mod web;

use crate::archive::{Archive, OpenOptions};
use crate::cli::{Cli, Command, SearchArgs};
use crate::commands::Context;
use crate::config::{Loaded, PlatformDirs};
use crate::control::client::{self, Reply};
use crate::control::{ControlRequest, Request};
use crate::ingest::ProgressMode;
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
            code: exit::FAILURE,
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
        Command::Run => return daemon::run(loaded, platform),
        Command::Auth(a) => return auth::run(&loaded, platform, a),
        Command::Web(a) => return web::run(&loaded, a),
        Command::Service(a) => {
            return service::run(a, cli.config.is_some() || cli.data_dir.is_some());
        }
        Command::Status(a) => Request::Status(a.clone()),
        Command::List(a) => Request::List(a.clone()),
        Command::Show(a) => Request::Show(a.clone()),
        Command::Search(a) => Request::Search(SearchArgs {
            // Only the CLI knows whether its standard output is a terminal.
            highlight: !a.json && std::io::stdout().is_terminal(),
            ..a.clone()
        }),
        Command::Reindex(a) => Request::Reindex(a.clone()),
        Command::Export(a) => Request::Export(a.clone()),
        Command::Mirror(a) => Request::Mirror(a.clone()),
        Command::Import(a) => Request::Import(a.clone()),
        Command::Sync(a) => Request::Sync(a.clone()),
    };
    let request = request.absolutize(&std::env::current_dir()?);
    // A running daemon holds the archive: go through it.
    let req = ControlRequest::Command(request.clone());
    if let Some(result) = via_daemon(&loaded.paths.socket, &req)? {
        return result;
    }
    let progress = cli.quiet == 0;
    match request {
        Request::Sync(a) => sync::run(&loaded, platform, a.full, progress),
        request => commands::run(&request, &loaded, platform, progress),
    }
}

/// Sends a request to the running daemon, if one answers on the socket: `None` when
/// none does, else how the command ended there.
fn via_daemon(
    socket: &std::path::Path,
    req: &ControlRequest,
) -> Result<Option<Result<(), AppError>>, AppError> {
    Ok(client::via_daemon(socket, req)?.map(|reply| match reply {
        Reply::Done => Ok(()),
        Reply::Failed { kind, message } => Err(AppError::with_code(
            exit::code(kind),
            anyhow::anyhow!(message),
        )),
    }))
}

/// A runtime for the one-shot commands that talk to chatgpt.com.
fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
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
        user_modes: loaded.user_modes,
    })
}
