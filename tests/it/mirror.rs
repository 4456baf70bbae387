//! The Markdown mirror as a library (issue 14, phase 1): a real archive in a temp dir, a
//! real mirror folder, every rule of the issue checked on the files.

use crate::support::fixtures::{BASE_EPOCH, ConvBuilder, asset_bytes};
use crate::support::tmpfs::Tmpfs;
use convos::archive::{Archive, OpenOptions};
use convos::mirror::{
    MARKER, Mirror, MirrorError, MirrorOptions, MirrorReport, Modes, Scope, status,
};
use convos::model::RawConversation;
use convos::render::{markdown, view};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tempfile::TempDir;

const DAY: u64 = 86_400;
const NOW: f64 = 1_800_000_000.0;

struct Env {
    archive: Archive,
    _data: TempDir,
    vault: TempDir,
    dir: PathBuf,
}

impl Env {
    fn new() -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let archive =
            Archive::open(&data.path().join("archive"), &OpenOptions::default()).expect("archive");
        let vault = tempfile::tempdir().expect("vault");
        let dir = vault.path().join("ChatGPT");
        fs::create_dir(&dir).expect("mirror dir");
        Env {
            archive,
            _data: data,
            vault,
            dir,
        }
    }

    fn mirror(&self) -> Mirror {
        self.mirror_in(&self.dir)
    }

    fn mirror_in(&self, dir: &Path) -> Mirror {
        Mirror::new(self.archive.clone(), dir, MirrorOptions::default()).expect("mirror")
    }

    fn run(&self, scope: Scope) -> MirrorReport {
        self.mirror()
            .run(scope, NOW, &AtomicBool::new(false))
            .expect("mirror run")
    }

    fn changed(&self, ids: &[&str]) -> MirrorReport {
        self.run(Scope::Changed(ids.iter().map(|s| s.to_string()).collect()))
    }

    fn put(&self, c: &ConvBuilder) {
        let raw = serde_json::to_vec(&c.build()).expect("json");
        self.archive
            .upsert(RawConversation::from_bytes(raw).expect("valid"))
            .expect("upsert");
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn write(&self, rel: &str, text: &str) {
        fs::write(self.path(rel), text).expect("write note");
    }

    /// Every file under the mirror: path → (bytes, modification time).
    fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).expect("ls") {
                let e = e.expect("entry");
                let p = e.path();
                let meta = fs::symlink_metadata(&p).expect("meta");
                if meta.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&self.dir)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned();
                    let bytes = fs::read(&p).unwrap_or_default();
                    out.insert(rel, (bytes, meta.modified().expect("mtime")));
                }
            }
        }
        out
    }

    /// Notes (`.md` outside `.convos`), index excluded.
    fn notes(&self) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|p| p.ends_with(".md") && p != "index.md" && !p.starts_with(".convos"))
            .collect()
    }
}

fn conv(id: &str, title: &str, day: u64) -> ConvBuilder {
    let mut c = ConvBuilder::new(id, title);
    c.start_time(BASE_EPOCH + day * DAY);
    c.user(&format!("Question about {title}"));
    c.assistant(&format!("Answer about {title}"));
    c
}

/// The note's front matter as `key: value` lines.
fn front(note: &str) -> Vec<&str> {
    let rest = note.strip_prefix("---\n").expect("front matter");
    let end = rest.find("\n---\n").expect("closed front matter");
    rest[..end].lines().collect()
}

/// Captures log lines written while `f` runs.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().expect("sink")).into_owned();
    (out, text)
}

// ---- one note per conversation, as the export renders it ----

#[test]
fn first_run_writes_every_note_its_attachments_and_the_index() {
    let env = Env::new();
    let mut a = conv("aaaa0001-0000-4000-8000-000000000001", "Porto weekend", 3);
    a.thoughts(&[("Planning", "Think about the river.")]);
    a.assistant("Go to Ribeira.");
    a.user_image("Look at this", "file-Photo1", "photo.png", "image/png");
    env.put(&a);
    env.archive
        .store_file(
            "file-Photo1",
            Some("photo.png"),
            Some("image/png"),
            &asset_bytes("file-Photo1", "photo.png")[..],
        )
        .expect("store file");
    let mut b = conv("bbbb0002-0000-4000-8000-000000000002", "Quarterly plan", 5);
    b.user_image("Same photo here", "file-Photo1", "photo.png", "image/png");
    env.put(&b);
    env.archive
        .update_remote(b.id(), |r| r.remote.project = Some("Work".to_owned()))
        .expect("project");
    let c = conv("cccc0003-0000-4000-8000-000000000003", "Archived thing", 40);
    env.put(&c);
    env.archive
        .update_remote(c.id(), |r| r.remote.is_archived = Some(true))
        .expect("archived");

    let report = env.changed(&[]);
    assert!(
        report.full,
        "a first run is a full one whatever it is asked"
    );
    assert_eq!(
        (report.conversations, report.written, report.created),
        (3, 3, 3)
    );
    assert_eq!(
        report.attachments_copied, 1,
        "a shared attachment is copied once"
    );
    assert!(report.index_written);
    let mut notes = env.notes();
    notes.sort();
    assert_eq!(
        notes,
        [
            "2026-01-04 Porto weekend.md",
            "2026-02-10 Archived thing.md",
            "Work/2026-01-06 Quarterly plan.md"
        ]
    );

    let note = env.read("2026-01-04 Porto weekend.md");
    assert_eq!(
        front(&note),
        [
            "id: \"aaaa0001-0000-4000-8000-000000000001\"",
            "url: \"https://chatgpt.com/c/aaaa0001-0000-4000-8000-000000000001\"",
            "title: \"Porto weekend\"",
            "aliases: [\"Porto weekend\"]",
            "created: 2026-01-04T00:00:00Z",
            &format!(
                "updated: {}",
                front(&note)[5].trim_start_matches("updated: ")
            ),
            "model: \"gpt-5\"",
            "project:",
            "archived: false",
            "tags: [chatgpt]",
        ]
    );
    assert!(
        front(&note)[5].starts_with("updated: 2026-01-04T"),
        "{note}"
    );
    // The body is the export's rendering, attachments linked into attachments/.
    let stored = env.archive.get(a.id()).expect("get").expect("stored");
    let v = view::build(&env.archive, &stored).expect("view");
    let export = markdown::render(&v, &markdown::NoLinks);
    let export_body = &export[export.find("\n---\n").expect("fm") + 5..];
    let body_start = note.find("\n---\n").expect("fm") + 5;
    let body = &note[body_start..];
    let export_body = export_body.replace(
        "*(attachment archived, not linked here: photo.png — file-Photo1)*",
        "![photo.png](attachments/file-Photo1-photo.png)",
    );
    assert_eq!(body, format!("{export_body}\n{MARKER}\n"));
    assert!(
        body.contains("> [!abstract]- "),
        "thinking folds into a callout"
    );
    assert_eq!(
        fs::read(env.path("attachments/file-Photo1-photo.png")).expect("attachment"),
        asset_bytes("file-Photo1", "photo.png")
    );
    let project_note = env.read("Work/2026-01-06 Quarterly plan.md");
    assert!(project_note.contains("project: \"Work\"\n"));
    assert!(
        project_note.contains("![photo.png](../attachments/file-Photo1-photo.png)"),
        "{project_note}"
    );
    assert!(
        env.read("2026-02-10 Archived thing.md")
            .contains("\narchived: true\n")
    );

    let index = env.read("index.md");
    let february = index.find("## 2026-02").expect("february");
    let january = index.find("## 2026-01").expect("january");
    assert!(february < january, "newest month first:\n{index}");
    assert!(
        index.contains(
            "- 2026-01-06 [Quarterly plan](Work/2026-01-06%20Quarterly%20plan.md) · Work\n"
        )
    );
    assert!(index.contains("- 2026-01-04 [Porto weekend](2026-01-04%20Porto%20weekend.md)\n"));
    assert!(index.contains("[Archived thing](2026-02-10%20Archived%20thing.md) · archived\n"));

    let st = status(&env.archive, &env.dir)
        .expect("status")
        .expect("recorded");
    assert_eq!(st.dir, env.dir);
    assert_eq!(st.notes, 3);
    assert_eq!(st.last_update, Some(NOW));
    assert_eq!(st.last_error, None);
}

#[test]
fn nothing_changed_writes_nothing() {
    let env = Env::new();
    for i in 0..3 {
        env.put(&conv(
            &format!("dddd000{i}-0000-4000-8000-00000000000{i}"),
            "Same",
            i,
        ));
    }
    env.changed(&[]);
    let before = env.snapshot();
    let ids: Vec<String> = (0..3)
        .map(|i| format!("dddd000{i}-0000-4000-8000-00000000000{i}"))
        .collect();
    let r = env.run(Scope::Changed(ids));
    assert_eq!(
        (r.written, r.unchanged, r.files_written, r.notes_read),
        (0, 3, 0, 0)
    );
    assert!(!r.index_written);
    let r = env.run(Scope::All);
    assert_eq!((r.written, r.unchanged, r.files_written), (0, 3, 0));
    assert_eq!(env.snapshot(), before, "byte-identical, same mtimes");
}

// ---- a sync that changes one conversation ----

#[test]
fn one_change_writes_that_note_its_new_attachment_and_the_index_only() {
    let env = Env::new();
    let mut convs: Vec<ConvBuilder> = (0..6)
        .map(|i| {
            conv(
                &format!("eeee000{i}-0000-4000-8000-00000000000{i}"),
                &format!("Topic {i}"),
                i,
            )
        })
        .collect();
    for c in &convs {
        env.put(c);
    }
    env.changed(&[]);
    // The user works in two notes, one of them the note that will change.
    let n2 = "2026-01-03 Topic 2.md";
    let edited2 = env
        .read(n2)
        .replace("tags: [chatgpt]\n", "tags: [chatgpt, porto]\nrating: 4\n")
        + "My own notes.\n\n- [[Topic 1]]\n";
    env.write(n2, &edited2);
    let n4 = "2026-01-05 Topic 4.md";
    let edited4 = env.read(n4) + "Untouched user text.\n";
    env.write(n4, &edited4);
    let before = env.snapshot();

    // A remote edit: a new answer and an image on conversation 2.
    let c = &mut convs[2];
    c.user_image("And this?", "file-New2", "new.png", "image/png");
    c.assistant("A NEW ANSWER");
    env.put(c);
    env.archive
        .store_file(
            "file-New2",
            Some("new.png"),
            Some("image/png"),
            &asset_bytes("file-New2", "new.png")[..],
        )
        .expect("store");
    let r = env.changed(&[c.id()]);
    assert_eq!((r.conversations, r.written, r.created), (1, 1, 0));
    assert_eq!(r.attachments_copied, 1);
    assert_eq!(r.notes_read, 1, "only the changed note is read");
    // index.md shows the title and date, which did not change.
    assert_eq!(r.files_written, 2, "the note and its new attachment");
    assert!(!r.index_written);
    assert_eq!(r.conflicts, 0);

    let after = env.snapshot();
    let changed: HashSet<&str> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        changed,
        HashSet::from([n2, "attachments/file-New2-new.png"])
    );
    let note = env.read(n2);
    assert!(note.contains("A NEW ANSWER"));
    assert!(
        note.contains("tags: [chatgpt, porto]\nrating: 4\n---\n"),
        "{note}"
    );
    assert!(note.ends_with(&format!("{MARKER}\nMy own notes.\n\n- [[Topic 1]]\n")));
    assert_eq!(env.read(n4), edited4);
}

// ---- stable names ----

#[test]
fn a_title_change_updates_title_and_aliases_only() {
    let env = Env::new();
    let mut c = conv("ffff0001-0000-4000-8000-000000000001", "New chat", 2);
    env.put(&c);
    env.changed(&[]);
    c.set("title", serde_json::json!("Trip to Porto"));
    c.assistant("more");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!(r.written, 1);
    assert_eq!(env.notes(), ["2026-01-03 New chat.md"]);
    let note = env.read("2026-01-03 New chat.md");
    assert!(note.contains("title: \"Trip to Porto\"\naliases: [\"Trip to Porto\"]\n"));
    assert!(note.contains("\n# Trip to Porto\n"));
    assert!(
        env.read("index.md")
            .contains("[Trip to Porto](2026-01-03%20New%20chat.md)")
    );
}

#[test]
fn awkward_titles_get_safe_unique_names() {
    let env = Env::new();
    let titles = [
        "What is [[x]] #tag ^block | a\\b: c*? \"q\" <html>",
        "CON",
        "nul",
        "Same title",
        "SAME TITLE",
        "same title",
        &"Very long title ".repeat(40),
        "",
        "index",
    ];
    let mut ids = Vec::new();
    for (i, t) in titles.iter().enumerate() {
        let id = format!("{i:08x}-0000-4000-8000-000000000000");
        let mut c = ConvBuilder::new(&id, t);
        if *t == "CON" || *t == "nul" || *t == "index" {
            // Without a date the name is the title alone: Windows device names.
            c.remove("create_time").remove("update_time");
        } else {
            c.start_time(BASE_EPOCH);
        }
        c.user("q");
        env.put(&c);
        ids.push(id);
    }
    let r = env.changed(&[]);
    assert_eq!(r.written, titles.len() as u64);
    let notes = env.notes();
    assert_eq!(notes.len(), titles.len());
    let lower: HashSet<String> = notes.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(lower.len(), notes.len(), "unique ignoring case: {notes:?}");
    for n in &notes {
        assert!(n.len() <= 200, "{n}");
        assert!(
            !n.contains(['[', ']', '#', '^', '|', '\\', ':', '*', '?', '"', '<', '>']),
            "{n}"
        );
        let stem = n.split('.').next().unwrap_or_default().trim();
        for reserved in ["CON", "NUL", "index"] {
            assert!(!stem.eq_ignore_ascii_case(reserved), "{n}");
        }
    }
    assert!(notes.contains(&"CON_.md".to_owned()), "{notes:?}");
    // Whichever comes first keeps the plain name; the others get the id's start.
    let same: Vec<&String> = notes
        .iter()
        .filter(|n| n.to_lowercase().starts_with("2026-01-01 same title"))
        .collect();
    assert_eq!(same.len(), 3, "{notes:?}");
    assert_eq!(
        same.iter()
            .filter(|n| n.to_lowercase() == "2026-01-01 same title.md")
            .count(),
        1,
        "{notes:?}"
    );
    assert!(
        notes.contains(&"index (00000008).md".to_owned()),
        "{notes:?}"
    );
    assert!(
        env.read("index.md").starts_with("# ChatGPT conversations"),
        "index.md is not taken by a conversation"
    );
}

// ---- the user's content ----

#[test]
fn user_properties_and_notes_survive_every_rewrite() {
    let env = Env::new();
    let mut c = conv("a0000001-0000-4000-8000-000000000001", "Keep mine", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 Keep mine.md";
    // Obsidian's property editor: re-quoted, block lists, a key between convos' keys.
    let edited = env
        .read(rel)
        .replace("model: \"gpt-5\"\n", "model: gpt-5\nstatus: reading\n")
        .replace(
            "tags: [chatgpt]\n",
            "tags:\n  - chatgpt\n  - later\n# my comment\nrating: 5\n",
        )
        + "\n## My notes\n\nSee [[Other]].\n";
    env.write(rel, &edited);
    for round in 0..2 {
        c.assistant(&format!("round {round}"));
        env.put(&c);
        let r = env.changed(&[c.id()]);
        assert_eq!(
            (r.written, r.conflicts),
            (1, 0),
            "a reformatted property is no edit"
        );
        let note = env.read(rel);
        assert!(note.contains(&format!("round {round}")));
        assert!(
            note.contains(
                "archived: false\nstatus: reading\ntags:\n  - chatgpt\n  - later\n# my comment\nrating: 5\n---\n"
            ),
            "{note}"
        );
        assert!(note.ends_with(&format!("{MARKER}\n\n## My notes\n\nSee [[Other]].\n")));
        assert!(
            note.contains("\nmodel: \"gpt-5\"\n"),
            "convos' keys in convos' form"
        );
    }
}

#[test]
fn an_edit_above_the_line_is_saved_before_the_rewrite_with_one_log_line() {
    let env = Env::new();
    let mut c = conv("a0000002-0000-4000-8000-000000000002", "Edited", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 Edited.md";
    let mine = env.read(rel).replace(
        "Answer about Edited",
        "Answer about Edited, corrected by me",
    ) + "below\n";
    env.write(rel, &mine);
    c.assistant("newer");
    env.put(&c);
    let (r, log) = logged(|| env.changed(&[c.id()]));
    assert_eq!((r.written, r.conflicts), (1, 1));
    let saved: Vec<String> = env
        .snapshot()
        .into_keys()
        .filter(|p| p.starts_with(".convos/conflicts/"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].starts_with(".convos/conflicts/2026-01-02 Edited "),
        "{saved:?}"
    );
    assert_eq!(env.read(&saved[0]), mine, "the user's version, verbatim");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&saved[0])).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("WARN") && lines[0].contains(rel), "{log}");
    let note = env.read(rel);
    assert!(!note.contains("corrected by me") && note.contains("newer"));
    assert!(note.ends_with(&format!("{MARKER}\nbelow\n")));
}

#[test]
fn malformed_front_matter_keeps_the_user_section_and_warns() {
    let env = Env::new();
    let mut c = conv("a0000003-0000-4000-8000-000000000003", "Broken", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 Broken.md";
    let broken = env
        .read(rel)
        .replace("tags: [chatgpt]", "tags: [chatgpt\nrating: : :")
        + "mine\n";
    env.write(rel, &broken);
    c.assistant("later");
    env.put(&c);
    let (r, log) = logged(|| env.changed(&[c.id()]));
    assert_eq!((r.written, r.conflicts, r.errors), (1, 1, 0));
    assert!(log.contains("WARN") && log.contains("malformed"), "{log}");
    let note = env.read(rel);
    assert!(note.contains("later"));
    assert!(note.contains("\ntags: [chatgpt]\n---\n"), "{note}");
    assert!(note.ends_with(&format!("{MARKER}\nmine\n")));
    // The note is whole again: the next change is a plain update.
    c.assistant("again");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.conflicts), (1, 0));
}

#[test]
fn a_removed_marker_line_saves_the_note_before_the_rewrite() {
    let env = Env::new();
    let mut c = conv("a0000004-0000-4000-8000-000000000004", "No line", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 No line.md";
    let mine = env.read(rel).replace(MARKER, "my thoughts instead");
    env.write(rel, &mine);
    c.assistant("later");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!(r.conflicts, 1);
    let saved = env
        .snapshot()
        .into_iter()
        .find(|(p, _)| p.starts_with(".convos/conflicts/"))
        .expect("saved");
    assert_eq!(saved.1.0, mine.as_bytes());
    assert!(env.read(rel).ends_with(&format!("{MARKER}\n")));
}

#[test]
fn a_deleted_note_stays_deleted_until_a_rebuild() {
    let env = Env::new();
    let mut c = conv("a0000005-0000-4000-8000-000000000005", "Delete me", 1);
    env.put(&c);
    env.put(&conv("a0000006-0000-4000-8000-000000000006", "Keep me", 2));
    env.changed(&[]);
    let rel = "2026-01-02 Delete me.md";
    fs::remove_file(env.path(rel)).expect("rm");
    c.assistant("after the deletion");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.skipped), (0, 1));
    assert!(!env.path(rel).exists());
    assert!(!env.read("index.md").contains("Delete me"), "no dead link");
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.skipped, r.notes_read), (0, 1, 0));
    let r = env.run(Scope::All);
    assert_eq!(r.written, 0);
    assert!(!env.path(rel).exists());
    let r = env.run(Scope::Rebuild);
    assert_eq!(r.written, 1);
    assert!(env.read(rel).contains("after the deletion"));
    assert!(env.read("index.md").contains("Delete me"));
}

#[test]
fn a_conversation_gone_remotely_is_marked_and_kept() {
    let env = Env::new();
    let c = conv("a0000007-0000-4000-8000-000000000007", "Gone", 1);
    env.put(&c);
    env.changed(&[]);
    env.archive
        .update_remote(c.id(), |r| r.deleted_remotely = true)
        .expect("mark");
    let r = env.changed(&[c.id()]);
    assert_eq!(r.written, 1);
    let note = env.read("2026-01-02 Gone.md");
    assert!(
        note.contains("\narchived: false\ndeleted_remotely: true\n"),
        "{note}"
    );
    assert!(env.read("index.md").contains("· deleted on chatgpt.com"));
}

#[test]
fn a_conversation_moving_project_moves_its_note_under_the_same_name() {
    let env = Env::new();
    let c = conv("a0000008-0000-4000-8000-000000000008", "Mover", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 Mover.md";
    let mine = env.read(rel) + "kept while moving\n";
    env.write(rel, &mine);
    env.archive
        .update_remote(c.id(), |r| {
            r.remote.project = Some("Travel: 2026".to_owned())
        })
        .expect("project");
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.conflicts), (1, 0));
    assert!(!env.path(rel).exists());
    let moved = env.read("Travel 2026/2026-01-02 Mover.md");
    assert!(moved.contains("project: \"Travel: 2026\"\n"));
    assert!(moved.ends_with("kept while moving\n"));
    assert!(
        env.read("index.md")
            .contains("(Travel%202026/2026-01-02%20Mover.md) · Travel 2026")
    );
    // Out of the project again: back to the root, the emptied folder removed.
    env.archive
        .update_remote(c.id(), |r| r.remote.project = None)
        .expect("no project");
    env.changed(&[c.id()]);
    assert!(env.read(rel).ends_with("kept while moving\n"));
    assert!(!env.path("Travel 2026").exists());
}

#[test]
fn a_move_never_replaces_a_file_of_the_users() {
    let env = Env::new();
    let c = conv("a0000010-0000-4000-8000-000000000010", "Clash", 1);
    env.put(&c);
    env.changed(&[]);
    fs::create_dir(env.path("Work")).expect("mkdir");
    fs::write(env.path("Work/2026-01-02 Clash.md"), "the user's own note").expect("write");
    env.archive
        .update_remote(c.id(), |r| r.remote.project = Some("Work".to_owned()))
        .expect("project");
    let r = env.changed(&[c.id()]);
    assert_eq!(r.written, 1);
    assert_eq!(env.read("Work/2026-01-02 Clash.md"), "the user's own note");
    assert!(
        env.read("2026-01-02 Clash.md")
            .contains("project: \"Work\"\n")
    );
}

// ---- atomic, minimal, no links followed ----

#[test]
fn links_inside_the_mirror_are_never_written_through() {
    let env = Env::new();
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().join("precious.md");
    fs::write(&target, "precious").expect("write");
    let mut a = conv("a0000009-0000-4000-8000-000000000009", "Linked", 1);
    let b = conv("a000000a-0000-4000-8000-00000000000a", "In project", 2);
    env.put(&a);
    env.put(&b);
    env.archive
        .update_remote(b.id(), |r| r.remote.project = Some("Work".to_owned()))
        .expect("project");
    // A project folder that is a link to somewhere else.
    std::os::unix::fs::symlink(outside.path(), env.path("Work")).expect("link dir");
    let r = env.changed(&[]);
    assert_eq!((r.written, r.skipped), (1, 1));
    assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 1);
    // A note replaced by a link.
    let rel = "2026-01-02 Linked.md";
    fs::remove_file(env.path(rel)).expect("rm");
    std::os::unix::fs::symlink(&target, env.path(rel)).expect("link note");
    a.assistant("more");
    env.put(&a);
    let r = env.changed(&[a.id()]);
    assert_eq!((r.written, r.skipped), (0, 1));
    assert_eq!(fs::read_to_string(&target).expect("read"), "precious");
    assert!(
        fs::symlink_metadata(env.path(rel))
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    // index.md as a link is replaced, not written through.
    fs::remove_file(env.path("index.md")).expect("rm");
    std::os::unix::fs::symlink(&target, env.path("index.md")).expect("link index");
    env.run(Scope::Rebuild);
    assert_eq!(fs::read_to_string(&target).expect("read"), "precious");
    assert!(env.read("index.md").starts_with("# ChatGPT conversations"));
}

#[test]
fn files_get_the_users_permissions_not_the_archives() {
    let env = Env::new();
    let mut c = conv("a000000b-0000-4000-8000-00000000000b", "Modes", 1);
    c.user_image("img", "file-Mode1", "m.png", "image/png");
    env.put(&c);
    env.archive
        .store_file("file-Mode1", Some("m.png"), Some("image/png"), &b"png"[..])
        .expect("store");
    env.archive
        .update_remote(c.id(), |r| r.remote.project = Some("P".to_owned()))
        .expect("project");
    let opts = MirrorOptions {
        modes: Modes::from_umask(0o027),
        ..MirrorOptions::default()
    };
    Mirror::new(env.archive.clone(), &env.dir, opts)
        .expect("mirror")
        .run(Scope::All, NOW, &AtomicBool::new(false))
        .expect("run");
    let mode = |rel: &str| {
        fs::metadata(env.path(rel))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("P/2026-01-02 Modes.md"), 0o640);
    assert_eq!(mode("attachments/file-Mode1-m.png"), 0o640);
    assert_eq!(mode("index.md"), 0o640);
    assert_eq!(mode("P"), 0o750);
    assert_eq!(mode("attachments"), 0o750);
    // A rewrite keeps what the user set on a note.
    fs::set_permissions(
        env.path("P/2026-01-02 Modes.md"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    c.assistant("more");
    env.put(&c);
    env.changed(&[c.id()]);
    assert_eq!(mode("P/2026-01-02 Modes.md"), 0o600);
    assert_eq!(Modes::default(), Modes::from_umask(0o022));
}

#[test]
fn attachments_are_copied_once_and_a_rebuild_restores_them() {
    let env = Env::new();
    let mut c = conv("a000000d-0000-4000-8000-00000000000d", "Pictures", 1);
    c.user_image("img", "file-Once1", "once.png", "image/png");
    env.put(&c);
    env.archive
        .store_file(
            "file-Once1",
            Some("once.png"),
            Some("image/png"),
            &b"first"[..],
        )
        .expect("store");
    assert_eq!(env.changed(&[]).attachments_copied, 1);
    let att = "attachments/file-Once1-once.png";
    fs::remove_file(env.path(att)).expect("rm");
    c.assistant("more");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.attachments_copied), (1, 0), "copied once");
    assert!(!env.path(att).exists());
    let r = env.run(Scope::Rebuild);
    assert_eq!(r.attachments_copied, 1);
    assert_eq!(fs::read(env.path(att)).expect("restored"), b"first");
}

// ---- where the mirror may live, and faults ----

#[test]
fn a_folder_inside_or_around_the_data_dir_is_refused() {
    let env = Env::new();
    let data = env.archive.dir().parent().expect("data dir").to_path_buf();
    let inside = Mirror::new(
        env.archive.clone(),
        env.archive.dir().join("mirror"),
        MirrorOptions::default(),
    );
    assert!(matches!(
        inside,
        Err(MirrorError::Overlap { inside: true, .. })
    ));
    let around = Mirror::new(
        env.archive.clone(),
        data.parent().expect("parent"),
        MirrorOptions::default(),
    );
    let err = around.expect_err("around");
    assert!(matches!(err, MirrorError::Overlap { inside: false, .. }));
    assert!(
        err.to_string()
            .contains("choose a mirror folder outside it"),
        "{err}"
    );
    let opts = MirrorOptions {
        data_dir: Some(data.clone()),
        ..MirrorOptions::default()
    };
    assert!(matches!(
        Mirror::new(env.archive.clone(), data.join("x"), opts),
        Err(MirrorError::Overlap { inside: true, .. })
    ));
    assert!(
        Mirror::new(
            env.archive.clone(),
            data.join("x"),
            MirrorOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn a_missing_folder_is_an_error_until_it_comes_back() {
    let env = Env::new();
    env.put(&conv("a000000c-0000-4000-8000-00000000000c", "Waiting", 1));
    fs::remove_dir(&env.dir).expect("rmdir");
    let err = env
        .mirror()
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect_err("missing");
    assert!(matches!(err, MirrorError::FolderMissing(_)));
    assert!(err.to_string().contains("does not exist"), "{err}");
    let st = status(&env.archive, &env.dir)
        .expect("status")
        .expect("recorded");
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("does not exist"))
    );
    assert!(
        !env.dir.exists(),
        "an unmounted drive is never written under"
    );
    // An explicit `convos mirror --dir` may create it.
    let create = MirrorOptions {
        create_folder: true,
        ..MirrorOptions::default()
    };
    let r = Mirror::new(env.archive.clone(), &env.dir, create)
        .expect("mirror")
        .run(Scope::Changed(vec![]), NOW + 1.0, &AtomicBool::new(false))
        .expect("run");
    assert_eq!(r.written, 1);
    let st = status(&env.archive, &env.dir)
        .expect("status")
        .expect("recorded");
    assert_eq!(
        (st.last_error, st.notes, st.last_update),
        (None, 1, Some(NOW + 1.0))
    );
}

#[test]
fn a_read_only_or_full_folder_is_an_error_and_later_runs_catch_up() {
    let env = Env::new();
    let mount = env.vault.path().join("small");
    let Some(fs_) = Tmpfs::mount(&mount, "256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let dir = mount.join("ChatGPT");
    fs::create_dir(&dir).expect("mkdir");
    // Enough text that the folder fills up part way.
    let big = "lorem ipsum dolor sit amet ".repeat(800);
    let mut ids = Vec::new();
    for i in 0..30u64 {
        let id = format!("b00000{i:02}-0000-4000-8000-000000000000");
        let mut c = ConvBuilder::new(&id, &format!("Big {i:02}"));
        c.start_time(BASE_EPOCH + i * DAY);
        c.user(&big);
        env.put(&c);
        ids.push(id);
    }
    let m = env.mirror_in(&dir);
    let err = m
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect_err("full");
    match &err {
        MirrorError::Folder { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}")
        }
        other => panic!("expected a folder error, got {other:?}"),
    }
    let st = status(&env.archive, &dir)
        .expect("status")
        .expect("recorded");
    assert!(st.last_error.is_some_and(|e| e.contains("cannot write")));
    let written_before = fs::read_dir(&dir)
        .expect("ls")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".md"))
        })
        .count();
    assert!(
        written_before > 0 && written_before < 30,
        "{written_before}"
    );

    // Read-only: the same kind of error, nothing changes.
    fs_.remount("ro,size=4m");
    let err = m
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect_err("read-only");
    assert!(matches!(err, MirrorError::Folder { .. }), "{err}");

    // Room again: the next run writes exactly what is missing.
    fs_.remount("rw,size=4m");
    let r = m
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect("catch up");
    assert_eq!(r.written as usize, 30 - written_before, "{r:?}");
    assert_eq!(r.unchanged as usize, written_before);
    assert!(r.index_written);
    let r = m
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect("steady");
    assert_eq!((r.conversations, r.written, r.full), (0, 0, false));
    let st = status(&env.archive, &dir)
        .expect("status")
        .expect("recorded");
    assert_eq!((st.last_error, st.notes), (None, 30));
}

#[test]
fn a_stopped_run_resumes_and_lost_state_adopts_the_notes_already_there() {
    let env = Env::new();
    let ids: Vec<String> = (0..5)
        .map(|i| format!("c000000{i}-0000-4000-8000-000000000000"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        env.put(&conv(id, &format!("Note {i}"), i as u64));
    }
    let cancel = AtomicBool::new(true);
    let err = env
        .mirror()
        .run(Scope::Changed(vec![]), NOW, &cancel)
        .expect_err("stopped");
    assert!(matches!(err, MirrorError::Cancelled));
    assert_eq!(env.changed(&[]).written, 5, "still a full run");
    let rel = "2026-01-03 Note 2.md";
    let mine = env.read(rel) + "mine\n";
    env.write(rel, &mine);
    // The folder loses its identity (its `.convos` removed): the state is as good as
    // lost, and the notes there are adopted by name, not duplicated.
    fs::remove_dir_all(env.path(".convos")).expect("rm .convos");
    let r = env.changed(&[]);
    assert!(r.full);
    assert_eq!((r.created, r.written, r.conflicts), (0, 0, 0), "{r:?}");
    assert_eq!(env.notes().len(), 5);
    assert_eq!(env.read(rel), mine);
}

#[test]
fn an_unreadable_note_is_an_error_retried_by_the_next_run() {
    let env = Env::new();
    let mut c = conv("c1000001-0000-4000-8000-000000000001", "Bytes", 1);
    env.put(&c);
    env.changed(&[]);
    let rel = "2026-01-02 Bytes.md";
    let good = env.read(rel);
    fs::write(env.path(rel), b"---\n\xff\xfe not text\n").expect("write");
    c.assistant("newer");
    env.put(&c);
    let r = env.changed(&[c.id()]);
    assert_eq!((r.written, r.errors), (0, 1));
    assert!(r.problems[0].contains("not UTF-8"), "{:?}", r.problems);
    fs::write(env.path(rel), &good).expect("restore");
    // Asked for nothing, the next run still finishes it.
    let r = env.changed(&[]);
    assert_eq!((r.written, r.errors), (1, 0));
    assert!(env.read(rel).contains("newer"));
}

#[test]
fn two_folders_mirrored_from_one_archive_keep_separate_state() {
    let env = Env::new();
    let c = conv("c2000001-0000-4000-8000-000000000001", "Twice", 1);
    env.put(&c);
    let other = env.vault.path().join("Other");
    fs::create_dir(&other).expect("mkdir");
    env.changed(&[]);
    let r = env
        .mirror_in(&other)
        .run(Scope::Changed(vec![]), NOW, &AtomicBool::new(false))
        .expect("other");
    assert_eq!(r.created, 1);
    let r = env.changed(&[c.id()]);
    assert_eq!((r.full, r.unchanged, r.written), (false, 1, 0));
}

// ---- the change feed drives the runs ----

fn feed(env: &Env, dir: &Path, cancel: bool) -> Result<MirrorReport, MirrorError> {
    env.mirror_in(dir)
        .run(Scope::Feed, NOW, &AtomicBool::new(cancel))
}

#[test]
fn the_feed_scope_is_a_full_run_first_then_only_what_changed() {
    let env = Env::new();
    let mut a = conv("f0000001-0000-4000-8000-000000000001", "Fed one", 1);
    env.put(&a);
    env.put(&conv("f0000002-0000-4000-8000-000000000002", "Fed two", 2));
    let r = feed(&env, &env.dir, false).expect("first");
    assert_eq!((r.full, r.conversations, r.created), (true, 2, 2));
    let r = feed(&env, &env.dir, false).expect("nothing new");
    assert_eq!((r.full, r.conversations, r.written), (false, 0, 0), "{r:?}");

    a.assistant("A later answer.");
    env.put(&a);
    let r = feed(&env, &env.dir, false).expect("one change");
    assert_eq!((r.full, r.conversations, r.written), (false, 1, 1), "{r:?}");
    assert!(
        env.read("2026-01-02 Fed one.md")
            .contains("A later answer.")
    );

    // A flag the archive changes without a new version (the remote deletion mark).
    env.archive
        .update_remote(a.id(), |r| r.deleted_remotely = true)
        .expect("mark");
    let r = feed(&env, &env.dir, false).expect("the mark");
    assert_eq!((r.conversations, r.written), (1, 1), "{r:?}");
    assert!(front(&env.read("2026-01-02 Fed one.md")).contains(&"deleted_remotely: true"));
    assert_eq!(feed(&env, &env.dir, false).expect("quiet").conversations, 0);
}

#[test]
fn a_stopped_run_never_skips_a_change_of_the_feed() {
    let env = Env::new();
    let mut convs: Vec<ConvBuilder> = (0..3)
        .map(|i| {
            conv(
                &format!("f100000{i}-0000-4000-8000-000000000000"),
                &format!("Stop {i}"),
                i,
            )
        })
        .collect();
    for c in &convs {
        env.put(c);
    }
    feed(&env, &env.dir, false).expect("first");
    for c in &mut convs {
        c.assistant("Changed while the mirror was stopped.");
        env.put(c);
    }
    // A run from the feed stopped before its first note: the three stay to do.
    assert!(matches!(
        feed(&env, &env.dir, true),
        Err(MirrorError::Cancelled)
    ));
    let r = feed(&env, &env.dir, false).expect("resumed");
    assert_eq!((r.full, r.written), (false, 3), "{r:?}");

    // A full run (a rebuild) that stops takes the feed no further either.
    convs[1].assistant("Changed again.");
    env.put(&convs[1]);
    let stopped = env
        .mirror()
        .run(Scope::Rebuild, NOW, &AtomicBool::new(true));
    assert!(matches!(stopped, Err(MirrorError::Cancelled)));
    let r = feed(&env, &env.dir, false).expect("after the rebuild stopped");
    assert_eq!((r.full, r.conversations, r.written), (false, 1, 1), "{r:?}");
    assert!(env.read("2026-01-02 Stop 1.md").contains("Changed again."));
}

#[test]
fn each_folder_keeps_its_own_place_in_the_feed_and_its_own_status() {
    let env = Env::new();
    let mut a = conv("f2000001-0000-4000-8000-000000000001", "Two places", 1);
    env.put(&a);
    let other = env.vault.path().join("Other");
    fs::create_dir(&other).expect("mkdir");
    feed(&env, &env.dir, false).expect("first folder");
    feed(&env, &other, false).expect("second folder");
    a.assistant("Seen by both.");
    env.put(&a);
    let r = feed(&env, &env.dir, false).expect("first folder again");
    assert_eq!((r.full, r.written), (false, 1));
    // The first folder's run moved its own mark only.
    let r = feed(&env, &other, false).expect("second folder again");
    assert_eq!((r.full, r.written), (false, 1), "{r:?}");

    fs::remove_dir_all(&other).expect("rm");
    assert!(feed(&env, &other, false).is_err());
    let mine = status(&env.archive, &env.dir)
        .expect("status")
        .expect("kept");
    assert_eq!((mine.notes, mine.last_error), (1, None));
    let theirs = status(&env.archive, &other).expect("status").expect("kept");
    assert!(
        theirs
            .last_error
            .is_some_and(|e| e.contains("does not exist")),
        "the other folder's error is its own"
    );
}
