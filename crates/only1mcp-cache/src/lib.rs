//! Response caching.
//!
//! This crate will hold a TTL/LRU response cache layer on `papaya`, per-tool
//! cache policy and cache-key makers (honouring MCP `cacheScope: private`).
//!
//! It may depend on `only1mcp-core` only. It is empty until the caching issue
//! lands.
