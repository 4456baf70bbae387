//! The viewer in a real browser: the daemon serves a fixture archive (images, branches,
//! hostile content, a planted conversation to search for) and headless Chromium, driven
//! over the DevTools protocol, reads it. Checks what a person would see (titles,
//! messages, search hits, the other branch, loaded images), that nothing runs or
//! complains (no script, no dialog, no console error, no request leaving the viewer),
//! and that requests without the token get 401. Screenshots of the list, a
//! conversation and a search, light and dark at 1280×800 (and the conversation at phone
//! width, and a whole page of citations, a canvas and a report unfolded), go to `target/web-screenshots/` for review.
//!
//! Without `/usr/bin/chromium` the test skips (saying how to install it) unless
//! `CONVOS_REQUIRE_BROWSER=1`, as `.ci/run` sets.

use crate::support::daemon_env::{DaemonWorld, InProcess};
use crate::support::fixtures::ConvBuilder;
use crate::web::{ACTIVE_TEXT, BRANCHY, HOSTILE, OTHER_TEXT, READER, RICH, fill};
use crate::web_daemon::{get, split_url};
use base64::Engine as _;
use convos::archive::{Archive, OpenOptions};
use convos::model::RawConversation;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the browser may take: a first start on a fresh CI machine builds font
/// caches and loads a cold binary, well beyond what a warm start needs.
const DEADLINE: Duration = Duration::from_secs(60);

const CHROMIUM: &str = "/usr/bin/chromium";
/// The planted conversation search must find.
const PLANTED: &str = "d0000000-0000-4000-8000-0000000000d1";
const PLANTED_TITLE: &str = "Ferry timetables of Zanzibar";
const PLANTED_WORD: &str = "quetzalcoatl";

/// Headless Chromium, killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
    /// The browser's websocket path (`/devtools/browser/…`).
    path: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Containers often give /dev/shm 64 MB, too little for the renderer.
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromium");
        let file = profile.path().join("DevToolsActivePort");
        let start = Instant::now();
        let (port, path) = loop {
            // The port on the first line, the browser's websocket path on the second.
            let found = std::fs::read_to_string(&file).ok().and_then(|t| {
                let mut lines = t.lines();
                let port = lines.next()?.trim().parse().ok()?;
                Some((port, lines.next()?.trim().to_owned()))
            });
            if let Some(found) = found {
                break found;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "chromium wrote no DevToolsActivePort"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Browser {
            child,
            _profile: profile,
            port,
            path,
        }
    }
}

/// One page, driven over its DevTools websocket; events are kept as they arrive.
struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    events: Vec<Value>,
}

impl Page {
    /// Opens a new tab and connects to it.
    async fn open(browser: &Browser) -> Page {
        let browser_ws = format!("ws://127.0.0.1:{}{}", browser.port, browser.path);
        let (ws, _) = tokio_tungstenite::connect_async(browser_ws)
            .await
            .expect("browser websocket");
        let mut b = Page {
            ws,
            next: 0,
            events: Vec::new(),
        };
        let target = b
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let id = target["targetId"].as_str().expect("target id");
        let (ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://127.0.0.1:{}/devtools/page/{id}",
            browser.port
        ))
        .await
        .expect("page websocket");
        let mut page = Page {
            ws,
            next: 0,
            events: Vec::new(),
        };
        for domain in ["Page", "Runtime", "Log", "Network"] {
            page.call(&format!("{domain}.enable"), json!({})).await;
        }
        page
    }

    /// Sends a command and waits for its answer, keeping events that come meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.expect("sending");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("websocket open")
                .expect("websocket frame");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).expect("json");
            if v["id"] == json!(id) {
                assert!(v["error"].is_null(), "{method} failed: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for an event by name that arrives after the `seen`th event.
    async fn wait_event(&mut self, name: &str, seen: usize) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if self.events[seen..].iter().any(|e| e["method"] == name) {
                return;
            }
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {name} event"))
                .expect("websocket open")
                .expect("websocket frame");
            if let Message::Text(text) = frame {
                self.events.push(serde_json::from_str(&text).expect("json"));
            }
        }
    }

    /// Loads `url` and waits for its load event.
    async fn goto(&mut self, url: &str) {
        let seen = self.events.len();
        let r = self.call("Page.navigate", json!({"url": url})).await;
        assert!(r["errorText"].is_null(), "navigating to {url}: {r}");
        self.wait_event("Page.loadEventFired", seen).await;
    }

    /// Runs `js` (awaiting a promise) in the page and returns its value.
    async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(r["exceptionDetails"].is_null(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Runs `js`, which makes the page navigate, and waits for the new page's load.
    async fn eval_navigating(&mut self, js: &str) {
        let seen = self.events.len();
        self.eval(js).await;
        self.wait_event("Page.loadEventFired", seen).await;
    }

    async fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    async fn scheme(&mut self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    async fn screenshot(&mut self, path: &Path) {
        self.capture(path, false).await;
    }

    /// A screenshot of the viewport, or of the whole page.
    async fn capture(&mut self, path: &Path, whole: bool) {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": whole}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("data"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// Console errors, exceptions, error log entries and dialogs seen so far.
    fn complaints(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str() {
                Some("Runtime.exceptionThrown" | "Page.javascriptDialogOpening") => true,
                Some("Runtime.consoleAPICalled") => {
                    matches!(e["params"]["type"].as_str(), Some("error" | "assert"))
                }
                Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
                _ => false,
            })
            .collect()
    }

    /// Every URL the page requested.
    fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Where the screenshots go: `target/web-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The fixture archive of the viewer's HTTP tests, plus the planted conversation.
fn fill_archive(dir: &Path) {
    let archive = Archive::open(dir, &OpenOptions::default()).expect("archive");
    fill(&archive, 12);
    let mut b = ConvBuilder::new(PLANTED, PLANTED_TITLE);
    b.start_time(1_767_225_600 + 10 * 86_400);
    b.user("When does the morning ferry leave?");
    b.assistant(&format!(
        "The morning ferry leaves at 7:00; the {PLANTED_WORD} express at 9:30."
    ));
    let raw = RawConversation::from_bytes(serde_json::to_vec(&b.build()).expect("json"))
        .expect("conversation");
    archive.upsert(raw).expect("upsert");
    archive.flush().expect("flush");
}

/// Makes every image load now (they are lazy) and reports `[src, naturalWidth]`.
const IMAGES_JS: &str = "Promise.all([...document.images].map(i => { i.loading = 'eager'; \
    return i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }); }))\
    .then(() => [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]))";

/// Elements that could run script, and attributes that would.
const ACTIVE_JS: &str = "({ elements: document.querySelectorAll('script, iframe, object, embed, \
    svg, frame, base').length, handlers: [...document.querySelectorAll('*')].flatMap(e => \
    [...e.attributes].filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value)) \
    .map(a => e.tagName + ' ' + a.name)), pwned: typeof window.__pwned })";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        let required = std::env::var("CONVOS_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CONVOS_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: `apt install chromium`"
        );
        eprintln!(
            "skipping the browser test: {CHROMIUM} is missing (`apt install chromium` to run it)"
        );
        return;
    }
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let dir = loaded.paths.archive_dir.clone();
    tokio::task::spawn_blocking(move || fill_archive(&dir))
        .await
        .expect("filling the archive");
    let d = InProcess::start(loaded, platform).await;
    d.wait_status("the viewer to listen", |s| {
        !s["daemon"]["web_url"].is_null()
    })
    .await;
    let r = w.run(&["web", "--print-url"]).await;
    let url = r.ok().stdout.trim().to_owned();
    let (addr, _) = split_url(&url);
    let base = format!("http://{addr}");
    let shots = screenshot_dir();

    let browser = tokio::task::spawn_blocking(Browser::launch)
        .await
        .expect("launching");
    let mut page = Page::open(&browser).await;
    page.viewport(1280, 800, false).await;

    // In with the token: the cookie is set and the address loses the token.
    page.goto(&url).await;
    let here = page.eval("location.href").await;
    assert_eq!(here, json!(format!("{base}/")));
    let text = page.text().await;
    for title in [
        "Weekend in Portugal",
        "Plotting with Python",
        "Rome, cited",
        PLANTED_TITLE,
    ] {
        assert!(text.contains(title), "the list shows {title:?}:\n{text}");
    }
    for scheme in ["light", "dark"] {
        page.scheme(scheme).await;
        page.screenshot(&shots.join(format!("list-{scheme}.png")))
            .await;
    }
    page.scheme("light").await;

    // Search through the page's own form finds the planted conversation.
    page.eval_navigating(&format!(
        "document.querySelector('input[name=q]').value = '{PLANTED_WORD}'; \
         document.querySelector('input[name=q]').form.submit();"
    ))
    .await;
    let text = page.text().await;
    assert!(text.contains(PLANTED_TITLE), "search finds it:\n{text}");
    let marks = page
        .eval("[...document.querySelectorAll('mark')].map(m => m.textContent)")
        .await;
    assert_eq!(marks, json!([PLANTED_WORD]));
    for scheme in ["light", "dark"] {
        page.scheme(scheme).await;
        page.screenshot(&shots.join(format!("search-{scheme}.png")))
            .await;
    }
    page.scheme("light").await;
    // The hit opens the conversation at the message.
    page.eval_navigating("document.querySelector('ol.hits a').click()")
        .await;
    assert!(page.text().await.contains("express at 9:30"));

    // The conversation: messages, folded thinking and code, the image from the archive.
    page.goto(&format!("{base}/c/{RICH}")).await;
    let text = page.text().await;
    assert!(text.contains("What is in this photo?"), "{text}");
    assert!(text.contains("green rectangle"), "{text}");
    let images = page.eval(IMAGES_JS).await;
    let images = images.as_array().expect("images");
    assert!(!images.is_empty(), "the conversation shows its image");
    for img in images {
        assert!(img[1].as_u64() > Some(0), "image did not load: {img}");
    }
    for scheme in ["light", "dark"] {
        page.scheme(scheme).await;
        page.screenshot(&shots.join(format!("conversation-{scheme}.png")))
            .await;
    }
    // At phone width nothing is wider than the screen.
    page.viewport(390, 844, true).await;
    page.goto(&format!("{base}/c/{RICH}")).await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(overflow, json!(0), "the page scrolls sideways at 390 px");
    page.screenshot(&shots.join("conversation-phone-dark.png"))
        .await;
    page.scheme("light").await;
    page.screenshot(&shots.join("conversation-phone-light.png"))
        .await;
    page.viewport(1280, 800, false).await;
    // What the Markdown export resolves, unfolded, for review (the whole page).
    page.goto(&format!("{base}/c/{READER}")).await;
    page.eval("document.querySelectorAll('details').forEach(d => d.open = true)")
        .await;
    page.capture(&shots.join("conversation-rich-light.png"), true)
        .await;

    // Branches: the active one shows; the switcher's link shows the other.
    page.goto(&format!("{base}/c/{BRANCHY}")).await;
    let text = page.text().await;
    assert!(
        text.contains(ACTIVE_TEXT) && !text.contains(OTHER_TEXT),
        "{text}"
    );
    page.eval_navigating(
        "document.querySelector('nav.fork a[rel=prev], nav.fork a[rel=next]').click()",
    )
    .await;
    let text = page.text().await;
    assert!(
        text.contains(OTHER_TEXT) && !text.contains(ACTIVE_TEXT),
        "{text}"
    );

    // Hostile content, on every page it reaches, runs nothing.
    for path in [
        format!("/c/{HOSTILE}"),
        "/".to_owned(),
        "/?q=alert".to_owned(),
        "/projects".to_owned(),
    ] {
        page.goto(&format!("{base}{path}")).await;
        let active = page.eval(ACTIVE_JS).await;
        assert_eq!(
            active,
            json!({"elements": 0, "handlers": [], "pwned": "undefined"}),
            "{path}"
        );
    }
    page.goto(&format!("{base}/c/{HOSTILE}")).await;
    assert!(page.text().await.contains("<script>alert(6)</script>"));

    // Nothing complained, and nothing was fetched from anywhere but the viewer.
    assert!(
        page.complaints().is_empty(),
        "console errors: {:#?}",
        page.complaints()
    );
    for u in page.requests() {
        assert!(
            u.starts_with(&format!("{base}/")) || u == "about:blank",
            "a request left the viewer: {u}"
        );
    }

    // Without the cookie: 401, from the browser and from a plain client.
    let status = page
        .eval("fetch('/', {credentials: 'omit'}).then(r => r.status)")
        .await;
    assert_eq!(status, json!(401));
    let plain = tokio::task::spawn_blocking(move || get(addr, "/c/x", &[]).status)
        .await
        .expect("join");
    assert_eq!(plain, 401);
    eprintln!("screenshots in {}", shots.display());
    drop(page);
    drop(browser);
    d.stop().await;
}
