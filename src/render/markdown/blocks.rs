//! The blocks of a message: visible text (citations resolved), documents (canvas,
//! research reports), and what the ChatGPT UI hides folded (thinking, tool calls and
//! output, pages, sources, errors, screenshots, raw content).

use super::cite::{self, md_link, source_link};
use super::headings::shift_headings;
use super::*;
use crate::model::canvas::{Canvas, Change};
use crate::model::citations::Source;
use crate::model::content::TEXT_TYPES;
use crate::model::research::Report;
use serde_json::Value;

/// The highest heading inside a message's visible text (the turn headings are `##`).
const TEXT_TOP: usize = 3;
/// The highest heading inside a document or a fold (below the document's `###` title).
const NESTED_TOP: usize = 4;

pub(super) fn is_thinking(m: &MessageView) -> bool {
    matches!(m.content_type.as_str(), "thoughts" | "reasoning_recap")
}

/// A message that renders nothing: a known type with no text, no attachments and
/// nothing else to show.
pub(super) fn is_silent(m: &MessageView) -> bool {
    !is_thinking(m)
        && TEXT_TYPES.contains(&m.content_type.as_str())
        && m.text.trim().is_empty()
        && m.attachments.is_empty()
        && m.report.is_none()
        && m.canvas.is_none()
}

/// End (exclusive) of the thinking run starting at `start`: thinking messages and the
/// silent ones between them, up to the last thinking message.
pub(super) fn thinking_run_end(msgs: &[MessageView], start: usize) -> usize {
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

/// The blocks one message shows (see the module docs of `markdown`).
pub(super) fn message_blocks(m: &MessageView) -> Vec<Block> {
    if is_thinking(m) {
        return thinking_block(std::slice::from_ref(m))
            .into_iter()
            .collect();
    }
    let mut main: Vec<Block> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    // Whether the message's files are shown inside its main block already.
    let mut files_shown = false;
    if let Some(report) = &m.report {
        let (doc, listed) = report_block(report);
        main.push(doc);
        sources = listed;
    } else if let Some(canvas) = &m.canvas {
        main.push(canvas_block(canvas));
    } else if m.content_type == "computer_output" {
        main.extend(screenshot_block(m));
        files_shown = true;
    } else if !TEXT_TYPES.contains(&m.content_type.as_str()) {
        main.extend(unknown_block(m));
    } else if m.text.trim().is_empty() {
        // Nothing but its files, if any.
    } else if m.role == "system" {
        main.push(fold(Fold::System, "System message", nested(&m.text)));
    } else if m.role == "assistant" && m.is_tool_call() {
        main.push(tool_call_block(m));
    } else {
        let (block, listed) = content_block(m);
        main.push(block);
        sources = listed;
    }
    main.extend(sources_block(&sources));
    let files = (!files_shown && !m.attachments.is_empty())
        .then(|| Block::Attachments(m.attachments.clone()));
    // The ChatGPT UI shows a user's files above the message, everything else below.
    if m.role == "user" {
        files.into_iter().chain(main).collect()
    } else {
        main.into_iter().chain(files).collect()
    }
}

/// The text a reader sees of a message (see [`super::display_text`]).
pub(super) fn display_text(m: &MessageView) -> String {
    if let Some(r) = &m.report {
        return clean_text(&cite::resolve(&r.text, &r.citations).text);
    }
    if let Some(content) = m.canvas.as_ref().and_then(Canvas::whole_content) {
        return clean_text(content);
    }
    if !TEXT_TYPES.contains(&m.content_type.as_str()) || is_thinking(m) {
        return clean_text(&m.text);
    }
    clean_text(&cite::resolve(&m.text, &m.citations).text)
}

fn fold(fold: Fold, title: &str, body: String) -> Block {
    Block::Folded(Folded {
        fold,
        title: one_line(title),
        body,
        attachments: Vec::new(),
    })
}

/// Text inside a document or fold: readable markers, headings below the title, any
/// unclosed fence closed.
fn nested(text: &str) -> String {
    visible_text(&shift_headings(&clean_text(text), NESTED_TOP))
}

/// A known content type with text, not a tool call; with the sources its citations
/// list.
fn content_block(m: &MessageView) -> (Block, Vec<Source>) {
    let tool = tool_label(m.author_name.as_deref().unwrap_or("tool"));
    let text = clean_text(&m.text);
    let block = match m.content_type.as_str() {
        "code" => Block::Text(fenced(&code_language(m), &text)),
        "execution_output" | "citable_code_output" => fold(
            Fold::Output,
            &format!("{tool} output"),
            fenced("text", &text),
        ),
        "tether_browsing_display" => fold(Fold::Pages, "Browsing results", nested(&m.text)),
        "tether_quote" | "sonic_webpage" => page_block(m),
        "system_error" => fold(Fold::Error, &format!("{tool} error"), fenced("text", &text)),
        _ if m.role == "tool" => fold(Fold::Tool, &format!("Tool: {tool}"), nested(&m.text)),
        _ => {
            let resolved = cite::resolve(&m.text, &m.citations);
            let text = clean_text(&resolved.text);
            let text = visible_text(&shift_headings(&text, TEXT_TOP));
            return (Block::Text(text), resolved.sources);
        }
    };
    (block, Vec::new())
}

/// Python source in a fence; other calls (JSON arguments, memory notes…) as they are.
fn tool_call_block(m: &MessageView) -> Block {
    let target = m.recipient.as_deref().map(one_line).unwrap_or_default();
    let title = if target == "python" {
        "Python".to_owned()
    } else {
        format!("Tool call: {target}")
    };
    let text = clean_text(&m.text);
    let body = if m.content_type == "code" {
        fenced(&code_language(m), &text)
    } else {
        text
    };
    fold(Fold::ToolCall, &title, body)
}

/// A quoted web page (or file-search hit): its title, where it came from, its text.
fn page_block(m: &MessageView) -> Block {
    let title = m
        .page_title
        .as_deref()
        .map(one_line)
        .filter(|t| !t.is_empty())
        .or_else(|| m.url.as_deref().map(one_line))
        .unwrap_or_else(|| "Web page".to_owned());
    let text = nested(&m.text);
    let body = match m.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => format!("Source: {}\n\n{text}", source_ref(url)),
        None => text,
    };
    fold(Fold::Pages, &title, body)
}

/// An autolink for a plain web URL; anything else (file ids…) as inline code.
pub(super) fn source_ref(url: &str) -> String {
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

/// An agent's screenshot, folded under the page it shows (agent runs take dozens).
fn screenshot_block(m: &MessageView) -> Option<Block> {
    let url = m.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let page = m
        .page_title
        .as_deref()
        .map(one_line)
        .filter(|t| !t.is_empty());
    if m.attachments.is_empty() && url.is_none() && page.is_none() {
        return None;
    }
    let title = match page {
        Some(p) => format!("Screenshot: {p}"),
        None => "Screenshot".to_owned(),
    };
    Some(Block::Folded(Folded {
        fold: Fold::Screenshot,
        title,
        body: url
            .map(|u| format!("Page: {}", source_ref(u)))
            .unwrap_or_default(),
        attachments: m.attachments.clone(),
    }))
}

/// A canvas document under its name: code fenced with its language, prose as
/// Markdown; an edit shows the whole new document, or each replacement.
fn canvas_block(c: &Canvas) -> Block {
    let name = c
        .name
        .as_deref()
        .map(one_line)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Canvas".to_owned());
    let lang = c.code_language().map(fence_info);
    let show = |content: &str| match &lang {
        Some(l) => fenced(l, &clean_text(content)),
        None => nested(content),
    };
    let (title, body) = match (&c.change, c.whole_content()) {
        (Change::Create(_), Some(content)) => (name, show(content)),
        (Change::Update(_), Some(content)) => (format!("{name} (edited)"), show(content)),
        (Change::Update(edits), None) => {
            let parts: Vec<String> = edits
                .iter()
                .map(|e| {
                    let pattern = inline_code(&one_line(&e.pattern));
                    let which = if e.multiple { "every match of " } else { "" };
                    if e.replacement.trim().is_empty() {
                        format!("Removed {which}{pattern}.")
                    } else {
                        format!(
                            "Replaced {which}{pattern} with:\n\n{}",
                            show(&e.replacement)
                        )
                    }
                })
                .collect();
            (format!("{name} (edited)"), parts.join("\n\n"))
        }
        // A creation always has its whole content.
        (Change::Create(content), None) => (name, show(content)),
    };
    Block::Document { title, body }
}

/// A deep-research report as a document titled by its first heading, and the sources
/// it lists.
fn report_block(r: &Report) -> (Block, Vec<Source>) {
    let resolved = cite::resolve(&r.text, &r.citations);
    let text = clean_text(&resolved.text);
    let trimmed = text.trim_start_matches(['\n', ' ']);
    let (first, rest) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
    let heading = first
        .strip_prefix('#')
        .map(|h| h.trim_start_matches('#'))
        .filter(|h| h.starts_with([' ', '\t']) || h.is_empty())
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let (title, body) = match heading {
        Some(h) => (h.to_owned(), rest),
        None => ("Research report".to_owned(), trimmed),
    };
    let body = visible_text(&shift_headings(body, NESTED_TOP));
    (Block::Document { title, body }, resolved.sources)
}

/// The sources a message cites but does not link in place, folded.
fn sources_block(sources: &[Source]) -> Option<Block> {
    if sources.is_empty() {
        return None;
    }
    let lines: Vec<String> = sources
        .iter()
        .map(
            |s| match s.title.as_deref().map(one_line).filter(|t| !t.is_empty()) {
                Some(title) => {
                    let link = md_link(&title, &s.url, None);
                    match s.attribution.as_deref().map(one_line) {
                        Some(site) if !site.is_empty() && site != title => {
                            format!("- {link} · {}", escape_inline(&site))
                        }
                        _ => format!("- {link}"),
                    }
                }
                None => format!("- {}", source_link(s)),
            },
        )
        .collect();
    Some(fold(Fold::Sources, "Sources", lines.join("\n")))
}

/// An unrecognised content type: its text if the view has any, else its raw JSON, folded.
fn unknown_block(m: &MessageView) -> Option<Block> {
    let kind = if m.content_type.is_empty() {
        "unknown content"
    } else {
        m.content_type.as_str()
    };
    if !m.text.trim().is_empty() {
        return Some(fold(Fold::Raw, kind, nested(&m.text)));
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
    Some(fold(
        Fold::Raw,
        &format!("{kind} (raw)"),
        fenced("json", &pretty),
    ))
}

/// Thinking messages (and the silent ones between them) as one fold, titled by the
/// reasoning recap ("Thought for 47s") when there is one. Every thought's summary is
/// shown, also when the thought has no text ("Thinking longer for a better answer").
pub(super) fn thinking_block(run: &[MessageView]) -> Option<Block> {
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
                    let content = nested(&content);
                    // Streaming repeats a heading with empty content; show it once.
                    if !summary.is_empty() && (summary != last_summary || !content.is_empty()) {
                        body.push(format!("**{}**", escape_inline(&summary)));
                    }
                    if !content.trim().is_empty() {
                        body.push(content);
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
    Some(fold(Fold::Thinking, &title, body.join("\n\n")))
}

/// `(summary, content)` pairs of a `thoughts` message, read from its raw content so
/// each heading stays with its text; falls back to the view's fields.
pub(super) fn thought_entries(m: &MessageView) -> Vec<(String, String)> {
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
pub(super) fn code_language(m: &MessageView) -> String {
    let lang = m
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("unknown"))
        .or_else(|| (m.recipient.as_deref() == Some("python")).then_some("python"))
        .unwrap_or("text");
    fence_info(lang)
}

/// A language as a fence info string: no backticks, spaces or controls; `text` when
/// nothing is left.
fn fence_info(lang: &str) -> String {
    let lang: String = lang
        .trim()
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

/// A friendlier name for well-known tools in fold titles.
pub(super) fn tool_label(name: &str) -> String {
    match name {
        "python" => "Python".to_owned(),
        other => one_line(other),
    }
}
