//! Support for the daemon tests: an in-process daemon (`convos::daemon::run`) in a sealed
//! temporary world that the real binary can share (same data dir, same runtime dir, so the
//! same control socket), the real binary running `convos run` as a child process, browser-style
//! download writers, polling helpers, and a big export for interrupting imports.
//!
//! Nothing here asserts on wall-clock speed: conditions are polled every [`POLL`] until a
//! generous [`DEADLINE`], and a failure message says what was being waited for.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use convos::cli::StatusArgs;
use convos::config::{Config, Loaded, Overrides, PlatformDirs};
use convos::control::Request;
use convos::control::client;
use convos::control::{ControlRequest, Exit};
use convos::daemon::DaemonError;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::cli::{CliEnv, Run};
use super::fixtures::ConvBuilder;

/// How long any awaited condition may take before the test fails (a loaded 2-core machine
/// running the whole suite in parallel is slow; a passing run waits far less).
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often conditions are checked.
pub const POLL: Duration = Duration::from_millis(50);
/// The watcher's settle period in these tests (the default is 2 s).
pub const SETTLE_SECS: f64 = 0.3;

/// Polls `check` until it returns `Some`, panicking after [`DEADLINE`] with `what` and the
/// last observation `describe` gives.
pub async fn eventually<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > DEADLINE {
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}\n{}",
                describe()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The blocking twin of [`eventually`], for tests that drive child processes.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > deadline {
            panic!(
                "timed out after {deadline:?} waiting for {what}\n{}",
                describe()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// A sealed world for one daemon test: a [`CliEnv`] (data dir, empty config file, HOME and
/// XDG folders, `XDG_RUNTIME_DIR`) plus a folder to watch.
pub struct DaemonWorld {
    /// The binary's environment; the in-process daemon uses the same data and runtime dirs.
    pub cli: CliEnv,
    /// The watched folder (`CONVOS_WATCH_DIRS`).
    pub watch: PathBuf,
}

impl Default for DaemonWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl DaemonWorld {
    /// A fresh world with an empty watched folder.
    pub fn new() -> Self {
        let cli = CliEnv::new();
        let watch = cli.root().join("watch");
        fs::create_dir_all(&watch).expect("creating the watched folder");
        DaemonWorld { cli, watch }
    }

    /// The `XDG_RUNTIME_DIR` the binary gets (its socket lives under it).
    pub fn runtime_dir(&self) -> PathBuf {
        self.cli.root().join("runtime")
    }

    /// The configuration as the in-process daemon loads it: the same config file, data dir
    /// and `XDG_RUNTIME_DIR` as [`CliEnv::command`] gives the binary (so both agree on the
    /// socket), the watched folder, `extra` variables (`CONVOS_API_BASE_URL`, …), and the
    /// short settle period [`SETTLE_SECS`].
    pub fn load(&self, extra: &[(&str, String)]) -> (Loaded, PlatformDirs) {
        let home = self.cli.root().join("home");
        let platform = PlatformDirs {
            config_file: None,
            data_dir: None,
            downloads: Some(home.join("Downloads")),
            home: Some(home),
        };
        let mut vars: Vec<(String, String)> = vec![
            (
                "XDG_RUNTIME_DIR".into(),
                self.runtime_dir().display().to_string(),
            ),
            ("CONVOS_WATCH_DIRS".into(), self.watch.display().to_string()),
            // As for the binary: a free port for the viewer, never the default one.
            ("CONVOS_WEB_LISTEN".into(), "127.0.0.1:0".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let env = move |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let overrides = Overrides {
            config: Some(self.cli.config.clone()),
            data_dir: Some(self.cli.data_dir.clone()),
        };
        let mut loaded = Config::load(&overrides, &env, &platform).expect("loading the config");
        loaded.config.watch.settle_secs = SETTLE_SECS;
        (loaded, platform)
    }

    /// Runs `convos <args>` (the real binary, same data dir) off the async threads.
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.cli.command();
        cmd.args(args);
        run_command(cmd, None).await
    }

    /// Runs `convos <args>` with `stdin` as its standard input, off the async threads.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.cli.command();
        cmd.args(args);
        run_command(cmd, Some(stdin.to_owned())).await
    }

    /// Saves session credentials in the data dir, as `convos auth` would.
    pub fn save_credentials(&self, loaded: &Loaded, token: &str) {
        convos::api::auth::Credentials::parse_input(token, "test")
            .expect("parsing the test token")
            .save(&loaded.paths.credentials)
            .expect("saving the test credentials");
    }
}

/// Runs `cmd` off the async threads, with `stdin` as its standard input if given.
pub async fn run_command(mut cmd: Command, stdin: Option<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting the convos binary");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(text.as_bytes()).expect("writing stdin");
        }
        let out = child.wait_with_output().expect("running the convos binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("joining the convos run")
}

/// `convos::daemon::run` on the test's runtime. Dropping it cancels the daemon (a test that
/// panics does not leave it running); [`InProcess::stop`] cancels it and checks it stopped
/// cleanly.
pub struct InProcess {
    token: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), DaemonError>>>,
    /// The control socket.
    pub socket: PathBuf,
}

impl InProcess {
    /// Starts the daemon and waits until its control socket answers.
    pub async fn start(loaded: Loaded, platform: PlatformDirs) -> InProcess {
        let socket = loaded.paths.socket.clone();
        let token = CancellationToken::new();
        let handle = tokio::spawn(convos::daemon::run(loaded, platform, token.clone()));
        let mut d = InProcess {
            token,
            handle: Some(handle),
            socket,
        };
        let start = Instant::now();
        loop {
            if d.handle.as_ref().is_some_and(|h| h.is_finished()) {
                let r = d.handle.take().expect("handle").await;
                panic!("the daemon stopped during start-up: {r:?}");
            }
            if d.try_call(status_request()).await.is_some() {
                return d;
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "the daemon did not answer on {} in time",
                    d.socket.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends a request on the socket: `None` when nothing answers, else the exit frame and
    /// the standard output bytes.
    pub async fn try_call(&self, req: ControlRequest) -> Option<(Exit, Vec<u8>)> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            match client::call(&socket, &req, &mut out, &mut err) {
                Ok(Some(exit)) => Some((exit, out)),
                Ok(None) => None,
                Err(e) => panic!("control call failed: {e}"),
            }
        })
        .await
        .expect("joining the control call")
    }

    /// `status --json` through the socket.
    pub async fn status(&self) -> Value {
        let (exit, out) = self
            .try_call(status_request())
            .await
            .expect("the daemon answers on its socket");
        assert_eq!(exit, Exit::ok(), "status failed: {exit:?}");
        serde_json::from_slice(&out).expect("status --json is JSON")
    }

    /// Polls `status --json` until `cond` holds; returns that status.
    pub async fn wait_status(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let last = Mutex::new(Value::Null);
        eventually(
            what,
            async || {
                let s = self.status().await;
                let ok = cond(&s);
                *last.lock().expect("lock") = s.clone();
                ok.then_some(s)
            },
            || format!("last status: {:#}", last.lock().expect("lock")),
        )
        .await
    }

    /// Cancels the daemon and waits for it to return `Ok` (within [`DEADLINE`]); checks that
    /// the socket file is gone.
    pub async fn stop(mut self) {
        self.token.cancel();
        let handle = self.handle.take().expect("the daemon handle");
        let result = tokio::time::timeout(DEADLINE, handle)
            .await
            .expect("the daemon stops after cancellation")
            .expect("the daemon task did not panic");
        result.expect("the daemon stopped cleanly");
        assert!(
            !self.socket.exists(),
            "the socket {} is removed on exit",
            self.socket.display()
        );
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// `status --json` as a control request.
pub fn status_request() -> ControlRequest {
    ControlRequest::Command(Request::Status(StatusArgs { json: true }))
}

/// Archive conversation count in a `status --json` value.
pub fn conversations(status: &Value) -> u64 {
    status["counts"]["conversations"]
        .as_u64()
        .unwrap_or_else(|| panic!("no counts.conversations in {status:#}"))
}

/// Writes `bytes` to `dir/name` the way Chrome downloads: into `name.crdownload` in `chunks`
/// flushed pieces with a short pause between them, then a rename to the final name.
pub async fn write_chrome_style(dir: &Path, name: &str, bytes: &[u8], chunks: usize) {
    let part = dir.join(format!("{name}.crdownload"));
    write_in_chunks(&part, bytes, chunks).await;
    fs::rename(&part, dir.join(name)).expect("renaming the download");
}

/// Writes `bytes` to `dir/name` the way Firefox downloads: an empty file with the final name
/// first, the data into `name.part` in `chunks` pieces, then a rename over the empty file.
pub async fn write_firefox_style(dir: &Path, name: &str, bytes: &[u8], chunks: usize) {
    let final_path = dir.join(name);
    fs::File::create(&final_path).expect("creating the placeholder");
    let part = dir.join(format!("{name}.part"));
    write_in_chunks(&part, bytes, chunks).await;
    fs::rename(&part, &final_path).expect("renaming the download over the placeholder");
}

/// Writes `bytes` to `path` in `chunks` flushed pieces, pausing between them so the
/// watcher's events for the pieces interleave with the writes.
pub async fn write_in_chunks(path: &Path, bytes: &[u8], chunks: usize) {
    let mut f = fs::File::create(path).expect("creating the download");
    append_in_chunks(&mut f, bytes, chunks).await;
}

/// Appends `bytes` to an open file in `chunks` flushed pieces with short pauses.
pub async fn append_in_chunks(f: &mut fs::File, bytes: &[u8], chunks: usize) {
    let size = bytes.len().div_ceil(chunks.max(1)).max(1);
    for piece in bytes.chunks(size) {
        f.write_all(piece).expect("writing a chunk");
        f.flush().expect("flushing a chunk");
        f.sync_data().expect("syncing a chunk");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary under `convos run`
// ---------------------------------------------------------------------------------------------

/// `convos run` as a child process, its standard error collected as it arrives. Dropping it
/// kills the process (SIGKILL) if it still runs.
pub struct BinDaemon {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl BinDaemon {
    /// Starts `cmd` (a [`CliEnv::command`] with `run` and any variables added).
    pub fn spawn(mut cmd: Command) -> BinDaemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting convos run");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        BinDaemon {
            child,
            log,
            reader: Some(reader),
            exited: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until standard error contains `needle` (panics if the process exits first).
    pub fn wait_log(&mut self, needle: &str) {
        let start = Instant::now();
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Some(status) = self.try_exit() {
                // The last lines may still be in the pipe.
                self.join_reader();
                if self.log().contains(needle) {
                    return;
                }
                panic!(
                    "convos run exited ({status}) before logging {needle:?}\n--- stderr ---\n{}",
                    self.log()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "convos run did not log {needle:?} within {DEADLINE:?}\n--- stderr ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends a signal (`libc::SIGTERM`, `SIGINT`, `SIGKILL`).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill only sends a signal to our own child process.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// The exit status if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// Waits for the process to exit within `limit`; `None` if it is still running then.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_exit() {
                self.join_reader();
                return Some(s);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for BinDaemon {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_reader();
    }
}

/// Total size of the files under `dir` (recursively); 0 when it does not exist.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// A big export
// ---------------------------------------------------------------------------------------------

/// Conversations in [`big_export`].
pub const BIG_CONVERSATIONS: usize = 400;
/// Messages per conversation in [`big_export`].
const BIG_MESSAGES: usize = 40;

/// A ChatGPT export ZIP big enough that importing it takes a few seconds in a debug build
/// (≈ 13 MB: [`BIG_CONVERSATIONS`] conversations of [`BIG_MESSAGES`] messages, ids
/// `big-000000`…, one `conversations.json` member, stored uncompressed so building it is
/// cheap). Built once per machine under `CARGO_TARGET_TMPDIR` (deterministic bytes) and reused.
pub fn big_export() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_big_export("big"))
}

/// Another export like [`big_export`], with ids `bag-000000`…: both together make an
/// archive whose `export --format jsonl` is about 7 MB.
pub fn other_big_export() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_big_export("bag"))
}

fn build_big_export(prefix: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!(
        "daemon-{prefix}-export-v1-{BIG_CONVERSATIONS}x{BIG_MESSAGES}.zip"
    ));
    if fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
        return path;
    }
    fs::create_dir_all(dir).expect("creating CARGO_TARGET_TMPDIR");
    let bytes = big_export_bytes(prefix);
    // Another test process may build it at the same time: write aside, then rename.
    let tmp = dir.join(format!(
        "daemon-{prefix}-export.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    fs::write(&tmp, &bytes).expect("writing the big export");
    fs::rename(&tmp, &path).expect("publishing the big export");
    path
}

/// The id of the `i`-th conversation of [`big_export`].
pub fn big_id(i: usize) -> String {
    format!("big-{i:06}")
}

fn big_export_bytes(prefix: &str) -> Vec<u8> {
    const TEMPLATE_ID: &str = "big-template-id";
    let mut c = ConvBuilder::new(TEMPLATE_ID, "Big conversation");
    c.linear(BIG_MESSAGES);
    let template = serde_json::to_string(&c.build()).expect("serialising the template");
    let mut json = String::with_capacity((template.len() + 1) * BIG_CONVERSATIONS + 2);
    json.push('[');
    for i in 0..BIG_CONVERSATIONS {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&template.replace(TEMPLATE_ID, &format!("{prefix}-{i:06}")));
    }
    json.push(']');
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(
            zip::DateTime::from_date_and_time(2026, 1, 2, 3, 4, 6).expect("fixed zip time"),
        );
    zip.start_file("conversations.json", opts)
        .expect("starting the member");
    zip.write_all(json.as_bytes()).expect("writing the member");
    zip.finish().expect("finishing the big export").into_inner()
}

/// Every conversation in the archive at `archive_dir` reads and parses; returns their ids.
/// Opening the archive must work (it is the state a stopped or killed daemon left).
pub fn check_archive(archive_dir: &Path) -> Vec<String> {
    let archive = convos::archive::Archive::open(archive_dir, &Default::default())
        .expect("the archive opens after the daemon stopped");
    let mut ids = Vec::new();
    for rec in archive.iter_newest_first() {
        let rec = rec.expect("an archive record reads");
        let id = rec.summary.id.clone();
        let stored = archive
            .get(&id)
            .expect("a stored conversation reads")
            .unwrap_or_else(|| panic!("{id} is listed but not stored"));
        stored
            .parse()
            .unwrap_or_else(|e| panic!("stored conversation {id} does not parse: {e}"));
        ids.push(id);
    }
    assert_eq!(ids.len(), archive.len(), "every record has a conversation");
    ids
}
