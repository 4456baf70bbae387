//! Message Markdown → HTML that cannot run anything. The Markdown comes from
//! [`crate::render::markdown`]'s message blocks (citations already resolved there);
//! this module only does what is particular to HTML.
//!
//! pulldown-cmark parses (CommonMark with tables, strikethrough, task lists, footnotes
//! and math); the events are then filtered before its HTML writer sees them:
//! - raw HTML, block or inline, becomes text (`<script>` shows as `<script>`);
//! - links keep their target only when it is `http:`, `https:`, `mailto:` or a `#`
//!   fragment, and open nothing of the viewer's (`rel="noopener noreferrer"`); any
//!   other target (`javascript:`, `data:`, relative paths) leaves plain text;
//! - images are never fetched: `![alt](url)` becomes a link to a web address, or text;
//! - fenced code is highlighted by [`super::highlight`];
//! - ChatGPT's `\( … \)` and `\[ … \]` math becomes math spans, shown as source in a
//!   styled block (CommonMark would otherwise eat the backslashes).

use super::highlight;
use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use std::fmt::Write as _;

/// `rel` of every link out of a conversation.
const LINK_REL: &str = "noopener noreferrer nofollow";

/// Renders a message's Markdown as safe HTML.
pub fn to_html(src: &str) -> String {
    let text = prepare_math(&normalize_newlines(src));
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    opts.insert(Options::ENABLE_FOOTNOTES);
    opts.insert(Options::ENABLE_MATH);
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut code: Option<(String, String)> = None;
    // Per open link or image: whether an element was opened for it.
    let mut links: Vec<bool> = Vec::new();
    let mut images: Vec<bool> = Vec::new();
    for ev in Parser::new_ext(&text, opts) {
        if let Some((_, buf)) = code.as_mut() {
            match ev {
                Event::Text(t) => buf.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, buf) = code.take().unwrap_or_default();
                    events.push(Event::Html(code_block(&buf, &lang).into()));
                }
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            // `$$` on lines of their own leave line breaks around the formula.
            Event::DisplayMath(m) => {
                let m = m.trim_matches('\n');
                events.push(Event::DisplayMath(m.to_owned().into()));
            }
            Event::Start(Tag::HtmlBlock) => {
                events.push(Event::Html(r#"<p class="raw-html">"#.into()));
            }
            Event::End(TagEnd::HtmlBlock) => events.push(Event::Html("</p>\n".into())),
            Event::Start(Tag::Link {
                dest_url, title, ..
            }) => match safe_href(&dest_url, true) {
                Some(href) => {
                    events.push(Event::InlineHtml(open_link(href, &title, "").into()));
                    links.push(true);
                }
                None => links.push(false),
            },
            Event::End(TagEnd::Link) => {
                if links.pop() == Some(true) {
                    events.push(Event::InlineHtml("</a>".into()));
                }
            }
            Event::Start(Tag::Image {
                dest_url, title, ..
            }) => {
                let in_link = links.contains(&true);
                match safe_href(&dest_url, false).filter(|_| !in_link) {
                    Some(href) => {
                        let a = open_link(href, &title, "image-ref");
                        events.push(Event::InlineHtml(a.into()));
                        images.push(true);
                    }
                    None => {
                        let span = r#"<span class="image-ref">"#;
                        events.push(Event::InlineHtml(span.into()));
                        images.push(false);
                    }
                }
                events.push(Event::Text("[image: ".into()));
            }
            Event::End(TagEnd::Image) => {
                events.push(Event::Text("]".into()));
                let close = if images.pop() == Some(true) {
                    "</a>"
                } else {
                    "</span>"
                };
                events.push(Event::InlineHtml(close.into()));
            }
            other => events.push(other),
        }
    }
    if let Some((lang, buf)) = code.take() {
        events.push(Event::Html(code_block(&buf, &lang).into()));
    }
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// A code block: the language as a caption, the code highlighted when it can be.
pub fn code_block(code: &str, lang: &str) -> String {
    let lang = lang.trim();
    // The Markdown export fences output as `text`: no language worth a caption.
    let lang = if lang.eq_ignore_ascii_case("text") {
        ""
    } else {
        lang
    };
    let mut out = String::with_capacity(code.len() * 2 + 64);
    out.push_str(r#"<div class="code">"#);
    if !lang.is_empty() {
        let _ = write!(out, r#"<div class="code-lang">{}</div>"#, escape(lang));
    }
    out.push_str("<pre><code>");
    match highlight::highlight(code, lang) {
        Some(html) => out.push_str(&html),
        None => out.push_str(&escape(code)),
    }
    out.push_str("</code></pre></div>\n");
    out
}

/// `<a href=… rel=…>` for a checked target.
fn open_link(href: &str, title: &CowStr<'_>, class: &str) -> String {
    let mut a = format!(r#"<a href="{}" rel="{LINK_REL}""#, escape(href));
    if !title.is_empty() {
        let _ = write!(a, r#" title="{}""#, escape(title));
    }
    if !class.is_empty() {
        let _ = write!(a, r#" class="{class}""#);
    }
    a.push('>');
    a
}

/// The target when a conversation's link may have one: web addresses, and for links
/// (not images) mail addresses and fragments. Everything else is shown as text.
pub fn safe_href(url: &str, link: bool) -> Option<&str> {
    let url = url.trim();
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = (lower.starts_with("https://") || lower.starts_with("http://")) && url.len() > 8;
    let other = link && (lower.starts_with("mailto:") || url.starts_with('#'));
    (web || other).then_some(url)
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(&mut out, s);
    out
}

/// [`escape`], appending to `out`.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn normalize_newlines(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        s.into()
    }
}

// ---------------------------------------------------------------------------------
// Math

/// Turns ChatGPT's LaTeX delimiters into pulldown-cmark's math: a line holding only
/// `\[` up to a line holding only `\]` becomes `$$ … $$`, `\[ … \]` and `\( … \)` within
/// a line become `$$…$$` and `$…$`. Code (fenced blocks, backtick spans) is left alone,
/// and so is everything when a delimiter has no partner.
pub fn prepare_math(text: &str) -> String {
    if !text.contains("\\(") && !text.contains("\\[") {
        return text.to_owned();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut fence: Option<(char, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(f) = fence_marker(trimmed) {
            match fence {
                None => fence = Some(f),
                Some((c, n)) if f.0 == c && f.1 >= n && trimmed[f.1..].trim().is_empty() => {
                    fence = None;
                }
                Some(_) => {}
            }
            push_line(&mut out, line, i, &lines);
            i += 1;
            continue;
        }
        if fence.is_some() {
            push_line(&mut out, line, i, &lines);
            i += 1;
            continue;
        }
        if line.trim() == "\\[" {
            let close = lines[i + 1..]
                .iter()
                .position(|l| l.trim() == "\\]")
                .map(|p| i + 1 + p);
            if let Some(close) = close.filter(|&c| c > i + 1) {
                let indent = &line[..line.len() - trimmed.len()];
                let _ = writeln!(out, "{indent}$$");
                for inner in &lines[i + 1..close] {
                    out.push_str(inner);
                    out.push('\n');
                }
                out.push_str(indent);
                out.push_str("$$");
                if close + 1 < lines.len() {
                    out.push('\n');
                }
                i = close + 1;
                continue;
            }
        }
        let converted = inline_math(line);
        push_line(&mut out, &converted, i, &lines);
        i += 1;
    }
    out
}

fn push_line(out: &mut String, line: &str, i: usize, lines: &[&str]) {
    out.push_str(line);
    if i + 1 < lines.len() {
        out.push('\n');
    }
}

/// A code fence opening a line: its character and length.
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let c = line.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = line.chars().take_while(|x| *x == c).count();
    (n >= 3).then_some((c, n))
}

/// `\( … \)` → `$…$` and `\[ … \]` → `$$…$$` within one line, outside code spans.
fn inline_math(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => {
                // A code span: copied as it is up to the closing run of equal length.
                let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
                let ticks = &line[i..i + run];
                let end = find_run(line, i + run, ticks).map_or(i + run, |e| e + run);
                out.push_str(&line[i..end]);
                i = end;
            }
            b'\\' if i + 1 < bytes.len() && matches!(bytes[i + 1], b'(' | b'[') => {
                let (close, dollars) = if bytes[i + 1] == b'(' {
                    ("\\)", "$")
                } else {
                    ("\\]", "$$")
                };
                let inner_start = i + 2;
                match line[inner_start..].find(close) {
                    Some(p) if !line[inner_start..inner_start + p].trim().is_empty() => {
                        let inner = line[inner_start..inner_start + p].trim();
                        out.push_str(dollars);
                        out.push_str(inner);
                        out.push_str(dollars);
                        i = inner_start + p + 2;
                    }
                    _ => {
                        out.push_str(&line[i..i + 2]);
                        i += 2;
                    }
                }
            }
            b'\\' if i + 1 < bytes.len() && bytes[i + 1].is_ascii() => {
                // Any other escape is copied whole, so `\\(` stays a backslash and `(`.
                out.push_str(&line[i..i + 2]);
                i += 2;
            }
            _ => {
                let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&line[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    out
}

/// The start of the next run of exactly `ticks` backticks at or after `from`.
fn find_run(line: &str, from: usize, ticks: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut j = from;
    while j < bytes.len() {
        if bytes[j] == b'`' {
            let run = bytes[j..].iter().take_while(|&&b| b == b'`').count();
            if run == ticks.len() {
                return Some(j);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(s: &str) -> String {
        to_html(s)
    }

    #[test]
    fn raw_html_is_text() {
        for hostile in [
            "<script>alert(1)</script>",
            "hi <img src=x onerror=alert(1)> there",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<svg onload=alert(1)>",
            "<div>\n<script>alert(1)</script>\n</div>",
            "para\n\n<details open ontoggle=alert(1)>x</details>",
        ] {
            let out = html(hostile);
            for bad in ["<script", "<img", "<iframe", "<svg", "<div", "<details"] {
                assert!(!out.contains(bad), "{hostile:?} → {out}");
            }
            assert!(out.contains("&lt;"), "{hostile:?} → {out}");
        }
    }

    #[test]
    fn only_web_mail_and_fragment_links_are_links() {
        let out = html(
            "[a](https://example.com/x?a=1&b=\"2\") [b](javascript:alert(1)) \
             [c](JaVaScRiPt:alert(1)) [d](data:text/html,<script>x</script>) \
             [e](mailto:me@example.com) [f](/c/other) [g](#m-1) <javascript:alert(1)> \
             <https://auto.example>",
        );
        assert!(out.contains(r#"<a href="https://example.com/x?a=1&amp;b=%222%22" rel="noopener noreferrer nofollow">a</a>"#)
            || out.contains(r#"<a href="https://example.com/x?a=1&amp;b=&quot;2&quot;" rel="noopener noreferrer nofollow">a</a>"#), "{out}");
        assert!(out.contains(r#"href="mailto:me@example.com""#), "{out}");
        assert!(out.contains(r##"href="#m-1""##), "{out}");
        assert!(out.contains(r#"href="https://auto.example""#), "{out}");
        assert!(
            !out.to_ascii_lowercase().contains("javascript:alert(1)\""),
            "{out}"
        );
        assert!(!out.contains("href=\"data:"), "{out}");
        assert!(!out.contains("href=\"/c/other\""), "{out}");
        assert_eq!(out.matches("<a ").count(), 4, "{out}");
        assert_eq!(out.matches("</a>").count(), 4, "{out}");
    }

    #[test]
    fn images_are_never_fetched() {
        let out = html(
            "![cat](https://example.com/cat.png) ![x](data:image/png;base64,AAAA) \
             [![inner](https://example.com/i.png)](https://example.com/page) \
             ![t](https://example.com/a.png \"a \\\"title\")",
        );
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains(r#"<a href="https://example.com/cat.png" rel="noopener noreferrer nofollow" class="image-ref">[image: cat]</a>"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<span class="image-ref">[image: x]</span>"#),
            "{out}"
        );
        assert!(!out.contains("data:image"), "{out}");
        // An image inside a link does not nest another link.
        assert!(
            out.contains(r#"<span class="image-ref">[image: inner]</span></a>"#),
            "{out}"
        );
        assert!(out.contains(r#"title="a &quot;title""#), "{out}");
    }

    #[test]
    fn code_is_highlighted_and_escaped() {
        let out = html("Text\n\n```rust\nlet s = \"</code></pre><script>\";\n```\n");
        assert!(
            out.contains(r#"<div class="code-lang">rust</div>"#),
            "{out}"
        );
        assert!(out.contains("hl-"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        let out = html("```\n<b>plain</b>\n```");
        assert!(out.contains("&lt;b&gt;plain&lt;/b&gt;"), "{out}");
        assert!(!out.contains("code-lang"), "{out}");
        // An unclosed fence ends with the message.
        let out = html("```python\nprint(1)");
        assert!(out.contains("</code></pre></div>"), "{out}");
        let out = html("``` \"><script>x\n1\n```");
        assert!(!out.contains("<script"), "{out}");
    }

    #[test]
    fn chatgpt_math_is_shown_as_source() {
        let out = html("Euler: \\(e^{i\\pi} + 1 = 0\\) and\n\n\\[\n\\frac{a_1}{b_2} * c_3\n\\]\n");
        assert!(
            out.contains(r#"<span class="math math-inline">e^{i\pi} + 1 = 0</span>"#),
            "{out}"
        );
        assert!(out.contains(r#"<span class="math math-display">"#), "{out}");
        assert!(
            out.contains(r#"<span class="math math-display">\frac{a_1}{b_2} * c_3</span>"#),
            "{out}"
        );
        assert!(!out.contains("<em>"), "{out}");
        let out = html("inline \\[x^2\\] display");
        assert!(
            out.contains(r#"<span class="math math-display">x^2</span>"#),
            "{out}"
        );
        // Code keeps its backslashes; prices stay prices.
        let out = html("`\\(x\\)` and\n\n```\n\\[\ny\n\\]\n```\n");
        assert!(out.contains("<code>\\(x\\)</code>"), "{out}");
        assert!(out.contains("\\[\ny\n\\]"), "{out}");
        let out = html("It costs $5 and $10 today.");
        assert!(!out.contains("math"), "{out}");
        assert!(out.contains("$5 and $10"), "{out}");
        // A delimiter without a partner is left alone.
        let out = html("a \\( b");
        assert!(out.contains("a ( b"), "{out}");
    }
}
