//! End-to-end tests of [`super::find`] over fake homes with real-format stores.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use secrecy::ExposeSecret;

use super::testutil::*;
use super::*;

const FF: &str = ".mozilla/firefox";
const CHROME: &str = ".config/google-chrome";
const BRAVE: &str = ".config/BraveSoftware/Brave-Browser";
const MAC_CHROME: &str = "Library/Application Support/Google/Chrome";
const SAFARI: &str =
    "Library/Containers/com.apple.Safari/Data/Library/Cookies/Cookies.binarycookies";

const PEANUTS: Enc<'static> = Enc::Encrypted {
    tag: "v10",
    password: "peanuts",
    iterations: 1,
};

/// Runs `find_in` with a watched temp base and checks every copy was removed.
fn run(choice: BrowserChoice, env: &BrowserEnv) -> Result<FoundCookies, BrowserError> {
    let temp = tempfile::tempdir().unwrap();
    let result = find_in(choice, env, temp.path());
    assert_eq!(
        entries(temp.path()),
        Vec::<String>::new(),
        "temp copies left behind"
    );
    result
}

fn token(found: &FoundCookies) -> &str {
    found.session_token.expose_secret()
}

fn other_names(found: &FoundCookies) -> Vec<&str> {
    found.others.iter().map(|(n, _)| n.as_str()).collect()
}

fn linux(home: &Path) -> BrowserEnv {
    env(home, Os::Linux, &[])
}

// ---------------------------------------------------------------- choice parsing

#[test]
fn choice_parses_and_displays() {
    for name in [
        "auto", "firefox", "chrome", "chromium", "brave", "edge", "safari",
    ] {
        let choice: BrowserChoice = name.parse().unwrap();
        assert_eq!(choice.to_string(), name);
    }
    assert_eq!(
        "Firefox".parse::<BrowserChoice>(),
        Ok(BrowserChoice::Firefox)
    );
    let err = "netscape".parse::<BrowserChoice>().unwrap_err();
    assert!(err.to_string().contains("netscape"));
    assert_eq!(Browser::Edge.to_string(), "Edge");
}

// ---------------------------------------------------------------- Firefox

#[test]
fn firefox_finds_session_and_companions_ignoring_expired_and_other_domains() {
    let home = tempfile::tempdir().unwrap();
    let mut expired = c("chatgpt.com", SESSION, "expired-token", -1);
    expired.expires = Some(day(-1));
    firefox_home(
        home.path(),
        FF,
        &[(
            "default-release",
            "x.default-release",
            &[
                expired,
                c("evil-chatgpt.com", SESSION, "wrong-domain-1", 0),
                c(".openai.com", SESSION, "wrong-domain-2", 0),
                c("chatgpt.com.evil.io", SESSION, "wrong-domain-3", 0),
                c(".chatgpt.com", SESSION, "the-token", -3),
                c(".chatgpt.com", "oai-did", "did-value", -3),
                c("chatgpt.com", "cf_clearance", "cf-value", -3),
                c("chatgpt.com", "_account", "acct-value", -3),
                c("chatgpt.com", "unrelated", "x", -3),
            ],
        )],
    );
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "the-token");
    assert_eq!(found.browser, Browser::Firefox);
    assert_eq!(found.profile, "default-release");
    assert!(found.store.ends_with("x.default-release/cookies.sqlite"));
    assert_eq!(found.created, Some(day(-3)));
    assert_eq!(other_names(&found), ["oai-did", "cf_clearance", "_account"]);
    assert_eq!(found.others[0].1.expose_secret(), "did-value");
}

#[test]
fn firefox_millisecond_expiry_and_containers() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join(FF).join("p/cookies.sqlite");
    firefox_home(home.path(), FF, &[("p", "p", &[])]);
    let conn = Connection::open(&store).unwrap();
    // Newer Firefox writes expiry in milliseconds.
    firefox_insert(
        &conn,
        &[
            c(
                ".chatgpt.com",
                "__Secure-next-auth.session-token.0",
                "ms-",
                -5,
            ),
            c(
                ".chatgpt.com",
                "__Secure-next-auth.session-token.1",
                "token",
                -5,
            ),
        ],
        true,
        "",
    );
    // A container's chunks must not be mixed with the default jar's: this newer `.1`
    // alone is incomplete, and must not replace the default jar's `.1`.
    firefox_insert(
        &conn,
        &[c(
            ".chatgpt.com",
            "__Secure-next-auth.session-token.1",
            "container",
            -1,
        )],
        true,
        "^userContextId=2",
    );
    // Partitioned cookies (chatgpt.com embedded in another site) are no login.
    firefox_insert(
        &conn,
        &[c(".chatgpt.com", SESSION, "partitioned", 0)],
        true,
        "^partitionKey=%28https%2Cexample.com%29",
    );
    drop(conn);
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "ms-token");
}

#[test]
fn firefox_reads_cookie_that_only_lives_in_the_wal() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join(FF);
    firefox_home(
        home.path(),
        FF,
        &[("default-release", "w.default-release", &[])],
    );
    let store = root.join("w.default-release/cookies.sqlite");
    fs::remove_file(&store).unwrap();
    let writer = firefox_wal_db(&store, &[c(".chatgpt.com", SESSION, "wal-token", -1)]);

    // Prove the cookie is not in the main file: a copy of it alone has no such row.
    let wal = PathBuf::from(format!("{}-wal", store.display()));
    assert!(fs::metadata(&wal).unwrap().len() > 0);
    let alone = tempfile::tempdir().unwrap();
    let main_only = alone.path().join("main-only.sqlite");
    fs::copy(&store, &main_only).unwrap();
    let n: i64 = Connection::open(&main_only)
        .unwrap()
        .query_row("SELECT count(*) FROM moz_cookies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);

    let before = entries(&root.join("w.default-release"));
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "wal-token");
    // The browser's own files are left exactly as they were.
    let mut after = entries(&root.join("w.default-release"));
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after);
    drop(writer);
}

#[test]
fn chunked_session_cookie_is_joined_in_index_order() {
    let home = tempfile::tempdir().unwrap();
    let mut chunks = Vec::new();
    // Stored out of order, with 11 chunks so that ".10" sorts numerically.
    const PARTS: [(&str, &str); 11] = [
        ("__Secure-next-auth.session-token.10", "K"),
        ("__Secure-next-auth.session-token.1", "B"),
        ("__Secure-next-auth.session-token.0", "A"),
        ("__Secure-next-auth.session-token.2", "C"),
        ("__Secure-next-auth.session-token.3", "D"),
        ("__Secure-next-auth.session-token.4", "E"),
        ("__Secure-next-auth.session-token.5", "F"),
        ("__Secure-next-auth.session-token.6", "G"),
        ("__Secure-next-auth.session-token.7", "H"),
        ("__Secure-next-auth.session-token.8", "I"),
        ("__Secure-next-auth.session-token.9", "J"),
    ];
    for (name, value) in PARTS {
        chunks.push(c(".chatgpt.com", name, value, -2));
    }
    // An older unchunked leftover loses to the newer chunks.
    chunks.push(c(".chatgpt.com", SESSION, "old-whole", -20));
    firefox_home(home.path(), FF, &[("p", "p", &chunks)]);
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "ABCDEFGHIJK");
}

#[test]
fn chunks_with_a_gap_are_not_used() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        FF,
        &[(
            "p",
            "p",
            &[
                c(
                    ".chatgpt.com",
                    "__Secure-next-auth.session-token.0",
                    "A",
                    -1,
                ),
                c(
                    ".chatgpt.com",
                    "__Secure-next-auth.session-token.2",
                    "C",
                    -1,
                ),
            ],
        )],
    );
    let err = run(BrowserChoice::Firefox, &linux(home.path())).unwrap_err();
    assert!(matches!(err, BrowserError::NoSession { .. }), "{err}");
}

#[test]
fn chat_openai_com_is_only_a_fallback() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        FF,
        &[
            (
                "old",
                "old",
                &[c(".chatgpt.com", SESSION, "chatgpt-old", -100)],
            ),
            (
                "new",
                "new",
                &[c("chat.openai.com", SESSION, "openai-new", -1)],
            ),
        ],
    );
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "chatgpt-old");

    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        FF,
        &[(
            "only",
            "only",
            &[c("chat.openai.com", SESSION, "openai-only", -1)],
        )],
    );
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "openai-only");
}

#[test]
fn firefox_profiles_in_flatpak_snap_and_absolute_paths() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        ".var/app/org.mozilla.firefox/.mozilla/firefox",
        &[(
            "flat",
            "f.flat",
            &[c(".chatgpt.com", SESSION, "flatpak", -9)],
        )],
    );
    firefox_home(
        home.path(),
        "snap/firefox/common/.mozilla/firefox",
        &[(
            "snappy",
            "s.snappy",
            &[c(".chatgpt.com", SESSION, "snap", -8)],
        )],
    );
    // An absolute profile path outside the root.
    let elsewhere = home.path().join("elsewhere/prof");
    firefox_db(
        &elsewhere.join("cookies.sqlite"),
        &[c(".chatgpt.com", SESSION, "absolute", -7)],
    );
    let root = home.path().join(FF);
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("profiles.ini"),
        format!(
            "[Profile0]\nName=abs\nIsRelative=0\nPath={}\n",
            elsewhere.display()
        ),
    )
    .unwrap();
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "absolute");
    assert_eq!(found.profile, "abs");
}

// ---------------------------------------------------------------- Chromium

#[test]
fn chromium_v10_with_and_without_host_hash() {
    for version in [23, 24] {
        let home = tempfile::tempdir().unwrap();
        chromium_db(
            &home.path().join(CHROME).join("Default/Network/Cookies"),
            version,
            PEANUTS,
            &[
                c(".chatgpt.com", SESSION, "v10-token", -1),
                c(".chatgpt.com", "oai-did", "did", -1),
            ],
        );
        let found = run(BrowserChoice::Chrome, &linux(home.path())).unwrap();
        assert_eq!(token(&found), "v10-token", "meta version {version}");
        assert_eq!(other_names(&found), ["oai-did"]);
        assert_eq!(found.others[0].1.expose_secret(), "did");
        assert_eq!(found.profile, "Default");
    }
}

#[test]
fn chromium_host_hash_detected_without_meta_version() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join(CHROME).join("Default/Cookies");
    chromium_db(
        &store,
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "hashed", -1)],
    );
    Connection::open(&store)
        .unwrap()
        .execute_batch("DROP TABLE meta")
        .unwrap();
    let found = run(BrowserChoice::Chrome, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "hashed");
}

#[test]
fn chromium_plain_value_column_and_session_cookie_kept() {
    let home = tempfile::tempdir().unwrap();
    let mut session = c("chatgpt.com", SESSION, "plain-token", -1);
    session.expires = None; // expires_utc = 0: a session cookie, still valid
    chromium_db(
        &home
            .path()
            .join("snap/chromium/common/chromium/Default/Cookies"),
        24,
        Enc::Plain,
        &[session],
    );
    let found = run(BrowserChoice::Chromium, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "plain-token");
    assert_eq!(found.browser, Browser::Chromium);
}

#[test]
fn chromium_v11_uses_keyring_password() {
    let home = tempfile::tempdir().unwrap();
    let v11 = Enc::Encrypted {
        tag: "v11",
        password: "keyring-pw",
        iterations: 1,
    };
    chromium_db(
        &home.path().join(BRAVE).join("Default/Network/Cookies"),
        24,
        v11,
        &[c(".chatgpt.com", SESSION, "v11-token", -1)],
    );
    let env = env(home.path(), Os::Linux, &[(Browser::Brave, "keyring-pw")]);
    let found = run(BrowserChoice::Brave, &env).unwrap();
    assert_eq!(token(&found), "v11-token");

    // Without the password: a decrypt error naming the store and the keyring.
    let err = run(BrowserChoice::Brave, &linux(home.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BrowserError::Decrypt { .. }), "{msg}");
    assert!(msg.contains("Network/Cookies"), "{msg}");
    assert!(msg.contains("keyring"), "{msg}");
    assert!(!msg.contains("v11-token"));
}

#[test]
fn expired_undecryptable_session_is_just_absent() {
    let home = tempfile::tempdir().unwrap();
    let mut expired = c(".chatgpt.com", SESSION, "old", -40);
    expired.expires = Some(day(-1));
    chromium_db(
        &home.path().join(CHROME).join("Default/Network/Cookies"),
        24,
        Enc::Encrypted {
            tag: "v11",
            password: "unknown",
            iterations: 1,
        },
        &[expired],
    );
    let err = run(BrowserChoice::Chrome, &linux(home.path())).unwrap_err();
    assert!(matches!(err, BrowserError::NoSession { .. }), "{err}");
}

#[test]
fn chromium_v11_falls_back_to_empty_password() {
    let home = tempfile::tempdir().unwrap();
    let v11 = Enc::Encrypted {
        tag: "v11",
        password: "",
        iterations: 1,
    };
    chromium_db(
        &home.path().join(CHROME).join("Default/Network/Cookies"),
        23,
        v11,
        &[c(".chatgpt.com", SESSION, "empty-pw-token", -1)],
    );
    // The keyring gives a (wrong) password; the empty one is tried next.
    let env = env(home.path(), Os::Linux, &[(Browser::Chrome, "other")]);
    let found = run(BrowserChoice::Chrome, &env).unwrap();
    assert_eq!(token(&found), "empty-pw-token");
}

#[test]
fn chromium_profiles_named_from_local_state() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join(CHROME);
    local_state(&root, &[("Default", "Person 1"), ("Profile 3", "Work")]);
    chromium_db(
        &root.join("Default/Network/Cookies"),
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "personal", -10)],
    );
    chromium_db(
        &root.join("Profile 3/Cookies"),
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "work", -2)],
    );
    // Not a profile directory, even with a Cookies file.
    chromium_db(
        &root.join("System Profile/Cookies"),
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "system", 0)],
    );
    let found = run(BrowserChoice::Chrome, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "work");
    assert_eq!(found.profile, "Work (Profile 3)");
}

// ---------------------------------------------------------------- macOS

#[test]
fn macos_chrome_uses_keychain_password_with_1003_iterations() {
    let home = tempfile::tempdir().unwrap();
    chromium_db(
        &home.path().join(MAC_CHROME).join("Default/Cookies"),
        24,
        Enc::Encrypted {
            tag: "v10",
            password: "keychain-pw",
            iterations: 1003,
        },
        &[c(".chatgpt.com", SESSION, "mac-token", -1)],
    );
    let env = env(home.path(), Os::MacOs, &[(Browser::Chrome, "keychain-pw")]);
    let found = run(BrowserChoice::Chrome, &env).unwrap();
    assert_eq!(token(&found), "mac-token");

    let no_keychain = super::testutil::env(home.path(), Os::MacOs, &[]);
    let err = run(BrowserChoice::Chrome, &no_keychain).unwrap_err();
    assert!(err.to_string().contains("Chrome Safe Storage"), "{err}");
}

#[test]
fn safari_binarycookies() {
    let home = tempfile::tempdir().unwrap();
    let mut expired = c(".chatgpt.com", SESSION, "expired", -90);
    expired.expires = Some(day(-2));
    safari_file(
        &home.path().join(SAFARI),
        &[
            c(".example.com", SESSION, "other-site", 0),
            expired,
            c(".chatgpt.com", SESSION, "safari-token", -4),
            c(".chatgpt.com", "_account", "acct", -4),
        ],
    );
    let env = env(home.path(), Os::MacOs, &[]);
    let found = run(BrowserChoice::Safari, &env).unwrap();
    assert_eq!(token(&found), "safari-token");
    assert_eq!(other_names(&found), ["_account"]);
    assert_eq!(found.created, Some(day(-4)));

    // Safari does not exist on Linux.
    let err = run(BrowserChoice::Safari, &linux(home.path())).unwrap_err();
    assert!(matches!(err, BrowserError::Unsupported { .. }));
}

// ---------------------------------------------------------------- auto

#[test]
fn auto_picks_the_newest_session_across_browsers_and_profiles() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        FF,
        &[
            ("a", "a", &[c(".chatgpt.com", SESSION, "ff-a", -30)]),
            ("b", "b", &[c(".chatgpt.com", SESSION, "ff-b", -3)]),
        ],
    );
    chromium_db(
        &home.path().join(CHROME).join("Default/Network/Cookies"),
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "chrome-default", -10)],
    );
    chromium_db(
        &home.path().join(CHROME).join("Profile 1/Network/Cookies"),
        23,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "chrome-p1", -1)],
    );
    chromium_db(
        &home.path().join(BRAVE).join("Default/Network/Cookies"),
        24,
        PEANUTS,
        &[c(".chatgpt.com", SESSION, "brave", -5)],
    );
    // A corrupt store elsewhere does not spoil the search.
    let edge = home.path().join(".config/microsoft-edge/Default/Cookies");
    fs::create_dir_all(edge.parent().unwrap()).unwrap();
    fs::write(&edge, b"garbage garbage garbage garbage").unwrap();

    let found = run(BrowserChoice::Auto, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "chrome-p1");
    assert_eq!(found.browser, Browser::Chrome);
    assert_eq!(found.profile, "Profile 1");

    // Only Firefox: its newest profile.
    let found = run(BrowserChoice::Firefox, &linux(home.path())).unwrap();
    assert_eq!(token(&found), "ff-b");
}

#[test]
fn auto_on_macos_includes_safari() {
    let home = tempfile::tempdir().unwrap();
    safari_file(
        &home.path().join(SAFARI),
        &[c(".chatgpt.com", SESSION, "safari-new", -1)],
    );
    firefox_home(
        home.path(),
        "Library/Application Support/Firefox",
        &[(
            "p",
            "Profiles/x.p",
            &[c(".chatgpt.com", SESSION, "ff-old", -6)],
        )],
    );
    let env = env(home.path(), Os::MacOs, &[]);
    let found = run(BrowserChoice::Auto, &env).unwrap();
    assert_eq!(token(&found), "safari-new");
    assert_eq!(found.browser, Browser::Safari);
}

// ---------------------------------------------------------------- errors

#[test]
fn nothing_installed() {
    let home = tempfile::tempdir().unwrap();
    let err = run(BrowserChoice::Auto, &linux(home.path())).unwrap_err();
    assert!(matches!(err, BrowserError::NotInstalled { .. }));
    assert!(err.to_string().contains(".mozilla/firefox"), "{err}");
    let err = run(BrowserChoice::Edge, &linux(home.path())).unwrap_err();
    assert!(err.to_string().contains("no Edge cookie store"), "{err}");
}

#[test]
fn one_profile_without_session_names_it_and_says_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(
        home.path(),
        FF,
        &[(
            "default-release",
            "x.default-release",
            &[c("example.com", "a", "b", 0)],
        )],
    );
    let err = run(BrowserChoice::Firefox, &linux(home.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("no chatgpt.com session cookie in Firefox profile `default-release` ("),
        "{msg}"
    );
    assert!(msg.contains("x.default-release/cookies.sqlite"), "{msg}");
    assert!(
        msg.ends_with(
            "log in to chatgpt.com in that browser, then run `convos auth --from-browser firefox` again"
        ),
        "{msg}"
    );
}

#[test]
fn several_profiles_without_session_are_all_listed() {
    let home = tempfile::tempdir().unwrap();
    firefox_home(home.path(), FF, &[("one", "one", &[]), ("two", "two", &[])]);
    let cookies = home.path().join(CHROME).join("Default/Cookies");
    fs::create_dir_all(cookies.parent().unwrap()).unwrap();
    fs::write(&cookies, b"not sqlite at all, just some garbage bytes here").unwrap();
    let err = run(BrowserChoice::Auto, &linux(home.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, BrowserError::NoSessionAnywhere { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("profile `one`") && msg.contains("profile `two`"),
        "{msg}"
    );
    assert!(msg.contains("google-chrome/Default/Cookies"), "{msg}");
    assert!(msg.contains("--from-browser auto"), "{msg}");
}

#[test]
fn corrupt_stores_name_the_file() {
    let home = tempfile::tempdir().unwrap();
    let ff = home.path().join(FF).join("p/cookies.sqlite");
    fs::create_dir_all(ff.parent().unwrap()).unwrap();
    fs::write(&ff, vec![0x5a; 4096]).unwrap();
    let chrome = home.path().join(CHROME).join("Default/Network/Cookies");
    fs::create_dir_all(chrome.parent().unwrap()).unwrap();
    fs::write(&chrome, b"SQLite format 3\0 but then nothing sensible").unwrap();
    let safari = home.path().join(SAFARI);
    safari_file(&safari, &[c(".chatgpt.com", SESSION, "cut-off-token", -1)]);
    let bytes = fs::read(&safari).unwrap();
    fs::write(&safari, &bytes[..bytes.len() - 30]).unwrap();

    let cases = [
        (BrowserChoice::Firefox, Os::Linux, &ff),
        (BrowserChoice::Chrome, Os::Linux, &chrome),
        (BrowserChoice::Safari, Os::MacOs, &safari),
    ];
    for (choice, os, file) in cases {
        let err = run(choice, &env(home.path(), os, &[])).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, BrowserError::Corrupt { .. }),
            "{choice}: {msg}"
        );
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(!msg.contains("cut-off-token"), "{msg}");
    }

    // A store that is a valid database of the wrong shape is named too.
    fs::remove_file(&ff).unwrap();
    Connection::open(&ff)
        .unwrap()
        .execute_batch("CREATE TABLE other(x)")
        .unwrap();
    let err = run(BrowserChoice::Firefox, &linux(home.path())).unwrap_err();
    assert!(err.to_string().contains("moz_cookies"), "{err}");
    assert!(err.to_string().contains(&ff.display().to_string()), "{err}");
}

#[cfg(unix)]
#[test]
fn unreadable_safari_store_asks_for_full_disk_access_on_macos() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let safari = home.path().join(SAFARI);
    safari_file(&safari, &[c(".chatgpt.com", SESSION, "t", -1)]);
    fs::set_permissions(&safari, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&safari).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let err = run(BrowserChoice::Safari, &env(home.path(), Os::MacOs, &[])).unwrap_err();
    assert!(err.to_string().contains("Full Disk Access"), "{err}");
}

#[test]
fn no_secret_in_any_error_or_debug_output() {
    const SECRET: &str = "SUPER-SECRET-TOKEN-VALUE";
    let home = tempfile::tempdir().unwrap();
    chromium_db(
        &home.path().join(CHROME).join("Default/Network/Cookies"),
        24,
        Enc::Encrypted {
            tag: "v11",
            password: "SECRET-KEYRING-PASSWORD",
            iterations: 1,
        },
        &[
            c(".chatgpt.com", SESSION, SECRET, -1),
            c(".chatgpt.com", "oai-did", SECRET, -1),
        ],
    );
    let good = env(
        home.path(),
        Os::Linux,
        &[(Browser::Chrome, "SECRET-KEYRING-PASSWORD")],
    );
    let found = run(BrowserChoice::Chrome, &good).unwrap();
    assert_eq!(token(&found), SECRET);
    assert!(found.cookie_header().expose_secret().contains(SECRET));

    let wrong = env(home.path(), Os::Linux, &[(Browser::Chrome, "wrong")]);
    let decrypt_err = run(BrowserChoice::Chrome, &wrong).unwrap_err();
    let store = home.path().join("x");
    let errors: Vec<BrowserError> = vec![
        decrypt_err,
        BrowserError::NoHome,
        BrowserError::Unsupported {
            browser: Browser::Safari,
        },
        BrowserError::NotInstalled {
            what: "browser".into(),
            looked: vec![store.clone()],
            safari: true,
        },
        BrowserError::NoSession {
            browser: Browser::Edge,
            profile: "Default".into(),
            store: store.clone(),
        },
        BrowserError::NoSessionAnywhere {
            choice: BrowserChoice::Auto,
            searched: vec![Searched {
                browser: Browser::Firefox,
                profile: "p".into(),
                store: store.clone(),
                problem: Some(Box::new(BrowserError::NoHome)),
            }],
        },
        BrowserError::Corrupt {
            browser: Browser::Brave,
            store: store.clone(),
            problem: "x".into(),
        },
        BrowserError::Io {
            browser: Browser::Chrome,
            store: store.clone(),
            source: std::io::Error::other("boom"),
        },
        BrowserError::SafariNeedsFullDiskAccess {
            store: store.clone(),
        },
        BrowserError::TempDir(std::io::Error::other("boom")),
    ];
    let mut outputs = vec![
        format!("{found:?}"),
        format!("{found:#?}"),
        format!("{good:?}"),
    ];
    for e in &errors {
        outputs.push(e.to_string());
        outputs.push(format!("{e:?}"));
        outputs.push(format!("{:#}", anyhow::Error::msg(e.to_string())));
    }
    for out in &outputs {
        assert!(!out.contains(SECRET), "secret leaked: {out}");
        assert!(
            !out.contains("SECRET-KEYRING-PASSWORD"),
            "password leaked: {out}"
        );
    }
    assert!(outputs[0].contains("oai-did") && outputs[0].contains("redacted"));
}
