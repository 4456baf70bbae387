//! `convos auth` and the one-shot `convos sync` (when no daemon runs).

use crate::api::auth::Credentials;
use crate::app::{AppError, open_context};
use crate::cli::AuthArgs;
use crate::commands::{self, Context};
use crate::config::{Loaded, PlatformDirs};
use crate::model::time::now_secs;
use crate::session::{self, SessionError};
use crate::sync::{self, SyncOptions, SyncReport};
use secrecy::SecretString;
use std::io::{IsTerminal, Read, Write};

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `convos sync [--full]` in-process: imports `CONVOS_IMPORT_PATHS` first, then syncs.
pub fn sync_command(
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
    let client = match session::prepare_client(&ctx.config, &ctx.paths, &ctx.archive) {
        Ok(c) => c,
        Err(e @ (SessionError::NoCredentials | SessionError::DeadSession)) => {
            return Err(AppError::from(anyhow::anyhow!("{e}")));
        }
        Err(e) => return Err(AppError::from(e)),
    };
    let opts =
        SyncOptions::from_config(&ctx.config.sync, ctx.config.api.download_attachments, full);
    let report = rt.block_on(sync::sync_once(
        &client,
        &ctx.archive,
        &opts,
        now_secs(),
        &ctx.cancel,
    ));
    note_credentials(ctx, &client, &report);
    print_sync_report(&report, out)?;
    Ok(report)
}

/// Records the credentials' health after a run (for `convos status`).
pub fn note_credentials(ctx: &Context, client: &crate::api::Client, report: &SyncReport) {
    session::record_after_use(&ctx.paths, &ctx.archive, client, report.session_expired());
}

/// Prints a sync report.
pub fn print_sync_report(r: &SyncReport, out: &mut dyn Write) -> std::io::Result<()> {
    r.write_to(out)
}

/// `convos auth`: reads the session token (or a browser's cookie store), verifies it by
/// exchanging it for an access token, and stores it 0600 in the data dir.
pub fn auth_command(
    loaded: &Loaded,
    platform: PlatformDirs,
    args: &AuthArgs,
) -> Result<(), AppError> {
    let creds = match &args.from_browser {
        Some(name) => session::browser::read_browser(name).map_err(|e| match e {
            session::browser::BrowserReadError::BadName(m) => {
                AppError::with_code(2, anyhow::anyhow!(m))
            }
            e => AppError::from(e),
        })?,
        None => read_token(args.token_stdin)?,
    };
    let payload = crate::control::AuthPayload {
        cookies: creds.expose_cookies(),
        source: creds.source.clone(),
        browser: args.from_browser.clone(),
    };
    let req = crate::control::ControlRequest::Auth(payload);
    if let Some(result) = crate::app::via_daemon(&loaded.paths.socket, &req)? {
        return result;
    }
    let ctx = open_context(loaded, platform, false)?;
    let rt = runtime()?;
    let adopted = rt.block_on(session::verify_and_store(
        &ctx.config,
        &ctx.paths,
        &ctx.archive,
        creds,
        args.from_browser.as_deref(),
        &session::ClientSlot::default(),
    ))?;
    ctx.archive.flush()?;
    println!(
        "{}",
        session::verified_message(&adopted.stored, &adopted.info, &ctx.paths)
    );
    Ok(())
}

/// Reads the token from standard input: without echo on a terminal, as-is otherwise.
fn read_token(force_stdin: bool) -> Result<Credentials, AppError> {
    let stdin = std::io::stdin();
    let text = if !force_stdin && stdin.is_terminal() {
        eprintln!(
            "Paste the value of the __Secure-next-auth.session-token cookie from chatgpt.com\n\
             (browser developer tools → Application/Storage → Cookies → https://chatgpt.com).\n\
             If it is split into .0 and .1, paste both as name=value pairs separated by `; `."
        );
        SecretString::from(rpassword::prompt_password("session token (hidden): ")?)
    } else {
        let mut s = String::new();
        stdin.lock().read_to_string(&mut s)?;
        SecretString::from(s)
    };
    let source = if force_stdin || !stdin.is_terminal() {
        "stdin"
    } else {
        "terminal"
    };
    Ok(Credentials::parse_input(
        secrecy::ExposeSecret::expose_secret(&text),
        source,
    )?)
}
