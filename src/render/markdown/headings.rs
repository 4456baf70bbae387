//! Headings inside a message, moved below the document's own: the title is `#` and each
//! turn `##`, so an answer's `# Title` or `## Section` would otherwise compete with them.
//! A message's highest heading becomes `top` (`###` for messages), the others keep
//! their distance from it (capped at `######`); Setext headings (`Title` over `===`)
//! become ATX headings on the way. Fenced code is left alone.

use std::borrow::Cow;

/// Shifts the headings of `text` so the highest is level `top`; text whose headings
/// are all at `top` or deeper is returned unchanged.
pub(super) fn shift_headings(text: &str, top: usize) -> Cow<'_, str> {
    let lines: Vec<&str> = text.split('\n').collect();
    let found = find_headings(&lines);
    let Some(min) = found.iter().map(|h| h.level).min() else {
        return Cow::Borrowed(text);
    };
    if min >= top {
        return Cow::Borrowed(text);
    }
    let shift = top - min;
    let mut out = String::with_capacity(text.len() + found.len() * shift);
    let mut next = found.iter().peekable();
    let mut i = 0;
    while i < lines.len() {
        match next.peek() {
            Some(h) if h.first == i => {
                let level = (h.level + shift).min(6);
                out.push_str(&"#".repeat(level));
                if !h.text.is_empty() {
                    out.push(' ');
                    out.push_str(&h.text);
                }
                i = h.last + 1;
                next.next();
            }
            _ => {
                out.push_str(lines[i]);
                i += 1;
            }
        }
        if i < lines.len() {
            out.push('\n');
        }
    }
    Cow::Owned(out)
}

/// A heading: lines `first..=last` of the text.
struct Heading {
    first: usize,
    last: usize,
    level: usize,
    /// Its text, without the `#`s or the underline (ATX: everything after the hashes).
    text: String,
}

fn find_headings(lines: &[&str]) -> Vec<Heading> {
    let mut found = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    // Where the paragraph the current line continues began.
    let mut para: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim_start();
        if let Some(f) = fence_of(body) {
            match fence {
                None => fence = Some(f),
                Some((c, n)) if c == f.0 && f.1 >= n && body.trim_end().chars().all(|x| x == c) => {
                    fence = None
                }
                Some(_) => {}
            }
            para = None;
            continue;
        }
        if fence.is_some() {
            continue;
        }
        if body.is_empty() {
            para = None;
            continue;
        }
        if indent <= 3 {
            if let Some((level, text)) = atx(body) {
                found.push(Heading {
                    first: i,
                    last: i,
                    level,
                    text: text.to_owned(),
                });
                para = None;
                continue;
            }
            if let (Some(start), Some(level)) = (para, setext_level(body)) {
                let text = lines[start..i]
                    .iter()
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ");
                found.push(Heading {
                    first: start,
                    last: i,
                    level,
                    text,
                });
                para = None;
                continue;
            }
        }
        para = match para {
            Some(start) if plain(body) => Some(start),
            None if indent <= 3 && plain(body) => Some(i),
            // A list item, quote, table… ends any plain paragraph: its underline is no
            // Setext heading this pass can rewrite safely.
            _ => None,
        };
    }
    found
}

/// `(char, length)` of a code fence opening or closing line (already left-trimmed).
fn fence_of(body: &str) -> Option<(char, usize)> {
    let c = body.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = body.chars().take_while(|x| *x == c).count();
    // A backtick fence's info string cannot contain backticks.
    (n >= 3 && !(c == '`' && body[n..].contains('`'))).then_some((c, n))
}

/// An ATX heading: `## Text` (1–6 `#`, then a space, a tab, or nothing).
fn atx(body: &str) -> Option<(usize, &str)> {
    let n = body.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&n) {
        return None;
    }
    let rest = &body[n..];
    if rest.is_empty() {
        return Some((n, ""));
    }
    rest.starts_with([' ', '\t']).then(|| (n, rest.trim()))
}

/// A Setext underline: `===` (level 1) or `---` (level 2), at least two characters.
fn setext_level(body: &str) -> Option<usize> {
    let t = body.trim_end();
    let c = t.chars().next()?;
    let level = match c {
        '=' => 1,
        '-' => 2,
        _ => return None,
    };
    (t.len() >= 2 && t.chars().all(|x| x == c)).then_some(level)
}

/// A line that can only be paragraph text (not a list item, quote, table, HTML…).
fn plain(body: &str) -> bool {
    let list_marker = |b: &str| {
        let mut chars = b.chars();
        match chars.next() {
            Some('-' | '*' | '+') => matches!(chars.next(), Some(' ' | '\t') | None),
            Some(c) if c.is_ascii_digit() => {
                let digits = b.chars().take_while(char::is_ascii_digit).count();
                let after = &b[digits..];
                after.starts_with(". ") || after.starts_with(") ")
            }
            _ => false,
        }
    };
    !(body.starts_with(['>', '|', '<', '#', '='])
        || list_marker(body)
        || setext_level(body).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_move_below_the_turn_headings_keeping_their_order() {
        let text = "# Title\n\nIntro\n\n## Part\n\n### Detail\n\n#### Deep\n\n###### Six";
        assert_eq!(
            shift_headings(text, 3),
            "### Title\n\nIntro\n\n#### Part\n\n##### Detail\n\n###### Deep\n\n###### Six"
        );
        // Already low enough: untouched.
        let low = "### A\n\n#### B";
        assert!(matches!(shift_headings(low, 3), Cow::Borrowed(_)));
        assert_eq!(shift_headings("## Only\ntext", 3), "### Only\ntext");
        assert_eq!(shift_headings("no headings", 3), "no headings");
    }

    #[test]
    fn fenced_code_and_non_headings_are_untouched() {
        let text = "## Run\n\n```bash\n# a comment\n## another\n```\n\n~~~\n# x\n~~~\n#hashtag and #5\n    # indented code\n\\# escaped";
        assert_eq!(
            shift_headings(text, 3),
            "### Run\n\n```bash\n# a comment\n## another\n```\n\n~~~\n# x\n~~~\n#hashtag and #5\n    # indented code\n\\# escaped"
        );
        // A longer fence is closed only by a fence at least as long.
        let text = "# T\n````md\n```\n# inside\n```\n````\n# After";
        assert_eq!(
            shift_headings(text, 3),
            "### T\n````md\n```\n# inside\n```\n````\n### After"
        );
    }

    #[test]
    fn setext_headings_become_atx() {
        let text =
            "Big title\nover two lines\n=========\n\nSection\n---\n\ntext\n\n---\n\n- item\n---";
        assert_eq!(
            shift_headings(text, 3),
            "### Big title over two lines\n\n#### Section\n\ntext\n\n---\n\n- item\n---"
        );
    }

    #[test]
    fn empty_atx_headings_and_tabs() {
        assert_eq!(shift_headings("#\n#\tTabbed", 3), "###\n### Tabbed");
    }
}
