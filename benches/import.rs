//! Import benchmark: `cargo bench --bench import [-- --mb N --zip]`.
//!
//! Generates a synthetic export (default ≈200 MB of conversations JSON: hundreds of
//! conversations with branches, long messages, code, thoughts and tool calls), then
//! runs the real `convos` binary on it as a child process and reports MB/s of
//! conversations JSON and the child's peak RSS for: a first import, a re-import of the
//! same file (recognised by digest), and a forced re-import (every conversation
//! compared and found unchanged, no writes). `--zip` also measures the same data as an
//! export ZIP; `--keep` leaves the generated files in the temp dir.

#[path = "support/synth.rs"]
mod synth;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use synth::generate;

fn zip_it(json: &Path, zip_path: &Path) {
    let mut w = zip::ZipWriter::new(File::create(zip_path).expect("create"));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("conversations.json", opts).expect("start");
    std::io::copy(&mut File::open(json).expect("open"), &mut w).expect("copy");
    w.finish().expect("finish");
}

/// Runs the binary, returning (seconds, peak RSS of the child in MB).
fn run(bin: &Path, data_dir: &Path, args: &[&str]) -> (f64, f64) {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("-q")
        .args(args)
        .stdout(std::process::Stdio::null())
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
        "convos failed: {status}"
    );
    (secs, usage.ru_maxrss as f64 / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb = args
        .iter()
        .position(|a| a == "--mb")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_convos"));
    let dir = std::env::temp_dir().join(format!("convos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json_path = dir.join("conversations.json");
    let bytes = generate(&json_path, mb);
    let mbytes = bytes as f64 / 1e6;
    let report = |label: &str, (secs, rss): (f64, f64)| {
        println!(
            "{label:<40} {secs:>7.2} s  {:>7.1} MB/s  peak RSS {rss:>6.1} MB",
            mbytes / secs
        );
    };
    println!("conversations JSON: {mbytes:.1} MB");
    let data = dir.join("data-json");
    let p = json_path.to_str().expect("utf8");
    report(
        "first import (conversations.json)",
        run(&bin, &data, &["import", p]),
    );
    report(
        "re-import, same file (digest skip)",
        run(&bin, &data, &["import", p]),
    );
    report(
        "re-import --force (all unchanged)",
        run(&bin, &data, &["import", "--force", p]),
    );
    if args.iter().any(|a| a == "--zip") {
        let zip_path = dir.join("export.zip");
        zip_it(&json_path, &zip_path);
        let z = zip_path.to_str().expect("utf8");
        let data = dir.join("data-zip");
        report(
            "first import (export ZIP)",
            run(&bin, &data, &["import", z]),
        );
        report(
            "re-import ZIP, same file (digest skip)",
            run(&bin, &data, &["import", z]),
        );
    }
    if args.iter().any(|a| a == "--keep") {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
