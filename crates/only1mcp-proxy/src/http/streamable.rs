//! Streamable HTTP at `/mcp`, both eras on one endpoint.
//!
//! - **Modern** (2026-07-28): chosen by an `MCP-Protocol-Version: 2026-07-28`
//!   header, or by modern `_meta` on a request without a session. Stateless:
//!   the headers are checked against the body (-32020), the request is
//!   answered in place, and closing the response stream drops the call, which
//!   cancels it on the backend. `subscriptions/listen` opens a notification
//!   stream.
//! - **Legacy** (2025-11-25 back to 2025-03-26): `initialize` issues an
//!   `Mcp-Session-Id` that every later request must carry (400 without, 404
//!   for an unknown or ended one). Requests run detached, because a
//!   disconnect is not a cancellation in this era; `GET` opens the session's
//!   stream for unsolicited messages, with event ids and `Last-Event-ID`
//!   replay; `DELETE` ends the session.
//!
//! A request's answer is JSON unless the request produced a notification
//! (progress) before its result and the client accepts SSE; then the
//! response becomes an SSE stream carrying the notifications and the result.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use only1mcp_core::config::ContextConfig;
use only1mcp_core::jsonrpc::{self, Frame, Message, Notification, Request};
use only1mcp_core::mcp::{self, Era, RequestMeta, error_code, method, param_headers, version};
use only1mcp_transport::downstream::{Inbox, OnFull, Outbound};
use tokio::sync::Notify;

use super::authn::Caller;
use super::{HttpState, error_response, json_body, sse_body, status_for};
use crate::session::ClientSession;
use only1mcp_core::pipeline::{Origin, Transport};

// Header names as `HeaderName`s: a lookup by `&str` parses the name first.
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// Events kept per session for `Last-Event-ID` replay.
const REPLAY: usize = 256;

/// What the client accepts.
#[derive(Debug, Clone, Copy)]
struct Accepts {
    json: bool,
    sse: bool,
}

impl Accepts {
    fn of(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self {
                json: true,
                sse: false,
            };
        };
        // What the SDKs send, without splitting it.
        if accept == "application/json, text/event-stream" {
            return Self {
                json: true,
                sse: true,
            };
        }
        let has = |wanted: &str| {
            accept.split(',').any(|part| {
                let media = part.split(';').next().unwrap_or_default().trim();
                media == wanted || media == "*/*"
            })
        };
        Self {
            json: has("application/json"),
            sse: has("text/event-stream"),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request headers `POST /mcp` reads, each looked up once: from a
/// [`HeaderMap`] ([`PostHeaders::of`]), or straight from the request head on
/// the plain listener's HTTP/1.1 lane (`super::lane`).
///
/// Each field is the first value of its header, if that value is visible
/// ASCII (what [`HeaderValue::to_str`] accepts); `Host` and `Origin` are
/// `Some("")` when present but not readable, so the guard refuses them.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PostHeaders<'a> {
    pub(super) host: Option<&'a str>,
    pub(super) origin: Option<&'a str>,
    pub(super) content_type: Option<&'a str>,
    pub(super) accept: Option<&'a str>,
    pub(super) session_id: Option<&'a str>,
    pub(super) version: Option<&'a str>,
    pub(super) method: Option<&'a str>,
    pub(super) name: Option<&'a str>,
    /// `Authorization` (read by admission, `super::authn`).
    pub(super) authorization: Option<&'a str>,
    /// The first of `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` that
    /// came more than once (a modern request is refused for it).
    pub(super) repeated: Option<&'static str>,
    /// `Host` or `Origin`, if one came more than once (the guard refuses
    /// it). Read by [`PostHeaders::record`] only: a header map's is read by
    /// the guard itself.
    guard_repeated: Option<&'static str>,
    /// Which headers [`PostHeaders::record`] has seen.
    seen: u16,
    /// The whole header map, for the `Mcp-Param-*` headers of a modern
    /// `tools/call` (SEP-2243). `None` on the HTTP/1.1 lane, which hands a
    /// request carrying any of them to hyper.
    map: Option<&'a HeaderMap>,
}

impl<'a> PostHeaders<'a> {
    /// The headers `POST /mcp` reads, from a parsed header map.
    pub(super) fn of(headers: &'a HeaderMap) -> Self {
        let present = |name: HeaderName| headers.get(&name).map(|v| v.to_str().unwrap_or_default());
        let repeated = REPEATABLE
            .iter()
            .find(|(name, _)| headers.get_all(name).iter().count() > 1)
            .map(|&(_, text)| text);
        Self {
            host: present(header::HOST),
            origin: present(header::ORIGIN),
            content_type: header(headers, &header::CONTENT_TYPE),
            accept: header(headers, &header::ACCEPT),
            session_id: header(headers, &SESSION_HEADER),
            version: header(headers, &VERSION_HEADER),
            method: header(headers, &METHOD_HEADER),
            name: header(headers, &NAME_HEADER),
            authorization: header(headers, &header::AUTHORIZATION),
            repeated,
            guard_repeated: None,
            seen: 0,
            map: Some(headers),
        }
    }

    /// What the guard checks, for a request of the HTTP/1.1 lane (whose
    /// target is `/mcp`, so `Host` is all it says of the host).
    pub(super) fn presented(&self) -> super::guard::Presented<'a> {
        super::guard::Presented {
            host: self.host,
            authority: None,
            origin: self.origin,
            repeated: self.guard_repeated,
            host_required: true,
        }
    }

    /// Records one header line of a request head: `name` in any case,
    /// `value` as received. Headers this path does not read are ignored.
    pub(super) fn record(&mut self, name: &[u8], value: &'a [u8]) {
        // (bit in `seen`, slot, what a present but unreadable value reads as)
        let (bit, slot, unreadable) = match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => (0, &mut self.host, Some("")),
            6 if name.eq_ignore_ascii_case(b"origin") => (1, &mut self.origin, Some("")),
            6 if name.eq_ignore_ascii_case(b"accept") => (2, &mut self.accept, None),
            12 if name.eq_ignore_ascii_case(b"content-type") => (3, &mut self.content_type, None),
            14 if name.eq_ignore_ascii_case(b"mcp-session-id") => (4, &mut self.session_id, None),
            20 if name.eq_ignore_ascii_case(b"mcp-protocol-version") => {
                (5, &mut self.version, None)
            }
            10 if name.eq_ignore_ascii_case(b"mcp-method") => (6, &mut self.method, None),
            8 if name.eq_ignore_ascii_case(b"mcp-name") => (7, &mut self.name, None),
            13 if name.eq_ignore_ascii_case(b"authorization") => (8, &mut self.authorization, None),
            _ => return,
        };
        // As `HeaderMap::get`: the first value counts, a later one only as a
        // repetition (of the three a modern request must not repeat).
        if self.seen & (1 << bit) != 0 {
            if (5..8).contains(&bit) && self.repeated.is_none() {
                self.repeated = Some(REPEATABLE[bit - 5].1);
            } else if bit < 2 && self.guard_repeated.is_none() {
                self.guard_repeated = Some(if bit == 0 { "Host" } else { "Origin" });
            }
            return;
        }
        self.seen |= 1 << bit;
        *slot = visible_ascii(value).or(unreadable);
    }
}

/// The headers a modern request must not repeat, in `seen` bit order from 5.
const REPEATABLE: [(HeaderName, &str); 3] = [
    (VERSION_HEADER, "mcp-protocol-version"),
    (METHOD_HEADER, "mcp-method"),
    (NAME_HEADER, "mcp-name"),
];

/// `value` as text if it is what [`HeaderValue::to_str`] accepts.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    // A fold rather than `all`: no early exit, so the check runs on whole
    // vectors of bytes.
    let visible = value.iter().fold(true, |ok, &b| {
        ok & (b == b'\t' || (0x20..0x7f).contains(&b))
    });
    // (ASCII only: the UTF-8 check takes its word-at-a-time path.)
    visible.then(|| std::str::from_utf8(value).ok()).flatten()
}

/// `POST /mcp`: the `default` context profile. The HTTP face calls it
/// without the router (`super::Face`), after the same guard.
pub(super) async fn post(
    State(state): State<HttpState>,
    request: axum::extract::Request,
) -> Response {
    post_request(&state, ContextConfig::DEFAULT_PROFILE.into(), request).await
}

/// Who sent `request`, as admission (`super::authn::check`) found.
fn caller_of<B>(request: &http::Request<B>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default()
}

/// `POST /mcp/{profile}`: a named context profile (404 if there is none).
pub(super) async fn post_profile(
    State(state): State<HttpState>,
    Path(profile): Path<String>,
    request: axum::extract::Request,
) -> Response {
    if !state.inner.gateway.views().has_profile(&profile) {
        return error_response(
            StatusCode::NOT_FOUND,
            jsonrpc::code::INVALID_REQUEST,
            &format!("no context profile {profile:?}"),
        );
    }
    post_request(&state, profile.into(), request).await
}

/// Reads the body within `http.max_body`, then answers it for `profile`.
async fn post_request(
    state: &HttpState,
    profile: Arc<str>,
    request: axum::extract::Request,
) -> Response {
    let caller = caller_of(&request);
    let (parts, body) = request.into_parts();
    match read_body(state, body).await {
        Ok(body) => post_as(
            state,
            profile,
            caller,
            &PostHeaders::of(&parts.headers),
            &body,
        )
        .await
        .into_response(),
        Err(refused) => refused,
    }
}

/// A request body of at most `http.max_body` bytes, whole within
/// `http.read_timeout`: 413 beyond the size (before any of it is read when
/// its `Content-Length` says so), 408 past the time, 400 if it cannot be
/// read. A body left unread ends its connection.
pub(super) async fn read_body(state: &HttpState, body: Body) -> Result<Bytes, Response> {
    use axum::body::HttpBody as _;
    use http_body_util::BodyExt as _;
    let limit = state.inner.max_body;
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(too_large(limit));
    }
    let read = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(state.inner.read_timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(e)) => Err(error_response(
            StatusCode::BAD_REQUEST,
            jsonrpc::code::INVALID_REQUEST,
            &format!("cannot read the body: {e}"),
        )),
        Err(_) => {
            tracing::debug!("A request body did not arrive whole in http.read_timeout");
            Err(error_response(
                StatusCode::REQUEST_TIMEOUT,
                jsonrpc::code::INVALID_REQUEST,
                "the body did not arrive whole within http.read_timeout",
            ))
        }
    }
}

/// The 413 for a body over `limit` bytes.
pub(super) fn too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        jsonrpc::code::INVALID_REQUEST,
        &format!("the body is larger than {limit} bytes (http.max_body)"),
    )
}

/// What a `POST /mcp` is answered with: a JSON body, nearly every answer,
/// which the lane writes without building a [`Response`]; or any other
/// response (an event stream, 202, errors of the HTTP layer).
#[derive(Debug)]
pub(super) enum Answer {
    /// `application/json` with this status.
    Json(StatusCode, Vec<u8>),
    /// Anything else, as the hyper path sends it.
    Other(Response),
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Self::Other(response)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Json(status, body) => json_body(status, body),
            Self::Other(response) => response,
        }
    }
}

/// Answers a `POST /mcp` body with the headers it came with (the guard has
/// passed them).
pub(super) async fn post_as(
    state: &HttpState,
    profile: Arc<str>,
    caller: Caller,
    headers: &PostHeaders<'_>,
    body: &[u8],
) -> Answer {
    let content_type = headers.content_type.unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::code::INVALID_REQUEST,
            "Content-Type must be application/json",
        )
        .into();
    }
    let accepts = Accepts::of(headers.accept);
    if !accepts.json && !accepts.sse {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            jsonrpc::code::INVALID_REQUEST,
            "Accept must include application/json and text/event-stream",
        )
        .into();
    }
    let frame = match jsonrpc::parse(body) {
        Ok(frame) => frame,
        Err(invalid) => {
            let status = status_for(invalid.error.code);
            return Answer::Json(status, Message::Response(invalid.into_response()).to_vec());
        }
    };
    let version_header = headers.version;
    let session_id = headers.session_id;
    // A legacy version header means the legacy era; any other header
    // (2026-07-28, or a version the gateway does not know, which the modern
    // path answers with -32022) means the modern one.
    let modern = match version_header {
        Some(v) => Era::of(v) != Some(Era::Legacy),
        None => session_id.is_none() && frame_is_modern(&frame),
    };
    if modern {
        modern_post(state, profile, caller, headers, frame, accepts).await
    } else {
        legacy_post(state, profile, caller, headers, frame, accepts).await
    }
}

fn frame_is_modern(frame: &Frame) -> bool {
    let params = match frame {
        Frame::Single(Message::Request(req)) => req.params.as_deref(),
        Frame::Single(Message::Notification(note)) => note.params.as_deref(),
        Frame::Single(Message::Response(_)) | Frame::Batch(_) => return false,
    };
    mcp::request_meta(params).is_ok_and(|meta| meta.protocol_version.is_some())
}

async fn modern_post(
    state: &HttpState,
    profile: Arc<str>,
    caller: Caller,
    headers: &PostHeaders<'_>,
    frame: Frame,
    accepts: Accepts,
) -> Answer {
    let req = match frame {
        Frame::Single(Message::Request(req)) => req,
        Frame::Single(Message::Notification(_) | Message::Response(_)) => {
            return StatusCode::ACCEPTED.into_response().into();
        }
        Frame::Batch(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                jsonrpc::code::INVALID_REQUEST,
                "batches are not part of 2026-07-28",
            )
            .into();
        }
    };
    // Read once here for the header check, then handed to the session.
    let meta = mcp::request_meta(req.params.as_deref());
    if let Some(mismatch) = meta
        .as_ref()
        .ok()
        .and_then(|meta| header_mismatch(headers, &req, meta))
        .or_else(|| param_mismatch(state, headers, &req))
    {
        let error = jsonrpc::ErrorObject::new(error_code::HEADER_MISMATCH, mismatch);
        let res = Message::Response(jsonrpc::Response::error(Some(req.id), error));
        return Answer::Json(StatusCode::BAD_REQUEST, res.to_vec());
    }
    if req.method == "subscriptions/listen" {
        if !accepts.sse {
            return StatusCode::NOT_ACCEPTABLE.into_response().into();
        }
        return listen(state, req).into();
    }
    let session =
        ClientSession::with_principal(state.inner.gateway.clone(), None, profile, caller.0);
    session.set_origin(|| Origin {
        transport: Transport::StreamableHttp,
        peer: None,
        session: None,
    });
    let (notes, notes_rx) = Outbound::for_request(64);
    let notes = accepts.sse.then_some(notes);
    // Answered in place: if the client goes away, this future is dropped and
    // the backend call with it (the modern cancellation).
    let call = async move { session.respond_read(req, meta, notes).await };
    deferred(Box::pin(call), notes_rx, accepts.sse, Era::Modern).await
}

/// Checks `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` against the
/// body, for requests that carry the modern `_meta` version.
fn header_mismatch(headers: &PostHeaders<'_>, req: &Request, meta: &RequestMeta) -> Option<String> {
    let body_version = meta.protocol_version.as_deref()?;
    if let Some(name) = headers.repeated {
        return Some(format!("{name} header appears more than once"));
    }
    if headers.version != Some(body_version) {
        return Some("MCP-Protocol-Version header does not match _meta".to_owned());
    }
    if headers.method != Some(req.method.as_str()) {
        return Some("Mcp-Method header does not match the request method".to_owned());
    }
    let name_key = match req.method.as_str() {
        method::TOOLS_CALL | method::PROMPTS_GET => "name",
        method::RESOURCES_READ => "uri",
        _ => return None,
    };
    let body_name = mcp::param_string(req.params.as_deref(), name_key)?;
    let header_name = headers.name.map(param_headers::decode);
    if header_name.as_ref().and_then(|name| name.as_ref().ok()) != Some(&body_name) {
        return Some(format!("Mcp-Name header does not match params.{name_key}"));
    }
    None
}

/// Checks the `Mcp-Param-*` headers of a modern `tools/call` against its
/// arguments, by the `x-mcp-header` declarations of the tool as its backend
/// listed it (SEP-2243). Headers no declaration names pass unchecked; a
/// tool the catalog does not have is left to the call to refuse.
fn param_mismatch(state: &HttpState, headers: &PostHeaders<'_>, req: &Request) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Call {
        name: String,
        arguments: Option<serde_json::Value>,
    }
    if req.method != method::TOOLS_CALL {
        return None;
    }
    let call: Call = serde_json::from_str(req.params.as_deref()?.get()).ok()?;
    let catalog = state.inner.gateway.catalog();
    let position = catalog.tool_position(&call.name)?;
    let tool = &catalog.entries(mcp::ListKind::Tools).get(position)?.item;
    if !tool.get().contains("x-mcp-header") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Tool {
        #[serde(rename = "inputSchema")]
        input_schema: Option<Box<serde_json::value::RawValue>>,
    }
    let schema = serde_json::from_str::<Tool>(tool.get())
        .ok()?
        .input_schema?;
    // A declaration that breaks the rules declares nothing a client could
    // have followed; the backend's own check, if any, still applies.
    let declared = param_headers::declared(&schema).ok()?;
    let map = headers.map;
    param_headers::mismatch(&declared, call.arguments.as_ref(), |name| {
        let name = format!("{}{name}", param_headers::PREFIX);
        map?.get(name.as_str()).and_then(|v| v.to_str().ok())
    })
}

/// Waits for the answer; if a notification comes first and the client
/// accepts SSE, switches to an SSE stream that carries the notifications and
/// then the answer. Notifications already queued when the answer comes (the
/// backend sent both at once, or the gateway was busy) go first on a stream
/// too, rather than being dropped for a JSON answer.
///
/// Modern answers carry the spec's status for their error code; legacy ones
/// are always 200 with the error in the body (a legacy client reads 404 as
/// "session gone").
async fn deferred<F>(
    mut call: std::pin::Pin<Box<F>>,
    mut notes: Inbox,
    sse: bool,
    era: Era,
) -> Answer
where
    F: std::future::Future<Output = jsonrpc::Response> + Send + 'static,
{
    let (first, answered) = tokio::select! {
        biased;
        response = &mut call => {
            let queued = if sse { notes.try_recv() } else { None };
            match queued {
                Some(first) => (first, Some(response)),
                None => return json_answer(response, era),
            }
        }
        Some(first) = notes.recv(), if sse => (first, None),
    };
    let stream = async_stream::stream! {
        yield sse_body::message(&first);
        let response = match answered {
            Some(response) => response,
            None => loop {
                tokio::select! {
                    biased;
                    Some(note) = notes.recv() => yield sse_body::message(&note),
                    response = &mut call => break response,
                }
            },
        };
        while let Some(note) = notes.try_recv() {
            yield sse_body::message(&note);
        }
        yield sse_body::message(&Message::Response(response).to_vec());
    };
    sse_body::response(stream).into()
}

fn json_response(response: jsonrpc::Response, era: Era) -> Response {
    json_answer(response, era).into_response()
}

fn json_answer(response: jsonrpc::Response, era: Era) -> Answer {
    let status = match (&response.outcome, era) {
        (Err(error), Era::Modern) => status_for(error.code),
        (Ok(_) | Err(_), _) => StatusCode::OK,
    };
    Answer::Json(status, Message::Response(response).to_vec())
}

/// `subscriptions/listen`: acknowledges the filter, then forwards each
/// matching catalog change, tagged with the subscription id, until the client
/// closes the stream or the gateway shuts down.
fn listen(state: &HttpState, req: Request) -> Response {
    let filter: serde_json::Value = req
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
        .and_then(|p| p.get("notifications").cloned())
        .unwrap_or_else(|| serde_json::json!({}));
    let wants = |key: &str| filter.get(key).and_then(serde_json::Value::as_bool) == Some(true);
    let (tools, prompts, resources) = (
        wants("toolsListChanged"),
        wants("promptsListChanged"),
        wants("resourcesListChanged"),
    );
    let mut agreed = serde_json::Map::new();
    for (key, on) in [
        ("toolsListChanged", tools),
        ("promptsListChanged", prompts),
        ("resourcesListChanged", resources),
    ] {
        if on {
            agreed.insert(key.to_owned(), serde_json::Value::Bool(true));
        }
    }
    let subscription_id = serde_json::to_value(&req.id).unwrap_or_default();
    let meta = serde_json::json!({ "io.modelcontextprotocol/subscriptionId": subscription_id });
    let ack = notification(
        "notifications/subscriptions/acknowledged",
        &serde_json::json!({ "notifications": agreed, "_meta": meta }),
    );
    let mut changes = state.inner.gateway.subscribe();
    let shutdown = state.inner.shutdown.clone();
    let id = req.id;
    let stream = async_stream::stream! {
        yield sse_body::message(&ack);
        let mut keep_alive = tokio::time::interval(sse_body::KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let kind = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = keep_alive.tick() => {
                    yield sse_body::ping();
                    continue;
                }
                kind = changes.recv() => match kind {
                    Ok(kind) => kind,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            };
            let wanted = match kind {
                mcp::ListKind::Tools => tools,
                mcp::ListKind::Prompts => prompts,
                mcp::ListKind::Resources | mcp::ListKind::ResourceTemplates => resources,
            };
            if wanted {
                yield sse_body::message(&notification(kind.list_changed(), &serde_json::json!({ "_meta": meta })));
            }
        }
        // A graceful end: the result closes the subscription.
        let result = serde_json::json!({ "resultType": "complete", "_meta": meta });
        if let Ok(result) = jsonrpc::to_raw(&result) {
            yield sse_body::message(&Message::Response(jsonrpc::Response::result(id, result)).to_vec());
        }
    };
    sse_body::response(stream)
}

fn notification(method: &str, params: &serde_json::Value) -> Vec<u8> {
    Message::Notification(Notification {
        method: method.to_owned(),
        params: serde_json::value::to_raw_value(params).ok(),
    })
    .to_vec()
}

/// A legacy Streamable HTTP session: the client session plus its stream
/// of unsolicited messages.
#[derive(Debug)]
pub(super) struct LegacySession {
    session: Arc<ClientSession>,
    stream: Arc<Mutex<GetStream>>,
    /// Wakes the open GET stream when a message is kept.
    kept: Arc<Notify>,
    /// The face's idle clock ([`super::HttpState::now`]) at the session's
    /// last request or GET: it expires `limits.session_idle_timeout` after.
    last_seen: AtomicU64,
    /// Its place among `limits.max_sessions`.
    _slot: super::SessionSlot,
}

/// The session's unsolicited messages: numbered and kept for replay (at most
/// [`REPLAY`] of them and `limits.replay_bytes`), read from here by the GET
/// stream open now, if any.
#[derive(Debug)]
struct GetStream {
    next_id: u64,
    replay: VecDeque<(u64, Arc<[u8]>)>,
    replay_bytes: usize,
    max_bytes: usize,
    /// The number of the GET stream open now (a newer GET replaces it).
    open: Option<u64>,
    opened: u64,
}

impl GetStream {
    /// Keeps `message` as the next event, letting the oldest go past the
    /// bounds.
    fn keep(&mut self, message: Vec<u8>) {
        self.next_id += 1;
        self.replay_bytes += message.len();
        self.replay.push_back((self.next_id, message.into()));
        while self.replay.len() > REPLAY || self.replay_bytes > self.max_bytes {
            let Some((_, old)) = self.replay.pop_front() else {
                break;
            };
            self.replay_bytes -= old.len();
        }
    }

    /// The first kept event after `sent`; `Err` if events after `sent` were
    /// let go unsent (the stream fell behind).
    fn after(&self, sent: u64) -> Result<Option<(u64, Arc<[u8]>)>, ()> {
        match self.replay.front() {
            Some((first, _)) if *first > sent + 1 => Err(()),
            _ => Ok(self.replay.iter().find(|(id, _)| *id > sent).cloned()),
        }
    }
}

impl LegacySession {
    fn new(
        state: &HttpState,
        profile: Arc<str>,
        caller: Caller,
        slot: super::SessionSlot,
    ) -> Arc<Self> {
        let inner = &state.inner;
        // Drained as soon as a message comes: the replay bound is what
        // holds (the queue only hands messages over).
        let (outbound, mut inbox) = Outbound::channel(inner.max_queued_bytes, OnFull::Disconnect);
        let session =
            ClientSession::with_principal(inner.gateway.clone(), Some(outbound), profile, caller.0);
        session.forward_list_changes();
        let stream = Arc::new(Mutex::new(GetStream {
            next_id: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            max_bytes: inner.gateway.config().limits.replay_bytes,
            open: None,
            opened: 0,
        }));
        let kept = Arc::new(Notify::new());
        let pump = Arc::downgrade(&stream);
        let wake = kept.clone();
        tokio::spawn(async move {
            while let Some(message) = inbox.recv().await {
                let Some(stream) = pump.upgrade() else { break };
                stream
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .keep(message);
                wake.notify_waiters();
            }
        });
        Arc::new(Self {
            session,
            stream,
            kept,
            last_seen: AtomicU64::new(state.now()),
            _slot: slot,
        })
    }

    fn stream(&self) -> std::sync::MutexGuard<'_, GetStream> {
        self.stream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a request (or GET) of the session now.
    pub(super) fn seen(&self, now: u64) {
        self.last_seen.store(now, Ordering::Relaxed);
    }

    /// Whether the session has been idle since before `before`: no request
    /// in flight, no GET stream open, no request or GET since. A busy
    /// session is noted as seen `now`.
    pub(super) fn idle_since_before(&self, before: u64, now: u64) -> bool {
        if self.session.has_requests_in_flight() || self.stream().open.is_some() {
            self.seen(now);
            return false;
        }
        self.last_seen.load(Ordering::Relaxed) < before
    }

    /// Ends the open GET stream, if any.
    pub(super) fn close_stream(&self) {
        self.stream().open = None;
        self.kept.notify_waiters();
    }
}

async fn legacy_post(
    state: &HttpState,
    profile: Arc<str>,
    caller: Caller,
    headers: &PostHeaders<'_>,
    frame: Frame,
    accepts: Accepts,
) -> Answer {
    let session_id = headers.session_id;
    if let Frame::Single(Message::Request(req)) = &frame
        && req.method == method::INITIALIZE
        && session_id.is_none()
    {
        let Frame::Single(Message::Request(req)) = frame else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response().into();
        };
        return initialize(state, profile, caller, req).await;
    }
    let Some(session_id) = session_id else {
        return error_response(
            StatusCode::BAD_REQUEST,
            jsonrpc::code::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required (send initialize first)",
        )
        .into();
    };
    let legacy = state.sessions().get(session_id).cloned();
    // Another principal's session is not found, as an unknown one.
    let Some(legacy) = legacy.filter(|l| caller.owns(&l.session)) else {
        return error_response(
            StatusCode::NOT_FOUND,
            jsonrpc::code::INVALID_REQUEST,
            "Session not found: initialize a new session",
        )
        .into();
    };
    legacy.seen(state.now());
    if let Some(v) = headers.version
        && Era::of(v) != Some(Era::Legacy)
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            jsonrpc::code::INVALID_REQUEST,
            &format!("Bad Request: unsupported MCP-Protocol-Version {v:?}"),
        )
        .into();
    }
    let session = &legacy.session;
    match frame {
        Frame::Single(Message::Request(req)) => {
            let (notes, notes_rx) = Outbound::for_request(64);
            // Detachable: a client that disconnects does not cancel (legacy).
            let call = session.answer_detachable(req, notes).await;
            deferred(Box::pin(call), notes_rx, accepts.sse, Era::Legacy).await
        }
        Frame::Single(Message::Notification(note)) => {
            session.handle_notification(&note);
            StatusCode::ACCEPTED.into_response().into()
        }
        Frame::Single(Message::Response(res)) => {
            session.handle_response(res);
            StatusCode::ACCEPTED.into_response().into()
        }
        Frame::Batch(entries) => {
            if let Some(refused) = session.refuse_batch(entries.len()) {
                let body = Message::Response(refused).to_vec();
                return Answer::Json(StatusCode::BAD_REQUEST, body);
            }
            match session.batch(entries).await {
                Some(body) => Answer::Json(StatusCode::OK, body),
                None => StatusCode::ACCEPTED.into_response().into(),
            }
        }
    }
}

/// `initialize` without a session: a new session, if the face holds fewer
/// than `limits.max_sessions` (503 and -32033 otherwise).
async fn initialize(state: &HttpState, profile: Arc<str>, caller: Caller, req: Request) -> Answer {
    let Some(slot) = state.session_slot() else {
        let limit = state.inner.gateway.config().limits.max_sessions;
        let error = only1mcp_core::Error::TooManySessions { limit };
        let res = Message::Response(jsonrpc::Response::error(
            Some(req.id),
            error.to_error_object(),
        ));
        return Answer::Json(StatusCode::SERVICE_UNAVAILABLE, res.to_vec());
    };
    let legacy = LegacySession::new(state, profile, caller, slot);
    let id = uuid::Uuid::new_v4().simple().to_string();
    legacy.session.set_origin(|| Origin {
        transport: Transport::StreamableHttp,
        peer: None,
        session: Some(id.as_str().into()),
    });
    let response = legacy.session.respond(req, None).await;
    if response.outcome.is_err() {
        return json_answer(response, Era::Legacy);
    }
    state.sessions().insert(id.clone(), legacy);
    tracing::info!(session = %id, "HTTP session opened");
    let mut res = json_response(response, Era::Legacy);
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(SESSION_HEADER, value);
    }
    res.into()
}

/// `GET /mcp`: the legacy session's stream of unsolicited messages, read
/// from what the session keeps; a newer GET replaces it, and one that falls
/// behind what is kept is closed (the client resumes with `Last-Event-ID`).
pub(super) async fn get(
    State(state): State<HttpState>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    let Some(session_id) = header(&headers, &SESSION_HEADER) else {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    };
    let legacy = state.sessions().get(session_id).cloned();
    let Some(legacy) = legacy.filter(|l| caller.owns(&l.session)) else {
        return error_response(
            StatusCode::NOT_FOUND,
            jsonrpc::code::INVALID_REQUEST,
            "Session not found",
        );
    };
    legacy.seen(state.now());
    if !Accepts::of(header(&headers, &header::ACCEPT)).sse {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let last_seen: Option<u64> = header(&headers, &LAST_EVENT_ID).and_then(|v| v.parse().ok());
    let (number, mut sent) = {
        let mut stream = legacy.stream();
        stream.opened += 1;
        stream.open = Some(stream.opened);
        // Without Last-Event-ID, only what comes from now on; with it,
        // what is still kept after it.
        let first_kept = stream.replay.front().map_or(stream.next_id + 1, |e| e.0);
        let sent = match last_seen {
            Some(seen) => seen.max(first_kept - 1).min(stream.next_id),
            None => stream.next_id,
        };
        (stream.opened, sent)
    };
    // Wakes a GET stream this one replaces, so that it ends.
    legacy.kept.notify_waiters();
    let priming =
        legacy.session.legacy_version() == Some(version::V2025_11_25) && last_seen.is_none();
    let shutdown = state.inner.shutdown.clone();
    let id = session_id.to_owned();
    let stream = async_stream::stream! {
        let _open = OpenStream { legacy: legacy.clone(), number };
        if priming {
            yield sse_body::event(Some(sent), None, b"");
        }
        let mut keep_alive = tokio::time::interval(sse_body::KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let kept = legacy.kept.notified();
            let mut kept = std::pin::pin!(kept);
            kept.as_mut().enable();
            let next = {
                let stream = legacy.stream();
                if stream.open != Some(number) {
                    break;
                }
                stream.after(sent)
            };
            match next {
                Ok(Some((event_id, bytes))) => {
                    sent = event_id;
                    yield sse_body::event(Some(event_id), Some("message"), &bytes);
                    continue;
                }
                Ok(None) => {}
                Err(()) => {
                    tracing::warn!(session = %id, "GET stream fell behind what the session keeps (limits.replay_bytes); closed");
                    break;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = keep_alive.tick() => yield sse_body::ping(),
                () = kept => {}
            }
        }
    };
    sse_body::response(stream)
}

/// A GET stream open on a session; it is no longer open once dropped.
struct OpenStream {
    legacy: Arc<LegacySession>,
    number: u64,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut stream = self.legacy.stream();
        if stream.open == Some(self.number) {
            stream.open = None;
        }
    }
}

/// `DELETE /mcp`: ends a legacy session.
pub(super) async fn delete(
    State(state): State<HttpState>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    let Some(session_id) = header(&headers, &SESSION_HEADER) else {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    };
    let removed = {
        let mut sessions = state.sessions();
        let owned = sessions
            .get(session_id)
            .is_some_and(|l| caller.owns(&l.session));
        if owned {
            sessions.remove(session_id)
        } else {
            None
        }
    };
    match removed {
        Some(legacy) => {
            legacy.close_stream();
            tracing::info!(session = %session_id, "HTTP session ended by the client");
            StatusCode::OK.into_response()
        }
        None => error_response(
            StatusCode::NOT_FOUND,
            jsonrpc::code::INVALID_REQUEST,
            "Session not found",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered() -> jsonrpc::Response {
        let result = serde_json::value::RawValue::from_string("{\"ok\":1}".to_owned()).unwrap();
        jsonrpc::Response::result(jsonrpc::Id::Number(7), result)
    }

    /// A progress note and the answer ready at once (both read in one go
    /// from a busy backend): the note still reaches a client that takes a
    /// stream, before the answer; one that takes only JSON gets the answer.
    #[tokio::test]
    async fn notes_queued_before_the_answer_go_first_on_a_stream() {
        use http_body_util::BodyExt as _;
        let note = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}".to_vec();
        let channel = || Outbound::channel(1 << 16, OnFull::Disconnect);
        let (tx, rx) = channel();
        assert!(tx.send_raw(note.clone()).await);
        let answer = deferred(Box::pin(async { answered() }), rx, true, Era::Legacy).await;
        let response = answer.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream",
            "{response:?}"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let at_note = body.find("notifications/progress").expect(&body);
        let at_answer = body.find("\"ok\":1").expect(&body);
        assert!(at_note < at_answer, "{body}");
        for sse in [false, true] {
            let (tx, rx) = channel();
            if !sse {
                assert!(tx.send_raw(note.clone()).await);
            }
            let answer = deferred(Box::pin(async { answered() }), rx, sse, Era::Legacy).await;
            assert!(
                matches!(&answer, Answer::Json(StatusCode::OK, body) if body.ends_with(b"{\"ok\":1}}")),
                "{answer:?}"
            );
        }
    }

    /// The kept messages stay within their count and bytes, the oldest
    /// going first; a stream that needs one let go has fallen behind.
    #[test]
    fn kept_messages_are_bounded_and_a_stream_behind_them_is_told() {
        let mut stream = GetStream {
            next_id: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            max_bytes: 1000,
            open: None,
            opened: 0,
        };
        for _ in 0..25 {
            stream.keep(vec![b'x'; 100]);
        }
        assert_eq!(stream.replay_bytes, 1000);
        let ids: Vec<u64> = stream.replay.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (16..=25).collect::<Vec<_>>());
        assert!(stream.after(14).is_err(), "15 was let go unsent");
        assert_eq!(stream.after(15).unwrap().unwrap().0, 16);
        assert_eq!(stream.after(20).unwrap().unwrap().0, 21);
        assert!(stream.after(25).unwrap().is_none());
        // By count too: tiny messages, at most REPLAY of them.
        for _ in 0..2 * REPLAY {
            stream.keep(b"y".to_vec());
        }
        assert_eq!(stream.replay.len(), REPLAY);
        assert_eq!(stream.replay_bytes, REPLAY);
    }

    #[test]
    fn accept_parsing() {
        let a = Accepts::of(Some("application/json, text/event-stream"));
        assert!(a.json && a.sse);
        let a = Accepts::of(Some("text/event-stream;q=1"));
        assert!(!a.json && a.sse);
        // The general path reads the SDKs' value as the shortcut does.
        let a = Accepts::of(Some("text/event-stream , application/json;q=0.9"));
        assert!(a.json && a.sse);
        let a = Accepts::of(Some("application/json"));
        assert!(a.json && !a.sse);
        let a = Accepts::of(None);
        assert!(a.json && !a.sse);
    }

    /// The lane's header reading agrees with the header map's, value for
    /// value, on repeated, mixed-case and unreadable headers.
    #[test]
    fn recorded_headers_read_as_the_header_map_does() {
        let lines: &[(&str, &[u8])] = &[
            ("HOST", b"127.0.0.1:9"),
            ("Origin", b"http://\xffevil"),
            ("accept", b"application/json"),
            ("Accept", b"text/event-stream"),
            ("Content-Type", b"application/json"),
            ("Mcp-Session-Id", b"\x80bad"),
            ("mcp-session-id", b"good"),
            ("MCP-Protocol-Version", b"2026-07-28"),
            ("Mcp-Method", b"tools/call"),
            ("mcp-name", b"a"),
            ("MCP-NAME", b"b"),
            ("x-other", b"ignored"),
        ];
        let mut map = HeaderMap::new();
        let mut recorded = PostHeaders::default();
        for &(name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
            recorded.record(name.as_bytes(), value);
        }
        let of = PostHeaders::of(&map);
        let fields = |h: &PostHeaders<'_>| {
            [
                h.host,
                h.origin,
                h.content_type,
                h.accept,
                h.session_id,
                h.version,
                h.method,
                h.name,
                h.repeated,
            ]
            .map(|f| f.map(str::to_owned))
        };
        assert_eq!(fields(&recorded), fields(&of));
        assert_eq!(of.host, Some("127.0.0.1:9"));
        assert_eq!(of.origin, Some(""), "unreadable origin must be refused");
        assert_eq!(of.accept, Some("application/json"));
        assert_eq!(of.session_id, None, "the first value is unreadable");
        assert_eq!(of.repeated, Some("mcp-name"));
        assert_eq!(PostHeaders::of(&HeaderMap::new()).host, None);
    }
}
