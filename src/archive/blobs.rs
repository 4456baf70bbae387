//! Content-addressed attachment bytes: one file per SHA-256 under `blobs/ab/cdef…`,
//! written to a temporary file, then renamed so an interrupted write never leaves a
//! partial blob under its final name.
//!
//! Durability is paid once per unit of work (an import, a sync run), not once per
//! blob: a flush to the disk costs a fraction of a millisecond, and exports hold
//! thousands of small images. The store remembers the blobs and directories it changed
//! and [`BlobStore::sync_dirty`] makes them durable together, at the unit's end and
//! before the unit records itself as done: the blobs' bytes first (fsyncs spread over
//! several threads, so the disk sees them at once), then their directories.
//!
//! Until then a power loss can leave a renamed blob empty or short. A blob is only
//! ever trusted when its length is the one recorded for it, and one found with another
//! length is written again (see [`BlobStore::put`] and [`BlobStore::holds`]).

use crate::util::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Threads that fsync a unit's blobs: each waits on the disk, not the CPU, so more
/// than the cores keeps the device's queue full.
const SYNC_THREADS: usize = 8;

/// The blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    /// What changed since the last sync (shared by clones).
    dirty: Arc<Mutex<Dirty>>,
}

/// Changes not yet durable.
#[derive(Debug, Default)]
struct Dirty {
    /// Blobs renamed into place whose bytes are not synced yet.
    files: BTreeSet<PathBuf>,
    /// Directories with renames or new entries not yet synced.
    dirs: BTreeSet<PathBuf>,
}

impl BlobStore {
    /// Opens (creating) the store at `dir`. Temporary files left by a process that
    /// stopped mid-write are removed (only one process opens an archive at a time).
    pub fn open(dir: &Path) -> io::Result<Self> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            dirty: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Dirty> {
        // A poisoned lock only means another thread panicked while inserting; the sets
        // themselves are still valid sets of paths.
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark_dirty(&self, dir: PathBuf) {
        self.lock().dirs.insert(dir);
    }

    /// Directories changed since the last [`Self::sync_dirty`].
    pub fn dirty_dirs(&self) -> Vec<PathBuf> {
        self.lock().dirs.iter().cloned().collect()
    }

    /// Blobs written since the last [`Self::sync_dirty`] whose bytes are not synced.
    pub fn unsynced_blobs(&self) -> usize {
        self.lock().files.len()
    }

    /// Makes everything stored since the last call durable: the new blobs' bytes
    /// (fsynced together, on several threads), then the directories they were renamed
    /// into. Returns how many directories were synced. Call it at the end of a unit of
    /// work, before recording the unit as done. On failure what was not synced stays
    /// marked for the next call.
    pub fn sync_dirty(&self) -> io::Result<usize> {
        let pending = std::mem::take(&mut *self.lock());
        let files: Vec<PathBuf> = pending.files.iter().cloned().collect();
        if let Err(e) = sync_files(&files) {
            self.restore(pending);
            return Err(e);
        }
        let mut synced = 0;
        let mut rest = pending.dirs.iter();
        while let Some(dir) = rest.next() {
            if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
                let mut dirty = self.lock();
                dirty.dirs.insert(dir.clone());
                dirty.dirs.extend(rest.cloned());
                return Err(e);
            }
            synced += 1;
        }
        Ok(synced)
    }

    /// Puts changes a failed sync took back in the pending sets.
    fn restore(&self, pending: Dirty) {
        let mut dirty = self.lock();
        dirty.files.extend(pending.files);
        dirty.dirs.extend(pending.dirs);
    }

    /// Where the blob with this hash lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        self.dir.join(a).join(b)
    }

    /// Whether the blob is stored.
    pub fn contains(&self, sha256: &str) -> bool {
        sha256.len() == 64 && self.path(sha256).is_file()
    }

    /// Whether the blob is stored whole: present with the length recorded for it (a
    /// power loss before its sync can leave it empty or short).
    pub fn holds(&self, sha256: &str, size: u64) -> bool {
        sha256.len() == 64 && file_len(&self.path(sha256)) == Some(size)
    }

    /// Streams bytes in, returning their SHA-256 (hex) and size. Stored once per hash.
    pub fn put(&self, mut reader: impl Read) -> io::Result<(String, u64)> {
        let tmp_path = self.dir.join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = (|| {
            let mut tmp = File::create(&tmp_path)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
                tmp.write_all(&buf[..n])?;
                size += n as u64;
            }
            let sha = hex(&hasher.finalize());
            let dest = self.path(&sha);
            // A blob of another length under this hash is one a power loss cut short
            // before it was synced: replace it.
            if file_len(&dest) != Some(size) {
                drop(tmp);
                let parent = dest.parent().unwrap_or(&self.dir).to_path_buf();
                if !parent.is_dir() {
                    fs::create_dir_all(&parent)?;
                    // The new `ab/` entry lives in the store's own directory.
                    self.mark_dirty(self.dir.clone());
                }
                fs::rename(&tmp_path, &dest)?;
                let mut dirty = self.lock();
                dirty.files.insert(dest);
                dirty.dirs.insert(parent);
            }
            Ok((sha, size))
        })();
        // Gone already when it was renamed into place.
        let _ = fs::remove_file(&tmp_path);
        result
    }

    /// Opens a stored blob.
    pub fn open_blob(&self, sha256: &str) -> io::Result<File> {
        File::open(self.path(sha256))
    }
}

/// A regular file's length, `None` when it is missing or not a file.
fn file_len(path: &Path) -> Option<u64> {
    fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// Fsyncs files on up to [`SYNC_THREADS`] threads; the first failure is returned.
fn sync_files(files: &[PathBuf]) -> io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let per_thread = files.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .try_for_each(|f| File::open(f).and_then(|f| f.sync_all()))
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(io::Error::other("a blob sync thread panicked")))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_once_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let (a, n) = store.put(&b"hello"[..]).expect("put");
        assert_eq!(n, 5);
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let (b, _) = store.put(&b"hello"[..]).expect("put again");
        assert_eq!(a, b);
        assert!(store.contains(&a));
        assert_eq!(fs::read(store.path(&a)).expect("read"), b"hello");
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0
        );
    }

    /// `n` distinct contents whose blobs land in the same `ab/` directory.
    fn same_dir_contents(n: usize) -> Vec<Vec<u8>> {
        let prefix = |b: &[u8]| hex(&Sha256::digest(b))[..2].to_owned();
        let want = prefix(b"0");
        (0u32..)
            .map(|i| i.to_string().into_bytes())
            .filter(|b| prefix(b) == want)
            .take(n)
            .collect()
    }

    #[test]
    fn directories_are_synced_once_per_unit_not_once_per_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let clone = store.clone();
        let contents = same_dir_contents(4);
        for c in &contents[..3] {
            store.put(&c[..]).expect("put");
        }
        let (sha, _) = store.put(&contents[0][..]).expect("put again");
        let sub = store.path(&sha).parent().expect("parent").to_path_buf();
        // Three new blobs in a new `ab/`: that folder and the store's own, each once.
        assert_eq!(
            clone.dirty_dirs(),
            vec![dir.path().to_path_buf(), sub.clone()]
        );
        assert_eq!(clone.sync_dirty().expect("sync"), 2);
        assert!(store.dirty_dirs().is_empty());
        assert_eq!(store.sync_dirty().expect("nothing to sync"), 0);
        // A known blob changes nothing; a new one in an existing folder dirties only it.
        store.put(&contents[1][..]).expect("known");
        assert!(store.dirty_dirs().is_empty());
        store.put(&contents[3][..]).expect("new");
        assert_eq!(store.dirty_dirs(), vec![sub]);
        assert_eq!(store.sync_dirty().expect("sync"), 1);
    }

    #[test]
    fn blobs_are_not_synced_one_by_one_but_together_at_the_end_of_a_unit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        for i in 0..20u32 {
            store.put(&i.to_le_bytes()[..]).expect("put");
        }
        store.put(&0u32.to_le_bytes()[..]).expect("a known blob");
        assert_eq!(store.unsynced_blobs(), 20, "one pending sync per new blob");
        store.sync_dirty().expect("sync");
        assert_eq!(store.unsynced_blobs(), 0);
        assert!(store.dirty_dirs().is_empty());
    }

    #[test]
    fn a_blob_cut_short_by_a_power_loss_is_not_trusted_and_is_written_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let (sha, size) = store.put(&b"the whole picture"[..]).expect("put");
        assert!(store.holds(&sha, size));
        store.sync_dirty().expect("sync");
        // What a crash between the rename and the sync can leave: the name, not the bytes.
        fs::write(store.path(&sha), b"").expect("truncate");
        assert!(store.contains(&sha));
        assert!(
            !store.holds(&sha, size),
            "an empty blob is not the recorded one"
        );
        let (again, _) = store.put(&b"the whole picture"[..]).expect("put again");
        assert_eq!(again, sha);
        assert!(store.holds(&sha, size));
        assert_eq!(
            fs::read(store.path(&sha)).expect("read"),
            b"the whole picture"
        );
        assert_eq!(
            store.unsynced_blobs(),
            1,
            "the rewritten blob is synced with its unit"
        );
    }

    #[test]
    fn temporary_files_a_stopped_process_left_are_removed_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(BlobStore::open(dir.path()).expect("open"));
        fs::write(dir.path().join("tmp").join("123-abc"), b"half a blob").expect("leftover");
        BlobStore::open(dir.path()).expect("reopen");
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0
        );
    }

    #[test]
    fn a_failed_sync_keeps_the_directories_for_the_next_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let (sha, _) = store.put(&b"kept"[..]).expect("put");
        let sub = store.path(&sha).parent().expect("parent").to_path_buf();
        // Sorted before any hex folder, so it fails before `sub` is reached.
        let gone = dir.path().join("!gone");
        store.mark_dirty(gone.clone());
        assert!(store.sync_dirty().is_err());
        assert_eq!(store.dirty_dirs(), vec![gone.clone(), sub.clone()]);
        fs::create_dir(&gone).expect("mkdir");
        assert_eq!(store.sync_dirty().expect("sync"), 2);
    }
}
