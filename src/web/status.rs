//! What `/status` shows: the report of `convos status`, from the daemon.

use crate::commands::status::{StatusReport, print_human};

/// Where `/status` gets its report: the daemon passes `commands::status::report` over
/// its own context. Called off the async threads.
pub trait StatusSource: Send + Sync {
    /// The report, or why it cannot be made.
    fn report(&self) -> Result<StatusReport, String>;
}

impl<F> StatusSource for F
where
    F: Fn() -> Result<StatusReport, String> + Send + Sync,
{
    fn report(&self) -> Result<StatusReport, String> {
        self()
    }
}

/// One line of the report: its label (`daemon`, `archive`…) and its lines of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRow {
    /// The label, empty for text that has none.
    pub label: String,
    /// The value, one entry per line.
    pub lines: Vec<String>,
}

/// The report as `convos status` prints it, split into labelled rows: a line
/// `label:   value` opens a row, an indented line continues it.
pub fn rows(report: &StatusReport) -> Vec<StatusRow> {
    let mut text = Vec::new();
    if let Err(e) = print_human(report, &mut text) {
        return vec![StatusRow {
            label: String::new(),
            lines: vec![format!("the status could not be written: {e}")],
        }];
    }
    let text = String::from_utf8_lossy(&text);
    let mut rows: Vec<StatusRow> = Vec::new();
    for line in text.lines() {
        let labelled = line
            .split_once(':')
            .filter(|(label, rest)| {
                !line.starts_with(char::is_whitespace)
                    && label.len() <= 24
                    && !label.contains("  ")
                    && rest.starts_with(' ')
            })
            .map(|(label, rest)| (label.trim(), rest.trim()));
        match (labelled, rows.last_mut()) {
            (Some((label, value)), _) => rows.push(StatusRow {
                label: label.to_owned(),
                lines: vec![value.to_owned()],
            }),
            (None, Some(row)) if line.starts_with(char::is_whitespace) => {
                row.lines.push(line.trim().to_owned());
            }
            (None, _) => rows.push(StatusRow {
                label: String::new(),
                lines: vec![line.trim().to_owned()],
            }),
        }
    }
    rows
}
