//! The gateway's HTTP face: Streamable HTTP at `/mcp` (both eras), the
//! legacy HTTP+SSE transport at `/sse` + `/messages`, and WebSocket at `/ws`.
//!
//! `/healthz` and `/readyz` answer orchestrators' probes (`health`), and
//! `metrics.path`, when set, serves the Prometheus page.
//!
//! Every other route goes through the same guard: `Host` and `Origin` are checked
//! (DNS-rebinding protection; 403 on a bad one) and bodies are capped (413).
//! Sessions belong to one client each: what a session receives (its
//! responses, its progress, its `list_changed`) reaches only that client.

mod authn;
mod conn;
mod guard;
mod health;
mod lane;
mod sse;
mod sse_body;
mod streamable;
mod ws;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use only1mcp_core::config::{ContextConfig, HttpConfig, TlsConfig};
use only1mcp_core::jsonrpc::{self, ErrorObject, Message};
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;
use crate::session::ClientSession;

pub use guard::{Guard, Presented, Refused};

/// Sessions by the ids the gateway gave them.
type Sessions<T> = HashMap<String, Arc<T>, foldhash::fast::RandomState>;

/// Shared state of the HTTP face.
#[derive(Debug, Clone)]
pub struct HttpState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gateway: Gateway,
    /// Legacy Streamable HTTP sessions by `Mcp-Session-Id`. The ids are the
    /// gateway's own (random), so foldhash rather than SipHash.
    sessions: Mutex<Sessions<streamable::LegacySession>>,
    /// 2024-11-05 HTTP+SSE sessions by `sessionId`.
    sse_sessions: Mutex<Sessions<ClientSession>>,
    guard: Guard,
    max_body: usize,
    /// `http.read_timeout`.
    read_timeout: std::time::Duration,
    /// `limits.max_queued_bytes` (read when the face starts).
    max_queued_bytes: usize,
    /// `limits.max_in_flight`: an HTTP/2 connection's concurrent streams.
    max_in_flight: u32,
    /// Legacy and HTTP+SSE sessions held (`limits.max_sessions`).
    session_count: Arc<AtomicUsize>,
    /// The idle clock: ticks of the session reaper ([`HttpState::now`]).
    clock: AtomicU64,
    /// Cancelled on shutdown: ends long-lived streams so draining finishes.
    shutdown: CancellationToken,
}

/// A session's place among `limits.max_sessions`; freed when dropped.
#[derive(Debug)]
struct SessionSlot(Arc<AtomicUsize>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HttpState {
    /// State for a face serving `gateway` under `config`, bound to `local`.
    pub fn new(gateway: Gateway, config: &HttpConfig, local: SocketAddr) -> Self {
        let limits = gateway.config().limits.clone();
        Self {
            inner: Arc::new(Inner {
                gateway,
                sessions: Mutex::new(Sessions::default()),
                sse_sessions: Mutex::new(Sessions::default()),
                guard: Guard::new(config, local),
                max_body: config.max_body,
                read_timeout: config.read_timeout,
                max_queued_bytes: limits.max_queued_bytes,
                max_in_flight: u32::try_from(limits.max_in_flight).unwrap_or(u32::MAX),
                session_count: Arc::new(AtomicUsize::new(0)),
                clock: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// A place for a new session, if the face holds fewer than
    /// `limits.max_sessions` (read now, so a reload applies).
    fn session_slot(&self) -> Option<SessionSlot> {
        let max = self.inner.gateway.config().limits.max_sessions;
        let count = &self.inner.session_count;
        if count.fetch_add(1, Ordering::Relaxed) >= max {
            count.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                limit = max,
                "New session refused: the face holds limits.max_sessions"
            );
            return None;
        }
        Some(SessionSlot(count.clone()))
    }

    /// The idle clock, in ticks of the session reaper.
    fn now(&self) -> u64 {
        self.inner.clock.load(Ordering::Relaxed)
    }

    /// Ends each legacy session left idle (no request in flight, no GET
    /// stream, no request or GET) for `idle`, until the face shuts down.
    /// The clock ticks every eighth of `idle` (at most every second), so a
    /// session ends between `idle` and an eighth more after its last use;
    /// a request costs one relaxed store to note itself.
    fn expire_idle_sessions(&self, idle: std::time::Duration) {
        let tick = (idle / 8).clamp(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_secs(1),
        );
        let ticks = u64::try_from(idle.as_nanos().div_ceil(tick.as_nanos())).unwrap_or(u64::MAX);
        let state = Arc::downgrade(&self.inner);
        let shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let mut clock = tokio::time::interval(tick);
            clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = clock.tick() => {}
                }
                let Some(inner) = state.upgrade() else { return };
                let now = inner.clock.fetch_add(1, Ordering::Relaxed) + 1;
                let Some(before) = now.checked_sub(ticks) else {
                    continue;
                };
                let expired: Vec<_> = inner
                    .sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extract_if(|_, legacy| legacy.idle_since_before(before + 1, now))
                    .collect();
                // (Dropped out of the lock: ending a session releases its
                // subscriptions.)
                for (id, _) in expired {
                    tracing::info!(session = %id, "HTTP session ended: idle for limits.session_idle_timeout");
                }
            }
        });
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions<streamable::LegacySession>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn sse_sessions(&self) -> std::sync::MutexGuard<'_, Sessions<ClientSession>> {
        self.inner
            .sse_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends long-lived streams (GET, SSE, listen, WebSocket).
    pub fn close_streams(&self) {
        self.inner.shutdown.cancel();
    }
}

/// The router of the HTTP face.
pub fn router(state: HttpState) -> Router {
    let max_body = state.inner.max_body;
    let metadata = authn::METADATA_ROUTE;
    let metrics_path = state
        .inner
        .gateway
        .config()
        .metrics
        .path
        .clone()
        .filter(|_| state.inner.gateway.metrics().is_some());
    let mut guarded = Router::new()
        .route(
            "/mcp",
            post(streamable::post)
                .get(streamable::get)
                .delete(streamable::delete),
        )
        .route(
            "/mcp/{profile}",
            post(streamable::post_profile)
                .get(streamable::get)
                .delete(streamable::delete),
        )
        .route("/sse", get(sse::open))
        .route("/messages", post(sse::message))
        .route("/message", post(sse::message))
        .route("/ws", get(ws::upgrade))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authn::check,
        ))
        // RFC 9728 metadata: what a client reads to learn how to get a
        // token, so it needs none.
        .route(metadata, get(authn::metadata))
        .route(&format!("{metadata}/{{*resource}}"), get(authn::metadata));
    // The metrics page has its own token (metrics.token), not a client's.
    if let Some(path) = metrics_path {
        guarded = guarded.route(&path, get(health::metrics));
    }
    let guarded = guarded.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        guard::check,
    ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(guarded)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// The HTTP face as one service: `POST /mcp`, nearly every request, goes to
/// its handler directly, after the same Host/Origin guard and body limit;
/// everything else goes through [`router`]. Skipping the router on the hot
/// path skips its boxed services and futures (docs/performance.md).
#[derive(Debug, Clone)]
pub struct Face {
    state: HttpState,
    router: Router,
}

impl Face {
    /// The face for `state`.
    pub fn new(state: HttpState) -> Self {
        Self {
            router: router(state.clone()),
            state,
        }
    }
}

impl<B> tower::Service<http::Request<B>> for Face
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(self.clone().handle(request))
    }
}

impl Face {
    /// [`Face`]'s service as one future of a known type, so that a server
    /// that can hold it (hyper's, where the lane hands a connection over) need not box it.
    async fn handle<B>(mut self, request: http::Request<B>) -> Result<Response, Infallible>
    where
        B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if request.method() != http::Method::POST || request.uri().path() != "/mcp" {
            return tower::Service::call(&mut self.router, request).await;
        }
        if let Some(refused) = guard::refusal(&self.state, &guard::Presented::of(&request)) {
            return Ok(refused);
        }
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller =
            match authn::admit(&self.state, authorization, ContextConfig::DEFAULT_PROFILE).await {
                Ok(caller) => caller,
                Err(refused) => return Ok(refused),
            };
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(caller);
        Ok(streamable::post(State(self.state), request).await)
    }
}

/// Serves the HTTP face on `listener` until `stop` resolves, then lets the
/// requests in flight finish for at most `http.shutdown_timeout` and
/// returns.
pub async fn serve(
    gateway: &Gateway,
    config: &HttpConfig,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let state = HttpState::new(gateway.clone(), config, local);
    state.expire_idle_sessions(gateway.config().limits.session_idle_timeout);
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{local}/mcp"), "Listening");
    let listening = Listening {
        face: Face::new(state.clone()),
        tls,
        limits: conn::Limits::new(config.max_connections, config.max_connections_per_peer),
        drain: config.shutdown_timeout,
    };
    listening.serve(listener, stop, state).await;
    Ok(())
}

/// The TLS side of `http.tls`: the certificate chain and key, offering
/// HTTP/2 and HTTP/1.1 by ALPN.
fn tls_acceptor(tls: &TlsConfig) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let invalid = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("TLS certificate or key {}: {e}", what.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid(&tls.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| invalid(&tls.key, &e))?;
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&tls.cert, &e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// What a listener serves its connections with.
struct Listening {
    face: Face,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<conn::Limits>,
    /// `http.shutdown_timeout`.
    drain: std::time::Duration,
}

impl Listening {
    /// Accepts connections until `stop` resolves. Plain ones start on the
    /// gateway's own lane ([`lane`]: `POST /mcp` over HTTP/1.1), which hands
    /// anything else to hyper: HTTP/1.1 (with upgrades, for WebSocket), or
    /// HTTP/2 for a connection that opens with its preface (h2c). TLS ones
    /// go to hyper after the handshake, HTTP/2 or HTTP/1.1 as ALPN chose.
    /// A connection over `http.max_connections` (or the per-peer bound) is
    /// closed as soon as it is accepted.
    ///
    /// Once `stop` resolves, no connection is accepted, long streams are
    /// closed (`closer`), and every open connection finishes the requests
    /// it has, for at most `drain`; then the ones left are closed.
    ///
    /// `axum::serve` would tell the version through hyper-util's sniffing
    /// builder, which wraps every read of the connection and every request in
    /// extra layers, about 3 000 instructions a request; here the lane tells it
    /// from a connection's first bytes (docs/performance.md).
    async fn serve(
        self,
        listener: tokio::net::TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
        closer: HttpState,
    ) {
        let shutdown = CancellationToken::new();
        let abort = CancellationToken::new();
        let connections = tokio_util::task::TaskTracker::new();
        let mut stop = std::pin::pin!(stop);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let Some(admitted) = self.limits.admit(peer.ip()) else {
                continue;
            };
            // An SSE event must leave now, not wait for Nagle and the client's
            // delayed ACK (40 ms per answer otherwise).
            let _ = tcp.set_nodelay(true);
            let (face, tls) = (self.face.clone(), self.tls.clone());
            let (shutdown, abort) = (shutdown.clone(), abort.clone());
            connections.spawn(async move {
                let _admitted = admitted;
                let served = async move {
                    match tls {
                        None => lane::serve(tcp, face, shutdown).await,
                        Some(tls) => serve_tls(tcp, tls, face, shutdown).await,
                    }
                };
                tokio::select! {
                    () = served => {}
                    () = abort.cancelled() => {}
                }
            });
        }
        drop(listener);
        closer.close_streams();
        shutdown.cancel();
        connections.close();
        if tokio::time::timeout(self.drain, connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = connections.len(),
                "Connections still busy after http.shutdown_timeout; closing them"
            );
            abort.cancel();
            connections.wait().await;
        }
    }
}

/// Serves one TLS connection: the handshake within `http.read_timeout`,
/// then hyper.
async fn serve_tls(
    tcp: tokio::net::TcpStream,
    tls: tokio_rustls::TlsAcceptor,
    face: Face,
    shutdown: CancellationToken,
) {
    let read_timeout = face.state.inner.read_timeout;
    let stream = tokio::select! {
        accepted = tokio::time::timeout(read_timeout, tls.accept(tcp)) => match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("Closing a connection that did not finish its TLS handshake in http.read_timeout");
                return;
            }
        },
        () = shutdown.cancelled() => return,
    };
    let version = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        conn::Version::H2
    } else {
        conn::Version::H1
    };
    let io = conn::Conn::new(stream, bytes::Bytes::new(), read_timeout);
    conn::serve_hyper(io, face, shutdown, version).await;
}

/// Serves `connection` to its end; once `shutdown` is cancelled, asks it to
/// finish what it has started and close (`graceful`).
async fn until_done<C, E>(
    connection: C,
    shutdown: &CancellationToken,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            graceful(connection.as_mut());
            connection.await
        }
    }
}

/// After a failed `accept`: a connection that failed before it was accepted
/// is the client's problem; anything else (out of file descriptors) is
/// logged and waited out, as `axum::serve` does.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "Cannot accept a connection");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

/// The HTTP status for a JSON-RPC error code on the Streamable HTTP face.
fn status_for(code: i64) -> StatusCode {
    StatusCode::from_u16(only1mcp_core::error::http_status(code)).unwrap_or(StatusCode::OK)
}

/// A JSON body with the given status.
fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    // Built directly: the tuple `IntoResponse` first sets
    // `application/octet-stream`, then replaces it.
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error response with no id (the request could not be read).
fn error_response(status: StatusCode, code: i64, message: &str) -> Response {
    let message = Message::Response(jsonrpc::Response::error(
        None,
        ErrorObject::new(code, message),
    ));
    json_body(status, message.to_vec())
}
