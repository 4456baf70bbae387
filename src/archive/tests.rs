use super::*;

fn conv(id: &str, update: f64, nodes: &[&str]) -> RawConversation {
    let mut mapping = String::new();
    let mut parent = "null".to_string();
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            mapping.push(',');
        }
        mapping.push_str(&format!(
            r#""{n}":{{"id":"{n}","parent":{parent},"message":{{"create_time":{i},"content":{{"content_type":"text","parts":["{n}"]}}}}}}"#
        ));
        parent = format!("\"{n}\"");
    }
    let json = format!(
        r#"{{"conversation_id":"{id}","title":"T {id}","update_time":{update},"create_time":1,"mapping":{{{mapping}}},"unknown_key":[1,{{"x":null}}]}}"#
    );
    RawConversation::from_bytes(json.into_bytes()).expect("valid")
}

#[test]
fn upsert_rules() {
    let a = Archive::temporary().expect("archive");
    assert_eq!(
        a.upsert(conv("c", 10.0, &["r", "u1"])).expect("ok"),
        Outcome::New
    );
    assert_eq!(
        a.upsert(conv("c", 10.0, &["r", "u1", "zz"])).expect("ok"),
        Outcome::Unchanged
    );
    // Newer version without u1: it is kept as a retained node.
    assert_eq!(
        a.upsert(conv("c", 20.0, &["r", "u2"])).expect("ok"),
        Outcome::Updated
    );
    let stored = a.get("c").expect("get").expect("present");
    assert_eq!(stored.record.summary.update_time, Some(20.0));
    assert_eq!(stored.record.node_count, 3);
    let parsed = stored.parse().expect("parse");
    let keys: Vec<&str> = parsed.nodes().iter().map(|n| n.key.as_ref()).collect();
    assert_eq!(keys, ["r", "u2", "u1"]);
    // An older version adds only nodes never seen.
    assert_eq!(
        a.upsert(conv("c", 5.0, &["r", "old"])).expect("ok"),
        Outcome::Updated
    );
    assert_eq!(
        a.upsert(conv("c", 5.0, &["r", "old"])).expect("ok"),
        Outcome::Unchanged
    );
    let stored = a.get("c").expect("get").expect("present");
    assert_eq!(stored.record.summary.update_time, Some(20.0));
    assert_eq!(stored.record.node_count, 4);
}

#[test]
fn stored_raw_equals_input() {
    let a = Archive::temporary().expect("archive");
    let c = conv("rt", 1.0, &["a", "b"]);
    let input = c.bytes().to_vec();
    a.upsert(c).expect("upsert");
    assert_eq!(a.get("rt").expect("get").expect("present").raw, input);
}

#[test]
fn listing_is_newest_first_through_the_index() {
    let a = Archive::temporary().expect("archive");
    a.upsert(conv("old", 100.0, &["r"])).expect("ok");
    a.upsert(conv("new", 300.0, &["r"])).expect("ok");
    a.upsert(conv("mid", 200.0, &["r"])).expect("ok");
    a.upsert(conv("old", 400.0, &["r"])).expect("ok");
    let ids: Vec<String> = a
        .iter_newest_first()
        .map(|r| r.expect("record").summary.id)
        .collect();
    assert_eq!(ids, ["old", "new", "mid"]);
    assert_eq!(a.len(), 3);
    assert_eq!(a.ids_with_prefix("m", 5).expect("ids"), ["mid"]);
}

#[test]
fn files_state_and_imports() {
    let a = Archive::temporary().expect("archive");
    let r = a
        .store_file("file-1", Some("a.png"), Some("image/png"), &b"png!"[..])
        .expect("store");
    assert_eq!(r.size, 4);
    assert!(a.blob_path(&r.sha256).is_file());
    assert_eq!(a.file("file-1").expect("file"), Some(r));
    a.set_state("frontier", &42u32).expect("state");
    assert_eq!(a.state::<u32>("frontier").expect("state"), Some(42));
    assert_eq!(a.state::<u32>("nothing").expect("state"), None);
    let rec = ImportRecord {
        path: "x.zip".into(),
        new: 1,
        ..Default::default()
    };
    a.record_import("abc", &rec).expect("record");
    assert_eq!(a.import_record("abc").expect("rec"), Some(rec));
}

#[test]
fn second_opener_gets_a_clear_lock_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Archive::open(dir.path(), &OpenOptions::default()).expect("open");
    // sled locks per process with flock, so a second open in-process also conflicts.
    let second = Archive::open(dir.path(), &OpenOptions::default());
    match second {
        Err(ArchiveError::Locked(p)) => assert!(p.ends_with("db")),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let a = Archive::open(dir.path(), &OpenOptions::default()).expect("open");
        a.db.insert(schema::SCHEMA_KEY, &b"99"[..]).expect("insert");
        a.flush().expect("flush");
    }
    match Archive::open(dir.path(), &OpenOptions::default()) {
        Err(ArchiveError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn file_links_and_missing_files() {
    let a = Archive::temporary().expect("archive");
    let json = r#"{"id":"img","update_time":1,"mapping":{"u":{"message":{"content":{"content_type":"multimodal_text","parts":[{"content_type":"image_asset_pointer","asset_pointer":"sediment://file_abc"}]}}}}}"#;
    a.upsert(RawConversation::from_bytes(json.as_bytes().to_vec()).expect("ok"))
        .expect("upsert");
    assert_eq!(a.conversation_files("img").expect("files"), ["file_abc"]);
    assert_eq!(
        a.missing_files().expect("missing"),
        [("img".to_string(), "file_abc".to_string())]
    );
    a.store_file("file_abc", None, None, &b"x"[..])
        .expect("store");
    assert!(a.missing_files().expect("missing").is_empty());
}

#[test]
fn counts_come_from_the_index_and_follow_the_deleted_flag() {
    let a = Archive::temporary().expect("archive");
    a.upsert(conv("x", 1.0, &["r", "u1", "u2"])).expect("ok");
    a.upsert(conv("y", 2.0, &["r", "u1"])).expect("ok");
    let c = a.counts().expect("counts");
    assert_eq!((c.conversations, c.messages, c.deleted_remotely), (2, 5, 0));
    assert!(
        a.update_remote("x", |r| r.deleted_remotely = true)
            .expect("update")
    );
    assert_eq!(a.counts().expect("counts").deleted_remotely, 1);
    a.upsert(conv("x", 3.0, &["r", "u1", "u2", "u3"]))
        .expect("ok");
    let c = a.counts().expect("counts");
    assert_eq!(
        (c.conversations, c.messages, c.deleted_remotely),
        (2, 6, 1),
        "a new version keeps the flag"
    );
    assert_eq!(a.iter_newest_first().count(), 2, "no stale index entry");
    assert!(
        !a.update_remote("nope", |r| r.deleted_remotely = true)
            .expect("update")
    );
}

/// The running totals stay equal to a count from the records through every kind of
/// write: new conversations, newer, older and equal versions, groups, the deleted flag,
/// new and repeated attachments (a seeded pseudo-random sequence of 400 writes).
#[test]
fn running_totals_stay_equal_to_a_count_from_the_records() {
    let a = Archive::temporary().expect("archive");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let nodes = |k: u64| -> Vec<String> { (0..=k).map(|i| format!("n{i}")).collect() };
    for step in 0..400 {
        let id = format!("c{}", next(30));
        let time = next(50) as f64;
        let ns = nodes(next(5));
        let ns: Vec<&str> = ns.iter().map(String::as_str).collect();
        match next(5) {
            0 | 1 => {
                a.upsert(conv(&id, time, &ns)).expect("upsert");
            }
            2 => {
                let group = (0..3)
                    .map(|i| {
                        let id = format!("c{}", next(30) + i);
                        Prepared::from(conv(&id, next(50) as f64, &ns))
                    })
                    .collect();
                for r in a.upsert_many(group) {
                    r.expect("upsert_many");
                }
            }
            3 => {
                let deleted = next(2) == 0;
                a.update_remote(&id, |r| r.deleted_remotely = deleted)
                    .expect("update_remote");
            }
            _ => {
                let file = format!("file-{}", next(10));
                a.store_file(
                    &file,
                    None,
                    None,
                    &format!("bytes {}", next(3)).into_bytes()[..],
                )
                .expect("store_file");
            }
        }
        let walked = a.count_by_walk().expect("walk");
        assert_eq!(a.counts().expect("counts"), walked, "after step {step}");
        assert_eq!(walked.attachments, a.files.len() as u64);
    }
    assert!(a.counts().expect("counts").conversations > 10);
}

/// An archive written before the totals (no key) counts once on first use, then keeps
/// them; an unreadable value is counted again; the totals survive reopening.
#[test]
fn totals_are_counted_once_in_an_older_archive_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let a = Archive::open(dir.path(), &OpenOptions::default()).expect("open");
        a.upsert(conv("x", 1.0, &["r", "u1", "u2"])).expect("ok");
        a.store_file("file-1", None, None, &b"x"[..]).expect("file");
        // As written by a build before the totals.
        a.totals.remove(totals::KEY).expect("remove");
        a.upsert(conv("y", 2.0, &["r", "u1"])).expect("ok");
        assert!(a.totals.get(totals::KEY).expect("get").is_none());
        let c = a.counts().expect("counts");
        assert_eq!((c.conversations, c.messages, c.attachments), (2, 5, 1));
        assert!(a.totals.get(totals::KEY).expect("get").is_some(), "stored");
        a.upsert(conv("z", 3.0, &["r"])).expect("ok");
        assert_eq!(
            a.counts().expect("counts"),
            a.count_by_walk().expect("walk")
        );
        a.totals
            .insert(totals::KEY, &b"garbage"[..])
            .expect("insert");
        a.upsert(conv("w", 4.0, &["r"])).expect("ok");
        assert_eq!(a.counts().expect("counts").conversations, 4);
        a.flush().expect("flush");
    }
    let a = Archive::open(dir.path(), &OpenOptions::default()).expect("reopen");
    assert_eq!(a.len(), 4);
    assert_eq!(
        a.counts().expect("counts"),
        a.count_by_walk().expect("walk")
    );
}

/// A conversation handed over uncompressed (an import's large ones) is compressed when
/// stored, and reads back verbatim; the same again is unchanged.
#[test]
fn unpacked_conversations_are_compressed_when_stored() {
    let a = Archive::temporary().expect("archive");
    let c = conv("big", 1.0, &["r", "u1", "u2"]);
    let bytes = c.bytes().to_vec();
    let outcomes = a.upsert_many(vec![
        Prepared::unpacked(c),
        Prepared::unpacked(conv("other", 2.0, &["r"])),
    ]);
    assert!(matches!(outcomes[..], [Ok(Outcome::New), Ok(Outcome::New)]));
    assert_eq!(a.get("big").expect("get").expect("stored").raw, bytes);
    let again = a.upsert_many(vec![Prepared::unpacked(conv(
        "big",
        1.0,
        &["r", "u1", "u2"],
    ))]);
    assert!(matches!(again[..], [Ok(Outcome::Unchanged)]));
}

fn feed(a: &Archive, after: u64) -> Vec<(u64, String)> {
    a.changes_since(after).map(|r| r.expect("feed")).collect()
}

fn ids(entries: &[(u64, String)]) -> Vec<&str> {
    entries.iter().map(|(_, id)| id.as_str()).collect()
}

#[test]
fn every_visible_write_moves_the_conversation_up_the_change_feed() {
    let a = Archive::temporary().expect("archive");
    assert_eq!(a.last_change_seq().expect("seq"), 0);
    a.upsert(conv("a", 10.0, &["r"])).expect("a");
    a.upsert(conv("b", 10.0, &["r"])).expect("b");
    let start = feed(&a, 0);
    assert_eq!(ids(&start), ["a", "b"]);
    let mark = a.last_change_seq().expect("seq");
    assert_eq!(mark, start[1].0);

    // Nothing written: nothing in the feed.
    a.upsert(conv("a", 10.0, &["r"])).expect("same");
    assert!(feed(&a, mark).is_empty());
    // The listing time alone shows nowhere.
    assert!(
        a.update_remote("a", |r| r.remote.list_update_time = Some(99.0))
            .expect("list time")
    );
    assert!(feed(&a, mark).is_empty());
    assert_eq!(
        a.record("a")
            .expect("a")
            .expect("a")
            .remote
            .list_update_time,
        Some(99.0)
    );

    // A newer version, a flag and an older version's new nodes all count; each
    // conversation appears once, at its latest change.
    a.upsert(conv("a", 20.0, &["r", "x"])).expect("newer");
    a.update_remote("b", |r| r.remote.is_archived = Some(true))
        .expect("flag");
    a.upsert(conv("a", 5.0, &["r", "old"])).expect("older");
    let after = feed(&a, mark);
    assert_eq!(ids(&after), ["b", "a"]);
    assert!(after[0].0 < after[1].0);
    assert_eq!(
        a.record("a").expect("a").expect("a").change_seq,
        after[1].0,
        "the record knows its entry"
    );
    assert_eq!(ids(&feed(&a, 0)), ["b", "a"], "old entries are gone");
}

#[test]
fn a_stored_attachment_moves_the_conversations_showing_it() {
    let a = Archive::temporary().expect("archive");
    let json = r#"{"conversation_id":"f","update_time":3,"mapping":{"r":{"id":"r","message":{"content":{"content_type":"multimodal_text","parts":[{"content_type":"image_asset_pointer","asset_pointer":"file-service://file-abc"}]}}}}}"#;
    a.upsert(RawConversation::from_bytes(json.as_bytes().to_vec()).expect("conv"))
        .expect("upsert");
    a.upsert(conv("other", 1.0, &["r"])).expect("other");
    assert_eq!(a.file_conversations("file-abc").expect("links"), ["f"]);
    let mark = a.last_change_seq().expect("seq");
    a.store_file("file-abc", Some("x.png"), Some("image/png"), &b"png"[..])
        .expect("store");
    assert_eq!(ids(&feed(&a, mark)), ["f"]);
    // The same bytes again change nothing.
    let mark = a.last_change_seq().expect("seq");
    a.store_file("file-abc", None, None, &b"png"[..])
        .expect("store again");
    assert!(feed(&a, mark).is_empty());
}

#[test]
fn subscribers_hear_of_each_write_and_the_feed_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let first = {
        let a = Archive::open(dir.path(), &OpenOptions::default()).expect("open");
        let mut rx = a.subscribe_changes();
        assert_eq!(*rx.borrow_and_update(), 0);
        a.upsert(conv("a", 1.0, &["r"])).expect("a");
        assert!(rx.has_changed().expect("sender alive"));
        let seen = *rx.borrow_and_update();
        assert_eq!(seen, a.last_change_seq().expect("seq"));
        a.flush().expect("flush");
        seen
    };
    let a = Archive::open(dir.path(), &OpenOptions::default()).expect("reopen");
    assert_eq!(*a.subscribe_changes().borrow(), first);
    a.upsert(conv("b", 1.0, &["r"])).expect("b");
    let after = feed(&a, first);
    assert_eq!(ids(&after), ["b"]);
    assert!(after[0].0 > first, "numbers keep growing across a restart");
}

#[test]
fn an_equal_version_adds_the_top_level_keys_the_stored_copy_lacks_and_moves_the_feed() {
    let a = Archive::temporary().expect("archive");
    // As a batch answer sends it: `id`, no `default_model_slug`.
    let batch = br#"{"id":"k","title":"T","update_time":10.0,"mapping":{"r":{"id":"r","parent":null,"message":{"author":{"role":"assistant"},"metadata":{"model_slug":"gpt-4o"},"content":{"content_type":"text","parts":["hi"]}}}},"current_node":"r"}"#;
    assert_eq!(
        a.upsert(RawConversation::from_bytes(batch.to_vec()).expect("valid"))
            .expect("ok"),
        Outcome::New
    );
    assert_eq!(
        a.record("k").unwrap().unwrap().summary.model.as_deref(),
        Some("gpt-4o")
    );
    let mark = a.last_change_seq().expect("seq");
    // The detail of the same version: `conversation_id` and `default_model_slug` more.
    let detail = br#"{"conversation_id":"k","id":"k","title":"T2","update_time":10.0,"default_model_slug":"gpt-5","mapping":{"r":{"id":"r","parent":null,"message":null}},"current_node":"r"}"#;
    assert_eq!(
        a.upsert(RawConversation::from_bytes(detail.to_vec()).expect("valid"))
            .expect("ok"),
        Outcome::Updated
    );
    let stored = a.get("k").expect("get").expect("present");
    let v: serde_json::Value = serde_json::from_slice(&stored.raw).expect("json");
    assert_eq!(v["default_model_slug"], "gpt-5");
    assert_eq!(v["conversation_id"], "k");
    // What the stored copy had stays as it was (title, mapping).
    assert_eq!(v["title"], "T");
    assert!(v["mapping"]["r"]["message"].is_object());
    assert!(stored.raw.starts_with(&batch[..batch.len() - 1]));
    assert_eq!(stored.record.summary.model.as_deref(), Some("gpt-5"));
    assert_eq!(
        ids(&feed(&a, mark)),
        ["k"],
        "readers catch up with the added keys"
    );
    // Again: nothing left to add, nothing written, no feed entry.
    let mark = a.last_change_seq().expect("seq");
    assert_eq!(
        a.upsert(RawConversation::from_bytes(detail.to_vec()).expect("valid"))
            .expect("ok"),
        Outcome::Unchanged
    );
    assert_eq!(a.last_change_seq().expect("seq"), mark);
}

/// A stored conversation: raw JSON, retained nodes, node count, change-feed position.
type Contents = (Vec<u8>, Option<Vec<u8>>, u32, u64);

/// What an archive holds for each id.
fn contents(a: &Archive, ids: &[&str]) -> Vec<Contents> {
    ids.iter()
        .map(|id| {
            let s = a.get(id).expect("get").expect("present");
            (s.raw, s.extra, s.record.node_count, s.record.change_seq)
        })
        .collect()
}

#[test]
fn upsert_many_is_upsert_in_order_in_one_transaction() {
    let versions = || {
        vec![
            conv("c", 10.0, &["r", "u1"]),
            conv("c", 10.0, &["r", "u1", "zz"]),
            conv("c", 20.0, &["r", "u2"]),
            conv("d", 1.0, &["r"]),
            conv("c", 5.0, &["r", "old"]),
            conv("c", 5.0, &["r", "old"]),
        ]
    };
    let one_by_one = Archive::temporary().expect("archive");
    let expected: Vec<Outcome> = versions()
        .into_iter()
        .map(|c| one_by_one.upsert(c).expect("upsert"))
        .collect();
    let grouped = Archive::temporary().expect("archive");
    let mut feed = grouped.subscribe_changes();
    let outcomes: Vec<Outcome> = grouped
        .upsert_many(versions().into_iter().map(Prepared::from).collect())
        .into_iter()
        .map(|o| o.expect("stored"))
        .collect();
    use Outcome::*;
    assert_eq!(expected, [New, Unchanged, Updated, New, Updated, Unchanged]);
    assert_eq!(outcomes, expected);
    assert_eq!(
        contents(&grouped, &["c", "d"]),
        contents(&one_by_one, &["c", "d"])
    );
    let changes: Vec<(u64, String)> = grouped.changes_since(0).map(|c| c.expect("feed")).collect();
    let one: Vec<(u64, String)> = one_by_one
        .changes_since(0)
        .map(|c| c.expect("feed"))
        .collect();
    assert_eq!(
        changes, one,
        "the same feed: each conversation once, at its last write"
    );
    assert!(feed.has_changed().expect("sender alive"));
    assert_eq!(
        *feed.borrow_and_update(),
        grouped.last_change_seq().expect("seq")
    );
}

#[test]
fn upsert_many_fails_only_the_conversation_that_cannot_be_stored() {
    let a = Archive::temporary().expect("archive");
    a.upsert(conv("broken", 1.0, &["r"])).expect("upsert");
    // A stored document whose chunk is gone cannot be merged with a newer version.
    a.raw
        .remove(schema::chunk_key("broken", 0))
        .expect("remove");
    let results = a.upsert_many(
        [
            conv("fine-1", 1.0, &["r"]),
            conv("broken", 2.0, &["r", "x"]),
            conv("fine-2", 1.0, &["r"]),
        ]
        .into_iter()
        .map(Prepared::from)
        .collect(),
    );
    assert!(matches!(results[0], Ok(Outcome::New)), "{results:?}");
    assert!(
        matches!(&results[1], Err(ArchiveError::Corrupt(id)) if id == "broken"),
        "{results:?}"
    );
    assert!(matches!(results[2], Ok(Outcome::New)), "{results:?}");
    assert!(a.get("fine-2").expect("get").is_some());
}
