//! Transports of the Only1MCP gateway: how bytes and sessions reach backends
//! and clients.
//!
//! Upstream, the gateway is a client of each backend. Every backend
//! connection is a cheap-to-clone tower service implementing
//! [`only1mcp_core::upstream::Upstream`], created together with an
//! [`only1mcp_core::upstream::Events`] stream that ends with `Closed` when the
//! connection is gone. The connection owns the JSON-RPC id space towards its
//! backend, and dropping a call's future cancels the call upstream.
//!
//! - [`stdio`]: backends as child processes; the one place that spawns.
//! - [`streamable_client`]: Streamable HTTP backends, both eras (modern per-request
//!   headers; legacy sessions with `Mcp-Session-Id`, the GET stream and
//!   resumption).
//! - [`sse_client`]: the deprecated HTTP+SSE transport of 2024-11-05.
//! - [`ws_client`]: WebSocket backends (subprotocol `mcp`, one message per
//!   text frame).
//! - [`spec`]: [`spec::NetworkSpec`], how to reach a network backend.
//! - [`network`]: [`network::connect`], and
//!   [`network::AnyConnection`], the one type the proxy holds for every
//!   backend, stdio included.
//! - [`handshake`]: opening a session with a backend in its era (the
//!   `server/discover` probe, falling back to `initialize`); the same over
//!   every transport.
//!
//! Shared pieces: [`framing`] (newline-delimited JSON-RPC with a size cap,
//! stdio), [`event_stream`] (the `text/event-stream` decoder), and the crate-private
//! request correlation (ids, waiters, cancel-on-drop) every connection uses.
//!
//! Downstream, [`downstream`] is the gateway's own stdio face.
//!
//! TLS (`https`, `wss`) is rustls on the ring provider with the webpki roots,
//! plus an optional extra CA; neither OpenSSL nor aws-lc is linked.
//!
//! This crate depends on `only1mcp-core` and never on the proxy, the CLI or
//! other feature crates (balancer, health, cache, auth, observability).
//! It knows nothing of catalogs or routing: it moves messages.

use std::future::Future;
use std::pin::Pin;

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::Outcome;

mod correlate;
mod direct;

pub use correlate::NotificationHook;
pub mod downstream;
pub mod event_stream;
pub mod framing;
pub mod handshake;
mod http_client;
pub mod network;
pub mod spec;
pub mod sse_client;
pub mod stdio;
pub mod streamable_client;
mod tls;
pub mod ws_client;

/// The response future of every upstream connection.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Outcome, Error>> + Send>>;
