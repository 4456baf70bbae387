//! status, list, show, search, export and import: the handlers in [`crate::commands`],
//! in-process when no daemon answers on the socket (one that runs holds the archive
//! and runs them itself).

use super::{AppError, exit, open_context};
use crate::commands::{self, CommandError};
use crate::config::{Loaded, PlatformDirs};
use crate::control::Request;
use crate::render::terminal::CleanWriter;

/// Runs a reading or importing command in-process (no daemon answered).
pub(super) fn run(
    request: &Request,
    loaded: &Loaded,
    platform: PlatformDirs,
    progress: bool,
) -> Result<(), AppError> {
    let ctx = open_context(loaded, platform, progress)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(CleanWriter::new(stdout.lock(), !request.prints_json()));
    let result = commands::handle(&ctx, request, &mut out);
    let flushed = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(CleanWriter::finish)
        .map(drop);
    match result {
        Ok(()) => ignore_broken_pipe(flushed),
        Err(CommandError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::with_code(exit::code(e.kind()), e.into())),
    }
}

/// A reader that went away (`convos list | head`) ends the command quietly.
fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<(), AppError> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
