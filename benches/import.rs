//! Import benchmark: `cargo bench --bench import [-- --runs N --mb N --only realistic|large --keep]`.
//!
//! Two exports, generated once and kept under the target directory:
//! - **realistic**: an export ZIP that looks like a real one (10,000 conversations of
//!   every size, median ≈ 27 KB, ≈ 275 MB of JSON in shards, ≈ 8,200 small images,
//!   ≈ 77 MB zipped). Measured side by side in one run: inflating every member of the
//!   ZIP in-process and with `unzip -p` (the floor), then the real `convos` binary
//!   importing it, re-importing the same file (recognised by digest) and re-importing
//!   it with `--force` (every conversation compared, none written).
//! - **large**: `conversations.json` of large conversations (default ≈ 200 MB, `--mb`),
//!   imported as a bare JSON file: MB/s of conversations JSON.
//!
//! `CONVOS_BIN=/path/to/convos` measures another build on the same data (a build from
//! before a change, for a before/after table). The binary runs as a child process; its
//! peak RSS and the blocks it wrote come from `wait4`. With `--runs N` every measurement is repeated N times, interleaved (inflate,
//! import, inflate, import…), so a machine shared with other work slows both alike; the
//! table shows the fastest and the median run.

#[path = "support/synth.rs"]
mod synth;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bump when the generators change, so a kept export is made again.
const DATA_VERSION: u32 = 2;
const CONVERSATIONS: usize = 10_000;
const ATTACHMENTS: usize = 8_200;

/// One child run: wall seconds, peak RSS in MB, MB written to storage.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    rss_mb: f64,
    written_mb: f64,
}

/// Runs the binary, returning its time, peak RSS and writes.
fn run(bin: &Path, data_dir: &Path, args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("-q")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn convos");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let secs = start.elapsed().as_secs_f64();
    let _ = child.try_wait();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "convos {args:?} failed: {status}"
    );
    Run {
        secs,
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
        written_mb: usage.ru_oublock as f64 * 512.0 / 1e6,
    }
}

/// Inflates every member of the ZIP in this process (zip crate, zlib-rs), discarding it.
fn inflate_in_process(zip_path: &Path) -> f64 {
    let start = Instant::now();
    let mut zip = zip::ZipArchive::new(File::open(zip_path).expect("open zip")).expect("zip");
    let mut buf = vec![0u8; 256 << 10];
    for i in 0..zip.len() {
        let mut m = zip.by_index(i).expect("member");
        while m.read(&mut buf).expect("inflate") > 0 {}
    }
    start.elapsed().as_secs_f64()
}

/// `unzip -p` of the whole ZIP to /dev/null, when `unzip` is installed.
fn inflate_unzip(zip_path: &Path) -> Option<f64> {
    let start = Instant::now();
    let status = Command::new("unzip")
        .arg("-p")
        .arg(zip_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Prints one row: fastest and median time, MB/s of `mb` at the fastest, the worst peak
/// RSS and the most written, plus a note.
fn row(label: &str, runs: &[Run], mb: f64, note: &str) {
    let secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    let fastest = min(&secs);
    let rss = runs.iter().map(|r| r.rss_mb).fold(0.0, f64::max);
    let written = runs.iter().map(|r| r.written_mb).fold(0.0, f64::max);
    println!(
        "  {label:<38} {fastest:>6.2} s (median {:>6.2})  {:>6.0} MB/s  peak RSS {rss:>6.1} MB  wrote {written:>7.1} MB  {note}",
        median(secs),
        mb / fastest,
    );
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("import-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// The realistic export, generated once per [`DATA_VERSION`].
fn realistic(dir: &Path) -> (PathBuf, f64) {
    let zip_path = dir.join(format!("realistic-v{DATA_VERSION}.zip"));
    let stats_path = dir.join(format!("realistic-v{DATA_VERSION}.json-mb"));
    if let Ok(mb) = std::fs::read_to_string(&stats_path)
        && let Ok(mb) = mb.trim().parse()
        && zip_path.is_file()
    {
        return (zip_path, mb);
    }
    eprintln!("generating the realistic export…");
    let s = synth::realistic_export(&zip_path, CONVERSATIONS, ATTACHMENTS);
    eprintln!(
        "generated {} conversations ({:.1} MB of JSON, median {:.1} KB), {} attachments \
         ({:.1} MB), ZIP {:.1} MB",
        s.conversations,
        s.json_bytes as f64 / 1e6,
        s.median_bytes as f64 / 1e3,
        s.attachments,
        s.attachment_bytes as f64 / 1e6,
        s.zip_bytes as f64 / 1e6
    );
    let mb = s.json_bytes as f64 / 1e6;
    std::fs::write(&stats_path, format!("{mb}")).expect("stats");
    (zip_path, mb)
}

fn bench_realistic(bin: &Path, dir: &Path, runs: usize) {
    let (zip_path, json_mb) = realistic(dir);
    let zip_mb = std::fs::metadata(&zip_path).map_or(0.0, |m| m.len() as f64 / 1e6);
    let z = zip_path.to_str().expect("utf8");
    println!(
        "realistic export: {CONVERSATIONS} conversations, {json_mb:.1} MB of JSON, \
         ~{ATTACHMENTS} attachments, ZIP {zip_mb:.1} MB"
    );
    let (mut inflate, mut unzip) = (Vec::new(), Vec::new());
    let (mut first, mut again, mut forced) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        inflate.push(inflate_in_process(&zip_path));
        if let Some(s) = inflate_unzip(&zip_path) {
            unzip.push(s);
        }
        let data = dir.join("data-realistic");
        let _ = std::fs::remove_dir_all(&data);
        first.push(run(bin, &data, &["import", z]));
        again.push(run(bin, &data, &["import", z]));
        forced.push(run(bin, &data, &["import", "--force", z]));
        let _ = std::fs::remove_dir_all(&data);
    }
    let floor = min(&inflate);
    let as_run = |s: &[f64]| -> Vec<Run> {
        s.iter()
            .map(|&secs| Run {
                secs,
                rss_mb: 0.0,
                written_mb: 0.0,
            })
            .collect()
    };
    row(
        "inflate every member (zip crate)",
        &as_run(&inflate),
        json_mb,
        "1.0x",
    );
    if !unzip.is_empty() {
        let note = format!("{:.2}x", min(&unzip) / floor);
        row("unzip -p > /dev/null", &as_run(&unzip), json_mb, &note);
    }
    let t = |r: &[Run]| min(&r.iter().map(|r| r.secs).collect::<Vec<_>>());
    let vs_unzip = if unzip.is_empty() {
        String::new()
    } else {
        format!(", {:.2}x unzip -p", t(&first) / min(&unzip))
    };
    let note = format!("{:.2}x inflate{vs_unzip}", t(&first) / floor);
    row("first import (convos import ZIP)", &first, json_mb, &note);
    let note = format!("{:.0}x faster than the first", t(&first) / t(&again));
    row("re-import, same file (digest skip)", &again, json_mb, &note);
    let note = format!("{:.2}x inflate", t(&forced) / floor);
    row("re-import --force (all unchanged)", &forced, json_mb, &note);
}

fn bench_large(bin: &Path, dir: &Path, runs: usize, mb: usize) {
    let json_path = dir.join(format!("large-v{DATA_VERSION}-{mb}mb.json"));
    if !json_path.is_file() {
        synth::generate(&json_path, mb);
    }
    let json_mb = std::fs::metadata(&json_path).map_or(0.0, |m| m.len() as f64 / 1e6);
    let p = json_path.to_str().expect("utf8");
    println!("large conversations: conversations.json, {json_mb:.1} MB");
    let (mut first, mut forced) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let data = dir.join("data-large");
        let _ = std::fs::remove_dir_all(&data);
        first.push(run(bin, &data, &["import", p]));
        forced.push(run(bin, &data, &["import", "--force", p]));
        let _ = std::fs::remove_dir_all(&data);
    }
    row("first import (conversations.json)", &first, json_mb, "");
    row("re-import --force (all unchanged)", &forced, json_mb, "");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = arg(&args, "--runs").unwrap_or(3usize).max(1);
    let mb = arg(&args, "--mb").unwrap_or(200usize);
    let only: Option<String> = arg(&args, "--only");
    // `CONVOS_BIN` measures another build (say, the one before a change) on the same data.
    let bin = std::env::var_os("CONVOS_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_convos")),
        PathBuf::from,
    );
    println!("binary: {}", bin.display());
    let dir = data_dir();
    if only.as_deref() != Some("large") {
        bench_realistic(&bin, &dir, runs);
    }
    if only.as_deref() != Some("realistic") {
        bench_large(&bin, &dir, runs, mb);
    }
    if !args.iter().any(|a| a == "--keep") {
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(f.path());
        }
    }
}
