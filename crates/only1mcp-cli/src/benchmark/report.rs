//! Counting what happened, and saying it: a text report for people, JSON for
//! scripts (`cargo xtask bench` reads it), and the progress bar on stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::message::{Answer, Era};
use super::{CallError, Reply, Wire, histogram};

/// What one worker (or, merged, the whole run) saw.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Latency of every answered request, in nanoseconds.
    latency: Histogram<u64>,
    ok: u64,
    tool_errors: u64,
    rpc_errors: u64,
    http_errors: u64,
    transport_errors: u64,
    timeouts: u64,
    json: u64,
    sse: u64,
    stream: u64,
    first_error: Option<String>,
}

impl Stats {
    /// Nothing seen yet.
    pub(crate) fn new() -> Self {
        Self {
            latency: histogram(),
            ok: 0,
            tool_errors: 0,
            rpc_errors: 0,
            http_errors: 0,
            transport_errors: 0,
            timeouts: 0,
            json: 0,
            sse: 0,
            stream: 0,
            first_error: None,
        }
    }

    /// Records an answer and its latency.
    pub(crate) fn record(&mut self, reply: &Reply, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency.saturating_record(nanos.max(1));
        match reply.wire {
            Wire::Json => self.json += 1,
            Wire::Sse => self.sse += 1,
            Wire::Stream => self.stream += 1,
        }
        match &reply.answer {
            Answer::Ok => self.ok += 1,
            Answer::ToolError(content) => {
                self.tool_errors += 1;
                self.note_error(&format!("tool error: {content}"));
            }
            Answer::RpcError(code, message) => {
                self.rpc_errors += 1;
                self.note_error(&format!("JSON-RPC error {code}: {message}"));
            }
        }
    }

    /// Records a request that got no JSON-RPC answer.
    pub(crate) fn record_failure(&mut self, error: &CallError) {
        match error {
            CallError::Http(status, body) => {
                self.http_errors += 1;
                self.note_error(&format!("HTTP {status}: {body}"));
            }
            CallError::Transport(text) => {
                self.transport_errors += 1;
                self.note_error(text);
            }
        }
    }

    /// Records a request that timed out.
    pub(crate) fn record_timeout(&mut self, after: Duration) {
        self.timeouts += 1;
        self.note_error(&format!("no answer within {after:?}"));
    }

    /// Keeps the first error message, as an example.
    pub(crate) fn note_error(&mut self, text: &str) {
        if self.first_error.is_none() {
            self.first_error = Some(text.chars().take(300).collect());
        }
    }

    /// Adds another worker's counts.
    pub(crate) fn merge(&mut self, other: &Self) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.tool_errors += other.tool_errors;
        self.rpc_errors += other.rpc_errors;
        self.http_errors += other.http_errors;
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.json += other.json;
        self.sse += other.sse;
        self.stream += other.stream;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Requests that ended, one way or another.
    pub(crate) fn completed(&self) -> u64 {
        self.ok + self.failures()
    }

    /// Requests that did not end in a plain success.
    pub(crate) fn failures(&self) -> u64 {
        self.tool_errors
            + self.rpc_errors
            + self.http_errors
            + self.transport_errors
            + self.timeouts
    }
}

/// The result of a run.
#[derive(Debug)]
pub(crate) struct Report {
    /// The URL or command.
    pub(crate) target: String,
    /// `http`, `ws` or `stdio`.
    pub(crate) transport: &'static str,
    /// The era spoken.
    pub(crate) era: Era,
    /// The benchmarked method.
    pub(crate) method: String,
    /// Its `params.name` (or `uri`), if any.
    pub(crate) name: Option<String>,
    /// Sessions opened.
    pub(crate) connections: usize,
    /// Requests kept in flight.
    pub(crate) concurrency: usize,
    /// Time to open every session (handshakes included).
    pub(crate) connect_time: Duration,
    /// Requests sent during the warm-up (not measured).
    pub(crate) warmup_requests: u64,
    /// The measured phase's wall time.
    pub(crate) elapsed: Duration,
    /// `requests`, `duration` or `interrupt`.
    pub(crate) stopped_by: &'static str,
    /// The measured phase.
    pub(crate) stats: Stats,
    /// This process's own CPU time (user and system) when the run ended,
    /// where the OS tells it (Linux): whether the load generator itself
    /// was the bottleneck, and its share when all runs on one machine.
    pub(crate) cpu: Option<Duration>,
}

/// This process's CPU time so far (user and system), from `/proc/self/stat`
/// (clock ticks of 10 ms); `None` where there is no such file.
pub(crate) fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (which may hold spaces): utime and stime are
    // the 12th and 13th fields counted from the state.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A latency summary in microseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    min: f64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let us = |nanos: u64| nanos as f64 / 1_000.0;
        if histogram.is_empty() {
            return Self {
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Self {
            min: us(histogram.min()),
            mean: histogram.mean() / 1_000.0,
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
        }
    }
}

/// Microseconds, rounded to 0.1.
fn round(us: f64) -> f64 {
    (us * 10.0).round() / 10.0
}

/// A latency for people: µs below a millisecond, ms above.
fn human(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

impl Report {
    /// Answered requests per second over the measured phase.
    pub(crate) fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.completed() as f64 / secs
        } else {
            0.0
        }
    }

    /// The report as JSON (flat keys, latencies in µs).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let p = Percentiles::of(&self.stats.latency);
        let s = &self.stats;
        json!({
            "target": self.target,
            "transport": self.transport,
            "era": self.era.name(),
            "method": self.method,
            "name": self.name,
            "connections": self.connections,
            "concurrency": self.concurrency,
            "connect_ms": round(self.connect_time.as_secs_f64() * 1_000.0),
            "warmup_requests": self.warmup_requests,
            "requests": s.completed(),
            "ok": s.ok,
            "tool_errors": s.tool_errors,
            "rpc_errors": s.rpc_errors,
            "http_errors": s.http_errors,
            "transport_errors": s.transport_errors,
            "timeouts": s.timeouts,
            "json_responses": s.json,
            "sse_responses": s.sse,
            "stream_responses": s.stream,
            "first_error": s.first_error,
            "elapsed_s": (self.elapsed.as_secs_f64() * 1_000.0).round() / 1_000.0,
            "stopped_by": self.stopped_by,
            "throughput_rps": round(self.throughput()),
            "cpu_s": self.cpu.map(|cpu| cpu.as_secs_f64()),
            "latency_us": {
                "min": round(p.min),
                "mean": round(p.mean),
                "p50": round(p.p50),
                "p90": round(p.p90),
                "p99": round(p.p99),
                "p99_9": round(p.p999),
                "max": round(p.max),
            },
        })
    }

    /// The report for people.
    pub(crate) fn to_text(&self) -> String {
        let p = Percentiles::of(&self.stats.latency);
        let s = &self.stats;
        let what = match &self.name {
            Some(name) => format!("{} {name}", self.method),
            None => self.method.clone(),
        };
        let mut out = format!(
            "{what} → {} ({}, {} era)\n\
             sessions     {} (opened in {:.1} ms), concurrency {}\n\
             requests     {} in {:.2} s (stopped by {}; {} warm-up requests not counted)\n\
             throughput   {:.0} req/s\n\
             latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, mean {})\n",
            self.target,
            self.transport,
            self.era.name(),
            self.connections,
            self.connect_time.as_secs_f64() * 1_000.0,
            self.concurrency,
            s.completed(),
            self.elapsed.as_secs_f64(),
            self.stopped_by,
            self.warmup_requests,
            self.throughput(),
            human(p.p50),
            human(p.p90),
            human(p.p99),
            human(p.p999),
            human(p.max),
            human(p.min),
            human(p.mean),
        );
        if self.transport == "http" {
            out.push_str(&format!("responses    {} JSON, {} SSE\n", s.json, s.sse));
        }
        let handled = s.completed() + self.warmup_requests;
        if let Some(cpu) = self.cpu.filter(|_| handled > 0) {
            out.push_str(&format!(
                "own CPU      {:.2} s, {:.1} µs a request (warm-up included)\n",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / handled as f64
            ));
        }
        if s.failures() == 0 {
            out.push_str("errors       none");
        } else {
            out.push_str(&format!(
                "errors       {} tool, {} JSON-RPC, {} HTTP, {} transport, {} timeouts\n\
                 first error  {}",
                s.tool_errors,
                s.rpc_errors,
                s.http_errors,
                s.transport_errors,
                s.timeouts,
                s.first_error.as_deref().unwrap_or("-"),
            ));
        }
        out
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal or with
/// `quiet`): over the count when one is given, else over the time.
pub(crate) fn bar(
    quiet: bool,
    requests: Option<u64>,
    duration: Duration,
    label: &'static str,
) -> Option<ProgressBar> {
    if quiet {
        return None;
    }
    let (len, template) = match requests {
        Some(n) => (n, "{prefix:>9} [{bar:30}] {pos}/{len} requests  {msg}"),
        None => (
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            "{prefix:>9} [{bar:30}] {elapsed}  {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label);
    Some(bar)
}

/// Updates the bar from the phase's counter: the count itself when the
/// run is bounded by a count, else the elapsed time.
pub(crate) fn tick(bar: &ProgressBar, done: &AtomicU64, start: Instant, by_count: bool) {
    let done = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    if by_count {
        bar.set_position(done);
        bar.set_message(format!("{rate:.0} req/s"));
    } else {
        bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(format!("{done} requests, {rate:.0} req/s"));
    }
}
