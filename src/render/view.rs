//! The reader's view of an archived conversation: the fields of Export schema v1
//! computed from the stored JSON and the archive's records. JSON output serializes
//! this directly; Markdown renders from it.

use crate::archive::schema::ConvRecord;
use crate::archive::{Archive, ArchiveError, StoredConversation};
use crate::model::Conversation;
use crate::model::canvas::{self, Canvas};
use crate::model::citations::{self, Citation};
use crate::model::content::{self, AttachmentRef};
use crate::model::research::{self, Report};
use crate::model::time::secs_to_rfc3339;
use serde::Serialize;

/// One conversation in Export schema v1.
#[derive(Clone, Debug, Serialize)]
pub struct ConversationView {
    /// Conversation id.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// RFC 3339 UTC.
    pub create_time: Option<String>,
    /// RFC 3339 UTC.
    pub update_time: Option<String>,
    /// Conversation model.
    pub model: Option<String>,
    /// Custom GPT / project id (`gizmo_id`, else a `g-…` `conversation_template_id`).
    pub gizmo_id: Option<String>,
    /// Project name, when known.
    pub project: Option<String>,
    /// Archived on chatgpt.com.
    pub is_archived: bool,
    /// No longer on chatgpt.com (kept here).
    pub deleted_remotely: bool,
    /// Nodes in the stored mapping (retained nodes included).
    pub node_count: u32,
    /// The visible messages of the active branch, in order.
    pub messages: Vec<MessageView>,
}

/// One message in Export schema v1, plus rendering hints that are not exported.
#[derive(Clone, Debug, Serialize)]
pub struct MessageView {
    /// Message id.
    pub id: Option<String>,
    /// `user`, `assistant`, `tool`, `system`.
    pub role: String,
    /// Tool name for tool messages.
    pub author_name: Option<String>,
    /// `all` or the tool called.
    pub recipient: Option<String>,
    /// Content type.
    pub content_type: String,
    /// Visible text per the schema's rules.
    pub text: String,
    /// RFC 3339 UTC.
    pub create_time: Option<String>,
    /// Model that wrote it (assistant messages fall back to the conversation's).
    pub model: Option<String>,
    /// Files it refers to.
    pub attachments: Vec<AttachmentView>,
    /// Code language for `code` content.
    #[serde(skip)]
    pub language: Option<String>,
    /// `final`, `commentary`…
    #[serde(skip)]
    pub channel: Option<String>,
    /// Node id in the mapping.
    #[serde(skip)]
    pub node_id: String,
    /// The raw `content` JSON, for types the schema gives no text for.
    #[serde(skip)]
    pub raw_content: Option<String>,
    /// Thought headings (`thoughts` content), in order.
    #[serde(skip)]
    pub thought_summaries: Vec<String>,
    /// Seconds a reasoning model thought, when recorded.
    #[serde(skip)]
    pub thinking_secs: Option<f64>,
    /// Page URL (tether_quote, sonic_webpage).
    #[serde(skip)]
    pub url: Option<String>,
    /// Page title (tether_quote, sonic_webpage, computer_output).
    #[serde(skip)]
    pub page_title: Option<String>,
    /// Citations of the text (2025+ content references, 2023–24 citations).
    #[serde(skip)]
    pub citations: Vec<Citation>,
    /// The canvas document this message creates or edits; an edit carries the name and
    /// type of the document it edits (the last one created before it on the branch).
    #[serde(skip)]
    pub canvas: Option<Canvas>,
    /// The deep-research report this message carries.
    #[serde(skip)]
    pub report: Option<Report>,
}

/// An attachment in Export schema v1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttachmentView {
    /// Original name, when known.
    pub name: Option<String>,
    /// File id.
    pub file_id: String,
    /// MIME type, when known.
    pub mime_type: Option<String>,
    /// SHA-256 of the stored bytes, when the archive holds them.
    pub sha256: Option<String>,
    /// What refers to it: the part's content type (`image_asset_pointer`,
    /// `audio_asset_pointer`, `video_container_asset_pointer`…) or `file` (an upload).
    #[serde(skip)]
    pub kind: String,
}

impl MessageView {
    /// A call from the assistant to a tool (hidden in the ChatGPT UI).
    pub fn is_tool_call(&self) -> bool {
        self.recipient.as_deref().is_some_and(|r| r != "all")
    }
}

/// Builds the view of a stored conversation, looking attachments up in the archive.
pub fn build(
    archive: &Archive,
    stored: &StoredConversation,
) -> Result<ConversationView, ArchiveError> {
    build_with(stored, &|file_id| archive.file(file_id).ok().flatten())
}

/// Builds the view with a custom attachment lookup (file id → stored record).
pub fn build_with(
    stored: &StoredConversation,
    lookup: &dyn Fn(&str) -> Option<crate::archive::schema::FileRecord>,
) -> Result<ConversationView, ArchiveError> {
    let conv = stored.parse()?;
    Ok(build_branch(stored, &conv, &conv.active_branch(), lookup))
}

/// Builds the view of one branch of a parsed conversation: `branch` holds node indices
/// root first (as [`crate::model::tree::Tree::active_branch`] returns them); nodes
/// without a message and hidden messages are left out, as on the active branch.
pub fn build_branch(
    stored: &StoredConversation,
    conv: &Conversation<'_>,
    branch: &[usize],
    lookup: &dyn Fn(&str) -> Option<crate::archive::schema::FileRecord>,
) -> ConversationView {
    let record: &ConvRecord = &stored.record;
    let nodes = conv.nodes();
    let default_model = conv
        .default_model_slug
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut messages = Vec::new();
    // The canvas document later edits apply to.
    let mut open_doc: Option<(Option<String>, Option<String>)> = None;
    for &i in branch {
        let Some(node) = nodes.get(i) else { continue };
        let Some(m) = &node.message else { continue };
        let meta = m.meta();
        if meta.hidden() {
            continue;
        }
        let content = m.content();
        let role = m.role().to_owned();
        let kind = content.kind().to_owned();
        let attachments = content::attachments(&content, &meta)
            .into_iter()
            .map(|a: AttachmentRef| {
                let stored = lookup(&a.file_id);
                AttachmentView {
                    name: a
                        .name
                        .or_else(|| stored.as_ref().and_then(|s| s.name.clone())),
                    mime_type: a
                        .mime_type
                        .or_else(|| stored.as_ref().and_then(|s| s.mime_type.clone())),
                    sha256: stored.map(|s| s.sha256),
                    file_id: a.file_id,
                    kind: a.kind,
                }
            })
            .collect();
        let model = meta.model_slug.as_deref().map(str::to_owned).or_else(|| {
            (role == "assistant")
                .then(|| default_model.clone())
                .flatten()
        });
        let text = content.text();
        let recipient = m.recipient.as_deref().unwrap_or("");
        let canvas = Canvas::parse(recipient, &text).map(|mut c| {
            if recipient == canvas::CREATE {
                open_doc = Some((c.name.clone(), c.doc_type.clone()));
            } else if let Some((name, doc_type)) = &open_doc {
                c.name = c.name.take().or_else(|| name.clone());
                c.doc_type = c.doc_type.take().or_else(|| doc_type.clone());
            }
            c
        });
        let state = content.state.as_ref();
        messages.push(MessageView {
            id: m.id.as_deref().map(str::to_owned),
            author_name: m.author_name().map(str::to_owned),
            recipient: m.recipient.as_deref().map(str::to_owned),
            text,
            create_time: m.create_time.to_rfc3339(),
            model,
            attachments,
            language: content.language.as_deref().map(str::to_owned),
            channel: m.channel.as_deref().map(str::to_owned),
            node_id: node.key.to_string(),
            raw_content: m.content.map(|r| r.get().to_owned()),
            thought_summaries: content
                .thoughts
                .iter()
                .filter_map(|t| t.summary.as_deref().map(str::to_owned))
                .collect(),
            thinking_secs: meta.finished_duration_sec,
            url: content
                .url
                .as_deref()
                .or_else(|| state.and_then(|s| s.url.as_deref()))
                .map(str::to_owned),
            page_title: content
                .title
                .as_deref()
                .or_else(|| state.and_then(|s| s.title.as_deref()))
                .map(str::to_owned),
            citations: citations::parse(meta.content_references, meta.citations),
            canvas,
            report: research::report(meta.chatgpt_sdk),
            content_type: kind,
            role,
        });
    }
    let s = &record.summary;
    // Batch answers and older exports carry no `default_model_slug`: the model is then
    // the one that wrote the last assistant message on the active branch.
    let model = default_model.or_else(|| {
        messages
            .iter()
            .rev()
            .filter(|m| m.role == "assistant")
            .find_map(|m| m.model.clone())
    });
    ConversationView {
        id: s.id.clone(),
        title: s.title.clone(),
        create_time: s.create_time.and_then(secs_to_rfc3339),
        update_time: s.update_time.and_then(secs_to_rfc3339),
        model,
        // From the JSON, not the stored summary, so records written before the
        // `conversation_template_id` fallback show it too.
        gizmo_id: conv.gizmo().map(str::to_owned),
        project: record.remote.project.clone(),
        is_archived: record.is_archived(),
        deleted_remotely: record.deleted_remotely,
        node_count: record.node_count,
        messages,
    }
}
