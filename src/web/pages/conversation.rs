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
use crate::model::content::TEXT_TYPES;
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

/// Who speaks in a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Speaker<'a> {
    User,
    Assistant,
    /// System messages join the turn they are in.
    Neutral,
    Other(&'a str),
}

fn speaker(m: &MessageView) -> Speaker<'_> {
    match m.role.as_str() {
        "user" => Speaker::User,
        "assistant" | "tool" => Speaker::Assistant,
        "system" => Speaker::Neutral,
        other => Speaker::Other(other),
    }
}

fn is_thinking(m: &MessageView) -> bool {
    matches!(m.content_type.as_str(), "thoughts" | "reasoning_recap")
}

/// A known type with no text and no attachments: nothing to show.
fn is_silent(m: &MessageView) -> bool {
    !is_thinking(m)
        && TEXT_TYPES.contains(&m.content_type.as_str())
        && m.text.trim().is_empty()
        && m.attachments.is_empty()
}

/// The messages of one speaker's turn, rendered.
struct Turn<'a> {
    speaker: Speaker<'a>,
    first: &'a MessageView,
    pieces: Vec<Markup>,
}

fn turns(v: &ConversationView, forks: &HashMap<String, Fork>) -> Markup {
    let mut out: Vec<Turn<'_>> = Vec::new();
    let msgs = &v.messages;
    let mut i = 0;
    while i < msgs.len() {
        let m = &msgs[i];
        let (piece, next) = if is_thinking(m) {
            let end = thinking_run_end(msgs, i);
            (thinking(&msgs[i..end]), end)
        } else {
            (message(m), i + 1)
        };
        let fork = msgs[i..next].iter().find_map(|m| forks.get(&m.node_id));
        i = next;
        let Some(piece) = piece else {
            // A silent message at a fork still carries the switcher.
            if let Some(f) = fork {
                push_piece(&mut out, m, html! { (fork_nav(&v.id, f)) });
            }
            continue;
        };
        let anchor = format!("m-{}", m.node_id);
        // Search hits name messages by message id, which may differ from the node id.
        let message_anchor =
            m.id.as_deref()
                .filter(|id| *id != m.node_id)
                .map(|id| format!("m-{id}"));
        let piece = html! {
            div.msg id=(anchor) {
                @if let Some(a) = message_anchor { span id=(a) {} }
                @if let Some(f) = fork { (fork_nav(&v.id, f)) }
                (piece)
            }
        };
        push_piece(&mut out, m, piece);
    }
    html! {
        @if out.is_empty() {
            p.empty { "This branch has no visible messages." }
        }
        @for t in &out { (turn(t)) }
    }
}

fn push_piece<'a>(out: &mut Vec<Turn<'a>>, m: &'a MessageView, piece: Markup) {
    let s = speaker(m);
    let joins = match (s, out.last()) {
        (Speaker::User, _) | (_, None) => false,
        (Speaker::Neutral, Some(_)) => true,
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
        Speaker::Neutral => ("turn neutral", "System".to_owned()),
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
// Messages

/// One message's content (attachments included), or `None` when it shows nothing.
fn message(m: &MessageView) -> Option<Markup> {
    let text = m.text.as_str();
    let has_text = !text.trim().is_empty();
    let main: Option<Markup> = if !TEXT_TYPES.contains(&m.content_type.as_str()) {
        unknown(m)
    } else if !has_text {
        None
    } else if m.role == "system" {
        Some(fold("system", "System message", plain(text)))
    } else if m.role == "user" {
        Some(plain(text))
    } else if m.role == "assistant" && m.is_tool_call() {
        Some(tool_call(m))
    } else {
        Some(content(m))
    };
    let files = (!m.attachments.is_empty()).then(|| attachments(&m.attachments));
    if main.is_none() && files.is_none() {
        return None;
    }
    // The ChatGPT UI shows a user's files above the message, everything else below.
    let (above, below) = if m.role == "user" {
        (files, None)
    } else {
        (None, files)
    };
    Some(html! {
        @if let Some(f) = above { (f) }
        @if let Some(x) = main { (x) }
        @if let Some(f) = below { (f) }
    })
}

/// Text shown as typed (line breaks kept by the stylesheet).
fn plain(text: &str) -> Markup {
    html! { div.plain { (text.trim_matches('\n')) } }
}

fn md(text: &str) -> Markup {
    html! { div.md { (PreEscaped(markdown::to_html(text))) } }
}

fn fold(class: &str, title: &str, body: Markup) -> Markup {
    html! {
        details class={ "fold " (class) } {
            summary { (title) }
            div.fold-body { (body) }
        }
    }
}

fn code(text: &str, lang: &str) -> Markup {
    PreEscaped(markdown::code_block(text.trim_matches('\n'), lang))
}

/// A known content type with text, not a tool call.
fn content(m: &MessageView) -> Markup {
    let text = m.text.as_str();
    let tool = tool_label(m.author_name.as_deref().unwrap_or("tool"));
    match m.content_type.as_str() {
        "code" => code(text, &code_language(m)),
        "execution_output" => fold("output", &format!("{tool} output"), code(text, "")),
        "tether_browsing_display" => fold("pages", "Browsing results", md(text)),
        "tether_quote" | "sonic_webpage" => web_page(m),
        "system_error" => fold("error", &format!("{tool} error"), code(text, "")),
        _ if m.role == "tool" => fold("tool", &format!("Tool: {tool}"), md(text)),
        "thoughts" | "reasoning_recap" => {
            thinking(std::slice::from_ref(m)).unwrap_or_else(|| html! {})
        }
        _ => md(text),
    }
}

/// Python source, or the call's arguments, folded.
fn tool_call(m: &MessageView) -> Markup {
    let target = m.recipient.as_deref().unwrap_or("tool");
    let title = if target == "python" {
        "Python".to_owned()
    } else {
        format!("Tool call: {target}")
    };
    let lang = if m.content_type == "code" {
        code_language(m)
    } else if m.text.trim_start().starts_with('{') {
        "json".to_owned()
    } else {
        String::new()
    };
    fold("tool-call", &title, code(&m.text, &lang))
}

/// A quoted web page (or file-search hit), folded under its title.
fn web_page(m: &MessageView) -> Markup {
    let title = m
        .page_title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(m.url.as_deref())
        .unwrap_or("Web page")
        .to_owned();
    let url = m.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let body = html! {
        @if let Some(u) = url {
            p.source {
                "Source: "
                @match markdown::safe_href(u, false) {
                    Some(href) => { a href=(href) rel="noopener noreferrer nofollow" { (u) } },
                    None => { code { (u) } },
                }
            }
        }
        (md(&m.text))
    };
    fold("pages", &title, body)
}

/// A content type this version does not know: its text, else its raw JSON, folded.
fn unknown(m: &MessageView) -> Option<Markup> {
    let kind = if m.content_type.is_empty() {
        "unknown content"
    } else {
        m.content_type.as_str()
    };
    if !m.text.trim().is_empty() {
        return Some(fold("unknown", kind, plain(&m.text)));
    }
    let raw = m
        .raw_content
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "null")?;
    let pretty = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned());
    Some(fold(
        "unknown",
        &format!("{kind} (raw)"),
        html! { pre.raw { (pretty) } },
    ))
}

/// End (exclusive) of the thinking run from `start`: thinking messages and the silent
/// ones between them.
fn thinking_run_end(msgs: &[MessageView], start: usize) -> usize {
    let mut end = start + 1;
    for (j, m) in msgs.iter().enumerate().skip(start + 1) {
        if is_thinking(m) {
            end = j + 1;
        } else if !is_silent(m) {
            break;
        }
    }
    end
}

/// A run of thinking, folded under the recap ("Thought for 47s") when there is one.
fn thinking(run: &[MessageView]) -> Option<Markup> {
    let mut title: Option<String> = None;
    let mut secs: Option<f64> = None;
    let mut entries: Vec<(String, String)> = Vec::new();
    for m in run {
        secs = m
            .thinking_secs
            .filter(|s| s.is_finite() && *s >= 0.0)
            .or(secs);
        match m.content_type.as_str() {
            "reasoning_recap" => {
                let t = m.text.split_whitespace().collect::<Vec<_>>().join(" ");
                if !t.is_empty() {
                    title = Some(t);
                }
            }
            "thoughts" => {
                for (summary, text) in thought_entries(m) {
                    let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
                    // Streaming repeats a heading with empty content; show it once.
                    let repeat = entries
                        .last()
                        .is_some_and(|(s, t)| *s == summary && t.trim().is_empty());
                    if repeat {
                        entries.pop();
                    }
                    if !summary.is_empty() || !text.trim().is_empty() {
                        entries.push((summary, text));
                    }
                }
            }
            _ => {}
        }
    }
    let title = title.or_else(|| secs.map(|s| format!("Thought for {s:.0}s")));
    if title.is_none() && entries.is_empty() {
        return None;
    }
    let body = html! {
        @for (summary, text) in &entries {
            @if !summary.is_empty() { p.thought-head { strong { (summary) } } }
            @if !text.trim().is_empty() { (md(text)) }
        }
    };
    Some(fold(
        "thinking",
        title.as_deref().unwrap_or("Thoughts"),
        body,
    ))
}

/// `(summary, content)` pairs of a `thoughts` message, from its raw content so each
/// heading stays with its text; else from the view's fields.
fn thought_entries(m: &MessageView) -> Vec<(String, String)> {
    let raw: Option<serde_json::Value> = m
        .raw_content
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    if let Some(serde_json::Value::Array(thoughts)) = raw.as_ref().and_then(|v| v.get("thoughts")) {
        let field = |t: &serde_json::Value, k: &str| {
            t.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        return thoughts
            .iter()
            .map(|t| (field(t, "summary"), field(t, "content")))
            .collect();
    }
    m.thought_summaries
        .iter()
        .map(|s| (s.clone(), String::new()))
        .chain(std::iter::once((String::new(), m.text.clone())))
        .collect()
}

/// The language of `code` content; Python for the Python tool.
fn code_language(m: &MessageView) -> String {
    m.language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("unknown"))
        .or_else(|| (m.recipient.as_deref() == Some("python")).then_some("python"))
        .unwrap_or("")
        .to_owned()
}

fn tool_label(name: &str) -> String {
    match name {
        "python" => "Python".to_owned(),
        other => other.split_whitespace().collect::<Vec<_>>().join(" "),
    }
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
