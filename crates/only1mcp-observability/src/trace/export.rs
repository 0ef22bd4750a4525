//! The OTLP exporter, the tracer provider, and the `tracing` layer over
//! them, from the `traces:` config and the standard `OTEL_*` variables.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use only1mcp_core::config::{OtlpProtocol, TracesConfig};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::{ACTIVE, Active, TARGET, threshold};

/// The service name when neither the config nor `OTEL_SERVICE_NAME` gives
/// one.
const DEFAULT_SERVICE_NAME: &str = "only1mcp";

/// How long [`shutdown`] waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` names a protocol the gateway
    /// does not speak.
    #[error("{var}={value:?}: the protocols are grpc and http/protobuf")]
    UnsupportedProtocol {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A `${VAR}` of a `traces.headers` value is not set.
    #[error("traces.headers.{header}: {source}")]
    HeaderVariableMissing {
        /// The header.
        header: String,
        /// The missing variable.
        source: only1mcp_core::config::MissingVar,
    },
    /// A header name or value cannot be sent.
    #[error("traces.headers.{0}: not a valid gRPC metadata name or value")]
    InvalidHeader(String),
    /// The exporter refused its settings (an endpoint that is not a URL).
    #[error("the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The export thread could not start.
    #[error("the OTLP export thread: {0}")]
    Runtime(std::io::Error),
    /// Traces were already installed in this process.
    #[error("traces are already installed in this process")]
    AlreadyInstalled,
}

/// Traces as installed: the layer to add to the global subscriber.
pub struct Installed<S> {
    /// Turns this module's spans (target [`TARGET`], spans only: never log
    /// events) into OpenTelemetry spans.
    pub layer: Box<dyn Layer<S> + Send + Sync + 'static>,
}

impl<S> std::fmt::Debug for Installed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installed").finish_non_exhaustive()
    }
}

/// What [`shutdown`] flushes.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Sets up traces as `config` and the `OTEL_*` variables say: `None` when
/// they are off (`traces.enabled` false, or `OTEL_SDK_DISABLED=true`).
///
/// The exporter runs on a thread of its own (the SDK's batch processor)
/// and a one-thread runtime of its own for its HTTP or gRPC client, never
/// on the gateway's runtime. Spans wait in a queue of at most
/// `OTEL_BSP_MAX_QUEUE_SIZE` (2048); beyond it new spans are dropped, so a
/// collector that is down or slow costs no memory beyond that bound.
pub fn install<S>(config: &TracesConfig) -> Result<Option<Installed<S>>, InstallError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true");
    if !config.enabled || disabled {
        return Ok(None);
    }
    if ACTIVE.get().is_some() {
        return Err(InstallError::AlreadyInstalled);
    }
    // reqwest is built on rustls without a provider of its own (STACK-NOTES).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otel-export")
        .enable_all()
        .build()
        .map_err(InstallError::Runtime)?;
    let exporter = {
        // tonic's channel starts its worker task where it is built.
        let _on_runtime = runtime.enter();
        build_exporter(config)?
    };
    let exporter = OnRuntime {
        inner: Arc::new(exporter),
        runtime: Arc::new(runtime),
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Sampled or not is decided when a request arrives (`ServerSpan`):
        // a span that reaches the SDK is wanted.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(resource(config))
        .build();
    let tracer = provider.tracer("only1mcp");
    let ratio = sample_ratio(config);
    ACTIVE
        .set(Active {
            threshold: threshold(ratio),
            always: ratio >= 1.0,
        })
        .map_err(|_| InstallError::AlreadyInstalled)?;
    let _ = PROVIDER.set(provider);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span() && meta.target() == TARGET
        }));
    Ok(Some(Installed {
        layer: Box::new(layer),
    }))
}

/// Exports the spans still queued (waiting at most 3 s) and stops the
/// exporter. Does nothing when traces are off.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
    {
        tracing::warn!(error = %e, "Traces: the last spans were not all exported");
    }
}

/// The wire protocol: the config's, else the `OTEL_*` variables', else
/// HTTP/protobuf (OpenTelemetry's default).
fn protocol(config: &TracesConfig) -> Result<OtlpProtocol, InstallError> {
    if let Some(protocol) = config.protocol {
        return Ok(protocol);
    }
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(value) = std::env::var(var) {
            return match value.trim() {
                "grpc" => Ok(OtlpProtocol::Grpc),
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                _ => Err(InstallError::UnsupportedProtocol { var, value }),
            };
        }
    }
    Ok(OtlpProtocol::HttpProtobuf)
}

/// The configured headers with `${VAR}` expanded.
fn headers(config: &TracesConfig) -> Result<HashMap<String, String>, InstallError> {
    config
        .headers
        .iter()
        .map(|(name, value)| {
            let value = only1mcp_core::config::expand_env(value, |var| std::env::var(var).ok())
                .map_err(|source| InstallError::HeaderVariableMissing {
                    header: name.clone(),
                    source,
                })?;
            Ok((name.clone(), value))
        })
        .collect()
}

fn build_exporter(config: &TracesConfig) -> Result<opentelemetry_otlp::SpanExporter, InstallError> {
    let headers = headers(config)?;
    let exporter = match protocol(config)? {
        OtlpProtocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(http_traces_url(endpoint));
            }
            if !headers.is_empty() {
                builder = builder.with_headers(headers);
            }
            builder.build()?
        }
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            if !headers.is_empty() {
                let mut map = http::HeaderMap::new();
                for (name, value) in &headers {
                    let invalid = || InstallError::InvalidHeader(name.clone());
                    let name = http::HeaderName::try_from(name.as_str()).map_err(|_| invalid())?;
                    let value =
                        http::HeaderValue::try_from(value.as_str()).map_err(|_| invalid())?;
                    map.insert(name, value);
                }
                let metadata =
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map);
                builder = builder.with_metadata(metadata);
            }
            builder.build()?
        }
    };
    Ok(exporter)
}

/// An HTTP endpoint with OTLP's traces path, unless it has it already.
fn http_traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// The share of new traces sampled: the config's, else what
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` say, else 1.0.
fn sample_ratio(config: &TracesConfig) -> f64 {
    if let Some(ratio) = config.sample_ratio {
        return ratio;
    }
    let arg = || {
        std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0)
    };
    match std::env::var("OTEL_TRACES_SAMPLER")
        .as_deref()
        .map(str::trim)
    {
        Ok("always_off" | "parentbased_always_off") => 0.0,
        Ok("traceidratio" | "parentbased_traceidratio") => arg(),
        _ => 1.0,
    }
}

/// `service.name`, `service.version`, `OTEL_RESOURCE_ATTRIBUTES` and the
/// configured attributes (which win).
fn resource(config: &TracesConfig) -> Resource {
    let service_name = config
        .service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    Resource::builder()
        .with_service_name(service_name)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attributes(
            config
                .resource_attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        )
        .build()
}

/// The OTLP exporter with its client's work on a runtime of its own: the
/// SDK's batch thread waits for each export there, not on the gateway's.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl SpanExporter for OnRuntime {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.runtime.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _on_runtime = self.runtime.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _on_runtime = self.runtime.enter();
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
