//! Import progress: a bar with bytes and MB/s on a terminal, a log line every few
//! seconds otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A progress bar on stderr.
    Bar,
    /// A log line every few seconds.
    Log,
    /// Nothing.
    #[default]
    Off,
}

/// Seconds between progress log lines.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A running progress display.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// Starts showing progress over `total` bytes.
    pub fn start(mode: ProgressMode, label: &str, total: u64) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            // A file name may hold terminal controls; the bar draws on the terminal.
            bar.set_message(crate::render::terminal::line(label).into_owned());
            bar
        });
        Self {
            mode,
            bar,
            label: label.to_owned(),
            total,
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Reports bytes done so far.
    pub fn update(&self, done: u64) {
        match self.mode {
            ProgressMode::Bar => {
                if let Some(b) = &self.bar {
                    b.set_position(done.min(self.total));
                }
            }
            ProgressMode::Log => {
                let Ok(mut last) = self.last_log.lock() else {
                    return;
                };
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                    tracing::info!(
                        "importing {}: {:.0} of {:.0} MB ({:.0} MB/s)",
                        self.label,
                        done as f64 / 1e6,
                        self.total as f64 / 1e6,
                        done as f64 / 1e6 / secs
                    );
                }
            }
            ProgressMode::Off => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
