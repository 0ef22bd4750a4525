//! Upstream Streamable HTTP: a backend MCP server at an `http(s)://` URL, in
//! either era.
//!
//! Every message is a POST to the one endpoint with `Content-Type:
//! application/json`, `Accept: application/json, text/event-stream` and the
//! configured headers. The answer to a request is either one JSON message or
//! an SSE stream that may carry notifications and server requests before the
//! response; those become [`only1mcp_core::upstream::UpstreamEvent`]s.
//! Notifications and responses get `202 Accepted`.
//!
//! The era is read from each request: params whose `_meta` carries
//! `io.modelcontextprotocol/protocolVersion` are **modern** (2026-07-28):
//! they carry `MCP-Protocol-Version`, `Mcp-Method` and, for `tools/call`,
//! `prompts/get` and `resources/read`, `Mcp-Name` (base64-wrapped when the
//! value is not plain visible ASCII), and for `tools/call` an
//! `Mcp-Param-{Name}` for each argument the tool's schema marks with
//! `x-mcp-header` (SEP-2243: the declarations are read from the backend's
//! modern `tools/list` answers as they pass, and a tool whose declarations
//! break the rules is left out of them, with a warning), no session, and a
//! call is cancelled by closing its response stream. Anything else is **legacy** (2025-03-26 to
//! 2025-11-25): the `Mcp-Session-Id` returned with the `initialize` result
//! and the negotiated version go on every later request; a call is cancelled
//! with a POSTed `notifications/cancelled`; once `notifications/initialized`
//! is sent the standalone GET stream is opened (405 means the server offers
//! none) and reopened with `Last-Event-ID` after the server's `retry:` delay
//! when it drops; a response stream that ends early is resumed the same way.
//! A 404 on a request that carried the session id means the server forgot
//! the session: the call fails and the events end with `Closed`, so the
//! supervisor opens a new one. Dropping every clone sends a best-effort
//! `DELETE` for the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{Id, Message, Outcome, Request};
use only1mcp_core::mcp::param_headers::{self, ParamHeader};
use only1mcp_core::mcp::{self, method};
use only1mcp_core::upstream::{Call, Events, Upstream};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::ResponseFuture;
use crate::correlate::{CallGuard, Cancel, Correlator, Reply};
use crate::direct::{Answer, Direct, Failure};
use crate::http_client::{
    self, EVENT_STREAM, MAX_MESSAGE, Outbox, SEND_TIMEOUT, SseBody, media_type, pump,
};
use crate::spec::NetworkSpec;

/// The protocol version modern requests declare.
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// The legacy session id.
const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// The method of a modern request.
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// The tool, prompt or resource a modern request names.
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// Where a resumed SSE stream continues.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The reconnection delay when the server sent no `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// How many times in a row a stream may be resumed without new events.
const MAX_RESUMES: u32 = 3;
/// How many times in a row reopening the GET stream may fail before the
/// connection is given up.
const MAX_LISTEN_FAILURES: u32 = 3;
/// How long the closing `DELETE` may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to a Streamable HTTP backend: a cheap-to-clone [`Upstream`].
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

/// Dropped with the last clone: ends the session.
#[derive(Debug)]
struct Inner {
    link: Arc<Link>,
    outbox: Outbox,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.link.shutdown();
    }
}

/// Everything needed to talk to the endpoint; shared with background tasks.
#[derive(Debug)]
struct Link {
    correlator: Arc<Correlator>,
    client: reqwest::Client,
    /// Calls to a plain `http://` URL go through this pool instead of
    /// reqwest (see [`crate::direct`]).
    direct: Option<Direct>,
    url: Url,
    headers: HeaderMap,
    // A plain mutex: held to copy or set the values, never across an await.
    session: Mutex<Session>,
    listening: AtomicBool,
    /// The `x-mcp-header` declarations of the backend's tools, by the
    /// backend's tool name, from its last modern `tools/list` (SEP-2243).
    param_headers: Mutex<ParamHeaders>,
}

/// Tools with `x-mcp-header` declarations, by name.
type ParamHeaders =
    std::collections::HashMap<Box<str>, Arc<[ParamHeader]>, foldhash::fast::RandomState>;

/// What a legacy `initialize` established.
#[derive(Debug, Default, Clone)]
struct Session {
    id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    /// The headers of a legacy POST in this session, built by the first one
    /// (they are the same for every one until the session changes).
    legacy_post: Option<Arc<HeaderMap>>,
}

/// The headers of one POST, and what they say about it.
struct Post {
    headers: Arc<HeaderMap>,
    modern: bool,
    sent_session: bool,
}

impl Connection {
    /// Prepares a connection to `spec.url`. No request is made yet: the
    /// first call (the era probe of [`crate::handshake::establish`]) opens the
    /// pooled connection, and an unreachable server fails it with
    /// [`Error::UpstreamUnavailable`].
    pub fn open(spec: &NetworkSpec) -> Result<(Self, Events), Error> {
        let url = spec.parsed_url()?;
        let headers = http_client::header_map(&spec.headers).map_err(|e| spec.unavailable(e))?;
        let client = http_client::build_client(spec.connect_timeout, spec.tls()?)
            .map_err(|e| spec.unavailable(e))?;
        let (correlator, events) = Correlator::new(spec.server.clone());
        let link = Arc::new(Link {
            correlator: correlator.clone(),
            client,
            direct: Direct::for_url(&url, spec.connect_timeout),
            url,
            headers,
            session: Mutex::new(Session::default()),
            listening: AtomicBool::new(false),
            param_headers: Mutex::default(),
        });
        let poster = link.clone();
        let outbox = Outbox::start(correlator.closed_token().clone(), move |message| {
            let link = poster.clone();
            async move { link.post_message(message).await }
        });
        let inner = Arc::new(Inner { link, outbox });
        Ok((Self { inner }, events))
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
        // A modern tools/list answer teaches the tools' header declarations.
        let learn = (call.method == method::TOOLS_LIST
            && modern_version(call.params.as_deref()).is_some())
        .then(|| mcp::param_string(call.params.as_deref(), "cursor").is_none());
        let link = self.link.clone();
        let mut outcome = self.exchange(call).await?;
        if let (Some(first_page), Ok(result)) = (learn, &mut outcome) {
            link.learn_param_headers(result, first_page);
        }
        Ok(outcome)
    }

    async fn exchange(self: Arc<Self>, call: Call) -> Result<Outcome, Error> {
        let link = &self.link;
        let correlator = &link.correlator;
        if correlator.is_closed() {
            return Err(correlator.closed_error());
        }
        // Never overtake a notification sent before (`initialized`).
        self.outbox.flushed().await;
        let post = link.post_headers(Some(&call.method), call.params.as_deref());
        let initialize = call.method == method::INITIALIZE;
        let (id, rx) = correlator.register();
        // Modern calls are cancelled by dropping the response stream; a
        // legacy `initialize` must not be cancelled at all.
        let cancel = (!post.modern && !initialize).then(|| link.canceller());
        let mut guard = CallGuard::new(correlator.clone(), id, cancel);
        let body = Message::Request(Request {
            id: Id::Number(id),
            method: call.method,
            params: call.params,
        })
        .to_vec();
        let response = match link.post_call(post.headers, body).await {
            Ok(Answer::Json { session_id, body }) => {
                let outcome = link.json_answer(&body, rx, &mut guard, id).await?;
                if initialize && let Ok(result) = &outcome {
                    link.begin_session(session_id, result);
                }
                return Ok(outcome);
            }
            Ok(Answer::Other(response)) => response,
            Err(e) => {
                guard.disarm();
                return Err(e);
            }
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND && post.sent_session {
            guard.disarm();
            return Err(link.session_lost());
        }
        if !status.is_success() {
            guard.disarm();
            return http_client::failed_call(link.server(), response, id).await;
        }
        let session_id = response.headers().get(&MCP_SESSION_ID).cloned();
        let media = media_type(response.headers());
        let outcome = if media == "application/json" {
            let body = http_client::read_body(link.server(), response, MAX_MESSAGE).await?;
            link.json_answer(&body, rx, &mut guard, id).await?
        } else if media == EVENT_STREAM {
            link.read_answer(response, rx, !post.modern).await?
        } else if status == StatusCode::ACCEPTED {
            return Err(link.protocol("accepted the request (202) without answering it"));
        } else {
            return Err(link.protocol(&format!("unexpected content type {media:?}")));
        };
        if initialize && let Ok(result) = &outcome {
            link.begin_session(session_id, result);
        }
        Ok(outcome)
    }
}

impl Link {
    fn server(&self) -> &str {
        self.correlator.server()
    }

    /// POSTs a call: on the direct pool when there is one (a redirect goes
    /// back through reqwest, which follows it within the origin), else
    /// through reqwest. A JSON answer to a direct POST comes back read.
    async fn post_call(&self, headers: Arc<HeaderMap>, body: Vec<u8>) -> Result<Answer, Error> {
        if let Some(direct) = &self.direct {
            match direct.post(&headers, &body).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Redirect) => {}
                Err(Failure::TooLarge) => {
                    return Err(self.protocol(&format!("response larger than {MAX_MESSAGE} bytes")));
                }
                Err(Failure::Transport(reason)) => {
                    return Err(Error::UpstreamUnavailable {
                        server: self.server().to_owned(),
                        reason: format!("POST {}: {reason}", http_client::display_url(&self.url)),
                    });
                }
            }
        }
        self.client
            .post(self.url.clone())
            .headers(Arc::unwrap_or_clone(headers))
            .body(body)
            .send()
            .await
            .map(Answer::Other)
            .map_err(|e| self.send_error(&e))
    }

    /// The outcome of call `id` from its JSON answer `body`: delivered like
    /// any incoming message, so the waiter `rx` has it; an error answer
    /// without the call's id is taken as the call's.
    async fn json_answer(
        &self,
        body: &[u8],
        rx: oneshot::Receiver<Reply>,
        guard: &mut CallGuard,
        id: i64,
    ) -> Result<Outcome, Error> {
        self.correlator.deliver_frame(body).await;
        let mut rx = rx;
        match rx.try_recv() {
            Ok(answer) => answer,
            Err(_) => {
                guard.disarm();
                http_client::error_answer(body, id)
                    .ok_or_else(|| self.protocol("the JSON response does not answer the request"))
            }
        }
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn protocol(&self, reason: &str) -> Error {
        Error::UpstreamProtocol {
            server: self.server().to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn send_error(&self, error: &reqwest::Error) -> Error {
        http_client::send_error(self.server(), &self.url, error)
    }

    /// Adds the legacy session headers, if a session is open; returns
    /// whether a session id was added.
    fn add_session(&self, headers: &mut HeaderMap) -> bool {
        let session = self.session().clone();
        if let Some(version) = session.protocol_version {
            headers.insert(MCP_PROTOCOL_VERSION, version);
        }
        match session.id {
            Some(id) => {
                headers.insert(MCP_SESSION_ID, id);
                true
            }
            None => false,
        }
    }

    /// The headers of a POST carrying a message with `method` and `params`
    /// (`None` for a response).
    fn post_headers(&self, method: Option<&str>, params: Option<&RawValue>) -> Post {
        let Some(version) = modern_version(params) else {
            let mut session = self.session();
            let sent_session = session.id.is_some();
            let headers = match &session.legacy_post {
                Some(headers) => headers.clone(),
                None => {
                    let mut headers = self.json_post_headers();
                    if let Some(version) = &session.protocol_version {
                        headers.insert(MCP_PROTOCOL_VERSION, version.clone());
                    }
                    if let Some(id) = &session.id {
                        headers.insert(MCP_SESSION_ID, id.clone());
                    }
                    let headers = Arc::new(headers);
                    session.legacy_post = Some(headers.clone());
                    headers
                }
            };
            return Post {
                headers,
                modern: false,
                sent_session,
            };
        };
        let mut headers = self.json_post_headers();
        if let Some(version) = header_text(&version) {
            headers.insert(MCP_PROTOCOL_VERSION, version);
        }
        if let Some(method) = method {
            if let Some(value) = header_text(method) {
                headers.insert(MCP_METHOD, value);
            }
            if let Some(name) = mcp_name(method, params) {
                if method == method::TOOLS_CALL {
                    self.add_param_headers(&mut headers, &name, params);
                }
                if let Some(name) = header_text(&name) {
                    headers.insert(MCP_NAME, name);
                }
            }
        }
        Post {
            headers: Arc::new(headers),
            modern: true,
            sent_session: false,
        }
    }

    /// Adds `Mcp-Param-{Name}` for each argument of a call of `tool` that
    /// the tool's schema marks with `x-mcp-header`; an argument that is
    /// absent or `null` sends none.
    fn add_param_headers(&self, headers: &mut HeaderMap, tool: &str, params: Option<&RawValue>) {
        #[derive(serde::Deserialize)]
        struct Arguments {
            arguments: Option<serde_json::Value>,
        }
        let declared = {
            let table = self
                .param_headers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if table.is_empty() {
                return;
            }
            match table.get(tool) {
                Some(declared) => declared.clone(),
                None => return,
            }
        };
        let Some(arguments) = params
            .and_then(|p| serde_json::from_str::<Arguments>(p.get()).ok())
            .and_then(|a| a.arguments)
        else {
            return;
        };
        for decl in declared.iter() {
            let value = param_headers::value_at(&arguments, &decl.path)
                .and_then(param_headers::encode)
                .and_then(|text| HeaderValue::from_str(&text).ok());
            let name = HeaderName::from_bytes(
                format!(
                    "{}{}",
                    param_headers::PREFIX,
                    decl.name.to_ascii_lowercase()
                )
                .as_bytes(),
            );
            if let (Some(value), Ok(name)) = (value, name) {
                headers.insert(name, value);
            }
        }
    }

    /// Reads the `x-mcp-header` declarations of the tools in a modern
    /// `tools/list` result (a `first_page` starts the table afresh) and
    /// leaves out of it each tool whose declarations break the rules, as a
    /// Streamable HTTP client must.
    fn learn_param_headers(&self, result: &mut Box<RawValue>, first_page: bool) {
        if !result.get().contains("x-mcp-header") {
            if first_page {
                self.param_headers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            }
            return;
        }
        let Ok(mut parsed) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(result.get())
        else {
            return;
        };
        let Some(serde_json::Value::Array(tools)) = parsed.get_mut("tools") else {
            return;
        };
        let mut learned = ParamHeaders::default();
        let before = tools.len();
        tools.retain(|tool| {
            let name = tool.get("name").and_then(serde_json::Value::as_str);
            let declared = tool
                .get("inputSchema")
                .and_then(|schema| serde_json::value::to_raw_value(schema).ok())
                .map_or(Ok(Vec::new()), |schema| param_headers::declared(&schema));
            match (name, declared) {
                (Some(name), Ok(declared)) => {
                    if !declared.is_empty() {
                        learned.insert(name.into(), declared.into());
                    }
                    true
                }
                (name, Err(reason)) => {
                    tracing::warn!(
                        server = %self.server(),
                        tool = name.unwrap_or("(unnamed)"),
                        %reason,
                        "Tool left out: its x-mcp-header declarations break SEP-2243's rules"
                    );
                    false
                }
                (None, Ok(_)) => true,
            }
        });
        if tools.len() != before
            && let Ok(rewritten) = serde_json::value::to_raw_value(&parsed)
        {
            *result = rewritten;
        }
        let mut table = self
            .param_headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first_page {
            *table = learned;
        } else {
            table.extend(learned);
        }
    }

    /// The configured headers and those of a POST of JSON.
    fn json_post_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers
    }

    /// Records the session a legacy `initialize` opened: the id from the
    /// response header, the version from the result.
    fn begin_session(&self, id: Option<HeaderValue>, result: &RawValue) {
        #[derive(serde::Deserialize)]
        struct Negotiated {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
        }
        let protocol_version = serde_json::from_str::<Negotiated>(result.get())
            .ok()
            .and_then(|n| HeaderValue::from_str(&n.protocol_version).ok());
        tracing::debug!(
            server = %self.server(),
            session = id.is_some(),
            version = ?protocol_version,
            "Legacy session opened"
        );
        *self.session() = Session {
            id,
            protocol_version,
            legacy_post: None,
        };
    }

    /// The server answered 404 to the session id: it is gone. Closes the
    /// connection so the supervisor opens a new session.
    fn session_lost(&self) -> Error {
        tracing::warn!(
            server = %self.server(),
            "The backend ended the session (HTTP 404); the connection closes and will be re-established"
        );
        let mut session = self.session();
        session.id = None;
        session.legacy_post = None;
        drop(session);
        self.correlator.close();
        Error::UpstreamUnavailable {
            server: self.server().to_owned(),
            reason:
                "the server ended the MCP session (HTTP 404 Not Found); it will be re-established"
                    .to_owned(),
        }
    }

    /// How a legacy call is cancelled: POST `notifications/cancelled`.
    fn canceller(self: &Arc<Self>) -> Cancel {
        let link = self.clone();
        Box::new(move |note| {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { link.post_message(note).await });
            }
        })
    }

    /// POSTs a message that expects no answer (202).
    async fn post_message(self: &Arc<Self>, message: Message) {
        let (method, params) = match &message {
            Message::Request(req) => (Some(req.method.as_str()), req.params.as_deref()),
            Message::Notification(note) => (Some(note.method.as_str()), note.params.as_deref()),
            Message::Response(_) => (None, None),
        };
        let post = self.post_headers(method, params);
        let initialized = method == Some(method::INITIALIZED);
        let request = self
            .client
            .post(self.url.clone())
            .headers(Arc::unwrap_or_clone(post.headers))
            .body(message.to_vec());
        let response = match tokio::time::timeout(SEND_TIMEOUT, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                tracing::warn!(server = %self.server(), method, error = %self.send_error(&e), "Could not send a message");
                return;
            }
            Err(_) => {
                tracing::warn!(server = %self.server(), method, "Sending a message timed out");
                return;
            }
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND && post.sent_session {
            self.session_lost();
        } else if !status.is_success() {
            tracing::warn!(server = %self.server(), method, %status, "The backend refused a message");
        } else if initialized && !post.modern {
            self.start_listening();
        }
    }

    /// Opens the standalone GET stream once per connection.
    fn start_listening(self: &Arc<Self>) {
        if !self.listening.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().listen());
        }
    }

    /// A GET for an event stream: the standalone stream, or a resumption
    /// after `last_event_id`.
    async fn open_stream(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut headers = self.headers.clone();
        headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
        self.add_session(&mut headers);
        if let Some(id) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(LAST_EVENT_ID, id);
        }
        self.client
            .get(self.url.clone())
            .headers(headers)
            .send()
            .await
    }

    /// Reads the SSE answer to a call, delivering what comes before the
    /// response. A legacy stream that ends early is resumed with
    /// `Last-Event-ID` after the server's retry delay.
    async fn read_answer(
        &self,
        response: reqwest::Response,
        mut rx: oneshot::Receiver<Reply>,
        resumable: bool,
    ) -> Result<Outcome, Error> {
        let correlator = &self.correlator;
        let mut body = SseBody::new(response);
        let mut last_id: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut fruitless = 0;
        loop {
            tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or_else(|_| Err(correlator.closed_error())),
                _ = pump(correlator, &mut body) => {}
            }
            if let Ok(answer) = rx.try_recv() {
                return answer;
            }
            let progressed = body
                .last_event_id()
                .is_some_and(|id| last_id.as_deref() != Some(id));
            if let Some(id) = body.last_event_id() {
                last_id = Some(id.to_owned());
            }
            retry = body.retry().unwrap_or(retry);
            fruitless = if progressed { 0 } else { fruitless + 1 };
            let Some(resume_from) = last_id.as_deref() else {
                break;
            };
            if !resumable || fruitless > MAX_RESUMES || correlator.is_closed() {
                break;
            }
            tracing::debug!(server = %self.server(), "Response stream ended early; resuming");
            tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or_else(|_| Err(correlator.closed_error())),
                () = tokio::time::sleep(retry) => {}
            }
            match self.open_stream(Some(resume_from)).await {
                Ok(response)
                    if response.status().is_success()
                        && media_type(response.headers()) == EVENT_STREAM =>
                {
                    body = SseBody::new(response);
                }
                Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                    return Err(self.session_lost());
                }
                Ok(response) => {
                    tracing::debug!(server = %self.server(), status = %response.status(), "Resuming failed");
                }
                Err(e) => {
                    tracing::debug!(server = %self.server(), error = %self.send_error(&e), "Resuming failed");
                }
            }
        }
        Err(correlator.closed_error())
    }

    /// The standalone GET stream of a legacy session: server requests and
    /// notifications not tied to a request. Reopened (with `Last-Event-ID`)
    /// while the session lives; a server that cannot be reached again
    /// closes the connection.
    async fn listen(self: Arc<Self>) {
        let closed = self.correlator.closed_token().clone();
        let mut last_id: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut opened = false;
        let mut failures = 0;
        loop {
            let attempt = tokio::select! {
                attempt = self.open_stream(last_id.as_deref()) => attempt,
                () = closed.cancelled() => return,
            };
            match attempt {
                Ok(response)
                    if response.status().is_success()
                        && media_type(response.headers()) == EVENT_STREAM =>
                {
                    tracing::debug!(server = %self.server(), "Listening on the GET stream");
                    opened = true;
                    failures = 0;
                    let mut body = SseBody::new(response);
                    let reading = tokio::select! {
                        reading = pump(&self.correlator, &mut body) => reading,
                        () = closed.cancelled() => return,
                    };
                    if !reading {
                        return;
                    }
                    if let Some(id) = body.last_event_id() {
                        last_id = Some(id.to_owned());
                    }
                    retry = body.retry().unwrap_or(retry);
                    tracing::debug!(server = %self.server(), "GET stream ended; reopening");
                }
                Ok(response) => {
                    let status = response.status();
                    match status.as_u16() {
                        405 => {
                            tracing::debug!(server = %self.server(), "The backend offers no GET stream");
                            return;
                        }
                        // 404 without a session id: there is no GET
                        // endpoint, as with 405.
                        404 if self.session().id.is_none() => {
                            tracing::debug!(server = %self.server(), "The backend offers no GET stream (404, no session)");
                            return;
                        }
                        // 404: the session is unknown. 400 after the stream
                        // was open for this session: the same (EV answers an
                        // unknown session with 400).
                        404 => {
                            self.session_lost();
                            return;
                        }
                        400 if opened => {
                            self.session_lost();
                            return;
                        }
                        409 | 429 | 500..=599 => {
                            failures += 1;
                            tracing::debug!(server = %self.server(), %status, "GET stream refused; retrying");
                        }
                        _ => {
                            tracing::warn!(
                                server = %self.server(),
                                %status,
                                "The backend refused the GET stream; its unsolicited messages will not arrive"
                            );
                            return;
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(server = %self.server(), error = %self.send_error(&e), "GET stream failed");
                }
            }
            if failures > MAX_LISTEN_FAILURES {
                tracing::warn!(
                    server = %self.server(),
                    "Cannot reopen the backend's GET stream; closing the connection"
                );
                self.correlator.close();
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = closed.cancelled() => return,
            }
        }
    }

    /// Closes the connection: fails what is in flight, ends the events and
    /// the background tasks, and DELETEs a legacy session (best effort).
    fn shutdown(&self) {
        let session = std::mem::take(&mut *self.session());
        self.correlator.close();
        let Some(id) = session.id else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut headers = self.headers.clone();
        headers.insert(MCP_SESSION_ID, id);
        if let Some(version) = session.protocol_version {
            headers.insert(MCP_PROTOCOL_VERSION, version);
        }
        let request = self.client.delete(self.url.clone()).headers(headers);
        let server = self.correlator.server().clone();
        runtime.spawn(async move {
            match tokio::time::timeout(DELETE_TIMEOUT, request.send()).await {
                Ok(Ok(response)) => {
                    tracing::debug!(server = %server, status = %response.status(), "Session deleted");
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::debug!(server = %server, "Could not delete the session");
                }
            }
        });
    }
}

/// The protocol version of a modern request (`_meta`), if it is one.
fn modern_version(params: Option<&RawValue>) -> Option<String> {
    let params = params?;
    // A cheap first look. The key's last part, not the whole 39-byte key:
    // std's SIMD substring search takes needles of up to 32 bytes, longer
    // ones build a Two-Way searcher per call (about 1 300 instructions).
    if !params.get().contains("/protocolVersion") {
        return None;
    }
    mcp::request_meta(Some(params)).ok()?.protocol_version
}

/// The value of `Mcp-Name`: `params.name` or `params.uri` of the methods
/// that name something.
fn mcp_name(method: &str, params: Option<&RawValue>) -> Option<String> {
    let field = match method {
        method::TOOLS_CALL | method::PROMPTS_GET => "name",
        method::RESOURCES_READ => "uri",
        _ => return None,
    };
    mcp::param_string(params, field)
}

/// A header value carrying `text`: as it is when it is visible ASCII without
/// edge spaces, else wrapped as `=?base64?…?=` (UTF-8), as MCP specifies.
fn header_text(text: &str) -> Option<HeaderValue> {
    if param_headers::is_plain(text) {
        HeaderValue::from_str(text).ok()
    } else {
        let encoded = param_headers::base64_encode(text.as_bytes());
        HeaderValue::from_str(&format!("=?base64?{encoded}?=")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn header_text_wraps_only_what_would_not_survive_a_header() {
        assert_eq!(header_text("read_file").unwrap(), "read_file");
        assert_eq!(header_text("file:///a b").unwrap(), "file:///a b");
        assert_eq!(header_text("héllo").unwrap(), "=?base64?aMOpbGxv?=");
        assert_eq!(header_text(" x").unwrap(), "=?base64?IHg=?=");
        assert_eq!(
            header_text("=?base64?x?=").unwrap(),
            "=?base64?PT9iYXNlNjQ/eD89?="
        );
    }

    #[test]
    fn modern_requests_are_told_by_their_meta_and_named() {
        let modern = raw(
            r#"{"name":"echo","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#,
        );
        assert_eq!(modern_version(Some(&modern)).as_deref(), Some("2026-07-28"));
        assert_eq!(
            mcp_name("tools/call", Some(&modern)).as_deref(),
            Some("echo")
        );
        assert_eq!(mcp_name("tools/list", Some(&modern)), None);
        let legacy = raw(r#"{"name":"io.modelcontextprotocol/protocolVersion"}"#);
        assert_eq!(modern_version(Some(&legacy)), None);
        let read = raw(r#"{"uri":"file:///x"}"#);
        assert_eq!(
            mcp_name("resources/read", Some(&read)).as_deref(),
            Some("file:///x")
        );
    }
}
