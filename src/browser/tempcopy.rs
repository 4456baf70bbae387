//! A private temporary directory for copies of cookie databases.
//!
//! Browsers keep their SQLite cookie stores open (and locked), and the latest writes sit in
//! the `-wal` file, so the store is copied together with its `-wal`/`-shm` companions and the
//! copy is opened instead. The copies hold session cookies, so the directory is 0700, the
//! files 0600, and everything is deleted when the [`PrivateTempDir`] is dropped, also on error.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A directory only this user can enter, removed with its contents on drop.
#[derive(Debug)]
pub(crate) struct PrivateTempDir {
    path: PathBuf,
}

impl PrivateTempDir {
    /// Creates a fresh `convos-cookies-*` directory under `base`.
    pub fn new_in(base: &Path) -> io::Result<PrivateTempDir> {
        let mut last_err = None;
        for _ in 0..16 {
            let path = base.join(format!(
                "convos-cookies-{}-{:016x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            match create_private_dir(&path) {
                Ok(()) => return Ok(PrivateTempDir { path }),
                // Name taken (by a stale run or an attacker's pre-created dir): try another.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free temporary directory name")))
    }

    /// The directory's path.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies `src` into the directory as `name` (mode 0600) and returns the copy's path.
    pub fn copy_in(&self, src: &Path, name: &str) -> io::Result<PathBuf> {
        let dst = self.path.join(name);
        let mut from = File::open(src)?;
        let mut to = create_private_file(&dst)?;
        io::copy(&mut from, &mut to)?;
        to.sync_all()?;
        Ok(dst)
    }
}

impl Drop for PrivateTempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e,
                "could not remove the temporary copy of a cookie store");
        }
    }
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)
}

fn create_private_file(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Copies an SQLite database with its `-wal` and `-shm` files (when present) into `dir`,
/// returning the path of the copied database.
pub(crate) fn copy_sqlite(dir: &PrivateTempDir, db: &Path) -> io::Result<PathBuf> {
    let copy = dir.copy_in(db, "store.sqlite")?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = db.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        match dir.copy_in(&companion, &format!("store.sqlite{suffix}")) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_is_private_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src.db");
        fs::write(&src, b"data").unwrap();
        let dir = PrivateTempDir::new_in(base.path()).unwrap();
        let path = dir.path().to_path_buf();
        let copy = dir.copy_in(&src, "x").unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"data");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o700);
            assert_eq!(mode(&copy), 0o600);
        }
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn copies_wal_and_shm_when_present() {
        let base = tempfile::tempdir().unwrap();
        let db = base.path().join("cookies.sqlite");
        fs::write(&db, b"main").unwrap();
        fs::write(base.path().join("cookies.sqlite-wal"), b"wal").unwrap();
        let dir = PrivateTempDir::new_in(base.path()).unwrap();
        let copy = copy_sqlite(&dir, &db).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"main");
        assert_eq!(
            fs::read(dir.path().join("store.sqlite-wal")).unwrap(),
            b"wal"
        );
        assert!(!dir.path().join("store.sqlite-shm").exists());
    }
}
