//! Active health checks and the circuit breaker.
//!
//! This crate will hold the health-check trait (pinging a backend through a
//! generic tower `Service`, never through transport types) and a
//! `CircuitBreakerLayer`.
//!
//! It may depend on `only1mcp-core` only. It is empty until the health issue
//! lands; today the proxy restarts crashed stdio backends with backoff.
