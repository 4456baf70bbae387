//! Markdown rendering: one Obsidian-friendly document per conversation, plus safe file
//! names for the document and for the attachments written beside it.
//!
//! Conventions:
//! - YAML front matter; every string value is double-quoted and escaped, so any title
//!   is valid YAML. Then `# <title>`.
//! - `## You` heads each user message; `## ChatGPT` heads a run of assistant and tool
//!   messages (tool call → tool output → answer read as one turn). A small italic line
//!   under the heading gives the time (UTC) and, for ChatGPT, the model.
//! - Visible text is kept verbatim (it is Markdown); an unclosed code fence is closed so
//!   it cannot swallow the rest of the document.
//! - What the ChatGPT UI hides is folded into collapsed Obsidian callouts, every line
//!   prefixed with `> `: thinking (`[!abstract]-`), tool calls and code output
//!   (`[!example]-`), web pages and search results (`[!quote]-`), tool errors
//!   (`[!failure]-`), other tool replies (`[!note]- Tool: <name>`), system messages and
//!   unrecognised content as raw JSON (`[!info]-`). Empty messages are left out.
//! - 2025+ citation markers (`U+E200 cite U+E202 turn0search0 U+E201`) become an escaped
//!   bracketed ref, `\[turn0search0\]`, which renders as `[turn0search0]` and can never
//!   turn into a link; `entity` markers become the entity's name. 2023 `【6†source】`
//!   markers are left as they are.

use super::view::{AttachmentView, ConversationView, MessageView};
use crate::model::content::TEXT_TYPES;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write as _;

/// Where an attachment can be read locally, as a link target for the document.
pub trait AttachmentLinks {
    /// The link target (a relative path or URL), or `None` when it is not available.
    fn link(&self, a: &AttachmentView) -> Option<String>;
}

/// Links nothing: every attachment renders as a placeholder.
pub struct NoLinks;

impl AttachmentLinks for NoLinks {
    fn link(&self, _: &AttachmentView) -> Option<String> {
        None
    }
}

/// Heading used when a conversation has no title.
const UNTITLED_HEADING: &str = "Untitled conversation";
/// File name stem used when a conversation has no usable title.
const UNTITLED_FILE: &str = "Untitled";
/// Longest title part of a file name, in bytes (well under every filesystem's 255).
const TITLE_MAX_BYTES: usize = 120;
/// Longest original-name part of an attachment file name, in bytes.
const ATTACHMENT_NAME_MAX_BYTES: usize = 100;
/// Longest file-id part of an attachment file name, in bytes.
const FILE_ID_MAX_BYTES: usize = 80;

/// Renders one conversation as a Markdown document.
pub fn render(view: &ConversationView, links: &dyn AttachmentLinks) -> String {
    let mut doc = Doc::default();
    write_front_matter(&mut doc.out, view);
    let title = view
        .title
        .as_deref()
        .map(one_line)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| UNTITLED_HEADING.to_owned());
    let _ = writeln!(doc.out, "\n# {}", escape_inline(&title));

    let msgs = &view.messages;
    let mut i = 0;
    while i < msgs.len() {
        let m = &msgs[i];
        if is_thinking(m) {
            // Thinking, with silent tool chatter in between, folds into one callout.
            let end = thinking_run_end(msgs, i);
            let block = thinking_block(&msgs[i..end]);
            doc.push(section_of(m), m, block.into_iter().collect());
            i = end;
        } else {
            doc.push(section_of(m), m, message_blocks(m, links));
            i += 1;
        }
    }
    // A document for people, printed by `show` and opened in editors: control
    // characters (an ESC from a title or a message) are made visible, never sent raw.
    match super::terminal::clean(&doc.out) {
        std::borrow::Cow::Borrowed(_) => doc.out,
        std::borrow::Cow::Owned(cleaned) => cleaned,
    }
}

/// A safe, unique file name `YYYY-MM-DD <title>.md` for a conversation.
///
/// `taken` holds the lowercased names already used (macOS and Windows filesystems are
/// case-insensitive); a caller pre-filling it must lowercase too. On a clash the first
/// 8 characters of the id are appended, then a counter. The chosen name is recorded.
pub fn file_name(view: &ConversationView, taken: &mut HashSet<String>) -> String {
    let title = sanitize_component(view.title.as_deref().unwrap_or(""), TITLE_MAX_BYTES);
    let title = if title.is_empty() {
        UNTITLED_FILE.to_owned()
    } else {
        title
    };
    let base = match date_prefix(view) {
        Some(date) => format!("{date} {title}"),
        None => avoid_reserved(&title),
    };
    let short_id = sanitize_component(&view.id.chars().take(8).collect::<String>(), 8);
    let mut candidate = base.clone();
    let mut attempt: u64 = 1;
    loop {
        let name = format!("{candidate}.md");
        if taken.insert(name.to_lowercase()) {
            return name;
        }
        attempt += 1;
        candidate = match (short_id.is_empty(), attempt) {
            (false, 2) => format!("{base} ({short_id})"),
            (false, n) => format!("{base} ({short_id} {})", n - 1),
            (true, n) => format!("{base} ({n})"),
        };
    }
}

/// A safe, deterministic file name for an attachment: `<file_id>-<name>`, with an
/// extension from the MIME type when the name has none.
pub fn attachment_file_name(a: &AttachmentView) -> String {
    let id = sanitize_component(&a.file_id, FILE_ID_MAX_BYTES);
    let id = if id.is_empty() { "file".to_owned() } else { id };
    let name = a
        .name
        .as_deref()
        .map(|n| sanitize_keeping_extension(n, ATTACHMENT_NAME_MAX_BYTES))
        .filter(|n| !n.is_empty());
    let mut out = match &name {
        Some(n) => format!("{id}-{n}"),
        None => id,
    };
    let has_ext = name.as_deref().and_then(extension).is_some();
    if !has_ext && let Some(ext) = a.mime_type.as_deref().and_then(mime_extension) {
        out.push('.');
        out.push_str(&ext);
    }
    avoid_reserved(&out)
}

// ---------------------------------------------------------------------------------
// Document assembly

/// Which heading a message belongs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section<'a> {
    User,
    Assistant,
    /// System messages: folded where they occur, no heading of their own.
    Neutral,
    /// A role this renderer does not know, headed by its name.
    Other(&'a str),
}

fn section_of(m: &MessageView) -> Section<'_> {
    match m.role.as_str() {
        "user" => Section::User,
        "assistant" | "tool" => Section::Assistant,
        "system" => Section::Neutral,
        other => Section::Other(other),
    }
}

/// The document being written and the section its last heading opened.
#[derive(Default)]
struct Doc<'a> {
    out: String,
    current: Option<Section<'a>>,
}

impl<'a> Doc<'a> {
    /// Appends a message's blocks, opening a new heading when the section changes.
    fn push(&mut self, section: Section<'a>, first: &MessageView, blocks: Vec<String>) {
        if blocks.is_empty() {
            return;
        }
        // Each user message is its own turn; assistant and tool pieces share one.
        let needs_heading = match section {
            Section::Neutral => false,
            Section::User => true,
            s => self.current != Some(s),
        };
        if needs_heading {
            let name = match section {
                Section::User => "You".to_owned(),
                Section::Assistant => "ChatGPT".to_owned(),
                Section::Neutral => "System".to_owned(),
                Section::Other(role) => escape_inline(&capitalize(&one_line(role))),
            };
            let _ = writeln!(self.out, "\n## {name}");
            if let Some(meta) = meta_line(section, first) {
                self.out.push_str(&meta);
                self.out.push('\n');
            }
            self.current = Some(section);
        }
        for block in blocks {
            self.out.push('\n');
            self.out.push_str(block.trim_end_matches('\n'));
            self.out.push('\n');
        }
    }
}

/// `*2024-05-01 14:03 UTC · gpt-4o*` under a heading, when anything is known.
fn meta_line(section: Section<'_>, m: &MessageView) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = m.create_time.as_deref() {
        parts.push(display_time(t));
    }
    if section != Section::User
        && let Some(model) = m.model.as_deref().map(one_line).filter(|s| !s.is_empty())
    {
        parts.push(model);
    }
    (!parts.is_empty()).then(|| format!("*{}*", escape_inline(&parts.join(" · "))))
}

/// RFC 3339 → `2024-05-01 14:03 UTC`; unparsable text is shown as it is.
fn display_time(t: &str) -> String {
    DateTime::parse_from_rfc3339(t).map_or_else(
        |_| one_line(t),
        |dt| {
            dt.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        },
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

// ---------------------------------------------------------------------------------
// Front matter

fn write_front_matter(out: &mut String, view: &ConversationView) {
    out.push_str("---\n");
    yaml_line(out, "id", &yaml_quote(&view.id));
    if let Some(title) = &view.title {
        yaml_line(out, "title", &yaml_quote(title));
    }
    if let Some(t) = &view.create_time {
        yaml_line(out, "created", &yaml_time(t));
    }
    if let Some(t) = &view.update_time {
        yaml_line(out, "updated", &yaml_time(t));
    }
    if let Some(model) = &view.model {
        yaml_line(out, "model", &yaml_quote(model));
    }
    if let Some(project) = &view.project {
        yaml_line(out, "project", &yaml_quote(project));
    }
    if let Some(gizmo) = &view.gizmo_id {
        yaml_line(out, "gizmo_id", &yaml_quote(gizmo));
    }
    if view.is_archived {
        yaml_line(out, "archived", "true");
    }
    if view.deleted_remotely {
        yaml_line(out, "deleted_remotely", "true");
    }
    let url = format!("https://chatgpt.com/c/{}", percent_encode(&view.id));
    yaml_line(out, "url", &yaml_quote(&url));
    yaml_line(out, "tags", "[chatgpt]");
    out.push_str("---\n");
}

fn yaml_line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key}: {value}");
}

/// A YAML double-quoted scalar. Escapes quotes, backslashes, and every character YAML
/// does not allow raw or that some parsers treat as a line break (NEL, LS, PS).
fn yaml_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
                ) =>
            {
                // Every such character is in the BMP, so four hex digits suffice.
                let _ = write!(q, "\\u{:04X}", u32::from(c));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Timestamps go unquoted (Obsidian then types them as dates) when they are plainly
/// timestamps; anything unexpected is quoted.
fn yaml_time(t: &str) -> String {
    let plain = t.starts_with(|c: char| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z'));
    if plain { t.to_owned() } else { yaml_quote(t) }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Messages

fn is_thinking(m: &MessageView) -> bool {
    matches!(m.content_type.as_str(), "thoughts" | "reasoning_recap")
}

/// A message that renders nothing: a known type with no text and no attachments.
fn is_silent(m: &MessageView) -> bool {
    !is_thinking(m)
        && TEXT_TYPES.contains(&m.content_type.as_str())
        && m.text.trim().is_empty()
        && m.attachments.is_empty()
}

/// End (exclusive) of the thinking run starting at `start`: thinking messages and the
/// silent ones between them, up to the last thinking message.
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

/// The blocks (paragraph groups separated by blank lines) one message renders to.
fn message_blocks(m: &MessageView, links: &dyn AttachmentLinks) -> Vec<String> {
    let text = clean_text(&m.text);
    let has_text = !text.trim().is_empty();
    let main = if !TEXT_TYPES.contains(&m.content_type.as_str()) {
        unknown_block(m, &text)
    } else if !has_text {
        None
    } else if m.role == "system" {
        Some(callout("info", "System message", &text))
    } else if m.role == "assistant" && m.is_tool_call() {
        Some(tool_call_block(m, &text))
    } else {
        Some(content_block(m, &text))
    };
    let attachments: Vec<String> = m
        .attachments
        .iter()
        .map(|a| attachment_line(a, links))
        .collect();
    let attachments = (!attachments.is_empty()).then(|| attachments.join("\n\n"));
    // The ChatGPT UI shows a user's files above the message, everything else below.
    if m.role == "user" {
        attachments.into_iter().chain(main).collect()
    } else {
        main.into_iter().chain(attachments).collect()
    }
}

/// A known content type with text, not a tool call.
fn content_block(m: &MessageView, text: &str) -> String {
    let tool = tool_label(m.author_name.as_deref().unwrap_or("tool"));
    match m.content_type.as_str() {
        "code" => fenced(&code_language(m), text),
        "execution_output" => callout("example", &format!("{tool} output"), &fenced("text", text)),
        "tether_browsing_display" => callout("quote", "Browsing results", text),
        "tether_quote" | "sonic_webpage" => page_block(m, text),
        "system_error" => callout("failure", &format!("{tool} error"), &fenced("text", text)),
        _ if m.role == "tool" => callout("note", &format!("Tool: {tool}"), text),
        // thoughts/recap arrive here only through a caller bypassing the run logic.
        "thoughts" | "reasoning_recap" => {
            thinking_block(std::slice::from_ref(m)).unwrap_or_default()
        }
        _ => visible_text(text),
    }
}

/// Python source in a fence; other calls (JSON arguments, memory notes…) as they are.
fn tool_call_block(m: &MessageView, text: &str) -> String {
    let target = m.recipient.as_deref().map(one_line).unwrap_or_default();
    let title = if target == "python" {
        "Python".to_owned()
    } else {
        format!("Tool call: {target}")
    };
    let body = if m.content_type == "code" {
        fenced(&code_language(m), text)
    } else {
        text.to_owned()
    };
    callout("example", &title, &body)
}

/// A quoted web page (or file-search hit): its title, where it came from, its text.
fn page_block(m: &MessageView, text: &str) -> String {
    let title = m
        .page_title
        .as_deref()
        .map(one_line)
        .filter(|t| !t.is_empty())
        .or_else(|| m.url.as_deref().map(one_line))
        .unwrap_or_else(|| "Web page".to_owned());
    let body = match m.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => format!("Source: {}\n\n{text}", source_ref(url)),
        None => text.to_owned(),
    };
    callout("quote", &title, &body)
}

/// An autolink for a plain web URL; anything else (file ids…) as inline code.
fn source_ref(url: &str) -> String {
    let plain_web = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'));
    if plain_web {
        format!("<{url}>")
    } else {
        inline_code(&one_line(url))
    }
}

/// An unrecognised content type: its text if the view has any, else its raw JSON, folded.
fn unknown_block(m: &MessageView, text: &str) -> Option<String> {
    let kind = if m.content_type.is_empty() {
        "unknown content"
    } else {
        m.content_type.as_str()
    };
    if !text.trim().is_empty() {
        return Some(callout("info", kind, text));
    }
    let raw = m
        .raw_content
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "null")?;
    // Pretty-printed for reading; the archive keeps the original bytes.
    let pretty = serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned());
    Some(callout(
        "info",
        &format!("{kind} (raw)"),
        &fenced("json", &pretty),
    ))
}

/// Thinking messages (and the silent ones between them) as one collapsed callout,
/// titled by the reasoning recap ("Thought for 47s") when there is one.
fn thinking_block(run: &[MessageView]) -> Option<String> {
    let mut title: Option<String> = None;
    let mut secs: Option<f64> = None;
    let mut body: Vec<String> = Vec::new();
    let mut last_summary = String::new();
    for m in run {
        secs = m
            .thinking_secs
            .filter(|s| s.is_finite() && *s >= 0.0)
            .or(secs);
        match m.content_type.as_str() {
            "reasoning_recap" => {
                let t = one_line(&m.text);
                if !t.is_empty() {
                    title = Some(t);
                }
            }
            "thoughts" => {
                for (summary, content) in thought_entries(m) {
                    let summary = one_line(&summary);
                    let content = clean_text(&content);
                    let content = content.trim_matches('\n');
                    // Streaming repeats a heading with empty content; show it once.
                    if !summary.is_empty() && (summary != last_summary || !content.is_empty()) {
                        body.push(format!("**{}**", escape_inline(&summary)));
                    }
                    if !content.trim().is_empty() {
                        body.push(content.to_owned());
                    }
                    if !summary.is_empty() {
                        last_summary = summary;
                    }
                }
            }
            _ => {}
        }
    }
    let title = title.or_else(|| secs.map(|s| format!("Thought for {s:.0}s")));
    if title.is_none() && body.is_empty() {
        return None;
    }
    let title = title.unwrap_or_else(|| "Thoughts".to_owned());
    Some(callout("abstract", &title, &body.join("\n\n")))
}

/// `(summary, content)` pairs of a `thoughts` message, read from its raw content so
/// each heading stays with its text; falls back to the view's fields.
fn thought_entries(m: &MessageView) -> Vec<(String, String)> {
    let raw: Option<Value> = m
        .raw_content
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    if let Some(Value::Array(thoughts)) = raw.as_ref().and_then(|v| v.get("thoughts")) {
        let field = |t: &Value, k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
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

/// The fence info string for `code` content; `text` when the language is unknown.
fn code_language(m: &MessageView) -> String {
    let lang = m
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("unknown"))
        .or_else(|| (m.recipient.as_deref() == Some("python")).then_some("python"))
        .unwrap_or("text");
    // An info string after a backtick fence may not contain backticks or spaces.
    let lang: String = lang
        .chars()
        .take_while(|c| !c.is_whitespace())
        .filter(|c| *c != '`' && !c.is_control())
        .collect();
    if lang.is_empty() {
        "text".to_owned()
    } else {
        lang
    }
}

/// A friendlier name for well-known tools in callout titles.
fn tool_label(name: &str) -> String {
    match name {
        "python" => "Python".to_owned(),
        other => one_line(other),
    }
}

// ---------------------------------------------------------------------------------
// Attachments

/// An image embed, a file link, or a placeholder when the bytes are not linked.
fn attachment_line(a: &AttachmentView, links: &dyn AttachmentLinks) -> String {
    let name = a.name.as_deref().map(one_line).filter(|n| !n.is_empty());
    match links.link(a) {
        Some(target) => {
            let label = escape_inline(name.as_deref().unwrap_or(&a.file_id));
            let bang = if is_image(a, &target) { "!" } else { "" };
            format!("{bang}[{label}]({})", link_destination(&target))
        }
        None => {
            // "Not archived" would be untrue when the archive holds the bytes but this
            // rendering (e.g. `show` to stdout) has nowhere to link them.
            let what = if a.sha256.is_some() {
                "attachment archived, not linked here"
            } else {
                "attachment not archived"
            };
            let id = escape_inline(&one_line(&a.file_id));
            match name {
                Some(n) => format!("*({what}: {} — {id})*", escape_inline(&n)),
                None => format!("*({what}: {id})*"),
            }
        }
    }
}

fn is_image(a: &AttachmentView, target: &str) -> bool {
    const IMAGE_EXTS: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "webp", "bmp", "svg", "heic", "heif", "avif", "tif", "tiff",
    ];
    let by_ext = |s: &str| {
        extension(s).is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
    };
    a.mime_type
        .as_deref()
        .is_some_and(|m| m.trim().to_ascii_lowercase().starts_with("image/"))
        || a.name.as_deref().is_some_and(by_ext)
        || by_ext(target)
}

/// A CommonMark link destination: wrapped in `<…>` when it holds spaces, parentheses
/// or other characters a bare destination cannot.
fn link_destination(target: &str) -> String {
    let target: String = target
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r'))
        .collect();
    let needs_brackets = target
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>'));
    if !needs_brackets {
        return target;
    }
    let mut out = String::with_capacity(target.len() + 2);
    out.push('<');
    for c in target.chars() {
        if matches!(c, '<' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('>');
    out
}

// ---------------------------------------------------------------------------------
// Text helpers

/// Unix line ends and readable citation markers.
fn clean_text(s: &str) -> String {
    let s = if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_owned()
    };
    replace_citations(&s)
}

const MARK_START: char = '\u{E200}';
const MARK_END: char = '\u{E201}';
const MARK_SEP: char = '\u{E202}';

/// Replaces 2025+ private-use markers (`U+E200 kind U+E202 ref … U+E201`).
///
/// Most kinds (`cite`, `filecite`, `navlist`…) become `\[ref, ref\]`: escaped brackets
/// render as plain `[ref]` and can never combine with a following `(`/`[` into a link.
/// `entity` markers carry a JSON array whose second element is the name the UI shows,
/// so that name is kept. JSON arguments (image groups) are dropped, and a marker
/// without arguments disappears. A marker with no end is left untouched.
fn replace_citations(s: &str) -> String {
    if !s.contains(MARK_START) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(MARK_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK_START.len_utf8()..];
        let Some(end) = after.find(MARK_END) else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&citation_text(&after[..end]));
        rest = &after[end + MARK_END.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn citation_text(inner: &str) -> String {
    let mut fields = inner.split(MARK_SEP);
    let kind = fields.next().unwrap_or("").trim();
    let args: Vec<&str> = fields.map(str::trim).filter(|a| !a.is_empty()).collect();
    if kind == "entity"
        && let Some(name) = args.first().and_then(|a| entity_name(a))
    {
        return name;
    }
    let refs: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with('{') && !a.starts_with('['))
        .map(|a| escape_inline(&one_line(a)))
        .collect();
    if refs.is_empty() {
        String::new()
    } else {
        format!("\\[{}\\]", refs.join(", "))
    }
}

/// The display name of an `entity` marker: `["city","Paris",…]` → `Paris`.
fn entity_name(arg: &str) -> Option<String> {
    let v: Value = serde_json::from_str(arg).ok()?;
    let name = v.get(1)?.as_str()?;
    let name = one_line(name);
    (!name.is_empty()).then(|| escape_inline(&name))
}

/// Visible Markdown as it is, without surrounding blank lines, any unclosed code fence
/// closed so it cannot swallow the rest of the document.
fn visible_text(text: &str) -> String {
    let mut s = text.trim_start_matches('\n').trim_end().to_owned();
    if let Some(close) = unclosed_fence(&s) {
        s.push('\n');
        s.push_str(&close);
    }
    s
}

/// The fence that would close a code block left open at the end of `text`.
///
/// Deliberately lenient about indentation (fences inside list items are indented):
/// ChatGPT's fences come in pairs, so counting them this way matches how renderers
/// see them in practice, and a closing fence is only added when one is truly missing.
fn unclosed_fence(text: &str) -> Option<String> {
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let line = line.trim_start();
        let Some(c) = line.chars().next().filter(|c| matches!(c, '`' | '~')) else {
            continue;
        };
        let run = line.chars().take_while(|x| *x == c).count();
        if run < 3 {
            continue;
        }
        let rest = &line[run..];
        match open {
            None => {
                // A backtick fence's info string cannot contain backticks.
                if !(c == '`' && rest.contains('`')) {
                    open = Some((c, run));
                }
            }
            Some((oc, olen)) if oc == c && run >= olen && rest.trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    open.map(|(c, n)| c.to_string().repeat(n))
}

/// A fenced code block whose fence is longer than any backtick run inside.
fn fenced(lang: &str, code: &str) -> String {
    // Blank lines around code or output carry no meaning.
    let code = code.trim_matches('\n');
    let fence = "`".repeat(longest_run(code, '`').max(2) + 1);
    if code.is_empty() {
        format!("{fence}{lang}\n{fence}")
    } else {
        format!("{fence}{lang}\n{code}\n{fence}")
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        cur = if x == c { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Inline code whose delimiters are longer than any backtick run inside.
fn inline_code(s: &str) -> String {
    let ticks = "`".repeat(longest_run(s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A collapsed Obsidian callout: `> [!kind]- title` and every body line prefixed `> `.
fn callout(kind: &str, title: &str, body: &str) -> String {
    let mut out = format!("> [!{kind}]- {}", one_line(title));
    for line in body.trim_matches('\n').lines() {
        out.push('\n');
        if line.is_empty() {
            out.push('>');
        } else {
            out.push_str("> ");
            out.push_str(line);
        }
    }
    out
}

/// Collapses all whitespace (newlines included) to single spaces and trims.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Backslash-escapes characters that Markdown or Obsidian would read as syntax
/// (emphasis, links, HTML, tables, math, tags), for names and titles shown inline.
fn escape_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        // `==` (highlight) and `%%` (comment) are Obsidian syntax; a single one is not.
        let doubled = matches!(c, '=' | '%') && chars.peek() == Some(&c);
        if doubled
            || matches!(
                c,
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '$' | '~'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------
// File names

/// `YYYY-MM-DD` (UTC) from the creation time, else the update time.
fn date_prefix(view: &ConversationView) -> Option<String> {
    [&view.create_time, &view.update_time]
        .into_iter()
        .flatten()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|dt| dt.with_timezone(&Utc).format("%Y-%m-%d").to_string())
}

/// Characters no file name may hold on some OS, or that break Obsidian links.
fn is_forbidden_in_name(c: char) -> bool {
    matches!(
        c,
        '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '^' | '[' | ']'
    ) || c.is_control()
}

/// Invisible characters that only confuse (zero-width space, BOM) or spoof (bidi
/// overrides can disguise an extension). ZWJ/ZWNJ stay: emoji and scripts need them.
fn is_invisible_in_name(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// One path component safe on every OS: forbidden characters become spaces, invisible
/// ones go, whitespace collapses, no leading or trailing dots or spaces, at most
/// `max_bytes` bytes cut on a character boundary. May be empty.
fn sanitize_component(s: &str, max_bytes: usize) -> String {
    let mapped: String = s
        .chars()
        .filter(|c| !is_invisible_in_name(*c))
        .map(|c| if is_forbidden_in_name(c) { ' ' } else { c })
        .collect();
    let collapsed = one_line(&mapped);
    let cut = truncate_bytes(trim_dots_spaces(&collapsed), max_bytes);
    trim_dots_spaces(cut.trim_end_matches('\u{200D}')).to_owned()
}

/// Like `sanitize_component`, but a long name loses the end of its stem, not its
/// extension.
fn sanitize_keeping_extension(name: &str, max_bytes: usize) -> String {
    let clean = sanitize_component(name, usize::MAX);
    if clean.len() <= max_bytes {
        return clean;
    }
    match clean.rsplit_once('.').filter(|(_, ext)| extension_ok(ext)) {
        Some((stem, ext)) if ext.len() + 2 <= max_bytes => {
            let stem = sanitize_component(stem, max_bytes - ext.len() - 1);
            if stem.is_empty() {
                ext.to_owned()
            } else {
                format!("{stem}.{ext}")
            }
        }
        _ => sanitize_component(&clean, max_bytes),
    }
}

fn trim_dots_spaces(s: &str) -> &str {
    s.trim_matches(|c| c == '.' || c == ' ')
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The extension of a file name (`a.tar.gz` → `gz`), if it looks like one.
fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && extension_ok(ext)).then_some(ext)
}

fn extension_ok(ext: &str) -> bool {
    (1..=10).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A file extension for a MIME type: the common ones by table, else a short plain
/// subtype (`audio/flac` → `flac`).
fn mime_extension(mime: &str) -> Option<String> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let known = match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "image/heic" => "heic",
        "image/tiff" => "tiff",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" => "m4a",
        "audio/ogg" => "ogg",
        "audio/webm" | "video/webm" => "webm",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "application/pdf" => "pdf",
        "application/json" => "json",
        "application/zip" => "zip",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/html" => "html",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "",
    };
    if !known.is_empty() {
        return Some(known.to_owned());
    }
    let (_, sub) = essence.split_once('/')?;
    (sub.len() <= 5 && !sub.is_empty() && sub.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| sub.to_owned())
}

/// Windows refuses these device names, with or without an extension.
const RESERVED_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Appends `_` to a reserved device name (the part before the first dot, as Windows
/// reads it): `CON` → `CON_`, `con.txt` → `con_.txt`.
fn avoid_reserved(name: &str) -> String {
    let stem_end = name.find('.').unwrap_or(name.len());
    let stem = name[..stem_end].trim_end();
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        format!("{stem}_{}", &name[stem.len()..])
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- builders ----

    fn msg(role: &str, content_type: &str, text: &str) -> MessageView {
        MessageView {
            id: Some(format!("m-{role}-{content_type}")),
            role: role.to_owned(),
            author_name: None,
            recipient: Some("all".to_owned()),
            content_type: content_type.to_owned(),
            text: text.to_owned(),
            create_time: None,
            model: None,
            attachments: Vec::new(),
            language: None,
            channel: None,
            node_id: "n".to_owned(),
            raw_content: None,
            thought_summaries: Vec::new(),
            thinking_secs: None,
            url: None,
            page_title: None,
        }
    }

    fn tool(name: &str, content_type: &str, text: &str) -> MessageView {
        MessageView {
            author_name: Some(name.to_owned()),
            ..msg("tool", content_type, text)
        }
    }

    fn call(recipient: &str, language: Option<&str>, text: &str) -> MessageView {
        MessageView {
            recipient: Some(recipient.to_owned()),
            language: language.map(str::to_owned),
            ..msg("assistant", "code", text)
        }
    }

    fn thoughts(pairs: &[(&str, &str)]) -> MessageView {
        let list: Vec<Value> = pairs
            .iter()
            .map(|(s, c)| serde_json::json!({"summary": s, "content": c}))
            .collect();
        let raw = serde_json::json!({"content_type": "thoughts", "thoughts": list});
        MessageView {
            raw_content: Some(raw.to_string()),
            thought_summaries: pairs.iter().map(|(s, _)| (*s).to_owned()).collect(),
            ..msg(
                "assistant",
                "thoughts",
                &pairs
                    .iter()
                    .map(|(_, c)| *c)
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            )
        }
    }

    fn recap(text: &str, secs: f64) -> MessageView {
        MessageView {
            thinking_secs: Some(secs),
            ..msg("assistant", "reasoning_recap", text)
        }
    }

    fn attachment(
        name: Option<&str>,
        id: &str,
        mime: Option<&str>,
        stored: bool,
    ) -> AttachmentView {
        AttachmentView {
            name: name.map(str::to_owned),
            file_id: id.to_owned(),
            mime_type: mime.map(str::to_owned),
            sha256: stored.then(|| "ab".repeat(32)),
        }
    }

    fn conv(title: Option<&str>, messages: Vec<MessageView>) -> ConversationView {
        ConversationView {
            id: "6650a1b2-0000-4000-8000-000000000001".to_owned(),
            title: title.map(str::to_owned),
            create_time: Some("2024-05-01T14:03:07.123456Z".to_owned()),
            update_time: Some("2024-05-02T09:00:00Z".to_owned()),
            model: Some("gpt-4o".to_owned()),
            gizmo_id: None,
            project: None,
            is_archived: false,
            deleted_remotely: false,
            node_count: 0,
            messages,
        }
    }

    /// Links every attachment into `files/` under its attachment file name.
    struct DirLinks;
    impl AttachmentLinks for DirLinks {
        fn link(&self, a: &AttachmentView) -> Option<String> {
            a.sha256
                .as_ref()
                .map(|_| format!("files/{}", attachment_file_name(a)))
        }
    }

    // ---- a tiny YAML check for the subset the front matter uses ----

    /// Unescapes a YAML double-quoted scalar, rejecting anything malformed: a raw
    /// quote, a raw control character or line break, an unknown escape.
    fn yaml_unquote(v: &str) -> Result<String, String> {
        let inner = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or_else(|| format!("not double-quoted: {v}"))?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Err(format!("unescaped quote in {v}")),
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                    return Err(format!("raw control {c:?} in {v}"));
                }
                '\\' => match chars.next() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                        out.push(char::from_u32(code).ok_or("bad code point")?);
                    }
                    other => return Err(format!("bad escape {other:?} in {v}")),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// The front matter's `key → value` lines, checking its framing and that every
    /// line is a single `key: value`.
    fn front_matter(doc: &str) -> Vec<(String, String)> {
        let mut lines = doc.lines();
        assert_eq!(lines.next(), Some("---"), "front matter opens the document");
        let mut fields = Vec::new();
        for line in lines.by_ref() {
            if line == "---" {
                return fields;
            }
            let (k, v) = line.split_once(": ").expect("key: value line");
            assert!(
                k.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "bad key {k:?}"
            );
            fields.push((k.to_owned(), v.to_owned()));
        }
        panic!("front matter never closed");
    }

    fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every line mentioning `needle` sits inside a blockquote (a folded callout).
    fn only_folded(doc: &str, needle: &str) {
        let hits: Vec<&str> = doc.lines().filter(|l| l.contains(needle)).collect();
        assert!(!hits.is_empty(), "{needle:?} missing from:\n{doc}");
        for l in hits {
            assert!(
                l.starts_with('>'),
                "{needle:?} leaks unfolded: {l:?}\n{doc}"
            );
        }
    }

    /// The callout starting at the line `header`, as its lines.
    fn callout_lines<'a>(doc: &'a str, header: &str) -> Vec<&'a str> {
        let mut lines = doc.lines().skip_while(|l| *l != header);
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("no {header:?} in:\n{doc}"));
        std::iter::once(first)
            .chain(lines.take_while(|l| l.starts_with('>')))
            .collect()
    }

    // ---- front matter ----

    #[test]
    fn front_matter_is_valid_yaml_for_nasty_titles() {
        let titles = [
            "He said \"hi\": #1",
            "line one\nline two\r\nthree",
            "- leading dash",
            "# hash first",
            "tab\there and a back\\slash",
            "'single' & *star* {brace} [list]",
            "odd \u{7f}\u{85}\u{2028}\u{2029}\u{feff}\u{1} chars",
            "",
            "emoji 🙂 and 日本語",
            "key: value # comment",
        ];
        for title in titles {
            let doc = render(&conv(Some(title), vec![]), &NoLinks);
            let fields = front_matter(&doc);
            let raw = field(&fields, "title").expect("title field");
            assert_eq!(
                yaml_unquote(raw).as_deref(),
                Ok(title),
                "round trip of {title:?}"
            );
            for key in ["id", "model", "url"] {
                let v = field(&fields, key).expect(key);
                yaml_unquote(v).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
        }
    }

    #[test]
    fn front_matter_fields() {
        let mut c = conv(Some("T"), vec![]);
        let doc = render(&c, &NoLinks);
        let f = front_matter(&doc);
        assert_eq!(
            field(&f, "id"),
            Some("\"6650a1b2-0000-4000-8000-000000000001\"")
        );
        assert_eq!(field(&f, "created"), Some("2024-05-01T14:03:07.123456Z"));
        assert_eq!(field(&f, "updated"), Some("2024-05-02T09:00:00Z"));
        assert_eq!(field(&f, "model"), Some("\"gpt-4o\""));
        assert_eq!(
            field(&f, "url"),
            Some("\"https://chatgpt.com/c/6650a1b2-0000-4000-8000-000000000001\"")
        );
        assert_eq!(field(&f, "tags"), Some("[chatgpt]"));
        for absent in ["project", "gizmo_id", "archived", "deleted_remotely"] {
            assert_eq!(field(&f, absent), None, "{absent} only when set");
        }

        c.project = Some("Trip: \"Japan\"".to_owned());
        c.gizmo_id = Some("g-abc".to_owned());
        c.is_archived = true;
        c.deleted_remotely = true;
        c.create_time = Some("not a time: really".to_owned());
        c.id = "a b/c".to_owned();
        let doc = render(&c, &NoLinks);
        let f = front_matter(&doc);
        assert_eq!(
            yaml_unquote(field(&f, "project").unwrap_or_default()).as_deref(),
            Ok("Trip: \"Japan\"")
        );
        assert_eq!(field(&f, "gizmo_id"), Some("\"g-abc\""));
        assert_eq!(field(&f, "archived"), Some("true"));
        assert_eq!(field(&f, "deleted_remotely"), Some("true"));
        assert_eq!(field(&f, "created"), Some("\"not a time: really\""));
        assert_eq!(
            field(&f, "url"),
            Some("\"https://chatgpt.com/c/a%20b%2Fc\"")
        );
    }

    #[test]
    fn heading_falls_back_and_escapes() {
        let doc = render(&conv(None, vec![]), &NoLinks);
        assert!(doc.contains("\n# Untitled conversation\n"), "{doc}");
        assert!(!front_matter(&doc).iter().any(|(k, _)| k == "title"));

        let doc = render(&conv(Some("   "), vec![]), &NoLinks);
        assert!(doc.contains("\n# Untitled conversation\n"), "{doc}");

        let doc = render(&conv(Some("Learn #rust\nin [[C#]]"), vec![]), &NoLinks);
        assert!(
            doc.contains("\n# Learn \\#rust in \\[\\[C\\#\\]\\]\n"),
            "{doc}"
        );
    }

    // ---- fences ----

    #[test]
    fn fences_outgrow_backtick_runs_inside() {
        assert_eq!(fenced("py", "x = 1\n"), "```py\nx = 1\n```");
        assert_eq!(fenced("md", "a ``` b"), "````md\na ``` b\n````");
        assert_eq!(fenced("md", "`````"), "``````md\n`````\n``````");
        assert_eq!(fenced("text", ""), "```text\n```");
    }

    #[test]
    fn code_tool_call_with_fences_inside_survives() {
        let code = "s = '''\n```python\nprint(1)\n```\n'''\r\nprint(s)";
        let doc = render(
            &conv(
                Some("t"),
                vec![
                    msg("user", "text", "go"),
                    call("python", Some("unknown"), code),
                ],
            ),
            &NoLinks,
        );
        let lines = callout_lines(&doc, "> [!example]- Python");
        assert_eq!(lines[1], "> ````python", "{doc}");
        assert_eq!(
            lines[2..6],
            ["> s = '''", "> ```python", "> print(1)", "> ```"]
        );
        assert_eq!(lines.last(), Some(&"> ````"));
        assert!(!doc.contains('\r'));
    }

    #[test]
    fn code_language_defaults_and_sanitises() {
        let m = call("web.run", Some("unknown"), "{}");
        assert_eq!(code_language(&m), "text");
        let m = call("python", None, "1");
        assert_eq!(code_language(&m), "python");
        let m = call("x", Some("json"), "{}");
        assert_eq!(code_language(&m), "json");
        let m = call("x", Some("we`ird lang"), "{}");
        assert_eq!(code_language(&m), "weird");
    }

    #[test]
    fn unclosed_fence_in_visible_text_is_closed() {
        let doc = render(
            &conv(
                Some("t"),
                vec![
                    msg(
                        "assistant",
                        "text",
                        "Here:\n````rust\nfn main() {\n```\nstill code",
                    ),
                    msg("user", "text", "next"),
                ],
            ),
            &NoLinks,
        );
        assert!(doc.contains("still code\n````\n\n## You\n"), "{doc}");

        assert_eq!(unclosed_fence("```\na\n```"), None);
        assert_eq!(unclosed_fence("1. x\n   ```sh\n   ls\n   ```\n"), None);
        assert_eq!(unclosed_fence("~~~\na"), Some("~~~".to_owned()));
        assert_eq!(unclosed_fence("inline ``` only"), None);
        assert_eq!(
            unclosed_fence("```a`b"),
            None,
            "not a fence: backtick in info"
        );
    }

    // ---- folding ----

    #[test]
    fn thinking_folds_into_one_callout_with_every_line_prefixed() {
        let doc = render(
            &conv(
                Some("t"),
                vec![
                    msg("user", "text", "question"),
                    thoughts(&[("Plan", "thought 1\nline two\n\nnew para"), ("Plan", "")]),
                    // Silent tool chatter between thoughts does not split the callout.
                    MessageView {
                        recipient: Some("web.run".to_owned()),
                        ..msg("assistant", "text", "")
                    },
                    tool("web.run", "text", ""),
                    thoughts(&[("Check", "thought 2"), ("Wrap up", "")]),
                    recap("Thought for 29s", 29.0),
                    msg("assistant", "text", "answer"),
                ],
            ),
            &NoLinks,
        );
        let lines = callout_lines(&doc, "> [!abstract]- Thought for 29s");
        assert_eq!(
            lines[1..],
            [
                "> **Plan**",
                ">",
                "> thought 1",
                "> line two",
                ">",
                "> new para",
                ">",
                "> **Check**",
                ">",
                "> thought 2",
                ">",
                "> **Wrap up**",
            ],
            "{doc}"
        );
        assert_eq!(doc.matches("[!abstract]").count(), 1, "{doc}");
        assert_eq!(doc.matches("## ChatGPT").count(), 1, "{doc}");
        assert!(doc.contains("> **Wrap up**\n\nanswer\n"), "{doc}");
    }

    #[test]
    fn thinking_titles() {
        let alone = thinking_block(&[recap("Thought for 47s", 47.0)]);
        assert_eq!(alone.as_deref(), Some("> [!abstract]- Thought for 47s"));
        let secs_only = thinking_block(&[MessageView {
            thinking_secs: Some(12.4),
            ..thoughts(&[("S", "c")])
        }]);
        assert!(secs_only.is_some_and(|b| b.starts_with("> [!abstract]- Thought for 12s\n")));
        let untimed = thinking_block(&[thoughts(&[("S", "c")])]);
        assert!(untimed.is_some_and(|b| b.starts_with("> [!abstract]- Thoughts\n")));
        assert_eq!(
            thinking_block(&[thoughts(&[])]),
            None,
            "empty thoughts vanish"
        );
        // Without raw content the view's fields still show.
        let fallback = MessageView {
            raw_content: None,
            ..thoughts(&[("Sum", "body")])
        };
        let b = thinking_block(&[fallback]).unwrap_or_default();
        assert!(b.contains("> **Sum**") && b.contains("> body"), "{b}");
    }

    #[test]
    fn hidden_content_never_leaks_unfolded() {
        let quote = MessageView {
            url: Some("https://example.com/p".to_owned()),
            page_title: Some("Example Page".to_owned()),
            ..tool(
                "browser",
                "tether_quote",
                "QUOTED page text\n# not a heading",
            )
        };
        let webpage = MessageView {
            url: Some("file-abc".to_owned()),
            page_title: None,
            ..tool("web.run", "sonic_webpage", "SONIC text")
        };
        let unknown = MessageView {
            raw_content: Some(
                r#"{"content_type":"model_editable_context","model_set_context":"MEMORY note"}"#
                    .to_owned(),
            ),
            ..msg("assistant", "model_editable_context", "")
        };
        let doc = render(
            &conv(
                Some("t"),
                vec![
                    MessageView {
                        raw_content: None,
                        ..msg("system", "text", "SYSTEM prompt")
                    },
                    msg("user", "text", "hi"),
                    thoughts(&[("THOUGHT head", "THOUGHT body")]),
                    call("python", Some("python"), "PYCODE = 1"),
                    tool("python", "execution_output", "EXEC out"),
                    MessageView {
                        recipient: Some("bio".to_owned()),
                        ..msg("assistant", "text", "MEMORY write")
                    },
                    tool("bio", "text", "TOOLREPLY updated"),
                    tool("browser", "tether_browsing_display", "BROWSE results"),
                    quote,
                    webpage,
                    tool("container.exec", "system_error", "ERRTEXT boom"),
                    unknown,
                    msg("assistant", "text", "VISIBLE answer"),
                ],
            ),
            &NoLinks,
        );
        for needle in [
            "SYSTEM prompt",
            "THOUGHT head",
            "THOUGHT body",
            "PYCODE",
            "EXEC out",
            "MEMORY write",
            "TOOLREPLY",
            "BROWSE results",
            "QUOTED page",
            "not a heading",
            "SONIC text",
            "ERRTEXT",
            "MEMORY note",
        ] {
            only_folded(&doc, needle);
        }
        assert!(doc.contains("\nVISIBLE answer\n"), "{doc}");
        for header in [
            "> [!info]- System message",
            "> [!example]- Python",
            "> [!example]- Python output",
            "> [!example]- Tool call: bio",
            "> [!note]- Tool: bio",
            "> [!quote]- Browsing results",
            "> [!quote]- Example Page",
            "> [!quote]- file-abc",
            "> [!failure]- container.exec error",
            "> [!info]- model_editable_context (raw)",
        ] {
            assert!(
                doc.lines().any(|l| l == header),
                "missing {header:?} in:\n{doc}"
            );
        }
        assert!(doc.contains("> Source: <https://example.com/p>\n"), "{doc}");
        assert!(doc.contains("> Source: `file-abc`\n"), "{doc}");
        let raw = callout_lines(&doc, "> [!info]- model_editable_context (raw)");
        assert_eq!(raw[1], "> ```json");
        assert!(raw.contains(&"> {"), "pretty-printed: {raw:?}");
        // The system message sits before any heading, folded.
        let first_heading = doc.find("\n## ").unwrap_or(doc.len());
        assert!(doc[..first_heading].contains("> [!info]- System message"));
    }

    #[test]
    fn empty_messages_and_tool_chatter_are_omitted() {
        let empty_call = MessageView {
            recipient: Some("web.run".to_owned()),
            ..msg("assistant", "code", "")
        };
        let doc = render(
            &conv(
                Some("t"),
                vec![
                    msg("system", "text", ""),
                    msg("user", "text", "q"),
                    empty_call,
                    tool("web.run", "text", "  "),
                    msg("assistant", "text", ""),
                    // An unknown type with nothing at all to show.
                    msg("assistant", "computer_output", ""),
                ],
            ),
            &NoLinks,
        );
        assert!(!doc.contains("## ChatGPT"), "{doc}");
        assert!(!doc.contains("> [!"), "{doc}");
        assert!(doc.ends_with("## You\n\nq\n"), "{doc}");
    }

    // ---- citations ----

    #[test]
    fn citation_markers_become_bracketed_refs() {
        let text = "Paris is big.\u{E200}cite\u{E202}turn0search0\u{E202}turn1news2\u{E201} \
                    See\u{E200}filecite\u{E202}turn0file0\u{E201}(x). \
                    Visit \u{E200}entity\u{E202}[\"city\",\"Paris\",\"capital\"]\u{E201} now.\
                    \u{E200}image_group\u{E202}{\"query\":[\"a\"]}\u{E201}\
                    \u{E200}cite\u{E201} Old 【6†source】 stays. Broken \u{E200}cite tail";
        let out = clean_text(text);
        assert_eq!(
            out,
            "Paris is big.\\[turn0search0, turn1news2\\] See\\[turn0file0\\](x). \
             Visit Paris now. Old 【6†source】 stays. Broken \u{E200}cite tail"
        );
        let doc = render(
            &conv(Some("t"), vec![msg("assistant", "text", text)]),
            &NoLinks,
        );
        assert!(
            !doc.contains('\u{E201}') && !doc.contains('\u{E202}'),
            "{doc}"
        );
        assert!(doc.contains("\\[turn0search0, turn1news2\\]"));
    }

    // ---- attachments ----

    #[test]
    fn attachments_link_or_show_placeholder() {
        let user = MessageView {
            attachments: vec![
                attachment(
                    Some("my photo (1).png"),
                    "file-img",
                    Some("image/png"),
                    true,
                ),
                attachment(
                    Some("report.pdf"),
                    "file-pdf",
                    Some("application/pdf"),
                    true,
                ),
                attachment(Some("notes_v2*.txt"), "file-missing", None, false),
                attachment(None, "file_00ab", None, false),
                attachment(Some("kept.csv"), "file-kept", None, true),
            ],
            ..msg("user", "multimodal_text", "look")
        };
        let generated = MessageView {
            attachments: vec![attachment(None, "file_gen", Some("image/webp"), true)],
            ..tool("internal_tool", "multimodal_text", "")
        };
        let c = conv(Some("t"), vec![user.clone(), generated]);
        let doc = render(&c, &DirLinks);
        assert!(
            doc.contains("\n![my photo (1).png](<files/file-img-my photo (1).png>)\n"),
            "{doc}"
        );
        assert!(
            doc.contains("\n[report.pdf](files/file-pdf-report.pdf)\n"),
            "{doc}"
        );
        assert!(
            doc.contains("\n*(attachment not archived: notes\\_v2\\*.txt — file-missing)*\n"),
            "{doc}"
        );
        assert!(
            doc.contains("\n*(attachment not archived: file\\_00ab)*\n"),
            "{doc}"
        );
        assert!(
            doc.contains("\n[kept.csv](files/file-kept-kept.csv)\n"),
            "{doc}"
        );
        // User files come before the text, as in the ChatGPT UI.
        assert!(doc.find("report.pdf").unwrap_or(usize::MAX) < doc.find("\nlook\n").unwrap_or(0));
        // A generated image from a tool is shown, not folded.
        assert!(
            doc.contains("\n![file\\_gen](files/file_gen.webp)\n"),
            "{doc}"
        );

        let doc = render(&conv(Some("t"), vec![user]), &NoLinks);
        assert!(
            doc.contains("*(attachment archived, not linked here: report.pdf — file-pdf)*"),
            "{doc}"
        );
    }

    #[test]
    fn link_destinations_are_wrapped_when_needed() {
        assert_eq!(link_destination("a/b.png"), "a/b.png");
        assert_eq!(link_destination("a b.png"), "<a b.png>");
        assert_eq!(link_destination("a(1).png"), "<a(1).png>");
        assert_eq!(link_destination("a<b>.png"), "<a\\<b\\>.png>");
    }

    #[test]
    fn attachment_file_names() {
        let a = attachment(Some("photo"), "file-1", Some("image/png"), true);
        assert_eq!(attachment_file_name(&a), "file-1-photo.png");
        let a = attachment(None, "file_00ab", Some("image/jpeg"), true);
        assert_eq!(attachment_file_name(&a), "file_00ab.jpg");
        let a = attachment(None, "file_00ab", Some("audio/wav"), true);
        assert_eq!(attachment_file_name(&a), "file_00ab.wav");
        let a = attachment(None, "file_00ab", Some("image/webp"), true);
        assert_eq!(attachment_file_name(&a), "file_00ab.webp");
        let a = attachment(
            Some("Report: Q1/Q2?.PDF"),
            "file-2",
            Some("image/png"),
            true,
        );
        assert_eq!(attachment_file_name(&a), "file-2-Report Q1 Q2 .PDF");
        let a = attachment(None, "file-3", None, false);
        assert_eq!(attachment_file_name(&a), "file-3");
        let a = attachment(None, "x", Some("application/x-weird-thing"), false);
        assert_eq!(attachment_file_name(&a), "x");
        let a = attachment(None, "con", None, false);
        assert_eq!(attachment_file_name(&a), "con_");
        let long = format!("{}.docx", "é".repeat(200));
        let a = attachment(Some(&long), "file-4", None, true);
        let name = attachment_file_name(&a);
        assert!(
            name.ends_with("é.docx") && name.len() <= 6 + ATTACHMENT_NAME_MAX_BYTES,
            "{name}"
        );
        // Deterministic.
        assert_eq!(attachment_file_name(&a), name);
    }

    // ---- file names ----

    fn named(title: Option<&str>, id: &str) -> ConversationView {
        ConversationView {
            id: id.to_owned(),
            ..conv(title, vec![])
        }
    }

    #[test]
    fn file_names_are_safe() {
        let mut taken = HashSet::new();
        let n = file_name(
            &named(Some("What is 2/3? <b>\"x\"</b>: a|b #tag ^c [[l]]"), "id1"),
            &mut taken,
        );
        assert_eq!(n, "2024-05-01 What is 2 3 b x b a b tag c l.md");
        let n = file_name(
            &named(Some("  ..hidden.. \n\t tabs\u{0}\u{200B} "), "id2"),
            &mut taken,
        );
        assert_eq!(n, "2024-05-01 hidden.. tabs.md");
        let n = file_name(&named(Some(""), "id3"), &mut taken);
        assert_eq!(n, "2024-05-01 Untitled.md");
        let n = file_name(&named(None, "id4"), &mut taken);
        assert_eq!(n, "2024-05-01 Untitled (id4).md");
        let n = file_name(&named(Some("/:*?"), "id5"), &mut taken);
        assert_eq!(n, "2024-05-01 Untitled (id5).md");
    }

    #[test]
    fn file_names_without_dates_avoid_reserved_names() {
        let undated = |title: &str| ConversationView {
            create_time: None,
            update_time: None,
            ..named(Some(title), "abc")
        };
        let mut taken = HashSet::new();
        assert_eq!(file_name(&undated("CON"), &mut taken), "CON_.md");
        assert_eq!(file_name(&undated("con.txt"), &mut taken), "con_.txt.md");
        assert_eq!(file_name(&undated("Lpt1 "), &mut taken), "Lpt1_.md");
        assert_eq!(file_name(&undated("Console"), &mut taken), "Console.md");
        // Only the update time known.
        let c = ConversationView {
            create_time: None,
            ..named(Some("CON"), "x")
        };
        assert_eq!(file_name(&c, &mut taken), "2024-05-02 CON.md");
    }

    #[test]
    fn file_names_are_unique_case_insensitively() {
        let mut taken = HashSet::new();
        let a = file_name(&named(Some("Same"), "abcdef123456"), &mut taken);
        let b = file_name(&named(Some("SAME"), "abcdef129999"), &mut taken);
        let c = file_name(&named(Some("same"), "abcdef12zzzz"), &mut taken);
        let d = file_name(&named(Some("Same"), "abcdef12"), &mut taken);
        assert_eq!(a, "2024-05-01 Same.md");
        assert_eq!(b, "2024-05-01 SAME (abcdef12).md");
        assert_eq!(c, "2024-05-01 same (abcdef12 2).md");
        assert_eq!(d, "2024-05-01 Same (abcdef12 3).md");
        assert!(taken.contains("2024-05-01 same (abcdef12).md"));
        let e = file_name(&named(Some("Same"), ""), &mut taken);
        assert_eq!(e, "2024-05-01 Same (2).md");
    }

    #[test]
    fn long_multibyte_titles_are_cut_on_char_boundaries() {
        let mut taken = HashSet::new();
        let title = format!("{}🙂👩‍💻 end", "日本語".repeat(30));
        let n = file_name(&named(Some(&title), "id"), &mut taken);
        let stem = n
            .strip_prefix("2024-05-01 ")
            .and_then(|s| s.strip_suffix(".md"))
            .unwrap_or_default();
        assert!(!stem.is_empty() && stem.len() <= TITLE_MAX_BYTES, "{n}");
        assert!(
            stem.chars().all(|c| c == '日' || c == '本' || c == '語'),
            "{n}"
        );
        let dots = format!("{}. .x", "a".repeat(118));
        let n = file_name(&named(Some(&dots), "id2"), &mut taken);
        assert_eq!(n, format!("2024-05-01 {}.md", "a".repeat(118)));
    }

    // ---- a whole conversation ----

    #[test]
    fn full_conversation_reads_naturally() {
        let t = |s: &str| Some(format!("2024-05-01T14:{s}Z"));
        let user = MessageView {
            create_time: t("03:07"),
            ..msg("user", "text", "Plot **y = x²**, please.")
        };
        let code = MessageView {
            create_time: t("03:10"),
            model: Some("gpt-4o".to_owned()),
            ..call("python", Some("python"), "import matplotlib\nplt.plot(x)")
        };
        let output = tool("python", "execution_output", "\n<<ImageDisplayed>>");
        let answer = MessageView {
            model: Some("gpt-4o".to_owned()),
            ..msg(
                "assistant",
                "text",
                "Here it is:\n\n```python\nplt.show()\n```\n\nDone.\u{E200}cite\u{E202}turn0search0\u{E201}",
            )
        };
        let follow = MessageView {
            create_time: t("05:00"),
            ..msg("user", "text", "Thanks!")
        };
        let c = conv(
            Some("Plotting: y = x²"),
            vec![user, code, output, answer, follow],
        );
        let doc = render(&c, &NoLinks);
        let expected = [
            "---",
            "id: \"6650a1b2-0000-4000-8000-000000000001\"",
            "title: \"Plotting: y = x²\"",
            "created: 2024-05-01T14:03:07.123456Z",
            "updated: 2024-05-02T09:00:00Z",
            "model: \"gpt-4o\"",
            "url: \"https://chatgpt.com/c/6650a1b2-0000-4000-8000-000000000001\"",
            "tags: [chatgpt]",
            "---",
            "",
            "# Plotting: y = x²",
            "",
            "## You",
            "*2024-05-01 14:03 UTC*",
            "",
            "Plot **y = x²**, please.",
            "",
            "## ChatGPT",
            "*2024-05-01 14:03 UTC · gpt-4o*",
            "",
            "> [!example]- Python",
            "> ```python",
            "> import matplotlib",
            "> plt.plot(x)",
            "> ```",
            "",
            "> [!example]- Python output",
            "> ```text",
            "> <<ImageDisplayed>>",
            "> ```",
            "",
            "Here it is:",
            "",
            "```python",
            "plt.show()",
            "```",
            "",
            "Done.\\[turn0search0\\]",
            "",
            "## You",
            "*2024-05-01 14:05 UTC*",
            "",
            "Thanks!",
        ];
        assert_eq!(doc.lines().collect::<Vec<_>>(), expected, "{doc}");
        assert!(doc.ends_with("Thanks!\n"));
        assert_eq!(render(&c, &NoLinks), doc, "deterministic");
    }

    #[test]
    fn unknown_roles_get_their_own_heading() {
        let doc = render(
            &conv(
                Some("t"),
                vec![msg("critic", "text", "hm"), msg("assistant", "text", "ok")],
            ),
            &NoLinks,
        );
        assert!(
            doc.contains("\n## Critic\n\nhm\n\n## ChatGPT\n\nok\n"),
            "{doc}"
        );
    }
}
