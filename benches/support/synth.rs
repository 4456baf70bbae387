//! Synthetic export generator shared by the benchmarks: deterministic conversations
//! with branches, long messages, code, thoughts and tool-free assistant turns.
// Each benchmark uses part of it.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A small deterministic PRNG (xorshift).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
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

/// One conversation of about `target_bytes` bytes.
pub fn conversation(rng: &mut Rng, n: usize, target_bytes: usize) -> Value {
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
pub fn generate(path: &Path, mb: usize) -> u64 {
    generate_with(path, mb, usize::MAX, (20_000, 1_600_000))
}

/// Writes `conversations.json` of about `mb` megabytes or `max_conversations`,
/// whichever comes first, with conversation sizes spread over `sizes` (bytes).
pub fn generate_with(
    path: &Path,
    mb: usize,
    max_conversations: usize,
    sizes: (usize, usize),
) -> u64 {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let target = mb * 1_000_000;
    let mut written = 1usize;
    out.write_all(b"[").expect("write");
    let mut n = 0;
    while written < target && n < max_conversations {
        // With the default range: 20 KB to ~1.5 MB, averaging ≈400 KB.
        let (lo, hi) = sizes;
        let span = (hi - lo) as u64;
        let size = match rng.below(10) {
            0..=4 => lo + rng.below(span / 8) as usize,
            5..=8 => lo + (span / 5 + rng.below(span / 3)) as usize,
            _ => lo + (span / 2 + rng.below(span / 2)) as usize,
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
