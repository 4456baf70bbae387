//! Attachment lines: an embedded image or a link when the file is available locally,
//! else a placeholder naming it.

use super::*;
use crate::render::filename::extension;

/// An image embed, a file link, or a placeholder when the bytes are not linked.
pub(super) fn attachment_line(a: &AttachmentView, links: &dyn AttachmentLinks) -> String {
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

pub(super) fn is_image(a: &AttachmentView, target: &str) -> bool {
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
pub(super) fn link_destination(target: &str) -> String {
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
