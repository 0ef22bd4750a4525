//! Response caching, as a tower layer.
//!
//! This crate will hold a TTL/LRU response cache layer over any
//! `only1mcp_core::pipeline::CallService`, per-tool cache policy and cache-key
//! makers. A backend's `cacheScope: private` answer is cached per caller
//! (`only1mcp_core::pipeline::Principal`) or not at all, and the layer sits
//! below authorization, so a cached answer never skips a policy check.
//!
//! # Where it sits
//!
//! A per-call layer, the innermost of them: after observability, the user's
//! layers, authorization and rate limits, before routing to the server.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.
//!
//! # Status
//!
//! Empty until the caching issue lands.
