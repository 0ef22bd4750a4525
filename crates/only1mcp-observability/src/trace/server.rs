//! The server span: one per client request the gateway answers.

use only1mcp_core::jsonrpc::{self, Outcome};
use only1mcp_core::mcp::{self, method};
use opentelemetry::trace::{SpanContext, Status, TraceContextExt as _};
use serde_json::value::RawValue;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::context::{Carrier, extract};
use super::{SERVER_SPAN, TARGET, enabled, sample_new};

/// The span of one client request, when traces are on and it is sampled.
///
/// Its `tracing` span is named `request` (the one every request has, with
/// `request_id` and `method`, plus `trace_id`), so log lines written while
/// the request runs carry both ids; its OpenTelemetry span is named
/// `{mcp.method.name} {target}` (the tool or prompt the client named) and
/// carries the MCP convention's attributes. Arguments are never recorded.
#[derive(Debug)]
pub struct ServerSpan {
    span: tracing::Span,
    method: &'static str,
}

impl ServerSpan {
    /// The span of `req` (whose `_meta` carried `carrier`), if traces are
    /// on and the request is sampled: by its parent's sampled flag when the
    /// carrier names a valid parent, else by the sample ratio. Without
    /// traces: `None` after one atomic load.
    pub fn start(
        req: &jsonrpc::Request,
        carrier: Carrier<'_>,
        protocol_version: Option<&str>,
    ) -> Option<Self> {
        if !enabled() {
            return None;
        }
        let parent = extract(&carrier);
        let sampled = match &parent {
            Some(parent) => parent.is_sampled(),
            None => sample_new(),
        };
        if !sampled {
            return None;
        }
        super::SAMPLED_IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Self::sampled(req, parent, protocol_version))
    }

    fn sampled(
        req: &jsonrpc::Request,
        parent: Option<SpanContext>,
        protocol_version: Option<&str>,
    ) -> Self {
        let method = req.method.as_str();
        let about = About::of(method, req.params.as_deref());
        let request_id = req.id.to_string();
        let span = tracing::info_span!(
            target: TARGET,
            SERVER_SPAN,
            request_id = %request_id,
            method = %method,
            trace_id = tracing::field::Empty,
            otel.name = %about.span_name(method),
            otel.kind = "server",
        );
        if let Some(parent) = parent {
            let cx = opentelemetry::Context::new().with_remote_span_context(parent);
            let _ = span.set_parent(cx);
        }
        span.set_attribute("mcp.method.name", method.to_owned());
        span.set_attribute("jsonrpc.request.id", request_id);
        about.record(&span);
        if let Some(version) = protocol_version {
            span.set_attribute("mcp.protocol.version", version.to_owned());
        }
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
        Self {
            span,
            method: known_method(method),
        }
    }

    /// The `tracing` span, to instrument the request's future with.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Ends the span with the request's outcome: a JSON-RPC error sets
    /// `error.type` and `rpc.response.status_code` to its code and the
    /// status to error with its message; a `tools/call` result with
    /// `isError: true` sets `error.type` to `tool_error`.
    pub fn finish(self, outcome: &Outcome) {
        record_outcome(&self.span, self.method, outcome);
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        super::SAMPLED_IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a request is about, as the convention names it.
pub(crate) enum About {
    /// `tools/call`: the tool.
    Tool(String),
    /// `prompts/get`: the prompt.
    Prompt(String),
    /// `resources/*`: the URI (an attribute, never the span's name).
    Resource(String),
    /// Nothing named.
    Nothing,
}

impl About {
    /// What `params` of `method` name.
    pub(crate) fn of(method: &str, params: Option<&RawValue>) -> Self {
        let read = |field| mcp::param_string(params, field);
        match method {
            method::TOOLS_CALL => read("name").map_or(Self::Nothing, Self::Tool),
            method::PROMPTS_GET => read("name").map_or(Self::Nothing, Self::Prompt),
            method::RESOURCES_READ
            | method::RESOURCES_SUBSCRIBE
            | method::RESOURCES_UNSUBSCRIBE => read("uri").map_or(Self::Nothing, Self::Resource),
            _ => Self::Nothing,
        }
    }

    /// `{mcp.method.name} {target}`, or the method alone.
    pub(crate) fn span_name(&self, method: &str) -> String {
        match self {
            Self::Tool(name) | Self::Prompt(name) => format!("{method} {name}"),
            Self::Resource(_) | Self::Nothing => method.to_owned(),
        }
    }

    /// Its attributes on `span`.
    pub(crate) fn record(self, span: &tracing::Span) {
        match self {
            Self::Tool(name) => {
                span.set_attribute("gen_ai.tool.name", name);
                span.set_attribute("gen_ai.operation.name", "execute_tool");
            }
            Self::Prompt(name) => span.set_attribute("gen_ai.prompt.name", name),
            Self::Resource(uri) => span.set_attribute("mcp.resource.uri", uri),
            Self::Nothing => {}
        }
    }
}

/// `method` if it is one whose results are inspected, else `""`.
fn known_method(method: &str) -> &'static str {
    if method == method::TOOLS_CALL {
        method::TOOLS_CALL
    } else {
        ""
    }
}

/// The outcome's attributes and status on `span`.
pub(crate) fn record_outcome(span: &tracing::Span, method: &str, outcome: &Outcome) {
    match outcome {
        Ok(result) => {
            if method == method::TOOLS_CALL && is_tool_error(result) {
                span.set_attribute("error.type", "tool_error");
                span.set_status(Status::error("tool_error"));
            }
        }
        Err(error) => record_error(span, error.code, &error.message),
    }
}

/// A JSON-RPC error's attributes and status on `span`.
pub(crate) fn record_error(span: &tracing::Span, code: i64, message: &str) {
    let code = code.to_string();
    span.set_attribute("error.type", code.clone());
    span.set_attribute("rpc.response.status_code", code);
    span.set_status(Status::error(message.to_owned()));
}

/// Whether a `tools/call` result says `isError: true`.
pub(crate) fn is_tool_error(result: &RawValue) -> bool {
    let text = result.get();
    text.contains("\"isError\"")
        && serde_json::from_str::<ToolResult>(text).is_ok_and(|r| r.is_error)
}

#[derive(serde::Deserialize)]
struct ToolResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}
