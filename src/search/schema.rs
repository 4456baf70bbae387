//! The index's schema, its version, and the commit payload that carries the version
//! and the high-water mark with every commit.

use super::tokenize;
use serde::{Deserialize, Serialize};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, NumericOptions,
    STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

/// The schema (fields, analyzers, what a document holds) this build writes. Raise it
/// whenever any of that changes: an index with another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// The fields of a message document.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// Conversation id: exact, stored, and a fast column for grouping by conversation.
    pub conv_id: Field,
    /// Message id (stored).
    pub message_id: Field,
    /// Node id in the mapping (stored).
    pub node_id: Field,
    /// `user`, `assistant`, `tool`, `system` (exact, stored).
    pub role: Field,
    /// Content type (exact).
    pub content_type: Field,
    /// The conversation's title, then the text a reader sees with its thought
    /// summaries (full text): what queries match. Not stored: snippets are cut from
    /// the archive, which keeps the index a fraction of the archive's size.
    pub text: Field,
    /// The conversation's title again, on every message (full text): title matches
    /// score higher.
    pub title: Field,
    /// When the message was written (falls back to the conversation's times).
    pub time: Field,
    /// Project name (keyword).
    pub project: Field,
    /// Models: the message's and the conversation's (keyword, multi-valued).
    pub model: Field,
    /// Archived on chatgpt.com.
    pub archived: Field,
    /// Deleted on chatgpt.com (kept in the archive).
    pub deleted: Field,
    /// On the conversation's active branch (stored).
    pub active: Field,
}

/// Builds the schema and its field handles.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let full_text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenize::TEXT)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let keyword = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenize::KEYWORD)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let stored_only = TextOptions::default().set_stored();
    let flag = NumericOptions::default().set_indexed();
    let fields = Fields {
        conv_id: b.add_text_field("conv_id", STRING | STORED | FAST),
        message_id: b.add_text_field("message_id", stored_only.clone()),
        node_id: b.add_text_field("node_id", stored_only),
        role: b.add_text_field("role", STRING | STORED),
        content_type: b.add_text_field("content_type", STRING),
        text: b.add_text_field("text", full_text.clone()),
        title: b.add_text_field("title", full_text),
        time: b.add_date_field(
            "time",
            DateOptions::from(FAST).set_precision(DateTimePrecision::Seconds),
        ),
        project: b.add_text_field("project", keyword.clone()),
        model: b.add_text_field("model", keyword),
        archived: b.add_bool_field("archived", flag.clone()),
        deleted: b.add_bool_field("deleted", flag),
        active: b.add_bool_field("active", INDEXED | STORED),
    };
    (b.build(), fields)
}

/// What every commit records in the index's `meta.json`, atomically with the commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema: u32,
    /// The convos version that wrote it (for the log line when it is rebuilt).
    #[serde(default)]
    pub writer: String,
    /// The archive's change-feed sequence number this index is complete up to; `None`
    /// while a full build is under way (an interrupted build starts over).
    #[serde(default)]
    pub mark: Option<u64>,
}

impl Payload {
    /// A payload of this build's schema.
    pub fn current(mark: Option<u64>) -> Self {
        Payload {
            schema: SCHEMA_VERSION,
            writer: env!("CARGO_PKG_VERSION").to_owned(),
            mark,
        }
    }

    /// Reads a stored payload; `None` when absent or unreadable.
    pub fn parse(s: Option<&str>) -> Option<Self> {
        serde_json::from_str(s?).ok()
    }

    /// As JSON.
    pub fn to_json(&self) -> String {
        // A plain struct of numbers and strings: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
