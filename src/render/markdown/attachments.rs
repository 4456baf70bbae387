//! Attachment lines: an embedded image or a link when the file is available locally,
//! else a placeholder naming it. Recordings without a name are called what they are.

use super::*;
use crate::render::filename::extension;

/// An image embed, a file link, or a placeholder when the bytes are not linked.
pub(super) fn attachment_line(a: &AttachmentView, links: &dyn AttachmentLinks) -> String {
    let name = a
        .name
        .as_deref()
        .map(one_line)
        .filter(|n| !n.is_empty())
        .or_else(|| recording_name(a));
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

/// `Voice recording (wav)` / `Video recording (mp4)` for an unnamed recording.
fn recording_name(a: &AttachmentView) -> Option<String> {
    let what = match a.kind.as_str() {
        "audio_asset_pointer" => "Voice recording",
        "video_container_asset_pointer" => "Video recording",
        _ => return None,
    };
    let format = a
        .mime_type
        .as_deref()
        .and_then(|m| m.split_once('/'))
        .map(|(_, f)| one_line(f))
        .filter(|f| !f.is_empty());
    Some(match format {
        Some(f) => format!("{what} ({f})"),
        None => what.to_owned(),
    })
}

pub(super) fn is_image(a: &AttachmentView, target: &str) -> bool {
    const IMAGE_EXTS: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "webp", "bmp", "svg", "heic", "heif", "avif", "tif", "tiff",
    ];
    let by_ext = |s: &str| {
        extension(s).is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
    };
    a.kind == "image_asset_pointer"
        || a.mime_type
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
