//! Transports of the Only1MCP gateway: how bytes and sessions reach backends
//! and clients.
//!
//! - [`framing`]: newline-delimited JSON-RPC with a size cap (stdio).
//! - [`stdio`]: backends as child processes; the one place that spawns.
//! - [`session`]: opening a session with a backend in its era (the
//!   `server/discover` probe, falling back to `initialize`).
//! - [`downstream`]: the gateway's own stdio face.
//!
//! This crate depends on `only1mcp-core` and never on the proxy, the CLI or
//! other feature crates (balancer, health, cache, auth, observability).
//! It knows nothing of catalogs or routing: it moves messages.

pub mod downstream;
pub mod framing;
pub mod session;
pub mod stdio;
