//! Sync benchmark: `cargo bench --bench sync [-- --conversations N --models A,B,C]`.
//!
//! Runs the real sync engine (walk, batch and single fetches, attachments, the adaptive
//! pacer, the archive) against the tests' fake chatgpt.com, reached in-process under
//! tokio's paused clock, so hours of pacing take seconds. The daemon's schedule is
//! modelled: a run at start, then one at every half hour that finds no run going.
//! The account holds 2,000 conversations, one in ten with an image. Three models of the
//! service, whose real limits are not published:
//! - A: a bucket of 200 requests refilled at one a minute, no batch endpoint;
//! - B: the same with the batch endpoint;
//! - C: at most 300 requests in any minute (429 without `Retry-After` beyond), no batch.
//!
//! For each: the simulated time to a complete archive (text, then attachments), the
//! ratio to the ideal (the requests the service had to serve beyond its burst, divided
//! by the lesser of its rate and the configured ceiling of 2 a second), the requests by
//! endpoint, and the 429s (all, and per 100 requests after the first hour).

#[allow(dead_code)]
#[path = "../tests/it/support/fake_server.rs"]
mod fake_server;

use convos::api::Client;
use convos::api::auth::Credentials;
use convos::archive::{Archive, OpenOptions};
use convos::config::Config;
use convos::sync::{SyncOptions, sync_once};
use fake_server::{ConvOpts, FakeChatGpt, ImageAttachment, RouteKind};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::time::Instant;

const TOKEN: &str = "sess-bench-0123456789abcdefghijklmnopqrstuvwxyz";
const T0: f64 = 1_750_000_000.0;
/// The daemon's default schedule: every half hour.
const EVERY: Duration = Duration::from_secs(30 * 60);
/// Give up on a model after this much simulated time.
const CAP: Duration = Duration::from_secs(7 * 86_400);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Model {
    A,
    B,
    C,
}

impl Model {
    fn describe(self) -> &'static str {
        match self {
            Model::A => "A: bucket 200, 1/min, no batch",
            Model::B => "B: bucket 200, 1/min, batch",
            Model::C => "C: 300/min window, 429 without Retry-After",
        }
    }

    /// (burst, rate a second) of the service.
    fn limits(self) -> (f64, f64) {
        match self {
            Model::A | Model::B => (200.0, 1.0 / 60.0),
            // A window of 300 a minute never binds at the 2/s ceiling: no burst to use.
            Model::C => (0.0, 5.0),
        }
    }

    fn set_up(self, fake: &FakeChatGpt) {
        match self {
            Model::A => fake.set_rate_limit(200, 1.0),
            Model::B => {
                fake.set_rate_limit(200, 1.0);
                fake.enable_batch();
            }
            Model::C => fake.set_window_limit(300, Duration::from_secs(60)),
        }
    }
}

struct Outcome {
    model: Model,
    text: Option<Duration>,
    all: Option<Duration>,
    text_requests: usize,
    all_requests: usize,
    by_kind: Vec<(&'static str, usize)>,
    limited: usize,
    steady_limited: usize,
    steady_requests: usize,
    runs: u32,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn populate(fake: &FakeChatGpt, n: u32) {
    fake.add_session(TOKEN);
    for i in 0..n {
        let id = format!("conv-{i:05}");
        let update = T0 + f64::from(i) * 97.0 + 0.25;
        let detail = if i % 10 == 3 {
            let file_id = format!("file_{i:05}img");
            fake.put_file(&file_id, vec![7; 2048], "pic.png", "image/png");
            fake_server::image_conversation_detail(
                &id,
                &format!("Chat {i}"),
                update - 50.0,
                update,
                &ImageAttachment {
                    file_id: &file_id,
                    name: "pic.png",
                    mime: "image/png",
                    size: 2048,
                },
            )
        } else {
            fake_server::conversation_detail(&id, &format!("Chat {i}"), update - 50.0, update)
        };
        fake.put_conversation(detail, ConvOpts::default());
    }
}

/// Requests that reached the service's limits (everything under `/backend-api/`) and
/// were served, up to `until`.
fn served(fake: &FakeChatGpt, until: Instant) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.kind != RouteKind::Session && r.at <= until && r.status != Some(429))
        .count()
}

async fn run_model(model: Model, n: u32) -> Outcome {
    let fake = FakeChatGpt::in_process();
    populate(&fake, n);
    model.set_up(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let archive =
        Archive::open(&dir.path().join("archive"), &OpenOptions::default()).expect("archive");
    let mut config = Config::default();
    config.api.base_url = fake.base_url();
    let creds = Credentials::parse_input(TOKEN, "bench").expect("credentials");
    // Reading the device id and the saved pace is a little blocking work, once.
    let device = convos::session::device_id(&archive).expect("device id");
    let pacer = convos::session::pacer_for(&config, &archive, &creds);
    let client = Client::with_transport(&config.api, creds, device, pacer, None, fake.transport())
        .expect("client");
    let opts = SyncOptions::from_config(&config.sync, true, false);
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let wall = convos::model::time::now_secs();

    // The moment the last conversation is stored: watched through the change feed.
    let watcher = {
        let archive = archive.clone();
        let mut changes = archive.subscribe_changes();
        tokio::spawn(async move {
            loop {
                if archive.len() >= n as usize {
                    return Instant::now();
                }
                if changes.changed().await.is_err() {
                    return Instant::now();
                }
            }
        })
    };
    let mut runs = 0;
    let mut all = None;
    loop {
        runs += 1;
        let now = wall + start.elapsed().as_secs_f64();
        let report = sync_once(&client, &archive, &opts, now, &cancel).await;
        if let Some(stop) = &report.stop {
            eprintln!("model {model:?}, run {runs}: stopped: {stop}");
        }
        let missing = archive.missing_files().expect("missing files").len();
        if archive.len() >= n as usize && missing == 0 {
            all = Some(Instant::now());
            break;
        }
        if start.elapsed() > CAP {
            break;
        }
        // The next half-hour tick that finds no run going.
        let since = start.elapsed();
        let next = EVERY * (since.as_secs() / EVERY.as_secs() + 1) as u32;
        tokio::time::sleep_until(start + next).await;
    }
    let text_at = if archive.len() >= n as usize {
        watcher.await.ok()
    } else {
        watcher.abort();
        None
    };
    let end = all.unwrap_or_else(Instant::now);
    let requests = fake.requests();
    let hour = start + Duration::from_secs(3600);
    let steady: Vec<_> = requests
        .iter()
        .filter(|r| r.kind != RouteKind::Session && r.at > hour)
        .collect();
    Outcome {
        model,
        text: text_at.map(|t| t - start),
        all: all.map(|t| t - start),
        text_requests: text_at.map_or(0, |t| served(&fake, t)),
        all_requests: served(&fake, end),
        by_kind: [
            ("list", RouteKind::List),
            ("archived", RouteKind::ArchivedList),
            ("detail", RouteKind::Detail),
            ("batch", RouteKind::Batch),
            ("sidebar", RouteKind::Sidebar),
            ("file info", RouteKind::FileDownload),
            ("file bytes", RouteKind::FileBytes),
            ("session", RouteKind::Session),
        ]
        .into_iter()
        .map(|(name, kind)| (name, fake.count(kind)))
        .collect(),
        limited: requests.iter().filter(|r| r.status == Some(429)).count(),
        steady_limited: steady.iter().filter(|r| r.status == Some(429)).count(),
        steady_requests: steady.len(),
        runs,
    }
}

/// The least time the service allows for `requests`: beyond its burst at the lesser of
/// its rate and the ceiling, and never faster than the ceiling.
fn ideal(model: Model, requests: usize, ceiling: f64) -> Duration {
    let (burst, rate) = model.limits();
    let n = requests as f64;
    let secs = ((n - burst).max(0.0) / rate.min(ceiling)).max(n / ceiling);
    Duration::from_secs_f64(secs)
}

fn words(d: Option<Duration>) -> String {
    let Some(d) = d else {
        return "not reached".into();
    };
    let s = d.as_secs();
    if s < 3600 {
        format!("{:.1} min", d.as_secs_f64() / 60.0)
    } else {
        format!("{}h{:02}", s / 3600, (s % 3600) / 60)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = arg(&args, "--conversations")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let models: Vec<Model> = arg(&args, "--models")
        .unwrap_or_else(|| "A,B,C".into())
        .split(',')
        .filter_map(|m| match m.trim() {
            "A" | "a" => Some(Model::A),
            "B" | "b" => Some(Model::B),
            "C" | "c" => Some(Model::C),
            _ => None,
        })
        .collect();
    let ceiling = Config::default().api.max_per_second;
    println!("sync benchmark: {n} conversations (1 in 10 with an image), default configuration");
    println!();
    println!(
        "| model | text complete | ideal | ratio | with attachments | ideal | ratio | requests by endpoint | 429s | 429s per 100 after 1 h | runs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for model in models {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let real = std::time::Instant::now();
        let o = rt.block_on(run_model(model, n));
        let ideal_text = ideal(model, o.text_requests, ceiling);
        let ideal_all = ideal(model, o.all_requests, ceiling);
        let ratio = |got: Option<Duration>, ideal: Duration| match got {
            Some(g) if !ideal.is_zero() => format!("{:.2}x", g.as_secs_f64() / ideal.as_secs_f64()),
            _ => "-".into(),
        };
        let kinds: Vec<String> = o
            .by_kind
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        let per_100 = if o.steady_requests > 0 {
            format!(
                "{:.2} ({} in {})",
                o.steady_limited as f64 * 100.0 / o.steady_requests as f64,
                o.steady_limited,
                o.steady_requests
            )
        } else {
            "-".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.model.describe(),
            words(o.text),
            words(Some(ideal_text)),
            ratio(o.text, ideal_text),
            words(o.all),
            words(Some(ideal_all)),
            ratio(o.all, ideal_all),
            kinds.join(", "),
            o.limited,
            per_100,
            o.runs
        );
        eprintln!(
            "model {:?}: {:.1} s of real time; {} requests served for the text, {} in all",
            model,
            real.elapsed().as_secs_f64(),
            o.text_requests,
            o.all_requests
        );
    }
}
