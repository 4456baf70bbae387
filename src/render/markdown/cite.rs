//! Citations resolved in place, as the ChatGPT UI shows them: each reference's `alt`
//! (a Markdown link such as `([Reuters](https://…))`) where its marker was, or links
//! to its sources when it has no `alt`; 2023–24 `【11†source】` markers become a link
//! to the cited page. Sources that cannot be placed (and a `sources_footnote`
//! reference's list) are returned for a folded "Sources" list under the message.
//!
//! References are applied one at a time in `start_idx` order, each looked for after the
//! previous one: a reference never rewrites text outside its own occurrence, and one
//! whose `matched_text` is blank (some are a single space) is never searched for.

use super::attachments::link_destination;
use super::text::{escape_inline, one_line, replace_citations};
use crate::model::citations::{Citation, Source};

/// Text with its citations resolved, and the sources to list under it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Resolved {
    /// The text, citation markers replaced.
    pub text: String,
    /// Sources for the "Sources" list: a `sources_footnote`'s, and those of citations
    /// that could not be placed in the text (deduplicated by address).
    pub sources: Vec<Source>,
}

/// Resolves `citations` in `text` (the message text as archived).
pub(super) fn resolve(text: &str, citations: &[Citation]) -> Resolved {
    let mut order: Vec<&Citation> = citations.iter().collect();
    // Stable: references without a position keep their order, after the others.
    order.sort_by_key(|c| c.start.unwrap_or(usize::MAX));
    let mut out = String::with_capacity(text.len());
    let mut listed: Vec<Source> = Vec::new();
    let mut cursor = 0;
    for c in order {
        if c.kind == "sources_footnote" {
            listed.extend(c.sources.iter().cloned());
        }
        let needle = if c.legacy {
            c.start
                .zip(c.end)
                .and_then(|(s, e)| legacy_marker(text, s, e))
        } else {
            c.matched_text.as_deref().filter(|m| !m.trim().is_empty())
        };
        let found = needle.and_then(|n| text[cursor..].find(n).map(|at| (cursor + at, n)));
        let Some((at, needle)) = found else {
            if c.kind != "sources_footnote" {
                listed.extend(c.sources.iter().cloned());
            }
            continue;
        };
        out.push_str(&text[cursor..at]);
        let shown = inline(c).unwrap_or_else(|| {
            if c.kind == "hidden" {
                String::new()
            } else {
                // Nothing better to show: the marker as the generic rule reads it.
                replace_citations(needle)
            }
        });
        if shown.starts_with(['(', '['])
            && out.ends_with(|ch: char| !ch.is_whitespace() && ch != '(' && ch != '[')
        {
            out.push(' ');
        }
        out.push_str(&shown);
        cursor = at + needle.len();
    }
    out.push_str(&text[cursor..]);
    let mut seen = std::collections::HashSet::new();
    listed.retain(|s| seen.insert(s.url.clone()));
    if !listed.is_empty() {
        // Some exports lose the private-use brackets and keep the bare anchor
        // ("Positano.turn0search0"); its sources are listed below the message.
        out = strip_bare_anchors(&out);
    }
    Resolved {
        text: out,
        sources: listed,
    }
}

/// What the UI shows for a placed citation: its `alt`, else links to its sources.
fn inline(c: &Citation) -> Option<String> {
    if let Some(alt) = c.alt.as_deref().map(one_line).filter(|a| !a.is_empty()) {
        return Some(alt);
    }
    let links: Vec<String> = c.sources.iter().map(source_link).collect();
    (!links.is_empty()).then(|| format!("({})", links.join(", ")))
}

/// A source as a link labelled by its site (`Reuters`, `example.com`), titled by the
/// page; a source that is not a web address is named, not linked.
pub(super) fn source_link(s: &Source) -> String {
    let label = s
        .attribution
        .clone()
        .or_else(|| domain(&s.url))
        .or_else(|| s.title.clone())
        .unwrap_or_else(|| s.url.clone());
    md_link(&one_line(&label), &s.url, s.title.as_deref())
}

/// `[label](url "title")` for an http(s) address; the escaped label otherwise.
pub(super) fn md_link(label: &str, url: &str, title: Option<&str>) -> String {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    if !web || url.chars().any(char::is_control) {
        return escape_inline(label);
    }
    let title = title
        .map(one_line)
        .filter(|t| !t.is_empty())
        .map(|t| format!(" \"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
        .unwrap_or_default();
    format!(
        "[{}]({}{title})",
        escape_inline(label),
        link_destination(url)
    )
}

/// The host of a web address without `www.`: `https://www.bbc.co.uk/x` → `bbc.co.uk`.
fn domain(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?.split(':').next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `text` without bare citation anchors (`turn0search0`, `turn2news1turn0file3`): the
/// pattern LibreChat matches, standing alone (not inside a word), outside code spans.
fn strip_bare_anchors(text: &str) -> String {
    const KINDS: [&str; 7] = ["search", "image", "news", "video", "ref", "file", "view"];
    // Length of one anchor at the start of `s`, if there is one.
    fn anchor(s: &str) -> Option<usize> {
        let rest = s.strip_prefix("turn")?;
        let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
        let n = digits(rest);
        if n == 0 {
            return None;
        }
        let rest = &rest[n..];
        let kind = KINDS.iter().find(|k| rest.starts_with(**k))?;
        let m = digits(&rest[kind.len()..]);
        (m > 0).then_some(4 + n + kind.len() + m)
    }
    let mut out = String::with_capacity(text.len());
    let (mut i, mut in_code) = (0, false);
    while i < text.len() {
        let rest = &text[i..];
        // `[turn0search1]` is the generic marker rule's rendering of an unknown marker.
        let after_word = out.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '[');
        if rest.starts_with('`') {
            in_code = !in_code;
        } else if !in_code && !after_word && rest.starts_with("turn") {
            let mut len = 0;
            while let Some(n) = anchor(&rest[len..]) {
                len += n;
            }
            let ends_word = rest[len..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
            if len > 0 && !ends_word {
                i += len;
                continue;
            }
        }
        let ch = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..ch]);
        i += ch;
    }
    out
}

/// The 2023–24 marker (`【11†source】`) a citation's indices point at. The unit of the
/// indices is not documented, so code points are tried, then UTF-16 units; a slice
/// counts only if it is a marker.
fn legacy_marker(text: &str, start: usize, end: usize) -> Option<&str> {
    let is_marker = |s: &str| s.starts_with('【') && s.ends_with('】') && s.contains('†');
    let by_chars = slice_by(text, start, end, |_| 1);
    let by_utf16 = slice_by(text, start, end, char::len_utf16);
    [by_chars, by_utf16]
        .into_iter()
        .flatten()
        .find(|s| is_marker(s))
}

/// `text[start..end]` where positions are counted in units of `width` per character.
fn slice_by(text: &str, start: usize, end: usize, width: impl Fn(char) -> usize) -> Option<&str> {
    let (mut from, mut pos) = (None, 0);
    for (byte, ch) in text.char_indices() {
        if pos == start {
            from = Some(byte);
        }
        if pos == end {
            return Some(&text[from?..byte]);
        }
        pos += width(ch);
        if pos > end {
            return None;
        }
    }
    (pos == end).then(|| from.map(|f| &text[f..])).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CITE0: &str = "\u{E200}cite\u{E202}turn0search0\u{E201}";
    const CITE1: &str = "\u{E200}cite\u{E202}turn0search1\u{E201}";

    fn modern(matched: &str, start: usize, alt: Option<&str>, urls: &[&str]) -> Citation {
        Citation {
            matched_text: Some(matched.to_owned()),
            start: Some(start),
            end: Some(start + matched.chars().count()),
            kind: "grouped_webpages".to_owned(),
            alt: alt.map(str::to_owned),
            sources: urls
                .iter()
                .map(|u| Source {
                    title: Some(format!("Title of {u}")),
                    url: (*u).to_owned(),
                    attribution: None,
                })
                .collect(),
            legacy: false,
        }
    }

    #[test]
    fn bare_anchors_are_dropped_when_their_sources_are_listed() {
        let mut c = modern("x", 0, None, &["https://earthtrekkers.com/amalfi"]);
        c.matched_text = None;
        c.start = None;
        let r = resolve(
            "Stay in Positano.turn0search0 Or Ravello turn1news2turn0file3.",
            &[c],
        );
        assert_eq!(r.text, "Stay in Positano. Or Ravello .");
        assert_eq!(r.sources.len(), 1);
        // Inside words and code, and without listed sources, the text is kept.
        assert_eq!(
            strip_bare_anchors("return0search0 `turn0search0` turn0searchx"),
            "return0search0 `turn0search0` turn0searchx"
        );
        assert_eq!(resolve("a turn0search0", &[]).text, "a turn0search0");
    }

    #[test]
    fn alts_replace_markers_one_at_a_time_in_order() {
        let text = format!("Paris is big.{CITE0} It rains.{CITE1} Again{CITE0}.");
        let cites = vec![
            // Out of order on purpose, and the same marker twice.
            modern(CITE1, 30, Some("([BBC](https://bbc.co.uk/r))"), &[]),
            modern(CITE0, 13, Some("([Wikipedia](https://w.org/P))"), &[]),
            modern(
                CITE0,
                50,
                None,
                &["https://www.lemonde.fr/x", "https://a.example/"],
            ),
        ];
        let r = resolve(&text, &cites);
        assert_eq!(
            r.text,
            "Paris is big. ([Wikipedia](https://w.org/P)) It rains. ([BBC](https://bbc.co.uk/r)) \
             Again ([lemonde.fr](https://www.lemonde.fr/x \"Title of https://www.lemonde.fr/x\"), \
             [a.example](https://a.example/ \"Title of https://a.example/\"))."
        );
        assert!(r.sources.is_empty());
    }

    #[test]
    fn blank_matched_text_is_never_replaced() {
        let text = format!("a b c{CITE0} d e");
        let mut footnote = modern(" ", 0, Some(""), &["https://s.example/1"]);
        footnote.kind = "sources_footnote".to_owned();
        let mut hidden = modern(" ", 1, None, &[]);
        hidden.kind = "hidden".to_owned();
        let empty = modern("", 2, Some("X"), &[]);
        let cites = vec![
            footnote,
            hidden,
            empty,
            modern(CITE0, 5, Some("([s](https://s.example/1))"), &[]),
        ];
        let r = resolve(&text, &cites);
        assert_eq!(
            r.text, "a b c ([s](https://s.example/1)) d e",
            "spaces survive"
        );
        assert_eq!(r.sources.len(), 1, "the footnote's sources are listed");
    }

    #[test]
    fn unplaced_citations_list_their_sources_and_unknown_ones_keep_the_marker_rule() {
        let text = format!("x{CITE1}");
        let cites = vec![
            modern(
                "\u{E200}cite\u{E202}turn9search9\u{E201}",
                0,
                Some("(a)"),
                &["https://gone.example/"],
            ),
            modern(CITE1, 1, None, &[]),
        ];
        let r = resolve(&text, &cites);
        assert_eq!(r.text, "x\\[turn0search1\\]");
        assert_eq!(r.sources[0].url, "https://gone.example/");
    }

    #[test]
    fn legacy_markers_are_found_by_code_points_or_utf16() {
        // "é" is one code point and one UTF-16 unit; "😀" is one code point, two units.
        let text = "Café 😀 is open【7†source】 and【8†source】.";
        let legacy = |start, end, url: &str| Citation {
            start: Some(start),
            end: Some(end),
            kind: "tether_og".to_owned(),
            sources: vec![Source {
                title: Some("Page".to_owned()),
                url: url.to_owned(),
                attribution: None,
            }],
            legacy: true,
            ..Citation::default()
        };
        let chars_start = text.chars().take_while(|c| *c != '【').count();
        let utf16_second = text[..text.rfind('【').expect("marker")]
            .encode_utf16()
            .count();
        let cites = vec![
            legacy(chars_start, chars_start + 10, "https://cafe.example/"),
            legacy(utf16_second, utf16_second + 10, "file-abc"),
            legacy(0, 4, "https://nowhere.example/"),
        ];
        let r = resolve(text, &cites);
        assert_eq!(
            r.text,
            "Café 😀 is open ([cafe.example](https://cafe.example/ \"Page\")) and (Page)."
        );
        assert_eq!(r.sources[0].url, "https://nowhere.example/");
    }

    #[test]
    fn links_are_only_made_to_web_addresses() {
        assert_eq!(md_link("x", "javascript:alert(1)", None), "x");
        assert_eq!(
            md_link("a*b", "https://e.example/a b", Some("t \"q\"")),
            "[a\\*b](<https://e.example/a b> \"t \\\"q\\\"\")"
        );
        assert_eq!(
            domain("https://user@www.Example.com:8080/p?q"),
            Some("example.com".into())
        );
    }
}
