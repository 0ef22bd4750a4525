//! Authentication and authorization layers.
//!
//! This crate will hold JWT/OIDC validation, RBAC policy, rate limits and
//! audit hooks as tower layers. A token the gateway receives never leaves this
//! crate and is never forwarded to a backend.
//!
//! It may depend on `only1mcp-core` only. It is empty until the auth issue
//! lands.
