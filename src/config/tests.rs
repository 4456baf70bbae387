use super::*;
use std::collections::HashMap;

fn platform(dir: &Path) -> PlatformDirs {
    PlatformDirs {
        config_file: Some(dir.join("no-such-config.toml")),
        data_dir: Some(dir.join("data")),
        downloads: Some(dir.join("Downloads")),
        home: Some(dir.to_path_buf()),
    }
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .expect("config.example.toml")
}

#[test]
fn example_file_parses_to_the_defaults() {
    let parsed = Config::parse(&example(), Path::new("config.example.toml")).expect("parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn example_file_documents_every_key() {
    let text = example();
    let defaults = toml::Value::try_from(Config::default()).expect("serializes");
    let mut keys = vec![
        "data_dir".to_owned(),
        "watch.dirs".to_owned(),
        "watch.processed_dir".to_owned(),
        "mirror.dir".to_owned(),
    ];
    if let toml::Value::Table(t) = defaults {
        for (section, v) in t {
            match v {
                toml::Value::Table(inner) => {
                    keys.extend(inner.keys().map(|k| format!("{section}.{k}")))
                }
                _ => keys.push(section),
            }
        }
    }
    for key in keys {
        let (section, name) = key.rsplit_once('.').unwrap_or(("", &key));
        assert!(
            line_of_key(&text, &key).is_some()
                || text.contains(&format!("# {name} = "))
                    && (section.is_empty() || text.contains(&format!("[{section}]"))),
            "config.example.toml does not document `{key}`"
        );
    }
}

#[test]
fn no_file_means_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded =
        Config::load(&Overrides::default(), &env_of(&[]), &platform(dir.path())).expect("loads");
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.file, None);
    assert_eq!(loaded.paths.data_dir, dir.path().join("data"));
    assert_eq!(loaded.paths.watch_dirs, vec![dir.path().join("Downloads")]);
    assert_eq!(
        loaded.paths.socket,
        dir.path().join("data").join("control.sock")
    );
}

#[test]
fn precedence_flags_env_file_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "data_dir = \"/from/file\"\n[api]\nburst = 5\nrefill_per_minute = 2.0\n[sync]\nschedule = \"0 0 * * * *\"\n",
    )
    .expect("write");
    let env = env_of(&[
        ("CONVOS_CONFIG", file.to_str().expect("utf8")),
        ("CONVOS_API_BURST", "7"),
        ("CONVOS_DATA_DIR", "~/from-env"),
        ("CONVOS_IMPORT_PATHS", "~/a.zip, /b.json,"),
        ("CONVOS_WATCH_DIRS", "/w1:/w2"),
    ]);
    let loaded = Config::load(&Overrides::default(), &env, &platform(dir.path())).expect("loads");
    assert_eq!(loaded.file.as_deref(), Some(file.as_path()));
    assert_eq!(loaded.config.api.burst, 7, "env beats file");
    assert_eq!(
        loaded.config.api.refill_per_minute, 2.0,
        "file beats default"
    );
    assert_eq!(loaded.config.sync.schedule, "0 0 * * * *");
    assert_eq!(loaded.paths.data_dir, dir.path().join("from-env"));
    assert_eq!(
        loaded.config.import_paths(&platform(dir.path())),
        vec![dir.path().join("a.zip"), PathBuf::from("/b.json")]
    );
    assert_eq!(
        loaded.paths.watch_dirs,
        vec![PathBuf::from("/w1"), PathBuf::from("/w2")]
    );
    let flags = Overrides {
        data_dir: Some(PathBuf::from("/from/flag")),
        ..Overrides::default()
    };
    let loaded = Config::load(&flags, &env, &platform(dir.path())).expect("loads");
    assert_eq!(
        loaded.paths.data_dir,
        PathBuf::from("/from/flag"),
        "flag beats env"
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = "[log]\nlevel = \"info\"\n\n[api]\nburts = 3\n";
    let err = Config::parse(text, Path::new("/etc/c.toml")).expect_err("unknown key");
    assert_eq!(err.line, Some(5));
    assert_eq!(err.key.as_deref(), Some("api.burts"));
    let shown = err.to_string();
    assert!(
        shown.contains("/etc/c.toml") && shown.contains("line 5") && shown.contains("api.burts"),
        "{shown}"
    );
}

#[test]
fn wrong_type_names_line_and_key() {
    let err =
        Config::parse("[sync]\noverlap = \"twenty\"\n", Path::new("c.toml")).expect_err("type");
    assert_eq!(err.line, Some(2));
    assert_eq!(err.key.as_deref(), Some("sync.overlap"));
}

#[test]
fn invalid_values_are_caught_with_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[sync]\narchived = true\nschedule = \"*/5 * * * *\"\n",
    )
    .expect("write");
    let flags = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let err = Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect_err("5-field cron");
    assert_eq!(err.key.as_deref(), Some("sync.schedule"));
    assert_eq!(err.line, Some(3));
    for (text, key) in [
        ("[api]\nbase_url = \"ftp://x\"\n", "api.base_url"),
        ("[log]\nlevel = \"loud\"\n", "log.level"),
        ("[auth]\nbrowser = \"netscape\"\n", "auth.browser"),
        ("[api]\nburst = 0\n", "api.burst"),
        ("[sync]\ntimezone = \"Mars/Olympus\"\n", "sync.timezone"),
        (
            "[sync]\nreconcile_schedule = \"0 4 * * Sun\"\n",
            "sync.reconcile_schedule",
        ),
    ] {
        std::fs::write(&file, text).expect("write");
        let err = Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect_err(text);
        assert_eq!(err.key.as_deref(), Some(key), "{text}");
        assert_eq!(err.line, Some(2), "{text}");
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Config::load(
        &Overrides::default(),
        &env_of(&[("CONVOS_API_BURST", "lots")]),
        &platform(dir.path()),
    )
    .expect_err("bad env");
    assert!(err.to_string().contains("CONVOS_API_BURST"), "{err}");
}

#[test]
fn explicit_missing_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = Overrides {
        config: Some(dir.path().join("missing.toml")),
        ..Overrides::default()
    };
    let err = Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect_err("missing");
    assert!(err.to_string().contains("missing.toml"));
}

#[test]
fn socket_goes_to_the_runtime_dir_when_there_is_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = dir.path().to_str().expect("utf8").to_owned();
    let loaded = Config::load(
        &Overrides::default(),
        &env_of(&[("XDG_RUNTIME_DIR", &rt)]),
        &platform(dir.path()),
    )
    .expect("loads");
    assert!(loaded.paths.socket.starts_with(dir.path().join("convos")));
    assert!(loaded.paths.socket.to_string_lossy().ends_with(".sock"));
}

#[test]
fn downloads_fall_back_to_home_downloads_when_the_platform_names_none() {
    let home = Path::new("/home/someone");
    // Linux without ~/.config/user-dirs.dirs: `directories` names no Downloads folder.
    assert_eq!(
        downloads_dir(None, Some(home)),
        Some(home.join("Downloads"))
    );
    // A folder the platform names wins.
    assert_eq!(
        downloads_dir(Some(PathBuf::from("/data/dl")), Some(home)),
        Some(PathBuf::from("/data/dl"))
    );
    assert_eq!(downloads_dir(None, None), None);
}

#[test]
fn schedules_are_local_time_with_a_weekly_full_sync_unless_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded =
        Config::load(&Overrides::default(), &env_of(&[]), &platform(dir.path())).expect("defaults");
    assert_eq!(loaded.config.sync.reconcile_schedule, "0 0 4 * * Sun");
    assert_eq!(loaded.config.sync.zone(), Zone::Local);
    let env = env_of(&[("CONVOS_SYNC_RECONCILE_SCHEDULE", "0 30 3 * * Sat")]);
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[sync]\ntimezone = \"Europe/Paris\"\n").expect("write");
    let flags = Overrides {
        config: Some(file),
        ..Overrides::default()
    };
    let loaded = Config::load(&flags, &env, &platform(dir.path())).expect("valid");
    assert_eq!(loaded.config.sync.reconcile_schedule, "0 30 3 * * Sat");
    assert_eq!(
        loaded.config.sync.zone(),
        Zone::Named(chrono_tz::Tz::Europe__Paris)
    );
}

#[test]
fn the_mirror_is_off_unless_a_folder_is_set_in_the_file_or_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded =
        Config::load(&Overrides::default(), &env_of(&[]), &platform(dir.path())).expect("loads");
    assert_eq!(loaded.paths.mirror_dir, None);
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[mirror]\ndir = \"~/Vault/ChatGPT\"\n").expect("write");
    let flags = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let loaded = Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect("loads");
    assert_eq!(
        loaded.paths.mirror_dir,
        Some(dir.path().join("Vault/ChatGPT"))
    );
    let env = env_of(&[("CONVOS_MIRROR_DIR", "/srv/notes")]);
    let loaded = Config::load(&flags, &env, &platform(dir.path())).expect("loads");
    assert_eq!(
        loaded.paths.mirror_dir,
        Some(PathBuf::from("/srv/notes")),
        "env beats file"
    );
}

#[test]
fn a_mirror_folder_inside_or_around_the_data_dir_or_relative_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    let flags = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    // The data dir is <tmp>/data (the platform's).
    for (text, why) in [
        (
            "[mirror]\ndir = \"~/data/notes\"\n",
            "inside the data folder",
        ),
        ("[mirror]\ndir = \"~/data\"\n", "inside the data folder"),
        ("[mirror]\ndir = \"~\"\n", "around the data folder"),
        ("[mirror]\ndir = \"notes\"\n", "relative path"),
    ] {
        std::fs::write(&file, format!("[log]\nlevel = \"info\"\n{text}")).expect("write");
        let err = Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect_err(text);
        assert_eq!(err.key.as_deref(), Some("mirror.dir"), "{text}");
        assert_eq!(err.line, Some(4), "{text}");
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    let err = Config::load(
        &Overrides::default(),
        &env_of(&[("CONVOS_MIRROR_DIR", "~/data/archive/x")]),
        &platform(dir.path()),
    )
    .expect_err("env inside");
    assert!(
        err.to_string().contains("CONVOS_MIRROR_DIR")
            && err
                .to_string()
                .contains("choose a mirror folder outside it"),
        "{err}"
    );
    // Beside the data dir is fine.
    std::fs::write(&file, "[mirror]\ndir = \"~/data-notes\"\n").expect("write");
    Config::load(&flags, &env_of(&[]), &platform(dir.path())).expect("beside");
}

#[test]
fn the_web_viewer_listens_on_loopback_unless_remote_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = platform(dir.path());
    let loaded = Config::load(&Overrides::default(), &env_of(&[]), &p).expect("loads");
    assert!(loaded.config.web.enabled);
    assert_eq!(loaded.config.web.listen.to_string(), "127.0.0.1:8642");
    let env = env_of(&[("CONVOS_WEB_LISTEN", "[::1]:9000")]);
    let loaded = Config::load(&Overrides::default(), &env, &p).expect("loads");
    assert_eq!(loaded.config.web.listen.to_string(), "[::1]:9000");
    let err = Config::load(
        &Overrides::default(),
        &env_of(&[("CONVOS_WEB_LISTEN", "localhost")]),
        &p,
    )
    .expect_err("not an address");
    assert!(err.to_string().contains("CONVOS_WEB_LISTEN"), "{err}");

    // Beyond loopback only when allowed; the error names the key to set.
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[web]\nlisten = \"0.0.0.0:8642\"\n").expect("write");
    let flags = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let err = Config::load(&flags, &env_of(&[]), &p).expect_err("remote refused");
    assert_eq!(err.key.as_deref(), Some("web.listen"));
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("allow_remote = true"), "{err}");
    std::fs::write(
        &file,
        "[web]\nlisten = \"0.0.0.0:8642\"\nallow_remote = true\n",
    )
    .expect("write");
    let loaded = Config::load(&flags, &env_of(&[]), &p).expect("allowed");
    assert!(!loaded.config.web.listen.ip().is_loopback());
    // Turned off, the address does not matter.
    std::fs::write(&file, "[web]\nenabled = false\nlisten = \"0.0.0.0:1\"\n").expect("write");
    assert!(Config::load(&flags, &env_of(&[]), &p).is_ok());
}
