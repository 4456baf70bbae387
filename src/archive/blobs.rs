//! Content-addressed attachment bytes: one file per SHA-256 under `blobs/ab/cdef…`,
//! written to a temporary file, synced, then renamed so a crash never leaves a
//! partial blob under its final name.
//!
//! A rename is durable only once its directory is synced. Syncing after every blob
//! would cost a disk flush each, so the store remembers the directories it changed
//! and a unit of work (an import, a sync run) makes them durable once, at its end,
//! with [`BlobStore::sync_dirty`], before it records itself as done.

use crate::util::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    /// Directories with renames or new entries not yet synced (shared by clones).
    dirty: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl BlobStore {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("tmp"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            dirty: Arc::default(),
        })
    }

    fn mark_dirty(&self, dir: PathBuf) {
        // A poisoned lock only means another thread panicked while inserting; the set
        // itself is still a valid set of paths.
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty.insert(dir);
    }

    /// Directories changed since the last [`Self::sync_dirty`].
    pub fn dirty_dirs(&self) -> Vec<PathBuf> {
        let dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty.iter().cloned().collect()
    }

    /// Syncs every directory changed since the last call, so the blobs renamed into
    /// them survive a crash; returns how many were synced. Call it at the end of a
    /// unit of work, before recording the unit as done. On failure the directories
    /// not yet synced stay marked for the next call.
    pub fn sync_dirty(&self) -> io::Result<usize> {
        let pending = {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *dirty)
        };
        let mut synced = 0;
        let mut rest = pending.into_iter();
        while let Some(dir) = rest.next() {
            if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                dirty.insert(dir);
                dirty.extend(rest);
                return Err(e);
            }
            synced += 1;
        }
        Ok(synced)
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
            if !dest.is_file() {
                tmp.sync_all()?;
                let parent = dest.parent().unwrap_or(&self.dir).to_path_buf();
                if !parent.is_dir() {
                    fs::create_dir_all(&parent)?;
                    // The new `ab/` entry lives in the store's own directory.
                    self.mark_dirty(self.dir.clone());
                }
                fs::rename(&tmp_path, &dest)?;
                self.mark_dirty(parent);
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
