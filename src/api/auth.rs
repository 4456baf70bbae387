//! Credentials: the chatgpt.com session cookie (stored 0600, never logged), the
//! exchange of that cookie for an access token, the token's expiry from its JWT, and
//! the session cookies the service rotates.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The session cookie's name; NextAuth splits long values into `.0`, `.1`, … chunks.
pub const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";
/// Other chatgpt.com cookies worth replaying when a browser provided them.
pub const EXTRA_COOKIES: &[&str] = &["oai-did", "cf_clearance", "_account", "__cf_bm", "_cfuvid"];

/// Problems with stored or given credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credentials file is readable by other users.
    #[error(
        "{path} is readable by other users (mode {mode:o}); it holds your ChatGPT session, so \
         convos will not use it. Fix it with: chmod 600 {path}"
    )]
    PermissionsTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what convos writes.
    #[error("{0} is damaged; run `convos auth` again to replace it")]
    Corrupt(PathBuf),
    /// The input holds no session token.
    #[error(
        "no session token found in the input: paste the value of the \
         __Secure-next-auth.session-token cookie (or its .0 and .1 parts) from chatgpt.com"
    )]
    NoSessionCookie,
}

/// The cookies that make up a chatgpt.com session. `Debug` shows names only.
#[derive(Clone)]
pub struct Credentials {
    cookies: Vec<(String, SecretString)>,
    /// Where they came from (`stdin`, `environment`, `firefox (default-release)`…).
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.cookies.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Credentials")
            .field("cookies", &names)
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    version: u32,
    cookies: Vec<(String, String)>,
    source: String,
    saved_at: String,
}

impl Credentials {
    /// Credentials from a list of cookies (name, value).
    pub fn from_cookies(
        cookies: Vec<(String, SecretString)>,
        source: &str,
    ) -> Result<Self, AuthError> {
        let c = Self {
            cookies,
            source: source.to_owned(),
        };
        if c.session_value().is_none() {
            return Err(AuthError::NoSessionCookie);
        }
        Ok(c)
    }

    /// Reads what a user pasted: a bare token value, `name=value`, a whole `Cookie:`
    /// header, or the `.0`/`.1` chunks on separate lines.
    pub fn parse_input(text: &str, source: &str) -> Result<Self, AuthError> {
        let text = text
            .trim()
            .trim_start_matches("Cookie:")
            .trim_start_matches("cookie:")
            .trim();
        if text.is_empty() {
            return Err(AuthError::NoSessionCookie);
        }
        let mut cookies = Vec::new();
        for piece in text.split([';', '\n', '\r']) {
            let piece = piece.trim();
            if let Some((name, value)) = piece.split_once('=') {
                let name = name.trim();
                let value = value.trim().trim_matches('"');
                if (is_session_name(name) || EXTRA_COOKIES.contains(&name)) && !value.is_empty() {
                    cookies.push((name.to_owned(), SecretString::from(value.to_owned())));
                }
            }
        }
        if cookies.iter().all(|(n, _)| !is_session_name(n)) {
            // A bare value: a session token has no spaces, `;` or `=` except base64 padding.
            let bare = text.trim_matches('"');
            if bare.contains(|c: char| c.is_whitespace() || c == ';') || bare.len() < 20 {
                return Err(AuthError::NoSessionCookie);
            }
            cookies.push((
                SESSION_COOKIE.to_owned(),
                SecretString::from(bare.to_owned()),
            ));
        }
        Self::from_cookies(cookies, source)
    }

    /// The session token: the unchunked cookie, else the chunks joined in index order.
    pub fn session_value(&self) -> Option<SecretString> {
        if let Some((_, v)) = self.cookies.iter().find(|(n, _)| n == SESSION_COOKIE) {
            return Some(v.clone());
        }
        let mut chunks: Vec<(u32, &SecretString)> = self
            .cookies
            .iter()
            .filter_map(|(n, v)| Some((chunk_index(n)?, v)))
            .collect();
        if chunks.is_empty() {
            return None;
        }
        chunks.sort_by_key(|(i, _)| *i);
        // A gap means a lost chunk: the joined value would be wrong.
        if chunks
            .iter()
            .enumerate()
            .any(|(pos, (i, _))| *i as usize != pos)
        {
            return None;
        }
        let joined: String = chunks.iter().map(|(_, v)| v.expose_secret()).collect();
        Some(SecretString::from(joined))
    }

    /// The `Cookie` header value carrying every stored cookie.
    pub fn cookie_header(&self) -> SecretString {
        let header = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={}", v.expose_secret()))
            .collect::<Vec<_>>()
            .join("; ");
        SecretString::from(header)
    }

    /// A short, non-reversible fingerprint of the session token (to recognise a dead one).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let v = self
            .session_value()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        crate::util::hex(&sha2::Sha256::digest(v.as_bytes())[..8])
    }

    /// The cookies with their values, for handing them to the daemon over its private
    /// socket. Never log the result.
    pub fn expose_cookies(&self) -> Vec<(String, String)> {
        self.cookies
            .iter()
            .map(|(n, v)| (n.clone(), v.expose_secret().to_owned()))
            .collect()
    }

    /// Names of the stored cookies.
    pub fn cookie_names(&self) -> Vec<String> {
        self.cookies.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Applies `Set-Cookie` headers from a session response: new session chunks replace
    /// the whole family (so a stale `.1` cannot survive), `Max-Age=0` or a past
    /// `Expires` removes a cookie. Returns whether anything changed.
    pub fn apply_set_cookies<'h>(&mut self, headers: impl Iterator<Item = &'h str>) -> bool {
        let mut sets: Vec<(String, Option<String>)> = Vec::new();
        for h in headers {
            let mut parts = h.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let name = name.trim().to_owned();
            if !(is_session_name(&name) || EXTRA_COOKIES.contains(&name.as_str())) {
                continue;
            }
            let removed = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0"
                    || attr
                        .strip_prefix("max-age=")
                        .is_some_and(|v| v.starts_with('-'))
                    || attr.strip_prefix("expires=").is_some_and(|d| {
                        chrono::DateTime::parse_from_rfc2822(d.trim())
                            .or_else(|_| {
                                chrono::DateTime::parse_from_str(
                                    d.trim(),
                                    "%a, %d-%b-%Y %H:%M:%S GMT",
                                )
                            })
                            .is_ok_and(|t| t < chrono::Utc::now())
                    })
            });
            let value = value.trim().trim_matches('"');
            sets.push((
                name,
                (!removed && !value.is_empty()).then(|| value.to_owned()),
            ));
        }
        if sets.is_empty() {
            return false;
        }
        let before = self.cookie_header();
        let new_session = sets.iter().any(|(n, v)| is_session_name(n) && v.is_some());
        if new_session {
            self.cookies.retain(|(n, _)| !is_session_name(n));
        }
        for (name, value) in sets {
            self.cookies.retain(|(n, _)| *n != name);
            if let Some(v) = value {
                self.cookies.push((name, SecretString::from(v)));
            }
        }
        if self.session_value().is_none() {
            // Never drop the session entirely on a malformed rotation.
            return false;
        }
        before.expose_secret() != self.cookie_header().expose_secret()
    }

    /// Loads the credentials: `CONVOS_SESSION_TOKEN` when given, else the file.
    /// A file readable by others is refused.
    pub fn load(path: &Path, env_token: Option<&str>) -> Result<Option<Self>, AuthError> {
        if let Some(t) = env_token.map(str::trim).filter(|t| !t.is_empty()) {
            return Self::parse_input(t, "environment (CONVOS_SESSION_TOKEN)").map(Some);
        }
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AuthError::Io {
                    what: "cannot read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(AuthError::PermissionsTooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = std::fs::read(path).map_err(|source| AuthError::Io {
            what: "cannot read",
            path: path.to_path_buf(),
            source,
        })?;
        let stored: StoredFile =
            serde_json::from_slice(&text).map_err(|_| AuthError::Corrupt(path.to_path_buf()))?;
        let cookies = stored
            .cookies
            .into_iter()
            .map(|(n, v)| (n, SecretString::from(v)))
            .collect();
        Self::from_cookies(cookies, &stored.source)
            .map(Some)
            .map_err(|_| AuthError::Corrupt(path.to_path_buf()))
    }

    /// Saves the credentials to a file created 0600 (written aside, then renamed).
    pub fn save(&self, path: &Path) -> Result<(), AuthError> {
        let io = |what| {
            move |source| AuthError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("cannot create the folder of"))?;
        }
        let stored = StoredFile {
            version: 1,
            cookies: self
                .cookies
                .iter()
                .map(|(n, v)| (n.clone(), v.expose_secret().to_owned()))
                .collect(),
            source: self.source.clone(),
            saved_at: crate::model::time::now_rfc3339(),
        };
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let result = (|| {
            let mut f = opts.open(&tmp).map_err(io("cannot write"))?;
            let body = serde_json::to_vec_pretty(&stored)
                .map_err(|e| io("cannot encode")(std::io::Error::other(e)))?;
            f.write_all(&body).map_err(io("cannot write"))?;
            f.sync_all().map_err(io("cannot write"))?;
            std::fs::rename(&tmp, path).map_err(io("cannot replace"))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Whether a cookie name is the session cookie or one of its chunks.
pub fn is_session_name(name: &str) -> bool {
    name == SESSION_COOKIE || chunk_index(name).is_some()
}

fn chunk_index(name: &str) -> Option<u32> {
    name.strip_prefix(SESSION_COOKIE)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

/// Claims read from an access token (a JWT; the signature is not checked).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    /// Expiry, epoch seconds.
    pub exp: Option<i64>,
    /// The ChatGPT account id.
    pub account_id: Option<String>,
}

/// Decodes a JWT's payload.
pub fn jwt_claims(token: &str) -> Option<Claims> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(Claims {
        exp: v
            .get("exp")
            .and_then(|e| e.as_i64().or_else(|| e.as_f64().map(|f| f as i64))),
        account_id: v
            .get("https://api.openai.com/auth")
            .and_then(|a| a.get("chatgpt_account_id"))
            .and_then(|a| a.as_str())
            .map(str::to_owned),
    })
}

/// An access token and what is known about it. `Debug` never shows the token.
#[derive(Clone)]
pub struct Session {
    /// The bearer token.
    pub access_token: SecretString,
    /// When it expires (from the JWT, else the session response's `expires`).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The account id for `Chatgpt-Account-Id`.
    pub account_id: Option<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("expires_at", &self.expires_at)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// The session endpoint's answer.
#[derive(Deserialize)]
struct SessionResponse {
    #[serde(rename = "accessToken")]
    access_token: Option<String>,
    expires: Option<String>,
    account: Option<AccountInfo>,
}

#[derive(Deserialize)]
struct AccountInfo {
    id: Option<String>,
}

/// Reads a session response body. `Ok(None)` is the empty `{}` of a dead session.
pub fn parse_session(body: &[u8]) -> Result<Option<Session>, serde_json::Error> {
    let r: SessionResponse = serde_json::from_slice(body)?;
    let Some(token) = r.access_token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let claims = jwt_claims(&token).unwrap_or_default();
    let expires_at = claims
        .exp
        .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
        .or_else(|| {
            r.expires
                .as_deref()
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                .map(|d| d.with_timezone(&chrono::Utc))
        });
    Ok(Some(Session {
        account_id: r.account.and_then(|a| a.id).or(claims.account_id),
        access_token: SecretString::from(token),
        expires_at,
    }))
}

#[cfg(test)]
mod tests;
