//! Deep-research reports. The report is not in any message's content: a tool message
//! carries it in `metadata.chatgpt_sdk.widget_state`, a JSON *string* whose
//! `report_message` is a whole message (`content.parts[0]` is the report in Markdown,
//! its `metadata.content_references` cite its sources).

use super::citations::{self, Citation};
use serde_json::Value;
use serde_json::value::RawValue;

/// A deep-research report as ChatGPT shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The report, in Markdown (citation markers unresolved).
    pub text: String,
    /// Its citations.
    pub citations: Vec<Citation>,
}

/// The report inside a message's `metadata.chatgpt_sdk`, if it holds one.
pub fn report(chatgpt_sdk: Option<&RawValue>) -> Option<Report> {
    let sdk: Value = serde_json::from_str(chatgpt_sdk?.get()).ok()?;
    // A string of JSON as seen; an object is read the same way should it come unwrapped.
    let state = match sdk.get("widget_state")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v @ Value::Object(_) => v.clone(),
        _ => return None,
    };
    let message = state.get("report_message")?;
    let text = message
        .pointer("/content/parts")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    if text.trim().is_empty() {
        return None;
    }
    let meta = message.get("metadata");
    let raw = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(|v| serde_json::value::to_raw_value(v).ok())
    };
    let (refs, cites) = (raw("content_references"), raw("citations"));
    Some(Report {
        text,
        citations: citations::parse(refs.as_deref(), cites.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk(widget_state: &Value) -> Box<RawValue> {
        let v = serde_json::json!({"widget_state": widget_state});
        serde_json::value::to_raw_value(&v).expect("raw")
    }

    #[test]
    fn the_report_is_read_from_the_widget_state_string() {
        let state = serde_json::json!({"report_message": {
            "author": {"role": "assistant"},
            "content": {"content_type": "text", "parts": ["# Findings\n\nAll good.\u{E200}cite\u{E202}turn0search0\u{E201}"]},
            "metadata": {"content_references": [{"matched_text": "\u{E200}cite\u{E202}turn0search0\u{E201}",
                                                  "type": "webpage", "url": "https://e.example/", "alt": "([e](https://e.example/))"}]}
        }});
        let r = report(Some(&sdk(&Value::String(state.to_string())))).expect("a report");
        assert!(r.text.starts_with("# Findings"));
        assert_eq!(r.citations.len(), 1);
        assert_eq!(r.citations[0].sources[0].url, "https://e.example/");
        // The same state as an object reads the same.
        assert_eq!(report(Some(&sdk(&state))), Some(r));
    }

    #[test]
    fn no_report_without_one() {
        assert_eq!(report(None), None);
        for state in [
            Value::String("not json".into()),
            Value::String(r#"{"other":1}"#.into()),
            Value::String(r#"{"report_message":{"content":{"parts":["  "]}}}"#.into()),
            Value::Null,
        ] {
            assert_eq!(report(Some(&sdk(&state))), None, "{state}");
        }
    }
}
