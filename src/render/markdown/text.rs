//! Text helpers: citation markers no reference explains, unclosed fences, code
//! fences, callouts and inline escaping.

use crate::model::citations;

/// Unix line ends and readable citation markers.
pub(super) fn clean_text(s: &str) -> String {
    let s = if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_owned()
    };
    replace_citations(&s)
}

/// Replaces 2025+ private-use markers (`U+E200 kind U+E202 ref … U+E201`) that no
/// content reference resolved (see `cite`).
///
/// Most kinds (`cite`, `filecite`, `navlist`…) become `\[ref, ref\]`: escaped brackets
/// render as plain `[ref]` and can never combine with a following `(`/`[` into a link.
/// `entity` markers carry a JSON array whose second element is the name the UI shows,
/// so that name is kept. JSON arguments (image groups) are dropped, and a marker
/// without arguments disappears. A marker with no end is left untouched.
pub(super) fn replace_citations(s: &str) -> String {
    citations::map_markers(s, citation_text).unwrap_or_else(|| s.to_owned())
}

pub(super) fn citation_text(inner: &str) -> String {
    if let Some(name) = citations::entity_name(inner) {
        return escape_inline(&name);
    }
    let refs: Vec<String> = inner
        .split(citations::MARK_SEP)
        .skip(1)
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.starts_with('{') && !a.starts_with('['))
        .map(|a| escape_inline(&one_line(a)))
        .collect();
    if refs.is_empty() {
        String::new()
    } else {
        format!("\\[{}\\]", refs.join(", "))
    }
}

/// Visible Markdown as it is, without surrounding blank lines, any unclosed code fence
/// closed so it cannot swallow the rest of the document.
pub(super) fn visible_text(text: &str) -> String {
    let mut s = text.trim_start_matches('\n').trim_end().to_owned();
    if let Some(close) = unclosed_fence(&s) {
        s.push('\n');
        s.push_str(&close);
    }
    s
}

/// The fence that would close a code block left open at the end of `text`.
///
/// Deliberately lenient about indentation (fences inside list items are indented):
/// ChatGPT's fences come in pairs, so counting them this way matches how renderers
/// see them in practice, and a closing fence is only added when one is truly missing.
pub(super) fn unclosed_fence(text: &str) -> Option<String> {
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let line = line.trim_start();
        let Some(c) = line.chars().next().filter(|c| matches!(c, '`' | '~')) else {
            continue;
        };
        let run = line.chars().take_while(|x| *x == c).count();
        if run < 3 {
            continue;
        }
        let rest = &line[run..];
        match open {
            None => {
                // A backtick fence's info string cannot contain backticks.
                if !(c == '`' && rest.contains('`')) {
                    open = Some((c, run));
                }
            }
            Some((oc, olen)) if oc == c && run >= olen && rest.trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    open.map(|(c, n)| c.to_string().repeat(n))
}

/// A fenced code block whose fence is longer than any backtick run inside.
pub(super) fn fenced(lang: &str, code: &str) -> String {
    // Blank lines around code or output carry no meaning.
    let code = code.trim_matches('\n');
    let fence = "`".repeat(longest_run(code, '`').max(2) + 1);
    if code.is_empty() {
        format!("{fence}{lang}\n{fence}")
    } else {
        format!("{fence}{lang}\n{code}\n{fence}")
    }
}

pub(super) fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        cur = if x == c { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Inline code whose delimiters are longer than any backtick run inside.
pub(super) fn inline_code(s: &str) -> String {
    let ticks = "`".repeat(longest_run(s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A collapsed Obsidian callout: `> [!kind]- title` and every body line prefixed `> `.
pub(super) fn callout(kind: &str, title: &str, body: &str) -> String {
    let mut out = format!("> [!{kind}]- {}", one_line(title));
    for line in body.trim_matches('\n').lines() {
        out.push('\n');
        if line.is_empty() {
            out.push('>');
        } else {
            out.push_str("> ");
            out.push_str(line);
        }
    }
    out
}

/// Collapses all whitespace (newlines included) to single spaces and trims.
pub(in crate::render) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Backslash-escapes characters that Markdown or Obsidian would read as syntax
/// (emphasis, links, HTML, tables, math, tags), for names and titles shown inline.
pub(super) fn escape_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        // `==` (highlight) and `%%` (comment) are Obsidian syntax; a single one is not.
        let doubled = matches!(c, '=' | '%') && chars.peek() == Some(&c);
        if doubled
            || matches!(
                c,
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '$' | '~'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
