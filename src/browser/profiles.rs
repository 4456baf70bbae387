//! Where each browser keeps its profiles and their cookie stores, on Linux and macOS.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Browser, BrowserEnv, Os};

/// One cookie store file of one browser profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Store {
    /// The browser owning it.
    pub browser: Browser,
    /// The profile's display name.
    pub profile: String,
    /// The store file.
    pub path: PathBuf,
}

/// What [`discover`] found for a browser, and where it looked (for error messages).
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// The existing cookie stores.
    pub stores: Vec<Store>,
    /// The directories (or files, for Safari) that were searched.
    pub looked: Vec<PathBuf>,
}

/// Finds every cookie store of `browser` under `env.home`.
pub(crate) fn discover(browser: Browser, env: &BrowserEnv) -> Discovered {
    let roots = roots(browser, env.os, &env.home);
    let mut found = Discovered::default();
    let mut seen = HashSet::new();
    for root in roots {
        let stores = match browser {
            Browser::Firefox => firefox_stores(&root),
            Browser::Safari => safari_store(&root).into_iter().collect(),
            _ => chromium_stores(browser, &root),
        };
        for store in stores {
            // The same profile can be reachable twice (symlinked Snap/Flatpak dirs).
            let key = fs::canonicalize(&store.path).unwrap_or_else(|_| store.path.clone());
            if seen.insert(key) {
                tracing::debug!(%browser, profile = %store.profile,
                    store = %store.path.display(), "found cookie store");
                found.stores.push(store);
            }
        }
        found.looked.push(root);
    }
    found
}

/// The directories holding `browser`'s profiles (for Safari: the cookie files themselves).
fn roots(browser: Browser, os: Os, home: &Path) -> Vec<PathBuf> {
    let rel: &[&str] = match (os, browser) {
        (Os::Linux, Browser::Firefox) => &[
            ".mozilla/firefox",
            // Firefox 147+ on Linux follows the XDG base directories.
            ".config/mozilla/firefox",
            ".var/app/org.mozilla.firefox/.mozilla/firefox",
            ".var/app/org.mozilla.firefox/config/mozilla/firefox",
            "snap/firefox/common/.mozilla/firefox",
        ],
        (Os::Linux, Browser::Chrome) => &[
            ".config/google-chrome",
            ".var/app/com.google.Chrome/config/google-chrome",
        ],
        (Os::Linux, Browser::Chromium) => &[
            ".config/chromium",
            ".var/app/org.chromium.Chromium/config/chromium",
            "snap/chromium/common/chromium",
        ],
        (Os::Linux, Browser::Brave) => &[
            ".config/BraveSoftware/Brave-Browser",
            ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser",
        ],
        (Os::Linux, Browser::Edge) => &[
            ".config/microsoft-edge",
            ".var/app/com.microsoft.Edge/config/microsoft-edge",
        ],
        (Os::Linux, Browser::Safari) => &[],
        (Os::MacOs, Browser::Firefox) => &["Library/Application Support/Firefox"],
        (Os::MacOs, Browser::Chrome) => &["Library/Application Support/Google/Chrome"],
        (Os::MacOs, Browser::Chromium) => &["Library/Application Support/Chromium"],
        (Os::MacOs, Browser::Brave) => &["Library/Application Support/BraveSoftware/Brave-Browser"],
        (Os::MacOs, Browser::Edge) => &["Library/Application Support/Microsoft Edge"],
        (Os::MacOs, Browser::Safari) => &[
            // Safari 13+ (sandboxed) first, then the pre-container location.
            "Library/Containers/com.apple.Safari/Data/Library/Cookies/Cookies.binarycookies",
            "Library/Cookies/Cookies.binarycookies",
        ],
    };
    rel.iter().map(|r| home.join(r)).collect()
}

// ---------------------------------------------------------------- Firefox

/// Firefox profiles listed in `profiles.ini`, plus any unlisted profile directory that
/// has a `cookies.sqlite` (new profile-manager profiles, a lost `profiles.ini`).
fn firefox_stores(root: &Path) -> Vec<Store> {
    let mut profiles: Vec<(String, PathBuf)> = match fs::read_to_string(root.join("profiles.ini")) {
        Ok(ini) => parse_profiles_ini(&ini, root),
        Err(_) => Vec::new(),
    };
    for dir in [root.to_path_buf(), root.join("Profiles")] {
        for sub in subdirs(&dir) {
            if !profiles.iter().any(|(_, p)| same_dir(p, &sub)) {
                let name = file_name(&sub);
                profiles.push((name, sub));
            }
        }
    }
    profiles
        .into_iter()
        .filter_map(|(name, dir)| {
            let path = dir.join("cookies.sqlite");
            is_file(&path).then_some(Store {
                browser: Browser::Firefox,
                profile: name,
                path,
            })
        })
        .collect()
}

/// `(name, directory)` of each `[ProfileN]` section; relative paths resolve against `root`.
fn parse_profiles_ini(ini: &str, root: &Path) -> Vec<(String, PathBuf)> {
    #[derive(Default)]
    struct Section {
        name: Option<String>,
        path: Option<String>,
        relative: bool,
    }
    let mut out = Vec::new();
    let mut current: Option<Section> = None;
    let mut flush = |s: Option<Section>| {
        if let Some(Section {
            name,
            path: Some(path),
            relative,
        }) = s
        {
            let dir = if relative {
                root.join(&path)
            } else {
                PathBuf::from(&path)
            };
            let name = name.unwrap_or_else(|| file_name(&dir));
            out.push((name, dir));
        }
    };
    for line in ini.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            flush(current.take());
            let section = &line[1..line.len() - 1];
            if section.starts_with("Profile") {
                current = Some(Section::default());
            }
        } else if let Some(section) = current.as_mut()
            && let Some((key, value)) = line.split_once('=')
        {
            let value = value.trim().to_owned();
            match key.trim() {
                "Name" => section.name = Some(value),
                "Path" => section.path = Some(value),
                "IsRelative" => section.relative = value == "1",
                _ => {}
            }
        }
    }
    flush(current.take());
    out
}

// ---------------------------------------------------------------- Chromium family

/// `Default` and `Profile N` (and any profile named in `Local State`) with a cookie DB.
fn chromium_stores(browser: Browser, root: &Path) -> Vec<Store> {
    let names = local_state_names(root);
    let mut dirs: Vec<String> = subdirs(root)
        .iter()
        .map(|d| file_name(d))
        .filter(|n| n == "Default" || n.starts_with("Profile "))
        .collect();
    for (dir, _) in &names {
        if !dirs.contains(dir) && root.join(dir).is_dir() {
            dirs.push(dir.clone());
        }
    }
    // Default first, then Profile 1, 2, ... 10 in number order.
    dirs.sort_by_key(|d| {
        let n = d
            .strip_prefix("Profile ")
            .and_then(|n| n.parse::<u64>().ok());
        (d != "Default", n.is_none(), n, d.clone())
    });
    dirs.into_iter()
        .filter_map(|dir| {
            let profile_dir = root.join(&dir);
            // Chrome 96+ moved the store into Network/; older profiles keep it at the top.
            let path = [
                profile_dir.join("Network").join("Cookies"),
                profile_dir.join("Cookies"),
            ]
            .into_iter()
            .find(|p| is_file(p))?;
            let profile = match names.iter().find(|(d, _)| *d == dir) {
                Some((_, name)) if !name.is_empty() && *name != dir => format!("{name} ({dir})"),
                _ => dir,
            };
            Some(Store {
                browser,
                profile,
                path,
            })
        })
        .collect()
}

/// `(directory, display name)` pairs from `Local State` → `profile.info_cache`.
fn local_state_names(root: &Path) -> Vec<(String, String)> {
    let Ok(text) = fs::read_to_string(root.join("Local State")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::debug!(root = %root.display(), "unreadable Local State; using directory names");
        return Vec::new();
    };
    json.get("profile")
        .and_then(|p| p.get("info_cache"))
        .and_then(|c| c.as_object())
        .map(|cache| {
            cache
                .iter()
                // Only plain directory names: this is joined onto the browser's root.
                .filter(|(dir, _)| !dir.is_empty() && !dir.contains(['/', '\\']) && *dir != "..")
                .map(|(dir, info)| {
                    let name = info.get("name").and_then(|n| n.as_str()).unwrap_or("");
                    (dir.clone(), name.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- Safari

/// The Safari store at `path` if it exists, or if macOS will not even let us look
/// (so that reading it reports the Full Disk Access problem instead of "not installed").
fn safari_store(path: &Path) -> Option<Store> {
    let present = match fs::metadata(path) {
        Ok(m) => m.is_file(),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    };
    present.then(|| Store {
        browser: Browser::Safari,
        profile: "default".to_owned(),
        path: path.to_path_buf(),
    })
}

// ---------------------------------------------------------------- helpers

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn is_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_ini_relative_and_absolute() {
        let ini = "[General]\nStartWithLastProfile=1\n\n[Profile1]\nName=default\nIsRelative=1\n\
                   Path=abcd.default\n\n[Install4F96D1932A9F858E]\nDefault=x.default-release\n\n\
                   [Profile0]\r\nName=default-release\r\nIsRelative=0\r\nPath=/abs/x.default-release\r\nDefault=1\r\n";
        let root = Path::new("/root/ff");
        let got = parse_profiles_ini(ini, root);
        assert_eq!(
            got,
            vec![
                ("default".to_owned(), root.join("abcd.default")),
                (
                    "default-release".to_owned(),
                    PathBuf::from("/abs/x.default-release")
                ),
            ]
        );
    }

    #[test]
    fn safari_only_on_macos() {
        assert!(roots(Browser::Safari, Os::Linux, Path::new("/h")).is_empty());
        assert_eq!(roots(Browser::Safari, Os::MacOs, Path::new("/h")).len(), 2);
    }
}
