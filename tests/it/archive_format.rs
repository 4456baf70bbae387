//! The on-disk format: a checked-in archive written by this schema version must keep
//! opening and reading. Regenerate it (only when the schema version changes, with a
//! migration for the old one) with
//! `cargo test --test it write_archive_fixture -- --ignored`.

use convos::archive::{Archive, OpenOptions};
use convos::model::RawConversation;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive-v1")
}

const CONV_A: &str = r#"{"conversation_id":"fixture-a","title":"Fixture A","create_time":1700000000.5,"update_time":1700000100.25,"current_node":"a2","mapping":{"root":{"id":"root","message":null,"parent":null,"children":["a1"]},"a1":{"id":"a1","parent":"root","children":["a2"],"message":{"id":"a1","author":{"role":"user"},"create_time":1700000001.0,"content":{"content_type":"multimodal_text","parts":[{"content_type":"image_asset_pointer","asset_pointer":"file-service://file-fixture1"},"what is this?"]},"metadata":{"attachments":[{"id":"file-fixture1","name":"pic.png","mime_type":"image/png"}]}}},"a2":{"id":"a2","parent":"a1","children":[],"message":{"id":"a2","author":{"role":"assistant"},"create_time":1700000002.0,"content":{"content_type":"text","parts":["A picture."]},"metadata":{"model_slug":"gpt-4o"}}}},"x_future":[1,2]}"#;
const CONV_B_OLD: &str = r#"{"id":"fixture-b","title":"Fixture B","update_time":10,"mapping":{"r":{"parent":null},"old":{"parent":"r","message":{"create_time":1,"content":{"content_type":"text","parts":["kept from the old version"]}}}}}"#;
const CONV_B_NEW: &str = r#"{"id":"fixture-b","title":"Fixture B v2","update_time":20,"mapping":{"r":{"parent":null},"new":{"parent":"r","message":{"create_time":2,"content":{"content_type":"text","parts":["the new branch"]}}}}}"#;

#[test]
#[ignore = "writes the checked-in fixture; run by hand when the schema version changes"]
fn write_archive_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let a = Archive::open(&dir, &OpenOptions::default()).expect("open");
    for json in [CONV_A, CONV_B_OLD, CONV_B_NEW] {
        a.upsert(RawConversation::from_bytes(json.as_bytes().to_vec()).expect("valid"))
            .expect("upsert");
    }
    a.store_file(
        "file-fixture1",
        Some("pic.png"),
        Some("image/png"),
        &b"\x89PNG fixture bytes"[..],
    )
    .expect("file");
    a.set_state("fixture_state", &"kept".to_owned())
        .expect("state");
    a.flush().expect("flush");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

#[test]
fn the_checked_in_v1_archive_opens_and_reads() {
    // sled writes on open, so work on a copy.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture_dir(), tmp.path());
    let a = Archive::open(tmp.path(), &OpenOptions::default()).expect("the v1 archive opens");
    assert_eq!(a.schema_version().expect("version"), 1);
    assert_eq!(a.len(), 2);
    // Written before the running totals: counted on first use.
    let c = a.counts().expect("counts");
    assert_eq!((c.conversations, c.attachments), (2, 1));
    let stored = a.get("fixture-a").expect("get").expect("present");
    assert_eq!(stored.raw, CONV_A.as_bytes(), "raw JSON kept verbatim");
    assert_eq!(stored.record.summary.message_count, 2);
    let file = a.file("file-fixture1").expect("file").expect("present");
    assert_eq!(
        std::fs::read(a.blob_path(&file.sha256)).expect("blob"),
        b"\x89PNG fixture bytes"
    );
    let b = a.get("fixture-b").expect("get").expect("present");
    assert_eq!(b.raw, CONV_B_NEW.as_bytes());
    let conv = b.parse().expect("parses");
    let keys: Vec<&str> = conv.nodes().iter().map(|n| n.key.as_ref()).collect();
    assert_eq!(keys, ["r", "new", "old"], "the retained node survives");
    let ids: Vec<String> = a
        .iter_newest_first()
        .map(|r| r.expect("record").summary.id)
        .collect();
    assert_eq!(ids, ["fixture-a", "fixture-b"]);
    assert_eq!(
        a.state::<String>("fixture_state")
            .expect("state")
            .as_deref(),
        Some("kept")
    );
    assert_eq!(
        a.conversation_files("fixture-a").expect("links"),
        ["file-fixture1"]
    );
    // Written before the change feed and the file → conversation links: the links are
    // built at open, and the feed starts empty (derived stores then scan everything).
    assert_eq!(
        a.file_conversations("file-fixture1")
            .expect("reverse links"),
        ["fixture-a"]
    );
    assert_eq!(a.last_change_seq().expect("feed"), 0);
    assert_eq!(
        a.record("fixture-a")
            .expect("record")
            .expect("a")
            .change_seq,
        0
    );
    a.update_remote("fixture-b", |r| r.deleted_remotely = true)
        .expect("update");
    let feed: Vec<String> = a.changes_since(0).map(|e| e.expect("entry").1).collect();
    assert_eq!(feed, ["fixture-b"], "the first write enters the feed");
}
