//! The stylesheet and icon, compiled into the binary. The pages need no script.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet: layout, light and dark colours (`prefers-color-scheme`), code
/// highlighting classes.
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// The tab icon.
pub const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Where the pages link the stylesheet.
pub const STYLE_PATH: &str = "/static/style.css";
/// Where the pages link the icon.
pub const FAVICON_PATH: &str = "/static/favicon.svg";

/// `GET /static/{file}`: one of the files above, else 404.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "favicon.svg" => (FAVICON_SVG, "image/svg+xml"),
        _ => return super::pages::not_found().await.into_response(),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated on every page load: a new binary's stylesheet shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
