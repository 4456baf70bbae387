//! Web viewer benchmark: `cargo bench --bench web [-- --conversations N --iterations N]`.
//!
//! Generates an archive in a temporary folder (10,000 short conversations and one of
//! 500 visible messages: Markdown answers with code in several languages, tables,
//! math, thinking, Python calls and regenerated answers), then renders pages through
//! the viewer's router in-process, as the daemon would serve them, and reports the
//! time of each (first and warm renders): the 500-message conversation, the first list
//! page, a filtered list page, a deep list page, and a search results page (50 hits from
//! an in-memory provider: the rendering part of a search; the index's own time is issue
//! 13's benchmark), and whole searches through the provider the daemon connects (its
//! full-text index, built first); how long the conversation's Markdown and code take on their own;
//! and the process's resident memory before and after rendering.

#[path = "support/synth.rs"]
mod synth;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use convos::archive::{Archive, OpenOptions};
use convos::model::RawConversation;
use convos::web::{SearchHit, SearchQuery, SearchResults, Viewer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use synth::Rng;
use tower::ServiceExt;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const WORDS: &[&str] = &[
    "the",
    "archive",
    "branch",
    "function",
    "returns",
    "value",
    "because",
    "memory",
    "stream",
    "parser",
    "café",
    "naïve",
    "日本語",
    "token",
    "request",
    "export",
    "daemon",
    "schedule",
    "when",
    "which",
    "should",
    "data",
    "error",
    "handle",
    "file",
    "vector",
    "string",
    "graph",
    "node",
    "tree",
    "path",
    "index",
    "query",
    "cache",
    "thread",
    "async",
    "résumé",
];

fn words(rng: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s
}

fn paragraph(rng: &mut Rng) -> String {
    let n = 20 + rng.below(40) as usize;
    let mut s = words(rng, n);
    s.push_str(". With `inline code` and **bold** text.");
    s
}

const CODE: &[(&str, &str)] = &[
    (
        "rust",
        "use std::collections::HashMap;\n\n/// Counts words.\nfn count(text: &str) -> HashMap<&str, usize> {\n    let mut m = HashMap::new();\n    for w in text.split_whitespace() {\n        *m.entry(w).or_insert(0) += 1; // tally\n    }\n    m\n}\n",
    ),
    (
        "python",
        "import json\n\ndef load(path: str) -> dict:\n    \"\"\"Reads a JSON file.\"\"\"\n    with open(path) as f:\n        return json.load(f)  # parsed\n\nprint(load('x.json')['items'][0])\n",
    ),
    (
        "javascript",
        "const items = await fetch('/api/items').then(r => r.json());\nfor (const [i, item] of items.entries()) {\n  console.log(`${i}: ${item.name}`); // show\n}\n",
    ),
    (
        "bash",
        "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.json; do\n  jq '.items | length' \"$f\"\ndone\n",
    ),
    (
        "sql",
        "SELECT c.id, count(m.id) AS n\nFROM conversations c\nJOIN messages m ON m.conv = c.id\nWHERE c.updated > '2024-01-01'\nGROUP BY c.id ORDER BY n DESC;\n",
    ),
    (
        "json",
        "{\n  \"name\": \"convos\",\n  \"items\": [1, 2.5, true, null],\n  \"nested\": {\"a\": \"b\"}\n}\n",
    ),
];

fn answer(rng: &mut Rng) -> String {
    let mut s = String::new();
    s.push_str(&paragraph(rng));
    s.push_str("\n\n## ");
    s.push_str(&words(rng, 3));
    s.push_str("\n\n");
    for _ in 0..(2 + rng.below(4)) {
        s.push_str("- ");
        let n = 8 + rng.below(10) as usize;
        s.push_str(&words(rng, n));
        s.push('\n');
    }
    s.push('\n');
    if rng.below(2) == 0 {
        let (lang, code) = CODE[rng.below(CODE.len() as u64) as usize];
        s.push_str(&format!("```{lang}\n{code}```\n\n"));
    }
    if rng.below(6) == 0 {
        s.push_str("| key | value | note |\n|---|---|---|\n");
        for _ in 0..4 {
            let (key, value, note) = (words(rng, 1), rng.below(1000), words(rng, 4));
            s.push_str(&format!("| {key} | {value} | {note} |\n"));
        }
        s.push('\n');
    }
    if rng.below(8) == 0 {
        s.push_str(
            "The sum is \\(\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\\), so\n\n\\[\nE = mc^2\n\\]\n\n",
        );
    }
    for _ in 0..(1 + rng.below(3)) {
        s.push_str(&paragraph(rng));
        s.push_str("\n\n");
    }
    s
}

struct Builder {
    mapping: serde_json::Map<String, Value>,
    children: Vec<(String, String)>,
    t: f64,
    n: usize,
}

impl Builder {
    fn add(&mut self, parent: &str, role: &str, content: Value, extra: Value) -> String {
        self.n += 1;
        self.t += 7.0;
        let id = format!("node-{:05}", self.n);
        let mut msg = json!({
            "id": id, "author": {"role": role, "name": null, "metadata": {}},
            "create_time": self.t, "content": content, "status": "finished_successfully",
            "recipient": "all", "metadata": {"model_slug": "gpt-5"}
        });
        if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        self.mapping.insert(
            id.clone(),
            json!({"id": id, "message": msg, "parent": parent, "children": []}),
        );
        self.children.push((parent.to_owned(), id.clone()));
        id
    }
}

/// A conversation of `visible` messages on its active branch.
fn long_conversation(rng: &mut Rng, id: &str, visible: usize) -> Value {
    let mut b = Builder {
        mapping: serde_json::Map::new(),
        children: Vec::new(),
        t: 1_750_000_000.0,
        n: 0,
    };
    b.mapping.insert(
        "root".into(),
        json!({"id": "root", "message": null, "parent": null, "children": []}),
    );
    let mut parent = "root".to_owned();
    let mut shown = 0;
    let text = |s: String| json!({"content_type": "text", "parts": [s]});
    let mut turn = 0;
    while shown < visible {
        turn += 1;
        let n = 10 + rng.below(60) as usize;
        let q = words(rng, n) + "?";
        parent = b.add(&parent, "user", text(q), json!({}));
        shown += 1;
        if shown >= visible {
            break;
        }
        if turn % 8 == 0 && shown + 2 < visible {
            let thoughts = json!({"content_type": "thoughts", "thoughts": [
                {"summary": "Considering", "content": paragraph(rng)},
                {"summary": "Checking", "content": paragraph(rng)}]});
            parent = b.add(&parent, "assistant", thoughts, json!({}));
            let recap = json!({"content_type": "reasoning_recap", "content": "Thought for 12s"});
            parent = b.add(&parent, "assistant", recap, json!({}));
            shown += 2;
        }
        if turn % 10 == 0 && shown + 3 < visible {
            let code = json!({"content_type": "code", "language": "python", "text": CODE[1].1});
            parent = b.add(&parent, "assistant", code, json!({"recipient": "python"}));
            let out = json!({"content_type": "execution_output", "text": "{'a': 1}\n"});
            parent = b.add(
                &parent,
                "tool",
                out,
                json!({"author": {"role": "tool", "name": "python"}}),
            );
            shown += 2;
        }
        let fork = parent.clone();
        parent = b.add(&parent, "assistant", text(answer(rng)), json!({}));
        shown += 1;
        if turn % 12 == 0 {
            b.add(&fork, "assistant", text(answer(rng)), json!({}));
        }
    }
    for (p, c) in std::mem::take(&mut b.children) {
        if let Some(arr) = b
            .mapping
            .get_mut(&p)
            .and_then(|n| n["children"].as_array_mut())
        {
            arr.push(json!(c));
        }
    }
    json!({"conversation_id": id, "id": id, "title": "A long conversation about the archive",
           "create_time": 1_750_000_000.0, "update_time": b.t + 100.0, "mapping": b.mapping,
           "current_node": parent, "default_model_slug": "gpt-5"})
}

fn short_conversation(rng: &mut Rng, i: usize) -> Value {
    let id = format!("{i:08x}-0000-4000-8000-000000000000");
    let t = 1_700_000_000.0 + i as f64 * 600.0;
    let msg = |nid: &str, role: &str, text: String, t: f64| {
        json!({"id": nid, "author": {"role": role}, "create_time": t,
               "content": {"content_type": "text", "parts": [text]}})
    };
    json!({"conversation_id": id, "id": id, "title": words(rng, 5), "create_time": t,
           "update_time": t + 60.0, "current_node": "b", "mapping": {
               "root": {"message": null, "parent": null, "children": ["a"]},
               "a": {"message": msg("a", "user", words(rng, 20), t), "parent": "root", "children": ["b"]},
               "b": {"message": msg("b", "assistant", answer(rng), t + 30.0), "parent": "a", "children": []}}})
}

fn upsert(archive: &Archive, v: &Value) {
    let raw = RawConversation::from_bytes(serde_json::to_vec(v).expect("json")).expect("conv");
    archive.upsert(raw).expect("upsert");
}

/// (first, median, p95) of `n` renders of `path`, and the page's size.
async fn measure(
    router: &axum::Router,
    cookie: &str,
    path: &str,
    n: usize,
) -> (Duration, Duration, Duration, usize) {
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let req = Request::builder()
            .uri(path)
            .header("host", "127.0.0.1:8642")
            .header("cookie", cookie)
            .body(Body::empty())
            .expect("request");
        let start = Instant::now();
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 256 << 20)
            .await
            .expect("body");
        times.push(start.elapsed());
        assert_eq!(status, StatusCode::OK, "{path}");
        size = body.len();
    }
    let first = times[0];
    let mut warm: Vec<Duration> = times[1..].to_vec();
    warm.sort();
    let pick = |q: f64| warm[((warm.len() - 1) as f64 * q).round() as usize];
    (first, pick(0.5), pick(0.95), size)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let conversations = arg(&args, "--conversations", 10_000);
    let iterations = arg(&args, "--iterations", 30).max(3);
    let dir = tempfile::tempdir().expect("tempdir");

    let archive =
        Archive::open(&dir.path().join("archive"), &OpenOptions::default()).expect("archive");
    let mut rng = Rng(0x5eed_0000_0000_0015);
    let t = Instant::now();
    for i in 0..conversations {
        upsert(&archive, &short_conversation(&mut rng, i));
        if i % 97 == 5 {
            archive
                .update_remote(&format!("{i:08x}-0000-4000-8000-000000000000"), |r| {
                    r.remote.is_archived = Some(true);
                })
                .expect("flag");
        }
    }
    let long_id = "10000000-0000-4000-8000-00000000000l";
    let long = long_conversation(&mut rng, long_id, 500);
    upsert(&archive, &long);
    archive.flush().expect("flush");
    let stored = archive.get(long_id).expect("get").expect("stored");
    println!(
        "archive: {conversations} short conversations + one of {} visible messages ({:.1} MB of JSON), built in {:.1} s",
        stored.record.summary.message_count,
        stored.raw.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Where a conversation page's time goes: its Markdown, and highlighting alone.
    let view = convos::render::view::build(&archive, &stored).expect("view");
    let start = Instant::now();
    let html: usize = view
        .messages
        .iter()
        .map(|m| convos::web::markdown::to_html(&m.text).len())
        .sum();
    let markdown = start.elapsed();
    let start = Instant::now();
    let mut code_bytes = 0;
    for (lang, code) in CODE.iter().cycle().take(1000) {
        if convos::web::highlight::highlight(code, lang).is_some() {
            code_bytes += code.len();
        }
    }
    let highlight = start.elapsed();
    println!(
        "its messages as Markdown, code highlighted: {:.1} ms ({} KB of HTML); highlighting alone: {:.0} MB/s",
        markdown.as_secs_f64() * 1e3,
        html / 1024,
        code_bytes as f64 / 1e6 / highlight.as_secs_f64()
    );

    let hits: Vec<SearchHit> = (0..60)
        .map(|i| SearchHit {
            conversation_id: format!("{i:08x}-0000-4000-8000-000000000000"),
            title: Some(format!("Result {i} about the archive")),
            update_time: Some("2025-06-01T10:00:00Z".into()),
            message_id: Some("b".into()),
            role: Some("assistant".into()),
            snippet:
                "…the archive keeps every branch of the conversation, and the index finds it again…"
                    .into(),
            highlights: vec![4..11, 63..68],
            score: 10.0 - i as f32 * 0.1,
        })
        .collect();
    let search = move |q: &SearchQuery| {
        Ok(SearchResults {
            hits: hits.iter().skip(q.offset).take(q.limit).cloned().collect(),
            total: Some(hits.len()),
        })
    };
    let status = Arc::new(|| Err("no status in the benchmark".to_owned()));
    let viewer = Viewer::new(
        archive.clone(),
        dir.path(),
        "127.0.0.1:8642".parse().expect("addr"),
        status,
    )
    .expect("viewer")
    .with_search(Arc::new(search));
    let token = viewer
        .url_with_token()
        .split_once("token=")
        .expect("token")
        .1
        .to_owned();
    let cookie = format!("convos_web_8642={token}");
    let router = viewer.router();
    // The provider the daemon connects: its full-text index, built first.
    let t = Instant::now();
    let live = Arc::new(
        convos::search::LiveIndex::start(&dir.path().join("index"), archive.clone())
            .expect("index"),
    );
    live.prepare_query(Duration::from_secs(600))
        .expect("index built");
    println!("search index built in {:.1} s", t.elapsed().as_secs_f64());
    let indexed = viewer
        .clone()
        .with_search(Arc::new(convos::web::index::IndexSearch::new(
            live,
            archive.clone(),
        )))
        .router();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "page", "first", "median", "p95", "size"
    );
    let rows = [
        ("conversation, 500 messages", format!("/c/{long_id}")),
        ("list, first page (50 of all)", "/".to_owned()),
        (
            "list, archived only (1 in 97)",
            "/?archived=only".to_owned(),
        ),
        ("list, page 20", "/?page=20".to_owned()),
        ("search results, 50 hits", "/?q=archive+branch".to_owned()),
    ];
    let scans = [
        (
            "search, index, common words (50 hits)",
            "/?q=archive+branch".to_owned(),
        ),
        (
            "search, index, five words (50 hits)",
            format!("/?q={}", "graph+vector+cache+thread+index"),
        ),
        ("search, index, no match", "/?q=zeppelin".to_owned()),
    ];
    let rss_before = rss_kb();
    rt.block_on(async {
        let all = rows
            .iter()
            .map(|(l, p)| (l, p, &router))
            .chain(scans.iter().map(|(l, p)| (l, p, &indexed)));
        for (label, path, router) in all {
            let (first, median, p95, size) = measure(router, &cookie, path, iterations).await;
            println!(
                "{label:<44} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>6.0} KB",
                first.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                p95.as_secs_f64() * 1e3,
                size as f64 / 1024.0
            );
        }
    });
    println!(
        "resident memory: {:.1} MB before rendering, {:.1} MB after",
        rss_before as f64 / 1024.0,
        rss_kb() as f64 / 1024.0
    );
}
