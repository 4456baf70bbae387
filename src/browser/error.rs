//! Errors of the browser cookie lookup. None of them ever holds a cookie value: they name
//! the browser, the profile and the store file, and say what the user can do next.

use std::fmt;
use std::path::PathBuf;

use super::{Browser, BrowserChoice};

/// Why no usable chatgpt.com session cookie could be taken from the browser(s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// No home directory could be determined, so no browser profile can be located.
    #[error(
        "cannot determine your home directory, so no browser profile can be found; set $HOME and try again"
    )]
    NoHome,

    /// The chosen browser does not exist on this operating system (Safari off macOS).
    #[error(
        "{browser} is not available on this system; choose another browser with `convos auth --from-browser <browser>`"
    )]
    Unsupported {
        /// The browser that was asked for.
        browser: Browser,
    },

    /// No cookie store of the chosen browser(s) exists in any of the usual places.
    #[error(
        "no {what} cookie store found (looked in {}): log in to chatgpt.com in a supported browser \
         (firefox, chrome, chromium, brave, edge{}), or paste the session cookie with `convos auth`",
        list_paths(.looked),
        if *.safari { ", safari" } else { "" }
    )]
    NotInstalled {
        /// "Firefox", "Chrome", ... or "browser" for `auto`.
        what: String,
        /// The directories that were searched.
        looked: Vec<PathBuf>,
        /// Whether Safari is a possible choice on this system (for the hint).
        safari: bool,
    },

    /// The one store searched is readable but holds no live chatgpt.com session cookie.
    #[error(
        "no chatgpt.com session cookie in {browser} profile `{profile}` ({}): log in to chatgpt.com \
         in that browser, then run `convos auth --from-browser {}` again",
        .store.display(),
        browser.cli_name()
    )]
    NoSession {
        /// The browser owning the store.
        browser: Browser,
        /// The profile's display name.
        profile: String,
        /// The cookie store file.
        store: PathBuf,
    },

    /// Several stores were searched and none gave a session cookie; each one's outcome is listed.
    #[error(
        "no chatgpt.com session cookie found in any of {} cookie stores searched:\n{}\nlog in to \
         chatgpt.com in one of these browsers, then run `convos auth --from-browser {choice}` again",
        .searched.len(),
        list_searched(.searched)
    )]
    NoSessionAnywhere {
        /// What the user asked for.
        choice: BrowserChoice,
        /// Every store that was tried, with what went wrong there.
        searched: Vec<Searched>,
    },

    /// A cookie store could not be read as what it should be (corrupt, truncated, unknown format).
    #[error(
        "cannot read the {browser} cookie store {} ({problem}); the file may be corrupt or from an \
         unsupported {browser} version: restart {browser} (it repairs its store) and try again, or \
         paste the session cookie with `convos auth`",
        .store.display()
    )]
    Corrupt {
        /// The browser owning the store.
        browser: Browser,
        /// The cookie store file.
        store: PathBuf,
        /// What did not parse (never a cookie value).
        problem: String,
    },

    /// A cookie store could not be read or copied at the file-system level.
    #[error("cannot read the {browser} cookie store {}: {source}", .store.display())]
    Io {
        /// The browser owning the store.
        browser: Browser,
        /// The file that failed.
        store: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// macOS refused to let this process read Safari's cookies.
    #[error(
        "cannot read Safari's cookies at {}: macOS protects them. Give your terminal app (or convos) \
         Full Disk Access in System Settings → Privacy & Security → Full Disk Access, restart the \
         terminal, then run `convos auth --from-browser safari` again",
        .store.display()
    )]
    SafariNeedsFullDiskAccess {
        /// The Safari cookie file.
        store: PathBuf,
    },

    /// The session cookie is encrypted and could not be decrypted.
    #[error(
        "found a chatgpt.com session cookie in {browser} profile `{profile}` ({}) but cannot decrypt \
         it: {reason}",
        .store.display()
    )]
    Decrypt {
        /// The browser owning the store.
        browser: Browser,
        /// The profile's display name.
        profile: String,
        /// The cookie store file.
        store: PathBuf,
        /// Why, and what to do (never key material or a cookie value).
        reason: String,
    },

    /// A private temporary directory for the store copy could not be made.
    #[error("cannot create a private temporary directory to copy the cookie store into: {0}")]
    TempDir(#[source] std::io::Error),
}

/// One cookie store tried by [`super::find`] and why it gave no session cookie.
#[derive(Debug)]
pub struct Searched {
    /// The browser owning the store.
    pub browser: Browser,
    /// The profile's display name.
    pub profile: String,
    /// The cookie store file.
    pub store: PathBuf,
    /// `None` when the store was read fine but holds no session cookie.
    pub problem: Option<Box<BrowserError>>,
}

impl fmt::Display for Searched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} profile `{}` ({}): ",
            self.browser,
            self.profile,
            self.store.display()
        )?;
        match &self.problem {
            None => f.write_str("no session cookie"),
            Some(e) => write!(f, "{e}"),
        }
    }
}

/// `--from-browser` got a name that is not a supported browser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown browser `{0}`: expected one of auto, firefox, chrome, chromium, brave, edge, safari"
)]
pub struct ParseBrowserChoiceError(pub String);

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_searched(searched: &[Searched]) -> String {
    searched
        .iter()
        .map(|s| format!("  - {s}"))
        .collect::<Vec<_>>()
        .join("\n")
}
