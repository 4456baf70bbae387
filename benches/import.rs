//! Import benchmark: `cargo bench --bench import [-- --mb N --zip]`.
//!
//! Generates a synthetic export (default ≈200 MB of conversations JSON: hundreds of
//! conversations with branches, long messages, code, thoughts and tool calls), then
//! runs the real `convos` binary on it as a child process and reports MB/s of
//! conversations JSON and the child's peak RSS for: a first import, a re-import of the
//! same file (recognised by digest), and a forced re-import (every conversation
//! compared and found unchanged, no writes). `--zip` also measures the same data as an
//! export ZIP; `--keep` leaves the generated files in the temp dir.

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "the",
    "archive",
    "conversation",
    "model",
    "branch",
    "function",
    "returns",
    "value",
    "because",
    "rust",
    "memory",
    "stream",
    "parser",
    "café",
    "naïve",
    "日本語",
    "données",
    "résumé",
    "token",
    "request",
    "export",
    "import",
    "daemon",
    "schedule",
    "when",
    "which",
    "should",
    "could",
    "data",
    "error",
    "handle",
    "file",
    "system",
    "vector",
    "string",
    "🙂",
    "graph",
    "node",
    "tree",
    "path",
];

fn prose(rng: &mut Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 16);
    while s.len() < chars {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        s.push_str(w);
        match rng.below(14) {
            0 => s.push_str(".\n\n"),
            1 => s.push_str(", "),
            2 => s.push_str("\n- "),
            _ => s.push(' '),
        }
    }
    if rng.below(3) == 0 {
        s.push_str("\n\n```rust\nfn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{v:?} \\\"quoted\\\"\");\n}\n```\n");
    }
    s
}

fn message(rng: &mut Rng, id: &str, role: &str, t: f64, text: String) -> Value {
    json!({
        "id": id,
        "author": {"role": role, "name": null, "metadata": {}},
        "create_time": t,
        "update_time": null,
        "content": {"content_type": "text", "parts": [text]},
        "status": "finished_successfully",
        "end_turn": if role == "assistant" { json!(true) } else { json!(null) },
        "weight": 1.0,
        "metadata": if role == "assistant" {
            json!({"model_slug": "gpt-4o", "finish_details": {"type": "stop", "stop_tokens": [200002]},
                   "citations": [], "request_id": format!("req-{}", rng.next()), "timestamp_": "absolute",
                   "message_type": null, "parent_id": "x"})
        } else {
            json!({"request_id": format!("req-{}", rng.next()), "timestamp_": "absolute", "message_type": null})
        },
        "recipient": "all",
        "channel": null
    })
}

fn conversation(rng: &mut Rng, n: usize, target_bytes: usize) -> Value {
    let id = format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        n,
        rng.below(65536),
        rng.next() & 0xffff_ffff_ffff
    );
    let t0 = 1_700_000_000.0 + n as f64 * 3600.0;
    let mut mapping = serde_json::Map::new();
    mapping.insert(
        "root".into(),
        json!({"id": "root", "message": null, "parent": null, "children": []}),
    );
    let mut parent = "root".to_owned();
    let mut t = t0;
    let mut size = 0usize;
    let mut i = 0usize;
    let mut children: Vec<(String, String)> = Vec::new();
    while size < target_bytes {
        i += 1;
        let role = if i % 2 == 1 { "user" } else { "assistant" };
        let len = if role == "user" {
            80 + rng.below(600) as usize
        } else {
            800 + rng.below(6000) as usize
        };
        let text = prose(rng, len);
        size += text.len() + 600;
        t += 1.0 + rng.below(90) as f64 + 0.123456;
        let node = format!("n{i}-{:x}", rng.next() & 0xffff);
        let mut msg = message(rng, &node, role, t, text);
        if role == "assistant" && rng.below(8) == 0 {
            msg["content"] = json!({"content_type": "thoughts", "thoughts": [
                {"summary": "Considering", "content": prose(rng, 400)},
                {"summary": "Checking", "content": prose(rng, 300)}]});
        }
        mapping.insert(
            node.clone(),
            json!({"id": node, "message": msg, "parent": parent, "children": []}),
        );
        children.push((parent.clone(), node.clone()));
        // Every so often a regeneration: a sibling answer that the branch leaves behind.
        if role == "assistant" && rng.below(6) == 0 {
            let alt = format!("{node}-alt");
            let text = prose(rng, 1200);
            size += text.len() + 600;
            let m = message(rng, &alt, "assistant", t + 0.5, text);
            mapping.insert(
                alt.clone(),
                json!({"id": alt, "message": m, "parent": parent, "children": []}),
            );
            children.push((parent.clone(), alt));
        }
        parent = node;
    }
    for (p, c) in children {
        if let Some(arr) = mapping
            .get_mut(&p)
            .and_then(|n| n["children"].as_array_mut())
        {
            arr.push(json!(c));
        }
    }
    json!({
        "title": prose(rng, 30).replace('\n', " "),
        "create_time": t0,
        "update_time": t + 2.5,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": parent,
        "plugin_ids": null,
        "conversation_id": id,
        "conversation_template_id": null,
        "gizmo_id": null,
        "is_archived": false,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": id,
    })
}

/// Writes `conversations.json` of about `mb` megabytes; returns its size in bytes.
fn generate(path: &Path, mb: usize) -> u64 {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let target = mb * 1_000_000;
    let mut written = 1usize;
    out.write_all(b"[").expect("write");
    let mut n = 0;
    while written < target {
        // Sizes from 20 KB to ~1.5 MB, averaging ≈400 KB.
        let size = match rng.below(10) {
            0..=4 => 20_000 + rng.below(200_000) as usize,
            5..=8 => 300_000 + rng.below(500_000) as usize,
            _ => 900_000 + rng.below(700_000) as usize,
        };
        let c = serde_json::to_vec(&conversation(&mut rng, n, size)).expect("json");
        if n > 0 {
            out.write_all(b",").expect("write");
        }
        out.write_all(&c).expect("write");
        written += c.len() + 1;
        n += 1;
    }
    out.write_all(b"]").expect("write");
    out.flush().expect("flush");
    eprintln!(
        "generated {n} conversations, {:.1} MB",
        written as f64 / 1e6
    );
    written as u64
}

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
