//! The `traces:` section: OpenTelemetry traces sent to an OTLP collector.
//!
//! Off by default. When on, the gateway makes one server span per client
//! request and one client span per call to a backend, and carries the W3C
//! trace context from the client (`params._meta`) to the backend
//! (`params._meta`, and HTTP headers for network backends). What the file
//! leaves unset is taken from the standard `OTEL_*` variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER_ARG`),
//! then from the OpenTelemetry defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where and how traces are exported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TracesConfig {
    /// Export traces (default `false`: no span is made, nothing is
    /// exported, and a client's trace context passes to the backend
    /// untouched inside `params._meta`). `OTEL_SDK_DISABLED=true` turns
    /// them off whatever this says.
    #[serde(default)]
    pub enabled: bool,
    /// The collector's URL. For `http_protobuf` the traces path
    /// (`/v1/traces`) is added unless the URL already ends with it. Default:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// else `http://localhost:4318` (HTTP) or `http://localhost:4317`
    /// (gRPC).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `grpc` or `http_protobuf`. Default: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`
    /// or `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, `http/protobuf`), else
    /// `http_protobuf`.
    #[serde(default)]
    pub protocol: Option<OtlpProtocol>,
    /// Headers sent with every export (an API key, a tenant). Values may
    /// name environment variables as `${VAR}`, so a token need not be
    /// written in the file; they are never logged. When empty,
    /// `OTEL_EXPORTER_OTLP_HEADERS` is used.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The share of client requests without a sampled parent that are
    /// traced, 0.0 to 1.0. A request whose trace context says its parent
    /// was sampled (or not) follows its parent. Default:
    /// `OTEL_TRACES_SAMPLER_ARG`, else 1.0.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
    /// `service.name` of the gateway's spans. Default: `OTEL_SERVICE_NAME`,
    /// else `only1mcp`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// More resource attributes (`deployment.environment.name`, …), added to
    /// those of `OTEL_RESOURCE_ATTRIBUTES` (these win on the same key).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
}

/// The OTLP wire protocol.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

impl TracesConfig {
    /// What is wrong with it, as `(field, message)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(ratio) = self.sample_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            problems.push((
                "traces.sample_ratio".to_owned(),
                format!("must be between 0.0 and 1.0, not {ratio}"),
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push((
                "traces.endpoint".to_owned(),
                format!("must be an http:// or https:// URL, not {endpoint:?}"),
            ));
        }
        for name in self.headers.keys() {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !valid {
                problems.push((
                    format!("traces.headers.{name}"),
                    "is not a valid header name".to_owned(),
                ));
            }
        }
        problems
    }
}
