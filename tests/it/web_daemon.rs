//! The viewer served by the daemon: `[web]` configuration, the token file, `status`,
//! `convos web` (printing the address, or handing it to the desktop's opener), a taken
//! port, and an address beyond loopback. Requests go over real loopback sockets.

use crate::support::cli::mode;
use crate::support::daemon_env::{BinDaemon, DEADLINE, DaemonWorld, InProcess};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// One HTTP/1.1 answer: status code, raw header block, body.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The header lines, lower-cased names.
    pub headers: String,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The value of a header (first occurrence), by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` on `addr` with the given extra headers (plain HTTP/1.1, connection closed).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).expect("connecting to the viewer");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("sending the request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reading the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    Answer {
        status,
        headers: headers.replace("\r\n", "\n"),
        body: body.to_owned(),
    }
}

/// The address and token of a `http://ADDR/?token=T` URL.
pub fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url.trim().strip_prefix("http://").expect("an http URL");
    let (addr, token) = rest.split_once("/?token=").expect("a token in the URL");
    (addr.parse().expect("an IP:PORT address"), token.to_owned())
}

/// Logs in with the token: the cookie the viewer sets.
pub fn login(addr: SocketAddr, token: &str) -> String {
    let a = get(addr, &format!("/?token={token}"), &[]);
    assert_eq!(a.status, 303, "the token answers with a redirect");
    let cookie = a.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_viewer_and_convos_web_finds_it() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded.clone(), platform).await;
    let s = d
        .wait_status("the viewer to listen", |s| {
            !s["daemon"]["web_url"].is_null()
        })
        .await;
    let base = s["daemon"]["web_url"].as_str().expect("url").to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0/"),
        "{base}"
    );
    assert_eq!(s["web_enabled"], true);

    // `status` shows the address, never the token.
    let r = w.run(&["status"]).await;
    let line = format!("web viewer:   {base} (open it with `convos web`)");
    assert!(r.ok().stdout.contains(&line), "{}", r.stdout);

    // `convos web --print-url`: the address the daemon bound, with the token.
    let r = w.run(&["web", "--print-url"]).await;
    let url = r.ok().stdout.trim().to_owned();
    assert!(url.starts_with(&format!("{base}?token=")), "{url}");
    let (addr, token) = split_url(&url);
    assert_eq!(token.len(), 64, "a 256-bit token in hex");
    let token_file = loaded.paths.data_dir.join("web-token");
    assert_eq!(
        std::fs::read_to_string(&token_file)
            .expect("token file")
            .trim(),
        token
    );
    assert_eq!(mode(&token_file) & 0o777, 0o600);
    assert!(
        !s.to_string().contains(&token),
        "status never holds the token"
    );

    let (status, cookie) = tokio::task::spawn_blocking(move || {
        let none = get(addr, "/", &[]);
        let wrong = get(addr, &format!("/?token={}", "0".repeat(64)), &[]);
        let cookie = login(addr, &token);
        let page = get(addr, "/status", &[("Cookie", &cookie)]);
        ((none.status, wrong.status, page.status, page.body), cookie)
    })
    .await
    .expect("requests");
    assert_eq!((status.0, status.1, status.2), (401, 401, 200));
    assert!(
        status.3.contains(&base),
        "the status page shows the address"
    );
    assert!(!cookie.is_empty());

    // `convos web` hands the address to the desktop's opener.
    let bin = w.cli.root().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let seen = w.cli.root().join("opened.txt");
    let opener = bin.join(if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    });
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .expect("opener");
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut cmd = w.cli.command();
    cmd.env("PATH", &bin).arg("web");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("convos web"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&seen).expect("opened"), url);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("token="));
    d.stop().await;
}

#[test]
fn without_a_daemon_convos_web_says_how_to_start_one() {
    let w = DaemonWorld::new();
    let r = w.cli.run(["web"]);
    r.expect_code(1);
    assert!(r.stderr.contains("convos run"), "{}", r.stderr);
    // --print-url still prints the configured address, and says nothing answers yet.
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WEB_LISTEN", "127.0.0.1:8642")
        .args(["web", "--print-url"]);
    let out = cmd.output().expect("convos web");
    assert!(out.status.success());
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(url.starts_with("http://127.0.0.1:8642/?token="), "{url}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no daemon is running"));
    // Off in the config: a configuration error.
    w.cli.write_config("[web]\nenabled = false\n");
    let r = w.cli.run(["web", "--print-url"]);
    r.expect_code(78);
    assert!(r.stderr.contains("[web] enabled = false"), "{}", r.stderr);
    let r = w.cli.run(["status"]);
    assert!(
        r.ok()
            .stdout
            .contains("web viewer:   off ([web] enabled = false)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_taken_port_is_a_log_line_and_everything_else_runs() {
    let w = DaemonWorld::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WATCH_DIRS", &w.watch)
        .env("CONVOS_WEB_LISTEN", &addr)
        .arg("run");
    let mut d = BinDaemon::spawn(cmd);
    d.wait_log("running (pid");
    assert!(
        d.log()
            .contains(&format!("web viewer not started: {addr} is already in use")),
        "{}",
        d.log()
    );
    let r = w.cli.run(["status"]);
    assert!(
        r.ok().stdout.contains("daemon:       running"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "web viewer:   not served: {addr} is already in use"
        )),
        "{}",
        r.stdout
    );
    let r = w.cli.run(["web", "--print-url"]);
    r.expect_code(1);
    assert!(r.stderr.contains("already in use"), "{}", r.stderr);
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(DEADLINE).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", d.log());
}

#[test]
fn beyond_loopback_only_when_allowed_and_then_with_a_warning() {
    let w = DaemonWorld::new();
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WEB_LISTEN", "0.0.0.0:0").arg("run");
    let out = cmd.output().expect("convos run");
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.listen") && err.contains("allow_remote = true"),
        "{err}"
    );

    w.cli.write_config("[web]\nallow_remote = true\n");
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WATCH_DIRS", &w.watch)
        .env("CONVOS_WEB_LISTEN", "0.0.0.0:0")
        .arg("run");
    let mut d = BinDaemon::spawn(cmd);
    d.wait_log("running (pid");
    assert!(
        d.log().contains("which other machines can reach"),
        "{}",
        d.log()
    );
    // Reached by loopback from this machine, with the token.
    let r = w.cli.run(["web", "--print-url"]);
    let (addr, token) = split_url(&r.ok().stdout);
    assert!(addr.ip().is_loopback(), "{addr}");
    let cookie = login(addr, &token);
    assert_eq!(get(addr, "/", &[("Cookie", &cookie)]).status, 200);
    d.signal(libc::SIGTERM);
    assert_eq!(
        d.wait_exit(DEADLINE).expect("exits").code(),
        Some(0),
        "{}",
        d.log()
    );
}
