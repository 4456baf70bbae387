//! Code highlighting on the server, with hl-lite's hand-written lexers.
//!
//! syntect (Sublime grammars on pure-Rust regexes) was measured first and did not fit:
//! the code of a 500-message conversation took 125 ms of a page's 30 ms budget, and its
//! grammars held 42 MB once six languages had been shown. hl-lite is one forward pass
//! per block with no tables to load and no dependencies: lexical fidelity (keywords,
//! strings, comments, numbers, types, functions), as highlight.js gives. Its twelve
//! languages cover most code in conversations; C-family languages are read with its
//! TypeScript lexer, which knows their comments, strings, numbers and most keywords.
//!
//! The output is classed HTML (`<span class="hl-keyword">`): colours live in the
//! stylesheet, so the CSP needs no inline styles, and light and dark are a media query.

use super::markdown::escape_into;
use hl_lite::{Kind, Lang};

/// The lexer for a fence's language name (`rust`, `py`, `tsx`…), if there is one.
pub fn language(name: &str) -> Option<Lang> {
    let name = name.trim();
    if let Some(lang) = Lang::from_slug(name) {
        return Some(lang);
    }
    let lower = name.to_ascii_lowercase();
    let lang = match lower.as_str() {
        "c" | "h" | "cpp" | "c++" | "cc" | "cxx" | "hpp" | "objective-c" | "objc" | "java"
        | "cs" | "csharp" | "c#" | "go" | "golang" | "kotlin" | "kt" | "swift" | "scala"
        | "dart" | "groovy" | "php" | "solidity" | "zig" => Lang::TypeScript,
        "python3" | "ipython" | "pycon" => Lang::Python,
        "shell-session" | "terminal" | "powershell" | "ps1" | "fish" => Lang::Bash,
        "html5" | "xhtml" | "vue" | "svelte" | "plist" => Lang::Html,
        "node" | "javascriptreact" => Lang::JavaScript,
        "typescriptreact" => Lang::TypeScript,
        "scss" | "less" => Lang::Css,
        _ => return None,
    };
    Some(lang)
}

/// Highlighted HTML for `code` (its text escaped, tokens in classed spans), or `None`
/// when the language has no lexer.
pub fn highlight(code: &str, lang: &str) -> Option<String> {
    let lang = language(lang)?;
    let mut out = String::with_capacity(code.len() + code.len() / 2);
    for span in hl_lite::highlight(lang, code) {
        if span.kind == Kind::Plain {
            escape_into(&mut out, span.text);
        } else {
            out.push_str("<span class=\"hl-");
            out.push_str(span.kind.class());
            out.push_str("\">");
            escape_into(&mut out, span.text);
            out.push_str("</span>");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_classed_and_escaped() {
        let html = highlight(
            "fn main() { let s = \"</code><script>\"; } // x & y\n",
            "rust",
        )
        .expect("rust is known");
        assert!(
            html.contains("<span class=\"hl-keyword\">fn</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-comment\">// x &amp; y</span>"),
            "{html}"
        );
        assert!(html.contains("&lt;/code&gt;&lt;script&gt;"), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
        // Every byte of the code is kept.
        let text: String = {
            let mut t = html.clone();
            while let Some(a) = t.find('<') {
                let b = t[a..].find('>').map_or(t.len(), |b| a + b + 1);
                t.replace_range(a..b, "");
            }
            t.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        };
        assert_eq!(
            text,
            "fn main() { let s = \"</code><script>\"; } // x & y\n"
        );
    }

    #[test]
    fn languages_by_their_usual_names() {
        for name in [
            "PY", "python3", "tsx", "sh", "c++", "Java", "go", "yml", "json",
        ] {
            assert!(language(name).is_some(), "{name}");
            assert!(highlight("x = 1 // y\n", name).is_some(), "{name}");
        }
        for name in ["", "text", "plaintext", "no-such-language"] {
            assert_eq!(language(name), None, "{name}");
        }
        let c = highlight("int main() { return 0; /* ok */ }", "c").expect("c");
        assert!(
            c.contains("<span class=\"hl-keyword\">return</span>"),
            "{c}"
        );
        assert!(
            c.contains("<span class=\"hl-comment\">/* ok */</span>"),
            "{c}"
        );
    }
}
