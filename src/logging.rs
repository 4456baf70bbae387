//! Log output: `tracing-subscriber` with an `EnvFilter` (`RUST_LOG` over the configured
//! level), readable lines on stderr (colours only on a terminal; no timestamps or
//! colours of our own under systemd, whose journal adds them), or JSON lines.

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// How the process runs, as far as log formatting cares.
#[derive(Clone, Copy, Debug, Default)]
pub struct Environment {
    /// stderr is a terminal.
    pub terminal: bool,
    /// Running under systemd with stderr connected to the journal.
    pub journal: bool,
}

impl Environment {
    /// Reads the real process environment.
    pub fn detect() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
        }
    }
}

/// The filter: `RUST_LOG` when set, else the configured level for convos (shifted by
/// `-v`/`-q`) and warnings from everything else.
pub fn filter(config: &LogConfig, verbosity: i8, rust_log: Option<&str>) -> EnvFilter {
    if let Some(spec) = rust_log.filter(|s| !s.trim().is_empty())
        && let Ok(f) = EnvFilter::builder().parse(spec)
    {
        return f;
    }
    const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let base = LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(config.level.trim()))
        .unwrap_or(2) as i8;
    let level = LEVELS[(base + verbosity).clamp(0, 4) as usize];
    EnvFilter::new(format!("warn,convos={level}"))
}

/// Installs the global subscriber writing to `writer`. Safe to call once per process;
/// later calls are ignored (tests install their own).
pub fn init(config: &LogConfig, verbosity: i8, env: Environment, writer: BoxMakeWriter) {
    let filter = filter(config, verbosity, std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let result = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Auto | LogFormat::Human if env.journal => {
            builder.with_ansi(false).without_time().try_init()
        }
        LogFormat::Auto | LogFormat::Human => builder.with_ansi(env.terminal).try_init(),
    };
    // Already installed (e.g. by a test harness): keep that one.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_and_verbosity_shifts() {
        let cfg = LogConfig::default();
        let shown = |v, rust_log| {
            let mut d: Vec<String> = filter(&cfg, v, rust_log)
                .to_string()
                .split(',')
                .map(str::to_owned)
                .collect();
            d.sort();
            d.join(",")
        };
        assert_eq!(shown(0, None), "convos=info,warn");
        assert_eq!(shown(1, None), "convos=debug,warn");
        assert_eq!(shown(-5, None), "convos=error,warn");
        assert_eq!(shown(9, None), "convos=trace,warn");
        assert_eq!(shown(0, Some("convos=trace")), "convos=trace");
    }
}
