//! The handlers behind the reading, importing and indexing commands. The CLI runs them
//! in-process when no daemon runs; the daemon runs the very same code for requests
//! that arrive on its control socket (it holds the archive's lock).

mod export;
mod list;
pub mod mirror;
mod reindex;
mod search;
mod show;
pub mod status;

use crate::archive::{Archive, ArchiveError};
use crate::config::{Config, Paths, PlatformDirs};
use crate::control::{FailureKind, Request};
use crate::ingest::{self, ImportOptions, ImportReport, ProgressMode};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Writing output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Something the user asked for does not exist or is ambiguous.
    #[error("{0}")]
    NotFound(String),
    /// The command was asked for in a way that cannot work (fix the command line).
    #[error("{0}")]
    Usage(String),
    /// The command ran but reported failure (details were printed).
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// What kind of failure this is: a usage error when the command line asked for
    /// something that cannot work, else a failure. (`app::exit` turns it into the exit
    /// code, 2 or 1.)
    pub fn kind(&self) -> FailureKind {
        match self {
            CommandError::Usage(_) => FailureKind::Usage,
            CommandError::Archive(_)
            | CommandError::Io(_)
            | CommandError::NotFound(_)
            | CommandError::Failed(_) => FailureKind::Failed,
        }
    }
}

/// What handlers need.
#[derive(Clone)]
pub struct Context {
    /// The open archive.
    pub archive: Archive,
    /// Effective configuration.
    pub config: Config,
    /// Resolved paths.
    pub paths: Paths,
    /// Platform directories (for `~` expansion).
    pub platform: PlatformDirs,
    /// Progress display for imports.
    pub progress: ProgressMode,
    /// Set when the process is shutting down: long work stops at a safe point.
    pub cancel: std::sync::Arc<AtomicBool>,
    /// The running daemon's live state, when this runs inside it.
    pub daemon: Option<std::sync::Arc<dyn status::DaemonInfo>>,
    /// The config file in use, if any.
    pub config_file: Option<PathBuf>,
    /// Permissions for the user's own files (the mirror's notes); see [`Loaded::user_modes`].
    ///
    /// [`Loaded::user_modes`]: crate::config::Loaded::user_modes
    pub user_modes: crate::mirror::Modes,
}

impl Context {
    /// Import options from the configuration.
    pub fn import_options(&self, force: bool) -> ImportOptions {
        ImportOptions {
            limits: self.config.import.clone(),
            force,
            progress: self.progress,
            ..ImportOptions::default()
        }
    }
}

/// Runs a request other than `sync` (which needs the async client; see
/// [`crate::sync`]). Output goes to `out`.
pub fn handle(ctx: &Context, req: &Request, out: &mut dyn Write) -> Result<(), CommandError> {
    match req {
        Request::Status(a) => status::run(ctx, a, out),
        Request::List(a) => list::run(ctx, a, out),
        Request::Show(a) => show::run(ctx, a, out),
        Request::Search(a) => search::run(ctx, a, out),
        Request::Reindex(_) => reindex::run(ctx, out),
        Request::Export(a) => export::run(ctx, a, out),
        Request::Mirror(a) => mirror::run(ctx, a, out),
        Request::Import(a) => {
            let report = import(ctx, &a.paths, a.force);
            print_import_report(&report, out)?;
            if report.failed() {
                Err(CommandError::Failed(
                    "some files or conversations could not be imported".into(),
                ))
            } else {
                Ok(())
            }
        }
        Request::Sync(_) => Err(CommandError::Failed(
            "sync is handled by the sync module, not the reading commands".into(),
        )),
    }
}

/// Imports paths with the context's options and remembers the outcome for `status`.
pub fn import(ctx: &Context, paths: &[PathBuf], force: bool) -> ImportReport {
    let report = ingest::import_paths(&ctx.archive, paths, &ctx.import_options(force), &ctx.cancel);
    status::remember_import(&ctx.archive, &report);
    report
}

/// Prints what an import did, file by file.
pub fn print_import_report(report: &ImportReport, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.files {
        let path = f.path.display();
        if let Some(prev) = &f.already_imported {
            writeln!(
                out,
                "{path}: already imported on {} (same contents); skipped (use --force to import it again)",
                crate::model::time::secs_to_rfc3339(prev.at).unwrap_or_default()
            )?;
            continue;
        }
        let counts = format!(
            "{} new, {} updated, {} unchanged, {} failed, {} attachments stored",
            f.new,
            f.updated,
            f.unchanged,
            f.problems.len(),
            f.attachments,
        );
        if let Some(e) = &f.error {
            writeln!(out, "{path}: FAILED: {e}")?;
            let nothing_done = f.new + f.updated + f.unchanged + f.attachments == 0;
            if nothing_done && f.problems.is_empty() && f.warnings.is_empty() {
                continue;
            }
            // It failed part of the way: say what was stored before.
            writeln!(out, "  stored before it failed: {counts}")?;
        } else {
            writeln!(
                out,
                "{path}: {counts}{}",
                if f.interrupted {
                    " (interrupted: import it again to finish)"
                } else {
                    ""
                }
            )?;
        }
        for p in &f.problems {
            match &p.conversation {
                Some(c) => writeln!(out, "  failed: {} ({c}): {}", p.location, p.message)?,
                None => writeln!(out, "  failed: {}: {}", p.location, p.message)?,
            }
        }
        for w in &f.warnings {
            writeln!(out, "  warning: {w}")?;
        }
    }
    Ok(())
}

/// Resolves an id or unique id prefix to one conversation id.
pub fn resolve_id(archive: &Archive, prefix: &str) -> Result<String, CommandError> {
    let ids = archive.ids_with_prefix(prefix, 6)?;
    match ids.as_slice() {
        [] => Err(CommandError::NotFound(format!(
            "no conversation with id {prefix:?} in the archive (see `convos list`)"
        ))),
        [one] => Ok(one.clone()),
        many => Err(CommandError::NotFound(format!(
            "{prefix:?} matches several conversations ({}{}); give more of the id",
            many.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if many.len() > 5 { ", …" } else { "" }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::FileReport;

    fn printed(f: FileReport) -> String {
        let mut out = Vec::new();
        print_import_report(&ImportReport { files: vec![f] }, &mut out).expect("print");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn a_file_that_failed_part_of_the_way_says_what_was_stored() {
        let text = printed(FileReport {
            path: "x.zip".into(),
            new: 5,
            error: Some("x.zip: 3 attachment(s) could not be stored".into()),
            warnings: vec!["attachment a.png (file-a): not stored: disk full".into()],
            ..FileReport::default()
        });
        assert_eq!(
            text,
            "x.zip: FAILED: x.zip: 3 attachment(s) could not be stored\n  stored before it \
             failed: 5 new, 0 updated, 0 unchanged, 0 failed, 0 attachments stored\n  warning: \
             attachment a.png (file-a): not stored: disk full\n"
        );
        let text = printed(FileReport {
            path: "y.zip".into(),
            error: Some("y.zip: not a readable ZIP".into()),
            ..FileReport::default()
        });
        assert_eq!(text, "y.zip: FAILED: y.zip: not a readable ZIP\n");
    }
}
