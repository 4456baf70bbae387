//! Daemon benchmark: `cargo bench --bench daemon [-- --conversations N --idle-secs S]`.
//!
//! Builds an archive of 10,000 conversations (≈20 KB each) with the real binary,
//! starts `convos run` on it, and reports: resident memory once idle, CPU time and
//! context switches over 20 idle seconds between schedule ticks (the targets: at most
//! 20 MB and under 0.05 s of CPU), the latency from an
//! export ZIP appearing in the watched folder (a browser-style rename) to its
//! conversations being listed, and the time to exit after SIGTERM. The web viewer's
//! share of memory: idle RSS of a daemon with `[web] enabled = false` against one with
//! it on (target: at most 5 MB more), and after serving 25 pages.

#[path = "support/synth.rs"]
mod synth;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn convos(bin: &Path, data: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--data-dir")
        .arg(data)
        .env_remove("XDG_RUNTIME_DIR")
        .env("CONVOS_CONFIG", "/dev/null");
    c
}

/// (resident KB, CPU ticks, context switches) summed over the process's threads.
fn sample(pid: u32) -> (u64, u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let mut switches = 0;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let s = fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in s.lines() {
                if l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
                {
                    switches += l
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    (rss, ticks, switches)
}

fn listed(bin: &Path, data: &Path) -> String {
    let out = convos(bin, data)
        .args(["list", "--json"])
        .output()
        .expect("list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_ready(bin: &Path, data: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = convos(bin, data)
            .args(["status", "--json"])
            .output()
            .expect("status");
        if String::from_utf8_lossy(&out.stdout).contains("\"running\": true") {
            return;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the daemon exited"
        );
        assert!(Instant::now() < deadline, "the daemon did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `convos run` on `data`; `config` is the config file to use.
fn start(bin: &Path, data: &Path, watch: &Path, config: &Path, log: &Path) -> Child {
    let log = fs::File::create(log).expect("log");
    let mut child = convos(bin, data)
        .arg("run")
        .env("CONVOS_CONFIG", config)
        .env("CONVOS_WATCH_DIRS", watch)
        .env("CONVOS_WEB_LISTEN", "127.0.0.1:0")
        .env("CONVOS_SYNC_SCHEDULE", "0 0 0 1 1 *")
        .env("CONVOS_SYNC_RECONCILE_SCHEDULE", "0 0 0 1 1 *")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run");
    wait_ready(bin, data, &mut child);
    child
}

fn stop(child: &mut Child) {
    // SAFETY: kill only signals our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}

/// One plain HTTP GET; the answer's head and body.
fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    out
}

/// Reads a few pages from the running daemon's viewer, as a person would.
fn browse(bin: &Path, data: &Path, ids: &[String]) {
    let out = convos(bin, data)
        .args(["web", "--print-url"])
        .output()
        .expect("web");
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rest = url.strip_prefix("http://").expect("url");
    let (addr, token) = rest.split_once("/?token=").expect("token");
    let head = http_get(addr, &format!("/?token={token}"), None);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    for path in ["/", "/?page=5", "/?archived=only", "/status", "/projects"] {
        assert!(http_get(addr, path, Some(&cookie)).starts_with("HTTP/1.1 200"));
    }
    for id in ids {
        let page = http_get(addr, &format!("/c/{id}"), Some(&cookie));
        assert!(page.starts_with("HTTP/1.1 200"), "{id}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--conversations", 10_000) as usize;
    let idle = arg(&args, "--idle-secs", 20);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_convos"));
    let dir = std::env::temp_dir().join(format!("convos-daemon-bench-{}", std::process::id()));
    let (data, watch) = (dir.join("data"), dir.join("downloads"));
    fs::create_dir_all(&watch).expect("dirs");
    let export = dir.join("conversations.json");
    let bytes = synth::generate_with(&export, usize::MAX / 2_000_000, n, (8_000, 40_000));
    let t = Instant::now();
    let ok = convos(&bin, &data)
        .args(["-q", "import"])
        .arg(&export)
        .status()
        .expect("import");
    assert!(ok.success());
    println!(
        "archive: {n} conversations, {:.0} MB of JSON, imported in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    fs::remove_file(&export).ok();

    // Both daemons below start with a current search index (the first start would
    // otherwise build it while being measured).
    let ok = convos(&bin, &data)
        .args(["-q", "reindex"])
        .status()
        .expect("reindex");
    assert!(ok.success());
    // The viewer's share of idle memory: the daemon with `[web] enabled = false` first.
    let off = dir.join("web-off.toml");
    fs::write(&off, "[web]\nenabled = false\n").expect("config");
    let mut child = start(&bin, &data, &watch, &off, &dir.join("daemon-web-off.log"));
    std::thread::sleep(Duration::from_secs(3));
    let (rss_off, _, _) = sample(child.id());
    stop(&mut child);

    // Far from any tick during the measurement (the scheduler's own 500 ms loop still
    // runs, and is part of what is measured): see `start`.
    let started = Instant::now();
    let mut child = start(
        &bin,
        &data,
        &watch,
        Path::new("/dev/null"),
        &dir.join("daemon.log"),
    );
    println!("daemon ready in {:.2} s", started.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(3));
    let (rss0, ticks0, sw0) = sample(child.id());
    std::thread::sleep(Duration::from_secs(idle));
    let (rss1, ticks1, sw1) = sample(child.id());
    let hz = 100.0;
    println!(
        "idle: RSS {:.1} MB (after {idle} s: {:.1} MB); CPU {:.2} s and {} context switches over {idle} s idle",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        (ticks1 - ticks0) as f64 / hz,
        sw1 - sw0
    );
    // Twenty conversations' pages and the list, status and project pages, then idle.
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&listed(&bin, &data))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .step_by((n / 20).max(1))
        .take(20)
        .collect();
    // `convos list` through the daemon reads every record too (sled's cache fills).
    std::thread::sleep(Duration::from_secs(1));
    let (rss_listed, _, _) = sample(child.id());
    browse(&bin, &data, &ids);
    std::thread::sleep(Duration::from_secs(3));
    let (rss_browsed, _, _) = sample(child.id());
    println!(
        "web viewer: idle RSS {:.1} MB with it off, {:.1} MB with it on ({:+.1} MB); {:.1} MB after `convos list`, {:.1} MB idle after then serving 25 pages",
        rss_off as f64 / 1024.0,
        rss0 as f64 / 1024.0,
        (rss0 as f64 - rss_off as f64) / 1024.0,
        rss_listed as f64 / 1024.0,
        rss_browsed as f64 / 1024.0
    );

    // A small export, downloaded the way Chrome does it.
    let mut rng = synth::Rng(7);
    let mut zip =
        zip::ZipWriter::new(fs::File::create(watch.join("export.zip.crdownload")).expect("zip"));
    zip.start_file(
        "conversations.json",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("start");
    let mut convs = Vec::new();
    for i in 0..5 {
        convs.push(synth::conversation(&mut rng, 900_000 + i, 30_000));
    }
    let probe = convs[0]["id"].as_str().expect("id").to_owned();
    zip.write_all(&serde_json::to_vec(&convs).expect("json"))
        .expect("write");
    zip.finish().expect("finish");
    let dropped = Instant::now();
    fs::rename(
        watch.join("export.zip.crdownload"),
        watch.join("export.zip"),
    )
    .expect("rename");
    loop {
        if listed(&bin, &data).contains(&probe) {
            break;
        }
        assert!(
            dropped.elapsed() < Duration::from_secs(60),
            "the drop was never imported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "drop-to-archived latency: {:.2} s (settle period 2 s)",
        dropped.elapsed().as_secs_f64()
    );
    let (rss2, _, _) = sample(child.id());
    println!(
        "RSS after importing the drop: {:.1} MB",
        rss2 as f64 / 1024.0
    );

    let term = Instant::now();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    println!(
        "exit after SIGTERM: {:.2} s, {status}",
        term.elapsed().as_secs_f64()
    );
    if args.iter().any(|a| a == "--keep") {
        println!("kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
}
