//! Message content by `content_type`: the visible text and the attachments that the
//! export schema defines. Unknown types read as empty here; their raw content stays
//! in the archived JSON.

use super::MessageMeta;
use super::loose::{self, Str, reject_others};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::fmt;

/// A typed view of `message.content` covering every field the views read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Content<'a> {
    /// `text`, `multimodal_text`, `code`, `thoughts`…
    #[serde(borrow, deserialize_with = "loose::string")]
    pub content_type: Option<Str<'a>>,
    /// `text` / `multimodal_text` parts.
    #[serde(borrow, deserialize_with = "parts")]
    pub parts: Vec<Part<'a>>,
    /// `code`, `execution_output`, `tether_quote`, `sonic_webpage`, `system_error`.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub text: Option<Str<'a>>,
    /// `tether_browsing_display`.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub result: Option<Str<'a>>,
    /// `reasoning_recap` text.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub content: Option<Str<'a>>,
    /// `code` language.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub language: Option<Str<'a>>,
    /// `thoughts` entries.
    #[serde(borrow, deserialize_with = "loose::object_list")]
    pub thoughts: Vec<Thought<'a>>,
    /// `tether_quote` / `sonic_webpage` URL.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub url: Option<Str<'a>>,
    /// `tether_quote` / `sonic_webpage` title.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub title: Option<Str<'a>>,
    /// `system_error` name.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub name: Option<Str<'a>>,
    /// `citable_code_output` text.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub output_str: Option<Str<'a>>,
    /// `computer_output`: the agent's screenshot (an image asset pointer).
    #[serde(borrow, deserialize_with = "loose::object")]
    pub screenshot: Option<Box<PartObject<'a>>>,
    /// `computer_output`: the browser's state (the page shown, when it says).
    #[serde(borrow, deserialize_with = "loose::object")]
    pub state: Option<ComputerState<'a>>,
}

/// The part of `computer_output.state` the views use.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ComputerState<'a> {
    /// The page's address.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub url: Option<Str<'a>>,
    /// The page's title.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub title: Option<Str<'a>>,
}

/// One `thoughts[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Thought<'a> {
    /// Short heading.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub summary: Option<Str<'a>>,
    /// The thought text.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub content: Option<Str<'a>>,
}

/// One element of `parts`: a string, an object part, or something unreadable.
#[derive(Debug)]
pub enum Part<'a> {
    /// Plain text.
    Text(Str<'a>),
    /// An image, audio, video or transcription part.
    Object(Box<PartObject<'a>>),
    /// Anything else (kept in the raw JSON only).
    Other,
}

/// An object part of `multimodal_text`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PartObject<'a> {
    /// `image_asset_pointer`, `audio_transcription`, `audio_asset_pointer`…
    #[serde(borrow, deserialize_with = "loose::string")]
    pub content_type: Option<Str<'a>>,
    /// `file-service://…` or `sediment://…`.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub asset_pointer: Option<Str<'a>>,
    /// `audio_transcription` text.
    #[serde(borrow, deserialize_with = "loose::string")]
    pub text: Option<Str<'a>>,
    /// Audio format (`wav`…).
    #[serde(borrow, deserialize_with = "loose::string")]
    pub format: Option<Str<'a>>,
    /// Image width.
    #[serde(deserialize_with = "loose::number")]
    pub width: Option<f64>,
    /// Image height.
    #[serde(deserialize_with = "loose::number")]
    pub height: Option<f64>,
    /// Voice mode: nested audio pointer.
    #[serde(borrow, deserialize_with = "loose::object")]
    pub audio_asset_pointer: Option<Box<PartObject<'a>>>,
    /// Voice mode: nested video pointer.
    #[serde(borrow, deserialize_with = "loose::object")]
    pub video_container_asset_pointer: Option<Box<PartObject<'a>>>,
    /// Voice mode: camera frames.
    #[serde(borrow, deserialize_with = "loose::object_list")]
    pub frames_asset_pointers: Vec<PartObject<'a>>,
    /// Image generation metadata (DALL·E prompt…), raw.
    #[serde(borrow)]
    pub metadata: Option<&'a RawValue>,
}

/// A file a message refers to, as the export schema lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttachmentRef {
    /// File id (the asset pointer without its scheme, or `metadata.attachments[].id`).
    pub file_id: String,
    /// Original file name, when known.
    pub name: Option<String>,
    /// MIME type, when known.
    pub mime_type: Option<String>,
    /// The part's content type (`image_asset_pointer`…), or `file` for uploads.
    pub kind: String,
}

/// The content types Export schema v1 gives a visible text for; every other type's
/// text is `""` (its raw content stays in the archive).
pub const TEXT_TYPES: &[&str] = &[
    "text",
    "multimodal_text",
    "code",
    "execution_output",
    "tether_browsing_display",
    "tether_quote",
    "sonic_webpage",
    "system_error",
    "citable_code_output",
    "thoughts",
    "reasoning_recap",
];

impl Content<'_> {
    /// The visible text, exactly as Export schema v1 defines it per content type
    /// (one of [`TEXT_TYPES`]).
    pub fn text(&self) -> String {
        match self.content_type.as_deref().unwrap_or("") {
            "text" | "multimodal_text" => {
                let mut pieces: Vec<&str> = Vec::new();
                for part in &self.parts {
                    match part {
                        Part::Text(s) => pieces.push(s),
                        Part::Object(o)
                            if o.content_type.as_deref() == Some("audio_transcription") =>
                        {
                            if let Some(t) = &o.text {
                                pieces.push(t);
                            }
                        }
                        _ => {}
                    }
                }
                pieces.join("\n")
            }
            "code" | "execution_output" | "tether_quote" | "sonic_webpage" | "system_error" => {
                self.text.as_deref().unwrap_or_default().to_owned()
            }
            "citable_code_output" => self.output_str.as_deref().unwrap_or_default().to_owned(),
            "tether_browsing_display" => self.result.as_deref().unwrap_or_default().to_owned(),
            "thoughts" => self
                .thoughts
                .iter()
                .map(|t| t.content.as_deref().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n\n"),
            "reasoning_recap" => self.content.as_deref().unwrap_or_default().to_owned(),
            _ => String::new(),
        }
    }

    /// The content type, `""` when unknown.
    pub fn kind(&self) -> &str {
        self.content_type.as_deref().unwrap_or("")
    }
}

/// The attachments of a message: asset-pointer parts (images, audio, and the nested
/// pointers of voice mode), an agent's `computer_output.screenshot`, and
/// `metadata.attachments`, merged by file id, parts first.
pub fn attachments(content: &Content<'_>, meta: &MessageMeta<'_>) -> Vec<AttachmentRef> {
    let mut out: Vec<AttachmentRef> = Vec::new();
    fn push_part(out: &mut Vec<AttachmentRef>, p: &PartObject<'_>) {
        if let Some(id) = p.asset_pointer.as_deref().and_then(pointer_file_id) {
            let mime_type = match (p.content_type.as_deref(), p.format.as_deref()) {
                (Some("audio_asset_pointer"), Some(f)) => Some(format!("audio/{f}")),
                (Some("video_container_asset_pointer"), Some(f)) => Some(format!("video/{f}")),
                _ => None,
            };
            if !out.iter().any(|a| a.file_id == id) {
                out.push(AttachmentRef {
                    file_id: id.to_owned(),
                    name: None,
                    mime_type,
                    kind: p.content_type.as_deref().unwrap_or("asset").to_owned(),
                });
            }
        }
        for nested in [&p.audio_asset_pointer, &p.video_container_asset_pointer]
            .into_iter()
            .flatten()
        {
            push_part(out, nested);
        }
        for frame in &p.frames_asset_pointers {
            push_part(out, frame);
        }
    }
    for part in &content.parts {
        if let Part::Object(o) = part {
            push_part(&mut out, o);
        }
    }
    if let Some(shot) = &content.screenshot {
        let before = out.len();
        push_part(&mut out, shot);
        // A screenshot is an image whatever its pointer object says.
        for a in &mut out[before..] {
            a.kind = "image_asset_pointer".to_owned();
        }
    }
    for a in &meta.attachments {
        let Some(id) = a.id.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        match out.iter_mut().find(|r| r.file_id == id) {
            Some(r) => {
                r.name = r
                    .name
                    .take()
                    .or_else(|| a.name.as_deref().map(str::to_owned));
                r.mime_type = a
                    .mime_type
                    .as_deref()
                    .map(str::to_owned)
                    .or(r.mime_type.take());
            }
            None => out.push(AttachmentRef {
                file_id: id.to_owned(),
                name: a.name.as_deref().map(str::to_owned),
                mime_type: a.mime_type.as_deref().map(str::to_owned),
                kind: "file".to_owned(),
            }),
        }
    }
    out
}

/// The file id inside an asset pointer: `file-service://file-abc` → `file-abc`,
/// `sediment://file_00ab` → `file_00ab`.
pub fn pointer_file_id(pointer: &str) -> Option<&str> {
    let id = pointer.rsplit_once("://").map_or(pointer, |(_, rest)| rest);
    let id = id.trim_matches('/');
    (!id.is_empty()).then_some(id)
}

/// Finds every `file-service://ID` and `sediment://ID` in raw JSON text, wherever it
/// sits (parts, nested voice pointers, code-interpreter results), and adds the ids.
pub fn scan_pointer_ids(raw: &str, out: &mut BTreeSet<String>) {
    for scheme in ["file-service://", "sediment://"] {
        let finder = memchr::memmem::Finder::new(scheme);
        for start in finder.find_iter(raw.as_bytes()) {
            let rest = &raw[start + scheme.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                out.insert(rest[..end].to_owned());
            }
        }
    }
}

fn parts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Part<'de>>, D::Error> {
    d.deserialize_any(PartsVisitor)
}

struct PartsVisitor;

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = Vec<Part<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of parts")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element::<Part<'de>>()? {
            out.push(p);
        }
        Ok(out)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    reject_others!(Vec::new(); bool, num, str, unit, map);
}

impl<'de> Deserialize<'de> for Part<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PartVisitor)
    }
}

struct PartVisitor;

impl<'de> Visitor<'de> for PartVisitor {
    type Value = Part<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a part")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Part::Text(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Part::Text(std::borrow::Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Part::Text(std::borrow::Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        PartObject::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|p| Part::Object(Box::new(p)))
    }
    reject_others!(Part::Other; bool, num, unit, seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_lists_exactly_the_types_with_a_text_rule() {
        // Every field any rule reads is filled, so a listed type must yield text and
        // an unlisted one must not.
        let with = |kind: &str| {
            format!(
                r#"{{"content_type":"{kind}","parts":["p"],"text":"t","result":"r","content":"c","output_str":"o","thoughts":[{{"content":"th"}}]}}"#
            )
        };
        for kind in TEXT_TYPES {
            let json = with(kind);
            let c: Content<'_> = serde_json::from_str(&json).expect("json");
            assert!(
                !c.text().is_empty(),
                "{kind} is listed but has no text rule"
            );
        }
        for kind in [
            "user_editable_context",
            "model_editable_context",
            "computer_output",
            "new",
        ] {
            let json = with(kind);
            let c: Content<'_> = serde_json::from_str(&json).expect("json");
            assert!(
                c.text().is_empty(),
                "{kind} has a text rule but is not listed"
            );
        }
    }

    #[test]
    fn citable_code_output_text_is_its_output_str() {
        let c: Content<'_> = serde_json::from_str(
            r#"{"content_type":"citable_code_output","output_str":"total 4\nfile.txt","text":"ignored"}"#,
        )
        .expect("json");
        assert_eq!(c.text(), "total 4\nfile.txt");
    }

    #[test]
    fn screenshots_and_audio_are_attachments() {
        let shot: Content<'_> = serde_json::from_str(
            r#"{"content_type":"computer_output","computer_id":"1",
                "screenshot":{"content_type":"image_asset_pointer","asset_pointer":"sediment://file_00shot","width":1024,"height":768},
                "state":{"type":"browser_state","url":"https://example.com/","title":"Example"}}"#,
        )
        .expect("json");
        let a = attachments(&shot, &MessageMeta::default());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].file_id, "file_00shot");
        assert_eq!(a[0].kind, "image_asset_pointer");
        let state = shot.state.as_ref().expect("state");
        assert_eq!(state.url.as_deref(), Some("https://example.com/"));

        let voice: Content<'_> = serde_json::from_str(
            r#"{"content_type":"multimodal_text","parts":[
                {"content_type":"audio_transcription","text":"hello","direction":"in"},
                {"content_type":"audio_asset_pointer","asset_pointer":"sediment://file_00aud","format":"wav"},
                {"content_type":"real_time_user_audio_video_asset_pointer","expiry_datetime":"2026-01-01T00:00:00+00:00",
                 "audio_asset_pointer":{"content_type":"audio_asset_pointer","asset_pointer":"sediment://file_00rt","format":"wav"},
                 "video_container_asset_pointer":{"content_type":"video_container_asset_pointer","asset_pointer":"sediment://file_00vid","format":"mp4"},
                 "frames_asset_pointers":[]}]}"#,
        )
        .expect("json");
        let a = attachments(&voice, &MessageMeta::default());
        let got: Vec<(&str, Option<&str>, &str)> = a
            .iter()
            .map(|a| (a.file_id.as_str(), a.mime_type.as_deref(), a.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("file_00aud", Some("audio/wav"), "audio_asset_pointer"),
                ("file_00rt", Some("audio/wav"), "audio_asset_pointer"),
                (
                    "file_00vid",
                    Some("video/mp4"),
                    "video_container_asset_pointer"
                ),
            ]
        );
        assert_eq!(voice.text(), "hello");
    }
}
