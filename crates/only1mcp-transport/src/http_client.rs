//! What the two HTTP clients ([`crate::streamable_client`], [`crate::sse_client`])
//! share: the pooled reqwest client, configured headers, error mapping, body
//! reading with a cap, the SSE body reader, and the ordered outbox for
//! fire-and-forget messages.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{Frame, Id, Message, Outcome};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::correlate::Correlator;
use crate::event_stream::{Decoder, Event};
use crate::stdio::MAX_UPSTREAM_LINE;

/// The largest body or event a backend may send (as on stdio).
pub(crate) const MAX_MESSAGE: usize = MAX_UPSTREAM_LINE;

/// How long a fire-and-forget POST (a notification, a response) may take.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `text/event-stream`.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// How many fire-and-forget messages may wait for their POST.
const OUTBOX_CAPACITY: usize = 1024;

/// How many redirects to follow (same origin only).
const MAX_REDIRECTS: usize = 5;

/// A pooled client (HTTP/1.1, and HTTP/2 where TLS negotiates it) on the
/// given TLS configuration. Redirects are followed only within the origin,
/// so configured headers (credentials) never reach another host.
pub(crate) fn build_client(
    connect_timeout: Duration,
    tls: rustls::ClientConfig,
) -> Result<reqwest::Client, String> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if attempt.previous().len() > MAX_REDIRECTS || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tls_backend_preconfigured(tls)
        .redirect(redirects)
        .user_agent(concat!("only1mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The URL without credentials or query, for messages and logs.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The configured headers as a header map. An invalid name or value is an
/// error naming the header, never showing the value.
pub(crate) fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let mut value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// An error and its causes, joined with `: `.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a failed send (nothing came back) to the gateway's error.
pub(crate) fn send_error(server: &str, url: &Url, error: &reqwest::Error) -> Error {
    let what = if error.is_connect() {
        "cannot connect to"
    } else if error.is_timeout() {
        "timed out reaching"
    } else {
        "request failed to"
    };
    // reqwest's own top line repeats the URL with its query; keep the causes.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    };
    Error::UpstreamUnavailable {
        server: server.to_owned(),
        reason: format!("{what} {}: {detail}", display_url(url)),
    }
}

/// The error for an HTTP status that carried no JSON-RPC answer.
pub(crate) fn status_error(server: &str, status: StatusCode, body: &[u8]) -> Error {
    let excerpt: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let mut reason = format!("HTTP {status}");
    if matches!(status.as_u16(), 401 | 403) {
        reason.push_str(" (check the configured headers)");
    }
    if !excerpt.trim().is_empty() {
        reason.push_str(": ");
        reason.push_str(excerpt.trim());
    }
    let server = server.to_owned();
    match status.as_u16() {
        401 | 403 | 404 | 405 | 408 | 429 | 500..=599 => {
            Error::UpstreamUnavailable { server, reason }
        }
        _ => Error::UpstreamProtocol { server, reason },
    }
}

/// The media type of a response, lowercased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a whole body, failing past `limit` bytes.
pub(crate) async fn read_body(
    server: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, Error> {
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(Error::UpstreamProtocol {
                        server: server.to_owned(),
                        reason: format!("response larger than {limit} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => {
                return Err(Error::UpstreamUnavailable {
                    server: server.to_owned(),
                    reason: format!("reading the response failed: {}", chain(&e)),
                });
            }
        }
    }
}

/// The answer in the body of an HTTP error: a JSON-RPC error response whose
/// id is the call's, or null (a POST carries one request, so an id-less
/// error can only be about it).
pub(crate) fn error_answer(body: &[u8], id: i64) -> Option<Outcome> {
    match only1mcp_core::jsonrpc::parse(body) {
        Ok(Frame::Single(Message::Response(res)))
            if res.outcome.is_err() && (res.id.is_none() || res.id == Some(Id::Number(id))) =>
        {
            Some(res.outcome)
        }
        _ => None,
    }
}

/// Handles a non-success status for call `id`: a JSON-RPC error in the body
/// is the call's answer; anything else is a transport error.
pub(crate) async fn failed_call(
    server: &str,
    response: reqwest::Response,
    id: i64,
) -> Result<Outcome, Error> {
    let status = response.status();
    let body = read_body(server, response, 1024 * 1024)
        .await
        .unwrap_or_default();
    match error_answer(&body, id) {
        Some(outcome) => Ok(outcome),
        None => Err(status_error(server, status, &body)),
    }
}

/// The events of one `text/event-stream` response body.
#[derive(Debug)]
pub(crate) struct SseBody {
    response: Option<reqwest::Response>,
    decoder: Decoder,
    ready: VecDeque<Event>,
}

impl SseBody {
    /// Reads `response` as an event stream.
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            response: Some(response),
            decoder: Decoder::new(MAX_MESSAGE),
            ready: VecDeque::new(),
        }
    }

    /// The next event; `None` when the body ended or broke.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let response = self.response.as_mut()?;
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let mut out = Vec::new();
                    self.decoder.feed(&chunk, &mut out);
                    self.ready.extend(out);
                }
                Ok(None) => {
                    self.response = None;
                }
                Err(e) => {
                    tracing::debug!(error = %chain(&e), "Event stream broke");
                    self.response = None;
                }
            }
        }
    }

    /// The last event id seen (resume with `Last-Event-ID`).
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.decoder.last_event_id()
    }

    /// The reconnection delay the server asked for.
    pub(crate) fn retry(&self) -> Option<Duration> {
        self.decoder.retry()
    }
}

/// Delivers every `message` event of `body` until it ends. Returns `false`
/// if nobody reads the connection's events any more.
pub(crate) async fn pump(correlator: &Correlator, body: &mut SseBody) -> bool {
    while let Some(event) = body.next().await {
        if event.event != "message" {
            tracing::debug!(server = %correlator.server(), event = %event.event, "Ignored an event");
            continue;
        }
        if !correlator.deliver_frame(event.data.as_bytes()).await {
            return false;
        }
    }
    true
}

/// Fire-and-forget messages (notifications, responses to the backend's
/// requests), POSTed one at a time in the order sent. A call first waits for
/// the messages sent before it ([`Outbox::flushed`]), so a request never
/// overtakes `notifications/initialized`.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Message>,
    // Held only to count a message in together with queueing it.
    queued: Mutex<u64>,
    posted: watch::Receiver<u64>,
}

impl Outbox {
    /// Starts the task that POSTs each message with `post`; it stops when
    /// `closed` is cancelled or the outbox is dropped.
    pub(crate) fn start<F, Fut>(closed: CancellationToken, mut post: F) -> Self
    where
        F: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (tx, mut rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (posted_tx, posted_rx) = watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = rx.recv() => message,
                    () = closed.cancelled() => None,
                };
                let Some(message) = message else { break };
                tokio::select! {
                    () = post(message) => {}
                    () = closed.cancelled() => break,
                }
                posted_tx.send_modify(|n| *n += 1);
            }
        });
        Self {
            tx,
            queued: Mutex::new(0),
            posted: posted_rx,
        }
    }

    /// Queues a message.
    pub(crate) fn push(&self, correlator: &Correlator, message: Message) -> Result<(), Error> {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        self.tx.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::UpstreamUnavailable {
                server: correlator.server().to_string(),
                reason: "too many messages waiting to be sent".to_owned(),
            },
            mpsc::error::TrySendError::Closed(_) => correlator.closed_error(),
        })?;
        *queued += 1;
        Ok(())
    }

    /// Waits until every message queued so far has been POSTed (or the
    /// outbox stopped).
    pub(crate) async fn flushed(&self) {
        let target = *self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let mut posted = self.posted.clone();
        let _ = posted.wait_for(|n| *n >= target).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_answers_the_call_only_with_its_id_or_null() {
        let null =
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request"}}"#;
        let mine = br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32020,"message":"mismatch"}}"#;
        assert_eq!(error_answer(null, 4).unwrap().unwrap_err().code, -32000);
        assert_eq!(error_answer(mine, 4).unwrap().unwrap_err().code, -32020);
        assert!(error_answer(mine, 5).is_none());
        assert!(error_answer(b"<html>", 4).is_none());
    }

    #[test]
    fn statuses_map_to_unavailable_or_protocol() {
        assert!(matches!(
            status_error("s", StatusCode::SERVICE_UNAVAILABLE, b""),
            Error::UpstreamUnavailable { reason, .. } if reason == "HTTP 503 Service Unavailable"
        ));
        assert!(matches!(
            status_error("s", StatusCode::UNSUPPORTED_MEDIA_TYPE, b"nope\n"),
            Error::UpstreamProtocol { reason, .. } if reason == "HTTP 415 Unsupported Media Type: nope"
        ));
    }

    #[test]
    fn header_errors_never_show_the_value() {
        let err = header_map(&[("x-key".into(), "secret\nvalue".into())]).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        let map = header_map(&[("x-key".into(), "v".into())]).unwrap();
        assert!(map["x-key"].is_sensitive());
    }
}
