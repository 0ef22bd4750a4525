//! Authentication, authorization, rate limits and audit, as tower layers.
//!
//! This crate will hold JWT/OIDC validation, RBAC policy over the caller's
//! `only1mcp_core::pipeline::Principal` and the tool the call really reaches,
//! rate limits, and audit hooks, answering `only1mcp_core::Error::Denied` or
//! `only1mcp_core::Error::RateLimited`. A token the gateway receives never
//! leaves this crate and is never forwarded to a backend.
//!
//! # Where it sits
//!
//! Per-call layers: after observability and the user's layers, before the cache
//! and routing. Checking a bearer token happens at the HTTP face's admission
//! step, which hands the principal to the call.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.
//!
//! # Status
//!
//! Empty until the auth issue lands.
