//! `convos service install|uninstall|status [--dry-run]`: the background service for the
//! current user, a systemd user unit on Linux and a launchd LaunchAgent on macOS.
//!
//! The files written are rendered from the templates checked in at `systemd/convos.service`
//! and `launchd/io.github.convos.plist` (compiled in with `include_str!`), so what the repo
//! documents and what gets installed cannot drift apart. Rendering is pure; the commands
//! (`systemctl --user`, `launchctl`) go through a [`Runner`] so tests record them instead,
//! and every location comes from a [`Setup`] so tests point it at a temp dir.

use crate::cli::ServiceAction;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The checked-in systemd user unit (its `ExecStart=` names `%h/.cargo/bin/convos`).
pub const SYSTEMD_TEMPLATE: &str = include_str!("../systemd/convos.service");
/// The checked-in LaunchAgent, with `@BINARY@` and `@HOME@` placeholders.
pub const LAUNCHD_TEMPLATE: &str = include_str!("../launchd/io.github.convos.plist");
/// The systemd unit name.
pub const UNIT_NAME: &str = "convos.service";
/// The launchd label (also the plist's file stem).
pub const LAUNCHD_LABEL: &str = "io.github.convos";
/// Where the Debian package installs its user unit.
pub const PACKAGED_UNIT: &str = "/usr/lib/systemd/user/convos.service";

const BINARY_PLACEHOLDER: &str = "@BINARY@";
const HOME_PLACEHOLDER: &str = "@HOME@";

/// Why a service action failed; each message names the file or command and what to do.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The platform has neither systemd nor launchd support in convos.
    #[error(
        "`convos service` supports Linux (systemd) and macOS (launchd), not {0}; run `convos run` under your own service manager"
    )]
    Unsupported(&'static str),
    /// No home folder could be determined.
    #[error("cannot find your home folder: set HOME and try again")]
    NoHome,
    /// The running binary's path could not be found.
    #[error("cannot find the path of the running convos binary: {0}")]
    CurrentExe(#[source] io::Error),
    /// A path cannot be written into a service file.
    #[error("cannot put {path:?} into the service file: {reason}")]
    UnusablePath {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Creating, writing or removing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done ("write", "remove", "create folder").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A command could not be started (usually: the tool is not installed).
    #[error("cannot run `{command}`: {source}. {hint}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        source: io::Error,
        /// What state things are in and what to do.
        hint: String,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {detail}\n{hint}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// Its error output (or standard output when that is empty).
        detail: String,
        /// What to do about it.
        hint: String,
    },
}

/// Which service manager to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// A systemd user unit, driven by `systemctl --user`.
    Systemd,
    /// A launchd LaunchAgent in the user's GUI domain, driven by `launchctl`.
    Launchd,
}

impl Manager {
    /// The manager for the platform convos was built for.
    pub fn current() -> Result<Self, ServiceError> {
        if cfg!(target_os = "macos") {
            Ok(Manager::Launchd)
        } else if cfg!(target_os = "linux") {
            Ok(Manager::Systemd)
        } else {
            Err(ServiceError::Unsupported(std::env::consts::OS))
        }
    }
}

/// Everything the actions need to know about the machine; tests build one by hand.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The service manager.
    pub manager: Manager,
    /// The absolute path of the binary the service runs.
    pub binary: PathBuf,
    /// The user's home folder.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME` or `~/.config` (where systemd reads user units).
    pub config_home: PathBuf,
    /// The user's numeric id (launchd's `gui/<uid>` domain).
    pub uid: u32,
    /// A unit installed by a package, reported by `status` when it exists.
    pub packaged_unit: Option<PathBuf>,
    /// How long to wait before retrying `launchctl bootstrap` right after a bootout.
    pub retry_delay: Duration,
}

impl Setup {
    /// The real machine: the running binary, `$HOME`, `$XDG_CONFIG_HOME`, the real uid.
    pub fn detect() -> Result<Self, ServiceError> {
        let manager = Manager::current()?;
        let home = directories::BaseDirs::new()
            .map(|b| b.home_dir().to_path_buf())
            .ok_or(ServiceError::NoHome)?;
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(ServiceError::CurrentExe)?;
        Ok(Setup {
            manager,
            binary: stable_binary_path(&exe, &|p| p.exists()),
            config_home: config_home(&home, std::env::var_os("XDG_CONFIG_HOME")),
            home,
            uid: current_uid(),
            packaged_unit: Some(PathBuf::from(PACKAGED_UNIT)),
            retry_delay: Duration::from_secs(1),
        })
    }

    /// The service file this setup installs.
    pub fn service_file(&self) -> PathBuf {
        match self.manager {
            Manager::Systemd => self.config_home.join("systemd/user").join(UNIT_NAME),
            Manager::Launchd => self
                .home
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
        }
    }

    /// The folder launchd writes the daemon's output to.
    pub fn launchd_log_dir(&self) -> PathBuf {
        self.home.join("Library/Logs/convos")
    }

    /// The service file's contents for this setup.
    pub fn render(&self) -> Result<String, ServiceError> {
        match self.manager {
            Manager::Systemd => render_systemd_unit(&self.binary),
            Manager::Launchd => render_launchd_plist(&self.binary, &self.home),
        }
    }

    fn gui_domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn launchd_target(&self) -> String {
        format!("gui/{}/{LAUNCHD_LABEL}", self.uid)
    }
}

/// `$XDG_CONFIG_HOME` when set to an absolute path (the XDG spec ignores relative ones),
/// else `~/.config`.
pub fn config_home(home: &Path, xdg_config_home: Option<std::ffi::OsString>) -> PathBuf {
    match xdg_config_home.map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => home.join(".config"),
    }
}

/// The path a service should run for the binary at `canonical`. A Homebrew binary
/// canonicalises into its versioned Cellar folder, which `brew upgrade` deletes; its
/// `opt/convos` link follows upgrades, so that is used when it exists.
pub fn stable_binary_path(canonical: &Path, exists: &dyn Fn(&Path) -> bool) -> PathBuf {
    let parts: Vec<_> = canonical.components().collect();
    // …/Cellar/convos/<version>/bin/convos
    if parts.len() >= 5 {
        let tail = &parts[parts.len() - 5..];
        let names: Vec<_> = tail.iter().map(|c| c.as_os_str()).collect();
        if names[0] == "Cellar" && names[1] == "convos" && names[3] == "bin" {
            let prefix: PathBuf = parts[..parts.len() - 5].iter().collect();
            let opt = prefix.join("opt/convos/bin").join(names[4]);
            if exists(&opt) {
                return opt;
            }
        }
    }
    canonical.to_path_buf()
}

#[cfg(unix)]
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(not(unix))]
fn current_uid() -> u32 {
    0
}

/// The systemd user unit for `binary`: the checked-in template with its `ExecStart=`
/// line naming `binary`.
pub fn render_systemd_unit(binary: &Path) -> Result<String, ServiceError> {
    let exec = systemd_exec_path(binary)?;
    let mut out = String::with_capacity(SYSTEMD_TEMPLATE.len() + exec.len());
    for line in SYSTEMD_TEMPLATE.split_inclusive('\n') {
        if line.starts_with("ExecStart=") {
            out.push_str("ExecStart=");
            out.push_str(&exec);
            out.push_str(" run\n");
        } else {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// `binary` as the first word of a systemd command line: `%` doubled (it starts a
/// specifier), quoted when it holds whitespace. systemd refuses quotes, backslashes and
/// control characters in an executable's name, so those are errors here rather than a
/// unit that will not start.
fn systemd_exec_path(binary: &Path) -> Result<String, ServiceError> {
    let text = usable_path(binary)?;
    if text.contains(['"', '\'', '\\']) {
        return Err(unusable(
            binary,
            "systemd does not accept quotes or backslashes in an executable's path; move the binary",
        ));
    }
    let escaped = text.replace('%', "%%");
    Ok(if escaped.contains(char::is_whitespace) {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}

/// The LaunchAgent for `binary`, logging under `home`/Library/Logs/convos: the checked-in
/// template with its placeholders filled (absolute paths, since launchd expands no `~`).
pub fn render_launchd_plist(binary: &Path, home: &Path) -> Result<String, ServiceError> {
    let binary = xml_escape(usable_path(binary)?);
    let home = xml_escape(usable_path(home)?);
    // The header comment names the placeholders in its by-hand instructions; only the
    // plist body after it is filled in.
    let body_start = LAUNCHD_TEMPLATE.find("<plist").unwrap_or(0);
    let (head, body) = LAUNCHD_TEMPLATE.split_at(body_start);
    let body = body
        .replace(BINARY_PLACEHOLDER, &binary)
        .replace(HOME_PLACEHOLDER, &home);
    Ok(format!("{head}{body}"))
}

/// The path as UTF-8 text, absolute and free of control characters (a newline would
/// start a new directive in a unit file and is not allowed in XML).
fn usable_path(path: &Path) -> Result<&str, ServiceError> {
    let text = path
        .to_str()
        .ok_or_else(|| unusable(path, "it is not valid UTF-8"))?;
    if !path.is_absolute() {
        return Err(unusable(path, "it is not an absolute path"));
    }
    if text.contains(char::is_control) {
        return Err(unusable(path, "it contains control characters"));
    }
    Ok(text)
}

fn unusable(path: &Path, reason: &'static str) -> ServiceError {
    ServiceError::UnusablePath {
        path: path.to_path_buf(),
        reason,
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One command line to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program (looked up in `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Invocation {
    /// `program args…`.
    pub fn new(program: &str, args: &[&str]) -> Self {
        Invocation {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

impl fmt::Display for Invocation {
    /// The command as it would be typed into a POSIX shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Whether it exited 0.
    pub success: bool,
    /// Its exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs commands; [`SystemRunner`] really does, tests record them instead.
pub trait Runner {
    /// Runs `invocation` to completion. An `Err` means it could not be started.
    fn run(&mut self, invocation: &Invocation) -> io::Result<Output>;
}

/// Runs commands as child processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&mut self, invocation: &Invocation) -> io::Result<Output> {
        let out = std::process::Command::new(&invocation.program)
            .args(&invocation.args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok(Output {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs `convos service <action>` on this machine and returns the text to print.
pub fn run(action: ServiceAction, dry_run: bool) -> Result<String, ServiceError> {
    let setup = Setup::detect()?;
    execute(action, dry_run, &setup, &mut SystemRunner)
}

/// Performs `action` for `setup` through `runner` (or, with `dry_run`, only describes
/// it: nothing is written and no command is run) and returns the report to print.
pub fn execute(
    action: ServiceAction,
    dry_run: bool,
    setup: &Setup,
    runner: &mut dyn Runner,
) -> Result<String, ServiceError> {
    let mut exec = Exec {
        dry_run,
        runner,
        report: String::new(),
    };
    if dry_run {
        exec.line("Dry run: nothing is written and no command is run.");
    }
    match (setup.manager, action) {
        (Manager::Systemd, ServiceAction::Install) => systemd_install(setup, &mut exec)?,
        (Manager::Systemd, ServiceAction::Uninstall) => systemd_uninstall(setup, &mut exec)?,
        (Manager::Systemd, ServiceAction::Status) => systemd_status(setup, &mut exec)?,
        (Manager::Launchd, ServiceAction::Install) => launchd_install(setup, &mut exec)?,
        (Manager::Launchd, ServiceAction::Uninstall) => launchd_uninstall(setup, &mut exec)?,
        (Manager::Launchd, ServiceAction::Status) => launchd_status(setup, &mut exec)?,
    }
    Ok(exec.report)
}

/// Carries out (or, in a dry run, describes) each step and keeps the report.
struct Exec<'a> {
    dry_run: bool,
    runner: &'a mut dyn Runner,
    report: String,
}

/// What to say when a command fails, depending on the tool.
#[derive(Clone, Copy)]
enum Tool {
    Systemctl,
    Launchctl,
}

impl Exec<'_> {
    fn line(&mut self, text: impl AsRef<str>) {
        self.report.push_str(text.as_ref());
        self.report.push('\n');
    }

    fn create_dir(&mut self, dir: &Path) -> Result<(), ServiceError> {
        if dir.is_dir() {
            return Ok(());
        }
        if self.dry_run {
            self.line(format!("Would create {}", dir.display()));
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::File {
            action: "create folder",
            path: dir.to_path_buf(),
            source,
        })?;
        self.line(format!("Created {}", dir.display()));
        Ok(())
    }

    fn write(&mut self, path: &Path, contents: &str) -> Result<(), ServiceError> {
        if self.dry_run {
            self.line(format!("Would write {}:", path.display()));
            self.line(format!("--- {} ---", path.display()));
            self.report.push_str(contents);
            if !contents.ends_with('\n') {
                self.report.push('\n');
            }
            self.line("--- end ---");
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            self.create_dir(dir)?;
        }
        let unchanged = std::fs::read_to_string(path).is_ok_and(|old| old == contents);
        write_atomically(path, contents).map_err(|source| ServiceError::File {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
        self.line(format!(
            "Wrote {}{}",
            path.display(),
            if unchanged { " (unchanged)" } else { "" }
        ));
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> Result<(), ServiceError> {
        if self.dry_run {
            self.line(format!("Would remove {}", path.display()));
            return Ok(());
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ServiceError::File {
                    action: "remove",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        self.line(format!("Removed {}", path.display()));
        Ok(())
    }

    /// Runs a command that must succeed; `state` says what was already done, for the
    /// error when it fails or the tool is not there at all.
    fn run(
        &mut self,
        invocation: &Invocation,
        tool: Tool,
        state: &str,
    ) -> Result<(), ServiceError> {
        if self.dry_run {
            self.line(format!("Would run: {invocation}"));
            return Ok(());
        }
        let out = self.spawn(invocation, state)?;
        if !out.success {
            return Err(failed(invocation, &out, tool, state));
        }
        self.line(format!("Ran: {invocation}"));
        Ok(())
    }

    /// Runs a read-only query whose exit status is information, not failure. `None`
    /// in a dry run (then nothing is run) or when the tool is missing.
    fn query(&mut self, invocation: &Invocation) -> Option<Output> {
        if self.dry_run {
            self.line(format!("Would run: {invocation}"));
            return None;
        }
        self.runner.run(invocation).ok()
    }

    fn spawn(&mut self, invocation: &Invocation, state: &str) -> Result<Output, ServiceError> {
        self.runner
            .run(invocation)
            .map_err(|source| ServiceError::Spawn {
                command: invocation.to_string(),
                hint: if source.kind() == io::ErrorKind::NotFound {
                    format!("{} was not found. {state}", invocation.program)
                } else {
                    state.to_owned()
                },
                source,
            })
    }
}

/// Writes through a temporary file in the same folder and renames it into place, so a
/// service manager never reads half a file.
fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn failed(invocation: &Invocation, out: &Output, tool: Tool, state: &str) -> ServiceError {
    let detail = first_nonempty(&out.stderr, &out.stdout);
    let hint = match tool {
        Tool::Systemctl if is_bus_error(&out.stderr) => no_user_session_hint(),
        Tool::Systemctl => format!(
            "See `systemctl --user status {UNIT_NAME}` and `journalctl --user -u convos -e`."
        ),
        Tool::Launchctl => format!(
            "launchctl's errors are terse: check the plist with `plutil -lint`, look at \
             `launchctl print gui/$(id -u)/{LAUNCHD_LABEL}` and ~/Library/Logs/convos/convos.log. \
             launchctl needs your logged-in GUI session (not sudo, not a plain SSH login)."
        ),
    };
    ServiceError::CommandFailed {
        command: invocation.to_string(),
        status: out
            .code
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
        detail,
        hint: format!("{hint}\n{state}"),
    }
}

fn first_nonempty(a: &str, b: &str) -> String {
    let text = if a.trim().is_empty() { b } else { a };
    let text = text.trim();
    if text.is_empty() {
        "no output".to_owned()
    } else {
        text.to_owned()
    }
}

/// Whether systemctl's error says it could not reach the user's service manager (no
/// login session: sudo, su, cron, some SSH or container set-ups).
pub fn is_bus_error(stderr: &str) -> bool {
    [
        "Failed to connect to bus",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
        "No medium found",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

fn no_user_session_hint() -> String {
    "systemctl --user could not reach your user service manager. Run this from your own \
     login session (not through sudo or su). Over SSH or without a desktop, enable \
     lingering with `loginctl enable-linger $USER`, then log in again (or export \
     XDG_RUNTIME_DIR=/run/user/$(id -u)) and rerun the command."
        .to_owned()
}

fn systemctl(args: &[&str]) -> Invocation {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    Invocation::new("systemctl", &all)
}

fn launchctl(args: &[&str]) -> Invocation {
    Invocation::new("launchctl", args)
}

/// Whether `binary` is a build inside a cargo target folder (`…/target/debug/convos`,
/// or any folder cargo marked with its CACHEDIR.TAG, as under `CARGO_TARGET_DIR`).
fn in_cargo_target_dir(binary: &Path) -> bool {
    let Some(profile_dir) = binary.parent() else {
        return false;
    };
    let Some(target_dir) = profile_dir.parent() else {
        return false;
    };
    let profile = profile_dir.file_name().and_then(|n| n.to_str());
    matches!(profile, Some("debug" | "release"))
        && (target_dir.file_name().is_some_and(|n| n == "target")
            || target_dir.join("CACHEDIR.TAG").is_file())
}

/// Notes about where the binary lives that affect a long-lived service.
fn binary_notes(setup: &Setup, exec: &mut Exec<'_>) {
    if in_cargo_target_dir(&setup.binary) {
        exec.line(format!(
            "Note: {} is a build inside a cargo target folder; rebuilding or `cargo clean` \
             changes it under the running service. `cargo install --path .` gives a stable \
             ~/.cargo/bin/convos (then run `convos service install` from there).",
            setup.binary.display()
        ));
    }
}

fn systemd_install(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let unit = setup.render()?;
    let file = setup.service_file();
    binary_notes(setup, exec);
    if setup.uid == 0 {
        exec.line(
            "Note: running as root, so this installs the service for root's own user \
             manager. To install it for your user, run the command without sudo.",
        );
    }
    exec.write(&file, &unit)?;
    let written = format!(
        "The unit was written to {}; once systemd's user manager is reachable, run \
         `systemctl --user daemon-reload && systemctl --user enable --now convos`, or run \
         `{} run` under another service manager.",
        file.display(),
        setup.binary.display()
    );
    let reload = systemctl(&["daemon-reload"]);
    exec.run(&reload, Tool::Systemctl, &written)?;
    exec.run(
        &systemctl(&["enable", UNIT_NAME]),
        Tool::Systemctl,
        &written,
    )?;
    // restart rather than `enable --now`: it also starts a stopped service, and it makes
    // a reinstall after an upgrade run the new binary instead of leaving the old one up.
    exec.run(
        &systemctl(&["restart", UNIT_NAME]),
        Tool::Systemctl,
        &written,
    )?;
    if !exec.dry_run {
        exec.line("convos is installed and running as a systemd user service.");
    }
    exec.line("  status:  convos service status   (or: systemctl --user status convos)");
    exec.line("  logs:    journalctl --user -u convos -f");
    exec.line("  To keep it running while you are logged out: loginctl enable-linger $USER");
    Ok(())
}

fn systemd_uninstall(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let file = setup.service_file();
    if !file.exists() {
        exec.line(format!(
            "convos is not installed as a user service: {} does not exist.",
            file.display()
        ));
        packaged_unit_note(setup, exec);
        return Ok(());
    }
    let kept = format!("{} was left in place.", file.display());
    // Stop it before removing its file: a running service whose unit vanished lingers
    // as an orphan until the next daemon-reload.
    exec.run(
        &systemctl(&["disable", "--now", UNIT_NAME]),
        Tool::Systemctl,
        &kept,
    )?;
    exec.remove(&file)?;
    let removed = format!(
        "{} was removed; run `systemctl --user daemon-reload` when systemd is reachable.",
        file.display()
    );
    exec.run(&systemctl(&["daemon-reload"]), Tool::Systemctl, &removed)?;
    if !exec.dry_run {
        exec.line("convos is stopped and no longer starts at login. Its archive is kept.");
    }
    packaged_unit_note(setup, exec);
    Ok(())
}

fn packaged_unit_note(setup: &Setup, exec: &mut Exec<'_>) {
    if let Some(packaged) = setup.packaged_unit.as_deref().filter(|p| p.exists()) {
        exec.line(format!(
            "The package's unit {} is installed too; it is managed with \
             `systemctl --user enable --now convos` / `systemctl --user disable --now convos`.",
            packaged.display()
        ));
    }
}

fn systemd_status(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let file = setup.service_file();
    file_status(setup, &file, exec)?;
    if let Some(packaged) = setup.packaged_unit.as_deref().filter(|p| p.exists()) {
        exec.line(format!(
            "packaged unit: {} (a unit in {} takes precedence over it)",
            packaged.display(),
            file.parent().unwrap_or(&file).display()
        ));
    }
    for (label, verb) in [("enabled", "is-enabled"), ("active", "is-active")] {
        let invocation = systemctl(&[verb, UNIT_NAME]);
        match exec.query(&invocation) {
            _ if exec.dry_run => {}
            None => exec.line(format!("{label}: unknown (systemctl was not found)")),
            Some(out) => {
                // is-enabled/is-active exit non-zero for "disabled"/"inactive": their
                // output is the answer either way.
                let answer = first_nonempty(&out.stdout, &out.stderr);
                exec.line(format!("{label}: {answer}"));
                if is_bus_error(&out.stderr) {
                    exec.line(no_user_session_hint());
                    break;
                }
            }
        }
    }
    exec.line("logs: journalctl --user -u convos -f");
    Ok(())
}

/// Reports whether the service file exists and matches what `install` would write now.
fn file_status(setup: &Setup, file: &Path, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            exec.line(format!("service file: {} (installed)", file.display()));
            if text != setup.render()? {
                exec.line(format!(
                    "  it differs from what `convos service install` would write now (for \
                     {}): rerun install to update it",
                    setup.binary.display()
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            exec.line(format!(
                "service file: {} (not installed; `convos service install` writes it)",
                file.display()
            ));
        }
        Err(source) => {
            return Err(ServiceError::File {
                action: "read",
                path: file.to_path_buf(),
                source,
            });
        }
    }
    Ok(())
}

fn launchd_install(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let plist = setup.render()?;
    let file = setup.service_file();
    binary_notes(setup, exec);
    exec.create_dir(&setup.launchd_log_dir())?;
    exec.write(&file, &plist)?;
    let target = setup.launchd_target();
    let written = format!(
        "The agent was written to {}; load it with `launchctl bootstrap gui/$(id -u) {}`.",
        file.display(),
        file.display()
    );
    // bootstrap refuses a label that is already loaded: unload the old one first so a
    // reinstall picks up the new file and binary.
    let print = launchctl(&["print", &target]);
    let bootout = launchctl(&["bootout", &target]);
    let mut booted_out = false;
    match exec.query(&print) {
        None if exec.dry_run => exec.line(format!("Would run, if it is loaded: {bootout}")),
        Some(out) if out.success => {
            exec.run(&bootout, Tool::Launchctl, &written)?;
            booted_out = true;
        }
        _ => {}
    }
    // enable clears a `launchctl disable` left from earlier, which would make bootstrap
    // fail with an unhelpful I/O error.
    exec.run(&launchctl(&["enable", &target]), Tool::Launchctl, &written)?;
    let file_text = file.to_string_lossy();
    let domain = setup.gui_domain();
    let bootstrap = launchctl(&["bootstrap", &domain, &file_text]);
    if let Err(first) = exec.run(&bootstrap, Tool::Launchctl, &written) {
        // Right after a bootout launchd may still be tearing the old job down and
        // reports an error for a bootstrap; one retry a moment later settles it.
        if !booted_out {
            return Err(first);
        }
        std::thread::sleep(setup.retry_delay);
        exec.run(&bootstrap, Tool::Launchctl, &written)?;
    }
    if !exec.dry_run {
        exec.line("convos is installed and running as a launchd agent.");
    }
    exec.line("  status:  convos service status");
    exec.line(format!(
        "  logs:    tail -f {}/convos.log   or   log stream --predicate 'process == \"convos\"'",
        setup.launchd_log_dir().display()
    ));
    exec.line(
        "  Watching ~/Downloads needs permission: allow convos in System Settings > Privacy & \
         Security > Files and Folders (or Full Disk Access).",
    );
    Ok(())
}

fn launchd_uninstall(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let file = setup.service_file();
    let target = setup.launchd_target();
    let bootout = launchctl(&["bootout", &target]);
    let loaded = match exec.query(&launchctl(&["print", &target])) {
        None if exec.dry_run => {
            exec.line(format!("Would run, if it is loaded: {bootout}"));
            false
        }
        Some(out) => out.success,
        None => false,
    };
    if !loaded && !file.exists() && !exec.dry_run {
        exec.line(format!(
            "convos is not installed as a launchd agent: {} does not exist and {target} is not loaded.",
            file.display()
        ));
        return Ok(());
    }
    if loaded {
        let kept = format!("{} was left in place.", file.display());
        exec.run(&bootout, Tool::Launchctl, &kept)?;
    }
    if file.exists() {
        exec.remove(&file)?;
    }
    if !exec.dry_run {
        exec.line(format!(
            "convos is stopped and no longer starts at login. Its archive and the logs in {} are kept.",
            setup.launchd_log_dir().display()
        ));
    }
    Ok(())
}

fn launchd_status(setup: &Setup, exec: &mut Exec<'_>) -> Result<(), ServiceError> {
    let file = setup.service_file();
    file_status(setup, &file, exec)?;
    let target = setup.launchd_target();
    match exec.query(&launchctl(&["print", &target])) {
        _ if exec.dry_run => {}
        None => exec.line("loaded: unknown (launchctl was not found)"),
        Some(out) if out.success => {
            exec.line(format!("loaded: yes ({target})"));
            for (key, value) in launchctl_print_summary(&out.stdout) {
                exec.line(format!("  {key}: {value}"));
            }
        }
        Some(out) => exec.line(format!(
            "loaded: no ({})",
            first_nonempty(&out.stderr, &out.stdout)
        )),
    }
    exec.line(format!(
        "logs: tail -f {}/convos.log   or   log stream --predicate 'process == \"convos\"'",
        setup.launchd_log_dir().display()
    ));
    Ok(())
}

/// The lines of `launchctl print` worth showing: the job's own `key = value` lines (one
/// tab deep; nested blocks are skipped) for state, pid, runs and the last exit.
pub fn launchctl_print_summary(output: &str) -> Vec<(String, String)> {
    const KEYS: [&str; 5] = ["state", "pid", "runs", "last exit code", "program"];
    output
        .lines()
        .filter(|l| l.starts_with('\t') && !l.starts_with("\t\t"))
        .filter_map(|l| l.trim().split_once(" = "))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_one_exec_start_line() {
        let n = SYSTEMD_TEMPLATE
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .count();
        assert_eq!(n, 1);
        assert!(SYSTEMD_TEMPLATE.contains("\nExecStart=%h/.cargo/bin/convos run\n"));
    }

    #[test]
    fn systemd_unit_names_the_binary_and_keeps_the_rest() {
        let unit = render_systemd_unit(Path::new("/opt/convos/bin/convos")).unwrap();
        assert!(unit.contains("\nExecStart=/opt/convos/bin/convos run\n"));
        assert!(!unit.contains("%h/.cargo"));
        assert_eq!(
            unit.lines().count(),
            SYSTEMD_TEMPLATE.lines().count(),
            "only the ExecStart line changes"
        );
        for directive in [
            "Type=notify",
            "Restart=on-failure",
            "RestartPreventExitStatus=78",
            "WantedBy=default.target",
        ] {
            assert!(unit.contains(&format!("\n{directive}\n")), "{directive}");
        }
    }

    #[test]
    fn systemd_paths_are_escaped_or_refused() {
        let unit = render_systemd_unit(Path::new("/home/a b/100%/convos")).unwrap();
        assert!(unit.contains("\nExecStart=\"/home/a b/100%%/convos\" run\n"));
        for bad in [
            "relative/convos",
            "/a\"b/convos",
            "/a\\b/convos",
            "/a\nb/convos",
        ] {
            let err = render_systemd_unit(Path::new(bad)).unwrap_err();
            assert!(
                matches!(err, ServiceError::UnusablePath { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff/convos"));
        assert!(render_systemd_unit(path).is_err());
        assert!(render_launchd_plist(path, Path::new("/Users/a")).is_err());
    }

    #[test]
    fn plist_fills_placeholders_in_the_body_only() {
        let plist =
            render_launchd_plist(Path::new("/Users/a&b/bin/convos"), Path::new("/Users/a&b"))
                .unwrap();
        let body = &plist[plist.find("<plist").unwrap()..];
        assert!(!body.contains('@'), "{body}");
        assert!(body.contains("<string>/Users/a&amp;b/bin/convos</string>"));
        assert!(body.contains("<string>/Users/a&amp;b/Library/Logs/convos/convos.log</string>"));
        let head = &plist[..plist.find("<plist").unwrap()];
        assert_eq!(head, &LAUNCHD_TEMPLATE[..head.len()]);
        assert!(plist.contains(&format!("<string>{LAUNCHD_LABEL}</string>")));
    }

    #[test]
    fn plist_comment_is_well_formed() {
        // An XML comment may not contain "--"; the header documents commands, so guard it.
        let start = LAUNCHD_TEMPLATE.find("<!--").unwrap() + 4;
        let end = LAUNCHD_TEMPLATE.find("-->").unwrap();
        assert!(!LAUNCHD_TEMPLATE[start..end].contains("--"));
    }

    #[test]
    fn invocations_display_as_shell_commands() {
        let inv = Invocation::new("launchctl", &["bootstrap", "gui/501", "/Users/a b/x.plist"]);
        assert_eq!(
            inv.to_string(),
            "launchctl bootstrap gui/501 '/Users/a b/x.plist'"
        );
        assert_eq!(
            Invocation::new("echo", &["it's", ""]).to_string(),
            r"echo 'it'\''s' ''"
        );
    }

    #[test]
    fn homebrew_cellar_paths_become_the_opt_link() {
        let cellar = Path::new("/opt/homebrew/Cellar/convos/0.1.0/bin/convos");
        let opt = Path::new("/opt/homebrew/opt/convos/bin/convos");
        assert_eq!(stable_binary_path(cellar, &|p| p == opt), opt);
        assert_eq!(stable_binary_path(cellar, &|_| false), cellar);
        let cargo = Path::new("/home/a/.cargo/bin/convos");
        assert_eq!(stable_binary_path(cargo, &|_| true), cargo);
    }

    #[test]
    fn xdg_config_home_is_used_only_when_absolute() {
        let home = Path::new("/home/a");
        assert_eq!(config_home(home, None), Path::new("/home/a/.config"));
        assert_eq!(
            config_home(home, Some("/x/cfg".into())),
            Path::new("/x/cfg")
        );
        assert_eq!(
            config_home(home, Some("rel".into())),
            Path::new("/home/a/.config")
        );
    }

    #[test]
    fn launchctl_print_is_summarised() {
        let out = "gui/501/io.github.convos = {\n\tactive count = 1\n\tpath = /Users/a/Library/LaunchAgents/io.github.convos.plist\n\tstate = running\n\n\tprogram = /usr/local/bin/convos\n\targuments = {\n\t\tstate = nested\n\t}\n\truns = 3\n\tpid = 4242\n\tlast exit code = 78: EX_CONFIG\n}\n";
        let summary = launchctl_print_summary(out);
        let keys: Vec<_> = summary.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["state", "program", "runs", "pid", "last exit code"]);
        assert_eq!(summary[0].1, "running");
        assert_eq!(summary[4].1, "78: EX_CONFIG");
    }

    #[test]
    fn bus_errors_are_recognised() {
        assert!(is_bus_error(
            "Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined"
        ));
        assert!(is_bus_error("Failed to connect to bus: No medium found"));
        assert!(!is_bus_error("Unit convos.service not found."));
    }
}
