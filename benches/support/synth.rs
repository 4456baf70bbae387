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

/// A vocabulary with Zipf-distributed word frequencies, as in real text: a few
/// function words make up much of it, and a long tail of words is rare. The
/// 40-word list above makes every word common, which no search index meets in
/// practice.
pub struct Vocab {
    words: Vec<String>,
    /// Cumulative weights, for sampling by rank.
    cumulative: Vec<f64>,
}

/// Frequent English words first (stop words included, as in real prose).
const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "you", "with", "on", "as",
    "this", "be", "are", "can", "or", "by", "your", "not", "if", "from", "an", "will", "use",
    "have", "we", "but", "at", "all", "data", "code", "function", "value", "file", "example",
    "error", "each", "one", "which", "would", "more", "here", "then", "when", "new", "so", "also",
    "they", "there", "need", "make", "like", "user", "model", "time", "how", "what",
];

/// Non-ASCII words mixed into the tail, so the index meets them at realistic rates.
const FOREIGN: &[&str] = &[
    "café",
    "naïve",
    "données",
    "résumé",
    "straße",
    "über",
    "façade",
    "niño",
    "señal",
    "日本語",
    "東京",
    "検索",
    "中文",
    "学习",
    "데이터",
    "검색",
    "привет",
    "данные",
    "ελληνικά",
    "çalışma",
    "piñata",
    "crème",
    "brûlée",
    "smörgåsbord",
];

impl Vocab {
    /// `size` words (the common ones, then generated ones with a few foreign words
    /// among them), with weights 1/rank.
    pub fn zipf(size: usize, seed: u64) -> Vocab {
        const ONSETS: &[&str] = &[
            "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
            "z", "br", "cr", "dr", "st", "tr", "pl", "gr", "sh", "ch", "th", "qu", "sp",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"];
        const CODAS: &[&str] = &["", "", "n", "r", "s", "t", "l", "m", "x", "ck", "nd", "st"];
        let mut rng = Rng(seed | 1);
        let mut words: Vec<String> = COMMON.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        let mut foreign = FOREIGN.iter();
        while words.len() < size {
            if words.len().is_multiple_of(997)
                && let Some(f) = foreign.next()
            {
                words.push((*f).to_owned());
                continue;
            }
            let syllables = 1 + rng.below(4) as usize;
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
                w.push_str(VOWELS[rng.below(VOWELS.len() as u64) as usize]);
            }
            w.push_str(CODAS[rng.below(CODAS.len() as u64) as usize]);
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Vocab { words, cumulative }
    }

    /// A word drawn by frequency.
    pub fn pick(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|&c| c < x);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// The word of a given frequency rank (0 is the most frequent).
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }
}

fn prose_in(rng: &mut Rng, chars: usize, vocab: Option<&Vocab>) -> String {
    let mut s = String::with_capacity(chars + 16);
    while s.len() < chars {
        let w = match vocab {
            Some(v) => v.pick(rng),
            None => WORDS[rng.below(WORDS.len() as u64) as usize],
        };
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

/// A web page as search results and citations describe it.
fn webpage(rng: &mut Rng, v: &Vocab, text_chars: usize) -> Value {
    json!({
        "type": "webpage",
        "title": prose_in(rng, 40, Some(v)).replace('\n', " "),
        "url": format!("https://www.{}.com/{}/{}-{}", v.pick(rng), v.pick(rng), v.pick(rng), rng.below(100_000)),
        "text": prose_in(rng, text_chars, Some(v)),
        "pub_date": null,
        "extra": {"cited_message_idx": rng.below(20), "search_result_idx": null,
                  "evidence_text": "source", "start_line_num": rng.below(200),
                  "end_line_num": rng.below(400)},
    })
}

/// Citations in an assistant message's metadata, as web-enabled answers carry.
fn citations(rng: &mut Rng, v: &Vocab, msg: &mut Value) {
    let n = match rng.below(3) {
        0 => 0,
        1 => 1 + rng.below(3),
        _ => 3 + rng.below(6),
    };
    let list: Vec<Value> = (0..n)
        .map(|_| {
            let start = rng.below(2000);
            json!({"start_ix": start, "end_ix": start + 20 + rng.below(30),
                   "citation_format_type": "tom_checked", "metadata": webpage(rng, v, 300)})
        })
        .collect();
    msg["metadata"]["citations"] = json!(list);
    msg["metadata"]["content_references"] = json!([]);
    msg["metadata"]["is_complete"] = json!(true);
}

/// A browsing tool message: a short visible result, and the pages it read in
/// `_cite_metadata` (not visible text; real exports hold many kilobytes of it).
fn browsing(rng: &mut Rng, v: &Vocab, id: &str, t: f64) -> Value {
    let pages: Vec<Value> = (0..4 + rng.below(6))
        .map(|_| webpage(rng, v, 900))
        .collect();
    json!({
        "id": id,
        "author": {"role": "tool", "name": "browser", "metadata": {}},
        "create_time": t,
        "update_time": null,
        "content": {"content_type": "tether_browsing_display",
                    "result": prose_in(rng, 150, Some(v)), "summary": null},
        "status": "finished_successfully",
        "end_turn": null,
        "weight": 1.0,
        "metadata": {"_cite_metadata": {"citation_format": {"name": "tether_og"},
                                        "metadata_list": pages, "original_query": null},
                     "command": "search", "status": "finished", "is_complete": true,
                     "message_type": null, "model_slug": "gpt-4o", "parent_id": "x",
                     "request_id": format!("req-{}", rng.next()), "timestamp_": "absolute"},
        "recipient": "all",
        "channel": null
    })
}

/// One conversation of about `target_bytes` bytes.
pub fn conversation(rng: &mut Rng, n: usize, target_bytes: usize) -> Value {
    conversation_in(rng, n, target_bytes, None)
}

/// One conversation of about `target_bytes` bytes, its text drawn from `vocab` (the
/// small fixed word list when `None`). With a vocabulary the conversation also
/// carries what real exports do besides text (citations, browsing results in
/// metadata), so visible text is about a third of its bytes, as in the corpus samples
/// (15–26%); without one, text is three quarters.
pub fn conversation_in(
    rng: &mut Rng,
    n: usize,
    target_bytes: usize,
    vocab: Option<&Vocab>,
) -> Value {
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
        let text = prose_in(rng, len, vocab);
        if vocab.is_none() {
            size += text.len() + 600;
        }
        t += 1.0 + rng.below(90) as f64 + 0.123456;
        let node = format!("n{i}-{:x}", rng.next() & 0xffff);
        let mut msg = message(rng, &node, role, t, text);
        if role == "assistant" && rng.below(8) == 0 {
            msg["content"] = json!({"content_type": "thoughts", "thoughts": [
                {"summary": "Considering", "content": prose_in(rng, 400, vocab)},
                {"summary": "Checking", "content": prose_in(rng, 300, vocab)}]});
        }
        if let Some(v) = vocab {
            // What real exports carry besides the text (see `realistic_extras`).
            if role == "assistant" && rng.below(3) == 0 {
                let tool = format!("{node}-tool");
                let m = browsing(rng, v, &tool, t - 0.5);
                size += serde_json::to_vec(&m).map_or(0, |b| b.len());
                mapping.insert(
                    tool.clone(),
                    json!({"id": tool, "message": m, "parent": parent, "children": []}),
                );
                children.push((parent.clone(), tool.clone()));
                parent = tool;
            }
            if role == "assistant" {
                citations(rng, v, &mut msg);
            }
            size += serde_json::to_vec(&msg).map_or(0, |b| b.len());
        }
        mapping.insert(
            node.clone(),
            json!({"id": node, "message": msg, "parent": parent, "children": []}),
        );
        children.push((parent.clone(), node.clone()));
        // Every so often a regeneration: a sibling answer that the branch leaves behind.
        if role == "assistant" && rng.below(6) == 0 {
            let alt = format!("{node}-alt");
            let text = prose_in(rng, 1200, vocab);
            let mut m = message(rng, &alt, "assistant", t + 0.5, text);
            match vocab {
                Some(v) => {
                    citations(rng, v, &mut m);
                    size += serde_json::to_vec(&m).map_or(0, |b| b.len());
                }
                None => size += 1200 + 600,
            }
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
        "title": prose_in(rng, 30, vocab).replace('\n', " "),
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
    generate_in(path, mb, max_conversations, sizes, None)
}

/// [`generate_with`], the text drawn from `vocab`.
pub fn generate_in(
    path: &Path,
    mb: usize,
    max_conversations: usize,
    sizes: (usize, usize),
    vocab: Option<&Vocab>,
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
        let c = serde_json::to_vec(&conversation_in(&mut rng, n, size, vocab)).expect("json");
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
