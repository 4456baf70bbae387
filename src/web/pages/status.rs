//! `/status`: what `convos status` shows, and where the viewer listens.

use super::{Section, blocking, layout};
use crate::web::Shared;
use crate::web::status::rows;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use std::sync::Arc;

/// `GET /status`.
pub(crate) async fn page(State(st): State<Arc<Shared>>) -> Response {
    blocking(move || render(&st)).await
}

fn render(st: &Shared) -> Response {
    let (status, body) = match st.status.report() {
        Ok(report) => (
            StatusCode::OK,
            html! {
                h1 { "Status" }
                dl.status {
                    @for row in rows(&report) {
                        dt { (row.label) }
                        dd {
                            @for (i, line) in row.lines.iter().enumerate() {
                                @if i > 0 { br; }
                                (line)
                            }
                        }
                    }
                }
            },
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            html! {
                h1 { "Status" }
                p.notice { "The status could not be gathered: " (e) }
            },
        ),
    };
    (status, layout("Status", "", Section::Status, body)).into_response()
}
