//! Markdown rendering: one Obsidian-friendly document per conversation (file names
//! for it are in [`super::filename`]), built from a per-message API that the web viewer
//! and the Markdown mirror use too. The parts are in their own files: `front_matter`,
//! message `blocks`, `cite` (citations), `headings`, `attachments` and `text` helpers.
//!
//! # What a reader sees of a message
//! [`pieces`] splits a conversation's messages into what the ChatGPT UI shows one after
//! the other: each message alone, except that a run of thinking (with the silent tool
//! chatter inside it) is one piece. Each [`Piece`] has a [`Speaker`] (which turn it
//! belongs to) and [`Block`]s, in reading order:
//! - [`Block::Text`]: Markdown shown as it is (an answer, a prompt);
//! - [`Block::Document`]: a titled document shown whole (a canvas document or edit, a
//!   deep-research report);
//! - [`Block::Folded`]: what the UI hides, folded under a title ([`Fold`] says what:
//!   thinking, a tool call, its output, web pages, cited sources, an agent's
//!   screenshot…);
//! - [`Block::Attachments`]: files shown with the message (uploads, generated images,
//!   recordings).
//!
//! [`message_blocks`] gives the blocks of one message, [`block_markdown`] writes a block
//! as Markdown (folds become collapsed Obsidian callouts), [`message_markdown`] does
//! both for one message, and [`display_text`] is the text a reader sees of a message
//! (citations resolved), for snippets and search. All of them are pure: the same
//! message always gives the same output.
//!
//! Rules every block follows:
//! - Citations are resolved as the UI shows them: a reference's `alt` (a Markdown link
//!   to its source) where its marker was, applied one reference at a time in
//!   `start_idx` order, never for a blank `matched_text`; 2023–24 `【11†source】` markers
//!   become a link to the cited page; sources that cannot be placed are listed in a
//!   folded "Sources" block. Markers no reference explains become an escaped
//!   bracketed ref (`\[turn0search0\]`), or the entity's name for `entity` markers.
//! - Headings inside a message sit below the turn headings: its highest heading
//!   becomes `###` (`####` inside documents and folds), fenced code untouched.
//! - An unclosed code fence is closed so it cannot swallow what follows.
//! - A canvas document is shown under its name: code in a fenced block with its
//!   language (`code/python` → `python`), prose as Markdown; an edit shows the new
//!   document when it rewrites it whole, else each replacement.
//! - A deep-research report (`metadata.chatgpt_sdk.widget_state`) is shown as a
//!   document titled by its first heading.
//! - `citable_code_output` is folded like other tool output; an agent's screenshot
//!   (`computer_output`) is folded with the page it shows; recordings are linked.
//! - Thought summaries are shown in the thinking fold even when a thought has no text.
//!
//! # The document
//! - YAML front matter; every string value is double-quoted and escaped, so any title
//!   is valid YAML. Then `# <title>`.
//! - `## You` heads each user message; `## ChatGPT` heads a run of assistant and tool
//!   messages (tool call → tool output → answer read as one turn). A small italic line
//!   under the heading gives the time (UTC) and, for ChatGPT, the model.
//! - Folds are collapsed Obsidian callouts, every line prefixed with `> `: thinking
//!   (`[!abstract]-`), tool calls, code output and screenshots (`[!example]-`), web
//!   pages, search results and sources (`[!quote]-`), tool errors (`[!failure]-`), other
//!   tool replies (`[!note]- Tool: <name>`), system messages and unrecognised content as
//!   raw JSON (`[!info]-`). A document is a `###` heading with its body below. Empty
//!   messages are left out.

mod attachments;
mod blocks;
mod cite;
mod front_matter;
mod headings;
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

/// One block of what a reader sees of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Markdown shown as it is: citations resolved, headings below the turn headings.
    Text(String),
    /// A document shown whole under its title (a canvas document or edit, a research
    /// report); `body` is Markdown whose highest heading is `####`.
    Document {
        /// The document's name.
        title: String,
        /// Its content, as Markdown.
        body: String,
    },
    /// What the ChatGPT UI hides, folded.
    Folded(Folded),
    /// Files shown with the message, in order.
    Attachments(Vec<AttachmentView>),
}

/// A folded block: a title, Markdown shown when unfolded, and files shown inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Folded {
    /// What is folded.
    pub fold: Fold,
    /// One line of plain text (not Markdown).
    pub title: String,
    /// Markdown; may be empty.
    pub body: String,
    /// Files shown in the fold (an agent's screenshot).
    pub attachments: Vec<AttachmentView>,
}

/// What a folded block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// A reasoning model's thinking, with its thought summaries.
    Thinking,
    /// A call from the assistant to a tool (code, JSON arguments).
    ToolCall,
    /// Code or command output.
    Output,
    /// Web pages and search results the model read.
    Pages,
    /// Sources cited by the message that are not linked in its text.
    Sources,
    /// A tool error.
    Error,
    /// Another tool's reply.
    Tool,
    /// An agent's screenshot of the page it worked on.
    Screenshot,
    /// A system message.
    System,
    /// Content of a type this version does not know (its text, or raw JSON).
    Raw,
}

impl Fold {
    /// The Obsidian callout type the document uses for it.
    pub fn callout(self) -> &'static str {
        match self {
            Fold::Thinking => "abstract",
            Fold::ToolCall | Fold::Output | Fold::Screenshot => "example",
            Fold::Pages | Fold::Sources => "quote",
            Fold::Error => "failure",
            Fold::Tool => "note",
            Fold::System | Fold::Raw => "info",
        }
    }
}

/// Which turn a piece belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker<'a> {
    /// The person: each user message is a turn of its own.
    User,
    /// ChatGPT: assistant and tool messages in a row are one turn.
    Assistant,
    /// System messages: shown where they occur, in no turn of their own.
    System,
    /// A role this version does not know, by its name.
    Other(&'a str),
}

impl<'a> Speaker<'a> {
    /// The speaker of a message, by its role.
    pub fn of(m: &'a MessageView) -> Self {
        match m.role.as_str() {
            "user" => Speaker::User,
            "assistant" | "tool" => Speaker::Assistant,
            "system" => Speaker::System,
            other => Speaker::Other(other),
        }
    }
}

/// A message, or a run of thinking, as one unit a reader sees.
#[derive(Clone, Debug)]
pub struct Piece<'a> {
    /// Which turn it belongs to (that of its first message).
    pub speaker: Speaker<'a>,
    /// The messages it shows: one, or a thinking run with the silent messages in it.
    pub messages: &'a [MessageView],
    /// What it shows, in order; empty when there is nothing to show.
    pub blocks: Vec<Block>,
}

/// Splits a conversation's messages into pieces, in order. Every message belongs to
/// exactly one piece; pieces with nothing to show have no blocks.
pub fn pieces(messages: &[MessageView]) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < messages.len() {
        let m = &messages[i];
        let (end, blocks) = if is_thinking(m) {
            // Thinking, with silent tool chatter in between, is one fold.
            let end = thinking_run_end(messages, i);
            (end, thinking_block(&messages[i..end]).into_iter().collect())
        } else {
            (i + 1, message_blocks(m))
        };
        out.push(Piece {
            speaker: Speaker::of(m),
            messages: &messages[i..end],
            blocks,
        });
        i = end;
    }
    out
}

/// The blocks one message shows, in reading order (see the module docs). A thinking
/// message alone gives its fold; [`pieces`] joins a run of them.
pub fn message_blocks(m: &MessageView) -> Vec<Block> {
    blocks::message_blocks(m)
}

/// One block as Markdown (no trailing newline): folds become collapsed callouts, files
/// embeds or links through `links` (a placeholder when it has none for a file).
pub fn block_markdown(block: &Block, links: &dyn AttachmentLinks) -> String {
    match block {
        Block::Text(t) => t.clone(),
        Block::Document { title, body } => {
            let title = escape_inline(&one_line(title));
            if body.trim().is_empty() {
                format!("### {title}")
            } else {
                format!("### {title}\n\n{}", body.trim_matches('\n'))
            }
        }
        Block::Folded(f) => {
            let mut body = f.body.trim_matches('\n').to_owned();
            for a in &f.attachments {
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(&attachment_line(a, links));
            }
            callout(f.fold.callout(), &f.title, &body)
        }
        Block::Attachments(list) => list
            .iter()
            .map(|a| attachment_line(a, links))
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

/// One message as Markdown: its blocks separated by blank lines (empty when it shows
/// nothing).
pub fn message_markdown(m: &MessageView, links: &dyn AttachmentLinks) -> String {
    message_blocks(m)
        .iter()
        .map(|b| block_markdown(b, links))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The text a reader sees of a message, as Markdown: a research report or a canvas
/// document's content when it carries one, else its text with citations resolved and
/// markers made readable (headings as written). For snippets and search.
pub fn display_text(m: &MessageView) -> String {
    blocks::display_text(m)
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
    for piece in pieces(&view.messages) {
        let Some(first) = piece.messages.first() else {
            continue;
        };
        let blocks: Vec<String> = piece
            .blocks
            .iter()
            .map(|b| block_markdown(b, links))
            .filter(|b| !b.trim().is_empty())
            .collect();
        doc.push(piece.speaker, first, blocks);
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

/// The document being written and the turn its last heading opened.
#[derive(Default)]
struct Doc<'a> {
    out: String,
    current: Option<Speaker<'a>>,
}

impl<'a> Doc<'a> {
    /// Appends a piece's blocks, opening a new heading when the turn changes.
    fn push(&mut self, speaker: Speaker<'a>, first: &MessageView, blocks: Vec<String>) {
        if blocks.is_empty() {
            return;
        }
        // Each user message is its own turn; assistant and tool pieces share one.
        let needs_heading = match speaker {
            Speaker::System => false,
            Speaker::User => true,
            s => self.current != Some(s),
        };
        if needs_heading {
            let name = match speaker {
                Speaker::User => "You".to_owned(),
                Speaker::Assistant => "ChatGPT".to_owned(),
                Speaker::System => "System".to_owned(),
                Speaker::Other(role) => escape_inline(&capitalize(&one_line(role))),
            };
            let _ = writeln!(self.out, "\n## {name}");
            if let Some(meta) = meta_line(speaker, first) {
                self.out.push_str(&meta);
                self.out.push('\n');
            }
            self.current = Some(speaker);
        }
        for block in blocks {
            self.out.push('\n');
            self.out.push_str(block.trim_end_matches('\n'));
            self.out.push('\n');
        }
    }
}

/// `*2024-05-01 14:03 UTC · gpt-4o*` under a heading, when anything is known.
fn meta_line(speaker: Speaker<'_>, m: &MessageView) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = m.create_time.as_deref() {
        parts.push(display_time(t));
    }
    if speaker != Speaker::User
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
