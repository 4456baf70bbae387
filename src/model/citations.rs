//! Where an answer cites its sources, in the two shapes ChatGPT has used:
//! - 2025+: the text holds private-use markers (`U+E200 cite U+E202 turn0search0 U+E201`)
//!   and `metadata.content_references[]` says what each marker stands for: its
//!   `matched_text`, the Markdown the UI shows instead (`alt`) and the sources (`items`,
//!   `sources`, or the reference's own `url`/`title`);
//! - 2023–24: the text holds `【11†source】` and `metadata.citations[]` gives each marker's
//!   position (`start_ix`/`end_ix`) and its page (`metadata.title`/`url`).
//!
//! Both are read into [`Citation`]s here; resolving them in the text is a view's job
//! (the archive keeps the text as it came).

use super::loose::{self, Str};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One citation of a message, in either generation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Citation {
    /// The text the citation stands for (2025+: the whole private-use marker). Blank for
    /// references that mark nothing in place (some are a single space).
    pub matched_text: Option<String>,
    /// Where it starts in the text (`start_idx` / `start_ix`); the unit is not
    /// documented (code points or UTF-16 units), so it orders citations and locates
    /// 2023–24 markers, never slices blindly.
    pub start: Option<usize>,
    /// Where it ends (`end_idx` / `end_ix`).
    pub end: Option<usize>,
    /// `type` (`grouped_webpages`, `webpage`, `sources_footnote`, `hidden`…); `tether_og`
    /// for 2023–24 citations.
    pub kind: String,
    /// The Markdown the ChatGPT UI shows in place of the marker (2025+), e.g.
    /// `([Reuters](https://…))`.
    pub alt: Option<String>,
    /// The sources it cites.
    pub sources: Vec<Source>,
    /// A 2023–24 citation (`metadata.citations`), located by its indices.
    pub legacy: bool,
}

/// A cited page or file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    /// Page title.
    pub title: Option<String>,
    /// Its address (a web URL, or a file id for file-search hits).
    pub url: String,
    /// The site's name as the UI shows it (`Reuters`, `Wikipedia`).
    pub attribution: Option<String>,
}

/// Start of a 2025+ private-use marker (`U+E200 kind U+E202 arg … U+E201`).
pub const MARK_START: char = '\u{E200}';
/// End of a marker.
pub const MARK_END: char = '\u{E201}';
/// Separates a marker's kind and arguments.
pub const MARK_SEP: char = '\u{E202}';

/// `text` with each complete private-use marker replaced by what `f` makes of its
/// inside (kind and arguments, without the brackets). `None` when the text holds no
/// marker start. A marker with no end is left as it is, and so is what follows it.
pub fn map_markers(text: &str, mut f: impl FnMut(&str) -> String) -> Option<String> {
    if !text.contains(MARK_START) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARK_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK_START.len_utf8()..];
        let Some(end) = after.find(MARK_END) else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        out.push_str(&f(&after[..end]));
        rest = &after[end + MARK_END.len_utf8()..];
    }
    out.push_str(rest);
    Some(out)
}

/// The name an `entity` marker's inside shows (`entity U+E202 ["city","Paris",…]` →
/// `Paris`, the array's second element), on one line; `None` for other markers.
pub fn entity_name(inner: &str) -> Option<String> {
    let mut fields = inner.split(MARK_SEP);
    if fields.next()?.trim() != "entity" {
        return None;
    }
    let arg = fields.map(str::trim).find(|a| !a.is_empty())?;
    let v: serde_json::Value = serde_json::from_str(arg).ok()?;
    let name = v
        .get(1)?
        .as_str()?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

/// Reads a message's citations from its `metadata.content_references` and
/// `metadata.citations` (either may be absent or malformed: what cannot be read is
/// left out).
pub fn parse(content_references: Option<&RawValue>, citations: Option<&RawValue>) -> Vec<Citation> {
    let mut out = Vec::new();
    if let Some(raw) = content_references {
        let refs: Vec<Reference<'_>> = list(raw);
        out.extend(refs.into_iter().map(Reference::into_citation));
    }
    if let Some(raw) = citations {
        let cites: Vec<LegacyCitation<'_>> = list(raw);
        out.extend(cites.into_iter().filter_map(LegacyCitation::into_citation));
    }
    out
}

/// A JSON array of objects read tolerantly (anything else is empty).
fn list<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Vec<T> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    loose::object_list(&mut de).unwrap_or_default()
}

/// One `content_references[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Reference<'a> {
    #[serde(borrow, deserialize_with = "loose::string")]
    matched_text: Option<Str<'a>>,
    #[serde(deserialize_with = "loose::number")]
    start_idx: Option<f64>,
    #[serde(deserialize_with = "loose::number")]
    end_idx: Option<f64>,
    #[serde(rename = "type", borrow, deserialize_with = "loose::string")]
    kind: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    alt: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    url: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    title: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    attribution: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::object_list")]
    items: Vec<Item<'a>>,
    #[serde(borrow, deserialize_with = "loose::object_list")]
    sources: Vec<Item<'a>>,
}

/// A source inside a reference (`items[]`, `sources[]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Item<'a> {
    #[serde(borrow, deserialize_with = "loose::string")]
    url: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    title: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::string")]
    attribution: Option<Str<'a>>,
}

impl Item<'_> {
    fn into_source(self) -> Option<Source> {
        let url = self.url.filter(|u| !u.trim().is_empty())?;
        Some(Source {
            title: non_empty(self.title),
            url: url.trim().to_owned(),
            attribution: non_empty(self.attribution),
        })
    }
}

impl Reference<'_> {
    fn into_citation(self) -> Citation {
        // Grouped references list their pages; a single one is its own page.
        let listed = if self.items.is_empty() {
            self.sources
        } else {
            self.items
        };
        let mut sources: Vec<Source> = listed.into_iter().filter_map(Item::into_source).collect();
        if sources.is_empty() {
            let own = Item {
                url: self.url,
                title: self.title,
                attribution: self.attribution,
            };
            sources.extend(own.into_source());
        }
        Citation {
            matched_text: self.matched_text.map(|s| s.into_owned()),
            start: index(self.start_idx),
            end: index(self.end_idx),
            kind: self.kind.map(|s| s.into_owned()).unwrap_or_default(),
            alt: non_empty(self.alt),
            sources,
            legacy: false,
        }
    }
}

/// One 2023–24 `citations[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyCitation<'a> {
    #[serde(deserialize_with = "loose::number")]
    start_ix: Option<f64>,
    #[serde(deserialize_with = "loose::number")]
    end_ix: Option<f64>,
    #[serde(borrow, deserialize_with = "loose::string")]
    citation_format_type: Option<Str<'a>>,
    #[serde(borrow, deserialize_with = "loose::object")]
    metadata: Option<Item<'a>>,
}

impl LegacyCitation<'_> {
    fn into_citation(self) -> Option<Citation> {
        let start = index(self.start_ix)?;
        let end = index(self.end_ix).filter(|e| *e > start)?;
        Some(Citation {
            matched_text: None,
            start: Some(start),
            end: Some(end),
            kind: self
                .citation_format_type
                .map(|s| s.into_owned())
                .unwrap_or_else(|| "tether_og".to_owned()),
            alt: None,
            sources: self
                .metadata
                .and_then(Item::into_source)
                .into_iter()
                .collect(),
            legacy: true,
        })
    }
}

fn non_empty(s: Option<Str<'_>>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A JSON number as an index: whole, not negative, not absurd.
fn index(n: Option<f64>) -> Option<usize> {
    let n = n?;
    (n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n < 1e12).then_some(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).expect("json")
    }

    #[test]
    fn content_references_keep_alt_sources_and_positions() {
        let refs = raw(
            r#"[{"matched_text":"\ue200cite\ue202turn0search0\ue201","start_idx":12,"end_idx":31,
                 "type":"grouped_webpages","alt":"([Reuters](https://reuters.com/a))",
                 "items":[{"title":"A","url":"https://reuters.com/a","attribution":"Reuters"},
                          {"title":"no url"}]},
                {"matched_text":" ","start_idx":40,"end_idx":40,"type":"sources_footnote",
                 "sources":[{"title":"S","url":"https://s.example/"}]},
                {"matched_text":"x","type":"webpage","url":"https://w.example/","title":"W"},
                "not an object", 7]"#,
        );
        let c = parse(Some(&refs), None);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0].matched_text.as_deref(),
            Some("\u{E200}cite\u{E202}turn0search0\u{E201}")
        );
        assert_eq!((c[0].start, c[0].end), (Some(12), Some(31)));
        assert_eq!(
            c[0].alt.as_deref(),
            Some("([Reuters](https://reuters.com/a))")
        );
        assert_eq!(c[0].sources.len(), 1, "an item without a URL is no source");
        assert_eq!(c[0].sources[0].attribution.as_deref(), Some("Reuters"));
        assert_eq!(c[1].kind, "sources_footnote");
        assert_eq!(c[1].sources[0].url, "https://s.example/");
        assert_eq!(c[2].sources[0].title.as_deref(), Some("W"), "own url/title");
        assert!(c.iter().all(|c| !c.legacy));
    }

    #[test]
    fn legacy_citations_need_a_span() {
        let cites = raw(
            r#"[{"start_ix":5,"end_ix":16,"citation_format_type":"tether_og",
                 "metadata":{"type":"webpage","title":"T","url":"https://t.example/p","text":"…"}},
                {"start_ix":9},{"start_ix":"x","end_ix":3},{"start_ix":-1,"end_ix":2}]"#,
        );
        let c = parse(None, Some(&cites));
        assert_eq!(c.len(), 1);
        assert!(c[0].legacy);
        assert_eq!((c[0].start, c[0].end), (Some(5), Some(16)));
        assert_eq!(c[0].sources[0].url, "https://t.example/p");
        assert!(parse(Some(&raw("{}")), Some(&raw("null"))).is_empty());
    }
}
