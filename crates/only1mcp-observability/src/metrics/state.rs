//! What the page shows besides calls: the gateway's state read at scrape
//! time (backends, catalog, sessions, context diet), and the per-server
//! windows `only1mcp status` reads.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::histogram::Snapshot;
use super::labels::escape;
use super::series::Table;

/// Where a backend stands, as `only1mcp_backend_up{state}` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Up {
    /// Connected and serving.
    Ready,
    /// Starting or restarting.
    Starting,
    /// Failed or stopped.
    Down,
}

impl Up {
    const ALL: [(Self, &'static str); 3] = [
        (Self::Ready, "ready"),
        (Self::Starting, "starting"),
        (Self::Down, "down"),
    ];
}

/// One backend at scrape time.
#[derive(Debug, Clone)]
pub struct BackendState {
    /// Its server id.
    pub server: Arc<str>,
    /// Where it stands.
    pub up: Up,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// How often its connection ended and it was restarted.
    pub restarts: u64,
}

/// One context profile's token counts at scrape time.
#[derive(Debug, Clone)]
pub struct ProfileTokens {
    /// The profile.
    pub profile: String,
    /// Tokens of the tool listing it serves.
    pub listed: usize,
    /// Tokens the full listing would take.
    pub full: usize,
    /// Tokens saved so far: for each listing served, full minus listed.
    pub saved: u64,
}

/// The gateway's state, read by the caller of [`super::Metrics::render`].
#[derive(Debug, Clone, Default)]
pub struct GatewayState {
    /// Every configured backend.
    pub backends: Vec<BackendState>,
    /// Catalog items by kind (`tools`, `prompts`, `resources`,
    /// `resource_templates`).
    pub catalog: Vec<(&'static str, usize)>,
    /// Client sessions open now.
    pub sessions: usize,
    /// Every context profile.
    pub profiles: Vec<ProfileTokens>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl GatewayState {
    /// Writes its families.
    pub(crate) fn render(&self, out: &mut String) {
        family(
            out,
            "only1mcp_backend_up",
            "gauge",
            "1 for the state each backend is in (ready, starting, down), else 0.",
        );
        for backend in &self.backends {
            let server = escape(&backend.server);
            for (up, state) in Up::ALL {
                let value = u8::from(backend.up == up);
                let _ = writeln!(
                    out,
                    "only1mcp_backend_up{{server=\"{server}\",state=\"{state}\"}} {value}"
                );
            }
        }
        family(
            out,
            "only1mcp_backend_in_flight",
            "gauge",
            "Calls in flight on each backend.",
        );
        for backend in &self.backends {
            let _ = writeln!(
                out,
                "only1mcp_backend_in_flight{{server=\"{}\"}} {}",
                escape(&backend.server),
                backend.in_flight
            );
        }
        family(
            out,
            "only1mcp_backend_restarts_total",
            "counter",
            "Times each backend's connection ended and it was started again.",
        );
        for backend in &self.backends {
            let _ = writeln!(
                out,
                "only1mcp_backend_restarts_total{{server=\"{}\"}} {}",
                escape(&backend.server),
                backend.restarts
            );
        }
        family(
            out,
            "only1mcp_catalog_items",
            "gauge",
            "Items of the merged catalog, by kind.",
        );
        for (kind, n) in &self.catalog {
            let _ = writeln!(out, "only1mcp_catalog_items{{kind=\"{kind}\"}} {n}");
        }
        family(
            out,
            "only1mcp_sessions",
            "gauge",
            "Client sessions open now (stdio, legacy HTTP, HTTP+SSE, WebSocket).",
        );
        let _ = writeln!(out, "only1mcp_sessions {}", self.sessions);
        family(
            out,
            "only1mcp_context_tokens",
            "gauge",
            "Tokens of the tool listing each context profile serves (listed) and of the full listing (full).",
        );
        for p in &self.profiles {
            let profile = escape(&p.profile);
            let _ = writeln!(
                out,
                "only1mcp_context_tokens{{profile=\"{profile}\",kind=\"listed\"}} {}\nonly1mcp_context_tokens{{profile=\"{profile}\",kind=\"full\"}} {}",
                p.listed, p.full
            );
        }
        family(
            out,
            "only1mcp_context_tokens_saved_total",
            "counter",
            "Tokens the context diet saved, summed over the tool listings each profile served.",
        );
        for p in &self.profiles {
            let _ = writeln!(
                out,
                "only1mcp_context_tokens_saved_total{{profile=\"{}\"}} {}",
                escape(&p.profile),
                p.saved
            );
        }
    }
}

/// One server's calls over a recent window.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerWindow {
    /// The server id.
    pub server: Arc<str>,
    /// How long the window is.
    pub window: Duration,
    /// Calls that ended in it.
    pub calls: u64,
    /// Of those, the ones that failed (any error type, tool errors too).
    pub errors: u64,
    /// The median duration.
    pub p50: Option<Duration>,
    /// The 99th percentile.
    pub p99: Option<Duration>,
}

impl ServerWindow {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss, reason = "a rate")]
        let calls = self.calls as f64;
        calls / self.window.as_secs_f64().max(f64::EPSILON)
    }

    /// The share of calls that failed (0 to 1), `None` with no calls.
    pub fn error_rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }
}

/// How many samples the windows keep: a minute at one a five seconds.
const SAMPLES: usize = 13;

/// Per server: every duration, and the failed ones' count.
type Sample = HashMap<Arc<str>, (Snapshot, u64)>;

/// Samples of the per-server sums, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    samples: Mutex<VecDeque<(Instant, Sample)>>,
}

fn sample(table: &Table) -> Sample {
    let mut sums: Sample = HashMap::new();
    for series in table.all() {
        let (all, errors) = sums.entry(series.server.clone()).or_default();
        for (error_type, snap) in series.each() {
            all.add(&snap);
            if !error_type.is_empty() {
                *errors += snap.count();
            }
        }
    }
    sums
}

impl Windows {
    pub(crate) fn tick(&self, table: &Table) {
        let now = sample(table);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back((Instant::now(), now));
    }

    pub(crate) fn report(&self, table: &Table) -> Vec<ServerWindow> {
        let now = sample(table);
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, oldest) = match samples.front() {
            Some((at, oldest)) => (at.elapsed(), Some(oldest)),
            None => (Duration::ZERO, None),
        };
        let mut report: Vec<ServerWindow> = now
            .into_iter()
            .filter(|(server, _)| !server.is_empty())
            .map(|(server, (all, errors))| {
                let (before, errors_before) = oldest
                    .and_then(|o| o.get(&server))
                    .copied()
                    .unwrap_or_default();
                let window = all.since(&before);
                ServerWindow {
                    server,
                    window: since,
                    calls: window.count(),
                    errors: errors.saturating_sub(errors_before),
                    p50: window.quantile(0.5),
                    p99: window.quantile(0.99),
                }
            })
            .collect();
        report.sort_by(|a, b| a.server.cmp(&b.server));
        report
    }
}
