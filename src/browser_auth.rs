//! Glue between `convos auth --from-browser` and the cookie store readers.

use crate::api::auth::Credentials;
use crate::app::AppError;
use crate::archive::Archive;

/// State key of the browser `auth --from-browser` used.
pub const BROWSER_KEY: &str = "auth_browser";

/// Reads the chatgpt.com session from a browser's cookie store.
#[cfg(feature = "browser")]
pub fn read_browser(name: &str) -> Result<Credentials, AppError> {
    use crate::browser::{self, BrowserChoice, BrowserEnv};
    let choice: BrowserChoice = name
        .parse()
        .map_err(|e| AppError::with_code(2, anyhow::anyhow!("{e}")))?;
    let env = BrowserEnv::system()?;
    let found = browser::find(choice, &env)?;
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
    Ok(Credentials::from_cookies(cookies, &source)?)
}

/// Reads the chatgpt.com session from a browser's cookie store.
#[cfg(not(feature = "browser"))]
pub fn read_browser(_name: &str) -> Result<Credentials, AppError> {
    Err(AppError::from(anyhow::anyhow!(
        "this convos was built without the `browser` feature; paste the cookie with `convos auth` instead"
    )))
}

/// Records which browser to re-read the cookie from when the session dies.
pub fn remember_choice(archive: &Archive, name: &str) {
    if let Err(e) = archive.set_state(BROWSER_KEY, &name.to_owned()) {
        tracing::warn!("could not record the browser choice: {e}");
    }
}
