//! OpenTelemetry traces: one server span per client request, one client span
//! per call to a backend, and the W3C trace context carried from the client
//! to the backend (ADR 0015).
//!
//! ```text
//! client ── params._meta.traceparent ──▶ server span "tools/call fs__read"
//!                                          └─ client span "tools/call read" (TraceLayer)
//!                                               └─ backend ◀── params._meta.traceparent
//! ```
//!
//! [`install`] builds the OTLP exporter (gRPC or HTTP/protobuf, from the
//! `traces:` config and the `OTEL_*` variables) and returns the
//! `tracing-subscriber` layer that turns this module's spans, and only them,
//! into OpenTelemetry spans. Until it ran (traces off, the default), every
//! function here answers "not traced" after one atomic load, and the
//! [`TraceLayer`] is not in the call stack: no span work, no allocation.
//!
//! Sampling is decided here, when a request arrives ([`ServerSpan::start`]),
//! not by the SDK at the span's end: a request that is not sampled gets no
//! OpenTelemetry span at all, so `sample_ratio: 0` costs a branch per
//! request. A request whose trace context names a parent follows the
//! parent's sampled flag (parent-based sampling); an unsampled one passes
//! its `traceparent` to the backend untouched.

mod access;
mod context;
mod export;
mod layer;
mod server;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use access::{ACCESS_TARGET, AccessLog, set_access_log};
pub use context::{Carrier, extract, inject_meta};
pub use export::{InstallError, Installed, install, shutdown};
pub use layer::{BackendTraceContext, Trace, TraceLayer, future::ResponseFuture};
pub use server::ServerSpan;

/// The `tracing` target of the spans this module makes; the OpenTelemetry
/// layer of [`install`] sees spans of this target only.
pub const TARGET: &str = "only1mcp::trace";

/// The name of the `tracing` span of a client request (the OpenTelemetry
/// span is named by the convention, `{mcp.method.name} {target}`).
pub const SERVER_SPAN: &str = "request";

/// The name of the `tracing` span of a call to a backend.
pub const CLIENT_SPAN: &str = "backend_call";

/// What [`install`] set up, read on every request.
#[derive(Debug)]
struct Active {
    /// The sampling threshold: a new trace is sampled when a random `u64`
    /// is below it (`0` never, `u64::MAX` always).
    threshold: u64,
    /// Every request sampled (`sample_ratio` 1.0).
    always: bool,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();

/// Sampled requests being answered now ([`ServerSpan`]s alive).
static SAMPLED_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Whether the current span is the server span of a sampled request: one
/// relaxed load when no sampled request is in flight (traces off, or
/// `sample_ratio: 0` with no sampled parent), else a look at the current
/// span's metadata.
pub fn in_sampled_request() -> bool {
    SAMPLED_IN_FLIGHT.load(Ordering::Relaxed) != 0
        && tracing::Span::current()
            .metadata()
            .is_some_and(|meta| meta.target() == TARGET && meta.name() == SERVER_SPAN)
}

/// Whether traces are on (after [`install`]).
pub fn enabled() -> bool {
    ACTIVE.get().is_some()
}

/// Whether a request with no parent trace context is sampled.
fn sample_new() -> bool {
    let Some(active) = ACTIVE.get() else {
        return false;
    };
    if active.always {
        return true;
    }
    active.threshold != 0 && next_random() < active.threshold
}

/// A fast, non-cryptographic random `u64` (SplitMix64 over a global
/// counter): only whether a trace is sampled depends on it; trace and span
/// ids come from the SDK's generator.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sampling threshold of `ratio` (0.0 to 1.0).
fn threshold(ratio: f64) -> u64 {
    if ratio <= 0.0 {
        0
    } else if ratio >= 1.0 {
        u64::MAX
    } else {
        // The float-to-int cast saturates; the ratio is in (0, 1).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = (ratio * u64::MAX as f64) as u64;
        threshold
    }
}

#[cfg(test)]
mod tests;
