use super::tree::Tree;
use super::*;

fn conv(json: &str) -> Conversation<'_> {
    Conversation::parse(json.as_bytes(), None).expect("parses")
}

fn branch_keys(c: &Conversation<'_>) -> Vec<String> {
    let nodes = c.nodes();
    c.active_branch()
        .into_iter()
        .map(|i| nodes[i].key.to_string())
        .collect()
}

#[test]
fn active_branch_follows_current_node() {
    let c = conv(
        r#"{"id":"c","mapping":{
        "r":{"id":"r","message":null,"parent":null,"children":["a","b"]},
        "a":{"id":"a","parent":"r","children":[],"message":{"create_time":5,"content":{"content_type":"text","parts":["A"]}}},
        "b":{"id":"b","parent":"r","children":[],"message":{"create_time":1,"content":{"content_type":"text","parts":["B"]}}}
        },"current_node":"b"}"#,
    );
    assert_eq!(branch_keys(&c), ["r", "b"]);
}

#[test]
fn missing_current_node_falls_back_to_newest_leaf() {
    let c = conv(
        r#"{"id":"c","current_node":"gone","mapping":{
        "a":{"parent":"outside","children":["b","c","zzz"]},
        "b":{"parent":"a","message":{"create_time":null}},
        "c":{"parent":"a","message":{"create_time":3}},
        "d":{"parent":"a","message":{"create_time":3}}
        }}"#,
    );
    // c and d tie on time: the first in mapping order wins; a's parent is outside.
    assert_eq!(branch_keys(&c), ["a", "c"]);
}

#[test]
fn slim_exports_link_children_through_parent() {
    let c = conv(
        r#"{"id":"c","mapping":{
        "r":{"id":"r","message":null,"parent":null},
        "u":{"id":"u","parent":"r","message":{"create_time":1,"author":{"role":"user"}}},
        "x":{"id":"x","parent":"u","message":{"create_time":2,"author":{"role":"assistant"}}}
        }}"#,
    );
    assert_eq!(branch_keys(&c), ["r", "u", "x"]);
    assert_eq!(c.tree().leaves(), vec![2]);
}

#[test]
fn cycles_terminate() {
    let c = conv(
        r#"{"id":"c","current_node":"a","mapping":{
        "a":{"parent":"b","children":["b"]},
        "b":{"parent":"a","children":["a"]}}}"#,
    );
    assert_eq!(branch_keys(&c), ["b", "a"]);
    let c = conv(r#"{"id":"c","mapping":{"a":{"parent":"a","children":["a"]}}}"#);
    assert_eq!(branch_keys(&c), ["a"]);
}

#[test]
fn deep_linear_tree_does_not_recurse() {
    let n = 50_000;
    let mut s = String::from(r#"{"id":"deep","mapping":{"n0":{"parent":null}"#);
    for i in 1..n {
        s.push_str(&format!(
            r#","n{i}":{{"parent":"n{}","message":{{"create_time":{i},"content":{{"content_type":"text","parts":["m{i}"]}}}}}}"#,
            i - 1
        ));
    }
    s.push_str("}}");
    let c = conv(&s);
    assert_eq!(c.active_branch().len(), n);
    assert_eq!(c.summary().expect("summary").message_count as usize, n - 1);
}

/// Runs `f` on its own thread and fails the test if it has not finished in `limit`: a
/// backstop for work that must be linear (a quadratic build of the same input takes
/// minutes); the assertions themselves are about results, not time.
fn finishes_within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("finished (a quadratic walk over the children takes minutes here)")
}

fn node(key: String, parent: Option<&str>, children: Vec<String>) -> Node<'static> {
    Node {
        key: key.into(),
        message: None,
        parent: parent.map(|p| p.to_owned().into()),
        children: children.into_iter().map(Into::into).collect(),
    }
}

#[test]
fn a_node_with_200000_children_builds_in_linear_time() {
    let n = 200_000;
    let tree_children = finishes_within(std::time::Duration::from_secs(60), move || {
        // The root lists every child (one of them twice, plus itself and an id outside
        // the mapping); each child also names the root as its parent, and a further
        // node is the root's child only through its `parent` link.
        let mut listed: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        listed.push("c7".into());
        listed.push("root".into());
        listed.push("not-in-mapping".into());
        let mut nodes = vec![node("root".into(), None, listed)];
        nodes.extend((0..n).map(|i| node(format!("c{i}"), Some("root"), Vec::new())));
        nodes.push(node("late".into(), Some("root"), Vec::new()));
        let tree = Tree::new(&nodes);
        let root = tree.position("root").expect("root");
        let children = tree.children(root).to_vec();
        assert_eq!(tree.leaves().len(), n + 1);
        assert_eq!(tree.parent(n), Some(root));
        children
    });
    // Listed children once each, in their order, then the one known by its parent.
    assert_eq!(tree_children.len(), n + 1);
    assert!(tree_children[..n].iter().copied().eq(1..=n));
    assert_eq!(tree_children[n], n + 1);
}

#[test]
fn wrong_types_do_not_fail_the_conversation() {
    let c = conv(
        r#"{"conversation_id":7,"title":["x"],"create_time":"2024-01-01T00:00:00","mapping":{
        "r":"not a node","a":{"parent":5,"children":"nope","message":"nope"},
        "b":{"parent":"a","message":{"author":"me","content":[1,2],"metadata":[]}}}}"#,
    );
    let s = c.summary().expect("summary");
    assert_eq!(s.id, "7");
    assert_eq!(s.title, None);
    assert_eq!(s.create_time, Some(1704067200.0));
    assert_eq!(s.node_count, 2);
    assert_eq!(s.message_count, 1);
}

#[test]
fn missing_mapping_and_id_are_reported() {
    let c = conv(r#"{"id":"x","title":"Corrupted entry"}"#);
    assert!(matches!(
        c.summary(),
        Err(ModelError::MissingMapping { .. })
    ));
    let c = conv(r#"{"mapping":{}}"#);
    assert!(matches!(c.summary(), Err(ModelError::MissingId)));
    assert!(matches!(
        Conversation::parse(b"[1,2]", None),
        Err(ModelError::NotAnObject("array"))
    ));
    assert!(matches!(
        Conversation::parse(b"{\"id\":", None),
        Err(ModelError::Syntax(_))
    ));
}

#[test]
fn hidden_messages_and_empty_nodes_are_not_counted() {
    let c = conv(
        r#"{"id":"c","current_node":"u","mapping":{
        "r":{"message":null,"children":["s"]},
        "s":{"parent":"r","children":["u"],"message":{"author":{"role":"system"},"metadata":{"is_visually_hidden_from_conversation":true}}},
        "u":{"parent":"s","message":{"author":{"role":"user"},"metadata":{"model_slug":"gpt-4o"}}}}}"#,
    );
    let s = c.summary().expect("summary");
    assert_eq!(s.message_count, 1);
    assert_eq!(s.model.as_deref(), Some("gpt-4o"));
}

#[test]
fn text_per_content_type() {
    let cases = [
        (r#"{"content_type":"text","parts":["a","b"]}"#, "a\nb"),
        (
            r#"{"content_type":"multimodal_text","parts":[{"content_type":"image_asset_pointer","asset_pointer":"sediment://file_1"},"look",{"content_type":"audio_transcription","text":"hi"}]}"#,
            "look\nhi",
        ),
        (
            r#"{"content_type":"code","language":"python","text":"print(1)"}"#,
            "print(1)",
        ),
        (r#"{"content_type":"execution_output","text":"1"}"#, "1"),
        (
            r#"{"content_type":"tether_quote","url":"u","text":"q"}"#,
            "q",
        ),
        (r#"{"content_type":"sonic_webpage","text":"page"}"#, "page"),
        (
            r#"{"content_type":"system_error","name":"x","text":"boom"}"#,
            "boom",
        ),
        (
            r#"{"content_type":"tether_browsing_display","result":"res","summary":null}"#,
            "res",
        ),
        (
            r#"{"content_type":"thoughts","thoughts":[{"summary":"s","content":"one"},{"content":"two"}]}"#,
            "one\n\ntwo",
        ),
        (
            r#"{"content_type":"reasoning_recap","content":"Thought for 7s"}"#,
            "Thought for 7s",
        ),
        (
            r#"{"content_type":"user_editable_context","user_profile":"p"}"#,
            "",
        ),
        (r#"{"content_type":"brand_new","text":"ignored"}"#, ""),
    ];
    for (json, want) in cases {
        let content: content::Content<'_> = serde_json::from_str(json).expect(json);
        assert_eq!(content.text(), want, "{json}");
    }
}

#[test]
fn attachments_merge_parts_and_metadata() {
    let c = conv(
        r#"{"id":"c","mapping":{"u":{"message":{
        "content":{"content_type":"multimodal_text","parts":[
            {"content_type":"image_asset_pointer","asset_pointer":"file-service://file-one"},
            {"content_type":"real_time_user_audio_video_asset_pointer","audio_asset_pointer":{"content_type":"audio_asset_pointer","asset_pointer":"sediment://file_aud","format":"wav"},"video_container_asset_pointer":null,"frames_asset_pointers":[]},
            "text"]},
        "metadata":{"attachments":[{"id":"file-one","name":"first.jpg","mime_type":"image/jpeg"},{"id":"file-doc","name":"a.pdf","mime_type":"application/pdf"}],
                    "aggregate_result":{"messages":[{"image_url":"file-service://file-plot"}]}}}}}}"#,
    );
    let m = c.nodes()[0].message.as_ref().expect("message");
    let atts = content::attachments(&m.content(), &m.meta());
    let ids: Vec<&str> = atts.iter().map(|a| a.file_id.as_str()).collect();
    assert_eq!(ids, ["file-one", "file_aud", "file-doc"]);
    assert_eq!(atts[0].name.as_deref(), Some("first.jpg"));
    assert_eq!(atts[1].mime_type.as_deref(), Some("audio/wav"));
    let all: Vec<String> = c.file_ids().into_iter().collect();
    assert_eq!(all, ["file-doc", "file-one", "file-plot", "file_aud"]);
}

#[test]
fn extra_nodes_are_appended_when_new() {
    let raw = br#"{"id":"c","current_node":"a","mapping":{"a":{"parent":null}}}"#;
    let extra = br#"{"a":{"parent":"zzz"},"old":{"parent":"a","message":{"create_time":1}}}"#;
    let c = Conversation::parse(raw, Some(extra)).expect("parses");
    let keys: Vec<&str> = c.nodes().iter().map(|n| n.key.as_ref()).collect();
    assert_eq!(keys, ["a", "old"]);
    assert!(c.nodes()[0].parent.is_none());
}

#[test]
fn invalid_utf8_is_repaired_and_flagged() {
    let mut bytes = br#"{"id":"c","title":"caf"#.to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(br#"","mapping":{}}"#);
    let raw = RawConversation::from_bytes(bytes).expect("repaired");
    assert!(raw.repaired_utf8());
    assert_eq!(raw.summary().title.as_deref(), Some("caf\u{FFFD}"));
}

#[test]
fn a_missing_mapping_error_shows_the_title_decoded_on_one_line() {
    let c = conv(r#"{"id":"x","title":"LCP\u6307\u6807\n\u001b[2Jnext"}"#);
    let e = c.summary().expect_err("no mapping");
    assert_eq!(
        e.to_string(),
        "conversation x (\"LCP指标 [2Jnext\") has no `mapping` (message tree); it cannot be archived"
    );
}

#[test]
fn gizmo_falls_back_to_the_template_id() {
    let c = conv(
        r#"{"id":"a","mapping":{},"gizmo_id":null,"conversation_template_id":"g-p-0123abcd","gizmo_type":"snorlax"}"#,
    );
    assert_eq!(c.gizmo(), Some("g-p-0123abcd"));
    assert_eq!(
        c.summary().expect("summary").gizmo_id.as_deref(),
        Some("g-p-0123abcd")
    );
    let gpt = conv(
        r#"{"id":"b","mapping":{},"conversation_template_id":"g-Ab12Cd34E","gizmo_type":"gpt"}"#,
    );
    assert_eq!(gpt.gizmo(), Some("g-Ab12Cd34E"));
    // gizmo_id wins; a template id that names no gizmo is not one.
    let both = conv(
        r#"{"id":"c","mapping":{},"gizmo_id":"g-p-real","conversation_template_id":"g-other"}"#,
    );
    assert_eq!(both.gizmo(), Some("g-p-real"));
    let odd = conv(r#"{"id":"d","mapping":{},"conversation_template_id":"tmpl-1"}"#);
    assert_eq!(odd.gizmo(), None);
}
