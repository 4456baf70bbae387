//! The adaptive pacer and the engine against a stingy fake service under tokio's paused
//! clock (the fake reached in-process), so an hour of pacing takes milliseconds.

use crate::support::fake_server::RouteKind;
use crate::support::sync_env::{SyncEnv, now};
use convos::api::Client;
use convos::config::Pacing;
use convos::sync::SyncReport;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Listing times start here (2025-06-15T15:06:40Z).
const T0: f64 = 1_750_000_000.0;

/// A world whose service allows a bucket of 20 refilled at one a minute, and a client
/// configured as shipped (adaptive) but starting from that burst.
fn stingy(n: u32) -> SyncEnv {
    let mut env = SyncEnv::in_process();
    env.config.api.pacing = Pacing::Adaptive;
    env.config.api.burst = 20;
    env.config.api.refill_per_minute = 1.0;
    env.config.api.max_per_second = 2.0;
    env.config.api.rate_limit_base_secs = 5;
    env.config.api.rate_limit_max_secs = 900;
    env.fake.set_rate_limit(20, 1.0);
    for i in 0..n {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    env
}

fn spawn_run(env: &SyncEnv, client: &Arc<Client>) -> tokio::task::JoinHandle<SyncReport> {
    let (c, a, o) = (client.clone(), env.archive.clone(), env.opts(false));
    tokio::spawn(async move {
        convos::sync::sync_once(&c, &a, &o, now(), &AtomicBool::new(false)).await
    })
}

/// Successful detail fetches by conversation.
fn fetched(env: &SyncEnv) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in env.fake.requests() {
        if r.kind == RouteKind::Detail && r.status == Some(200) {
            let id = r.path.rsplit('/').next().unwrap_or_default().to_owned();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_backfill_killed_midway_resumes_without_a_second_burst_or_a_second_fetch() {
    let env = stingy(60);
    let client = Arc::new(env.client().await);
    let run = spawn_run(&env, &client);
    // Ten simulated minutes: the burst of 20, then about one a minute.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let before = env.archive.len();
    assert!((20..45).contains(&before), "{before} archived");
    // The process is killed: no end-of-run save.
    run.abort();
    let _ = run.await;
    drop(client);

    let mark = env.fake.requests().last().map(|r| r.seq).expect("requests");
    let client = Arc::new(env.client().await);
    let run = spawn_run(&env, &client);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let early: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.seq > mark && r.kind != RouteKind::Session)
        .collect();
    assert!(
        early.len() <= 3,
        "a restart must not burst again: {} requests in its first minute",
        early.len()
    );
    // Let it (and, if it stops on the service's 429s, the runs after it) finish.
    let mut report = run.await.expect("run");
    for _ in 0..20 {
        if env.archive.len() == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1800)).await;
        report = convos::sync::sync_once(
            &client,
            &env.archive,
            &env.opts(false),
            now(),
            &AtomicBool::new(false),
        )
        .await;
    }
    assert_eq!(env.archive.len(), 60, "{report:#?}");
    let fetched = fetched(&env);
    assert_eq!(fetched.len(), 60);
    assert!(
        fetched.values().all(|&n| n == 1),
        "fetched twice: {:?}",
        fetched.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // The rate was learnt, and a polite client does not hammer: few 429s in all.
    let served = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.kind != RouteKind::Session)
        .count();
    let limited = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert!(
        limited * 10 <= served,
        "{limited} 429s in {served} requests"
    );
    let saved = env.pace_state().expect("saved per account");
    let rate = saved.rate_per_sec.expect("a learnt rate");
    assert!(rate > 0.0 && rate <= 2.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_halves_the_rate_and_probes_after_five_seconds() {
    let env = stingy(0);
    env.fake.clear_rate_limit();
    // A service that refuses everything for a while, without Retry-After.
    env.fake.fail_always(
        crate::support::fake_server::Route::List,
        crate::support::fake_server::Fault::RateLimited { retry_after: None },
    );
    let client = Arc::new(env.client().await);
    let before = client.pacer().rate_per_minute();
    let run = spawn_run(&env, &client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lists = |env: &SyncEnv| {
        env.fake
            .requests()
            .iter()
            .filter(|r| r.kind == RouteKind::List)
            .map(|r| r.at)
            .collect::<Vec<_>>()
    };
    assert_eq!(lists(&env).len(), 1);
    let after = client.pacer().rate_per_minute();
    assert!(after <= before / 2.0 + 1e-9, "halved: {before} -> {after}");
    // The probe: not before 5 s (nor before a token at the halved rate: the budget
    // was emptied, so a service refilling once a minute is not probed every 5 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lists(&env).len(), 1, "no request before the probe delay");
    env.fake.clear_faults();
    let r = run.await.expect("run");
    assert!(r.stop.is_none(), "{r:#?}");
    // The refused page, the probe, and (the run lasted over a minute) the first page
    // read again at its end.
    let at = lists(&env);
    assert_eq!(at.len(), 3);
    assert!(
        at[1] - at[0] >= Duration::from_secs(5),
        "{:?}",
        at[1] - at[0]
    );
    assert_eq!(r.rate_limited, 1, "{r:#?}");
}

#[tokio::test(start_paused = true)]
async fn changes_made_during_a_long_run_are_caught_by_reading_the_first_page_again() {
    let env = stingy(30);
    let client = Arc::new(env.client().await);
    let run = spawn_run(&env, &client);
    // Two simulated minutes in, the burst is spent and the newest ones are archived;
    // the user goes on with one of them and starts a new one.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(env.record("c029").is_some());
    assert!(!run.is_finished());
    env.fake.touch("c029", T0 + 1000.0);
    env.put("fresh", T0 + 1001.0);
    let r = run.await.expect("run");
    assert!(r.stop.is_none(), "{r:#?}");
    assert_eq!(env.must("c029").summary.update_time, Some(T0 + 1000.0));
    assert!(env.record("fresh").is_some(), "{r:#?}");
    assert_eq!(env.archive.len(), 31);
    // Read once at the start, and once more at the end.
    let first_pages = env
        .fake
        .requests()
        .iter()
        .filter(|q| q.kind == RouteKind::List && q.query_param("offset").as_deref() == Some("0"))
        .count();
    assert_eq!(first_pages, 2);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_total_is_only_a_hint_paging_goes_by_the_rows_sent() {
    let env = SyncEnv::in_process();
    for i in 0..250 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    for total in [serde_json::json!(3), serde_json::json!(null)] {
        env.fake.set_list_total(total);
        let client = env.client().await;
        let r = env.sync_full(&client).await;
        assert!(r.stop.is_none(), "{r:#?}");
        assert_eq!(env.archive.len(), 250);
        assert!(env.fake.requests().iter().all(|q| {
            q.query
                .as_deref()
                .is_none_or(|q| !q.contains("order=created"))
        }));
    }
}

#[tokio::test(start_paused = true)]
async fn attachments_wait_for_the_pace_only_within_a_runs_allowance() {
    let mut env = SyncEnv::in_process();
    for i in 0..10 {
        let file_id = format!("file_000000{i:04}");
        let image = crate::support::fake_server::ImageAttachment {
            file_id: &file_id,
            name: "pic.png",
            mime: "image/png",
            size: 3,
        };
        env.fake.put_conversation(
            crate::support::fake_server::image_conversation_detail(
                &format!("c{i}"),
                "Pic",
                T0,
                T0 + f64::from(i),
                &image,
            ),
            Default::default(),
        );
        env.fake
            .put_file(&file_id, vec![1, 2, 3], "pic.png", "image/png");
    }
    let client = env.client().await;
    let mut opts = env.opts(false);
    opts.attachments = false;
    assert!(env.sync_with(&client, &opts).await.stop.is_none());
    drop(client);

    // Three requests (the session exchange and two listings), then one a minute: an
    // attachment (two requests) every two minutes, within the five minutes allowed.
    env.config.api.pacing = Pacing::Fixed;
    env.config.api.burst = 3;
    env.config.api.refill_per_minute = 1.0;
    let client = env.client().await;
    let start = tokio::time::Instant::now();
    let r = env.sync(&client).await;
    assert!(r.stop.is_none(), "{r:#?}");
    assert_eq!((r.attachments, r.attachments_left), (2, 8), "{r:#?}");
    assert!(
        start.elapsed() <= convos::sync::ATTACHMENT_WAIT,
        "{:?}",
        start.elapsed()
    );
}
