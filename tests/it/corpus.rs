//! Tests over the real samples in `../shared/corpus` (see its README). They run when that
//! folder exists beside the crate and skip otherwise: a fresh clone has no `../shared`.
//! Corpus files are read in place, never copied into the project.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use convos::archive::Archive;
use convos::ingest::{self, FileReport, ImportOptions};
use convos::render::view;
use serde_json::{Value, json};

use crate::import::{expected_visible_ids, newest_leaf};
use crate::support::fixtures::sha256_hex;

const MODERN: &str = "librechat-chatgpt-modern-export.json";
const LIST_PAGE: &str = "chrthub-api-conversations-list-2023.json";
const TREE: &str = "librechat-chatgpt-tree.json";
const CITATIONS: &str = "librechat-chatgpt-citations.json";
const SHARDED_DIR: &str = "librechat-sharded-export";
const SHARDED_ZIP: &str = "librechat-sharded-export.zip";

/// The corpus folder, or `None` (with a note on stderr) when it is absent.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: no sample corpus at {} (it lives beside the crate in the development \
             workspace only)",
            dir.display()
        );
        None
    }
}

fn import(archive: &Archive, path: &Path) -> FileReport {
    ingest::import_path(
        archive,
        path,
        &ImportOptions::default(),
        &AtomicBool::new(false),
    )
}

/// Reads a corpus JSON file holding an array with one conversation.
fn only_conversation(path: &Path) -> Value {
    let v: Value = serde_json::from_slice(&fs::read(path).expect("reading the sample"))
        .expect("the sample is JSON");
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), 1, "{}", path.display());
    arr[0].clone()
}

/// Message ids of the view of conversation `id`.
fn view_message_ids(archive: &Archive, id: &str) -> Vec<String> {
    let s = archive.get(id).expect("get").expect("archived");
    view::build(archive, &s)
        .expect("view")
        .messages
        .into_iter()
        .map(|m| m.id.expect("message id"))
        .collect()
}

/// Node id at the end of the stored conversation's active branch.
fn branch_end(archive: &Archive, id: &str) -> String {
    let s = archive.get(id).expect("get").expect("archived");
    let conv = s.parse().expect("parse");
    let branch = conv.active_branch();
    let last = *branch.last().expect("a non-empty branch");
    conv.nodes()[last].key.to_string()
}

#[test]
fn corpus_every_sample_imports_without_file_level_errors() {
    let Some(dir) = corpus() else { return };
    // Conversations each sample holds (README), for the ones known when this was written.
    let known: BTreeMap<&str, u64> = BTreeMap::from([
        ("chatgpt2graph-code-interpreter.json", 1),
        (LIST_PAGE, 0),
        (CITATIONS, 1),
        ("librechat-chatgpt-export.json", 2),
        (MODERN, 2),
        (TREE, 1),
        ("marcopolo-synthetic-export.json", 2),
        ("marcopolo-synthetic-openai-export.zip", 2),
        ("pionxzh-image-generation.json", 1),
        ("pionxzh-thinking-single-preamble.json", 1),
        ("pionxzh-thinking-summaries.json", 1),
        (SHARDED_DIR, 2),
        (SHARDED_ZIP, 2),
    ]);
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("listing the corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "zip"))
        .collect();
    inputs.push(dir.join(SHARDED_DIR));
    inputs.sort();
    let mut seen = 0;
    for path in inputs {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // Several samples share conversation ids (e.g. every pionxzh file is "fixture"), so
        // each gets its own archive: every conversation in it must be new.
        let archive = Archive::temporary().expect("archive");
        let r = import(&archive, &path);
        assert!(r.error.is_none(), "{name}: {r:#?}");
        assert_eq!((r.updated, r.unchanged), (0, 0), "{name}: {r:#?}");
        match name.as_str() {
            MODERN => {
                assert_eq!(r.problems.len(), 1, "{r:#?}");
                let p = &r.problems[0];
                assert!(
                    p.location.contains(MODERN) && p.location.contains("#2"),
                    "{p:?}"
                );
                assert!(
                    p.conversation
                        .as_deref()
                        .unwrap_or("")
                        .contains("Corrupted entry"),
                    "{p:?}"
                );
                assert!(
                    p.message.contains("6b0f0d9c-0000-4000-8000-000000000002")
                        && p.message.contains("mapping"),
                    "{p:?}"
                );
            }
            LIST_PAGE => {
                assert!(r.problems.is_empty(), "a list page is no failure: {r:#?}");
                assert!(
                    r.warnings.iter().any(|w| w.contains("list page")),
                    "a list page gets a warning: {r:#?}"
                );
            }
            _ => assert!(r.problems.is_empty(), "{name}: {r:#?}"),
        }
        match known.get(name.as_str()) {
            Some(&n) => {
                assert_eq!(r.new, n, "{name}: {r:#?}");
                seen += 1;
            }
            None => assert!(r.new >= 1, "{name} (new sample) imported nothing: {r:#?}"),
        }
        assert_eq!(archive.len() as u64, r.new, "{name}");
        // Every archived conversation renders.
        for rec in archive.iter_newest_first() {
            let rec = rec.expect("record");
            let s = archive.get(&rec.summary.id).expect("get").expect("stored");
            view::build(&archive, &s).expect("view");
        }
    }
    assert_eq!(
        seen,
        known.len(),
        "a known sample is missing from the corpus"
    );
}

#[test]
fn corpus_tree_active_branch_ends_at_current_node() {
    let Some(dir) = corpus() else { return };
    let path = dir.join(TREE);
    let conv = only_conversation(&path);
    let id = conv["conversation_id"].as_str().expect("id").to_string();
    let current = conv["current_node"].as_str().expect("current_node");
    let archive = Archive::temporary().expect("archive");
    let r = import(&archive, &path);
    assert!(r.error.is_none() && r.problems.is_empty(), "{r:#?}");
    assert_eq!(branch_end(&archive, &id), current);
    let ids = view_message_ids(&archive, &id);
    assert_eq!(ids, expected_visible_ids(&conv));
    assert_eq!(
        ids.len(),
        6,
        "three user turns and three answers on the chosen branch"
    );

    // In this sample current_node is also the newest leaf; point it at the older sibling
    // leaf (a regeneration) to prove the branch follows current_node, not the clock.
    let sibling = "d0d2a7df-d2fc-4df9-bf0a-1c5121e227ae";
    assert_ne!(newest_leaf(&conv), sibling);
    let mut other = conv.clone();
    other["current_node"] = json!(sibling);
    other["update_time"] = json!(conv["update_time"].as_f64().expect("time") + 1.0);
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("tree-other-leaf.json");
    fs::write(&p, serde_json::to_vec(&json!([other])).expect("json")).expect("write");
    let r = import(&archive, &p);
    assert_eq!((r.updated, r.problems.len()), (1, 0), "{r:#?}");
    assert_eq!(branch_end(&archive, &id), sibling);
    assert_eq!(
        view_message_ids(&archive, &id),
        expected_visible_ids(&other)
    );
}

#[test]
fn corpus_citations_without_current_node_start_at_the_newest_leaf() {
    let Some(dir) = corpus() else { return };
    let path = dir.join(CITATIONS);
    let conv = only_conversation(&path);
    let id = conv["conversation_id"].as_str().expect("id").to_string();
    let mapping = conv["mapping"].as_object().expect("mapping");
    let current = conv["current_node"].as_str().expect("current_node");
    assert!(
        !mapping.contains_key(current),
        "sample premise: current_node dangles"
    );
    let archive = Archive::temporary().expect("archive");
    let r = import(&archive, &path);
    assert!(r.error.is_none() && r.problems.is_empty(), "{r:#?}");
    assert_eq!(r.new, 1);
    assert_eq!(branch_end(&archive, &id), newest_leaf(&conv));
    let ids = view_message_ids(&archive, &id);
    assert_eq!(ids, expected_visible_ids(&conv));
    assert_eq!(
        ids.len(),
        2,
        "the tool result and the answer; the root parent dangles"
    );
}

#[test]
fn corpus_sharded_zip_stores_dat_assets_under_their_original_names() {
    let Some(dir) = corpus() else { return };
    let names: BTreeMap<String, String> = serde_json::from_slice(
        &fs::read(
            dir.join(SHARDED_DIR)
                .join("conversation_asset_file_names.json"),
        )
        .expect("asset names"),
    )
    .expect("asset names JSON");
    assert_eq!(names.len(), 3);
    for path in [dir.join(SHARDED_ZIP), dir.join(SHARDED_DIR)] {
        let archive = Archive::temporary().expect("archive");
        let r = import(&archive, &path);
        assert!(r.error.is_none() && r.problems.is_empty(), "{r:#?}");
        assert_eq!(r.attachments, 3, "{}: {r:#?}", path.display());
        for (member, original) in &names {
            let file_id = member.strip_suffix(".dat").expect(".dat member");
            let bytes = fs::read(dir.join(SHARDED_DIR).join(member)).expect("asset bytes");
            let rec = archive
                .file(file_id)
                .expect("file")
                .unwrap_or_else(|| panic!("{file_id} not stored from {}", path.display()));
            assert_eq!(rec.name.as_deref(), Some(original.as_str()));
            assert_eq!(rec.sha256, sha256_hex(&bytes));
            assert_eq!(rec.mime_type.as_deref(), Some("image/jpeg"));
        }
        assert_eq!(
            names.get("file-three.dat").map(String::as_str),
            Some("orphan.jpg"),
            "sample premise: file-three is the orphan no message names"
        );
        // The images the messages name are listed with their hashes; the one the export
        // lacks (sediment://file_gone) has none.
        let mut listed = BTreeMap::new();
        for rec in archive.iter_newest_first() {
            let rec = rec.expect("record");
            let s = archive.get(&rec.summary.id).expect("get").expect("stored");
            for m in view::build(&archive, &s).expect("view").messages {
                for a in m.attachments {
                    listed.insert(a.file_id.clone(), a.sha256.clone());
                }
            }
        }
        assert!(
            listed["file-one"].is_some() && listed["file-two"].is_some(),
            "{listed:?}"
        );
        assert_eq!(listed.get("file_gone"), Some(&None), "{listed:?}");
    }
}
