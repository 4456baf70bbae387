//! `index.md`: every conversation by month, newest first, linking its note.
//!
//! The entries are also the mirror's record of each note (its path, the version it
//! shows, the hash of what convos wrote). They live in the archive, one record per
//! creation month, read once per run: an update of one conversation rewrites the index
//! without reading a single note, and a first run of 10,000 notes does no per-note
//! lookup in the archive. Conversations
//! are grouped by creation date, which never changes, so an update moves no line; a
//! title change edits one.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// One conversation's note: what the index shows of it, and what the mirror wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Conversation id.
    pub id: String,
    /// Creation time, epoch seconds (sorting).
    pub created: Option<f64>,
    /// `YYYY-MM-DD` of the creation (or update) time, `""` when unknown.
    pub date: String,
    /// The note's path from the mirror's root, `/`-separated.
    pub path: String,
    /// The current title.
    pub title: Option<String>,
    /// Archived on chatgpt.com.
    #[serde(default)]
    pub archived: bool,
    /// Gone from chatgpt.com.
    #[serde(default)]
    pub deleted_remotely: bool,
    /// The user deleted the note: left out of the index (its name stays reserved), and
    /// not written again until a rebuild.
    #[serde(default)]
    pub hidden: bool,
    /// The conversation version the note shows (the archive's `ConvRecord::version`).
    #[serde(default)]
    pub version: i64,
    /// Canonical hash of the convos-owned part last written (see `note.rs`).
    #[serde(default)]
    pub hash: String,
}

impl Entry {
    /// The month group: `YYYY-MM`, or `undated`.
    pub fn month(&self) -> String {
        match self.date.get(..7) {
            Some(m) if self.date.len() >= 10 => m.to_owned(),
            _ => UNDATED.to_owned(),
        }
    }
}

/// The group of conversations without a date.
pub const UNDATED: &str = "undated";

/// The index document.
pub fn render(entries: &HashMap<String, Entry>) -> String {
    let mut months: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in entries.values().filter(|e| !e.hidden) {
        months.entry(e.month()).or_default().push(e);
    }
    let mut out = String::from(
        "# ChatGPT conversations\n\n<!-- convos: this file is rewritten by convos; edits here are not kept -->\n",
    );
    let undated = months.remove(UNDATED);
    let groups = months
        .into_iter()
        .rev()
        .chain(undated.map(|v| (UNDATED.to_owned(), v)));
    for (month, mut list) in groups {
        let heading = if month == UNDATED { "Undated" } else { &month };
        let _ = write!(out, "\n## {heading}\n\n");
        list.sort_by(|a, b| {
            b.created
                .unwrap_or(f64::MIN)
                .total_cmp(&a.created.unwrap_or(f64::MIN))
                .then_with(|| a.id.cmp(&b.id))
        });
        for e in list {
            line(&mut out, e);
        }
    }
    out
}

fn line(out: &mut String, e: &Entry) {
    let title = e
        .title
        .as_deref()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Untitled conversation".to_owned());
    out.push_str("- ");
    if !e.date.is_empty() {
        out.push_str(&e.date);
        out.push(' ');
    }
    let _ = write!(out, "[{}]({})", escape_label(&title), link_target(&e.path));
    if let Some((folder, _)) = e.path.rsplit_once('/') {
        let _ = write!(out, " · {}", escape_label(folder));
    }
    if e.archived {
        out.push_str(" · archived");
    }
    if e.deleted_remotely {
        out.push_str(" · deleted on chatgpt.com");
    }
    out.push('\n');
}

/// A relative link target any Markdown reader resolves (Obsidian, GitHub, editors):
/// spaces, parentheses, angle brackets and `%` percent-encoded, the rest as it is.
fn link_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 16);
    for c in path.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '%' => out.push_str("%25"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A title as link text: characters Markdown or Obsidian would read as syntax escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '$' | '~' | '=' | '%'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, created: Option<f64>, date: &str, path: &str, title: &str) -> Entry {
        Entry {
            id: id.to_owned(),
            created,
            date: date.to_owned(),
            path: path.to_owned(),
            title: Some(title.to_owned()),
            ..Entry::default()
        }
    }

    #[test]
    fn months_newest_first_with_links() {
        let mut m = HashMap::new();
        for e in [
            entry("a", Some(1.0e9), "2001-09-09", "2001-09-09 Old.md", "Old"),
            entry(
                "b",
                Some(1.7e9),
                "2023-11-14",
                "Work/2023-11-14 Plan (v2) 100%.md",
                "Plan [v2] *now*",
            ),
            entry(
                "c",
                Some(1.7e9 + 60.0),
                "2023-11-14",
                "2023-11-14 Later.md",
                "Later",
            ),
            entry("d", None, "", "Undated.md", "No date"),
            Entry {
                hidden: true,
                ..entry("e", Some(1.7e9), "2023-11-14", "2023-11-14 Gone.md", "Gone")
            },
            Entry {
                archived: true,
                deleted_remotely: true,
                ..entry(
                    "f",
                    Some(1.0e9 + 5.0),
                    "2001-09-09",
                    "2001-09-09 Flags.md",
                    "Flags",
                )
            },
        ] {
            m.insert(e.id.clone(), e);
        }
        let doc = render(&m);
        let expected = "# ChatGPT conversations\n\n\
            <!-- convos: this file is rewritten by convos; edits here are not kept -->\n\n\
            ## 2023-11\n\n\
            - 2023-11-14 [Later](2023-11-14%20Later.md)\n\
            - 2023-11-14 [Plan \\[v2\\] \\*now\\*](Work/2023-11-14%20Plan%20%28v2%29%20100%25.md) · Work\n\n\
            ## 2001-09\n\n\
            - 2001-09-09 [Flags](2001-09-09%20Flags.md) · archived · deleted on chatgpt.com\n\
            - 2001-09-09 [Old](2001-09-09%20Old.md)\n\n\
            ## Undated\n\n\
            - [No date](Undated.md)\n";
        assert_eq!(doc, expected);
        assert_eq!(render(&m), doc, "deterministic");
    }

    #[test]
    fn months_of_entries() {
        assert_eq!(entry("a", None, "2024-05-01", "", "").month(), "2024-05");
        assert_eq!(entry("a", None, "", "", "").month(), UNDATED);
    }
}
