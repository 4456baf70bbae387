//! One mirror note: its convos-owned part (front-matter keys convos owns, then the
//! conversation as the Markdown export renders it, ending with [`MARKER`]) and the
//! user's part (every other front-matter key, and everything below the marker).
//!
//! A note convos writes:
//! ```text
//! ---
//! id: "…"            ← keys convos owns, in this order
//! …
//! tags: [chatgpt]    ← the user's keys, verbatim and in their order (seeded once)
//! ---
//!
//! # Title            ← the export's rendering
//! …
//!
//! <!-- convos: notes below this line are yours and are kept -->
//! (the user's notes, verbatim)
//! ```
//!
//! Whether the user edited the convos-owned part is decided on a canonical form: the
//! owned keys' values as YAML reads them (so Obsidian re-quoting a title or turning a
//! list into block style is not an edit) and the body with line ends and trailing
//! spaces normalised (so git's autocrlf or an editor trimming lines is not either).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use yaml_rust2::{Yaml, YamlLoader};

/// The line that ends the convos-owned part of every note.
pub const MARKER: &str = "<!-- convos: notes below this line are yours and are kept -->";

/// Front-matter keys convos owns, in the order it writes them. Every other key is the
/// user's.
pub const OWNED_KEYS: &[&str] = &[
    "id",
    "url",
    "title",
    "aliases",
    "created",
    "updated",
    "model",
    "project",
    "gizmo_id",
    "archived",
    "deleted_remotely",
];

/// The user's front matter of a note convos creates: a starting tag, then theirs to keep.
pub const SEED_USER_KEYS: &str = "tags: [chatgpt]\n";

/// The convos-owned part of a note, ready to compose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    /// The owned front-matter lines.
    pub front: String,
    /// From the end of the front matter through the marker line.
    pub body: String,
    /// Canonical hash of the two (see the module docs).
    pub hash: String,
}

/// Builds the owned part from the export's rendering of a conversation.
///
/// The export writes its front matter as one `key: value` line per key with every
/// string already quoted for YAML; those values are reused as they are, so the mirror
/// and the export never disagree on escaping. `tags` is left to the user.
pub fn owned_from_render(rendered: &str) -> Owned {
    let (fm, body) = split_rendered(rendered);
    let values: HashMap<&str, &str> = fm
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let mut front = String::with_capacity(fm.len() + 64);
    let mut line = |key: &str, value: Option<&str>| {
        match value {
            Some(v) => {
                let _ = writeln!(front, "{key}: {v}");
            }
            // An empty value is YAML null: the property exists, with nothing in it.
            None => {
                let _ = writeln!(front, "{key}:");
            }
        }
    };
    let title = values.get("title").copied();
    line("id", values.get("id").copied());
    line("url", values.get("url").copied());
    line("title", title);
    let aliases = title.map_or_else(|| "[]".to_owned(), |t| format!("[{t}]"));
    line("aliases", Some(&aliases));
    for key in ["created", "updated", "model", "project"] {
        line(key, values.get(key).copied());
    }
    if let Some(g) = values.get("gizmo_id") {
        line("gizmo_id", Some(g));
    }
    line(
        "archived",
        Some(values.get("archived").copied().unwrap_or("false")),
    );
    if let Some(d) = values.get("deleted_remotely") {
        line("deleted_remotely", Some(d));
    }
    let body = owned_body(body);
    let hash = canonical_hash(&parse_mapping(&front).unwrap_or_default(), &body);
    Owned { front, body, hash }
}

/// The export's front matter and the rest.
fn split_rendered(rendered: &str) -> (&str, &str) {
    rendered
        .strip_prefix("---\n")
        .and_then(|rest| {
            let end = rest.find("\n---\n")?;
            Some((&rest[..=end], &rest[end + 5..]))
        })
        .unwrap_or(("", rendered))
}

/// The rendered conversation followed by the marker. A line of the conversation that
/// reads exactly like the marker gets a leading space (invisible in Markdown), so the
/// first marker line of a note is always convos' own.
fn owned_body(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + MARKER.len() + 4);
    for line in body.split_inclusive('\n') {
        if is_marker_line(line) {
            out.push(' ');
        }
        out.push_str(line);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(MARKER);
    out.push('\n');
    out
}

fn is_marker_line(line: &str) -> bool {
    line.trim_end_matches(['\n', '\r', ' ', '\t']) == MARKER
}

/// Puts a note together: `user_front` holds the user's front-matter blocks (each ending
/// with a newline), `user_section` what follows the marker.
pub fn compose(owned: &Owned, user_front: &str, user_section: &str) -> String {
    let mut out = String::with_capacity(
        owned.front.len() + user_front.len() + owned.body.len() + user_section.len() + 8,
    );
    out.push_str("---\n");
    out.push_str(&owned.front);
    out.push_str(user_front);
    out.push_str("---\n");
    out.push_str(&owned.body);
    out.push_str(user_section);
    out
}

/// Why a note's convos-owned part could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The marker line is gone: the user section cannot be told from convos' part.
    MissingMarker,
    /// The front matter is missing, unterminated or not a YAML mapping.
    MalformedFrontMatter(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::MissingMarker => write!(f, "the line `{MARKER}` is missing"),
            Damage::MalformedFrontMatter(why) => write!(f, "its front matter is malformed ({why})"),
        }
    }
}

/// A note as found in the mirror folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    /// The `id` in its front matter, when readable.
    pub id: Option<String>,
    /// The user's front-matter blocks, verbatim, in order (empty when damaged).
    pub user_front: String,
    /// Everything below the marker, verbatim.
    pub user_section: String,
    /// Canonical hash of its convos-owned part; `None` when damaged.
    pub hash: Option<String>,
    /// What is wrong with it, if anything.
    pub damage: Option<Damage>,
}

impl Existing {
    /// Whether it holds anything the user wrote (the seeded tag is convos' own).
    pub fn has_user_content(&self) -> bool {
        !self.user_section.trim().is_empty()
            || (!self.user_front.trim().is_empty() && self.user_front != SEED_USER_KEYS)
    }
}

/// Reads a note's parts.
pub fn parse(text: &str) -> Existing {
    let marker = line_spans(text).find(|&(s, e)| is_marker_line(&text[s..e]));
    let (owned_end, user_section) = match marker {
        Some((_, e)) => (e, text[e..].to_owned()),
        None => (text.len(), String::new()),
    };
    let mut existing = Existing {
        id: None,
        user_front: String::new(),
        user_section,
        hash: None,
        damage: None,
    };
    let front = front_matter(&text[..owned_end]);
    let mapping = front
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|(fm, _)| parse_mapping(fm));
    if let Ok(m) = &mapping {
        existing.id = match m.get("id") {
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(Yaml::Integer(i)) => Some(i.to_string()),
            _ => None,
        };
    }
    let blocks = front
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|(fm, _)| user_blocks(fm));
    match (marker, front, mapping, blocks) {
        (None, ..) => existing.damage = Some(Damage::MissingMarker),
        (_, Err(why), ..) | (_, _, Err(why), _) | (_, _, _, Err(why)) => {
            existing.damage = Some(Damage::MalformedFrontMatter(why));
        }
        (Some(_), Ok((_, body_start)), Ok(m), Ok(user)) => {
            existing.hash = Some(canonical_hash(&m, &text[body_start..owned_end]));
            existing.user_front = user;
        }
    }
    existing
}

/// Byte spans of each line (end includes the newline).
fn line_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    text.split_inclusive('\n').map(move |l| {
        let span = (start, start + l.len());
        start += l.len();
        span
    })
}

/// The front matter's text and where the body starts.
fn front_matter(text: &str) -> Result<(&str, usize), String> {
    let mut spans = line_spans(text);
    let first = spans.next().map(|(s, e)| text[s..e].trim_end());
    if first != Some("---") {
        return Err("it does not start with a `---` line".to_owned());
    }
    let fm_start = text.find('\n').map_or(text.len(), |i| i + 1);
    for (s, e) in spans {
        let line = text[s..e].trim_end();
        if line == "---" || line == "..." {
            return Ok((&text[fm_start..s], e));
        }
    }
    Err("no closing `---` line above the convos line".to_owned())
}

/// The front matter as a mapping of string keys (an empty front matter is an empty one).
fn parse_mapping(fm: &str) -> Result<HashMap<String, Yaml>, String> {
    let docs = YamlLoader::load_from_str(fm).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        None | Some(Yaml::Null) => Ok(HashMap::new()),
        Some(Yaml::Hash(h)) => Ok(h.into_iter().map(|(k, v)| (key_text(&k), v)).collect()),
        Some(_) => Err("it is not a list of `key: value` properties".to_owned()),
    }
}

fn key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// The front-matter blocks whose keys convos does not own, verbatim. A block is a line
/// starting a top-level key plus the indented, list and comment lines that follow;
/// comments and blank lines before a key belong to it.
fn user_blocks(fm: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut pending = String::new();
    let mut block = String::new();
    let flush = |block: &mut String, out: &mut String| -> Result<(), String> {
        if block.is_empty() {
            return Ok(());
        }
        let key = block_key(block)?;
        if !OWNED_KEYS.contains(&key.as_str()) {
            out.push_str(block);
            if !block.ends_with('\n') {
                out.push('\n');
            }
        }
        block.clear();
        Ok(())
    };
    for line in fm.split_inclusive('\n') {
        let starts_key = line
            .chars()
            .next()
            .is_some_and(|c| !matches!(c, ' ' | '\t' | '-' | '#' | '\r' | '\n'));
        let is_aside = line.starts_with('#') || line.trim().is_empty();
        if starts_key {
            flush(&mut block, &mut out)?;
            block.push_str(&pending);
            pending.clear();
            block.push_str(line);
        } else if is_aside && !block.is_empty() && !line.starts_with('#') {
            block.push_str(line);
        } else if is_aside {
            pending.push_str(line);
        } else if block.is_empty() {
            return Err("a line before the first property is not part of one".to_owned());
        } else {
            block.push_str(&pending);
            pending.clear();
            block.push_str(line);
        }
    }
    flush(&mut block, &mut out)?;
    // Trailing comments stay the user's.
    if !pending.trim().is_empty() {
        out.push_str(&pending);
        if !pending.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The one key a front-matter block defines.
fn block_key(block: &str) -> Result<String, String> {
    let m = YamlLoader::load_from_str(block).map_err(|e| e.to_string())?;
    match m.into_iter().next() {
        Some(Yaml::Hash(h)) if h.len() == 1 => {
            Ok(h.keys().next().map(key_text).unwrap_or_default())
        }
        _ => Err(format!(
            "cannot read the property starting {:?}",
            block.lines().next().unwrap_or_default()
        )),
    }
}

/// Hash of the owned keys' values (as YAML reads them) and the body (line ends and
/// trailing blanks normalised).
fn canonical_hash(front: &HashMap<String, Yaml>, body: &str) -> String {
    let mut h = Sha256::new();
    let mut text = String::new();
    for key in OWNED_KEYS {
        text.clear();
        text.push_str(key);
        text.push('=');
        match front.get(*key) {
            Some(v) => canonical(v, &mut text),
            None => text.push('!'),
        }
        text.push('\n');
        h.update(text.as_bytes());
    }
    h.update(b"\0");
    for line in body.trim_end().split('\n') {
        h.update(line.trim_end_matches([' ', '\t', '\r']).as_bytes());
        h.update(b"\n");
    }
    crate::util::hex(&h.finalize()[..16])
}

/// A stable, unambiguous text for a YAML value (strings length-prefixed).
fn canonical(v: &Yaml, out: &mut String) {
    match v {
        Yaml::String(s) => {
            let _ = write!(out, "s{}:{s}", s.len());
        }
        Yaml::Real(r) => {
            let _ = write!(out, "r{}:{r}", r.len());
        }
        Yaml::Integer(i) => {
            let _ = write!(out, "i{i};");
        }
        Yaml::Boolean(b) => {
            let _ = write!(out, "b{b};");
        }
        Yaml::Null => out.push('~'),
        Yaml::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        Yaml::Hash(m) => {
            out.push('{');
            for (k, x) in m {
                canonical(k, out);
                out.push('=');
                canonical(x, out);
                out.push(',');
            }
            out.push('}');
        }
        Yaml::Alias(_) | Yaml::BadValue => out.push('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "---\nid: \"c1\"\ntitle: \"Plans: \\\"big\\\"\"\ncreated: 2024-05-01T14:03:07Z\nupdated: 2024-05-02T09:00:00Z\nmodel: \"gpt-4o\"\nurl: \"https://chatgpt.com/c/c1\"\ntags: [chatgpt]\n---\n\n# Plans: \"big\"\n\n## You\n\nhello\n";

    fn owned() -> Owned {
        owned_from_render(RENDERED)
    }

    #[test]
    fn owned_front_matter_has_every_key_in_order() {
        let o = owned();
        assert_eq!(
            o.front,
            "id: \"c1\"\nurl: \"https://chatgpt.com/c/c1\"\ntitle: \"Plans: \\\"big\\\"\"\n\
             aliases: [\"Plans: \\\"big\\\"\"]\ncreated: 2024-05-01T14:03:07Z\n\
             updated: 2024-05-02T09:00:00Z\nmodel: \"gpt-4o\"\nproject:\narchived: false\n"
        );
        assert_eq!(
            o.body,
            format!("\n# Plans: \"big\"\n\n## You\n\nhello\n\n{MARKER}\n")
        );
        let m = parse_mapping(&o.front).expect("valid YAML");
        assert_eq!(m["title"], Yaml::String("Plans: \"big\"".into()));
        assert_eq!(
            m["aliases"],
            Yaml::Array(vec![Yaml::String("Plans: \"big\"".into())])
        );
        assert_eq!(m["project"], Yaml::Null);
        assert_eq!(m["archived"], Yaml::Boolean(false));
        assert!(!m.contains_key("tags"));
    }

    #[test]
    fn flags_and_project_are_owned() {
        let r = "---\nid: \"c2\"\nproject: \"Work\"\ngizmo_id: \"g-p-1\"\narchived: true\ndeleted_remotely: true\nurl: \"u\"\ntags: [chatgpt]\n---\n\n# Untitled conversation\n";
        let o = owned_from_render(r);
        assert!(o.front.contains("title:\naliases: []\n"), "{}", o.front);
        assert!(o.front.contains(
            "project: \"Work\"\ngizmo_id: \"g-p-1\"\narchived: true\ndeleted_remotely: true\n"
        ));
    }

    #[test]
    fn a_composed_note_parses_back() {
        let o = owned();
        let text = compose(&o, SEED_USER_KEYS, "");
        let e = parse(&text);
        assert_eq!(e.damage, None);
        assert_eq!(e.hash.as_deref(), Some(o.hash.as_str()));
        assert_eq!(e.user_front, SEED_USER_KEYS);
        assert_eq!(e.user_section, "");
        assert_eq!(e.id.as_deref(), Some("c1"));
        assert!(!e.has_user_content());
        assert!(parse(&compose(&o, SEED_USER_KEYS, "x\n")).has_user_content());
        assert!(parse(&compose(&o, "tags: [a]\n", "")).has_user_content());
    }

    #[test]
    fn user_keys_and_section_are_kept_verbatim_in_order() {
        let o = owned();
        let user_front = "rating: 5\n# why I keep it\ntags:\n  - chatgpt\n  - travel\nsummary: |\n  two\n  lines\n\n";
        let text = compose(&o, user_front, "My notes\n\n- [[Link]]\n");
        // A user key placed between convos' keys is kept too, in its place among theirs.
        let text = text.replacen("model: ", "zzz: 1\nmodel: ", 1);
        let e = parse(&text);
        assert_eq!(e.damage, None);
        assert_eq!(e.hash.as_deref(), Some(o.hash.as_str()));
        assert_eq!(e.user_front, format!("zzz: 1\n{user_front}"));
        assert_eq!(e.user_section, "My notes\n\n- [[Link]]\n");
    }

    #[test]
    fn reformatting_is_not_an_edit_but_changing_a_value_is() {
        let o = owned();
        let text = compose(&o, SEED_USER_KEYS, "");
        // What Obsidian's property editor writes back: plain scalars, block lists,
        // keys reordered; and CRLF line ends from git, trailing blanks trimmed.
        let reformatted = text
            .replace("model: \"gpt-4o\"", "model: gpt-4o")
            .replace(
                "aliases: [\"Plans: \\\"big\\\"\"]\n",
                "aliases:\n  - 'Plans: \"big\"'\n",
            )
            .replace("## You\n", "## You   \n")
            .replace('\n', "\r\n");
        let e = parse(&reformatted);
        assert_eq!(e.damage, None);
        assert_eq!(e.hash.as_deref(), Some(o.hash.as_str()));
        let edited = text.replace("hello\n", "hello, edited\n");
        assert_ne!(parse(&edited).hash.as_deref(), Some(o.hash.as_str()));
        let retitled = text.replace("title: \"Plans", "title: \"Plots");
        assert_ne!(parse(&retitled).hash.as_deref(), Some(o.hash.as_str()));
        let dropped = text.replace("model: \"gpt-4o\"\n", "");
        assert_ne!(parse(&dropped).hash.as_deref(), Some(o.hash.as_str()));
    }

    #[test]
    fn damaged_notes_keep_the_user_section() {
        let o = owned();
        let text = compose(&o, SEED_USER_KEYS, "mine\n");
        let broken = text.replacen("tags: [chatgpt]", "tags: [chatgpt", 1);
        let e = parse(&broken);
        assert!(
            matches!(e.damage, Some(Damage::MalformedFrontMatter(_))),
            "{e:?}"
        );
        assert_eq!(e.hash, None);
        assert_eq!(e.user_section, "mine\n");
        let unclosed = text.replacen("---\n\n# Plans", "\n# Plans", 1);
        let e = parse(&unclosed);
        assert!(
            matches!(e.damage, Some(Damage::MalformedFrontMatter(_))),
            "{e:?}"
        );
        assert_eq!(e.user_section, "mine\n");
        let no_fm = text.replacen("---\n", "", 1);
        assert!(matches!(
            parse(&no_fm).damage,
            Some(Damage::MalformedFrontMatter(_))
        ));
        let scalar = compose(&o, "", "").replace(&o.front, "just text\n");
        assert!(matches!(
            parse(&scalar).damage,
            Some(Damage::MalformedFrontMatter(_))
        ));
        let dup = compose(&o, "id: \"other\"\n", "");
        assert!(matches!(
            parse(&dup).damage,
            Some(Damage::MalformedFrontMatter(_))
        ));
        let no_marker = text.replace(MARKER, "");
        let e = parse(&no_marker);
        assert_eq!(e.damage, Some(Damage::MissingMarker));
        assert_eq!(e.id.as_deref(), Some("c1"));
    }

    #[test]
    fn a_marker_inside_the_conversation_cannot_end_the_owned_part() {
        let r = format!("---\nid: \"c3\"\nurl: \"u\"\n---\n\n# t\n\n```\n{MARKER}\n```\n");
        let o = owned_from_render(&r);
        assert!(o.body.contains(&format!("\n {MARKER}\n```")), "{}", o.body);
        let text = compose(&o, "", "user\n");
        let e = parse(&text);
        assert_eq!(e.damage, None);
        assert_eq!(e.user_section, "user\n");
        assert_eq!(e.hash.as_deref(), Some(o.hash.as_str()));
    }
}
