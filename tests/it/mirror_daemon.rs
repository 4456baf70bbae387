//! The Markdown mirror wired into convos (issue 14, phase 2): `[mirror] dir` and its
//! refusals, `convos mirror` in-process and through the daemon, `status`, and the daemon
//! keeping the folder current from the archive's change feed: after imports and syncs,
//! keeping what the user wrote, through a remote deletion, and through a folder that
//! stops working for a while.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::support::cli::{CliEnv, mode, run_command, with_umask};
use crate::support::daemon_env::*;
use crate::support::fake_server::{ConvOpts, FakeChatGpt, conversation_detail};
use crate::support::fixtures::sample_export;
use crate::support::tmpfs::Tmpfs;
use convos::mirror::MARKER;

/// A session cookie value the fake server accepts once told to.
const TOKEN: &str = "session-token-abcdefghijklmnopqrstuvwxyz";

/// A fake chatgpt.com with a valid [`TOKEN`] session and conversations `conv-0`….
async fn fake_with(n: usize) -> FakeChatGpt {
    let fake = FakeChatGpt::start().await;
    fake.add_session(TOKEN);
    for i in 0..n {
        put_remote(&fake, i);
    }
    fake
}

fn put_remote(fake: &FakeChatGpt, i: usize) {
    fake.put_conversation(
        conversation_detail(
            &format!("conv-{i}"),
            &format!("Remote {i}"),
            1.7e9 + i as f64 * 86_400.0,
            1.7e9 + 100.0 + i as f64 * 86_400.0,
        ),
        ConvOpts::default(),
    );
}

/// A daemon world whose config file names `<root>/vault` (created) as the mirror folder.
fn mirror_world() -> (DaemonWorld, PathBuf) {
    let w = DaemonWorld::new();
    let vault = w.cli.root().join("vault");
    fs::create_dir(&vault).expect("creating the vault");
    w.cli
        .write_config(&format!("[mirror]\ndir = \"{}\"\n", vault.display()));
    (w, vault)
}

/// Starts the daemon for `w` (no extra variables) and waits for the mirror's run at start.
async fn start_after_first_mirror(w: &DaemonWorld) -> InProcess {
    let (loaded, platform) = w.load(&[]);
    let d = InProcess::start(loaded, platform).await;
    d.wait_status("the mirror's run at start", |s| {
        s["mirror"]["last_update"].is_string()
    })
    .await;
    d
}

/// Every file under `dir`: relative path → (bytes, modification time).
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("listing the mirror") {
            let p = e.expect("entry").path();
            let meta = fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").to_string_lossy();
                let bytes = fs::read(&p).expect("reading a mirrored file");
                out.insert(rel.into_owned(), (bytes, meta.modified().expect("mtime")));
            }
        }
    }
    out
}

/// The notes under `dir` (Markdown files outside `.convos/`, `index.md` aside), by the
/// conversation id in their front matter: id → relative path.
fn notes(dir: &Path) -> BTreeMap<String, String> {
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| p.ends_with(".md") && p != "index.md" && !p.starts_with(".convos"))
        .map(|(p, (bytes, _))| {
            let text = String::from_utf8(bytes).expect("a note is UTF-8");
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .unwrap_or_else(|| panic!("{p} has no id in its front matter:\n{text}"))
                .trim_matches('"')
                .to_owned();
            (id, p)
        })
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn mirror_notes(status: &Value) -> Option<u64> {
    status["mirror"]["notes"].as_u64()
}

fn mirror_error(status: &Value) -> Option<&str> {
    status["mirror"]["last_error"].as_str()
}

/// Waits until the note at `path` contains `needle`; returns its text.
async fn note_with(path: &Path, needle: &str) -> String {
    eventually(
        &format!("{} to contain {needle:?}", path.display()),
        async || fs::read_to_string(path).ok().filter(|t| t.contains(needle)),
        || fs::read_to_string(path).unwrap_or_else(|e| e.to_string()),
    )
    .await
}

/// Asserts that every file of `before` but those `except` is still there, byte for
/// byte, with the same modification time.
fn assert_untouched(
    before: &BTreeMap<String, (Vec<u8>, SystemTime)>,
    after: &BTreeMap<String, (Vec<u8>, SystemTime)>,
    except: &[&str],
) {
    for (path, (bytes, mtime)) in before {
        if except.contains(&path.as_str()) || path.starts_with(".convos/") {
            continue;
        }
        let (now_bytes, now_mtime) = after
            .get(path)
            .unwrap_or_else(|| panic!("{path} disappeared"));
        assert!(now_bytes == bytes, "{path} was rewritten with other bytes");
        assert_eq!(
            now_mtime, mtime,
            "{path} was written again (its mtime moved)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The end-to-end test
// ---------------------------------------------------------------------------------------------

/// 1. sync; 2. edit a note's user section and front matter; 3. make a remote edit; 4. check
/// the edited note, and that every other note is byte-identical with an unchanged mtime;
/// 5. delete the conversation remotely and reconcile, and check the note is marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_the_mirror_current_and_what_the_user_wrote() {
    let fake = fake_with(4).await;
    let (w, vault) = mirror_world();
    let (loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    w.save_credentials(&loaded, TOKEN);
    let d = InProcess::start(loaded, platform).await;

    // 1. The sync at start, mirrored.
    d.wait_status("the first sync, mirrored", |s| {
        s["last_sync"]["new"] == 4 && mirror_notes(s) == Some(4)
    })
    .await;
    let ids = notes(&vault);
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        ["conv-0", "conv-1", "conv-2", "conv-3"]
    );
    let rel = ids["conv-1"].clone();
    let path = vault.join(&rel);

    // 2. The user adds a property, a tag and their own notes below the line.
    let text = read(&path);
    assert!(text.contains("tags: [chatgpt]\n"), "{text}");
    assert!(text.ends_with(&format!("{MARKER}\n")), "{text}");
    let edited = text
        .replacen("---\n", "---\nrating: 5\n", 1)
        .replace("tags: [chatgpt]\n", "tags: [chatgpt, travel]\n")
        + "\nMy own notes about this chat.\n";
    fs::write(&path, &edited).expect("editing the note");
    let before = snapshot(&vault);

    // 3. A remote edit: a new title and one more turn.
    let mut detail = fake.conversation("conv-1").expect("on the server");
    detail["title"] = json!("Renamed remotely");
    fake.put_conversation(detail, ConvOpts::default());
    fake.touch("conv-1", 1.7e9 + 500_000.0);
    let sync = w.run(&["sync"]).await;
    sync.ok();
    assert!(sync.stdout.contains("1 updated"), "{}", sync.stdout);

    // 4. The note shows the edit and keeps everything the user wrote; nothing else moved.
    let note = note_with(&path, "title: \"Renamed remotely\"").await;
    assert!(note.contains("aliases: [\"Renamed remotely\"]\n"), "{note}");
    assert!(note.contains("One more answer (1700500000)."), "{note}");
    assert!(note.contains("rating: 5\n"), "{note}");
    assert!(note.contains("tags: [chatgpt, travel]\n"), "{note}");
    assert!(
        note.ends_with(&format!("{MARKER}\n\nMy own notes about this chat.\n")),
        "{note}"
    );
    assert_eq!(notes(&vault)["conv-1"], rel, "the file name never changes");
    let after = snapshot(&vault);
    assert_untouched(&before, &after, &[&rel, "index.md"]);
    assert!(
        !vault.join(".convos/conflicts").exists(),
        "no conflict: the user's edits were their own keys and section"
    );
    assert!(read(&vault.join("index.md")).contains("[Renamed remotely]("));

    // 5. Deleted on chatgpt.com, noticed by the full sync: marked, kept.
    fake.delete("conv-1");
    let full = w.run(&["sync", "--full"]).await;
    full.ok();
    let note = note_with(&path, "deleted_remotely: true\n").await;
    assert!(note.contains("My own notes about this chat."), "{note}");
    assert!(note.contains("rating: 5\n"), "{note}");
    assert_untouched(&before, &snapshot(&vault), &[&rel, "index.md"]);
    let s = d.status().await;
    assert_eq!(mirror_notes(&s), Some(4), "{s:#}");
    assert!(mirror_error(&s).is_none(), "{s:#}");
    d.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Imports, the command and the status through the daemon
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_in_the_daemon_is_mirrored_and_convos_mirror_goes_through_it() {
    let (w, vault) = mirror_world();
    // The run at start: an empty archive, an empty index.
    let d = start_after_first_mirror(&w).await;
    assert!(vault.join("index.md").is_file());

    let sample = sample_export(&w.cli.inputs());
    w.run(&["import", &sample.display().to_string()]).await.ok();
    let s = d
        .wait_status("the import, mirrored", |s| mirror_notes(s) == Some(5))
        .await;
    assert_eq!(conversations(&s), 5);
    assert_eq!(notes(&vault).len(), 5);
    assert!(
        fs::read_dir(vault.join("attachments"))
            .expect("attachments copied")
            .count()
            > 0
    );
    let human = w.run(&["status"]).await;
    human.ok();
    assert!(
        human.stdout.contains(&format!(
            "mirror:       {}: 5 notes, updated 20",
            vault.display()
        )),
        "{}",
        human.stdout
    );

    // `convos mirror` runs in the daemon (which holds the archive): nothing to do.
    let r = w.run(&["mirror"]).await;
    r.ok();
    assert!(
        r.stdout.starts_with(&format!(
            "{}: 0 notes written (0 new), 5 unchanged",
            vault.display()
        )) || r.stdout.starts_with(&format!(
            "{}: 0 notes written (0 new), 0 unchanged",
            vault.display()
        )),
        "{}",
        r.stdout
    );
    // A note the user deleted stays deleted; --rebuild brings it back.
    let (_, gone) = notes(&vault).into_iter().next().expect("a note");
    fs::remove_file(vault.join(&gone)).expect("deleting a note");
    w.run(&["mirror"]).await.ok();
    assert!(!vault.join(&gone).exists());
    let r = w.run(&["mirror", "--rebuild"]).await;
    r.ok();
    assert!(
        r.stdout.contains(": 1 notes written (0 new)"),
        "{}",
        r.stdout
    );
    assert!(vault.join(&gone).is_file());

    // Another folder, relative to the caller's working folder, created for it.
    let r = w.run(&["mirror", "--dir", "second"]).await;
    r.ok();
    assert!(
        r.stdout.contains(": 5 notes written (5 new)"),
        "{}",
        r.stdout
    );
    assert_eq!(notes(&w.cli.root().join("second")).len(), 5);
    // …and refused inside the data dir.
    let inside = w.cli.data_dir.join("notes").display().to_string();
    let r = w.run(&["mirror", "--dir", &inside]).await;
    r.expect_code(2);
    assert!(r.stderr.contains("inside the data folder"), "{}", r.stderr);
    d.stop().await;
}

/// The debounce: a sync storing twenty conversations makes one mirror run, not twenty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_storing_twenty_conversations_makes_one_mirror_run() {
    let fake = fake_with(0).await;
    let (w, vault) = mirror_world();
    let (loaded, platform) = w.load(&[("CONVOS_API_BASE_URL", fake.base_url())]);
    w.save_credentials(&loaded, TOKEN);
    let archive_dir = loaded.paths.archive_dir.clone();
    let d = InProcess::start(loaded, platform).await;
    d.wait_status("the empty sync at start and the mirror's run", |s| {
        s["last_sync"]["finished_at"].is_string() && s["mirror"]["last_update"].is_string()
    })
    .await;
    for i in 0..20 {
        put_remote(&fake, i);
    }
    w.run(&["sync"]).await.ok();
    d.wait_status("twenty notes", |s| mirror_notes(s) == Some(20))
        .await;
    d.stop().await;
    let archive = convos::archive::Archive::open(&archive_dir, &Default::default())
        .expect("the archive opens");
    let st = convos::mirror::status(&archive, &vault)
        .expect("status")
        .expect("recorded");
    let last = st.last_report.expect("a report");
    assert_eq!(
        (last.conversations, last.created, last.full),
        (20, 20, false),
        "one run wrote all twenty: {last:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A folder that stops working
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_mirror_folder_shows_in_status_and_the_mirror_catches_up_when_it_is_back() {
    let (w, vault) = mirror_world();
    let d = start_after_first_mirror(&w).await;
    // The folder goes away (an unmounted drive, a renamed vault).
    let away = w.cli.root().join("vault-away");
    fs::rename(&vault, &away).expect("moving the vault away");
    let sample = sample_export(&w.cli.inputs());
    w.run(&["import", &sample.display().to_string()]).await.ok();
    let s = d
        .wait_status("the mirror's error", |s| {
            mirror_error(s).is_some_and(|e| e.contains("does not exist"))
        })
        .await;
    assert_eq!(conversations(&s), 5, "the import went on: {s:#}");
    assert!(!vault.exists(), "nothing is written where the folder was");
    let human = w.run(&["status"]).await;
    human.ok();
    assert!(
        human.stdout.contains("FAILED: the mirror folder")
            && human.stdout.contains("does not exist"),
        "{}",
        human.stdout
    );
    // Back: the daemon retries by itself, with no new change to wake it.
    fs::rename(&away, &vault).expect("moving the vault back");
    d.wait_status("the catch-up", |s| {
        mirror_notes(s) == Some(5) && mirror_error(s).is_none()
    })
    .await;
    assert_eq!(notes(&vault).len(), 5);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_mirror_folder_holds_no_import_back_and_is_caught_up_later() {
    let w = DaemonWorld::new();
    let Some(fs_) = Tmpfs::mount(&w.cli.root().join("mnt"), "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let vault = w.cli.root().join("mnt/ChatGPT");
    fs::create_dir(&vault).expect("mkdir");
    w.cli
        .write_config(&format!("[mirror]\ndir = \"{}\"\n", vault.display()));
    let d = start_after_first_mirror(&w).await;
    fs_.remount("ro");
    let sample = sample_export(&w.cli.inputs());
    w.run(&["import", &sample.display().to_string()]).await.ok();
    let s = d
        .wait_status("the mirror's error", |s| {
            mirror_error(s).is_some_and(|e| e.contains("cannot write"))
        })
        .await;
    assert_eq!(conversations(&s), 5, "the import went on: {s:#}");
    fs_.remount("rw");
    d.wait_status("the catch-up", |s| {
        mirror_notes(s) == Some(5) && mirror_error(s).is_none()
    })
    .await;
    assert_eq!(notes(&vault).len(), 5);
    d.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Without a daemon
// ---------------------------------------------------------------------------------------------

#[test]
fn convos_mirror_in_process_writes_the_notes_with_the_users_permissions() {
    let env = CliEnv::new();
    let sample = sample_export(&env.inputs());
    env.run(["import".as_ref(), sample.as_os_str()]).ok();

    let r = env.run(["mirror"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("no mirror folder: pass --dir"),
        "{}",
        r.stderr
    );

    // Under the user's umask 022, the notes are 0644 and the folders 0755 (the archive
    // stays private whatever the umask).
    let r = env.run_umask_022(["mirror", "--dir", "vault"]);
    r.ok();
    let vault = env.root().join("vault");
    assert_eq!(
        r.stdout.lines().next(),
        Some(
            format!(
                "{}: 5 notes written (5 new), 0 unchanged, 3 attachments copied, index.md \
                 written (every conversation)",
                vault.display()
            )
            .as_str()
        ),
        "{}",
        r.stdout
    );
    let ids = notes(&vault);
    assert_eq!(ids.len(), 5);
    for rel in ids.values() {
        assert_eq!(mode(&vault.join(rel)), 0o644, "{rel}");
    }
    assert_eq!(mode(&vault), 0o755);
    assert_eq!(mode(&vault.join("attachments")), 0o755);
    assert_eq!(mode(&vault.join("index.md")), 0o644);
    let mut cmd = env.command();
    cmd.args(["mirror", "--dir", "vault-027"]);
    run_command(with_umask(&mut cmd, 0o027)).ok();
    assert_eq!(mode(&env.root().join("vault-027/index.md")), 0o640);

    // Nothing changed: nothing written.
    let r = env.run(["mirror", "--dir", "vault"]);
    r.ok();
    assert!(
        r.stdout.contains(": 0 notes written (0 new), 0 unchanged,")
            && r.stdout.contains("index.md unchanged"),
        "{}",
        r.stdout
    );

    // The configured folder, and `status` about it.
    env.write_config(&format!("[mirror]\ndir = \"{}\"\n", vault.display()));
    let s = env.run(["status", "--json"]);
    s.ok();
    let s = s.json();
    assert_eq!(s["mirror"]["dir"], vault.display().to_string(), "{s:#}");
    assert_eq!(s["mirror"]["notes"], 5, "{s:#}");
    assert!(s["mirror"]["last_update"].is_string(), "{s:#}");
    assert!(s["mirror"]["last_error"].is_null(), "{s:#}");
    env.run(["mirror"]).ok();
}

#[test]
fn a_mirror_folder_inside_or_around_the_data_dir_is_a_configuration_error() {
    let env = CliEnv::new();
    // In the config file: exit 78, naming the file, line and key.
    env.write_config(&format!(
        "[mirror]\ndir = \"{}\"\n",
        env.data_dir.join("notes").display()
    ));
    let r = env.run(["status"]);
    r.expect_code(78);
    assert!(
        r.stderr.contains("line 2")
            && r.stderr.contains("mirror.dir")
            && r.stderr.contains("is inside the data folder"),
        "{}",
        r.stderr
    );
    // The daemon refuses to start with it (and exits 78, so systemd does not restart it).
    let mut daemon = BinDaemon::spawn({
        let mut c = env.command();
        c.arg("run");
        c
    });
    let status = daemon
        .wait_exit(DEADLINE)
        .expect("convos run exits at once");
    assert_eq!(status.code(), Some(78), "{}", daemon.log());
    // From the environment, around the data dir.
    env.write_config("");
    let mut cmd = env.command();
    cmd.env("CONVOS_MIRROR_DIR", env.root()).arg("status");
    let r = run_command(&mut cmd);
    r.expect_code(78);
    assert!(
        r.stderr.contains("CONVOS_MIRROR_DIR") && r.stderr.contains("is around the data folder"),
        "{}",
        r.stderr
    );
}
