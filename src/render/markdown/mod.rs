//! Markdown rendering: one Obsidian-friendly document per conversation (file names
//! for it are in [`super::filename`]). The parts of a document are in their own files:
//! `front_matter`, message `blocks`, `attachments` and `text` helpers.
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

mod attachments;
mod blocks;
mod front_matter;
mod text;

use super::view::{AttachmentView, ConversationView, MessageView};
use attachments::*;
use blocks::*;
use chrono::{DateTime, Utc};
use front_matter::*;
use std::fmt::Write as _;
pub(in crate::render) use text::one_line;
use text::*;

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

#[cfg(test)]
mod tests;
