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
//! other crate build on it.

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
