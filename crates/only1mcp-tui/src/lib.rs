//! The terminal dashboard (`only1mcp-tui`).
//!
//! This crate will hold a ratatui dashboard that talks to the gateway's admin
//! API over HTTP, using DTOs from `only1mcp-core`. It becomes a binary when the
//! admin API exists (issue 5); until then it is an empty library so the
//! workspace layout is in place.
//!
//! It may depend on `only1mcp-core`, and never on transports or the proxy's
//! internals.
