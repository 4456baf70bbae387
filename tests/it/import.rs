//! Acceptance tests of importing (issue 2), at the library level: every export layout,
//! attachments in every naming scheme, losslessness and version merging, the Export schema
//! v1 view, and every kind of bad input (none of which may touch what is already archived).
//!
//! Inputs come from the fixture generator (`support::fixtures`); archives are temporary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use convos::archive::schema::ConvRecord;
use convos::archive::{Archive, Counts, OpenOptions};
use convos::config::ImportConfig;
use convos::ingest::{self, FileReport, ImportOptions};
use convos::render::view::{self, ConversationView};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::fixtures::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Imports one path with the default options (default ZIP limits, no force).
fn import(archive: &Archive, path: &Path) -> FileReport {
    import_with(archive, path, &ImportOptions::default())
}

fn import_with(archive: &Archive, path: &Path, opts: &ImportOptions) -> FileReport {
    ingest::import_path(archive, path, opts, &AtomicBool::new(false))
}

/// Imports one path past the digest check, as `convos import --force`.
fn import_forced(archive: &Archive, path: &Path) -> FileReport {
    let force = ImportOptions {
        force: true,
        ..ImportOptions::default()
    };
    import_with(archive, path, &force)
}

/// Asserts a file imported with no file-level error and no failed conversation.
#[track_caller]
fn assert_clean(r: &FileReport) {
    assert!(
        r.error.is_none() && r.problems.is_empty(),
        "expected a clean import, got {r:#?}"
    );
}

/// (new, updated, unchanged) of a report.
fn counts_of(r: &FileReport) -> (u64, u64, u64) {
    (r.new, r.updated, r.unchanged)
}

/// Everything the archive holds about each conversation: record, raw JSON, retained nodes.
type Stored = BTreeMap<String, (ConvRecord, Vec<u8>, Option<Vec<u8>>)>;

fn stored(archive: &Archive) -> Stored {
    let mut out = BTreeMap::new();
    for rec in archive.iter_newest_first() {
        let rec = rec.expect("reading a record");
        let s = archive
            .get(&rec.summary.id)
            .expect("reading a conversation")
            .expect("an indexed conversation exists");
        assert_eq!(s.record, rec, "index and record disagree");
        out.insert(rec.summary.id.clone(), (s.record, s.raw, s.extra));
    }
    assert_eq!(
        out.len(),
        archive.len(),
        "update index misses conversations"
    );
    out
}

/// Totals plus every stored conversation: equal snapshots mean nothing was written.
fn snapshot(archive: &Archive) -> (Counts, Stored) {
    (archive.counts().expect("counts"), stored(archive))
}

fn ids(archive: &Archive) -> BTreeSet<String> {
    stored(archive).into_keys().collect()
}

/// Compact JSON bytes, exactly as the fixture generator writes a conversation in an array.
fn compact(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialising")
}

fn conv_id_of(v: &Value) -> String {
    v["conversation_id"]
        .as_str()
        .or_else(|| v["id"].as_str())
        .expect("conversation id")
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("writing a test input");
    p
}

/// Writes conversations as a bare `conversations.json`-style array file.
fn write_array(dir: &Path, name: &str, convs: &[Value]) -> PathBuf {
    write(dir, name, &compact(&Value::Array(convs.to_vec())))
}

/// The Export schema view of a stored conversation.
fn view_of(archive: &Archive, id: &str) -> ConversationView {
    let s = archive
        .get(id)
        .expect("reading")
        .unwrap_or_else(|| panic!("conversation {id} is not archived"));
    view::build(archive, &s).expect("building the view")
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Blob files in the attachment store (the `tmp` staging folder excluded).
fn blob_files(archive: &Archive) -> Vec<PathBuf> {
    let blobs = archive.dir().join("blobs");
    files_under(&blobs)
        .into_iter()
        .filter(|p| !p.starts_with(blobs.join("tmp")))
        .collect()
}

/// A conversation with a regenerated answer (two assistant children of the question).
fn branched(id: &str, title: &str) -> Value {
    let mut c = ConvBuilder::new(id, title);
    let q = c.user("Which river runs through Porto?");
    c.assistant("The Douro.");
    c.branch_from(&q);
    c.assistant("The Douro, which flows into the Atlantic there.");
    c.build()
}

// ---------------------------------------------------------------------------------------------
// Independent oracles for DESIGN.md's rules, computed straight from the raw JSON
// ---------------------------------------------------------------------------------------------

/// Children of each node: listed `children` plus nodes naming it as `parent`.
fn children_of(mapping: &serde_json::Map<String, Value>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, node) in mapping {
        let entry = out.entry(id.clone()).or_default();
        for c in node["children"].as_array().into_iter().flatten() {
            if let Some(c) = c.as_str().filter(|c| mapping.contains_key(*c)) {
                entry.insert(c.to_string());
            }
        }
    }
    for (id, node) in mapping {
        if let Some(p) = node["parent"].as_str().filter(|p| mapping.contains_key(*p)) {
            out.entry(p.to_string()).or_default().insert(id.clone());
        }
    }
    out
}

/// The active branch per DESIGN.md (node ids, root first): from `current_node` when it is
/// in the mapping, else from the newest leaf; up through parents present in the mapping.
pub(crate) fn expected_branch(conv: &Value) -> Vec<String> {
    let mapping = conv["mapping"].as_object().expect("mapping object");
    let start = match conv["current_node"]
        .as_str()
        .filter(|c| mapping.contains_key(*c))
    {
        Some(c) => c.to_string(),
        None => newest_leaf(conv),
    };
    let mut path = vec![start.clone()];
    let mut seen = BTreeSet::from([start.clone()]);
    let mut cur = start;
    while let Some(p) = mapping[&cur]["parent"]
        .as_str()
        .filter(|p| mapping.contains_key(*p))
    {
        if !seen.insert(p.to_string()) {
            break;
        }
        path.push(p.to_string());
        cur = p.to_string();
    }
    path.reverse();
    path
}

/// The leaf with the newest message `create_time` (missing = oldest). The fixtures and
/// corpus samples used here have one unique newest leaf, which this asserts, so mapping
/// order (lost by `serde_json::Value`) never matters.
pub(crate) fn newest_leaf(conv: &Value) -> String {
    let mapping = conv["mapping"].as_object().expect("mapping object");
    let children = children_of(mapping);
    let time = |id: &str| {
        mapping[id]["message"]["create_time"]
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY)
    };
    let leaves: Vec<&String> = mapping
        .keys()
        .filter(|id| children[*id].is_empty())
        .collect();
    let best = leaves
        .iter()
        .map(|id| time(id))
        .fold(f64::NEG_INFINITY, f64::max);
    let newest: Vec<&&String> = leaves.iter().filter(|id| time(id) == best).collect();
    assert_eq!(
        newest.len(),
        1,
        "oracle premise: exactly one newest leaf ({newest:?})"
    );
    newest[0].to_string()
}

/// Message ids of the visible messages on the expected active branch.
pub(crate) fn expected_visible_ids(conv: &Value) -> Vec<String> {
    let mapping = conv["mapping"].as_object().expect("mapping object");
    expected_branch(conv)
        .iter()
        .filter_map(|id| {
            let m = &mapping[id]["message"];
            let hidden = m["metadata"]["is_visually_hidden_from_conversation"] == json!(true);
            (m.is_object() && !hidden).then(|| m["id"].as_str().expect("message id").to_string())
        })
        .collect()
}

/// Visible text per Export schema v1's content-type rules.
fn expected_text(content: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match content["content_type"].as_str().unwrap_or_default() {
        "text" | "multimodal_text" => content["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| match p {
                Value::String(t) => Some(t.clone()),
                Value::Object(o)
                    if o.get("content_type") == Some(&json!("audio_transcription")) =>
                {
                    Some(s(&p["text"]))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "code" | "execution_output" | "tether_quote" | "sonic_webpage" | "system_error" => {
            s(&content["text"])
        }
        "tether_browsing_display" => s(&content["result"]),
        "thoughts" => content["thoughts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| s(&t["content"]))
            .collect::<Vec<_>>()
            .join("\n\n"),
        "reasoning_recap" => s(&content["content"]),
        _ => String::new(),
    }
}

/// Message JSON by message id, over the whole mapping.
fn messages_by_id(conv: &Value) -> BTreeMap<String, Value> {
    conv["mapping"]
        .as_object()
        .expect("mapping")
        .values()
        .filter(|n| n["message"].is_object())
        .map(|n| {
            (
                n["message"]["id"].as_str().expect("id").to_string(),
                n["message"].clone(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_rfc3339_utc(s: &str) {
    assert!(s.ends_with('Z'), "{s:?} is not UTC with a Z suffix");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
}

// ---------------------------------------------------------------------------------------------
// 1. Layouts, counts, idempotence
// ---------------------------------------------------------------------------------------------

fn layout_conversations() -> Vec<Value> {
    vec![
        simple_conversation("layout-0001", "Layout: simple"),
        branched("layout-0002", "Layout: branched — ünïcode 📐"),
        all_content_types_conversation(),
    ]
}

#[test]
fn import_every_layout_yields_the_same_conversations() {
    let convs = layout_conversations();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let base = || ExportBuilder::new().conversations(convs.clone());
    let sharded = |manifest| Layout::Sharded {
        shards: 3,
        manifest,
    };

    // (name, path, kind, whether the stored bytes must equal the compact element bytes)
    let mut cases: Vec<(&str, PathBuf, &str, bool)> = Vec::new();
    let zip = |name: &'static str, b: ExportBuilder| {
        let p = d.join(format!("{name}.zip"));
        b.write_zip(&p);
        (name, p, "zip", true)
    };
    cases.push(zip("single", base()));
    cases.push(zip("sharded-manifest", base().layout(sharded(true))));
    cases.push(zip("sharded-no-manifest", base().layout(sharded(false))));
    cases.push(zip(
        "sharded-files-list-manifest",
        base().layout(sharded(true)).files_list_manifest(),
    ));
    cases.push(zip("nested", base().nested("ChatGPT Export 2026-01-15")));
    cases.push(zip(
        "nested-macosx-junk",
        base().nested("export").macos_junk(),
    ));
    cases.push(zip("macosx-junk", base().macos_junk()));
    cases.push(zip("bom", base().bom().layout(sharded(true))));
    let mut pretty = zip("pretty", base().pretty());
    pretty.3 = false;
    cases.push(pretty);
    let folder = d.join("unpacked");
    base().layout(sharded(true)).write_dir(&folder);
    cases.push(("unpacked-folder", folder, "folder", true));
    let nested_folder = d.join("unpacked-nested");
    base()
        .nested("Export")
        .macos_junk()
        .write_dir(&nested_folder);
    cases.push(("unpacked-nested-folder", nested_folder, "folder", true));
    let bare = d.join("conversations.json");
    base().write_conversations_json(&bare);
    cases.push(("bare-conversations-json", bare, "json", true));
    let bare_bom = d.join("conversations-bom.json");
    base().bom().write_conversations_json(&bare_bom);
    cases.push(("bare-json-bom", bare_bom, "json", true));

    let expected_ids: BTreeSet<String> = convs.iter().map(conv_id_of).collect();
    for (name, path, kind, exact) in cases {
        let archive = Archive::temporary().expect("archive");
        let r = import(&archive, &path);
        assert_clean(&r);
        assert_eq!(r.kind, kind, "{name}");
        assert_eq!(counts_of(&r), (3, 0, 0), "{name}: {r:#?}");
        assert_eq!(ids(&archive), expected_ids, "{name}");
        for conv in &convs {
            let id = conv_id_of(conv);
            let s = archive.get(&id).expect("get").expect("stored");
            if exact {
                assert!(s.raw == compact(conv), "{name}: {id} not stored verbatim");
            } else {
                let v: Value = serde_json::from_slice(&s.raw).expect("stored JSON");
                assert_eq!(&v, conv, "{name}: {id}");
            }
            let nodes = conv["mapping"].as_object().expect("mapping").len();
            assert_eq!(s.record.node_count as usize, nodes, "{name}: {id}");
            assert_eq!(
                s.record.summary.title.as_deref(),
                conv["title"].as_str(),
                "{name}"
            );
        }
    }
}

#[test]
fn import_single_conversation_object_file_detail_api_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conv = all_content_types_conversation();
    // Pretty-printed, like a saved `GET /backend-api/conversation/{id}` response.
    let path = write(
        dir.path(),
        "conversation-detail.json",
        &serde_json::to_vec_pretty(&conv).expect("json"),
    );
    let archive = Archive::temporary().expect("archive");
    let r = import(&archive, &path);
    assert_clean(&r);
    assert_eq!(r.kind, "json");
    assert_eq!(counts_of(&r), (1, 0, 0));
    let s = archive
        .get(&conv_id_of(&conv))
        .expect("get")
        .expect("stored");
    let v: Value = serde_json::from_slice(&s.raw).expect("stored JSON");
    assert_eq!(v, conv);
}

#[test]
fn import_slim_2026_shape_without_children_builds_the_tree_from_parents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ConvBuilder::new("slim-0001", "Slim export");
    let q = c.user("First question");
    c.assistant("First answer");
    c.user("Second question");
    let main_leaf = c.assistant("Second answer");
    c.branch_from(&q);
    c.assistant("A regenerated first answer");
    c.set_current(&main_leaf);
    c.slim();
    let conv = c.build();
    assert!(
        conv["mapping"]
            .as_object()
            .expect("mapping")
            .values()
            .all(|n| n.get("children").is_none()),
        "fixture premise: slim nodes have no children key"
    );
    let zip = dir.path().join("slim.zip");
    ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 1,
            manifest: true,
        })
        .conversation(conv.clone())
        .write_zip(&zip);
    let archive = Archive::temporary().expect("archive");
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (1, 0, 0));
    let v = view_of(&archive, "slim-0001");
    let texts: Vec<&str> = v.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "First question",
            "First answer",
            "Second question",
            "Second answer"
        ]
    );
    assert_eq!(v.node_count as usize, c.node_count());
    // With no current_node the newest leaf (the regeneration, appended last) wins: the
    // tree really is built from parent links alone.
    let mut no_current = conv.clone();
    no_current["current_node"] = Value::Null;
    no_current["conversation_id"] = json!("slim-0002");
    no_current["id"] = json!("slim-0002");
    let p = write_array(dir.path(), "slim-no-current.json", &[no_current.clone()]);
    assert_clean(&import(&archive, &p));
    let v = view_of(&archive, "slim-0002");
    let ids: Vec<String> = v.messages.iter().filter_map(|m| m.id.clone()).collect();
    assert_eq!(ids, expected_visible_ids(&no_current));
    assert_eq!(
        v.messages.last().map(|m| m.text.as_str()),
        Some("A regenerated first answer")
    );
}

#[test]
fn import_same_file_again_is_skipped_by_digest_with_no_writes_and_force_reimports_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = sample_export(dir.path());
    let archive = Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");

    let first = import(&archive, &zip);
    assert_clean(&first);
    assert_eq!(counts_of(&first), (5, 0, 0));
    assert_eq!(first.attachments, 3);
    assert!(first.already_imported.is_none());
    let before = snapshot(&archive);
    assert_eq!(before.0.conversations, 5);
    assert_eq!(before.0.attachments, 3);

    let second = import(&archive, &zip);
    assert_clean(&second);
    let prev = second
        .already_imported
        .as_ref()
        .expect("the second import is recognised by its digest");
    assert_eq!(prev.path, zip.display().to_string());
    assert_eq!(
        (prev.new, prev.updated, prev.unchanged, prev.failed),
        (5, 0, 0, 0)
    );
    assert_eq!(second.digest, first.digest);
    assert_eq!(counts_of(&second), (0, 0, 0));
    assert_eq!(second.attachments, 0);
    assert_eq!(
        snapshot(&archive),
        before,
        "a skipped import wrote something"
    );

    // The same bytes under another name are the same file.
    let copy = dir.path().join("renamed-copy.zip");
    fs::copy(&zip, &copy).expect("copy");
    let third = import(&archive, &copy);
    assert!(third.already_imported.is_some(), "{third:#?}");
    assert_eq!(snapshot(&archive), before);

    let forced = import_forced(&archive, &zip);
    assert_clean(&forced);
    assert!(forced.already_imported.is_none());
    assert_eq!(counts_of(&forced), (0, 0, 5));
    assert_eq!(
        forced.attachments, 0,
        "unchanged attachments are not stored again"
    );
    assert_eq!(
        snapshot(&archive),
        before,
        "a forced unchanged import wrote something"
    );
}

#[test]
fn import_counts_new_updated_and_unchanged_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keep = simple_conversation("count-keep", "Stays the same");
    let mut grow = ConvBuilder::new("count-grow", "Grows");
    grow.user("Start");
    grow.assistant("Started");
    let v1 = grow.build();
    grow.user("Continue");
    grow.assistant("Continued");
    let v2 = grow.build();
    let fresh = simple_conversation("count-new", "Brand new");

    let archive = Archive::temporary().expect("archive");
    let a = write_array(dir.path(), "first.json", &[keep.clone(), v1]);
    let r = import(&archive, &a);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (2, 0, 0));

    let b = write_array(dir.path(), "second.json", &[keep, v2.clone(), fresh]);
    let r = import(&archive, &b);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (1, 1, 1));
    let s = archive.get("count-grow").expect("get").expect("stored");
    assert!(
        s.raw == compact(&v2),
        "the newer version is stored verbatim"
    );
    assert_eq!(s.record.summary.message_count, 4);
    assert_eq!(archive.counts().expect("counts").conversations, 3);
}

// ---------------------------------------------------------------------------------------------
// 2. Attachments
// ---------------------------------------------------------------------------------------------

const DALLE_UUID: &str = "7c1e2a40-1d2b-4c3d-9e8f-000000000d11";
const USER_DIR_ID: &str = "file_00000000a77ac4000000000000000002";
const MISSING_ID: &str = "file-NotInTheExport9";

/// An export with one attachment in each naming scheme, plus one reference to a file the
/// export does not hold.
fn attachments_export() -> (ExportBuilder, Vec<Asset>) {
    let assets = vec![
        Asset::legacy("file-LegacyPhoto1", "photo.png"),
        Asset::dalle("file-DalleCat1", DALLE_UUID),
        Asset::user_dir("user-Att0000000000000001", USER_DIR_ID, "diagram.png"),
        Asset::dat("file-DatNotes1", "notes.jpg"),
    ];
    let mut c = ConvBuilder::new("attach-0001", "Every attachment scheme");
    c.user_image("A photo.", "file-LegacyPhoto1", "photo.png", "image/png");
    c.assistant("Nice photo.");
    c.user("Draw a cat.");
    c.generated_image("file-DalleCat1");
    c.assistant("Here is a cat.");
    c.user_image("A diagram.", USER_DIR_ID, "diagram.png", "image/png");
    c.assistant("A pipeline.");
    let mut d = ConvBuilder::new("attach-0002", "Notes and a lost file");
    d.user_image("My notes.", "file-DatNotes1", "notes.jpg", "image/jpeg");
    d.assistant("Buy milk.");
    d.user_image("And this?", MISSING_ID, "lost.png", "image/png");
    d.assistant("I cannot see it.");
    let mut b = ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: true,
        })
        .conversation(c.build())
        .conversation(d.build())
        .library_files();
    for a in &assets {
        b = b.asset(a.clone());
    }
    (b, assets)
}

#[track_caller]
fn assert_assets_stored(archive: &Archive, assets: &[Asset]) {
    for a in assets {
        let rec = archive
            .file(a.file_id())
            .expect("file record")
            .unwrap_or_else(|| panic!("{} not stored", a.file_id()));
        assert_eq!(rec.sha256, a.sha256_hex(), "{}", a.file_id());
        assert_eq!(rec.size, a.bytes().len() as u64, "{}", a.file_id());
        assert_eq!(rec.name.as_deref(), Some(a.original_name().as_str()));
        assert_eq!(
            rec.mime_type.as_deref(),
            Some(a.mime_type()),
            "{}",
            a.file_id()
        );
        let blob = fs::read(archive.blob_path(&rec.sha256)).expect("blob file");
        assert!(blob == a.bytes(), "{}: blob bytes differ", a.file_id());
    }
}

#[track_caller]
fn assert_view_attachments(archive: &Archive, assets: &[Asset]) {
    // file id → (name, mime_type, sha256)
    type Listed = (Option<String>, Option<String>, Option<String>);
    let mut listed: BTreeMap<String, Listed> = BTreeMap::new();
    for id in ["attach-0001", "attach-0002"] {
        let v = serde_json::to_value(view_of(archive, id)).expect("view JSON");
        for m in v["messages"].as_array().expect("messages") {
            for a in m["attachments"].as_array().expect("attachments") {
                let s = |k: &str| a[k].as_str().map(str::to_owned);
                listed.insert(
                    s("file_id").expect("file_id"),
                    (s("name"), s("mime_type"), s("sha256")),
                );
            }
        }
    }
    for a in assets {
        let (name, mime, sha) = listed
            .get(a.file_id())
            .unwrap_or_else(|| panic!("{} not listed in the view", a.file_id()));
        assert_eq!(
            sha.as_deref(),
            Some(a.sha256_hex().as_str()),
            "{}",
            a.file_id()
        );
        assert_eq!(name.as_deref(), Some(a.original_name().as_str()));
        assert_eq!(mime.as_deref(), Some(a.mime_type()), "{}", a.file_id());
    }
    let (name, _, sha) = &listed[MISSING_ID];
    assert_eq!(sha, &None, "a file the export lacks has sha256 null");
    assert_eq!(name.as_deref(), Some("lost.png"));
}

/// More attachments than one group of records (the import writes 256 per transaction):
/// every one is stored, counted once in the archive's totals, and shown by the
/// conversation; importing again with `--force` stores none of them again.
#[test]
fn import_of_more_attachments_than_one_record_group_stores_and_counts_every_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let assets: Vec<Asset> = (0..300)
        .map(|i| Asset::legacy(&format!("file-Many{i:04}"), &format!("pic{i}.png")))
        .collect();
    let mut c = ConvBuilder::new("many-0001", "Three hundred pictures");
    for a in &assets {
        c.user_image("A picture.", a.file_id(), &a.original_name(), "image/png");
        c.assistant("Seen.");
    }
    let mut export = ExportBuilder::new().conversation(c.build());
    for a in &assets {
        export = export.asset(a.clone());
    }
    let zip = dir.path().join("many.zip");
    export.write_zip(&zip);
    let archive = Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert_eq!(r.attachments, 300);
    assert_assets_stored(&archive, &assets);
    assert_eq!(archive.counts().expect("counts").attachments, 300);
    let v = serde_json::to_value(view_of(&archive, "many-0001")).expect("view JSON");
    let shown: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| m["attachments"].as_array().expect("attachments"))
        .map(|a| a["sha256"].as_str().expect("the bytes are stored"))
        .collect();
    let expected: Vec<String> = assets.iter().map(Asset::sha256_hex).collect();
    assert_eq!(shown, expected);
    let forced = import_forced(&archive, &zip);
    assert_clean(&forced);
    assert_eq!(forced.attachments, 0);
    assert_eq!(archive.counts().expect("counts").attachments, 300);
}

#[test]
fn import_attachments_in_every_naming_scheme_zip_and_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (export, assets) = attachments_export();
    let zip = dir.path().join("attachments.zip");
    export.write_zip(&zip);
    let folder = dir.path().join("attachments-unpacked");
    export.clone().nested("Export").write_dir(&folder);

    for path in [zip, folder] {
        let data = dir.path().join(format!(
            "data-{}",
            path.file_name().expect("name").to_string_lossy()
        ));
        let archive = Archive::open(&data, &OpenOptions::default()).expect("open");
        let r = import(&archive, &path);
        assert_clean(&r);
        assert_eq!(counts_of(&r), (2, 0, 0));
        assert_eq!(r.attachments, 4, "{}", path.display());
        assert_assets_stored(&archive, &assets);
        assert!(archive.file(MISSING_ID).expect("file").is_none());
        assert_view_attachments(&archive, &assets);
        let mut referenced = archive.conversation_files("attach-0002").expect("links");
        referenced.sort();
        assert_eq!(referenced, ["file-DatNotes1", MISSING_ID]);
        assert_eq!(
            archive.missing_files().expect("missing"),
            [("attach-0002".to_string(), MISSING_ID.to_string())]
        );
        // user.json is personal data: nothing of it may land in the archive.
        for f in files_under(&data) {
            let bytes = fs::read(&f).expect("read");
            for secret in [FAKE_EMAIL, FAKE_PHONE] {
                assert!(
                    memchr::memmem::find(&bytes, secret.as_bytes()).is_none(),
                    "{} holds {secret}",
                    f.display()
                );
            }
        }
    }
}

/// Attachments the archive cannot store (here its staging folder is a file, as a full
/// or read-only disk would fail it) fail the file: its conversations are in, but it is
/// not recorded as imported, so importing it again once the cause is gone stores the
/// attachments and only then records it.
#[test]
fn import_with_attachments_the_archive_cannot_store_is_not_recorded_and_a_retry_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (export, assets) = attachments_export();
    let zip = dir.path().join("attachments.zip");
    export.write_zip(&zip);
    let archive = Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");
    let staging = archive.dir().join("blobs").join("tmp");
    fs::remove_dir(&staging).expect("rmdir tmp");
    fs::write(&staging, b"not a folder").expect("block the staging folder");

    let r = import(&archive, &zip);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(
        e.contains("attachments.zip") && e.contains("4 attachment(s) could not be stored"),
        "{e}"
    );
    assert!(e.contains("not recorded as imported"), "{e}");
    assert!(e.contains("import it again"), "says what to do: {e}");
    assert!(r.failed() && !r.stored_completely());
    assert_eq!(counts_of(&r), (2, 0, 0), "the conversations are in");
    assert_eq!(r.attachments, 0);
    assert_eq!(r.warnings.len(), 4, "one per attachment: {:#?}", r.warnings);
    let digest = r.digest.clone().expect("digest");
    assert!(
        archive.import_record(&digest).expect("record").is_none(),
        "an export whose attachments are not stored is not recorded as imported"
    );
    assert!(archive.file(assets[0].file_id()).expect("file").is_none());

    // The cause is gone: the same file imports again (not skipped by its digest).
    fs::remove_file(&staging).expect("unblock");
    fs::create_dir(&staging).expect("mkdir tmp");
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert!(r.already_imported.is_none(), "{r:#?}");
    assert_eq!(counts_of(&r), (0, 0, 2));
    assert_eq!(r.attachments, 4);
    assert_assets_stored(&archive, &assets);
    assert!(
        archive.unsynced_blob_dirs().is_empty(),
        "the blob folders are synced before the file is recorded"
    );
    let record = archive.import_record(&digest).expect("record");
    assert_eq!(record.expect("recorded now").unchanged, 2);
    assert!(import(&archive, &zip).already_imported.is_some());
}

/// Attachments are stored before the conversations that show them, so a first import
/// writes each conversation once: none is moved up the change feed a second time (a
/// rewrite of its record) because its bytes arrived after it.
#[test]
fn import_stores_attachments_first_so_each_conversation_is_written_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (export, assets) = attachments_export();
    let zip = dir.path().join("attachments.zip");
    export.write_zip(&zip);
    let archive = Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert_eq!((counts_of(&r), r.attachments), ((2, 0, 0), 4));
    assert_assets_stored(&archive, &assets);
    assert_eq!(
        archive.last_change_seq().expect("feed"),
        2,
        "two conversations, two writes"
    );
    assert_eq!(archive.changes_since(0).count(), 2);
}

/// A crash of the machine after the attachments were renamed into place but before the
/// import's one sync can leave a blob empty. The file is then not recorded as imported,
/// and importing it again (here forced) must not trust the empty blob: it is written
/// again, and the sync at the end covers it before the file is recorded.
#[test]
fn import_again_rewrites_a_blob_a_crash_left_empty_before_the_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (export, assets) = attachments_export();
    let zip = dir.path().join("attachments.zip");
    export.write_zip(&zip);
    let archive = Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");
    assert_clean(&import(&archive, &zip));
    assert_eq!(archive.unsynced_blobs(), 0, "synced before it was recorded");
    let rec = archive
        .file(assets[0].file_id())
        .expect("file")
        .expect("stored");
    fs::write(archive.blob_path(&rec.sha256), b"").expect("what a power loss leaves");
    assert!(!archive.holds_file(&rec));

    let force = ImportOptions {
        force: true,
        ..ImportOptions::default()
    };
    let r = import_with(&archive, &zip, &force);
    assert_clean(&r);
    assert_eq!(r.attachments, 1, "only the damaged blob is stored again");
    assert_assets_stored(&archive, &assets);
    assert!(archive.holds_file(&rec));
    assert_eq!(archive.unsynced_blobs(), 0);
    assert!(archive.unsynced_blob_dirs().is_empty());
}

/// A process that dies after an import's first phase (its attachments stored, not yet
/// synced, no conversation, nothing recorded) leaves an archive that opens; importing
/// the file again keeps the attachments it finds whole, stores the conversations
/// (each written once) and records the file.
#[test]
fn import_after_a_crash_between_attachments_and_conversations_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (export, assets) = attachments_export();
    let zip = dir.path().join("attachments.zip");
    export.write_zip(&zip);
    let data = dir.path().join("data");
    {
        let archive = Archive::open(&data, &OpenOptions::default()).expect("open");
        for a in &assets {
            let name = a.original_name();
            archive
                .store_file(
                    a.file_id(),
                    Some(&name),
                    Some(a.mime_type()),
                    &a.bytes()[..],
                )
                .expect("store");
        }
        assert_eq!(archive.unsynced_blobs(), assets.len());
        // Dropped with no sync, flush or record: the process is gone.
    }
    let archive = Archive::open(&data, &OpenOptions::default()).expect("reopen");
    assert!(archive.is_empty());
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (2, 0, 0));
    assert_eq!(r.attachments, 0, "the whole blobs were kept");
    assert_assets_stored(&archive, &assets);
    // sled's sequence jumps ahead after a reopen; consecutive numbers mean one write each.
    let seqs: Vec<u64> = archive
        .changes_since(0)
        .map(|c| c.expect("feed").0)
        .collect();
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[1] - seqs[0], 1, "{seqs:?}");
    assert_eq!(archive.last_change_seq().expect("feed"), seqs[1]);
    assert!(
        archive
            .import_record(r.digest.as_deref().expect("digest"))
            .expect("record")
            .is_some()
    );
}

/// An attachment the export itself cannot deliver (here refused as a possible zip bomb)
/// is a warning, not a failed file: importing the same bytes again could not store it
/// either, so the file is recorded as imported.
#[test]
fn import_with_an_attachment_the_export_cannot_deliver_warns_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = asset_bytes("file-GoodPic1", "good.png");
    let mut c = ConvBuilder::new("undeliverable-0001", "A bomb-like attachment");
    c.user_image("Fine.", "file-GoodPic1", "good.png", "image/png");
    c.user_image("Zeros.", "file-Zeros1", "zeros.png", "image/png");
    c.assistant("Hm.");
    let zip = dir.path().join("undeliverable.zip");
    ExportBuilder::new()
        .conversation(c.build())
        .member("file-GoodPic1-good.png", &good)
        .member("file-Zeros1-zeros.png", &vec![0u8; 4 << 20])
        .write_zip(&zip);
    let archive = Archive::temporary().expect("archive");
    let opts = ImportOptions {
        limits: ImportConfig {
            max_ratio: 100,
            ratio_grace_bytes: 256 << 10,
            ..ImportConfig::default()
        },
        ..ImportOptions::default()
    };
    let r = import_with(&archive, &zip, &opts);
    assert!(r.error.is_none(), "{r:#?}");
    assert!(r.stored_completely());
    assert_eq!((counts_of(&r), r.attachments), ((1, 0, 0), 1), "{r:#?}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("file-Zeros1") && w.contains("zip bomb")),
        "{:#?}",
        r.warnings
    );
    let digest = r.digest.clone().expect("digest");
    assert!(archive.import_record(&digest).expect("record").is_some());
}

#[test]
fn import_library_files_json_names_a_dat_attachment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = asset_bytes("file-LibReport1", "report.pdf");
    let library = json!([{
        "file_id": "file-LibReport1",
        "file_name": "Quarterly report.pdf",
        "mime_type": "application/pdf",
        "origination_thread_id": "libfiles-0001",
    }]);
    let mut c = ConvBuilder::new("libfiles-0001", "Library file");
    c.user_image(
        "Summarise.",
        "file-LibReport1",
        "Quarterly report.pdf",
        "application/pdf",
    );
    c.assistant("Revenue grew.");
    let zip = dir.path().join("library.zip");
    ExportBuilder::new()
        .conversation(c.build())
        .member("library_files.json", &compact(&library))
        .member("file-LibReport1.dat", &bytes)
        .write_zip(&zip);
    let archive = Archive::temporary().expect("archive");
    let r = import(&archive, &zip);
    assert_clean(&r);
    assert_eq!(r.attachments, 1);
    let rec = archive
        .file("file-LibReport1")
        .expect("file")
        .expect("stored");
    assert_eq!(rec.name.as_deref(), Some("Quarterly report.pdf"));
    assert_eq!(rec.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(rec.sha256, sha256_hex(&bytes));
}

#[test]
fn import_same_attachment_bytes_are_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let same = asset_bytes("file-DupShared", "shared.png");
    let other = asset_bytes("file-DupOther", "other.png");
    let mut c = ConvBuilder::new("dedup-0001", "Same picture twice");
    c.user_image("One.", "file-DupA", "a.png", "image/png");
    c.user_image("Two.", "file-DupB", "b.png", "image/png");
    c.user_image("Three.", "file-DupC", "c.png", "image/png");
    c.assistant("The first two are the same.");
    let zip = dir.path().join("dedup.zip");
    ExportBuilder::new()
        .conversation(c.build())
        .member("file-DupA-a.png", &same)
        .member("file-DupB-b.png", &same)
        .member("file-DupC-c.png", &other)
        .write_zip(&zip);
    let archive = Archive::temporary().expect("archive");
    assert_clean(&import(&archive, &zip));
    let a = archive.file("file-DupA").expect("a").expect("a stored");
    let b = archive.file("file-DupB").expect("b").expect("b stored");
    let c = archive.file("file-DupC").expect("c").expect("c stored");
    assert_eq!(a.sha256, sha256_hex(&same));
    assert_eq!(a.sha256, b.sha256);
    assert_ne!(a.sha256, c.sha256);
    assert_eq!(
        (a.name.as_deref(), b.name.as_deref()),
        (Some("a.png"), Some("b.png"))
    );
    assert_eq!(archive.counts().expect("counts").attachments, 3);
    let blobs = blob_files(&archive);
    assert_eq!(
        blobs.len(),
        2,
        "two distinct contents, two blobs: {blobs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Losslessness and version merging
// ---------------------------------------------------------------------------------------------

#[test]
fn import_round_trip_stores_input_bytes_verbatim_with_all_branches_and_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = sample_export(dir.path());
    let rich = all_content_types_conversation();
    let json = write_array(dir.path(), "rich.json", std::slice::from_ref(&rich));
    let archive = Archive::temporary().expect("archive");
    assert_clean(&import(&archive, &zip));
    assert_clean(&import(&archive, &json));

    // The sample export's conversations, read back out of its ZIP members.
    let mut inputs: Vec<Value> = vec![rich];
    let mut z = zip::ZipArchive::new(fs::File::open(&zip).expect("open")).expect("zip");
    for name in ["conversations-000.json", "conversations-001.json"] {
        let member = z.by_name(name).expect("shard");
        let arr: Vec<Value> = serde_json::from_reader(member).expect("shard JSON");
        inputs.extend(arr);
    }
    assert_eq!(inputs.len(), 6);
    for conv in &inputs {
        let id = conv_id_of(conv);
        let s = archive.get(&id).expect("get").expect("stored");
        assert!(
            s.raw == compact(conv),
            "{id}: stored bytes differ from the input element"
        );
        assert!(s.extra.is_none());
        let text = String::from_utf8(s.raw.clone()).expect("utf-8");
        assert!(text.contains(UNKNOWN_CONV_KEY) && text.contains(UNKNOWN_MESSAGE_KEY));
        let parsed = s.parse().expect("parse");
        let stored_keys: BTreeSet<String> =
            parsed.nodes().iter().map(|n| n.key.to_string()).collect();
        let input_keys: BTreeSet<String> = conv["mapping"]
            .as_object()
            .expect("mapping")
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            stored_keys, input_keys,
            "{id}: every branch's nodes are kept"
        );
        assert_eq!(s.record.node_count as usize, input_keys.len());
    }
}

/// update_time moved by `delta` seconds.
fn shifted(conv: &Value, delta: f64) -> Value {
    let mut c = conv.clone();
    c["update_time"] = json!(conv["update_time"].as_f64().expect("update_time") + delta);
    c
}

#[test]
fn import_newer_older_and_equal_versions_merge_by_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ConvBuilder::new("merge-0001", "Original title");
    let q = c.user("Name a Portuguese city.");
    let answer = c.assistant("Porto.");
    c.branch_from(&q);
    let regen = c.assistant("Lisbon.");
    c.set_current(&answer);
    let v1 = c.build();
    let v1_nodes = c.node_count();

    // A newer version that lacks the regenerated answer (and is renamed).
    let mut v2 = shifted(&v1, 60.0);
    v2["title"] = json!("Renamed title");
    let m = v2["mapping"].as_object_mut().expect("mapping");
    m.remove(&regen);
    m[&q]["children"] = json!([answer]);

    let archive = Archive::temporary().expect("archive");
    let r = import(
        &archive,
        &write_array(dir.path(), "v1.json", std::slice::from_ref(&v1)),
    );
    assert_eq!(counts_of(&r), (1, 0, 0));
    let r = import(&archive, &write_array(dir.path(), "v2.json", &[v2.clone()]));
    assert_clean(&r);
    assert_eq!(counts_of(&r), (0, 1, 0));
    let s = archive.get("merge-0001").expect("get").expect("stored");
    assert!(
        s.raw == compact(&v2),
        "the newest version is stored verbatim"
    );
    assert_eq!(s.record.summary.title.as_deref(), Some("Renamed title"));
    assert_eq!(
        s.record.node_count as usize, v1_nodes,
        "the lacking node is kept"
    );
    let extra: Value =
        serde_json::from_slice(s.extra.as_deref().expect("retained nodes")).expect("retained JSON");
    assert_eq!(
        extra
            .as_object()
            .expect("object")
            .keys()
            .collect::<Vec<_>>(),
        [&regen],
        "exactly the node v2 lacks is retained"
    );
    assert_eq!(extra[&regen], v1["mapping"][&regen], "retained verbatim");
    let parsed = s.parse().expect("parse");
    assert!(parsed.nodes().iter().any(|n| n.key == regen.as_str()));
    assert_eq!(
        view_of(&archive, "merge-0001").node_count as usize,
        v1_nodes
    );
    let after_v2 = snapshot(&archive);

    // The older v1 again (forced past the digest check): every node is known, so nothing
    // is written.
    let force = ImportOptions {
        force: true,
        ..ImportOptions::default()
    };
    let r = import_with(
        &archive,
        &write_array(dir.path(), "v1-again.json", std::slice::from_ref(&v1)),
        &force,
    );
    assert_clean(&r);
    assert_eq!(counts_of(&r), (0, 0, 1));
    assert_eq!(snapshot(&archive), after_v2);

    // The same version as stored (pretty-printed, so another file): nothing is written.
    let same = write(
        dir.path(),
        "v2-pretty.json",
        &serde_json::to_vec_pretty(&json!([v2.clone()])).expect("json"),
    );
    let r = import(&archive, &same);
    assert_eq!(counts_of(&r), (0, 0, 1));
    assert_eq!(
        snapshot(&archive),
        after_v2,
        "an equal version wrote something"
    );

    // An older version with one node never seen: only that node is added.
    let mut v0 = shifted(&v1, -60.0);
    let mut extra_node = v0["mapping"][&answer].clone();
    extra_node["id"] = json!("older-only-node");
    extra_node["parent"] = json!(answer);
    extra_node["children"] = json!([]);
    extra_node["message"]["id"] = json!("older-only-message");
    v0["mapping"]["older-only-node"] = extra_node;
    let r = import(&archive, &write_array(dir.path(), "v0.json", &[v0]));
    assert_clean(&r);
    assert_eq!(counts_of(&r), (0, 1, 0));
    let s = archive.get("merge-0001").expect("get").expect("stored");
    assert!(
        s.raw == compact(&v2),
        "an older version never replaces the document"
    );
    assert_eq!(s.record.version, after_v2.1["merge-0001"].0.version);
    assert_eq!(s.record.summary.title.as_deref(), Some("Renamed title"));
    assert_eq!(s.record.node_count as usize, v1_nodes + 1);
    let extra: Value = serde_json::from_slice(s.extra.as_deref().expect("extra")).expect("json");
    let kept: BTreeSet<&String> = extra.as_object().expect("object").keys().collect();
    assert_eq!(
        kept,
        BTreeSet::from([&regen, &"older-only-node".to_string()])
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The Export schema v1 view
// ---------------------------------------------------------------------------------------------

const TOP_KEYS: [&str; 11] = [
    "id",
    "title",
    "create_time",
    "update_time",
    "model",
    "gizmo_id",
    "project",
    "is_archived",
    "deleted_remotely",
    "node_count",
    "messages",
];
const MESSAGE_KEYS: [&str; 9] = [
    "id",
    "role",
    "author_name",
    "recipient",
    "content_type",
    "text",
    "create_time",
    "model",
    "attachments",
];
const ATTACHMENT_KEYS: [&str; 4] = ["name", "file_id", "mime_type", "sha256"];

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Asserts a serialised conversation has exactly the Export schema v1 keys, recursively,
/// and RFC 3339 UTC times. Shared with the CLI tests.
#[track_caller]
pub(crate) fn assert_export_schema(v: &Value) {
    assert_eq!(keys(v), BTreeSet::from(TOP_KEYS), "top-level keys");
    for k in ["create_time", "update_time"] {
        if let Some(t) = v[k].as_str() {
            assert_rfc3339_utc(t);
        } else {
            assert!(v[k].is_null(), "{k} is a string or null");
        }
    }
    assert!(v["is_archived"].is_boolean() && v["deleted_remotely"].is_boolean());
    assert!(v["node_count"].is_u64());
    for m in v["messages"].as_array().expect("messages array") {
        assert_eq!(keys(m), BTreeSet::from(MESSAGE_KEYS), "message keys: {m}");
        assert!(m["text"].is_string() && m["role"].is_string());
        if let Some(t) = m["create_time"].as_str() {
            assert_rfc3339_utc(t);
        }
        for a in m["attachments"].as_array().expect("attachments array") {
            assert_eq!(keys(a), BTreeSet::from(ATTACHMENT_KEYS), "attachment keys");
        }
    }
}

#[test]
fn view_of_every_content_type_follows_export_schema_v1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conv = all_content_types_conversation();
    let id = conv_id_of(&conv);
    let archive = Archive::temporary().expect("archive");
    assert_clean(&import(
        &archive,
        &write_array(dir.path(), "all.json", std::slice::from_ref(&conv)),
    ));
    let view = view_of(&archive, &id);
    let v = serde_json::to_value(&view).expect("view JSON");
    assert_export_schema(&v);

    assert_eq!(v["id"], json!(id));
    assert_eq!(v["title"], json!("Every content type"));
    assert_eq!(v["create_time"], json!("2026-01-04T00:00:00Z"));
    assert_eq!(v["model"], json!("gpt-5-thinking"));
    assert_eq!(v["is_archived"], json!(false));
    assert_eq!(v["deleted_remotely"], json!(false));
    assert_eq!(
        v["node_count"],
        json!(conv["mapping"].as_object().expect("mapping").len())
    );

    // The messages are exactly the visible part of the current_node branch, in order.
    let got_ids: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("message id"))
        .collect();
    assert_eq!(got_ids, expected_visible_ids(&conv));

    let raw_messages = messages_by_id(&conv);
    let messages = v["messages"].as_array().expect("messages");
    for m in messages {
        let raw = &raw_messages[m["id"].as_str().expect("id")];
        assert_eq!(m["role"], raw["author"]["role"]);
        assert_eq!(m["author_name"], raw["author"]["name"]);
        assert_eq!(m["recipient"], raw["recipient"]);
        assert_eq!(m["content_type"], raw["content"]["content_type"]);
        assert_eq!(
            m["text"].as_str(),
            Some(expected_text(&raw["content"]).as_str()),
            "text of a {} message",
            m["content_type"]
        );
        let t = raw["create_time"]
            .as_f64()
            .expect("visible messages are timed");
        let want = chrono::DateTime::from_timestamp_micros((t * 1e6).round() as i64)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        assert_eq!(m["create_time"], json!(want));
    }

    // Spot checks of the per-type rules, written out.
    let text_of = |ct: &str| -> Vec<&str> {
        messages
            .iter()
            .filter(|m| m["content_type"] == json!(ct))
            .map(|m| m["text"].as_str().expect("text"))
            .collect()
    };
    assert_eq!(text_of("thoughts"), ["Consider food and the river.\n\n"]);
    assert_eq!(text_of("reasoning_recap"), ["Thought for 7s"]);
    assert_eq!(
        text_of("tether_browsing_display"),
        ["【0†Porto weather†weather.example.com】\nSunny, 21°C."]
    );
    assert_eq!(text_of("tether_quote"), ["Sunny, 21°C, light wind."]);
    assert_eq!(text_of("sonic_webpage"), ["The festival starts on Friday."]);
    assert_eq!(
        text_of("system_error"),
        ["Tool call failed: sandbox unavailable"]
    );
    assert_eq!(text_of("execution_output"), ["\n<<ImageDisplayed>>"]);
    assert_eq!(text_of("some_future_type"), [""]);
    assert_eq!(
        text_of("multimodal_text"),
        ["What is in this photo?", "", "Tell me a joke."]
    );

    // Hidden context is left out; tool messages are kept.
    let content_types: BTreeSet<&str> = messages
        .iter()
        .map(|m| m["content_type"].as_str().expect("content_type"))
        .collect();
    for hidden in ["user_editable_context", "model_editable_context"] {
        assert!(!content_types.contains(hidden), "{hidden} must be hidden");
    }
    assert!(messages.iter().all(|m| m["role"] != json!("system")));
    let tools: BTreeSet<&str> = messages
        .iter()
        .filter(|m| m["role"] == json!("tool"))
        .map(|m| m["author_name"].as_str().expect("tool name"))
        .collect();
    assert_eq!(
        tools,
        BTreeSet::from([
            "python",
            "browser",
            "web.run",
            "container.exec",
            "t2uay3k.sj1i4kz"
        ])
    );
    // Dead-end branches are not on the active branch.
    let all_text: String = messages
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert!(!all_text.contains("Regenerated") && !all_text.contains("(edited)"));

    // Attachments: the upload (with its metadata name), the generated image and the voice
    // clip; none of their bytes were in the export, so sha256 is null.
    let attachments: Vec<&Value> = messages
        .iter()
        .flat_map(|m| m["attachments"].as_array().expect("attachments"))
        .collect();
    let by_id: BTreeMap<&str, &Value> = attachments
        .iter()
        .map(|a| (a["file_id"].as_str().expect("file_id"), *a))
        .collect();
    assert_eq!(by_id["file-AllTypesPhoto1"]["name"], json!("photo.png"));
    assert_eq!(
        by_id["file-AllTypesPhoto1"]["mime_type"],
        json!("image/png")
    );
    assert!(by_id.contains_key("file_00000000a11c0de5000000000000ge01"));
    assert_eq!(
        by_id["file_00000000a11c0de5000000000000a0d1"]["mime_type"],
        json!("audio/wav")
    );
    assert!(attachments.iter().all(|a| a["sha256"].is_null()));
}

#[test]
fn view_of_a_5000_node_linear_conversation_needs_no_recursion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ConvBuilder::new("deep-0001", "Five thousand turns");
    let last = c.linear(5000);
    let conv = c.build();
    assert_eq!(c.node_count(), 5002);
    let path = write_array(dir.path(), "deep.json", std::slice::from_ref(&conv));
    // Run on a small stack: anything recursive per node would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let archive = Archive::temporary().expect("archive");
            let r = import(&archive, &path);
            assert_clean(&r);
            assert_eq!(counts_of(&r), (1, 0, 0));
            let v = view_of(&archive, "deep-0001");
            let md = convos::render::markdown::render(&v, &NoLinks);
            (v, md, archive.record("deep-0001").expect("record"))
        })
        .expect("spawning");
    let (v, md, record) = handle
        .join()
        .expect("the import must not overflow the stack");
    let record = record.expect("stored");
    assert_eq!(record.node_count, 5002);
    assert_eq!(record.summary.message_count, 5000);
    assert_eq!(v.messages.len(), 5000);
    assert_eq!(v.messages[0].text, "Question 0");
    assert_eq!(v.messages[4999].text, "Answer 4999");
    assert_eq!(v.messages[4999].node_id, last);
    assert!(md.contains("Answer 4999"));
}

struct NoLinks;

impl convos::render::markdown::AttachmentLinks for NoLinks {
    fn link(&self, _: &convos::render::view::AttachmentView) -> Option<String> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input: nothing already archived is touched, and later imports still work
// ---------------------------------------------------------------------------------------------

/// An archive holding the sample export, and a place for bad inputs.
struct Seeded {
    dir: TempDir,
    archive: Archive,
    before: (Counts, Stored),
}

impl Seeded {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("inputs")).expect("inputs");
        let zip = sample_export(&dir.path().join("inputs"));
        let archive =
            Archive::open(&dir.path().join("data"), &OpenOptions::default()).expect("open");
        let r = import(&archive, &zip);
        assert_clean(&r);
        assert_eq!(counts_of(&r), (5, 0, 0));
        let before = snapshot(&archive);
        Seeded {
            dir,
            archive,
            before,
        }
    }

    fn input(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write(&self.dir.path().join("inputs"), name, bytes)
    }

    /// Nothing at all changed.
    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            snapshot(&self.archive),
            self.before,
            "bad input changed the archive"
        );
    }

    /// Every conversation archived before is exactly as it was (others may have been added).
    #[track_caller]
    fn assert_previous_intact(&self) {
        let now = stored(&self.archive);
        for (id, entry) in &self.before.1 {
            assert_eq!(now.get(id), Some(entry), "{id} changed");
        }
        assert!(self.archive.counts().expect("counts").attachments >= self.before.0.attachments);
    }

    /// A good file imported after the bad one still works.
    #[track_caller]
    fn assert_still_imports(&self) {
        let id = format!("after-bad-{}", self.archive.len());
        let p = write_array(
            &self.dir.path().join("inputs"),
            &format!("{id}.json"),
            &[simple_conversation(&id, "Imported after bad input")],
        );
        let r = import(&self.archive, &p);
        assert_clean(&r);
        assert_eq!(counts_of(&r), (1, 0, 0));
        assert!(self.archive.get(&id).expect("get").is_some());
    }
}

/// The text of everything a report says went wrong.
fn failure_text(r: &FileReport) -> String {
    let mut s = r.error.clone().unwrap_or_default();
    for p in &r.problems {
        s.push_str(&format!(
            "\n{} | {} | {}",
            p.location,
            p.conversation.as_deref().unwrap_or(""),
            p.message
        ));
    }
    s
}

#[test]
fn bad_corrupt_zip_fails_the_file_and_leaves_the_archive_untouched() {
    let s = Seeded::new();
    let p = s.input("corrupt-export.zip", &corrupt_zip());
    let r = import(&s.archive, &p);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(e.contains("corrupt-export.zip"), "names the file: {e}");
    assert!(
        e.contains("download the export again"),
        "says what to do: {e}"
    );
    assert_eq!(counts_of(&r), (0, 0, 0));
    s.assert_untouched();
    // A failed file is not recorded as imported: fixing nothing and retrying fails again.
    assert!(import(&s.archive, &p).error.is_some());
    s.assert_still_imports();
}

#[test]
fn bad_truncated_zip_fails_the_file_and_leaves_the_archive_untouched() {
    let s = Seeded::new();
    let whole = ExportBuilder::new()
        .conversations([
            simple_conversation("trunc-zip-1", "Would be new"),
            simple_conversation("trunc-zip-2", "Would be new too"),
        ])
        .to_zip_bytes();
    let p = s.input("half-downloaded.zip", &truncate(&whole, 0.5));
    let r = import(&s.archive, &p);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(e.contains("half-downloaded.zip"), "{e}");
    assert!(e.contains("incomplete"), "{e}");
    assert!(s.archive.get("trunc-zip-1").expect("get").is_none());
    s.assert_untouched();
    s.assert_still_imports();
}

#[test]
fn bad_zip_without_conversations_fails_the_file() {
    let s = Seeded::new();
    let p = s.input("no-conversations.zip", &zip_without_conversations());
    let r = import(&s.archive, &p);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(e.contains("no-conversations.zip"), "{e}");
    assert!(e.contains("conversations.json"), "{e}");
    s.assert_untouched();
    s.assert_still_imports();
}

#[test]
fn bad_zip_that_is_not_an_export_fails_the_file() {
    let s = Seeded::new();
    let p = s.input("some-project.zip", &zip_not_an_export());
    let r = import(&s.archive, &p);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(e.contains("some-project.zip"), "{e}");
    assert!(e.contains("ChatGPT data export"), "{e}");
    s.assert_untouched();
    s.assert_still_imports();
}

/// 2.5 GB of spaces from a ~2.4 MB ZIP, under the default limits.
fn bomb_test(header_lies: bool) {
    let s = Seeded::new();
    let p = s.dir.path().join("inputs").join("bomb.zip");
    zip_bomb(&p, 2_500_000_000, header_lies);
    assert!(fs::metadata(&p).expect("bomb").len() < 3_000_000);
    let opts = ImportOptions::default();
    assert_eq!(opts.limits, ImportConfig::default());
    let r = import_with(&s.archive, &p, &opts);
    assert!(r.failed(), "a zip bomb must be refused: {r:#?}");
    let text = failure_text(&r);
    assert!(text.contains("zip bomb"), "says why: {text}");
    assert!(
        text.contains("conversations.json"),
        "names the member: {text}"
    );
    assert_eq!(counts_of(&r), (0, 0, 0));
    s.assert_untouched();
    s.assert_still_imports();
}

#[test]
fn bad_zip_bomb_with_honest_headers_is_stopped_by_the_ratio_limit() {
    bomb_test(false);
}

#[test]
fn bad_zip_bomb_with_lying_headers_is_stopped() {
    bomb_test(true);
}

#[test]
fn bad_zip_with_too_many_entries_is_refused() {
    let s = Seeded::new();
    let p = s.input("many.zip", &many_entries_zip(64));
    let opts = ImportOptions {
        limits: ImportConfig {
            max_entries: 20,
            ..ImportConfig::default()
        },
        ..ImportOptions::default()
    };
    let r = import_with(&s.archive, &p, &opts);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(
        e.contains("many.zip") && e.contains("64") && e.contains("20"),
        "{e}"
    );
    assert!(e.contains("max_entries"), "says which setting: {e}");
    assert!(s.archive.get("many-entries").expect("get").is_none());
    s.assert_untouched();
    // Within the limit, the same file imports.
    let r = import(&s.archive, &p);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (1, 0, 0));
}

#[test]
fn bad_zip_with_hostile_names_imports_the_good_part_and_writes_nothing_outside() {
    let s = Seeded::new();
    let p = s.input("hostile.zip", &zip_with_hostile_names());
    let r = import(&s.archive, &p);
    assert!(r.error.is_none(), "{r:#?}");
    assert_eq!(counts_of(&r), (1, 0, 0), "{r:#?}");
    assert!(s.archive.get(HOSTILE_OK_ID).expect("get").is_some());
    assert!(
        s.archive.get("evil-outside").expect("get").is_none(),
        "../evil.json must not be read as conversations"
    );
    for name in HOSTILE_NAMES {
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains(name) || w.contains(&format!("{name:?}"))),
            "no warning names {name:?}: {:#?}",
            r.warnings
        );
    }
    // Nothing from the ZIP was written anywhere but the archive's own store.
    assert!(s.archive.file("file-x").expect("file").is_none());
    assert!(s.archive.file("file-link").expect("file").is_none());
    let parent = s.dir.path();
    for f in files_under(parent) {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            !(name.contains("evil") || name.contains("passwd") || name == "b" || name == "x"),
            "unexpected file {}",
            f.display()
        );
    }
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_malformed_element_mid_array_is_reported_and_the_rest_imports() {
    let s = Seeded::new();
    let p = s.input("malformed-middle.json", &malformed_array_middle());
    let r = import(&s.archive, &p);
    assert!(r.error.is_none(), "{r:#?}");
    assert_eq!(counts_of(&r), (4, 0, 0));
    assert_eq!(r.problems.len(), 1, "{r:#?}");
    let problem = &r.problems[0];
    assert!(
        problem.location.contains("malformed-middle.json"),
        "{problem:?}"
    );
    assert!(problem.location.contains("#3"), "position: {problem:?}");
    assert!(
        problem
            .conversation
            .as_deref()
            .unwrap_or("")
            .contains("mal-2")
            || problem.message.contains("mal-2"),
        "names the conversation: {problem:?}"
    );
    for i in [0, 1, 3, 4] {
        assert!(s.archive.get(&format!("mal-{i}")).expect("get").is_some());
    }
    assert!(s.archive.get("mal-2").expect("get").is_none());
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_unbalanced_element_resynchronises_on_the_next_conversation() {
    let s = Seeded::new();
    let p = s.input("unbalanced.json", &malformed_unbalanced());
    let r = import(&s.archive, &p);
    assert!(r.error.is_none(), "{r:#?}");
    for i in [0, 1, 3, 4] {
        assert!(
            s.archive.get(&format!("unb-{i}")).expect("get").is_some(),
            "unb-{i} must import: {r:#?}"
        );
    }
    assert!(s.archive.get("unb-2").expect("get").is_none());
    assert_eq!(counts_of(&r), (4, 0, 0));
    assert_eq!(r.problems.len(), 1, "{r:#?}");
    let text = failure_text(&r);
    assert!(
        text.contains("unbalanced.json") && text.contains("#3"),
        "{text}"
    );
    assert!(text.contains("unb-2"), "names the conversation: {text}");
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_truncated_array_imports_everything_before_the_cut() {
    let s = Seeded::new();
    let p = s.input("truncated.json", &truncated_array());
    let r = import(&s.archive, &p);
    assert!(r.error.is_none(), "{r:#?}");
    assert_eq!(counts_of(&r), (2, 0, 0));
    assert!(s.archive.get("trunc-0").expect("get").is_some());
    assert!(s.archive.get("trunc-1").expect("get").is_some());
    assert!(s.archive.get("trunc-2").expect("get").is_none());
    assert_eq!(r.problems.len(), 1, "{r:#?}");
    let text = failure_text(&r);
    assert!(
        text.contains("truncated.json") && text.contains("#3"),
        "{text}"
    );
    assert!(text.contains("trunc-2"), "names the conversation: {text}");
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_conversation_without_mapping_is_reported_and_others_import() {
    let s = Seeded::new();
    let p = write_array(
        &s.dir.path().join("inputs"),
        "no-mapping.json",
        &[
            simple_conversation("nomap-before", "Before"),
            conversation_without_mapping(),
            simple_conversation("nomap-after", "After"),
        ],
    );
    let r = import(&s.archive, &p);
    assert!(r.error.is_none(), "{r:#?}");
    assert_eq!(counts_of(&r), (2, 0, 0));
    assert_eq!(r.problems.len(), 1);
    let text = failure_text(&r);
    assert!(
        text.contains("no-mapping.json") && text.contains("#2"),
        "{text}"
    );
    assert!(
        text.contains("no-mapping") && text.contains("Corrupted entry"),
        "{text}"
    );
    assert!(text.contains("mapping"), "says what is wrong: {text}");
    assert!(s.archive.get("no-mapping").expect("get").is_none());
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_dangling_ids_are_archived_with_the_newest_leaf_branch() {
    let s = Seeded::new();
    let conv = dangling_ids();
    let p = write_array(
        &s.dir.path().join("inputs"),
        "dangling.json",
        std::slice::from_ref(&conv),
    );
    let r = import(&s.archive, &p);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (1, 0, 0));
    let stored = s.archive.get("dangling").expect("get").expect("archived");
    assert!(stored.raw == compact(&conv));
    let v = view_of(&s.archive, "dangling");
    let texts: Vec<&str> = v.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "First question",
            "First answer",
            "Second question",
            "Second answer"
        ]
    );
    let ids: Vec<String> = v.messages.iter().filter_map(|m| m.id.clone()).collect();
    assert_eq!(ids, expected_visible_ids(&conv));
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_json_non_utf8_bytes_are_replaced_and_warned_about() {
    let s = Seeded::new();
    let p = s.input("non-utf8.json", &non_utf8_array());
    let r = import(&s.archive, &p);
    assert_clean(&r);
    assert_eq!(counts_of(&r), (3, 0, 0));
    let warning = r
        .warnings
        .iter()
        .find(|w| w.contains("utf-1"))
        .unwrap_or_else(|| panic!("no warning names utf-1: {:#?}", r.warnings));
    assert!(
        warning.contains("U+FFFD") && warning.contains("non-utf8.json"),
        "{warning}"
    );
    let v = view_of(&s.archive, "utf-1");
    assert!(
        v.messages[0].text.starts_with("before \u{FFFD}") && v.messages[0].text.ends_with(" after"),
        "{:?}",
        v.messages[0].text
    );
    let raw = s.archive.get("utf-1").expect("get").expect("stored").raw;
    assert!(String::from_utf8(raw).is_ok(), "stored JSON is valid UTF-8");
    s.assert_previous_intact();
    s.assert_still_imports();
}

#[test]
fn bad_empty_file_fails_with_a_clear_error() {
    let s = Seeded::new();
    let p = s.input("conversations.json", &empty_file());
    let r = import(&s.archive, &p);
    let e = r.error.as_deref().expect("a file-level error");
    assert!(
        e.contains("conversations.json") && e.contains("empty"),
        "{e}"
    );
    s.assert_untouched();
    s.assert_still_imports();
}

#[test]
fn bad_and_good_paths_together_import_the_good_ones() {
    let s = Seeded::new();
    let bad = s.input("bad.zip", &corrupt_zip());
    let good = write_array(
        &s.dir.path().join("inputs"),
        "good.json",
        &[simple_conversation("mixed-good", "Good one")],
    );
    let report = ingest::import_paths(
        &s.archive,
        &[bad.clone(), good.clone()],
        &ImportOptions::default(),
        &AtomicBool::new(false),
    );
    assert!(report.failed());
    assert_eq!(report.files.len(), 2);
    assert!(report.files[0].error.is_some());
    assert_clean(&report.files[1]);
    assert_eq!(counts_of(&report.files[1]), (1, 0, 0));
    s.assert_previous_intact();
}
