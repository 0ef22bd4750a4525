//! The W3C trace context in and out: read from a request's `params._meta`
//! (or HTTP headers), written into a backend request's `params._meta`.

use only1mcp_core::jsonrpc::ErrorObject;
use only1mcp_core::mcp;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::value::RawValue;

/// A W3C trace context as a request carried it: `traceparent` and
/// `tracestate` from `params._meta` or from HTTP headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Carrier<'a> {
    /// `traceparent`.
    pub traceparent: Option<&'a str>,
    /// `tracestate`.
    pub tracestate: Option<&'a str>,
}

impl Carrier<'_> {
    /// Whether it carries a `traceparent` at all.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            mcp::meta::TRACEPARENT => self.traceparent,
            mcp::meta::TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![mcp::meta::TRACEPARENT, mcp::meta::TRACESTATE]
    }
}

/// The remote parent `carrier` names, if its `traceparent` is valid (a
/// malformed one is ignored, as W3C Trace Context asks: the request starts a
/// new trace).
pub fn extract(carrier: &Carrier<'_>) -> Option<SpanContext> {
    if carrier.is_empty() {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(carrier);
    let span = cx.span();
    let parent = span.span_context();
    parent.is_valid().then(|| parent.clone())
}

/// `traceparent` and `tracestate` of a span context, as the propagator
/// writes them.
#[derive(Default)]
struct Written {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Written {
    fn set(&mut self, key: &str, value: String) {
        match key {
            mcp::meta::TRACEPARENT => self.traceparent = Some(value),
            mcp::meta::TRACESTATE if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// The W3C headers of `span`: `traceparent`, and `tracestate` when it has
/// one.
pub(crate) fn headers(span: &SpanContext) -> (String, Option<String>) {
    let mut written = Written::default();
    let cx = opentelemetry::Context::new().with_remote_span_context(span.clone());
    TraceContextPropagator::new().inject_context(&cx, &mut written);
    (written.traceparent.unwrap_or_default(), written.tracestate)
}

/// `params` with `span` as the trace context in `_meta` (`traceparent`,
/// and `tracestate` when the span has one; a `tracestate` the params
/// carried is dropped with the `traceparent` it belonged to). Every other
/// byte of the params is kept.
pub fn inject_meta(
    params: Option<&RawValue>,
    span: &SpanContext,
) -> Result<Option<Box<RawValue>>, ErrorObject> {
    let (traceparent, tracestate) = headers(span);
    mcp::edit_meta(params, |meta| {
        meta.set_string(mcp::meta::TRACEPARENT, &traceparent);
        match &tracestate {
            Some(state) => meta.set_string(mcp::meta::TRACESTATE, state),
            None => meta.remove(mcp::meta::TRACESTATE),
        }
    })
}
