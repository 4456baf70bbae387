//! `convos sync [--full]` when no daemon runs: the configured imports, then one sync,
//! in-process. (With a daemon running, the request goes to it.)

use super::{AppError, open_context, runtime};
use crate::commands::{self, Context};
use crate::config::{Loaded, PlatformDirs};
use crate::model::time::now_secs;
use crate::session;
use crate::sync::{self, SyncOptions, SyncReport};
use std::io::Write;

/// `convos sync [--full]` in-process: imports `CONVOS_IMPORT_PATHS` first, then syncs.
pub(super) fn run(
    loaded: &Loaded,
    platform: PlatformDirs,
    full: bool,
    progress: bool,
) -> Result<(), AppError> {
    let ctx = open_context(loaded, platform, progress)?;
    // The report quotes file names, ids and server errors: no raw control characters.
    let mut out = crate::render::terminal::CleanWriter::new(std::io::stdout().lock(), true);
    let report = run_sync(&ctx, full, &mut out)?;
    out.finish().map(drop)?;
    match report.failure_message() {
        Some(message) => Err(AppError::from(anyhow::anyhow!(message))),
        None => Ok(()),
    }
}

/// Imports the configured paths, then runs one sync, printing both outcomes.
pub fn run_sync(ctx: &Context, full: bool, out: &mut dyn Write) -> Result<SyncReport, AppError> {
    let paths = ctx.config.import_paths(&ctx.platform);
    if !paths.is_empty() {
        let report = commands::import(ctx, &paths, false);
        commands::print_import_report(&report, out)?;
    }
    let rt = runtime()?;
    let client = session::prepare_client(&ctx.config, &ctx.paths, &ctx.archive)?;
    let opts =
        SyncOptions::from_config(&ctx.config.sync, ctx.config.api.download_attachments, full);
    let report = rt.block_on(sync::sync_once(
        &client,
        &ctx.archive,
        &opts,
        now_secs(),
        &ctx.cancel,
    ));
    session::record_after_use(&ctx.paths, &ctx.archive, &client, report.session_expired());
    report.write_to(out)?;
    Ok(report)
}
