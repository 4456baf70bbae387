//! Batched fetches (`POST /backend-api/conversations/batch`) against the fake service
//! and its observed quirks: `id` without `conversation_id`, ISO times, no
//! `default_model_slug`, rounded times for older chats, unknown ids left out, deleted
//! conversations still returned, and an absent endpoint.

use crate::support::fake_server::{Fault, Route, RouteKind};
use crate::support::sync_env::SyncEnv;
use convos::sync::{STATE_KEY, SyncReport, SyncState};
use serde_json::json;

/// Listing times start here (2025-06-15T15:06:40Z).
const T0: f64 = 1_750_000_000.0;

fn assert_clean(r: &SyncReport) {
    assert!(r.stop.is_none(), "{r:#?}");
    assert_eq!(r.failed, 0, "{r:#?}");
}

/// Conversations `c00`.. newest last, each with a fractional listing time.
fn put_many(env: &SyncEnv, n: u32) {
    for i in 0..n {
        env.put(&format!("c{i:02}"), T0 + f64::from(i) * 10.0 + 0.75);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_conversations_come_ten_a_request_stored_as_sent_with_the_listing_time() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 25);
    // A deleted conversation the batch endpoint still returns, in place of c07's copy:
    // c07 is missing from the answer (unknown ids are left out) and `gone` is extra.
    env.put("gone", T0 - 100.0);
    env.fake.delete("gone");
    let gone = env.fake.batch_item("gone").expect("tombstone");
    env.fake.override_batch_item("c07", gone);
    let client = env.client().await;

    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 25, "{r:#?}");
    assert_eq!(r.batched, 24, "{r:#?}");
    let batches: Vec<Vec<String>> = env
        .fake
        .requests()
        .iter()
        .filter(|q| q.kind == RouteKind::Batch)
        .map(|q| q.batch_ids())
        .collect();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5], "{batches:?}");
    // Only the id the answer left out is fetched on its own.
    assert_eq!(env.fake.count(RouteKind::Detail), 1);
    assert_eq!(env.fake.detail_count("c07"), 1);
    // The deleted conversation it sent unasked is not stored.
    assert!(env.record("gone").is_none());

    // Stored exactly as the batch sent it: `id`, ISO times, no `default_model_slug`.
    let stored = env.stored_json("c24").expect("stored");
    assert_eq!(stored, env.fake.batch_item("c24").expect("item"));
    assert!(stored.get("conversation_id").is_none());
    assert!(stored.get("default_model_slug").is_none());
    assert!(stored["update_time"].is_string(), "{stored}");
    // The Export schema's model then comes from the last assistant message.
    let conv = env.archive.get("c24").expect("get").expect("stored");
    let v = convos::render::view::build(&env.archive, &conv).expect("view");
    assert_eq!(v.model.as_deref(), Some("gpt-5"));
    // The listing time recorded is the listing's, so nothing is fetched again.
    assert_eq!(
        env.must("c24").remote.list_update_time,
        Some(env.server_time("c24"))
    );
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new + r.updated, 0, "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Batch), 0);
    assert_eq!(env.fake.count(RouteKind::Detail), 0);

    // One changed conversation is fetched alone (a batch of one is pointless); a later
    // detail of a batch-stored version adds the keys the batch lacked.
    env.fake.touch("c03", T0 + 1000.0);
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.updated, r.batched), (1, 0), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Batch), 0);
    let bytes = client.conversation("c24").await.expect("detail");
    let raw = convos::model::RawConversation::from_bytes(bytes).expect("valid");
    assert_eq!(
        env.archive.upsert(raw).expect("upsert"),
        convos::archive::Outcome::Updated
    );
    let merged = env.stored_json("c24").expect("stored");
    assert!(merged.get("default_model_slug").is_some(), "{merged}");
    assert!(merged.get("conversation_id").is_some(), "{merged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounded_batch_times_of_older_chats_cause_no_refetch() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 12);
    // Every chat is "older": its batch update_time is rounded down to the second.
    env.fake.set_batch_legacy_before(f64::MAX);
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.batched), (12, 12), "{r:#?}");
    let stored = env.stored_json("c05").expect("stored");
    assert!(
        stored["update_time"]
            .as_str()
            .is_some_and(|t| t.ends_with(":30.000000Z")),
        "{stored}"
    );
    assert_eq!(
        env.must("c05").remote.list_update_time,
        Some(env.server_time("c05"))
    );
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new + r.updated, 0);
    assert_eq!(
        env.fake.count(RouteKind::Batch) + env.fake.count(RouteKind::Detail),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_copy_far_older_than_its_listing_is_confirmed_by_its_detail() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 3);
    // The batch sends an old version of c01 (minutes behind its listing).
    let mut old = env.fake.batch_item("c01").expect("item");
    old["update_time"] = json!("2025-06-15T15:00:00.000000Z");
    env.fake.override_batch_item("c01", old);
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    // Stored from the batch, then brought up to date by its detail.
    assert_eq!((r.new, r.updated, r.batched), (2, 1, 2), "{r:#?}");
    assert_eq!(env.fake.detail_count("c01"), 1, "confirmed by its detail");
    let stored = env.stored_json("c01").expect("stored");
    assert_eq!(
        stored["conversation_id"], "c01",
        "the detail is what is kept"
    );
    assert_eq!(
        env.must("c01").remote.list_update_time,
        Some(env.server_time("c01"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_batch_endpoint_falls_back_to_single_fetches_for_a_day() {
    for status in [400u16, 404, 405, 422] {
        let env = SyncEnv::start().await;
        env.fake.disable_batch(status);
        put_many(&env, 5);
        let client = env.client().await;
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.new, 5, "{status}: {r:#?}");
        assert_eq!(env.fake.count(RouteKind::Batch), 1, "{status}");
        assert_eq!(env.fake.count(RouteKind::Detail), 5, "{status}");
        let until = env
            .state()
            .batch_unavailable_until
            .expect("the lack is remembered");
        let now = crate::support::sync_env::now();
        assert!(
            until > now + 86_000.0 && until < now + 86_500.0,
            "{status}: {until}"
        );
        // Within the day: no batch request at all.
        env.fake.enable_batch();
        env.fake.reset_counts();
        for id in ["c00", "c01", "c02"] {
            env.fake.touch(id, T0 + 5000.0);
        }
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!(r.updated, 3, "{status}");
        assert_eq!(env.fake.count(RouteKind::Batch), 0, "{status}");
        assert_eq!(env.fake.count(RouteKind::Detail), 3, "{status}");
        // A day later: batches are tried again.
        let mut state = env.state();
        state.batch_unavailable_until = Some(now - 1.0);
        env.archive.set_state(STATE_KEY, &state).expect("state");
        env.fake.reset_counts();
        for id in ["c00", "c01", "c02"] {
            env.fake.touch(id, T0 + 6000.0);
        }
        let r = env.sync(&client).await;
        assert_clean(&r);
        assert_eq!((r.updated, r.batched), (3, 3), "{status}: {r:#?}");
        assert_eq!(env.fake.count(RouteKind::Detail), 0, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answer_that_is_not_a_list_falls_back_and_loses_nothing() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 4);
    env.fake.push_fault(
        Route::Batch,
        Fault::OkJson(json!({ "items": [], "detail": "moved" })),
    );
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.batched), (4, 0), "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 4);
    assert!(env.state().batch_unavailable_until.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_item_without_mapping_is_fetched_on_its_own() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 3);
    env.fake
        .override_batch_item("c02", json!({ "id": "c02", "title": "no mapping" }));
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.batched), (3, 2), "{r:#?}");
    assert_eq!(env.fake.detail_count("c02"), 1);
    assert!(env.stored_json("c02").expect("stored")["mapping"].is_object());
    // The endpoint itself works: it is not given up on.
    let state: SyncState = env
        .archive
        .state(STATE_KEY)
        .expect("state")
        .unwrap_or_default();
    assert_eq!(state.batch_unavailable_until, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_request_falls_back_for_its_ids_only() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    put_many(&env, 3);
    env.fake.fail_always(Route::Batch, Fault::Status(500));
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.new, 3, "{r:#?}");
    assert_eq!(env.fake.count(RouteKind::Detail), 3);
    assert_eq!(
        env.state().batch_unavailable_until,
        None,
        "a 5xx says nothing about the endpoint's existence"
    );
}
