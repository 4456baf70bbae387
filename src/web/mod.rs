//! The local web viewer: a read-only HTTP view of the archive for one person's browser.
//!
//! - [`access`]: the access token (`<data dir>/web-token`), the cookie, the `Host` and
//!   fetch-metadata checks, and the security headers every response carries
//! - `pages`: the HTML pages (`/`, `/projects`, `/c/{id}`, `/status`), built with
//!   compile-time-checked maud templates; [`markdown`] renders message Markdown with
//!   raw HTML shown as text, and [`highlight`] colours code on the server
//! - [`branch`]: which branch of a conversation's tree a page shows, and its forks
//! - [`blob`]: attachment bytes (`/blob/{sha256}`), inline only for types a browser
//!   cannot run
//! - [`assets`]: the stylesheet and icon, compiled into the binary
//! - [`index`]: search through the daemon's full-text index
//! - [`search`] and [`status`]: what the pages ask of the rest of the program (the
//!   full-text index and `convos status`), as traits the daemon implements
//!
//! Every page works without JavaScript and none is served: the CSP forbids inline
//! scripts and styles, and conversation content is untrusted (it is escaped, its links
//! are limited to web and mail addresses, and its images are never fetched).

pub mod access;
pub mod assets;
pub mod blob;
pub mod branch;
pub mod highlight;
pub mod index;
pub mod markdown;
pub(crate) mod pages;
pub mod search;
pub mod status;

use crate::archive::Archive;
use access::{AccessToken, Hosts};
use axum::Router;
use axum::routing::get;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use search::{SearchError, SearchHit, SearchProvider, SearchQuery, SearchResults};
pub use status::StatusSource;

/// Why the viewer could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The token file could not be read or written.
    #[error("{what} {path}: {source}")]
    Token {
        /// What was being done.
        what: &'static str,
        /// The token file (or its folder).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The system's random number source failed.
    #[error("cannot create a web viewer token: the system's random source failed ({0})")]
    Random(String),
    /// Serving failed.
    #[error("the web viewer on {addr} stopped: {source}")]
    Serve {
        /// The listen address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) archive: Archive,
    pub(crate) token: AccessToken,
    pub(crate) hosts: Hosts,
    pub(crate) listen: SocketAddr,
    pub(crate) status: Arc<dyn StatusSource>,
    pub(crate) search: Option<Arc<dyn SearchProvider>>,
}

/// The viewer: the archive, its access token, the address it is served on, and the
/// providers of status and search. Build it, then serve [`Viewer::router`].
#[derive(Clone)]
pub struct Viewer {
    shared: Shared,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("listen", &self.shared.listen)
            .field("search", &self.shared.search.is_some())
            .finish_non_exhaustive()
    }
}

impl Viewer {
    /// A viewer of `archive` served on `listen` (the address actually bound, so an
    /// ephemeral port is known). The access token is read from `<data_dir>/web-token`,
    /// which is created (0600) when missing: a small file read, so call this at start
    /// or from a blocking task, not on an async worker in the middle of serving.
    pub fn new(
        archive: Archive,
        data_dir: &Path,
        listen: SocketAddr,
        status: Arc<dyn StatusSource>,
    ) -> Result<Self, WebError> {
        let token = AccessToken::load_or_create(data_dir)?;
        Ok(Self {
            shared: Shared {
                archive,
                token,
                hosts: Hosts::for_listen(listen),
                listen,
                status,
                search: None,
            },
        })
    }

    /// Answers `/?q=` from a full-text index; without one the page says search is not
    /// available.
    pub fn with_search(mut self, search: Arc<dyn SearchProvider>) -> Self {
        self.shared.search = Some(search);
        self
    }

    /// Accepts requests naming `host` (`name:port`) besides the listen address,
    /// `localhost:PORT` and `[::1]:PORT`: for a viewer deliberately served beyond
    /// loopback (`[web] allow_remote`), reached by the machine's own name.
    pub fn allow_host(mut self, host: &str) -> Self {
        self.shared.hosts.allow(host);
        self
    }

    /// The address the viewer is served on.
    pub fn listen(&self) -> SocketAddr {
        self.shared.listen
    }

    /// The viewer's address without the token (safe to log and show in `status`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", browse_addr(self.shared.listen))
    }

    /// The address that lets a browser in: `http://ADDR/?token=…`. It carries the
    /// secret, so it is printed for the user only, never logged.
    pub fn url_with_token(&self) -> String {
        access::url_with_token(browse_addr(self.shared.listen), &self.shared.token)
    }

    /// The routes, behind the access checks and security headers.
    pub fn router(&self) -> Router {
        let shared = Arc::new(self.shared.clone());
        Router::new()
            .route("/", get(pages::list::index))
            .route("/projects", get(pages::list::projects))
            .route("/c/{id}", get(pages::conversation::page))
            .route("/c/{id}/markdown", get(pages::conversation::markdown))
            .route("/status", get(pages::status::page))
            .route("/blob/{sha256}", get(blob::serve))
            .route("/static/{file}", get(assets::serve))
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                access::guard,
            ))
            .with_state(shared)
    }
}

/// The address a browser on this machine uses for a viewer listening on `listen`: the
/// same, except that an unspecified address (`0.0.0.0`, `::`) is reached by loopback.
pub fn browse_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

/// Serves `router` on an already bound listener until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let addr = listener.local_addr().map_err(|source| WebError::Serve {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| WebError::Serve { addr, source })
}
