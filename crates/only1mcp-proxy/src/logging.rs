//! Log output for the gateway: human-readable or JSON lines, to stderr or a
//! file, never to stdout (stdout belongs to the MCP client in stdio mode).
//!
//! It is the only place that installs a subscriber; with traces on, the
//! OpenTelemetry layer of `only1mcp_observability::trace` is part of it.

pub mod capture;

use only1mcp_core::config::{LogFormat, LoggingConfig, TracesConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Why the log output or traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The log file cannot be opened.
    #[error("cannot open the log file: {0}")]
    LogFile(#[from] std::io::Error),
    /// The OTLP exporter cannot be set up.
    #[error("cannot set up traces: {0}")]
    Traces(#[from] only1mcp_observability::trace::InstallError),
}

/// Installs the global subscriber. `RUST_LOG` wins over the config's level;
/// the default is `info`. Returns an error if a log file cannot be opened.
///
/// Beside the log output it installs [`capture::layer`], which
/// keeps recent lines per server for the admin API whatever the level is.
pub fn init(config: &LoggingConfig) -> std::io::Result<()> {
    match init_with_traces(config, &TracesConfig::default()) {
        Ok(()) => Ok(()),
        Err(InitError::LogFile(e)) => Err(e),
        // Traces are off in the default config: nothing to install.
        Err(InitError::Traces(e)) => Err(std::io::Error::other(e)),
    }
}

/// [`init`], and OpenTelemetry traces as `traces` says (nothing when they
/// are off): their layer sees only the gateway's trace spans.
pub fn init_with_traces(config: &LoggingConfig, traces: &TracesConfig) -> Result<(), InitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(config.level.as_deref().unwrap_or("info"))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    });
    let writer = match &config.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let output = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let output = match config.format {
        LogFormat::Human => output.boxed(),
        LogFormat::Json => output.json().boxed(),
    };
    only1mcp_observability::trace::set_access_log(config.access_log);
    let traces = only1mcp_observability::trace::install(traces)?.map(|installed| installed.layer);
    let res = tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(capture::layer())
        .with(traces)
        .try_init();
    // A subscriber already installed (tests, embedders) is not an error.
    drop(res);
    Ok(())
}
