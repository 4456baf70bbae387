//! Automatic re-authentication: when the stored session dies, the daemon re-reads
//! the session cookie from the browser recorded by `auth --from-browser` (or set in
//! `[auth] browser`), verifies it and carries on.
#![cfg(feature = "browser")]

use crate::support::fake_server::{ConvOpts, FakeChatGpt, RouteKind, conversation_detail};
use convos::api::auth::Credentials;
use convos::config::{Config, Loaded, Overrides, PlatformDirs};
use secrecy::ExposeSecret;
use std::path::Path;
use std::time::{Duration, Instant};

const OLD: &str = "old-session-token-0123456789abcdefghij";
const NEW: &str = "new-session-token-from-firefox-9876543210";

/// A Firefox profile under `home` whose cookie store holds `token` for chatgpt.com.
fn firefox_with_session(home: &Path, token: &str) {
    let root = home.join(".mozilla/firefox");
    let store = root.join("abcd.default-release/cookies.sqlite");
    std::fs::create_dir_all(store.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        root.join("profiles.ini"),
        "[General]\nStartWithLastProfile=1\nVersion=2\n\n[Profile0]\nName=default-release\nIsRelative=1\nPath=abcd.default-release\nDefault=1\n",
    )
    .expect("profiles.ini");
    let conn = rusqlite::Connection::open(&store).expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY, originAttributes TEXT NOT NULL DEFAULT '', \
         name TEXT, value TEXT, host TEXT, path TEXT, expiry INTEGER, lastAccessed INTEGER, \
         creationTime INTEGER, isSecure INTEGER, isHttpOnly INTEGER, inBrowserElement INTEGER DEFAULT 0, \
         sameSite INTEGER DEFAULT 0, rawSameSite INTEGER DEFAULT 0, schemeMap INTEGER DEFAULT 0, \
         isPartitionedAttributeSet INTEGER DEFAULT 0, CONSTRAINT moz_uniqueid UNIQUE (name, host, path, originAttributes))",
    )
    .expect("schema");
    let now = chrono::Utc::now();
    conn.execute(
        "INSERT INTO moz_cookies (name, value, host, path, expiry, lastAccessed, creationTime, isSecure, isHttpOnly) \
         VALUES ('__Secure-next-auth.session-token', ?1, '.chatgpt.com', '/', ?2, ?3, ?3, 1, 1)",
        rusqlite::params![token, (now + chrono::TimeDelta::days(30)).timestamp(), now.timestamp_micros()],
    )
    .expect("insert");
}

/// A daemon configuration against `fake` with the profiles under `home`, the watcher
/// off, `[auth] browser = "firefox"`, and the dead session `OLD` stored.
fn daemon_config(fake: &FakeChatGpt, dir: &Path, home: &Path) -> (Loaded, PlatformDirs) {
    let platform = PlatformDirs {
        config_file: None,
        data_dir: Some(dir.join("data")),
        downloads: None,
        home: Some(home.to_path_buf()),
    };
    let base = fake.base_url();
    let env = move |k: &str| (k == "CONVOS_API_BASE_URL").then(|| base.clone());
    let mut loaded = Config::load(&Overrides::default(), &env, &platform).expect("config");
    loaded.config.watch.enabled = false;
    loaded.config.auth.browser = "firefox".into();
    Credentials::parse_input(OLD, "test")
        .expect("creds")
        .save(&loaded.paths.credentials)
        .expect("save");
    (loaded, platform)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_replaced_by_the_browsers_cookie_and_the_sync_succeeds() {
    let fake = FakeChatGpt::start().await;
    fake.add_session(OLD);
    fake.add_session(NEW);
    fake.revoke_session(OLD);
    fake.put_conversation(
        conversation_detail("c-1", "One", 1.7e9, 1.7e9 + 10.0),
        ConvOpts::default(),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    firefox_with_session(&home, NEW);
    let (loaded, platform) = daemon_config(&fake, dir.path(), &home);

    let token = tokio_util::sync::CancellationToken::new();
    let daemon = tokio::spawn(convos::daemon::run(loaded.clone(), platform, token.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.detail_count("c-1") == 0 {
        assert!(
            Instant::now() < deadline,
            "the daemon never re-authenticated and synced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    daemon.await.expect("join").expect("daemon ran");

    let saved = Credentials::load(&loaded.paths.credentials, None)
        .expect("load")
        .expect("present");
    assert_eq!(
        saved.session_value().expect("session").expose_secret(),
        NEW,
        "the browser's session was stored"
    );
    assert!(saved.source.contains("Firefox"), "{}", saved.source);
    // One exchange with the dead session, one with the browser's; no storm.
    assert!(
        fake.count(RouteKind::Session) <= 3,
        "{} session requests",
        fake.count(RouteKind::Session)
    );
    let archive = convos::archive::Archive::open(&loaded.paths.archive_dir, &Default::default())
        .expect("archive");
    assert!(archive.record("c-1").expect("record").is_some());
    let status: convos::session::CredentialsStatus = archive
        .state(convos::session::CREDENTIALS_KEY)
        .expect("state")
        .expect("recorded");
    assert_eq!(status.state, convos::session::CredentialState::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_browser_session_the_daemon_reports_once_and_keeps_serving() {
    let fake = FakeChatGpt::start().await;
    fake.add_session(OLD);
    fake.revoke_session(OLD);
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let (mut loaded, platform) = daemon_config(&fake, dir.path(), &home);
    loaded.config.sync.schedule = "* * * * * *".into();
    let token = tokio_util::sync::CancellationToken::new();
    let daemon = tokio::spawn(convos::daemon::run(loaded.clone(), platform, token.clone()));
    // Several schedule ticks pass; the dead session is exchanged once, then left alone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.count(RouteKind::Session) == 0 {
        assert!(Instant::now() < deadline, "no exchange happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    token.cancel();
    daemon.await.expect("join").expect("daemon ran");
    assert_eq!(
        fake.count(RouteKind::Session),
        1,
        "no retry storm against a dead session"
    );
    assert_eq!(fake.count(RouteKind::List), 0);
}

#[test]
fn auth_from_browser_finds_verifies_and_stores_the_session() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(NEW);
    let env = crate::support::cli::CliEnv::new();
    firefox_with_session(&env.root().join("home"), NEW);
    let out = env
        .command()
        .env("CONVOS_API_BASE_URL", fake.base_url())
        .args(["auth", "--from-browser", "firefox"])
        .output()
        .expect("run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Firefox (default-release)"),
        "says which browser and profile: {stdout}"
    );
    assert!(
        !stdout.contains(NEW) && !stderr.contains(NEW),
        "the token never shows"
    );
    let creds_path = env.data_dir.join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path)
            .expect("saved")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let saved = Credentials::load(&creds_path, None)
        .expect("load")
        .expect("present");
    assert_eq!(saved.session_value().expect("session").expose_secret(), NEW);
    assert_eq!(
        fake.count(RouteKind::Session),
        1,
        "verified by one exchange"
    );

    // A browser without a session: a clear error, exit 1, nothing replaced.
    let out = env
        .command()
        .env("CONVOS_API_BASE_URL", fake.base_url())
        .args(["auth", "--from-browser", "chromium"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("chromium"), "{stderr}");
    let still = Credentials::load(&creds_path, None)
        .expect("load")
        .expect("present");
    assert_eq!(still.session_value().expect("session").expose_secret(), NEW);
    // An unknown browser name is a usage error.
    let out = env
        .command()
        .args(["auth", "--from-browser", "netscape"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
