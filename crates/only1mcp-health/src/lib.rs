//! Active health checks and the circuit breaker, as tower layers.
//!
//! This crate will hold the health-check trait and its checks, which ping a
//! backend through a generic tower `Service` (never through transport types),
//! and a `CircuitBreakerLayer` that answers `only1mcp_core::Error::CircuitOpen`
//! while a server keeps failing, and reports it as unavailable to a balancer
//! through `only1mcp_core::pipeline::Endpoint`.
//!
//! # Where it sits
//!
//! A per-server layer: the proxy's builder adds it with
//! `GatewayBuilder::server_layer`, below the balancer and above the endpoint.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.
//!
//! # Status
//!
//! Empty until the health issue lands; today the proxy restarts crashed stdio
//! backends with backoff.
