//! Names in the mirror: project folders, and where the mirror may live.

use std::path::{Component, Path, PathBuf};

/// The folder for attachments, at the mirror's root.
pub const ATTACHMENTS: &str = "attachments";
/// The index note, at the mirror's root.
pub const INDEX: &str = "index.md";
/// convos' own folder in the mirror (hidden from Obsidian): identity, conflicts.
pub const CONTROL: &str = ".convos";

/// The sub-folder for a project's conversations: the project name made safe the way
/// note names are (forbidden characters, Windows device names, length), `""` for none.
pub fn project_folder(project: Option<&str>) -> String {
    let Some(project) = project.map(str::trim).filter(|p| !p.is_empty()) else {
        return String::new();
    };
    let name = crate::render::filename::plain_name(project);
    // A project must not take the place of the mirror's own entries.
    let lower = name.to_lowercase();
    if lower == ATTACHMENTS || lower.ends_with(".md") {
        format!("{name} (project)")
    } else {
        name
    }
}

/// The relative path of a note (`/`-separated).
pub fn note_path(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// Why a folder cannot hold the mirror.
#[derive(Debug, PartialEq, Eq)]
pub enum Overlap {
    /// The mirror would be inside the protected folder.
    Inside,
    /// The mirror would contain the protected folder.
    Contains,
}

/// Whether `mirror` and `protected` overlap (one inside the other, or the same),
/// comparing real paths: links are resolved as far as the paths exist.
pub fn overlap(mirror: &Path, protected: &Path) -> Option<Overlap> {
    let m = real_path(mirror);
    let p = real_path(protected);
    if m.starts_with(&p) {
        Some(Overlap::Inside)
    } else if p.starts_with(&m) {
        Some(Overlap::Contains)
    } else {
        None
    }
}

/// An absolute path with `.`/`..` removed and the longest existing prefix resolved.
fn real_path(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    // Resolve the deepest part that exists, then add the rest.
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return clean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_folders_are_safe_names() {
        assert_eq!(project_folder(None), "");
        assert_eq!(project_folder(Some("  ")), "");
        assert_eq!(project_folder(Some("Work")), "Work");
        assert_eq!(project_folder(Some("A/B: c?")), "A B c");
        assert_eq!(project_folder(Some("CON")), "CON_");
        assert_eq!(project_folder(Some("[[x]]#^|")), "x");
        assert_eq!(project_folder(Some("Attachments")), "Attachments (project)");
        assert_eq!(project_folder(Some("notes.md")), "notes.md (project)");
        assert_eq!(project_folder(Some("..hidden")), "hidden");
        assert!(project_folder(Some(&"x".repeat(400))).len() <= 120);
        assert_eq!(note_path("", "a.md"), "a.md");
        assert_eq!(note_path("P", "a.md"), "P/a.md");
    }

    #[test]
    fn overlapping_folders_are_detected_through_links() {
        let base = tempfile::tempdir().expect("tempdir");
        let data = base.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        assert_eq!(overlap(&data.join("mirror"), &data), Some(Overlap::Inside));
        assert_eq!(overlap(&data, &data), Some(Overlap::Inside));
        assert_eq!(overlap(base.path(), &data), Some(Overlap::Contains));
        assert_eq!(overlap(&base.path().join("vault"), &data), None);
        assert_eq!(overlap(&base.path().join("data-2"), &data), None);
        assert_eq!(
            overlap(&base.path().join("vault/../data/x"), &data),
            Some(Overlap::Inside)
        );
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&data, &link).expect("symlink");
        assert_eq!(overlap(&link.join("notes"), &data), Some(Overlap::Inside));
    }
}
