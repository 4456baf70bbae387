//! Message blocks: visible text, and what the ChatGPT UI hides folded into collapsed
//! callouts (thinking, tool calls, pages, errors, raw content).

use super::*;
use crate::model::content::TEXT_TYPES;
use serde_json::Value;

pub(super) fn is_thinking(m: &MessageView) -> bool {
    matches!(m.content_type.as_str(), "thoughts" | "reasoning_recap")
}

/// A message that renders nothing: a known type with no text and no attachments.
pub(super) fn is_silent(m: &MessageView) -> bool {
    !is_thinking(m)
        && TEXT_TYPES.contains(&m.content_type.as_str())
        && m.text.trim().is_empty()
        && m.attachments.is_empty()
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

/// The blocks (paragraph groups separated by blank lines) one message renders to.
pub(super) fn message_blocks(m: &MessageView, links: &dyn AttachmentLinks) -> Vec<String> {
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
pub(super) fn content_block(m: &MessageView, text: &str) -> String {
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
pub(super) fn tool_call_block(m: &MessageView, text: &str) -> String {
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
pub(super) fn page_block(m: &MessageView, text: &str) -> String {
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

/// An unrecognised content type: its text if the view has any, else its raw JSON, folded.
pub(super) fn unknown_block(m: &MessageView, text: &str) -> Option<String> {
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
pub(super) fn thinking_block(run: &[MessageView]) -> Option<String> {
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
pub(super) fn tool_label(name: &str) -> String {
    match name {
        "python" => "Python".to_owned(),
        other => one_line(other),
    }
}
