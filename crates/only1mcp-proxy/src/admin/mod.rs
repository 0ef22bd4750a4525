//! The admin API: manage a running gateway over HTTP, on a listener of its
//! own (`admin.listen`, default `127.0.0.1:7332`), never on the MCP port.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /servers` | every configured server: transport, status, era, tools, requests, errors, p50 latency, uptime, last error |
//! | `POST /servers` | adds a server: `{"id": …, "command": …, "args": […]}` or `{"id": …, "url": …}` (the fields of a `servers` entry) |
//! | `DELETE /servers/{id}` | removes a server (its calls in flight finish first) |
//! | `POST /servers/{id}/enable`, `/disable` | starts or stops a configured server |
//! | `POST /reload` | re-reads the config file; 400 with every problem if it is invalid |
//! | `GET /servers/{id}/logs?lines=N&follow=true` | recent log lines of one server (SSE when following) |
//! | `GET /logs?lines=N&follow=true` | the same for every server |
//! | `POST /servers/{id}/test` | starts the server on a fresh connection, opens a session and lists its tools, each step timed |
//! | `GET /metrics` | the Prometheus page (also readable with `metrics.token`, which reads nothing else; ADR 0018) |
//!
//! Changes apply to the running gateway through [`Gateway::reload`] with an
//! edited copy of the running config: unchanged servers keep their
//! processes. They reach the config file only with `?persist=true` (see
//! [`persist`]); otherwise they last until the next reload from the file.
//!
//! Access is checked in `auth`: every request carries the bearer token, from
//! `admin.token` or `ONLY1MCP_ADMIN_TOKEN`, or, with neither, the one drawn
//! at start and written to a file only the gateway's user can read
//! ([`secret`], ADR 0011). The API is never served without a token.
//!
//! The listener closes connections that send no whole request head within
//! the MCP listener's `http.read_timeout` (idle ones included), and holds at
//! most [`MAX_CONNECTIONS`] connections: a further one is closed at once.
//! Bodies are read only after the token was checked, and only up to 64 KiB.

mod auth;
pub mod dto;
mod handlers;
pub mod persist;
pub mod secret;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use only1mcp_core::config::{AdminConfig, Config, ServerConfig, UrlTransport};

use crate::gateway::Gateway;

/// The environment variable that overrides `admin.token`.
pub const TOKEN_ENV: &str = "ONLY1MCP_ADMIN_TOKEN";

/// The largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

/// The admin API's shared state.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    /// The config file the gateway was started from (`None`: the built-in
    /// config, which cannot be reloaded or written).
    source: Option<PathBuf>,
    token: String,
    /// `metrics.token`: reads `/metrics` and nothing else.
    metrics_token: Option<String>,
    /// One change at a time: each edits the config the last one left.
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("source", &self.inner.source)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// State for an admin API over `gateway`, started from the config file
    /// `source`, requiring `token` of every request.
    pub fn new(gateway: Gateway, source: Option<PathBuf>, token: String) -> Self {
        let metrics_token = gateway
            .config()
            .metrics
            .token
            .as_deref()
            .map(|t| t.trim().to_owned());
        Self {
            inner: Arc::new(Inner {
                metrics_token,
                gateway,
                source,
                token,
                changes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn token(&self) -> &str {
        &self.inner.token
    }

    fn metrics_token(&self) -> Option<&str> {
        self.inner.metrics_token.as_deref()
    }
}

/// The admin API's routes, behind the access check.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/servers", get(handlers::list).post(handlers::add))
        .route("/servers/{id}", axum::routing::delete(handlers::remove))
        .route("/servers/{id}/enable", post(handlers::enable))
        .route("/servers/{id}/disable", post(handlers::disable))
        .route("/servers/{id}/logs", get(handlers::server_logs))
        .route("/servers/{id}/test", post(handlers::test))
        .route("/logs", get(handlers::all_logs))
        .route("/reload", post(handlers::reload))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The configured token: `ONLY1MCP_ADMIN_TOKEN` if set and not empty, else
/// `admin.token` (`None`: one is generated at start).
pub fn token(config: &AdminConfig) -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| config.token.clone())
        .map(|t| t.trim().to_owned())
}

/// The most connections the admin listener holds at once; a further one is
/// closed as soon as it is accepted. The API serves one operator's commands.
pub const MAX_CONNECTIONS: usize = 64;

/// The running admin API; dropping it stops it (open log streams end) and
/// removes a generated token's file.
#[derive(Debug)]
pub struct Admin {
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    token_file: Option<secret::TokenFile>,
}

impl Admin {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The file holding the generated token (`None`: a configured token).
    pub fn token_file(&self) -> Option<&std::path::Path> {
        self.token_file.as_ref().map(secret::TokenFile::path)
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the admin API did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// The address asked for.
        listen: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// No token was configured and the generated one could not be written
    /// where the CLI finds it.
    #[error("cannot write the generated admin token ({0}); set admin.token or {TOKEN_ENV}")]
    TokenFile(std::io::Error),
}

/// Binds the admin API on `listen` and serves it in a task, with `read_timeout`
/// as its header and idle timeout. Without a configured token one is
/// generated and written to its file ([`secret`]), and a non-loopback
/// `listen` is narrowed to loopback (same port), as the log says: a token
/// only a local user can read is no use on a network listener. Logs
/// `Admin API listening url=http://…`.
pub async fn start(
    gateway: Gateway,
    config: &AdminConfig,
    listen: SocketAddr,
    source: Option<PathBuf>,
    read_timeout: std::time::Duration,
) -> Result<Admin, StartError> {
    let configured = token(config);
    let mut listen = listen;
    if configured.is_none() && !listen.ip().is_loopback() {
        let loopback = match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        tracing::warn!(
            asked = %listen,
            "No admin token configured (admin.token or {TOKEN_ENV}): the admin API binds loopback only"
        );
        listen.set_ip(loopback);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen { listen, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Listen { listen, source })?;
    let (token, token_file) = match configured {
        Some(token) => (token, None),
        None => {
            let token = secret::generate().map_err(StartError::TokenFile)?;
            let dir = secret::runtime_dir().ok_or_else(|| {
                StartError::TokenFile(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "this platform names no runtime directory; set {}",
                        secret::RUNTIME_DIR_ENV
                    ),
                ))
            })?;
            let file = secret::TokenFile::write(&dir, local.port(), &token)
                .map_err(StartError::TokenFile)?;
            (token, Some(file))
        }
    };
    match &token_file {
        Some(file) => tracing::info!(
            url = %format!("http://{local}"),
            auth = "bearer token (generated)",
            token_file = %file.path().display(),
            "Admin API listening"
        ),
        None => tracing::info!(
            url = %format!("http://{local}"),
            auth = "bearer token (configured)",
            "Admin API listening"
        ),
    }
    let app = router(AdminState::new(gateway, source, token));
    let task = tokio::spawn(serve(listener, app, read_timeout));
    Ok(Admin {
        local,
        task,
        token_file,
    })
}

/// Accepts and serves admin connections until the task is aborted (which
/// drops, and so closes, every connection with it).
async fn serve(listener: tokio::net::TcpListener, app: Router, read_timeout: std::time::Duration) {
    let mut connections = tokio::task::JoinSet::new();
    let mut last_refusal_logged: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "Admin API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            drop(tcp);
            if last_refusal_logged.is_none_or(|at| at.elapsed().as_secs() >= 10) {
                last_refusal_logged = Some(std::time::Instant::now());
                tracing::warn!(%peer, max = MAX_CONNECTIONS, "Admin API connection refused: too many open");
            }
            continue;
        }
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(tcp);
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(read_timeout)
                .serve_connection(io, service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "Admin API connection ended");
            }
        });
    }
}

/// `stdio`, `streamable-http`, `sse` or `websocket`.
pub fn transport_name(server: &ServerConfig) -> &'static str {
    match Config::url_transport(server) {
        None => "stdio",
        Some(UrlTransport::StreamableHttp) => "streamable-http",
        Some(UrlTransport::Sse) => "sse",
        Some(UrlTransport::Websocket) => "websocket",
    }
}
