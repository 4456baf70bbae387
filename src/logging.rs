//! Log output: `tracing-subscriber` with an `EnvFilter` (`RUST_LOG` over the configured
//! level), readable lines on stderr (colours only on a terminal; no timestamps or
//! colours of our own under systemd, whose journal adds them), or JSON lines.
//!
//! Log messages carry titles, file names and server answers. Readable lines show every
//! field with its control characters made visible and its line breaks as spaces
//! ([`clean_fields`]), so no log line can drive the terminal or forge another line; JSON
//! lines escape them by themselves and stay exact.

use crate::config::{LogConfig, LogFormat};
use crate::render::terminal;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
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

/// The field formatter of readable log lines: like the default one (the message as
/// is, other fields as `name=value`, separated by spaces), with every value passed
/// through [`terminal::line`].
pub fn clean_fields() -> impl for<'w> FormatFields<'w> + 'static {
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            let text = terminal::line(&text);
            if field.name() == "message" {
                write!(w, "{text}")
            } else {
                write!(w, "{}={text}", field.name())
            }
        },
    )
    .delimited(" ")
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
        LogFormat::Auto | LogFormat::Human if env.journal => builder
            .fmt_fields(clean_fields())
            .with_ansi(false)
            .without_time()
            .try_init(),
        LogFormat::Auto | LogFormat::Human => builder
            .fmt_fields(clean_fields())
            .with_ansi(env.terminal)
            .try_init(),
    };
    // Already installed (e.g. by a test harness): keep that one.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("sink").clone()).expect("utf-8")
        }
    }

    const EVIL: &str = "Evil\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}[1;1Htitle\nforged line";

    #[test]
    fn readable_lines_show_control_characters_instead_of_sending_them() {
        let sink = Sink::default();
        let writer = sink.clone();
        // Colours on, as on a terminal: the formatter's own escapes remain, the title's not.
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(clean_fields())
            .with_writer(move || writer.clone())
            .with_ansi(true)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(path = %EVIL, "imported {EVIL}: {}", 3);
        });
        let text = sink.text();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            !text.contains("\u{1b}]") && !text.contains("\u{1b}[2J") && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(
            text.contains("imported Evil␛]52;c;ZXZpbA==␇␛[2J␛[1;1Htitle forged line: 3"),
            "{text:?}"
        );
        assert!(
            text.contains("path=Evil␛]52;c;ZXZpbA==␇␛[2J␛[1;1Htitle forged line"),
            "{text:?}"
        );
    }

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
