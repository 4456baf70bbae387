//! File operations inside the mirror folder: atomic writes (temp file plus rename in the
//! same folder), reads and folder creation that never follow a symbolic link, and the
//! permissions the user's notes get.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Marks convos' temporary files (hidden, so editors and Obsidian ignore them).
pub(crate) const TEMP_TAG: &str = ".convos-tmp-";

/// Permissions for what the mirror creates.
///
/// The `convos` binary runs with umask 077 so the archive stays private; the mirror's
/// files are the user's notes, meant for their editor, sync tool and git, so they get
/// the permissions the user's own files get: from the umask the user had before convos
/// changed it ([`Modes::from_umask`]), 0644/0755 when it is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    /// Mode of new files.
    pub file: u32,
    /// Mode of new folders.
    pub dir: u32,
}

impl Modes {
    /// The modes a process with this umask gives new files (0666) and folders (0777).
    pub fn from_umask(umask: u32) -> Self {
        Self {
            file: 0o666 & !umask & 0o777,
            dir: 0o777 & !umask & 0o777,
        }
    }
}

impl Default for Modes {
    fn default() -> Self {
        Self::from_umask(0o022)
    }
}

/// Why a path inside the mirror cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathProblem {
    /// A symbolic link where convos would write: never followed.
    #[error("{0} is a symbolic link; convos does not write through links inside the mirror")]
    Symlink(PathBuf),
    /// Something other than a folder where a folder belongs, or other than a file where a
    /// note belongs.
    #[error("{0} is not a {1}")]
    WrongKind(PathBuf, &'static str),
    /// The operating system refused.
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

/// Makes sure `root/rel` is a real folder (creating missing parts with `mode`), refusing
/// symbolic links on the way. `rel` uses `/` and may be empty (the root itself, which
/// the user chose and may be a link).
pub(crate) fn ensure_dir(root: &Path, rel: &str, mode: u32) -> Result<PathBuf, PathProblem> {
    let mut path = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(PathProblem::Symlink(path)),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(PathProblem::WrongKind(path, "folder")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&path) {
                    Ok(()) => {
                        set_mode(&path, mode).map_err(|e| PathProblem::Io(path.clone(), e))?
                    }
                    // Created meanwhile by someone else: check it again.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let m = fs::symlink_metadata(&path)
                            .map_err(|e| PathProblem::Io(path.clone(), e))?;
                        if !m.is_dir() {
                            return Err(PathProblem::WrongKind(path, "folder"));
                        }
                    }
                    Err(e) => return Err(PathProblem::Io(path, e)),
                }
            }
            Err(e) => return Err(PathProblem::Io(path, e)),
        }
    }
    Ok(path)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(mode))
}

/// A regular file's bytes and permission bits, read without following a symbolic link;
/// `Ok(None)` when nothing is there.
pub(crate) fn read_regular(path: &Path) -> Result<Option<(Vec<u8>, u32)>, PathProblem> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PathProblem::Io(path.to_path_buf(), e)),
    };
    if meta.file_type().is_symlink() {
        return Err(PathProblem::Symlink(path.to_path_buf()));
    }
    if !meta.is_file() {
        return Err(PathProblem::WrongKind(path.to_path_buf(), "regular file"));
    }
    // O_NOFOLLOW closes the window between the check and the open; O_NONBLOCK keeps a
    // FIFO swapped in meanwhile from blocking the open.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => PathProblem::Symlink(path.to_path_buf()),
            _ => PathProblem::Io(path.to_path_buf(), e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| PathProblem::Io(path.to_path_buf(), e))?;
    if !meta.is_file() {
        return Err(PathProblem::WrongKind(path.to_path_buf(), "regular file"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| PathProblem::Io(path.to_path_buf(), e))?;
    Ok(Some((bytes, meta.permissions().mode() & 0o7777)))
}

/// What lies at a path, without following a symbolic link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing.
    Missing,
    /// A regular file.
    File,
    /// Anything else (folder, link, device…).
    Other,
}

/// What lies at `path`, not following links.
pub(crate) fn kind(path: &Path) -> io::Result<Kind> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(Kind::File),
        Ok(_) => Ok(Kind::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(e),
    }
}

/// Writes `dir/name` atomically: a hidden temporary file in the same folder, created
/// exclusively (so no link is followed), given `mode`, optionally synced, then renamed
/// over the target (a rename replaces a link at the target, it never writes through it).
/// Readers see the old file or the new one, never a part.
pub(crate) fn write_atomic(
    dir: &Path,
    name: &str,
    mode: u32,
    durable: bool,
    fill: &mut dyn FnMut(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let temp = dir.join(format!(".{name}{TEMP_TAG}{:016x}", fastrand::u64(..)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)?;
    let result = (|| {
        // The process umask (077 in the binary) narrowed the mode given to open.
        file.set_permissions(Permissions::from_mode(mode))?;
        fill(&mut file)?;
        file.flush()?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// [`write_atomic`] of a byte string.
pub(crate) fn write_bytes(
    dir: &Path,
    name: &str,
    mode: u32,
    durable: bool,
    bytes: &[u8],
) -> io::Result<()> {
    write_atomic(dir, name, mode, durable, &mut |f| f.write_all(bytes))
}

/// Removes temporary files a crash left in `dir` (not recursive).
pub(crate) fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_temp = name.starts_with('.') && name.contains(TEMP_TAG);
        if is_temp
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn modes_follow_the_umask() {
        assert_eq!(
            Modes::from_umask(0o022),
            Modes {
                file: 0o644,
                dir: 0o755
            }
        );
        assert_eq!(
            Modes::from_umask(0o077),
            Modes {
                file: 0o600,
                dir: 0o700
            }
        );
        assert_eq!(
            Modes::from_umask(0o002),
            Modes {
                file: 0o664,
                dir: 0o775
            }
        );
        assert_eq!(Modes::default(), Modes::from_umask(0o022));
    }

    #[test]
    fn atomic_write_sets_the_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_bytes(dir.path(), "a.md", 0o640, false, b"one").expect("write");
        write_bytes(dir.path(), "a.md", 0o604, true, b"two").expect("rewrite");
        let p = dir.path().join("a.md");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        let mode = fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o604);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn writes_replace_links_instead_of_following_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, b"precious").expect("write");
        let inner = dir.path().join("m");
        fs::create_dir(&inner).expect("mkdir");
        symlink(&outside, inner.join("note.md")).expect("symlink");
        assert!(matches!(
            read_regular(&inner.join("note.md")),
            Err(PathProblem::Symlink(_))
        ));
        write_bytes(&inner, "note.md", 0o644, false, b"new").expect("write");
        assert_eq!(fs::read(&outside).expect("read"), b"precious");
        assert_eq!(kind(&inner.join("note.md")).expect("kind"), Kind::File);
    }

    #[test]
    fn folders_behind_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        symlink(elsewhere.path(), dir.path().join("Project")).expect("symlink");
        match ensure_dir(dir.path(), "Project", 0o755) {
            Err(PathProblem::Symlink(p)) => assert!(p.ends_with("Project")),
            other => panic!("expected a refusal, got {other:?}"),
        }
        fs::write(dir.path().join("file"), b"x").expect("write");
        assert!(matches!(
            ensure_dir(dir.path(), "file/sub", 0o755),
            Err(PathProblem::WrongKind(..))
        ));
        let made = ensure_dir(dir.path(), ".convos/conflicts", 0o750).expect("mkdir");
        assert!(made.is_dir());
        let mode = fs::metadata(&made).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
    }

    #[test]
    fn stale_temps_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(".a.md.convos-tmp-0011"), b"x").expect("write");
        fs::write(dir.path().join("keep.md"), b"x").expect("write");
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(dir.path().join("keep.md").exists());
    }
}
