//! The terminal dashboard of Only1MCP.
//!
//! This crate will hold a ratatui dashboard that shows the gateway's servers,
//! their state and their traffic, reading the gateway's admin API over HTTP
//! (the API the `only1mcp status` and `logs` commands use), with DTOs from
//! `only1mcp-core`.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: it talks
//! to a running gateway over HTTP and never links the proxy or the transports.
//! `cargo xtask check-deps` (run in CI) fails when it does.
//!
//! # Status
//!
//! An empty library until the dashboard is written; it becomes a binary then.
