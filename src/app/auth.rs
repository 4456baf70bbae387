//! `convos auth`: the session token typed, piped or read from a browser's cookie
//! store, verified and stored (by the running daemon when there is one).

use super::{AppError, exit, open_context, runtime, via_daemon};
use crate::api::auth::Credentials;
use crate::cli::AuthArgs;
use crate::config::{Loaded, PlatformDirs};
use crate::control::{AuthPayload, ControlRequest};
use crate::session::{self, browser::BrowserReadError};
use secrecy::SecretString;
use std::io::{IsTerminal, Read};

/// `convos auth`: reads the session token (or a browser's cookie store), verifies it by
/// exchanging it for an access token, and stores it 0600 in the data dir.
pub(super) fn run(
    loaded: &Loaded,
    platform: PlatformDirs,
    args: &AuthArgs,
) -> Result<(), AppError> {
    let creds = match &args.from_browser {
        Some(name) => session::browser::read_browser(name).map_err(|e| match e {
            BrowserReadError::BadName(m) => AppError::with_code(exit::USAGE, anyhow::anyhow!(m)),
            e => AppError::from(e),
        })?,
        None => read_token(args.token_stdin)?,
    };
    let payload = AuthPayload {
        cookies: creds.expose_cookies(),
        source: creds.source.clone(),
        browser: args.from_browser.clone(),
    };
    let req = ControlRequest::Auth(payload);
    if let Some(result) = via_daemon(&loaded.paths.socket, &req)? {
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
