//! Acceptance tests of the daemon's folder watcher (issue 4): an in-process daemon
//! (`convos::daemon::run`) watching a temporary folder, fed the way browsers download.
//!
//! Imports are observed through the control socket (`status --json`: archive counts and
//! `last_import`), and after the daemon stops by opening the archive. Only the negative
//! checks ("this was not imported") need a plain wait, [`NOT_YET`]: long enough for the
//! watcher to have looked (debounce 0.5 s + settle 0.3 s + a check) on an idle machine. On a
//! loaded machine such a check may pass without the watcher having looked yet, so each is
//! backed by a later positive event (a marker export dropped afterwards that must be imported)
//! before the final assertions.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::daemon_env::*;
use crate::support::fixtures::*;

/// The wait before asserting that something was *not* imported (see the module docs).
const NOT_YET: Duration = Duration::from_millis(1500);

/// A small export ZIP of simple conversations with these ids.
fn export_zip(ids: &[&str]) -> Vec<u8> {
    ExportBuilder::new()
        .conversations(
            ids.iter()
                .map(|id| simple_conversation(id, &format!("Chat {id}"))),
        )
        .to_zip_bytes()
}

/// The files of `last_import` as (file name, new, skipped, error).
fn last_import_files(status: &Value) -> Vec<(String, u64, bool, Option<String>)> {
    status["last_import"]["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    let path = f["path"].as_str().expect("path");
                    (
                        Path::new(path)
                            .file_name()
                            .expect("file name")
                            .to_string_lossy()
                            .into_owned(),
                        f["new"].as_u64().expect("new"),
                        f["skipped"].as_bool().expect("skipped"),
                        f["error"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `last_import` is exactly one successful, not-skipped import of `name` with `new`.
fn last_import_is(status: &Value, name: &str, new: u64) -> bool {
    last_import_files(status) == [(name.to_owned(), new, false, None)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_chrome_style_download_is_archived_once_and_a_copy_is_skipped() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let archive_dir = loaded.paths.archive_dir.clone();
    let d = InProcess::start(loaded, platform).await;

    // Chrome: the data goes into x.zip.crdownload in pieces, then a rename to x.zip.
    let bytes = fs::read(sample_export(&w.cli.inputs())).expect("sample export");
    write_chrome_style(&w.watch, "x.zip", &bytes, 8).await;
    let s = d
        .wait_status("x.zip to be archived", |s| {
            conversations(s) == 5 && last_import_is(s, "x.zip", 5)
        })
        .await;
    let first_import_at = s["last_import"]["at"].clone();
    let messages = s["counts"]["messages"].clone();
    let written_before_copy = std::time::SystemTime::now();

    // A second copy of the same bytes under another name: nothing is imported again.
    fs::write(w.watch.join("x (1).zip"), &bytes).expect("copying the export");
    tokio::time::sleep(NOT_YET).await;
    let s = d.status().await;
    assert_eq!(conversations(&s), 5, "{s:#}");
    assert_eq!(s["counts"]["messages"], messages, "{s:#}");
    assert_eq!(
        s["last_import"]["at"], first_import_at,
        "the copy caused no import: {s:#}"
    );
    assert!(last_import_is(&s, "x.zip", 5), "{s:#}");

    // A marker dropped after the copy is imported, so the copy has had its turn by then.
    write_chrome_style(&w.watch, "marker.zip", &export_zip(&["marker-1"]), 2).await;
    let s = d
        .wait_status("marker.zip to be archived", |s| {
            last_import_is(s, "marker.zip", 1)
        })
        .await;
    assert_eq!(conversations(&s), 6, "{s:#}");
    d.stop().await;

    // Exactly one import of those bytes: recorded under x.zip, and no conversation of it
    // was written again after the first import.
    let archive =
        convos::archive::Archive::open(&archive_dir, &Default::default()).expect("archive opens");
    let digest = convos::ingest::file_digest(&w.watch.join("x.zip")).expect("digest");
    let record = archive
        .import_record(&digest)
        .expect("import record reads")
        .expect("x.zip is recorded as imported");
    assert!(record.path.ends_with("x.zip"), "{record:?}");
    assert_eq!(record.new, 5, "{record:?}");
    let cutoff = written_before_copy
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for id in SAMPLE_CONVERSATION_IDS {
        let rec = archive.record(id).expect("record").expect("archived");
        assert!(
            rec.written_at < cutoff,
            "{id} was written again after the first import"
        );
    }
    // The user's files are untouched.
    assert_eq!(fs::read(w.watch.join("x.zip")).expect("x.zip"), bytes);
    assert_eq!(fs::read(w.watch.join("x (1).zip")).expect("copy"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_firefox_style_download_with_an_empty_placeholder_is_archived_once() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded, platform).await;

    // Firefox: an empty y.zip first, left alone long enough to be judged…
    fs::File::create(w.watch.join("y.zip")).expect("placeholder");
    tokio::time::sleep(NOT_YET).await;
    let s = d.status().await;
    assert_eq!(conversations(&s), 0, "{s:#}");
    assert!(
        s["last_import"].is_null(),
        "the empty placeholder is not imported (nor recorded as a failure): {s:#}"
    );

    // …then the data in y.zip.part, renamed over the placeholder.
    let ids = ["ff-1", "ff-2", "ff-3"];
    let bytes = export_zip(&ids);
    let part = w.watch.join("y.zip.part");
    write_in_chunks(&part, &bytes, 6).await;
    fs::rename(&part, w.watch.join("y.zip")).expect("rename over the placeholder");
    let s = d
        .wait_status("y.zip to be archived", |s| {
            conversations(s) == 3 && last_import_is(s, "y.zip", 3)
        })
        .await;
    let at = s["last_import"]["at"].clone();

    // Once: a later marker is the next import, and nothing else came between.
    write_chrome_style(&w.watch, "marker.zip", &export_zip(&["marker-1"]), 2).await;
    let s = d
        .wait_status("marker.zip to be archived", |s| {
            last_import_is(s, "marker.zip", 1)
        })
        .await;
    assert_ne!(s["last_import"]["at"], at);
    assert_eq!(conversations(&s), 4, "{s:#}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_half_written_zip_is_imported_only_once_complete() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded, platform).await;

    // The first half of an export under its final name (no central directory yet).
    let bytes = fs::read(sample_export(&w.cli.inputs())).expect("sample export");
    let half = truncate(&bytes, 0.5);
    let mut f = fs::File::create(w.watch.join("half.zip")).expect("create");
    append_in_chunks(&mut f, &half, 2).await;
    tokio::time::sleep(NOT_YET).await;
    let s = d.status().await;
    assert_eq!(conversations(&s), 0, "half a ZIP is not imported: {s:#}");
    assert!(
        s["last_import"].is_null(),
        "no import was attempted (a failed one would be recorded): {s:#}"
    );

    // The rest arrives: the watcher, still retrying while the file changes, imports it.
    append_in_chunks(&mut f, &bytes[half.len()..], 3).await;
    drop(f);
    let s = d
        .wait_status("the completed half.zip to be archived", |s| {
            conversations(s) == 5 && last_import_is(s, "half.zip", 5)
        })
        .await;
    assert_eq!(s["counts"]["attachments"], 3, "{s:#}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ignores_non_export_zips_and_downloads_never_renamed() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded, platform).await;

    // A ZIP that is not a ChatGPT export, and a complete export still under its Chrome
    // download name (never renamed: the download was abandoned or is still running).
    write_chrome_style(&w.watch, "project.zip", &zip_not_an_export(), 2).await;
    let export = fs::read(sample_export(&w.cli.inputs())).expect("sample export");
    write_in_chunks(&w.watch.join("pending.zip.crdownload"), &export, 2).await;
    fs::write(w.watch.join("notes.json"), b"[]").expect("an unrelated json");
    tokio::time::sleep(NOT_YET).await;
    let s = d.status().await;
    assert_eq!(conversations(&s), 0, "{s:#}");
    assert!(
        s["last_import"].is_null(),
        "nothing imported, no failure recorded: {s:#}"
    );

    // A marker dropped afterwards is imported, and it is the only import.
    write_chrome_style(&w.watch, "marker.zip", &export_zip(&["marker-1"]), 2).await;
    let s = d
        .wait_status("marker.zip to be archived", |s| {
            last_import_is(s, "marker.zip", 1)
        })
        .await;
    assert_eq!(conversations(&s), 1, "{s:#}");
    d.stop().await;
    // The user's files are left as they were.
    assert_eq!(
        fs::read(w.watch.join("project.zip")).expect("project.zip"),
        zip_not_an_export()
    );
    assert!(w.watch.join("pending.zip.crdownload").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_files_present_before_start_are_imported_at_start() {
    let w = DaemonWorld::new();
    // Arrived while the daemon was stopped: an export ZIP and a bare conversations.json.
    let zip = sample_export(&w.watch);
    let json = w.watch.join("conversations.json");
    ExportBuilder::new()
        .conversation(simple_conversation("bare-json-1", "From a bare JSON"))
        .write_conversations_json(&json);
    let (loaded, platform) = w.load(&[]);
    let archive_dir = loaded.paths.archive_dir.clone();
    let d = InProcess::start(loaded, platform).await;
    // Both files archived: the conversations and the ZIP's three attachments, which it
    // stores after its conversations (a stop before then would interrupt it, and the
    // daemon's search indexer, taking in the same writes, can make that window longer).
    d.wait_status("both files to be archived", |s| {
        conversations(s) == 6 && s["counts"]["attachments"] == 3
    })
    .await;
    // Stopping lets the import under way finish; then both files are recorded as
    // imported.
    d.stop().await;
    let last_import = {
        let archive = convos::archive::Archive::open(&archive_dir, &Default::default())
            .expect("archive opens");
        for f in [&zip, &json] {
            let digest = convos::ingest::file_digest(f).expect("digest");
            let record = archive
                .import_record(&digest)
                .expect("import record reads")
                .unwrap_or_else(|| panic!("{} is recorded as imported", f.display()));
            assert_eq!(record.failed, 0, "{record:?}");
        }
        archive
            .state::<Value>("last_import")
            .expect("state reads")
            .expect("an import is remembered")
    };

    // A restart finds nothing new: the scan at start skips both by digest, without even a
    // "skipped" import being recorded.
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded, platform).await;
    tokio::time::sleep(NOT_YET).await;
    let s = d.status().await;
    assert_eq!(conversations(&s), 6, "{s:#}");
    assert_eq!(
        s["last_import"], last_import,
        "nothing was imported again: {s:#}"
    );
    d.stop().await;
    assert!(zip.exists() && json.exists(), "the files are left in place");
}

/// `[watch] after_import = "move"` moves an imported export into the processed folder
/// (default: `convos-imported` inside the watched one); a file that is not an export
/// stays where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_after_import_move_moves_only_imported_exports() {
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[]);
    loaded.config.watch.after_import = convos::config::AfterImport::Move;
    let d = InProcess::start(loaded, platform).await;
    fs::write(w.watch.join("not-an-export.zip"), zip_not_an_export()).expect("write");
    write_chrome_style(&w.watch, "moved.zip", &export_zip(&["mv-1", "mv-2"]), 3).await;
    d.wait_status("the export to be archived", |s| conversations(s) == 2)
        .await;
    let moved = w.watch.join("convos-imported").join("moved.zip");
    eventually(
        "the export to be moved",
        async || moved.is_file().then_some(()),
        || format!("{:?}", fs::read_dir(&w.watch).map(|d| d.count())),
    )
    .await;
    assert!(!w.watch.join("moved.zip").exists());
    assert!(
        w.watch.join("not-an-export.zip").is_file(),
        "a file that was not imported is never moved"
    );
    // The moved file is not imported again from its new place (it is not watched) nor
    // from a rescan.
    tokio::time::sleep(NOT_YET).await;
    assert_eq!(conversations(&d.status().await), 2);
    d.stop().await;
}

/// An export whose attachments the archive cannot store (its staging folder is blocked, as
/// a full or read-only disk would fail it) is not recorded as imported: `status` shows the
/// failure, `after_import = "move"` leaves the file where it is, and once the cause is gone
/// the next start imports it again, stores the attachments, and only then moves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_export_whose_attachments_cannot_be_stored_stays_and_is_retried_at_the_next_start() {
    let w = DaemonWorld::new();
    let (mut loaded, platform) = w.load(&[]);
    loaded.config.watch.after_import = convos::config::AfterImport::Move;
    let staging = loaded.paths.archive_dir.join("blobs").join("tmp");
    let d = InProcess::start(loaded, platform).await;
    fs::remove_dir(&staging).expect("rmdir tmp");
    fs::write(&staging, b"not a folder").expect("block the staging folder");

    let bytes = fs::read(sample_export(&w.cli.inputs())).expect("sample export");
    write_chrome_style(&w.watch, "attached.zip", &bytes, 4).await;
    let s = d
        .wait_status("the failed import to be recorded", |s| {
            last_import_files(s)
                .first()
                .is_some_and(|f| f.0 == "attached.zip")
        })
        .await;
    let files = last_import_files(&s);
    let error = files[0].3.as_deref().expect("status shows the failure");
    assert!(
        error.contains("3 attachment(s) could not be stored") && error.contains("import it again"),
        "{error}"
    );
    assert_eq!(conversations(&s), 5, "the conversations are in: {s:#}");
    assert_eq!(s["counts"]["attachments"], 0, "{s:#}");

    // A marker imported (and moved) afterwards: the failed file has had its turn by then.
    write_chrome_style(&w.watch, "marker.zip", &export_zip(&["marker-1"]), 2).await;
    d.wait_status("marker.zip to be archived", |s| {
        last_import_is(s, "marker.zip", 1)
    })
    .await;
    let processed = w.watch.join("convos-imported");
    eventually(
        "the marker to be moved",
        async || processed.join("marker.zip").is_file().then_some(()),
        || format!("{:?}", fs::read_dir(&w.watch).map(|d| d.count())),
    )
    .await;
    assert!(
        w.watch.join("attached.zip").is_file() && !processed.join("attached.zip").exists(),
        "a file not stored completely is never moved"
    );
    d.stop().await;

    // The cause is gone: the scan at the next start finds the file unrecorded and imports it.
    fs::remove_file(&staging).expect("unblock");
    fs::create_dir(&staging).expect("mkdir tmp");
    let (mut loaded, platform) = w.load(&[]);
    loaded.config.watch.after_import = convos::config::AfterImport::Move;
    let d = InProcess::start(loaded, platform).await;
    let s = d
        .wait_status("the retried import to complete", |s| {
            last_import_files(s)
                .first()
                .is_some_and(|f| f.0 == "attached.zip")
        })
        .await;
    assert_eq!(
        last_import_files(&s),
        [("attached.zip".to_owned(), 0, false, None)],
        "{s:#}"
    );
    assert_eq!(s["counts"]["attachments"], 3, "{s:#}");
    eventually(
        "the completed export to be moved",
        async || processed.join("attached.zip").is_file().then_some(()),
        || format!("{:?}", fs::read_dir(&w.watch).map(|d| d.count())),
    )
    .await;
    d.stop().await;
}
