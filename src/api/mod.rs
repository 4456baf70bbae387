//! The chatgpt.com client: session exchange, conversation listings, conversation
//! detail and file downloads, every request paced, authenticated and retried the way
//! the service needs. See `shared/reference/chatgpt-api.md` for what it answers.

pub mod auth;
pub mod pace;
pub mod transport;

use crate::config::ApiConfig;
use crate::model::time::Time;
use auth::{AuthError, Credentials, Session};
use pace::{MAX_SERVER_WAIT, Pacer};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use transport::{HttpRequest, HttpResponse, Transport};

/// What can go wrong talking to chatgpt.com.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No credentials are stored.
    #[error("no ChatGPT session: run `convos auth` (or `convos auth --from-browser`) first")]
    NoCredentials,
    /// The access token was refused even after a fresh exchange.
    #[error(
        "chatgpt.com refused the access token twice in a row (401); run `convos auth` with a fresh cookie from chatgpt.com"
    )]
    Unauthorized,
    /// The session cookie no longer yields an access token.
    #[error("session expired: run `convos auth` with a fresh cookie from chatgpt.com")]
    SessionExpired,
    /// Too many requests.
    #[error("chatgpt.com is rate limiting this account (429){}", retry_after.map(|d| format!("; it asked to wait {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// What `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// Cloudflare (or the service) blocked the request with a challenge page.
    #[error(
        "chatgpt.com answered {status} with a {kind} instead of data: its bot protection is \
         blocking this machine. Open chatgpt.com in your browser on this machine, then run \
         `convos auth` again with a fresh cookie (a `cf_clearance` cookie helps); if it keeps \
         happening, wait an hour before syncing again"
    )]
    Challenge {
        /// HTTP status.
        status: u16,
        /// `Cloudflare challenge page` or `HTML page`.
        kind: &'static str,
    },
    /// The thing asked for does not exist.
    #[error("not found (404)")]
    NotFound,
    /// The service failed.
    #[error("chatgpt.com failed with HTTP {0}")]
    Server(u16),
    /// Another 4xx answer.
    #[error("chatgpt.com refused the request with HTTP {status}: {detail}")]
    Client {
        /// HTTP status.
        status: u16,
        /// A short excerpt of the answer.
        detail: String,
    },
    /// The network failed.
    #[error("network error talking to chatgpt.com: {0}")]
    Transport(String),
    /// The answer could not be read.
    #[error("unreadable answer from chatgpt.com ({0})")]
    Decode(String),
    /// Credentials could not be saved or read.
    #[error("{0}")]
    Credentials(String),
}

impl ApiError {
    /// Whether trying the same request again soon may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Server(_) | ApiError::Transport(_) | ApiError::Decode(_)
        )
    }

    /// What the server answered, in a few words for a degraded-part line: the HTTP
    /// status when there is one (`404`), else the kind of failure.
    pub fn status_label(&self) -> String {
        match self {
            ApiError::NotFound => "404".into(),
            ApiError::Unauthorized => "401".into(),
            ApiError::RateLimited { .. } => "429".into(),
            ApiError::Server(s) | ApiError::Challenge { status: s, .. } => s.to_string(),
            ApiError::Client { status, .. } if *status != 0 => status.to_string(),
            ApiError::Decode(_) => "unexpected answer".into(),
            ApiError::Transport(_) => "network error".into(),
            _ => "failed".into(),
        }
    }

    /// Whether the whole run should stop (no later request can succeed now).
    pub fn ends_run(&self) -> bool {
        matches!(
            self,
            ApiError::NoCredentials
                | ApiError::Unauthorized
                | ApiError::SessionExpired
                | ApiError::RateLimited { .. }
                | ApiError::Challenge { .. }
                | ApiError::Credentials(_)
        )
    }
}

/// Which conversation listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Normal conversations (project conversations included).
    Normal,
    /// Archived conversations.
    Archived,
}

/// One item of a conversation listing. Read field by field (see [`ListItem::from_row`]):
/// a field of an unexpected type counts as absent.
#[derive(Clone, Debug, Default)]
pub struct ListItem {
    /// Conversation id.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Creation time.
    pub create_time: Time,
    /// Update time (ISO in listings).
    pub update_time: Time,
    /// Archived flag.
    pub is_archived: Option<bool>,
    /// Starred flag.
    pub is_starred: Option<bool>,
    /// Project or GPT id: `gizmo_id`, else a `g-…` `conversation_template_id` (some
    /// rows carry only that).
    pub gizmo_id: Option<String>,
    /// Whether the row said which gizmo it belongs to (`gizmo_id` or
    /// `conversation_template_id` present, `null` included): only then does a missing
    /// gizmo mean "in no project".
    pub gizmo_listed: bool,
}

impl ListItem {
    /// Reads one listing row; `None` for a row without a conversation id (unreadable).
    pub fn from_row(row: &Value) -> Option<Self> {
        let obj = row.as_object()?;
        let id = obj.get("id")?.as_str().filter(|id| !id.is_empty())?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool);
        let time = |k: &str| {
            obj.get(k)
                .and_then(|v| Time::deserialize(v).ok())
                .unwrap_or_default()
        };
        let said = |k: &str| matches!(obj.get(k), Some(Value::Null | Value::String(_)));
        let gizmo = text("gizmo_id")
            .filter(|g| !g.is_empty())
            .or_else(|| text("conversation_template_id").filter(|t| t.starts_with("g-")));
        Some(Self {
            id: id.to_owned(),
            title: text("title"),
            create_time: time("create_time"),
            update_time: time("update_time"),
            is_archived: flag("is_archived"),
            is_starred: flag("is_starred"),
            gizmo_id: gizmo,
            gizmo_listed: said("gizmo_id") || said("conversation_template_id"),
        })
    }
}

/// A page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// Readable items, newest first.
    pub items: Vec<ListItem>,
    /// Rows the server sent (readable or not): paging goes by this.
    pub rows: usize,
    /// Indexes (within the page) of rows that could not be read.
    pub unreadable: Vec<usize>,
    /// Total reported by the service, if any.
    pub total: Option<u64>,
}

impl ListPage {
    /// Reads the `items` array of a listing answer; an answer without one is unexpected.
    fn read(body: &[u8], what: &str) -> Result<(Self, Value), ApiError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::Decode(format!("{what}: {e}")))?;
        let Some(rows) = v.get("items").and_then(Value::as_array) else {
            return Err(ApiError::Decode(format!("{what}: no `items` list")));
        };
        let mut page = ListPage {
            rows: rows.len(),
            total: v.get("total").and_then(Value::as_u64),
            ..ListPage::default()
        };
        for (i, row) in rows.iter().enumerate() {
            match ListItem::from_row(row) {
                Some(item) => page.items.push(item),
                None => page.unreadable.push(i),
            }
        }
        Ok((page, v))
    }
}

/// A project from the sidebar.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// `g-p-…`
    pub id: String,
    /// Display name.
    pub name: String,
}

/// Where a file can be downloaded.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// Signed download URL.
    pub download_url: String,
    /// File name.
    pub file_name: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
}

/// Ids a batch request may carry (the service's limit, as public clients observe it).
pub const BATCH_MAX: usize = 10;

/// What the batch endpoint answered.
#[derive(Debug)]
pub enum BatchAnswer {
    /// A list of whole conversations, each as sent (any that were asked for may be
    /// missing; others may be there).
    Items(Vec<Box<RawValue>>),
    /// The service does not offer the endpoint (400, 404, 405, 422, or an answer that
    /// is not a list): why, in a few words.
    Unsupported(String),
}

/// What a GET expects back.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// One complete JSON value.
    Json,
    /// File bytes of this MIME type (when known): an HTML or JSON page instead is an
    /// error answer dressed as a 200.
    File(Option<&'a str>),
}

/// Facts about the session for status output (never the token).
#[derive(Clone, Debug, Default)]
pub struct SessionInfo {
    /// When the access token expires.
    pub access_token_expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Account id.
    pub account_id: Option<String>,
}

struct AuthState {
    creds: Credentials,
    session: Option<Session>,
}

/// Re-exchange the session this long before the access token expires.
const REFRESH_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Whether an access token expiring at `expires_at` should be renewed now (a time too
/// early to subtract the margin from is long past).
fn refresh_due(expires_at: Option<chrono::DateTime<chrono::Utc>>) -> bool {
    expires_at.is_some_and(|e| {
        e.checked_sub_signed(REFRESH_MARGIN)
            .is_none_or(|at| at <= chrono::Utc::now())
    })
}

/// The client. Cheap to share behind an `Arc`.
pub struct Client {
    transport: Arc<dyn Transport>,
    base: reqwest::Url,
    cfg: ApiConfig,
    auth: tokio::sync::Mutex<AuthState>,
    info: Mutex<SessionInfo>,
    pacer: Pacer,
    device_id: String,
    requests: AtomicU64,
    /// Where rotated cookies are saved (`None`: credentials from the environment, which
    /// are never written). Every write of this client happens under `auth`, in order.
    credentials_file: Option<PathBuf>,
    /// Cleared when another client takes over the credentials file.
    owns_file: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Installs the TLS crypto provider once per process (reqwest is built without one).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client for `cfg.base_url` with these credentials. Cookies the service rotates
    /// are saved to `credentials_file` (when given) before the exchange returns.
    pub fn new(
        cfg: &ApiConfig,
        creds: Credentials,
        device_id: String,
        pacer: Pacer,
        credentials_file: Option<PathBuf>,
    ) -> Result<Self, ApiError> {
        install_tls_provider();
        let http = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
            .timeout(Duration::from_secs(cfg.request_timeout_secs))
            .gzip(true)
            .build()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        Self::with_transport(
            cfg,
            creds,
            device_id,
            pacer,
            credentials_file,
            Arc::new(transport::Http(http)),
        )
    }

    /// A client that sends its requests through `transport` (everything else as
    /// [`Client::new`]): a simulated service in the same process, for benchmarks.
    pub fn with_transport(
        cfg: &ApiConfig,
        creds: Credentials,
        device_id: String,
        pacer: Pacer,
        credentials_file: Option<PathBuf>,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, ApiError> {
        let base = reqwest::Url::parse(&cfg.base_url).map_err(|e| ApiError::Client {
            status: 0,
            detail: format!("bad base URL: {e}"),
        })?;
        Ok(Self {
            transport,
            base,
            cfg: cfg.clone(),
            auth: tokio::sync::Mutex::new(AuthState {
                creds,
                session: None,
            }),
            info: Mutex::new(SessionInfo::default()),
            pacer,
            device_id,
            requests: AtomicU64::new(0),
            credentials_file,
            owns_file: AtomicBool::new(true),
        })
    }

    /// The fingerprint of the credentials the client uses now (after any rotation).
    pub async fn fingerprint(&self) -> String {
        self.auth.lock().await.creds.fingerprint()
    }

    /// Saves the credentials the client uses now (after any rotation) to `path`, 0600.
    /// Made under the same lock as the saves of rotated cookies, so the newest cookie is
    /// the one left on disk. Returns what was saved.
    pub async fn save_credentials(&self, path: &Path) -> Result<Credentials, AuthError> {
        let auth = self.auth.lock().await;
        let (creds, file) = (auth.creds.clone(), path.to_path_buf());
        crate::util::blocking("saving the credentials", move || {
            creds.save(&file).map(|()| creds)
        })
        .await
        .map_err(|e| AuthError::Io {
            what: "cannot write",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?
    }

    /// Whether this client saves rotated cookies to its credentials file. A client
    /// replaced by one with newer credentials is told `false` before the new ones are
    /// saved, so its late rotations cannot overwrite them; this waits for a save in
    /// progress to finish.
    pub async fn own_credentials_file(&self, own: bool) {
        let _auth = self.auth.lock().await;
        self.owns_file.store(own, Ordering::SeqCst);
    }

    /// Requests sent so far (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// 429 answers met so far.
    pub fn rate_limited(&self) -> u64 {
        self.pacer.rate_limited()
    }

    /// The pacer (to save its state).
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// What is known about the session.
    pub fn session_info(&self) -> SessionInfo {
        self.info.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// When the access token should be renewed: the refresh margin before it expires;
    /// `None` while no token's expiry is known.
    pub fn refresh_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let expires = self.session_info().access_token_expires?;
        Some(
            expires
                .checked_sub_signed(REFRESH_MARGIN)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        )
    }

    /// Whether the access token expires within the refresh margin (or is unknown).
    pub async fn needs_refresh(&self) -> bool {
        let auth = self.auth.lock().await;
        match &auth.session {
            Some(s) => refresh_due(s.expires_at),
            None => true,
        }
    }

    fn origin(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn browser_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let origin = self.origin();
        for (name, value) in [
            ("accept", "application/json".to_owned()),
            ("accept-language", "en-US,en;q=0.9".to_owned()),
            ("origin", origin.clone()),
            ("referer", format!("{origin}/")),
            ("oai-device-id", self.device_id.clone()),
            ("oai-language", "en-US".to_owned()),
            ("sec-fetch-dest", "empty".to_owned()),
            ("sec-fetch-mode", "cors".to_owned()),
            ("sec-fetch-site", "same-origin".to_owned()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        h
    }

    /// Exchanges the session cookie for an access token (paced like any request).
    pub async fn refresh_session(&self) -> Result<SessionInfo, ApiError> {
        let mut auth = self.auth.lock().await;
        self.exchange(&mut auth).await?;
        Ok(self.session_info())
    }

    async fn exchange(&self, auth: &mut AuthState) -> Result<(), ApiError> {
        let url = self.url("/api/auth/session")?;
        let mut attempt = 0u32;
        loop {
            let _permit = self.pacer.acquire(log_wait).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut headers = self.browser_headers();
            let cookie = auth.creds.cookie_header();
            let mut cookie_value = HeaderValue::from_str(cookie.expose_secret())
                .map_err(|_| ApiError::Credentials("the stored cookie holds characters a header cannot carry; run `convos auth` again".into()))?;
            cookie_value.set_sensitive(true);
            headers.insert(reqwest::header::COOKIE, cookie_value);
            let req = HttpRequest {
                method: Method::GET,
                url: url.clone(),
                headers,
                body: None,
            };
            let result = match self.transport.send(req).await {
                Ok(resp) => {
                    let rotated: Vec<String> = resp
                        .headers
                        .get_all(reqwest::header::SET_COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok().map(str::to_owned))
                        .collect();
                    match read_body(resp) {
                        Ok(body) => {
                            if auth
                                .creds
                                .apply_set_cookies(rotated.iter().map(String::as_str))
                            {
                                // Saved before anything else can happen with this
                                // client: the service may already refuse the old cookie.
                                self.save_rotated(&auth.creds).await;
                            }
                            match auth::parse_session(&body) {
                                Ok(Some(session)) => Ok(session),
                                Ok(None) => Err(ApiError::SessionExpired),
                                Err(e) => Err(ApiError::Decode(format!("session answer: {e}"))),
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(session) => {
                    self.pacer.on_success();
                    if let Ok(mut info) = self.info.lock() {
                        *info = SessionInfo {
                            access_token_expires: session.expires_at,
                            account_id: session.account_id.clone(),
                        };
                    }
                    if let Some(account) = &session.account_id {
                        // What was learnt about pacing belongs to this account.
                        self.pacer.adopt_account(account).await;
                    }
                    auth.session = Some(session);
                    return Ok(());
                }
                Err(ApiError::RateLimited { retry_after }) if attempt < 2 => {
                    attempt += 1;
                    let cooldown = self.pacer.on_rate_limited(retry_after).await;
                    if cooldown.give_up {
                        return Err(ApiError::RateLimited {
                            retry_after: Some(cooldown.wait),
                        });
                    }
                    tracing::warn!(
                        "rate limited on the session exchange; waiting {} s",
                        cooldown.wait.as_secs()
                    );
                }
                Err(e) if e.is_retryable() && attempt < self.cfg.retries => {
                    attempt += 1;
                    self.retry_pause(attempt, &e).await;
                }
                Err(e) => {
                    match &e {
                        ApiError::SessionExpired => auth.session = None,
                        // The cooldown outlives the call (and a restart), as in `get`.
                        ApiError::RateLimited { retry_after } => {
                            let cooldown = self.pacer.on_rate_limited(*retry_after).await;
                            return Err(ApiError::RateLimited {
                                retry_after: Some(cooldown.wait),
                            });
                        }
                        _ => {}
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Saves rotated cookies before the exchange returns (the caller holds `auth`, so
    /// saves happen one at a time, in the order the service rotated them).
    async fn save_rotated(&self, creds: &Credentials) {
        let Some(path) = self.credentials_file.clone() else {
            tracing::info!(
                "chatgpt.com rotated the session cookie; kept for this run only (the session \
                 comes from CONVOS_SESSION_TOKEN, which convos never writes)"
            );
            return;
        };
        if !self.owns_file.load(Ordering::SeqCst) {
            tracing::debug!("rotated cookie of a replaced session not saved");
            return;
        }
        let c = creds.clone();
        match crate::util::blocking("saving the rotated session cookie", move || c.save(&path))
            .await
        {
            Ok(Ok(())) => {
                tracing::info!("chatgpt.com rotated the session cookie; saved the new one")
            }
            Ok(Err(e)) => tracing::error!("could not save the rotated session cookie: {e}"),
            Err(_) => {} // logged by `blocking`
        }
    }

    fn url(&self, path_and_query: &str) -> Result<reqwest::Url, ApiError> {
        self.base
            .join(path_and_query.trim_start_matches('/'))
            .map_err(|e| ApiError::Client {
                status: 0,
                detail: format!("bad URL: {e}"),
            })
    }

    async fn retry_pause(&self, attempt: u32, e: &ApiError) {
        let base = crate::util::backoff(
            pace::secs_f64(self.cfg.retry_base_secs),
            attempt,
            MAX_SERVER_WAIT,
        );
        let wait = base
            .mul_f64(1.0 + fastrand::f64() * 0.25)
            .min(MAX_SERVER_WAIT);
        tracing::warn!(
            "{e}; retrying in {:.1} s (attempt {} of {})",
            wait.as_secs_f64(),
            attempt,
            self.cfg.retries
        );
        tokio::time::sleep(wait).await;
    }

    /// GET a backend path (see [`Client::request`]).
    async fn get(&self, path_and_query: &str, expect: Expect<'_>) -> Result<Vec<u8>, ApiError> {
        self.request(Method::GET, path_and_query, None, expect)
            .await
    }

    /// Sends a request to a backend path with the bearer token: paced, re-exchanging the
    /// session once after a 401, waiting out 429s (until the pacer gives up: too many in
    /// a row, or a wait longer than the longest probe), retrying 5xx, network errors and
    /// broken bodies. Only reads are sent, so a retry is always safe.
    async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        expect: Expect<'_>,
    ) -> Result<Vec<u8>, ApiError> {
        let url = self.url(path_and_query)?;
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            let (token, account) = {
                let mut auth = self.auth.lock().await;
                let stale = match &auth.session {
                    Some(s) => refresh_due(s.expires_at),
                    None => true,
                };
                if stale {
                    self.exchange(&mut auth).await?;
                }
                let Some(s) = auth.session.as_ref() else {
                    return Err(ApiError::SessionExpired);
                };
                (s.access_token.clone(), s.account_id.clone())
            };
            let _permit = self.pacer.acquire(log_wait).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut headers = self.browser_headers();
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| {
                    ApiError::Decode("the access token holds invalid characters".into())
                })?;
            bearer.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, bearer);
            if let Some(a) = account
                .as_deref()
                .and_then(|a| HeaderValue::from_str(a).ok())
            {
                headers.insert("chatgpt-account-id", a);
            }
            if body.is_some() {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            let req = HttpRequest {
                method: method.clone(),
                url: url.clone(),
                headers,
                body: body.clone(),
            };
            let result = match self.transport.send(req).await {
                Ok(resp) => checked_body(resp, expect),
                Err(e) => Err(e),
            };
            match result {
                Ok(body) => {
                    self.pacer.on_success();
                    return Ok(body);
                }
                Err(ApiError::Unauthorized) if !reauthed => {
                    reauthed = true;
                    tracing::info!(
                        "access token refused (401); exchanging the session for a new one"
                    );
                    let mut auth = self.auth.lock().await;
                    auth.session = None;
                }
                Err(ApiError::RateLimited { retry_after }) => {
                    let cooldown = self.pacer.on_rate_limited(retry_after).await;
                    if cooldown.give_up {
                        return Err(ApiError::RateLimited {
                            retry_after: Some(cooldown.wait),
                        });
                    }
                    tracing::warn!(
                        "chatgpt.com is rate limiting (429); pausing {} s before going on, \
                         then pacing at {:.2} requests a minute",
                        cooldown.wait.as_secs(),
                        self.pacer.rate_per_minute()
                    );
                }
                Err(e) if e.is_retryable() && attempt < self.cfg.retries => {
                    attempt += 1;
                    self.retry_pause(attempt, &e).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One page of a conversation listing, newest update first.
    pub async fn list(
        &self,
        listing: Listing,
        offset: u64,
        limit: u32,
    ) -> Result<ListPage, ApiError> {
        let archived = listing == Listing::Archived;
        let path = format!(
            "/backend-api/conversations?offset={offset}&limit={limit}&order=updated&is_archived={archived}&hide_snorlax=false"
        );
        let body = self.get(&path, Expect::Json).await?;
        Ok(ListPage::read(&body, "conversation list")?.0)
    }

    /// One page of the project sidebar: projects and the next cursor.
    pub async fn projects(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<Project>, Option<String>), ApiError> {
        let mut path = "/backend-api/gizmos/snorlax/sidebar?conversations_per_gizmo=0".to_owned();
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let v: Value = serde_json::from_slice(&self.get(&path, Expect::Json).await?)
            .map_err(|e| ApiError::Decode(format!("project list: {e}")))?;
        let Some(items) = v.get("items").and_then(Value::as_array) else {
            return Err(ApiError::Decode("project list: no `items` list".into()));
        };
        let projects = items
            .iter()
            .filter_map(|item| {
                let g = item.get("gizmo")?.get("gizmo")?;
                Some(Project {
                    id: g.get("id")?.as_str()?.to_owned(),
                    name: g
                        .pointer("/display/name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_owned(),
                })
            })
            .collect();
        Ok((projects, next_cursor(&v)))
    }

    /// One page of a project's conversations and the next cursor.
    pub async fn project_conversations(
        &self,
        gizmo_id: &str,
        cursor: Option<&str>,
    ) -> Result<(ListPage, Option<String>), ApiError> {
        let path = format!(
            "/backend-api/gizmos/{}/conversations?cursor={}&limit=50",
            urlencode(gizmo_id),
            urlencode(cursor.unwrap_or("0"))
        );
        let body = self.get(&path, Expect::Json).await?;
        let (page, v) = ListPage::read(&body, "project conversations")?;
        Ok((page, next_cursor(&v)))
    }

    /// A conversation's JSON exactly as sent (`GET /backend-api/conversation/{id}`).
    pub async fn conversation(&self, id: &str) -> Result<Vec<u8>, ApiError> {
        self.get(
            &format!("/backend-api/conversation/{}", urlencode(id)),
            Expect::Json,
        )
        .await
    }

    /// Up to [`BATCH_MAX`] whole conversations in one request (`POST
    /// /backend-api/conversations/batch`). An endpoint the service does not offer is
    /// [`BatchAnswer::Unsupported`], not an error; errors are those of any request.
    pub async fn conversations_batch(&self, ids: &[String]) -> Result<BatchAnswer, ApiError> {
        let body = serde_json::to_vec(&serde_json::json!({ "conversation_ids": ids }))
            .map_err(|e| ApiError::Decode(format!("batch request: {e}")))?;
        let answer = self
            .request(
                Method::POST,
                "/backend-api/conversations/batch",
                Some(body),
                Expect::Json,
            )
            .await;
        let bytes = match answer {
            Ok(b) => b,
            Err(ApiError::NotFound) => return Ok(BatchAnswer::Unsupported("404".into())),
            Err(ApiError::Client {
                status: s @ (400 | 405 | 422),
                ..
            }) => return Ok(BatchAnswer::Unsupported(s.to_string())),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice::<Vec<Box<RawValue>>>(&bytes) {
            Ok(items) => Ok(BatchAnswer::Items(items)),
            Err(_) => Ok(BatchAnswer::Unsupported(format!(
                "an answer that is not a list ({})",
                json_kind(&bytes)
            ))),
        }
    }

    /// Where to download a file; `Ok(None)` when the service says it has no such file
    /// (`{"status": "error", …}`). Any other answer without a download URL is unexpected.
    pub async fn file_info(
        &self,
        file_id: &str,
        conversation_id: &str,
    ) -> Result<Option<FileInfo>, ApiError> {
        let path = format!(
            "/backend-api/files/download/{}?conversation_id={}&inline=false",
            urlencode(file_id),
            urlencode(conversation_id)
        );
        let v: Value = serde_json::from_slice(&self.get(&path, Expect::Json).await?)
            .map_err(|e| ApiError::Decode(format!("file info: {e}")))?;
        match v.get("status").and_then(Value::as_str) {
            Some("success") => {}
            Some(_) => return Ok(None),
            None => return Err(ApiError::Decode("file info: no `status`".into())),
        }
        let Some(url) = v.get("download_url").and_then(Value::as_str) else {
            return Err(ApiError::Decode("file info: no `download_url`".into()));
        };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Ok(Some(FileInfo {
            download_url: url.to_owned(),
            file_name: s("file_name"),
            mime_type: s("mime_type"),
        }))
    }

    /// Downloads file bytes from a signed URL (paced; the bearer token only goes to
    /// chatgpt.com itself). `mime` is the type the file info announced: an HTML or JSON
    /// page instead of such a file is an error answer, not the file.
    pub async fn download(&self, url: &str, mime: Option<&str>) -> Result<Vec<u8>, ApiError> {
        let target = self
            .base
            .join(url)
            .map_err(|e| ApiError::Decode(format!("download URL: {e}")))?;
        if target.origin() == self.base.origin() {
            let path = &target[url::Position::BeforePath..];
            return self.get(path, Expect::File(mime)).await;
        }
        let mut attempt = 0u32;
        loop {
            let _permit = self.pacer.acquire(log_wait).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let req = HttpRequest {
                method: Method::GET,
                url: target.clone(),
                headers: HeaderMap::new(),
                body: None,
            };
            let result = match self.transport.send(req).await {
                Ok(resp) => checked_body(resp, Expect::File(mime)),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < self.cfg.retries => {
                    attempt += 1;
                    self.retry_pause(attempt, &e).await;
                }
                other => return other,
            }
        }
    }
}

fn log_wait(d: Duration) {
    tracing::info!(
        "pacing requests to chatgpt.com: next one in {} s",
        d.as_secs()
    );
}

/// The kind of a JSON value, for messages.
fn json_kind(bytes: &[u8]) -> &'static str {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "an object",
        Some(b'[') => "a list",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "empty",
    }
}

fn next_cursor(v: &serde_json::Value) -> Option<String> {
    match v.get("cursor")? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Ensures a body is one complete JSON value (truncated or HTML bodies are retried).
fn check_json(body: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| {
            let html = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
            ApiError::Decode(if html {
                "an HTML page instead of JSON".to_owned()
            } else {
                format!("broken JSON: {e}")
            })
        })
}

/// Reads a response and checks it is what was expected (see [`Expect`]).
fn checked_body(resp: HttpResponse, expect: Expect<'_>) -> Result<Vec<u8>, ApiError> {
    let media = resp
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media_type);
    let body = read_body(resp)?;
    match expect {
        Expect::Json => check_json(&body)?,
        Expect::File(Some(mime)) => {
            if let Some(got) = media
                .filter(|m| (m == "text/html" || m == "application/json") && *m != media_type(mime))
            {
                return Err(ApiError::Decode(format!(
                    "a {got} page instead of the {} file",
                    media_type(mime)
                )));
            }
        }
        Expect::File(None) => {}
    }
    Ok(body)
}

/// The lower-case `type/subtype` of a Content-Type value.
fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Reads a response: the body on 2xx, a typed error otherwise.
fn read_body(resp: HttpResponse) -> Result<Vec<u8>, ApiError> {
    let HttpResponse {
        status,
        headers,
        body,
    } = resp;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let is_html = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("text/html"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    Err(match status {
        401 => ApiError::Unauthorized,
        403 if headers.contains_key("cf-mitigated") => ApiError::Challenge {
            status,
            kind: "Cloudflare challenge page",
        },
        403 if is_html => ApiError::Challenge {
            status,
            kind: "HTML page",
        },
        404 => ApiError::NotFound,
        429 => ApiError::RateLimited {
            retry_after: retry_after(&headers),
        },
        s if s >= 500 => ApiError::Server(s),
        s => ApiError::Client {
            status: s,
            detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    })
}

/// `Retry-After` as seconds or an HTTP date, at most [`MAX_SERVER_WAIT`] (a longer
/// wait is logged with the value the server sent). A date in the past or an unreadable
/// value counts as absent.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let raw = h.get(reqwest::header::RETRY_AFTER)?;
    let v = String::from_utf8_lossy(raw.as_bytes());
    let v = v.trim();
    let asked = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        Some(v.parse::<u64>().map_or(Duration::MAX, Duration::from_secs))
    } else if let Ok(when) = chrono::DateTime::parse_from_rfc2822(v) {
        (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .ok()
    } else {
        tracing::warn!("ignoring an unreadable Retry-After from chatgpt.com: {v:?}");
        None
    }?;
    if asked > MAX_SERVER_WAIT {
        tracing::warn!(
            "chatgpt.com asked to wait {v:?} (Retry-After); waiting {} s, the longest convos \
             takes from the server",
            MAX_SERVER_WAIT.as_secs()
        );
        return Some(MAX_SERVER_WAIT);
    }
    Some(asked)
}
