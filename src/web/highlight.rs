//! Code highlighting on the server, with syntect's Sublime Text grammars and pure-Rust
//! regexes.
//!
//! The output is classed HTML (`<span class="hl-keyword hl-control">`): the colours
//! live in the stylesheet, so the CSP needs no inline styles and light and dark themes
//! are a media query. The grammars are loaded the first time code is shown, not at
//! start (they cost memory), and work per page is bounded: past [`PAGE_BUDGET`] bytes of
//! code, or on a line longer than [`MAX_LINE`], code is shown plain.

use std::sync::OnceLock;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

/// Bytes of code one page highlights; the rest is shown plain (a page of huge logs
/// must still come back fast).
pub const PAGE_BUDGET: usize = 256 * 1024;
/// Longer lines are not highlighted: grammars can take long on them.
pub const MAX_LINE: usize = 4096;

const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();

fn syntaxes() -> &'static SyntaxSet {
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Whether the grammars have been loaded (they are once any code was highlighted).
pub fn loaded() -> bool {
    SYNTAXES.get().is_some()
}

/// A per-page allowance of bytes to highlight.
#[derive(Debug)]
pub struct Budget(usize);

impl Default for Budget {
    fn default() -> Self {
        Self(PAGE_BUDGET)
    }
}

impl Budget {
    /// An allowance of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(bytes)
    }
}

/// The grammar for a fence's language name (`rust`, `py`, `tsx`…), if there is one.
fn syntax_for(lang: &str) -> Option<&'static SyntaxReference> {
    let lang = lang.trim().to_ascii_lowercase();
    // Names ChatGPT uses that the bundled grammars know by another name.
    let token = match lang.as_str() {
        "" | "text" | "plaintext" | "txt" | "unknown" | "output" => return None,
        "typescript" | "ts" | "tsx" | "jsx" | "javascript" | "node" | "mjs" => "js",
        "shell" | "sh" | "zsh" | "console" | "shell-session" | "bash" | "terminal" => "bash",
        "c++" | "cxx" => "cpp",
        "c#" | "csharp" => "cs",
        "py" | "python3" | "ipython" => "python",
        "golang" => "go",
        "yml" => "yaml",
        "jsonc" | "json5" => "json",
        "objective-c" | "objc" => "m",
        "html5" | "xhtml" | "vue" | "svelte" => "html",
        "tex" => "latex",
        "postgresql" | "postgres" | "mysql" | "sqlite" | "plsql" => "sql",
        other => other,
    };
    syntaxes().find_syntax_by_token(token)
}

/// Highlighted HTML for `code` (its text escaped, spans classed), or `None` when the
/// language is unknown, the budget is spent, a line is too long, or the grammar fails.
pub fn highlight(code: &str, lang: &str, budget: &mut Budget) -> Option<String> {
    if code.len() > budget.0 || code.lines().any(|l| l.len() > MAX_LINE) {
        return None;
    }
    let syntax = syntax_for(lang)?;
    budget.0 -= code.len();
    let mut html = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes(), CLASS_STYLE);
    for line in LinesWithEndings::from(code) {
        if html
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
        {
            return None;
        }
    }
    Some(html.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_classed_and_escaped() {
        let mut budget = Budget::default();
        let html = highlight(
            "fn main() { let s = \"<script>\"; } // x\n",
            "rust",
            &mut budget,
        )
        .expect("rust is known");
        assert!(
            html.contains("hl-keyword") || html.contains("hl-storage"),
            "{html}"
        );
        assert!(html.contains("hl-comment"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert!(highlight("x = 1\n", "PY", &mut budget).is_some());
        assert!(highlight("const x: number = 1;\n", "tsx", &mut budget).is_some());
        assert!(loaded());
    }

    #[test]
    fn unknown_languages_long_lines_and_spent_budgets_are_plain() {
        let mut budget = Budget::default();
        assert_eq!(highlight("x\n", "no-such-language", &mut budget), None);
        assert_eq!(highlight("x\n", "", &mut budget), None);
        let long = "x".repeat(MAX_LINE + 1);
        assert_eq!(highlight(&long, "rust", &mut budget), None);
        let mut small = Budget::new(10);
        assert!(highlight("let a = 1;\n", "rust", &mut small).is_none());
        let mut exact = Budget::new(11);
        assert!(highlight("let a = 1;\n", "rust", &mut exact).is_some());
        assert!(highlight("1\n", "rust", &mut exact).is_none());
    }
}
