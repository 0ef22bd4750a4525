//! Upstream HTTP+SSE: the deprecated transport of MCP 2024-11-05, still
//! served by many backends (`GET /sse`).
//!
//! [`Connection::connect`] GETs the URL with `Accept: text/event-stream`.
//! The first event, `event: endpoint`, carries the URI to POST messages to,
//! usually relative (`/message?sessionId=…`); it is resolved against the
//! URL and must stay on the same origin, so configured headers (credentials)
//! never go to another host. Every message is then POSTed there (the server
//! answers `202 Accepted`), and responses, notifications and server requests
//! arrive as `event: message` on the GET stream, matched to calls by id. The
//! session lives as long as that stream: when it ends, the events end with
//! `Closed`. A dropped call is cancelled with `notifications/cancelled`.

use std::sync::Arc;
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{Id, Message, Outcome, Request};
use only1mcp_core::mcp::method;
use only1mcp_core::upstream::{Call, Events, Upstream};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::ResponseFuture;
use crate::correlate::{CallGuard, Cancel, Correlator};
use crate::http_client::{self, EVENT_STREAM, Outbox, SEND_TIMEOUT, SseBody, media_type, pump};
use crate::spec::NetworkSpec;

/// A connection to an HTTP+SSE backend: a cheap-to-clone [`Upstream`].
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

/// Dropped with the last clone: closes the GET stream, ending the session.
#[derive(Debug)]
struct Inner {
    link: Arc<Link>,
    outbox: Outbox,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.link.correlator.close();
    }
}

#[derive(Debug)]
struct Link {
    correlator: Arc<Correlator>,
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
}

impl Connection {
    /// Opens the event stream and waits (within the connect timeout) for the
    /// `endpoint` event.
    pub async fn connect(spec: &NetworkSpec) -> Result<(Self, Events), Error> {
        let url = spec.parsed_url()?;
        let headers = http_client::header_map(&spec.headers).map_err(|e| spec.unavailable(e))?;
        let client = http_client::build_client(spec.connect_timeout, spec.tls()?)
            .map_err(|e| spec.unavailable(e))?;
        let mut get_headers = headers.clone();
        get_headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
        let opening = async {
            let response = client
                .get(url.clone())
                .headers(get_headers)
                .send()
                .await
                .map_err(|e| http_client::send_error(&spec.server, &url, &e))?;
            let status = response.status();
            if !status.is_success() {
                let body = http_client::read_body(&spec.server, response, 64 * 1024)
                    .await
                    .unwrap_or_default();
                return Err(http_client::status_error(&spec.server, status, &body));
            }
            if media_type(response.headers()) != EVENT_STREAM {
                return Err(spec.unavailable(format!(
                    "{} is not an SSE endpoint (content type {:?})",
                    http_client::display_url(&url),
                    media_type(response.headers())
                )));
            }
            let mut body = SseBody::new(response);
            while let Some(event) = body.next().await {
                if event.event == "endpoint" {
                    return Ok((endpoint(spec, &url, event.data.trim())?, body));
                }
                tracing::debug!(server = %spec.server, event = %event.event, "Event before the endpoint; ignored");
            }
            Err(spec.unavailable("the event stream ended before the endpoint event"))
        };
        let (endpoint, body) = tokio::time::timeout(spec.connect_timeout, opening)
            .await
            .map_err(|_| {
                spec.unavailable(format!(
                    "no endpoint event within {}ms",
                    spec.connect_timeout.as_millis()
                ))
            })??;
        tracing::debug!(server = %spec.server, endpoint = %http_client::display_url(&endpoint), "SSE session opened");
        let (correlator, events) = Correlator::new(spec.server.clone());
        tokio::spawn(read_loop(correlator.clone(), body));
        let link = Arc::new(Link {
            correlator: correlator.clone(),
            client,
            endpoint,
            headers,
        });
        let poster = link.clone();
        let outbox = Outbox::start(correlator.closed_token().clone(), move |message| {
            let link = poster.clone();
            async move { link.post_message(&message).await }
        });
        Ok((
            Self {
                inner: Arc::new(Inner { link, outbox }),
            },
            events,
        ))
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        self.inner.link.correlator.server()
    }

    /// Sets the hook that sees notifications in wire order (see
    /// [`crate::NotificationHook`]).
    pub fn set_notification_hook(&self, hook: crate::NotificationHook) {
        self.inner.link.correlator.set_hook(hook);
    }
}

/// Resolves the endpoint URI against the stream's URL; it must stay on the
/// same origin.
fn endpoint(spec: &NetworkSpec, url: &Url, data: &str) -> Result<Url, Error> {
    let endpoint = url
        .join(data)
        .map_err(|e| spec.unavailable(format!("invalid endpoint {data:?}: {e}")))?;
    if !http_client::same_origin(url, &endpoint) {
        return Err(spec.unavailable(format!(
            "the endpoint {} is on another origin than {}; refused",
            http_client::display_url(&endpoint),
            http_client::display_url(url)
        )));
    }
    Ok(endpoint)
}

/// Reads the GET stream until it ends (or the connection is dropped).
async fn read_loop(correlator: Arc<Correlator>, mut body: SseBody) {
    let closed = correlator.closed_token().clone();
    tokio::select! {
        _ = pump(&correlator, &mut body) => {
            tracing::debug!(server = %correlator.server(), "The SSE stream ended");
        }
        () = closed.cancelled() => {}
    }
    correlator.close();
}

impl tower_service::Service<Call> for Connection {
    type Response = Outcome;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> ResponseFuture {
        Box::pin(self.inner.clone().call(call))
    }
}

impl Upstream for Connection {
    /// Queues the message; it is POSTed in order by a background task.
    fn send(&self, message: Message) -> Result<(), Error> {
        let correlator = &self.inner.link.correlator;
        if correlator.is_closed() {
            return Err(correlator.closed_error());
        }
        self.inner.outbox.push(correlator, message)
    }
}

impl Inner {
    async fn call(self: Arc<Self>, call: Call) -> Result<Outcome, Error> {
        let link = &self.link;
        let correlator = &link.correlator;
        if correlator.is_closed() {
            return Err(correlator.closed_error());
        }
        self.outbox.flushed().await;
        let (id, rx) = correlator.register();
        let cancel = (call.method != method::INITIALIZE).then(|| link.canceller());
        let mut guard = CallGuard::new(correlator.clone(), id, cancel);
        let message = Message::Request(Request {
            id: Id::Number(id),
            method: call.method,
            params: call.params,
        });
        let response = match link.post(&message).await {
            Ok(response) => response,
            Err(e) => {
                guard.disarm();
                return Err(http_client::send_error(link.server(), &link.endpoint, &e));
            }
        };
        let status = response.status();
        if !status.is_success() {
            guard.disarm();
            if status == StatusCode::NOT_FOUND {
                // The server no longer knows the session.
                correlator.close();
            }
            return http_client::failed_call(link.server(), response, id).await;
        }
        // The answer arrives on the GET stream.
        correlator.wait(rx).await
    }
}

impl Link {
    fn server(&self) -> &str {
        self.correlator.server()
    }

    async fn post(&self, message: &Message) -> Result<reqwest::Response, reqwest::Error> {
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.client
            .post(self.endpoint.clone())
            .headers(headers)
            .body(message.to_vec())
            .send()
            .await
    }

    /// POSTs a message that expects no answer.
    async fn post_message(&self, message: &Message) {
        match tokio::time::timeout(SEND_TIMEOUT, self.post(message)).await {
            Ok(Ok(response)) if response.status().is_success() => {}
            Ok(Ok(response)) => {
                tracing::warn!(server = %self.server(), status = %response.status(), "The backend refused a message");
                if response.status() == StatusCode::NOT_FOUND {
                    self.correlator.close();
                }
            }
            Ok(Err(e)) => {
                let error = http_client::send_error(self.server(), &self.endpoint, &e);
                tracing::warn!(server = %self.server(), error = %error, "Could not send a message");
            }
            Err(_) => tracing::warn!(server = %self.server(), "Sending a message timed out"),
        }
    }

    /// How a call is cancelled: POST `notifications/cancelled`.
    fn canceller(self: &Arc<Self>) -> Cancel {
        let link = self.clone();
        Box::new(move |note| {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { link.post_message(&note).await });
            }
        })
    }
}
