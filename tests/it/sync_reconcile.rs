//! Reconciliation without `--full` (archiving seen every run), the full run's
//! deletion rule (only a detail's 404 marks a conversation deleted, never a batch
//! answer, never an archived conversation when archived listings are off), and
//! attachments after conversations, voice recordings first, with the budget left.

use crate::support::fake_server::{
    ConvOpts, ImageAttachment, RouteKind, conversation_detail, image_conversation_detail,
};
use crate::support::sync_env::{CREATED, SyncEnv, now};
use convos::api::pace::{PaceState, state_key};
use convos::config::Pacing;
use convos::sync::SyncReport;

/// Listing times start here (2025-06-15T15:06:40Z).
const T0: f64 = 1_750_000_000.0;

fn assert_clean(r: &SyncReport) {
    assert!(r.stop.is_none(), "{r:#?}");
    assert_eq!(r.failed, 0, "{r:#?}");
}

fn archived() -> ConvOpts {
    ConvOpts {
        archived: true,
        ..ConvOpts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_and_unarchiving_below_the_frontier_are_seen_by_a_normal_run() {
    let env = SyncEnv::start().await;
    for i in 0..150 {
        env.put(&format!("c{i:03}"), T0 + f64::from(i));
    }
    env.put_opts("old-archived", T0 - 500.0, archived());
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    assert!(env.must("old-archived").is_archived());
    let frontier = env.state().normal_frontier.expect("frontier");
    assert!(frontier >= T0 + 149.0);

    // Far below the frontier (and the overlap): neither moves `update_time`.
    env.fake.set_archived("c002", true);
    env.fake.set_archived("old-archived", false);
    env.fake.reset_counts();
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert!(env.must("c002").is_archived(), "archived is seen at once");
    assert!(
        !env.must("old-archived").is_archived(),
        "unarchived is seen at once"
    );
    assert_eq!(env.fake.count(RouteKind::Detail), 0, "no fetch for a flag");
    assert_eq!(env.fake.count(RouteKind::List), 1, "one page");
    assert_eq!(env.fake.count(RouteKind::ArchivedList), 1, "one page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_marks_deleted_only_what_answers_404_however_the_batch_answers() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    for i in 0..5 {
        env.put(&format!("c{i}"), T0 + f64::from(i));
    }
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    // Deleted: gone from every listing, its detail answers 404, yet the batch endpoint
    // still returns it.
    env.fake.delete("c1");
    assert!(env.fake.batch_item("c1").is_some());
    // Changed meanwhile, so the full run fetches something through the batch too.
    env.fake.touch("c3", T0 + 100.0);
    env.fake.touch("c4", T0 + 101.0);
    env.fake.reset_counts();
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert_eq!(r.deleted_remotely, 1, "{r:#?}");
    assert!(env.must("c1").deleted_remotely);
    assert_eq!(env.fake.detail_count("c1"), 1, "asked for by its detail");
    assert!(
        env.fake
            .requests()
            .iter()
            .all(|q| !q.batch_ids().contains(&"c1".to_owned())),
        "a batch answer proves nothing, so it is not asked"
    );
    for id in ["c0", "c2", "c3", "c4"] {
        assert!(!env.must(id).deleted_remotely, "{id}");
    }
    // A normal run marks nothing, whatever it does not see.
    env.fake.delete("c2");
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!(r.deleted_remotely, 0);
    assert!(!env.must("c2").deleted_remotely);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_archived_listings_archived_conversations_are_never_marked_deleted() {
    let mut env = SyncEnv::start().await;
    env.put("n", T0);
    env.put_opts("a", T0 + 1.0, archived());
    let client = env.client().await;
    assert_clean(&env.sync(&client).await);
    assert!(env.must("a").is_archived());

    env.config.sync.archived = false;
    env.fake.delete("a");
    env.fake.reset_counts();
    let r = env.sync_full(&client).await;
    assert_clean(&r);
    assert_eq!(r.deleted_remotely, 0, "{r:#?}");
    assert!(!env.must("a").deleted_remotely);
    assert_eq!(env.fake.count(RouteKind::ArchivedList), 0);
    assert_eq!(env.fake.detail_count("a"), 0, "not even asked");
}

/// A conversation whose user message is a voice recording (`file_id`, WAV).
fn voice_detail(id: &str, file_id: &str, update_time: f64) -> serde_json::Value {
    let image = ImageAttachment {
        file_id,
        name: "voice.wav",
        mime: "audio/wav",
        size: 64,
    };
    let text = serde_json::to_string(&image_conversation_detail(
        id,
        "Voice",
        CREATED,
        update_time,
        &image,
    ))
    .expect("json");
    let voice = text.replace(
        r#""content_type":"image_asset_pointer""#,
        r#""content_type":"audio_asset_pointer","format":"wav""#,
    );
    assert_ne!(voice, text);
    serde_json::from_str(&voice).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_come_after_every_conversation_voice_first_with_the_budget_left() {
    let mut env = SyncEnv::start().await;
    // Sorted by conversation id the picture comes first: the order is not the
    // archive's.
    let picture = ImageAttachment {
        file_id: "file_0000picture",
        name: "pic.png",
        mime: "image/png",
        size: 4,
    };
    env.fake.put_conversation(
        image_conversation_detail("a-picture", "Pic", CREATED, T0 + 1.0, &picture),
        ConvOpts::default(),
    );
    env.fake
        .put_file(picture.file_id, vec![1, 2, 3, 4], "pic.png", "image/png");
    env.fake.put_conversation(
        voice_detail("z-voice", "file_00000voice", T0 + 2.0),
        ConvOpts::default(),
    );
    env.fake
        .put_file("file_00000voice", vec![9; 64], "voice.wav", "audio/wav");
    for i in 0..5 {
        env.fake.put_conversation(
            conversation_detail(&format!("t{i}"), "Text", CREATED, T0 + 10.0 + f64::from(i)),
            ConvOpts::default(),
        );
    }

    // Every conversation first, then the attachments.
    let client = env.client().await;
    let mut opts = env.opts(false);
    opts.attachments = false;
    assert_clean(&env.sync_with(&client, &opts).await);
    assert_eq!(env.archive.len(), 7);
    assert_eq!(env.archive.missing_files().expect("missing").len(), 2);
    drop(client);

    // Now a stingy pace: 5 requests, then one a minute. The session exchange and the
    // two listings leave 2, one attachment's worth (its URL, then its bytes), and this
    // run may not wait for more.
    env.config.api.pacing = Pacing::Fixed;
    env.config.api.burst = 5;
    env.config.api.refill_per_minute = 1.0;
    let client = env.client().await;
    env.fake.reset_counts();
    let mut opts = env.opts(false);
    opts.attachment_wait = std::time::Duration::ZERO;
    let r = env.sync_with(&client, &opts).await;
    assert_clean(&r);
    assert_eq!((r.attachments, r.attachments_left), (1, 1), "{r:#?}");
    assert!(
        env.archive.file("file_00000voice").expect("file").is_some(),
        "the voice recording (it expires) goes first"
    );
    assert!(env.archive.file(picture.file_id).expect("file").is_none());
    assert_eq!(
        env.fake.count(RouteKind::FileDownload),
        1,
        "nothing waits for the pace"
    );
    drop(client);

    // A later run with budget fetches the rest.
    env.config.api.burst = 1_000_000;
    env.config.api.refill_per_minute = 60_000_000.0;
    let key = state_key(Some(&env.fake.account_id()));
    env.archive
        .set_state(
            &key,
            &PaceState {
                tokens: 1_000_000.0,
                at: now(),
                ..PaceState::default()
            },
        )
        .expect("state");
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.attachments, r.attachments_left), (1, 0), "{r:#?}");
    assert!(env.archive.missing_files().expect("missing").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attachment_is_asked_for_before_the_last_conversation() {
    let env = SyncEnv::start().await;
    env.fake.enable_batch();
    for i in 0..12 {
        let file_id = format!("file_000000{i:04}");
        let image = ImageAttachment {
            file_id: &file_id,
            name: "pic.png",
            mime: "image/png",
            size: 3,
        };
        env.fake.put_conversation(
            image_conversation_detail(
                &format!("c{i:02}"),
                "Pic",
                CREATED,
                T0 + f64::from(i),
                &image,
            ),
            ConvOpts::default(),
        );
        env.fake
            .put_file(&file_id, vec![1, 2, 3], "pic.png", "image/png");
    }
    let client = env.client().await;
    let r = env.sync(&client).await;
    assert_clean(&r);
    assert_eq!((r.new, r.attachments), (12, 12), "{r:#?}");
    let kinds: Vec<RouteKind> = env.fake.requests().iter().map(|q| q.kind).collect();
    let last_conversation = kinds
        .iter()
        .rposition(|k| matches!(k, RouteKind::Detail | RouteKind::Batch))
        .expect("fetches");
    let first_file = kinds
        .iter()
        .position(|k| matches!(k, RouteKind::FileDownload | RouteKind::FileBytes))
        .expect("downloads");
    assert!(last_conversation < first_file, "{kinds:?}");
}
