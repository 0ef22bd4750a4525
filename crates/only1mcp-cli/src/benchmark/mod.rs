//! `only1mcp benchmark`: an MCP load generator.
//!
//! It opens `--connections` sessions to one target (Streamable HTTP, a
//! spawned stdio command, or WebSocket), warms up, then keeps
//! `--concurrency` requests in flight until `--duration` has passed or
//! `--requests` have been sent, whichever comes first, and reports
//! throughput, latency percentiles (an HDR histogram, nanosecond resolution,
//! three significant digits) and errors. Every run is bounded: the duration
//! is capped at ten minutes even when only a count is given.
//!
//! Network targets must be loopback unless `--allow-remote`.
//!
//! How latency is measured: from just before a request is written to the
//! moment its answer is read (the whole body for HTTP), per request, on the
//! connection it was assigned. An HTTP/1.1 connection carries one request at
//! a time, so `--connections` below `--concurrency` is refused for HTTP;
//! stdio and WebSocket connections carry many at once (matched by id).

mod http;
mod message;
mod report;
mod stream;
mod target;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use self::http::HttpConn;
use self::message::{Answer, Era, Template};
use self::report::{Report, Stats};
use self::stream::StreamConn;
use self::target::{Endpoint, Target};
use crate::output;

/// The longest run allowed, whatever the options say.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// The most requests one run may send.
const MAX_REQUESTS: u64 = 1_000_000_000;
/// The most connections one run may open.
const MAX_CONNECTIONS: usize = 1024;
/// The most requests one run may keep in flight.
const MAX_CONCURRENCY: usize = 4096;

/// Load-test an MCP server or the gateway itself: throughput and latency
/// percentiles of one request fired at a fixed concurrency.
///
/// Examples:
///   only1mcp benchmark --url http://127.0.0.1:7331/mcp -c 32 --duration 10s
///   only1mcp benchmark --stdio --requests 10000 -- only1mcp start --stdio
///   only1mcp benchmark --ws ws://127.0.0.1:7331/ws --era modern --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["url", "ws", "stdio"])))]
pub(crate) struct Args {
    /// A Streamable HTTP endpoint, e.g. http://127.0.0.1:7331/mcp.
    #[arg(long)]
    url: Option<String>,
    /// A WebSocket endpoint (subprotocol mcp), e.g. ws://127.0.0.1:7331/ws.
    #[arg(long)]
    ws: Option<String>,
    /// Spawn the command given after `--` (no shell) and speak MCP on its
    /// stdin/stdout; one process per connection.
    #[arg(long, requires = "command")]
    stdio: bool,
    /// The command for --stdio and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
    /// The MCP era to speak: legacy (initialize per connection; an
    /// Mcp-Session-Id on HTTP) or modern (2026-07-28: _meta and the
    /// MCP-Protocol-Version/Mcp-Method/Mcp-Name headers on every request).
    #[arg(long, value_enum, default_value = "legacy")]
    era: Era,
    /// Sessions to open. Default: --concurrency for HTTP and WebSocket, 1
    /// for --stdio.
    #[arg(long, short = 'n')]
    connections: Option<usize>,
    /// Requests kept in flight.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// How long to measure (e.g. 10s, 500ms, 2m). Default 10s, or the
    /// 10-minute cap when --requests is given.
    #[arg(long, short = 'z', value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many requests to measure; the run stops at this count or at
    /// --duration, whichever comes first.
    #[arg(long, short = 'r')]
    requests: Option<u64>,
    /// How long to send unmeasured requests first.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// The request's method.
    #[arg(long, default_value = "tools/call")]
    method: String,
    /// The tool to call (for tools/call).
    #[arg(long, default_value = "echo__echo")]
    tool: String,
    /// The tool's arguments, as a JSON object (for tools/call).
    #[arg(long, default_value = r#"{"text":"x"}"#)]
    arguments: String,
    /// The whole params object as JSON, instead of --tool/--arguments.
    #[arg(long)]
    params: Option<String>,
    /// Ask for progress (params._meta.progressToken, unique per request):
    /// with a tool that reports progress, HTTP answers become SSE streams.
    #[arg(long)]
    progress: bool,
    /// How long one request may take before it counts as timed out.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Allow a target that is not on this machine (loopback).
    #[arg(long)]
    allow_remote: bool,
}

/// How one request went wrong before it got a JSON-RPC answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallError {
    /// A non-success HTTP status without a JSON-RPC response.
    #[error("HTTP {0}: {1}")]
    Http(u16, String),
    /// The connection failed or the answer could not be read.
    #[error("{0}")]
    Transport(String),
}

/// How an answer travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// An `application/json` HTTP body.
    Json,
    /// A `text/event-stream` HTTP body.
    Sse,
    /// A line on stdio or a WebSocket frame.
    Stream,
}

/// A JSON-RPC answer and how it came.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The answer.
    pub(crate) answer: Answer,
    /// How it came.
    pub(crate) wire: Wire,
}

/// One open session.
#[derive(Debug)]
enum Conn {
    /// One request at a time; the lock is only contended when workers share
    /// a connection.
    Http(tokio::sync::Mutex<HttpConn>),
    Stream(StreamConn),
}

impl Conn {
    async fn call(&self, id: u64, body: Vec<u8>) -> Result<Reply, CallError> {
        match self {
            Self::Http(conn) => conn.lock().await.call(id, body).await,
            Self::Stream(conn) => conn.call(id, body).await,
        }
    }

    async fn close(self) {
        match self {
            Self::Http(conn) => conn.into_inner().close().await,
            Self::Stream(conn) => conn.close().await,
        }
    }
}

/// The settled plan of a run.
#[derive(Debug)]
struct Plan {
    target: Target,
    era: Era,
    connections: usize,
    concurrency: usize,
    duration: Duration,
    requests: Option<u64>,
    warmup: Duration,
    timeout: Duration,
    template: Template,
    allow_remote: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Target(#[from] target::TargetError),
    #[error("{0}")]
    Connect(String),
}

/// Runs the benchmark; exits 0 if every request succeeded, 1 if any failed,
/// 2 for unusable options (a refused target among them).
pub(crate) async fn run(args: &Args) -> ExitCode {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err(e) => {
            output::error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    match execute(&plan, args.quiet).await {
        Ok(report) => {
            if args.json {
                output::json(&report.to_json());
            } else {
                output::line(&report.to_text());
            }
            if report.stats.failures() == 0 && report.stats.completed() > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            output::error(&e.to_string());
            match e {
                SetupError::Usage(_) | SetupError::Target(_) => ExitCode::from(2),
                SetupError::Connect(_) => ExitCode::FAILURE,
            }
        }
    }
}

fn plan(args: &Args) -> Result<Plan, SetupError> {
    let usage = |text: String| SetupError::Usage(text);
    let target = if let Some(url) = &args.url {
        let endpoint = Endpoint::parse(url, &[("http", 80)])?;
        endpoint.check_loopback(args.allow_remote)?;
        Target::Http(endpoint)
    } else if let Some(url) = &args.ws {
        let endpoint = Endpoint::parse(url, &[("ws", 80)])?;
        endpoint.check_loopback(args.allow_remote)?;
        Target::Ws(endpoint)
    } else {
        let Some((program, rest)) = args.command.split_first() else {
            return Err(usage("--stdio needs a command after --".to_owned()));
        };
        Target::Stdio {
            program: program.clone(),
            args: rest.to_vec(),
        }
    };
    if !args.command.is_empty() && !args.stdio {
        return Err(usage("a command after -- needs --stdio".to_owned()));
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        return Err(usage(format!(
            "--concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    let default_connections = match target {
        Target::Stdio { .. } => 1,
        Target::Http(_) | Target::Ws(_) => args.concurrency,
    };
    let connections = args.connections.unwrap_or(default_connections);
    if connections == 0 || connections > MAX_CONNECTIONS {
        return Err(usage(format!(
            "--connections must be between 1 and {MAX_CONNECTIONS}"
        )));
    }
    if connections > args.concurrency {
        return Err(usage(format!(
            "--connections ({connections}) must not exceed --concurrency ({}): extra connections would stay idle",
            args.concurrency
        )));
    }
    if matches!(target, Target::Http(_)) && connections < args.concurrency {
        return Err(usage(format!(
            "an HTTP/1.1 connection carries one request at a time: use --connections {} (or leave it out) for --concurrency {}",
            args.concurrency, args.concurrency
        )));
    }
    if let Some(requests) = args.requests
        && (requests == 0 || requests > MAX_REQUESTS)
    {
        return Err(usage(format!(
            "--requests must be between 1 and {MAX_REQUESTS}"
        )));
    }
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => d,
        (None, Some(_)) => MAX_DURATION,
        (None, None) => Duration::from_secs(10),
    };
    if duration.is_zero() || duration > MAX_DURATION || args.warmup > MAX_DURATION {
        return Err(usage(format!(
            "--duration must be above 0 and --duration/--warmup at most {} s",
            MAX_DURATION.as_secs()
        )));
    }
    if args.timeout.is_zero() {
        return Err(usage("--timeout must be above 0".to_owned()));
    }
    let params = match &args.params {
        Some(text) => {
            Some(serde_json::from_str(text).map_err(|e| usage(format!("--params: {e}")))?)
        }
        None if args.method == "tools/call" => {
            let arguments: serde_json::Value = serde_json::from_str(&args.arguments)
                .map_err(|e| usage(format!("--arguments: {e}")))?;
            Some(serde_json::json!({ "name": args.tool, "arguments": arguments }))
        }
        None => None,
    };
    let template = Template::new(&args.method, params, args.progress, args.era).map_err(usage)?;
    Ok(Plan {
        target,
        era: args.era,
        connections,
        concurrency: args.concurrency,
        duration,
        requests: args.requests,
        warmup: args.warmup,
        timeout: args.timeout,
        template,
        allow_remote: args.allow_remote,
    })
}

async fn connect(plan: &Plan) -> Result<Vec<Conn>, SetupError> {
    let addr = match &plan.target {
        Target::Http(endpoint) | Target::Ws(endpoint) => {
            Some(endpoint.resolve(plan.allow_remote).await?)
        }
        Target::Stdio { .. } => None,
    };
    let opens = (0..plan.connections).map(|_| async {
        match (&plan.target, addr) {
            (Target::Http(endpoint), Some(addr)) => {
                HttpConn::open(endpoint, addr, plan.era, &plan.template)
                    .await
                    .map(|c| Conn::Http(tokio::sync::Mutex::new(c)))
            }
            (Target::Ws(endpoint), Some(addr)) => StreamConn::websocket(endpoint, addr, plan.era)
                .await
                .map(Conn::Stream),
            (Target::Stdio { program, args }, _) => StreamConn::spawn(program, args, plan.era)
                .await
                .map(Conn::Stream),
            (Target::Http(_) | Target::Ws(_), None) => Err("no address".to_owned()),
        }
    });
    let results = futures::future::join_all(opens).await;
    let mut conns = Vec::with_capacity(results.len());
    let mut first_error = None;
    for res in results {
        match res {
            Ok(conn) => conns.push(conn),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        for conn in conns {
            conn.close().await;
        }
        return Err(SetupError::Connect(e));
    }
    Ok(conns)
}

/// What the workers of one phase share.
#[derive(Debug)]
struct Shared {
    conns: Vec<Conn>,
    template: Template,
    timeout: Duration,
    /// Ids are unique over the whole run (warm-up included), so a late
    /// answer can never complete another request.
    next_id: AtomicU64,
    /// Set on Ctrl-C.
    interrupted: AtomicBool,
}

/// One phase's limits and progress.
#[derive(Debug)]
struct Phase {
    deadline: Instant,
    limit: u64,
    issued: AtomicU64,
    done: AtomicU64,
}

async fn execute(plan: &Plan, quiet: bool) -> Result<Report, SetupError> {
    let started = Instant::now();
    let conns = connect(plan).await?;
    let connect_time = started.elapsed();
    let shared = Arc::new(Shared {
        conns,
        template: plan.template.clone(),
        timeout: plan.timeout,
        next_id: AtomicU64::new(1),
        interrupted: AtomicBool::new(false),
    });
    let interrupt = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.interrupted.store(true, Ordering::Relaxed);
            }
        })
    };
    let warmup = if plan.warmup.is_zero() {
        Stats::new()
    } else {
        let phase = Arc::new(Phase {
            deadline: Instant::now() + plan.warmup,
            limit: u64::MAX,
            issued: AtomicU64::new(0),
            done: AtomicU64::new(0),
        });
        let bar = report::bar(quiet, None, plan.warmup, "warm-up");
        let stats = run_phase(&shared, &phase, plan.concurrency, bar.as_ref()).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        stats
    };
    let phase = Arc::new(Phase {
        deadline: Instant::now() + plan.duration,
        limit: plan.requests.unwrap_or(u64::MAX),
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    let bar = report::bar(quiet, plan.requests, plan.duration, "measuring");
    let measured_from = Instant::now();
    let stats = run_phase(&shared, &phase, plan.concurrency, bar.as_ref()).await;
    let elapsed = measured_from.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    interrupt.abort();
    let stopped_by = if shared.interrupted.load(Ordering::Relaxed) {
        "interrupt"
    } else if phase.issued.load(Ordering::Relaxed) >= phase.limit {
        "requests"
    } else {
        "duration"
    };
    if let Ok(shared) = Arc::try_unwrap(shared) {
        for conn in shared.conns {
            conn.close().await;
        }
    }
    Ok(Report {
        target: plan.target.describe(),
        transport: plan.target.transport(),
        era: plan.era,
        method: plan.template.method.clone(),
        name: plan.template.name.clone(),
        connections: plan.connections,
        concurrency: plan.concurrency,
        connect_time,
        warmup_requests: warmup.completed(),
        elapsed,
        stopped_by,
        stats,
        cpu: report::own_cpu(),
    })
}

/// Runs `concurrency` workers until the phase ends; merges their stats.
async fn run_phase(
    shared: &Arc<Shared>,
    phase: &Arc<Phase>,
    concurrency: usize,
    bar: Option<&indicatif::ProgressBar>,
) -> Stats {
    let workers: Vec<_> = (0..concurrency)
        .map(|idx| {
            let (shared, phase) = (shared.clone(), phase.clone());
            tokio::spawn(async move { worker(&shared, &phase, idx).await })
        })
        .collect();
    let ticker = bar.map(|bar| {
        let (bar, phase) = (bar.clone(), phase.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let by_count = phase.limit != u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                report::tick(&bar, &phase.done, start, by_count);
            }
        })
    });
    let mut stats = Stats::new();
    for worker in workers {
        match worker.await {
            Ok(worker_stats) => stats.merge(&worker_stats),
            Err(e) => stats.note_error(&format!("a worker failed: {e}")),
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    stats
}

/// Sends requests one after another on its connection until the phase ends.
async fn worker(shared: &Shared, phase: &Phase, idx: usize) -> Stats {
    let conn = &shared.conns[idx % shared.conns.len()];
    let mut stats = Stats::new();
    loop {
        if Instant::now() >= phase.deadline || shared.interrupted.load(Ordering::Relaxed) {
            break;
        }
        if phase.issued.fetch_add(1, Ordering::Relaxed) >= phase.limit {
            break;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let body = shared.template.render(id);
        let start = Instant::now();
        let res = tokio::time::timeout(shared.timeout, conn.call(id, body)).await;
        let latency = start.elapsed();
        match res {
            Ok(Ok(reply)) => stats.record(&reply, latency),
            Ok(Err(error)) => stats.record_failure(&error),
            Err(_) => stats.record_timeout(shared.timeout),
        }
        phase.done.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// A new latency histogram: 1 ns to 10 min, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_DURATION.as_nanos() as u64, 3)
        .expect("constant, valid histogram bounds")
}

/// Parses `10s`, `500ms`, `2m`, `1.5s`, `100us` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 10s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown duration unit {other:?} (use ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3 parsecs").is_err());
    }
}
