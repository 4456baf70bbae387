//! Safe, portable file names for exported conversations and their attachments: no
//! characters a filesystem forbids or hides, no reserved names, bounded lengths, and
//! unique among the names already taken. Used by `export` for Markdown files and for
//! the attachments written beside them.

use super::markdown::one_line;
use super::view::{AttachmentView, ConversationView};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// File name stem used when a conversation has no usable title.
const UNTITLED_FILE: &str = "Untitled";
/// Longest title part of a file name, in bytes (well under every filesystem's 255).
const TITLE_MAX_BYTES: usize = 120;
/// Longest original-name part of an attachment file name, in bytes.
const ATTACHMENT_NAME_MAX_BYTES: usize = 100;
/// Longest file-id part of an attachment file name, in bytes.
const FILE_ID_MAX_BYTES: usize = 80;

/// A safe, unique file name `YYYY-MM-DD <title>.md` for a conversation.
///
/// `taken` holds the lowercased names already used (macOS and Windows filesystems are
/// case-insensitive); a caller pre-filling it must lowercase too. On a clash the first
/// 8 characters of the id are appended, then a counter. The chosen name is recorded.
pub fn file_name(view: &ConversationView, taken: &mut HashSet<String>) -> String {
    let title = title_part(view.title.as_deref().unwrap_or(""));
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

/// A name made safe by the rules of a note's name without its date (forbidden and
/// invisible characters, length, Windows device names), e.g. for a folder.
pub fn plain_name(name: &str) -> String {
    avoid_reserved(&title_part(name))
}

/// The title part of a note's name: sanitized, or the untitled placeholder.
fn title_part(title: &str) -> String {
    let title = sanitize_component(title, TITLE_MAX_BYTES);
    if title.is_empty() {
        UNTITLED_FILE.to_owned()
    } else {
        title
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
pub(in crate::render) fn extension(name: &str) -> Option<&str> {
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
            kind: "file".to_owned(),
        }
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
            title: title.map(str::to_owned),
            create_time: Some("2024-05-01T14:03:07.123456Z".to_owned()),
            update_time: Some("2024-05-02T09:00:00Z".to_owned()),
            model: Some("gpt-4o".to_owned()),
            gizmo_id: None,
            project: None,
            is_archived: false,
            deleted_remotely: false,
            node_count: 0,
            messages: Vec::new(),
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
}
