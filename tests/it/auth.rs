//! Acceptance tests of chatgpt.com authentication (issue 3): access-token expiry and the one
//! re-exchange, dead sessions, rotated cookies, secrets kept out of every output, and the
//! `convos auth` command. All against the fake chatgpt.com, counting what it recorded.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use convos::api::auth::{Credentials, SESSION_COOKIE};
use convos::app::sync::run_sync;
use convos::session::{self, CREDENTIALS_KEY, CredentialState, CredentialsStatus, SessionError};
use convos::sync::{StopReason, SyncReport};

use crate::support::cli::CliEnv;
use crate::support::fake_server::{FakeChatGpt, Fault, Route, RouteKind};
use crate::support::sync_env::{SyncEnv, TOKEN, assert_no_session_env, creds, run_cli};

const T0: f64 = 1_750_000_000.0;

/// The one message a dead session must produce.
const EXPIRED: &str = "session expired: run `convos auth` with a fresh cookie from chatgpt.com";

fn assert_clean(r: &SyncReport) {
    assert_eq!((r.failed, r.stop.as_ref()), (0, None), "{r:#?}");
}

fn answered(fake: &FakeChatGpt, status: u16) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.status == Some(status))
        .count()
}

/// The `Cookie` headers of the recorded session exchanges.
fn session_cookies(fake: &FakeChatGpt) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.kind == RouteKind::Session)
        .map(|r| r.header("cookie").unwrap_or_default().to_owned())
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// The credentials file, which must hold `token` already: a rotated cookie is saved before
/// the exchange that received it returns.
fn saved_now(path: &std::path::Path, token: &str) -> Credentials {
    let c = Credentials::load(path, None)
        .expect("readable credentials")
        .expect("saved credentials");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&c.session_value().unwrap()),
        token,
        "the rotated cookie is not in {}",
        path.display()
    );
    c
}

fn session_of(c: &Credentials) -> String {
    secrecy::ExposeSecret::expose_secret(&c.session_value().expect("session")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_costs_exactly_one_re_exchange_each_time() {
    let env = SyncEnv::start().await;
    for i in 0..4 {
        env.put(&format!("c{i}"), T0 + f64::from(i));
    }
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    assert_eq!(env.fake.count(RouteKind::Session), 1);

    // Tokens may expire many times in a long-lived client.
    for round in 0..3 {
        env.fake.expire_access_tokens();
        env.fake
            .touch(&format!("c{round}"), T0 + 100.0 + f64::from(round));
        env.fake.reset_counts();
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.updated, 1, "round {round}: {r:#?}");
        assert_eq!(env.fake.count(RouteKind::Session), 1, "round {round}");
        assert_eq!(answered(&env.fake, 401), 1, "round {round}");
        assert_eq!(
            env.fake.count(RouteKind::List),
            2,
            "the refused request is retried"
        );
    }

    // A single 401 in the middle of a run (on a detail) is handled the same way.
    env.fake.touch("c3", T0 + 500.0);
    env.fake
        .push_fault(Route::Detail("c3".into()), Fault::Unauthorized);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.updated, 1);
    assert_eq!(env.fake.count(RouteKind::Session), 1);
    assert_eq!(env.fake.detail_count("c3"), 2);
    // The retried request carried the new token.
    let details: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.kind == RouteKind::Detail)
        .collect();
    assert_ne!(
        details[0].header("authorization"),
        details[1].header("authorization")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_401s_in_a_row_end_the_run_with_a_clear_error() {
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    env.fake.touch("c0", T0 + 10.0);
    env.fake.push_fault(Route::List, Fault::Unauthorized);
    env.fake.push_fault(Route::List, Fault::Unauthorized);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_eq!(r.stop, Some(StopReason::RefusedTwice), "{r:#?}");
    let err = r.stop.clone().expect("the run stops").to_string();
    assert!(err.contains("401") && err.contains("convos auth"), "{err}");
    assert_eq!(
        env.fake.count(RouteKind::Session),
        1,
        "one re-exchange only"
    );
    assert_eq!(env.fake.count(RouteKind::List), 2);
    assert_eq!(env.fake.requests().len(), 3, "{:#?}", env.fake.requests());
    assert_eq!(env.must("c0").summary.update_time, Some(T0));

    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.updated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dying_under_a_running_client_stops_it_without_a_retry_storm() {
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    env.put("c1", T0 + 1.0);
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);

    env.fake.revoke_session(TOKEN);
    env.fake.expire_access_tokens();
    env.fake.touch("c0", T0 + 10.0);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_eq!(r.stop, Some(StopReason::SessionExpired), "{r:#?}");
    // The refused list request and one exchange answering `{}`; nothing else.
    assert_eq!(env.fake.count(RouteKind::Session), 1);
    assert_eq!(env.fake.requests().len(), 2, "{:#?}", env.fake.requests());
    assert_eq!(env.must("c0").summary.update_time, Some(T0));

    // Asking again costs one exchange per run, never more.
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_eq!(r.stop, Some(StopReason::SessionExpired));
    assert_eq!(env.fake.requests().len(), 1);
    assert_eq!(env.fake.count(RouteKind::Session), 1);
}

#[test]
fn a_dead_session_is_recorded_and_refused_without_requests_until_the_credentials_change() {
    assert_no_session_env();
    let mut env = SyncEnv::background();
    env.put("c0", T0);
    env.put("c1", T0 + 1.0);
    creds(TOKEN).save(&env.paths.credentials).unwrap();
    env.fake.revoke_session(TOKEN);

    let mut out = Vec::new();
    let r = run_sync(&env.context(), false, &mut out).expect("the run itself starts");
    assert_eq!(r.stop, Some(StopReason::SessionExpired), "{r:#?}");
    assert_eq!(
        env.fake.requests().len(),
        1,
        "one exchange: {:#?}",
        env.fake.requests()
    );
    assert_eq!(env.fake.count(RouteKind::Session), 1);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(EXPIRED), "{out}");
    let status: CredentialsStatus = env.archive.state(CREDENTIALS_KEY).unwrap().unwrap();
    assert_eq!(status.state, CredentialState::Expired);
    assert_eq!(status.fingerprint, Some(creds(TOKEN).fingerprint()));

    // The same dead cookie is refused before any request, but imports still work.
    let export = env.root().join("export.json");
    let detail = crate::support::fake_server::conversation_detail("imported", "I", T0, T0);
    std::fs::write(&export, serde_json::to_vec(&[detail]).unwrap()).unwrap();
    env.config.sync.import_paths = vec![export];
    env.fake.reset_counts();
    let mut out = Vec::new();
    let e = run_sync(&env.context(), false, &mut out).expect_err("refused");
    let msg = format!("{:#}", e.error);
    assert!(msg.contains(EXPIRED), "{msg}");
    assert!(env.fake.requests().is_empty(), "{:#?}", env.fake.requests());
    assert!(env.record("imported").is_some(), "the import ran first");
    assert!(matches!(
        session::prepare_client(&env.config, &env.paths, &env.archive),
        Err(SessionError::DeadSession)
    ));
    assert!(env.fake.requests().is_empty());

    // New credentials are accepted.
    let fresh = "fresh-session-0123456789abcdefghijklmnopqrstuvwxyz";
    env.fake.add_session(fresh);
    creds(fresh).save(&env.paths.credentials).unwrap();
    let mut out = Vec::new();
    let r = run_sync(&env.context(), false, &mut out).expect("runs");
    assert_clean(&r);
    assert_eq!(r.new, 2);
    assert_eq!(env.fake.count(RouteKind::Session), 1);
    let status: CredentialsStatus = env.archive.state(CREDENTIALS_KEY).unwrap().unwrap();
    assert_eq!(status.state, CredentialState::Valid);
    assert_eq!(status.fingerprint, Some(creds(fresh).fingerprint()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_cookies_are_saved_0600_and_used_from_then_on() {
    // (stored cookie chunked, rotated cookie chunked)
    for (from_chunks, chunked) in [(false, false), (false, true), (true, false)] {
        let env = SyncEnv::start().await;
        env.put("c0", T0);
        let first = if from_chunks {
            let (a, b) = TOKEN.split_at(20);
            Credentials::parse_input(
                &format!("{SESSION_COOKIE}.0={a}; {SESSION_COOKIE}.1={b}"),
                "stdin",
            )
            .unwrap()
        } else {
            creds(TOKEN)
        };
        first.save(&env.paths.credentials).unwrap();
        let stored = Credentials::load(&env.paths.credentials, None)
            .unwrap()
            .unwrap();
        let new = format!("rotated-{chunked}-0123456789abcdefghijklmnopqrstuvwxyz");
        env.fake
            .rotate_session_on_next_exchange_revoking_old(&new, chunked);
        let client = env.client_with(stored).await;
        assert_clean(&env.sync(&client).await);
        assert!(!env.fake.rotation_pending());

        let saved = saved_now(&env.paths.credentials, &new);
        assert_eq!(mode(&env.paths.credentials), 0o600);
        let mut names = saved.cookie_names();
        names.sort();
        let expected: Vec<String> = if chunked {
            vec![format!("{SESSION_COOKIE}.0"), format!("{SESSION_COOKIE}.1")]
        } else {
            vec![SESSION_COOKIE.to_owned()]
        };
        assert_eq!(
            names, expected,
            "from chunks {from_chunks}, to chunks {chunked}"
        );

        // The running client re-exchanges with the new cookie (the old one is dead).
        env.fake.expire_access_tokens();
        env.fake.touch("c0", T0 + 10.0);
        env.fake.reset_counts();
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.updated, 1);
        let cookies = session_cookies(&env.fake);
        assert_eq!(cookies.len(), 1);
        assert!(!cookies[0].contains(TOKEN), "{}", cookies[0]);
        assert!(!cookies[0].contains(&TOKEN[..20]), "{}", cookies[0]);
        if chunked {
            assert!(
                cookies[0].contains(&format!("{SESSION_COOKIE}.0="))
                    && cookies[0].contains(&format!("{SESSION_COOKIE}.1="))
                    && !cookies[0].contains(&format!("{SESSION_COOKIE}=")),
                "{}",
                cookies[0]
            );
        } else {
            assert!(
                cookies[0].contains(&format!("{SESSION_COOKIE}={new}"))
                    && !cookies[0].contains(&format!("{SESSION_COOKIE}.")),
                "{}",
                cookies[0]
            );
        }

        // A restart reads the new cookie from the file and works.
        drop(client);
        let reloaded = Credentials::load(&env.paths.credentials, None)
            .unwrap()
            .unwrap();
        assert_eq!(session_of(&reloaded), new);
        let client = env.client_with(reloaded).await;
        env.fake.touch("c0", T0 + 20.0);
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.updated, 1);
        // Whereas the old cookie is dead.
        let old = env.client_with(creds(TOKEN)).await;
        assert_eq!(env.sync(&old).await.stop, Some(StopReason::SessionExpired));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_of_an_environment_token_leaves_the_file_alone() {
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    let other = "file-session-0123456789abcdefghijklmnopqrstuvwxyz";
    env.fake.add_session(other);
    creds(other).save(&env.paths.credentials).unwrap();
    let from_env = Credentials::load(&env.paths.credentials, Some(TOKEN))
        .unwrap()
        .unwrap();
    assert_eq!(session_of(&from_env), TOKEN);
    env.fake
        .rotate_session_on_next_exchange("rotated-env-0123456789abcdefghijklmnop", false);
    let client = env.client_with(from_env).await;
    assert_clean(&env.sync(&client).await);
    assert!(!env.fake.rotation_pending());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let file = Credentials::load(&env.paths.credentials, None)
        .unwrap()
        .unwrap();
    assert_eq!(session_of(&file), other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_look_like_the_browser_and_keep_one_device_id() {
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    drop(client);
    env.fake.touch("c0", T0 + 1.0);
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    let requests = env.fake.requests();
    let devices: std::collections::BTreeSet<_> = requests
        .iter()
        .map(|r| r.header("oai-device-id").expect("device id").to_owned())
        .collect();
    assert_eq!(
        devices.len(),
        1,
        "one device id across restarts: {devices:?}"
    );
    let base = env.fake.base_url();
    for r in &requests {
        assert!(
            r.header("user-agent").unwrap_or("").contains("Mozilla/5.0"),
            "{r:?}"
        );
        assert_eq!(r.header("origin"), Some(base.as_str()), "{r:?}");
        assert!(
            r.header("referer").unwrap_or("").starts_with(&base),
            "{r:?}"
        );
        if r.kind == RouteKind::Session {
            assert!(r.header("cookie").unwrap_or("").contains(TOKEN));
            assert_eq!(r.header("authorization"), None);
        } else {
            assert!(
                r.header("authorization")
                    .unwrap_or("")
                    .starts_with("Bearer ")
            );
            assert_eq!(
                r.header("chatgpt-account-id"),
                Some(env.fake.account_id().as_str())
            );
            assert_eq!(
                r.header("cookie"),
                None,
                "the session cookie only goes to the exchange"
            );
        }
    }
}

// ---- secrets never leak ----------------------------------------------------------------------

mod capture {
    //! A global TRACE subscriber (installed once for the test binary) that records into a
    //! buffer only while some test holds a [`Capture`], so other tests pay nothing.

    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    static ACTIVE: AtomicUsize = AtomicUsize::new(0);
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Capturing is on while this lives.
    pub struct Capture(());

    impl Capture {
        /// Everything logged so far (by any thread while capturing was on).
        pub fn text(&self) -> String {
            let buf = BUFFER.get().expect("installed");
            String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    impl Drop for Capture {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Starts capturing every event at every level, from every crate and thread.
    pub fn start() -> Capture {
        BUFFER.get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = buf.clone();
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    ACTIVE.load(Ordering::Relaxed) > 0
                }));
            // Also routes `log` records (reqwest's) into tracing.
            tracing_subscriber::registry()
                .with(layer)
                .try_init()
                .expect("no other global subscriber in the test binary");
            buf
        });
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Capture(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_debug_output_or_errors() {
    let capture = capture::start();
    let secret = "leak-canary-session-7c1f0e5a9b2d4c6e8f0a1b3c5d7e9f";
    let rotated = "leak-canary-rotated-2b4d6f8a0c1e3a5c7e9b1d3f5a7c";
    let env = SyncEnv::start().await;
    env.fake.add_session(secret);
    for i in 0..4 {
        env.put(&format!("c{i}"), T0 + f64::from(i));
    }
    env.fake
        .fail_always(Route::Detail("c1".into()), Fault::Status(500));
    env.fake
        .push_fault(Route::Detail("c2".into()), Fault::NotFound);
    env.fake.push_fault(Route::List, Fault::Unauthorized);
    env.fake
        .rotate_session_on_next_exchange_revoking_old(rotated, true);
    creds(secret).save(&env.paths.credentials).unwrap();
    let stored = Credentials::load(&env.paths.credentials, None)
        .unwrap()
        .unwrap();
    let stored_debug = format!("{stored:?}");
    let client = env.client_with(stored).await;

    // A run with a rotation, a 401 re-exchange, a failing and a missing detail.
    let r1 = env.sync(&client).await;
    assert_eq!((r1.failed, r1.stop.as_ref()), (2, None), "{r1:#?}");
    let saved = saved_now(&env.paths.credentials, rotated);
    // A run that dies with the session.
    env.fake.revoke_session(rotated);
    env.fake.expire_access_tokens();
    env.fake.clear_faults();
    env.fake.touch("c0", T0 + 50.0);
    let r2 = env.sync(&client).await;
    assert_eq!(r2.stop, Some(StopReason::SessionExpired));
    // A challenge on the exchange of a fresh client.
    env.fake.push_fault(Route::Session, Fault::Challenge);
    let r3 = env.sync(&env.client_with(saved.clone()).await).await;
    assert!(
        r3.stop
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
            .contains("bot protection")
    );
    let setup = session::prepare_client(&env.config, &env.paths, &env.archive);
    let logs = capture.text();
    drop(capture);

    // What must never show: both session tokens (whole and as chunks) and every access token.
    let mut secrets: Vec<String> = vec![secret.into(), rotated.into()];
    let mid = rotated.len() / 2;
    secrets.push(rotated[..mid].into());
    secrets.push(rotated[mid..].into());
    let mut access = Vec::new();
    for r in env.fake.requests() {
        if let Some(a) = r.header("authorization") {
            let token = a.trim_start_matches("Bearer ").to_owned();
            // The payload part is unique per token (it carries a fresh jti).
            secrets.push(token.split('.').nth(1).unwrap().to_owned());
            access.push(token);
        }
    }
    access.sort();
    access.dedup();
    assert!(access.len() >= 2, "tokens before and after the re-exchange");
    secrets.extend(access);

    assert!(logs.contains("TRACE"), "the capture runs at TRACE");
    for needle in [
        "rotated the session cookie",
        "(401)",
        "session expired",
        "c1",
        "sync finished",
    ] {
        assert!(logs.contains(needle), "{needle:?} not logged");
    }
    let mut outputs = vec![
        ("logs", logs),
        ("client Debug", format!("{client:?}")),
        ("stored credentials Debug", stored_debug),
        ("saved credentials Debug", format!("{saved:?}")),
        ("session info Debug", format!("{:?}", client.session_info())),
        ("prepare_client", format!("{setup:?}")),
    ];
    for (name, r) in [("run 1", &r1), ("run 2", &r2), ("run 3", &r3)] {
        outputs.push((name, format!("{r:?}")));
        outputs.push((
            name,
            r.stop.as_ref().map(ToString::to_string).unwrap_or_default(),
        ));
        outputs.push((name, r.failures.join("\n")));
    }
    for (name, text) in &outputs {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret leaked into {name}");
        }
    }
}

// ---- the real binary -------------------------------------------------------------------------

fn leaks(run: &crate::support::cli::Run, secret: &str) -> bool {
    run.stdout.contains(secret) || run.stderr.contains(secret)
}

#[test]
fn cli_auth_reads_the_token_from_stdin_verifies_it_and_saves_it_0600() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    let cli = CliEnv::new();
    let path = cli.data_dir.join("credentials.json");
    let run = run_cli(
        &cli,
        &fake,
        &["auth", "--token-stdin"],
        Some(&format!("{TOKEN}\n")),
        &[],
    );
    run.ok();
    assert!(
        run.stdout.contains("session from stdin verified"),
        "{run:?}"
    );
    assert!(!leaks(&run, TOKEN), "{run:?}");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        session_of(&Credentials::load(&path, None).unwrap().unwrap()),
        TOKEN
    );
    assert_eq!(fake.count(RouteKind::Session), 1);
    assert!(session_cookies(&fake)[0].contains(TOKEN));

    // The chunked form, pasted as name=value pairs.
    let long = format!("{TOKEN}-second-half-of-a-long-session-token");
    fake.add_session(&long);
    let (a, b) = long.split_at(30);
    let pasted = format!("{SESSION_COOKIE}.0={a}; {SESSION_COOKIE}.1={b}\n");
    let run = run_cli(&cli, &fake, &["auth", "--token-stdin"], Some(&pasted), &[]);
    run.ok();
    assert!(!leaks(&run, a) && !leaks(&run, b), "{run:?}");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        session_of(&Credentials::load(&path, None).unwrap().unwrap()),
        long
    );
}

#[test]
fn cli_auth_with_a_bad_token_exits_1_and_saves_nothing() {
    let fake = FakeChatGpt::start_background();
    let cli = CliEnv::new();
    let bad = "not-a-session-anyone-knows-0123456789abcdef";
    let run = run_cli(&cli, &fake, &["auth", "--token-stdin"], Some(bad), &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("could not be verified"), "{run:?}");
    assert!(run.stderr.contains("convos auth"), "{run:?}");
    assert!(!leaks(&run, bad), "{run:?}");
    assert!(!cli.data_dir.join("credentials.json").exists());
    assert_eq!(fake.count(RouteKind::Session), 1);

    // Input without any token is refused before any request.
    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["auth", "--token-stdin"], Some("\n"), &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("no session token"), "{run:?}");
    assert!(fake.requests().is_empty());
    assert!(!cli.data_dir.join("credentials.json").exists());
}

#[test]
fn cli_session_token_env_overrides_the_file() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    let cli = CliEnv::new();
    run_cli(&cli, &fake, &["auth", "--token-stdin"], Some(TOKEN), &[]).ok();
    fake.put_conversation(
        crate::support::fake_server::conversation_detail("c0", "C", T0, T0),
        Default::default(),
    );
    fake.revoke_session(TOKEN);
    let other = "env-session-0123456789abcdefghijklmnopqrstuvwxyz";
    fake.add_session(other);

    fake.reset_counts();
    let run = run_cli(
        &cli,
        &fake,
        &["sync"],
        None,
        &[("CONVOS_SESSION_TOKEN", other)],
    );
    run.ok();
    assert!(!leaks(&run, other), "{run:?}");
    let cookies = session_cookies(&fake);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].contains(other) && !cookies[0].contains(TOKEN));

    // Without it, the (dead) stored cookie is used: one exchange, then a clear error…
    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["sync"], None, &[]);
    run.expect_code(1);
    assert!(run.stderr.contains(EXPIRED), "{run:?}");
    assert_eq!(fake.requests().len(), 1);
    // …and from then on no request at all until the credentials change.
    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["sync"], None, &[]);
    run.expect_code(1);
    assert!(run.stderr.contains(EXPIRED), "{run:?}");
    assert!(fake.requests().is_empty());
}

#[test]
fn cli_refuses_a_credentials_file_readable_by_others() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    let cli = CliEnv::new();
    run_cli(&cli, &fake, &["auth", "--token-stdin"], Some(TOKEN), &[]).ok();
    let path = cli.data_dir.join("credentials.json");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["sync"], None, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("chmod 600"), "{run:?}");
    assert!(run.stderr.contains("credentials.json"), "{run:?}");
    assert!(!leaks(&run, TOKEN));
    assert!(fake.requests().is_empty());
    // Fixing the mode as told makes it work.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_cli(&cli, &fake, &["sync"], None, &[]).ok();
}

// ---- issue 8 §10: the newest cookie always wins ------------------------------------------------

/// The session value the credentials file holds now.
fn saved_session(path: &std::path::Path) -> String {
    session_of(
        &Credentials::load(path, None)
            .expect("readable credentials")
            .expect("saved credentials"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rotated_cookie_is_on_disk_when_the_exchange_returns() {
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    env.fake.rotate_on_every_exchange(true);
    creds(TOKEN).save(&env.paths.credentials).unwrap();
    let stored = Credentials::load(&env.paths.credentials, None)
        .unwrap()
        .unwrap();
    let client = std::sync::Arc::new(env.client_with(stored).await);
    for round in 0..4 {
        // Two exchanges at once: they run one after the other, and so do their saves.
        let (a, b) = (client.clone(), client.clone());
        let (ra, rb) = tokio::join!(a.refresh_session(), b.refresh_session());
        ra.expect("exchange");
        rb.expect("exchange");
        let on_disk = saved_session(&env.paths.credentials);
        assert!(
            env.fake.session_alive(&on_disk),
            "round {round}: the file holds a cookie the service already refused"
        );
        assert_eq!(client.fingerprint().await, creds(&on_disk).fingerprint());
    }
    // What `convos auth` stores after verifying is the client's current cookie.
    let info = client.refresh_session().await.expect("exchange");
    let stored = session::store_verified(&env.paths, &env.archive, &client, &info, None)
        .await
        .expect("stored");
    let on_disk = saved_session(&env.paths.credentials);
    assert_eq!(session_of(&stored), on_disk);
    assert!(env.fake.session_alive(&on_disk));
    let status: CredentialsStatus = env.archive.state(CREDENTIALS_KEY).unwrap().unwrap();
    assert_eq!(status.fingerprint, Some(stored.fingerprint()));

    // A restart reads it and syncs.
    drop(client);
    let reloaded = Credentials::load(&env.paths.credentials, None)
        .unwrap()
        .unwrap();
    let client = env.client_with(reloaded).await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 1);
    assert!(
        env.fake
            .session_alive(&saved_session(&env.paths.credentials))
    );
}

#[test]
fn cli_auth_against_a_service_that_rotates_every_exchange_leaves_a_working_cookie() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    fake.rotate_on_every_exchange(true);
    for i in 0..3 {
        fake.put_conversation(
            crate::support::fake_server::conversation_detail(
                &format!("c{i}"),
                "C",
                T0,
                T0 + f64::from(i),
            ),
            Default::default(),
        );
    }
    let cli = CliEnv::new();
    let path = cli.data_dir.join("credentials.json");
    let run = run_cli(&cli, &fake, &["auth", "--token-stdin"], Some(TOKEN), &[]);
    run.ok();
    assert!(
        !fake.session_alive(TOKEN),
        "the pasted cookie died in the exchange"
    );
    assert_ne!(saved_session(&path), TOKEN);
    assert!(fake.session_alive(&saved_session(&path)));
    assert_eq!(mode(&path), 0o600);
    // A restart (a new process) syncs with it, and again after that.
    for expected_new in [3, 0] {
        let run = run_cli(&cli, &fake, &["sync"], None, &[]);
        run.ok();
        assert!(
            run.stdout.contains(&format!("{expected_new} new")),
            "{run:?}"
        );
        assert!(fake.session_alive(&saved_session(&path)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_adopting_a_pasted_cookie_stores_the_rotated_one() {
    use crate::support::daemon_env::{DaemonWorld, InProcess};
    let fake = FakeChatGpt::start().await;
    fake.add_session(TOKEN);
    fake.rotate_on_every_exchange(true);
    for i in 0..3 {
        fake.put_conversation(
            crate::support::fake_server::conversation_detail(
                &format!("d{i}"),
                "D",
                T0,
                T0 + f64::from(i),
            ),
            Default::default(),
        );
    }
    let world = DaemonWorld::new();
    let (mut loaded, platform) = world.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    crate::support::sync_env::make_fast(&mut loaded.config);
    let path = loaded.paths.credentials.clone();

    let daemon = InProcess::start(loaded.clone(), platform.clone()).await;
    let run = world
        .run_with_stdin(&["auth", "--token-stdin"], TOKEN)
        .await;
    run.ok();
    assert!(
        run.stdout.contains("the running daemon uses it now"),
        "{run:?}"
    );
    assert!(!fake.session_alive(TOKEN));
    assert!(fake.session_alive(&saved_session(&path)));
    daemon.stop().await;

    // A restarted daemon syncs with the stored cookie at once.
    let daemon = InProcess::start(loaded, platform).await;
    let status = daemon
        .wait_status("a finished sync", |s| {
            s["last_sync"]["finished_at"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .await;
    assert_eq!(
        status["last_sync"]["error"],
        serde_json::Value::Null,
        "{status:#}"
    );
    assert_eq!(status["last_sync"]["new"], 3, "{status:#}");
    daemon.stop().await;
    assert!(fake.session_alive(&saved_session(&path)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_session_exchange_leaves_its_cooldown_saved() {
    use convos::api::pace::{self, PaceState};
    let env = SyncEnv::start().await;
    env.put("c0", T0);
    for _ in 0..2 {
        env.fake.push_fault(
            Route::Session,
            Fault::RateLimited {
                retry_after: Some(0),
            },
        );
    }
    env.fake.push_fault(
        Route::Session,
        Fault::RateLimited {
            retry_after: Some(1800),
        },
    );
    let client = env.client().await;
    let r = env.sync(&client).await;
    let err = r.stop.expect("the exchange gave up").to_string();
    assert!(err.contains("429") && err.contains("1800"), "{err}");
    assert_eq!(env.fake.count(RouteKind::Session), 3);
    let saved: PaceState = env.archive.state(pace::STATE_KEY).unwrap().unwrap();
    let until = saved
        .cooldown_until
        .expect("the last 429's cooldown is saved");
    assert!(until > crate::support::sync_env::now() + 1700.0);
    drop(client);
    let restarted = env.client().await;
    assert!(restarted.pacer().wait_hint() > Duration::from_secs(1700));
}
