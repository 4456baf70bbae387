//! A world for sync tests: the fake chatgpt.com, an archive in a temporary data dir, and a
//! configuration tuned so that pacing and retry delays cost (almost) nothing.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use convos::api::Client;
use convos::api::auth::Credentials;
use convos::archive::Archive;
use convos::archive::schema::ConvRecord;
use convos::commands::Context;
use convos::config::{Config, Overrides, Paths, PlatformDirs};
use convos::ingest::ProgressMode;
use convos::sync::{self, SyncOptions, SyncReport, SyncState};
use serde_json::Value;
use tempfile::TempDir;

use super::fake_server::{ConvOpts, FakeChatGpt, conversation_detail};

/// The session cookie value every test world starts with.
pub const TOKEN: &str = "sess-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH";

/// Detail `create_time` of the conversations [`SyncEnv::put`] makes.
pub const CREATED: f64 = 1_700_000_000.5;

/// Wall time now, epoch seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Makes pacing free and retries near-instant (429 backoff: 1 s, the smallest it can be).
pub fn make_fast(config: &mut Config) {
    config.api.burst = 1_000_000;
    config.api.refill_per_minute = 60_000_000.0;
    config.api.max_per_second = 1_000_000.0;
    config.api.retry_base_secs = 0.001;
    config.api.rate_limit_base_secs = 1;
    config.api.rate_limit_max_secs = 2;
    config.api.connect_timeout_secs = 5;
    config.api.request_timeout_secs = 30;
}

/// The fake server, an archive in a temp dir and a fast configuration.
pub struct SyncEnv {
    /// The fake chatgpt.com; [`TOKEN`] is a valid session on it.
    pub fake: FakeChatGpt,
    /// The effective configuration (mutate it before building clients).
    pub config: Config,
    /// Resolved paths in the temp data dir.
    pub paths: Paths,
    /// The archive.
    pub archive: Archive,
    /// The platform dirs the config was loaded with (home = `<root>/home`).
    pub platform: PlatformDirs,
    root: TempDir,
}

impl SyncEnv {
    /// Starts the fake on the current runtime.
    pub async fn start() -> SyncEnv {
        SyncEnv::with_fake(FakeChatGpt::start().await)
    }

    /// Starts the fake on its own thread (for tests that are not async).
    pub fn background() -> SyncEnv {
        SyncEnv::with_fake(FakeChatGpt::start_background())
    }

    /// A fake without a socket, reached in-process ([`SyncEnv::client`] goes through
    /// its transport): for tests under tokio's paused clock.
    pub fn in_process() -> SyncEnv {
        SyncEnv::with_fake(FakeChatGpt::in_process())
    }

    fn with_fake(fake: FakeChatGpt) -> SyncEnv {
        fake.add_session(TOKEN);
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let platform = PlatformDirs {
            config_file: None,
            data_dir: Some(root.path().join("data")),
            downloads: None,
            home: Some(home),
        };
        let base = fake.base_url();
        let env = move |k: &str| match k {
            "CONVOS_API_BASE_URL" => Some(base.clone()),
            _ => None,
        };
        let loaded = Config::load(&Overrides::default(), &env, &platform).expect("config");
        let mut config = loaded.config;
        make_fast(&mut config);
        let archive =
            Archive::open(&loaded.paths.archive_dir, &Default::default()).expect("archive");
        SyncEnv {
            fake,
            config,
            paths: loaded.paths,
            archive,
            platform,
            root,
        }
    }

    /// The temporary root (holds `data/` and `home/`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Credentials holding [`TOKEN`], as if pasted.
    pub fn creds(&self) -> Credentials {
        creds(TOKEN)
    }

    /// A client for [`TOKEN`].
    pub async fn client(&self) -> Client {
        self.client_with(self.creds()).await
    }

    /// A client for these credentials, built like a sync run builds it (reads the archive;
    /// an in-process fake is reached through its transport).
    pub async fn client_with(&self, creds: Credentials) -> Client {
        let (c, p, a) = (
            self.config.clone(),
            self.paths.clone(),
            self.archive.clone(),
        );
        let transport = self
            .fake
            .base_url()
            .contains("in-process")
            .then(|| self.fake.transport());
        tokio::task::spawn_blocking(move || match transport {
            None => convos::session::client_for(&c, &p, &a, creds).expect("client"),
            Some(t) => {
                let device = convos::session::device_id(&a).expect("device id");
                let pacer = convos::session::pacer_for(&c, &a, &creds);
                Client::with_transport(&c.api, creds, device, pacer, None, t).expect("client")
            }
        })
        .await
        .expect("join")
    }

    /// The request pacing state saved for the fake's account.
    pub fn pace_state(&self) -> Option<convos::api::pace::PaceState> {
        let key = convos::api::pace::state_key(Some(&self.fake.account_id()));
        self.archive.state(&key).expect("pace state")
    }

    /// Sync options from the configuration (attachments on).
    pub fn opts(&self, full: bool) -> SyncOptions {
        SyncOptions::from_config(&self.config.sync, true, full)
    }

    /// One normal sync run.
    pub async fn sync(&self, client: &Client) -> SyncReport {
        self.sync_with(client, &self.opts(false)).await
    }

    /// One `--full` sync run.
    pub async fn sync_full(&self, client: &Client) -> SyncReport {
        self.sync_with(client, &self.opts(true)).await
    }

    /// One sync run with these options.
    pub async fn sync_with(&self, client: &Client, opts: &SyncOptions) -> SyncReport {
        let cancel = AtomicBool::new(false);
        sync::sync_once(client, &self.archive, opts, now(), &cancel).await
    }

    /// Puts a small conversation on the server (detail `update_time` as given).
    pub fn put(&self, id: &str, update_time: f64) {
        self.put_opts(id, update_time, ConvOpts::default());
    }

    /// Puts a small conversation with flags on the server.
    pub fn put_opts(&self, id: &str, update_time: f64, opts: ConvOpts) {
        self.fake.put_conversation(
            conversation_detail(id, &format!("Title of {id}"), CREATED, update_time),
            opts,
        );
    }

    /// The archive's record of a conversation.
    pub fn record(&self, id: &str) -> Option<ConvRecord> {
        self.archive.record(id).expect("archive record")
    }

    /// The record, which must exist.
    pub fn must(&self, id: &str) -> ConvRecord {
        self.record(id)
            .unwrap_or_else(|| panic!("{id} is not in the archive"))
    }

    /// The stored JSON of a conversation, parsed.
    pub fn stored_json(&self, id: &str) -> Option<Value> {
        self.archive
            .get(id)
            .expect("archive get")
            .map(|s| serde_json::from_slice(&s.raw).expect("stored JSON parses"))
    }

    /// The sync bookkeeping saved in the archive.
    pub fn state(&self) -> SyncState {
        self.archive
            .state::<SyncState>(sync::STATE_KEY)
            .expect("state")
            .unwrap_or_default()
    }

    /// The server's current detail `update_time` of a conversation.
    pub fn server_time(&self, id: &str) -> f64 {
        self.fake
            .conversation(id)
            .and_then(|d| d["update_time"].as_f64())
            .unwrap_or_else(|| panic!("{id} is not on the server"))
    }

    /// A handler context over this world (for `app::sync::run_sync`).
    pub fn context(&self) -> Context {
        Context {
            archive: self.archive.clone(),
            config: self.config.clone(),
            paths: self.paths.clone(),
            platform: self.platform.clone(),
            progress: ProgressMode::Off,
            cancel: std::sync::Arc::new(AtomicBool::new(false)),
            daemon: None,
            config_file: None,
            user_modes: Default::default(),
        }
    }

    /// Ids in the archive, sorted.
    pub fn archived_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .archive
            .iter_newest_first()
            .map(|r| r.expect("record").summary.id)
            .collect();
        ids.sort();
        ids
    }
}

/// Credentials holding `token`, as if pasted on stdin.
pub fn creds(token: &str) -> Credentials {
    Credentials::parse_input(token, "stdin").expect("credentials")
}

/// Fails early when the developer's environment would change which session is used.
pub fn assert_no_session_env() {
    assert!(
        std::env::var_os("CONVOS_SESSION_TOKEN").is_none(),
        "unset CONVOS_SESSION_TOKEN to run the sync tests (it overrides every credentials file)"
    );
}

/// Runs the real `convos` binary in `cli`'s sealed environment against `fake`, with fast
/// pacing, optional standard input and extra environment variables.
pub fn run_cli(
    cli: &super::cli::CliEnv,
    fake: &FakeChatGpt,
    args: &[&str],
    stdin: Option<&str>,
    extra_env: &[(&str, &str)],
) -> super::cli::Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = cli.command();
    cmd.env("CONVOS_API_BASE_URL", fake.base_url())
        .env("CONVOS_API_BURST", "100000")
        .env("CONVOS_API_REFILL_PER_MINUTE", "6000000")
        .env("CONVOS_API_MAX_PER_SECOND", "100000")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running the convos binary");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("writing stdin");
    }
    let out = child.wait_with_output().expect("waiting for convos");
    super::cli::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
