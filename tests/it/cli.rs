//! Acceptance tests of the command line (issue 2): the real `convos` binary, run in a
//! sealed environment (`support::cli`), importing fixture exports and reading them back
//! through `list`, `show`, `search`, `export` and `status`; exit codes per DESIGN.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::import::{assert_export_schema, expected_visible_ids};
use crate::support::cli::{CliEnv, Run, mode, shared_entries};
use crate::support::fixtures::*;

/// Id of a conversation whose first characters no other fixture id shares.
const UNIQUE_ID: &str = "f00dcafe-0000-4000-8000-0000000000aa";
const UNIQUE_PREFIX: &str = "f00dcafe";
/// Prefix shared by all [`SAMPLE_CONVERSATION_IDS`].
const SHARED_PREFIX: &str = "6925e174";

/// An environment whose archive holds the sample export (5 conversations, 3 attachments),
/// one conversation with a unique id prefix, and the every-content-type conversation.
struct Seeded {
    env: CliEnv,
    zip: PathBuf,
    rich: Value,
}

impl Seeded {
    fn new() -> Self {
        let env = CliEnv::new();
        let zip = sample_export(&env.inputs());
        let unique = write_json(
            &env,
            "unique.json",
            &[simple_conversation(UNIQUE_ID, "Unique prefix chat")],
        );
        let rich = all_content_types_conversation();
        let rich_path = write_json(&env, "rich.json", std::slice::from_ref(&rich));
        let run = env.run([
            "import".as_ref(),
            zip.as_os_str(),
            unique.as_os_str(),
            rich_path.as_os_str(),
        ]);
        run.ok();
        Seeded { env, zip, rich }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.env.run(args)
    }

    /// Every archived id, from `list --json`.
    fn all_ids(&self) -> BTreeSet<String> {
        self.run(&["list", "--json"])
            .ok()
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn write_json(env: &CliEnv, name: &str, convs: &[Value]) -> PathBuf {
    let p = env.inputs().join(name);
    fs::write(&p, serde_json::to_vec(convs).expect("json")).expect("write");
    p
}

const TOTAL: usize = 7;

#[test]
fn cli_import_good_and_bad_files_exits_1_and_reports_both() {
    let env = CliEnv::new();
    let zip = sample_export(&env.inputs());
    let bad = env.inputs().join("broken-download.zip");
    fs::write(&bad, corrupt_zip()).expect("write");
    let malformed = env.inputs().join("malformed.json");
    fs::write(&malformed, malformed_array_middle()).expect("write");
    let run = env.run([
        "import".as_ref(),
        zip.as_os_str(),
        bad.as_os_str(),
        malformed.as_os_str(),
    ]);
    run.expect_code(1);
    let out = &run.stdout;
    let line_of = |p: &PathBuf| {
        let shown = p.display().to_string();
        out.lines()
            .find(|l| l.starts_with(&shown))
            .unwrap_or_else(|| panic!("no line for {shown} in:\n{out}"))
            .to_string()
    };
    assert!(
        line_of(&zip).contains("5 new, 0 updated, 0 unchanged, 0 failed, 3 attachments"),
        "{out}"
    );
    let bad_line = line_of(&bad);
    assert!(bad_line.contains("FAILED") && bad_line.contains("download the export again"));
    assert!(line_of(&malformed).contains("4 new") && line_of(&malformed).contains("1 failed"));
    let failed = out
        .lines()
        .find(|l| l.trim_start().starts_with("failed:"))
        .unwrap_or_else(|| panic!("no conversation failure line:\n{out}"));
    assert!(
        failed.contains("malformed.json") && failed.contains("#3") && failed.contains("mal-2"),
        "names the file and the conversation: {failed}"
    );
    assert!(
        run.stderr.contains("could not be imported"),
        "{}",
        run.stderr
    );
    // What did import is really there.
    let listed = env.run(["list", "--json"]).ok().json();
    assert_eq!(listed.as_array().expect("array").len(), 5 + 4);
}

#[test]
fn cli_import_all_good_exits_0_and_a_repeat_is_skipped() {
    let env = CliEnv::new();
    let zip = sample_export(&env.inputs());
    write_json(
        &env,
        "extra.json",
        &[simple_conversation("cli-extra", "Extra")],
    );
    // A path relative to the working directory works too.
    let run = env.run([
        "import".as_ref(),
        zip.as_os_str(),
        "inputs/extra.json".as_ref(),
    ]);
    run.ok();
    assert!(run.stdout.contains("5 new"), "{}", run.stdout);
    assert!(run.stdout.contains("extra.json: 1 new"), "{}", run.stdout);
    let again = env.run(["import".as_ref(), zip.as_os_str()]);
    again.ok();
    assert!(
        again.stdout.contains("already imported"),
        "{}",
        again.stdout
    );
    let forced = env.run(["import".as_ref(), "--force".as_ref(), zip.as_os_str()]);
    forced.ok();
    assert!(
        forced.stdout.contains("0 new, 0 updated, 5 unchanged"),
        "{}",
        forced.stdout
    );
}

#[test]
fn cli_list_is_newest_first_in_plain_and_json() {
    let s = Seeded::new();
    let rows = s.run(&["list", "--json"]).ok().json();
    let rows = rows.as_array().expect("one JSON array");
    assert_eq!(rows.len(), TOTAL);
    let expected_keys = BTreeSet::from(["id", "title", "update_time", "message_count"]);
    let mut times = Vec::new();
    for r in rows {
        let keys: BTreeSet<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected_keys);
        let t = r["update_time"].as_str().expect("update_time");
        times.push(chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339"));
        assert!(r["message_count"].is_u64());
    }
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    let by_id: BTreeMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["id"].as_str().expect("id"), r))
        .collect();
    assert_eq!(by_id[SAMPLE_CONVERSATION_IDS[0]]["title"], "Trip to Lisbon");
    assert_eq!(by_id[SAMPLE_CONVERSATION_IDS[0]]["message_count"], 2);
    assert_eq!(by_id[SAMPLE_CONVERSATION_IDS[4]]["message_count"], 4);

    // Plain: one line per conversation, same order, with title and count.
    let plain = s.run(&["list"]).ok().stdout.clone();
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), TOTAL, "{plain}");
    for (line, row) in lines.iter().zip(rows) {
        let id = row["id"].as_str().expect("id");
        assert!(line.contains(id), "{line} vs {id}");
        assert!(
            line.contains(row["title"].as_str().expect("title")),
            "{line}"
        );
        assert!(
            line.contains(&format!("{} msgs", row["message_count"])),
            "{line}"
        );
    }
    let archived = lines
        .iter()
        .find(|l| l.contains(SAMPLE_CONVERSATION_IDS[3]))
        .expect("archived conversation listed");
    assert!(archived.contains("[archived]"), "{archived}");
    // Sample conversations are one day apart: the newest is listed first among them.
    let positions: Vec<usize> = SAMPLE_CONVERSATION_IDS
        .iter()
        .map(|id| lines.iter().position(|l| l.contains(id)).expect("listed"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
}

#[test]
fn cli_show_by_id_and_unique_prefix_and_rejects_ambiguous_or_unknown() {
    let s = Seeded::new();
    let full = s.run(&["show", UNIQUE_ID]).ok().stdout.clone();
    assert!(full.starts_with("---\n"), "{full}");
    assert!(full.contains("# Unique prefix chat"), "{full}");
    assert!(full.contains("Question for Unique prefix chat"), "{full}");
    let by_prefix = s.run(&["show", UNIQUE_PREFIX]).ok().stdout.clone();
    assert_eq!(by_prefix, full);

    let ambiguous = s.run(&["show", SHARED_PREFIX]);
    ambiguous.expect_code(1);
    assert!(
        ambiguous.stderr.contains("matches several") && ambiguous.stderr.contains(SHARED_PREFIX),
        "{}",
        ambiguous.stderr
    );
    assert!(ambiguous.stdout.is_empty());
    let unknown = s.run(&["show", "nonexistent-id"]);
    unknown.expect_code(1);
    assert!(
        unknown.stderr.contains("no conversation") && unknown.stderr.contains("nonexistent-id"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn cli_show_json_follows_export_schema_v1() {
    let s = Seeded::new();
    let id = s.rich["conversation_id"].as_str().expect("id");
    let v = s.run(&["show", id, "--format", "json"]).ok().json();
    assert_export_schema(&v);
    assert_eq!(v["id"], id);
    let ids: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, expected_visible_ids(&s.rich));
    // A sample conversation with a stored attachment lists its hash.
    let photo = s
        .run(&["show", SAMPLE_CONVERSATION_IDS[1], "--format", "json"])
        .ok()
        .json();
    assert_export_schema(&photo);
    let a = &photo["messages"][0]["attachments"][0];
    assert_eq!(a["file_id"], "file-SamplePhoto01");
    assert_eq!(
        a["sha256"],
        Asset::legacy("file-SamplePhoto01", "photo.png").sha256_hex()
    );
}

#[test]
fn cli_export_jsonl_to_stdout_is_one_object_per_line() {
    let s = Seeded::new();
    let run = s.run(&["export", "--format", "jsonl", "--out", "-"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), TOTAL, "{}", run.stdout);
    let mut ids = BTreeSet::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).expect("each line is one JSON object");
        assert_export_schema(&v);
        ids.insert(v["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids, s.all_ids());
}

#[test]
fn cli_export_json_to_a_folder_writes_one_array() {
    let s = Seeded::new();
    let out = s.env.root().join("export-json");
    let run = s.run(&[
        "export",
        "--format",
        "json",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    run.ok();
    assert!(
        run.stdout
            .contains(&format!("exported {TOTAL} conversations")),
        "{}",
        run.stdout
    );
    let files: Vec<PathBuf> = fs::read_dir(&out)
        .expect("export folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let v: Value = serde_json::from_slice(&fs::read(&files[0]).expect("read")).expect("JSON");
    let arr = v.as_array().expect("one array");
    assert_eq!(arr.len(), TOTAL);
    for c in arr {
        assert_export_schema(c);
    }
    let ids: BTreeSet<String> = arr
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, s.all_ids());
}

#[test]
fn cli_export_markdown_writes_one_file_per_conversation_with_attachments() {
    let s = Seeded::new();
    let out = s.env.root().join("export-md");
    let run = s.run(&[
        "export",
        "--format",
        "md",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    run.ok();
    assert!(
        run.stdout
            .contains(&format!("exported {TOTAL} conversations"))
            && run.stdout.contains("3 attachments copied"),
        "{}",
        run.stdout
    );
    let mut docs: BTreeMap<String, String> = BTreeMap::new();
    for e in fs::read_dir(&out).expect("export folder") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            assert_eq!(p.file_name().expect("name"), "attachments");
            continue;
        }
        assert_eq!(p.extension().expect("extension"), "md", "{}", p.display());
        let text = fs::read_to_string(&p).expect("utf-8 markdown");
        assert!(
            text.starts_with("---\n"),
            "{}: no front matter",
            p.display()
        );
        let front = text[4..]
            .split_once("\n---\n")
            .expect("closed front matter")
            .0
            .to_string();
        let id = front
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .expect("id in front matter")
            .trim_matches('"')
            .to_string();
        assert!(
            front.contains(&format!("url: \"https://chatgpt.com/c/{id}\"")),
            "{front}"
        );
        docs.insert(id, text);
    }
    assert_eq!(docs.len(), TOTAL);
    assert_eq!(docs.keys().cloned().collect::<BTreeSet<_>>(), s.all_ids());

    // The three stored attachments are copied and linked; bytes intact.
    let assets = [
        (
            SAMPLE_CONVERSATION_IDS[1],
            Asset::legacy("file-SamplePhoto01", "photo.png"),
        ),
        (
            SAMPLE_CONVERSATION_IDS[2],
            Asset::user_dir(
                "user-Sample01",
                "file_00000000sample0000000000000003",
                "diagram.png",
            ),
        ),
        (
            SAMPLE_CONVERSATION_IDS[3],
            Asset::dat("file-SampleNotes04", "notes.jpg"),
        ),
    ];
    let copied: Vec<PathBuf> = fs::read_dir(out.join("attachments"))
        .expect("attachments folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(copied.len(), 3, "{copied:?}");
    for (conv, asset) in assets {
        let doc = &docs[conv];
        let link = doc
            .split("](attachments/")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no attachment link in {conv}:\n{doc}"));
        let file = out.join("attachments").join(link.trim_matches(['<', '>']));
        assert!(
            link.contains(asset.file_id()),
            "link {link} names {}",
            asset.file_id()
        );
        assert!(
            fs::read(&file).expect("linked file exists") == asset.bytes(),
            "{}",
            file.display()
        );
    }
    // Attachments the archive lacks are said to be missing, not linked.
    let rich = &docs[s.rich["conversation_id"].as_str().expect("id")];
    assert!(rich.contains("attachment not archived"), "{rich}");
}

#[test]
fn cli_search_finds_by_title_and_by_message_text() {
    let s = Seeded::new();
    // Only in a title.
    let by_title = s.run(&["search", "handwritten"]);
    by_title.ok();
    assert!(
        by_title.stdout.contains(SAMPLE_CONVERSATION_IDS[3]),
        "{}",
        by_title.stdout
    );
    assert_eq!(
        by_title
            .stdout
            .lines()
            .filter(|l| l.contains(SHARED_PREFIX))
            .count(),
        1,
        "{}",
        by_title.stdout
    );
    // Only in an assistant message.
    let hits = s.run(&["search", "Alfama", "--json"]).ok().json();
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["id"], SAMPLE_CONVERSATION_IDS[0]);
    assert!(
        hits[0]["snippet"]
            .as_str()
            .expect("snippet")
            .contains("Alfama"),
        "{hits:?}"
    );
    // Every word must appear, in any message of the conversation.
    let both = s.run(&["search", "--json", "porto", "cat"]).ok().json();
    let ids: Vec<&str> = both
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [s.rich["conversation_id"].as_str().expect("id")]);
    let none = s.run(&["search", "xylophone"]);
    none.ok();
    assert!(
        none.stdout.contains("no conversation matches"),
        "{}",
        none.stdout
    );
}

#[test]
fn cli_status_shows_counts_and_the_last_import() {
    let s = Seeded::new();
    let plain = s.run(&["status"]);
    plain.ok();
    assert!(
        plain.stdout.contains(&format!("{TOTAL} conversations")),
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains("3 attachments"), "{}", plain.stdout);
    let last = plain
        .stdout
        .split("last import:")
        .nth(1)
        .expect("a last import section");
    assert!(
        last.contains(&s.zip.display().to_string()) && last.contains("5 new"),
        "{}",
        plain.stdout
    );

    let v = s.run(&["status", "--json"]).ok().json();
    assert_eq!(v["counts"]["conversations"], TOTAL);
    assert_eq!(v["counts"]["attachments"], 3);
    assert_eq!(v["data_dir"], s.env.data_dir.display().to_string());
    let files = v["last_import"]["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["path"], s.zip.display().to_string());
    assert_eq!(files[0]["new"], 5);
    let at = v["last_import"]["at"].as_str().expect("at");
    chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
}

#[test]
fn cli_bad_config_exits_78_naming_file_line_and_key() {
    let env = CliEnv::new();
    let config = env.config.display().to_string();
    let cases = [
        (
            "[import]\nmax_entries = 10\nmax_ratoi = 5\n",
            "line 3",
            "import.max_ratoi",
        ),
        ("# limits\n[api]\nburst = 0\n", "line 3", "api.burst"),
        (
            "[import]\nmax_ratio = \"lots\"\n",
            "line 2",
            "import.max_ratio",
        ),
    ];
    for (text, line, key) in cases {
        env.write_config(text);
        let run = env.run(["list"]);
        run.expect_code(78);
        assert!(
            run.stderr.contains(&config) && run.stderr.contains(line) && run.stderr.contains(key),
            "{text:?}: {}",
            run.stderr
        );
    }
    assert!(
        !env.data_dir.exists(),
        "a bad config must not create the archive"
    );
}

#[test]
fn cli_unknown_flag_is_a_usage_error() {
    let env = CliEnv::new();
    let run = env.run(["list", "--frobnicate"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--frobnicate"), "{}", run.stderr);
    env.run(["frobnicate"]).expect_code(2);
    env.run(["show"]).expect_code(2);
    // A command line clap accepts but that cannot work is a usage error too.
    let run = env.run(["search", " "]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("nothing to search for"),
        "{}",
        run.stderr
    );
}

#[test]
fn cli_help_lists_the_commands() {
    let env = CliEnv::new();
    let run = env.run(["--help"]);
    run.ok();
    for cmd in [
        "run", "sync", "import", "auth", "status", "list", "show", "search", "reindex", "export",
        "mirror", "service",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "{cmd} missing from --help:\n{}",
            run.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 8: terminal output, private files, the Downloads folder
// ---------------------------------------------------------------------------------------------

/// A title that would write the clipboard (OSC 52, ended by BEL), clear the screen and move
/// the cursor (CSI), and break its line.
const EVIL_TITLE: &str = "Evil\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}[1;1H title\nsecond line";
/// How [`EVIL_TITLE`] shows on one line.
const EVIL_TITLE_SHOWN: &str = "Evil␛]52;c;ZXZpbA==␇␛[2J␛[1;1H title second line";
/// A message with colour codes and an 8-bit CSI (C1), around a word to search for.
const EVIL_TEXT: &str = "look \u{1b}[31mred\u{1b}[0m xylophone \u{9b}6n\r\nend";
const EVIL_ID: &str = "e0e0e0e0-0000-4000-8000-00000000e71l";

/// Raw terminal controls in `text`: ESC, BEL, CR, C1 CSI/OSC.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect()
}

#[test]
fn cli_human_output_shows_control_characters_instead_of_sending_them() {
    let env = CliEnv::new();
    let mut c = ConvBuilder::new(EVIL_ID, EVIL_TITLE);
    c.user(EVIL_TEXT);
    c.assistant("fine");
    // The file name reaches the import report, the log and `status`.
    let file = write_json(&env, "evil\u{1b}[2J.json", &[c.build()]);
    let import = env.run(["import".as_ref(), file.as_os_str()]);
    import.ok();
    let mut runs = vec![("import", import)];
    for args in [
        &["list"][..],
        &["search", "xylophone"],
        &["show", EVIL_ID],
        &["status"],
    ] {
        runs.push((args[0], env.run(args)));
    }
    for (what, run) in &runs {
        run.ok();
        assert_eq!(
            raw_controls(&run.stdout),
            Vec::<char>::new(),
            "{what} stdout: {:?}",
            run.stdout
        );
        assert_eq!(
            raw_controls(&run.stderr),
            Vec::<char>::new(),
            "{what} stderr: {:?}",
            run.stderr
        );
    }
    let out = |what: &str| {
        &runs
            .iter()
            .find(|(w, _)| *w == what)
            .expect("a run")
            .1
            .stdout
    };
    assert!(
        out("import").contains("evil␛[2J.json: 1 new"),
        "{}",
        out("import")
    );
    assert!(
        out("list")
            .lines()
            .any(|l| l.contains(EVIL_ID) && l.ends_with(EVIL_TITLE_SHOWN)),
        "one line per conversation: {}",
        out("list")
    );
    let search = out("search");
    assert!(search.contains(EVIL_TITLE_SHOWN), "{search}");
    assert!(
        search.contains("look ␛[31mred␛[0m xylophone \u{fffd}6n end"),
        "{search}"
    );
    // Markdown keeps its lines; only the controls are replaced.
    let md = out("show");
    assert!(
        md.contains("look ␛[31mred␛[0m xylophone \u{fffd}6n\nend"),
        "{md}"
    );
    assert!(md.contains("\n# Evil␛\\]52;c;ZXZpbA\\==␇␛\\[2J"), "{md}");
    assert!(out("status").contains("evil␛[2J.json"), "{}", out("status"));

    // JSON output is exact.
    let listed = env.run(["list", "--json"]).ok().json();
    assert_eq!(listed[0]["title"], EVIL_TITLE);
    let shown = env.run(["show", EVIL_ID, "--format", "json"]).ok().json();
    assert_eq!(shown["title"], EVIL_TITLE);
    assert_eq!(shown["messages"][0]["text"], EVIL_TEXT);
    let found = env.run(["search", "--json", "xylophone"]).ok().json();
    assert_eq!(found[0]["title"], EVIL_TITLE);
    let line = env.run(["export", "--format", "jsonl"]);
    let exported: Value = serde_json::from_str(line.ok().stdout.trim()).expect("one line");
    assert_eq!(exported["messages"][0]["text"], EVIL_TEXT);
    let status = env.run(["status", "--json"]).ok().json();
    assert_eq!(
        status["last_import"]["files"][0]["path"],
        file.display().to_string()
    );
}

#[test]
fn cli_archive_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let set_mode = |p: &std::path::Path, m: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).expect("chmod")
    };
    // `--data-dir` names an existing folder others may read: it stays as the user made it,
    // and everything convos writes in it is private.
    let env = CliEnv::new();
    fs::create_dir(&env.data_dir).expect("mkdir");
    set_mode(&env.data_dir, 0o755);
    let zip = sample_export(&env.inputs());
    env.run_umask_022(["import".as_ref(), zip.as_os_str()]).ok();
    let archive = env.data_dir.join("archive");
    assert!(
        fs::read_dir(archive.join("blobs"))
            .expect("attachments stored")
            .count()
            > 1
    );
    assert_eq!(mode(&env.data_dir), 0o755);
    assert_eq!(mode(&archive), 0o700);
    assert_eq!(shared_entries(&env.data_dir), Vec::new());

    // A data dir convos creates is private itself.
    let fresh = CliEnv::new();
    fresh.run_umask_022(["list"]).ok();
    assert_eq!(mode(&fresh.data_dir), 0o700);
    assert_eq!(shared_entries(&fresh.data_dir), Vec::new());

    // An archive an older convos left readable is fixed when opened, with one warning.
    let mut stack = vec![archive.clone()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            set_mode(&p, 0o755);
            stack.extend(
                fs::read_dir(&p)
                    .expect("read_dir")
                    .map(|e| e.expect("e").path()),
            );
        } else {
            set_mode(&p, 0o644);
        }
    }
    assert!(!shared_entries(&env.data_dir).is_empty());
    let run = env.run_umask_022(["list"]);
    run.ok();
    assert_eq!(
        run.stderr.matches("was readable by other users").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&archive.display().to_string()),
        "{}",
        run.stderr
    );
    assert_eq!(shared_entries(&env.data_dir), Vec::new());
    let again = env.run_umask_022(["list"]);
    assert!(
        !again.ok().stderr.contains("readable by other users"),
        "{}",
        again.stderr
    );
}

#[test]
fn cli_watches_home_downloads_when_the_platform_names_no_downloads_folder() {
    // No ~/.config/user-dirs.dirs, as on servers and in containers: `directories` names no
    // Downloads folder, but ~/Downloads exists.
    let env = CliEnv::new();
    let downloads = env.root().join("home/Downloads");
    assert!(!env.root().join("home/.config/user-dirs.dirs").exists());
    let s = env.run(["status", "--json"]).ok().json();
    assert_eq!(
        s["watch_dirs"],
        serde_json::json!([downloads.display().to_string()])
    );
    assert_eq!(s["watch_dirs_missing"], serde_json::json!([]));
    let text = env.run(["status"]).ok().stdout.clone();
    assert!(
        text.contains(&format!("watching:     {}\n", downloads.display())),
        "{text}"
    );

    // Without it, `status` says so and how to choose another folder.
    fs::remove_dir(&downloads).expect("rmdir");
    let s = env.run(["status", "--json"]).ok().json();
    assert_eq!(s["watch_dirs_missing"], s["watch_dirs"]);
    let text = env.run(["status"]).ok().stdout.clone();
    assert!(
        text.contains(&format!(
            "watching:     {} (does not exist yet; watched once created); to watch another \
             folder, set `dirs` under [watch] in the config file, or CONVOS_WATCH_DIRS",
            downloads.display()
        )),
        "{text}"
    );
}
