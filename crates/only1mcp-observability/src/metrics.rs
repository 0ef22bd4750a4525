//! Prometheus metrics: a layer of the call pipeline that times every call
//! towards a backend, the client-facing operation durations, and the
//! gateway's state at scrape time, all rendered as one Prometheus text page
//! (ADR 0018).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mcp_client_operation_duration_seconds` | histogram | `server`, `mcp_method_name`, `gen_ai_tool_name` / `gen_ai_prompt_name`, `error_type` |
//! | `mcp_server_operation_duration_seconds` | histogram | `mcp_method_name`, `error_type` |
//! | `only1mcp_backend_up` | gauge | `server`, `state` (`ready`, `starting`, `down`) |
//! | `only1mcp_backend_in_flight` | gauge | `server` |
//! | `only1mcp_backend_restarts_total` | counter | `server` |
//! | `only1mcp_catalog_items` | gauge | `kind` |
//! | `only1mcp_sessions` | gauge | (none) |
//! | `only1mcp_context_tokens` | gauge | `profile`, `kind` (`listed`, `full`) |
//! | `only1mcp_context_tokens_saved_total` | counter | `profile` |
//! | `only1mcp_reloads_total` | counter | `result` (`ok`, `failed`) |
//! | `only1mcp_reload_duration_seconds` | histogram | (none) |
//!
//! The names are the OpenTelemetry semantic conventions for MCP
//! (`mcp.client.operation.duration`, `mcp.server.operation.duration`;
//! attributes `mcp.method.name`, `gen_ai.tool.name`, `gen_ai.prompt.name`,
//! `error.type`) in Prometheus form; `server` is the gateway's server id.
//!
//! Cardinality is bounded: a tool or prompt label is a name the catalog
//! holds, anything else is `_OTHER`, as is a method or a backend's error
//! code outside the fixed lists ([`labels`]); no session id, argument or
//! principal is ever a label.
//!
//! The hot path takes no lock and allocates nothing: the series of every
//! server, tool and prompt are made when the catalog changes (a [`Table`]
//! swapped whole), a call looks its series up by name and records its
//! duration into fixed atomic buckets ([`histogram`]). Counters of rare
//! events (reloads) go through the `metrics` facade to the
//! `metrics-exporter-prometheus` recorder, installed once per process as
//! the global recorder, so other crates' facade calls reach the same page.

pub mod histogram;
pub mod labels;
mod layer;
mod series;
mod state;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use metrics::Recorder as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use only1mcp_core::catalog::Catalog;
use only1mcp_core::jsonrpc::Outcome;

pub use layer::{Metered, MetricsLayer, ResponseFuture, Tracker};
pub use series::Series;
use series::Table;
pub use state::{BackendState, GatewayState, ProfileTokens, ServerWindow, Up};

/// The buckets of the exporter's histograms (reload durations), seconds.
const RELOAD_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

/// The recorder of the process, made and installed once.
fn recorder() -> &'static Arc<PrometheusRecorder> {
    static RECORDER: OnceLock<Arc<PrometheusRecorder>> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&RELOAD_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let recorder = Arc::new(recorder);
        // An embedder that installed its own recorder keeps it; ours still
        // renders what the gateway registers below.
        let _ = metrics::set_global_recorder(recorder.clone());
        recorder
    })
}

/// The gateway's metrics. Cheap to clone; one per gateway.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// The call series, by server and name.
    table: ArcSwap<Table>,
    /// Changes of the table, one at a time (never on the request path).
    table_changes: Mutex<()>,
    /// The client-facing operations, by method.
    server_ops: Vec<Series>,
    reloads_ok: metrics::Counter,
    reloads_failed: metrics::Counter,
    reload_duration: metrics::Histogram,
    /// Per-server sums kept for `only1mcp status` windows.
    windows: state::Windows,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// New metrics, with no series but the unknown server's until the
    /// catalog is set ([`Metrics::set_catalog`]).
    pub fn new() -> Self {
        let recorder = recorder();
        let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
        let reloads = |result: &'static str| {
            recorder.register_counter(
                &metrics::Key::from_parts(
                    "only1mcp_reloads_total",
                    vec![metrics::Label::new("result", result)],
                ),
                &meta,
            )
        };
        recorder.describe_counter(
            "only1mcp_reloads_total".into(),
            None,
            "Config reloads applied (ok) or refused (failed).".into(),
        );
        recorder.describe_histogram(
            "only1mcp_reload_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "How long applying a reload took.".into(),
        );
        let server_ops = labels::METHODS
            .iter()
            .map(|m| {
                Series::new(
                    Arc::from(""),
                    format!("mcp_method_name=\"{}\"", labels::escape(m)),
                )
            })
            .collect();
        let metrics = Self {
            inner: Arc::new(Inner {
                table: ArcSwap::from_pointee(Table::build(&Catalog::default(), &Table::default())),
                table_changes: Mutex::new(()),
                server_ops,
                reloads_ok: reloads("ok"),
                reloads_failed: reloads("failed"),
                reload_duration: recorder.register_histogram(
                    &metrics::Key::from_name("only1mcp_reload_duration_seconds"),
                    &meta,
                ),
                windows: state::Windows::default(),
            }),
        };
        metrics.tick();
        metrics
    }

    /// The layer that times every call of the stack it wraps.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::new(self.clone())
    }

    /// Makes the series of `catalog`'s tools and prompts (those of names it
    /// no longer holds end; the rest keep counting). Called when the
    /// catalog is swapped.
    pub fn set_catalog(&self, catalog: &Catalog) {
        let _one = self
            .inner
            .table_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = Table::build(catalog, &self.inner.table.load());
        self.inner.table.store(Arc::new(next));
    }

    /// Makes sure each of `servers` has its series (a server with nothing
    /// listed is still called: `logging/setLevel`, a `resources/read`).
    pub fn add_servers<'a>(&self, servers: impl IntoIterator<Item = &'a Arc<str>>) {
        let _one = self
            .inner
            .table_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(next) = self.inner.table.load().with_servers(servers) {
            self.inner.table.store(Arc::new(next));
        }
    }

    /// Starts timing a client's request of `method` (the gateway as an MCP
    /// server); [`ServerOp::finish`] records it.
    #[inline]
    pub fn server_op(&self, method: &str) -> ServerOp<'_> {
        ServerOp {
            series: &self.inner.server_ops[labels::method_idx(method)],
            tool: method == only1mcp_core::mcp::method::TOOLS_CALL,
            start: Instant::now(),
        }
    }

    /// Records a reload that was applied (`ok`) or refused, and how long it
    /// took.
    pub fn reload(&self, ok: bool, took: Duration) {
        if ok {
            self.inner.reloads_ok.increment(1);
        } else {
            self.inner.reloads_failed.increment(1);
        }
        self.inner.reload_duration.record(took.as_secs_f64());
    }

    /// The whole page: the call histograms, the gateway's `state` as it is
    /// now, and whatever reached the exporter.
    pub fn render(&self, state: &GatewayState) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let table = self.inner.table.load();
        let client = "mcp_client_operation_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {client} Duration of the gateway's calls to backends, as the gateway saw them.\n# TYPE {client} histogram"
        );
        for series in table.all() {
            series.render(&mut out, client);
        }
        let server = "mcp_server_operation_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {server} Duration of clients' requests, from receipt to answer.\n# TYPE {server} histogram"
        );
        for series in &self.inner.server_ops {
            series.render(&mut out, server);
        }
        state.render(&mut out);
        out.push_str(&recorder().handle().render());
        out
    }

    /// Each server's calls over the last minute or so (rate, p50, p99, error
    /// rate), from the same histograms the page renders; the window moves
    /// each time [`Metrics::tick`] runs.
    pub fn windows(&self) -> Vec<ServerWindow> {
        self.inner.windows.report(&self.inner.table.load())
    }

    /// Takes a sample for the windows of [`Metrics::windows`]; the gateway
    /// calls it every few seconds.
    pub fn tick(&self) {
        self.inner.windows.tick(&self.inner.table.load());
    }
}

/// A client's request being timed (see [`Metrics::server_op`]).
#[derive(Debug)]
#[must_use = "a request is recorded when it is finished"]
pub struct ServerOp<'a> {
    series: &'a Series,
    tool: bool,
    start: Instant,
}

impl ServerOp<'_> {
    /// Records the request as answered with `outcome`.
    #[inline]
    pub fn finish(self, outcome: &Outcome) {
        self.series.record(
            labels::outcome_idx(outcome, self.tool),
            self.start.elapsed(),
        );
    }
}

#[cfg(test)]
mod tests;
