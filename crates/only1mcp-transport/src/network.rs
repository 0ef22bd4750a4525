//! Backends reached over the network, and the one connection type the proxy
//! holds for every backend.
//!
//! [`connect`] opens a connection as a [`NetworkSpec`] says: Streamable HTTP
//! ([`crate::streamable`]), the 2024-11-05 HTTP+SSE transport
//! ([`crate::sse_client`]) or WebSocket ([`crate::ws_client`]). Each returns
//! the connection and its [`Events`], as [`crate::stdio::Connection::start`]
//! does; [`AnyConnection`] wraps all four kinds so the supervisor and
//! [`crate::session::establish`] handle them alike.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use tower_service::Service;

use crate::{ResponseFuture, sse_client, stdio, streamable, ws_client};

/// The connect timeout when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach one network backend.
#[derive(Clone)]
pub struct NetworkSpec {
    /// The server id, used in logs and errors.
    pub server: Arc<str>,
    /// The URL: `http(s)://…` for Streamable HTTP and HTTP+SSE, `ws(s)://…`
    /// for WebSocket.
    pub url: String,
    /// The transport to use.
    pub transport: UrlTransport,
    /// Headers sent on every HTTP request and on the WebSocket handshake,
    /// values already expanded. Never logged.
    pub headers: Vec<(String, String)>,
    /// How long establishing a TCP (and TLS) connection may take.
    pub connect_timeout: Duration,
    /// A PEM file of extra CA certificates to trust besides the webpki roots
    /// (private or self-signed deployments).
    pub extra_ca: Option<PathBuf>,
}

impl NetworkSpec {
    /// A spec with no headers, the default connect timeout and no extra CA.
    pub fn new(
        server: impl Into<Arc<str>>,
        url: impl Into<String>,
        transport: UrlTransport,
    ) -> Self {
        Self {
            server: server.into(),
            url: url.into(),
            transport,
            headers: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_ca: None,
        }
    }

    /// The URL, parsed and checked against the transport's schemes.
    pub(crate) fn parsed_url(&self) -> Result<reqwest::Url, Error> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| self.unavailable(format!("invalid URL: {e}")))?;
        let schemes: &[&str] = match self.transport {
            UrlTransport::StreamableHttp | UrlTransport::Sse => &["http", "https"],
            UrlTransport::Websocket => &["ws", "wss"],
        };
        if !schemes.contains(&url.scheme()) {
            return Err(self.unavailable(format!(
                "URL scheme {:?} does not fit the {:?} transport (expected {})",
                url.scheme(),
                self.transport,
                schemes.join(" or ")
            )));
        }
        Ok(url)
    }

    /// The TLS client configuration for this backend.
    pub(crate) fn tls(&self) -> Result<rustls::ClientConfig, Error> {
        crate::tls::install_provider();
        crate::tls::client_config(self.extra_ca.as_deref()).map_err(|e| self.unavailable(e))
    }

    /// An [`Error::UpstreamUnavailable`] for this backend.
    pub(crate) fn unavailable(&self, reason: impl Into<String>) -> Error {
        Error::UpstreamUnavailable {
            server: self.server.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Debug for NetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials: show the names only.
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("NetworkSpec")
            .field("server", &self.server)
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("headers", &header_names)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_ca", &self.extra_ca)
            .finish()
    }
}

/// Opens a connection to a network backend. Streamable HTTP connects lazily
/// (the first request opens the pool's connection); HTTP+SSE and WebSocket
/// connect here, within the connect timeout. The events end with `Closed`
/// when the connection is gone; for a legacy Streamable HTTP session that
/// includes the server forgetting the session (HTTP 404), so the supervisor
/// re-establishes it.
pub async fn connect(spec: &NetworkSpec) -> Result<(AnyConnection, Events), Error> {
    match spec.transport {
        UrlTransport::StreamableHttp => {
            streamable::Connection::open(spec).map(|(c, e)| (AnyConnection::Http(c), e))
        }
        UrlTransport::Sse => sse_client::Connection::connect(spec)
            .await
            .map(|(c, e)| (AnyConnection::Sse(c), e)),
        UrlTransport::Websocket => ws_client::Connection::connect(spec)
            .await
            .map(|(c, e)| (AnyConnection::Ws(c), e)),
    }
}

/// A connection to any backend: the one type the proxy holds.
#[derive(Debug, Clone)]
pub enum AnyConnection {
    /// A child process on stdio.
    Stdio(stdio::Connection),
    /// Streamable HTTP.
    Http(streamable::Connection),
    /// The 2024-11-05 HTTP+SSE transport.
    Sse(sse_client::Connection),
    /// WebSocket.
    Ws(ws_client::Connection),
}

impl AnyConnection {
    /// Sets the hook that sees notifications in wire order (see
    /// [`crate::NotificationHook`]).
    pub fn set_notification_hook(&self, hook: crate::NotificationHook) {
        match self {
            Self::Stdio(c) => c.set_notification_hook(hook),
            Self::Http(c) => c.set_notification_hook(hook),
            Self::Sse(c) => c.set_notification_hook(hook),
            Self::Ws(c) => c.set_notification_hook(hook),
        }
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        match self {
            Self::Stdio(c) => c.server(),
            Self::Http(c) => c.server(),
            Self::Sse(c) => c.server(),
            Self::Ws(c) => c.server(),
        }
    }
}

impl From<stdio::Connection> for AnyConnection {
    fn from(connection: stdio::Connection) -> Self {
        Self::Stdio(connection)
    }
}

impl From<streamable::Connection> for AnyConnection {
    fn from(connection: streamable::Connection) -> Self {
        Self::Http(connection)
    }
}

impl From<sse_client::Connection> for AnyConnection {
    fn from(connection: sse_client::Connection) -> Self {
        Self::Sse(connection)
    }
}

impl From<ws_client::Connection> for AnyConnection {
    fn from(connection: ws_client::Connection) -> Self {
        Self::Ws(connection)
    }
}

impl Service<Call> for AnyConnection {
    type Response = Outcome;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self {
            Self::Stdio(c) => c.poll_ready(cx),
            Self::Http(c) => c.poll_ready(cx),
            Self::Sse(c) => c.poll_ready(cx),
            Self::Ws(c) => c.poll_ready(cx),
        }
    }

    fn call(&mut self, call: Call) -> ResponseFuture {
        match self {
            Self::Stdio(c) => c.call(call),
            Self::Http(c) => c.call(call),
            Self::Sse(c) => c.call(call),
            Self::Ws(c) => c.call(call),
        }
    }
}

impl Upstream for AnyConnection {
    fn send(&self, message: Message) -> Result<(), Error> {
        match self {
            Self::Stdio(c) => c.send(message),
            Self::Http(c) => c.send(message),
            Self::Sse(c) => c.send(message),
            Self::Ws(c) => c.send(message),
        }
    }
}
