//! [`TraceLayer`]: the client span of each call to a backend, and the trace
//! context written into the call's `params._meta`.

pub(super) mod future;

use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::mcp::method;
use only1mcp_core::pipeline::{Reply, Routed};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tower::Service;
use tower::layer::Layer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::context::inject_meta;
use super::server::About;
use super::{CLIENT_SPAN, TARGET};
use future::ResponseFuture;

/// Adds a client span to every call that runs inside a sampled server span
/// ([`super::ServerSpan`]), as its child, named `{mcp.method.name}
/// {target}` with the backend's own tool or prompt name, and writes the
/// span's context into the call's `params._meta` (`traceparent`,
/// `tracestate`) so the trace continues in the backend. The span context
/// also goes into the call's extensions, for a transport that sets HTTP
/// headers from it.
///
/// A call outside a sampled request (traces off, not sampled, the
/// gateway's own calls) passes as it came: one look at the current span.
/// Put it over each server's endpoint (`GatewayBuilder::server_layer`), so
/// a call that a policy layer refuses never gets a client span: no backend
/// was called.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl TraceLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Service<Routed> for Trace<S>
where
    S: Service<Routed, Response = Reply, Error = Error>,
{
    type Response = Reply;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut routed: Routed) -> Self::Future {
        if !super::in_sampled_request() {
            return ResponseFuture::untraced(self.inner.call(routed));
        }
        let span = client_span(&routed);
        let context = span.context().span().span_context().clone();
        if context.is_valid() {
            if let Ok(params) = inject_meta(routed.call.params.as_deref(), &context) {
                routed.call.params = params;
            }
            routed.extensions.insert(BackendTraceContext(context));
        }
        let method = if routed.call.method == method::TOOLS_CALL {
            method::TOOLS_CALL
        } else {
            ""
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(routed)
        };
        ResponseFuture::traced(inner, span, method)
    }
}

/// The trace context of the client span of a call, in its
/// [`Routed::extensions`]: what a network transport sends as the W3C
/// `traceparent`/`tracestate` headers.
#[derive(Debug, Clone)]
pub struct BackendTraceContext(pub SpanContext);

impl BackendTraceContext {
    /// `traceparent`, and `tracestate` when there is one.
    pub fn headers(&self) -> (String, Option<String>) {
        super::context::headers(&self.0)
    }
}

/// The client span of `routed` (a child of the current span).
fn client_span(routed: &Routed) -> tracing::Span {
    let method = routed.call.method.as_str();
    let about = match method {
        method::TOOLS_CALL => super::server::About::Tool(routed.route.name.to_string()),
        method::PROMPTS_GET => About::Prompt(routed.route.name.to_string()),
        method::RESOURCES_READ | method::RESOURCES_SUBSCRIBE | method::RESOURCES_UNSUBSCRIBE => {
            About::Resource(routed.route.name.to_string())
        }
        _ => About::Nothing,
    };
    let span = tracing::info_span!(
        target: TARGET,
        CLIENT_SPAN,
        server = %routed.route.server,
        otel.name = %about.span_name(method),
        otel.kind = "client",
    );
    span.set_attribute("mcp.method.name", method.to_owned());
    span.set_attribute("only1mcp.server.id", routed.route.server.to_string());
    about.record(&span);
    span
}
