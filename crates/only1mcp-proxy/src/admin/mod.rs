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
//!
//! Changes apply to the running gateway through [`Gateway::reload`] with an
//! edited copy of the running config: unchanged servers keep their
//! processes. They reach the config file only with `?persist=true` (see
//! [`persist`]); otherwise they last until the next reload from the file.
//!
//! Access is checked in `auth`: a bearer token from `admin.token` or
//! `ONLY1MCP_ADMIN_TOKEN`, or, without one, loopback only.

mod auth;
pub mod dto;
mod handlers;
pub mod logs;
pub mod persist;

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
    token: Option<String>,
    /// One change at a time: each edits the config the last one left.
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("source", &self.inner.source)
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// State for an admin API over `gateway`, started from the config file
    /// `source`, requiring `token` if given.
    pub fn new(gateway: Gateway, source: Option<PathBuf>, token: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                gateway,
                source,
                token,
                changes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
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
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The token in force: `ONLY1MCP_ADMIN_TOKEN` if set and not empty, else
/// `admin.token`.
pub fn token(config: &AdminConfig) -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| config.token.clone())
        .map(|t| t.trim().to_owned())
}

/// The running admin API; dropping it stops it (open log streams end).
#[derive(Debug)]
pub struct Admin {
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Admin {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the admin API on `listen` and serves it in a task. Without a token
/// a non-loopback `listen` is narrowed to loopback (same port), and the log
/// says so. Logs `Admin API listening url=http://…`.
pub async fn start(
    gateway: Gateway,
    config: &AdminConfig,
    listen: SocketAddr,
    source: Option<PathBuf>,
) -> std::io::Result<Admin> {
    let token = token(config);
    let mut listen = listen;
    if token.is_none() && !listen.ip().is_loopback() {
        let loopback = match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        tracing::warn!(
            asked = %listen,
            "No admin token (admin.token or {TOKEN_ENV}): the admin API binds loopback only"
        );
        listen.set_ip(loopback);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let auth = if token.is_some() {
        "bearer token"
    } else {
        "none (loopback only)"
    };
    tracing::info!(url = %format!("http://{local}"), auth, "Admin API listening");
    let app = router(AdminState::new(gateway, source, token));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "Admin API stopped");
        }
    });
    Ok(Admin { local, task })
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
