//! The HTML pages, as maud templates (checked when the crate compiles, every spliced
//! value escaped): the frame shared by every page, error pages, and small helpers.

pub mod conversation;
pub mod list;
pub mod status;

use super::assets::{FAVICON_PATH, STYLE_PATH};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Local, Utc};
use maud::{DOCTYPE, Markup, html};

/// The section of the site a page belongs to (marked in the navigation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The list, search, a conversation.
    Conversations,
    /// The project list.
    Projects,
    /// The status page.
    Status,
    /// Anything else.
    None,
}

/// The frame of every page: header with search box and navigation, then `body`.
pub fn layout(title: &str, query: &str, section: Section, body: Markup) -> Markup {
    let current = |s: Section| (s == section).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="referrer" content="no-referrer";
                title { (title) " · convos" }
                link rel="stylesheet" href=(STYLE_PATH);
                link rel="icon" type="image/svg+xml" href=(FAVICON_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "convos" }
                    form.search role="search" action="/" method="get" {
                        input type="search" name="q" value=(query)
                            placeholder="Search conversations" aria-label="Search conversations";
                        button type="submit" { "Search" }
                    }
                    nav.main aria-label="Main" {
                        a href="/" aria-current=[current(Section::Conversations)] { "Conversations" }
                        a href="/projects" aria-current=[current(Section::Projects)] { "Projects" }
                        a href="/status" aria-current=[current(Section::Status)] { "Status" }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A page with a status code, a heading and a sentence, in the site's frame.
pub fn error_page(status: StatusCode, heading: &str, text: &str) -> Response {
    let body = html! {
        section.error {
            h1 { (heading) }
            p { (text) }
            p { a href="/" { "Back to the conversations" } }
        }
    };
    (status, layout(heading, "", Section::None, body)).into_response()
}

/// A bare page for requests that are not let in: it links nothing, since the
/// stylesheet would be refused too.
pub fn refusal(status: StatusCode, heading: &str, text: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (heading) " · convos" }
            }
            body {
                h1 { (heading) }
                p { (text) }
            }
        }
    };
    (status, page).into_response()
}

/// The answer for anything that does not exist.
pub(crate) async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "Nothing in the archive is at this address.",
    )
}

/// Runs page work (sled reads, rendering) off the async threads.
pub(crate) async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!("a web viewer page failed: {e}");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "This page could not be made; the daemon's log says why.",
            )
        }
    }
}

/// The answer when the archive cannot be read.
pub(crate) fn archive_error(e: &crate::archive::ArchiveError) -> Response {
    tracing::warn!("web viewer: {e}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The archive could not be read",
        &e.to_string(),
    )
}

/// Local time `2024-05-01 14:03` from epoch seconds.
pub fn time_from_secs(secs: f64) -> Option<(String, String)> {
    let micros = crate::model::time::secs_to_micros(secs);
    DateTime::<Utc>::from_timestamp_micros(micros).map(show_time)
}

/// Local time `2024-05-01 14:03` from RFC 3339, with the machine-readable form.
pub fn time_from_rfc3339(t: &str) -> Option<(String, String)> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| show_time(d.with_timezone(&Utc)))
}

fn show_time(t: DateTime<Utc>) -> (String, String) {
    (
        t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string(),
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A `<time>` element, or nothing when the time is unknown.
pub fn time_tag(t: Option<(String, String)>) -> Markup {
    html! {
        @if let Some((shown, iso)) = t {
            time datetime=(iso) { (shown) }
        }
    }
}

/// Percent-encodes a path segment or fragment (everything but RFC 3986 unreserved).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A title for display: whitespace collapsed, "Untitled" when there is none.
pub fn title_text(title: Option<&str>) -> String {
    let t = title
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if t.is_empty() {
        "Untitled conversation".to_owned()
    } else {
        t
    }
}
