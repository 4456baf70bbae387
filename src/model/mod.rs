//! ChatGPT data as it arrives, read tolerantly, and the views derived from it.
//!
//! [`RawConversation`] is what every source hands to the archive: the verbatim JSON
//! bytes of one conversation plus a [`Summary`] computed from them. [`Conversation`]
//! is a borrowed, typed view over those bytes (the node tree with message content and
//! metadata kept as raw JSON slices), from which the active branch, visible text and
//! attachments are derived on demand.

pub mod canvas;
pub mod citations;
pub mod content;
pub mod loose;
pub mod research;
pub mod time;
pub mod tree;

use loose::{Str, reject_others};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::fmt;
pub use time::Time;

/// Why some bytes could not be taken as a conversation.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not valid JSON.
    #[error("not valid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// Valid JSON, but not an object.
    #[error("not a conversation (a JSON {0}, expected an object)")]
    NotAnObject(&'static str),
    /// An object without `conversation_id` or `id`.
    #[error("conversation has no `id` or `conversation_id`")]
    MissingId,
    /// An object with an id but no `mapping` (the message tree): nothing to archive.
    #[error(
        "conversation {id} (\"{title}\") has no `mapping` (message tree); it cannot be archived"
    )]
    MissingMapping {
        /// The conversation id.
        id: String,
        /// Its title, or an empty string.
        title: String,
    },
}

/// One conversation exactly as a source delivered it, with its derived summary.
#[derive(Clone)]
pub struct RawConversation {
    bytes: Vec<u8>,
    summary: Summary,
    repaired_utf8: bool,
}

impl fmt::Debug for RawConversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawConversation")
            .field("id", &self.summary.id)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl RawConversation {
    /// Takes the JSON bytes of one conversation object, validating that it has an id
    /// and a `mapping`. Invalid UTF-8 is replaced with U+FFFD (see [`Self::repaired_utf8`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ModelError> {
        let repaired_utf8 = simdutf8::basic::from_utf8(&bytes).is_err();
        let bytes = if repaired_utf8 {
            String::from_utf8_lossy(&bytes).into_owned().into_bytes()
        } else {
            bytes
        };
        let summary = {
            let conv = Conversation::parse(&bytes, None)?;
            conv.summary()?
        };
        Ok(Self {
            bytes,
            summary,
            repaired_utf8,
        })
    }

    /// The conversation id (`conversation_id`, else `id`).
    pub fn id(&self) -> &str {
        &self.summary.id
    }

    /// The verbatim JSON bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The derived summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Whether invalid UTF-8 had to be replaced to read this conversation.
    pub fn repaired_utf8(&self) -> bool {
        self.repaired_utf8
    }

    /// Splits into the verbatim bytes and the summary.
    pub fn into_parts(self) -> (Vec<u8>, Summary) {
        (self.bytes, self.summary)
    }
}

/// What the archive indexes about a conversation, derived from its JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Conversation id.
    pub id: String,
    /// Title, when it has one.
    pub title: Option<String>,
    /// Creation time, epoch seconds.
    pub create_time: Option<f64>,
    /// Last update time, epoch seconds: the version of this conversation.
    pub update_time: Option<f64>,
    /// The model: `default_model_slug`, else the last assistant message's `model_slug`.
    pub model: Option<String>,
    /// Custom GPT or project id (`g-…`, `g-p-…`): `gizmo_id`, else a `g-…`
    /// `conversation_template_id` (see [`Conversation::gizmo`]).
    pub gizmo_id: Option<String>,
    /// `is_archived` as the conversation JSON says.
    pub is_archived: Option<bool>,
    /// `is_starred` as the conversation JSON says.
    pub is_starred: Option<bool>,
    /// Visible messages on the active branch.
    pub message_count: u32,
    /// Nodes in the mapping.
    pub node_count: u32,
    /// Every file id that any message (on any branch) references.
    pub file_ids: Vec<String>,
}

/// A borrowed, tolerant view of a conversation object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Conversation<'a> {
    /// `id` key.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub id: Option<Str<'a>>,
    /// `conversation_id` key (preferred over `id`).
    #[serde(borrow, deserialize_with = "loose::string")]
    pub conversation_id: Option<Str<'a>>,
    /// Title.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub title: Option<Str<'a>>,
    /// Creation time.
    pub create_time: Time,
    /// Update time.
    pub update_time: Time,
    /// The leaf of the branch the UI shows.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub current_node: Option<Str<'a>>,
    /// The node tree in mapping order; `None` when the key is absent or not an object.
    #[serde(borrow, deserialize_with = "mapping")]
    pub mapping: Option<Vec<Node<'a>>>,
    /// Conversation-level model.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub default_model_slug: Option<Str<'a>>,
    /// Custom GPT / project id.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub gizmo_id: Option<Str<'a>>,
    /// `gpt`, `snorlax` (project)…
    #[serde(borrow, deserialize_with = "loose::string")]
    pub gizmo_type: Option<Str<'a>>,
    /// The custom GPT or project the conversation was started in; some conversations
    /// carry only this, not `gizmo_id`.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub conversation_template_id: Option<Str<'a>>,
    /// Archived flag.
    #[serde(deserialize_with = "loose::boolean")]
    pub is_archived: Option<bool>,
    /// Starred flag.
    #[serde(deserialize_with = "loose::boolean")]
    pub is_starred: Option<bool>,
}

/// One node of the mapping.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node<'a> {
    /// The mapping key (the node id); set by the mapping reader, not from `id`.
    #[serde(skip)]
    pub key: Str<'a>,
    /// The message, when the node carries one.
    #[serde(borrow, deserialize_with = "loose::object")]
    pub message: Option<Message<'a>>,
    /// Parent node id.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub parent: Option<Str<'a>>,
    /// Child node ids (absent in 2026 slim exports).
    #[serde(borrow, deserialize_with = "loose::string_list")]
    pub children: Vec<Str<'a>>,
}

/// A message, with content and metadata kept as raw JSON until a view needs them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Message<'a> {
    /// Message id (may differ from the node id).
    #[serde(borrow, deserialize_with = "loose::string")]
    pub id: Option<Str<'a>>,
    /// Author.
    #[serde(borrow, deserialize_with = "loose::object")]
    pub author: Option<Author<'a>>,
    /// Creation time.
    pub create_time: Time,
    /// `content` as raw JSON.
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
    /// `metadata` as raw JSON.
    #[serde(borrow)]
    pub metadata: Option<&'a RawValue>,
    /// `all` or a tool name.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub recipient: Option<Str<'a>>,
    /// `final`, `commentary`…
    #[serde(borrow, deserialize_with = "loose::string")]
    pub channel: Option<Str<'a>>,
    /// `finished_successfully`, `in_progress`…
    #[serde(borrow, deserialize_with = "loose::string")]
    pub status: Option<Str<'a>>,
}

/// A message author.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Author<'a> {
    /// `system`, `user`, `assistant`, `tool`.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub role: Option<Str<'a>>,
    /// For tools: the tool that answered.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub name: Option<Str<'a>>,
}

/// The part of `message.metadata` the views use.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MessageMeta<'a> {
    /// Model that wrote the message.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub model_slug: Option<Str<'a>>,
    /// Hidden from the UI (system prompts, context nodes…).
    #[serde(deserialize_with = "loose::boolean")]
    pub is_visually_hidden_from_conversation: Option<bool>,
    /// Uploaded files.
    #[serde(borrow, deserialize_with = "loose::object_list")]
    pub attachments: Vec<AttachmentMeta<'a>>,
    /// Code-interpreter run results (images are referenced in here).
    #[serde(borrow)]
    pub aggregate_result: Option<&'a RawValue>,
    /// How long a reasoning model thought.
    #[serde(deserialize_with = "loose::number")]
    pub finished_duration_sec: Option<f64>,
    /// 2025+ citations (see [`citations`]), raw.
    #[serde(borrow)]
    pub content_references: Option<&'a RawValue>,
    /// 2023–24 citations (see [`citations`]), raw.
    #[serde(borrow)]
    pub citations: Option<&'a RawValue>,
    /// Apps SDK state; a deep-research report lives in it (see [`research`]), raw.
    #[serde(borrow)]
    pub chatgpt_sdk: Option<&'a RawValue>,
}

/// One `metadata.attachments[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AttachmentMeta<'a> {
    /// File id.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub id: Option<Str<'a>>,
    /// Original file name.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub name: Option<Str<'a>>,
    /// MIME type.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub mime_type: Option<Str<'a>>,
    /// Size in bytes.
    #[serde(deserialize_with = "loose::number")]
    pub size: Option<f64>,
}

impl<'a> Conversation<'a> {
    /// Parses a conversation; `extra` holds retained nodes (a JSON object of node id →
    /// node) that are appended to the mapping where their ids are not already in it.
    pub fn parse(bytes: &'a [u8], extra: Option<&'a [u8]>) -> Result<Self, ModelError> {
        // Checked first because serde would also read a struct from a JSON array.
        let kind = json_kind(bytes);
        if kind != "object" {
            return Err(ModelError::NotAnObject(kind));
        }
        let mut conv: Conversation<'a> = serde_json::from_slice(bytes)?;
        if let (Some(extra), Some(mapping)) = (extra, conv.mapping.as_mut()) {
            let retained: MappingOnly<'a> = serde_json::from_slice(extra)?;
            let known: std::collections::HashSet<String> =
                mapping.iter().map(|n| n.key.to_string()).collect();
            mapping.extend(
                retained
                    .0
                    .into_iter()
                    .filter(|n| !known.contains(n.key.as_ref())),
            );
        }
        Ok(conv)
    }

    /// The conversation id: `conversation_id`, else `id`.
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| self.id.as_deref().filter(|s| !s.is_empty()))
    }

    /// The custom GPT or project id: `gizmo_id`, else `conversation_template_id` when it
    /// names one (`g-…`, `g-p-…`; some conversations carry only that).
    pub fn gizmo(&self) -> Option<&str> {
        fn id<'s>(s: &'s Option<Str<'_>>) -> Option<&'s str> {
            s.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        id(&self.gizmo_id)
            .or_else(|| id(&self.conversation_template_id).filter(|t| t.starts_with("g-")))
    }

    /// The nodes (empty when there is no mapping).
    pub fn nodes(&self) -> &[Node<'a>] {
        self.mapping.as_deref().unwrap_or(&[])
    }

    /// The node tree index.
    pub fn tree(&self) -> tree::Tree<'_> {
        tree::Tree::new(self.nodes())
    }

    /// Indices (into [`Self::nodes`]) of the active branch, root first.
    pub fn active_branch(&self) -> Vec<usize> {
        self.tree().active_branch(self.current_node.as_deref())
    }

    /// Indices of the visible messages on the active branch: nodes with a message that
    /// is not `is_visually_hidden_from_conversation`.
    pub fn visible_messages(&self) -> Vec<usize> {
        let nodes = self.nodes();
        self.active_branch()
            .into_iter()
            .filter(|&i| {
                nodes[i]
                    .message
                    .as_ref()
                    .is_some_and(|m| !m.meta().hidden())
            })
            .collect()
    }

    /// Every file id referenced anywhere in the tree (all branches), sorted.
    pub fn file_ids(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for node in self.nodes() {
            if let Some(m) = &node.message {
                for raw in [m.content, m.metadata].into_iter().flatten() {
                    content::scan_pointer_ids(raw.get(), &mut out);
                }
                if m.metadata
                    .is_some_and(|r| r.get().contains("\"attachments\""))
                {
                    for a in m.meta().attachments {
                        if let Some(id) = a.id.filter(|s| !s.is_empty()) {
                            out.insert(id.into_owned());
                        }
                    }
                }
            }
        }
        out
    }

    /// The derived summary; fails when there is no id or no mapping.
    pub fn summary(&self) -> Result<Summary, ModelError> {
        let id = self
            .conversation_id()
            .ok_or(ModelError::MissingId)?
            .to_owned();
        if self.mapping.is_none() {
            return Err(ModelError::MissingMapping {
                id,
                // Shown in an error line: decoded, one line, no control characters.
                title: self
                    .title
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect(),
            });
        }
        let nodes = self.nodes();
        let visible = self.visible_messages();
        let model = self
            .default_model_slug
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                visible.iter().rev().find_map(|&i| {
                    let m = nodes[i].message.as_ref()?;
                    m.meta().model_slug.map(|s| s.into_owned())
                })
            });
        Ok(Summary {
            id,
            title: self.title.as_deref().map(str::to_owned),
            create_time: self.create_time.secs(),
            update_time: self.update_time.secs(),
            model,
            gizmo_id: self.gizmo().map(str::to_owned),
            is_archived: self.is_archived,
            is_starred: self.is_starred,
            message_count: u32::try_from(visible.len()).unwrap_or(u32::MAX),
            node_count: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
            file_ids: self.file_ids().into_iter().collect(),
        })
    }
}

impl<'a> Message<'a> {
    /// The metadata view (empty when absent or unreadable).
    pub fn meta(&self) -> MessageMeta<'a> {
        self.metadata
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    }

    /// The content view (empty when absent or unreadable).
    pub fn content(&self) -> content::Content<'a> {
        self.content
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    }

    /// The author's role, `""` when unknown.
    pub fn role(&self) -> &str {
        self.author
            .as_ref()
            .and_then(|a| a.role.as_deref())
            .unwrap_or("")
    }

    /// The author's name, if any.
    pub fn author_name(&self) -> Option<&str> {
        self.author.as_ref().and_then(|a| a.name.as_deref())
    }
}

impl MessageMeta<'_> {
    /// Whether the UI hides this message.
    pub fn hidden(&self) -> bool {
        self.is_visually_hidden_from_conversation == Some(true)
    }
}

/// Names the kind of a JSON value from its first significant byte, for error messages.
fn json_kind(bytes: &[u8]) -> &'static str {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        Some(_) => "number",
        None => "empty value",
    }
}

/// A bare mapping object (node id → node), as stored for retained nodes.
struct MappingOnly<'a>(Vec<Node<'a>>);

impl<'de> Deserialize<'de> for MappingOnly<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(MappingOnly(mapping(d)?.unwrap_or_default()))
    }
}

/// Reads `mapping` in input order; non-object nodes are skipped, a non-object mapping is `None`.
fn mapping<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Node<'de>>>, D::Error> {
    d.deserialize_any(MappingVisitor)
}

struct MappingVisitor;

impl<'de> Visitor<'de> for MappingVisitor {
    type Value = Option<Vec<Node<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut nodes = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key::<loose::Key<'de>>()? {
            if let Some(mut node) = map.next_value_seed(NodeSeed)? {
                node.key = key.0;
                nodes.push(node);
            }
        }
        Ok(Some(nodes))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(None; bool, num, str, unit, seq);
}

struct NodeSeed;

impl<'de> de::DeserializeSeed<'de> for NodeSeed {
    type Value = Option<Node<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        loose::object(d)
    }
}

#[cfg(test)]
mod tests;
