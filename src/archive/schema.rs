//! The on-disk layout: sled trees, key encodings, record types and the schema version.
//!
//! Trees (schema version 1):
//! - default tree: `schema_version` → decimal text; `state/<name>` → JSON (sync state,
//!   pacing cooldown, device id, last import/sync reports)
//! - `conv_raw`: conversation id ‖ 0x00 ‖ chunk number (u32 BE) → one chunk of the lz4
//!   block (size-prefixed) of the verbatim JSON
//! - `conv_extra`: the same, for a JSON object of nodes kept from older versions
//!
//! Documents are chunked because sled 0.34 keeps pages larger than a quarter segment
//! as separate blob files and then under-counts them in its cache, so memory grows
//! with everything written; small chunks keep every page inline and the cache bounded.
//! - `conv_meta`: id → JSON [`ConvRecord`]
//! - `by_updated`: sortable update time (8 bytes) ‖ id → [`index_value`] (message count
//!   and the deleted flag, so `status` totals need no record reads; empty in archives
//!   written before it, which are read from the records instead)
//! - `files`: file id → JSON [`FileRecord`]
//! - `conv_files`: conversation id ‖ 0x00 ‖ file id → empty
//! - `imports`: file digest (hex) → JSON [`ImportRecord`]
//! - `file_convs`: file id ‖ 0x00 ‖ conversation id → empty (the reverse of
//!   `conv_files`, so a newly stored attachment finds the conversations showing it)
//! - `changes`: change sequence number (u64 BE) → conversation id: the change feed the
//!   derived stores (search index, Markdown mirror) catch up from. Each conversation
//!   appears once, at its latest change ([`ConvRecord::change_seq`]).
//! - `totals`: `all` → conversations, visible messages, attachments and conversations
//!   deleted remotely (u64 BE each), kept in step by every write; absent in archives
//!   written before it until the first count

use crate::model::Summary;
use serde::{Deserialize, Serialize};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Key of the schema version in the default tree.
pub const SCHEMA_KEY: &[u8] = b"schema_version";
/// Tree names.
pub const RAW: &str = "conv_raw";
/// Retained nodes.
pub const EXTRA: &str = "conv_extra";
/// Conversation records.
pub const META: &str = "conv_meta";
/// Update-time index.
pub const BY_UPDATED: &str = "by_updated";
/// Attachment records.
pub const FILES: &str = "files";
/// Conversation → file links.
pub const CONV_FILES: &str = "conv_files";
/// Imported file digests.
pub const IMPORTS: &str = "imports";
/// File → conversation links.
pub const FILE_CONVS: &str = "file_convs";
/// The change feed.
pub const CHANGES: &str = "changes";
/// The running totals.
pub const TOTALS: &str = "totals";

/// What the archive knows about one conversation besides its JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvRecord {
    /// Derived from the stored JSON.
    pub summary: Summary,
    /// Version used for ordering: update time in epoch microseconds.
    pub version: i64,
    /// Nodes in the stored mapping plus retained nodes.
    pub node_count: u32,
    /// Chunks of the stored JSON in `conv_raw`.
    pub raw_chunks: u32,
    /// Chunks of the retained nodes in `conv_extra` (0: none).
    #[serde(default)]
    pub extra_chunks: u32,
    /// When convos first archived it (epoch seconds).
    pub archived_at: f64,
    /// When convos last wrote it (epoch seconds).
    pub written_at: f64,
    /// Set when a full sync no longer finds it on chatgpt.com.
    #[serde(default)]
    pub deleted_remotely: bool,
    /// What the conversation listing said last (flags change without an update_time bump).
    #[serde(default)]
    pub remote: RemoteState,
    /// Key of this conversation's entry in the change feed (0: written before the feed).
    #[serde(default)]
    pub change_seq: u64,
}

/// Per-conversation facts learnt from chatgpt.com listings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteState {
    /// Archived flag from the listing.
    pub is_archived: Option<bool>,
    /// Starred flag from the listing.
    pub is_starred: Option<bool>,
    /// The listing's `update_time` when this version was fetched (epoch seconds).
    pub list_update_time: Option<f64>,
    /// Project name, when the conversation belongs to a project.
    pub project: Option<String>,
}

impl ConvRecord {
    /// Effective archived flag: the listing's when known, else the JSON's.
    pub fn is_archived(&self) -> bool {
        self.remote
            .is_archived
            .or(self.summary.is_archived)
            .unwrap_or(false)
    }
}

/// A stored attachment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Original file name, when known.
    pub name: Option<String>,
    /// MIME type, when known.
    pub mime_type: Option<String>,
}

/// A source file that was imported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The path it was imported from.
    pub path: String,
    /// When (epoch seconds).
    pub at: f64,
    /// New conversations.
    pub new: u64,
    /// Updated conversations.
    pub updated: u64,
    /// Unchanged conversations.
    pub unchanged: u64,
    /// Conversations that could not be imported.
    pub failed: u64,
}

/// Sortable 8-byte encoding of a signed version (big-endian with the sign bit flipped).
pub fn version_key(version: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&((version as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The `by_updated` value: visible messages (u32 BE) and the deleted flag.
pub fn index_value(message_count: u32, deleted_remotely: bool) -> [u8; 5] {
    let c = message_count.to_be_bytes();
    [c[0], c[1], c[2], c[3], u8::from(deleted_remotely)]
}

/// Reads an [`index_value`]; `None` for the empty values of older archives.
pub fn parse_index_value(v: &[u8]) -> Option<(u32, bool)> {
    let b: [u8; 5] = v.try_into().ok()?;
    Some((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), b[4] != 0))
}

/// The id part of a `by_updated` key.
pub fn id_from_version_key(key: &[u8]) -> Option<&str> {
    key.get(8..).and_then(|b| std::str::from_utf8(b).ok())
}

/// Key of a conversation → file link.
pub fn conv_file_key(conv_id: &str, file_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(conv_id.len() + 1 + file_id.len());
    k.extend_from_slice(conv_id.as_bytes());
    k.push(0);
    k.extend_from_slice(file_id.as_bytes());
    k
}

/// Key of a change-feed entry: the sequence number, big-endian so keys sort by it.
pub fn change_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Reads a [`change_key`].
pub fn parse_change_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// Bytes per stored chunk: 17 of them (a leaf page before it splits) stay under the
/// inline limit of a 1 MiB segment.
pub const CHUNK: usize = 14 * 1024;

/// Key of chunk `i` of a conversation's document.
pub fn chunk_key(id: &str, i: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 5);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Number of chunks a packed document takes.
pub fn chunk_count(packed: &[u8]) -> u32 {
    u32::try_from(packed.len().div_ceil(CHUNK)).unwrap_or(u32::MAX)
}

/// Compresses a stored JSON document.
pub fn pack(bytes: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(bytes)
}

/// Decompresses a stored JSON document.
pub fn unpack(bytes: &[u8]) -> Option<Vec<u8>> {
    lz4_flex::block::decompress_size_prepended(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_sort_numerically() {
        let mut keys = [
            version_key(5, "a"),
            version_key(-3, "b"),
            version_key(1_700_000_000_000_000, "c"),
            version_key(0, "d"),
        ];
        keys.sort();
        let ids: Vec<&str> = keys.iter().filter_map(|k| id_from_version_key(k)).collect();
        assert_eq!(ids, ["b", "d", "a", "c"]);
    }

    #[test]
    fn pack_round_trips() {
        let data = br#"{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#;
        assert_eq!(unpack(&pack(data)).as_deref(), Some(&data[..]));
        assert_eq!(unpack(b"\xff\xff\xff\x7fjunk"), None);
    }
}
