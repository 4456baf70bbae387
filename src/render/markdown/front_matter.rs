//! The YAML front matter: every string double-quoted and escaped, so any title is
//! valid YAML.

use super::*;

pub(super) fn write_front_matter(out: &mut String, view: &ConversationView) {
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

pub(super) fn yaml_line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key}: {value}");
}

/// A YAML double-quoted scalar. Escapes quotes, backslashes, and every character YAML
/// does not allow raw or that some parsers treat as a line break (NEL, LS, PS).
pub(super) fn yaml_quote(s: &str) -> String {
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
pub(super) fn yaml_time(t: &str) -> String {
    let plain = t.starts_with(|c: char| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z'));
    if plain { t.to_owned() } else { yaml_quote(t) }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
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
