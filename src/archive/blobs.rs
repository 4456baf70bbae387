//! Content-addressed attachment bytes: one file per SHA-256 under `blobs/ab/cdef…`,
//! written to a temporary file, synced, then renamed so a crash never leaves a
//! partial blob under its final name.

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("tmp"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
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
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(&tmp_path, &dest)?;
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

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
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
}
