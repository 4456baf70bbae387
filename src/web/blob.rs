//! `/blob/{sha256}`: an attachment's stored bytes.
//!
//! The type is read from the bytes themselves (their magic number), never from the
//! conversation: only images, audio, video and PDF that a browser shows without
//! running anything are served inline, under the type their bytes prove. Everything
//! else (HTML, SVG, scripts, unknown bytes) goes out as a download,
//! `application/octet-stream` with `Content-Disposition: attachment` and a sandboxing
//! CSP, so a hostile attachment is never rendered by the viewer's origin.

use super::Shared;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The optional download name (`?name=`), used only in `Content-Disposition`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BlobQuery {
    name: Option<String>,
}

/// How many leading bytes the type is read from.
const SNIFF_BYTES: usize = 64;

/// `GET /blob/{sha256}`.
pub(crate) async fn serve(
    State(st): State<Arc<Shared>>,
    Path(sha): Path<String>,
    Query(q): Query<BlobQuery>,
) -> Response {
    if !is_sha256(&sha) {
        return super::pages::not_found().await.into_response();
    }
    let path = st.archive.blob_path(&sha);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot read attachment {}: {e}", path.display());
            }
            return super::pages::not_found().await.into_response();
        }
    };
    let head = match read_head(&mut file).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("cannot read attachment {}: {e}", path.display());
            return super::pages::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Attachment unreadable",
                "The attachment's file could not be read; the log says why.",
            );
        }
    };
    let len = file.metadata().await.ok().map(|m| m.len());
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    // Content-addressed: these bytes never change under this name.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    match inline_type(&head) {
        Some(kind) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let name = q.name.as_deref().unwrap_or(&sha);
            if let Ok(v) = HeaderValue::from_str(&attachment_disposition(name)) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            // A second policy: browsers enforce both, so even a browser that rendered
            // the download would run it in an opaque origin with nothing allowed.
            h.append(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            );
        }
    }
    resp
}

/// Reads the first bytes, then rewinds so the whole file is sent.
async fn read_head(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; SNIFF_BYTES];
    let mut n = 0;
    while n < head.len() {
        let got = file.read(&mut head[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    head.truncate(n);
    file.seek(std::io::SeekFrom::Start(0)).await?;
    Ok(head)
}

/// Exactly 64 lower-case hex digits: anything else (`..`, slashes, upper case) is no
/// blob name, so no path outside the store can ever be formed.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The type to show `head`'s file inline under, when its bytes prove it is a format a
/// browser displays without running anything; `None` sends it as a download.
pub fn inline_type(head: &[u8]) -> Option<&'static str> {
    let at = |i: usize, magic: &[u8]| head.get(i..i + magic.len()) == Some(magic);
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(0, b"\xff\xd8\xff") {
        return Some("image/jpeg");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some("image/gif");
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some("image/webp");
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if at(0, b"%PDF-") {
        return Some("application/pdf");
    }
    if at(0, b"OggS") {
        return Some("audio/ogg");
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"ID3") || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0) {
        return Some("audio/mpeg");
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        return Some("video/webm");
    }
    if at(4, b"ftyp") {
        let brand = head.get(8..12)?;
        return match brand {
            b"avif" | b"avis" => Some("image/avif"),
            b"M4A " | b"M4B " => Some("audio/mp4"),
            b"qt  " => Some("video/quicktime"),
            b"isom" | b"iso2" | b"iso4" | b"iso5" | b"iso6" | b"mp41" | b"mp42" | b"avc1"
            | b"dash" | b"M4V " | b"MSNV" | b"3gp4" | b"3gp5" => Some("video/mp4"),
            _ => None,
        };
    }
    None
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII name for old clients and
/// the exact one, percent-encoded, for the rest. Nothing in `name` can end the header.
pub fn attachment_disposition(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
        .take(150)
        .collect();
    let name = name.trim();
    let name = if name.is_empty() || name == "." || name == ".." {
        "attachment"
    } else {
        name
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_formats_proven_by_their_bytes_are_inline() {
        assert_eq!(inline_type(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(inline_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(inline_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(inline_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(inline_type(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(inline_type(b"\0\0\0\x20ftypisom"), Some("video/mp4"));
        assert_eq!(inline_type(b"\0\0\0\x20ftypavif"), Some("image/avif"));
        for hostile in [
            &b"<!DOCTYPE html><script>alert(1)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"alert(document.cookie)",
            b"\0\0\0\x20ftypheic",
            b"\0\0\0\x20ftyp",
            b"",
            b"\x89PNG",
        ] {
            assert_eq!(inline_type(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn blob_names_are_exactly_64_lowercase_hex_digits() {
        assert!(is_sha256(&"a1".repeat(32)));
        for bad in [
            "A1".repeat(32),
            "a1".repeat(31),
            format!("{}/", "a1".repeat(32)),
            "../../../etc/passwd".to_owned(),
            format!("..{}", "a".repeat(62)),
        ] {
            assert!(!is_sha256(&bad), "{bad}");
        }
    }

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(
            attachment_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let d = attachment_disposition("a\"b\r\nSet-Cookie: x=1; ../é.html");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
        assert_eq!(d.matches('"').count(), 2, "{d}");
        assert!(d.contains("filename*=UTF-8''a%22bSet-Cookie%3A%20x%3D1%3B%20..%C3%A9.html"));
        assert!(attachment_disposition("..").contains("filename=\"attachment\""));
        assert!(HeaderValue::from_str(&d).is_ok());
    }
}
