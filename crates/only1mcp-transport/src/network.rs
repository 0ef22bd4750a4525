//! Backends reached over the network, and the one connection type the proxy
//! holds for every backend.
//!
//! [`connect`] opens a connection as a [`NetworkSpec`] says: Streamable HTTP
//! ([`crate::streamable_client`]), the 2024-11-05 HTTP+SSE transport
//! ([`crate::sse_client`]) or WebSocket ([`crate::ws_client`]). Each returns
//! the connection and its [`Events`], as [`crate::stdio::Connection::start`]
//! does; [`AnyConnection`] wraps all four kinds so the supervisor and
//! [`crate::handshake::establish`] handle them alike.

use std::sync::Arc;
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use tower_service::Service;

use crate::{ResponseFuture, sse_client, stdio, streamable_client, ws_client};

pub use crate::spec::{DEFAULT_CONNECT_TIMEOUT, NetworkSpec};

/// Opens a connection to a network backend. Streamable HTTP connects lazily
/// (the first request opens the pool's connection); HTTP+SSE and WebSocket
/// connect here, within the connect timeout. The events end with `Closed`
/// when the connection is gone; for a legacy Streamable HTTP session that
/// includes the server forgetting the session (HTTP 404), so the supervisor
/// re-establishes it.
pub async fn connect(spec: &NetworkSpec) -> Result<(AnyConnection, Events), Error> {
    match spec.transport {
        UrlTransport::StreamableHttp => {
            streamable_client::Connection::open(spec).map(|(c, e)| (AnyConnection::Http(c), e))
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
    Http(streamable_client::Connection),
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

impl From<streamable_client::Connection> for AnyConnection {
    fn from(connection: streamable_client::Connection) -> Self {
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
