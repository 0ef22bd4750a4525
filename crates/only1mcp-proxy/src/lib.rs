//! The Only1MCP gateway, assembled: config loading, backend supervision, the
//! merged catalog and each client's session.
//!
//! - [`load`]: figment loading of YAML/TOML/JSON files with `ONLY1MCP_` env
//!   overrides, the `mcpServers` import and the built-in default.
//! - [`backend`]: one backend's process, session and restart loop.
//! - [`context`]: the context diet: each client profile's view of the tool
//!   catalog (full, compact, discover, auto), the meta tools, token counts.
//! - [`gateway`]: all backends, the catalog snapshot, progress routing.
//! - [`session`]: one client's session: era handling and routing.
//! - `holds`: calls held for a modern client's retry (signed
//!   `requestState`s).
//! - [`stack`]: the call pipeline every backend call goes through, and the
//!   function that builds it.
//! - [`serve`]: the stdio face.
//! - [`http`]: the HTTP face (Streamable HTTP, HTTP+SSE, WebSocket).
//! - [`reload`]: hot reload from the watched config file or SIGHUP.
//! - [`run`]: a whole gateway process (listeners, reload, admin API,
//!   signals), as `only1mcp start` and the `only1mcp-proxy` binary run it.
//! - [`logging`]: the tracing subscriber.
//! - [`admin`]: the admin API (servers, reload, logs, tests) on its own
//!   listener.
//!
//! Its own binary, `only1mcp-proxy`, serves a config and nothing else; the
//! full CLI is `only1mcp` (crate `only1mcp-cli`). Both run
//! [`builder::GatewayBuilder::run`], which an embedder may call too.
//!
//! This crate may depend on every library crate of the workspace; nothing but
//! the binaries (`only1mcp-cli`, `only1mcp-tui`) and the examples depends on
//! it. It is where the call pipeline is assembled ([`stack`], ADR 0012); the
//! feature crates plug into it as tower layers and never depend on it.
//!
//! # Example
//!
//! A gateway with a layer of the embedder's own that sees every call to a
//! backend (here it counts them), served to one client over an in-memory
//! stdio pipe. With no servers configured, a tool call is an unknown tool
//! and reaches no backend, so the layer counts nothing.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use only1mcp_core::config::Config;
//! use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counted = calls.clone();
//! let gateway = only1mcp_proxy::Gateway::builder(&Config::default())
//!     .layer(tower::layer::layer_fn(move |inner: only1mcp_proxy::stack::Router| {
//!         let counted = counted.clone();
//!         inner.map_request(move |routed| {
//!             counted.fetch_add(1, Ordering::Relaxed);
//!             routed
//!         })
//!     }))
//!     .start()
//!     .await;
//!
//! let (mut client, gateway_io) = tokio::io::duplex(64 * 1024);
//! let (reader, writer) = tokio::io::split(gateway_io);
//! let serving = gateway.clone();
//! tokio::spawn(async move {
//!     only1mcp_proxy::serve::serve_stdio(
//!         &serving, "default", BufReader::new(reader), writer, std::future::pending(),
//!     )
//!     .await
//! });
//! client
//!     .write_all(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
//!     .await
//!     .unwrap();
//! client.write_all(b"\n").await.unwrap();
//! let mut answer = String::new();
//! BufReader::new(&mut client).read_line(&mut answer).await.unwrap();
//! assert!(answer.contains("Unknown tool: nope"), "{answer}");
//! assert_eq!(calls.load(Ordering::Relaxed), 0);
//! gateway.shutdown().await;
//! # }
//! ```

pub mod admin;
pub mod backend;
pub mod builder;
pub mod context;
pub mod gateway;
mod holds;
pub mod http;
pub mod load;
pub mod logging;
pub mod reload;
pub mod run;
pub mod serve;
pub mod session;
pub mod stack;
mod subscriptions;

pub use gateway::Gateway;
/// The audit trail (`only1mcp-auth`'s), for the CLI's `audit verify` and
/// embedders that open one ([`builder::GatewayBuilder::auditor`]).
pub use only1mcp_auth::audit;
