//! Active health checks and the circuit breaker of each replica, as tower
//! services.
//!
//! [`CircuitBreaker`] wraps one replica's service: its [`Breaker`] opens
//! after failures in a row (a lost connection, no answer in time: passive
//! outlier detection), refuses calls with
//! [`Error::CircuitOpen`](only1mcp_core::Error::CircuitOpen) while open,
//! lets a few trial calls through when half-open, and makes the replica
//! unavailable to a balancer through
//! [`only1mcp_core::pipeline::Endpoint`]. [`probe::watch`] pings a replica
//! through its generic service (never through transport types) and counts a
//! ping with no answer as a failure (ADR 0017).
//!
//! # Where it sits
//!
//! Under the balancer, one breaker per replica, over that replica's
//! endpoint.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.

pub mod breaker;
pub mod circuit;
pub mod probe;

pub use breaker::{Breaker, Permit, State, Thresholds};
pub use circuit::{CircuitBreaker, CircuitBreakerLayer};
