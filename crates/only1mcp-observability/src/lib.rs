//! Telemetry: the exporters and the layers that feed them.
//!
//! Two halves, one module each, side by side:
//!
//! - `metrics`: Prometheus metrics (`metrics` facade, rendered by
//!   `metrics-exporter-prometheus`): a layer of the call pipeline that times
//!   and counts every call towards a backend, and the handles for what lives
//!   outside calls (sessions, backend states and restarts, catalog size,
//!   reloads, context-diet tokens, bytes in and out). Names follow the
//!   OpenTelemetry semantic conventions for MCP rendered the Prometheus way
//!   (`_seconds`, `_total`).
//! - [`trace`]: OpenTelemetry traces (OTLP exporter, `tracing-opentelemetry`),
//!   off by default: one server span per client request
//!   ([`trace::ServerSpan`], made by the proxy's session, so requests that
//!   reach no backend are traced too), a client span per backend call
//!   ([`trace::TraceLayer`], outside each server's layers), and the W3C
//!   trace context from the client's `params._meta` to the backend's
//!   (ADR 0015). Sampling is decided when a request arrives, so an unsampled
//!   request costs no span work; [`trace::install`] gives the
//!   `tracing-subscriber` layer the proxy's logging adds.
//!
//! Both are tower `Layer`s over any `only1mcp_core::pipeline::CallService`,
//! so the proxy crate puts them into its call stack like any other layer.
//! Other crates emit through the `tracing`/`metrics` facades only; this is
//! the one place that installs exporters.
//!
//! # Where it sits
//!
//! The outermost per-call layers, so that refused calls (denied, rate
//! limited, circuit open) are counted and traced too.
//!
//! # Dependencies
//!
//! It may depend on `only1mcp-core` and on nothing else of Only1MCP: never on
//! the transport, the proxy, config loading or another feature crate (the
//! others emit through the facades and never call it). `cargo xtask check-deps`
//! (run in CI) fails when it does.

pub mod metrics;
pub mod trace;
