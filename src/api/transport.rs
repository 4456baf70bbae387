//! How a request reaches chatgpt.com: over HTTP with reqwest, or through any other
//! [`Transport`] (a simulation of the service running in the same process, so that a
//! benchmark can run hours of pacing under tokio's paused clock).

use super::ApiError;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use std::future::Future;
use std::pin::Pin;

/// Largest body read from the service.
pub const MAX_BODY: usize = 512 << 20;

/// A request as the client sends it.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: Method,
    /// Where to.
    pub url: Url,
    /// Its headers (the authorization and cookie ones marked sensitive).
    pub headers: HeaderMap,
    /// The body of a `POST`.
    pub body: Option<Vec<u8>>,
}

/// An answer, read whole (at most [`MAX_BODY`] bytes).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

/// A request on its way.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, ApiError>> + Send + 'a>>;

/// Sends requests and reads their answers. Failures to get any answer are
/// [`ApiError::Transport`]; an answer too large is [`ApiError::Decode`].
pub trait Transport: Send + Sync {
    /// Sends one request and reads its answer.
    fn send(&self, req: HttpRequest) -> Sending<'_>;
}

/// The real transport: reqwest over HTTPS.
pub(super) struct Http(pub(super) reqwest::Client);

impl Transport for Http {
    fn send(&self, req: HttpRequest) -> Sending<'_> {
        Box::pin(async move {
            let mut builder = self.0.request(req.method, req.url).headers(req.headers);
            if let Some(body) = req.body {
                builder = builder.body(body);
            }
            let resp = builder.send().await.map_err(transport)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            let mut resp = resp;
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_BODY {
                            return Err(ApiError::Decode(format!(
                                "answer larger than {} MiB",
                                MAX_BODY >> 20
                            )));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(transport(e)),
                }
            }
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }
}

/// A transport error in words, without the URL: signed download URLs carry a
/// signature that is a credential.
pub(super) fn transport(e: reqwest::Error) -> ApiError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    ApiError::Transport(msg)
}
