//! The Markdown mirror: the archive as a folder of notes (an Obsidian vault, or any
//! Markdown editor's folder), brought up to date incrementally, keeping what the user
//! adds to the notes.
//!
//! - One note per conversation, rendered as `export --format md` renders it, with the
//!   front matter described in `note.rs` (`id`, `url`, `title`, `aliases`, `created`,
//!   `updated`, `model`, `project`, `gizmo_id`, `archived`, `deleted_remotely`);
//!   attachments copied once into `attachments/` and linked relatively; a project's
//!   conversations in a sub-folder named after the project; `index.md` lists every
//!   conversation by creation month (so updates move no line), with Markdown links any
//!   reader resolves.
//! - A note's file name is chosen when it is first written and never changes. When a
//!   conversation moves to another project its note moves to that project's folder
//!   under the same name: names are unique across the whole mirror, and Obsidian
//!   resolves `[[name]]` links by name wherever the note is, so links keep working
//!   while the folders keep telling the truth about projects (git records a rename).
//!   A move never replaces a file of the user's: then the note stays where it is.
//! - What the user adds is kept: everything below [`MARKER`] and every front-matter key
//!   convos does not own (`tags` is seeded with `[chatgpt]` once, then it is theirs).
//!   If the user edited convos' part (compared by value, so Obsidian re-quoting a
//!   property is no edit), or damaged it (malformed front matter, the marker line
//!   removed), their version is saved under `.convos/conflicts/` before the rewrite,
//!   with one warning naming it. A note the user deleted stays deleted until
//!   [`Scope::Rebuild`].
//! - Writes are minimal (a note is written only when its bytes change; nothing volatile
//!   is written) and atomic (temp file plus rename in the same folder; synced first
//!   when the note holds the user's words); links inside the mirror are never followed
//!   for writing. New files get the user's permissions ([`Modes`]), not the archive's.
//! - The mirror's memory lives in the archive (see `state.rs`), keyed by the folder's
//!   identity in `.convos/mirror-id`: which version each note shows, its name, a hash
//!   of what convos last wrote, the index entries by month. Updating one conversation
//!   writes its note, its new attachments and `index.md` (when a line of it changed),
//!   and reads only that note (and the 33-byte identity file). A folder whose identity
//!   is gone starts afresh and adopts the notes already there by name and id.
//! - What to update comes from the archive's change feed ([`Scope::Feed`]): each folder
//!   keeps its own mark in its state, moved on only together with the list of what a
//!   run left unfinished, so a change is never skipped; a folder without a mark gets a
//!   full run (the mark taken before it starts).
//! - Faults: a missing, read-only or full folder stops the run with a
//!   [`MirrorError`] recorded for [`status`]; what was written stays recorded, the rest
//!   is done by the next run (a first run stays a full one until one finishes). One
//!   unreadable note is that conversation's error, retried by the next run.
//!
//! Everything here is blocking I/O: async callers use `spawn_blocking`.

mod files;
mod index;
mod names;
mod note;
mod state;

pub use files::Modes;
pub use note::MARKER;
pub use state::MirrorStatus;

use crate::archive::{Archive, ArchiveError};
use crate::model::time::secs_to_rfc3339;
use crate::render::markdown::{self, AttachmentLinks};
use crate::render::view::{self, AttachmentView, ConversationView};
use files::{Kind, PathProblem};
use index::Entry;
use names::{ATTACHMENTS, CONTROL, INDEX};
use note::{Damage, Existing, Owned};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use state::{AttState, Month, Root};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The file in `.convos/` naming the folder's identity.
const ID_FILE: &str = "mirror-id";
/// Where the user's versions of edited notes are saved.
const CONFLICTS: &str = ".convos/conflicts";
/// A long run records its progress this often (notes), so a crash costs little.
const SAVE_EVERY: u64 = 1000;
/// Problems listed in a report (the counts are complete).
const MAX_PROBLEMS: usize = 20;

/// How to run the mirror.
#[derive(Clone, Debug, Default)]
pub struct MirrorOptions {
    /// The data folder: the mirror may be neither inside it nor around it (the archive's
    /// own folder is always checked).
    pub data_dir: Option<PathBuf>,
    /// Permissions of new files and folders.
    pub modes: Modes,
    /// Create the mirror folder when it is missing but its parent exists (an explicit
    /// `convos mirror --dir`); otherwise a missing folder is an error, so an unmounted
    /// drive is never written under.
    pub create_folder: bool,
}

/// Which conversations a run brings up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// What the archive's change feed lists after this folder's mark, plus any a previous
    /// run left unfinished; the mark then moves on, saved with the folder's state (so a
    /// run that stops part way never skips a change). A full run when the folder has no
    /// mark yet (the mark is taken before it starts).
    Feed,
    /// These conversations (from the archive's change feed), plus any a previous run
    /// left unfinished. The first run into a folder is always a full one.
    Changed(Vec<String>),
    /// Every conversation; notes the user deleted stay deleted.
    All,
    /// Every conversation, every note and attachment checked on disk: notes the user
    /// deleted are recreated, `index.md` rewritten.
    Rebuild,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorReport {
    /// Conversations considered.
    pub conversations: u64,
    /// Notes written (created, updated, recreated or moved).
    pub written: u64,
    /// Of those, notes created.
    pub created: u64,
    /// Notes already up to date.
    pub unchanged: u64,
    /// Notes left alone: deleted by the user, or a link or folder where a note belongs.
    pub skipped: u64,
    /// Notes whose convos-owned part the user had edited (their version was saved).
    pub conflicts: u64,
    /// Conversations that could not be mirrored (retried by the next run).
    pub errors: u64,
    /// Attachments copied.
    pub attachments_copied: u64,
    /// Whether `index.md` was written.
    pub index_written: bool,
    /// Notes read from the mirror folder.
    pub notes_read: u64,
    /// Files written to the mirror folder (notes, attachments, index, saved conflicts).
    pub files_written: u64,
    /// Whether every conversation was considered.
    pub full: bool,
    /// The first problems, one line each.
    pub problems: Vec<String>,
}

/// Why a run failed. Notes written before the failure stay written and recorded; the
/// next run continues from there.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The mirror folder is the data folder, inside it, or around it.
    #[error(
        "the mirror folder {mirror} is {} the data folder {data}: the mirror is your notes, \
         the data folder is convos' private archive; choose a mirror folder outside it (for \
         example a folder in your notes vault)",
        if *.inside { "inside" } else { "around" }
    )]
    Overlap {
        /// The mirror folder.
        mirror: PathBuf,
        /// The protected folder.
        data: PathBuf,
        /// Inside (true) or around (false).
        inside: bool,
    },
    /// The mirror folder does not exist.
    #[error("the mirror folder {0} does not exist: create it, or check that its drive is mounted")]
    FolderMissing(PathBuf),
    /// The mirror path is not a folder.
    #[error("the mirror folder {0} is not a folder")]
    NotAFolder(PathBuf),
    /// The folder cannot be written (read-only, full, no permission…).
    #[error("cannot write to the mirror folder: {path}: {source}")]
    Folder {
        /// What was being written.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The run was asked to stop (shutdown).
    #[error("the mirror update was stopped")]
    Cancelled,
}

/// The mirror of one archive into one folder.
#[derive(Clone, Debug)]
pub struct Mirror {
    archive: Archive,
    dir: PathBuf,
    options: MirrorOptions,
}

/// Checks that `mirror` can hold a mirror of an archive whose data lives in `protected`
/// folders: it may be neither inside one nor around one.
pub fn check_location<'a>(
    mirror: &Path,
    protected: impl IntoIterator<Item = &'a Path>,
) -> Result<(), MirrorError> {
    for p in protected {
        if let Some(o) = names::overlap(mirror, p) {
            return Err(MirrorError::Overlap {
                mirror: mirror.to_path_buf(),
                data: p.to_path_buf(),
                inside: o == names::Overlap::Inside,
            });
        }
    }
    Ok(())
}

/// The last run's status for the mirror folder `dir`, for `convos status`.
pub fn status(archive: &Archive, dir: &Path) -> Result<Option<MirrorStatus>, ArchiveError> {
    archive.state(&state::status_key(dir))
}

impl Mirror {
    /// A mirror of `archive` into `dir`; refuses a folder inside or around the archive
    /// or `options.data_dir`.
    pub fn new(
        archive: Archive,
        dir: impl Into<PathBuf>,
        options: MirrorOptions,
    ) -> Result<Self, MirrorError> {
        let dir = dir.into();
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().unwrap_or_default().join(dir)
        };
        let protected: Vec<&Path> = std::iter::once(archive.dir())
            .chain(options.data_dir.as_deref())
            .collect();
        check_location(&dir, protected)?;
        Ok(Self {
            archive,
            dir,
            options,
        })
    }

    /// The mirror folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Brings the mirror up to date for `scope`; `now` is the time recorded as the last
    /// update. The outcome, error included, is saved for [`status`] (in the archive,
    /// unflushed: the caller flushes as it does after any unit of work). Stops at the
    /// next note once `cancel` is set.
    pub fn run(
        &self,
        scope: Scope,
        now: f64,
        cancel: &AtomicBool,
    ) -> Result<MirrorReport, MirrorError> {
        let result = self.run_inner(scope, now, cancel);
        let key = state::status_key(&self.dir);
        let mut st: MirrorStatus = self.archive.state(&key).ok().flatten().unwrap_or_default();
        st.dir = self.dir.clone();
        st.last_run = Some(now);
        match &result {
            Ok((report, notes)) => {
                st.notes = *notes;
                st.last_update = Some(now);
                st.last_error = None;
                st.last_report = Some(report.clone());
            }
            Err(MirrorError::Cancelled) => {}
            Err(e) => st.last_error = Some(e.to_string()),
        }
        if let Err(e) = self.archive.set_state(&key, &st) {
            tracing::warn!("cannot record the mirror's status in the archive: {e}");
        }
        result.map(|(r, _)| r)
    }

    fn run_inner(
        &self,
        scope: Scope,
        now: f64,
        cancel: &AtomicBool,
    ) -> Result<(MirrorReport, u64), MirrorError> {
        self.check_folder()?;
        let mid = self.identity()?;
        let mut root: Root = self
            .archive
            .state(&state::root_key(&mid))?
            .unwrap_or_default();
        root.dir = self.dir.clone();
        let mut entries: HashMap<String, Entry> = HashMap::new();
        for month in &root.months {
            let m: Month = self
                .archive
                .state(&state::month_key(&mid, month))?
                .unwrap_or_default();
            for e in m.entries {
                entries.insert(e.id.clone(), e);
            }
        }
        let rebuild = scope == Scope::Rebuild;
        let full = match scope {
            Scope::Rebuild | Scope::All => true,
            Scope::Feed => !root.complete || root.feed_mark.is_none(),
            Scope::Changed(_) => !root.complete,
        };
        // How far the change feed is covered once this run's work is recorded: a full
        // run covers what was in the feed before it started.
        let mut feed_mark = root.feed_mark;
        let ids: Vec<String> = if full {
            feed_mark = Some(self.archive.last_change_seq()?);
            let mut ids = Vec::with_capacity(self.archive.len());
            for rec in self.archive.iter_newest_first() {
                ids.push(rec?.summary.id);
            }
            ids
        } else {
            let changed = match scope {
                Scope::Changed(ids) => ids,
                _ => {
                    let mut ids = Vec::new();
                    for change in self.archive.changes_since(feed_mark.unwrap_or(0)) {
                        let (seq, id) = change?;
                        feed_mark = Some(seq);
                        ids.push(id);
                    }
                    ids
                }
            };
            // The unfinished ones stay recorded until the run's end (a crash meanwhile
            // must not lose them).
            let mut seen = HashSet::new();
            root.pending
                .iter()
                .cloned()
                .chain(changed)
                .filter(|id| seen.insert(id.clone()))
                .collect()
        };
        let taken = entries
            .values()
            .map(|e| file_part(&e.path).to_lowercase())
            .chain([INDEX.to_owned()])
            .collect();
        if full {
            self.remove_stale_temps(&entries);
        }
        let mut run = Run {
            mid,
            entries,
            dirty: BTreeSet::new(),
            taken,
            rebuild,
            now,
            report: MirrorReport {
                full,
                ..MirrorReport::default()
            },
            failed: BTreeSet::new(),
        };
        let mut stopped: Option<MirrorError> = None;
        let mut done = 0usize;
        for id in &ids {
            if cancel.load(Ordering::Relaxed) {
                stopped = Some(MirrorError::Cancelled);
                break;
            }
            match self.note(&mut run, id) {
                Ok(()) => {}
                Err(NoteError::Failed(why)) => {
                    run.report.errors += 1;
                    run.problem(format!("conversation {id}: {why}"));
                    tracing::warn!("mirror: conversation {id} was not mirrored: {why}");
                    run.failed.insert(id.clone());
                }
                Err(NoteError::Skip(why)) => {
                    run.report.skipped += 1;
                    run.problem(format!("conversation {id}: {why}"));
                    tracing::warn!("mirror: conversation {id} is left as it is: {why}");
                }
                Err(NoteError::Stop(e)) => {
                    run.failed.insert(id.clone());
                    stopped = Some(e);
                    break;
                }
            }
            done += 1;
            if (done as u64).is_multiple_of(SAVE_EVERY) {
                self.save(&mut root, &mut run)?;
            }
        }
        match (&stopped, full) {
            // What a partial run did not reach is done first next time, and the mark
            // moves on with it.
            (Some(_), false) => {
                run.failed.extend(ids[done..].iter().cloned());
                root.feed_mark = feed_mark;
            }
            // A full run that stopped is done again in full when the folder was never
            // complete; otherwise the next run takes up from the old mark and whatever
            // was pending.
            (Some(_), true) => run.failed.extend(root.pending.iter().cloned()),
            (None, _) => root.feed_mark = feed_mark,
        }
        root.pending = std::mem::take(&mut run.failed);
        if stopped.is_none() && full {
            root.complete = true;
        }
        self.save(&mut root, &mut run)?;
        self.archive.set_state(&state::root_key(&run.mid), &root)?;
        if let Some(e) = stopped {
            return Err(e);
        }
        let doc = index::render(&run.entries);
        let hash = hash_hex(doc.as_bytes());
        if rebuild || hash != root.index_hash {
            let path = self.dir.join(INDEX);
            files::write_bytes(
                &self.dir,
                INDEX,
                self.options.modes.file,
                false,
                doc.as_bytes(),
            )
            .map_err(|source| MirrorError::Folder { path, source })?;
            run.report.index_written = true;
            run.report.files_written += 1;
            root.index_hash = hash;
        }
        // Not flushed here: the caller's flush (the daemon's after each unit, the
        // archive's on close) makes it durable, and a record lost in a crash only costs
        // the next run a read: it adopts the notes already written as they are.
        self.archive.set_state(&state::root_key(&run.mid), &root)?;
        let notes = run.entries.values().filter(|e| !e.hidden).count() as u64;
        tracing::debug!(
            "mirror {}: {} written, {} unchanged, {} skipped, {} conflicts, {} errors",
            self.dir.display(),
            run.report.written,
            run.report.unchanged,
            run.report.skipped,
            run.report.conflicts,
            run.report.errors
        );
        Ok((run.report, notes))
    }

    /// The mirror folder exists (or is created, when allowed) and is a folder.
    fn check_folder(&self) -> Result<(), MirrorError> {
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(MirrorError::NotAFolder(self.dir.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent_exists = self.dir.parent().is_some_and(Path::is_dir);
                if !(self.options.create_folder && parent_exists) {
                    return Err(MirrorError::FolderMissing(self.dir.clone()));
                }
                std::fs::create_dir(&self.dir)
                    .and_then(|()| {
                        std::fs::set_permissions(
                            &self.dir,
                            std::os::unix::fs::PermissionsExt::from_mode(self.options.modes.dir),
                        )
                    })
                    .map_err(|source| MirrorError::Folder {
                        path: self.dir.clone(),
                        source,
                    })
            }
            Err(source) => Err(MirrorError::Folder {
                path: self.dir.clone(),
                source,
            }),
        }
    }

    /// The folder's identity from `.convos/mirror-id`, created for a new folder. A folder
    /// whose identity is gone (wiped, or replaced) starts afresh: a full run that adopts
    /// notes already there by name.
    fn identity(&self) -> Result<String, MirrorError> {
        let path = self.dir.join(CONTROL).join(ID_FILE);
        if let Ok(Some((bytes, _))) = files::read_regular(&path) {
            let id = String::from_utf8_lossy(&bytes).trim().to_owned();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id);
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let folder_err = |path: PathBuf, source| MirrorError::Folder { path, source };
        let dir =
            files::ensure_dir(&self.dir, CONTROL, self.options.modes.dir).map_err(|p| match p {
                PathProblem::Io(path, source) => folder_err(path, source),
                other => folder_err(self.dir.join(CONTROL), io::Error::other(other.to_string())),
            })?;
        let text = format!("{id}\n");
        files::write_bytes(
            &dir,
            ID_FILE,
            self.options.modes.file,
            true,
            text.as_bytes(),
        )
        .map_err(|source| folder_err(path, source))?;
        Ok(id)
    }

    fn remove_stale_temps(&self, entries: &HashMap<String, Entry>) {
        let folders: BTreeSet<&str> = entries
            .values()
            .filter_map(|e| e.path.rsplit_once('/').map(|(f, _)| f))
            .collect();
        let mut removed = files::remove_stale_temps(&self.dir);
        removed += files::remove_stale_temps(&self.dir.join(ATTACHMENTS));
        for f in folders {
            removed += files::remove_stale_temps(&self.dir.join(f));
        }
        if removed > 0 {
            tracing::info!(
                "mirror: removed {removed} temporary files an interrupted run left in {}",
                self.dir.display()
            );
        }
    }

    /// Saves the index entries of the months that changed.
    fn save(&self, root: &mut Root, run: &mut Run) -> Result<(), MirrorError> {
        if run.dirty.is_empty() {
            return Ok(());
        }
        let mut by_month: HashMap<String, Vec<Entry>> = HashMap::new();
        for e in run.entries.values() {
            let m = e.month();
            if run.dirty.contains(&m) {
                by_month.entry(m).or_default().push(e.clone());
            }
        }
        for month in std::mem::take(&mut run.dirty) {
            let mut entries = by_month.remove(&month).unwrap_or_default();
            entries.sort_by(|a, b| a.id.cmp(&b.id));
            if entries.is_empty() {
                root.months.remove(&month);
            } else {
                root.months.insert(month.clone());
            }
            self.archive
                .set_state(&state::month_key(&run.mid, &month), &Month { entries })?;
        }
        self.archive.set_state(&state::root_key(&run.mid), root)?;
        Ok(())
    }

    /// Brings one conversation's note up to date.
    fn note(&self, run: &mut Run, id: &str) -> Result<(), NoteError> {
        let stored = match self.archive.get(id) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => return Err(NoteError::Failed(e.to_string())),
        };
        let view = view::build(&self.archive, &stored)
            .map_err(|e| NoteError::Failed(format!("cannot be rendered: {e}")))?;
        run.report.conversations += 1;
        let old: Option<NoteState> = run.entries.get(id).map(NoteState::of);
        let mut folder = names::project_folder(view.project.as_deref());
        let version = stored.record.version;
        if let Some(s) = &old
            && s.folder != folder
            && (!s.user_deleted || run.rebuild)
            && !self.free_for(run, &names::note_path(&folder, &s.name), id)
        {
            tracing::warn!(
                "mirror: the note {} stays where it is: {} already holds a file of that name",
                names::note_path(&s.folder, &s.name),
                if folder.is_empty() {
                    "the mirror folder"
                } else {
                    &folder
                },
            );
            folder = s.folder.clone();
        }

        if let Some(s) = &old
            && s.user_deleted
            && !run.rebuild
        {
            run.report.skipped += 1;
            let rel = names::note_path(&s.folder, &s.name);
            run.set_entry(entry(&view, &rel, true, s.version, &s.hash));
            return Ok(());
        }

        // The note's name: kept from its first writing, else chosen now (a note already
        // there with this conversation's id, from a run whose state was lost, is adopted).
        let mut adopted: Option<(Vec<u8>, u32)> = None;
        let name = match &old {
            Some(s) => s.name.clone(),
            None => loop {
                let name = crate::render::filename::file_name(&view, &mut run.taken);
                let path = self.dir.join(&folder).join(&name);
                match files::kind(&path) {
                    Ok(Kind::Missing) => break name,
                    Ok(Kind::File) => {
                        if let Ok(Some((bytes, mode))) = files::read_regular(&path) {
                            run.report.notes_read += 1;
                            let theirs = std::str::from_utf8(&bytes)
                                .ok()
                                .and_then(|t| note::parse(t).id);
                            if theirs.as_deref() == Some(id) {
                                adopted = Some((bytes, mode));
                                break name;
                            }
                        }
                    }
                    Ok(Kind::Other) => {}
                    Err(e) => {
                        return Err(NoteError::Failed(format!("{}: {e}", path.display())));
                    }
                }
            },
        };
        let rel = names::note_path(&folder, &name);

        let links = Links::new(&folder);
        let rendered = markdown::render(&view, &links);
        let owned = note::owned_from_render(&rendered);
        if let Some(s) = &old
            && !run.rebuild
            && s.hash == owned.hash
            && s.folder == folder
        {
            run.report.unchanged += 1;
            run.set_entry(entry(&view, &rel, false, version, &s.hash));
            return Ok(());
        }

        for (att, sha) in links.wanted.into_inner() {
            self.attachment(run, &att, &sha)?;
        }

        // The note as it is now: at its recorded place, or already moved (a run that
        // stopped between moving a note and recording it).
        let mut current_rel = old.as_ref().map(|s| names::note_path(&s.folder, &s.name));
        let mut found = adopted;
        if found.is_none()
            && let Some(cur) = current_rel.clone()
        {
            found = self.read_note(run, &cur)?;
            if found.is_none() && cur != rel {
                found = self
                    .read_note(run, &rel)?
                    .filter(|(b, _)| parse_bytes(b).and_then(|e| e.id).as_deref() == Some(id));
                if found.is_some() {
                    current_rel = Some(rel.clone());
                }
            }
            if found.is_none() && !run.rebuild {
                tracing::info!(
                    "mirror: the note {cur} was deleted; it stays deleted (`convos mirror \
                     --rebuild` brings it back)"
                );
                let (v, h) = old
                    .as_ref()
                    .map(|s| (s.version, s.hash.clone()))
                    .unwrap_or_default();
                run.report.skipped += 1;
                run.set_entry(entry(&view, &cur, true, v, &h));
                return Ok(());
            }
        }
        let (existing, mode) = match &found {
            // Permissions the user gave the note are kept (special bits are not).
            Some((bytes, mode)) => match parse_bytes(bytes) {
                Some(e) => (Some(e), *mode & 0o777),
                None => {
                    return Err(NoteError::Failed(format!(
                        "the note {} is not UTF-8 text; convos leaves it as it is until it is",
                        current_rel.as_deref().unwrap_or(&rel)
                    )));
                }
            },
            None => (None, self.options.modes.file),
        };

        let text = self.compose(
            run,
            &owned,
            old.as_ref(),
            existing.as_ref(),
            found.as_ref(),
            &rel,
        )?;
        let moved = current_rel.as_deref().is_some_and(|c| c != rel);
        let same = found.as_ref().is_some_and(|(b, _)| b == text.as_bytes());
        if same && !moved {
            run.report.unchanged += 1;
        } else {
            let dir = self.folder(&folder)?;
            let durable = existing.as_ref().is_some_and(Existing::has_user_content);
            files::write_bytes(&dir, &name, mode, durable, text.as_bytes())
                .map_err(|e| self.write_error(dir.join(&name), e))?;
            run.report.files_written += 1;
            run.report.written += 1;
            if old.is_none() && found.is_none() {
                run.report.created += 1;
            }
            if let Some(cur) = current_rel.as_deref().filter(|_| moved) {
                let _ = std::fs::remove_file(self.dir.join(cur));
                if let Some((old_folder, _)) = cur.rsplit_once('/') {
                    // Only an empty folder goes; one holding anything else stays.
                    let _ = std::fs::remove_dir(self.dir.join(old_folder));
                }
            }
        }
        run.set_entry(entry(&view, &rel, false, version, &owned.hash));
        Ok(())
    }

    /// The note's new text, keeping the user's front-matter keys and section. A
    /// convos-owned part the user edited (or damaged) is saved first.
    fn compose(
        &self,
        run: &mut Run,
        owned: &Owned,
        old: Option<&NoteState>,
        existing: Option<&Existing>,
        found: Option<&(Vec<u8>, u32)>,
        rel: &str,
    ) -> Result<String, NoteError> {
        let Some(e) = existing else {
            return Ok(note::compose(owned, note::SEED_USER_KEYS, ""));
        };
        let conflict = match (&e.damage, &e.hash) {
            (Some(d), _) => Some(Conflict::Damaged(d.clone())),
            // Neither what convos last wrote nor what it writes now (a run that stopped
            // after writing but before recording): the user changed it.
            (None, Some(h)) if old.is_none_or(|s| s.hash != *h) && *h != owned.hash => {
                Some(Conflict::Edited)
            }
            _ => None,
        };
        let (user_front, user_section) = match &e.damage {
            None => (e.user_front.as_str(), e.user_section.as_str()),
            Some(_) => (note::SEED_USER_KEYS, e.user_section.as_str()),
        };
        if let Some(c) = conflict {
            let bytes = found.map(|(b, _)| b.as_slice()).unwrap_or_default();
            let saved = self.save_conflict(run, rel, bytes)?;
            run.report.conflicts += 1;
            match c {
                Conflict::Edited => tracing::warn!(
                    "mirror: the part of {rel} above the convos line was edited; your version \
                     is saved as {saved}, and the note shows the conversation again (your \
                     notes below the line and your properties are kept)"
                ),
                Conflict::Damaged(d @ Damage::MissingMarker) => tracing::warn!(
                    "mirror: {d} in {rel}, so convos cannot tell your notes from its own; your \
                     version is saved as {saved}: copy your notes back below the line"
                ),
                Conflict::Damaged(d @ Damage::MalformedFrontMatter(_)) => tracing::warn!(
                    "mirror: {rel}: {d}; your version is saved as {saved}, the properties are \
                     rewritten and your notes below the line are kept"
                ),
            }
        }
        Ok(note::compose(owned, user_front, user_section))
    }

    /// Saves the user's version of a note under `.convos/conflicts/`; returns its path
    /// from the mirror's root.
    fn save_conflict(&self, run: &mut Run, rel: &str, bytes: &[u8]) -> Result<String, NoteError> {
        let dir = self.folder(CONFLICTS)?;
        let stem = file_part(rel).strip_suffix(".md").unwrap_or(file_part(rel));
        let stamp = secs_to_rfc3339(run.now)
            .map(|t| {
                t.replace(':', "")
                    .replace('T', " ")
                    .chars()
                    .take(17)
                    .collect::<String>()
            })
            .unwrap_or_default();
        let mut n = 1;
        let name = loop {
            let name = match n {
                1 => format!("{stem} {stamp}.md"),
                n => format!("{stem} {stamp} {n}.md"),
            };
            if files::kind(&dir.join(&name)).is_ok_and(|k| k == Kind::Missing) {
                break name;
            }
            n += 1;
        };
        files::write_bytes(&dir, &name, self.options.modes.file, true, bytes)
            .map_err(|e| self.write_error(dir.join(&name), e))?;
        run.report.files_written += 1;
        Ok(format!("{CONFLICTS}/{name}"))
    }

    /// Whether a note may be written at `rel`: nothing is there, or this conversation's
    /// own note (moved by a run that stopped before recording it).
    fn free_for(&self, run: &mut Run, rel: &str, id: &str) -> bool {
        match files::kind(&self.dir.join(rel)) {
            Ok(Kind::Missing) => true,
            Ok(Kind::File) => self
                .read_note(run, rel)
                .ok()
                .flatten()
                .and_then(|(b, _)| parse_bytes(&b))
                .and_then(|e| e.id)
                .is_some_and(|theirs| theirs == id),
            _ => false,
        }
    }

    /// Reads a note (`rel` from the root), not following links.
    fn read_note(&self, run: &mut Run, rel: &str) -> Result<Option<(Vec<u8>, u32)>, NoteError> {
        match files::read_regular(&self.dir.join(rel)) {
            Ok(r) => {
                if r.is_some() {
                    run.report.notes_read += 1;
                }
                Ok(r)
            }
            Err(p @ (PathProblem::Symlink(_) | PathProblem::WrongKind(..))) => {
                Err(NoteError::Skip(p.to_string()))
            }
            Err(p) => Err(NoteError::Failed(p.to_string())),
        }
    }

    /// A folder inside the mirror, created when missing; links refused.
    fn folder(&self, rel: &str) -> Result<PathBuf, NoteError> {
        files::ensure_dir(&self.dir, rel, self.options.modes.dir).map_err(|p| match p {
            PathProblem::Io(path, e) => self.write_error(path, e),
            other => NoteError::Skip(other.to_string()),
        })
    }

    /// A write failure: the whole folder's (full, read-only, its root refused) stops the
    /// run; one note's is that note's error.
    fn write_error(&self, path: PathBuf, e: io::Error) -> NoteError {
        let whole_folder = matches!(
            e.kind(),
            io::ErrorKind::StorageFull
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::QuotaExceeded
        ) || path.parent() == Some(self.dir.as_path())
            || path == self.dir;
        if whole_folder {
            NoteError::Stop(MirrorError::Folder { path, source: e })
        } else {
            NoteError::Failed(format!("cannot write {}: {e}", path.display()))
        }
    }

    /// Copies an attachment into `attachments/` unless it was copied before.
    fn attachment(&self, run: &mut Run, name: &str, sha: &str) -> Result<(), NoteError> {
        let key = state::att_key(&run.mid, name);
        let known: Option<AttState> = self.archive.state(&key).map_err(NoteError::archive)?;
        let dest = self.dir.join(ATTACHMENTS).join(name);
        if known.as_ref().is_some_and(|a| a.sha256 == sha) {
            let present = || {
                files::kind(&dest).is_ok_and(|k| k == Kind::File)
                    && std::fs::symlink_metadata(&dest).ok().map(|m| m.len())
                        == std::fs::metadata(self.archive.blob_path(sha))
                            .ok()
                            .map(|m| m.len())
            };
            // Copied once; only a rebuild looks whether it is still there.
            if !run.rebuild || present() {
                return Ok(());
            }
        }
        let mut src = match std::fs::File::open(self.archive.blob_path(sha)) {
            Ok(f) => f,
            Err(e) => {
                run.problem(format!(
                    "attachment {name}: its stored bytes cannot be read: {e}"
                ));
                tracing::warn!(
                    "mirror: attachment {name} is not copied: its stored bytes cannot be read ({e})"
                );
                return Ok(());
            }
        };
        let dir = self.folder(ATTACHMENTS)?;
        files::write_atomic(&dir, name, self.options.modes.file, false, &mut |f| {
            io::copy(&mut src, f).map(drop)
        })
        .map_err(|e| self.write_error(dir.join(name), e))?;
        run.report.attachments_copied += 1;
        run.report.files_written += 1;
        self.archive
            .set_state(
                &key,
                &AttState {
                    sha256: sha.to_owned(),
                },
            )
            .map_err(NoteError::archive)
    }
}

/// One run's working set.
struct Run {
    mid: String,
    entries: HashMap<String, Entry>,
    /// Months whose entries changed.
    dirty: BTreeSet<String>,
    /// Lowercased note names in use across the mirror.
    taken: HashSet<String>,
    rebuild: bool,
    now: f64,
    report: MirrorReport,
    failed: BTreeSet<String>,
}

impl Run {
    fn set_entry(&mut self, e: Entry) {
        if self.entries.get(&e.id) == Some(&e) {
            return;
        }
        if let Some(old) = self.entries.get(&e.id) {
            self.dirty.insert(old.month());
        }
        self.dirty.insert(e.month());
        self.entries.insert(e.id.clone(), e);
    }

    fn problem(&mut self, p: String) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(p);
        }
    }
}

/// Why a note's convos-owned part is saved before the rewrite.
enum Conflict {
    /// The user changed it.
    Edited,
    /// It cannot be read.
    Damaged(Damage),
}

/// Why one note was not brought up to date.
enum NoteError {
    /// This conversation only: counted, retried next run.
    Failed(String),
    /// Something of the user's is in the way (a link, a folder): left alone.
    Skip(String),
    /// The folder or the archive fails: the run stops.
    Stop(MirrorError),
}

impl NoteError {
    fn archive(e: ArchiveError) -> Self {
        NoteError::Stop(MirrorError::Archive(e))
    }
}

impl From<ArchiveError> for NoteError {
    fn from(e: ArchiveError) -> Self {
        NoteError::archive(e)
    }
}

/// Links attachments in the mirror's `attachments/` folder, collecting what to copy.
struct Links {
    prefix: &'static str,
    wanted: RefCell<Vec<(String, String)>>,
}

impl Links {
    fn new(folder: &str) -> Self {
        Self {
            prefix: if folder.is_empty() { "" } else { "../" },
            wanted: RefCell::new(Vec::new()),
        }
    }
}

impl AttachmentLinks for Links {
    fn link(&self, a: &AttachmentView) -> Option<String> {
        let sha = a.sha256.as_deref()?;
        let name = crate::render::filename::attachment_file_name(a);
        let link = format!("{}{ATTACHMENTS}/{name}", self.prefix);
        self.wanted.borrow_mut().push((name, sha.to_owned()));
        Some(link)
    }
}

/// What the mirror wrote for one conversation, as the note's code reads it.
#[derive(Clone, Debug, Default)]
struct NoteState {
    folder: String,
    name: String,
    version: i64,
    hash: String,
    user_deleted: bool,
}

impl NoteState {
    fn of(e: &Entry) -> Self {
        let (folder, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
        Self {
            folder: folder.to_owned(),
            name: name.to_owned(),
            version: e.version,
            hash: e.hash.clone(),
            user_deleted: e.hidden,
        }
    }
}

/// The record of a conversation's note: its index line and what was written.
fn entry(view: &ConversationView, rel: &str, hidden: bool, version: i64, hash: &str) -> Entry {
    let date = [&view.create_time, &view.update_time]
        .into_iter()
        .flatten()
        .find_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Entry {
        id: view.id.clone(),
        created: view
            .create_time
            .as_deref()
            .and_then(crate::model::time::parse_iso),
        date,
        path: rel.to_owned(),
        title: view.title.clone(),
        archived: view.is_archived,
        deleted_remotely: view.deleted_remotely,
        hidden,
        version,
        hash: hash.to_owned(),
    }
}

fn parse_bytes(bytes: &[u8]) -> Option<Existing> {
    std::str::from_utf8(bytes).ok().map(note::parse)
}

fn file_part(rel: &str) -> &str {
    rel.rsplit_once('/').map_or(rel, |(_, f)| f)
}

fn hash_hex(bytes: &[u8]) -> String {
    crate::util::hex(&Sha256::digest(bytes)[..16])
}
