//! Server-sent events, encoded by hand: the MCP rules need control over
//! every field (a priming event is an id with an empty `data:` line).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, header};

/// How often a long-lived stream sends a comment so idle-timeouts of
/// proxies in between do not close it.
pub(super) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event. `data` is one JSON message (compact, so one line).
pub(super) fn event(id: Option<u64>, name: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    if let Some(name) = name {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// An MCP message event.
pub(super) fn message(data: &[u8]) -> Bytes {
    event(None, Some("message"), data)
}

/// A keep-alive comment.
pub(super) fn ping() -> Bytes {
    Bytes::from_static(b": ping\n\n")
}

/// A `text/event-stream` response over `stream`.
pub(super) fn response<S>(stream: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = Body::from_stream(stream.map(Ok::<_, Infallible>));
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
