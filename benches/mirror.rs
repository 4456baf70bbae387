//! Mirror benchmark: `cargo bench --bench mirror [-- --conversations N --keep --dir DIR]`
//! (`--dir` keeps its work folder and reuses the archive built there by an earlier run).
//!
//! Builds an archive of N synthetic conversations (default 10,000, ≈30 KB of JSON each
//! on average, one in ten in a project), then measures:
//! - `convos export --format md --out DIR` (the real binary, a child process);
//! - the first mirror of the same archive into an empty folder (the library, opening
//!   the archive included), against issue 14's target of ≤ 1.5× the export;
//! - a second run with nothing changed, and a `--rebuild` run (every note read back);
//! - an incremental update after one conversation changed, from the change feed as the
//!   daemon runs it: the files read and written.
//!
//! The synthetic conversations carry no attachments (the export and the mirror copy
//! them the same way, once).

#[path = "support/synth.rs"]
mod synth;

use convos::archive::{Archive, OpenOptions};
use convos::mirror::{Mirror, MirrorOptions, MirrorReport, Scope};
use convos::model::RawConversation;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use synth::{Rng, conversation};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn build_archive(dir: &Path, n: usize) -> Vec<String> {
    let archive = Archive::open(dir, &OpenOptions::default()).expect("archive");
    let mut rng = Rng(0x6d69_7272_6f72_0001);
    let mut ids = Vec::with_capacity(n);
    let mut bytes = 0usize;
    for i in 0..n {
        // 4 KB to ~120 KB, most conversations short, as in real accounts.
        let size = match rng.below(10) {
            0..=5 => 4_000 + rng.below(16_000) as usize,
            6..=8 => 20_000 + rng.below(40_000) as usize,
            _ => 60_000 + rng.below(60_000) as usize,
        };
        let c = conversation(&mut rng, i, size);
        let raw = serde_json::to_vec(&c).expect("json");
        bytes += raw.len();
        let raw = RawConversation::from_bytes(raw).expect("valid");
        let id = raw.id().to_owned();
        archive.upsert(raw).expect("upsert");
        if i % 10 == 3 {
            let project = format!("Project {}", i % 7);
            archive
                .update_remote(&id, |r| r.remote.project = Some(project.clone()))
                .expect("project");
        }
        ids.push(id);
    }
    archive.flush().expect("flush");
    eprintln!(
        "archive: {n} conversations, {:.0} MB of JSON",
        bytes as f64 / 1e6
    );
    ids
}

/// Opens the archive and runs the mirror: (seconds with the archive's opening, seconds
/// of the run alone, report). The daemon keeps the archive open, so the run alone is
/// what an update costs there.
fn mirror_run(archive_dir: &Path, out: &Path, scope: Scope) -> (f64, f64, MirrorReport) {
    let start = Instant::now();
    let archive = Archive::open(archive_dir, &OpenOptions::default()).expect("archive");
    let mirror = Mirror::new(archive.clone(), out, MirrorOptions::default()).expect("mirror");
    let run_start = Instant::now();
    let report = mirror
        .run(scope, 1_800_000_000.0, &AtomicBool::new(false))
        .expect("mirror run");
    let run = run_start.elapsed().as_secs_f64();
    drop(mirror);
    drop(archive);
    (start.elapsed().as_secs_f64(), run, report)
}

fn summary(r: &MirrorReport) -> String {
    format!(
        "{} written, {} unchanged, {} notes read, {} files written, index {}",
        r.written,
        r.unchanged,
        r.notes_read,
        r.files_written,
        if r.index_written {
            "written"
        } else {
            "unchanged"
        }
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--conversations")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_convos"));
    // `--dir DIR` keeps the work folder and reuses the archive built there before.
    let given = arg(&args, "--dir").map(PathBuf::from);
    let dir = given.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("convos-bench-mirror-{}", std::process::id()))
    });
    let data = dir.join("data");
    let archive_dir = data.join("archive");
    for old in ["export-1", "export-2", "vault"] {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    let ids = if archive_dir.exists() {
        let archive = Archive::open(&archive_dir, &OpenOptions::default()).expect("archive");
        let ids: Vec<String> = archive
            .iter_newest_first()
            .map(|r| r.expect("record").summary.id)
            .collect();
        eprintln!("archive: reusing {} conversations", ids.len());
        ids
    } else {
        std::fs::create_dir_all(&data).expect("dir");
        build_archive(&archive_dir, n)
    };
    let n = ids.len();

    // The export runs before and after the first mirror, so a machine that slows down
    // or speeds up during the benchmark shows in the two figures.
    let export = |n_run: u32| {
        let start = Instant::now();
        let status = Command::new(&bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["-q", "export", "--format", "md", "--out"])
            .arg(dir.join(format!("export-{n_run}")))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run convos export");
        assert!(status.success(), "export failed");
        start.elapsed().as_secs_f64()
    };
    let export_before = export(1);
    println!("export --format md ({n} conversations)       {export_before:>7.2} s");
    let mirror_dir = dir.join("vault");
    std::fs::create_dir_all(&mirror_dir).expect("vault");
    let (first, first_run, first_report) = mirror_run(&archive_dir, &mirror_dir, Scope::Feed);
    let export_after = export(2);
    let export_secs = (export_before + export_after) / 2.0;
    println!("export --format md, again                    {export_after:>7.2} s");
    println!(
        "first mirror                                 {first:>7.2} s  {:.2}x the exports' mean  (the run alone {first_run:.2} s; {})",
        first / export_secs,
        summary(&first_report)
    );
    let (secs, _, r) = mirror_run(&archive_dir, &mirror_dir, Scope::All);
    println!(
        "full pass, nothing changed                   {secs:>7.2} s  ({})",
        summary(&r)
    );
    let (secs, _, r) = mirror_run(&archive_dir, &mirror_dir, Scope::Rebuild);
    println!(
        "rebuild (every note read back)               {secs:>7.2} s  ({})",
        summary(&r)
    );

    // One conversation changes (a newer version with one more message), as after a sync.
    let changed = {
        let archive = Archive::open(&archive_dir, &OpenOptions::default()).expect("archive");
        let id = &ids[n / 2];
        let stored = archive.get(id).expect("get").expect("stored");
        let mut v: serde_json::Value = serde_json::from_slice(&stored.raw).expect("json");
        let t = v["update_time"].as_f64().unwrap_or(0.0) + 60.0;
        let leaf = v["current_node"].as_str().unwrap_or_default().to_owned();
        v["mapping"]["bench-new"] = serde_json::json!({
            "id": "bench-new", "parent": leaf, "children": [],
            "message": {"id": "bench-new", "author": {"role": "user", "metadata": {}},
                        "create_time": t, "content": {"content_type": "text", "parts": ["one more question"]},
                        "status": "finished_successfully", "weight": 1.0, "metadata": {}, "recipient": "all"}
        });
        v["mapping"][leaf.as_str()]["children"] = serde_json::json!(["bench-new"]);
        v["current_node"] = serde_json::json!("bench-new");
        v["update_time"] = serde_json::json!(t);
        let raw = RawConversation::from_bytes(serde_json::to_vec(&v).expect("json")).expect("raw");
        archive.upsert(raw).expect("upsert");
        archive.flush().expect("flush");
        id.clone()
    };
    // As the daemon runs it: what the change feed lists after the folder's mark.
    let (secs, run, r) = mirror_run(&archive_dir, &mirror_dir, Scope::Feed);
    assert_eq!(
        r.conversations, 1,
        "the feed lists the one change ({changed})"
    );
    println!(
        "one conversation changed                     {:>7.1} ms, {:.1} ms with the archive's opening ({})",
        run * 1000.0,
        secs * 1000.0,
        summary(&r)
    );

    if given.is_some() || args.iter().any(|a| a == "--keep") {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
