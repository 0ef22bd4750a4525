//! Backend selection for replicated MCP servers.
//!
//! This crate will hold the `Selection` trait and its algorithms (round-robin,
//! consistent hashing with `hashring`, power-of-two-choices over peak-EWMA) as
//! tower `Layer`/`Service` pairs over any `Service`.
//!
//! It may depend on `only1mcp-core` only; never on transports, config loading
//! or other feature crates. It is empty until the load-balancing issue lands.
