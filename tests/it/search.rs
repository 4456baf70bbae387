//! The search index (`convos::search`) against a real archive: ranking, syntax, filters,
//! branches, hidden messages, tokenisation, and an index that heals itself (deleted,
//! damaged, from a newer schema, or behind the archive after a crash).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use convos::archive::{Archive, ArchiveError};
use convos::model::RawConversation;
use convos::search::{
    ChangeFeed, Filters, Hit, IndexOptions, Indexer, NoFeed, Opened, Query, QueryError, Role,
    SearchError, SearchIndex, SearchRequest, Stage,
};
use serde_json::{Value, json};

use crate::support::fixtures::{ConvBuilder, all_content_types_conversation};

/// An in-memory change feed, as the archive will keep one: each conversation at its
/// latest sequence number.
#[derive(Default)]
struct Feed(Mutex<Vec<(u64, String)>>);

impl Feed {
    fn record(&self, id: &str) {
        let mut v = self.0.lock().expect("feed");
        let next = v.last().map_or(1, |(s, _)| s + 1);
        v.retain(|(_, i)| i != id);
        v.push((next, id.to_owned()));
    }
}

impl ChangeFeed for Feed {
    fn last_seq(&self) -> Result<u64, ArchiveError> {
        Ok(self.0.lock().expect("feed").last().map_or(0, |(s, _)| *s))
    }
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, ArchiveError> {
        Ok(self
            .0
            .lock()
            .expect("feed")
            .iter()
            .filter(|(s, _)| *s > after)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// An archive, its feed, and an index directory.
struct Env {
    archive: Archive,
    feed: Feed,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            archive: Archive::temporary().expect("archive"),
            feed: Feed::default(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn index_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("index")
    }

    /// Stores a conversation and records it in the feed (what `upsert` will do).
    fn put(&self, conv: &Value) -> String {
        let raw = RawConversation::from_bytes(serde_json::to_vec(conv).expect("json"))
            .expect("conversation");
        let id = raw.id().to_owned();
        self.archive.upsert(raw).expect("upsert");
        self.feed.record(&id);
        id
    }

    fn open(&self) -> SearchIndex {
        SearchIndex::open(&self.index_dir(), IndexOptions::default()).expect("open index")
    }

    /// Opens the index and catches it up with the archive.
    fn index(&self) -> SearchIndex {
        let index = self.open();
        self.catch_up(&index);
        index
    }

    fn catch_up(&self, index: &SearchIndex) {
        index
            .catch_up(
                &self.archive,
                &self.feed,
                &mut |_| {},
                &AtomicBool::new(false),
            )
            .expect("catch up");
    }
}

fn search(env: &Env, index: &SearchIndex, q: &str, filters: Filters) -> Vec<Hit> {
    index
        .search(
            &env.archive,
            &SearchRequest {
                query: Query::parse(q).expect("query"),
                filters,
                limit: 20,
            },
        )
        .expect("search")
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
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

const FILLER: &str = "Some notes on the garden, the weather this week, and what to cook for dinner \
                      tonight with friends who are visiting from out of town.";

#[test]
fn a_repeated_phrase_ranks_above_its_words_scattered() {
    let env = Env::new();
    // Same words, same counts, same length: only their adjacency differs. The
    // scattered one sorts first by id, so a tie would put it first.
    env.put(&conv(
        "b-phrase",
        "Notes",
        &[(
            "assistant",
            &format!(
                "quantum banana one two three. {FILLER} quantum banana four five six. {FILLER} \
                 quantum banana seven eight nine."
            ),
        )],
    ));
    env.put(&conv(
        "a-scattered",
        "Notes",
        &[(
            "assistant",
            &format!(
                "quantum one two three banana. {FILLER} quantum four five six banana. {FILLER} \
                 quantum seven eight nine banana."
            ),
        )],
    ));
    env.put(&conv("c-other", "Notes", &[("user", FILLER)]));
    let index = env.index();
    let hits = search(&env, &index, "quantum banana", Filters::default());
    assert_eq!(ids(&hits), ["b-phrase", "a-scattered"]);
    assert!(hits[0].score > hits[1].score);
}

#[test]
fn a_title_match_ranks_above_a_message_match() {
    let env = Env::new();
    // By BM25 alone the message that says it three times scores higher than the short
    // title that says it once; the title boost turns that around.
    env.put(&conv(
        "a-body",
        "Weekend plans",
        &[("user", &format!("{FILLER} axolotl axolotl axolotl"))],
    ));
    env.put(&conv(
        "b-title",
        "Axolotl care",
        &[("user", &format!("{FILLER} my pet lizard"))],
    ));
    let index = env.index();
    let hits = search(&env, &index, "axolotl", Filters::default());
    assert_eq!(ids(&hits), ["b-title", "a-body"]);
    // A title match still shows the message that carried it.
    assert!(hits[0].snippet.starts_with("Some notes"), "{:?}", hits[0]);
    assert!(hits[0].highlights.is_empty());
}

#[test]
fn boosts_reach_beyond_the_best_hundred_by_text() {
    let env = Env::new();
    // 120 short messages say it once: by the message text alone they all beat the
    // long message below, which a title match must still lift to the top. And one
    // of the short ones holds the two words together.
    for i in 0..120 {
        env.put(&conv(
            &format!("short-{i:03}"),
            "Misc",
            &[("user", &format!("a heron in the big green pond {i}"))],
        ));
    }
    env.put(&conv(
        "titled",
        "Heron pond",
        &[(
            "user",
            &format!("{FILLER} {FILLER} {FILLER} {FILLER} heron, pond"),
        )],
    ));
    env.put(&conv(
        "adjacent",
        "Misc",
        &[("user", "a heron pond in the big green 0")],
    ));
    let index = env.index();
    let hits = search(&env, &index, "heron pond", Filters::default());
    assert_eq!(ids(&hits)[..2], ["titled", "adjacent"]);
}

#[test]
fn phrases_exclusions_and_prefixes() {
    let env = Env::new();
    env.put(&conv("fox-1", "A", &[("user", "the quick red fox jumps")]));
    env.put(&conv(
        "fox-2",
        "B",
        &[("user", "a fox that is red and quick")],
    ));
    env.put(&conv(
        "fox-3",
        "C",
        &[
            ("user", "the red fox sleeps"),
            ("assistant", "a different message about a badger"),
        ],
    ));
    env.put(&conv(
        "quant",
        "D",
        &[(
            "user",
            "Quantization of weights, and quantum effects in theory",
        )],
    ));
    let index = env.index();
    let all = |q: &str| {
        let mut v: Vec<String> = search(&env, &index, q, Filters::default())
            .into_iter()
            .map(|h| h.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(all("red fox"), ["fox-1", "fox-2", "fox-3"]);
    assert_eq!(all("\"red fox\""), ["fox-1", "fox-3"]);
    assert_eq!(all("\"fox red\""), Vec::<String>::new());
    // Excluded: fox-3 holds "badger" in another message; the whole conversation goes.
    assert_eq!(all("\"red fox\" -badger"), ["fox-1"]);
    assert_eq!(all("fox -\"quick red\""), ["fox-2", "fox-3"]);
    assert_eq!(all("fox -quick"), ["fox-3"]);
    assert_eq!(all("quant*"), ["quant"]);
    assert_eq!(all("QUANTIZ*"), ["quant"]);
    assert_eq!(all("quantiz"), Vec::<String>::new());
    // A stop word as a prefix stem still expands.
    assert_eq!(all("the*"), ["quant"]);
    // A word that splits (here at a hyphen) is a phrase.
    assert_eq!(all("red-fox"), ["fox-1", "fox-3"]);
    // Prefix highlights cover the expanded word.
    let hit = &search(&env, &index, "quant*", Filters::default())[0];
    let shown: Vec<&str> = hit
        .highlights
        .iter()
        .map(|r| &hit.snippet[r.clone()])
        .collect();
    assert_eq!(shown, ["Quantization", "quantum"]);
}

#[test]
fn every_filter_narrows_the_results() {
    let env = Env::new();
    let mut a = ConvBuilder::new("in-2024", "Animals one");
    a.start_time(1_705_000_000) // 2024-01-11
        .model("gpt-4o");
    a.user("Where do walrus live?");
    a.assistant("Walrus live in the Arctic.");
    env.put(&a.build());
    let mut b = ConvBuilder::new("in-2025", "Animals two");
    b.start_time(1_750_000_000) // 2025-06-15
        .model("o3");
    b.user("What do walrus eat?");
    b.execution_output("walrus count: 3", None);
    b.set("is_archived", json!(true));
    env.put(&b.build());
    let mut c = ConvBuilder::new("gone", "Animals three");
    c.start_time(1_760_000_000) // 2025-10-09
        .model("gpt-4o");
    c.assistant("A walrus fact.");
    let gone = env.put(&c.build());
    env.archive
        .update_remote(&gone, |r| {
            r.deleted_remotely = true;
            r.remote.project = Some("Arctic Café".into());
        })
        .expect("update");
    env.feed.record(&gone);
    let index = env.index();
    let found = |f: Filters| {
        let mut v: Vec<String> = search(&env, &index, "walrus", f)
            .into_iter()
            .map(|h| h.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(found(Filters::default()), ["gone", "in-2024", "in-2025"]);
    let role = |r| Filters {
        role: Some(r),
        ..Filters::default()
    };
    assert_eq!(found(role(Role::User)), ["in-2024", "in-2025"]);
    assert_eq!(found(role(Role::Assistant)), ["gone", "in-2024"]);
    assert_eq!(found(role(Role::Tool)), ["in-2025"]);
    let dates =
        |s: Option<&str>, u: Option<&str>| Filters::default().with_dates(s, u).expect("dates");
    assert_eq!(found(dates(Some("2025"), None)), ["gone", "in-2025"]);
    assert_eq!(found(dates(None, Some("2024-12-31"))), ["in-2024"]);
    assert_eq!(
        found(dates(Some("2025-06-15"), Some("2025-06"))),
        ["in-2025"]
    );
    assert_eq!(
        found(dates(Some("2025-06-16"), Some("2025-09"))),
        Vec::<String>::new()
    );
    let project = |p: &str| Filters {
        project: Some(p.into()),
        ..Filters::default()
    };
    assert_eq!(found(project("arctic cafe")), ["gone"]);
    assert_eq!(found(project("Arctic")), Vec::<String>::new());
    let model = |m: &str| Filters {
        model: Some(m.into()),
        ..Filters::default()
    };
    assert_eq!(found(model("GPT-4o")), ["gone", "in-2024"]);
    assert_eq!(found(model("o3")), ["in-2025"]);
    let archived = |a| Filters {
        archived: Some(a),
        ..Filters::default()
    };
    assert_eq!(found(archived(true)), ["in-2025"]);
    assert_eq!(found(archived(false)), ["gone", "in-2024"]);
    let deleted = |d| Filters {
        deleted: Some(d),
        ..Filters::default()
    };
    assert_eq!(found(deleted(true)), ["gone"]);
    assert_eq!(found(deleted(false)), ["in-2024", "in-2025"]);
    // Filters combine.
    assert_eq!(
        found(Filters {
            role: Some(Role::User),
            archived: Some(false),
            ..Filters::default()
        }),
        ["in-2024"]
    );
}

#[test]
fn every_branch_is_searchable_and_marked() {
    let env = Env::new();
    let mut c = ConvBuilder::new("branches", "Trip");
    let q = c.user("Suggest an animal for the logo.");
    let old = c.assistant("A platypus would be memorable.");
    c.branch_from(&q);
    c.assistant("A heron looks elegant.");
    env.put(&c.build());
    let index = env.index();
    let hits = search(&env, &index, "platypus", Filters::default());
    assert_eq!(ids(&hits), ["branches"]);
    assert_eq!(hits[0].node_id.as_deref(), Some(old.as_str()));
    assert!(!hits[0].on_active_branch);
    let hits = search(&env, &index, "heron", Filters::default());
    assert!(hits[0].on_active_branch);
}

#[test]
fn hidden_messages_are_not_found_and_reader_text_is() {
    let env = Env::new();
    let id = env.put(&all_content_types_conversation());
    let mut c = ConvBuilder::new("hidden", "Hidden");
    let n = c.user("visible words");
    c.edit_message(&n, |m| {
        m["metadata"]["is_visually_hidden_from_conversation"] = json!(true);
        m["content"]["parts"] = json!(["zanzibar secret"]);
    });
    c.user("something else");
    env.put(&c.build());
    let index = env.index();
    // Hidden: custom instructions, the hidden system message, the hidden user message.
    for q in ["zanzibar", "\"test fixture\"", "\"answer in one line\""] {
        assert!(
            search(&env, &index, q, Filters::default()).is_empty(),
            "{q}"
        );
    }
    // Thought summaries, thoughts, tool output and a quoted page are searchable.
    for q in ["planning", "\"food and the river\"", "porto"] {
        assert_eq!(
            ids(&search(&env, &index, q, Filters::default())),
            [id.as_str()],
            "{q}"
        );
    }
}

#[test]
fn cjk_and_diacritics_are_searchable() {
    let env = Env::new();
    env.put(&conv(
        "ja",
        "旅行",
        &[("user", "東京タワーに行きました。とても高かった。")],
    ));
    env.put(&conv("zh", "问题", &[("user", "我想学习中文和日本語")]));
    env.put(&conv(
        "fr",
        "Dessert",
        &[("user", "Une crème brûlée, s'il vous plaît")],
    ));
    env.put(&conv(
        "de",
        "Reise",
        &[("assistant", "Die Straße nach Köln")],
    ));
    let index = env.index();
    let one = |q: &str| {
        let mut v: Vec<String> = search(&env, &index, q, Filters::default())
            .into_iter()
            .map(|h| h.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(one("東京"), ["ja"]);
    assert_eq!(one("東京タワー"), ["ja"]);
    assert_eq!(one("タワー"), ["ja"]);
    assert_eq!(one("京"), ["ja"]);
    assert_eq!(one("中文"), ["zh"]);
    assert_eq!(one("日本"), ["zh"]);
    assert_eq!(one("日本語"), ["zh"]);
    assert_eq!(one("京都"), Vec::<String>::new());
    assert_eq!(one("creme brulee"), ["fr"]);
    assert_eq!(one("CRÈME"), ["fr"]);
    assert_eq!(one("strasse koln"), ["de"]);
    assert_eq!(one("旅行"), ["ja"]);
    let hit = &search(&env, &index, "タワー", Filters::default())[0];
    let shown: Vec<&str> = hit
        .highlights
        .iter()
        .map(|r| &hit.snippet[r.clone()])
        .collect();
    assert_eq!(shown, ["タワー"]);
}

#[test]
fn one_result_per_conversation_with_snippet_and_json_shape() {
    let env = Env::new();
    let mut c = ConvBuilder::new("many", "Otters");
    for i in 0..12 {
        c.user(&format!("otter question {i}"));
        c.assistant(&format!("An otter answer {i}, otter otter."));
    }
    env.put(&c.build());
    for i in 0..30 {
        env.put(&conv(
            &format!("other-{i:02}"),
            "Misc",
            &[("user", &format!("one otter {i}"))],
        ));
    }
    let index = env.index();
    let req = |limit| SearchRequest {
        query: Query::parse("otter").expect("query"),
        filters: Filters::default(),
        limit,
    };
    let hits = index.search(&env.archive, &req(20)).expect("search");
    assert_eq!(hits.len(), 20);
    let mut seen = std::collections::HashSet::new();
    assert!(hits.iter().all(|h| seen.insert(h.id.clone())));
    assert_eq!(hits[0].id, "many");
    assert_eq!(hits[0].role.as_deref(), Some("assistant"));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(
        index.search(&env.archive, &req(100)).expect("search").len(),
        31
    );
    let top = &hits[0];
    assert!(top.snippet.contains("otter"), "{top:?}");
    assert!(!top.highlights.is_empty());
    assert!(
        top.highlights
            .iter()
            .all(|r| top.snippet[r.clone()].eq_ignore_ascii_case("otter"))
    );
    let v = serde_json::to_value(top).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "id",
        "title",
        "update_time",
        "score",
        "message_id",
        "role",
        "snippet",
    ];
    want.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, want);
    assert_eq!(v["title"], "Otters");
    assert!(v["update_time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(v["message_id"].as_str().is_some());
}

#[test]
fn bad_queries_are_usage_errors() {
    let long = "word ".repeat(300);
    type Check = fn(&QueryError) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("the and of", |e| {
            matches!(e, QueryError::NothingSearchable { .. })
        }),
        ("... !!", |e| {
            matches!(e, QueryError::NothingSearchable { .. })
        }),
        ("   ", |e| matches!(e, QueryError::Empty)),
        ("\"red fox", |e| matches!(e, QueryError::UnbalancedQuote)),
        ("-fox", |e| matches!(e, QueryError::OnlyExclusions)),
        ("red\u{1b}[31m", |e| {
            matches!(e, QueryError::ControlCharacter { at: 4, .. })
        }),
        ("red\nfox", |e| {
            matches!(e, QueryError::ControlCharacter { .. })
        }),
        (long.as_str(), |e| {
            matches!(e, QueryError::TooLong { bytes: 1500 })
        }),
    ];
    for (q, check) in cases {
        let e = Query::parse(q).expect_err(q);
        assert!(check(&e), "{q:?}: {e:?}");
        assert!(SearchError::from(e.clone()).is_usage());
        assert!(!e.to_string().is_empty());
    }
    for bad in [
        "yesterday",
        "2024-13-01",
        "2024-02-30",
        "24-01-01",
        "2024/01/01",
        "",
    ] {
        let e = Filters::default()
            .with_dates(Some(bad), None)
            .expect_err(bad);
        assert!(matches!(e, QueryError::BadDate { .. }), "{bad}: {e:?}");
    }
    let e = Filters::default()
        .with_dates(Some("2025"), Some("2024"))
        .expect_err("empty range");
    assert!(matches!(e, QueryError::EmptyRange { .. }));
    assert!(matches!(
        "robot".parse::<Role>(),
        Err(QueryError::BadRole(_))
    ));
    // The shell removed the quotes: an argument with spaces is a phrase.
    let q = Query::from_args(&["red fox", "-lazy dog", "den"]).expect("args");
    assert_eq!(q.to_string(), "\"red fox\" -\"lazy dog\" den");
}

#[test]
fn updates_replace_a_conversations_documents() {
    let env = Env::new();
    let mut c = ConvBuilder::new("edit", "Edits");
    c.user("first version mentions marmots");
    env.put(&c.build());
    let index = env.index();
    assert_eq!(
        ids(&search(&env, &index, "marmots", Filters::default())),
        ["edit"]
    );
    // A newer version of the same conversation (an added turn, a changed title).
    c.set("title", json!("Renamed"));
    c.assistant("the answer talks about beavers");
    env.put(&c.build());
    env.catch_up(&index);
    let hits = search(&env, &index, "marmots", Filters::default());
    assert_eq!(ids(&hits), ["edit"]);
    assert_eq!(hits[0].title.as_deref(), Some("Renamed"));
    assert_eq!(
        ids(&search(&env, &index, "beavers", Filters::default())),
        ["edit"]
    );
    assert_eq!(index.stats().expect("stats").messages, 2);
    // A conversation the archive no longer has loses its documents.
    let other = Archive::temporary().expect("archive");
    let r = index
        .update(&other, &["edit".to_owned()], None)
        .expect("update");
    assert_eq!(r.missing, 1);
    assert!(search(&env, &index, "beavers", Filters::default()).is_empty());
}

fn write_some(env: &Env) {
    env.put(&conv("one", "Lemurs", &[("user", "lemurs of madagascar")]));
    env.put(&conv("two", "Tapirs", &[("user", "tapirs of brazil")]));
}

#[test]
fn a_deleted_index_is_rebuilt() {
    let env = Env::new();
    write_some(&env);
    drop(env.index());
    std::fs::remove_dir_all(env.index_dir()).expect("delete index");
    let index = env.open();
    assert_eq!(index.opened(), &Opened::Missing);
    assert_eq!(index.mark().expect("mark"), None);
    let mut stages = Vec::new();
    let r = index
        .catch_up(
            &env.archive,
            &env.feed,
            &mut |p| stages.push(p),
            &AtomicBool::new(false),
        )
        .expect("catch up");
    assert!(r.full_build);
    assert_eq!(r.indexed.conversations, 2);
    assert_eq!(r.mark, 2);
    assert_eq!(
        stages.last().map(|p| (p.stage, p.done, p.total)),
        Some((Stage::Build, 2, Some(2)))
    );
    assert_eq!(
        ids(&search(&env, &index, "lemurs", Filters::default())),
        ["one"]
    );
    // The directory stays private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.index_dir())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn a_damaged_index_is_rebuilt() {
    let env = Env::new();
    write_some(&env);
    drop(env.index());
    // Garbage in the commit record.
    std::fs::write(env.index_dir().join("meta.json"), b"{ not json").expect("write");
    let index = env.open();
    assert!(
        matches!(index.opened(), Opened::Damaged(_)),
        "{:?}",
        index.opened()
    );
    env.catch_up(&index);
    assert_eq!(
        ids(&search(&env, &index, "tapirs", Filters::default())),
        ["two"]
    );
    drop(index);
    // A segment file cut short.
    let victim = std::fs::read_dir(env.index_dir())
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "store"))
        .expect("a store file");
    let len = std::fs::metadata(&victim).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .and_then(|f| f.set_len(len / 3))
        .expect("truncate");
    let index = env.open();
    assert!(
        matches!(index.opened(), Opened::Damaged(_)),
        "{:?}",
        index.opened()
    );
    env.catch_up(&index);
    assert_eq!(
        ids(&search(&env, &index, "lemurs", Filters::default())),
        ["one"]
    );
}

/// Commits to the index directly, with the payload a future convos might write.
fn commit_payload(dir: &Path, payload: &str) {
    let index = tantivy::Index::open_in_dir(dir).expect("open");
    let mut w: tantivy::IndexWriter = index.writer(15_000_000).expect("writer");
    let mut p = w.prepare_commit().expect("prepare");
    p.set_payload(payload);
    p.commit().expect("commit");
}

#[test]
fn an_index_from_a_newer_schema_is_rebuilt() {
    let env = Env::new();
    write_some(&env);
    drop(env.index());
    commit_payload(
        &env.index_dir(),
        r#"{"schema": 999, "writer": "9.9.9", "mark": 5, "new_field": true}"#,
    );
    let index = env.open();
    assert_eq!(
        index.opened(),
        &Opened::Newer {
            schema: 999,
            writer: "9.9.9".into()
        }
    );
    env.catch_up(&index);
    assert_eq!(index.mark().expect("mark"), Some(2));
    assert_eq!(
        ids(&search(&env, &index, "tapirs", Filters::default())),
        ["two"]
    );
    drop(index);
    // And one from an older schema.
    commit_payload(&env.index_dir(), r#"{"schema": 0, "mark": 2}"#);
    let index = env.open();
    assert_eq!(index.opened(), &Opened::Older(0));
    // A current one opens as it is.
    env.catch_up(&index);
    drop(index);
    assert_eq!(env.open().opened(), &Opened::Existing);
}

#[test]
fn a_crash_between_archive_write_and_index_commit_heals() {
    let env = Env::new();
    write_some(&env);
    let index = env.index();
    assert_eq!(index.mark().expect("mark"), Some(2));
    // Archive writes whose index batch never committed: the process "dies" here.
    env.put(&conv("three", "Okapis", &[("user", "okapis of congo")]));
    // A newer version of a conversation the index has.
    let mut newer = ConvBuilder::new("one", "Lemurs");
    newer.start_time(1_900_000_000);
    newer.user("lemurs and sifakas");
    env.put(&newer.build());
    drop(index);
    let index = env.open();
    assert_eq!(index.opened(), &Opened::Existing);
    assert_eq!(index.mark().expect("mark"), Some(2));
    assert!(search(&env, &index, "okapis", Filters::default()).is_empty());
    let r = index
        .catch_up(
            &env.archive,
            &env.feed,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .expect("catch up");
    assert!(!r.full_build);
    assert_eq!(r.indexed.conversations, 2);
    assert_eq!(r.mark, 4);
    assert_eq!(
        ids(&search(&env, &index, "okapis", Filters::default())),
        ["three"]
    );
    assert_eq!(
        ids(&search(&env, &index, "sifakas", Filters::default())),
        ["one"]
    );
    // The mark lives in the commit: it survives reopening.
    drop(index);
    assert_eq!(env.open().mark().expect("mark"), Some(4));
}

#[test]
fn a_cancelled_build_keeps_the_previous_commit() {
    let env = Env::new();
    write_some(&env);
    let index = env.index();
    let cancel = AtomicBool::new(true);
    let e = index
        .rebuild(&env.archive, &env.feed, &mut |_| {}, &cancel)
        .expect_err("cancelled");
    assert!(matches!(e, SearchError::Cancelled));
    assert_eq!(
        ids(&search(&env, &index, "lemurs", Filters::default())),
        ["one"]
    );
    assert_eq!(index.mark().expect("mark"), Some(2));
}

#[test]
fn the_indexer_thread_catches_up_and_lets_go_of_the_writer() {
    let env = Arc::new(Env::new());
    write_some(&env);
    struct Shared(Arc<Env>);
    impl ChangeFeed for Shared {
        fn last_seq(&self) -> Result<u64, ArchiveError> {
            self.0.feed.last_seq()
        }
        fn changes_since(&self, a: u64, l: usize) -> Result<Vec<(u64, String)>, ArchiveError> {
            self.0.feed.changes_since(a, l)
        }
    }
    let index = Arc::new(env.open());
    let indexer = Indexer::start(
        index.clone(),
        env.archive.clone(),
        Arc::new(Shared(env.clone())),
    )
    .expect("start");
    assert!(indexer.wait_idle(Duration::from_secs(30)));
    assert_eq!(indexer.last_error(), None);
    assert_eq!(
        ids(&search(&env, &index, "tapirs", Filters::default())),
        ["two"]
    );
    assert!(!index.holds_writer());
    env.put(&conv("three", "Okapis", &[("user", "okapis of congo")]));
    indexer.poke();
    assert!(indexer.wait_idle(Duration::from_secs(30)));
    assert_eq!(
        ids(&search(&env, &index, "okapis", Filters::default())),
        ["three"]
    );
    assert!(!index.holds_writer());
    assert!(index.holds_reader());
    index.release_reader();
    assert!(!index.holds_reader());
    assert!(indexer.rounds() >= 2);
    indexer.stop();
    // Without a feed, a build still indexes everything.
    let env2 = Env::new();
    write_some(&env2);
    let index2 = SearchIndex::open(&env2.index_dir(), IndexOptions::default()).expect("open");
    index2
        .catch_up(&env2.archive, &NoFeed, &mut |_| {}, &AtomicBool::new(false))
        .expect("build");
    assert_eq!(
        ids(&search(&env2, &index2, "lemurs", Filters::default())),
        ["one"]
    );
}

#[test]
fn a_second_writer_is_busy_not_broken() {
    let env = Env::new();
    write_some(&env);
    let a = env.index();
    assert!(a.holds_writer());
    let b = env.open();
    let e = b
        .update(&env.archive, &["one".to_owned()], None)
        .expect_err("busy");
    assert!(matches!(e, SearchError::Busy(_)), "{e:?}");
    a.release_writer();
    b.update(&env.archive, &["one".to_owned()], None)
        .expect("now free");
}
