//! `convos web`: opens the daemon's viewer in the browser, or prints its address. The
//! address comes from the running daemon (it knows the port it bound); the token from
//! `<data dir>/web-token`, which the daemon and this command share.

use super::{AppError, exit};
use crate::cli::{StatusArgs, WebArgs};
use crate::commands::status::StatusReport;
use crate::config::Loaded;
use crate::control::client;
use crate::control::{ControlRequest, Request};
use crate::web::access::{AccessToken, url_with_token};
use std::io::Write;
use std::net::SocketAddr;

/// What the running daemon says about its viewer.
enum Served {
    /// It serves the viewer on this address.
    At(SocketAddr),
    /// It runs but does not serve it, for this reason.
    Not(String),
    /// No daemon answers.
    NoDaemon,
}

/// `convos web [--print-url]`.
pub(super) fn run(loaded: &Loaded, args: &WebArgs) -> Result<(), AppError> {
    if !loaded.config.web.enabled {
        let file = loaded
            .file
            .as_ref()
            .map_or_else(|| "the config file".to_owned(), |f| f.display().to_string());
        return Err(AppError::with_code(
            exit::CONFIG,
            anyhow::anyhow!(
                "the web viewer is off ([web] enabled = false in {file}); set it to true and \
                 restart the daemon"
            ),
        ));
    }
    let served = served(&loaded.paths.socket);
    let addr = match &served {
        Served::At(addr) => *addr,
        Served::Not(why) => {
            return Err(anyhow::anyhow!("the daemon does not serve the web viewer: {why}").into());
        }
        Served::NoDaemon if args.print_url => {
            eprintln!(
                "convos: no daemon is running; the viewer answers at this address once it \
                 does (`convos run`, or `convos service install`)"
            );
            crate::web::browse_addr(loaded.config.web.listen)
        }
        Served::NoDaemon => {
            return Err(anyhow::anyhow!(
                "no daemon is running, and the daemon serves the web viewer: start it with \
                 `convos run` (or `convos service install`), then run `convos web` again"
            )
            .into());
        }
    };
    let token = AccessToken::load_or_create(&loaded.paths.data_dir)?;
    let url = url_with_token(addr, &token);
    if args.print_url {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        return Ok(());
    }
    open_browser(&url)
}

/// Asks the daemon's status for the viewer's address.
fn served(socket: &std::path::Path) -> Served {
    let req = ControlRequest::Command(Request::Status(StatusArgs { json: true }));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    match client::call(socket, &req, &mut out, &mut err) {
        Ok(Some(_)) => {}
        Ok(None) | Err(_) => return Served::NoDaemon,
    }
    let Ok(report) = serde_json::from_slice::<StatusReport>(&out) else {
        return Served::NoDaemon;
    };
    let Some(d) = report.daemon else {
        return Served::NoDaemon;
    };
    let addr = d.web_url.as_deref().and_then(|u| {
        u.strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .and_then(|a| a.parse().ok())
    });
    match (addr, d.web_problem) {
        (Some(a), _) => Served::At(a),
        (None, Some(p)) => Served::Not(p),
        (None, None) => Served::Not("it is still starting; try again in a moment".into()),
    }
}

/// Hands the address to the desktop's opener; the address itself (it holds the token)
/// is never put in an error.
fn open_browser(url: &str) -> Result<(), AppError> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let status = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {
            eprintln!("convos: opened the web viewer in your browser");
            Ok(())
        }
        Ok(s) => Err(anyhow::anyhow!(
            "{opener} failed ({s}); run `convos web --print-url` and open the address it prints"
        )
        .into()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot run {opener} ({e}); run `convos web --print-url` and open the address it \
             prints"
        )
        .into()),
    }
}
