//! Reading the chatgpt.com session cookie straight from a browser's cookie store
//! (`convos auth --from-browser`).
//!
//! [`find`] looks through the cookie stores of Firefox, the Chromium family (Chrome,
//! Chromium, Brave, Edge) and Safari in the user's home directory, and returns the
//! `__Secure-next-auth.session-token` cookie of chatgpt.com (joining its `.0`/`.1`
//! chunks) plus the companion cookies `oai-did`, `cf_clearance` and `_account`.
//!
//! "Newest" (for [`BrowserChoice::Auto`] and between profiles) means the latest
//! **creation time** of the session cookie, because it is the one timestamp all three
//! store formats keep (Safari has no last-access time) and it moves when the user logs
//! in again; ties and missing creation times are broken by the last-access time.
//!
//! Nothing here ever logs, prints or puts into an error a cookie value or key material.

mod chromium;
mod chromium_crypto;
mod error;
mod firefox;
mod keyring;
mod profiles;
mod safari;
mod select;
mod sqlite;
mod tempcopy;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

pub use error::{BrowserError, ParseBrowserChoiceError, Searched};

use profiles::Store;
use select::Candidate;

/// A browser whose cookie store can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Browser {
    /// Mozilla Firefox (`cookies.sqlite`).
    Firefox,
    /// Google Chrome (Chromium `Cookies` database).
    Chrome,
    /// Chromium itself.
    Chromium,
    /// Brave.
    Brave,
    /// Microsoft Edge.
    Edge,
    /// Apple Safari (`Cookies.binarycookies`, macOS only).
    Safari,
}

impl Browser {
    /// Every supported browser, in the order `auto` tries them.
    pub const ALL: [Browser; 6] = [
        Browser::Firefox,
        Browser::Chrome,
        Browser::Chromium,
        Browser::Brave,
        Browser::Edge,
        Browser::Safari,
    ];

    /// The lowercase name accepted by `--from-browser`.
    pub fn cli_name(self) -> &'static str {
        match self {
            Browser::Firefox => "firefox",
            Browser::Chrome => "chrome",
            Browser::Chromium => "chromium",
            Browser::Brave => "brave",
            Browser::Edge => "edge",
            Browser::Safari => "safari",
        }
    }

    /// Whether this browser exists on `os` (Safari is macOS only).
    pub fn available_on(self, os: Os) -> bool {
        self != Browser::Safari || os == Os::MacOs
    }
}

impl fmt::Display for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Browser::Firefox => "Firefox",
            Browser::Chrome => "Chrome",
            Browser::Chromium => "Chromium",
            Browser::Brave => "Brave",
            Browser::Edge => "Edge",
            Browser::Safari => "Safari",
        })
    }
}

/// Which browser(s) `convos auth --from-browser` should read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BrowserChoice {
    /// Every installed browser; the newest session cookie wins.
    #[default]
    Auto,
    /// Mozilla Firefox.
    Firefox,
    /// Google Chrome.
    Chrome,
    /// Chromium.
    Chromium,
    /// Brave.
    Brave,
    /// Microsoft Edge.
    Edge,
    /// Apple Safari.
    Safari,
}

impl BrowserChoice {
    /// The single browser chosen, or `None` for `Auto`.
    pub fn browser(self) -> Option<Browser> {
        match self {
            BrowserChoice::Auto => None,
            BrowserChoice::Firefox => Some(Browser::Firefox),
            BrowserChoice::Chrome => Some(Browser::Chrome),
            BrowserChoice::Chromium => Some(Browser::Chromium),
            BrowserChoice::Brave => Some(Browser::Brave),
            BrowserChoice::Edge => Some(Browser::Edge),
            BrowserChoice::Safari => Some(Browser::Safari),
        }
    }
}

impl From<Browser> for BrowserChoice {
    fn from(b: Browser) -> Self {
        match b {
            Browser::Firefox => BrowserChoice::Firefox,
            Browser::Chrome => BrowserChoice::Chrome,
            Browser::Chromium => BrowserChoice::Chromium,
            Browser::Brave => BrowserChoice::Brave,
            Browser::Edge => BrowserChoice::Edge,
            Browser::Safari => BrowserChoice::Safari,
        }
    }
}

impl FromStr for BrowserChoice {
    type Err = ParseBrowserChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "auto" {
            return Ok(BrowserChoice::Auto);
        }
        Browser::ALL
            .into_iter()
            .find(|b| b.cli_name() == lower)
            .map(BrowserChoice::from)
            .ok_or_else(|| ParseBrowserChoiceError(s.to_owned()))
    }
}

impl fmt::Display for BrowserChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.browser().map_or("auto", Browser::cli_name))
    }
}

/// The operating-system conventions to follow (profile locations and cookie encryption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    /// Linux and other freedesktop systems.
    Linux,
    /// macOS.
    MacOs,
}

impl Os {
    /// The conventions of the system this program runs on (Linux ones off macOS).
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        }
    }
}

/// Looks up the password that encrypts a Chromium-family browser's cookies
/// (Secret Service on Linux, Keychain on macOS); `None` when there is none.
pub type KeyringLookup = Box<dyn Fn(Browser) -> Option<SecretString> + Send + Sync>;

/// Everything [`find`] takes from the outside world, so tests can fake it.
pub struct BrowserEnv {
    /// The user's home directory; every profile path is resolved below it.
    pub home: PathBuf,
    /// Which system's profile locations and cookie encryption to use.
    pub os: Os,
    /// Password lookup for Chromium-family cookie encryption.
    pub keyring: KeyringLookup,
    /// The current time, to drop expired cookies.
    pub now: DateTime<Utc>,
}

impl BrowserEnv {
    /// The real environment: home from `directories`, this OS, the system keyring, the clock.
    pub fn system() -> Result<BrowserEnv, BrowserError> {
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().to_path_buf())
            .ok_or(BrowserError::NoHome)?;
        let os = Os::current();
        Ok(BrowserEnv {
            home,
            os,
            keyring: Box::new(move |browser| keyring::system_password(os, browser)),
            now: Utc::now(),
        })
    }
}

impl fmt::Debug for BrowserEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserEnv")
            .field("home", &self.home)
            .field("os", &self.os)
            .field("keyring", &"<lookup>")
            .field("now", &self.now)
            .finish()
    }
}

/// The chatgpt.com cookies found in one browser profile.
pub struct FoundCookies {
    /// The browser they came from.
    pub browser: Browser,
    /// The profile's display name (e.g. `default-release`, `Work (Profile 1)`).
    pub profile: String,
    /// The cookie store file they were read from.
    pub store: PathBuf,
    /// The `__Secure-next-auth.session-token` value (chunks already joined).
    pub session_token: SecretString,
    /// The companion cookies present (`oai-did`, `cf_clearance`, `_account`), by name.
    pub others: Vec<(String, SecretString)>,
    /// When the session cookie was created (the newest chunk for a chunked one).
    pub created: Option<DateTime<Utc>>,
}

impl FoundCookies {
    /// The name under which the session token is sent to chatgpt.com.
    pub const SESSION_COOKIE: &'static str = select::SESSION_COOKIE;

    /// A `Cookie:` header value carrying the session token and the companion cookies.
    pub fn cookie_header(&self) -> SecretString {
        let mut header = format!(
            "{}={}",
            Self::SESSION_COOKIE,
            self.session_token.expose_secret()
        );
        for (name, value) in &self.others {
            header.push_str("; ");
            header.push_str(name);
            header.push('=');
            header.push_str(value.expose_secret());
        }
        SecretString::from(header)
    }
}

impl fmt::Debug for FoundCookies {
    // By hand so that no value is ever printed: only the cookie names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.others.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("FoundCookies")
            .field("browser", &self.browser)
            .field("profile", &self.profile)
            .field("store", &self.store)
            .field("session_token", &"<redacted>")
            .field("others", &names)
            .field("created", &self.created)
            .finish()
    }
}

/// Finds the newest live chatgpt.com session cookie in the chosen browser(s).
pub fn find(choice: BrowserChoice, env: &BrowserEnv) -> Result<FoundCookies, BrowserError> {
    find_in(choice, env, &std::env::temp_dir())
}

/// [`find`] with the directory under which store copies are made, so tests can watch it.
fn find_in(
    choice: BrowserChoice,
    env: &BrowserEnv,
    temp_base: &Path,
) -> Result<FoundCookies, BrowserError> {
    let browsers: Vec<Browser> = match choice.browser() {
        Some(b) if !b.available_on(env.os) => {
            return Err(BrowserError::Unsupported { browser: b });
        }
        Some(b) => vec![b],
        None => Browser::ALL
            .into_iter()
            .filter(|b| b.available_on(env.os))
            .collect(),
    };

    let mut stores = Vec::new();
    let mut looked = Vec::new();
    for &browser in &browsers {
        let found = profiles::discover(browser, env);
        looked.extend(found.looked);
        stores.extend(found.stores);
    }
    if stores.is_empty() {
        return Err(BrowserError::NotInstalled {
            what: choice
                .browser()
                .map_or_else(|| "browser".to_owned(), |b| b.to_string()),
            looked,
            safari: env.os == Os::MacOs,
        });
    }

    let keyring = KeyringCache::new(&env.keyring);
    let mut best: Option<(Store, Candidate)> = None;
    let mut searched = Vec::new();
    for store in stores {
        tracing::debug!(browser = %store.browser, profile = %store.profile,
            store = %store.path.display(), "reading cookie store");
        match read_store(&store, env, &keyring, temp_base) {
            Ok(Some(candidate)) => {
                tracing::debug!(browser = %store.browser, profile = %store.profile,
                    created = ?candidate.created, "found a chatgpt.com session cookie");
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| candidate.rank() > b.rank())
                {
                    best = Some((store, candidate));
                }
            }
            Ok(None) => {
                tracing::debug!(store = %store.path.display(), "no chatgpt.com session cookie");
                searched.push(Searched {
                    browser: store.browser,
                    profile: store.profile,
                    store: store.path,
                    problem: None,
                });
            }
            Err(e) => {
                tracing::debug!(store = %store.path.display(), error = %e, "cookie store unusable");
                searched.push(Searched {
                    browser: store.browser,
                    profile: store.profile,
                    store: store.path,
                    problem: Some(Box::new(e)),
                });
            }
        }
    }

    if let Some((store, c)) = best {
        return Ok(FoundCookies {
            browser: store.browser,
            profile: store.profile,
            store: store.path,
            session_token: c.session_token,
            others: c.others,
            created: c.created,
        });
    }
    // One store: its own precise error; several: the list of what happened in each.
    if searched.len() == 1 {
        let only = searched.remove(0);
        return Err(match only.problem {
            Some(e) => *e,
            None => BrowserError::NoSession {
                browser: only.browser,
                profile: only.profile,
                store: only.store,
            },
        });
    }
    Err(BrowserError::NoSessionAnywhere { choice, searched })
}

/// Reads one store and picks its best session cookie.
fn read_store(
    store: &Store,
    env: &BrowserEnv,
    keyring: &KeyringCache<'_>,
    temp_base: &Path,
) -> Result<Option<Candidate>, BrowserError> {
    let read = match store.browser {
        Browser::Firefox => firefox::read(&store.path, temp_base)?,
        Browser::Safari => safari::read(&store.path, env.os)?,
        browser => chromium::read(store, env.os, env.now, temp_base, &|| keyring.get(browser))?,
    };
    let candidate = select::pick(read.cookies, env.now);
    if candidate.is_none()
        && let Some(reason) = read.undecryptable_session
    {
        return Err(BrowserError::Decrypt {
            browser: store.browser,
            profile: store.profile.clone(),
            store: store.path.clone(),
            reason,
        });
    }
    Ok(candidate)
}

/// Asks the keyring at most once per browser per [`find`], since on macOS each ask may
/// pop up a Keychain dialog.
struct KeyringCache<'a> {
    lookup: &'a KeyringLookup,
    cache: RefCell<HashMap<Browser, Option<SecretString>>>,
}

impl<'a> KeyringCache<'a> {
    fn new(lookup: &'a KeyringLookup) -> Self {
        KeyringCache {
            lookup,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn get(&self, browser: Browser) -> Option<SecretString> {
        self.cache
            .borrow_mut()
            .entry(browser)
            .or_insert_with(|| (self.lookup)(browser))
            .clone()
    }
}
