//! Telemetry: the exporters and the layers that feed them.
//!
//! This crate will install the Prometheus (`metrics-exporter-prometheus`) and
//! OpenTelemetry exporters and provide `TraceLayer`/`MetricsLayer` over any
//! `only1mcp_core::pipeline::CallService`. Other crates emit through the
//! `tracing`/`metrics` facades only; this is the one place that installs
//! exporters.
//!
//! # Where it sits
//!
//! The outermost per-call layer, so that refused calls (denied, rate limited,
//! circuit open) are counted and traced too.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate (the
//! others emit through the facades and never call it). `cargo xtask check-deps`
//! (run in CI) fails when it does.
//!
//! # Status
//!
//! Empty until the metrics issue lands; today, log output is set up by the
//! proxy crate's `logging` module.
