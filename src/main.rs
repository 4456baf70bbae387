//! The `convos` binary: parse the command line, load the configuration, set up
//! logging, dispatch, and turn the outcome into an exit code.

use clap::Parser;
use convos::app;
use convos::app::exit;
use convos::cli::Cli;
use convos::config::{Config, Modes, Overrides, PlatformDirs};
use convos::logging;
use std::process::ExitCode;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn main() -> ExitCode {
    let user_umask = private_files();
    limit_heap_retention();
    let cli = Cli::parse();
    let platform = PlatformDirs::system();
    let overrides = Overrides {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let mut loaded = match Config::load(&overrides, &|k| std::env::var(k).ok(), &platform) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "convos: {}",
                convos::render::terminal::clean(&e.to_string())
            );
            return ExitCode::from(exit::CONFIG);
        }
    };
    // The mirror's notes are the user's files: they get the user's permissions.
    loaded.user_modes = Modes::from_umask(user_umask);
    logging::init(
        &loaded.config.log,
        cli.verbosity(),
        logging::Environment::detect(),
        BoxMakeWriter::new(std::io::stderr),
    );
    match app::run(cli, loaded, platform) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote a server's answer, a file name or a conversation id.
            let message = format!("{:#}", e.error);
            eprintln!("convos: {}", convos::render::terminal::clean(&message));
            ExitCode::from(e.code)
        }
    }
}

/// Everything convos writes holds conversations or credentials: the archive (sled's
/// database files, including the snapshots it writes while running, which no sled API
/// lets us give a mode), attachments, exports, the lock file. A umask of 077, set before
/// anything is created, makes all of it private from its first byte whatever umask the
/// shell or service manager passed (022 under systemd, launchd and Homebrew services),
/// the way backup tools such as Borg do. Chmod after the fact would leave windows where
/// new files are readable and miss files created later. Returns the umask the process
/// started with, for the files that are the user's (the Markdown mirror's notes).
fn private_files() -> u32 {
    // SAFETY: umask only sets this process's file creation mask; no other thread exists yet.
    let before = unsafe { libc::umask(0o077) };
    // mode_t is u32 on Linux and u16 on macOS.
    #[allow(clippy::useless_conversion)]
    u32::from(before)
}

/// glibc raises its mmap threshold each time a large block is freed, after which
/// multi-megabyte conversation buffers come from the heap and fragment it: importing
/// 800 MB then peaks at 120 MB of RSS instead of 73 MB. A fixed threshold keeps large
/// buffers in their own mappings, returned to the system when freed.
fn limit_heap_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 * 1024);
    }
}
