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
//! This crate may depend on every library crate of the workspace; nothing but
//! the binaries (`only1mcp-cli`, `only1mcp-tui`) depends on it.

pub mod admin;
pub mod backend;
pub mod builder;
pub mod context;
pub mod gateway;
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
