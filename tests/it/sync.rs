//! Acceptance tests of `convos sync` against the fake chatgpt.com (issue 3): request budgets,
//! listings, flags, deletions, failures and retries, rate limits, time formats, exports,
//! attachments, and a model-based property test. Issue 8: optional endpoints that degrade
//! instead of stopping a run, unreadable listing rows, bounded server numbers, pacing that
//! survives a restart, and conversations leaving projects. Every test asserts the requests the fake
//! server recorded, not just what convos reports.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use convos::api::pace::{self, PaceState};
use convos::ingest::{self, ImportOptions};
use convos::render::view;
use convos::sync::{StopReason, SyncReport, SyncState};
use serde_json::Value;

use crate::support::cli::CliEnv;
use crate::support::fake_server::{
    ConvOpts, FakeChatGpt, Fault, ImageAttachment, IsoFlavour, Route, RouteKind,
    conversation_detail, image_conversation_detail,
};
use crate::support::sync_env::{CREATED, SyncEnv, TOKEN, creds, now, run_cli};

/// A base update time (2025-06-15).
const T0: f64 = 1_750_000_000.0;

fn assert_clean(r: &SyncReport) {
    assert_eq!((r.failed, r.stop.as_ref()), (0, None), "{r:#?}");
}

/// Requests the fake answered with this status.
fn answered(env: &SyncEnv, status: u16) -> usize {
    env.fake
        .requests()
        .iter()
        .filter(|r| r.status == Some(status))
        .count()
}

fn project(id: &str) -> ConvOpts {
    ConvOpts {
        project: Some(id.to_owned()),
        ..ConvOpts::default()
    }
}

fn archived() -> ConvOpts {
    ConvOpts {
        archived: true,
        ..ConvOpts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_changed_costs_one_list_request_per_listing_and_no_detail() {
    let env = SyncEnv::start().await;
    for i in 0..6 {
        env.put(&format!("n{i}"), T0 + f64::from(i));
    }
    env.put_opts("a0", T0 + 10.0, archived());
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.listed, r.new), (7, 7), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 7);

    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.updated, r.unchanged), (0, 0, 7), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::List), 1);
    assert_eq!(env.fake.count(RouteKind::ArchivedList), 1);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    // Projects were walked on the first run; no session exchange is needed again.
    assert_eq!(env.fake.requests().len(), 2, "{:#?}", env.fake.requests());
    assert_eq!(r.requests, 2, "the report counts the same requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_of_n_changed_fetches_exactly_k_details_with_few_list_pages() {
    let env = SyncEnv::start().await;
    const N: u32 = 250;
    for i in 0..N {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, u64::from(N));
    // 250 items take 3 pages, 4 with the pages overlapping (offsets 0, 80, 160, 240).
    let lists = env.fake.count(RouteKind::List);
    assert!((3..=4).contains(&lists), "{lists} list requests");
    assert_eq!(env.fake.count(RouteKind::Detail), N as usize);

    // K = 130 changed, spread over all three pages of the original listing.
    let mut changed: Vec<u32> = (0..N).step_by(2).collect();
    changed.extend([1, 3, 5, 7, 9]);
    assert_eq!(changed.len(), 130);
    for (j, i) in changed.iter().enumerate() {
        env.fake
            .touch(&format!("c{i:03}"), T0 + 10_000.0 + j as f64);
    }
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.updated, r.new), (130, 0), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 130);
    for i in &changed {
        assert_eq!(env.fake.detail_count(&format!("c{i:03}")), 1);
    }
    let lists = env.fake.count(RouteKind::List);
    assert!(
        (2..=3).contains(&lists),
        "⌈130/100⌉ (+1) pages, got {lists}"
    );
    assert_eq!(env.fake.count(RouteKind::ArchivedList), 1);
    for i in &changed {
        let id = format!("c{i:03}");
        assert_eq!(
            env.must(&id).summary.update_time,
            Some(env.server_time(&id))
        );
    }

    // K = 3.
    for (j, i) in [17u32, 120, 248].iter().enumerate() {
        env.fake
            .touch(&format!("c{i:03}"), T0 + 20_000.0 + j as f64);
    }
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.updated, 3, "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 3);
    let lists = env.fake.count(RouteKind::List);
    assert!((1..=2).contains(&lists), "⌈3/100⌉ (+1) pages, got {lists}");
    assert_eq!(env.fake.count(RouteKind::ArchivedList), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_and_project_conversations_are_archived_with_project_names() {
    let env = SyncEnv::start().await;
    // Three projects: the sidebar pages by two, so the cursor is followed.
    env.fake.add_project("g-p-alpha", "Alpha");
    env.fake.add_project("g-p-beta", "Beta");
    env.fake.add_project("g-p-gamma", "Gamma");
    env.put("n1", T0 + 1.0);
    env.put("n2", T0 + 2.0);
    env.put_opts("a1", T0 + 3.0, archived());
    env.put_opts("p1", T0 + 4.0, project("g-p-alpha"));
    env.put_opts("p3", T0 + 5.0, project("g-p-gamma"));
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.listed, r.new), (5, 5), "{r:#?}");
    // Listed twice (main list with hide_snorlax=false and the project listing), fetched once.
    for id in ["n1", "n2", "a1", "p1", "p3"] {
        assert_eq!(env.fake.detail_count(id), 1, "{id}");
    }
    let lists: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| matches!(r.kind, RouteKind::List | RouteKind::ArchivedList))
        .collect();
    assert!(
        lists
            .iter()
            .all(|r| r.query_param("hide_snorlax").as_deref() == Some("false")),
        "{lists:#?}"
    );
    assert_eq!(
        env.fake.count(RouteKind::GizmoConversations),
        3,
        "one per project"
    );
    assert!(
        env.fake.count(RouteKind::Sidebar) >= 2,
        "both sidebar pages"
    );

    assert!(env.must("a1").is_archived());
    assert!(!env.must("n1").is_archived());
    for (id, name) in [("p1", Some("Alpha")), ("p3", Some("Gamma")), ("n1", None)] {
        assert_eq!(env.must(id).remote.project.as_deref(), name, "{id}");
        let stored = env.archive.get(id).expect("get").expect("stored");
        let v = view::build(&env.archive, &stored).expect("view");
        assert_eq!(v.project.as_deref(), name, "{id}");
    }
    let v = view::build(&env.archive, &env.archive.get("a1").unwrap().unwrap()).unwrap();
    assert!(v.is_archived);

    // Projects are walked once; later runs only list.
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    assert_eq!(env.fake.count(RouteKind::Sidebar), 0);
    assert_eq!(env.fake.count(RouteKind::GizmoConversations), 0);
    assert_eq!(env.fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_conversation_beyond_the_listing_walk_is_found_by_the_project_walk() {
    // The fake lists every project chat in the main list, so a project-only conversation
    // is simulated by an archive whose frontier stops the main walk after the first page
    // while projects have never been walked (e.g. state written before projects existed).
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-deep", "Deep");
    for i in 0..100 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    env.put_opts("deep", T0 - 500.0, project("g-p-deep"));
    env.archive
        .set_state(
            convos::sync::STATE_KEY,
            &SyncState {
                normal_frontier: Some(T0 + 1_000.0),
                ..SyncState::default()
            },
        )
        .unwrap();
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(
        env.fake.count(RouteKind::List),
        1,
        "the walk stopped at page one"
    );
    assert_eq!(env.fake.detail_count("deep"), 1);
    assert_eq!(env.must("deep").remote.project.as_deref(), Some("Deep"));
    assert!(env.state().projects_walked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_flipped_remotely_are_applied_without_a_detail_fetch() {
    let env = SyncEnv::start().await;
    env.put("n1", T0 + 1.0);
    env.put("n2", T0 + 2.0);
    env.put_opts("a1", T0 + 3.0, archived());
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    assert!(env.must("a1").is_archived());
    assert_eq!(env.must("n2").remote.is_starred, Some(false));

    env.fake.set_archived("n1", true);
    env.fake.set_starred("n2", true);
    env.fake.add_project("g-p-later", "Later");
    env.fake.set_project("n2", Some("g-p-later"));
    env.fake.set_archived("a1", false);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0, "flags need no fetch");
    assert_eq!((r.new, r.updated, r.flags_updated), (0, 0, 3), "{r:#?}");
    assert!(env.must("n1").is_archived());
    assert!(!env.must("a1").is_archived());
    let n2 = env.must("n2");
    assert_eq!(n2.remote.is_starred, Some(true));
    assert_eq!(n2.remote.project.as_deref(), Some("Later"));
    let v = view::build(&env.archive, &env.archive.get("n1").unwrap().unwrap()).unwrap();
    assert!(v.is_archived);
    let v = view::build(&env.archive, &env.archive.get("n2").unwrap().unwrap()).unwrap();
    assert_eq!(v.project.as_deref(), Some("Later"));

    // And back again.
    env.fake.set_archived("n1", false);
    env.fake.set_starred("n2", false);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    assert!(!env.must("n1").is_archived());
    assert_eq!(env.must("n2").remote.is_starred, Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_refreshes_flags_of_conversations_past_the_overlap() {
    // A normal run stops after the overlap; a flag flipped on an old conversation (no
    // update_time bump) is therefore picked up by `--full`, still without a detail fetch.
    let env = SyncEnv::start().await;
    for i in 0..125 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    env.fake.set_starred("c000", true);
    env.fake.set_archived("c001", true);
    env.fake.reset_counts();
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    assert_eq!(
        env.fake.count(RouteKind::List),
        2,
        "a full run walks every page"
    );
    assert_eq!(r.flags_updated, 2, "{r:#?}");
    assert_eq!(env.must("c000").remote.is_starred, Some(true));
    assert!(env.must("c001").is_archived());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_marks_remote_deletions_and_keeps_them_readable() {
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-x", "X");
    for i in 0..4 {
        env.put(&format!("n{i}"), T0 + f64::from(i));
    }
    env.put_opts("a1", T0 + 10.0, archived());
    env.put_opts("p1", T0 + 11.0, project("g-p-x"));
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    let before = env.stored_json("n2").expect("n2 stored");

    env.fake.delete("n2");
    env.fake.delete("a1");
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.deleted_remotely, 0, "a normal sync never marks deletions");
    assert!(!env.must("n2").deleted_remotely);
    assert!(!env.must("a1").deleted_remotely);

    env.fake.reset_counts();
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert!(r.full);
    assert_eq!(r.deleted_remotely, 2, "{r:#?}");
    // Nothing unchanged is fetched; each conversation no listing shows is asked for
    // once, and marked because its detail answers 404.
    let details: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.kind == RouteKind::Detail)
        .map(|r| (r.path.rsplit('/').next().unwrap().to_owned(), r.status))
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    for id in ["n2", "a1"] {
        assert!(details.contains(&(id.to_owned(), Some(404))), "{details:?}");
    }
    for id in ["n2", "a1"] {
        let stored = env.archive.get(id).unwrap().expect("kept");
        assert!(stored.record.deleted_remotely, "{id}");
        let v = view::build(&env.archive, &stored).expect("still readable");
        assert!(v.deleted_remotely);
        assert!(!v.messages.is_empty());
    }
    assert_eq!(env.stored_json("n2"), Some(before));
    for id in ["n0", "n1", "n3", "p1"] {
        assert!(!env.must(id).deleted_remotely, "{id}");
    }
    assert_eq!(env.archive.counts().unwrap().deleted_remotely, 2);

    // A second full run marks nothing new (and asks nothing again); a re-appearing one
    // is unmarked.
    env.fake.reset_counts();
    let r = env.sync_full(&client).await;
    assert_eq!(r.deleted_remotely, 0);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    env.put("n2", T0 + 2.0);
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert!(!env.must("n2").deleted_remotely);
    assert!(env.must("a1").deleted_remotely);
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert!(!env.must("n2").deleted_remotely);
    assert!(env.must("a1").deleted_remotely);
    assert_eq!(env.archive.len(), 6);
}

/// The frontier under page shifts: conversations above the walk's position leave the
/// listing between two pages (archived), so everything after them moves up by more
/// than the pages overlap. No conversation is skipped, and the walk is still
/// complete (its frontier advances).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_leaving_the_listing_mid_walk_make_no_other_one_skipped() {
    let env = SyncEnv::start().await;
    for i in 0..250 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    // Newest first: c249 at offset 0 … c150 at offset 99. Page two is held for a moment,
    // while three conversations of page one leave the listing.
    env.fake
        .push_fault(Route::List, Fault::Delay(Duration::from_millis(0)));
    env.fake
        .push_fault(Route::List, Fault::Delay(Duration::from_millis(400)));
    let client = std::sync::Arc::new(env.client().await);
    let (c, a, o) = (client.clone(), env.archive.clone(), env.opts(false));
    let run = tokio::spawn(async move {
        convos::sync::sync_once(&c, &a, &o, now(), &AtomicBool::new(false)).await
    });
    for _ in 0..500 {
        if env.fake.count(RouteKind::List) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(env.fake.count(RouteKind::Detail), 0, "listing comes first");
    for id in ["c249", "c248", "c200"] {
        env.fake.set_archived(id, true);
    }
    let r = run.await.unwrap();
    assert_clean(&r);
    // c149 and c148 moved from offsets 100 and 101 to 97 and 98: before page two's start
    // had it not read again from further up.
    for id in ["c147", "c148", "c149", "c150", "c000"] {
        assert!(env.record(id).is_some(), "{id} was skipped");
    }
    assert_eq!(env.archive.len(), 250);
    assert_eq!(r.failed, 0);
    let frontier = env.state().normal_frontier.expect("the walk was complete");
    assert!(frontier >= T0 + 247.0, "{frontier}");
    // Every request came before any fetch: the listing is walked first.
    let kinds: Vec<RouteKind> = env.fake.requests().iter().map(|r| r.kind).collect();
    let first_fetch = kinds
        .iter()
        .position(|k| matches!(k, RouteKind::Detail | RouteKind::Batch))
        .expect("fetches");
    assert!(
        kinds[first_fetch..]
            .iter()
            .all(|k| !matches!(k, RouteKind::List | RouteKind::ArchivedList)),
        "{kinds:?}"
    );
    // The moves themselves are picked up by the next run.
    assert_clean(&env.sync(&client).await);
    assert!(env.must("c249").is_archived());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detail_failing_twice_then_succeeding_is_archived_in_the_same_run() {
    let env = SyncEnv::start().await;
    env.put("x", T0 + 1.0);
    env.put("y", T0 + 2.0);
    env.put("z", T0 + 3.0);
    env.fake
        .push_fault(Route::Detail("x".into()), Fault::Status(500));
    env.fake
        .push_fault(Route::Detail("x".into()), Fault::Status(500));
    // Edge errors come as Cloudflare HTML pages; they are retried just the same.
    env.fake
        .push_fault(Route::Detail("y".into()), Fault::Status(502));
    env.fake
        .push_fault(Route::Detail("y".into()), Fault::Status(503));
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 3);
    assert_eq!(env.fake.detail_count("x"), 3);
    assert_eq!(env.fake.detail_count("y"), 3);
    assert_eq!(env.fake.detail_count("z"), 1);
    assert_eq!(env.stored_json("x"), env.fake.conversation("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detail_failing_all_run_holds_the_frontier_and_is_fetched_next_run() {
    let env = SyncEnv::start().await;
    // 150 conversations: the failing one sits on the second page, which a next run would not
    // reach if the frontier had moved past it.
    for i in 0..150 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    let bad = "c010";
    env.fake
        .fail_always(Route::Detail(bad.into()), Fault::Status(500));
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_eq!(r.stop, None);
    assert_eq!((r.new, r.failed), (149, 1), "{r:#?}");
    assert!(r.failures[0].contains(bad), "{:?}", r.failures);
    assert_eq!(
        env.fake.detail_count(bad),
        1 + env.config.api.retries as usize,
        "retried a few times, then left for the next run"
    );
    assert!(env.record(bad).is_none());
    assert_eq!(
        env.state().normal_frontier,
        None,
        "the frontier only advances once every fetch succeeded"
    );

    env.fake.clear_faults();
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.updated), (1, 0), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 1);
    assert_eq!(env.fake.detail_count(bad), 1);
    assert_eq!(env.must(bad).summary.update_time, Some(T0 + 10.0));
    assert!(env.state().normal_frontier.unwrap() >= T0 + 149.0);

    // And the run after that is back to one list request.
    env.fake.reset_counts();
    assert_clean(&env.sync(&client).await);
    assert_eq!(env.fake.count(RouteKind::List), 1);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);

    // With a frontier: a changed conversation that fails holds it where it was, though
    // another changed one succeeded, so the next run lists the failed one again.
    let held = env.state().normal_frontier.expect("a frontier");
    env.fake.touch(bad, T0 + 500.0);
    env.fake.touch("c011", T0 + 501.0);
    env.fake
        .fail_always(Route::Detail(bad.into()), Fault::Status(500));
    let r = env.sync(&client).await;
    assert_eq!((r.updated, r.failed), (1, 1), "{r:#?}");
    assert_eq!(env.state().normal_frontier, Some(held));
    env.fake.clear_faults();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.updated, 1, "{r:#?}");
    assert_eq!(env.must(bad).summary.update_time, Some(T0 + 500.0));
    assert!(env.state().normal_frontier.unwrap() >= T0 + 501.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_detail_is_skipped_for_the_run_and_retried_next_run() {
    let env = SyncEnv::start().await;
    env.put("gone", T0 + 5.0);
    env.put("ok", T0 + 1.0);
    env.fake
        .push_fault(Route::Detail("gone".into()), Fault::NotFound);
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_eq!(r.stop, None);
    assert_eq!((r.new, r.failed), (1, 1), "{r:#?}");
    assert!(r.failures[0].contains("gone") && r.failures[0].contains("404"));
    assert_eq!(
        env.fake.detail_count("gone"),
        1,
        "a 404 is not retried in the run"
    );
    assert!(env.record("gone").is_none());

    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 1);
    assert_eq!(env.fake.detail_count("gone"), 1);
    assert!(env.record("gone").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_waits_and_succeeds() {
    let env = SyncEnv::start().await;
    env.put("x", T0);
    env.fake.push_fault(
        Route::Detail("x".into()),
        Fault::RateLimited {
            retry_after: Some(1),
        },
    );
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 1);
    assert_eq!(env.fake.detail_count("x"), 2);
    assert_eq!(answered(&env, 429), 1);
    let pace: PaceState = env.pace_state().expect("saved");
    assert_eq!(pace.consecutive_429, 0, "a success resets the backoff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_backs_off_and_succeeds() {
    let env = SyncEnv::start().await;
    assert_eq!(env.config.api.rate_limit_base_secs, 1);
    env.put("x", T0);
    env.put("y", T0 + 1.0);
    env.fake
        .push_fault(Route::List, Fault::RateLimited { retry_after: None });
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 2);
    assert_eq!(env.fake.count(RouteKind::List), 2);
    assert_eq!(answered(&env, 429), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_cooldown_that_ended_the_run_survives_a_restart() {
    let env = SyncEnv::start().await;
    env.put("x", T0);
    // Three 429s that ask for no wait and a fourth asking for an hour: the call gives up.
    for _ in 0..3 {
        env.fake.push_fault(
            Route::List,
            Fault::RateLimited {
                retry_after: Some(0),
            },
        );
    }
    env.fake.push_fault(
        Route::List,
        Fault::RateLimited {
            retry_after: Some(3600),
        },
    );
    let client = env.client().await;
    let r = env.sync(&client).await;
    let err = r.stop.clone().expect("the run stops").to_string();
    assert!(err.contains("429") && err.contains("3600"), "{err}");
    assert_eq!(env.fake.count(RouteKind::List), 4);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    let saved: PaceState = env.pace_state().expect("saved");
    assert!(saved.cooldown_until.expect("cooldown saved") > now() + 3500.0);
    drop(client);

    // A restart: a new client from the same archive sends nothing before the cooldown ends.
    env.fake.reset_counts();
    let client = env.client().await;
    assert!(client.pacer().wait_hint() > Duration::from_secs(3500));
    let cancel = AtomicBool::new(false);
    let opts = env.opts(false);
    let sync = convos::sync::sync_once(&client, &env.archive, &opts, now(), &cancel);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sync)
            .await
            .is_err(),
        "the sync waits for the cooldown"
    );
    assert!(env.fake.requests().is_empty(), "{:#?}", env.fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_cooldown_survives_a_restart_during_the_wait() {
    let mut env = SyncEnv::start().await;
    // Ten minutes: waited out within the run (a wait beyond the longest probe, 15
    // minutes by default, ends the run instead).
    env.config.api.rate_limit_max_secs = 900;
    env.put("x", T0);
    env.fake.push_fault(
        Route::List,
        Fault::RateLimited {
            retry_after: Some(600),
        },
    );
    let client = std::sync::Arc::new(env.client().await);
    let (c, a, o) = (client.clone(), env.archive.clone(), env.opts(false));
    // The process is killed while it waits out the ten minutes.
    let run = tokio::spawn(async move {
        let cancel = AtomicBool::new(false);
        convos::sync::sync_once(&c, &a, &o, now(), &cancel).await
    });
    for _ in 0..200 {
        if env.fake.count(RouteKind::List) > 0 && client.pacer().wait_hint() > Duration::ZERO {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.pacer().wait_hint() > Duration::from_secs(500));
    assert!(!run.is_finished(), "the run waits out the cooldown");
    run.abort();
    let _ = run.await;
    drop(client);

    env.fake.reset_counts();
    let client = env.client().await;
    assert!(
        client.pacer().wait_hint() > Duration::from_secs(500),
        "the cooldown must be in the archive as soon as the 429 arrives"
    );
    assert!(env.fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_non_json_bodies_are_retried_and_never_stored() {
    let env = SyncEnv::start().await;
    env.put("x", T0 + 1.0);
    env.put("y", T0 + 2.0);
    env.put("z", T0 + 3.0);
    env.put("w", T0 + 4.0);
    env.fake
        .push_fault(Route::Detail("x".into()), Fault::TruncatedJson);
    env.fake
        .push_fault(Route::Detail("x".into()), Fault::NonJson);
    env.fake.push_fault(Route::List, Fault::TruncatedJson);
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 4);
    assert_eq!(env.fake.detail_count("x"), 3);
    assert_eq!(
        env.fake.count(RouteKind::List),
        2,
        "a broken list page is retried"
    );
    assert_eq!(env.stored_json("x"), env.fake.conversation("x"));

    // Persistent breakage: new conversations are not stored, updated ones keep the old version.
    env.put("y2", T0 + 5.0);
    env.fake.touch("w", T0 + 50.0);
    let old_w = env.stored_json("w").unwrap();
    env.fake
        .fail_always(Route::Detail("y2".into()), Fault::TruncatedJson);
    env.fake
        .fail_always(Route::Detail("w".into()), Fault::NonJson);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_eq!(r.stop, None);
    assert_eq!(r.failed, 2, "{r:#?}");
    let tries = 1 + env.config.api.retries as usize;
    assert_eq!(env.fake.detail_count("y2"), tries);
    assert_eq!(env.fake.detail_count("w"), tries);
    assert!(env.record("y2").is_none());
    assert!(env.archive.get("y2").unwrap().is_none());
    assert_eq!(env.stored_json("w"), Some(old_w));
    assert_eq!(env.must("w").summary.update_time, Some(T0 + 4.0));

    env.fake.clear_faults();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.updated), (1, 1), "{r:#?}");
    assert_eq!(env.stored_json("y2"), env.fake.conversation("y2"));
    assert_eq!(env.must("w").summary.update_time, Some(T0 + 50.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudflare_challenge_ends_the_run_with_an_actionable_error() {
    for (fault, kind) in [
        (Fault::Challenge, "Cloudflare challenge page"),
        (Fault::ChallengeNoHeader, "HTML page"),
    ] {
        let env = SyncEnv::start().await;
        for i in 0..4 {
            env.put(&format!("c{i}"), T0 + f64::from(i));
        }
        let client = env.client().await;
        assert_clean(&env.sync(&client).await);
        let before: Vec<_> = (0..4)
            .map(|i| env.stored_json(&format!("c{i}")).unwrap())
            .collect();
        env.fake.touch("c0", T0 + 100.0);
        env.fake.touch("c1", T0 + 90.0);
        env.fake
            .fail_always(Route::Detail("c0".into()), fault.clone());
        env.fake.reset_counts();
        let r = env.sync(&client).await;
        let err = r.stop.clone().expect("the run stops").to_string();
        for needle in ["403", kind, "bot protection", "convos auth", "browser"] {
            assert!(err.contains(needle), "{needle:?} missing from: {err}");
        }
        assert_eq!(env.fake.detail_count("c0"), 1, "a challenge is not retried");
        assert_eq!(env.fake.detail_count("c1"), 0, "the run stops at once");
        let last = env.fake.requests().last().cloned().expect("requests");
        assert_eq!(
            last.status,
            Some(403),
            "nothing after the challenge: {last:?}"
        );
        for (i, b) in before.iter().enumerate() {
            let id = format!("c{i}");
            assert_eq!(env.stored_json(&id).as_ref(), Some(b), "{id} untouched");
        }

        env.fake.clear_faults();
        env.fake.reset_counts();
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.updated, 2, "both are fetched once the challenge is gone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_time_formats_and_skew_never_cause_refetches() {
    for flavour in [IsoFlavour::Z, IsoFlavour::PlusZero, IsoFlavour::Naive] {
        for skew in [3.0, -2.5, 30.0] {
            let env = SyncEnv::start().await;
            env.fake.set_iso_flavour(flavour);
            env.fake.set_list_time_skew(skew);
            for i in 0..5 {
                env.put(&format!("c{i}"), T0 + f64::from(i) * 7.25 + 0.123_456);
            }
            let client = env.client().await;
            let r = env.sync(&client).await;
            assert_clean(&r);
            assert_eq!(r.new, 5);
            env.fake.reset_counts();
            let r = env.sync(&client).await;
            assert_clean(&r);
            assert_eq!(
                env.fake.count(RouteKind::Detail),
                0,
                "{flavour:?} skew {skew}: {r:#?}"
            );
            env.fake.touch("c2", T0 + 1_000.25);
            env.fake.reset_counts();
            let r = env.sync(&client).await;
            assert_eq!(
                (r.updated, env.fake.count(RouteKind::Detail)),
                (1, 1),
                "{flavour:?} skew {skew}: {r:#?}"
            );
            env.fake.reset_counts();
            env.sync(&client).await;
            assert_eq!(env.fake.count(RouteKind::Detail), 0, "{flavour:?} {skew}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_conversation_is_fetched_only_when_the_server_has_a_newer_version() {
    let env = SyncEnv::start().await;
    // Listing and detail times of one version differ by a few seconds (within tolerance).
    env.fake.set_list_time_skew(3.0);
    assert!(env.config.sync.time_tolerance_secs >= 3.0);
    env.put("same", T0 + 1.0);
    env.put("newer", T0 + 2.0);
    env.put("only-remote", T0 + 3.0);
    let export: Vec<Value> = ["same", "newer"]
        .iter()
        .map(|id| env.fake.conversation(id).unwrap())
        .collect();
    env.fake.touch("newer", T0 + 500.0);
    let file = env.root().join("conversations.json");
    std::fs::write(&file, serde_json::to_vec(&export).unwrap()).unwrap();
    let report = ingest::import_path(
        &env.archive,
        &file,
        &ImportOptions::default(),
        &AtomicBool::new(false),
    );
    assert!(!report.failed(), "{report:#?}");
    assert_eq!(report.new, 2);

    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(
        env.fake.detail_count("same"),
        0,
        "the export already holds it"
    );
    assert_eq!(env.fake.detail_count("newer"), 1);
    assert_eq!(env.fake.detail_count("only-remote"), 1);
    assert_eq!((r.new, r.updated), (1, 1), "{r:#?}");
    assert_eq!(env.must("newer").summary.update_time, Some(T0 + 500.0));
    assert!(
        env.must("same").remote.list_update_time.is_some(),
        "the listing time is remembered for the next comparison"
    );

    env.fake.reset_counts();
    assert_clean(&env.sync(&client).await);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_stored_and_missing_ones_are_backed_off() {
    use sha2::Digest;
    let env = SyncEnv::start().await;
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let image = ImageAttachment {
        file_id: "file_00000000aaaa",
        name: "cat.png",
        mime: "image/png",
        size: bytes.len() as u64,
    };
    env.fake.put_conversation(
        image_conversation_detail("img", "Cat", CREATED, T0 + 1.0, &image),
        ConvOpts::default(),
    );
    env.fake
        .put_file(image.file_id, bytes.clone(), image.name, image.mime);
    let missing = ImageAttachment {
        file_id: "file_00000000bbbb",
        name: "lost.png",
        mime: "image/png",
        size: 10,
    };
    env.fake.put_conversation(
        image_conversation_detail("lost", "Lost", CREATED, T0 + 2.0, &missing),
        ConvOpts::default(),
    );
    let client = env.client().await;
    let t = now();
    let opts = env.opts(false);
    let cancel = AtomicBool::new(false);
    let r = convos::sync::sync_once(&client, &env.archive, &opts, t, &cancel).await;
    assert_clean(&r);
    assert_eq!(
        r.new, 2,
        "a missing attachment never blocks its conversation"
    );
    assert_eq!((r.attachments, r.attachments_failed), (1, 1), "{r:#?}");
    let rec = env.archive.file(image.file_id).unwrap().expect("stored");
    let sha = convos::util::hex(&sha2::Sha256::digest(&bytes));
    assert_eq!(rec.sha256, sha);
    assert_eq!(rec.size, bytes.len() as u64);
    assert_eq!(std::fs::read(env.archive.blob_path(&sha)).unwrap(), bytes);
    assert_eq!(env.fake.count(RouteKind::FileBytes), 1);
    assert!(env.archive.file(missing.file_id).unwrap().is_none());
    assert_eq!(env.state().file_failures[missing.file_id].count, 1);

    // The next run does not ask again right away.
    env.fake.reset_counts();
    let r = convos::sync::sync_once(&client, &env.archive, &opts, t + 60.0, &cancel).await;
    assert_clean(&r);
    assert_eq!((r.attachments, r.attachments_failed), (0, 0));
    assert_eq!(env.fake.count(RouteKind::FileDownload), 0);

    // After the backoff (a day) it does, and once the file is there it is stored.
    env.fake.reset_counts();
    let r = convos::sync::sync_once(&client, &env.archive, &opts, t + 86_401.0, &cancel).await;
    assert_eq!(r.attachments_failed, 1);
    assert_eq!(env.fake.count(RouteKind::FileDownload), 1);
    env.fake.put_file(
        missing.file_id,
        b"late bytes".to_vec(),
        "lost.png",
        "image/png",
    );
    let r = convos::sync::sync_once(&client, &env.archive, &opts, t + 86_402.0, &cancel).await;
    assert_eq!(r.attachments, 0, "two failures back off two days");
    let r =
        convos::sync::sync_once(&client, &env.archive, &opts, t + 4.0 * 86_400.0, &cancel).await;
    assert_eq!(r.attachments, 1);
    assert!(env.archive.file(missing.file_id).unwrap().is_some());
    assert!(env.state().file_failures.is_empty());
}

#[test]
fn cli_sync_imports_the_configured_paths_first_then_prints_counts() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    for (id, t) in [
        ("imp-a", T0 + 1.0),
        ("imp-b", T0 + 2.0),
        ("remote", T0 + 3.0),
        ("flaky", T0 + 4.0),
    ] {
        fake.put_conversation(conversation_detail(id, id, CREATED, t), ConvOpts::default());
    }
    // One conversation answers 404 once: the run says so and exits 1, the next one fetches it.
    fake.push_fault(Route::Detail("flaky".into()), Fault::NotFound);
    let cli = CliEnv::new();
    let exports = cli.root().join("home/exports");
    std::fs::create_dir_all(&exports).unwrap();
    let write = |path: &std::path::Path, id: &str| {
        let body = serde_json::to_vec(&[fake.conversation(id).unwrap()]).unwrap();
        std::fs::write(path, body).unwrap();
    };
    write(&exports.join("one.json"), "imp-a");
    let two = cli.inputs().join("two.json");
    write(&two, "imp-b");
    creds(TOKEN)
        .save(&cli.data_dir.join("credentials.json"))
        .unwrap();
    let paths = format!("~/exports/one.json, {}", two.display());
    let env = [("CONVOS_IMPORT_PATHS", paths.as_str())];

    let run = run_cli(&cli, &fake, &["sync"], None, &env);
    run.expect_code(1);
    assert!(run.stdout.contains("failed: flaky"), "{run:?}");
    assert!(run.stderr.contains("retried next run"), "{run:?}");
    let out = &run.stdout;
    let one = out.find("one.json: 1 new").expect(out);
    let two_at = out.find("two.json: 1 new").expect(out);
    let counts = out
        .find("sync: 4 listed, 1 new, 0 updated, 2 unchanged, 1 failed")
        .expect(out);
    assert!(
        one < counts && two_at < counts,
        "imports come first:\n{out}"
    );
    assert_eq!(fake.detail_count("imp-a"), 0, "imported, so not fetched");
    assert_eq!(fake.detail_count("imp-b"), 0);
    assert_eq!(fake.detail_count("remote"), 1);
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));

    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["sync"], None, &env);
    run.ok();
    assert!(run.stdout.contains("already imported"), "{run:?}");
    assert!(
        run.stdout.contains("1 new, 0 updated, 3 unchanged"),
        "{run:?}"
    );
    assert_eq!(fake.count(RouteKind::Detail), 1);
    assert_eq!(fake.detail_count("flaky"), 1);
    fake.reset_counts();
    let run = run_cli(&cli, &fake, &["sync"], None, &env);
    run.ok();
    assert!(
        run.stdout.contains("0 new, 0 updated, 4 unchanged"),
        "{run:?}"
    );
    assert_eq!(fake.count(RouteKind::Detail), 0);
    let list = cli.run(["list", "--json"]);
    list.ok();
    for id in ["imp-a", "imp-b", "remote", "flaky"] {
        assert!(list.stdout.contains(id), "{list:?}");
    }
}

// ---- model-based property test ---------------------------------------------------------------

mod model {
    //! Random remote histories interleaved with syncs. The fake server is the truth; the model
    //! tracks what was deleted and which conversations a `--full` run must have marked.

    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Clone, Debug)]
    enum Broken {
        Server,
        NotFound,
        Truncated,
    }

    #[derive(Clone, Debug)]
    enum Op {
        Create {
            archived: bool,
        },
        Touch(usize),
        Archive(usize, bool),
        Delete(usize),
        /// A sync; the fault hits one of the oldest conversations (index into ids by age),
        /// which in big cases sit on the listing's second page.
        Sync {
            full: bool,
            fault: Option<(usize, Broken)>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let broken = prop_oneof![
            Just(Broken::Server),
            Just(Broken::NotFound),
            Just(Broken::Truncated)
        ];
        prop_oneof![
            3 => prop::bool::weighted(0.25).prop_map(|archived| Op::Create { archived }),
            3 => any::<usize>().prop_map(Op::Touch),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(i, a)| Op::Archive(i, a)),
            2 => any::<usize>().prop_map(Op::Delete),
            4 => (any::<bool>(), proptest::option::weighted(0.35, (0usize..6, broken)))
                .prop_map(|(full, fault)| Op::Sync { full, fault }),
        ]
    }

    struct Model {
        /// Live conversations → archived flag.
        live: BTreeMap<String, bool>,
        deleted: BTreeSet<String>,
        /// Ids the archive holds.
        seen: BTreeSet<String>,
        /// Ids that must be marked `deleted_remotely`.
        marked: BTreeSet<String>,
        clock: f64,
        next: u32,
    }

    impl Model {
        fn pick(&self, i: usize) -> Option<String> {
            if self.live.is_empty() {
                return None;
            }
            self.live.keys().nth(i % self.live.len()).cloned()
        }

        fn tick(&mut self) -> f64 {
            self.clock += 10.0;
            self.clock
        }
    }

    fn check_after_sync(env: &SyncEnv, m: &mut Model, full: bool) {
        let ids: BTreeSet<String> = env.archived_ids().into_iter().collect();
        // The archive only grows, and only with conversations that existed.
        assert!(
            ids.is_superset(&m.seen),
            "lost {:?}",
            m.seen.difference(&ids)
        );
        for id in &ids {
            assert!(
                m.live.contains_key(id) || m.deleted.contains(id),
                "unknown conversation {id} archived"
            );
        }
        m.seen = ids;
        if full {
            m.marked = m.deleted.intersection(&m.seen).cloned().collect();
        }
        let marked: BTreeSet<String> = m
            .seen
            .iter()
            .filter(|id| env.must(id).deleted_remotely)
            .cloned()
            .collect();
        assert_eq!(
            marked, m.marked,
            "deleted_remotely marks (after a full run: {full})"
        );
    }

    async fn run(big: bool, initial: u8, ops: Vec<Op>) {
        let env = SyncEnv::start().await;
        let client = env.client().await;
        let mut m = Model {
            live: BTreeMap::new(),
            deleted: BTreeSet::new(),
            seen: BTreeSet::new(),
            marked: BTreeSet::new(),
            clock: T0,
            next: 0,
        };
        let create = |m: &mut Model, archived: bool| {
            let id = format!("m{:03}", m.next);
            m.next += 1;
            let t = m.tick();
            env.put_opts(
                &id,
                t,
                ConvOpts {
                    archived,
                    ..ConvOpts::default()
                },
            );
            m.live.insert(id, archived);
        };
        // Big cases list more than a page, so the frontier and the overlap matter.
        let n = if big { 104 } else { initial };
        for i in 0..n {
            create(&mut m, !big && i % 3 == 2);
        }
        for op in ops {
            match op {
                Op::Create { archived } => create(&mut m, archived),
                Op::Touch(i) => {
                    if let Some(id) = m.pick(i) {
                        let t = m.tick();
                        env.fake.touch(&id, t);
                    }
                }
                Op::Archive(i, a) => {
                    if let Some(id) = m.pick(i) {
                        env.fake.set_archived(&id, a);
                        m.live.insert(id, a);
                    }
                }
                Op::Delete(i) => {
                    if let Some(id) = m.pick(i) {
                        env.fake.delete(&id);
                        m.live.remove(&id);
                        m.deleted.insert(id);
                    }
                }
                Op::Sync { full, fault } => {
                    if let Some((i, broken)) = &fault
                        && let Some(id) = m.pick(*i)
                    {
                        let f = match broken {
                            Broken::Server => Fault::Status(500),
                            Broken::NotFound => Fault::NotFound,
                            Broken::Truncated => Fault::TruncatedJson,
                        };
                        env.fake.fail_always(Route::Detail(id), f);
                    }
                    let r = if full {
                        env.sync_full(&client).await
                    } else {
                        env.sync(&client).await
                    };
                    assert_eq!(r.stop, None, "{r:#?}");
                    assert!(r.failed <= 1, "{r:#?}");
                    if fault.is_none() {
                        assert_eq!(r.failed, 0, "{r:#?}");
                    }
                    env.fake.clear_faults();
                    check_after_sync(&env, &mut m, full);
                }
            }
        }

        let r = env.sync(&client).await;
        assert_clean(&r);
        check_after_sync(&env, &mut m, false);
        // Flags of conversations past the frontier and the overlap only show on a full walk
        // (they change without an update_time bump), so they are checked after it.
        let verify = |m: &Model, flags: bool| {
            for (id, archived) in &m.live {
                let rec = env.must(id);
                let server = env.fake.conversation(id).unwrap();
                assert_eq!(
                    rec.summary.update_time,
                    server["update_time"].as_f64(),
                    "{id} is not at its latest version"
                );
                let stored = env.stored_json(id).unwrap();
                assert_eq!(stored["current_node"], server["current_node"], "{id}");
                if flags {
                    assert_eq!(rec.is_archived(), *archived, "{id} archived flag");
                }
            }
            for id in m.deleted.intersection(&m.seen) {
                // Kept and still readable.
                env.archive.get(id).unwrap().unwrap().parse().unwrap();
            }
        };
        verify(&m, false);
        let r = env.sync_full(&client).await;
        assert_clean(&r);
        check_after_sync(&env, &mut m, true);
        verify(&m, true);
        // Nothing is left to fetch.
        env.fake.reset_counts();
        assert_clean(&env.sync(&client).await);
        assert_eq!(env.fake.count(RouteKind::Detail), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..ProptestConfig::default()
        })]

        #[test]
        fn the_archive_converges_to_the_server_plus_everything_deleted(
            big in prop::bool::weighted(0.25),
            initial in 0u8..5,
            ops in proptest::collection::vec(op(), 1..=12),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run(big, initial, ops));
        }
    }
}

/// When every detail fails even after its retries, the run stops after a few instead
/// of spending retries on every listed conversation, and keeps its frontier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_outage_ends_the_run_after_a_few_failed_conversations() {
    let env = SyncEnv::start().await;
    for i in 0..30 {
        env.put(&format!("out-{i:02}"), CREATED + i as f64);
    }
    let client = env.client().await;
    env.fake.fail_always(Route::AnyDetail, Fault::Status(502));
    let r = env.sync(&client).await;
    assert!(
        matches!(
            r.stop,
            Some(StopReason::Outage {
                failed_in_a_row: 5,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(r.failed, 5, "{r:?}");
    let per_detail = 1 + u64::from(env.config.api.retries);
    assert_eq!(env.fake.count(RouteKind::Detail) as u64, 5 * per_detail);
    assert_eq!(
        env.state().normal_frontier,
        None,
        "nothing was archived, so no frontier"
    );
    env.fake.clear_faults();
    let r = env.sync(&client).await;
    assert_eq!((r.new, r.failed, r.stop.clone()), (30, 0, None), "{r:?}");
}

// ---- issue 8: optional endpoints, odd rows, server numbers, restarts, projects ------------------

/// Every way an optional endpoint fails without ending the run, and the status the report
/// names for it.
fn optional_failures() -> Vec<(Fault, &'static str)> {
    vec![
        (Fault::NotFound, "404"),
        // A 403 without a Cloudflare challenge (JSON, no cf-mitigated header).
        (Fault::Status(403), "403"),
        // Retried, then given up.
        (Fault::Status(503), "503"),
        (Fault::NonJson, "unexpected answer"),
        (
            Fault::OkJson(serde_json::json!({ "detail": "this endpoint has moved" })),
            "unexpected answer",
        ),
    ]
}

/// Fills `fake` with one of everything: three projects (two sidebar pages), normal,
/// archived and project conversations, and two conversations with an image each. Returns
/// every conversation id, sorted.
fn everything(fake: &FakeChatGpt) -> Vec<String> {
    fake.add_session(TOKEN);
    fake.add_project("g-p-alpha", "Alpha");
    fake.add_project("g-p-beta", "Beta");
    fake.add_project("g-p-gamma", "Gamma");
    let put = |id: &str, t: f64, opts: ConvOpts| {
        fake.put_conversation(conversation_detail(id, id, CREATED, T0 + t), opts);
    };
    for i in 0..4 {
        put(&format!("n{i}"), f64::from(i), ConvOpts::default());
    }
    put("a1", 10.0, archived());
    put("p1", 11.0, project("g-p-alpha"));
    put("p3", 12.0, project("g-p-gamma"));
    for (i, id) in ["img1", "img2"].iter().enumerate() {
        let file_id = format!("file_0000000{i}img");
        let image = ImageAttachment {
            file_id: &file_id,
            name: "pic.png",
            mime: "image/png",
            size: 4,
        };
        fake.put_conversation(
            image_conversation_detail(id, id, CREATED, T0 + 20.0 + i as f64, &image),
            ConvOpts::default(),
        );
        fake.put_file(&file_id, vec![1, 2, 3, 4], "pic.png", "image/png");
    }
    fake.conversation_ids()
}

/// Opens the archive a CLI run left behind.
fn cli_archive(cli: &CliEnv) -> convos::archive::Archive {
    convos::archive::Archive::open(&cli.data_dir.join("archive"), &Default::default())
        .expect("opening the archive")
}

/// One optional endpoint answering each failure in turn: `convos sync` exits 0 with every
/// conversation archived, says which part degraded (and `status` does too), and warns once.
/// Returns the worlds for a follow-up run, one per failure.
fn an_optional_endpoint_failing(
    route: Route,
    part: &str,
    endpoint: &str,
) -> Vec<(FakeChatGpt, CliEnv, Vec<String>)> {
    let mut worlds = Vec::new();
    for (i, (fault, label)) in optional_failures().into_iter().enumerate() {
        let fake = FakeChatGpt::start_background();
        let ids = everything(&fake);
        let cli = CliEnv::new();
        cli.write_config("[api]\nretry_base_secs = 0.001\n");
        creds(TOKEN)
            .save(&cli.data_dir.join("credentials.json"))
            .unwrap();
        fake.fail_always(route.clone(), fault.clone());
        let run = run_cli(&cli, &fake, &["sync"], None, &[]);
        run.ok();
        let degraded = format!("{part} unavailable ({label})");
        assert!(
            run.stdout.contains(&format!("degraded: {degraded}")),
            "{fault:?}: {run:?}"
        );
        let warnings = run
            .stderr
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(endpoint))
            .count();
        assert_eq!(warnings, 1, "one warning per run, {fault:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!("{endpoint} failed ({label}")),
            "{fault:?}: {run:?}"
        );
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        {
            let archive = cli_archive(&cli);
            let mut archived: Vec<String> = archive
                .iter_newest_first()
                .map(|r| r.unwrap().summary.id)
                .collect();
            archived.sort();
            assert_eq!(archived, ids, "{fault:?}: the archive is exact");
            for id in &ids {
                let stored = archive.get(id).unwrap().unwrap();
                let raw: Value = serde_json::from_slice(&stored.raw).unwrap();
                assert_eq!(Some(raw), fake.conversation(id), "{id}");
            }
            let report: SyncReport = archive
                .state(convos::sync::REPORT_KEY)
                .unwrap()
                .expect("the report is saved");
            assert_eq!(report.degraded, vec![degraded.clone()]);
            assert_eq!((report.failed, report.stop), (0, None));
        }
        if i == 0 {
            let status = cli.run(["status"]);
            status.ok();
            assert!(
                status.stdout.contains(&format!("degraded: {degraded}")),
                "{status:?}"
            );
        }
        worlds.push((fake, cli, ids));
    }
    worlds
}

#[test]
fn a_failing_project_sidebar_never_stops_a_sync_and_names_come_later() {
    let endpoint = "GET /backend-api/gizmos/snorlax/sidebar";
    for (fake, cli, _) in an_optional_endpoint_failing(Route::Sidebar, "project names", endpoint) {
        {
            let archive = cli_archive(&cli);
            assert_eq!(archive.record("p1").unwrap().unwrap().remote.project, None);
        }
        // Once the sidebar answers, the next run fills the names in.
        fake.clear_faults();
        let run = run_cli(&cli, &fake, &["sync"], None, &[]);
        run.ok();
        assert!(!run.stdout.contains("degraded"), "{run:?}");
        let archive = cli_archive(&cli);
        for (id, name) in [("p1", Some("Alpha")), ("p3", Some("Gamma")), ("n1", None)] {
            let rec = archive.record(id).unwrap().unwrap();
            assert_eq!(rec.remote.project.as_deref(), name, "{id}");
        }
        let state: SyncState = archive.state(convos::sync::STATE_KEY).unwrap().unwrap();
        assert!(state.projects_walked);
    }
}

#[test]
fn failing_project_listings_never_stop_a_sync() {
    let endpoint = "GET /backend-api/gizmos/{project}/conversations";
    for (n, (fake, cli, _)) in
        an_optional_endpoint_failing(Route::GizmoConversations, "project listings", endpoint)
            .into_iter()
            .enumerate()
    {
        {
            let archive = cli_archive(&cli);
            // Names come from the sidebar, which answered.
            let rec = archive.record("p1").unwrap().unwrap();
            assert_eq!(rec.remote.project.as_deref(), Some("Alpha"));
            let state: SyncState = archive.state(convos::sync::STATE_KEY).unwrap().unwrap();
            assert!(!state.projects_walked, "walked again next run");
        }
        if n == 0 {
            fake.clear_faults();
            fake.reset_counts();
            run_cli(&cli, &fake, &["sync"], None, &[]).ok();
            assert_eq!(fake.count(RouteKind::GizmoConversations), 3);
            let archive = cli_archive(&cli);
            let state: SyncState = archive.state(convos::sync::STATE_KEY).unwrap().unwrap();
            assert!(state.projects_walked);
        }
    }
}

#[test]
fn failing_file_metadata_never_stops_a_sync() {
    let endpoint = "GET /backend-api/files/download/{file}";
    for (fake, cli, _) in
        an_optional_endpoint_failing(Route::FileDownload, "attachment metadata", endpoint)
    {
        // The first failure ends the attachment phase: the other file is not asked for.
        let asked: std::collections::BTreeSet<String> = fake
            .requests()
            .into_iter()
            .filter(|r| r.kind == RouteKind::FileDownload)
            .map(|r| r.path)
            .collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        let archive = cli_archive(&cli);
        assert_eq!(archive.counts().unwrap().attachments, 0);
    }
}

#[test]
fn failing_attachment_downloads_never_stop_a_sync() {
    let endpoint = "the attachment download";
    for (n, (fake, cli, _)) in
        an_optional_endpoint_failing(Route::FileBytes, "attachment downloads", endpoint)
            .into_iter()
            .enumerate()
    {
        {
            let archive = cli_archive(&cli);
            assert_eq!(
                archive.counts().unwrap().attachments,
                0,
                "nothing wrong stored"
            );
        }
        if n == 0 {
            // The file that was not tried comes next run; the failed one waits its backoff.
            fake.clear_faults();
            let run = run_cli(&cli, &fake, &["sync"], None, &[]);
            run.ok();
            assert!(run.stdout.contains("1 attachments downloaded"), "{run:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_names_missed_while_the_sidebar_failed_are_filled_in_past_the_frontier() {
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-old", "Old project");
    // Two project conversations far below where an incremental walk stops.
    env.put_opts("deep1", T0 - 100.0, project("g-p-old"));
    env.put_opts("deep2", T0 - 99.0, project("g-p-old"));
    for i in 0..130 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    env.fake.fail_always(Route::Sidebar, Fault::NotFound);
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 132);
    assert_eq!(
        r.degraded,
        vec!["project names unavailable (404)".to_owned()]
    );
    assert_eq!(env.fake.count(RouteKind::Sidebar), 1, "asked once per run");
    assert_eq!(env.must("deep1").remote.project, None);
    let state = env.state();
    assert!(!state.projects_walked);
    assert!(
        !state.projects.contains_key("g-p-old"),
        "nothing remembered about a project the sidebar could not name"
    );

    env.fake.clear_faults();
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert!(r.degraded.is_empty(), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    assert_eq!(env.fake.count(RouteKind::GizmoConversations), 1);
    for id in ["deep1", "deep2"] {
        assert_eq!(
            env.must(id).remote.project.as_deref(),
            Some("Old project"),
            "{id}"
        );
    }
    assert!(env.state().projects_walked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_with_a_degraded_project_walk_marks_no_deletions() {
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-x", "X");
    for i in 0..4 {
        env.put(&format!("n{i}"), T0 + f64::from(i));
    }
    env.put_opts("p1", T0 + 10.0, project("g-p-x"));
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    env.fake.delete("n1");

    env.fake
        .fail_always(Route::GizmoConversations, Fault::Status(500));
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert_eq!(
        r.degraded,
        vec!["project listings unavailable (500)".to_owned()]
    );
    assert_eq!(
        r.deleted_remotely, 0,
        "an incomplete walk proves no deletion"
    );
    assert!(!env.must("n1").deleted_remotely);

    env.fake.clear_faults();
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert_eq!(r.deleted_remotely, 1);
    assert!(env.must("n1").deleted_remotely);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_or_challenge_on_an_optional_endpoint_still_ends_the_run() {
    for fault in [
        Fault::Challenge,
        // Four in a row that ask for no wait: the call gives up.
        Fault::RateLimited {
            retry_after: Some(0),
        },
    ] {
        let env = SyncEnv::start().await;
        env.fake.add_project("g-p-x", "X");
        env.put_opts("p1", T0, project("g-p-x"));
        env.fake.fail_always(Route::Sidebar, fault.clone());
        let client = env.client().await;
        let r = env.sync(&client).await;
        assert!(r.stop.is_some(), "{fault:?}: {r:#?}");
        assert!(r.degraded.is_empty(), "{r:#?}");
    }
}

#[test]
fn an_unreadable_listing_row_is_counted_and_the_walk_goes_on() {
    let env = SyncEnv::background();
    for i in 0..230 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    // Newest first: c229 is at offset 0, so c179 is at offset 50 and c079 at offset 150.
    let canary = "canary-content-of-an-odd-row";
    env.fake.override_list_row(
        "c179",
        serde_json::json!({ "id": 12345, "title": canary, "update_time": "soon" }),
    );
    // A row with an id but every other field of the wrong type is still a conversation.
    env.fake.override_list_row(
        "c079",
        serde_json::json!({
            "id": "c079", "title": 7, "create_time": [1], "update_time": { "when": "now" },
            "is_archived": "no", "is_starred": 1, "gizmo_id": 5,
        }),
    );
    creds(TOKEN).save(&env.paths.credentials).unwrap();
    let mut out = Vec::new();
    let r = convos::app::sync::run_sync(&env.context(), false, &mut out).expect("runs");
    assert_clean(&r);
    assert_eq!((r.listed, r.new), (229, 229), "{r:#?}");
    assert_eq!(env.archive.len(), 229);
    assert!(env.record("c179").is_none());
    assert!(
        env.record("c000").is_some(),
        "the walk reached the last page"
    );
    assert!(env.record("c079").is_some());
    assert_eq!(
        r.unreadable_rows, 1,
        "counted once despite the overlapping pages"
    );
    assert_eq!(r.unreadable, vec!["normal listing at offset 50".to_owned()]);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(
            "1 listing rows could not be read and were skipped: normal listing at offset 50"
        ),
        "{out}"
    );
    for text in [format!("{r:?}"), out] {
        assert!(!text.contains(canary), "a row's content is never reported");
    }

    // The next run fetches nothing again (the odd row's time is unreadable, so it is left
    // alone) and still reports the row.
    env.fake.reset_counts();
    let r = convos::app::sync::run_sync(&env.context(), false, &mut Vec::new()).expect("runs");
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);
    assert_eq!(r.unreadable_rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_without_items_is_an_error_not_an_empty_account() {
    let env = SyncEnv::start().await;
    for i in 0..3 {
        env.put(&format!("c{i}"), T0 + f64::from(i));
    }
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    env.fake.fail_always(
        Route::List,
        Fault::OkJson(serde_json::json!({ "detail": "moved" })),
    );
    let r = env.sync_full(&client).await;
    let err = r
        .stop
        .clone()
        .expect("the essential listing failed")
        .to_string();
    assert!(err.contains("items"), "{err}");
    assert_eq!(r.deleted_remotely, 0);
    assert_eq!(env.archive.counts().unwrap().deleted_remotely, 0);
}

#[test]
fn a_retry_after_of_centuries_is_cut_to_an_hour_and_logged() {
    for secs in [10_000_000_000u64, 9_200_000_000_000_000_000, u64::MAX] {
        let fake = FakeChatGpt::start_background();
        fake.add_session(TOKEN);
        fake.put_conversation(
            conversation_detail("c0", "c0", CREATED, T0),
            ConvOpts::default(),
        );
        // Three 429s that ask for no wait, then one asking for `secs`: the call gives up.
        for _ in 0..3 {
            fake.push_fault(
                Route::List,
                Fault::RateLimited {
                    retry_after: Some(0),
                },
            );
        }
        fake.push_fault(
            Route::List,
            Fault::RateLimited {
                retry_after: Some(secs),
            },
        );
        let cli = CliEnv::new();
        creds(TOKEN)
            .save(&cli.data_dir.join("credentials.json"))
            .unwrap();
        let run = run_cli(&cli, &fake, &["sync"], None, &[]);
        // A clean failure that says what happened, not a panic (101).
        run.expect_code(1);
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(
            run.stderr.contains("429") && run.stderr.contains("wait 3600 s"),
            "{run:?}"
        );
        assert!(
            run.stderr.contains(&format!("{secs:?}")),
            "the value the server sent is logged: {run:?}"
        );
        let archive = cli_archive(&cli);
        let key = pace::state_key(Some(&fake.account_id()));
        let saved: PaceState = archive.state(&key).unwrap().unwrap();
        let until = saved.cooldown_until.expect("a cooldown");
        assert!(
            until > now() + 3500.0 && until <= now() + 3601.0,
            "{secs}: the saved cooldown ends within the hour ({} s)",
            until - now()
        );
        let report: SyncReport = archive.state(convos::sync::REPORT_KEY).unwrap().unwrap();
        assert!(report.stop.unwrap().to_string().contains("3600"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_saved_by_an_older_version_is_cut_to_an_hour_at_start() {
    let env = SyncEnv::start().await;
    for until in [now() + 10_000_000_000.0, 9.2e18, f64::MAX] {
        env.archive
            .set_state(
                pace::STATE_KEY,
                &PaceState {
                    tokens: 0.0,
                    at: now(),
                    cooldown_until: Some(until),
                    consecutive_429: 1,
                    rate_per_sec: None,
                    threshold_per_sec: None,
                },
            )
            .unwrap();
        let client = env.client().await;
        let wait = client.pacer().wait_hint();
        assert!(
            wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600),
            "{until}: {wait:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_backfill_does_not_burst_again() {
    let mut env = SyncEnv::start().await;
    // A bucket of 10 refilled at one a minute, as on chatgpt.com but smaller.
    env.config.api.burst = 10;
    env.config.api.refill_per_minute = 1.0;
    for i in 0..40 {
        env.put(&format!("c{i:02}"), T0 + f64::from(i));
    }
    let client = std::sync::Arc::new(env.client().await);
    let (c, a, o) = (client.clone(), env.archive.clone(), env.opts(false));
    let run = tokio::spawn(async move {
        convos::sync::sync_once(&c, &a, &o, now(), &AtomicBool::new(false)).await
    });
    // Until the pacer waits for a token: it saves the spent bucket just before, so
    // wait for that save too (a kill before it lands is a different story).
    let spent_saved = || env.pace_state().is_some_and(|s| s.tokens < 1.0);
    for _ in 0..1000 {
        if env.fake.requests().len() >= 10
            && client.pacer().wait_hint() > Duration::ZERO
            && spent_saved()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        env.fake.requests().len(),
        10,
        "the burst, then the pacer waits"
    );
    // The process is killed mid-backfill: no end-of-run save happens.
    run.abort();
    let _ = run.await;
    drop(client);

    env.fake.reset_counts();
    let client = env.client().await;
    assert!(
        client.pacer().wait_hint() > Duration::from_secs(30),
        "the spent bucket was saved: {:?}",
        client.pacer().wait_hint()
    );
    let opts = env.opts(false);
    let cancel = AtomicBool::new(false);
    let sync = convos::sync::sync_once(&client, &env.archive, &opts, now(), &cancel);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sync)
            .await
            .is_err()
    );
    assert!(
        env.fake.requests().is_empty(),
        "no second burst: {:#?}",
        env.fake.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_leaving_its_project_loses_the_project_name() {
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-alpha", "Alpha");
    env.fake.add_project("g-p-beta", "Beta");
    env.put_opts("leaves", T0 + 1.0, project("g-p-alpha"));
    env.put_opts("moves", T0 + 2.0, project("g-p-alpha"));
    env.put_opts("to-gpt", T0 + 3.0, project("g-p-alpha"));
    env.put("plain", T0 + 4.0);
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    for id in ["leaves", "moves", "to-gpt"] {
        assert_eq!(
            env.must(id).remote.project.as_deref(),
            Some("Alpha"),
            "{id}"
        );
    }

    env.fake.set_project("leaves", None);
    env.fake.set_project("moves", Some("g-p-beta"));
    // Into a conversation with a custom GPT (a gizmo, but not a project), same times.
    env.fake.set_project("to-gpt", None);
    let mut detail = env.fake.conversation("to-gpt").unwrap();
    detail["gizmo_id"] = Value::from("g-custom-gpt");
    env.fake.put_conversation(detail, ConvOpts::default());
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(env.fake.count(RouteKind::Detail), 0, "flags need no fetch");
    assert_eq!(r.flags_updated, 3, "{r:#?}");
    assert_eq!(env.must("leaves").remote.project, None);
    assert_eq!(env.must("moves").remote.project.as_deref(), Some("Beta"));
    assert_eq!(env.must("to-gpt").remote.project, None);
    let v = view::build(&env.archive, &env.archive.get("leaves").unwrap().unwrap()).unwrap();
    assert_eq!(v.project, None);

    // A listing whose rows do not carry gizmo_id says nothing about projects: names stay.
    env.fake.set_project("leaves", Some("g-p-alpha"));
    assert_clean(&env.sync(&client).await);
    assert_eq!(env.must("leaves").remote.project.as_deref(), Some("Alpha"));
    env.fake.omit_list_key("gizmo_id");
    env.fake.omit_list_key("conversation_template_id");
    env.fake.set_project("leaves", None);
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.flags_updated, 0, "{r:#?}");
    assert_eq!(env.must("leaves").remote.project.as_deref(), Some("Alpha"));
    assert_eq!(env.must("moves").remote.project.as_deref(), Some("Beta"));
}
