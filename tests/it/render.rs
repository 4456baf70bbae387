//! What a reader sees (issue 11), end to end: fixtures in the shapes of
//! ../shared/reference/chatgpt-format.md are imported by the real binary and read back
//! with `show` and `export`. Citations, canvas documents, thought summaries, tool
//! outputs, screenshots and recordings, research reports, template-id gizmos, headings
//! inside messages, an export whose manifest promises missing shards, and titles in
//! error messages. The corpus samples are rendered too when they are present.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use convos::archive::Archive;
use convos::ingest::{self, ImportOptions};
use convos::render::markdown::{self, Block, Fold, NoLinks};
use convos::render::view;
use serde_json::{Value, json};

use crate::support::cli::CliEnv;
use crate::support::fake_server::ConvOpts;
use crate::support::fixtures::*;
use crate::support::sync_env::SyncEnv;

const CITE0: &str = "\u{E200}cite\u{E202}turn0search0\u{E201}";
const CITE1: &str = "\u{E200}cite\u{E202}turn0search1\u{E201}";

/// An environment whose archive holds `convs` (and `assets`), imported from one ZIP.
fn imported(convs: Vec<Value>, assets: Vec<Asset>) -> CliEnv {
    let env = CliEnv::new();
    let zip = env.inputs().join("export.zip");
    let mut export = ExportBuilder::new().conversations(convs);
    for a in assets {
        export = export.asset(a);
    }
    export.write_zip(&zip);
    env.run([Path::new("import"), &zip]).ok();
    env
}

fn show_md(env: &CliEnv, id: &str) -> String {
    let run = env.run(["show", id]);
    run.ok();
    run.stdout.clone()
}

fn show_json(env: &CliEnv, id: &str) -> Value {
    let run = env.run(["show", "--format", "json", id]);
    run.ok();
    run.json()
}

/// The message of the JSON view whose text contains `needle`.
fn json_message<'a>(v: &'a Value, needle: &str) -> &'a Value {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
        .unwrap_or_else(|| panic!("no message with {needle:?} in {v:#}"))
}

/// The lines of the callout that starts with the line `header`.
fn callout<'a>(doc: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = doc.lines().skip_while(|l| *l != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {header:?} in:\n{doc}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with('>')))
        .collect()
}

// ---- 1. citations ----

#[test]
fn citations_render_as_links_in_markdown_and_stay_markers_in_json() {
    let mut b = ConvBuilder::new("c1a7a710-0000-4000-8000-000000000001", "Rome facts");
    b.user("Tell me about Rome");
    let modern_text = format!(
        "Rome was founded in 753 BC.{CITE0} It has 2.8 million people.{CITE1}\n\nEnjoy your trip."
    );
    let modern = b.assistant(&modern_text);
    let first = modern_text.find(CITE0).expect("marker");
    let second = modern_text.find(CITE1).expect("marker");
    b.edit_message(&modern, |m| {
        m["metadata"]["content_references"] = json!([
            {"matched_text": CITE0, "start_idx": first, "end_idx": first + CITE0.len(),
             "refs": ["turn0search0"], "alt": "([Wikipedia](https://en.wikipedia.org/wiki/Rome))",
             "prompt_text": null, "type": "grouped_webpages",
             "items": [{"title": "Rome - Wikipedia", "url": "https://en.wikipedia.org/wiki/Rome",
                        "pub_date": null, "snippet": "Rome is the capital…", "attribution": "Wikipedia",
                        "supporting_websites": [], "refs": []}],
             "fallback_items": null, "status": "done", "error": null, "style": null},
            {"matched_text": CITE1, "start_idx": second, "end_idx": second + CITE1.len(),
             "alt": null, "type": "webpage", "url": "https://www.istat.it/en/population",
             "title": "Resident population", "snippet": "…", "attribution": "Istat"},
            // Blank references mark nothing; replacing " " everywhere would delete every space.
            {"matched_text": " ", "start_idx": modern_text.len(), "end_idx": modern_text.len(),
             "alt": "", "type": "sources_footnote",
             "sources": [{"title": "Rome travel guide", "url": "https://travel.example/rome", "attribution": "Travel"}]},
            {"matched_text": " ", "start_idx": 0, "end_idx": 0, "alt": null, "type": "hidden"}
        ]);
    });
    b.user("And the Colosseum?");
    let legacy_text = "Tickets cost €18【3†source】 and it opens at 9.";
    let legacy = b.assistant(legacy_text);
    let start = legacy_text.chars().take_while(|c| *c != '【').count();
    b.edit_message(&legacy, |m| {
        m["metadata"]["citations"] = json!([
            {"start_ix": start, "end_ix": start + 10, "citation_format_type": "tether_og",
             "metadata": {"type": "webpage", "title": "Colosseum tickets", "url": "https://colosseo.example/tickets",
                          "text": "Full price €18", "pub_date": null,
                          "extra": {"cited_message_idx": 3, "search_result_idx": null, "evidence_text": "source"}}}
        ]);
    });
    let env = imported(vec![b.build()], vec![]);

    let doc = show_md(&env, b.id());
    assert!(
        doc.contains(
            "\nRome was founded in 753 BC. ([Wikipedia](https://en.wikipedia.org/wiki/Rome)) It has 2.8 \
             million people. ([Istat](https://www.istat.it/en/population \"Resident population\"))\n\nEnjoy your trip.\n"
        ),
        "{doc}"
    );
    assert!(
        doc.contains(
            "\nTickets cost €18 ([colosseo.example](https://colosseo.example/tickets \"Colosseum tickets\")) and it opens at 9.\n"
        ),
        "{doc}"
    );
    assert_eq!(
        callout(&doc, "> [!quote]- Sources")[1..],
        ["> - [Rome travel guide](https://travel.example/rome) · Travel"]
    );
    for gone in ['\u{E200}', '\u{E201}', '\u{E202}'] {
        assert!(!doc.contains(gone), "{doc}");
    }
    assert!(!doc.contains("turn0search") && !doc.contains('【'), "{doc}");

    // Export v1 `text` is the archived text, markers and all.
    let v = show_json(&env, b.id());
    assert_eq!(json_message(&v, "753 BC")["text"], json!(modern_text));
    assert_eq!(json_message(&v, "Tickets")["text"], json!(legacy_text));
}

// ---- 2. canvas ----

#[test]
fn canvas_documents_render_under_their_names_with_their_edits() {
    let mut b = ConvBuilder::new("ca2a5000-0000-4000-8000-000000000002", "Canvas");
    b.user("Write fizzbuzz in a canvas, then a trip plan");
    b.code(
        "json",
        &json!({"name": "fizz_buzz", "type": "code/python",
                "content": "for i in range(1, 16):\n    print(\"FizzBuzz\" if i % 15 == 0 else i)\n"})
        .to_string(),
        "canmore.create_textdoc",
    );
    let reply = b.push(
        "tool",
        Some("canmore.create_textdoc"),
        json!({"content_type": "text", "parts": ["Successfully created text document 'fizz_buzz' which will be referenced in all future messages with the unique identifier textdoc_id: '67a1b2c3d4e5f60718293a4b'"]}),
    );
    b.edit_message(&reply, |m| {
        m["metadata"]["canvas"] = json!({"textdoc_id": "67a1b2c3d4e5f60718293a4b", "textdoc_type": "code/python",
                                         "version": 1, "title": "fizz_buzz", "create_source": "model"});
    });
    b.assistant("I wrote it in the canvas.");
    b.user("Make it go to 20");
    b.code(
        "json",
        &json!({"updates": [{"pattern": ".*", "multiple": false,
                             "replacement": "for i in range(1, 21):\n    print(i)\n"}]})
        .to_string(),
        "canmore.update_textdoc",
    );
    b.user("Now a trip plan");
    // Some canvas calls arrive as `text` content rather than `code`.
    let plan = b.push(
        "assistant",
        None,
        json!({"content_type": "text", "parts": [json!({"name": "Rome trip", "type": "document",
               "content": "# Rome in two days\n\n## Day 1\nColosseum and the Forum.\n\n## Day 2\nVatican."}).to_string()]}),
    );
    b.edit_message(&plan, |m| m["recipient"] = json!("canmore.create_textdoc"));
    b.code(
        "json",
        &json!({"updates": [{"pattern": "Vatican\\.", "multiple": false, "replacement": "Vatican Museums and St Peter's."}]})
        .to_string(),
        "canmore.update_textdoc",
    );
    let env = imported(vec![b.build()], vec![]);
    let doc = show_md(&env, b.id());
    for expected in [
        "\n### fizz\\_buzz\n\n```python\nfor i in range(1, 16):\n    print(\"FizzBuzz\" if i % 15 == 0 else i)\n```\n",
        "\n### fizz\\_buzz (edited)\n\n```python\nfor i in range(1, 21):\n    print(i)\n```\n",
        "\n### Rome trip\n\n#### Rome in two days\n\n##### Day 1\nColosseum and the Forum.\n\n##### Day 2\nVatican.\n",
        "\n### Rome trip (edited)\n\nReplaced `Vatican\\.` with:\n\nVatican Museums and St Peter's.\n",
    ] {
        assert!(doc.contains(expected), "missing {expected:?} in:\n{doc}");
    }
    assert!(!doc.contains("\\n"), "no JSON escapes: {doc}");
    assert!(!doc.contains("\"content\""), "no raw JSON: {doc}");
    // The tool's confirmation stays folded, as the UI hides it.
    assert!(
        doc.contains("\n> [!note]- Tool: canmore.create_textdoc\n"),
        "{doc}"
    );
}

// ---- 3. thought summaries ----

#[test]
fn thought_summaries_show_even_without_thought_text() {
    let mut b = ConvBuilder::new("7h0a6h75-0000-4000-8000-000000000003", "Thinking");
    b.model("gpt-5-thinking");
    b.user("Is 2^61-1 prime?");
    b.thoughts(&[("Thinking longer for a better answer", "")]);
    b.thoughts(&[
        ("Checking Mersenne primes", ""),
        ("Checking Mersenne primes", ""),
    ]);
    b.reasoning_recap("Thought for 7s");
    b.assistant("Yes, it is a Mersenne prime.");
    let env = imported(vec![b.build()], vec![]);
    let doc = show_md(&env, b.id());
    assert_eq!(
        callout(&doc, "> [!abstract]- Thought for 7s")[1..],
        [
            "> **Thinking longer for a better answer**",
            ">",
            "> **Checking Mersenne primes**"
        ],
        "{doc}"
    );
    // Export v1 text of such a thought is empty, as DESIGN.md defines it.
    let v = show_json(&env, b.id());
    let thoughts: Vec<&Value> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["content_type"] == "thoughts")
        .collect();
    assert_eq!(thoughts.len(), 2);
    // (each thought's empty content, joined with "\n\n")
    assert_eq!(thoughts[0]["text"], "");
    assert_eq!(thoughts[1]["text"], "\n\n");
}

// ---- 4. tool outputs ----

#[test]
fn citable_code_output_is_the_message_text_and_is_folded() {
    let mut b = ConvBuilder::new("c0de0u70-0000-4000-8000-000000000004", "Files");
    b.user("What is in the folder?");
    b.code(
        "json",
        r#"{"cmd":["bash","-lc","ls /mnt/data"]}"#,
        "container.exec",
    );
    b.push(
        "tool",
        Some("container.exec"),
        json!({"content_type": "citable_code_output", "output_str": "report.pdf\nnotes.txt",
               "citation_id": 1, "output_type": "stdout"}),
    );
    b.assistant("Two files: a report and notes.");
    let env = imported(vec![b.build()], vec![]);
    let v = show_json(&env, b.id());
    let out = json_message(&v, "report.pdf");
    assert_eq!(out["content_type"], "citable_code_output");
    assert_eq!(out["text"], "report.pdf\nnotes.txt");
    let doc = show_md(&env, b.id());
    assert_eq!(
        callout(&doc, "> [!example]- container.exec output")[1..],
        ["> ```text", "> report.pdf", "> notes.txt", "> ```"],
        "{doc}"
    );
}

// ---- 5. screenshots and recordings ----

const SHOT: &str = "file_0000000011aa22bb33cc44dd55ee66ff";
const AUDIO: &str = "file_0000000077aa88bb99cc00dd11ee22ff";
const LIVE_AUDIO: &str = "file_00000000aaaa0000bbbb0000cccc0000";
const LIVE_VIDEO: &str = "file_00000000dddd0000eeee0000ffff0000";

fn agent_and_voice_conversation() -> ConvBuilder {
    let mut b = ConvBuilder::new("a9e47000-0000-4000-8000-000000000005", "Agent and voice");
    b.voice("Find me a cheap flight to Lisbon", AUDIO);
    b.code(
        "unknown",
        r#"{"action":"open","url":"https://flights.example/"}"#,
        "computer.do",
    );
    b.push(
        "tool",
        Some("computer.do"),
        json!({"content_type": "computer_output", "computer_id": "99",
               "screenshot": {"content_type": "image_asset_pointer", "asset_pointer": asset_pointer(SHOT),
                              "size_bytes": 27100, "width": 1024, "height": 768, "fovea": 768, "metadata": null},
               "tether_id": 537941533847129u64,
               "state": {"type": "browser_state", "id": "99", "url": "https://flights.example/lisbon",
                         "title": "Flights to Lisbon"},
               "is_ephemeral": null}),
    );
    b.assistant("The cheapest flight is €49.");
    b.push(
        "user",
        None,
        json!({"content_type": "multimodal_text", "parts": [
            {"content_type": "audio_transcription", "text": "Book it", "direction": "in", "decoding_id": null},
            {"content_type": "real_time_user_audio_video_asset_pointer", "expiry_datetime": "2026-08-01T00:00:00+00:00",
             "frames_asset_pointers": [],
             "video_container_asset_pointer": {"content_type": "video_container_asset_pointer",
                                               "asset_pointer": asset_pointer(LIVE_VIDEO), "format": "mp4",
                                               "frame_attributes": []},
             "audio_asset_pointer": {"content_type": "audio_asset_pointer", "asset_pointer": asset_pointer(LIVE_AUDIO),
                                     "format": "wav", "size_bytes": 9000, "metadata": {"start": 0.0, "end": 1.5}},
             "audio_start_timestamp": 3.5}]}),
    );
    b
}

#[test]
fn screenshots_and_recordings_are_attachments_everywhere() {
    let b = agent_and_voice_conversation();
    let assets = vec![
        Asset::user_dir("user-Fixture", SHOT, "screenshot.png"),
        Asset::user_dir("user-Fixture", AUDIO, "audio.wav"),
    ];
    let env = imported(vec![b.build()], assets.clone());

    // Export v1 lists them, with the stored bytes' hash where the export held them.
    let v = show_json(&env, b.id());
    let listed: Vec<(String, Option<String>)> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| m["attachments"].as_array().expect("attachments").clone())
        .map(|a| {
            (
                a["file_id"].as_str().expect("file_id").to_owned(),
                a["sha256"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (AUDIO.to_owned(), Some(assets[1].sha256_hex())),
            (SHOT.to_owned(), Some(assets[0].sha256_hex())),
            (LIVE_AUDIO.to_owned(), None),
            (LIVE_VIDEO.to_owned(), None),
        ]
    );

    // The Markdown shows the screenshot folded with its page and links the recordings.
    let out = env.root().join("md");
    env.run([
        Path::new("export"),
        Path::new("--format"),
        Path::new("md"),
        Path::new("--out"),
        &out,
    ])
    .ok();
    let doc = fs::read_dir(&out)
        .expect("export folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| fs::read_to_string(p).expect("markdown"))
        .expect("one document");
    let shot_name = format!("{SHOT}-screenshot.png");
    assert_eq!(
        callout(&doc, "> [!example]- Screenshot: Flights to Lisbon")[1..],
        [
            "> Page: <https://flights.example/lisbon>".to_owned(),
            ">".to_owned(),
            format!("> ![screenshot.png](attachments/{shot_name})"),
        ],
        "{doc}"
    );
    assert!(out.join("attachments").join(&shot_name).is_file());
    assert!(
        doc.contains(&format!("[audio.wav](attachments/{AUDIO}-audio.wav)")),
        "{doc}"
    );
    assert!(
        doc.contains("*(attachment not archived: Voice recording (wav) — file\\_00000000aaaa0000bbbb0000cccc0000)*"),
        "{doc}"
    );
    assert!(
        doc.contains("*(attachment not archived: Video recording (mp4) — file\\_00000000dddd0000eeee0000ffff0000)*"),
        "{doc}"
    );
    assert!(!doc.contains("computer_output (raw)"), "{doc}");
}

#[test]
fn sync_sees_screenshots_and_recordings_as_missing_attachments() {
    // Sync downloads what `missing_files` lists; the summary's file ids come from a scan of
    // every asset pointer in the raw JSON, so conversations archived before screenshots
    // and recordings were shown list them too (no migration needed).
    let b = agent_and_voice_conversation();
    let archive = Archive::temporary().expect("archive");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("conversations.json");
    ExportBuilder::new()
        .conversation(b.build())
        .write_conversations_json(&path);
    let r = ingest::import_path(
        &archive,
        &path,
        &ImportOptions::default(),
        &AtomicBool::new(false),
    );
    assert!(r.error.is_none() && r.problems.is_empty(), "{r:?}");
    let mut missing: Vec<String> = archive
        .missing_files()
        .expect("missing files")
        .into_iter()
        .map(|(conv, file)| {
            assert_eq!(conv, b.id());
            file
        })
        .collect();
    missing.sort();
    let mut expected = vec![SHOT, AUDIO, LIVE_AUDIO, LIVE_VIDEO];
    expected.sort();
    assert_eq!(missing, expected);
}

// ---- 6. deep research ----

#[test]
fn a_deep_research_report_renders_as_the_report() {
    let mut b = ConvBuilder::new("de3e9000-0000-4000-8000-000000000006", "Research");
    b.user("Research heat pumps in cold climates");
    b.code(
        "json",
        r#"{"task":"heat pumps in cold climates"}"#,
        "research_kickoff_tool.start_research_task",
    );
    let report_text = format!(
        "# Heat pumps in cold climates\n\nModern units work at -25 °C.{CITE0}\n\n## Costs\n\n| Item | € |\n|---|---|\n| Unit | 9000 |"
    );
    let at = report_text.find(CITE0).expect("marker");
    let state = json!({"report_message": {
        "id": "report-1", "author": {"role": "assistant", "name": null, "metadata": {}},
        "create_time": 1767225600.0,
        "content": {"content_type": "text", "parts": [report_text]},
        "metadata": {"content_references": [
            {"matched_text": CITE0, "start_idx": at, "end_idx": at + CITE0.len(), "type": "webpage",
             "url": "https://energy.example/cold", "title": "Cold-climate heat pumps",
             "alt": "([energy.example](https://energy.example/cold))"}]}}});
    let tool = b.push(
        "tool",
        Some("research_kickoff_tool.start_research_task"),
        json!({"content_type": "code", "language": "json", "response_format_name": null,
               "text": "{\"session_id\":\"abc123\"}"}),
    );
    b.edit_message(&tool, |m| {
        m["metadata"]["chatgpt_sdk"] =
            json!({"html_asset_pointer": null, "widget_state": state.to_string()});
    });
    let env = imported(vec![b.build()], vec![]);
    let doc = show_md(&env, b.id());
    assert!(
        doc.contains(
            "\n### Heat pumps in cold climates\n\nModern units work at -25 °C. \
             ([energy.example](https://energy.example/cold))\n\n#### Costs\n\n| Item | € |\n|---|---|\n| Unit | 9000 |\n"
        ),
        "{doc}"
    );
    assert!(
        !doc.contains("widget_state") && !doc.contains("session_id"),
        "{doc}"
    );
}

// ---- 7. custom GPTs and projects known only by their template id ----

#[test]
fn template_ids_stand_in_for_the_gizmo_id() {
    let mut project = ConvBuilder::new("9e0c7000-0000-4000-8000-000000000007", "In a project");
    project.set("gizmo_id", Value::Null);
    project.set(
        "conversation_template_id",
        json!("g-p-67a0b1c2d3e4f5061728394a5b6c7d8e"),
    );
    project.set("gizmo_type", json!("snorlax"));
    project.user("hi");
    let mut gpt = ConvBuilder::new("9e0c7000-0000-4000-8000-000000000008", "With a GPT");
    gpt.set("conversation_template_id", json!("g-Ab12Cd34E"));
    gpt.set("gizmo_type", json!("gpt"));
    gpt.user("hi");
    let env = imported(vec![project.build(), gpt.build()], vec![]);

    let v = show_json(&env, project.id());
    assert_eq!(v["gizmo_id"], "g-p-67a0b1c2d3e4f5061728394a5b6c7d8e");
    // The project's name is not in an export; sync learns it (below).
    assert_eq!(v["project"], Value::Null);
    let doc = show_md(&env, project.id());
    assert!(
        doc.contains("\ngizmo_id: \"g-p-67a0b1c2d3e4f5061728394a5b6c7d8e\"\n"),
        "{doc}"
    );
    let v = show_json(&env, gpt.id());
    assert_eq!(v["gizmo_id"], "g-Ab12Cd34E");
    assert_eq!(v["project"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_row_with_only_a_template_id_gets_its_project_name() {
    let env = SyncEnv::start().await;
    env.fake.add_project("g-p-alpha", "Alpha");
    let client = env.client().await;
    // The first run walks the project sidebar and learns the name.
    let r = env.sync(&client).await;
    assert_eq!((r.failed, r.stop.as_ref()), (0, None), "{r:#?}");
    // A project conversation whose listing row carries no gizmo_id, only its template id.
    env.fake.omit_list_key("gizmo_id");
    env.put_opts(
        "tmpl",
        1_750_000_001.0,
        ConvOpts {
            project: Some("g-p-alpha".to_owned()),
            ..ConvOpts::default()
        },
    );
    let r = env.sync(&client).await;
    assert_eq!((r.failed, r.stop.as_ref(), r.new), (0, None, 1), "{r:#?}");
    assert_eq!(env.must("tmpl").remote.project.as_deref(), Some("Alpha"));
    let stored = env.archive.get("tmpl").expect("get").expect("stored");
    let v = view::build(&env.archive, &stored).expect("view");
    assert_eq!(v.project.as_deref(), Some("Alpha"));
}

// ---- 8. headings ----

#[test]
fn headings_inside_messages_sit_below_the_turn_headings() {
    let mut b = ConvBuilder::new("4ead1000-0000-4000-8000-000000000009", "Guide");
    b.user("# My question\nHow do I install it?");
    b.assistant(
        "# Installing\n\nSteps:\n\n## On Linux\n\n```bash\n# install\napt install it\n```\n\nSetext title\n============\n\n### Notes\nDone.",
    );
    let env = imported(vec![b.build()], vec![]);
    let doc = show_md(&env, b.id());
    assert!(
        doc.contains(
            "\n### Installing\n\nSteps:\n\n#### On Linux\n\n```bash\n# install\napt install it\n```\n\n### Setext title\n\n##### Notes\nDone.\n"
        ),
        "{doc}"
    );
    assert!(doc.contains("\n## You\n"), "{doc}");
    assert!(
        doc.contains("\n### My question\nHow do I install it?\n"),
        "{doc}"
    );
    let outside_code = doc.replace("```bash\n# install\n", "");
    let h1: Vec<&str> = outside_code
        .lines()
        .filter(|l| l.starts_with("# "))
        .collect();
    assert_eq!(h1, ["# Guide"]);
    let h2: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(h2, ["## You", "## ChatGPT"]);
}

// ---- 9. a manifest that promises more than the export holds ----

fn sharded_missing_one(convs: Vec<Value>) -> ExportBuilder {
    // Two shards are written; the manifest lists a third that is not there.
    let manifest = json!({"version": 1, "manifest_file": "export_manifest.json",
        "logical_files": {"conversations.json": {"files": [
            "conversations-000.json", "conversations-001.json", "conversations-002.json"], "sharded": true}}});
    ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: false,
        })
        .conversations(convs)
        .member("export_manifest.json", manifest.to_string().as_bytes())
}

#[test]
fn an_export_missing_a_listed_shard_imports_what_is_there_and_fails_by_name() {
    let env = CliEnv::new();
    let convs: Vec<Value> = (0..4)
        .map(|i| {
            simple_conversation(
                &format!("5a4d0000-0000-4000-8000-00000000000{i}"),
                &format!("Chat {i}"),
            )
        })
        .collect();
    let zip = env.inputs().join("export.zip");
    let export = sharded_missing_one(convs.clone());
    export.write_zip(&zip);
    let run = env.run([Path::new("import"), &zip]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("\"conversations-002.json\"")
            && run.stdout.contains(
                "export_manifest.json lists 1 conversations file(s) that are not in the export"
            ),
        "{run:?}"
    );
    assert!(run.stdout.contains("4 new"), "{run:?}");
    let list = env.run(["list", "--json"]);
    list.ok();
    assert_eq!(
        list.json().as_array().expect("list").len(),
        4,
        "what is there is imported"
    );

    // Not recorded as imported: the same file imports again (and fails again)…
    let again = env.run([Path::new("import"), &zip]);
    again.expect_code(1);
    assert!(!again.stdout.contains("already imported"), "{again:?}");
    assert!(again.stdout.contains("4 unchanged"), "{again:?}");

    // …and a complete copy imports cleanly.
    let complete = env.inputs().join("complete.zip");
    ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 3,
            manifest: true,
        })
        .conversations(convs)
        .write_zip(&complete);
    env.run([Path::new("import"), &complete]).ok();

    // A folder export says the same.
    let folder = env.inputs().join("unpacked");
    sharded_missing_one(vec![simple_conversation(
        "5a4d0000-0000-4000-8000-0000000000ff",
        "Folder chat",
    )])
    .write_dir(&folder);
    let run = env.run([Path::new("import"), &folder]);
    run.expect_code(1);
    assert!(run.stdout.contains("\"conversations-002.json\""), "{run:?}");
    env.run(["show", "5a4d0000-0000-4000-8000-0000000000ff"])
        .ok();
}

// ---- 10. titles in error messages ----

#[test]
fn errors_about_a_conversation_show_its_title_decoded() {
    let env = CliEnv::new();
    let path = env.inputs().join("conversations.json");
    // Written the way real exports are: non-ASCII as \u escapes.
    fs::write(
        &path,
        br#"[{"title":"LCP\u6307\u6807 \u4f18\u5316","id":"0bad0000-0000-4000-8000-000000000010","create_time":1.0}]"#,
    )
    .expect("write");
    let run = env.run([Path::new("import"), &path]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("(title \"LCP指标 优化\")")
            && run.stdout.contains("(\"LCP指标 优化\") has no `mapping`"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains("\\u") && !run.stderr.contains("\\u"),
        "{run:?}"
    );
}

// ---- the public per-message API ----

#[test]
fn the_per_message_api_matches_the_document() {
    let b = agent_and_voice_conversation();
    let archive = Archive::temporary().expect("archive");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("conversations.json");
    ExportBuilder::new()
        .conversation(b.build())
        .write_conversations_json(&path);
    ingest::import_path(
        &archive,
        &path,
        &ImportOptions::default(),
        &AtomicBool::new(false),
    );
    let stored = archive.get(b.id()).expect("get").expect("stored");
    let v = view::build(&archive, &stored).expect("view");
    let doc = markdown::render(&v, &NoLinks);
    let pieces = markdown::pieces(&v.messages);
    assert_eq!(
        pieces.iter().map(|p| p.messages.len()).sum::<usize>(),
        v.messages.len()
    );
    for p in &pieces {
        for m in p.messages {
            let md = markdown::message_markdown(m, &NoLinks);
            for line in md.lines().filter(|l| !l.trim().is_empty()) {
                assert!(doc.contains(line), "{line:?} not in the document:\n{doc}");
            }
        }
    }
    let shot = pieces
        .iter()
        .flat_map(|p| &p.blocks)
        .find_map(|b| match b {
            Block::Folded(f) if f.fold == Fold::Screenshot => Some(f),
            _ => None,
        })
        .expect("a screenshot fold");
    assert_eq!(shot.attachments[0].file_id, SHOT);
    let voice = v.messages.first().expect("a message");
    assert_eq!(
        markdown::display_text(voice),
        "Find me a cheap flight to Lisbon"
    );
}

// ---- the corpus ----

/// Every corpus sample renders with no private-use marker left where a reference or
/// marker rule applies, no raw canvas JSON, and only the title as `#`.
#[test]
fn corpus_samples_render_for_a_reader() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !dir.is_dir() {
        eprintln!("skipping: no sample corpus at {}", dir.display());
        return;
    }
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "zip"))
        .collect();
    inputs.sort();
    let mut rendered = 0;
    for input in inputs {
        let archive = Archive::temporary().expect("archive");
        ingest::import_path(
            &archive,
            &input,
            &ImportOptions::default(),
            &AtomicBool::new(false),
        );
        for rec in archive.iter_newest_first() {
            let rec = rec.expect("record");
            let stored = archive.get(&rec.summary.id).expect("get").expect("stored");
            let v = view::build(&archive, &stored).expect("view");
            let doc = markdown::render(&v, &NoLinks);
            rendered += 1;
            assert!(
                !doc.contains('\u{E200}') || !doc.contains('\u{E201}'),
                "{}: markers left in\n{doc}",
                input.display()
            );
            let body = doc.split_once("\n---\n").map_or(doc.as_str(), |(_, b)| b);
            let mut in_code = false;
            let mut h1 = 0;
            for line in body.lines() {
                let t = line.trim_start_matches("> ");
                if t.starts_with("```") || t.starts_with("~~~") {
                    in_code = !in_code;
                }
                if !in_code && line.starts_with("# ") {
                    h1 += 1;
                }
            }
            assert_eq!(h1, 1, "{}: one H1\n{doc}", input.display());
        }
    }
    assert!(rendered >= 10, "rendered {rendered} corpus conversations");
}
