//! Where the conversations and attachments are inside an export: a ZIP or an unpacked
//! folder, with a single `conversations.json`, sharded `conversations-NNN.json` (with
//! or without `export_manifest.json`), everything under one top-level folder or not,
//! macOS junk, and attachments in every naming scheme exports have used.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Component, Path};

/// A file inside an export, by its path relative to the export root.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Path as stored (ZIP member name or folder-relative path with `/`).
    pub name: String,
    /// Position in the ZIP, or `None` for folder exports.
    pub index: Option<usize>,
    /// Inflated size as declared.
    pub size: u64,
    /// Compressed size as declared (equal to `size` for folders).
    pub compressed: u64,
}

/// An attachment found in an export.
#[derive(Clone, Debug, PartialEq)]
pub struct Asset {
    /// The file id messages use to refer to it.
    pub file_id: String,
    /// Original file name, when known.
    pub name: Option<String>,
    /// MIME type, when known.
    pub mime_type: Option<String>,
    /// Where it is.
    pub entry: Entry,
}

/// What an export holds.
#[derive(Debug, Default)]
pub struct Layout {
    /// Conversation JSON files, in reading order.
    pub conversations: Vec<Entry>,
    /// Attachments.
    pub assets: Vec<Asset>,
    /// Entries skipped because their names are unsafe (`..`, absolute paths).
    pub unsafe_names: Vec<String>,
    /// The folder every member sits under, if any (`""` at the root).
    pub root: String,
    /// Conversations files `export_manifest.json` lists that the export does not hold
    /// (an incomplete download or copy), in the manifest's order.
    pub missing: Vec<String>,
}

/// Small JSON members the layout needs, read on request.
pub trait SmallFiles {
    /// Reads a member fully (callers only ask for small index files).
    fn read_small(&mut self, entry: &Entry) -> Option<Vec<u8>>;
}

/// Reads the layout from a list of entries.
pub fn detect(entries: Vec<Entry>, files: &mut dyn SmallFiles) -> Layout {
    let mut layout = Layout::default();
    let mut usable = Vec::new();
    for e in entries {
        if is_junk(&e.name) {
            continue;
        }
        if !is_safe(&e.name) {
            layout.unsafe_names.push(e.name);
            continue;
        }
        usable.push(e);
    }
    // The root is the folder of the shallowest conversations file, if any; else the
    // single top-level folder everything sits under.
    let root = usable
        .iter()
        .filter(|e| is_conversations_file(basename(&e.name)))
        .map(|e| dirname(&e.name))
        .min_by_key(|d| (d.matches('/').count(), d.len()))
        .map(str::to_owned)
        .unwrap_or_else(|| common_folder(&usable));
    layout.root = root.clone();
    let rel = |e: &Entry| -> Option<String> {
        if root.is_empty() {
            Some(e.name.clone())
        } else {
            e.name.strip_prefix(&format!("{root}/")).map(str::to_owned)
        }
    };
    let by_rel: HashMap<String, &Entry> =
        usable.iter().filter_map(|e| Some((rel(e)?, e))).collect();

    // Conversations: the manifest's list when it names files that exist, else the names.
    let manifest_list = by_rel
        .get("export_manifest.json")
        .and_then(|e| files.read_small(e))
        .map(|b| manifest_files(&b))
        .unwrap_or_default();
    let mut convs: Vec<&Entry> = manifest_list
        .iter()
        .filter_map(|n| by_rel.get(n.as_str()).copied())
        .collect();
    layout.missing = manifest_list
        .iter()
        .filter(|n| !by_rel.contains_key(n.as_str()))
        .cloned()
        .collect();
    if convs.is_empty() {
        let mut named: Vec<(&str, &Entry)> = by_rel
            .iter()
            .filter(|(r, _)| !r.contains('/') && is_conversations_file(r))
            .map(|(r, e)| (r.as_str(), *e))
            .collect();
        named.sort_by_key(|(r, _)| shard_order(r));
        convs = named.into_iter().map(|(_, e)| e).collect();
    }
    layout.conversations = convs.into_iter().cloned().collect();

    // Attachment names from the 2026 index files.
    let dat_names: HashMap<String, String> = by_rel
        .get("conversation_asset_file_names.json")
        .and_then(|e| files.read_small(e))
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let library: HashMap<String, LibraryFile> = by_rel
        .get("library_files.json")
        .and_then(|e| files.read_small(e))
        .and_then(|b| serde_json::from_slice::<Vec<LibraryFile>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| Some((f.file_id.clone()?, f)))
        .collect();

    let mut rels: Vec<(&String, &&Entry)> = by_rel.iter().collect();
    rels.sort_by(|a, b| a.0.cmp(b.0));
    for (r, e) in rels {
        let base = basename(r);
        if layout.conversations.iter().any(|c| c.name == e.name) {
            continue;
        }
        // Companion JSON and the HTML viewer at the root are not attachments.
        if !r.contains('/') && (base.ends_with(".json") || base == "chat.html") {
            continue;
        }
        let Some((file_id, name_from_member)) = asset_id(base) else {
            continue;
        };
        let lib = library.get(&file_id);
        let name = dat_names
            .get(r.as_str())
            .or_else(|| dat_names.get(base))
            .cloned()
            .map(|n| basename(&n).to_owned())
            .or_else(|| lib.and_then(|l| l.file_name.clone()))
            .or(name_from_member);
        let mime_type = lib
            .and_then(|l| l.mime_type.clone())
            .or_else(|| name.as_deref().and_then(mime_from_name).map(str::to_owned));
        layout.assets.push(Asset {
            file_id,
            name,
            mime_type,
            entry: (*e).clone(),
        });
    }
    layout
}

/// Why an export whose manifest lists files it lacks fails (after what it holds is
/// imported): the files by name, and what to do.
pub fn missing_shards_error(shown: &str, missing: &[String]) -> String {
    format!(
        "{shown}: export_manifest.json lists {} conversations file(s) that are not in the export: \
         {}. The conversations it does hold were imported; download the export again (or copy \
         the missing files beside the others) and import it again",
        missing.len(),
        // Names from a downloaded file: quoted and escaped, never raw in a terminal.
        missing
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[derive(Deserialize)]
struct LibraryFile {
    file_id: Option<String>,
    file_name: Option<String>,
    mime_type: Option<String>,
}

/// Shard names listed by a manifest, in either of the two shapes seen.
fn manifest_files(bytes: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    // {"logical_files":{"conversations.json":{"files":[...]}}}
    if let Some(files) = v
        .pointer("/logical_files/conversations.json/files")
        .and_then(|f| f.as_array())
    {
        return files
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
    }
    // {"files":[{"name":"conversations.json","shards":[{"name":...}]}]}
    v.get("files")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter(|f| f.get("name").and_then(|n| n.as_str()) == Some("conversations.json"))
        .flat_map(|f| match f.get("shards").and_then(|s| s.as_array()) {
            Some(shards) => shards
                .iter()
                .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .collect::<Vec<_>>(),
            None => vec!["conversations.json".to_owned()],
        })
        .collect()
}

/// `conversations.json` or `conversations-NNN.json`.
pub fn is_conversations_file(name: &str) -> bool {
    name == "conversations.json"
        || name
            .strip_prefix("conversations-")
            .and_then(|r| r.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn shard_order(name: &str) -> (u64, String) {
    let n = name
        .strip_prefix("conversations-")
        .and_then(|r| r.strip_suffix(".json"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (n, name.to_owned())
}

/// The file id an attachment member carries in its name, and the original name
/// when the member name holds it: `file-<id>-<name>`, `file_<hex>-<name>`,
/// `file-<id>.dat`, `file_<hex>.dat`.
fn asset_id(base: &str) -> Option<(String, Option<String>)> {
    if let Some(stem) = base.strip_suffix(".dat") {
        return (!stem.is_empty()).then(|| (stem.to_owned(), None));
    }
    let rest = base
        .strip_prefix("file-")
        .or_else(|| base.strip_prefix("file_"))?;
    let sep = &base[4..5];
    let id_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    if id_len == 0 {
        return None;
    }
    let id = format!("file{sep}{}", &rest[..id_len]);
    let tail = &rest[id_len..];
    let name = tail
        .strip_prefix('-')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| (!tail.is_empty()).then(|| base.to_owned()));
    Some((id, name))
}

/// A MIME type guessed from a file name's extension.
pub fn mime_from_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "py" => "text/x-python",
        _ => return None,
    })
}

/// macOS resource forks, Finder files and directory entries.
fn is_junk(name: &str) -> bool {
    name.ends_with('/')
        || name.starts_with("__MACOSX/")
        || name.contains("/__MACOSX/")
        || basename(name).starts_with("._")
        || basename(name) == ".DS_Store"
}

/// Rejects absolute paths, drive letters, backslashes and `..` components.
pub fn is_safe(name: &str) -> bool {
    let drive_letter = name.len() >= 2 && name.as_bytes()[1] == b':';
    let odd = name.is_empty() || name.contains('\\') || name.contains('\0') || drive_letter;
    !odd && Path::new(name)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn dirname(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The single top-level folder all entries share, or `""`.
fn common_folder(entries: &[Entry]) -> String {
    let mut first: Option<&str> = None;
    for e in entries {
        let Some((top, _)) = e.name.split_once('/') else {
            return String::new();
        };
        match first {
            None => first = Some(top),
            Some(f) if f == top => {}
            Some(_) => return String::new(),
        }
    }
    first.unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests;
