//! A fake chatgpt.com that integration tests run on loopback, so no test touches the real network.
//!
//! It follows the contract in `/work/shared/reference/chatgpt-api.md` §2.1–2.7 and
//! `chatgpt-format.md` §1.3, 2, 7: the session → access-token exchange, the conversation list
//! (ISO times) and detail (float epoch times) endpoints, the batch endpoint (off unless
//! [`FakeChatGpt::enable_batch`]: then it answers with the quirks public clients report), the
//! project ("snorlax") sidebar, file downloads, the failure modes the real service shows (401
//! `token_expired`, 429, Cloudflare 403 challenges, 5xx pages, truncated or non-JSON bodies),
//! and two rate limits the service is reported to have (a token bucket, a window).
//!
//! Behaviour worth knowing when writing tests against it:
//! * Every request is recorded *before* anything else happens, so faulted, rejected and
//!   rate-limited requests all show up in [`FakeChatGpt::requests`] and [`FakeChatGpt::count`].
//! * Order of checks for a request: queued one-shot fault, then permanent fault, then (for
//!   `/backend-api/*` except the estuary byte route) the bearer check, then the optional token
//!   bucket, then the normal handler.
//! * The session cookie is read the way NextAuth reads it: every non-empty cookie of the
//!   `__Secure-next-auth.session-token` family (the bare name first, then `.0`, `.1`, … in index
//!   order) is concatenated. A client that keeps a stale bare cookie next to fresh chunks therefore
//!   sends a value that is not a session, and gets `{}` back, as it would in real life.
//! * `GET /backend-api/estuary/content` does **not** need a bearer token: like the real signed
//!   URL, the `sig` query parameter minted by `/backend-api/files/download/{id}` is the credential
//!   (a wrong or missing `sig` gets 403). It is still subject to faults and the rate limits.
//! * Time goes by tokio's clock: under a paused clock the rate limits refill in simulated
//!   time. [`FakeChatGpt::in_process`] makes a server without a socket, reached through
//!   [`FakeChatGpt::transport`], so a whole sync can run under a paused clock (no real I/O
//!   for the clock to jump over).
//! * The batch endpoint (`POST /backend-api/conversations/batch`, `{"conversation_ids": […]}`,
//!   at most 10): a JSON array of whole conversations with `id` but no `conversation_id`, ISO
//!   `create_time`/`update_time`, no `default_model_slug`; unknown ids are left out, deleted
//!   conversations still come back; conversations created before
//!   [`FakeChatGpt::set_batch_legacy_before`] have their `update_time` rounded down to the second.
//!   Absent, it answers 404 (or the status given to [`FakeChatGpt::disable_batch`]).
//! * `order=created` on the listing answers 500, as the real one does.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

/// Name of the NextAuth session cookie (its chunks append `.0`, `.1`, …).
pub const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// E-mail address of the fake user (in the session body and the JWT profile claim).
pub const USER_EMAIL: &str = "archivist@example.com";

/// Body of the real 401 for an expired, unknown or missing access token.
const TOKEN_EXPIRED_MESSAGE: &str =
    "Your authentication token has expired. Please try signing in again.";

/// Body of the real 429.
const TOO_MANY_REQUESTS: &str = "Too many requests in 1 minute. Try again later.";

/// Default access-token lifetime: `exp - iat` of a real Dec-2023 JWT was 10 days.
const DEFAULT_TOKEN_TTL_SECS: i64 = 10 * 24 * 3600;

/// Projects per sidebar page; deliberately tiny so tests exercise the cursor.
const SIDEBAR_PAGE: usize = 2;

/// Default page size of `/backend-api/gizmos/{id}/conversations` (pionxzh uses 50).
const GIZMO_PAGE_DEFAULT: usize = 50;

/// Default `limit` of the conversation list when the client sends none (web client: 28).
const LIST_LIMIT_DEFAULT: u64 = 28;

/// Options stored with a conversation besides its detail body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvOpts {
    /// Archived conversations only appear in `is_archived=true` listings.
    pub archived: bool,
    /// Starred (`is_starred`) flag shown in list items and the detail.
    pub starred: bool,
    /// Project gizmo id (`g-p-…`); such conversations need `hide_snorlax=false` in the main list.
    pub project: Option<String>,
}

/// How list items spell their ISO timestamps (chatgpt-format.md §7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IsoFlavour {
    /// `2025-07-10T14:53:58.103234Z` (current API).
    #[default]
    Z,
    /// `2023-12-06T02:41:14.616844+00:00`.
    PlusZero,
    /// 2023 style, no zone: `create_time` with µs, `update_time` truncated to whole seconds.
    Naive,
}

/// A route a fault can be attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /api/auth/session`.
    Session,
    /// `GET /backend-api/conversations` (archived or not).
    List,
    /// `GET /backend-api/conversation/{id}` for this one id.
    Detail(String),
    /// `GET /backend-api/conversation/{id}` for any id (checked after the id-specific route).
    AnyDetail,
    /// `POST /backend-api/conversations/batch`.
    Batch,
    /// `GET /backend-api/gizmos/snorlax/sidebar`.
    Sidebar,
    /// `GET /backend-api/gizmos/{gizmo_id}/conversations`.
    GizmoConversations,
    /// `GET /backend-api/files/download/{file_id}`.
    FileDownload,
    /// `GET /backend-api/estuary/content`.
    FileBytes,
}

/// A failure answered instead of the normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status. 502, 503, 504 and 520–530 get a Cloudflare-style HTML page (`text/html`);
    /// 500 gets JSON `{"detail":"Internal server error"}`; any other code gets JSON
    /// `{"detail":"<reason phrase>"}`. Codes outside 100..=999 become 500.
    Status(u16),
    /// 429 `{"detail":"Too many requests in 1 minute. Try again later."}`, with `Retry-After` if set.
    RateLimited {
        /// Seconds for the `Retry-After` header; `None` sends no header (the usual real case).
        retry_after: Option<u64>,
    },
    /// 401 with the `token_expired` body.
    Unauthorized,
    /// 403 Cloudflare "Just a moment..." page with `cf-mitigated: challenge`.
    Challenge,
    /// 403 with the same challenge page but no `cf-mitigated` header.
    ChallengeNoHeader,
    /// The normal response (same status and headers) with its body cut in half.
    TruncatedJson,
    /// 200 `text/html` with a web-app HTML page instead of JSON.
    NonJson,
    /// 404 JSON (`{"detail":"Can't load conversation <id>"}` on detail routes, else `Not Found`).
    NotFound,
    /// 200 `application/json` with this body instead of the normal answer (an endpoint
    /// that moved or changed its shape).
    OkJson(Value),
    /// No failure: waits this long, then answers normally (bearer check, token bucket and
    /// handler as usual). Makes a request slow, e.g. to keep a sync running across ticks; the
    /// request is recorded on arrival with `status: None` until the answer goes out.
    Delay(Duration),
}

/// What kind of endpoint a recorded request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `/api/auth/session`.
    Session,
    /// `/backend-api/conversations` without `is_archived=true`.
    List,
    /// `/backend-api/conversations?is_archived=true`.
    ArchivedList,
    /// `/backend-api/conversation/{id}`.
    Detail,
    /// `POST /backend-api/conversations/batch`.
    Batch,
    /// `/backend-api/gizmos/snorlax/sidebar`.
    Sidebar,
    /// `/backend-api/gizmos/{gizmo_id}/conversations`.
    GizmoConversations,
    /// `/backend-api/files/download/{file_id}`.
    FileDownload,
    /// `/backend-api/estuary/content`.
    FileBytes,
    /// Anything else (answered 404).
    Other,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Arrival number, unique for the server's lifetime (not reset by `reset_counts`).
    pub seq: u64,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path without the query, e.g. `/backend-api/conversations`.
    pub path: String,
    /// Raw query string without `?`, if any.
    pub query: Option<String>,
    /// Headers by lowercase name; repeated headers are joined with `, ` (`; ` for `cookie`).
    pub headers: BTreeMap<String, String>,
    /// Which endpoint this was.
    pub kind: RouteKind,
    /// Status answered, or `None` while the request is still being served.
    pub status: Option<u16>,
    /// The body of a `POST`, as text.
    pub body: Option<String>,
    /// When it arrived (tokio's clock: simulated under a paused clock).
    pub at: Instant,
}

impl Recorded {
    /// The value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The ids a batch request asked for (empty for any other request).
    pub fn batch_ids(&self) -> Vec<String> {
        self.body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|v| {
                v.get("conversation_ids")?.as_array().map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// The value of one query parameter (first occurrence, percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let uri: axum::http::Uri = format!("/?{}", self.query.as_deref()?).parse().ok()?;
        let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(&uri).ok()?;
        params.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// The file that [`image_conversation_detail`] attaches to its user message.
#[derive(Debug, Clone, Copy)]
pub struct ImageAttachment<'a> {
    /// File id without scheme, e.g. `file_00000000abc`; the pointer becomes `sediment://<id>`.
    pub file_id: &'a str,
    /// File name shown in `metadata.attachments`.
    pub name: &'a str,
    /// MIME type, e.g. `image/png`.
    pub mime: &'a str,
    /// Size in bytes.
    pub size: u64,
}

/// A running fake chatgpt.com; dropping it stops the server.
pub struct FakeChatGpt {
    state: Shared,
    addr: SocketAddr,
    /// Set for [`FakeChatGpt::in_process`]: the base URL clients are given.
    in_process: Option<String>,
    stop: watch::Sender<bool>,
    /// Set for [`FakeChatGpt::start_background`]: the thread that owns the server's runtime.
    thread: Option<std::thread::JoinHandle<()>>,
}

type Shared = Arc<Mutex<Inner>>;

struct Conv {
    detail: Value,
    opts: ConvOpts,
}

struct FileEntry {
    bytes: Vec<u8>,
    name: String,
    mime: String,
    created: DateTime<Utc>,
    /// Signatures handed out in download URLs; the byte route accepts only these.
    sigs: HashSet<String>,
}

struct Rotation {
    new_token: String,
    chunked: bool,
    revoke_old: bool,
}

struct TokenInfo {
    exp: i64,
    invalidated: bool,
}

struct Bucket {
    capacity: f64,
    refill_per_sec: f64,
    tokens: f64,
    last: Instant,
}

/// At most `limit` requests in any `window` (429 without `Retry-After` beyond).
struct Window {
    limit: usize,
    window: Duration,
    admitted: VecDeque<Instant>,
}

/// Whether and how the batch endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchMode {
    /// Absent: this status (404, 405…).
    Absent(u16),
    /// Present, with its quirks.
    Present,
}

struct Inner {
    base_url: String,
    account_id: String,
    user_id: String,
    /// Session token → revoked?
    sessions: HashMap<String, bool>,
    tokens: HashMap<String, TokenInfo>,
    token_ttl: i64,
    rotation: Option<Rotation>,
    /// Every successful exchange without a queued rotation rotates to a fresh token;
    /// `Some(true)` also revokes the one sent.
    rotate_every: Option<bool>,
    convs: HashMap<String, Conv>,
    /// Deleted conversations, as the batch endpoint still returns them.
    tombstones: HashMap<String, Conv>,
    batch: BatchMode,
    /// Conversations created before this have their batch `update_time` rounded down.
    batch_legacy_before: Option<f64>,
    /// Items the batch endpoint sends in place of a conversation's own.
    batch_overrides: HashMap<String, Value>,
    /// A `total` every listing reports in place of the true one.
    list_total: Option<Value>,
    window: Option<Window>,
    /// (gizmo id, name) in insertion order, which is the sidebar order.
    projects: Vec<(String, String)>,
    list_skew: f64,
    iso: IsoFlavour,
    /// Raw rows shown in every listing in place of these conversations' own rows.
    row_overrides: HashMap<String, Value>,
    /// Keys left out of every listing row.
    omitted_row_keys: Vec<String>,
    omit_null_keys: bool,
    files: HashMap<String, FileEntry>,
    faults: HashMap<Route, VecDeque<Fault>>,
    always: HashMap<Route, Fault>,
    bucket: Option<Bucket>,
    requests: Vec<Recorded>,
    next_seq: u64,
}

fn lock(state: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock must not wedge every later request.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeChatGpt {
    /// Starts the server on the current tokio runtime, bound to `127.0.0.1:<free port>`.
    pub async fn start() -> FakeChatGpt {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake chatgpt: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake chatgpt: local_addr");
        let state = new_state(addr);
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(serve(listener, state.clone(), stop_rx));
        FakeChatGpt {
            state,
            addr,
            in_process: None,
            stop,
            thread: None,
        }
    }

    /// A server without a socket: clients reach it through [`Self::transport`], in the
    /// same process and on the caller's runtime, so a paused tokio clock drives both.
    pub fn in_process() -> FakeChatGpt {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let state = new_state(addr);
        let base = "http://chatgpt.in-process.invalid".to_owned();
        lock(&state).base_url = base.clone();
        let (stop, _) = watch::channel(false);
        FakeChatGpt {
            state,
            addr,
            in_process: Some(base),
            stop,
            thread: None,
        }
    }

    /// A transport for [`convos::api::Client::with_transport`] that hands every request
    /// to this server's handlers in-process (any server: a socket one is reached the
    /// same way, without the socket).
    pub fn transport(&self) -> Arc<dyn convos::api::transport::Transport> {
        Arc::new(InProcess(router(self.state.clone())))
    }

    /// Starts the server on its own thread and runtime, for sync tests that run the binary.
    pub fn start_background() -> FakeChatGpt {
        // Bind here, not on the thread, so the port is known (and listening) on return.
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake chatgpt: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fake chatgpt: set_nonblocking");
        let addr = listener.local_addr().expect("fake chatgpt: local_addr");
        let state = new_state(addr);
        let (stop, stop_rx) = watch::channel(false);
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-chatgpt".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake chatgpt: build runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("fake chatgpt: adopt listener");
                    serve(listener, thread_state, stop_rx).await;
                });
                // Dropping the runtime here cancels any connection task still alive.
            })
            .expect("fake chatgpt: spawn thread");
        FakeChatGpt {
            state,
            addr,
            in_process: None,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, to be used as the client's `[api] base_url`.
    pub fn base_url(&self) -> String {
        match &self.in_process {
            Some(base) => base.clone(),
            None => format!("http://{}", self.addr),
        }
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }

    // ---- sessions and tokens -------------------------------------------------------------

    /// Makes `token` a valid session cookie value (un-revokes it if it was revoked).
    pub fn add_session(&self, token: &str) {
        self.lock().sessions.insert(token.to_owned(), false);
    }

    /// Makes `token` a dead session: the exchange answers `{}` from now on.
    pub fn revoke_session(&self, token: &str) {
        self.lock().sessions.insert(token.to_owned(), true);
    }

    /// Lifetime (`exp - iat`) of access tokens minted from now on; `<= 0` mints expired tokens.
    pub fn set_access_token_ttl(&self, secs: i64) {
        self.lock().token_ttl = secs;
    }

    /// Every access token minted so far gets the 401 `token_expired` answer from now on.
    pub fn expire_access_tokens(&self) {
        for info in self.lock().tokens.values_mut() {
            info.invalidated = true;
        }
    }

    /// Mints a valid access token directly, bypassing the session exchange.
    pub fn mint_access_token(&self) -> String {
        self.lock().mint_token(Utc::now().timestamp())
    }

    /// The account id carried in sessions and JWTs (`chatgpt_account_id`).
    pub fn account_id(&self) -> String {
        self.lock().account_id.clone()
    }

    /// The user id carried in sessions and JWTs (`user-…`).
    pub fn user_id(&self) -> String {
        self.lock().user_id.clone()
    }

    /// The next successful exchange sets `new_token` as the cookie (as `.0`/`.1` if `chunked`);
    /// `new_token` becomes a valid session and the old one stays valid.
    pub fn rotate_session_on_next_exchange(&self, new_token: &str, chunked: bool) {
        self.lock().rotation = Some(Rotation {
            new_token: new_token.to_owned(),
            chunked,
            revoke_old: false,
        });
    }

    /// Like [`Self::rotate_session_on_next_exchange`], but the old session dies at that exchange.
    pub fn rotate_session_on_next_exchange_revoking_old(&self, new_token: &str, chunked: bool) {
        self.lock().rotation = Some(Rotation {
            new_token: new_token.to_owned(),
            chunked,
            revoke_old: true,
        });
    }

    /// From now on every successful exchange (without a queued rotation) sets a fresh
    /// session cookie; with `revoke_old`, the cookie sent dies at that exchange, so only the
    /// newest one works.
    pub fn rotate_on_every_exchange(&self, revoke_old: bool) {
        self.lock().rotate_every = Some(revoke_old);
    }

    /// Whether `token` is a session the exchange accepts now.
    pub fn session_alive(&self, token: &str) -> bool {
        self.lock().sessions.get(token) == Some(&false)
    }

    /// True while a requested rotation has not yet been handed out by an exchange.
    pub fn rotation_pending(&self) -> bool {
        self.lock().rotation.is_some()
    }

    // ---- conversations ---------------------------------------------------------------------

    /// Stores (or replaces) a conversation given in the detail shape; panics without an id.
    pub fn put_conversation(&self, detail: Value, opts: ConvOpts) {
        let id = detail
            .get("conversation_id")
            .or_else(|| detail.get("id"))
            .and_then(Value::as_str)
            .expect("put_conversation: detail needs a string `conversation_id` or `id`")
            .to_owned();
        let mut state = self.lock();
        state.tombstones.remove(&id);
        state.convs.insert(id, Conv { detail, opts });
    }

    /// The conversation as `GET /backend-api/conversation/{id}` would return it right now.
    pub fn conversation(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        state.convs.get(id).map(|c| state.detail_body(c))
    }

    /// Ids of all stored conversations, sorted.
    pub fn conversation_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().convs.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Registers a project (snorlax gizmo) shown in the sidebar, in call order.
    pub fn add_project(&self, gizmo_id: &str, name: &str) {
        let mut state = self.lock();
        if let Some(p) = state.projects.iter_mut().find(|(id, _)| id == gizmo_id) {
            p.1 = name.to_owned();
        } else {
            state.projects.push((gizmo_id.to_owned(), name.to_owned()));
        }
    }

    /// Simulates an edit: appends a user + assistant turn after `current_node` and sets
    /// `update_time`; panics on an unknown id.
    pub fn touch(&self, id: &str, new_update_time: f64) {
        let mut state = self.lock();
        let conv = state
            .convs
            .get_mut(id)
            .unwrap_or_else(|| panic!("touch: unknown conversation {id}"));
        append_turn(&mut conv.detail, new_update_time);
    }

    /// Deletes a conversation: gone from every listing, detail answers 404; the batch
    /// endpoint still returns it (as the real one is reported to).
    pub fn delete(&self, id: &str) {
        let mut state = self.lock();
        if let Some(conv) = state.convs.remove(id) {
            state.tombstones.insert(id.to_owned(), conv);
        }
    }

    /// Archives or unarchives without bumping `update_time` (as the real service does).
    pub fn set_archived(&self, id: &str, archived: bool) {
        self.with_opts(id, |o| o.archived = archived);
    }

    /// Stars or unstars without bumping `update_time` (as the real service does).
    pub fn set_starred(&self, id: &str, starred: bool) {
        self.with_opts(id, |o| o.starred = starred);
    }

    /// Moves a conversation into a project (or out of it with `None`) without bumping times.
    pub fn set_project(&self, id: &str, project: Option<&str>) {
        self.with_opts(id, |o| o.project = project.map(str::to_owned));
    }

    fn with_opts(&self, id: &str, f: impl FnOnce(&mut ConvOpts)) {
        let mut state = self.lock();
        let conv = state
            .convs
            .get_mut(id)
            .unwrap_or_else(|| panic!("unknown conversation {id}"));
        f(&mut conv.opts);
    }

    /// List `update_time` = detail `update_time` + `secs` (real lists and details disagree).
    pub fn set_list_time_skew(&self, secs: f64) {
        self.lock().list_skew = secs;
    }

    /// Shows `row` (any JSON, verbatim) in every listing in place of conversation `id`'s
    /// own row, at the same position; the detail is unchanged.
    pub fn override_list_row(&self, id: &str, row: Value) {
        self.lock().row_overrides.insert(id.to_owned(), row);
    }

    /// Leaves `key` out of every listing row from now on (older or newer list shapes).
    pub fn omit_list_key(&self, key: &str) {
        self.lock().omitted_row_keys.push(key.to_owned());
    }

    /// Chooses how list items spell timestamps.
    pub fn set_iso_flavour(&self, flavour: IsoFlavour) {
        self.lock().iso = flavour;
    }

    /// Strips null-valued keys recursively from detail bodies (older API behaviour).
    pub fn set_omit_null_keys(&self, omit: bool) {
        self.lock().omit_null_keys = omit;
    }

    /// Every listing reports this `total` (any JSON, `null` included) instead of the
    /// true count: it is only a hint.
    pub fn set_list_total(&self, total: Value) {
        self.lock().list_total = Some(total);
    }

    // ---- the batch endpoint ------------------------------------------------------------------

    /// Turns the batch endpoint on (see the module docs for its quirks).
    pub fn enable_batch(&self) {
        self.lock().batch = BatchMode::Present;
    }

    /// Turns the batch endpoint off: it answers `status` (404 as an unknown route, 405…).
    pub fn disable_batch(&self, status: u16) {
        self.lock().batch = BatchMode::Absent(status);
    }

    /// Conversations created before `t` (epoch seconds) get their batch `update_time`
    /// rounded down to the whole second (older chats, as public clients report).
    pub fn set_batch_legacy_before(&self, t: f64) {
        self.lock().batch_legacy_before = Some(t);
    }

    /// The batch endpoint sends `item` (any JSON) in place of conversation `id`'s own.
    pub fn override_batch_item(&self, id: &str, item: Value) {
        self.lock().batch_overrides.insert(id.to_owned(), item);
    }

    /// The conversation as the batch endpoint would send it right now.
    pub fn batch_item(&self, id: &str) -> Option<Value> {
        let state = self.lock();
        let conv = state.convs.get(id).or_else(|| state.tombstones.get(id))?;
        Some(state.batch_body(conv))
    }

    // ---- files -----------------------------------------------------------------------------

    /// Stores an attachment downloadable through `/backend-api/files/download/{file_id}`.
    pub fn put_file(&self, file_id: &str, bytes: Vec<u8>, name: &str, mime: &str) {
        self.lock().files.insert(
            file_id.to_owned(),
            FileEntry {
                bytes,
                name: name.to_owned(),
                mime: mime.to_owned(),
                created: Utc::now(),
                sigs: HashSet::new(),
            },
        );
    }

    /// Removes an attachment: the download endpoint answers `file_not_found` from now on.
    pub fn remove_file(&self, file_id: &str) {
        self.lock().files.remove(file_id);
    }

    // ---- faults and throttling ---------------------------------------------------------------

    /// Queues a one-shot fault for the next hit of `route` (FIFO per route).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.lock()
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// Answers every hit of `route` with `fault` until [`Self::clear_faults`]; queued faults win.
    pub fn fail_always(&self, route: Route, fault: Fault) {
        self.lock().always.insert(route, fault);
    }

    /// Drops all queued and permanent faults.
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.always.clear();
    }

    /// Turns on a token bucket over all `/backend-api/*` requests (429 without `Retry-After`
    /// when empty), starting full with `burst` tokens.
    pub fn set_rate_limit(&self, burst: u32, refill_per_minute: f64) {
        self.lock().bucket = Some(Bucket {
            capacity: f64::from(burst),
            refill_per_sec: refill_per_minute / 60.0,
            tokens: f64::from(burst),
            last: Instant::now(),
        });
    }

    /// Turns the token bucket off again.
    pub fn clear_rate_limit(&self) {
        self.lock().bucket = None;
    }

    /// Turns on a window over all `/backend-api/*` requests: at most `limit` in any
    /// `window`, 429 without `Retry-After` beyond (the limit clears as the window moves).
    pub fn set_window_limit(&self, limit: usize, window: Duration) {
        self.lock().window = Some(Window {
            limit,
            window,
            admitted: VecDeque::new(),
        });
    }

    // ---- observation -----------------------------------------------------------------------

    /// Every request since start (or the last [`Self::reset_counts`]), in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Number of recorded requests of this kind.
    pub fn count(&self, kind: RouteKind) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.kind == kind)
            .count()
    }

    /// How often each conversation was asked for, by detail or in a batch.
    pub fn fetches_by_id(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for r in &self.lock().requests {
            match r.kind {
                RouteKind::Detail => {
                    let id = r.path.rsplit('/').next().unwrap_or_default().to_owned();
                    *out.entry(id).or_default() += 1;
                }
                RouteKind::Batch => {
                    for id in r.batch_ids() {
                        *out.entry(id).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Number of recorded detail requests for this conversation id.
    pub fn detail_count(&self, id: &str) -> usize {
        let path = format!("/backend-api/conversation/{id}");
        self.lock()
            .requests
            .iter()
            .filter(|r| r.kind == RouteKind::Detail && r.path == path)
            .count()
    }

    /// Forgets every recorded request, so counts start again from zero.
    pub fn reset_counts(&self) {
        self.lock().requests.clear();
    }
}

impl Drop for FakeChatGpt {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            // Joining means the port is closed once drop returns.
            let _ = thread.join();
        }
    }
}

fn new_state(addr: SocketAddr) -> Shared {
    let account_id = uuid::Uuid::new_v4().to_string();
    let user_id = format!("user-{}", uuid::Uuid::new_v4().simple());
    Arc::new(Mutex::new(Inner {
        base_url: format!("http://{addr}"),
        account_id,
        user_id,
        sessions: HashMap::new(),
        tokens: HashMap::new(),
        token_ttl: DEFAULT_TOKEN_TTL_SECS,
        rotation: None,
        rotate_every: None,
        convs: HashMap::new(),
        tombstones: HashMap::new(),
        batch: BatchMode::Absent(404),
        batch_legacy_before: None,
        batch_overrides: HashMap::new(),
        list_total: None,
        window: None,
        projects: Vec::new(),
        list_skew: 0.0,
        iso: IsoFlavour::default(),
        row_overrides: HashMap::new(),
        omitted_row_keys: Vec::new(),
        omit_null_keys: false,
        files: HashMap::new(),
        faults: HashMap::new(),
        always: HashMap::new(),
        bucket: None,
        requests: Vec::new(),
        next_seq: 0,
    }))
}

async fn serve(listener: tokio::net::TcpListener, state: Shared, stop: watch::Receiver<bool>) {
    let mut graceful_stop = stop.clone();
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            // An Err means the FakeChatGpt is gone, which also means stop.
            let _ = graceful_stop.wait_for(|s| *s).await;
        })
        .into_future();
    let mut hard_stop = stop;
    // Graceful shutdown waits for in-flight requests; cap that so a client that never
    // finishes cannot make Drop hang.
    tokio::select! {
        _ = server => {}
        _ = async move {
            let _ = hard_stop.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {}
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/auth/session", get(session))
        .route("/backend-api/conversations", get(list))
        .route("/backend-api/conversation/{id}", get(detail))
        .route("/backend-api/conversations/batch", post(batch))
        .route("/backend-api/gizmos/snorlax/sidebar", get(sidebar))
        .route(
            "/backend-api/gizmos/{gizmo_id}/conversations",
            get(gizmo_conversations),
        )
        .route("/backend-api/files/download/{file_id}", get(file_download))
        .route("/backend-api/estuary/content", get(file_bytes))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

// ---- middleware: record, fault, auth, throttle -----------------------------------------------

fn classify(path: &str, archived: bool) -> (RouteKind, Option<Route>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "auth", "session"] => (RouteKind::Session, Some(Route::Session)),
        ["backend-api", "conversations", "batch"] => (RouteKind::Batch, Some(Route::Batch)),
        ["backend-api", "conversations"] if archived => {
            (RouteKind::ArchivedList, Some(Route::List))
        }
        ["backend-api", "conversations"] => (RouteKind::List, Some(Route::List)),
        ["backend-api", "conversation", id] if !id.is_empty() => {
            (RouteKind::Detail, Some(Route::Detail((*id).to_owned())))
        }
        ["backend-api", "gizmos", "snorlax", "sidebar"] => {
            (RouteKind::Sidebar, Some(Route::Sidebar))
        }
        ["backend-api", "gizmos", _, "conversations"] => (
            RouteKind::GizmoConversations,
            Some(Route::GizmoConversations),
        ),
        ["backend-api", "files", "download", _] => {
            (RouteKind::FileDownload, Some(Route::FileDownload))
        }
        ["backend-api", "estuary", "content"] => (RouteKind::FileBytes, Some(Route::FileBytes)),
        _ => (RouteKind::Other, None),
    }
}

fn record_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // HTTP/2 clients may split Cookie into several headers; it re-joins with "; ".
        let sep = if name == header::COOKIE { "; " } else { ", " };
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(sep);
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

async fn gate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let params = query_params(req.uri());
    let archived = params.get("is_archived").map(String::as_str) == Some("true");
    let (kind, route) = classify(&path, archived);
    // A POST body is recorded (and handed on to the handler).
    let (req, body) = if req.method() == axum::http::Method::POST {
        let (parts, b) = req.into_parts();
        let bytes = axum::body::to_bytes(b, 1 << 20).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (Request::from_parts(parts, Body::from(bytes)), Some(text))
    } else {
        (req, None)
    };

    let (seq, fault) = {
        let mut s = lock(&state);
        let seq = s.next_seq;
        s.next_seq += 1;
        s.requests.push(Recorded {
            seq,
            method: req.method().as_str().to_owned(),
            path: path.clone(),
            query,
            headers: record_headers(req.headers()),
            kind,
            status: None,
            body,
            at: Instant::now(),
        });
        let fault = route.as_ref().and_then(|r| s.take_fault(r));
        (seq, fault)
    };

    let response = match fault {
        Some(Fault::TruncatedJson) => truncate(admit(&state, &path, req, next).await).await,
        Some(Fault::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            admit(&state, &path, req, next).await
        }
        Some(fault) => fault_response(&fault, route.as_ref()),
        None => admit(&state, &path, req, next).await,
    };

    let mut s = lock(&state);
    if let Some(r) = s.requests.iter_mut().rev().find(|r| r.seq == seq) {
        r.status = Some(response.status().as_u16());
    }
    response
}

/// The normal path: bearer check and token bucket for `/backend-api/*`, then the handler.
async fn admit(state: &Shared, path: &str, req: Request, next: Next) -> Response {
    if let Some(rest) = path.strip_prefix("/backend-api/") {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            });
        let mut s = lock(state);
        // The estuary byte route is authorised by its signed URL instead (see module docs).
        if !rest.starts_with("estuary/") && !bearer.is_some_and(|t| s.token_valid(&t)) {
            return unauthorized();
        }
        if !s.take_window_slot() || !s.take_bucket_token() {
            return json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "detail": TOO_MANY_REQUESTS }),
            );
        }
    }
    next.run(req).await
}

async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut: Bytes = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        html,
    )
        .into_response()
}

fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"detail": {
            "message": TOKEN_EXPIRED_MESSAGE,
            "type": "invalid_request_error",
            "param": null,
            "code": "token_expired",
        }}),
    )
}

fn not_found_body(route: Option<&Route>) -> Value {
    match route {
        Some(Route::Detail(id)) => json!({ "detail": format!("Can't load conversation {id}") }),
        _ => json!({ "detail": "Not Found" }),
    }
}

const CHALLENGE_PAGE: &str = r#"<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow"></head><body><div class="main-wrapper" role="main"><div class="main-content"><h1 class="zone-name-title h1">chatgpt.com</h1><h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2><noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript></div></div><script>(function(){window._cf_chl_opt={cvId:'3',cZone:'chatgpt.com',cType:'managed'};var a=document.createElement('script');a.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f0e0e0e0e0e0e0e';document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>"#;

const APP_PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ChatGPT</title></head><body><div id="__next"></div><script src="/_next/static/chunks/main.js"></script></body></html>"#;

fn fault_response(fault: &Fault, route: Option<&Route>) -> Response {
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match status.as_u16() {
                // Errors from the Cloudflare edge arrive as HTML, not as API JSON.
                502..=504 | 520..=530 => {
                    let title = format!(
                        "{} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("Error")
                    );
                    html_response(
                        status,
                        format!(
                            "<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr><center>cloudflare</center></body></html>"
                        ),
                    )
                }
                500 => json_response(status, json!({ "detail": "Internal server error" })),
                _ => json_response(
                    status,
                    json!({ "detail": status.canonical_reason().unwrap_or("Error") }),
                ),
            }
        }
        Fault::RateLimited { retry_after } => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "detail": TOO_MANY_REQUESTS }),
            );
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            response
        }
        Fault::Unauthorized => unauthorized(),
        Fault::Challenge => {
            let mut response = html_response(StatusCode::FORBIDDEN, CHALLENGE_PAGE.to_owned());
            let headers = response.headers_mut();
            headers.insert("cf-mitigated", HeaderValue::from_static("challenge"));
            headers.insert("server", HeaderValue::from_static("cloudflare"));
            response
        }
        Fault::ChallengeNoHeader => html_response(StatusCode::FORBIDDEN, CHALLENGE_PAGE.to_owned()),
        Fault::NonJson => html_response(StatusCode::OK, APP_PAGE.to_owned()),
        Fault::NotFound => json_response(StatusCode::NOT_FOUND, not_found_body(route)),
        Fault::OkJson(body) => json_response(StatusCode::OK, body.clone()),
        // Handled in `gate`, which needs the normal response first.
        Fault::TruncatedJson | Fault::Delay(_) => json_response(StatusCode::OK, json!({})),
    }
}

impl Inner {
    fn take_fault(&mut self, route: &Route) -> Option<Fault> {
        let mut keys = vec![route.clone()];
        if matches!(route, Route::Detail(_)) {
            keys.push(Route::AnyDetail);
        }
        for key in &keys {
            if let Some(fault) = self.faults.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(fault);
            }
        }
        keys.iter().find_map(|k| self.always.get(k).cloned())
    }

    fn take_bucket_token(&mut self) -> bool {
        let Some(bucket) = self.bucket.as_mut() else {
            return true;
        };
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.last = now;
        bucket.tokens = (bucket.tokens + elapsed * bucket.refill_per_sec).min(bucket.capacity);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn take_window_slot(&mut self) -> bool {
        let Some(w) = self.window.as_mut() else {
            return true;
        };
        let now = Instant::now();
        while w
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= w.window)
        {
            w.admitted.pop_front();
        }
        if w.admitted.len() >= w.limit {
            return false;
        }
        w.admitted.push_back(now);
        true
    }

    /// A conversation as the batch endpoint sends it: `id` without `conversation_id`,
    /// ISO times, no `default_model_slug`; legacy chats with a rounded `update_time`.
    fn batch_body(&self, conv: &Conv) -> Value {
        let mut body = self.detail_body(conv);
        let id = body
            .get("conversation_id")
            .or_else(|| body.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(override_item) = id.as_str().and_then(|id| self.batch_overrides.get(id)) {
            return override_item.clone();
        }
        let create = time_of(&body, "create_time");
        let legacy = matches!(
            (create, self.batch_legacy_before),
            (Some(c), Some(before)) if c < before
        );
        if let Some(obj) = body.as_object_mut() {
            obj.remove("conversation_id");
            obj.remove("default_model_slug");
            obj.insert("id".into(), id);
            for key in ["create_time", "update_time"] {
                if let Some(t) = obj.get(key).and_then(Value::as_f64) {
                    let t = if legacy && key == "update_time" {
                        t.floor()
                    } else {
                        t
                    };
                    obj.insert(key.into(), json!(iso(t, IsoFlavour::Z, false)));
                }
            }
        }
        body
    }

    fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|t| !t.invalidated && t.exp > Utc::now().timestamp())
    }

    fn mint_token(&mut self, now: i64) -> String {
        let exp = now + self.token_ttl;
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "fake-chatgpt-key" });
        let payload = json!({
            "aud": ["https://api.openai.com/v1"],
            "client_id": "app_X8zY6vW2pQ9tR3dE7nK1jL5gH",
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": "https://auth.openai.com",
            // A fresh jti makes every minted token unique even within one second.
            "jti": uuid::Uuid::new_v4().to_string(),
            "https://api.openai.com/auth": {
                "chatgpt_account_id": self.account_id,
                "chatgpt_plan_type": "plus",
                "user_id": self.user_id,
            },
            "https://api.openai.com/profile": { "email": USER_EMAIL, "email_verified": true },
            "scp": ["openid", "email", "profile", "offline_access", "model.request", "model.read"],
            "sub": format!("auth0|{}", self.user_id),
        });
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode("sig"),
        );
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                exp,
                invalidated: false,
            },
        );
        token
    }

    fn detail_body(&self, conv: &Conv) -> Value {
        let mut body = conv.detail.clone();
        if let Some(obj) = body.as_object_mut() {
            // Flags live in ConvOpts so archive/star/project moves show up here too.
            obj.insert("is_archived".into(), Value::Bool(conv.opts.archived));
            obj.insert("is_starred".into(), Value::Bool(conv.opts.starred));
            if let Some(project) = &conv.opts.project {
                obj.insert("gizmo_id".into(), json!(project));
                obj.insert("conversation_template_id".into(), json!(project));
                obj.insert("gizmo_type".into(), json!("snorlax"));
            }
        }
        if self.omit_null_keys {
            strip_nulls(&mut body);
        }
        body
    }

    fn list_time(&self, conv: &Conv) -> f64 {
        time_of(&conv.detail, "update_time").unwrap_or(0.0) + self.list_skew
    }

    /// Conversations passing `keep`, newest list `update_time` first (ties by id).
    fn sorted(&self, keep: impl Fn(&Conv) -> bool) -> Vec<(&String, &Conv)> {
        let mut convs: Vec<(&String, &Conv)> = self.convs.iter().filter(|(_, c)| keep(c)).collect();
        convs.sort_by(|(ia, a), (ib, b)| {
            self.list_time(b)
                .total_cmp(&self.list_time(a))
                .then_with(|| ia.cmp(ib))
        });
        convs
    }

    fn list_item(&self, id: &str, conv: &Conv) -> Value {
        if let Some(row) = self.row_overrides.get(id) {
            return row.clone();
        }
        let mut item = self.own_list_item(id, conv);
        if let Some(obj) = item.as_object_mut() {
            for key in &self.omitted_row_keys {
                obj.remove(key);
            }
        }
        item
    }

    fn own_list_item(&self, id: &str, conv: &Conv) -> Value {
        let d = &conv.detail;
        let template = conv
            .opts
            .project
            .as_ref()
            .map(|p| json!(p))
            .unwrap_or_else(|| {
                d.get("conversation_template_id")
                    .cloned()
                    .unwrap_or(Value::Null)
            });
        let gizmo = conv
            .opts
            .project
            .as_ref()
            .map(|p| json!(p))
            .unwrap_or_else(|| d.get("gizmo_id").cloned().unwrap_or(Value::Null));
        let create = time_of(d, "create_time").map(|t| iso(t, self.iso, false));
        let update = time_of(d, "update_time").map(|t| iso(t + self.list_skew, self.iso, true));
        let mut item = json!({
            "id": id,
            "title": d.get("title").cloned().unwrap_or(Value::Null),
            "create_time": create,
            "update_time": update,
            "mapping": null,
            "current_node": null,
            "conversation_template_id": template,
            "gizmo_id": gizmo,
            "is_archived": conv.opts.archived,
            "is_starred": conv.opts.starred,
            "is_do_not_remember": false,
            "pinned_time": null,
            "async_status": null,
            "snippet": null,
            "workspace_id": null,
            "conversation_origin": null,
            "safe_urls": [],
            "blocked_urls": [],
        });
        if conv.opts.project.is_some()
            && let Some(obj) = item.as_object_mut()
        {
            // Project items carry their owner (HAR 2025-12).
            obj.insert(
                "owner".into(),
                json!({
                    "user_id": format!("{}__{}", self.user_id, self.account_id),
                    "user_email": USER_EMAIL,
                    "name": "Archivist",
                    "avatar_url": null,
                }),
            );
        }
        item
    }

    fn project_items(&self, gizmo_id: &str) -> Vec<(&String, &Conv)> {
        self.sorted(|c| !c.opts.archived && c.opts.project.as_deref() == Some(gizmo_id))
    }
}

fn time_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Formats epoch seconds per flavour; `whole_seconds` applies to the naive `update_time` only.
fn iso(t: f64, flavour: IsoFlavour, whole_seconds: bool) -> String {
    let dt = DateTime::from_timestamp_micros((t * 1e6).round() as i64).unwrap_or_default();
    let fmt = match flavour {
        IsoFlavour::Z => "%Y-%m-%dT%H:%M:%S%.6fZ",
        IsoFlavour::PlusZero => "%Y-%m-%dT%H:%M:%S%.6f+00:00",
        IsoFlavour::Naive if whole_seconds => "%Y-%m-%dT%H:%M:%S",
        IsoFlavour::Naive => "%Y-%m-%dT%H:%M:%S%.6f",
    };
    dt.format(fmt).to_string()
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn query_params(uri: &axum::http::Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default()
}

/// A rejected query, answered the way the real (FastAPI) backend answers it.
enum BadQuery {
    /// 422 with a pydantic-style `detail` list naming the parameter.
    Param {
        name: String,
        msg: &'static str,
        kind: &'static str,
    },
    /// 400 for a cursor this server never handed out.
    Cursor,
}

impl BadQuery {
    fn param(name: &str, msg: &'static str, kind: &'static str) -> Self {
        BadQuery::Param {
            name: name.to_owned(),
            msg,
            kind,
        }
    }
}

impl IntoResponse for BadQuery {
    fn into_response(self) -> Response {
        match self {
            BadQuery::Param { name, msg, kind } => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "detail": [{ "loc": ["query", name], "msg": msg, "type": kind }] }),
            ),
            BadQuery::Cursor => json_response(
                StatusCode::BAD_REQUEST,
                json!({ "detail": "Invalid cursor" }),
            ),
        }
    }
}

fn int_param(q: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, BadQuery> {
    match q.get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
            BadQuery::param(name, "value is not a valid integer", "type_error.integer")
        }),
    }
}

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>, BadQuery> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true" | "True" | "1") => Ok(Some(true)),
        Some("false" | "False" | "0") => Ok(Some(false)),
        Some(_) => Err(BadQuery::param(
            name,
            "value could not be parsed to a boolean",
            "type_error.bool",
        )),
    }
}

/// Opaque alphanumeric page cursor: hex of `o<offset>`.
fn encode_cursor(offset: usize) -> String {
    format!("o{offset}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Inverse of [`encode_cursor`]; absent, empty and `0` mean the first page.
fn decode_cursor(raw: Option<&String>) -> Option<usize> {
    let raw = match raw.map(String::as_str) {
        None | Some("" | "0" | "null") => return Some(0),
        Some(raw) => raw,
    };
    if raw.len() % 2 != 0 || !raw.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?)
        .ok()?
        .strip_prefix('o')?
        .parse()
        .ok()
}

// ---- handlers ----------------------------------------------------------------------------------

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({ "detail": "Not Found" }))
}

/// The session cookie family as NextAuth sees it: the value, and the cookie names used.
fn session_cookie(headers: &HeaderMap) -> (Option<String>, Vec<String>) {
    let mut parts: Vec<(i64, String, String)> = Vec::new();
    for raw in headers.get_all(header::COOKIE) {
        let Ok(raw) = raw.to_str() else { continue };
        for pair in raw.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let index = if name == SESSION_COOKIE {
                -1
            } else if let Some(n) = name
                .strip_prefix(SESSION_COOKIE)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<i64>().ok())
            {
                n
            } else {
                continue;
            };
            parts.push((index, name.to_owned(), value.trim().to_owned()));
        }
    }
    parts.sort_by_key(|(index, _, _)| *index);
    let names = parts.iter().map(|(_, name, _)| name.clone()).collect();
    let value: String = parts
        .iter()
        .filter(|(_, _, v)| !v.is_empty())
        .map(|(_, _, v)| v.as_str())
        .collect();
    ((!value.is_empty()).then_some(value), names)
}

fn set_cookie(name: &str, value: &str, expires: DateTime<Utc>) -> String {
    format!(
        "{name}={value}; Path=/; Expires={}; HttpOnly; Secure; SameSite=Lax",
        expires.format("%a, %d %b %Y %H:%M:%S GMT")
    )
}

fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// Set-Cookie values for a rotation, clearing any family member the client sent that the new
/// value no longer uses (so a stale `.1` or bare cookie cannot linger).
fn rotation_cookies(rotation: &Rotation, sent: &[String], expires: DateTime<Utc>) -> Vec<String> {
    let token = rotation.new_token.as_str();
    let new: Vec<(String, &str)> = if rotation.chunked {
        let mid = token
            .char_indices()
            .nth(token.chars().count() / 2)
            .map_or(token.len(), |(i, _)| i);
        vec![
            (format!("{SESSION_COOKIE}.0"), &token[..mid]),
            (format!("{SESSION_COOKIE}.1"), &token[mid..]),
        ]
    } else {
        vec![(SESSION_COOKIE.to_owned(), token)]
    };
    let mut cookies: Vec<String> = new
        .iter()
        .map(|(name, value)| set_cookie(name, value, expires))
        .collect();
    let mut stale: Vec<String> = sent
        .iter()
        .filter(|s| !new.iter().any(|(n, _)| n == *s))
        .cloned()
        .collect();
    if rotation.chunked && !stale.iter().any(|s| s == SESSION_COOKIE) {
        stale.push(SESSION_COOKIE.to_owned());
    }
    stale.dedup();
    cookies.extend(stale.iter().map(|name| clear_cookie(name)));
    cookies
}

async fn session(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let (value, sent_names) = session_cookie(&headers);
    let mut s = lock(&state);
    let alive = value
        .as_ref()
        .is_some_and(|v| s.sessions.get(v) == Some(&false));
    let Some(value) = value.filter(|_| alive) else {
        // The real endpoint says "no session" with 200 and an empty object.
        return json_response(StatusCode::OK, json!({}));
    };
    let now = Utc::now();
    let access_token = s.mint_token(now.timestamp());
    let expires = now + chrono::Duration::days(30);
    let body = json!({
        "user": {
            "id": s.user_id,
            "name": "Archivist",
            "email": USER_EMAIL,
            "image": "https://s.gravatar.com/avatar/0000?s=480&r=pg&d=identicon",
            "picture": "https://s.gravatar.com/avatar/0000?s=480&r=pg&d=identicon",
            "idp": "auth0",
            "iat": now.timestamp(),
            "mfa": false,
            "groups": [],
            "intercom_hash": "5f2b1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c",
        },
        "expires": expires.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "accessToken": access_token,
        "authProvider": "auth0",
        "account": { "id": s.account_id, "planType": "plus" },
    });
    let mut response = json_response(StatusCode::OK, body);
    let every = s.rotate_every.map(|revoke_old| Rotation {
        new_token: format!("rotated-{}", uuid::Uuid::new_v4().simple()),
        chunked: false,
        revoke_old,
    });
    if let Some(rotation) = s.rotation.take().or(every) {
        s.sessions.insert(rotation.new_token.clone(), false);
        if rotation.revoke_old && value != rotation.new_token {
            s.sessions.insert(value, true);
        }
        for cookie in rotation_cookies(&rotation, &sent_names, expires) {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    response
}

async fn list(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadQuery> {
    let offset = int_param(&q, "offset", 0)?;
    let limit = int_param(&q, "limit", LIST_LIMIT_DEFAULT)?;
    if limit > 100 {
        return Err(BadQuery::param(
            "limit",
            "ensure this value is less than or equal to 100",
            "value_error",
        ));
    }
    if limit == 0 {
        return Err(BadQuery::param(
            "limit",
            "ensure this value is greater than 0",
            "value_error",
        ));
    }
    if q.get("order").map(String::as_str) == Some("created") {
        // The real listing fails on it.
        return Ok(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "detail": "Internal server error" }),
        ));
    }
    let archived = bool_param(&q, "is_archived")?.unwrap_or(false);
    let starred = bool_param(&q, "is_starred")?;
    let hide_snorlax = bool_param(&q, "hide_snorlax")?;
    // Project chats join the main list only when the client opts in with hide_snorlax=false.
    let include_projects = hide_snorlax == Some(false);
    // is_starred=true narrows to starred chats; is_starred=false (sent by the web client on
    // every page) does not filter.
    let only_starred = starred == Some(true);

    let s = lock(&state);
    let matching = s.sorted(|c| {
        c.opts.archived == archived
            && (include_projects || c.opts.project.is_none())
            && (!only_starred || c.opts.starred)
    });
    let total = matching.len();
    let items: Vec<Value> = matching
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(id, c)| s.list_item(id, c))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({
            "items": items,
            "total": s.list_total.clone().unwrap_or(json!(total)),
            "limit": limit,
            "offset": offset,
            "has_missing_conversations": false,
        }),
    ))
}

async fn detail(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let s = lock(&state);
    match s.convs.get(&id) {
        Some(conv) => json_response(StatusCode::OK, s.detail_body(conv)),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({ "detail": format!("Can't load conversation {id}") }),
        ),
    }
}

async fn batch(State(state): State<Shared>, body: Bytes) -> Response {
    let s = lock(&state);
    match s.batch {
        BatchMode::Absent(405) => {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": "Method Not Allowed" }),
            );
        }
        BatchMode::Absent(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND);
            return json_response(status, json!({ "detail": "Not Found" }));
        }
        BatchMode::Present => {}
    }
    let ids: Option<Vec<String>> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("conversation_ids")?
            .as_array()?
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect()
    });
    let Some(ids) = ids else {
        return BadQuery::param("conversation_ids", "field required", "value_error.missing")
            .into_response();
    };
    if ids.len() > 10 {
        return BadQuery::param(
            "conversation_ids",
            "ensure this value has at most 10 items",
            "value_error.list.max_items",
        )
        .into_response();
    }
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| s.convs.get(id).or_else(|| s.tombstones.get(id)))
        .map(|conv| s.batch_body(conv))
        .collect();
    json_response(StatusCode::OK, Value::Array(items))
}

async fn sidebar(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadQuery> {
    let start = decode_cursor(q.get("cursor")).ok_or(BadQuery::Cursor)?;
    let per_gizmo =
        usize::try_from(int_param(&q, "conversations_per_gizmo", 0)?).unwrap_or(usize::MAX);
    let s = lock(&state);
    let items: Vec<Value> = s
        .projects
        .iter()
        .skip(start)
        .take(SIDEBAR_PAGE)
        .map(|(gizmo_id, name)| {
            let convs = s.project_items(gizmo_id);
            let shown: Vec<Value> = convs
                .iter()
                .take(per_gizmo)
                .map(|(id, c)| s.list_item(id, c))
                .collect();
            let conv_cursor = (convs.len() > shown.len()).then(|| encode_cursor(shown.len()));
            json!({
                "gizmo": {
                    "gizmo": {
                        "id": gizmo_id,
                        "organization_id": format!("org-{}", s.account_id),
                        "short_url": format!("{gizmo_id}-project"),
                        "workspace_id": null,
                        "display": { "name": name, "description": "", "emoji": null, "theme": null },
                        "gizmo_type": "snorlax",
                        "sharing_recipient": "private",
                    },
                    "tools": [],
                    "files": [],
                },
                "conversations": { "items": shown, "cursor": conv_cursor },
            })
        })
        .collect();
    let next = start + items.len();
    let cursor = (next < s.projects.len()).then(|| encode_cursor(next));
    Ok(json_response(
        StatusCode::OK,
        json!({ "items": items, "cursor": cursor }),
    ))
}

async fn gizmo_conversations(
    State(state): State<Shared>,
    Path(gizmo_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadQuery> {
    let start = decode_cursor(q.get("cursor")).ok_or(BadQuery::Cursor)?;
    let limit = match int_param(&q, "limit", GIZMO_PAGE_DEFAULT as u64)? {
        0 => GIZMO_PAGE_DEFAULT,
        v => usize::try_from(v).unwrap_or(usize::MAX),
    };
    let s = lock(&state);
    let convs = s.project_items(&gizmo_id);
    let items: Vec<Value> = convs
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, c)| s.list_item(id, c))
        .collect();
    let next = start + items.len();
    let cursor = (next < convs.len()).then(|| encode_cursor(next));
    Ok(json_response(
        StatusCode::OK,
        json!({ "items": items, "cursor": cursor }),
    ))
}

fn file_not_found() -> Response {
    json_response(
        StatusCode::OK,
        json!({ "status": "error", "error_code": "file_not_found", "error_message": "File not found" }),
    )
}

async fn file_download(
    State(state): State<Shared>,
    Path(file_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // Sending gizmo_id breaks lookups of `file_…` (sediment) ids (HA `src/api.ts`).
    if q.contains_key("gizmo_id") && file_id.starts_with("file_") {
        return file_not_found();
    }
    let mut s = lock(&state);
    let base = s.base_url.clone();
    let Some(file) = s.files.get_mut(&file_id) else {
        return file_not_found();
    };
    let sig = uuid::Uuid::new_v4().simple().to_string();
    file.sigs.insert(sig.clone());
    let ts = Utc::now().timestamp();
    json_response(
        StatusCode::OK,
        json!({
            "status": "success",
            "download_url": format!(
                "{base}/backend-api/estuary/content?id={file_id}&ts={ts}&p=fs&cid=1&sig={sig}&v=0"
            ),
            "file_name": file.name,
            "file_size_bytes": file.bytes.len(),
            "mime_type": file.mime,
            "creation_time": file.created.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
            "metadata": {},
        }),
    )
}

async fn file_bytes(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = lock(&state);
    let Some(file) = q.get("id").and_then(|id| s.files.get(id)) else {
        return json_response(StatusCode::NOT_FOUND, json!({ "detail": "Not Found" }));
    };
    if !q.get("sig").is_some_and(|sig| file.sigs.contains(sig)) {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({ "detail": "Invalid signature" }),
        );
    }
    let mime = HeaderValue::from_str(&file.mime)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, mime)],
        file.bytes.clone(),
    )
        .into_response()
}

// ---- in-process transport --------------------------------------------------------------------

/// Hands requests to the server's router in-process (see [`FakeChatGpt::in_process`]).
struct InProcess(Router);

impl convos::api::transport::Transport for InProcess {
    fn send(
        &self,
        req: convos::api::transport::HttpRequest,
    ) -> convos::api::transport::Sending<'_> {
        let mut router = self.0.clone();
        Box::pin(async move {
            let target = match req.url.query() {
                Some(q) => format!("{}?{q}", req.url.path()),
                None => req.url.path().to_owned(),
            };
            let mut request = Request::new(Body::from(req.body.unwrap_or_default()));
            *request.method_mut() = req.method;
            *request.uri_mut() = target
                .parse()
                .map_err(|e| convos::api::ApiError::Transport(format!("bad URI: {e}")))?;
            *request.headers_mut() = req.headers;
            std::future::poll_fn(|cx| {
                tower_service::Service::<Request>::poll_ready(&mut router, cx)
            })
            .await
            .map_err(|e| convos::api::ApiError::Transport(e.to_string()))?;
            let response = tower_service::Service::call(&mut router, request)
                .await
                .map_err(|e| convos::api::ApiError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), convos::api::transport::MAX_BODY)
                .await
                .map_err(|e| convos::api::ApiError::Transport(e.to_string()))?;
            Ok(convos::api::transport::HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        })
    }
}

// ---- detail builders -----------------------------------------------------------------------

fn message(
    id: &str,
    role: &str,
    create_time: Value,
    content: Value,
    metadata: Value,
    channel: Value,
) -> Value {
    json!({
        "id": id,
        "author": { "role": role, "name": null, "metadata": {} },
        "create_time": create_time,
        "update_time": null,
        "content": content,
        "status": "finished_successfully",
        "end_turn": if role == "assistant" { json!(true) } else { Value::Null },
        "weight": if role == "system" { 0.0 } else { 1.0 },
        "metadata": metadata,
        "recipient": "all",
        "channel": channel,
    })
}

fn node(id: &str, message: Value, parent: Option<&str>, children: &[&str]) -> Value {
    json!({ "id": id, "message": message, "parent": parent, "children": children })
}

fn text_content(text: &str) -> Value {
    json!({ "content_type": "text", "parts": [text] })
}

fn assistant_metadata(parent: &str) -> Value {
    json!({
        "model_slug": "gpt-5",
        "default_model_slug": "gpt-5",
        "parent_id": parent,
        "message_type": "next",
        "finish_details": { "type": "stop", "stop_tokens": [200002] },
        "citations": [],
        "content_references": [],
    })
}

fn build_detail(
    id: &str,
    title: &str,
    create_time: f64,
    update_time: f64,
    user_content: Value,
    user_metadata: Value,
) -> Value {
    let root = "client-created-root";
    let system = format!("{id}-system");
    let user = format!("{id}-user");
    let reply = format!("{id}-assistant");
    let mut mapping = Map::new();
    mapping.insert(root.into(), node(root, Value::Null, None, &[&system]));
    mapping.insert(
        system.clone(),
        node(
            &system,
            message(
                &system,
                "system",
                Value::Null,
                text_content(""),
                json!({ "is_visually_hidden_from_conversation": true }),
                Value::Null,
            ),
            Some(root),
            &[&user],
        ),
    );
    mapping.insert(
        user.clone(),
        node(
            &user,
            message(
                &user,
                "user",
                json!(create_time),
                user_content,
                user_metadata,
                Value::Null,
            ),
            Some(&system),
            &[&reply],
        ),
    );
    mapping.insert(
        reply.clone(),
        node(
            &reply,
            message(
                &reply,
                "assistant",
                json!(update_time),
                text_content(&format!("Here is an answer about {title}.")),
                assistant_metadata(&user),
                json!("final"),
            ),
            Some(&user),
            &[],
        ),
    );
    json!({
        "title": title,
        "create_time": create_time,
        "update_time": update_time,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": reply,
        "plugin_ids": null,
        "conversation_id": id,
        "conversation_template_id": null,
        "gizmo_id": null,
        "gizmo_type": null,
        "is_archived": false,
        "is_starred": null,
        "safe_urls": [],
        "blocked_urls": [],
        "default_model_slug": "gpt-5",
        "conversation_origin": null,
        "voice": null,
        "async_status": null,
        "disabled_tool_ids": [],
        "is_do_not_remember": false,
        "memory_scope": "global_enabled",
        "sugar_item_id": null,
        "id": id,
    })
}

/// A small valid detail: null-message root, hidden system message, user question, assistant
/// reply with `metadata.model_slug`; `current_node` is the reply.
pub fn conversation_detail(id: &str, title: &str, create_time: f64, update_time: f64) -> Value {
    build_detail(
        id,
        title,
        create_time,
        update_time,
        text_content(&format!("Tell me about {title}.")),
        json!({}),
    )
}

/// Like [`conversation_detail`], but the user message is `multimodal_text` with an
/// `image_asset_pointer` (`sediment://<file_id>`) and lists the file in `metadata.attachments`.
pub fn image_conversation_detail(
    id: &str,
    title: &str,
    create_time: f64,
    update_time: f64,
    image: &ImageAttachment<'_>,
) -> Value {
    let content = json!({
        "content_type": "multimodal_text",
        "parts": [
            {
                "content_type": "image_asset_pointer",
                "asset_pointer": format!("sediment://{}", image.file_id),
                "size_bytes": image.size,
                "width": 512,
                "height": 512,
                "fovea": null,
                "metadata": null,
            },
            format!("What is in this picture? ({title})"),
        ],
    });
    let metadata = json!({
        "attachments": [{
            "id": image.file_id,
            "name": image.name,
            "mime_type": image.mime,
            "size": image.size,
            "width": 512,
            "height": 512,
        }],
    });
    build_detail(id, title, create_time, update_time, content, metadata)
}

/// Appends a user + assistant turn under `current_node` and moves `update_time` (see `touch`).
fn append_turn(detail: &mut Value, new_update_time: f64) {
    let Some(obj) = detail.as_object_mut() else {
        return;
    };
    let parent = obj
        .get("current_node")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let user = uuid::Uuid::new_v4().to_string();
    let reply = uuid::Uuid::new_v4().to_string();
    let mapping = obj
        .entry("mapping")
        .or_insert_with(|| Value::Object(Map::new()));
    if !mapping.is_object() {
        *mapping = Value::Object(Map::new());
    }
    if let Some(mapping) = mapping.as_object_mut() {
        if let Some(children) = parent
            .as_ref()
            .and_then(|p| mapping.get_mut(p))
            .and_then(|n| n.get_mut("children"))
            .and_then(Value::as_array_mut)
        {
            children.push(json!(user));
        }
        mapping.insert(
            user.clone(),
            node(
                &user,
                message(
                    &user,
                    "user",
                    json!(new_update_time - 1.0),
                    text_content("One more question."),
                    json!({}),
                    Value::Null,
                ),
                parent.as_deref(),
                &[&reply],
            ),
        );
        mapping.insert(
            reply.clone(),
            node(
                &reply,
                message(
                    &reply,
                    "assistant",
                    json!(new_update_time),
                    text_content(&format!("One more answer ({new_update_time}).")),
                    assistant_metadata(&user),
                    json!("final"),
                ),
                Some(&user),
                &[],
            ),
        );
    }
    obj.insert("current_node".into(), json!(reply));
    obj.insert("update_time".into(), json!(new_update_time));
}
