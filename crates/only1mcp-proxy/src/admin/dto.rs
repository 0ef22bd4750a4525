//! The admin API's JSON shapes, shared by the server (this crate) and its
//! clients (`only1mcp status` and the other management commands).
//!
//! These are wire types on purpose; the gateway's internal state is never
//! serialized directly.

use serde::{Deserialize, Serialize};

use only1mcp_core::mcp::{Era, Implementation};

/// `GET /servers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerList {
    /// Every configured server, in priority order; disabled ones too.
    pub servers: Vec<ServerStatus>,
    /// What each context profile lists, in tokens, and what it saved.
    #[serde(default)]
    pub context: Vec<crate::context::ProfileReport>,
}

/// One server as `GET /servers` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerStatus {
    /// The server id.
    pub id: String,
    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    pub transport: String,
    /// `starting`, `ready`, `restarting`, `failed`, `stopped` or `disabled`.
    pub status: String,
    /// Why it failed, when `status` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The era it speaks, once connected.
    #[serde(default)]
    pub era: Option<Era>,
    /// The negotiated protocol version, once connected.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// Its tools in the merged catalog (after its tool filter and name
    /// collisions).
    pub tools: usize,
    /// Its tools as it listed them.
    pub tools_offered: usize,
    /// Its prompts as it listed them.
    pub prompts: usize,
    /// Its resources as it listed them.
    pub resources: usize,
    /// Requests forwarded to it.
    pub requests: u64,
    /// Those that failed (no answer, or a JSON-RPC error).
    pub errors: u64,
    /// Requests in flight.
    pub in_flight: usize,
    /// The median latency of its last answered requests, in milliseconds.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// Seconds its current session has been up.
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    /// Its last failure.
    #[serde(default)]
    pub last_error: Option<LastErrorDto>,
    /// Why the last change to its config is not applied: the replacement
    /// failed to start, so it serves on with its previous config (the next
    /// reload tries again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_failed: Option<String>,
    /// Its replicas, for a server with a pool of them (ADR 0017).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaDto>,
    /// Tools, prompts and resources some of its replicas offer and others
    /// do not (left out of the catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas_differ: Vec<String>,
    /// Its calls over the last minute or so, from the Prometheus metrics'
    /// histograms (`None` when metrics are off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<RecentDto>,
}

/// One replica of a server, as `GET /servers` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaDto {
    /// Its index (0 is the first).
    pub replica: u32,
    /// `ready`, `starting`, `ejected` (its breaker is open), `half-open` or
    /// `down`.
    pub state: String,
    /// Its breaker: `closed`, `open` or `half-open`.
    pub breaker: String,
    /// How many times its breaker opened.
    pub ejections: u64,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// Calls it got (its health checks included).
    pub requests: u64,
    /// Its peak-EWMA latency, in milliseconds.
    pub ewma_ms: f64,
    /// Its process id, for a command that runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// A server's calls over a recent window, as the metrics measured them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecentDto {
    /// How long the window is, in seconds.
    pub window_secs: f64,
    /// Calls that ended in it.
    pub calls: u64,
    /// Calls per second.
    pub rate: f64,
    /// The share of them that failed (0 to 1; tool errors count), `None`
    /// with no calls.
    pub error_rate: Option<f64>,
    /// The median duration, in milliseconds (interpolated in its bucket).
    pub p50_ms: Option<f64>,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// A server's last failure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastErrorDto {
    /// What went wrong.
    pub message: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// What a reload did (`POST /reload`, and part of every change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReloadDto {
    /// Servers whose config did not change (process and connection kept).
    pub kept: Vec<String>,
    /// Servers started (new, or changed).
    pub started: Vec<String>,
    /// Servers stopped after draining (removed, disabled, or changed).
    pub stopped: Vec<String>,
    /// Started servers whose first start failed (they keep retrying).
    pub failed: Vec<String>,
    /// Changed servers whose replacement failed to start: they serve on
    /// with their previous config (the next reload tries again).
    #[serde(default)]
    pub kept_previous: Vec<String>,
}

impl From<&crate::gateway::ReloadReport> for ReloadDto {
    fn from(report: &crate::gateway::ReloadReport) -> Self {
        let names = |ids: &[std::sync::Arc<str>]| ids.iter().map(|id| id.to_string()).collect();
        Self {
            kept: names(&report.kept),
            started: names(&report.started),
            stopped: names(&report.stopped),
            failed: names(&report.failed),
            kept_previous: names(&report.kept_previous),
        }
    }
}

/// The answer to a change: add, remove, enable, disable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeDto {
    /// The server changed.
    pub server: String,
    /// `added`, `removed`, `enabled` or `disabled`.
    pub action: String,
    /// The config file written, when `?persist=true` was asked.
    #[serde(default)]
    pub persisted: Option<String>,
    /// What the reload did.
    pub reload: ReloadDto,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDto {
    /// What went wrong.
    pub error: String,
    /// Every problem of an invalid config, each naming its field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One captured log line (kept by `crate::logging::capture`).
pub use crate::logging::capture::LogLine as LogLineDto;

/// `GET /logs` and `GET /servers/{id}/logs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogsDto {
    /// Oldest first.
    pub lines: Vec<LogLineDto>,
}

/// `POST /servers/{id}/test`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestDto {
    /// The server id.
    pub server: String,
    /// Whether it started, opened a session and listed its tools.
    pub ok: bool,
    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    pub transport: String,
    /// The era it speaks.
    #[serde(default)]
    pub era: Option<Era>,
    /// The negotiated protocol version.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// Its name and version.
    #[serde(default)]
    pub server_info: Option<Implementation>,
    /// Milliseconds per step: `start`, `initialize`, `tools/list`, `total`.
    pub timings_ms: Vec<(String, f64)>,
    /// Its tools, with whether its tool filter exposes each.
    pub tools: Vec<TestToolDto>,
    /// The step that failed, and why.
    #[serde(default)]
    pub failure: Option<ErrorDto>,
}

/// One tool found by a test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestToolDto {
    /// Its name on the server.
    pub name: String,
    /// Whether the server's tool filter exposes it.
    pub exposed: bool,
}

impl TestDto {
    /// The answer for a finished test of `server`.
    pub fn new(
        server: &str,
        transport: &str,
        res: Result<crate::backend::Probe, crate::backend::ProbeFailure>,
    ) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        match res {
            Ok(probe) => Self {
                server: server.to_owned(),
                ok: true,
                transport: probe.transport.to_owned(),
                era: Some(probe.era),
                protocol_version: Some(probe.protocol_version),
                server_info: probe.server_info,
                timings_ms: vec![
                    ("start".to_owned(), ms(probe.connect)),
                    ("initialize".to_owned(), ms(probe.initialize)),
                    ("tools/list".to_owned(), ms(probe.list_tools)),
                    ("total".to_owned(), ms(probe.total)),
                ],
                tools: probe
                    .tools
                    .into_iter()
                    .map(|(name, exposed)| TestToolDto { name, exposed })
                    .collect(),
                failure: None,
            },
            Err(failure) => Self {
                server: server.to_owned(),
                ok: false,
                transport: transport.to_owned(),
                era: None,
                protocol_version: None,
                server_info: None,
                timings_ms: vec![("total".to_owned(), ms(failure.elapsed))],
                tools: Vec::new(),
                failure: Some(ErrorDto {
                    error: format!("{} failed: {}", failure.step, failure.message),
                    problems: Vec::new(),
                }),
            },
        }
    }
}
