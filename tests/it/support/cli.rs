//! Runs the real `convos` binary in a sealed-off environment: its own data dir, an empty
//! config file, and temporary HOME/XDG folders, so a developer's real config, archive or
//! `CONVOS_*` variables never leak into a test (nor a test into them).

use std::ffi::OsStr;
use std::fs;
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
        let out = self
            .command()
            .args(args)
            .output()
            .expect("running the convos binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
