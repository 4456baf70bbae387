//! A quick end-to-end sync against the fake server (the full suite is in sync.rs).

use crate::support::fake_server::{ConvOpts, FakeChatGpt, RouteKind, conversation_detail};
use convos::api::auth::Credentials;
use convos::archive::Archive;
use convos::config::{Config, Overrides, PlatformDirs};
use std::sync::atomic::AtomicBool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_sync_twice() {
    let fake = FakeChatGpt::start().await;
    fake.add_session("session-token-abcdefghijklmnopqrstuvwxyz");
    for i in 0..5 {
        let id = format!("conv-{i}");
        fake.put_conversation(
            conversation_detail(
                &id,
                &format!("T{i}"),
                1.7e9 + i as f64,
                1.7e9 + 100.0 + i as f64,
            ),
            ConvOpts::default(),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = PlatformDirs {
        config_file: None,
        data_dir: Some(dir.path().join("data")),
        downloads: None,
        home: None,
    };
    let base = fake.base_url();
    let env = move |k: &str| match k {
        "CONVOS_API_BASE_URL" => Some(base.clone()),
        _ => None,
    };
    let loaded = Config::load(&Overrides::default(), &env, &platform).expect("config");
    let archive = Archive::open(&loaded.paths.archive_dir, &Default::default()).expect("archive");
    let creds = Credentials::parse_input("session-token-abcdefghijklmnopqrstuvwxyz", "test")
        .expect("creds");
    let (c2, p2, a2) = (loaded.config.clone(), loaded.paths.clone(), archive.clone());
    let client =
        tokio::task::spawn_blocking(move || convos::session::client_for(&c2, &p2, &a2, creds))
            .await
            .expect("join")
            .expect("client");
    let opts = convos::sync::SyncOptions::from_config(&loaded.config.sync, true, false);
    let cancel = AtomicBool::new(false);
    let r = convos::sync::sync_once(&client, &archive, &opts, 1.8e9, &cancel).await;
    assert_eq!((r.new, r.failed, r.stop.clone()), (5, 0, None), "{r:?}");
    fake.reset_counts();
    let r = convos::sync::sync_once(&client, &archive, &opts, 1.8e9, &cancel).await;
    assert_eq!((r.new, r.updated, r.failed), (0, 0, 0), "{r:?}");
    assert_eq!(fake.count(RouteKind::Detail), 0);
    assert_eq!(fake.count(RouteKind::List), 1);
    assert_eq!(fake.count(RouteKind::ArchivedList), 1);
    fake.touch("conv-2", 1.7e9 + 500.0);
    let r = convos::sync::sync_once(&client, &archive, &opts, 1.8e9, &cancel).await;
    assert_eq!((r.new, r.updated), (0, 1), "{r:?}");
}
