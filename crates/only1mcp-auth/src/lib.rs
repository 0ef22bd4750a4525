//! Who may call what: inbound authentication, authorization, rate limits and
//! audit for the Only1MCP gateway.
//!
//! The gateway's HTTP faces and call pipeline use this crate; it depends on
//! `only1mcp-core` and on nothing else of Only1MCP (`cargo xtask check-deps`
//! fails when it does).
//!
//! # The parts, and where each sits
//!
//! **Admission** (inbound authentication, `authn`): every request to an HTTP
//! face (`/mcp`, `/mcp/<profile>`, `/sse`, `/ws`, and the plain listener's
//! HTTP/1.1 lane) is admitted before its body is read: an API key or static
//! bearer token (stored as a hash, compared in constant time), or a bearer
//! JWT of an OAuth 2.1 authorization server (the MCP authorization spec's
//! resource server: RFC 9728 metadata, RFC 8707 audience, JWKS found through
//! discovery). Admission yields an `only1mcp_core::pipeline::Principal`,
//! which the session carries and every call of it takes through the
//! pipeline (`Routed::principal`). The token itself stays at the face: it
//! never reaches the pipeline, the log, or a backend. stdio is not admitted
//! (the IDE is the user).
//!
//! **Authorization** (`rbac`): roles and allow/deny rules on server, tool,
//! prompt and resource-URI globs. The catalog a principal sees is filtered
//! by the same rules; a call of something the principal may not call is
//! refused inside the pipeline with `only1mcp_core::Error::Denied`, which
//! the face answers exactly as it answers an unknown name (no existence
//! leak), so a layer outside (audit) can still tell the two apart.
//!
//! **Audit, rate limits, and credentials towards remote backends** are
//! layers and helpers of their own modules beside these.
//!
//! Each decision and each representation other parts rely on is written
//! down in an ADR under docs/adr.

pub mod audit;
pub mod authn;
mod oauth;
pub mod ratelimit;
pub mod rbac;

pub use authn::{Admission, Refusal};
pub use rbac::{Policy, SharedPolicy};
