//! Browser re-authentication: the chatgpt.com session cookie read from a browser's
//! cookie store, for `convos auth --from-browser` and for the daemon when the session
//! dies, and which browser to read it from.

use crate::api::auth::Credentials;
use crate::archive::Archive;

/// State key of the browser `auth --from-browser` used.
pub const BROWSER_KEY: &str = "auth_browser";

/// Reads the chatgpt.com session from a browser's cookie store (profiles under the
/// user's home).
pub fn read_browser(name: &str) -> Result<Credentials, BrowserReadError> {
    read_browser_in(name, None)
}

/// Why a browser's cookie could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BrowserReadError {
    /// Not a browser convos knows.
    #[error("{0}")]
    BadName(String),
    /// The store could not be read or holds no session.
    #[error("{0}")]
    Failed(String),
}

/// Reads the session from a browser, with profiles looked up under `home` (the
/// user's home when `None`).
#[cfg(feature = "browser")]
pub fn read_browser_in(
    name: &str,
    home: Option<&std::path::Path>,
) -> Result<Credentials, BrowserReadError> {
    use crate::browser::{self, BrowserChoice, BrowserEnv};
    let choice: BrowserChoice = name
        .parse()
        .map_err(|e| BrowserReadError::BadName(format!("{e}")))?;
    let mut env = BrowserEnv::system().map_err(|e| BrowserReadError::Failed(e.to_string()))?;
    if let Some(h) = home {
        env.home = h.to_path_buf();
    }
    let found = browser::find(choice, &env).map_err(|e| BrowserReadError::Failed(e.to_string()))?;
    tracing::info!(
        "found the chatgpt.com session in {} (profile {}, {})",
        found.browser,
        found.profile,
        found.store.display()
    );
    let mut cookies = vec![(
        crate::api::auth::SESSION_COOKIE.to_owned(),
        found.session_token.clone(),
    )];
    cookies.extend(found.others.iter().cloned());
    let source = format!("{} ({})", found.browser, found.profile);
    Credentials::from_cookies(cookies, &source).map_err(|e| BrowserReadError::Failed(e.to_string()))
}

/// Reads the session from a browser (unavailable in this build).
#[cfg(not(feature = "browser"))]
pub fn read_browser_in(
    _name: &str,
    _home: Option<&std::path::Path>,
) -> Result<Credentials, BrowserReadError> {
    Err(BrowserReadError::Failed(
        "this convos was built without the `browser` feature; paste the cookie with `convos auth` instead".into(),
    ))
}

/// The browser to re-read the session from when it dies: `[auth] browser` when set,
/// else the one `convos auth --from-browser` last used.
pub fn reauth_browser(config_choice: &str, archive: &Archive) -> Option<String> {
    if config_choice != "none" {
        return Some(config_choice.to_owned());
    }
    archive
        .state::<String>(BROWSER_KEY)
        .ok()
        .flatten()
        .filter(|b| b != "none")
}

/// Re-reads the session from `browser` after the session with `dead_fingerprint` died
/// (blocking): fresh credentials, or why there are none.
pub fn reread(
    browser: &str,
    home: Option<&std::path::Path>,
    dead_fingerprint: &str,
) -> Result<Credentials, BrowserReadError> {
    let creds = read_browser_in(browser, home)?;
    if creds.fingerprint() == dead_fingerprint {
        return Err(BrowserReadError::Failed(format!(
            "{browser} still holds the same expired session: log in to chatgpt.com in {browser}"
        )));
    }
    Ok(creds)
}

/// Records which browser to re-read the cookie from when the session dies (`none`
/// forgets it: a pasted token means the user manages the session by hand).
pub fn remember_choice(archive: &Archive, name: &str) {
    if let Err(e) = archive.set_state(BROWSER_KEY, &name.to_owned()) {
        tracing::warn!("could not record the browser choice: {e}");
    }
}
