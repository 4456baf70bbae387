//! `convos search`: find conversations whose title or visible messages contain every
//! word of the query (case-insensitive), newest first, with a snippet.

use super::{CommandError, Context};
use crate::archive::Archive;
use crate::archive::schema::ConvRecord;
use crate::cli::SearchArgs;
use crate::render::{terminal, view};
use serde::Serialize;
use std::io::Write;

/// One search hit.
#[derive(Serialize)]
pub(crate) struct Hit {
    pub(crate) id: String,
    pub(crate) title: Option<String>,
    pub(crate) update_time: Option<String>,
    pub(crate) snippets: Vec<String>,
    /// The node of the first message a snippet comes from (not in `--json`).
    #[serde(skip)]
    pub(crate) node: Option<String>,
    /// That message's role (not in `--json`).
    #[serde(skip)]
    pub(crate) role: Option<String>,
}

/// The words of a query, lower-cased.
pub(crate) fn terms(query: &[String]) -> Vec<String> {
    query
        .iter()
        .flat_map(|q| q.split_whitespace())
        .map(str::to_lowercase)
        .filter(|t| !t.is_empty())
        .collect()
}

pub(super) fn run(
    ctx: &Context,
    args: &SearchArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let terms = terms(&args.query);
    if terms.is_empty() {
        return Err(CommandError::Usage(
            "nothing to search for: give at least one word".into(),
        ));
    }
    let hits = find(&ctx.archive, &terms, &|_| true, args.limit)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &hits).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if hits.is_empty() {
        writeln!(out, "no conversation matches {:?}", terms.join(" "))?;
        return Ok(());
    }
    for h in &hits {
        let date = h
            .update_time
            .as_deref()
            .map_or("", |t| t.get(..10).unwrap_or(t));
        // Ids, titles and snippets come from the conversation: no raw controls.
        writeln!(
            out,
            "{}  {}  {}",
            terminal::line(date),
            terminal::line(&h.id),
            terminal::line(h.title.as_deref().unwrap_or("(untitled)"))
        )?;
        for s in &h.snippets {
            writeln!(out, "    {}", terminal::line(s))?;
        }
    }
    Ok(())
}

/// Conversations whose title or visible messages hold every one of `terms`
/// (lower-cased), newest first, at most `want`, among the records `keep` accepts.
pub(crate) fn find(
    archive: &Archive,
    terms: &[String],
    keep: &dyn Fn(&ConvRecord) -> bool,
    want: usize,
) -> Result<Vec<Hit>, CommandError> {
    // Raw JSON escapes quotes, newlines and (in some exports) every non-ASCII
    // character, so the cheap pre-check on raw bytes is only safe for plain words.
    let plain = terms.iter().all(|t| {
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    });
    let mut hits = Vec::new();
    for rec in archive.iter_newest_first() {
        if hits.len() >= want {
            break;
        }
        let rec = rec?;
        if !keep(&rec) {
            continue;
        }
        let Some(stored) = archive.get(&rec.summary.id)? else {
            continue;
        };
        if plain {
            let lower = stored.raw.to_ascii_lowercase();
            let extra_lower = stored.extra.as_deref().map(<[u8]>::to_ascii_lowercase);
            let present = |t: &String| {
                memchr::memmem::find(&lower, t.as_bytes()).is_some()
                    || extra_lower
                        .as_deref()
                        .is_some_and(|e| memchr::memmem::find(e, t.as_bytes()).is_some())
            };
            if !terms.iter().all(present) {
                continue;
            }
        }
        let v = match view::build(archive, &stored) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("skipping {} in search: {e}", rec.summary.id);
                continue;
            }
        };
        let title = v.title.clone().unwrap_or_default();
        let texts: Vec<&str> = std::iter::once(title.as_str())
            .chain(v.messages.iter().map(|m| m.text.as_str()))
            .collect();
        let lowered: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
        if !terms
            .iter()
            .all(|t| lowered.iter().any(|l| l.contains(t.as_str())))
        {
            continue;
        }
        let mut snippets = Vec::new();
        let mut first: Option<&crate::render::view::MessageView> = None;
        for ((text, low), m) in texts.iter().zip(&lowered).skip(1).zip(&v.messages) {
            if let Some(pos) = terms.iter().find_map(|t| low.find(t.as_str())) {
                first = first.or(Some(m));
                snippets.push(snippet(text, low, pos));
                if snippets.len() == 2 {
                    break;
                }
            }
        }
        hits.push(Hit {
            id: v.id,
            title: v.title,
            update_time: v.update_time,
            snippets,
            node: first.map(|m| m.node_id.clone()),
            role: first.map(|m| m.role.clone()),
        });
    }
    Ok(hits)
}

/// About 80 characters around a match, on one line. `low` is `text` lowercased; the
/// position is mapped by characters because lowercasing can change byte lengths.
fn snippet(text: &str, low: &str, byte_pos: usize) -> String {
    let char_pos = low[..byte_pos.min(low.len())].chars().count();
    let chars: Vec<char> = text.chars().collect();
    let start = char_pos.saturating_sub(40);
    let end = (char_pos + 40).min(chars.len());
    let mut s: String = chars[start..end]
        .iter()
        .map(|&c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "{}{s}{}",
        if start > 0 { "…" } else { "" },
        if end < chars.len() { "…" } else { "" }
    )
}
