//! One client's session: reads its messages, answers in its era, routes its
//! requests to backends.
//!
//! A request that carries the modern `_meta` protocol version is served
//! statelessly (2026-07-28). An `initialize` opens a legacy session; after it,
//! requests without modern `_meta` are legacy. Each request runs in its own
//! task so a slow backend never holds up the others; a client's
//! `notifications/cancelled` aborts that task, which cancels the backend call.
//!
//! The session is transport-agnostic. A stream transport (stdio, WebSocket,
//! the legacy SSE face) hands it whole frames with [`ClientSession::handle_frame`]
//! and gets everything back on the session's [`Outbound`]. The Streamable HTTP
//! face answers each POST on its own response: it calls
//! [`ClientSession::answer_detachable`] (legacy: the call runs on even if
//! the client disconnects) or awaits
//! [`ClientSession::respond`] in place (modern: dropping the response stream
//! drops the call, which is the cancellation).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use futures::future::{AbortHandle, Abortable};

use arc_swap::ArcSwapOption;
use only1mcp_core::Error;
use only1mcp_core::catalog::{Entry, Route};
use only1mcp_core::config::ContextConfig;
use only1mcp_core::jsonrpc::{
    self, ErrorObject, Frame, Id, Invalid, Message, Notification, Outcome, Request, Response,
};
use only1mcp_core::mcp::{
    self, DiscoverResult, Era, InitializeParams, InitializeResult, ListKind, RawObject, method,
    version,
};
use only1mcp_core::pipeline::{Affinity, ClientRequest, Origin, Principal, Routed};
use only1mcp_core::upstream::Call;
use only1mcp_observability::trace;
use only1mcp_transport::downstream::Outbound;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::gateway::{Gateway, implementation};
use crate::subscriptions::Subscriber;

mod forward;
pub(crate) mod hold;
mod tools;

/// The era-specific state of a session.
#[derive(Debug, Default)]
struct State {
    /// Set once a legacy `initialize` was answered: the negotiated version.
    legacy_version: Option<&'static str>,
    /// Whether `notifications/initialized` arrived.
    initialized: bool,
    /// The capabilities a legacy client declared in `initialize`.
    client_capabilities: Option<Box<RawValue>>,
    /// The level a legacy client set with `logging/setLevel`.
    log_level: Option<Box<RawValue>>,
    /// Tools a legacy client loaded into its list with `search_tools`
    /// (`load: true`), by exposed name.
    loaded: Vec<Arc<str>>,
    /// The resource URIs a legacy client subscribed to (at most
    /// `limits.max_subscriptions`), released when the session ends.
    subscribed: Vec<String>,
}

/// Where the answer to one request goes.
#[derive(Debug)]
pub enum Reply {
    /// The session's own outbound (stdio, WebSocket, legacy SSE).
    Session,
    /// A batch collector.
    Batch(mpsc::UnboundedSender<Response>),
}

/// The answer to a legacy HTTP request, computed in the task that polls it;
/// dropped unfinished, the request goes on in a task of its own (see
/// [`ClientSession::answer_detachable`]).
pub struct Detachable {
    answer: Option<Pin<Box<dyn Future<Output = Response> + Send>>>,
}

impl std::fmt::Debug for Detachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detachable")
            .field("finished", &self.answer.is_none())
            .finish()
    }
}

impl Future for Detachable {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Response> {
        let Some(answer) = self.answer.as_mut() else {
            panic!("Detachable polled after it finished");
        };
        let response = std::task::ready!(answer.as_mut().poll(cx));
        self.answer = None;
        Poll::Ready(response)
    }
}

impl Drop for Detachable {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(answer);
        }
    }
}

/// A request the gateway sent its client, until answered: on drop it is
/// forgotten, and if no answer came the client gets `notifications/cancelled`.
struct AskPending<'a> {
    session: &'a ClientSession,
    id: Id,
    via: &'a Outbound,
    answered: bool,
}

impl Drop for AskPending<'_> {
    fn drop(&mut self) {
        self.session
            .asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        if !self.answered {
            let params = serde_json::json!({
                "requestId": self.id,
                "reason": "the server no longer needs the answer",
            });
            let cancel = Message::Notification(Notification {
                method: method::CANCELLED.to_owned(),
                params: serde_json::value::to_raw_value(&params).ok(),
            });
            let _ = self.via.try_send(&cancel);
        }
    }
}

/// Where a request goes: the route, and the name (or URI) the client used.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The server, and the item's name (or URI) there.
    pub(crate) route: Route,
    /// The item's name (or URI) as the client used it.
    pub(crate) exposed: Option<Arc<str>>,
}

/// What a request is answered with, besides its params.
#[derive(Debug, Clone)]
struct Ctx {
    /// The era to answer in.
    era: Era,
    /// Where progress notifications of this request go.
    notes: Option<Outbound>,
    /// The request's `_meta`, read once (rewriting a name, uri or
    /// arguments on the way to a backend leaves it as it is).
    meta: mcp::RequestMeta,
    /// The client's request id as JSON text, only when the gateway records
    /// calls (an audit record names it).
    request_id: Option<String>,
}

/// One client's session.
#[derive(Debug)]
pub struct ClientSession {
    gateway: Gateway,
    /// The context profile whose tool view this client gets.
    profile: Arc<str>,
    outbound: ArcSwapOption<Outbound>,
    state: Mutex<State>,
    in_flight: Mutex<HashMap<Id, AbortHandle>>,
    tasks: TaskTracker,
    /// Requests answered at once (`limits.max_in_flight`): made when the
    /// session first runs one in a task of its own (never for a modern
    /// POST's throwaway session, which answers its one request in place).
    slots: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
    /// Cancelled when the session ends: stops the task that forwards list
    /// changes to it (made with that task).
    ended: std::sync::OnceLock<tokio_util::sync::CancellationToken>,
    /// Requests the gateway sent to the client, by id, awaiting answers.
    asked: Mutex<HashMap<Id, oneshot::Sender<Outcome>>>,
    next_ask: std::sync::atomic::AtomicU64,
    /// Who the client is, when it authenticated; every call it makes
    /// carries it ([`only1mcp_core::pipeline::Routed::principal`]).
    principal: Option<Arc<Principal>>,
    /// A number no other session of this process has: a legacy session's
    /// calls carry it as their affinity key, so its follow-ups can reach
    /// the replica its earlier calls did.
    serial: u64,
    /// How the client reached the gateway, kept only when the gateway
    /// records calls ([`ClientSession::set_origin`]).
    origin: std::sync::OnceLock<Arc<Origin>>,
}

/// The source of [`ClientSession`] serial numbers.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ClientSession {
    /// A session whose unsolicited messages go to `outbound` (none yet for an
    /// HTTP session until its GET stream opens).
    pub fn new(gateway: Gateway, outbound: Option<Outbound>) -> Arc<Self> {
        Self::with_profile(gateway, outbound, ContextConfig::DEFAULT_PROFILE.into())
    }

    /// A session served the tool view of `profile` (see [`crate::context`]).
    pub fn with_profile(
        gateway: Gateway,
        outbound: Option<Outbound>,
        profile: Arc<str>,
    ) -> Arc<Self> {
        Self::with_principal(gateway, outbound, profile, None)
    }

    /// A session of a client that authenticated as `principal` (`None`:
    /// it did not), served the tool view of `profile`.
    pub fn with_principal(
        gateway: Gateway,
        outbound: Option<Outbound>,
        profile: Arc<str>,
        principal: Option<Arc<Principal>>,
    ) -> Arc<Self> {
        gateway.count_session(true);
        Arc::new(Self {
            principal,
            serial: SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            gateway,
            profile,
            outbound: ArcSwapOption::from_pointee(outbound),
            state: Mutex::new(State::default()),
            in_flight: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            slots: std::sync::OnceLock::new(),
            ended: std::sync::OnceLock::new(),
            asked: Mutex::new(HashMap::new()),
            next_ask: std::sync::atomic::AtomicU64::new(1),
            origin: std::sync::OnceLock::new(),
        })
    }

    /// Says how the client reached the gateway (the face that made the
    /// session calls it once). Kept only when the gateway records calls:
    /// every call of the session then carries it to the audit layer.
    pub fn set_origin(&self, origin: impl FnOnce() -> Origin) {
        if self.gateway.auditor().is_some() {
            let _ = self.origin.set(Arc::new(origin()));
        }
    }

    /// `call` on its way to `route`, for a request of `era`, with what
    /// the call stack's layers need to know of this session.
    pub(crate) fn routed(
        &self,
        call: Call,
        route: Route,
        exposed: Option<Arc<str>>,
        era: Era,
    ) -> Routed {
        let mut extensions = http::Extensions::new();
        if self.gateway.auditor().is_some() {
            extensions.insert(ClientRequest {
                id: None,
                origin: self.origin.get().cloned(),
            });
        }
        Routed {
            call,
            route,
            exposed,
            era,
            principal: self.principal.clone(),
            // A legacy session's calls may depend on the ones before them;
            // a modern client's are independent.
            affinity: match era {
                Era::Legacy => Affinity::Key(self.serial),
                Era::Modern => Affinity::None,
            },
            extensions,
        }
    }

    /// Who the client is, if it authenticated.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        self.principal.as_ref()
    }

    /// The role policy and the principal it applies to, when both exist
    /// (an anonymous client, on stdio or without `auth`, sees everything).
    pub(crate) fn visibility(&self) -> Option<(Arc<only1mcp_auth::Policy>, &Principal)> {
        let principal = self.principal.as_deref()?;
        Some((self.gateway.policy()?, principal))
    }

    /// Whether the caller may see `entry` of `kind` (always, without a
    /// policy or a principal).
    pub(crate) fn sees(&self, kind: ListKind, entry: &Entry) -> bool {
        self.visibility().is_none_or(|(policy, principal)| {
            entry.route.server.is_empty()
                || policy.allows(
                    principal,
                    rule_kind(kind),
                    &entry.route.server,
                    &entry.exposed,
                )
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<Id, AbortHandle>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session's client is gone or was cut off (its outbound
    /// queue closed).
    pub fn is_disconnected(&self) -> bool {
        self.outbound
            .load()
            .as_ref()
            .is_some_and(|outbound| outbound.is_closed())
    }

    /// Replaces where unsolicited messages go (an HTTP session's GET stream).
    pub fn set_outbound(&self, outbound: Option<Outbound>) {
        self.outbound.store(outbound.map(Arc::new));
    }

    /// The legacy version this session negotiated, if it did.
    pub fn legacy_version(&self) -> Option<&'static str> {
        self.state().legacy_version
    }

    /// Tells this session's client, once it is an initialized legacy session,
    /// when the merged lists change. Ends when the session is dropped (at
    /// once, not at the next change: sessions that come and go leave no
    /// task behind).
    pub fn forward_list_changes(self: &Arc<Self>) {
        let mut changes = self.gateway.subscribe();
        let weak = Arc::downgrade(self);
        let ended = self
            .ended
            .get_or_init(tokio_util::sync::CancellationToken::new)
            .clone();
        tokio::spawn(async move {
            loop {
                let changed = tokio::select! {
                    () = ended.cancelled() => break,
                    changed = changes.recv() => changed,
                };
                let kind = match changed {
                    Ok(kind) => kind,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let Some(session) = weak.upgrade() else { break };
                if !session.state().initialized {
                    continue;
                }
                let note = Message::Notification(Notification {
                    method: kind.list_changed().to_owned(),
                    params: None,
                });
                session.send(&note).await;
            }
        });
    }

    /// Sends to the session's outbound, if it has one.
    async fn send(&self, message: &Message) {
        let outbound = self.outbound.load_full();
        if let Some(outbound) = outbound {
            outbound.send(message).await;
        }
    }

    /// Handles one frame of a stream transport (a line on stdio).
    pub async fn handle_frame(self: &Arc<Self>, bytes: &[u8]) {
        match jsonrpc::parse(bytes) {
            Ok(Frame::Single(message)) => self.handle_message(message).await,
            Ok(Frame::Batch(entries)) => self.handle_batch(entries).await,
            Err(invalid) => self.reply(invalid.into_response()).await,
        }
    }

    /// Handles one message whose answer (if any) goes to the session.
    pub async fn handle_message(self: &Arc<Self>, message: Message) {
        match message {
            // The handshake is answered in order: what follows depends on it.
            Message::Request(req) if req.method == method::INITIALIZE => {
                let response = self.respond(req, None).await;
                self.reply(response).await;
            }
            Message::Request(req) => self.spawn_request(req, Reply::Session).await,
            Message::Notification(note) => self.handle_notification(&note),
            Message::Response(res) => self.handle_response(res),
        }
    }

    /// Takes the client's answer to a request the gateway sent it.
    pub fn handle_response(&self, res: Response) {
        let waiter = res.id.as_ref().and_then(|id| {
            self.asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
        });
        match waiter {
            Some(tx) => {
                let _ = tx.send(res.outcome);
            }
            None => {
                tracing::debug!(id = ?res.id, "Response from the client to no request of ours; dropped");
            }
        }
    }

    /// Sends a request to the client through `via` and waits for its answer,
    /// at most `timeout`.
    pub(crate) async fn ask_client(
        &self,
        method: String,
        params: Option<Box<RawValue>>,
        via: &Outbound,
        timeout: std::time::Duration,
    ) -> Outcome {
        let n = self
            .next_ask
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = Id::String(format!("only1mcp-{n}").into());
        let (tx, rx) = oneshot::channel();
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        // Until the answer is in: if this future is dropped (the backend
        // cancelled its request) or gives up, the client is told.
        let mut pending = AskPending {
            session: self,
            id: id.clone(),
            via,
            answered: false,
        };
        let request = Message::Request(Request { id, method, params });
        let answer = if via.send(&request).await {
            tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        pending.answered = answer.is_some();
        drop(pending);
        answer.unwrap_or_else(|| {
            Err(ErrorObject::new(
                jsonrpc::code::INTERNAL_ERROR,
                "the client did not answer the backend's input request",
            ))
        })
    }

    /// Answers a frame that was too large to read.
    pub async fn reject_oversized(&self, limit: usize) {
        let error = Error::MessageTooLarge { limit }.to_error_object();
        self.reply(Response::error(None, error)).await;
    }

    /// Waits for a place among the requests this session answers at once
    /// (`limits.max_in_flight`): while it waits, its caller reads nothing
    /// more from the client. `None` if the session is closing.
    async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.slots.get_or_init(|| {
            let max = self.gateway.config().limits.max_in_flight;
            Arc::new(tokio::sync::Semaphore::new(max))
        });
        // The common case, a free slot, without building a waiting future.
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                slots.clone().acquire_owned().await.ok()
            }
            Err(tokio::sync::TryAcquireError::Closed) => None,
        }
    }

    /// Whether a request of this session is being answered (legacy
    /// requests whose client went away included).
    pub fn has_requests_in_flight(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for every request in flight to be answered.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn reply(&self, response: Response) {
        self.send(&Message::Response(response)).await;
    }

    /// Answers a batch (2025-03-26 sessions only) with one array, through
    /// `reply`: the session for stream transports, or the given HTTP reply.
    pub async fn handle_batch(self: &Arc<Self>, entries: Vec<Result<Message, Invalid>>) {
        if let Some(frame) = self.batch(entries).await {
            let outbound = self.outbound.load_full();
            if let Some(outbound) = outbound {
                outbound.send_raw(frame).await;
            }
        }
    }

    /// Runs a batch and returns the serialized array of responses, or `None`
    /// if it held no requests.
    pub async fn batch(
        self: &Arc<Self>,
        entries: Vec<Result<Message, Invalid>>,
    ) -> Option<Vec<u8>> {
        if let Some(refused) = self.refuse_batch(entries.len()) {
            return Some(Message::Response(refused).to_vec());
        }
        if self.legacy_version() != Some(version::V2025_03_26) {
            let error = Error::InvalidRequest(
                "batches are only accepted from 2025-03-26 sessions".to_owned(),
            );
            return Some(
                Message::Response(Response::error(None, error.to_error_object())).to_vec(),
            );
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        for entry in entries {
            match entry {
                Ok(Message::Request(req)) => {
                    self.spawn_request(req, Reply::Batch(tx.clone())).await;
                }
                Ok(Message::Notification(note)) => self.handle_notification(&note),
                Ok(Message::Response(res)) => self.handle_response(res),
                Err(invalid) => {
                    let _ = tx.send(invalid.into_response());
                }
            }
        }
        drop(tx);
        let mut responses = Vec::new();
        while let Some(res) = rx.recv().await {
            responses.push(Message::Response(res).to_vec());
        }
        if responses.is_empty() {
            return None;
        }
        let mut frame = Vec::with_capacity(responses.iter().map(Vec::len).sum::<usize>() + 2);
        frame.push(b'[');
        for (idx, res) in responses.iter().enumerate() {
            if idx > 0 {
                frame.push(b',');
            }
            frame.extend_from_slice(res);
        }
        frame.push(b']');
        Some(frame)
    }

    /// The answer to a batch of `entries` entries if it is over
    /// `limits.max_batch`: refused whole, before any of it runs.
    pub fn refuse_batch(&self, entries: usize) -> Option<Response> {
        let limit = self.gateway.config().limits.max_batch;
        if entries <= limit {
            return None;
        }
        tracing::warn!(entries, limit, "Batch refused: over limits.max_batch");
        let error = Error::BatchTooLarge { entries, limit };
        Some(Response::error(None, error.to_error_object()))
    }

    /// Runs a request in its own task, cancellable by the client's
    /// `notifications/cancelled`, answering through `reply`. Waits first
    /// for a place among the requests in flight (`limits.max_in_flight`):
    /// a stream transport's reader awaits this, so at the bound it stops
    /// reading its client until an answer is out.
    pub async fn spawn_request(self: &Arc<Self>, req: Request, reply: Reply) {
        let Some(slot) = self.slot().await else {
            return;
        };
        let notes = self.outbound.load_full().map(|o| (*o).clone());
        // Boxed where it is made: spawning moves the task's future several
        // times, and this one is several KiB (docs/performance.md).
        let answer = Box::pin(self.cancellable(req, notes));
        let session = self.clone();
        self.tasks.spawn(async move {
            let _slot = slot;
            let Some(response) = answer.await else {
                return;
            };
            match reply {
                Reply::Session => session.reply(response).await,
                Reply::Batch(batch) => {
                    let _ = batch.send(response);
                }
            }
        });
    }

    /// Answers a legacy request in the caller's task, with its progress and
    /// other related messages going to `notes`, and cancellable by the
    /// client's `notifications/cancelled` (then the answer is a "request
    /// cancelled" error). A legacy client that goes away does not cancel: if
    /// the returned future is dropped before the answer, the request finishes
    /// in a task of its own and its answer is discarded.
    ///
    /// This is the Streamable HTTP face's legacy POST; answering in place
    /// instead of in a spawned task saves a task and two wake-ups per
    /// request. It waits first for a place among the session's requests in
    /// flight (`limits.max_in_flight`), held until the answer, detached or
    /// not.
    pub async fn answer_detachable(self: &Arc<Self>, req: Request, notes: Outbound) -> Detachable {
        let id = req.id.clone();
        let slot = self.slot().await;
        // Boxed where it is made: the moves below then move a pointer, not
        // the whole future (several KiB, copied at each move).
        let answer = Box::pin(self.cancellable(req, Some(notes)));
        let answer = self.tasks.track_future(async move {
            let _slot = slot;
            answer.await.unwrap_or_else(|| {
                let error = ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, "request cancelled");
                Response::error(Some(id), error)
            })
        });
        Detachable {
            answer: Some(Box::pin(answer)),
        }
    }

    /// Registers `req` as in flight, so the client's
    /// `notifications/cancelled` aborts it, and returns the future that
    /// answers it: `None` once cancelled.
    fn cancellable(
        self: &Arc<Self>,
        req: Request,
        notes: Option<Outbound>,
    ) -> impl Future<Output = Option<Response>> + Send + 'static {
        let (handle, registration) = AbortHandle::new_pair();
        // A reused id replaces the older entry: only the newest request with
        // an id can be cancelled by it.
        self.in_flight().insert(req.id.clone(), handle);
        let session = self.clone();
        async move {
            let id = req.id.clone();
            let response = Abortable::new(session.respond(req, notes), registration).await;
            session.in_flight().remove(&id);
            response.ok()
        }
    }

    /// Handles a notification from the client.
    pub fn handle_notification(&self, note: &Notification) {
        match note.method.as_str() {
            method::INITIALIZED => self.state().initialized = true,
            method::CANCELLED => {
                let Some(id) = cancelled_id(note.params.as_deref()) else {
                    return;
                };
                if let Some(handle) = self.in_flight().remove(&id) {
                    tracing::info!(request_id = %id, "Client cancelled the request");
                    handle.abort();
                }
            }
            other => tracing::debug!(method = other, "Client notification ignored"),
        }
    }

    /// Answers one request in place; progress goes to `notes`. Dropping the
    /// future cancels the backend call.
    pub async fn respond(self: &Arc<Self>, req: Request, notes: Option<Outbound>) -> Response {
        let meta = mcp::request_meta(req.params.as_deref());
        self.respond_read(req, meta, notes).await
    }

    /// [`ClientSession::respond`] for a request whose `_meta` the caller
    /// has already read with [`mcp::request_meta`].
    pub async fn respond_read(
        self: &Arc<Self>,
        req: Request,
        meta: Result<mcp::RequestMeta, ErrorObject>,
        notes: Option<Outbound>,
    ) -> Response {
        let id = req.id.clone();
        let traced = if trace::enabled() {
            self.server_span(&req, &meta)
        } else {
            None
        };
        let access = trace::AccessLog::start(&req);
        let span = match &traced {
            Some(traced) => traced.span().clone(),
            None => tracing::info_span!("request", request_id = %id, method = %req.method),
        };
        // The access line is written inside the request's span (its ids).
        let access = access.map(|access| (access, span.clone()));
        let op = self.gateway.metrics().map(|m| m.server_op(&req.method));
        let outcome = self.dispatch(req, meta, notes).instrument(span).await;
        if let Some(op) = op {
            op.finish(&outcome);
        }
        if let Some(traced) = traced {
            traced.finish(&outcome);
        }
        if let Some((access, span)) = access {
            let _in_request = span.enter();
            access.finish(
                &outcome,
                self.principal.as_deref().map(|p| p.subject.as_str()),
            );
        }
        Response {
            id: Some(id),
            outcome,
        }
    }

    /// The OpenTelemetry server span of `req`, if it is sampled (traces
    /// are on): its parent is the trace context of its `_meta`.
    fn server_span(
        &self,
        req: &Request,
        meta: &Result<mcp::RequestMeta, ErrorObject>,
    ) -> Option<trace::ServerSpan> {
        let meta = meta.as_ref().ok();
        let carrier = trace::Carrier {
            traceparent: meta.and_then(|m| m.traceparent.as_deref()),
            tracestate: meta.and_then(|m| m.tracestate.as_deref()),
        };
        let version = match meta.and_then(|m| m.protocol_version.as_deref()) {
            Some(version) => Some(version),
            None => self.legacy_version(),
        };
        trace::ServerSpan::start(req, carrier, version)
    }

    /// Answers one request.
    async fn dispatch(
        self: &Arc<Self>,
        req: Request,
        meta: Result<mcp::RequestMeta, ErrorObject>,
        notes: Option<Outbound>,
    ) -> Outcome {
        let (era, meta) = match self.request_era(&req, meta) {
            Ok(read) => read,
            Err(error) => return Err(error.to_error_object()),
        };
        let request_id = self.gateway.auditor().is_some().then(|| req.id.to_string());
        let ctx = Ctx {
            era,
            notes,
            meta,
            request_id,
        };
        let res = match (req.method.as_str(), era) {
            (method::INITIALIZE, Era::Legacy) => self.initialize(&req),
            (method::SERVER_DISCOVER, _) => self.discover(),
            (method::PING, Era::Legacy) => Ok(empty()),
            (method::TOOLS_LIST, _) => self.list(ListKind::Tools, &req, era),
            (method::PROMPTS_LIST, _) => self.list(ListKind::Prompts, &req, era),
            (method::RESOURCES_LIST, _) => self.list(ListKind::Resources, &req, era),
            (method::RESOURCES_TEMPLATES_LIST, _) => {
                self.list(ListKind::ResourceTemplates, &req, era)
            }
            (method::TOOLS_CALL, _) => self.call_tool(req, &ctx).await,
            (method::PROMPTS_GET, _) => self.call_named(ListKind::Prompts, req, &ctx).await,
            (method::RESOURCES_READ, _) => self.call_by_uri(req, &ctx).await,
            (method::RESOURCES_SUBSCRIBE, Era::Legacy) => self.subscribe(&req).await,
            (method::RESOURCES_UNSUBSCRIBE, Era::Legacy) => self.unsubscribe(&req).await,
            (method::COMPLETION_COMPLETE, _) => self.complete(req, &ctx).await,
            (method::LOGGING_SET_LEVEL, Era::Legacy) => self.set_level(req).await,
            (other, _) => Err(Error::MethodNotFound(other.to_owned()).to_error_object()),
        };
        res.and_then(|result| finish(result, era))
    }

    /// Which era a request belongs to, checking the modern `_meta` rules,
    /// and its `_meta`.
    fn request_era(
        &self,
        req: &Request,
        meta: Result<mcp::RequestMeta, ErrorObject>,
    ) -> Result<(Era, mcp::RequestMeta), Error> {
        let meta = meta.map_err(|e| Error::InvalidParams(e.message))?;
        if let Some(requested) = &meta.protocol_version {
            if Era::of(requested) != Some(Era::Modern) {
                return Err(Error::UnsupportedProtocolVersion {
                    requested: requested.clone(),
                });
            }
            if meta.client_capabilities.is_none() {
                return Err(Error::InvalidParams(format!(
                    "_meta[\"{}\"] is required",
                    mcp::meta::CLIENT_CAPABILITIES
                )));
            }
            return Ok((Era::Modern, meta));
        }
        let state = self.state();
        if state.legacy_version.is_some()
            || req.method == method::INITIALIZE
            || req.method == method::PING
        {
            return Ok((Era::Legacy, meta));
        }
        Err(Error::InvalidParams(format!(
            "_meta[\"{}\"] is required (2026-07-28), or send initialize first (earlier revisions)",
            mcp::meta::PROTOCOL_VERSION
        )))
    }

    fn initialize(&self, req: &Request) -> Outcome {
        let params: InitializeParams = req
            .params
            .as_deref()
            .map(|p| serde_json::from_str(p.get()))
            .transpose()
            .map_err(|e| Error::InvalidParams(e.to_string()).to_error_object())?
            .ok_or_else(|| {
                Error::InvalidParams("initialize needs params".to_owned()).to_error_object()
            })?;
        let version = mcp::negotiate_legacy(&params.protocol_version);
        {
            let mut state = self.state();
            state.legacy_version = Some(version);
            state.client_capabilities = params.capabilities;
        }
        if let Some(client) = &params.client_info {
            tracing::info!(client = %client.name, client_version = %client.version, protocol_version = version, "Client initialized a session");
        }
        jsonrpc::to_raw(&InitializeResult {
            protocol_version: version.to_owned(),
            capabilities: self.gateway.capabilities(),
            server_info: implementation(),
            instructions: self.gateway.instructions(),
        })
    }

    fn discover(&self) -> Outcome {
        let mut meta = serde_json::Map::new();
        meta.insert(
            mcp::meta::SERVER_INFO.to_owned(),
            serde_json::to_value(implementation()).unwrap_or_default(),
        );
        jsonrpc::to_raw(&DiscoverResult {
            supported_versions: version::MODERN.iter().map(|v| (*v).to_owned()).collect(),
            capabilities: self.gateway.capabilities(),
            instructions: self.gateway.instructions(),
            result_type: "complete".to_owned(),
            ttl_ms: 0,
            cache_scope: "public".to_owned(),
            meta: Some(meta),
        })
    }

    fn list(&self, kind: ListKind, req: &Request, era: Era) -> Outcome {
        let params = mcp::params_object(req.params.as_deref())?;
        let cursor = mcp::string_field(&params, "cursor");
        let catalog = self.gateway.catalog();
        let views = self.gateway.views();
        let with_loaded: Vec<Entry>;
        let all: &[Entry] = match (kind, views.get(&self.profile)) {
            (ListKind::Tools, Some(view)) => {
                if cursor.is_none() {
                    view.record_served();
                }
                let loaded = self.state().loaded.clone();
                if loaded.is_empty() {
                    view.listed()
                } else {
                    with_loaded = self.with_loaded(&views, view, &loaded);
                    &with_loaded
                }
            }
            (ListKind::Tools, None) => &[],
            _ => catalog.entries(kind),
        };
        // What the caller's roles let it see (auth.roles); the meta tools
        // (no server) always.
        let visible: Vec<Entry>;
        let all = match self.visibility() {
            Some((policy, principal)) => {
                let rule = rule_kind(kind);
                visible = all
                    .iter()
                    .filter(|e| {
                        e.route.server.is_empty()
                            || policy.allows(principal, rule, &e.route.server, &e.exposed)
                    })
                    .cloned()
                    .collect();
                &visible
            }
            None => all,
        };
        let (entries, next) =
            only1mcp_core::catalog::page(kind, all, cursor.as_deref(), self.gateway.page_size())
                .map_err(|e| Error::InvalidParams(e.to_string()).to_error_object())?;
        let mut out = String::with_capacity(64 + entries.len() * 256);
        out.push_str("{\"");
        out.push_str(kind.field());
        out.push_str("\":");
        crate::context::push_listing(&mut out, entries);
        if let Some(next) = next {
            out.push_str(",\"nextCursor\":");
            out.push_str(&serde_json::to_string(&next).unwrap_or_default());
        }
        if era == Era::Modern {
            let hint = catalog.cache_hint(kind);
            let scope = if hint.private { "private" } else { "public" };
            out.push_str(&format!(
                ",\"ttlMs\":{},\"cacheScope\":\"{scope}\"",
                hint.ttl_ms
            ));
        }
        out.push('}');
        RawValue::from_string(out)
            .map_err(|e| ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, e.to_string()))
    }

    /// `tools/call` and `prompts/get`: route by exposed name, rename, forward.
    async fn call_named(self: &Arc<Self>, kind: ListKind, req: Request, ctx: &Ctx) -> Outcome {
        let mut params = mcp::params_object(req.params.as_deref())?;
        let Some(name) = mcp::string_field(&params, "name") else {
            return Err(
                Error::InvalidParams("params.name is required".to_owned()).to_error_object()
            );
        };
        let catalog = self.gateway.catalog();
        let route = match kind {
            ListKind::Tools => catalog
                .tool(&name)
                .ok_or_else(|| Error::ToolNotFound(name.clone())),
            _ => catalog
                .prompt(&name)
                .ok_or_else(|| Error::PromptNotFound(name.clone())),
        }
        .map_err(|e| e.to_error_object())?;
        let route = route.clone();
        drop(catalog);
        mcp::set_string_field(&mut params, "name", &route.name);
        let params = mcp::to_raw_object(&params)?;
        let target = Target {
            route,
            exposed: Some(name.into()),
        };
        self.forward(target, req.method, Some(params), ctx).await
    }

    /// `resources/read` and (legacy) subscribe/unsubscribe: route by URI.
    async fn call_by_uri(self: &Arc<Self>, req: Request, ctx: &Ctx) -> Outcome {
        let params = mcp::params_object(req.params.as_deref())?;
        let Some(uri) = mcp::string_field(&params, "uri") else {
            return Err(Error::InvalidParams("params.uri is required".to_owned()).to_error_object());
        };
        let server = self
            .gateway
            .catalog()
            .resource(&uri)
            .cloned()
            .ok_or_else(|| Error::ResourceNotFound(uri.clone()).to_error_object())?;
        let uri: Arc<str> = uri.into();
        let target = Target {
            route: Route {
                server,
                name: uri.clone(),
            },
            exposed: Some(uri),
        };
        self.forward(target, req.method, req.params, ctx).await
    }

    /// Legacy `resources/subscribe`: at most `limits.max_subscriptions`
    /// URIs per session.
    async fn subscribe(self: &Arc<Self>, req: &Request) -> Outcome {
        let params = mcp::params_object(req.params.as_deref())?;
        let Some(uri) = mcp::string_field(&params, "uri") else {
            return Err(Error::InvalidParams("params.uri is required".to_owned()).to_error_object());
        };
        let server = self
            .gateway
            .catalog()
            .resource(&uri)
            .cloned()
            .ok_or_else(|| Error::ResourceNotFound(uri.clone()).to_error_object())?;
        let limit = self.gateway.config().limits.max_subscriptions;
        {
            let state = self.state();
            if state.subscribed.len() >= limit && !state.subscribed.contains(&uri) {
                return Err(Error::InvalidRequest(format!(
                    "this session holds {limit} resource subscriptions already (limits.max_subscriptions); unsubscribe from one first"
                ))
                .to_error_object());
            }
        }
        let subscriber: Arc<dyn Subscriber> = self.clone();
        self.gateway
            .subscribe_resource(&subscriber, &server, &uri)
            .await?;
        let mut state = self.state();
        if !state.subscribed.contains(&uri) {
            state.subscribed.push(uri);
        }
        Ok(empty())
    }

    /// Legacy `resources/unsubscribe`.
    async fn unsubscribe(self: &Arc<Self>, req: &Request) -> Outcome {
        let params = mcp::params_object(req.params.as_deref())?;
        let Some(uri) = mcp::string_field(&params, "uri") else {
            return Err(Error::InvalidParams("params.uri is required".to_owned()).to_error_object());
        };
        self.state().subscribed.retain(|u| *u != uri);
        self.gateway.unsubscribe_resource(&**self, &uri).await;
        Ok(empty())
    }

    /// Sends a notification to the session's client now, if there is room;
    /// returns whether it was queued.
    pub fn notify(&self, message: &Message) -> bool {
        self.outbound
            .load_full()
            .is_some_and(|outbound| outbound.try_send(message))
    }

    /// `completion/complete`: route by the prompt or resource it refers to.
    async fn complete(self: &Arc<Self>, req: Request, ctx: &Ctx) -> Outcome {
        let mut params = mcp::params_object(req.params.as_deref())?;
        let reference: RawObject = params
            .get("ref")
            .map(|r| serde_json::from_str(r.get()))
            .transpose()
            .map_err(|e| Error::InvalidParams(format!("params.ref: {e}")).to_error_object())?
            .ok_or_else(|| {
                Error::InvalidParams("params.ref is required".to_owned()).to_error_object()
            })?;
        let catalog = self.gateway.catalog();
        let target = match mcp::string_field(&reference, "type").as_deref() {
            Some("ref/prompt") => {
                let name = mcp::string_field(&reference, "name").unwrap_or_default();
                let route = catalog
                    .prompt(&name)
                    .cloned()
                    .ok_or_else(|| Error::PromptNotFound(name.clone()).to_error_object())?;
                let mut reference = reference;
                mcp::set_string_field(&mut reference, "name", &route.name);
                params.insert("ref".to_owned(), mcp::to_raw_object(&reference)?);
                Target {
                    route,
                    exposed: Some(name.into()),
                }
            }
            Some("ref/resource") => {
                let uri = mcp::string_field(&reference, "uri").unwrap_or_default();
                let server = catalog
                    .template(&uri)
                    .cloned()
                    .ok_or_else(|| Error::ResourceNotFound(uri.clone()).to_error_object())?;
                let uri: Arc<str> = uri.into();
                Target {
                    route: Route {
                        server,
                        name: uri.clone(),
                    },
                    exposed: Some(uri),
                }
            }
            other => {
                return Err(
                    Error::InvalidParams(format!("unknown ref type {other:?}")).to_error_object()
                );
            }
        };
        drop(catalog);
        let params = mcp::to_raw_object(&params)?;
        self.forward(target, req.method, Some(params), ctx).await
    }

    /// Legacy `logging/setLevel`: sent on to every legacy backend that
    /// declared logging; the client gets `{}` once all have answered.
    async fn set_level(&self, req: Request) -> Outcome {
        let level = mcp::params_object(req.params.as_deref())?
            .get("level")
            .cloned();
        if level.is_none() {
            return Err(
                Error::InvalidParams("params.level is required".to_owned()).to_error_object()
            );
        }
        self.state().log_level = level;
        // Every replica of a server with replicas: each has its own session.
        let backends = self.gateway.all_backends();
        let calls = backends.iter().filter_map(|backend| {
            let established = backend.established()?;
            let wanted = established.era == Era::Legacy && established.capabilities.logging.is_some();
            wanted.then(|| {
                let call = Call::new(method::LOGGING_SET_LEVEL, req.params.clone());
                let route = Route {
                    server: backend.id().clone(),
                    name: "".into(),
                };
                let mut routed = self.routed(call, route, None, Era::Legacy);
                if backend.pooled() {
                    routed.affinity = Affinity::Replica(backend.replica());
                }
                let call = self.gateway.stack().dispatch(routed);
                async move {
                    if let Err(e) = call.await {
                        tracing::warn!(server = %backend.id(), error = %e, "logging/setLevel failed");
                    }
                }
            })
        });
        futures::future::join_all(calls).await;
        Ok(empty())
    }
}

impl Drop for ClientSession {
    /// A session that ends (its client went away, or it was ended or
    /// expired) stops its list-change task and leaves its resource
    /// subscriptions: an upstream subscription no live session wants any
    /// more is dropped.
    fn drop(&mut self) {
        self.gateway.count_session(false);
        if let Some(ended) = self.ended.get() {
            ended.cancel();
        }
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let uris = std::mem::take(&mut state.subscribed);
        if !uris.is_empty() {
            self.gateway.release_resources(self, &uris);
        }
    }
}

impl Subscriber for ClientSession {
    fn notify(&self, message: &Message) -> bool {
        Self::notify(self, message)
    }

    fn routed(&self, call: Call, route: Route, exposed: Option<Arc<str>>, era: Era) -> Routed {
        Self::routed(self, call, route, exposed, era)
    }
}

impl crate::backend::relay::ClientLink for ClientSession {
    fn ask<'a>(
        &'a self,
        method: String,
        params: Option<Box<RawValue>>,
        via: &'a Outbound,
        timeout: std::time::Duration,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(self.ask_client(method, params, via, timeout))
    }
}

/// Adds `resultType: "complete"` to results for modern clients.
fn finish(result: Box<RawValue>, era: Era) -> Outcome {
    let text = result.get();
    if era == Era::Legacy || text.contains("\"resultType\"") {
        return Ok(result);
    }
    // No escapes, so no key spelled with one: the member goes in as text,
    // last, and everything else passes through as the backend wrote it.
    if !text.contains('\\')
        && let Some(body) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
    {
        let sep = if body.trim().is_empty() { "" } else { "," };
        return RawValue::from_string(format!("{{{body}{sep}\"resultType\":\"complete\"}}"))
            .map_err(|e| ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, e.to_string()));
    }
    let mut object = mcp::Members::parse(Some(&result))
        .map_err(|e| ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, e.message))?;
    if object.get("resultType").is_none() {
        object.set_string("resultType", "complete");
    }
    object.to_raw()
}

fn empty() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}

fn cancelled_id(params: Option<&RawValue>) -> Option<Id> {
    let params = mcp::params_object(params).ok()?;
    serde_json::from_str(params.get("requestId")?.get()).ok()
}

/// The kind of `auth.roles` rule that speaks of items of `kind`.
pub(crate) fn rule_kind(kind: ListKind) -> only1mcp_core::config::auth::RuleKind {
    use only1mcp_core::config::auth::RuleKind;
    match kind {
        ListKind::Tools => RuleKind::Tool,
        ListKind::Prompts => RuleKind::Prompt,
        ListKind::Resources | ListKind::ResourceTemplates => RuleKind::Resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions that come and go leave no task behind: each one's
    /// list-change task ends with it, with no change to wake it.
    #[tokio::test]
    async fn an_ended_sessions_tasks_end_with_it() {
        let gateway = Gateway::start(&only1mcp_core::config::Config::default()).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        for _ in 0..100 {
            let session = ClientSession::new(gateway.clone(), None);
            session.forward_list_changes();
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while metrics.num_alive_tasks() > before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} tasks left of 100",
                metrics.num_alive_tasks() - before
            );
            tokio::task::yield_now().await;
        }
        gateway.shutdown().await;
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn modern_results_get_a_result_type_and_keep_the_rest_verbatim() {
        let cases = [
            ("{}", r#"{"resultType":"complete"}"#),
            (
                r#"{"content":[{"type":"text","text":"a\u00e9"}]}"#,
                r#"{"content":[{"type":"text","text":"a\u00e9"}],"resultType":"complete"}"#,
            ),
            (
                r#"{"content":[],"resultType":"incomplete"}"#,
                r#"{"content":[],"resultType":"incomplete"}"#,
            ),
            // A key spelled with an escape is still that key.
            (
                r#"{"result\u0054ype":"incomplete"}"#,
                r#"{"resultType":"incomplete"}"#,
            ),
            (r#"{"a":"\"}"}"#, r#"{"a":"\"}","resultType":"complete"}"#),
        ];
        for (result, expected) in cases {
            let finished = finish(raw(result), Era::Modern).unwrap();
            assert_eq!(finished.get(), expected, "{result}");
        }
        assert!(finish(raw("[1]"), Era::Modern).is_err());
        assert_eq!(finish(raw("{}"), Era::Legacy).unwrap().get(), "{}");
    }
}
