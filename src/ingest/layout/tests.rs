use super::*;

struct Files(HashMap<String, Vec<u8>>);

impl SmallFiles for Files {
    fn read_small(&mut self, entry: &Entry) -> Option<Vec<u8>> {
        self.0.get(&entry.name).cloned()
    }
}

fn entries(names: &[&str]) -> Vec<Entry> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Entry {
            name: (*n).to_owned(),
            index: Some(i),
            size: 10,
            compressed: 5,
        })
        .collect()
}

fn names(v: &[Entry]) -> Vec<&str> {
    v.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn single_file_export_with_legacy_assets() {
    let mut files = Files(HashMap::new());
    let l = detect(
        entries(&[
            "conversations.json",
            "user.json",
            "chat.html",
            "message_feedback.json",
            "file-AbC123-photo of me.png",
            "dalle-generations/file-Xy9-1b2c3d4e.webp",
            "user-abc/file_00000000aa11-shot.jpg",
            "3f0c9a1e-uuid/audio/file_00ff-3f0c.wav",
            "__MACOSX/._conversations.json",
            "._conversations.json",
            "textdocs/uuid.json",
        ]),
        &mut files,
    );
    assert_eq!(names(&l.conversations), ["conversations.json"]);
    let ids: Vec<(&str, Option<&str>)> = l
        .assets
        .iter()
        .map(|a| (a.file_id.as_str(), a.name.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("file_00ff", Some("3f0c.wav")),
            ("file-Xy9", Some("1b2c3d4e.webp")),
            ("file-AbC123", Some("photo of me.png")),
            ("file_00000000aa11", Some("shot.jpg")),
        ]
    );
    assert_eq!(l.assets[2].mime_type.as_deref(), Some("image/png"));
}

#[test]
fn sharded_with_manifest_dat_assets_and_a_top_folder() {
    let manifest = br#"{"version":1,"logical_files":{"conversations.json":{"files":["conversations-001.json","conversations-000.json"],"sharded":true}}}"#;
    let names_json =
        br#"{"file-one.dat":"dalle-generations/first.webp","file-two.dat":"second.jpg"}"#;
    let mut files = Files(HashMap::from([
        ("export/export_manifest.json".to_owned(), manifest.to_vec()),
        (
            "export/conversation_asset_file_names.json".to_owned(),
            names_json.to_vec(),
        ),
    ]));
    let l = detect(
        entries(&[
            "export/conversations-000.json",
            "export/conversations-001.json",
            "export/export_manifest.json",
            "export/conversation_asset_file_names.json",
            "export/file-one.dat",
            "export/file-two.dat",
            "export/user.json",
        ]),
        &mut files,
    );
    assert_eq!(l.root, "export");
    assert_eq!(
        names(&l.conversations),
        [
            "export/conversations-001.json",
            "export/conversations-000.json"
        ],
        "manifest order"
    );
    assert!(l.missing.is_empty());
    let got: Vec<(&str, Option<&str>, Option<&str>)> = l
        .assets
        .iter()
        .map(|a| {
            (
                a.file_id.as_str(),
                a.name.as_deref(),
                a.mime_type.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("file-one", Some("first.webp"), Some("image/webp")),
            ("file-two", Some("second.jpg"), Some("image/jpeg"))
        ]
    );
}

#[test]
fn shards_the_manifest_lists_but_the_export_lacks_are_named() {
    let manifest = br#"{"version":1,"logical_files":{"conversations.json":{"files":["conversations-000.json","conversations-001.json","conversations-002.json"],"sharded":true}}}"#;
    let mut files = Files(HashMap::from([(
        "export_manifest.json".to_owned(),
        manifest.to_vec(),
    )]));
    let l = detect(
        entries(&[
            "conversations-000.json",
            "export_manifest.json",
            "conversations-002.json",
        ]),
        &mut files,
    );
    assert_eq!(
        names(&l.conversations),
        ["conversations-000.json", "conversations-002.json"],
        "what is there is read"
    );
    assert_eq!(l.missing, ["conversations-001.json"]);

    // None of the listed shards: the names found are read, and every listed one is missing.
    let mut files = Files(HashMap::from([(
        "export_manifest.json".to_owned(),
        manifest.to_vec(),
    )]));
    let l = detect(
        entries(&["conversations.json", "export_manifest.json"]),
        &mut files,
    );
    assert_eq!(names(&l.conversations), ["conversations.json"]);
    assert_eq!(l.missing.len(), 3);

    // Without a manifest nothing can be known to be missing.
    let l = detect(
        entries(&["conversations-001.json"]),
        &mut Files(HashMap::new()),
    );
    assert!(l.missing.is_empty());
}

#[test]
fn shards_without_manifest_sort_numerically() {
    let l = detect(
        entries(&[
            "conversations-010.json",
            "conversations-2.json",
            "conversations-001.json",
        ]),
        &mut Files(HashMap::new()),
    );
    assert_eq!(
        names(&l.conversations),
        [
            "conversations-001.json",
            "conversations-2.json",
            "conversations-010.json"
        ]
    );
}

#[test]
fn unsafe_names_are_set_aside() {
    let l = detect(
        entries(&[
            "conversations.json",
            "../evil.json",
            "/etc/passwd-file-x.png",
            "a/../../b",
            "C:\\x",
            "c:/win.png",
        ]),
        &mut Files(HashMap::new()),
    );
    assert_eq!(names(&l.conversations), ["conversations.json"]);
    assert_eq!(l.unsafe_names.len(), 5);
    assert!(l.assets.is_empty());
}

#[test]
fn no_conversations_file() {
    let l = detect(
        entries(&["user.json", "chat.html"]),
        &mut Files(HashMap::new()),
    );
    assert!(l.conversations.is_empty());
}

#[test]
fn library_files_name_dat_members() {
    let lib = br#"[{"file_id":"file_00aa","id":{"id":"x","partition_key":"p"},"file_name":"Report.pdf","mime_type":"application/pdf"}]"#;
    let mut files = Files(HashMap::from([(
        "library_files.json".to_owned(),
        lib.to_vec(),
    )]));
    let l = detect(
        entries(&["conversations.json", "library_files.json", "file_00aa.dat"]),
        &mut files,
    );
    assert_eq!(l.assets[0].name.as_deref(), Some("Report.pdf"));
    assert_eq!(l.assets[0].mime_type.as_deref(), Some("application/pdf"));
}
