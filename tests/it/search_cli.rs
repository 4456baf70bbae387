//! `convos search` and `convos reindex` end to end: the real binary (no daemon: the
//! index catches up from the archive's change feed before a query) and the daemon
//! (its indexer follows the feed), ranking, syntax, filters, bad queries, and an index
//! that heals itself (deleted, damaged, behind the archive after a crash).

use std::fs;
use std::path::{Path, PathBuf};

use convos::archive::{Archive, OpenOptions};
use convos::cli::{ImportArgs, ReindexArgs, SearchArgs};
use convos::control::{ControlRequest, Exit, FailureKind, Request};
use convos::model::RawConversation;
use serde_json::{Value, json};

use crate::support::cli::CliEnv;
use crate::support::daemon_env::{DaemonWorld, InProcess};
use crate::support::fake_server::{ConvOpts, FakeChatGpt, conversation_detail};
use crate::support::fixtures::ConvBuilder;
use crate::support::sync_env::{TOKEN, creds, run_cli};

fn write_json(env: &CliEnv, name: &str, convs: &[Value]) -> PathBuf {
    let p = env.inputs().join(name);
    fs::write(&p, serde_json::to_vec(convs).expect("json")).expect("write");
    p
}

fn import(env: &CliEnv, name: &str, convs: &[Value]) {
    let file = write_json(env, name, convs);
    env.run(["import".as_ref(), file.as_os_str()]).ok();
}

/// Conversation ids `convos search --json <args>` returns, best first.
fn found(env: &CliEnv, args: &[&str]) -> Vec<String> {
    let mut cmd = vec!["search", "--json"];
    cmd.extend_from_slice(args);
    ids(&env.run(&cmd).ok().json())
}

fn ids(hits: &Value) -> Vec<String> {
    hits.as_array()
        .expect("an array of hits")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn conv(id: &str, title: &str, turns: &[(&str, &str)]) -> Value {
    let mut c = ConvBuilder::new(id, title);
    for (role, text) in turns {
        match *role {
            "user" => c.user(text),
            _ => c.assistant(text),
        };
    }
    c.build()
}

const FILLER: &str = "Some notes on the garden, the weather this week, and what to cook for \
                      dinner tonight with friends who are visiting from out of town.";

#[test]
fn cli_search_ranks_a_repeated_rare_phrase_above_its_words_scattered() {
    let env = CliEnv::new();
    let repeated = format!(
        "The quantum marmalade recipe. {FILLER} Again the quantum marmalade, and once more \
         quantum marmalade."
    );
    let scattered_a = format!("Quantum physics notes. {FILLER} A jar of marmalade.");
    let scattered_b = FILLER;
    import(
        &env,
        "convs.json",
        &[
            conv(
                "scattered",
                "Kitchen",
                &[("user", &scattered_a), ("assistant", scattered_b)],
            ),
            conv(
                "repeated",
                "Breakfast",
                &[("user", "Breakfast ideas?"), ("assistant", &repeated)],
            ),
            conv("unrelated", "Garden", &[("user", FILLER)]),
        ],
    );
    assert_eq!(
        found(&env, &["quantum", "marmalade"]),
        ["repeated", "scattered"]
    );
    // Each hit has the --json contract's fields, and the best message's snippet.
    let hits = env
        .run(["search", "--json", "quantum", "marmalade"])
        .ok()
        .json();
    let best = &hits[0];
    let mut keys: Vec<&str> = best
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "id",
            "message_id",
            "role",
            "score",
            "snippet",
            "title",
            "update_time"
        ]
    );
    assert_eq!(best["role"], "assistant");
    assert!(
        best["snippet"]
            .as_str()
            .expect("snippet")
            .contains("quantum marmalade"),
        "{best}"
    );
    assert!(best["score"].as_f64().expect("score") > hits[1]["score"].as_f64().expect("score"));
    // Text output: one line per conversation.
    let text = env.run(["search", "quantum", "marmalade"]);
    let lines: Vec<&str> = text.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("repeated") && lines[0].contains("Breakfast"),
        "{lines:?}"
    );
    assert!(lines[0].contains("assistant: "), "{lines:?}");
    // -n limits.
    assert_eq!(
        found(&env, &["-n", "1", "quantum", "marmalade"]),
        ["repeated"]
    );
}

#[test]
fn cli_search_phrases_exclusions_prefixes_and_folding() {
    let env = CliEnv::new();
    import(
        &env,
        "convs.json",
        &[
            conv(
                "phrase",
                "One",
                &[("user", "the red fox jumped over the fence")],
            ),
            conv(
                "apart",
                "Two",
                &[("user", "a fox, red in the evening light")],
            ),
            conv(
                "other",
                "Three",
                &[("user", "the red barn and a cat; foxglove grows")],
            ),
            conv(
                "accents",
                "Café notes",
                &[("user", "Crème brûlée at the Zürich café")],
            ),
            conv("cjk", "中文", &[("user", "我们明天去北京大学参观")]),
        ],
    );
    assert_eq!(found(&env, &["\"red fox\""]), ["phrase"]);
    assert_eq!(sorted(found(&env, &["fox", "red"])), ["apart", "phrase"]);
    assert_eq!(found(&env, &["fox", "--", "-evening"]), ["phrase"]);
    assert_eq!(found(&env, &["red -\"red fox\" -light"]), ["other"]);
    assert_eq!(sorted(found(&env, &["fox*"])), ["apart", "other", "phrase"]);
    assert_eq!(found(&env, &["creme", "BRULEE"]), ["accents"]);
    assert_eq!(found(&env, &["zurich"]), ["accents"]);
    assert_eq!(found(&env, &["北京"]), ["cjk"]);
    let none = env.run(["search", "xylophone"]);
    assert!(
        none.ok().stdout.contains("no conversation matches"),
        "{}",
        none.stdout
    );
    assert_eq!(found(&env, &["xylophone"]), Vec::<String>::new());
}

#[test]
fn cli_search_filters_narrow_the_results() {
    let env = CliEnv::new();
    let mut a = ConvBuilder::new("in-2024", "Animals one");
    a.start_time(1_705_000_000).model("gpt-4o"); // 2024-01-11
    a.user("Where do walrus live?");
    a.assistant("Walrus live in the Arctic.");
    let mut b = ConvBuilder::new("in-2025", "Animals two");
    b.start_time(1_750_000_000).model("o3"); // 2025-06-15
    b.user("What do walrus eat?");
    b.execution_output("walrus count: 3", None);
    b.set("is_archived", json!(true));
    let mut c = ConvBuilder::new("gone", "Animals three");
    c.start_time(1_760_000_000).model("gpt-4o"); // 2025-10-09
    c.assistant("A walrus fact.");
    import(&env, "convs.json", &[a.build(), b.build(), c.build()]);
    // What only sync learns (deleted on chatgpt.com, the project's name), written through
    // the archive as sync writes it.
    {
        let archive =
            Archive::open(&env.data_dir.join("archive"), &OpenOptions::default()).expect("archive");
        archive
            .update_remote("gone", |r| {
                r.deleted_remotely = true;
                r.remote.project = Some("Arctic Café".into());
            })
            .expect("update");
        archive.flush().expect("flush");
    }
    let f = |args: &[&str]| {
        let mut all = vec!["walrus"];
        all.extend_from_slice(args);
        sorted(found(&env, &all))
    };
    assert_eq!(f(&[]), ["gone", "in-2024", "in-2025"]);
    assert_eq!(f(&["--role", "user"]), ["in-2024", "in-2025"]);
    assert_eq!(f(&["--role", "assistant"]), ["gone", "in-2024"]);
    assert_eq!(f(&["--role", "tool"]), ["in-2025"]);
    assert_eq!(f(&["--since", "2025"]), ["gone", "in-2025"]);
    assert_eq!(f(&["--until", "2024-12-31"]), ["in-2024"]);
    assert_eq!(
        f(&["--since", "2025-06-15", "--until", "2025-06"]),
        ["in-2025"]
    );
    assert_eq!(f(&["--project", "arctic cafe"]), ["gone"]);
    assert_eq!(f(&["--model", "GPT-4o"]), ["gone", "in-2024"]);
    assert_eq!(f(&["--model", "o3"]), ["in-2025"]);
    assert_eq!(f(&["--archived"]), ["in-2025"]);
    assert_eq!(f(&["--no-archived"]), ["gone", "in-2024"]);
    assert_eq!(f(&["--deleted"]), ["gone"]);
    assert_eq!(f(&["--role", "user", "--no-archived"]), ["in-2024"]);
}

#[test]
fn cli_bad_queries_exit_2_with_a_clear_message() {
    let env = CliEnv::new();
    import(
        &env,
        "convs.json",
        &[conv("c", "Walrus", &[("user", "walrus")])],
    );
    let long = "walrus ".repeat(200);
    let cases: [(&[&str], &str); 9] = [
        (&["the", "and", "of"], "nothing searchable"),
        (&["\"walrus"], "unbalanced quote"),
        (&[long.as_str()], "the limit is 1024"),
        (&["wal\u{7}rus"], "control character"),
        (
            &["walrus", "--since", "yesterday"],
            "cannot read the date \"yesterday\"",
        ),
        (&["walrus", "--until", "2024-13"], "cannot read the date"),
        (&["walrus", "--role", "robot"], "robot"),
        (&["--", "-walrus"], "not only -excluded"),
        (
            &["walrus", "--archived", "--no-archived"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let mut cmd = vec!["search"];
        cmd.extend_from_slice(args);
        let run = env.run(&cmd);
        run.expect_code(2);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn cli_finds_what_was_just_imported_on_every_branch() {
    let env = CliEnv::new();
    let mut c = ConvBuilder::new("branches", "Logo ideas");
    let q = c.user("Suggest an animal for the logo.");
    c.assistant("A platypus would be memorable.");
    c.branch_from(&q);
    c.assistant("A heron looks elegant.");
    let first = c.build();
    import(&env, "one.json", std::slice::from_ref(&first));
    // Both branches: the one shown and the one edited away.
    assert_eq!(found(&env, &["platypus"]), ["branches"]);
    assert_eq!(found(&env, &["heron"]), ["branches"]);
    // A newer version of it, imported, is found at once; so is a new conversation.
    c.user("And a colour?");
    c.assistant("Turquoise suits a heron.");
    c.set("update_time", json!(1_760_000_000.0));
    import(
        &env,
        "two.json",
        &[
            c.build(),
            conv("new", "Fresh", &[("user", "turquoise walls")]),
        ],
    );
    assert_eq!(sorted(found(&env, &["turquoise"])), ["branches", "new"]);
    assert_eq!(found(&env, &["platypus"]), ["branches"]);
}

fn archive_put(data_dir: &Path, conv: &Value) {
    let archive =
        Archive::open(&data_dir.join("archive"), &OpenOptions::default()).expect("open archive");
    let raw =
        RawConversation::from_bytes(serde_json::to_vec(conv).expect("json")).expect("conversation");
    archive.upsert(raw).expect("upsert");
    archive.flush().expect("flush");
}

#[test]
fn cli_the_index_heals_when_deleted_damaged_or_behind_the_archive() {
    let env = CliEnv::new();
    import(
        &env,
        "convs.json",
        &[conv("a", "Alpha", &[("user", "narwhal tusks")])],
    );
    assert_eq!(found(&env, &["narwhal"]), ["a"]);
    let index = env.data_dir.join("index");
    assert!(index.join("meta.json").is_file());

    // A crash between the archive write and the index commit: the archive has a
    // conversation the index never took in. Status says so; the next search heals it.
    archive_put(
        &env.data_dir,
        &conv("b", "Beta", &[("user", "narwhal songs")]),
    );
    let status = env.run(["status"]);
    assert!(
        status
            .ok()
            .stdout
            .contains("1 conversation(s) changed since it was updated"),
        "{}",
        status.stdout
    );
    assert_eq!(sorted(found(&env, &["narwhal"])), ["a", "b"]);
    let status = env.run(["status", "--json"]).ok().json();
    let ix = &status["search_index"];
    assert_eq!(ix["stats"]["mark"], ix["feed"], "{ix:#}");
    assert_eq!(ix["pending"], 0, "{ix:#}");
    assert!(
        ix["stats"]["messages"].as_u64().expect("messages") >= 2,
        "{ix:#}"
    );
    assert!(env.run(["status"]).ok().stdout.contains("up to date"));

    // Deleted: rebuilt.
    fs::remove_dir_all(&index).expect("remove index");
    assert!(env.run(["status"]).ok().stdout.contains("not built yet"));
    assert_eq!(sorted(found(&env, &["narwhal"])), ["a", "b"]);

    // Damaged: rebuilt, with a log line.
    fs::write(index.join("meta.json"), b"{ not json").expect("damage");
    let run = env.run(["search", "--json", "narwhal"]);
    assert_eq!(sorted(ids(&run.ok().json())), ["a", "b"]);
    assert!(
        run.stderr.contains("rebuilding it from the archive"),
        "{}",
        run.stderr
    );
}

#[test]
fn cli_reindex_rebuilds_the_index() {
    let env = CliEnv::new();
    import(
        &env,
        "convs.json",
        &[
            conv("a", "Alpha", &[("user", "okapi stripes")]),
            conv(
                "b",
                "Beta",
                &[("user", "okapi forest"), ("assistant", "yes")],
            ),
        ],
    );
    let run = env.run(["reindex"]);
    assert!(
        run.ok()
            .stdout
            .contains("search index rebuilt: 2 conversations, 3 messages"),
        "{}",
        run.stdout
    );
    assert_eq!(sorted(found(&env, &["okapi"])), ["a", "b"]);
    let status = env.run(["status", "--json"]).ok().json();
    assert_eq!(status["search_index"]["stats"]["messages"], 3);
}

#[test]
fn cli_finds_what_a_sync_just_fetched() {
    let fake = FakeChatGpt::start_background();
    fake.add_session(TOKEN);
    fake.put_conversation(
        conversation_detail("remote-1", "Pelican migration", 1.7e9, 1.7e9 + 10.0),
        ConvOpts::default(),
    );
    let cli = CliEnv::new();
    creds(TOKEN)
        .save(&cli.data_dir.join("credentials.json"))
        .expect("credentials");
    run_cli(&cli, &fake, &["sync"], None, &[]).ok();
    // conversation_detail's user message is "Tell me about <title>."
    assert_eq!(found(&cli, &["pelican", "migration"]), ["remote-1"]);
    fake.put_conversation(
        conversation_detail("remote-2", "Albatross flight", 1.7e9, 1.7e9 + 20.0),
        ConvOpts::default(),
    );
    run_cli(&cli, &fake, &["sync"], None, &[]).ok();
    assert_eq!(found(&cli, &["albatross"]), ["remote-2"]);
}

fn search_request(words: &[&str]) -> ControlRequest {
    ControlRequest::Command(Request::Search(SearchArgs {
        query: words.iter().map(|w| (*w).to_owned()).collect(),
        json: true,
        limit: 20,
        role: None,
        since: None,
        until: None,
        project: None,
        model: None,
        archived: false,
        no_archived: false,
        deleted: false,
        highlight: false,
    }))
}

async fn daemon_search(d: &InProcess, words: &[&str]) -> Vec<String> {
    let (exit, out) = d
        .try_call(search_request(words))
        .await
        .expect("the daemon answers");
    assert_eq!(exit, Exit::ok(), "{}", String::from_utf8_lossy(&out));
    ids(&serde_json::from_slice(&out).expect("JSON hits"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_indexes_what_it_writes_and_what_was_written_before_it_started() {
    let w = DaemonWorld::new();
    let (loaded, platform) = w.load(&[]);
    // Written while no daemon ran, never indexed (as after a crash before the commit).
    archive_put(
        &loaded.paths.data_dir,
        &conv("before", "Earlier", &[("user", "capybara baths")]),
    );
    let d = InProcess::start(loaded.clone(), platform).await;
    assert_eq!(daemon_search(&d, &["capybara"]).await, ["before"]);

    // Imported through the daemon: found by the very next search.
    let file = w.runtime_dir().join("import.json");
    fs::write(
        &file,
        serde_json::to_vec(&[conv("imported", "Later", &[("user", "capybara snacks")])])
            .expect("json"),
    )
    .expect("write");
    let (exit, out) = d
        .try_call(ControlRequest::Command(Request::Import(ImportArgs {
            paths: vec![file],
            force: false,
        })))
        .await
        .expect("the daemon answers");
    assert_eq!(exit, Exit::ok(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(
        sorted(daemon_search(&d, &["capybara"]).await),
        ["before", "imported"]
    );
    assert_eq!(daemon_search(&d, &["snacks"]).await, ["imported"]);

    // Status shows the index caught up with the feed; the writer is let go when idle.
    let s = d
        .wait_status("the index to be idle and current", |s| {
            let ix = &s["search_index"];
            ix["busy"] == false && ix["pending"] == 0 && ix["stats"]["mark"] == ix["feed"]
        })
        .await;
    assert!(s["search_index"]["last_error"].is_null(), "{s:#}");

    // A bad query is a usage error through the socket too.
    let (exit, _) = d
        .try_call(search_request(&["\"capybara"]))
        .await
        .expect("the daemon answers");
    assert_eq!(exit.failure, Some(FailureKind::Usage), "{exit:?}");

    // convos reindex through the daemon.
    let (exit, out) = d
        .try_call(ControlRequest::Command(Request::Reindex(ReindexArgs {})))
        .await
        .expect("the daemon answers");
    assert_eq!(exit, Exit::ok(), "{}", String::from_utf8_lossy(&out));
    assert!(
        String::from_utf8_lossy(&out).contains("search index rebuilt: 2 conversations"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        sorted(daemon_search(&d, &["capybara"]).await),
        ["before", "imported"]
    );
    d.stop().await;

    // The index the daemon left is current: the next one-shot search has nothing to
    // catch up on.
    let stats =
        convos::search::SearchIndex::peek(&convos::search::index_dir(&loaded.paths.data_dir))
            .expect("peek")
            .expect("an index");
    let archive =
        Archive::open(&loaded.paths.archive_dir, &OpenOptions::default()).expect("archive");
    assert_eq!(stats.mark, Some(archive.last_change_seq().expect("feed")));
}
