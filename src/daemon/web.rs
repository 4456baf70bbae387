//! The daemon's side of the web viewer: binds `[web] listen`, builds the
//! [`crate::web::Viewer`] over the daemon's archive, its status and a search provider,
//! and serves it on a task until shutdown. A viewer that cannot start (the port is
//! taken) is a log line and a note in `status`; the daemon serves everything else.

use super::Daemon;
use crate::util::blocking;
use crate::web::{SearchProvider, StatusSource, Viewer};
use std::sync::Arc;

/// What `status` says about the viewer: its address while served, else why not.
#[derive(Clone, Debug, Default)]
pub(super) struct WebState {
    pub(super) url: Option<String>,
    pub(super) problem: Option<String>,
}

/// Starts the viewer when `[web] enabled`; returns once it listens (or has failed).
pub(super) async fn start(daemon: &Arc<Daemon>) {
    let web = daemon.ctx.config.web.clone();
    if !web.enabled {
        tracing::info!("web viewer off ([web] enabled = false)");
        return;
    }
    if !web.listen.ip().is_loopback() {
        // Validation refused this unless `allow_remote` is set.
        tracing::warn!(
            "the web viewer listens on {}, which other machines can reach ([web] allow_remote \
             = true): it speaks plain HTTP, and anyone who has the token in {} reads the \
             whole archive",
            web.listen,
            daemon
                .ctx
                .paths
                .data_dir
                .join(crate::web::access::TOKEN_FILE)
                .display()
        );
    }
    let listener = match tokio::net::TcpListener::bind(web.listen).await {
        Ok(l) => l,
        Err(e) => {
            let problem = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "{} is already in use (another convos or program listens there); set \
                     [web] listen or CONVOS_WEB_LISTEN to another port and restart",
                    web.listen
                )
            } else {
                format!("cannot listen on {}: {e}", web.listen)
            };
            tracing::error!("web viewer not started: {problem}; everything else runs on");
            daemon.live.set_web(WebState {
                url: None,
                problem: Some(problem),
            });
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(web.listen);
    let (ctx, data_dir) = (daemon.ctx.clone(), daemon.ctx.paths.data_dir.clone());
    let status: Arc<dyn StatusSource> =
        Arc::new(move || crate::commands::status::report(&ctx).map_err(|e| e.to_string()));
    // Without an index (it could not be opened; the log says why) `/?q=` says search
    // is not available.
    let search: Option<Arc<dyn SearchProvider>> = daemon.live.search.clone().map(|live| {
        Arc::new(crate::web::index::IndexSearch::new(
            live,
            daemon.ctx.archive.clone(),
        )) as Arc<dyn SearchProvider>
    });
    let archive = daemon.ctx.archive.clone();
    let viewer = blocking("reading the web viewer token", move || {
        Viewer::new(archive, &data_dir, bound, status).map(|v| match search {
            Some(s) => v.with_search(s),
            None => v,
        })
    })
    .await;
    let viewer = match viewer {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!("web viewer not started: {e}; everything else runs on");
            daemon.live.set_web(WebState {
                url: None,
                problem: Some(e.to_string()),
            });
            return;
        }
        Err(e) => {
            tracing::error!("web viewer not started: {e}; everything else runs on");
            return;
        }
    };
    let viewer = match (bound.ip().is_unspecified(), host_name()) {
        (true, Some(name)) => viewer.allow_host(&format!("{name}:{}", bound.port())),
        _ => viewer,
    };
    let url = viewer.base_url();
    tracing::info!("web viewer on {url} (open it with `convos web`)");
    daemon.live.set_web(WebState {
        url: Some(url),
        problem: None,
    });
    let (live, token) = (daemon.live.clone(), daemon.shutdown.clone());
    let router = viewer.router();
    daemon.tracker.spawn(async move {
        if let Err(e) = crate::web::serve(listener, router, token.cancelled_owned()).await {
            tracing::error!("{e}; everything else runs on");
            live.set_web(WebState {
                url: None,
                problem: Some(e.to_string()),
            });
        }
    });
}

/// This machine's name, for a viewer deliberately served beyond loopback on all
/// addresses: browsers elsewhere name it in `Host`.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .map(str::to_owned)
        .filter(|n| !n.is_empty())
}
