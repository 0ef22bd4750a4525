//! Telemetry exporters.
//!
//! This crate will install the Prometheus (`metrics-exporter-prometheus`) and
//! OpenTelemetry exporters and provide `TraceLayer`/`MetricsLayer`. Other
//! crates emit through the `tracing`/`metrics` facades only; this is the one
//! place that installs exporters.
//!
//! It may depend on `only1mcp-core` only. Today, log output is set up by the
//! proxy crate's `logging` module; that moves here with the metrics issue.
