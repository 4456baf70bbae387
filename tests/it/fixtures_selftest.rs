//! Self-tests of the fixture generator: what it writes is what the importer tests assume.

use std::collections::{BTreeSet, HashSet};
use std::io::{Cursor, Read};
use std::time::Instant;

use serde_json::Value;

use crate::support::fixtures::*;

/// Opens ZIP bytes with the zip crate.
fn open(bytes: &[u8]) -> zip::ZipArchive<Cursor<&[u8]>> {
    zip::ZipArchive::new(Cursor::new(bytes)).expect("a readable zip")
}

/// Member names, raw (hostile names are not valid paths, so no `enclosed_name`).
fn names(bytes: &[u8]) -> Vec<String> {
    open(bytes)
        .file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Bytes of one member.
fn read_member(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut zip = open(bytes);
    let mut file = zip.by_name(name).expect("member present");
    let mut out = Vec::new();
    file.read_to_end(&mut out).expect("member readable");
    out
}

/// Parses a conversations array, tolerating a leading BOM.
fn parse_array(bytes: &[u8]) -> Vec<Value> {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(body).expect("a JSON array")
}

/// Every mapping node of a conversation.
fn nodes(conv: &Value) -> Vec<&Value> {
    conv["mapping"]
        .as_object()
        .expect("mapping")
        .values()
        .collect()
}

/// Content types present in a conversation, part types included.
fn content_types(conv: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for node in nodes(conv) {
        let Some(msg) = node.get("message").filter(|m| !m.is_null()) else {
            continue;
        };
        out.insert(
            msg["content"]["content_type"]
                .as_str()
                .expect("content_type")
                .to_string(),
        );
        for part in msg["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(t) = part.get("content_type").and_then(Value::as_str) {
                out.insert(format!("part:{t}"));
            }
        }
    }
    out
}

fn five_conversations() -> Vec<Value> {
    (0..5)
        .map(|i| simple_conversation(&format!("conv-{i}"), &format!("Conversation {i}")))
        .collect()
}

#[test]
fn fixtures_conversation_has_export_shape() {
    let mut c = ConvBuilder::new("shape-1", "Shape");
    let u = c.user("hello");
    let a = c.assistant("hi there");
    let conv = c.build();

    assert_eq!(conv["conversation_id"], "shape-1");
    assert_eq!(conv["id"], "shape-1");
    assert_eq!(conv["current_node"], a.as_str());
    assert!(conv.get(UNKNOWN_CONV_KEY).is_some());
    assert_eq!(conv["default_model_slug"], DEFAULT_MODEL);
    let mapping = conv["mapping"].as_object().unwrap();
    assert_eq!(mapping.len(), 4);
    assert!(mapping[ROOT_ID]["message"].is_null());
    assert!(mapping[ROOT_ID]["parent"].is_null());

    let system = &mapping[c.system_id()]["message"];
    assert_eq!(system["author"]["role"], "system");
    assert_eq!(
        system["metadata"]["is_visually_hidden_from_conversation"],
        true
    );
    assert_eq!(system["weight"], 0.0);

    assert_eq!(mapping[&u]["message"]["content"]["parts"][0], "hello");
    assert!(mapping[&u]["message"].get(UNKNOWN_MESSAGE_KEY).is_some());
    assert_eq!(
        mapping[&a]["message"]["metadata"]["model_slug"],
        DEFAULT_MODEL
    );
    assert_eq!(mapping[&a]["parent"], u.as_str());

    // parent and children agree everywhere.
    for (id, node) in mapping {
        assert_eq!(node["id"], id.as_str());
        for child in node["children"].as_array().unwrap() {
            assert_eq!(mapping[child.as_str().unwrap()]["parent"], id.as_str());
        }
    }
    // Float epoch seconds at conversation level, update after create.
    let create = conv["create_time"].as_f64().unwrap();
    let update = conv["update_time"].as_f64().unwrap();
    assert!(create > BASE_EPOCH as f64 && update > create);
}

#[test]
fn fixtures_timestamps_increase_and_some_ids_differ() {
    let mut c = ConvBuilder::new("times", "Times");
    let ids: Vec<String> = (0..12).map(|i| c.user(&format!("m{i}"))).collect();
    let conv = c.build();
    let times: Vec<f64> = ids
        .iter()
        .map(|id| {
            conv["mapping"][id]["message"]["create_time"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    let differing = ids
        .iter()
        .filter(|id| c.message_id(id).as_deref() != Some(id.as_str()))
        .count();
    assert!(differing >= 2, "some message ids must differ from node ids");
    for id in &ids {
        let mid = c.message_id(id).unwrap();
        assert!(mid == *id || mid == format!("m-{id}"));
    }
}

#[test]
fn fixtures_branching_and_current_node() {
    let mut c = ConvBuilder::new("branchy", "Branches");
    let q = c.user("question");
    let a1 = c.assistant("first answer");
    c.branch_from(&q);
    let a2 = c.assistant("regenerated answer");
    c.branch_from(&a1);
    let edited = c.user("follow-up on the first answer");
    let conv = c.build();
    assert_eq!(conv["mapping"][&q]["children"], serde_json::json!([a1, a2]));
    assert_eq!(
        conv["mapping"][&a1]["children"],
        serde_json::json!([edited])
    );
    assert_eq!(conv["current_node"], edited.as_str());

    c.set_current(&a2);
    assert_eq!(c.build()["current_node"], a2.as_str());
    c.set_current("not-in-mapping");
    assert_eq!(c.build()["current_node"], "not-in-mapping");
}

#[test]
fn fixtures_slim_has_no_children() {
    let mut c = ConvBuilder::new("slim", "Slim");
    c.linear(6);
    c.slim();
    let conv = c.build();
    assert!(nodes(&conv).iter().all(|n| n.get("children").is_none()));
    assert!(!conv.to_string().contains("\"children\""));
    assert!(nodes(&conv).iter().all(|n| n.get("parent").is_some()));
}

#[test]
fn fixtures_deep_linear_tree_is_fast() {
    let start = Instant::now();
    let mut c = ConvBuilder::new("deep", "Deep");
    let leaf = c.linear(5_000);
    let conv = c.build();
    let elapsed = start.elapsed();
    assert_eq!(conv["mapping"].as_object().unwrap().len(), 5_002);
    assert_eq!(conv["current_node"], leaf.as_str());
    // Walk to the root iteratively: the chain is 5,001 parent links long.
    let mut depth = 0;
    let mut at = leaf;
    while let Some(parent) = conv["mapping"][&at]["parent"].as_str() {
        at = parent.to_string();
        depth += 1;
    }
    assert_eq!((depth, at.as_str()), (5_001, ROOT_ID));
    assert!(elapsed.as_secs() < 5, "linear(5000) took {elapsed:?}");
}

#[test]
fn fixtures_all_content_types_present() {
    let conv = all_content_types_conversation();
    let types = content_types(&conv);
    for t in [
        "text",
        "multimodal_text",
        "code",
        "execution_output",
        "tether_browsing_display",
        "tether_quote",
        "sonic_webpage",
        "system_error",
        "thoughts",
        "reasoning_recap",
        "user_editable_context",
        "model_editable_context",
        "some_future_type",
        "part:image_asset_pointer",
        "part:audio_transcription",
        "part:audio_asset_pointer",
    ] {
        assert!(types.contains(t), "missing {t} in {types:?}");
    }
    let text = conv.to_string();
    assert!(text.contains("file-service://file-AllTypesPhoto1"));
    assert!(text.contains("sediment://file_00000000a11c0de5000000000000ge01"));
    assert!(text.contains("\"image_url\":\"file-service://file-AllTypesPlot1\""));
    // Forks: at least two nodes with two children.
    let forks = nodes(&conv)
        .iter()
        .filter(|n| n["children"].as_array().unwrap().len() > 1)
        .count();
    assert_eq!(forks, 2);
    // The uploaded image is listed as an attachment; the generated one is not.
    let attachments: Vec<&Value> = nodes(&conv)
        .into_iter()
        .filter_map(|n| n["message"]["metadata"]["attachments"].as_array())
        .flatten()
        .collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["id"], "file-AllTypesPhoto1");
    assert_eq!(
        attachments[0]["size"],
        asset_bytes("file-AllTypesPhoto1", "photo.png").len()
    );
}

#[test]
fn fixtures_single_layout_round_trips() {
    let convs = five_conversations();
    let zip = ExportBuilder::new()
        .conversations(convs.clone())
        .to_zip_bytes();
    let members = names(&zip);
    for expected in [
        "conversations.json",
        "user.json",
        "message_feedback.json",
        "shared_conversations.json",
        "chat.html",
    ] {
        assert!(members.contains(&expected.to_string()), "{members:?}");
    }
    assert!(!members.iter().any(|m| m.contains("export_manifest")));
    assert_eq!(parse_array(&read_member(&zip, "conversations.json")), convs);
    let user: Value = serde_json::from_slice(&read_member(&zip, "user.json")).unwrap();
    assert_eq!(user["email"], FAKE_EMAIL);
    // Compact by default: no newline inside the array.
    assert!(!read_member(&zip, "conversations.json").contains(&b'\n'));
}

#[test]
fn fixtures_sharded_layouts_round_trip() {
    let convs = five_conversations();
    for manifest in [true, false] {
        let export = ExportBuilder::new()
            .layout(Layout::Sharded {
                shards: 3,
                manifest,
            })
            .conversations(convs.clone());
        let zip = export.to_zip_bytes();
        let members = names(&zip);
        let shard_names = [
            "conversations-000.json",
            "conversations-001.json",
            "conversations-002.json",
        ];
        let mut all = Vec::new();
        for shard in shard_names {
            all.extend(parse_array(&read_member(&zip, shard)));
        }
        assert_eq!(all, convs, "shards concatenate to the original order");
        assert!(!members.contains(&"conversations.json".to_string()));
        assert!(members.contains(&"user_settings.json".to_string()));
        assert_eq!(
            members.contains(&"export_manifest.json".to_string()),
            manifest
        );
        if manifest {
            let m: Value =
                serde_json::from_slice(&read_member(&zip, "export_manifest.json")).unwrap();
            assert_eq!(m["version"], 1);
            assert_eq!(m["manifest_file"], "export_manifest.json");
            assert_eq!(m["logical_files"]["conversations.json"]["sharded"], true);
            assert_eq!(
                m["logical_files"]["conversations.json"]["files"],
                serde_json::json!(shard_names)
            );
        }
    }
    // The other manifest shape.
    let zip = ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: true,
        })
        .files_list_manifest()
        .conversations(five_conversations())
        .to_zip_bytes();
    let m: Value = serde_json::from_slice(&read_member(&zip, "export_manifest.json")).unwrap();
    assert_eq!(m["files"][0]["shards"][1]["name"], "conversations-001.json");
}

#[test]
fn fixtures_nested_junk_bom_pretty() {
    let convs = five_conversations();
    let export = ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: true,
        })
        .conversations(convs.clone())
        .nested("ChatGPT Export")
        .macos_junk()
        .bom()
        .pretty();
    let zip = export.to_zip_bytes();
    let members = names(&zip);
    assert!(members.contains(&"ChatGPT Export/".to_string()));
    assert!(
        members
            .iter()
            .all(|m| m.starts_with("ChatGPT Export/") || m.starts_with("__MACOSX/")),
        "{members:?}"
    );
    assert!(members.contains(&"__MACOSX/ChatGPT Export/._conversations-000.json".to_string()));
    let junk = read_member(&zip, "__MACOSX/ChatGPT Export/._conversations-000.json");
    assert_eq!(&junk[..4], &[0x00, 0x05, 0x16, 0x07]);
    assert!(serde_json::from_slice::<Value>(&junk).is_err());

    let shard = read_member(&zip, "ChatGPT Export/conversations-000.json");
    assert!(shard.starts_with(b"\xef\xbb\xbf["));
    assert!(shard.contains(&b'\n'), "pretty output has newlines");
    let mut all = parse_array(&shard);
    all.extend(parse_array(&read_member(
        &zip,
        "ChatGPT Export/conversations-001.json",
    )));
    assert_eq!(all, convs);
    let m: Value =
        serde_json::from_slice(&read_member(&zip, "ChatGPT Export/export_manifest.json")).unwrap();
    assert_eq!(
        m["logical_files"]["conversations.json"]["files"][0],
        "conversations-000.json"
    );
}

#[test]
fn fixtures_assets_named_like_real_exports() {
    let assets = [
        Asset::legacy("file-AbC123", "photo.png"),
        Asset::dalle("file-Dalle1", "0b1c2d3e-0000-4000-8000-000000000001"),
        Asset::user_dir("user-xyz", "file_00000000abcd", "scan.jpg"),
        Asset::dat("file-Dat777", "Screenshot 2026-01-02.png"),
        Asset::dat("file-Orphan", "orphan.pdf"),
    ];
    let mut c = ConvBuilder::new("with-assets", "Assets");
    c.user_image("look", "file-AbC123", "photo.png", "image/png");
    c.user_image("scan", "file_00000000abcd", "scan.jpg", "image/jpeg");
    c.user_image(
        "shot",
        "file-Dat777",
        "Screenshot 2026-01-02.png",
        "image/png",
    );
    let mut export = ExportBuilder::new().conversation(c.build()).library_files();
    for a in &assets {
        export = export.asset(a.clone());
    }
    let zip = export.to_zip_bytes();
    let members = names(&zip);
    for (asset, expected) in assets.iter().zip([
        "file-AbC123-photo.png",
        "dalle-generations/file-Dalle1-0b1c2d3e-0000-4000-8000-000000000001.webp",
        "user-xyz/file_00000000abcd-scan.jpg",
        "file-Dat777.dat",
        "file-Orphan.dat",
    ]) {
        assert_eq!(asset.member_name(), expected);
        assert!(members.contains(&expected.to_string()), "{members:?}");
        let bytes = read_member(&zip, expected);
        assert_eq!(bytes, asset.bytes());
        assert_eq!(sha256_hex(&bytes), asset.sha256_hex());
    }
    assert!(
        Asset::legacy("file-AbC123", "photo.png")
            .bytes()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );
    assert_ne!(assets[0].bytes(), assets[2].bytes());

    let dat: Value =
        serde_json::from_slice(&read_member(&zip, "conversation_asset_file_names.json")).unwrap();
    assert_eq!(
        dat,
        serde_json::json!({"file-Dat777.dat": "Screenshot 2026-01-02.png", "file-Orphan.dat": "orphan.pdf"})
    );
    let lib: Value = serde_json::from_slice(&read_member(&zip, "library_files.json")).unwrap();
    let lib = lib.as_array().unwrap();
    assert_eq!(lib.len(), assets.len());
    assert_eq!(lib[0]["file_id"], "file-AbC123");
    assert_eq!(lib[0]["origination_thread_id"], "with-assets");
    assert!(lib[0]["origination_message_id"].is_string());
    assert!(
        lib[4]["origination_message_id"].is_null(),
        "the orphan has no origin"
    );
    assert!(lib[0]["id"]["id"].is_string() && lib[0]["id"]["partition_key"].is_string());
}

#[test]
fn fixtures_dir_and_bare_json_match_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let export = ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: true,
        })
        .conversations(five_conversations())
        .asset(Asset::user_dir("user-xyz", "file_00000000abcd", "scan.jpg"))
        .nested("export");
    let zip = export.to_zip_bytes();
    let dir = tmp.path().join("unpacked");
    export.write_dir(&dir);
    for name in export.member_names() {
        let on_disk = std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(on_disk, read_member(&zip, &name), "{name}");
    }
    let zip_path = tmp.path().join("export.zip");
    export.write_zip(&zip_path);
    assert_eq!(std::fs::read(&zip_path).unwrap(), zip);

    let json_path = tmp.path().join("conversations.json");
    export.write_conversations_json(&json_path);
    assert_eq!(
        parse_array(&std::fs::read(json_path).unwrap()),
        five_conversations()
    );
}

#[test]
fn fixtures_output_is_deterministic() {
    let build = || {
        ExportBuilder::new()
            .layout(Layout::Sharded {
                shards: 2,
                manifest: true,
            })
            .conversation(all_content_types_conversation())
            .conversations(five_conversations())
            .asset(Asset::legacy("file-AllTypesPhoto1", "photo.png"))
            .macos_junk()
            .to_zip_bytes()
    };
    assert_eq!(build(), build());
    assert_eq!(
        all_content_types_conversation(),
        all_content_types_conversation()
    );
    assert_eq!(malformed_unbalanced(), malformed_unbalanced());
    let tmp = tempfile::tempdir().unwrap();
    let a = sample_export(tmp.path());
    let first = std::fs::read(&a).unwrap();
    let b = sample_export(tmp.path());
    assert_eq!(a, b);
    assert_eq!(first, std::fs::read(&b).unwrap());
}

#[test]
fn fixtures_sample_export_is_realistic() {
    let tmp = tempfile::tempdir().unwrap();
    let path = sample_export(tmp.path());
    let file_name = path.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        file_name.len(),
        64 + "-2026-01-15-10-20-30-".len() + 32 + ".zip".len()
    );
    let zip = std::fs::read(&path).unwrap();
    let members = names(&zip);
    let mut convs = parse_array(&read_member(&zip, "conversations-000.json"));
    convs.extend(parse_array(&read_member(&zip, "conversations-001.json")));
    let ids: Vec<&str> = convs.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, SAMPLE_CONVERSATION_IDS);
    for m in [
        "file-SamplePhoto01-photo.png",
        "user-Sample01/file_00000000sample0000000000000003-diagram.png",
        "file-SampleNotes04.dat",
    ] {
        assert!(members.contains(&m.to_string()), "{members:?}");
    }
    assert!(members.contains(&"export_manifest.json".to_string()));
}

#[test]
fn fixtures_bad_zips() {
    assert!(zip::ZipArchive::new(Cursor::new(corrupt_zip())).is_err());
    assert!(corrupt_zip().starts_with(b"PK\x03\x04"));

    let good = ExportBuilder::new()
        .conversations(five_conversations())
        .to_zip_bytes();
    let half = truncate(&good, 0.5);
    assert_eq!(half.len(), good.len() / 2);
    assert!(zip::ZipArchive::new(Cursor::new(half)).is_err());

    assert_eq!(
        names(&zip_without_conversations()),
        ["user.json", "chat.html"]
    );
    let unrelated = names(&zip_not_an_export());
    assert!(
        unrelated.contains(&"README.md".to_string())
            && unrelated.contains(&"src/main.rs".to_string())
    );

    let many = many_entries_zip(2_000);
    assert_eq!(open(&many).len(), 2_000);
    assert_eq!(
        parse_array(&read_member(&many, "conversations.json"))[0]["id"],
        "many-entries"
    );

    assert!(empty_file().is_empty());
}

#[test]
fn fixtures_hostile_names_present() {
    let zip = zip_with_hostile_names();
    let members = names(&zip);
    for hostile in HOSTILE_NAMES {
        assert!(
            members.contains(&hostile.to_string()),
            "{hostile} missing from {members:?}"
        );
    }
    let mut archive = open(&zip);
    for i in 0..archive.len() {
        let file = archive.by_index(i).unwrap();
        let raw = String::from_utf8_lossy(file.name_raw()).into_owned();
        // The zip crate refuses names that climb out and strips roots/drive prefixes from the
        // rest; either way nothing it hands back may leave the extraction directory.
        if HOSTILE_NAMES.contains(&raw.as_str()) {
            let climbs = raw.contains("..");
            match file.enclosed_name() {
                None => assert!(climbs, "{raw}"),
                Some(p) => {
                    assert!(!climbs, "{raw} climbs out but was accepted as {p:?}");
                    assert!(
                        p.components()
                            .all(|c| matches!(c, std::path::Component::Normal(_))),
                        "{p:?}"
                    );
                }
            }
        }
        if raw == HOSTILE_SYMLINK {
            assert!(file.is_symlink());
        }
    }
    let convs = parse_array(&read_member(&zip, "conversations.json"));
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["id"], HOSTILE_OK_ID);
}

#[test]
fn fixtures_crc_of_spaces_matches_direct_crc() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    for n in [
        0u64, 1, 2, 3, 7, 8, 255, 258, 259, 1_000, 4_096, 65_537, 300_001,
    ] {
        assert_eq!(
            crc32_of_spaces(n),
            crc32(&vec![b' '; n as usize]),
            "n = {n}"
        );
    }
}

#[test]
fn fixtures_small_bombs_inflate_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // Sizes around the 258-byte copy length and byte alignment, and a few MB.
    for n in [1u64, 2, 258, 259, 260, 1_032, 1_033, 5_000, 3_000_000] {
        let path = tmp.path().join(format!("bomb-{n}.zip"));
        zip_bomb(&path, n, false);
        let bytes = std::fs::read(&path).unwrap();
        let mut archive = open(&bytes);
        let mut file = archive.by_name("conversations.json").unwrap();
        assert_eq!(file.size(), n);
        assert_eq!(file.compression(), zip::CompressionMethod::Deflated);
        // read_to_end checks the CRC at the end of the entry.
        let mut out = Vec::new();
        file.read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("n = {n}: {e}"));
        assert_eq!(out.len() as u64, n);
        assert!(out.iter().all(|&b| b == b' '));
    }
}

#[test]
fn fixtures_lying_bomb_declares_tiny_size() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("liar.zip");
    zip_bomb(&path, 10_000_000, true);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
    let mut archive = open(&bytes);
    let mut file = archive.by_name("conversations.json").unwrap();
    assert_eq!(file.size(), BOMB_LIE_SIZE);
    // The zip crate itself refuses to return more than the declared size: the first read that
    // would pass it fails. Other readers must count what really comes out.
    let mut buf = [0u8; 4096];
    let err = file
        .read(&mut buf)
        .expect_err("reading past the declared size fails");
    assert!(err.to_string().contains("declared"), "{err}");
}

#[test]
fn fixtures_big_bomb_is_small_and_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.zip");
    let inflated = 2_500_000_000u64;
    let start = Instant::now();
    zip_bomb(&path, inflated, false);
    let elapsed = start.elapsed();
    let on_disk = std::fs::metadata(&path).unwrap().len();
    assert!(on_disk < 2_600_000, "{on_disk} bytes on disk");
    assert!(elapsed.as_secs() < 5, "took {elapsed:?}");
    let bytes = std::fs::read(&path).unwrap();
    let mut archive = open(&bytes);
    let file = archive.by_name("conversations.json").unwrap();
    assert_eq!(file.size(), inflated);
    assert_eq!(file.crc32(), crc32_of_spaces(inflated));
    // Inflate a prefix only: all spaces.
    let mut prefix = vec![0u8; 1 << 20];
    let mut reader = file.take(prefix.len() as u64);
    reader.read_exact(&mut prefix).unwrap();
    assert!(prefix.iter().all(|&b| b == b' '));

    // Above 4 GiB the honest header needs ZIP64 fields.
    let path64 = tmp.path().join("bomb64.zip");
    zip_bomb(&path64, 5_000_000_000, false);
    let bytes = std::fs::read(&path64).unwrap();
    assert_eq!(
        open(&bytes).by_name("conversations.json").unwrap().size(),
        5_000_000_000
    );
}

#[test]
fn fixtures_json_level_bad_inputs() {
    // Middle element broken, braces balanced.
    let mal = malformed_array_middle();
    assert!(serde_json::from_slice::<Value>(&mal).is_err());
    let text = String::from_utf8(mal).unwrap();
    assert_eq!(text.matches('{').count(), text.matches('}').count());
    for id in ["mal-0", "mal-1", "mal-2", "mal-3", "mal-4"] {
        assert!(text.contains(&format!("\"id\":\"{id}\"")));
    }

    // One element short of a closing brace.
    let unb = String::from_utf8(malformed_unbalanced()).unwrap();
    assert!(serde_json::from_str::<Value>(&unb).is_err());
    assert_eq!(unb.matches('{').count(), unb.matches('}').count() + 1);
    let at = unb.find("\"id\":\"unb-3\"").unwrap();
    let start3 = unb[..at].rfind(",{").unwrap();
    let rest = &unb[start3 + 1..unb.len() - 1];
    let tail: Vec<Value> =
        serde_json::from_str(&format!("[{rest}]")).expect("unb-3 and unb-4 intact");
    assert_eq!(tail.len(), 2);

    // Truncated mid-element.
    let trunc = truncated_array();
    let err = serde_json::from_slice::<Value>(&trunc).unwrap_err();
    assert!(err.is_eof());
    let text = String::from_utf8_lossy(&trunc);
    assert!(text.contains("trunc-1") && !text.ends_with(']'));

    // Invalid UTF-8 inside a string.
    let bad = non_utf8_array();
    assert!(std::str::from_utf8(&bad).is_err());
    assert!(serde_json::from_slice::<Value>(&bad).is_err());

    // No mapping; dangling references.
    let no_map = conversation_without_mapping();
    assert!(no_map.get("mapping").is_none() && no_map["id"] == "no-mapping");
    let dangling = dangling_ids();
    let mapping = dangling["mapping"].as_object().unwrap();
    let ids: HashSet<&str> = mapping.keys().map(String::as_str).collect();
    assert!(!ids.contains(dangling["current_node"].as_str().unwrap()));
    let outside_parents = mapping
        .values()
        .filter(|n| n["parent"].as_str().is_some_and(|p| !ids.contains(p)))
        .count();
    let outside_children = mapping
        .values()
        .flat_map(|n| n["children"].as_array().unwrap())
        .filter(|c| !ids.contains(c.as_str().unwrap()))
        .count();
    assert_eq!((outside_parents, outside_children), (1, 1));
}
