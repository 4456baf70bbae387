//! `/c/{id}`: one conversation, one branch at a time, as ChatGPT shows it: your
//! messages as you typed them, answers as rendered Markdown, and what the ChatGPT UI
//! hides (thinking, tool calls and their output, web pages, system messages, content
//! this version does not know) folded in `<details>`. `/c/{id}/markdown`: the same
//! conversation as the Markdown document `convos show` prints.

use super::{
    Section, archive_error, blocking, encode, error_page, layout, time_from_rfc3339, time_tag,
    title_text,
};
use crate::archive::StoredConversation;
use crate::render::markdown::{self as rmd, Block, Fold, Speaker};
use crate::render::view::{self, AttachmentView, ConversationView, MessageView};
use crate::web::Shared;
use crate::web::branch::{self, Fork};
use crate::web::markdown;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The conversation page's parameters.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConversationParams {
    /// A node or message id: show the branch through it.
    pub node: Option<String>,
}

/// `GET /c/{id}`.
pub(crate) async fn page(
    State(st): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(p): Query<ConversationParams>,
) -> Response {
    blocking(move || render(&st, &id, p.node.as_deref())).await
}

/// `GET /c/{id}/markdown`.
pub(crate) async fn markdown(State(st): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    blocking(move || markdown_file(&st, &id)).await
}

/// Why a conversation could not be loaded.
enum LoadError {
    Missing,
    Archive(crate::archive::ArchiveError),
}

impl LoadError {
    fn response(self) -> Response {
        match self {
            LoadError::Missing => error_page(
                StatusCode::NOT_FOUND,
                "No such conversation",
                "The archive holds no conversation with this id.",
            ),
            LoadError::Archive(e) => archive_error(&e),
        }
    }
}

fn load(st: &Shared, id: &str) -> Result<StoredConversation, LoadError> {
    match st.archive.get(id) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(LoadError::Missing),
        Err(e) => Err(LoadError::Archive(e)),
    }
}

/// The conversation page, on the branch through `node` (the active one by default).
pub(crate) fn render(st: &Shared, id: &str, node: Option<&str>) -> Response {
    let stored = match load(st, id) {
        Ok(s) => s,
        Err(e) => return e.response(),
    };
    let conv = match stored.parse() {
        Ok(c) => c,
        Err(e) => return archive_error(&e),
    };
    let tree = conv.tree();
    let chosen = branch::select(&conv, &tree, node);
    let lookup = |file_id: &str| st.archive.file(file_id).ok().flatten();
    let view = view::build_branch(&stored, &conv, &chosen.path, &lookup);
    let active = node.is_none() || chosen.path == tree.active_branch(conv.current_node.as_deref());
    let title = title_text(view.title.as_deref());
    let body = html! {
        article.conversation {
            (head(&view, active, chosen.unknown_node))
            (turns(&view, &chosen.forks))
        }
    };
    layout(&title, "", Section::Conversations, body).into_response()
}

fn head(v: &ConversationView, active: bool, unknown_node: bool) -> Markup {
    let id = encode(&v.id);
    html! {
        header.conv-head {
            h1 { (title_text(v.title.as_deref())) }
            p.conv-meta {
                @if let Some(t) = v.create_time.as_deref().and_then(time_from_rfc3339) {
                    span { "Created " time datetime=(t.1) { (t.0) } }
                }
                @if let Some(t) = v.update_time.as_deref().and_then(time_from_rfc3339) {
                    span { "Updated " time datetime=(t.1) { (t.0) } }
                }
                @if let Some(m) = &v.model { span.model { (m) } }
                @if let Some(p) = &v.project {
                    a.badge.project href=(format!("/?project={}", url_query(p))) { (p) }
                }
                @if v.is_archived { span.badge { "archived" } }
                @if v.deleted_remotely { span.badge.deleted { "deleted on chatgpt.com" } }
            }
            p.conv-links {
                // A conversation deleted there has nothing to open.
                @if !v.deleted_remotely {
                    a href={ "https://chatgpt.com/c/" (id) } rel="noopener noreferrer" { "Open on chatgpt.com" }
                }
                a href={ "/c/" (id) "/markdown" } { "Markdown" }
            }
            @if unknown_node {
                p.notice { "The branch asked for is not in this conversation; this is the active branch." }
            } @else if !active {
                p.notice { "This is another branch than the one ChatGPT shows. " a href={ "/c/" (id) } { "Show the active branch" } }
            }
        }
    }
}

fn url_query(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------
// Turns

/// The pieces of one speaker's turn, rendered.
struct Turn<'a> {
    speaker: Speaker<'a>,
    first: &'a MessageView,
    pieces: Vec<Markup>,
}

/// The branch's messages as turns. What each message shows comes from
/// [`crate::render::markdown`]'s per-message blocks, so the page shows what the Markdown
/// export shows (citations resolved, canvas documents, research reports, thinking with
/// its summaries, screenshots); this module only turns the blocks into HTML.
fn turns(v: &ConversationView, forks: &HashMap<String, Fork>) -> Markup {
    let mut out: Vec<Turn<'_>> = Vec::new();
    for piece in rmd::pieces(&v.messages) {
        let Some(first) = piece.messages.first() else {
            continue;
        };
        let fork = piece.messages.iter().find_map(|m| forks.get(&m.node_id));
        if piece.blocks.is_empty() {
            // A silent message at a fork still carries the switcher.
            if let Some(f) = fork {
                push_piece(&mut out, piece.speaker, first, fork_nav(&v.id, f));
            }
            continue;
        }
        let anchor = format!("m-{}", first.node_id);
        // Search hits name messages by message id, which may differ from the node id.
        let message_anchor = first
            .id
            .as_deref()
            .filter(|id| *id != first.node_id)
            .map(|id| format!("m-{id}"));
        let rendered = html! {
            div.msg id=(anchor) {
                @if let Some(a) = message_anchor { span id=(a) {} }
                @if let Some(f) = fork { (fork_nav(&v.id, f)) }
                @for b in &piece.blocks { (block(b, piece.speaker, first)) }
            }
        };
        push_piece(&mut out, piece.speaker, first, rendered);
    }
    html! {
        @if out.is_empty() {
            p.empty { "This branch has no visible messages." }
        }
        @for t in &out { (turn(t)) }
    }
}

fn push_piece<'a>(out: &mut Vec<Turn<'a>>, s: Speaker<'a>, m: &'a MessageView, piece: Markup) {
    // Each user message is its own turn; assistant and tool pieces share one; system
    // messages join the turn they are in.
    let joins = match (s, out.last()) {
        (Speaker::User, _) | (_, None) => false,
        (Speaker::System, Some(_)) => true,
        (s, Some(last)) => last.speaker == s,
    };
    if joins && let Some(last) = out.last_mut() {
        last.pieces.push(piece);
        return;
    }
    out.push(Turn {
        speaker: s,
        first: m,
        pieces: vec![piece],
    });
}

fn turn(t: &Turn<'_>) -> Markup {
    let (class, name) = match t.speaker {
        Speaker::User => ("turn user", "You".to_owned()),
        Speaker::Assistant => ("turn assistant", "ChatGPT".to_owned()),
        Speaker::System => ("turn neutral", "System".to_owned()),
        Speaker::Other(r) => ("turn other", r.to_owned()),
    };
    let model = (t.speaker != Speaker::User)
        .then_some(t.first.model.as_deref())
        .flatten();
    html! {
        section class=(class) {
            header.turn-head {
                h2 { (name) }
                (time_tag(t.first.create_time.as_deref().and_then(time_from_rfc3339)))
                @if let Some(m) = model { span.model { (m) } }
            }
            @for p in &t.pieces { (p) }
        }
    }
}

fn fork_nav(conv_id: &str, f: &Fork) -> Markup {
    let link = |node: &str| {
        format!(
            "/c/{}?node={}#f-{}",
            encode(conv_id),
            encode(node),
            encode(&f.parent)
        )
    };
    html! {
        nav.fork id={ "f-" (f.parent) } aria-label={ "Branch " (f.position) " of " (f.count) } {
            @if let Some(p) = &f.prev {
                a rel="prev" href=(link(p)) aria-label="Previous branch" { "‹" }
            } @else {
                span.off aria-hidden="true" { "‹" }
            }
            span.pos { (f.position) " / " (f.count) }
            @if let Some(n) = &f.next {
                a rel="next" href=(link(n)) aria-label="Next branch" { "›" }
            } @else {
                span.off aria-hidden="true" { "›" }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Blocks

/// One block of a message as HTML.
fn block(b: &Block, speaker: Speaker<'_>, first: &MessageView) -> Markup {
    match b {
        // What a person typed is shown as typed (line breaks kept by the stylesheet),
        // not as Markdown: the ChatGPT UI does the same.
        Block::Text(_) if speaker == Speaker::User => plain(&rmd::display_text(first)),
        Block::Text(t) => md(t),
        Block::Document { title, body } => html! {
            section.document {
                h3.doc-title { (title) }
                (md(body))
            }
        },
        Block::Folded(f) => html! {
            details class={ "fold " (fold_class(f.fold)) } {
                summary { (f.title) }
                div.fold-body {
                    @if !f.body.trim().is_empty() { (md(&f.body)) }
                    @if !f.attachments.is_empty() { (attachments(&f.attachments)) }
                }
            }
        },
        Block::Attachments(list) => attachments(list),
    }
}

/// The stylesheet's class for a fold.
fn fold_class(f: Fold) -> &'static str {
    match f {
        Fold::Thinking => "thinking",
        Fold::ToolCall => "tool-call",
        Fold::Output => "output",
        Fold::Pages => "pages",
        Fold::Sources => "sources",
        Fold::Error => "error",
        Fold::Tool => "tool",
        Fold::Screenshot => "screenshot",
        Fold::System => "system",
        Fold::Raw => "unknown",
    }
}

/// Text shown as typed.
fn plain(text: &str) -> Markup {
    html! { div.plain { (text.trim_matches('\n')) } }
}

fn md(text: &str) -> Markup {
    html! { div.md { (PreEscaped(markdown::to_html(text))) } }
}

// ---------------------------------------------------------------------------------
// Attachments

/// Images archived inline (from `/blob/`, which serves them only when their bytes are
/// an image), other archived files as download links, the rest named.
fn attachments(list: &[AttachmentView]) -> Markup {
    html! {
        div.attachments {
            @for a in list {
                @let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty())
                    .unwrap_or(&a.file_id);
                @match &a.sha256 {
                    Some(sha) if is_image(a) => {
                        a.image href={ "/blob/" (sha) } {
                            img src={ "/blob/" (sha) } alt=(name) loading="lazy";
                        }
                    },
                    Some(sha) => {
                        a.file href={ "/blob/" (sha) "?name=" (url_query(name)) } {
                            (name)
                            @if let Some(t) = &a.mime_type { " " span.ftype { (t) } }
                        }
                    },
                    None => {
                        span.file.missing { "Attachment not archived: " (name) }
                    },
                }
            }
        }
    }
}

fn is_image(a: &AttachmentView) -> bool {
    const EXTS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "avif"];
    let by_type = a
        .mime_type
        .as_deref()
        .map(|t| t.trim().to_ascii_lowercase());
    match by_type.as_deref() {
        Some(t) if t.starts_with("image/") => t != "image/svg+xml",
        Some(_) => false,
        None => a
            .name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .is_some_and(|(_, ext)| EXTS.contains(&ext.to_ascii_lowercase().as_str())),
    }
}

// ---------------------------------------------------------------------------------
// Markdown file

fn markdown_file(st: &Shared, id: &str) -> Response {
    let stored = match load(st, id) {
        Ok(s) => s,
        Err(e) => return e.response(),
    };
    let v = match view::build(&st.archive, &stored) {
        Ok(v) => v,
        Err(e) => return archive_error(&e),
    };
    let doc = crate::render::markdown::render(&v, &crate::render::markdown::NoLinks);
    let name = crate::render::filename::file_name(&v, &mut Default::default());
    let mut resp = (StatusCode::OK, doc).into_response();
    let h = resp.headers_mut();
    // Plain text, so the browser shows it instead of running or downloading it.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let disposition =
        crate::web::blob::attachment_disposition(&name).replacen("attachment", "inline", 1);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
