//! Canvas documents: an assistant message to `canmore.create_textdoc` carries the new
//! document as JSON (`{name, type, content}`, `type` like `document` or `code/python`);
//! one to `canmore.update_textdoc` carries regex edits (`{updates: [{pattern, multiple,
//! replacement}]}`) to the current document. The JSON arrives as `code` (or `text`)
//! content; the archive keeps it as it came.

use serde_json::Value;

/// The recipient of a message that creates a canvas document.
pub const CREATE: &str = "canmore.create_textdoc";
/// The recipient of a message that edits the current canvas document.
pub const UPDATE: &str = "canmore.update_textdoc";

/// What a canvas call does.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new document with this content.
    Create(String),
    /// Edits to the current document, in order.
    Update(Vec<Edit>),
}

/// One regex replacement of `canmore.update_textdoc`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edit {
    /// The pattern replaced (a regular expression; `.*` rewrites the whole document).
    pub pattern: String,
    /// Whether every match is replaced.
    pub multiple: bool,
    /// The new text.
    pub replacement: String,
}

/// A canvas call: the document's name and type (an update names neither; a view takes
/// them from the document it edits) and what changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    /// The document's name.
    pub name: Option<String>,
    /// `document`, `code/python`, `code/react`…
    pub doc_type: Option<String>,
    /// What the call does.
    pub change: Change,
}

impl Canvas {
    /// Reads a canvas call from a message's recipient and text; `None` when the
    /// recipient is not a canvas tool or the text is not the JSON it sends.
    pub fn parse(recipient: &str, text: &str) -> Option<Self> {
        if recipient != CREATE && recipient != UPDATE {
            return None;
        }
        let v: Value = serde_json::from_str(text).ok()?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let change = if recipient == CREATE {
            Change::Create(v.get("content")?.as_str()?.to_owned())
        } else {
            let edits: Vec<Edit> = v
                .get("updates")?
                .as_array()?
                .iter()
                .filter_map(|u| {
                    Some(Edit {
                        pattern: u.get("pattern")?.as_str()?.to_owned(),
                        multiple: u.get("multiple").and_then(Value::as_bool).unwrap_or(false),
                        replacement: u
                            .get("replacement")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                })
                .collect();
            if edits.is_empty() {
                return None;
            }
            Change::Update(edits)
        };
        Some(Canvas {
            name: field("name"),
            doc_type: field("type"),
            change,
        })
    }

    /// The language of a code document (`code/python` → `python`); `None` for prose.
    pub fn code_language(&self) -> Option<&str> {
        self.doc_type
            .as_deref()
            .and_then(|t| t.strip_prefix("code/"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }

    /// The whole new content when the change rewrites the document: a creation, or a
    /// single edit whose pattern matches everything (how ChatGPT rewrites a document).
    pub fn whole_content(&self) -> Option<&str> {
        match &self.change {
            Change::Create(content) => Some(content),
            Change::Update(edits) => match edits.as_slice() {
                [only] if matches_everything(&only.pattern) => Some(&only.replacement),
                _ => None,
            },
        }
    }
}

/// Patterns that replace the whole document.
fn matches_everything(pattern: &str) -> bool {
    matches!(
        pattern.trim(),
        ".*" | "(?s).*" | "(?s)^.*$" | "^.*$" | "[\\s\\S]*" | "^[\\s\\S]*$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_update_calls_are_read() {
        let c = Canvas::parse(
            CREATE,
            r#"{"name":"fizz_buzz","type":"code/python","content":"for i in range(3):\n    print(i)\n"}"#,
        )
        .expect("create");
        assert_eq!(c.name.as_deref(), Some("fizz_buzz"));
        assert_eq!(c.code_language(), Some("python"));
        assert_eq!(
            c.whole_content(),
            Some("for i in range(3):\n    print(i)\n")
        );

        let u = Canvas::parse(
            UPDATE,
            r#"{"updates":[{"pattern":"Day 1","multiple":true,"replacement":"Day One"},{"pattern":"x"}]}"#,
        )
        .expect("update");
        assert_eq!(u.name, None);
        assert_eq!(u.whole_content(), None, "partial edits");
        let Change::Update(edits) = &u.change else {
            panic!("an update")
        };
        assert_eq!(edits.len(), 2);
        assert!(edits[0].multiple && !edits[1].multiple);
        assert_eq!(edits[1].replacement, "");

        let rewrite = Canvas::parse(
            UPDATE,
            r#"{"updates":[{"pattern":".*","replacement":"all new"}]}"#,
        )
        .expect("rewrite");
        assert_eq!(rewrite.whole_content(), Some("all new"));
        let doc = Canvas::parse(
            CREATE,
            r##"{"name":"Plan","type":"document","content":"# Hi"}"##,
        )
        .expect("document");
        assert_eq!(doc.code_language(), None);
    }

    #[test]
    fn other_calls_and_bad_json_are_not_canvas() {
        assert_eq!(
            Canvas::parse("python", r#"{"name":"a","content":"b"}"#),
            None
        );
        assert_eq!(Canvas::parse(CREATE, "not json"), None);
        assert_eq!(Canvas::parse(CREATE, r#"{"name":"no content"}"#), None);
        assert_eq!(Canvas::parse(UPDATE, r#"{"updates":[]}"#), None);
        assert_eq!(
            Canvas::parse(UPDATE, r#"{"updates":[{"replacement":"x"}]}"#),
            None
        );
    }
}
