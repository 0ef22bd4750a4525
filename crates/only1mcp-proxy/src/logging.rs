//! Log output for the gateway: human-readable or JSON lines, to stderr or a
//! file, never to stdout (stdout belongs to the MCP client in stdio mode).
//!
//! This moves to `only1mcp-observability` when metrics and OpenTelemetry
//! exporters arrive; it is the only place that installs a subscriber.

pub mod capture;

use only1mcp_core::config::{LogFormat, LoggingConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global subscriber. `RUST_LOG` wins over the config's level;
/// the default is `info`. Returns an error if a log file cannot be opened.
///
/// Beside the log output it installs [`capture::layer`], which
/// keeps recent lines per server for the admin API whatever the level is.
pub fn init(config: &LoggingConfig) -> std::io::Result<()> {
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
    let res = tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(capture::layer())
        .try_init();
    // A subscriber already installed (tests, embedders) is not an error.
    drop(res);
    Ok(())
}
