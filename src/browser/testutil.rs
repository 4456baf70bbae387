//! Builders for fake browser homes and cookie stores used by the tests.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};
use secrecy::SecretString;

use super::chromium_crypto::{Key, testing::encrypt};
use super::safari::testing::{TestCookie, encode};
use super::{Browser, BrowserEnv, Os};

pub const SESSION: &str = "__Secure-next-auth.session-token";

/// The fixed "now" of every test.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

/// `now()` shifted by `days` (negative = past).
pub fn day(days: i64) -> DateTime<Utc> {
    now() + chrono::Duration::days(days)
}

/// An environment over `home` whose keyring answers from `passwords`.
pub fn env(home: &Path, os: Os, passwords: &[(Browser, &str)]) -> BrowserEnv {
    let passwords: Vec<(Browser, String)> = passwords
        .iter()
        .map(|(b, p)| (*b, (*p).to_owned()))
        .collect();
    BrowserEnv {
        home: home.to_path_buf(),
        os,
        keyring: Box::new(move |b| {
            passwords
                .iter()
                .find(|(pb, _)| *pb == b)
                .map(|(_, p)| SecretString::from(p.clone()))
        }),
        now: now(),
    }
}

/// One cookie row for a test store.
#[derive(Clone)]
pub struct C {
    pub host: &'static str,
    pub name: &'static str,
    pub value: &'static str,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

/// A live cookie created `created_days` from now, expiring in 30 days.
pub fn c(host: &'static str, name: &'static str, value: &'static str, created_days: i64) -> C {
    C {
        host,
        name,
        value,
        created: day(created_days),
        expires: Some(day(30)),
    }
}

// ---------------------------------------------------------------- Firefox

const FIREFOX_SCHEMA: &str = "CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY, \
    originAttributes TEXT NOT NULL DEFAULT '', name TEXT, value TEXT, host TEXT, path TEXT, \
    expiry INTEGER, lastAccessed INTEGER, creationTime INTEGER, isSecure INTEGER, \
    isHttpOnly INTEGER, inBrowserElement INTEGER DEFAULT 0, sameSite INTEGER DEFAULT 0, \
    rawSameSite INTEGER DEFAULT 0, schemeMap INTEGER DEFAULT 0, \
    isPartitionedAttributeSet INTEGER DEFAULT 0, \
    CONSTRAINT moz_uniqueid UNIQUE (name, host, path, originAttributes))";

/// Inserts `cookies` into a Firefox store (expiry in seconds, or milliseconds if `ms`).
pub fn firefox_insert(conn: &Connection, cookies: &[C], ms: bool, origin: &str) {
    for c in cookies {
        let expiry = c.expires.map_or(0, |e| {
            if ms {
                e.timestamp_millis()
            } else {
                e.timestamp()
            }
        });
        conn.execute(
            "INSERT INTO moz_cookies (originAttributes, name, value, host, path, expiry, \
             lastAccessed, creationTime, isSecure, isHttpOnly) VALUES (?1,?2,?3,?4,'/',?5,?6,?7,1,1)",
            params![
                origin,
                c.name,
                c.value,
                c.host,
                expiry,
                c.created.timestamp_micros(),
                c.created.timestamp_micros()
            ],
        )
        .unwrap();
    }
}

/// Writes a Firefox `cookies.sqlite` at `path`.
pub fn firefox_db(path: &Path, cookies: &[C]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(FIREFOX_SCHEMA).unwrap();
    firefox_insert(&conn, cookies, false, "");
}

/// Creates a WAL-mode Firefox store whose `cookies` are only in the `-wal` file; the
/// returned connection must stay open (closing it would checkpoint into the main file).
pub fn firefox_wal_db(path: &Path, cookies: &[C]) -> Connection {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; {FIREFOX_SCHEMA}; PRAGMA wal_checkpoint(TRUNCATE);"
    ))
    .unwrap();
    conn.execute_batch("PRAGMA wal_autocheckpoint=0;").unwrap();
    firefox_insert(&conn, cookies, false, "");
    conn
}

/// Adds a Firefox profile tree (`profiles.ini` + one store per profile) under `home`.
/// Each profile is `(name, relative dir, cookies)`.
pub fn firefox_home(home: &Path, root_rel: &str, profiles: &[(&str, &str, &[C])]) -> Vec<PathBuf> {
    let root = home.join(root_rel);
    let mut ini = String::from("[General]\nStartWithLastProfile=1\nVersion=2\n\n");
    let mut stores = Vec::new();
    for (i, (name, dir, cookies)) in profiles.iter().enumerate() {
        ini.push_str(&format!(
            "[Profile{i}]\nName={name}\nIsRelative=1\nPath={dir}\n\n"
        ));
        let store = root.join(dir).join("cookies.sqlite");
        firefox_db(&store, cookies);
        stores.push(store);
    }
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("profiles.ini"), ini).unwrap();
    stores
}

// ---------------------------------------------------------------- Chromium

/// How a Chromium test store stores its values.
#[derive(Clone, Copy)]
pub enum Enc<'a> {
    /// In the plain `value` column.
    Plain,
    /// Encrypted with the given tag and key password/iterations.
    Encrypted {
        tag: &'a str,
        password: &'a str,
        iterations: u32,
    },
}

const CHROMIUM_SCHEMA: &str = "CREATE TABLE meta(key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, \
    value LONGVARCHAR); \
    CREATE TABLE cookies(creation_utc INTEGER NOT NULL, host_key TEXT NOT NULL, \
    top_frame_site_key TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, \
    encrypted_value BLOB NOT NULL, path TEXT NOT NULL, expires_utc INTEGER NOT NULL, \
    is_secure INTEGER NOT NULL, is_httponly INTEGER NOT NULL, last_access_utc INTEGER NOT NULL, \
    has_expires INTEGER NOT NULL, is_persistent INTEGER NOT NULL, priority INTEGER NOT NULL, \
    samesite INTEGER NOT NULL, source_scheme INTEGER NOT NULL, source_port INTEGER NOT NULL, \
    last_update_utc INTEGER NOT NULL, source_type INTEGER NOT NULL, \
    has_cross_site_ancestor INTEGER NOT NULL, UNIQUE (host_key, top_frame_site_key, name, path))";

fn chrome_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros() + 11_644_473_600_000_000
}

/// Writes a Chromium `Cookies` database with `meta.version = version`.
pub fn chromium_db(path: &Path, version: i64, enc: Enc<'_>, cookies: &[C]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(CHROMIUM_SCHEMA).unwrap();
    conn.execute(
        "INSERT INTO meta VALUES ('version', ?1), ('last_compatible_version', '22')",
        [version.to_string()],
    )
    .unwrap();
    for c in cookies {
        let (value, encrypted) = match enc {
            Enc::Plain => (c.value.to_owned(), Vec::new()),
            Enc::Encrypted {
                tag,
                password,
                iterations,
            } => {
                let key = Key::derive(password.as_bytes(), iterations);
                let hash_host = (version >= 24).then_some(c.host);
                (String::new(), encrypt(&key, tag, c.value, hash_host))
            }
        };
        conn.execute(
            "INSERT INTO cookies VALUES (?1, ?2, '', ?3, ?4, ?5, '/', ?6, 1, 1, ?1, 1, 1, 1, 0, 2, \
             443, ?1, 0, 0)",
            params![
                chrome_micros(c.created),
                c.host,
                c.name,
                value,
                encrypted,
                c.expires.map_or(0, chrome_micros)
            ],
        )
        .unwrap();
    }
}

/// Writes `Local State` naming `profiles` (`(dir, display name)`) under `root`.
pub fn local_state(root: &Path, profiles: &[(&str, &str)]) {
    let cache: serde_json::Map<String, serde_json::Value> = profiles
        .iter()
        .map(|(d, n)| ((*d).to_owned(), serde_json::json!({ "name": n })))
        .collect();
    fs::create_dir_all(root).unwrap();
    fs::write(
        root.join("Local State"),
        serde_json::json!({ "profile": { "info_cache": cache } }).to_string(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- Safari

/// Writes a Safari `Cookies.binarycookies` at `path`.
pub fn safari_file(path: &Path, cookies: &[C]) {
    let tc: Vec<TestCookie<'_>> = cookies
        .iter()
        .map(|c| TestCookie {
            domain: c.host,
            name: c.name,
            path: "/",
            value: c.value,
            expiry_unix: c.expires.map_or(0.0, |e| e.timestamp() as f64),
            creation_unix: c.created.timestamp() as f64,
        })
        .collect();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, encode(&[&tc], true)).unwrap();
}

/// Names of the entries in `dir` (to check temp copies are gone).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
