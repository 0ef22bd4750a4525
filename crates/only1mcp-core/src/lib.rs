//! The core of Only1MCP: protocol types, naming rules, the merged catalog and
//! the routing traits.
//!
//! - [`jsonrpc`]: the JSON-RPC 2.0 envelope; params and results stay raw JSON.
//! - [`mcp`]: the MCP types the gateway inspects, for the modern (2026-07-28)
//!   and legacy (2025-11-25 and earlier) eras.
//! - [`naming`]: `server__tool` namespacing.
//! - [`catalog`]: merging many servers' lists, resolving collisions, routing
//!   names and URIs back to their owner. Pure logic.
//! - [`upstream`]: what a backend connection is (a tower `Service` plus a
//!   stream of unsolicited messages).
//! - [`pipeline`]: what every layer of the call pipeline sees: the routed
//!   call, its reply, the caller's identity, replica affinity.
//! - [`config`]: the config data and its validation.
//! - [`diet`]: compacting and searching tool catalogs (the context diet).
//! - [`error`]: the typed error and its single mapping to JSON-RPC codes.
//!
//! This crate does no IO and starts no tasks. It must not depend on any other
//! Only1MCP crate, on tokio, hyper, axum, clap or figment: embedders and every
//! other crate build on it. `cargo xtask check-deps` (run in CI) fails when
//! one of its normal dependencies, followed transitively, is an IO crate.
//!
//! # Example
//!
//! Two servers' `tools/list` results merged into one catalog, and a client's
//! call of a namespaced tool routed to its owner with the backend's own name:
//! what the gateway does between reading a client and writing to a backend.
//! (`examples/core-catalog` in the repository is the same as a program.)
//!
//! ```
//! use std::sync::Arc;
//!
//! use only1mcp_core::catalog::{Catalog, Lists, Prefix, ServerListing, ToolFilter};
//! use only1mcp_core::jsonrpc::{self, Frame, Message};
//! use only1mcp_core::mcp::{ListKind, ListPage, Named};
//! use only1mcp_core::naming::Namespace;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server's `tools/list` result, as the backend sent it.
//! let listing = |server: &str, result: &str| -> Result<ServerListing, serde_json::Error> {
//!     let page = ListPage::parse(ListKind::Tools, serde_json::from_str(result)?)?;
//!     Ok(ServerListing {
//!         server: Arc::from(server),
//!         prefix: Prefix::OnConflict, // `server__name` only for names two servers share
//!         filter: ToolFilter::default(),
//!         lists: Lists { tools: page.items, ..Lists::default() },
//!     })
//! };
//! let fs = listing("fs", r#"{"tools":[{"name":"read_file"},{"name":"status"}]}"#)?;
//! let git = listing("git", r#"{"tools":[{"name":"log"},{"name":"status"}]}"#)?;
//! let catalog = Catalog::build(&[fs, git], &Namespace::default());
//!
//! let exposed: Vec<&str> = catalog.entries(ListKind::Tools).iter().map(|e| &*e.exposed).collect();
//! assert_eq!(exposed, ["fs__status", "git__status", "log", "read_file"]);
//!
//! // A client calls `git__status`.
//! let line = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call",
//!     "params":{"name":"git__status","arguments":{}}}"#;
//! let Ok(Frame::Single(Message::Request(request))) = jsonrpc::parse(line) else {
//!     panic!("one request");
//! };
//! // A malformed request gets a JSON-RPC error object (`ErrorObject`) to answer with.
//! let named = Named::parse(request.params.as_deref())
//!     .map_err(|error| error.message)?
//!     .expect("a tool name");
//! let route = catalog.tool(named.name()).expect("a known tool");
//! assert_eq!((&*route.server, &*route.name), ("git", "status"));
//!
//! // The params the git server gets: its own name, every other byte as it came.
//! let params = named.renamed(&route.name).map_err(|error| error.message)?;
//! assert_eq!(params.get(), r#"{"name":"status","arguments":{}}"#);
//! # Ok(())
//! # }
//! ```

pub mod catalog;
pub mod config;
pub mod diet;
pub mod error;
pub mod jsonrpc;
pub mod mcp;
pub mod naming;
pub mod pipeline;
pub mod upstream;

pub use error::{Error, Result};
