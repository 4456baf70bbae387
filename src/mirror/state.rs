//! What the mirror remembers, kept in the archive's state (never in the mirror folder,
//! which is the user's): per mirror folder, identified by the id in its
//! `.convos/mirror-id`, so two folders mirrored from one archive never mix.
//!
//! Keys: `mirror/<mid>` (the folder's [`Root`]), `mirror/<mid>/index/<YYYY-MM>` (the
//! records of the notes of conversations created that month: path, version shown,
//! hash of what was written, index line),
//! `mirror/<mid>/att/<file name>` ([`AttState`]), and `mirror/status/<folder>` (the
//! last run into a folder, by its path, for `convos status`).

use super::MirrorReport;
use super::index::Entry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Key of the last run's status for the folder at `dir` (by path: `status` is asked
/// about the configured folder, which may be missing, so its identity is unknown).
pub fn status_key(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    format!("mirror/status/{}", crate::util::hex(&digest[..12]))
}

/// Key of a mirror folder's root record.
pub fn root_key(mid: &str) -> String {
    format!("mirror/{mid}")
}

/// Key of a month's index entries.
pub fn month_key(mid: &str, month: &str) -> String {
    format!("mirror/{mid}/index/{month}")
}

/// Key of a copied attachment's record.
pub fn att_key(mid: &str, name: &str) -> String {
    format!("mirror/{mid}/att/{name}")
}

/// A mirror folder's record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Root {
    /// Where the folder was when last mirrored (for information: the folder may move).
    pub dir: PathBuf,
    /// A full pass over the archive finished: later runs may do only what changed.
    pub complete: bool,
    /// Months that have index entries.
    pub months: BTreeSet<String>,
    /// Conversations a run could not finish (an unreadable note, a stopped run): done
    /// first in the next run.
    pub pending: BTreeSet<String>,
    /// Hash of the `index.md` last written.
    pub index_hash: String,
    /// The archive's change feed up to this sequence number is mirrored (or listed in
    /// `pending`): a [`super::Scope::Feed`] run reads the feed after it. Saved together
    /// with `pending`, so a change is never skipped; `None` until a run sets it.
    #[serde(default)]
    pub feed_mark: Option<u64>,
}

/// An attachment copied into the mirror.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttState {
    /// SHA-256 of the bytes copied.
    pub sha256: String,
}

/// A month's index entries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Month {
    /// The entries.
    pub entries: Vec<Entry>,
}

/// The mirror's state for `convos status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// The folder of the last run.
    pub dir: PathBuf,
    /// Notes in the folder's index (notes the user deleted are not counted).
    pub notes: u64,
    /// When a run last brought the folder up to date (epoch seconds).
    pub last_update: Option<f64>,
    /// Why the last run failed, when it did.
    pub last_error: Option<String>,
    /// When the last run ended (epoch seconds).
    pub last_run: Option<f64>,
    /// What the last run did.
    pub last_report: Option<MirrorReport>,
}
