//! Keeping the archive private: folders 0700 and files 0600 (no group or other access),
//! whatever the umask.
//!
//! The `convos` binary sets its umask to 077 at start, so everything it and its crates
//! create (sled's database files and snapshots, attachments, the lock file) is private from
//! the first byte. This module covers the rest: the archive opened by other code (tests,
//! other binaries), and archives written by an older convos under a umask of 022, which
//! are fixed when opened.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Group and other permission bits.
const LOOSE: u32 = 0o077;

/// Creates `dir` and any missing parents with mode 0700 (folders that already exist keep
/// their mode: a data dir the user chose is theirs).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Whether `path` (not following a symlink) gives group or others any access.
fn is_loose(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .is_ok_and(|m| !m.file_type().is_symlink() && m.permissions().mode() & LOOSE != 0)
}

/// Whether the archive in `dir` looks readable by others: the archive folder, its `db`
/// and `blobs` folders, or a file directly in `db` (where sled keeps the data). Deeper
/// entries are not looked at on every open: they sit behind these folders.
pub fn looks_loose(dir: &Path) -> bool {
    if is_loose(dir) || is_loose(&dir.join("db")) || is_loose(&dir.join("blobs")) {
        return true;
    }
    fs::read_dir(dir.join("db"))
        .map(|entries| entries.flatten().any(|e| is_loose(&e.path())))
        .unwrap_or(false)
}

/// Removes group and other access from `dir` and everything under it (symlinks are left
/// alone, not followed). Returns how many entries were changed.
pub fn make_private(dir: &Path) -> io::Result<u64> {
    let mut changed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & LOOSE != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & !LOOSE & 0o7777))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn creates_missing_folders_0700_and_leaves_existing_ones() {
        let root = tempfile::tempdir().expect("tempdir");
        let existing = root.path().join("mine");
        fs::create_dir(&existing).expect("mkdir");
        fs::set_permissions(&existing, fs::Permissions::from_mode(0o755)).expect("chmod");
        let deep = existing.join("a/b");
        create_private_dir(&deep).expect("create");
        assert_eq!(mode(&existing), 0o755);
        assert_eq!(mode(&existing.join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        create_private_dir(&deep).expect("exists already");
    }

    #[test]
    fn a_loose_archive_is_seen_and_made_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("archive");
        for d in ["db", "blobs/ab"] {
            fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        fs::write(dir.join("db/db"), b"x").expect("write");
        fs::write(dir.join("blobs/ab/cdef"), b"y").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("blobs/link")).expect("symlink");
        for (p, m) in [
            ("", 0o700),
            ("db", 0o700),
            ("blobs", 0o700),
            ("blobs/ab", 0o755),
            ("db/db", 0o600),
            ("blobs/ab/cdef", 0o644),
        ] {
            fs::set_permissions(dir.join(p), fs::Permissions::from_mode(m)).expect("chmod");
        }
        // A loose attachment behind private folders is not looked for on every open…
        assert!(!looks_loose(&dir));
        // …but a loose database file is.
        fs::set_permissions(dir.join("db/db"), fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(looks_loose(&dir));
        assert_eq!(make_private(&dir).expect("chmod -R"), 3);
        assert!(!looks_loose(&dir));
        assert_eq!(mode(&dir.join("blobs/ab")), 0o700);
        assert_eq!(mode(&dir.join("blobs/ab/cdef")), 0o600);
        assert_eq!(mode(&dir.join("db/db")), 0o600);
        assert_eq!(make_private(&dir).expect("again"), 0);
    }
}
