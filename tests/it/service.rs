//! `convos service install|uninstall|status` and the packaging around it (issue 4, items
//! 6 and 7): the actions against temp dirs with a recording command runner (systemd and
//! launchd alike, whatever the host), the rendered unit through `systemd-analyze verify`,
//! the plist through Python's plistlib, the packaged unit against the renderer, the
//! Homebrew formula's text, and a .deb assembled from `[package.metadata.deb]`.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use convos::cli::ServiceAction;
use convos::service::{
    self, Invocation, LAUNCHD_LABEL, Manager, Output, Runner, ServiceError, Setup,
    render_launchd_plist, render_systemd_unit,
};
use tempfile::TempDir;

use crate::support::cli::CliEnv;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Records every command; answers from a queue of scripted outputs, then success.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    answers: VecDeque<io::Result<Output>>,
}

impl Recorder {
    fn answering(answers: impl IntoIterator<Item = io::Result<Output>>) -> Self {
        Recorder {
            calls: Vec::new(),
            answers: answers.into_iter().collect(),
        }
    }
}

impl Runner for Recorder {
    fn run(&mut self, invocation: &Invocation) -> io::Result<Output> {
        self.calls.push(invocation.to_string());
        self.answers.pop_front().unwrap_or_else(|| Ok(ok("")))
    }
}

fn ok(stdout: &str) -> Output {
    Output {
        success: true,
        code: Some(0),
        stdout: stdout.to_owned(),
        stderr: String::new(),
    }
}

fn fail(code: i32, stderr: &str) -> Output {
    Output {
        success: false,
        code: Some(code),
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

/// A setup whose every path is inside a fresh temp dir.
fn setup(manager: Manager) -> (TempDir, Setup) {
    let root = tempfile::tempdir().expect("temp dir");
    let home = root.path().join("home");
    fs::create_dir_all(&home).expect("home");
    let setup = Setup {
        manager,
        binary: root.path().join("bin/convos"),
        config_home: home.join(".config"),
        home,
        uid: 501,
        packaged_unit: None,
        retry_delay: Duration::ZERO,
    };
    (root, setup)
}

fn execute(
    action: ServiceAction,
    dry_run: bool,
    setup: &Setup,
    runner: &mut Recorder,
) -> Result<String, ServiceError> {
    service::execute(action, dry_run, setup, runner)
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out
}

// ---- systemd -------------------------------------------------------------------------

#[test]
fn systemd_install_writes_the_unit_then_reloads_enables_and_starts() {
    let (_root, setup) = setup(Manager::Systemd);
    let mut runner = Recorder::default();
    let report = execute(ServiceAction::Install, false, &setup, &mut runner).expect("install");

    let file = setup.config_home.join("systemd/user/convos.service");
    let unit = fs::read_to_string(&file).expect("unit written");
    assert!(
        unit.contains(&format!("\nExecStart={} run\n", setup.binary.display())),
        "{unit}"
    );
    assert_eq!(unit, render_systemd_unit(&setup.binary).unwrap());
    assert_eq!(
        runner.calls,
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable convos.service",
            "systemctl --user restart convos.service",
        ]
    );
    assert!(
        report.contains(&format!("Wrote {}", file.display())),
        "{report}"
    );
    assert!(
        report.contains("Ran: systemctl --user restart convos.service"),
        "{report}"
    );
    assert!(
        report.contains("journalctl --user -u convos -f"),
        "{report}"
    );
    assert!(report.contains("loginctl enable-linger"), "{report}");

    // Installing again is harmless and says the file did not change.
    let again = execute(ServiceAction::Install, false, &setup, &mut runner).expect("reinstall");
    assert!(again.contains("(unchanged)"), "{again}");
    assert_eq!(runner.calls.len(), 6);
}

#[test]
fn systemd_unit_goes_under_xdg_config_home() {
    let (root, mut setup) = setup(Manager::Systemd);
    setup.config_home = root.path().join("xdg-config");
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    assert!(
        root.path()
            .join("xdg-config/systemd/user/convos.service")
            .is_file()
    );
    assert!(!setup.home.join(".config").exists());
}

#[test]
fn systemd_uninstall_stops_and_disables_before_removing_the_unit() {
    let (_root, setup) = setup(Manager::Systemd);
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let file = setup.service_file();
    assert!(file.is_file());

    let mut runner = Recorder::default();
    let report = execute(ServiceAction::Uninstall, false, &setup, &mut runner).expect("uninstall");
    assert!(!file.exists(), "the unit file is removed");
    assert_eq!(
        runner.calls,
        [
            "systemctl --user disable --now convos.service",
            "systemctl --user daemon-reload",
        ]
    );
    assert!(
        report.contains(&format!("Removed {}", file.display())),
        "{report}"
    );

    // Nothing installed: nothing to run, and it says so.
    let mut runner = Recorder::default();
    let report = execute(ServiceAction::Uninstall, false, &setup, &mut runner).expect("again");
    assert!(runner.calls.is_empty());
    assert!(report.contains("not installed"), "{report}");
}

#[test]
fn systemd_uninstall_keeps_the_file_when_systemctl_fails() {
    let (_root, setup) = setup(Manager::Systemd);
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let mut runner =
        Recorder::answering([Ok(fail(1, "Failed to connect to bus: No medium found"))]);
    let err = execute(ServiceAction::Uninstall, false, &setup, &mut runner).unwrap_err();
    assert!(
        setup.service_file().is_file(),
        "a running service keeps its unit"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("systemctl --user disable --now convos.service"),
        "{msg}"
    );
    assert!(msg.contains("loginctl enable-linger"), "{msg}");
    assert!(msg.contains("left in place"), "{msg}");
}

#[test]
fn systemd_status_reports_the_file_and_systemctl_answers() {
    let (_root, setup) = setup(Manager::Systemd);
    let mut runner = Recorder::answering([Ok(fail(1, "")), Ok(fail(3, ""))]);
    let report = execute(ServiceAction::Status, false, &setup, &mut runner).expect("status");
    assert!(report.contains("not installed"), "{report}");

    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let mut runner = Recorder::answering([Ok(ok("enabled\n")), Ok(ok("active\n"))]);
    let report = execute(ServiceAction::Status, false, &setup, &mut runner).expect("status");
    assert_eq!(
        runner.calls,
        [
            "systemctl --user is-enabled convos.service",
            "systemctl --user is-active convos.service",
        ]
    );
    assert!(report.contains("(installed)"), "{report}");
    assert!(report.contains("enabled: enabled"), "{report}");
    assert!(report.contains("active: active"), "{report}");
    assert!(!report.contains("differs"), "{report}");

    // A unit written for another binary (an older install) is pointed out.
    let mut moved = setup.clone();
    moved.binary = setup.binary.with_file_name("convos-new");
    let report = execute(
        ServiceAction::Status,
        false,
        &moved,
        &mut Recorder::default(),
    )
    .expect("status");
    assert!(report.contains("differs"), "{report}");
}

#[test]
fn dry_run_writes_nothing_and_runs_nothing() {
    for manager in [Manager::Systemd, Manager::Launchd] {
        let (root, setup) = setup(manager);
        let mut runner = Recorder::default();
        let report = execute(ServiceAction::Install, true, &setup, &mut runner).expect("dry run");
        assert!(runner.calls.is_empty(), "{manager:?}: {:?}", runner.calls);
        assert!(
            files_under(root.path()).is_empty(),
            "{manager:?} wrote files"
        );
        assert!(report.starts_with("Dry run:"), "{report}");
        let rendered = setup.render().unwrap();
        assert!(
            report.contains(&rendered),
            "{manager:?}: the file is printed\n{report}"
        );
        match manager {
            Manager::Systemd => {
                for cmd in [
                    "systemctl --user daemon-reload",
                    "systemctl --user enable convos.service",
                    "systemctl --user restart convos.service",
                ] {
                    assert!(report.contains(&format!("Would run: {cmd}")), "{report}");
                }
            }
            Manager::Launchd => {
                let plist = setup.service_file();
                for cmd in [
                    "launchctl print gui/501/io.github.convos".to_owned(),
                    "launchctl bootout gui/501/io.github.convos".to_owned(),
                    format!("launchctl bootstrap gui/501 {}", plist.display()),
                ] {
                    assert!(report.contains(&cmd), "{cmd}\n{report}");
                }
            }
        }

        for action in [ServiceAction::Uninstall, ServiceAction::Status] {
            let mut runner = Recorder::default();
            execute(action, true, &setup, &mut runner).expect("dry run");
            assert!(
                runner.calls.is_empty(),
                "{manager:?} {action:?}: {:?}",
                runner.calls
            );
        }
    }

    // A dry-run uninstall leaves an installed file alone.
    let (_root, setup) = setup(Manager::Systemd);
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let mut runner = Recorder::default();
    let report = execute(ServiceAction::Uninstall, true, &setup, &mut runner).expect("dry run");
    assert!(setup.service_file().is_file());
    assert!(runner.calls.is_empty());
    assert!(report.contains("Would run: systemctl --user disable --now convos.service"));
    assert!(report.contains("Would remove"));
}

#[test]
fn missing_systemctl_says_the_unit_was_written_and_how_to_start_it() {
    let (_root, setup) = setup(Manager::Systemd);
    let mut runner = Recorder::answering([Err(io::Error::from(io::ErrorKind::NotFound))]);
    let err = execute(ServiceAction::Install, false, &setup, &mut runner).unwrap_err();
    assert!(matches!(err, ServiceError::Spawn { .. }), "{err:?}");
    let msg = err.to_string();
    let file = setup.service_file();
    assert!(file.is_file());
    assert!(msg.contains("systemctl was not found"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(
        msg.contains("systemctl --user enable --now convos"),
        "{msg}"
    );
}

#[test]
fn no_user_session_bus_points_at_linger() {
    let (_root, setup) = setup(Manager::Systemd);
    let mut runner = Recorder::answering([Ok(fail(
        1,
        "Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined",
    ))]);
    let err = execute(ServiceAction::Install, false, &setup, &mut runner).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`systemctl --user daemon-reload` failed (exit 1)"),
        "{msg}"
    );
    assert!(msg.contains("loginctl enable-linger"), "{msg}");
    assert!(msg.contains("not through sudo"), "{msg}");
    assert_eq!(runner.calls.len(), 1, "stops at the first failure");
}

// ---- launchd -------------------------------------------------------------------------

#[test]
fn launchd_install_writes_the_agent_and_bootstraps_it() {
    let (_root, setup) = setup(Manager::Launchd);
    // `launchctl print` fails: not loaded yet.
    let mut runner = Recorder::answering([Ok(fail(113, "Could not find service"))]);
    let report = execute(ServiceAction::Install, false, &setup, &mut runner).expect("install");

    let plist = setup
        .home
        .join("Library/LaunchAgents/io.github.convos.plist");
    let text = fs::read_to_string(&plist).expect("plist written");
    assert!(text.contains(&format!("<string>{}</string>", setup.binary.display())));
    let log = setup.home.join("Library/Logs/convos/convos.log");
    assert!(text.contains(&format!("<string>{}</string>", log.display())));
    assert!(setup.home.join("Library/Logs/convos").is_dir());
    assert_eq!(
        runner.calls,
        [
            "launchctl print gui/501/io.github.convos".to_owned(),
            "launchctl enable gui/501/io.github.convos".to_owned(),
            format!("launchctl bootstrap gui/501 {}", plist.display()),
        ]
    );
    assert!(report.contains("Files and Folders"), "{report}");
    assert!(
        report.contains("log stream --predicate 'process == \"convos\"'"),
        "{report}"
    );
}

#[test]
fn launchd_reinstall_boots_out_the_loaded_agent_first() {
    let (_root, setup) = setup(Manager::Launchd);
    let mut runner =
        Recorder::answering([Ok(ok("gui/501/io.github.convos = {\n\tstate = running\n}"))]);
    execute(ServiceAction::Install, false, &setup, &mut runner).expect("install");
    let plist = setup.service_file();
    assert_eq!(
        runner.calls,
        [
            "launchctl print gui/501/io.github.convos".to_owned(),
            "launchctl bootout gui/501/io.github.convos".to_owned(),
            "launchctl enable gui/501/io.github.convos".to_owned(),
            format!("launchctl bootstrap gui/501 {}", plist.display()),
        ]
    );

    // launchd may still be tearing the old job down: one bootstrap retry settles it.
    let mut runner = Recorder::answering([
        Ok(ok("loaded")),
        Ok(ok("")),
        Ok(ok("")),
        Ok(fail(5, "Bootstrap failed: 5: Input/output error")),
    ]);
    execute(ServiceAction::Install, false, &setup, &mut runner).expect("retried");
    assert_eq!(runner.calls.len(), 5);
    assert!(runner.calls[4].starts_with("launchctl bootstrap"));
}

#[test]
fn launchd_bootstrap_failure_explains_what_to_check() {
    let (_root, setup) = setup(Manager::Launchd);
    let mut runner = Recorder::answering([
        Ok(fail(113, "")),
        Ok(ok("")),
        Ok(fail(5, "Bootstrap failed: 5: Input/output error")),
    ]);
    let err = execute(ServiceAction::Install, false, &setup, &mut runner).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("launchctl bootstrap gui/501"), "{msg}");
    assert!(msg.contains("Input/output error"), "{msg}");
    assert!(msg.contains("plutil -lint"), "{msg}");
    assert_eq!(runner.calls.len(), 3, "no retry without a bootout");
}

#[test]
fn launchd_uninstall_boots_out_and_removes_the_agent() {
    let (_root, setup) = setup(Manager::Launchd);
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let plist = setup.service_file();
    assert!(plist.is_file());

    let mut runner = Recorder::default(); // print succeeds: loaded
    let report = execute(ServiceAction::Uninstall, false, &setup, &mut runner).expect("uninstall");
    assert!(!plist.exists());
    assert_eq!(
        runner.calls,
        [
            "launchctl print gui/501/io.github.convos",
            "launchctl bootout gui/501/io.github.convos",
        ]
    );
    assert!(report.contains("Removed"), "{report}");
    assert!(
        setup.home.join("Library/Logs/convos").is_dir(),
        "logs are kept"
    );

    let mut runner = Recorder::answering([Ok(fail(113, ""))]);
    let report = execute(ServiceAction::Uninstall, false, &setup, &mut runner).expect("again");
    assert!(report.contains("not installed"), "{report}");
    assert_eq!(runner.calls.len(), 1);
}

#[test]
fn launchd_status_summarises_launchctl_print() {
    let (_root, setup) = setup(Manager::Launchd);
    execute(
        ServiceAction::Install,
        false,
        &setup,
        &mut Recorder::default(),
    )
    .expect("install");
    let print = "gui/501/io.github.convos = {\n\tactive count = 1\n\tstate = running\n\truns = 2\n\tpid = 812\n\tlast exit code = (never exited)\n\tendpoints = {\n\t\tstate = x\n\t}\n}\n";
    let mut runner = Recorder::answering([Ok(ok(print))]);
    let report = execute(ServiceAction::Status, false, &setup, &mut runner).expect("status");
    assert!(report.contains("(installed)"), "{report}");
    assert!(report.contains("loaded: yes"), "{report}");
    assert!(report.contains("  state: running\n"), "{report}");
    assert!(report.contains("  pid: 812\n"), "{report}");
    assert!(!report.contains("state: x"), "{report}");

    let mut runner = Recorder::answering([Ok(fail(113, "Could not find service"))]);
    let report = execute(ServiceAction::Status, false, &setup, &mut runner).expect("status");
    assert!(
        report.contains("loaded: no (Could not find service)"),
        "{report}"
    );
}

// ---- the files themselves ------------------------------------------------------------

/// `systemd-analyze verify --user` on the unit rendered for the test binary. It needs a
/// runtime dir to start its private user manager; one is made in the temp dir, so this
/// works in a container without a session. Skipped where systemd-analyze is missing.
#[test]
fn rendered_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = dir.path().join("runtime");
    fs::create_dir_all(&runtime).expect("runtime dir");
    set_mode(&runtime, 0o700);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_convos"));
    let unit = dir.path().join("convos.service");
    fs::write(&unit, render_systemd_unit(&binary).unwrap()).expect("write unit");

    let out = Command::new(analyze)
        .args(["verify", "--user"])
        .arg(&unit)
        .env("HOME", dir.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("running systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Any line naming the unit is a complaint about it: an unknown or misspelt
    // directive, a bad value, a missing binary. Such lines are warnings that leave the
    // exit status 0, so they are checked on their own.
    let complaints: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("convos.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

/// The packaged unit (`packaging/deb/convos.service`, installed to
/// /usr/lib/systemd/user by the .deb) is the template rendered for /usr/bin/convos.
/// `CONVOS_BLESS=1 cargo test` rewrites it after a template change.
#[test]
fn packaged_unit_is_the_template_rendered_for_usr_bin() {
    let path = Path::new(MANIFEST_DIR).join("packaging/deb/convos.service");
    let expected = render_systemd_unit(Path::new("/usr/bin/convos")).unwrap();
    if std::env::var_os("CONVOS_BLESS").is_some() {
        fs::write(&path, &expected).expect("writing the packaged unit");
    }
    let actual = fs::read_to_string(&path).expect("reading packaging/deb/convos.service");
    assert!(
        actual == expected,
        "packaging/deb/convos.service is out of date with systemd/convos.service; \
         regenerate it with `CONVOS_BLESS=1 cargo test --test it service::packaged`"
    );
    assert!(actual.contains("\nExecStart=/usr/bin/convos run\n"));
}

/// The plist, rendered for a home with characters XML must escape, loads with Python's
/// plistlib and has every key the agent needs. Skipped where python3 is missing.
#[test]
fn rendered_plist_parses_and_has_the_required_keys() {
    let Some(python) = which("python3") else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Path::new("/Users/r&d <lab>");
    let binary = Path::new("/opt/homebrew/opt/convos/bin/convos");
    let file = dir.path().join(format!("{LAUNCHD_LABEL}.plist"));
    fs::write(&file, render_launchd_plist(binary, home).unwrap()).expect("write plist");
    let script = r#"
import json, plistlib, sys
with open(sys.argv[1], "rb") as f:
    print(json.dumps(plistlib.load(f)))
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "plistlib rejected the plist: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plist: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let log = "/Users/r&d <lab>/Library/Logs/convos/convos.log";
    assert_eq!(plist["Label"], LAUNCHD_LABEL);
    assert_eq!(
        plist["ProgramArguments"],
        serde_json::json!([binary, "run"])
    );
    assert_eq!(plist["RunAtLoad"], true);
    assert_eq!(
        plist["KeepAlive"],
        serde_json::json!({"SuccessfulExit": false})
    );
    assert_eq!(plist["ProcessType"], "Background");
    assert_eq!(plist["StandardOutPath"], log);
    assert_eq!(plist["StandardErrorPath"], log);
    assert_eq!(plist["Umask"], 0o077);
}

#[test]
fn plist_template_documents_launchctl_and_the_downloads_permission() {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join("launchd/io.github.convos.plist"))
        .expect("reading the plist template");
    assert_eq!(text, service::LAUNCHD_TEMPLATE);
    for needle in [
        "launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/io.github.convos.plist",
        "launchctl bootout gui/$(id -u)/io.github.convos",
        "launchctl kickstart -k gui/$(id -u)/io.github.convos",
        "tail -f ~/Library/Logs/convos/convos.log",
        "Files and Folders",
        "Full Disk Access",
    ] {
        assert!(text.contains(needle), "missing: {needle}");
    }
}

#[test]
fn homebrew_formula_runs_the_daemon_as_a_service() {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join("packaging/homebrew/convos.rb"))
        .expect("reading the formula");
    assert!(text.contains("class Convos < Formula"));
    assert!(text.contains(r#"system "cargo", "install", *std_cargo_args"#));
    assert!(text.contains("config.example.toml"));
    let service = block(&text, "  service do\n").expect("a service do block");
    assert!(
        service.contains(r#"run [opt_bin/"convos", "run"]"#),
        "{service}"
    );
    assert!(service.contains("keep_alive"), "{service}");
    assert!(
        service.contains(r#"var/"log/convos/convos.log""#),
        "{service}"
    );
    let test = block(&text, "  test do\n").expect("a test do block");
    assert!(test.contains("--version"), "{test}");
    assert!(test.contains(r#""import""#), "{test}");
}

/// The text from `opening` to the `end` at its indentation.
fn block<'a>(text: &'a str, opening: &str) -> Option<&'a str> {
    let start = text.find(opening)?;
    let indent = &opening[..opening.len() - opening.trim_start().len()];
    let close = format!("\n{indent}end\n");
    let end = text[start..].find(&close)?;
    Some(&text[start..start + end + close.len()])
}

// ---- the .deb ------------------------------------------------------------------------

/// One `[package.metadata.deb]` asset: source in the repo, destination, mode.
struct Asset {
    source: String,
    dest: String,
    mode: u32,
}

/// `[package.metadata.deb]` from Cargo.toml, or None (with a note) while it is absent.
fn deb_metadata() -> Option<(toml::Table, toml::Table)> {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Table = text.parse().expect("Cargo.toml parses");
    let package = manifest.get("package")?.as_table()?.clone();
    let deb = package
        .get("metadata")
        .and_then(|m| m.get("deb"))
        .and_then(|d| d.as_table())
        .cloned();
    if deb.is_none() {
        eprintln!("skipped: Cargo.toml has no [package.metadata.deb] section yet");
    }
    Some((package, deb?))
}

fn deb_assets(deb: &toml::Table) -> Vec<Asset> {
    let assets = deb
        .get("assets")
        .and_then(|a| a.as_array())
        .expect("[package.metadata.deb] lists assets");
    assets
        .iter()
        .map(|a| {
            let field = |i: usize, key: &str| {
                a.get(i)
                    .or_else(|| a.get(key))
                    .and_then(|v| v.as_str())
                    .unwrap_or_else(|| panic!("asset {a} has no {key}"))
                    .to_owned()
            };
            let (source, mut dest, mode) = (field(0, "source"), field(1, "dest"), field(2, "mode"));
            if dest.ends_with('/') {
                let name = Path::new(&source).file_name().expect("asset file name");
                dest.push_str(&name.to_string_lossy());
            }
            Asset {
                source,
                dest,
                mode: u32::from_str_radix(&mode, 8).expect("octal asset mode"),
            }
        })
        .collect()
}

#[test]
fn deb_metadata_installs_the_binary_unit_and_docs() {
    let Some((_, deb)) = deb_metadata() else {
        return;
    };
    let assets = deb_assets(&deb);
    let find = |dest: &str| assets.iter().find(|a| a.dest == dest);
    let bin = find("usr/bin/convos").expect("binary asset");
    assert_eq!(bin.source, "target/release/convos");
    assert_eq!(bin.mode, 0o755);
    let unit = find("usr/lib/systemd/user/convos.service").expect("user unit asset");
    assert_eq!(unit.source, "packaging/deb/convos.service");
    assert!(find("usr/share/doc/convos/config.example.toml").is_some());
    assert!(
        assets
            .iter()
            .any(|a| a.source == "README.md" && a.dest.starts_with("usr/share/doc/convos/"))
    );
    for asset in assets.iter().filter(|a| !a.source.starts_with("target/")) {
        assert!(
            Path::new(MANIFEST_DIR).join(&asset.source).is_file(),
            "{}",
            asset.source
        );
    }
    assert_eq!(deb.get("section").and_then(|v| v.as_str()), Some("utils"));
    assert_eq!(
        deb.get("priority").and_then(|v| v.as_str()),
        Some("optional")
    );
}

/// Lays the assets out as cargo-deb would (the debug binary standing in for the release
/// one), writes a minimal DEBIAN/control, builds with dpkg-deb and lists the package.
/// Skipped without the metadata or without dpkg-deb.
#[test]
fn deb_package_builds_and_lists_its_files() {
    let Some((package, deb)) = deb_metadata() else {
        return;
    };
    let Some(dpkg_deb) = which("dpkg-deb") else {
        eprintln!("skipped: dpkg-deb is not installed");
        return;
    };
    // In cargo's own tmp dir, on the binary's filesystem, so it can be hard-linked
    // rather than copied.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let root = dir.path().join("root");
    for asset in deb_assets(&deb) {
        let source = if asset.source == "target/release/convos" {
            PathBuf::from(env!("CARGO_BIN_EXE_convos"))
        } else {
            Path::new(MANIFEST_DIR).join(&asset.source)
        };
        let dest = root.join(&asset.dest);
        fs::create_dir_all(dest.parent().expect("dest folder")).expect("mkdir");
        if current_mode(&source) == asset.mode && fs::hard_link(&source, &dest).is_ok() {
            continue;
        }
        fs::copy(&source, &dest).expect("copy asset");
        set_mode(&dest, asset.mode);
    }
    let text = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let extended = text(&deb, "extended-description").unwrap_or_default();
    let control = format!(
        "Package: convos\nVersion: {}-1\nArchitecture: {}\nMaintainer: {}\nSection: {}\nPriority: {}\nDescription: {}\n{}",
        text(&package, "version").expect("version"),
        deb_architecture(),
        text(&deb, "maintainer").unwrap_or_else(|| "convos <convos@localhost>".to_owned()),
        text(&deb, "section").unwrap_or_else(|| "utils".to_owned()),
        text(&deb, "priority").unwrap_or_else(|| "optional".to_owned()),
        text(&package, "description").expect("description"),
        control_paragraph(&extended),
    );
    fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN");
    fs::write(root.join("DEBIAN/control"), control).expect("control");

    let deb_file = dir.path().join("convos.deb");
    let built = Command::new(&dpkg_deb)
        // No compression: the debug binary is large and only the listing matters.
        .args(["-Znone", "--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb_file)
        .output()
        .expect("running dpkg-deb --build");
    assert!(
        built.status.success(),
        "dpkg-deb --build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let listed = Command::new(&dpkg_deb)
        .arg("-c")
        .arg(&deb_file)
        .output()
        .expect("running dpkg-deb -c");
    assert!(listed.status.success());
    let listing = String::from_utf8_lossy(&listed.stdout);
    for path in [
        "./usr/bin/convos",
        "./usr/lib/systemd/user/convos.service",
        "./usr/share/doc/convos/config.example.toml",
        "./usr/share/doc/convos/README",
    ] {
        assert!(listing.contains(path), "{path} missing from\n{listing}");
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with("./usr/bin/convos")),
        "{listing}"
    );
}

/// The extended description as control-file continuation lines.
fn control_paragraph(text: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        if !out.is_empty() {
            out.push_str(" .\n");
        }
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + word.len() > 72 {
                out.push_str(&format!(" {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str(&format!(" {line}\n"));
        }
    }
    out
}

fn deb_architecture() -> String {
    Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| {
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .to_owned()
        })
}

// ---- the command line ----------------------------------------------------------------

#[test]
fn cli_dry_run_prints_the_file_for_this_binary_and_writes_nothing() {
    let env = CliEnv::new();
    let run = env.run(["service", "install", "--dry-run"]);
    run.ok();
    let binary = fs::canonicalize(env!("CARGO_BIN_EXE_convos")).expect("binary path");
    assert!(run.stdout.starts_with("Dry run:"), "{}", run.stdout);
    if cfg!(target_os = "linux") {
        assert!(
            run.stdout
                .contains(&format!("\nExecStart={} run\n", binary.display())),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("Would run: systemctl --user daemon-reload")
        );
    } else if cfg!(target_os = "macos") {
        assert!(
            run.stdout
                .contains(&format!("<string>{}</string>", binary.display()))
        );
        assert!(run.stdout.contains("launchctl bootstrap"));
    }
    let home = env.root().join("home");
    assert!(!home.join(".config/systemd").exists());
    assert!(!home.join("Library").exists());
}

#[test]
fn cli_rejects_an_unknown_service_action() {
    let env = CliEnv::new();
    env.run(["service", "restart"]).expect_code(2);
}

// ---- helpers -------------------------------------------------------------------------

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

#[cfg(unix)]
fn current_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn current_mode(_: &Path) -> u32 {
    0
}
