//! Who may read the viewer, and the headers every answer carries.
//!
//! - A random 256-bit token lives in `<data dir>/web-token` (0600), created once and
//!   reused after. `convos web` hands it to the browser as `?token=`; the viewer
//!   answers with an `HttpOnly; SameSite=Strict` cookie and a redirect to the same
//!   address without the token, so it leaves the address bar and history.
//! - Any other request without the cookie gets 401. Tokens are compared in constant
//!   time.
//! - A `Host` other than the listen address, `localhost:PORT` or `[::1]:PORT` gets 403:
//!   a web page cannot reach the viewer by pointing a name of its own at 127.0.0.1
//!   (DNS rebinding).
//! - Requests another site makes (fetch metadata `Sec-Fetch-Site`) get 403 unless they
//!   are plain navigations; the viewer sends no CORS headers, ever.

use super::{Shared, WebError, pages};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "web-token";

/// The Content-Security-Policy of every response: nothing but the viewer's own files,
/// no inline scripts or styles, no plugins, no framing.
pub const CSP: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'";

/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// The viewer's secret. Its value never appears in Debug output or logs.
#[derive(Clone)]
pub struct AccessToken(Arc<str>);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl AccessToken {
    /// Reads the token from `<data_dir>/web-token`, creating the file (0600, and the
    /// folder 0700) with a new random token when it is missing. A file that does not
    /// hold a token is replaced, with a warning; one others can read is made private.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, WebError> {
        let path = data_dir.join(TOKEN_FILE);
        crate::archive::private::create_private_dir(data_dir).map_err(|source| {
            WebError::Token {
                what: "cannot create the data directory",
                path: data_dir.to_path_buf(),
                source,
            }
        })?;
        // Two processes (the daemon, `convos web`) may both find the file missing: the
        // second to publish one adopts the first's, so a few rounds always settle.
        for _ in 0..4 {
            match fs::read_to_string(&path) {
                Ok(text) => {
                    let text = text.trim();
                    if is_token(text) {
                        make_private(&path);
                        return Ok(Self(Arc::from(text)));
                    }
                    tracing::warn!(
                        "{} does not hold a web viewer token; replacing it with a new one \
                         (open the viewer again with `convos web`)",
                        path.display()
                    );
                    publish(data_dir, &path, &new_token()?, true)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    publish(data_dir, &path, &new_token()?, false)?;
                }
                Err(source) => {
                    return Err(WebError::Token {
                        what: "cannot read the web viewer token",
                        path,
                        source,
                    });
                }
            }
        }
        Err(WebError::Token {
            what: "cannot settle the web viewer token",
            path,
            source: io::Error::other("the file kept changing while it was read"),
        })
    }

    /// The token's text (64 lower-case hex digits).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the token, compared in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

/// `http://ADDR/?token=…`: the address that lets a browser in.
pub fn url_with_token(listen: SocketAddr, token: &AccessToken) -> String {
    format!("http://{listen}/?token={}", token.expose())
}

fn is_token(s: &str) -> bool {
    s.len() == TOKEN_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_token() -> Result<String, WebError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Random(e.to_string()))?;
    Ok(crate::util::hex(&bytes))
}

/// Writes the token to a private temporary file, then puts it in place in one step:
/// linked when the file must not exist yet (another process may have won the race),
/// renamed over it when it replaces an unreadable one. Readers never see half a file.
fn publish(dir: &Path, path: &Path, token: &str, replace: bool) -> Result<(), WebError> {
    let tmp = dir.join(format!(
        ".{TOKEN_FILE}.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let err = |what, source| WebError::Token {
        what,
        path: path.to_path_buf(),
        source,
    };
    let write = || -> io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()
    };
    let placed = write().and_then(|()| {
        if replace {
            fs::rename(&tmp, path)
        } else {
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        }
    });
    let _ = fs::remove_file(&tmp);
    placed.map_err(|e| err("cannot write the web viewer token", e))
}

/// Takes group and other access away from the token file, with a warning.
fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = fs::metadata(path) else { return };
        if meta.permissions().mode() & 0o077 == 0 {
            return;
        }
        match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
            Ok(()) => tracing::warn!(
                "{} was readable by other users; made it private to you (chmod 600)",
                path.display()
            ),
            Err(e) => tracing::warn!(
                "{} is readable by other users and could not be made private ({e}); fix it \
                 with `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        }
    }
}

/// The `Host` values the viewer answers to, lower-cased.
#[derive(Clone, Debug)]
pub struct Hosts(BTreeSet<String>);

impl Hosts {
    /// The listen address (loopback for an unspecified one), `localhost:PORT` and
    /// `[::1]:PORT`.
    pub fn for_listen(listen: SocketAddr) -> Self {
        let port = listen.port();
        Self(
            [
                listen.to_string(),
                super::browse_addr(listen).to_string(),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]
            .into_iter()
            .collect(),
        )
    }

    /// Adds one more accepted `Host`.
    pub fn allow(&mut self, host: &str) {
        self.0.insert(host.to_ascii_lowercase());
    }

    /// Whether a request's `Host` is one of them.
    pub fn accepts(&self, host: &str) -> bool {
        self.0.contains(&host.to_ascii_lowercase())
    }
}

/// The cookie's name; the port keeps viewers of two data directories apart (cookies
/// ignore ports).
fn cookie_name(listen: SocketAddr) -> String {
    format!("convos_web_{}", listen.port())
}

/// Access checks, then the handler, then the security headers on whatever answers.
pub(crate) async fn guard(State(st): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let mut resp = check(&st, req, next).await;
    security_headers(resp.headers_mut());
    resp
}

async fn check(st: &Shared, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|h| st.hosts.accepts(h)) {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "This address is not the viewer's",
            &format!(
                "The viewer answers only at http://{} (or localhost and [::1] with the same \
                 port). Open it with `convos web`.",
                st.listen
            ),
        );
    }
    if !fetch_allowed(req.method(), req.headers()) {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "Request from another site refused",
            "Another web site asked your browser to load this. The viewer only answers its \
             own pages and your own navigation.",
        );
    }
    if let Some(query) = req.uri().query() {
        let (token, rest) = split_token(query);
        if let Some(token) = token {
            if !st.token.matches(token.as_bytes()) {
                return unauthorized("The access link's token is not this viewer's.");
            }
            return admit(st, req.uri().path(), &rest);
        }
    }
    if has_cookie(req.headers(), &cookie_name(st.listen), &st.token) {
        next.run(req).await
    } else {
        unauthorized("This browser has not been let in yet.")
    }
}

fn unauthorized(why: &str) -> Response {
    pages::refusal(
        StatusCode::UNAUTHORIZED,
        "Open the viewer with its access link",
        &format!(
            "{why} Run `convos web` to open the viewer in your browser, or `convos web \
             --print-url` to print its address with the token."
        ),
    )
}

/// The redirect that sets the cookie and drops the token from the address.
fn admit(st: &Shared, path: &str, rest: &str) -> Response {
    // `//host` or `/\host` would send the browser to another site.
    let path = if path.starts_with("//") || path.starts_with("/\\") || !path.starts_with('/') {
        "/"
    } else {
        path
    };
    let location = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{rest}")
    };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000",
        cookie_name(st.listen),
        st.token.expose()
    );
    let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(&location),
        HeaderValue::from_str(&cookie),
    ) else {
        return pages::refusal(
            StatusCode::BAD_REQUEST,
            "Bad address",
            "The address cannot be used.",
        );
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

/// The `token` parameter's value, and the rest of the query as it was sent.
fn split_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if key == "token" {
            let value = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            token = Some(value);
        } else if !pair.is_empty() {
            rest.push(pair);
        }
    }
    (token, rest.join("&"))
}

fn has_cookie(headers: &HeaderMap, name: &str, token: &AccessToken) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == name && token.matches(v.as_bytes()))
}

/// Fetch-metadata resource isolation: what the browser says another site (or another
/// port of this one) asked for is refused, except a plain navigation to a page.
fn fetch_allowed(method: &Method, headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        None | Some("same-origin" | "none") => true,
        Some(_) => {
            get("sec-fetch-mode") == Some("navigate")
                && (method == Method::GET || method == Method::HEAD)
                && !matches!(get("sec-fetch-dest"), Some("object" | "embed"))
        }
    }
}

/// The headers every response carries; pages that set no cache policy are not stored.
fn security_headers(h: &mut HeaderMap) {
    // A handler's own, stricter policy (downloads are sandboxed) is kept beside it:
    // browsers enforce every policy they are sent.
    let own: Vec<HeaderValue> = h
        .get_all(header::CONTENT_SECURITY_POLICY)
        .iter()
        .filter(|v| v.as_bytes() != CSP.as_bytes())
        .cloned()
        .collect();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    for v in own {
        h.append(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let a = AccessToken::load_or_create(&data).expect("create");
        assert!(is_token(a.expose()), "{}", a.expose());
        let path = data.join(TOKEN_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = AccessToken::load_or_create(&data).expect("reuse");
        assert_eq!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "AccessToken(<redacted>)");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&data)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(TOKEN_FILE)]);
        // Two viewers never share a token by chance.
        let other = tempfile::tempdir().expect("tempdir");
        let c = AccessToken::load_or_create(other.path()).expect("other");
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn a_damaged_token_file_is_replaced_and_a_loose_one_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(TOKEN_FILE);
        fs::write(&path, "not a token\n").expect("write");
        let a = AccessToken::load_or_create(dir.path()).expect("replace");
        assert!(is_token(a.expose()));
        assert_eq!(fs::read_to_string(&path).expect("read").trim(), a.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            let b = AccessToken::load_or_create(dir.path()).expect("reuse");
            assert_eq!(a.expose(), b.expose());
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn token_matching_is_exact() {
        let t = AccessToken(Arc::from("ab".repeat(32).as_str()));
        assert!(t.matches("ab".repeat(32).as_bytes()));
        assert!(!t.matches("ab".repeat(31).as_bytes()));
        assert!(!t.matches(format!("{}ac", "ab".repeat(31)).as_bytes()));
        assert!(!t.matches(b""));
    }

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(
            split_token("token=abc"),
            (Some("abc".into()), String::new())
        );
        assert_eq!(
            split_token("q=a%20b&token=abc&page=2"),
            (Some("abc".into()), "q=a%20b&page=2".into())
        );
        assert_eq!(split_token("q=token"), (None, "q=token".into()));
        assert_eq!(split_token("token"), (Some(String::new()), String::new()));
    }

    #[test]
    fn hosts_are_the_listen_address_localhost_and_ipv6_loopback() {
        let h = Hosts::for_listen("127.0.0.1:8642".parse().expect("addr"));
        for ok in [
            "127.0.0.1:8642",
            "localhost:8642",
            "LOCALHOST:8642",
            "[::1]:8642",
        ] {
            assert!(h.accepts(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "localhost",
            "evil.example:8642",
            "127.0.0.1:8643",
            "localhost.:8642",
            "127.0.0.1.nip.io:8642",
        ] {
            assert!(!h.accepts(bad), "{bad}");
        }
        let mut h = Hosts::for_listen("[::1]:9000".parse().expect("addr"));
        assert!(h.accepts("[::1]:9000"));
        assert!(!h.accepts("myhost:9000"));
        h.allow("MyHost:9000");
        assert!(h.accepts("myhost:9000"));
    }

    #[test]
    fn other_sites_may_only_navigate() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(fetch_allowed(&Method::GET, &headers(&[])));
        assert!(fetch_allowed(
            &Method::GET,
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", "cors")
            ])
        ));
        assert!(fetch_allowed(
            &Method::GET,
            &headers(&[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")])
        ));
        assert!(fetch_allowed(
            &Method::GET,
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "document")
            ])
        ));
        for bad in [
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "no-cors"),
            ]),
            headers(&[("sec-fetch-site", "same-site"), ("sec-fetch-mode", "cors")]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "embed"),
            ]),
        ] {
            assert!(!fetch_allowed(&Method::GET, &bad), "{bad:?}");
        }
        assert!(!fetch_allowed(
            &Method::POST,
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate")
            ])
        ));
    }
}
