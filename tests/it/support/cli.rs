//! Runs the real `convos` binary in a sealed-off environment: its own data dir, an empty
//! config file, and temporary HOME/XDG folders, so a developer's real config, archive or
//! `CONVOS_*` variables never leak into a test (nor a test into them).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Environment variables that would change what the binary reads or where it writes.
const SCRUBBED: &[&str] = &[
    "RUST_LOG",
    "CONVOS_CONFIG",
    "CONVOS_DATA_DIR",
    "CONVOS_API_BASE_URL",
    "CONVOS_SESSION_TOKEN",
    "CONVOS_WATCH_DIRS",
    "CONVOS_IMPORT_PATHS",
    "CONVOS_SYNC_SCHEDULE",
    "CONVOS_API_BURST",
    "CONVOS_API_REFILL_PER_MINUTE",
    "CONVOS_MIRROR_DIR",
    "CONVOS_API_PACING",
    "CONVOS_API_MAX_PER_SECOND",
    "CONVOS_WEB_LISTEN",
];

/// A temporary world for one test's `convos` runs.
pub struct CliEnv {
    root: TempDir,
    /// Passed as `--data-dir` to every run.
    pub data_dir: PathBuf,
    /// Passed as `CONVOS_CONFIG`; empty unless [`CliEnv::write_config`] is called.
    pub config: PathBuf,
}

/// What one run did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts success (exit code 0).
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Standard output parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\n--- stderr ---\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Default for CliEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl CliEnv {
    /// A fresh environment with an empty config file and no archive yet.
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("creating the CLI test root");
        for d in [
            "home/.config",
            "home/.local/share",
            "home/.local/state",
            "home/.cache",
            "home/Downloads",
            "runtime",
            "inputs",
        ] {
            fs::create_dir_all(root.path().join(d)).expect("creating a CLI test folder");
        }
        let config = root.path().join("config.toml");
        fs::write(&config, "").expect("writing the empty config");
        CliEnv {
            data_dir: root.path().join("data"),
            config,
            root,
        }
    }

    /// The temporary root (the data dir's parent).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A folder for input files (exports to import).
    pub fn inputs(&self) -> PathBuf {
        self.root.path().join("inputs")
    }

    /// Replaces the config file's text.
    pub fn write_config(&self, text: &str) {
        fs::write(&self.config, text).expect("writing the config file");
    }

    /// A `convos` command with the sealed environment and `--data-dir` set.
    pub fn command(&self) -> Command {
        let home = self.root.path().join("home");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convos"));
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DOWNLOAD_DIR", home.join("Downloads"))
            .env("XDG_RUNTIME_DIR", self.root.path().join("runtime"))
            .env("CONVOS_CONFIG", &self.config)
            // Daemons of tests running side by side (or the user's own) never compete
            // for the viewer's default port.
            .env("CONVOS_WEB_LISTEN", "127.0.0.1:0")
            .current_dir(self.root.path())
            .arg("--data-dir")
            .arg(&self.data_dir);
        cmd
    }

    /// Runs `convos <args>` to completion.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.command().args(args))
    }

    /// Runs `convos <args>` to completion under umask 022 (group and others may read
    /// what a careless program creates).
    pub fn run_umask_022<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        run_command(with_umask(&mut cmd, 0o022))
    }
}

/// Makes `cmd` start under `mask`, as a login shell or a service manager (022) would.
pub fn with_umask(cmd: &mut Command, mask: libc::mode_t) -> &mut Command {
    // SAFETY: umask is async-signal-safe and changes only the child's own mask.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        })
    }
}

/// Runs `cmd` to completion.
pub fn run_command(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("running the convos binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The permission bits (`0o777`) of `path`, not following a symlink.
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Every file and folder under `dir` (not `dir` itself) that group or others may access,
/// with its mode.
pub fn shared_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let m = mode(&path);
            if fs::symlink_metadata(&path).expect("metadata").is_dir() {
                stack.push(path.clone());
            }
            if m & 0o077 != 0 {
                found.push((path, m));
            }
        }
    }
    found
}
