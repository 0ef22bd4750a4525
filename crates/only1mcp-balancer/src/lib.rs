//! Backend selection for replicated MCP servers, as a tower service.
//!
//! A server with several replicas needs one of them picked for each call.
//! [`Balance`] is a [`CallService`](only1mcp_core::pipeline::CallService)
//! over a server's replicas (each itself a `CallService`, usually a circuit
//! breaker over an endpoint) that picks one per call by the server's
//! [`Strategy`](only1mcp_core::config::replicas::Strategy): the power of two
//! choices over peak-EWMA latency (the default), round robin, least in
//! flight, or consistent hashing ([`ring`], `hashring` with virtual nodes)
//! on a key the proxy puts in the call's
//! [`Affinity`](only1mcp_core::pipeline::Affinity). It learns what it needs
//! of each replica through
//! [`only1mcp_core::pipeline::Endpoint`] (is it available, how many calls
//! are in flight), passes over replicas that refuse a call before it is
//! sent, and sends a call again to another replica only when the proxy's
//! [`Repeatable`] hook says it is safe, within a [`budget`] (ADR 0017).
//!
//! # Where it sits
//!
//! At the bottom of a replicated server's stack, in place of the single
//! endpoint: the proxy's `stack::Endpoint` of such a server is a balancer.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate. `cargo
//! xtask check-deps` (run in CI) fails when it does.

pub mod balance;
pub mod budget;
mod load;
pub mod ring;

pub use balance::{Balance, NeverRepeat, Repeatable, ReplicaLoad};
