//! Markdown rendering (stand-in until the full renderer lands).

use super::view::{AttachmentView, ConversationView};
use std::collections::HashSet;

/// Where attachments can be linked from.
pub trait AttachmentLinks {
    /// The link target, or `None` when the bytes are not available.
    fn link(&self, a: &AttachmentView) -> Option<String>;
}

/// Renders a conversation.
pub fn render(view: &ConversationView, _links: &dyn AttachmentLinks) -> String {
    let mut s = format!("# {}\n", view.title.as_deref().unwrap_or("Untitled"));
    for m in &view.messages {
        s.push_str(&format!("\n## {}\n\n{}\n", m.role, m.text));
    }
    s
}

/// A unique file name.
pub fn file_name(view: &ConversationView, taken: &mut HashSet<String>) -> String {
    let n = format!("{}.md", view.id);
    taken.insert(n.clone());
    n
}

/// An attachment file name.
pub fn attachment_file_name(a: &AttachmentView) -> String {
    a.file_id.clone()
}
