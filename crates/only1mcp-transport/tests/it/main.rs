//! Integration tests of the upstream transports against real MCP servers:
//! `@modelcontextprotocol/server-everything` (Streamable HTTP, HTTP+SSE and
//! stdio; legacy era) and a small Python SDK fixture (`modern_server.py`,
//! dual-era), both installed by `cargo xtask peers`. WebSocket has no
//! official server; its tests use an in-test stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod resume;
mod sse;
mod stdio;
mod streamable;
mod support;
mod tls;
mod ws;
