//! Reading chatgpt.com cookies from a Chromium-family `Cookies` database (Chrome,
//! Chromium, Brave, Edge), decrypting `encrypted_value` where needed.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use super::chromium_crypto::{self as crypto, Key};
use super::keyring;
use super::profiles::Store;
use super::select::{self, RawCookie, StoreRead};
use super::sqlite::{self, corrupt};
use super::{Browser, BrowserError, Os};

/// Microseconds between 1601-01-01 (Chromium's epoch) and 1970-01-01.
const EPOCH_DELTA_MICROS: i64 = 11_644_473_600_000_000;

/// Reads the wanted chatgpt.com cookies from a copy of the store; `keyring` is asked
/// for the browser's password only if an encrypted cookie needs it.
pub(crate) fn read(
    store: &Store,
    os: Os,
    now: DateTime<Utc>,
    temp_base: &Path,
    keyring: &dyn Fn() -> Option<SecretString>,
) -> Result<StoreRead, BrowserError> {
    let copy = sqlite::open_copy(store.browser, &store.path, temp_base)?;
    let mut decryptor = Decryptor {
        browser: store.browser,
        os,
        keyring,
        meta_version: None,
        keys: HashMap::new(),
        keyring_had_password: false,
    };
    query(&copy.conn, &mut decryptor, now).map_err(|e| corrupt(store.browser, &store.path, &e))
}

fn query(
    conn: &rusqlite::Connection,
    decryptor: &mut Decryptor<'_>,
    now: DateTime<Utc>,
) -> rusqlite::Result<StoreRead> {
    decryptor.meta_version = meta_version(conn)?;
    // Partitioned (CHIPS) cookies are chatgpt.com embedded in another site, not a login.
    let partition = if sqlite::has_column(conn, "cookies", "top_frame_site_key")? {
        "top_frame_site_key"
    } else {
        "''"
    };
    let sql = format!(
        "SELECT host_key, name, value, encrypted_value, expires_utc, creation_utc, \
         last_access_utc, {partition} FROM cookies WHERE host_key IN (?1, ?2, ?3, ?4)"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(select::HOSTS)?;
    let mut read = StoreRead::default();
    while let Some(row) = rows.next()? {
        let host = sqlite::text(row, 0)?;
        let name = sqlite::text(row, 1)?;
        if !select::is_wanted_name(&name) || !sqlite::text(row, 7)?.is_empty() {
            continue;
        }
        // 0 means a session cookie: alive while the browser runs, so kept.
        let expires = chrome_time(sqlite::int(row, 4)?);
        // Dropped before decrypting, so an expired one is never reported as undecryptable.
        if expires.is_some_and(|e| e <= now) {
            continue;
        }
        let plain = sqlite::bytes(row, 2)?;
        let value = if plain.is_empty() {
            match decryptor.decrypt(&sqlite::bytes(row, 3)?, &host) {
                Ok(v) => v,
                Err(reason) => {
                    tracing::debug!(cookie = %name, %reason, "cannot decrypt cookie");
                    // Covers the chunks `.0`, `.1`, ... too.
                    if name.starts_with(select::SESSION_COOKIE) {
                        read.undecryptable_session.get_or_insert(reason);
                    }
                    continue;
                }
            }
        } else {
            plain
        };
        let Some(value) = select::secret_from_utf8(value) else {
            tracing::debug!(cookie = %name, "skipping a cookie whose value is not UTF-8");
            continue;
        };
        read.cookies.push(RawCookie {
            host,
            name,
            value,
            expires,
            created: chrome_time(sqlite::int(row, 5)?),
            last_access: chrome_time(sqlite::int(row, 6)?),
            jar: String::new(),
        });
    }
    Ok(read)
}

/// The database's `meta.version`, which says whether plaintexts carry a host hash.
fn meta_version(conn: &rusqlite::Connection) -> rusqlite::Result<Option<i64>> {
    let has_meta: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if has_meta == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT value FROM meta WHERE key = 'version'")?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(match row.get_ref(0)? {
        rusqlite::types::ValueRef::Integer(i) => Some(i),
        rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        _ => None,
    })
}

/// Chromium timestamps: microseconds since 1601-01-01; 0 (or less) means "none".
fn chrome_time(us: i64) -> Option<DateTime<Utc>> {
    if us <= 0 {
        return None;
    }
    DateTime::from_timestamp_micros(us.checked_sub(EPOCH_DELTA_MICROS)?)
}

/// Decrypts values of one store, deriving each key at most once.
struct Decryptor<'a> {
    browser: Browser,
    os: Os,
    keyring: &'a dyn Fn() -> Option<SecretString>,
    meta_version: Option<i64>,
    /// Candidate keys per version tag, tried in order.
    keys: HashMap<String, Vec<Key>>,
    keyring_had_password: bool,
}

impl Decryptor<'_> {
    /// The plaintext of `encrypted`, or why it cannot be had (no secrets in the reason).
    fn decrypt(&mut self, encrypted: &[u8], host: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        if encrypted.is_empty() {
            return Ok(Zeroizing::new(Vec::new()));
        }
        let Some((tag, body)) = crypto::split_version(encrypted) else {
            return Err(format!(
                "the value is not in a format convos knows: {}",
                self.advice()
            ));
        };
        if !self.keys.contains_key(tag) {
            let keys = self.keys_for(tag)?;
            self.keys.insert(tag.to_owned(), keys);
        }
        let keys = self.keys.get(tag).map(Vec::as_slice).unwrap_or_default();
        keys.iter()
            .find_map(|k| crypto::decrypt(k, body, host, self.meta_version))
            .ok_or_else(|| self.failure_reason(tag))
    }

    fn keys_for(&mut self, tag: &str) -> Result<Vec<Key>, String> {
        match (self.os, tag) {
            (Os::Linux, "v10") => Ok(vec![Key::derive(
                crypto::LINUX_V10_PASSWORD.as_bytes(),
                crypto::LINUX_ITERATIONS,
            )]),
            (Os::Linux, "v11") => {
                let mut keys = Vec::new();
                if let Some(pw) = (self.keyring)() {
                    self.keyring_had_password = true;
                    keys.push(Key::derive(
                        pw.expose_secret().as_bytes(),
                        crypto::LINUX_ITERATIONS,
                    ));
                }
                // Chromium encrypts with the empty password when the keyring gave none.
                keys.push(Key::derive(b"", crypto::LINUX_ITERATIONS));
                Ok(keys)
            }
            (Os::MacOs, "v10") => match (self.keyring)() {
                Some(pw) => {
                    self.keyring_had_password = true;
                    Ok(vec![Key::derive(
                        pw.expose_secret().as_bytes(),
                        crypto::MAC_ITERATIONS,
                    )])
                }
                None => Err(format!(
                    "could not read \"{}\" from the macOS Keychain: run the command again and \
                     choose Allow when macOS asks for access",
                    keyring::mac_service(self.browser)
                )),
            },
            (_, other) => Err(format!(
                "it uses encryption `{other}`, which convos cannot decrypt on this system: {}",
                self.advice()
            )),
        }
    }

    fn failure_reason(&self, tag: &str) -> String {
        match (self.os, tag) {
            (Os::Linux, "v11") if !self.keyring_had_password => format!(
                "its password is kept in the desktop keyring, which did not give it (is \
                 `secret-tool` from libsecret installed and the login keyring unlocked? KDE \
                 Wallet is not supported): {}",
                self.advice()
            ),
            (Os::Linux, "v11") => format!(
                "the password from the desktop keyring does not decrypt it: {}",
                self.advice()
            ),
            (Os::MacOs, _) => format!(
                "the \"{}\" Keychain password does not decrypt it: {}",
                keyring::mac_service(self.browser),
                self.advice()
            ),
            _ => format!(
                "the value does not decrypt with the usual key: {}",
                self.advice()
            ),
        }
    }

    fn advice(&self) -> String {
        format!(
            "copy the `{}` cookie from {}'s developer tools and paste it with `convos auth` instead",
            select::SESSION_COOKIE,
            self.browser
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_epoch() {
        // 2024-01-01T00:00:00Z in Chromium time.
        let t = chrome_time(13_348_540_800_000_000).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(chrome_time(0), None);
        assert_eq!(chrome_time(i64::MIN), None);
    }
}
