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
//! This crate depends on `only1mcp-core` and on nothing else of Only1MCP:
//! never on the proxy, the CLI or a feature crate (balancer, health, cache,
//! auth, observability), and its normal dependencies reach no application
//! crate (`clap`, `figment`, `notify`, `axum`, `ratatui`), which live in the
//! proxy and above (`cargo xtask check-deps` checks both). It knows nothing of
//! catalogs or routing: it moves messages.
//!
//! # Example
//!
//! Reading MCP's stdio framing (one JSON-RPC message per line) with a cap: a
//! line over the cap is not kept, but it is reported with its length and
//! its top-level `id`, so the call it answers can fail at once, and the next
//! line is read as usual. Here the reader is a byte slice; the gateway reads
//! a backend's stdout and its own stdin this way.
//!
//! ```
//! use only1mcp_core::jsonrpc::Id;
//! use only1mcp_transport::framing::{Line, LineReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let stdout: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\
//!     {\"jsonrpc\":\"2.0\",\"result\":{\"text\":\"far more than the cap\"},\"id\":2}\n\
//!     \n\
//!     {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n";
//! let mut lines = LineReader::new(stdout, 64);
//!
//! // A line within the cap, without its line ending.
//! assert_eq!(
//!     lines.next_line().await?,
//!     Some(Line::Data(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec()))
//! );
//! // A line over the cap: skipped, but its `id` (after the result) was read.
//! assert_eq!(
//!     lines.next_line().await?,
//!     Some(Line::TooLong { len: 66, id: Some(Id::Number(2)), method: false })
//! );
//! // Empty lines are skipped; then the end of input.
//! assert!(matches!(lines.next_line().await?, Some(Line::Data(_))));
//! assert_eq!(lines.next_line().await?, None);
//! # Ok(())
//! # }
//! ```

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
