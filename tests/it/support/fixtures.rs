//! Fixture generator: ChatGPT conversations in the export shape, whole exports (ZIP, unpacked
//! folder, bare JSON) in every real layout, and deliberately bad inputs, all built in code.
//!
//! Everything is deterministic: ids, timestamps and asset bytes derive from the inputs (seeded
//! from the conversation id or file id), and ZIP entries carry a fixed timestamp, so the same
//! calls produce byte-identical files on every run.
//!
//! `serde_json` is built without `preserve_order` in this crate, so every object, `mapping`
//! included, is written with its keys sorted. Some real dumps are sorted too, so this is a real
//! variant, but "mapping order" here means alphabetical order of node ids.
//!
//! Shapes follow `shared/reference/chatgpt-format.md` and section 3 of `chatgpt-api.md`; no
//! corpus file is copied, all text is synthetic.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufWriter, Cursor, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Id of the synthetic null-message root node every built conversation starts with.
pub const ROOT_ID: &str = "client-created-root";
/// Email address written into every generated `user.json`; the importer must never store it.
pub const FAKE_EMAIL: &str = "fixture.person@example.com";
/// Phone number written into every generated `user.json`; personal data, never to be stored.
pub const FAKE_PHONE: &str = "+15555550123";
/// Unknown top-level conversation key present in every built conversation (losslessness checks).
pub const UNKNOWN_CONV_KEY: &str = "x_convos_future_key";
/// Unknown message-level key present on every user message (losslessness checks).
pub const UNKNOWN_MESSAGE_KEY: &str = "x_convos_future_field";
/// Model slug used when [`ConvBuilder::model`] is not called.
pub const DEFAULT_MODEL: &str = "gpt-5";
/// Epoch seconds of 2026-01-01T00:00:00Z, the base of generated timestamps.
pub const BASE_EPOCH: u64 = 1_767_225_600;
/// Uncompressed size a lying [`zip_bomb`] declares in its local header and central directory.
pub const BOMB_LIE_SIZE: u64 = 1000;
/// Hostile member names in [`zip_with_hostile_names`] (each holds a few bytes).
pub const HOSTILE_NAMES: [&str; 4] = [
    "../evil.json",
    "/etc/passwd-file-x.png",
    "a/../../b",
    "C:\\x",
];
/// Symlink member in [`zip_with_hostile_names`]; it points at [`HOSTILE_SYMLINK_TARGET`].
pub const HOSTILE_SYMLINK: &str = "file-link-escape.png";
/// Target of [`HOSTILE_SYMLINK`], outside any extraction directory.
pub const HOSTILE_SYMLINK_TARGET: &str = "../../../../etc/passwd";
/// Id of the one valid conversation inside [`zip_with_hostile_names`].
pub const HOSTILE_OK_ID: &str = "hostile-ok";
/// Conversation ids in [`sample_export`], oldest first.
pub const SAMPLE_CONVERSATION_IDS: [&str; 5] = [
    "6925e174-6714-832f-9a1b-5a0000000001",
    "6925e174-6714-832f-9a1b-5a0000000002",
    "6925e174-6714-832f-9a1b-5a0000000003",
    "6925e174-6714-832f-9a1b-5a0000000004",
    "6925e174-6714-832f-9a1b-5a0000000005",
];

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// FNV-1a: a stable seed from a string (std's hashers are randomly keyed per process).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: a tiny seeded generator, enough for ids and filler bytes.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4-shaped UUID drawn from `state`.
fn uuid_from(state: &mut u64) -> String {
    let a = splitmix(state);
    let b = splitmix(state);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 + ((b >> 62) & 3),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of `bytes` (what the archive records for attachment blobs).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Epoch microseconds to the float seconds ChatGPT writes (µs precision survives the f64).
fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// Merge the entries of the object `extra` into the object `target`.
fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

/// The asset pointer ChatGPT uses for a file id: `sediment://` for `file_…`, else `file-service://`.
pub fn asset_pointer(file_id: &str) -> String {
    if file_id.starts_with("file_") {
        format!("sediment://{file_id}")
    } else {
        format!("file-service://{file_id}")
    }
}

/// Host part of a URL, for the `domain` fields of browsing content.
fn domain_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Conversation id of a conversation value (`conversation_id`, else `id`), or "".
fn conv_id(conv: &Value) -> String {
    conv.get("conversation_id")
        .or_else(|| conv.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// ConvBuilder
// ---------------------------------------------------------------------------------------------

/// One mapping node while building; turned into JSON by [`ConvBuilder::build`].
#[derive(Clone, Debug)]
struct Node {
    id: String,
    message: Option<Value>,
    parent: Option<String>,
    children: Vec<String>,
}

/// Builds one conversation object in the export shape, appending messages to a cursor branch.
///
/// Every append method returns the new node's id; [`ConvBuilder::branch_from`] moves the cursor
/// so the next append becomes a sibling of existing children (a regeneration or edited prompt).
/// `current_node` is the most recently appended node unless [`ConvBuilder::set_current`] is used.
/// Every fourth node (counting the system node) gets a message id `m-<node id>` that differs from
/// its node id, as in real data.
#[derive(Clone, Debug)]
pub struct ConvBuilder {
    id: String,
    title: String,
    model: String,
    create_us: u64,
    clock_us: u64,
    rng: u64,
    seq: u64,
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    cursor: String,
    last_added: String,
    current: Option<String>,
    system_id: String,
    request_id: String,
    last_code: String,
    slim: bool,
    overrides: Vec<(String, Option<Value>)>,
}

impl ConvBuilder {
    /// A conversation with the root node and the hidden system message; its times start within
    /// 30 days after 2026-01-01, derived from `id` (use [`ConvBuilder::start_time`] to pin them).
    pub fn new(id: &str, title: &str) -> Self {
        let seed = fnv1a(id);
        // Spread conversations over 30 days so different ids get different, stable times.
        let start_us = (BASE_EPOCH + seed % (30 * 86_400)) * 1_000_000;
        let mut b = ConvBuilder {
            id: id.to_string(),
            title: title.to_string(),
            model: DEFAULT_MODEL.to_string(),
            create_us: start_us,
            clock_us: start_us,
            rng: seed,
            seq: 0,
            nodes: vec![Node {
                id: ROOT_ID.to_string(),
                message: None,
                parent: None,
                children: Vec::new(),
            }],
            index: HashMap::from([(ROOT_ID.to_string(), 0)]),
            cursor: ROOT_ID.to_string(),
            last_added: ROOT_ID.to_string(),
            current: None,
            system_id: String::new(),
            request_id: String::new(),
            last_code: String::new(),
            slim: false,
            overrides: Vec::new(),
        };
        let (node_id, mut msg) = b.message(
            "system",
            None,
            json!({"content_type": "text", "parts": [""]}),
            false,
        );
        msg["weight"] = json!(0.0);
        msg["end_turn"] = json!(true);
        msg["metadata"] = json!({"is_visually_hidden_from_conversation": true});
        b.system_id = b.attach(node_id, msg);
        b
    }

    /// Sets the conversation's `create_time` (epoch seconds); call before adding timed messages.
    pub fn start_time(&mut self, epoch_secs: u64) -> &mut Self {
        assert_eq!(
            self.clock_us, self.create_us,
            "fixture misuse: start_time must be called before any timed message"
        );
        self.create_us = epoch_secs * 1_000_000;
        self.clock_us = self.create_us;
        self
    }

    /// Sets `default_model_slug` and the `model_slug` of assistant/tool messages appended later.
    pub fn model(&mut self, slug: &str) -> &mut Self {
        self.model = slug.to_string();
        self
    }

    /// Sets (or overrides) a top-level key of the built conversation, e.g. `gizmo_id`.
    pub fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.overrides.push((key.to_string(), Some(value)));
        self
    }

    /// Removes a top-level key from the built conversation, e.g. `conversation_id`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.overrides.push((key.to_string(), None));
        self
    }

    /// The conversation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Node the next append attaches to.
    pub fn cursor(&self) -> &str {
        &self.cursor
    }

    /// Node id of the hidden system message.
    pub fn system_id(&self) -> &str {
        &self.system_id
    }

    /// Number of nodes in the mapping, root and system node included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Message id stored in node `node_id` (differs from the node id for some nodes).
    pub fn message_id(&self, node_id: &str) -> Option<String> {
        let node = &self.nodes[*self.index.get(node_id)?];
        let id = node.message.as_ref()?.get("id")?.as_str()?;
        Some(id.to_string())
    }

    /// Next node id and message id.
    fn next_ids(&mut self) -> (String, String) {
        self.seq += 1;
        let node_id = uuid_from(&mut self.rng);
        let msg_id = if self.seq % 4 == 1 && self.seq > 1 {
            format!("m-{node_id}")
        } else {
            node_id.clone()
        };
        (node_id, msg_id)
    }

    /// Advances the clock by 1–5 s (strictly increasing) and returns the new time in seconds.
    fn tick(&mut self) -> f64 {
        self.clock_us += 1_000_000 + splitmix(&mut self.rng) % 4_000_000;
        secs(self.clock_us)
    }

    /// Message id of the cursor node, for `metadata.parent_id`.
    fn parent_message_id(&self) -> Value {
        let node = &self.nodes[self.index[&self.cursor]];
        node.message
            .as_ref()
            .and_then(|m| m.get("id").cloned())
            .unwrap_or_else(|| json!(node.id))
    }

    /// A message with every common key; `timed == false` leaves `create_time` null.
    fn message(
        &mut self,
        role: &str,
        name: Option<&str>,
        content: Value,
        timed: bool,
    ) -> (String, Value) {
        let (node_id, msg_id) = self.next_ids();
        let create_time = if timed {
            json!(self.tick())
        } else {
            Value::Null
        };
        let msg = json!({
            "id": msg_id,
            "author": {"role": role, "name": name, "metadata": {}},
            "create_time": create_time,
            "update_time": null,
            "content": content,
            "status": "finished_successfully",
            "end_turn": null,
            "weight": 1.0,
            "metadata": {"timestamp_": "absolute", "message_type": null},
            "recipient": "all",
            "channel": null,
        });
        (node_id, msg)
    }

    /// Metadata every model-produced message carries.
    fn model_meta(&self, stop_token: u64) -> Value {
        json!({
            "model_slug": self.model,
            "default_model_slug": self.model,
            "finish_details": {"type": "stop", "stop_tokens": [stop_token]},
            "is_complete": true,
            "parent_id": self.parent_message_id(),
            "request_id": self.request_id,
            "message_type": "next",
        })
    }

    /// Links a finished message under the cursor and moves the cursor onto it.
    fn attach(&mut self, node_id: String, message: Value) -> String {
        assert!(
            !self.index.contains_key(&node_id),
            "fixture bug: duplicate node id {node_id}"
        );
        let parent = self.cursor.clone();
        let parent_index = self.index[&parent];
        self.nodes[parent_index].children.push(node_id.clone());
        self.index.insert(node_id.clone(), self.nodes.len());
        self.nodes.push(Node {
            id: node_id.clone(),
            message: Some(message),
            parent: Some(parent),
            children: Vec::new(),
        });
        self.cursor.clone_from(&node_id);
        self.last_added.clone_from(&node_id);
        node_id
    }

    /// Appends any message: `content` must be an object with a `content_type`.
    pub fn push(&mut self, role: &str, author_name: Option<&str>, content: Value) -> String {
        let (id, msg) = self.message(role, author_name, content, true);
        self.attach(id, msg)
    }

    /// Mutates the message of node `node_id` in place (e.g. to set `status: "in_progress"`).
    pub fn edit_message(&mut self, node_id: &str, f: impl FnOnce(&mut Value)) -> &mut Self {
        let i = *self
            .index
            .get(node_id)
            .expect("fixture misuse: edit_message on an unknown node");
        f(self.nodes[i]
            .message
            .as_mut()
            .expect("fixture misuse: edit_message on the root"));
        self
    }

    /// A visible user text message.
    pub fn user(&mut self, text: &str) -> String {
        let (id, mut msg) = self.message(
            "user",
            None,
            json!({"content_type": "text", "parts": [text]}),
            true,
        );
        self.request_id = uuid_from(&mut self.rng);
        merge(
            &mut msg["metadata"],
            json!({"request_id": self.request_id, "message_source": null, "selected_github_repos": []}),
        );
        msg[UNKNOWN_MESSAGE_KEY] = json!({"kept": true, "list": [1, 2.5, "ü", null]});
        self.attach(id, msg)
    }

    /// A visible assistant text answer (`channel: "final"`, `metadata.model_slug`).
    pub fn assistant(&mut self, text: &str) -> String {
        let (id, mut msg) = self.message(
            "assistant",
            None,
            json!({"content_type": "text", "parts": [text]}),
            true,
        );
        msg["end_turn"] = json!(true);
        msg["channel"] = json!("final");
        merge(&mut msg["metadata"], self.model_meta(200_002));
        merge(
            &mut msg["metadata"],
            json!({"citations": [], "content_references": []}),
        );
        self.attach(id, msg)
    }

    /// An assistant → tool call: `code` content addressed to `recipient` (e.g. "python").
    pub fn code(&mut self, lang: &str, text: &str, recipient: &str) -> String {
        let content = json!({"content_type": "code", "language": lang, "response_format_name": null, "text": text});
        let (id, mut msg) = self.message("assistant", None, content, true);
        msg["end_turn"] = json!(false);
        msg["recipient"] = json!(recipient);
        // Code-interpreter calls predate channels; newer tool calls go out on "commentary".
        if recipient != "python" {
            msg["channel"] = json!("commentary");
        }
        merge(&mut msg["metadata"], self.model_meta(200_012));
        self.last_code = text.to_string();
        self.attach(id, msg)
    }

    /// A python tool reply; with `image_file_id` its `aggregate_result.messages` holds a plot.
    pub fn execution_output(&mut self, text: &str, image_file_id: Option<&str>) -> String {
        let content = json!({"content_type": "execution_output", "text": text});
        let (id, mut msg) = self.message("tool", Some("python"), content, true);
        let t = msg["create_time"].as_f64().unwrap_or_default();
        let run_id = uuid_from(&mut self.rng);
        let msg_id = format!("{}_2_1", &run_id[..8]);
        let header = json!({"msg_id": msg_id, "version": "5.3"});
        let (messages, display) = match image_file_id {
            Some(file_id) => {
                let url = format!("file-service://{file_id}");
                (
                    json!([{"message_type": "image", "time": t - 0.01, "sender": "server", "image_payload": null, "image_url": url}]),
                    json!({"msg_type": "display_data", "parent_header": header, "content": {"data": {
                        "text/plain": "<Figure size 2000x1200 with 1 Axes>",
                        "image/vnd.openai.fileservice.png": url}}}),
                )
            }
            None => (
                json!([]),
                json!({"msg_type": "execute_result", "parent_header": header, "content": {"data": {"text/plain": text}}}),
            ),
        };
        let aggregate = json!({
            "status": "success",
            "run_id": run_id,
            "start_time": t - 0.8,
            "update_time": t,
            "end_time": t,
            "code": self.last_code,
            "final_expression_output": if image_file_id.is_some() { Value::Null } else { json!(text) },
            "in_kernel_exception": null,
            "system_exception": null,
            "timeout_triggered": null,
            "messages": messages,
            "jupyter_messages": [
                {"msg_type": "status", "parent_header": header, "content": {"execution_state": "busy"}},
                {"msg_type": "execute_input", "parent_header": header},
                display,
                {"msg_type": "status", "parent_header": header, "content": {"execution_state": "idle"}},
            ],
        });
        merge(
            &mut msg["metadata"],
            json!({"is_complete": true, "aggregate_result": aggregate, "model_slug": self.model, "parent_id": self.parent_message_id()}),
        );
        self.attach(id, msg)
    }

    /// Browser tool reply listing search results (`result` holds `【n†title†domain】` lines).
    pub fn tether_browsing_display(&mut self, result: &str, summary: Option<&str>) -> String {
        let content = json!({"content_type": "tether_browsing_display", "result": result, "summary": summary, "assets": [], "tether_id": null});
        let (id, mut msg) = self.message("tool", Some("browser"), content, true);
        merge(
            &mut msg["metadata"],
            json!({"_cite_metadata": {"citation_format": {"name": "tether_og"}, "metadata_list": [], "original_query": null},
                   "command": "search", "args": ["fixture query"], "status": "finished", "is_complete": true}),
        );
        self.attach(id, msg)
    }

    /// Browser tool reply quoting a page (after an `mclick`).
    pub fn tether_quote(&mut self, url: &str, title: &str, text: &str) -> String {
        let domain = domain_of(url);
        let content = json!({"content_type": "tether_quote", "url": url, "domain": domain, "text": text, "title": title, "tether_id": null});
        let (id, mut msg) = self.message("tool", Some("browser"), content, true);
        merge(
            &mut msg["metadata"],
            json!({"_cite_metadata": {"citation_format": {"name": "tether_og"},
                       "metadata_list": [{"type": "webpage", "title": title, "url": url, "text": text, "pub_date": null, "extra": null}],
                       "original_query": null},
                   "command": "quote", "args": ["0"], "status": "finished", "is_complete": true}),
        );
        self.attach(id, msg)
    }

    /// A `web.run` page-text reply (2025/26 browsing).
    pub fn sonic_webpage(&mut self, url: &str, title: &str, text: &str) -> String {
        let snippet: String = text.chars().take(40).collect();
        let content = json!({"content_type": "sonic_webpage", "url": url, "domain": domain_of(url), "title": title,
                             "text": text, "snippet": snippet, "pub_timestamp": secs(self.create_us) - 86_400.0});
        let (id, mut msg) = self.message("tool", Some("web.run"), content, true);
        msg["channel"] = json!("commentary");
        merge(
            &mut msg["metadata"],
            json!({"is_complete": true, "model_slug": self.model}),
        );
        self.attach(id, msg)
    }

    /// A tool failure (`system_error`, author tool `container.exec`).
    pub fn system_error(&mut self, name: &str, text: &str) -> String {
        let content = json!({"content_type": "system_error", "name": name, "text": text});
        let (id, mut msg) = self.message("tool", Some("container.exec"), content, true);
        merge(
            &mut msg["metadata"],
            json!({"is_complete": true, "model_slug": self.model}),
        );
        self.attach(id, msg)
    }

    /// An assistant `thoughts` message from `(summary, content)` pairs (content may be "").
    pub fn thoughts(&mut self, thoughts: &[(&str, &str)]) -> String {
        let list: Vec<Value> = thoughts
            .iter()
            .map(|(summary, content)| {
                let chunks: Vec<&str> = if content.is_empty() {
                    Vec::new()
                } else {
                    vec![content]
                };
                json!({"summary": summary, "content": content, "chunks": chunks, "finished": true})
            })
            .collect();
        let source = uuid_from(&mut self.rng);
        let content =
            json!({"content_type": "thoughts", "thoughts": list, "source_analysis_msg_id": source});
        let (id, mut msg) = self.message("assistant", None, content, true);
        msg["end_turn"] = json!(false);
        merge(&mut msg["metadata"], self.model_meta(200_012));
        merge(
            &mut msg["metadata"],
            json!({"reasoning_status": "is_reasoning"}),
        );
        self.attach(id, msg)
    }

    /// An assistant `reasoning_recap` ("Thought for 7s") with `metadata.finished_duration_sec`.
    pub fn reasoning_recap(&mut self, text: &str) -> String {
        let content = json!({"content_type": "reasoning_recap", "content": text});
        let (id, mut msg) = self.message("assistant", None, content, true);
        msg["end_turn"] = json!(false);
        merge(&mut msg["metadata"], self.model_meta(200_012));
        merge(
            &mut msg["metadata"],
            json!({"reasoning_status": "reasoning_ended", "finished_duration_sec": 7}),
        );
        self.attach(id, msg)
    }

    /// A user upload: `multimodal_text` with an image pointer part plus `metadata.attachments`.
    ///
    /// `file_id` picks the scheme: `file_…` → `sediment://`, anything else → `file-service://`.
    /// The declared sizes equal `asset_bytes(file_id, name).len()`.
    pub fn user_image(&mut self, text: &str, file_id: &str, name: &str, mime: &str) -> String {
        let size = asset_bytes(file_id, name).len();
        let part = json!({"content_type": "image_asset_pointer", "asset_pointer": asset_pointer(file_id),
                          "size_bytes": size, "width": 512, "height": 384, "fovea": null, "metadata": null});
        let content = json!({"content_type": "multimodal_text", "parts": [part, text]});
        let (id, mut msg) = self.message("user", None, content, true);
        self.request_id = uuid_from(&mut self.rng);
        merge(
            &mut msg["metadata"],
            json!({"request_id": self.request_id,
                   "attachments": [{"id": file_id, "name": name, "mime_type": mime, "size": size, "width": 512, "height": 384}]}),
        );
        msg[UNKNOWN_MESSAGE_KEY] = json!({"kept": true});
        self.attach(id, msg)
    }

    /// A generated image (tool `multimodal_text`, never listed in `metadata.attachments`).
    ///
    /// `file_…` ids get a `sediment://` pointer with `metadata.generation` (4o/GPT-5 era, tool
    /// `t2uay3k.sj1i4kz`); `file-…` ids a `file-service://` pointer with `metadata.dalle` (DALL·E 3).
    pub fn generated_image(&mut self, file_id: &str) -> String {
        let gen_id = uuid_from(&mut self.rng);
        let size = asset_bytes(file_id, "image.webp").len();
        let (tool, meta) = if file_id.starts_with("file_") {
            (
                "t2uay3k.sj1i4kz",
                json!({"generation": {"gen_id": gen_id, "gen_size": "image", "seed": null, "parent_gen_id": null,
                       "height": 1024, "width": 1024, "transparent_background": false, "serialization_title": "Image Generation"},
                       "container_pixel_height": 1024, "container_pixel_width": 1024, "sanitized": true,
                       "asset_pointer_link": null, "watermarked_asset_pointer": null}),
            )
        } else {
            (
                "dalle.text2im",
                json!({"dalle": {"gen_id": gen_id, "prompt": "a fixture cat", "seed": 42, "parent_gen_id": null,
                       "edit_op": null, "serialization_title": "DALL-E generation metadata"}}),
            )
        };
        let part = json!({"content_type": "image_asset_pointer", "asset_pointer": asset_pointer(file_id),
                          "size_bytes": size, "width": 1024, "height": 1024, "fovea": null, "metadata": meta});
        let (id, mut msg) = self.message(
            "tool",
            Some(tool),
            json!({"content_type": "multimodal_text", "parts": [part]}),
            true,
        );
        msg["channel"] = json!("final");
        merge(
            &mut msg["metadata"],
            json!({"model_slug": self.model, "image_gen_title": "Fixture image"}),
        );
        self.attach(id, msg)
    }

    /// A user voice turn: `audio_transcription` plus `audio_asset_pointer` parts.
    pub fn voice(&mut self, transcript: &str, audio_file_id: &str) -> String {
        let size = asset_bytes(audio_file_id, "audio.wav").len();
        let parts = json!([
            {"content_type": "audio_transcription", "text": transcript, "direction": "in", "decoding_id": null},
            {"content_type": "audio_asset_pointer", "asset_pointer": asset_pointer(audio_file_id), "format": "wav",
             "size_bytes": size, "expiry_datetime": "2026-07-01T00:00:00.000000+00:00",
             "metadata": {"start_timestamp": null, "end_timestamp": null, "pretokenized_vq": null, "interruptions": null,
                          "original_audio_source": null, "transcription": null, "word_transcription": null,
                          "start": 0.0, "end": 2.5}},
        ]);
        let (id, mut msg) = self.message(
            "user",
            None,
            json!({"content_type": "multimodal_text", "parts": parts}),
            true,
        );
        self.request_id = uuid_from(&mut self.rng);
        merge(
            &mut msg["metadata"],
            json!({"request_id": self.request_id, "voice_mode_message": true, "real_time_audio_has_video": false}),
        );
        msg[UNKNOWN_MESSAGE_KEY] = json!({"kept": true});
        self.attach(id, msg)
    }

    /// Hidden custom instructions (role user, `user_editable_context`), placed before the first turn.
    pub fn user_editable_context(&mut self, user_profile: &str, user_instructions: &str) -> String {
        let content = json!({"content_type": "user_editable_context", "user_profile": user_profile, "user_instructions": user_instructions});
        let (id, mut msg) = self.message("user", None, content, false);
        msg["weight"] = json!(0);
        msg["metadata"] = json!({
            "is_visually_hidden_from_conversation": true,
            "is_user_system_message": true,
            "user_context_message_data": {"about_user_message": user_profile, "about_model_message": user_instructions},
        });
        self.attach(id, msg)
    }

    /// A hidden memory snapshot (`model_editable_context`).
    pub fn model_editable_context(&mut self, memory: &str) -> String {
        let content = json!({"content_type": "model_editable_context", "model_set_context": memory,
                             "repository": null, "repo_summary": null, "structured_context": null});
        let (id, mut msg) = self.message("assistant", None, content, false);
        msg["weight"] = json!(0.0);
        merge(
            &mut msg["metadata"],
            json!({"is_visually_hidden_from_conversation": true}),
        );
        self.attach(id, msg)
    }

    /// An assistant message of a content type convos does not know; `fields` (an object) is kept.
    pub fn unknown_content(&mut self, content_type: &str, fields: Value) -> String {
        let mut content = match fields {
            Value::Object(map) => Value::Object(map),
            other => json!({"value": other}),
        };
        content["content_type"] = json!(content_type);
        let (id, mut msg) = self.message("assistant", None, content, true);
        merge(&mut msg["metadata"], self.model_meta(200_002));
        self.attach(id, msg)
    }

    /// Moves the cursor to `node_id`: the next append becomes a new child (a sibling branch).
    pub fn branch_from(&mut self, node_id: &str) -> &mut Self {
        assert!(
            self.index.contains_key(node_id),
            "fixture misuse: branch_from unknown node {node_id}"
        );
        self.cursor = node_id.to_string();
        self
    }

    /// Sets `current_node` explicitly; any string is accepted, even one missing from the mapping.
    pub fn set_current(&mut self, node_id: &str) -> &mut Self {
        self.current = Some(node_id.to_string());
        self
    }

    /// Drops every node's `children` key (the 2026 "slim" export shape; children come from parents).
    pub fn slim(&mut self) -> &mut Self {
        self.slim = true;
        self
    }

    /// Appends `n` alternating user/assistant text messages in O(n); returns the last node id.
    pub fn linear(&mut self, n: usize) -> String {
        let mut last = self.cursor.clone();
        for i in 0..n {
            last = if i % 2 == 0 {
                self.user(&format!("Question {i}"))
            } else {
                self.assistant(&format!("Answer {i}"))
            };
        }
        last
    }

    /// The conversation as a JSON object in the export shape.
    pub fn build(&self) -> Value {
        let mut mapping = Map::new();
        for node in &self.nodes {
            let mut obj = Map::new();
            obj.insert("id".into(), json!(node.id));
            obj.insert(
                "message".into(),
                node.message.clone().unwrap_or(Value::Null),
            );
            obj.insert("parent".into(), json!(node.parent));
            if !self.slim {
                obj.insert("children".into(), json!(node.children));
            }
            mapping.insert(node.id.clone(), Value::Object(obj));
        }
        let current = self
            .current
            .clone()
            .unwrap_or_else(|| self.last_added.clone());
        let mut conv = json!({
            "title": self.title,
            "create_time": secs(self.create_us),
            "update_time": secs(self.clock_us + 500_000),
            "mapping": mapping,
            "moderation_results": [],
            "current_node": current,
            "plugin_ids": null,
            "conversation_id": self.id,
            "conversation_template_id": null,
            "gizmo_id": null,
            "gizmo_type": null,
            "is_archived": false,
            "is_starred": null,
            "safe_urls": [],
            "blocked_urls": [],
            "default_model_slug": self.model,
            "conversation_origin": null,
            "voice": null,
            "async_status": null,
            "disabled_tool_ids": [],
            "is_do_not_remember": false,
            "memory_scope": "global_enabled",
            "sugar_item_id": null,
            "pinned_time": null,
            "is_study_mode": false,
            "id": self.id,
            UNKNOWN_CONV_KEY: {"kept": true, "nested": {"list": [1, 2.5, "ß", null, {"deep": [[]]}]}},
        });
        let obj = conv
            .as_object_mut()
            .expect("built conversation is an object");
        for (key, value) in &self.overrides {
            match value {
                Some(v) => obj.insert(key.clone(), v.clone()),
                None => obj.remove(key),
            };
        }
        conv
    }
}

/// A two-message conversation (one user question, one assistant answer).
pub fn simple_conversation(id: &str, title: &str) -> Value {
    let mut c = ConvBuilder::new(id, title);
    c.user(&format!("Question for {title}"));
    c.assistant(&format!("Answer for {title}"));
    c.build()
}

/// One conversation with every content type the builder knows, plus two dead-end branches.
///
/// Main line: custom instructions, memory, text, thoughts, recap, an uploaded image
/// (`file-AllTypesPhoto1`, photo.png), python code with a plot (`file-AllTypesPlot1`), browser
/// search and quote, `web.run` page, a `container.exec` error, a generated image
/// (`file_00000000a11c0de5000000000000ge01`), a voice turn (`file_00000000a11c0de5000000000000a0d1`),
/// an unknown content type, ending at the leaf that `current_node` names. Branches: a regenerated
/// answer to the first question, and an edited prompt after the image answer; both are newer than
/// the main line's middle but `current_node` keeps pointing at the main leaf.
pub fn all_content_types_conversation() -> Value {
    let mut c = ConvBuilder::new("a11c0de5-0000-4000-8000-000000000001", "Every content type");
    c.start_time(BASE_EPOCH + 3 * 86_400)
        .model("gpt-5-thinking");
    c.user_editable_context("The user is a test fixture.", "Answer in one line.");
    c.model_editable_context("1. [2026-01-01]. User likes cats.");
    let q1 = c.user("Plan a weekend in Porto.");
    c.thoughts(&[
        ("Planning", "Consider food and the river."),
        ("Checking", ""),
    ]);
    c.reasoning_recap("Thought for 7s");
    c.assistant("Day 1: Ribeira. Day 2: Serralves.");
    c.user_image(
        "What is in this photo?",
        "file-AllTypesPhoto1",
        "photo.png",
        "image/png",
    );
    c.assistant("A bar chart of rainfall.");
    c.user("Plot y = x².");
    c.code(
        "python",
        "import matplotlib.pyplot as plt\r\nplt.plot([0, 1, 2], [0, 1, 4])\r\nplt.show()",
        "python",
    );
    c.execution_output("\n<<ImageDisplayed>>", Some("file-AllTypesPlot1"));
    c.assistant("Here is the plot.");
    c.user("Search the web for the weather.");
    c.code("unknown", "search(\"Porto weather\")", "browser");
    c.tether_browsing_display(
        "【0†Porto weather†weather.example.com】\nSunny, 21°C.",
        None,
    );
    c.code("unknown", "mclick([0])", "browser");
    c.tether_quote(
        "https://weather.example.com/porto",
        "Porto weather",
        "Sunny, 21°C, light wind.",
    );
    c.code(
        "json",
        "{\"open\":[{\"ref_id\":\"turn0search0\"}]}",
        "web.run",
    );
    c.sonic_webpage(
        "https://news.example.org/porto",
        "Porto news",
        "The festival starts on Friday.",
    );
    c.assistant("Sunny. \u{e200}cite\u{e202}turn0search0\u{e201}");
    c.user("List the files.");
    c.code(
        "json",
        "{\"cmd\":[\"bash\",\"-lc\",\"ls\"]}",
        "container.exec",
    );
    c.system_error(
        "ChatGPTAgentToolException",
        "Tool call failed: sandbox unavailable",
    );
    c.user("Draw a cat.");
    c.code(
        "json",
        "{\"prompt\":\"a cat in Porto\",\"size\":\"1024x1024\"}",
        "t2uay3k.sj1i4kz",
    );
    c.generated_image("file_00000000a11c0de5000000000000ge01");
    let image_answer = c.assistant("Here is your cat.");
    c.voice("Tell me a joke.", "file_00000000a11c0de5000000000000a0d1");
    c.assistant("Why did the cat sit on the computer? To keep an eye on the mouse.");
    c.unknown_content(
        "some_future_type",
        json!({"payload": {"nested": [1, 2, 3]}, "flag": true}),
    );
    let main_leaf = c.assistant("Anything else?");
    // A regeneration: a second answer to the first question, a dead end.
    c.branch_from(&q1);
    c.assistant("Regenerated: Day 1: Livraria Lello. Day 2: beach.");
    // An edited prompt: a second user turn under the cat answer, a dead end.
    c.branch_from(&image_answer);
    c.user("Actually, draw a dog (edited).");
    c.assistant("Here is your dog.");
    c.set_current(&main_leaf);
    c.build()
}

// ---------------------------------------------------------------------------------------------
// Assets
// ---------------------------------------------------------------------------------------------

/// An attachment as a real export carries it; the member name follows the variant's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asset {
    /// Upload at the top level: member `<file_id>-<name>` (e.g. `file-AbC123-photo.png`).
    Legacy {
        /// File id as in the asset pointer, e.g. `file-AbC123`.
        file_id: String,
        /// Original file name.
        name: String,
    },
    /// DALL·E image: member `dalle-generations/<file_id>-<uuid>.webp`.
    Dalle {
        /// File id as in the asset pointer, e.g. `file-Dalle1`.
        file_id: String,
        /// Generation uuid in the file name.
        uuid: String,
    },
    /// `sediment://` file under a user folder: member `<user>/<file_id>-<name>`.
    UserDir {
        /// Folder name, e.g. `user-xyz`.
        user: String,
        /// File id, e.g. `file_00000000abcd`.
        file_id: String,
        /// Original file name.
        name: String,
    },
    /// 2026 layout: member `<file_id>.dat`, listed in `conversation_asset_file_names.json`.
    Dat {
        /// File id, e.g. `file-XYZ` (the member is `file-XYZ.dat`).
        file_id: String,
        /// Original name recorded in `conversation_asset_file_names.json`.
        original_name: String,
    },
}

impl Asset {
    /// A top-level `file-<id>-<name>` upload.
    pub fn legacy(file_id: &str, name: &str) -> Self {
        Asset::Legacy {
            file_id: file_id.into(),
            name: name.into(),
        }
    }

    /// A `dalle-generations/` image.
    pub fn dalle(file_id: &str, uuid: &str) -> Self {
        Asset::Dalle {
            file_id: file_id.into(),
            uuid: uuid.into(),
        }
    }

    /// A file under a `user-…/` folder.
    pub fn user_dir(user: &str, file_id: &str, name: &str) -> Self {
        Asset::UserDir {
            user: user.into(),
            file_id: file_id.into(),
            name: name.into(),
        }
    }

    /// A `.dat` member with its original name.
    pub fn dat(file_id: &str, original_name: &str) -> Self {
        Asset::Dat {
            file_id: file_id.into(),
            original_name: original_name.into(),
        }
    }

    /// The file id (what the asset pointer names after its scheme).
    pub fn file_id(&self) -> &str {
        match self {
            Asset::Legacy { file_id, .. }
            | Asset::Dalle { file_id, .. }
            | Asset::UserDir { file_id, .. }
            | Asset::Dat { file_id, .. } => file_id,
        }
    }

    /// Member path inside the export (relative to the nested folder, if any).
    pub fn member_name(&self) -> String {
        match self {
            Asset::Legacy { file_id, name } => format!("{file_id}-{name}"),
            Asset::Dalle { file_id, uuid } => format!("dalle-generations/{file_id}-{uuid}.webp"),
            Asset::UserDir {
                user,
                file_id,
                name,
            } => format!("{user}/{file_id}-{name}"),
            Asset::Dat { file_id, .. } => format!("{file_id}.dat"),
        }
    }

    /// The user-facing file name (for Dalle, `<uuid>.webp`).
    pub fn original_name(&self) -> String {
        match self {
            Asset::Legacy { name, .. } | Asset::UserDir { name, .. } => name.clone(),
            Asset::Dalle { uuid, .. } => format!("{uuid}.webp"),
            Asset::Dat { original_name, .. } => original_name.clone(),
        }
    }

    /// MIME type guessed from the original name's extension.
    pub fn mime_type(&self) -> &'static str {
        mime_for(&self.original_name())
    }

    /// The member's bytes: `asset_bytes(file_id, original_name)`.
    pub fn bytes(&self) -> Vec<u8> {
        asset_bytes(self.file_id(), &self.original_name())
    }

    /// Hex SHA-256 of [`Asset::bytes`].
    pub fn sha256_hex(&self) -> String {
        sha256_hex(&self.bytes())
    }
}

/// Lower-case extension of a file name, or "".
fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// MIME type for a file name's extension.
fn mime_for(name: &str) -> &'static str {
    match extension(name).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Deterministic bytes for an asset: a valid magic/header for its extension, then seeded filler.
///
/// PNGs start with the signature and a 1×1 IHDR chunk (correct chunk CRC); jpg/webp/wav/pdf get
/// their magic numbers. The bytes depend on the file id and the extension only.
pub fn asset_bytes(file_id: &str, name: &str) -> Vec<u8> {
    let mut out = match extension(name).as_str() {
        "png" => {
            let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
            let mut chunk = b"IHDR".to_vec();
            chunk.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
            png.extend_from_slice(&13u32.to_be_bytes());
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
            png
        }
        "jpg" | "jpeg" => b"\xff\xd8\xff\xe0\x00\x10JFIF\x00".to_vec(),
        "webp" => b"RIFF\x40\x00\x00\x00WEBPVP8 ".to_vec(),
        "wav" => b"RIFF\x40\x00\x00\x00WAVEfmt ".to_vec(),
        "pdf" => b"%PDF-1.4\n".to_vec(),
        _ => Vec::new(),
    };
    out.extend_from_slice(format!("convos fixture asset {file_id}\n").as_bytes());
    let mut state = fnv1a(file_id);
    for _ in 0..8 {
        out.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ExportBuilder
// ---------------------------------------------------------------------------------------------

/// How the conversations are split into members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One `conversations.json` array (≤ 2025).
    Single,
    /// `conversations-000.json` … (2026); conversations are split into `shards` contiguous runs
    /// (trailing shards are `[]` when there are fewer conversations), with or without
    /// `export_manifest.json`.
    Sharded {
        /// Number of shard files.
        shards: usize,
        /// Whether to write `export_manifest.json`.
        manifest: bool,
    },
}

/// One entry of the export being assembled.
enum Entry {
    Dir(String),
    File(String, Vec<u8>),
}

/// Collects conversations and assets and writes them as a ZIP, a folder or a bare JSON file.
///
/// Defaults: [`Layout::Single`], compact JSON, no BOM, companions (`user.json`,
/// `message_feedback.json`, `shared_conversations.json`, `chat.html`) included.
#[derive(Clone, Debug)]
pub struct ExportBuilder {
    conversations: Vec<Value>,
    assets: Vec<Asset>,
    layout: Layout,
    folder: Option<String>,
    macos_junk: bool,
    bom: bool,
    pretty: bool,
    companions: bool,
    library_files: bool,
    files_list_manifest: bool,
    extra: Vec<(String, Vec<u8>)>,
}

impl Default for ExportBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ExportBuilder {
    /// An empty single-file export with companions.
    pub fn new() -> Self {
        ExportBuilder {
            conversations: Vec::new(),
            assets: Vec::new(),
            layout: Layout::Single,
            folder: None,
            macos_junk: false,
            bom: false,
            pretty: false,
            companions: true,
            library_files: false,
            files_list_manifest: false,
            extra: Vec::new(),
        }
    }

    /// Chooses the layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Adds one conversation (any JSON value; it is written as given).
    pub fn conversation(mut self, conv: Value) -> Self {
        self.conversations.push(conv);
        self
    }

    /// Adds several conversations.
    pub fn conversations(mut self, convs: impl IntoIterator<Item = Value>) -> Self {
        self.conversations.extend(convs);
        self
    }

    /// Adds one asset member.
    pub fn asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Puts every member under one top-level folder (plus its directory entry in the ZIP).
    pub fn nested(mut self, folder_name: &str) -> Self {
        self.folder = Some(folder_name.trim_end_matches('/').to_string());
        self
    }

    /// Adds macOS Archive Utility junk: `__MACOSX/…/._<name>` AppleDouble files.
    pub fn macos_junk(mut self) -> Self {
        self.macos_junk = true;
        self
    }

    /// Prefixes each conversations JSON file with a UTF-8 BOM.
    pub fn bom(mut self) -> Self {
        self.bom = true;
        self
    }

    /// Pretty-prints the conversations JSON (default: compact).
    pub fn pretty(mut self) -> Self {
        self.pretty = true;
        self
    }

    /// Leaves out `user.json`, `message_feedback.json`, `shared_conversations.json`, `chat.html`.
    pub fn without_companions(mut self) -> Self {
        self.companions = false;
        self
    }

    /// Adds `library_files.json` describing every asset (origination ids found by scanning).
    pub fn library_files(mut self) -> Self {
        self.library_files = true;
        self
    }

    /// Writes the manifest in the other reported shape, `{"version":1,"files":[{"name",…,"shards"}]}`.
    pub fn files_list_manifest(mut self) -> Self {
        self.files_list_manifest = true;
        self
    }

    /// Adds an arbitrary member (path relative to the nested folder, if any).
    pub fn member(mut self, name: &str, bytes: &[u8]) -> Self {
        self.extra.push((name.to_string(), bytes.to_vec()));
        self
    }

    /// The conversations added so far.
    pub fn conversation_values(&self) -> &[Value] {
        &self.conversations
    }

    /// Names of the conversations JSON members for the layout (without the nested folder).
    pub fn conversation_file_names(&self) -> Vec<String> {
        match self.layout {
            Layout::Single => vec!["conversations.json".to_string()],
            Layout::Sharded { shards, .. } => (0..shards.max(1))
                .map(|i| format!("conversations-{i:03}.json"))
                .collect(),
        }
    }

    /// Serialises a run of conversations as a JSON array, honouring `pretty` and `bom`.
    fn json_array(&self, convs: &[Value]) -> Vec<u8> {
        let mut out = if self.bom {
            b"\xef\xbb\xbf".to_vec()
        } else {
            Vec::new()
        };
        let body = if self.pretty {
            serde_json::to_vec_pretty(convs)
        } else {
            serde_json::to_vec(convs)
        };
        out.extend(body.expect("serialising fixture conversations"));
        out
    }

    /// Bytes of a bare `conversations.json` holding every conversation.
    pub fn conversations_json_bytes(&self) -> Vec<u8> {
        self.json_array(&self.conversations)
    }

    /// Conversations JSON members: (name, bytes).
    fn conversation_files(&self) -> Vec<(String, Vec<u8>)> {
        let names = self.conversation_file_names();
        let per = self.conversations.len().div_ceil(names.len()).max(1);
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let start = (i * per).min(self.conversations.len());
                let end = ((i + 1) * per).min(self.conversations.len());
                (name, self.json_array(&self.conversations[start..end]))
            })
            .collect()
    }

    /// `export_manifest.json` in the corpus form (or the files-list form).
    fn manifest(&self, shard_names: &[String]) -> Value {
        if self.files_list_manifest {
            let mut files = vec![json!({"name": "conversations.json",
                                        "shards": shard_names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()})];
            if self.assets.iter().any(|a| matches!(a, Asset::Dat { .. })) {
                files.push(json!({"name": "conversation_asset_file_names.json"}));
            }
            if self.library_files {
                files.push(json!({"name": "library_files.json"}));
            }
            files.extend(self.assets.iter().map(|a| json!({"name": a.member_name()})));
            json!({"version": 1, "files": files})
        } else {
            json!({"version": 1, "manifest_file": "export_manifest.json",
                   "logical_files": {"conversations.json": {"files": shard_names, "sharded": true}}})
        }
    }

    /// `library_files.json`: one entry per asset, linked to the first message that names it.
    fn library_files_json(&self) -> Value {
        // Serialise each message once, then search it for each file id.
        let mut messages: Vec<(String, String, String)> = Vec::new();
        for conv in &self.conversations {
            let cid = conv_id(conv);
            if let Some(mapping) = conv.get("mapping").and_then(Value::as_object) {
                for node in mapping.values() {
                    if let Some(msg) = node.get("message").filter(|m| !m.is_null()) {
                        let mid = msg
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        messages.push((cid.clone(), mid, msg.to_string()));
                    }
                }
            }
        }
        let entries: Vec<Value> = self
            .assets
            .iter()
            .map(|a| {
                let origin = messages.iter().find(|(_, _, text)| text.contains(a.file_id()));
                let mut seed = fnv1a(a.file_id());
                json!({
                    "file_id": a.file_id(),
                    "id": {"id": format!("lib_{:016x}", splitmix(&mut seed)), "partition_key": "user-FixtureUser0000000000000"},
                    "file_name": a.original_name(),
                    "mime_type": a.mime_type(),
                    "origination_message_id": origin.map(|(_, m, _)| m.clone()),
                    "origination_thread_id": origin.map(|(c, _, _)| c.clone()),
                })
            })
            .collect();
        Value::Array(entries)
    }

    /// Companion members of a real export.
    fn companion_files(&self) -> Vec<(String, Vec<u8>)> {
        let first = self.conversations.first();
        let feedback: Vec<Value> = first
            .map(|c| {
                json!({"id": "4997a000-0000-4000-8000-00000000fb01", "conversation_id": conv_id(c),
                       "user_id": "user-FixtureUser0000000000000", "rating": "thumbsUp",
                       "create_time": "2026-01-05T06:34:54.045039+00:00", "workspace_id": null,
                       "content": "{\"text\": \"Helpful fixture answer\", \"tags\": []}",
                       "storage_protocol": "zstd::1.5.5.1"})
            })
            .into_iter()
            .collect();
        let shared: Vec<Value> = first
            .map(|c| {
                json!({"id": "458f67f6-0000-4000-8000-00000000a501", "conversation_id": conv_id(c),
                       "title": c.get("title").cloned().unwrap_or(Value::Null), "is_anonymous": true})
            })
            .into_iter()
            .collect();
        let user = json!({"id": "user-FixtureUser0000000000000", "email": FAKE_EMAIL,
                          "chatgpt_plus_user": true, "phone_number": FAKE_PHONE});
        let embedded =
            serde_json::to_string(&self.conversations).expect("serialising chat.html data");
        let html = format!(
            "<!DOCTYPE html>\n<html>\n<head><meta charset=\"UTF-8\"><title>ChatGPT Data Export</title></head>\n\
             <body><div id=\"root\"></div>\n<script>\nvar jsonData = {embedded};\n</script>\n</body>\n</html>\n"
        );
        let mut files = vec![("user.json".to_string(), to_json(&user))];
        if matches!(self.layout, Layout::Sharded { .. }) {
            let settings = json!({"user_id": "user-FixtureUser0000000000000",
                                  "settings": {"training_allowed": false, "show_expanded_code_view": true}});
            files.push(("user_settings.json".to_string(), to_json(&settings)));
        }
        files.push(("message_feedback.json".to_string(), to_json(&feedback)));
        files.push(("shared_conversations.json".to_string(), to_json(&shared)));
        files.push(("chat.html".to_string(), html.into_bytes()));
        files
    }

    /// Every entry in write order, with the nested folder applied.
    fn entries(&self) -> Vec<Entry> {
        let mut files: Vec<(String, Vec<u8>)> = self.conversation_files();
        let conv_names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        if let Layout::Sharded { manifest: true, .. } = self.layout {
            files.push((
                "export_manifest.json".into(),
                to_json(&self.manifest(&conv_names)),
            ));
        }
        let dat_names: BTreeMap<String, String> = self
            .assets
            .iter()
            .filter_map(|a| match a {
                Asset::Dat { original_name, .. } => Some((a.member_name(), original_name.clone())),
                _ => None,
            })
            .collect();
        if !dat_names.is_empty() {
            files.push((
                "conversation_asset_file_names.json".into(),
                to_json(&dat_names),
            ));
        }
        if self.library_files {
            files.push((
                "library_files.json".into(),
                to_json(&self.library_files_json()),
            ));
        }
        if self.companions {
            files.extend(self.companion_files());
        }
        files.extend(self.assets.iter().map(|a| (a.member_name(), a.bytes())));
        files.extend(self.extra.iter().cloned());

        let prefix = self
            .folder
            .as_ref()
            .map(|f| format!("{f}/"))
            .unwrap_or_default();
        let mut entries = Vec::new();
        if !prefix.is_empty() {
            entries.push(Entry::Dir(prefix.clone()));
        }
        let junk_targets: Vec<String> = if self.macos_junk {
            files
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| conv_names.contains(n) || n == "user.json")
                .collect()
        } else {
            Vec::new()
        };
        entries.extend(
            files
                .into_iter()
                .map(|(n, b)| Entry::File(format!("{prefix}{n}"), b)),
        );
        if self.macos_junk {
            // Archive Utility puts the resource forks last, mirroring the tree under __MACOSX/.
            entries.push(Entry::Dir("__MACOSX/".into()));
            if !prefix.is_empty() {
                entries.push(Entry::Dir(format!("__MACOSX/{prefix}")));
            }
            for name in junk_targets {
                entries.push(Entry::File(
                    format!("__MACOSX/{prefix}._{name}"),
                    apple_double(&name),
                ));
            }
        }
        entries
    }

    /// Paths of every file member (no directory entries), in write order.
    pub fn member_names(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::File(n, _) => Some(n),
                Entry::Dir(_) => None,
            })
            .collect()
    }

    /// The export as ZIP bytes (deflated, fixed timestamps, so byte-identical across runs).
    pub fn to_zip_bytes(&self) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for entry in self.entries() {
            match entry {
                Entry::Dir(name) => zip
                    .add_directory(name, dir_options())
                    .expect("adding a fixture directory"),
                Entry::File(name, bytes) => {
                    zip.start_file(name, file_options())
                        .expect("starting a fixture member");
                    zip.write_all(&bytes).expect("writing a fixture member");
                }
            }
        }
        zip.finish()
            .expect("finishing the fixture zip")
            .into_inner()
    }

    /// Writes the export as a ZIP file at `path`.
    pub fn write_zip(&self, path: &Path) {
        fs::write(path, self.to_zip_bytes()).expect("writing the fixture zip");
    }

    /// Writes the export unpacked under `dir` (same member paths as the ZIP).
    pub fn write_dir(&self, dir: &Path) {
        for entry in self.entries() {
            let (name, bytes) = match entry {
                Entry::Dir(name) => {
                    fs::create_dir_all(safe_join(dir, &name))
                        .expect("creating a fixture directory");
                    continue;
                }
                Entry::File(name, bytes) => (name, bytes),
            };
            let path = safe_join(dir, &name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("creating a fixture directory");
            }
            fs::write(&path, bytes).expect("writing a fixture file");
        }
    }

    /// Writes a bare `conversations.json` array file at `path` (honours `bom` and `pretty`).
    pub fn write_conversations_json(&self, path: &Path) {
        fs::write(path, self.conversations_json_bytes())
            .expect("writing fixture conversations.json");
    }
}

/// `dir` joined with a `/`-separated relative member name; refuses names that would escape.
fn safe_join(dir: &Path, name: &str) -> PathBuf {
    let rel = Path::new(name);
    assert!(
        rel.components().all(|c| matches!(c, Component::Normal(_))),
        "fixture misuse: member name {name:?} would escape the folder"
    );
    dir.join(rel)
}

/// Compact JSON bytes of a serialisable value.
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising fixture JSON")
}

/// An AppleDouble resource-fork file as macOS zips add them (header, then garbage).
fn apple_double(name: &str) -> Vec<u8> {
    let mut out = vec![0x00, 0x05, 0x16, 0x07, 0x00, 0x02, 0x00, 0x00];
    out.extend_from_slice(b"Mac OS X        ");
    out.extend_from_slice(&[0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x32]);
    let mut state = fnv1a(name);
    out.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    out.extend_from_slice(b"com.apple.quarantine");
    out
}

/// Fixed entry time: DOS time has 2 s resolution, so use an even second.
fn fixed_time() -> DateTime {
    DateTime::from_date_and_time(2026, 1, 2, 3, 4, 6).expect("valid fixed zip timestamp")
}

/// Options for deflated file members with a fixed timestamp and mode.
fn file_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(fixed_time())
        .unix_permissions(0o644)
}

/// Options for directory entries.
fn dir_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .last_modified_time(fixed_time())
        .unix_permissions(0o755)
}

/// A deterministic ZIP (deflated, fixed timestamps) of the given members, in order.
pub fn zip_members(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in members {
        zip.start_file(*name, file_options())
            .expect("starting a fixture member");
        zip.write_all(bytes).expect("writing a fixture member");
    }
    zip.finish()
        .expect("finishing the fixture zip")
        .into_inner()
}

/// A realistic small export: 2 shards + manifest, 5 conversations, 3 assets, companions.
///
/// Conversations are [`SAMPLE_CONVERSATION_IDS`] (oldest first, one day apart): a plain chat, a
/// photo upload (`Asset::Legacy` `file-SamplePhoto01`, photo.png), a diagram upload with a
/// regenerated answer (`Asset::UserDir` `user-Sample01/file_00000000sample0000000000000003`,
/// diagram.png; non-ASCII title), an archived chat with a `.dat` attachment (`Asset::Dat`
/// `file-SampleNotes04`, notes.jpg), and a project chat with python code. The file is named like
/// a real export (`<64 hex>-2026-01-15-10-20-30-<32 hex>.zip`) inside `dir`.
pub fn sample_export(dir: &Path) -> PathBuf {
    let ids = SAMPLE_CONVERSATION_IDS;
    let start = |i: u64| BASE_EPOCH + 10 * 86_400 + i * 86_400;
    let mut convs = Vec::new();

    let mut c = ConvBuilder::new(ids[0], "Trip to Lisbon");
    c.start_time(start(0));
    c.user("What should I see in Lisbon?");
    c.assistant("Alfama, Belém and the LX Factory.");
    convs.push(c.build());

    let mut c = ConvBuilder::new(ids[1], "Photo review");
    c.start_time(start(1)).model("gpt-4o");
    c.user_image(
        "Is this photo sharp?",
        "file-SamplePhoto01",
        "photo.png",
        "image/png",
    );
    c.assistant("Yes, the focus is on the subject.");
    convs.push(c.build());

    let mut c = ConvBuilder::new(ids[2], "Diagram 📐 — Überblick");
    c.start_time(start(2));
    let q = c.user_image(
        "Explain this diagram.",
        "file_00000000sample0000000000000003",
        "diagram.png",
        "image/png",
    );
    c.assistant("It shows a pipeline.");
    c.branch_from(&q);
    c.assistant("It shows a data pipeline with three stages.");
    convs.push(c.build());

    let mut c = ConvBuilder::new(ids[3], "Handwritten notes");
    c.start_time(start(3)).set("is_archived", json!(true));
    c.user_image(
        "Transcribe my notes.",
        "file-SampleNotes04",
        "notes.jpg",
        "image/jpeg",
    );
    c.assistant("Buy milk. Call Ana.");
    convs.push(c.build());

    let mut c = ConvBuilder::new(ids[4], "Project: budget");
    c.start_time(start(4))
        .set("gizmo_id", json!("g-p-6925e1746714832f9a1b5a0000000005"))
        .set("gizmo_type", json!("snorlax"))
        .set(
            "conversation_template_id",
            json!("g-p-6925e1746714832f9a1b5a0000000005"),
        );
    c.user("Sum 2 and 3.");
    c.code("python", "2 + 3", "python");
    c.execution_output("5", None);
    c.assistant("The sum is 5.");
    convs.push(c.build());

    let export = ExportBuilder::new()
        .layout(Layout::Sharded {
            shards: 2,
            manifest: true,
        })
        .conversations(convs)
        .asset(Asset::legacy("file-SamplePhoto01", "photo.png"))
        .asset(Asset::user_dir(
            "user-Sample01",
            "file_00000000sample0000000000000003",
            "diagram.png",
        ))
        .asset(Asset::dat("file-SampleNotes04", "notes.jpg"));
    let name = format!(
        "{}-2026-01-15-10-20-30-{}.zip",
        sha256_hex(b"convos sample export"),
        &sha256_hex(b"convos sample export suffix")[..32]
    );
    let path = dir.join(name);
    export.write_zip(&path);
    path
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: ZIP level
// ---------------------------------------------------------------------------------------------

/// 4 KiB starting with a ZIP local-header signature, then garbage (no central directory).
pub fn corrupt_zip() -> Vec<u8> {
    let mut out = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    let mut state = 0x5eed_u64;
    while out.len() < 4096 {
        out.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    // Make sure the garbage holds no end-of-central-directory signature by accident.
    while let Some(pos) = out.windows(4).position(|w| w == b"PK\x05\x06") {
        out[pos] = b'X';
    }
    out
}

/// The first `keep_fraction` (0.0–1.0) of `bytes`: a half-downloaded file. A ZIP keeps its
/// central directory at the end, so any cut before it leaves none; 0.5 always does for the
/// exports built here (their directories are far smaller than half the file).
pub fn truncate(bytes: &[u8], keep_fraction: f64) -> Vec<u8> {
    let keep = (bytes.len() as f64 * keep_fraction.clamp(0.0, 1.0)) as usize;
    bytes[..keep.min(bytes.len())].to_vec()
}

/// A valid ZIP with only `user.json` and `chat.html` (no conversations at all).
pub fn zip_without_conversations() -> Vec<u8> {
    let user = to_json(
        &json!({"id": "user-FixtureUser0000000000000", "email": FAKE_EMAIL,
                               "chatgpt_plus_user": false, "phone_number": null}),
    );
    let html = b"<!DOCTYPE html><html><body><script>var jsonData = [];</script></body></html>\n";
    zip_members(&[("user.json", &user), ("chat.html", html)])
}

/// A valid ZIP of unrelated files: `README.md`, `src/main.rs`, `Cargo.toml`, `package.json`.
pub fn zip_not_an_export() -> Vec<u8> {
    zip_members(&[
        ("README.md", b"# hello\n\nNot a ChatGPT export.\n"),
        ("src/main.rs", b"fn main() {\n    println!(\"hello\");\n}\n"),
        (
            "Cargo.toml",
            b"[package]\nname = \"hello\"\nversion = \"0.1.0\"\n",
        ),
        (
            "package.json",
            b"{\"name\": \"hello\", \"version\": \"1.0.0\"}\n",
        ),
    ])
}

/// A ZIP with [`HOSTILE_NAMES`] members, a [`HOSTILE_SYMLINK`] symlink, and a valid
/// `conversations.json` holding one conversation ([`HOSTILE_OK_ID`]) that references the file ids
/// `file-x` and `file-link` (so name-based asset matching meets the hostile members).
pub fn zip_with_hostile_names() -> Vec<u8> {
    let mut c = ConvBuilder::new(HOSTILE_OK_ID, "Survives hostile names");
    c.user_image("Look at this.", "file-x", "x.png", "image/png");
    c.assistant("Looks fine.");
    c.user_image("And this one.", "file-link", "escape.png", "image/png");
    c.assistant("Also fine.");
    let good = to_json(&[c.build()]);
    let evil = to_json(&[simple_conversation(
        "evil-outside",
        "Must not be imported from ../evil.json",
    )]);

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let mut add = |name: &str, bytes: &[u8]| {
        zip.start_file(name, file_options())
            .expect("starting a hostile member");
        zip.write_all(bytes).expect("writing a hostile member");
    };
    add(HOSTILE_NAMES[0], &evil);
    add(HOSTILE_NAMES[1], &asset_bytes("file-x", "x.png"));
    add(HOSTILE_NAMES[2], b"escaped via a/../../b\n");
    add(HOSTILE_NAMES[3], b"windows drive path\n");
    add("conversations.json", &good);
    zip.add_symlink(
        HOSTILE_SYMLINK,
        HOSTILE_SYMLINK_TARGET,
        file_options().unix_permissions(0o777),
    )
    .expect("adding the hostile symlink");
    zip.finish()
        .expect("finishing the hostile zip")
        .into_inner()
}

/// A valid ZIP of `n` entries: a one-conversation `conversations.json` (id `many-entries`)
/// followed by `n - 1` stored one-byte `junk/NNNNNNN.txt` members.
pub fn many_entries_zip(n: usize) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let convs = to_json(&[simple_conversation("many-entries", "Many entries")]);
    zip.start_file("conversations.json", file_options())
        .expect("starting conversations.json");
    zip.write_all(&convs).expect("writing conversations.json");
    let stored = file_options().compression_method(CompressionMethod::Stored);
    for i in 1..n {
        zip.start_file(format!("junk/{i:07}.txt"), stored)
            .expect("starting a junk member");
        zip.write_all(b"x").expect("writing a junk member");
    }
    zip.finish()
        .expect("finishing the many-entries zip")
        .into_inner()
}

// ---------------------------------------------------------------------------------------------
// Zip bomb: a hand-built deflate stream of spaces
// ---------------------------------------------------------------------------------------------

const CRC_POLY: u32 = 0xEDB8_8320;

/// CRC-32 (ISO-HDLC, as ZIP uses) of `bytes`; bitwise, meant for small inputs.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC_POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// a(x)·b(x) mod P(x) in the reflected CRC-32 representation (zlib's `multmodp`).
fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m: u32 = 1 << 31;
    let mut p = 0u32;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC_POLY
        } else {
            b >> 1
        };
    }
    p
}

/// x^(8·len) mod P(x): the operator that shifts a CRC past `len` zero bytes.
fn x8nmodp(len: u64) -> u32 {
    // x^(2^k) for k = 0.., squared on the fly; 64 squarings at most.
    let mut power = 1u32 << 30; // x^1
    let mut n = len;
    let mut k = 0;
    let mut p = 1u32 << 31; // x^0
    // x^(8·len) = product over set bits i of len of x^(2^(i+3)); skip to k = 3 first.
    while k < 3 {
        power = multmodp(power, power);
        k += 1;
    }
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(power, p);
        }
        power = multmodp(power, power);
        n >>= 1;
    }
    p
}

/// CRC of A‖B from CRC(A), CRC(B) and len(B) (zlib's `crc32_combine`).
fn crc32_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    multmodp(x8nmodp(len_b), crc_a) ^ crc_b
}

/// CRC-32 of `n` ASCII spaces in O(log n), by repeated doubling with `crc32_combine`.
pub fn crc32_of_spaces(n: u64) -> u32 {
    let mut result = 0u32; // CRC of the empty string
    let mut piece = crc32(b" ");
    let mut piece_len = 1u64;
    let mut rest = n;
    while rest != 0 {
        if rest & 1 != 0 {
            result = crc32_combine(result, piece, piece_len);
        }
        rest >>= 1;
        if rest != 0 {
            piece = crc32_combine(piece, piece, piece_len);
            piece_len *= 2;
        }
    }
    result
}

/// LSB-first bit packer for deflate.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            out: Vec::new(),
            acc: 0,
            nbits: 0,
        }
    }

    /// Appends the low `count` (≤ 32) bits of `value`, least significant first.
    fn bits(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value & ((1u64 << count) - 1) as u32) << self.nbits;
        self.nbits += count;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    /// Appends a Huffman code, which deflate stores most significant bit first.
    fn huff(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.bits((code >> i) & 1, 1);
        }
    }

    /// Pads the last partial byte with zeros and returns everything written.
    fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A raw deflate stream inflating to `n` spaces, as (head, number of zero bytes, tail).
///
/// One dynamic-Huffman block whose literal/length code gives symbol 285 (length 258) a 1-bit
/// code `0`, and whose distance code gives distance 1 a 1-bit code `0`. After one literal space,
/// every "copy 258 bytes from 1 back" is therefore two zero bits, so the middle of the stream is
/// nothing but zero bytes (each worth 1,032 output bytes, deflate's maximum ratio) that the
/// caller can stream without building them. The remainder (< 258) is emitted as literals.
fn deflate_spaces(n: u64) -> (Vec<u8>, u64, Vec<u8>) {
    let mut w = BitWriter::new();
    w.bits(1, 1); // BFINAL
    w.bits(2, 2); // BTYPE = dynamic Huffman
    w.bits(286 - 257, 5); // HLIT: literal/length codes up to symbol 285
    w.bits(2 - 1, 5); // HDIST: two distance codes (a complete code; zlib rejects most incomplete ones)
    w.bits(18 - 4, 4); // HCLEN: code-length codes listed up to symbol 1 in the permuted order
    // Code-length code: 18 → "0", 1 → "10", 2 → "11" (canonical, complete).
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        let len = match sym {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        w.bits(len, 3);
    }
    let zeros = |w: &mut BitWriter, count: u32| {
        w.huff(0b0, 1); // symbol 18: repeat a zero length 11–138 times
        w.bits(count - 11, 7);
    };
    // Literal/length lengths: ' ' (32) → 2, end-of-block (256) → 2, 285 → 1; distances 0, 1 → 1.
    zeros(&mut w, 32);
    w.huff(0b11, 2); // length 2 for ' '
    zeros(&mut w, 138);
    zeros(&mut w, 85); // symbols 33..=255
    w.huff(0b11, 2); // length 2 for end-of-block
    zeros(&mut w, 28); // symbols 257..=284
    w.huff(0b10, 2); // length 1 for 285
    w.huff(0b10, 2); // length 1 for distance 0
    w.huff(0b10, 2); // length 1 for distance 1
    // Resulting codes: 285 → "0", ' ' → "10", end-of-block → "11"; distance 0 → "0".
    const LIT_SPACE: (u32, u32) = (0b10, 2);
    const END_OF_BLOCK: (u32, u32) = (0b11, 2);
    if n == 0 {
        w.huff(END_OF_BLOCK.0, END_OF_BLOCK.1);
        return (w.finish(), 0, Vec::new());
    }
    w.huff(LIT_SPACE.0, LIT_SPACE.1);
    let copies = (n - 1) / 258;
    let remainder = (n - 1) % 258;
    let mut zero_bits = copies * 2;
    let to_align = u64::from((8 - w.nbits % 8) % 8).min(zero_bits);
    w.bits(0, to_align as u32);
    zero_bits -= to_align;
    // Either the writer is byte-aligned now, or the zero bits ran out before it got there.
    let head = std::mem::take(&mut w.out);
    let zero_bytes = zero_bits / 8;
    w.bits(0, (zero_bits % 8) as u32);
    for _ in 0..remainder {
        w.huff(LIT_SPACE.0, LIT_SPACE.1);
    }
    w.huff(END_OF_BLOCK.0, END_OF_BLOCK.1);
    (head, zero_bytes, w.finish())
}

/// DOS time and date of [`fixed_time`], for hand-written headers.
const DOS_TIME: u16 = (3 << 11) | (4 << 5) | (6 / 2);
/// DOS date of 2026-01-02.
const DOS_DATE: u16 = ((2026 - 1980) << 9) | (1 << 5) | 2;

/// Writes a ZIP whose `conversations.json` inflates to `inflated_bytes` spaces, streaming.
///
/// The deflate stream is built by hand ([`deflate_spaces`]): 2.5 GB of spaces is a ~2.4 MB file
/// written in milliseconds, and the CRC-32 is computed in O(log n) ([`crc32_of_spaces`]), so it
/// is correct. With `header_lies`, the local header and central directory declare
/// [`BOMB_LIE_SIZE`] bytes uncompressed; otherwise they declare the true size (ZIP64 fields when
/// it exceeds 4 GiB). Note: the `zip` crate itself errors once output passes the declared size.
pub fn zip_bomb(path: &Path, inflated_bytes: u64, header_lies: bool) {
    let (head, zero_bytes, tail) = deflate_spaces(inflated_bytes);
    let compressed = head.len() as u64 + zero_bytes + tail.len() as u64;
    let declared = if header_lies {
        BOMB_LIE_SIZE
    } else {
        inflated_bytes
    };
    let crc = crc32_of_spaces(inflated_bytes);
    let name = b"conversations.json";
    let zip64 = declared >= 0xFFFF_FFFF || compressed >= 0xFFFF_FFFF;
    let version: u16 = if zip64 { 45 } else { 20 };
    let (csize32, usize32) = if zip64 {
        (0xFFFF_FFFF, 0xFFFF_FFFF)
    } else {
        (compressed as u32, declared as u32)
    };
    let mut extra = Vec::new();
    if zip64 {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&declared.to_le_bytes());
        extra.extend_from_slice(&compressed.to_le_bytes());
    }

    let mut local = Vec::new();
    local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [version, 0, 8, DOS_TIME, DOS_DATE] {
        local.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, csize32, usize32] {
        local.extend_from_slice(&v.to_le_bytes());
    }
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    local.extend_from_slice(name);
    local.extend_from_slice(&extra);

    let mut central = Vec::new();
    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [(3 << 8) | version, version, 0, 8, DOS_TIME, DOS_DATE] {
        central.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, csize32, usize32] {
        central.extend_from_slice(&v.to_le_bytes());
    }
    for v in [name.len() as u16, extra.len() as u16, 0, 0, 0] {
        central.extend_from_slice(&v.to_le_bytes());
    }
    central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    central.extend_from_slice(name);
    central.extend_from_slice(&extra);

    let cd_offset = local.len() as u64 + compressed;
    let cd_offset = u32::try_from(cd_offset)
        .expect("fixture limit: bomb compressed data must stay under 4 GiB");
    let mut end = Vec::new();
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        end.extend_from_slice(&v.to_le_bytes());
    }
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&cd_offset.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());

    let file = fs::File::create(path).expect("creating the zip bomb file");
    let mut w = BufWriter::with_capacity(1 << 16, file);
    w.write_all(&local).expect("writing the bomb header");
    w.write_all(&head).expect("writing the bomb stream");
    let zeros = vec![0u8; 1 << 16];
    let mut left = zero_bytes;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..n]).expect("writing the bomb stream");
        left -= n as u64;
    }
    w.write_all(&tail).expect("writing the bomb stream");
    w.write_all(&central)
        .expect("writing the bomb central directory");
    w.write_all(&end).expect("writing the bomb end record");
    w.flush().expect("flushing the zip bomb");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: JSON level
// ---------------------------------------------------------------------------------------------

/// Compact JSON of `simple_conversation(<prefix>-i, …)` for i in 0..n.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            simple_conversation(&format!("{prefix}-{i}"), &format!("{prefix} {i}")).to_string()
        })
        .collect()
}

/// Joins element texts into an array text (compact, like real exports).
fn array_text(elements: &[String]) -> String {
    format!("[{}]", elements.join(","))
}

/// A 5-element array (`mal-0`…`mal-4`) whose element `mal-2` has a syntax error
/// (`"is_archived":flase`) but balanced braces; the other four are valid.
pub fn malformed_array_middle() -> Vec<u8> {
    let mut elements = numbered("mal", 5);
    let broken = elements[2].replacen("\"is_archived\":false", "\"is_archived\":flase", 1);
    assert_ne!(
        broken, elements[2],
        "fixture bug: the syntax error was not injected"
    );
    elements[2] = broken;
    array_text(&elements).into_bytes()
}

/// A 5-element array (`unb-0`…`unb-4`) where `unb-2` lacks its final `}`: right after its last
/// value comes `,` and then element `unb-3`'s `{`. The other four elements are intact.
pub fn malformed_unbalanced() -> Vec<u8> {
    let mut elements = numbered("unb", 5);
    let cut = elements[2]
        .strip_suffix('}')
        .expect("an object ends with }")
        .to_string();
    elements[2] = cut;
    array_text(&elements).into_bytes()
}

/// An array that ends in the middle of its third element: `trunc-0` and `trunc-1` are whole.
pub fn truncated_array() -> Vec<u8> {
    let elements = numbered("trunc", 3);
    let text = array_text(&elements);
    let cut = text.len() - elements[2].len() / 2 - 1;
    text.as_bytes()[..cut].to_vec()
}

/// A conversation object with no `mapping` key at all (id `no-mapping`).
pub fn conversation_without_mapping() -> Value {
    let mut conv = simple_conversation("no-mapping", "Corrupted entry");
    conv.as_object_mut().expect("object").remove("mapping");
    conv
}

/// A conversation (id `dangling`) whose ids point outside its mapping.
///
/// The root and system nodes are missing, so the first user node's `parent` dangles; the last
/// node lists a child `missing-child`; `current_node` is `missing-current`. The visible active
/// branch (from the newest leaf) is: "First question", "First answer", "Second question",
/// "Second answer".
pub fn dangling_ids() -> Value {
    let mut c = ConvBuilder::new("dangling", "Dangling references");
    c.user("First question");
    c.assistant("First answer");
    c.user("Second question");
    let last = c.assistant("Second answer");
    c.set_current("missing-current");
    let system_id = c.system_id().to_string();
    let mut conv = c.build();
    let mapping = conv["mapping"].as_object_mut().expect("mapping object");
    mapping.remove(ROOT_ID);
    mapping.remove(&system_id);
    mapping[&last]["children"] = json!(["missing-child"]);
    conv
}

/// A 3-element array (`utf-0`…`utf-2`) where `utf-1`'s user text holds raw bytes FF FE C3.
pub fn non_utf8_array() -> Vec<u8> {
    let mut c = ConvBuilder::new("utf-1", "Bad bytes");
    c.user("before INVALID_BYTES_HERE after");
    c.assistant("ok");
    let middle = c.build().to_string();
    let elements = [
        simple_conversation("utf-0", "utf 0").to_string(),
        middle,
        simple_conversation("utf-2", "utf 2").to_string(),
    ];
    let text = array_text(&elements);
    let (before, after) = text
        .split_once("INVALID_BYTES_HERE")
        .expect("marker present");
    let mut out = before.as_bytes().to_vec();
    out.extend_from_slice(&[0xFF, 0xFE, 0xC3]);
    out.extend_from_slice(after.as_bytes());
    out
}

/// A zero-byte file.
pub fn empty_file() -> Vec<u8> {
    Vec::new()
}
