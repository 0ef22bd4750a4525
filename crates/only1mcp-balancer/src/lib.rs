//! Backend selection for replicated MCP servers, as tower layers.
//!
//! A server with several replicas needs one of them picked for each call. This
//! crate is where that happens: a `Selection` trait and its algorithms
//! (round-robin, consistent hashing with `hashring` for affinity, the power of
//! two choices over peak-EWMA load) as a tower `Layer`/`Service` pair over any
//! `only1mcp_core::pipeline::CallService`. It learns what it needs of each
//! replica through `only1mcp_core::pipeline::Endpoint` (is it available, how
//! loaded is it) and honours the call's `only1mcp_core::pipeline::Affinity`.
//!
//! # Where it sits
//!
//! A per-server layer: the proxy's builder adds it with
//! `GatewayBuilder::server_layer`, above the circuit breaker and the endpoint
//! of each replica.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.
//!
//! # Status
//!
//! Empty until the load-balancing issue lands.
