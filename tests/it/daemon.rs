//! Acceptance tests of the daemon (issue 4): the scheduled sync against the fake chatgpt.com,
//! the commands served through the control socket (and in-process when no daemon runs), and
//! the real binary under `convos run`: signals, an interrupted import, `kill -9`, the lock.
//! The folder watcher's own tests are in `watch.rs`.
//!
//! Waits poll for a state (counts, `status --json`, log lines, file sizes) with a generous
//! deadline; the only time bound asserted is the specified one: `convos run` exits within
//! 5 s of SIGTERM/SIGINT.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemon_env::*;
use crate::support::fake_server::{
    ConvOpts, FakeChatGpt, Fault, Route, RouteKind, conversation_detail,
};
use crate::support::fixtures::*;

/// A session cookie value the fake server accepts once told to.
const TOKEN: &str = "session-token-abcdefghijklmnopqrstuvwxyz";
/// Every scheduled second that is even.
const EVERY_2S: &str = "*/2 * * * * *";
/// How soon `convos run` must exit after SIGTERM or SIGINT (issue 4, "Lifecycle").
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// A fake chatgpt.com with a valid [`TOKEN`] session and conversations `conv-0`….
async fn fake_with(n: usize) -> FakeChatGpt {
    let fake = FakeChatGpt::start().await;
    fake.add_session(TOKEN);
    for i in 0..n {
        fake.put_conversation(
            conversation_detail(
                &format!("conv-{i}"),
                &format!("Remote {i}"),
                1.7e9 + i as f64,
                1.7e9 + 100.0 + i as f64,
            ),
            ConvOpts::default(),
        );
    }
    fake
}

fn last_sync_u64(status: &Value, key: &str) -> Option<u64> {
    status["last_sync"][key].as_u64()
}

// ---------------------------------------------------------------------------------------------
// Scheduled sync (in-process daemon)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_syncs_at_start_and_on_the_schedule() {
    let fake = fake_with(3).await;
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    loaded.config.sync.schedule = EVERY_2S.into();
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;

    // The run at start fetches everything.
    let s = d
        .wait_status("the sync at start", |s| {
            last_sync_u64(s, "new") == Some(3) && s["last_sync"]["error"].is_null()
        })
        .await;
    assert_eq!(conversations(&s), 3, "{s:#}");
    assert_eq!(fake.count(RouteKind::Detail), 3);
    let lists_after_start = fake.count(RouteKind::List);
    assert!(lists_after_start >= 1);
    assert!(
        s["daemon"]["next_sync"].as_str().is_some(),
        "status shows the next sync: {s:#}"
    );

    // A later scheduled run picks up a change made on chatgpt.com.
    fake.touch("conv-1", 1.7e9 + 500.0);
    eventually(
        "a scheduled sync to fetch the changed conversation",
        async || (fake.detail_count("conv-1") == 2).then_some(()),
        || format!("requests: {:?}", kinds(&fake)),
    )
    .await;
    let s = d
        .wait_status("the scheduled sync to finish", |s| {
            last_sync_u64(s, "updated") == Some(1)
        })
        .await;
    assert_eq!(conversations(&s), 3, "{s:#}");
    assert!(fake.count(RouteKind::List) > lists_after_start);
    // Incremental: the unchanged conversations were not fetched again.
    assert_eq!(fake.detail_count("conv-0"), 1);
    assert_eq!(fake.detail_count("conv-2"), 1);
    d.stop().await;
}

fn kinds(fake: &FakeChatGpt) -> Vec<(u64, RouteKind, Option<u16>)> {
    fake.requests()
        .iter()
        .map(|r| (r.seq, r.kind, r.status))
        .collect()
}

/// The `next_sync` time shown by `status --json`.
fn next_sync(status: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let t = status["daemon"]["next_sync"]
        .as_str()
        .unwrap_or_else(|| panic!("no daemon.next_sync in {status:#}"));
    chrono::DateTime::parse_from_rfc3339(t).expect("next_sync is RFC 3339")
}

/// A scheduled sync still running when the next ticks come is never run alongside them: the
/// ticks are skipped. For a while every listing request is delayed 2.2 s (`Fault::Delay`), so
/// a run (its normal then its archived listing; nothing changed, so no details, and projects
/// were walked at start) takes over 4 s while ticks come every 2 s. Asserted: the status shows
/// the schedule moving on by 3 ticks while at most 2 runs listed (ticks were skipped); the
/// fake server's log shows normal and archived listings strictly alternating from start to end
/// (each run's pair is never interleaved with another run's: an overlapping run's listing
/// would queue behind the slow one in the shared client and come between them); and once the
/// delay is lifted, scheduled syncs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_skips_a_scheduled_sync_while_one_is_running() {
    let fake = fake_with(3).await;
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    loaded.config.sync.schedule = EVERY_2S.into();
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;
    let s = d
        .wait_status("the sync at start", |s| last_sync_u64(s, "new") == Some(3))
        .await;
    let last_seq = |fake: &FakeChatGpt| fake.requests().last().map_or(0, |r| r.seq);

    // Slow listings for three ticks.
    let next0 = next_sync(&s);
    let seq0 = last_seq(&fake);
    fake.fail_always(Route::List, Fault::Delay(Duration::from_millis(2200)));
    let s = d
        .wait_status("three ticks with slow listings", |s| {
            next_sync(s) >= next0 + chrono::TimeDelta::seconds(6)
        })
        .await;
    let seq1 = last_seq(&fake);
    fake.clear_faults();
    let ticks = (next_sync(&s) - next0).num_seconds() / 2;
    let runs = fake
        .requests()
        .iter()
        .filter(|r| r.kind == RouteKind::List && r.seq > seq0 && r.seq <= seq1)
        .count();
    assert!(
        ticks >= 3 && (runs as i64) < ticks,
        "ticks were skipped while a slow sync ran: {ticks} ticks, {runs} runs started\n{:?}",
        kinds(&fake)
    );

    // The schedule goes on: another run lists after the slow ones.
    let lists = fake.count(RouteKind::List);
    eventually(
        "a scheduled sync after the slow ones",
        async || (fake.count(RouteKind::List) > lists).then_some(()),
        || format!("requests: {:?}", kinds(&fake)),
    )
    .await;
    let listings: Vec<RouteKind> = fake
        .requests()
        .iter()
        .map(|r| r.kind)
        .filter(|k| matches!(k, RouteKind::List | RouteKind::ArchivedList))
        .collect();
    for (i, pair) in listings.chunks(2).enumerate() {
        assert!(
            pair[0] == RouteKind::List && pair.get(1).is_none_or(|k| *k == RouteKind::ArchivedList),
            "run {i} was interleaved with another run: {:?}",
            kinds(&fake)
        );
    }
    d.stop().await;
}

/// `convos sync` asked while a sync runs waits for it, then runs its own: the running one
/// may have listed before the user's change, so its report would not answer the request.
/// A first `convos sync` lists, then is held in its slow archived listing (`Fault::Delay`); a
/// conversation is then added on the server and a second `convos sync` asked: it says it
/// waits, and its own run stores the new conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convos_sync_during_a_running_sync_runs_again_after_it() {
    let fake = fake_with(1).await;
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;
    d.wait_status("the sync at start", |s| last_sync_u64(s, "new") == Some(1))
        .await;

    let archived = fake.count(RouteKind::ArchivedList);
    // The normal listing answers at once, the archived one after 1.5 s.
    fake.push_fault(Route::List, Fault::Delay(Duration::ZERO));
    fake.push_fault(Route::List, Fault::Delay(Duration::from_millis(1500)));
    let mut cmd = w.cli.command();
    cmd.arg("sync");
    let first = tokio::spawn(run_command(cmd, None));
    eventually(
        "the first sync's slow archived listing",
        async || (fake.count(RouteKind::ArchivedList) > archived).then_some(()),
        || format!("requests: {:?}", kinds(&fake)),
    )
    .await;
    fake.put_conversation(
        conversation_detail("conv-late", "Late", 1.7e9 + 500.0, 1.7e9 + 600.0),
        ConvOpts::default(),
    );
    let second = w.run(&["sync"]).await;
    second.ok();
    assert!(
        second
            .stderr
            .contains("a sync is running; this one starts when it ends"),
        "{}",
        second.stderr
    );
    assert!(second.stdout.contains("1 new"), "{}", second.stdout);
    let first = first.await.expect("the first sync's task");
    assert!(first.ok().stdout.contains("0 new"), "{}", first.stdout);
    let s = d.status().await;
    assert_eq!(conversations(&s), 2, "{s:#}");
    d.stop().await;
}

/// The job named `name` in a `status --json`.
fn job<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["daemon"]["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .unwrap_or_else(|| panic!("no {name} job in {status:#}"))
}

fn rfc3339(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Issue 9, point 4: one scheduler owns the sync, the reconcile (full) sync, the token
/// refresh and the watcher's rescan; each is a named job whose next run `status` shows in
/// UTC and in the schedules' zone (here New York, named in `[sync] timezone`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_each_job_with_its_next_run_in_utc_and_in_the_zone() {
    let fake = fake_with(2).await;
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    loaded.config.sync.schedule = "0 0 9 * * *".into();
    loaded.config.sync.timezone = "America/New_York".into();
    loaded.config.watch.rescan_secs = 60;
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;
    let s = d
        .wait_status("the sync at start and a planned token refresh", |s| {
            last_sync_u64(s, "new") == Some(2)
                && s["daemon"]["jobs"]
                    .as_array()
                    .and_then(|jobs| jobs.iter().find(|j| j["name"] == "token refresh"))
                    .is_some_and(|j| j["next_run"].is_string())
        })
        .await;
    let names: Vec<&str> = s["daemon"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["sync", "reconcile", "token refresh", "rescan"],
        "{s:#}"
    );
    assert_eq!(s["daemon"]["timezone"], "America/New_York", "{s:#}");
    use chrono::Offset;
    let new_york: chrono_tz::Tz = "America/New_York".parse().expect("zone");
    for name in ["sync", "reconcile", "token refresh", "rescan"] {
        let j = job(&s, name);
        let (utc, local) = (rfc3339(&j["next_run"]), rfc3339(&j["next_run_local"]));
        assert_eq!(utc, local, "{name}: one moment, two clocks: {j}");
        assert!(j["next_run"].as_str().expect("utc").ends_with('Z'), "{j}");
        assert_eq!(
            local.offset().local_minus_utc(),
            utc.with_timezone(&new_york)
                .offset()
                .fix()
                .local_minus_utc(),
            "{name}: local time is New York's: {j}"
        );
        assert!(
            utc > chrono::Utc::now() - chrono::TimeDelta::seconds(2),
            "{name}: {j}"
        );
    }
    // The sync runs at 9:00 and the full sync on Sundays at 4:00, New York time.
    let sync_local = rfc3339(&job(&s, "sync")["next_run_local"]);
    assert_eq!(
        sync_local.format("%H:%M:%S").to_string(),
        "09:00:00",
        "{s:#}"
    );
    assert_eq!(s["daemon"]["next_sync"], job(&s, "sync")["next_run"]);
    let full_local = rfc3339(&job(&s, "reconcile")["next_run_local"]);
    assert_eq!(
        full_local.format("%a %H:%M:%S").to_string(),
        "Sun 04:00:00",
        "{s:#}"
    );
    // The refresh is due ten minutes before the access token expires.
    let token_expires = rfc3339(&s["credentials"]["access_token_expires"]);
    let refresh = rfc3339(&job(&s, "token refresh")["next_run"]);
    let early = (token_expires - refresh).num_seconds();
    assert!(
        (595..=601).contains(&early),
        "{early} s before expiry: {s:#}"
    );
    // The rescan comes every 60 s.
    let rescan = rfc3339(&job(&s, "rescan")["next_run"]);
    assert!(
        rescan <= chrono::Utc::now() + chrono::TimeDelta::seconds(61),
        "{s:#}"
    );

    let text = w.run(&["status"]).await;
    text.ok();
    for needle in [
        "jobs:",
        "reconcile",
        "token refresh",
        "rescan",
        "America/New_York",
    ] {
        assert!(
            text.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            text.stdout
        );
    }
    d.stop().await;
}

/// The reconcile job is a full sync: it walks every listing, so a conversation deleted
/// on chatgpt.com is marked (a normal sync cannot tell).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_job_runs_a_full_sync() {
    let fake = fake_with(3).await;
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    // The normal schedule never comes during the test; the full one every 2 s.
    loaded.config.sync.schedule = "0 0 0 1 1 *".into();
    loaded.config.sync.reconcile_schedule = EVERY_2S.into();
    loaded.config.sync.timezone = "UTC".into();
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;
    d.wait_status("the sync at start", |s| last_sync_u64(s, "new") == Some(3))
        .await;
    fake.delete("conv-1");
    let s = d
        .wait_status("a full sync marking the deleted conversation", |s| {
            s["last_sync"]["full"] == true && last_sync_u64(s, "deleted_remotely") == Some(1)
        })
        .await;
    assert!(s["last_sync"]["error"].is_null(), "{s:#}");
    assert_eq!(s["counts"]["deleted_remotely"], 1, "{s:#}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_without_credentials_still_imports_and_never_calls_the_server() {
    let fake = fake_with(2).await;
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    loaded.config.sync.schedule = EVERY_2S.into();
    let d = InProcess::start(loaded, platform).await;
    let first = d.status().await;
    let next0 = first["daemon"]["next_sync"].clone();
    assert!(first["credentials"].is_null(), "{first:#}");

    write_chrome_style(
        &w.watch,
        "export.zip",
        &fs::read(sample_export(&w.cli.inputs())).expect("sample"),
        3,
    )
    .await;
    d.wait_status("the dropped export to be archived", |s| {
        conversations(s) == 5
    })
    .await;
    // Let a scheduled tick pass, too (the status shows the schedule moving on).
    let s = d
        .wait_status("a scheduled tick", |s| s["daemon"]["next_sync"] != next0)
        .await;
    assert!(s["last_sync"].is_null(), "no sync ran: {s:#}");
    assert!(
        fake.requests().is_empty(),
        "no request reached the server: {:?}",
        kinds(&fake)
    );
    d.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Commands through the socket, and in-process
// ---------------------------------------------------------------------------------------------

fn ids_of_list(run: &crate::support::cli::Run) -> BTreeSet<String> {
    run.json()
        .as_array()
        .expect("list --json is an array")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn ids_of_jsonl(run: &crate::support::cli::Run) -> BTreeSet<String> {
    run.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON object per line");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// `status`, `list`, `show`, `export`, `import`, `auth` and `sync` from the real binary reach
/// the in-process daemon through its socket (they could not open the archive it holds), and
/// run in-process once it stopped; a second `convos run` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_serves_the_commands_through_its_socket_and_they_work_without_it() {
    let fake = fake_with(2).await;
    let w = DaemonWorld::new();
    w.cli
        .write_config(&format!("[api]\nbase_url = \"{}\"\n", fake.base_url()));
    let sample = sample_export(&w.cli.inputs());
    let sample_ids: BTreeSet<String> = SAMPLE_CONVERSATION_IDS
        .iter()
        .map(|s| s.to_string())
        .collect();

    let s = w.run(&["status", "--json"]).await.ok().json();
    assert_eq!(s["running"], false, "{s:#}");
    assert!(s["daemon"].is_null(), "{s:#}");

    let (loaded, platform) = w.load(&[]);
    let paths = loaded.paths.clone();
    let d = InProcess::start(loaded, platform).await;

    let s = w.run(&["status", "--json"]).await.ok().json();
    assert_eq!(s["running"], true, "{s:#}");
    assert_eq!(s["daemon"]["pid"], std::process::id(), "{s:#}");
    assert!(s["daemon"]["uptime_secs"].is_u64(), "{s:#}");
    assert_eq!(
        s["daemon"]["watching"],
        serde_json::json!([w.watch.display().to_string()]),
        "{s:#}"
    );
    let text = w.run(&["status"]).await.ok().stdout.clone();
    assert!(
        text.contains(&format!(
            "daemon:       running (pid {}",
            std::process::id()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("watching:     {}", w.watch.display())),
        "{text}"
    );
    assert!(text.contains("next sync:    20"), "a time: {text}");
    assert!(text.contains("credentials:  none"), "{text}");

    // Reading and importing through the daemon.
    let r = w.run(&["import", sample.to_str().expect("utf-8")]).await;
    r.ok();
    assert!(r.stdout.contains("5 new"), "{}", r.stdout);
    assert_eq!(
        ids_of_list(w.run(&["list", "--json"]).await.ok()),
        sample_ids
    );
    let r = w.run(&["export", "--format", "jsonl", "--out", "-"]).await;
    assert_eq!(ids_of_jsonl(r.ok()), sample_ids);
    let r = w.run(&["show", SAMPLE_CONVERSATION_IDS[0]]).await;
    assert!(r.ok().stdout.contains("Trip to Lisbon"), "{}", r.stdout);

    // A second daemon for the same data dir is refused at once.
    let r = w.run(&["run"]).await;
    r.expect_code(1);
    assert!(
        r.stderr.contains("already running")
            && r.stderr.contains(&format!("(pid {})", std::process::id())),
        "{}",
        r.stderr
    );

    // `auth` goes through the daemon, which verifies and stores the session (0600)…
    assert!(fake.requests().is_empty(), "{:?}", kinds(&fake));
    let r = w.run_with_stdin(&["auth", "--token-stdin"], TOKEN).await;
    r.ok();
    assert!(
        r.stdout.contains("the running daemon uses it now"),
        "{}",
        r.stdout
    );
    assert_eq!(mode_of(&paths.credentials), 0o600);
    assert!(fake.count(RouteKind::Session) >= 1);
    let text = w.run(&["status"]).await.ok().stdout.clone();
    assert!(
        text.contains("credentials:  valid, access token expires 20"),
        "{text}"
    );

    // …and `sync` runs the daemon's sync job with it.
    let r = w.run(&["sync"]).await;
    r.ok();
    assert!(r.stdout.contains("2 new"), "{}", r.stdout);
    assert!(fake.count(RouteKind::List) >= 1);
    let s = d.status().await;
    assert_eq!(conversations(&s), 7, "{s:#}");
    d.stop().await;

    // Without the daemon the same commands run in-process.
    let s = w.run(&["status", "--json"]).await.ok().json();
    assert_eq!(s["running"], false, "{s:#}");
    assert!(s["daemon"].is_null(), "{s:#}");
    assert_eq!(conversations(&s), 7, "{s:#}");
    let mut all = sample_ids.clone();
    all.extend(["conv-0".to_owned(), "conv-1".to_owned()]);
    assert_eq!(ids_of_list(w.run(&["list", "--json"]).await.ok()), all);
    let r = w.run(&["export", "--format", "jsonl", "--out", "-"]).await;
    assert_eq!(ids_of_jsonl(r.ok()), all);
    let r = w.run(&["show", "conv-1"]).await;
    assert!(r.ok().stdout.contains("Remote 1"), "{}", r.stdout);
    let r = w.run(&["import", sample.to_str().expect("utf-8")]).await;
    assert!(r.ok().stdout.contains("already imported"), "{}", r.stdout);
    fake.touch("conv-0", 1.7e9 + 900.0);
    let r = w.run(&["sync"]).await;
    assert!(r.ok().stdout.contains("1 updated"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// The real binary under `convos run`
// ---------------------------------------------------------------------------------------------

/// `convos run` for the world, watching its folder with the short settle period, with extra
/// variables.
fn start_binary(w: &DaemonWorld, vars: &[(&str, &OsStr)]) -> BinDaemon {
    w.cli
        .write_config(&format!("[watch]\nsettle_secs = {SETTLE_SECS}\n"));
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WATCH_DIRS", &w.watch);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.arg("run");
    let mut d = BinDaemon::spawn(cmd);
    d.wait_log("running (pid");
    d
}

fn archive_dir(w: &DaemonWorld) -> PathBuf {
    w.cli.data_dir.join("archive")
}

fn socket(w: &DaemonWorld) -> PathBuf {
    w.load(&[]).0.paths.socket
}

/// Waits until the archive has grown by a megabyte since `baseline`: conversations of the
/// big export are being written (the import is under way, and far from done: the whole
/// export stores many megabytes).
fn wait_import_under_way(d: &mut BinDaemon, archive: &Path, baseline: u64) {
    wait_until(
        "the import to start writing conversations",
        DEADLINE,
        || (dir_size(archive) > baseline + 1_000_000).then_some(()),
        || {
            format!(
                "archive size {}\n--- stderr ---\n{}",
                dir_size(archive),
                d.log()
            )
        },
    );
    assert!(
        !d.log().contains("imported "),
        "the import finished before it could be interrupted; make big_export() bigger\n{}",
        d.log()
    );
}

/// Sends `sig` and waits for a clean exit (code 0) within [`EXIT_WITHIN`].
fn stop_binary(d: &mut BinDaemon, sig: libc::c_int) {
    d.signal(sig);
    let sent = Instant::now();
    let status = d
        .wait_exit(DEADLINE)
        .unwrap_or_else(|| panic!("convos run did not exit after signal {sig}\n{}", d.log()));
    let took = sent.elapsed();
    eprintln!("convos run exited {took:?} after signal {sig}");
    assert_eq!(
        status.code(),
        Some(0),
        "convos run exits 0 after signal {sig}\n--- stderr ---\n{}",
        d.log()
    );
    assert!(
        took < EXIT_WITHIN,
        "convos run took {took:?} to exit after signal {sig}\n{}",
        d.log()
    );
    assert!(d.log().contains("stopped"), "{}", d.log());
}

/// `status --json` from the binary; call only while the daemon answers on its socket (else
/// it would open the archive itself).
fn binary_status(w: &DaemonWorld) -> Value {
    w.cli.run(["status", "--json"]).ok().json()
}

fn interrupted_count(ids: &[String]) -> usize {
    let n = ids.len();
    eprintln!("the interrupted import left {n} conversations");
    assert!(
        n < BIG_CONVERSATIONS,
        "the interrupted import stored only part of the export"
    );
    n
}

fn assert_all_big(ids: &[String]) {
    let have: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let missing: Vec<String> = (0..BIG_CONVERSATIONS)
        .map(big_id)
        .filter(|id| !have.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(ids.len(), BIG_CONVERSATIONS);
}

/// Drops the big export into the watched folder as a browser would (a rename at the end).
fn drop_big_export(w: &DaemonWorld) -> PathBuf {
    let part = w.watch.join("big.zip.crdownload");
    fs::copy(big_export(), &part).expect("copying the big export");
    let path = w.watch.join("big.zip");
    fs::rename(&part, &path).expect("renaming the download");
    path
}

#[test]
fn run_exits_0_soon_after_sigterm_mid_import_and_a_reimport_completes_it() {
    let big = big_export();
    let w = DaemonWorld::new();
    let mut d = start_binary(&w, &[]);
    let archive = archive_dir(&w);
    let baseline = dir_size(&archive);
    let path = drop_big_export(&w);
    d.wait_log("new export in the watched folder");
    wait_import_under_way(&mut d, &archive, baseline);

    stop_binary(&mut d, libc::SIGTERM);
    assert!(d.log().contains("SIGTERM received"), "{}", d.log());
    assert!(d.log().contains("interrupted import of"), "{}", d.log());
    assert!(!socket(&w).exists(), "the socket is removed on exit");

    // A consistent archive holding part of the export…
    let n = interrupted_count(&check_archive(&archive));
    // …and the file was not recorded as imported: importing it again completes it.
    let r = w.cli.run(["import".as_ref(), path.as_os_str()]);
    r.ok();
    assert!(
        r.stdout.contains(&format!(
            "{} new, 0 updated, {n} unchanged",
            BIG_CONVERSATIONS - n
        )),
        "{}",
        r.stdout
    );
    assert_all_big(&check_archive(&archive));
    assert_eq!(
        fs::read(&path).expect("big.zip"),
        fs::read(big).expect("big")
    );
}

#[test]
fn run_exits_0_soon_after_sigterm_during_the_start_up_import_and_a_restart_completes_it() {
    let w = DaemonWorld::new();
    let input = w.cli.inputs().join("big.zip");
    fs::copy(big_export(), &input).expect("copying the big export");
    let archive = archive_dir(&w);
    // `CONVOS_IMPORT_PATHS` is imported at start, before the daemon reports it is running.
    w.cli
        .write_config(&format!("[watch]\nsettle_secs = {SETTLE_SECS}\n"));
    let mut cmd = w.cli.command();
    cmd.env("CONVOS_WATCH_DIRS", &w.watch)
        .env("CONVOS_IMPORT_PATHS", &input)
        .arg("run");
    let mut d = BinDaemon::spawn(cmd);
    d.wait_log("importing 1 file(s)");
    let baseline = dir_size(&archive);
    wait_import_under_way(&mut d, &archive, baseline);

    stop_binary(&mut d, libc::SIGTERM);
    assert!(d.log().contains("interrupted import of"), "{}", d.log());
    let n = interrupted_count(&check_archive(&archive));

    // A restart imports the file again (it was not recorded as imported) and completes it.
    let mut d = start_binary(&w, &[("CONVOS_IMPORT_PATHS", input.as_os_str())]);
    let s = binary_status(&w);
    assert_eq!(s["running"], true, "{s:#}");
    assert_eq!(conversations(&s), BIG_CONVERSATIONS as u64, "{s:#}");
    assert_eq!(
        s["last_import"]["files"][0]["new"],
        (BIG_CONVERSATIONS - n) as u64,
        "{s:#}"
    );
    stop_binary(&mut d, libc::SIGTERM);
    assert_all_big(&check_archive(&archive));
}

#[test]
fn run_killed_mid_import_leaves_an_archive_that_opens_and_a_restart_completes_it() {
    let w = DaemonWorld::new();
    let mut d = start_binary(&w, &[]);
    let archive = archive_dir(&w);
    let baseline = dir_size(&archive);
    drop_big_export(&w);
    d.wait_log("new export in the watched folder");
    wait_import_under_way(&mut d, &archive, baseline);

    d.signal(libc::SIGKILL);
    let status = d.wait_exit(DEADLINE).expect("killed");
    assert_eq!(status.code(), None, "killed by a signal");
    drop(d);
    // Whatever sled had flushed is readable; nothing half-written shows.
    let n = interrupted_count(&check_archive(&archive));

    // The restart's scan finds big.zip not recorded as imported and imports it again.
    let mut d = start_binary(&w, &[]);
    let s = wait_until(
        "the restarted daemon to complete the import",
        DEADLINE,
        || {
            let s = binary_status(&w);
            // The import is recorded for `status` just after its last conversation is in.
            (conversations(&s) == BIG_CONVERSATIONS as u64
                && s["last_import"]["files"][0]["skipped"].is_boolean())
            .then_some(s)
        },
        || d.log(),
    );
    let file = &s["last_import"]["files"][0];
    assert_eq!(file["skipped"], false, "{s:#}");
    assert!(file["error"].is_null(), "{s:#}");
    assert_eq!(
        file["new"].as_u64().expect("new") + file["unchanged"].as_u64().expect("unchanged"),
        BIG_CONVERSATIONS as u64,
        "{s:#}"
    );
    assert!(
        file["new"].as_u64().expect("new") >= (BIG_CONVERSATIONS - n) as u64,
        "{s:#}"
    );
    stop_binary(&mut d, libc::SIGTERM);
    assert_all_big(&check_archive(&archive));
}

#[test]
fn run_stops_cleanly_on_sigint_removes_its_socket_and_releases_the_lock() {
    let w = DaemonWorld::new();
    let sock = socket(&w);
    let mut d = start_binary(&w, &[]);
    assert!(
        sock.exists(),
        "the socket {} exists while running",
        sock.display()
    );
    assert_eq!(mode_of(&sock), 0o600);
    let s = binary_status(&w);
    assert_eq!(s["running"], true, "{s:#}");
    assert_eq!(s["daemon"]["pid"], d.pid(), "{s:#}");

    // A second instance is refused at once, naming the running one.
    let r = w.cli.run(["run"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("already running") && r.stderr.contains(&format!("(pid {})", d.pid())),
        "{}",
        r.stderr
    );

    stop_binary(&mut d, libc::SIGINT);
    assert!(d.log().contains("SIGINT received"), "{}", d.log());
    assert!(!sock.exists(), "the socket is removed on exit");
    let s = w.cli.run(["status", "--json"]).ok().json();
    assert_eq!(s["running"], false, "{s:#}");

    // The lock was released: a new daemon starts and serves.
    let mut d = start_binary(&w, &[]);
    let s = binary_status(&w);
    assert_eq!(s["daemon"]["pid"], d.pid(), "{s:#}");
    stop_binary(&mut d, libc::SIGTERM);
}

// ---------------------------------------------------------------------------------------------
// Issue 8: the control socket, a Downloads folder created later, private files
// ---------------------------------------------------------------------------------------------

/// A raw connection to the daemon's socket that has sent `request` (a JSON line).
fn connect_and_send(sock: &Path, request: &[u8]) -> std::os::unix::net::UnixStream {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connecting");
    s.write_all(request).expect("sending the request");
    s
}

/// The request line of `convos export --format jsonl`.
fn export_request() -> Vec<u8> {
    let req = convos::control::ControlRequest::Command(convos::control::Request::Export(
        convos::cli::ExportArgs {
            format: convos::cli::ExportFormat::Jsonl,
            out: "-".into(),
        },
    ));
    let mut line = serde_json::to_vec(&req).expect("json");
    line.push(b'\n');
    line
}

/// Reads frames until the exit frame; returns it.
fn read_exit(s: &mut std::os::unix::net::UnixStream) -> Value {
    use std::io::Read;
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).expect("a frame header");
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).expect("a frame");
        if head[0] == b'x' {
            return serde_json::from_slice(&payload).expect("the exit frame is JSON");
        }
    }
}

/// Clients that hang up mid-export (`convos export | head`, Ctrl-C), one that stops reading
/// (a paused pager) and one that never sends its request hold nothing up: the daemon goes on
/// serving, and SIGTERM stops it at once (no unit of work left to wait for). An oversized
/// request is refused with a usage error.
#[test]
fn run_stops_at_once_after_clients_hang_up_stall_or_say_nothing() {
    let w = DaemonWorld::new();
    // ≈ 7 MB of JSON lines: far more than the socket and the daemon's queue hold.
    w.cli
        .run([
            OsStr::new("import"),
            big_export().as_os_str(),
            other_big_export().as_os_str(),
        ])
        .ok();
    let mut d = start_binary(&w, &[]);
    let sock = socket(&w);
    for _ in 0..3 {
        use std::io::Read;
        let mut s = connect_and_send(&sock, &export_request());
        let mut head = [0u8; 5];
        s.read_exact(&mut head).expect("the export starts");
        assert_eq!(head[0], b'o');
        drop(s);
    }
    let stalled = connect_and_send(&sock, &export_request());
    let silent = connect_and_send(&sock, b"");

    let mut huge = vec![b' '; convos::control::MAX_REQUEST + 10];
    huge.push(b'\n');
    let mut s = connect_and_send(&sock, &huge);
    let exit = read_exit(&mut s);
    assert_eq!(exit["failure"], "usage", "{exit}");
    assert!(
        exit["error"]
            .as_str()
            .is_some_and(|e| e.contains("too large")),
        "{exit}"
    );

    let s = binary_status(&w);
    assert_eq!(conversations(&s), 2 * BIG_CONVERSATIONS as u64, "{s:#}");
    stop_binary(&mut d, libc::SIGTERM);
    assert!(
        !d.log().contains("work still running"),
        "a client's command held up the shutdown\n{}",
        d.log()
    );
    drop((stalled, silent));
}

/// A fresh account on a server: no user-dirs.dirs, no ~/Downloads yet, umask 022. The daemon
/// watches ~/Downloads all the same, says at start that it does not exist and how to choose
/// another folder, picks it up once created, and imports an export downloaded into it (whose
/// odd file name shows in the log without reaching the terminal raw). Everything it writes is
/// private.
#[test]
fn run_watches_home_downloads_once_it_is_created() {
    let w = DaemonWorld::new();
    let downloads = w.cli.root().join("home/Downloads");
    fs::remove_dir(&downloads).expect("no Downloads folder yet");
    w.cli.write_config(&format!(
        "[watch]\nsettle_secs = {SETTLE_SECS}\nrescan_secs = 1\n"
    ));
    let mut cmd = w.cli.command();
    cmd.arg("run");
    crate::support::cli::with_umask(&mut cmd, 0o022);
    let mut d = BinDaemon::spawn(cmd);
    d.wait_log("running (pid");
    assert!(
        d.log().contains(&format!(
            "watching {} (does not exist yet; watched once created); to watch another \
             folder, set `dirs` under [watch] in the config file, or CONVOS_WATCH_DIRS",
            downloads.display()
        )),
        "{}",
        d.log()
    );
    let s = binary_status(&w);
    assert_eq!(
        s["watch_dirs_missing"],
        serde_json::json!([downloads.display().to_string()]),
        "{s:#}"
    );

    fs::create_dir(&downloads).expect("creating ~/Downloads");
    d.wait_log(&format!("now watching {}", downloads.display()));
    let name = "chatgpt-export\u{1b}]52;c;aGk=\u{7}.zip";
    let zip = sample_export(&w.cli.inputs());
    let part = downloads.join(format!("{name}.crdownload"));
    fs::copy(&zip, &part).expect("downloading");
    fs::rename(&part, downloads.join(name)).expect("download complete");
    let s = wait_until(
        "the export downloaded into the new folder to be archived",
        DEADLINE,
        || {
            let s = binary_status(&w);
            (conversations(&s) == SAMPLE_CONVERSATION_IDS.len() as u64).then_some(s)
        },
        || d.log(),
    );
    assert_eq!(s["watch_dirs_missing"], serde_json::json!([]), "{s:#}");
    let text = w.cli.run(["status"]).ok().stdout.clone();
    assert!(
        text.contains(&format!("watching:     {}\n", downloads.display())),
        "{text}"
    );
    stop_binary(&mut d, libc::SIGTERM);
    let log = d.log();
    assert!(
        log.contains("new export in the watched folder") && log.contains("export␛]52;c;aGk=␇.zip"),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "raw controls in the log: {log:?}"
    );
    assert_eq!(
        crate::support::cli::mode(&w.cli.data_dir),
        0o700,
        "the data dir"
    );
    assert_eq!(
        crate::support::cli::shared_entries(&w.cli.data_dir),
        Vec::new(),
        "files the daemon wrote under umask 022"
    );
}
