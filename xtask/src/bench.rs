//! `cargo xtask bench`: the gateway measured against its own backend, in one
//! run, on this machine.
//!
//! Steps (the whole run stays under about three minutes with the defaults):
//! 1. `cargo build --release --workspace`.
//! 2. Start `only1mcp-echo-server --http 127.0.0.1:0` (the Streamable HTTP
//!    backend) and write configs: one stdio echo backend, one HTTP (`url:`)
//!    echo backend, ten stdio echo backends.
//! 3. Start-up: spawn the gateway on stdio and time until its first
//!    `tools/call` is answered (the median of seven starts); the echo server
//!    alone the same way.
//! 4. Load, every path at concurrency 1 and 32 with `only1mcp benchmark`:
//!    the backend directly (stdio, HTTP), then through the gateway
//!    (HTTP→stdio, modern HTTP→stdio, stdio→stdio, and HTTP→HTTP if the
//!    gateway accepts and serves a `url:` backend, and WebSocket→stdio);
//!    HTTP→stdio and HTTP→HTTP also with `ONLY1MCP_WORKERS=1` (one runtime
//!    thread).
//! 5. Memory: VmRSS of the idle gateway with ten backends, and of the
//!    HTTP→stdio gateway before and after its load runs.
//! 6. `target/bench-report.md`: machine, commands, the table, and the
//!    ratios (gateway/direct throughput, added p50/p99 latency).
//!
//! Options: `--duration D` (per run, default 5s), `--warmup D` (default 1s),
//! `--no-build`, `--soak D` (adds a long HTTP→stdio run at concurrency 32,
//! sampling the gateway's RSS every 10 s; off by default).
//!
//! Every process it starts is a child it stops itself (SIGTERM, then kill),
//! and every request goes to 127.0.0.1.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// What one `cargo xtask bench` run is asked to do.
#[derive(Debug)]
struct Options {
    duration: String,
    warmup: String,
    build: bool,
    soak: Option<String>,
    /// Measure only hot reload: this many config changes under load.
    reload: Option<u32>,
    /// Extra interleaved direct/gateway pairs at c=32 for the headline
    /// ratios (HTTP→HTTP, stdio→stdio), to see how much one pair varies.
    rounds: u32,
}

fn parse_options(args: &[OsString]) -> Result<Options> {
    let mut options = Options {
        duration: "5s".to_owned(),
        warmup: "1s".to_owned(),
        build: true,
        soak: None,
        reload: None,
        rounds: 3,
    };
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--duration" => options.duration = value("--duration")?,
            "--warmup" => options.warmup = value("--warmup")?,
            "--soak" => options.soak = Some(value("--soak")?),
            "--no-build" => options.build = false,
            "--rounds" => {
                options.rounds = value("--rounds")?
                    .parse()
                    .context("--rounds needs a number (0: none)")?;
            }
            "--reload" => {
                options.reload = Some(
                    value("--reload")?
                        .parse()
                        .context("--reload needs a number of changes")?,
                );
            }
            other => bail!(
                "unknown option {other:?} (cargo xtask bench [--duration 5s] [--warmup 1s] [--no-build] [--soak 5m] [--rounds 3] [--reload 100])"
            ),
        }
    }
    Ok(options)
}

/// The binaries under test.
#[derive(Debug)]
struct Bins {
    gateway: PathBuf,
    echo: PathBuf,
    /// The backend with a large, changing catalog.
    churn: PathBuf,
}

/// `cargo xtask bench [OPTIONS]`.
pub(crate) fn run(workspace: &Path, args: &[OsString]) -> Result<()> {
    let options = parse_options(args)?;
    let started = Instant::now();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    if options.build {
        let mut cmd = super::cargo_in(workspace);
        cmd.args(["build", "--release", "--workspace"]);
        super::run_step("cargo build --release", &mut cmd)?;
    }
    let release = target_dir.join("release");
    let bins = Bins {
        gateway: release.join("only1mcp"),
        echo: release.join("only1mcp-echo-server"),
        churn: release.join("only1mcp-churn-server"),
    };
    for bin in [&bins.gateway, &bins.echo, &bins.churn] {
        if !bin.exists() {
            bail!(
                "{} is missing: build with `cargo build --release --workspace`",
                bin.display()
            );
        }
    }
    let dir = target_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(changes) = options.reload {
        return reload_run(&bins, &dir, changes);
    }

    let mut backend = Proc::start(
        "echo backend (HTTP)",
        Command::new(&bins.echo).args(["--http", "127.0.0.1:0"]),
        &dir.join("echo-http.log"),
        true,
    )?;
    let echo_url = backend.first_stdout_line(Duration::from_secs(10))?;
    eprintln!("xtask: echo backend at {echo_url}");

    let quote = |p: &Path| format!("{:?}", p.display().to_string());
    let quiet_logs = "logging:\n  level: warn\n";
    let stdio_config = dir.join("stdio.yaml");
    write(
        &stdio_config,
        &format!(
            "{quiet_logs}servers:\n  echo:\n    command: {}\n",
            quote(&bins.echo)
        ),
    )?;
    let http_config = dir.join("http.yaml");
    write(
        &http_config,
        &format!("{quiet_logs}servers:\n  echo:\n    url: {echo_url:?}\n"),
    )?;
    let ten_config = dir.join("ten.yaml");
    let mut ten = quiet_logs.to_owned();
    ten.push_str("servers:\n");
    for idx in 0..10 {
        let _ = writeln!(ten, "  echo{idx}:\n    command: {}", quote(&bins.echo));
    }
    write(&ten_config, &ten)?;

    let mut report = Report::new(&options);
    report.load_before = loadavg();

    // Start-up to the first served request.
    let echo_start = median_first_call_time(|| Command::new(&bins.echo), "echo")?;
    let gateway_start = median_first_call_time(
        || {
            let mut cmd = Command::new(&bins.gateway);
            cmd.args(["start", "--stdio", "--config"])
                .arg(&stdio_config);
            cmd
        },
        "echo__echo",
    )?;
    let gateway_ten_start = median_first_call_time(
        || {
            let mut cmd = Command::new(&bins.gateway);
            cmd.args(["start", "--stdio", "--config"]).arg(&ten_config);
            cmd
        },
        "echo0__echo",
    )?;
    report.startup = vec![
        ("echo server alone (stdio)".to_owned(), echo_start),
        ("gateway + 1 stdio backend".to_owned(), gateway_start),
        ("gateway + 10 stdio backends".to_owned(), gateway_ten_start),
    ];

    // Idle memory with ten backends.
    {
        let mut gateway = Gateway::start(
            &bins.gateway,
            &ten_config,
            &dir.join("gateway-ten.log"),
            &[],
        )?;
        std::thread::sleep(Duration::from_secs(1));
        report.idle_rss_ten = rss_kib(gateway.proc.id());
        gateway.proc.stop();
    }

    let load = Load {
        bin: &bins.gateway,
        options: &options,
    };
    // The rows measured more than once (the main table, then the rounds).
    let direct_stdio = |concurrency| {
        load.run(
            "direct",
            "stdio",
            concurrency,
            &["--stdio", "--tool", "echo", "--"],
            &[bins.echo.as_os_str()],
        )
    };
    let direct_http = |concurrency| {
        load.run(
            "direct",
            "HTTP",
            concurrency,
            &["--url", echo_url.as_str(), "--tool", "echo"],
            &[],
        )
    };
    // One gateway process per run, spawned by the load generator.
    let stdio_gateway = |concurrency| {
        load.run(
            "gateway",
            "stdio→stdio",
            concurrency,
            &["--stdio", "--"],
            &[
                bins.gateway.as_os_str(),
                "start".as_ref(),
                "--stdio".as_ref(),
                "--config".as_ref(),
                stdio_config.as_os_str(),
            ],
        )
    };
    // The backend alone.
    for concurrency in [1, 32] {
        report.push(direct_stdio(concurrency)?);
        report.push(direct_http(concurrency)?);
    }

    // Through the gateway, stdio backend, HTTP face.
    let mut gateway = Gateway::start(
        &bins.gateway,
        &stdio_config,
        &dir.join("gateway-stdio.log"),
        &[],
    )?;
    let rss_before = rss_kib(gateway.proc.id());
    for concurrency in [1, 32] {
        let pid = gateway.proc.id();
        report.push(load.run_measuring(
            pid,
            "gateway",
            "HTTP→stdio",
            concurrency,
            &["--url", &gateway.url],
        )?);
        report.push(load.run_measuring(
            pid,
            "gateway",
            "HTTP (modern)→stdio",
            concurrency,
            &["--url", &gateway.url, "--era", "modern"],
        )?);
    }
    // WebSocket face, same gateway: one connection multiplexing by id.
    let ws_url = gateway
        .url
        .replacen("http://", "ws://", 1)
        .replace("/mcp", "/ws");
    for concurrency in [1, 32] {
        report.push(load.run_measuring(
            gateway.proc.id(),
            "gateway",
            "WebSocket→stdio",
            concurrency,
            &["--ws", &ws_url],
        )?);
    }
    report.rss_load = Some((rss_before, rss_kib(gateway.proc.id())));
    if let Some(soak) = &options.soak {
        report.soak = soak_run(&load, &gateway, soak)?;
    }
    gateway.proc.stop();

    // The same with two runtime threads (`--workers 2`; the default is one,
    // ADR 0008), to keep measuring what the second thread costs and buys.
    let mut gateway = Gateway::start(
        &bins.gateway,
        &stdio_config,
        &dir.join("gateway-stdio-w2.log"),
        &[("ONLY1MCP_WORKERS", "2")],
    )?;
    for concurrency in [1, 32] {
        report.push(load.run_measuring(
            gateway.proc.id(),
            "gateway",
            "HTTP→stdio (--workers 2)",
            concurrency,
            &["--url", &gateway.url],
        )?);
    }
    gateway.proc.stop();

    // Calls to echo beside a backend of 5000 tools, quiet and then changing
    // its list every 100 ms: what re-reading and rebuilding the catalog
    // costs everyone else (ADR 0008: that work is off the runtime thread).
    for (every, path) in [("0", "quiet"), ("100", "its list changes every 100 ms")] {
        let config = dir.join(format!("churn-{every}.yaml"));
        write(
            &config,
            &format!(
                "{quiet_logs}servers:\n  echo:\n    command: {}\n  churn:\n    command: {}\n    \
                 args: [\"--tools\", \"5000\", \"--every\", \"{every}\"]\n",
                quote(&bins.echo),
                quote(&bins.churn)
            ),
        )?;
        let mut gateway = Gateway::start(
            &bins.gateway,
            &config,
            &dir.join(format!("gateway-churn-{every}.log")),
            &[],
        )?;
        let row = load.run("gateway", path, 1, &["--url", &gateway.url], &[])?;
        report.churn.push(row);
        gateway.proc.stop();
    }

    // Through the gateway on stdio.
    for concurrency in [1, 32] {
        report.push(stdio_gateway(concurrency)?);
    }
    for _ in 0..options.rounds {
        let direct = direct_stdio(32)?;
        let through = stdio_gateway(32)?;
        report.rounds.push(Round {
            path: "stdio→stdio",
            direct_rps: direct.rps,
            through_rps: through.rps,
            cpu: None,
        });
    }

    // HTTP→HTTP, if the gateway takes `url:` backends yet.
    for (workers, path) in [(None, "HTTP→HTTP"), (Some("2"), "HTTP→HTTP (--workers 2)")] {
        match http_backend_works(&bins.gateway, &http_config, &dir, workers) {
            Ok(mut gateway) => {
                for concurrency in [1, 32] {
                    report.push(load.run_measuring(
                        gateway.proc.id(),
                        "gateway",
                        path,
                        concurrency,
                        &["--url", &gateway.url],
                    )?);
                }
                if workers.is_none() {
                    for _ in 0..options.rounds {
                        let (direct, direct_cpu) =
                            cpu_per_request(&[backend.id()], || direct_http(32))?;
                        let (through, through_cpu) =
                            cpu_per_request(&[backend.id(), gateway.proc.id()], || {
                                load.run("gateway", path, 32, &["--url", &gateway.url], &[])
                            })?;
                        let cpu = match (direct.load_cpu_us, direct_cpu[0], through.load_cpu_us) {
                            (Some(g), Some(e), Some(g2)) => through_cpu[0]
                                .zip(through_cpu[1])
                                .map(|(e2, gw)| ([g, e], [g2, e2, gw])),
                            _ => None,
                        };
                        report.rounds.push(Round {
                            path: "HTTP→HTTP",
                            direct_rps: direct.rps,
                            through_rps: through.rps,
                            cpu,
                        });
                    }
                }
                gateway.proc.stop();
            }
            Err(why) => {
                eprintln!("xtask: {path} skipped: {why:#}");
                report.skipped.push(format!("{path}: {why:#}"));
            }
        }
    }
    backend.stop();

    report.total = started.elapsed();
    report.load_after = loadavg();
    let text = report.render();
    let path = target_dir.join("bench-report.md");
    write(&path, &text)?;
    println!("{text}");
    eprintln!(
        "xtask: wrote {} ({:.0} s)",
        path.display(),
        report.total.as_secs_f64()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A child process this run started, stopped on drop.
struct Proc {
    name: &'static str,
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    log: PathBuf,
}

impl Proc {
    fn start(
        name: &'static str,
        cmd: &mut Command,
        log: &Path,
        piped_stdout: bool,
    ) -> Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(if piped_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        let stdout = child.stdout.take().map(BufReader::new);
        Ok(Self {
            name,
            child,
            stdout,
            log: log.to_owned(),
        })
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// The first line the process prints on stdout (the echo server's URL).
    fn first_stdout_line(&mut self, within: Duration) -> Result<String> {
        let mut stdout = self.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(within)
            .with_context(|| format!("the {} printed nothing within {within:?}", self.name))?;
        let line = line.trim().to_owned();
        if line.is_empty() {
            bail!("the {} exited: {}", self.name, self.log_text());
        }
        Ok(line)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway serving HTTP on a free loopback port.
struct Gateway {
    proc: Proc,
    url: String,
}

impl Gateway {
    fn start(bin: &Path, config: &Path, log: &Path, env: &[(&str, &str)]) -> Result<Self> {
        let proc = Proc::start(
            "gateway",
            Command::new(bin)
                .args(["start", "--listen", "127.0.0.1:0", "--config"])
                .arg(config)
                .envs(env.iter().copied())
                // The bound address is logged at info.
                .env("RUST_LOG", "warn,only1mcp_proxy::http=info"),
            log,
            false,
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = proc.log_text();
            if let Some(idx) = text.find("Listening url=") {
                let url = text[idx + "Listening url=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Self { proc, url });
            }
            if Instant::now() > deadline {
                bail!("the gateway never listened:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts a gateway in front of the HTTP echo backend and checks that a call
/// goes through (the gateway may not support `url:` backends yet).
fn http_backend_works(
    bin: &Path,
    config: &Path,
    dir: &Path,
    workers: Option<&str>,
) -> Result<Gateway> {
    let validate = Command::new(bin)
        .arg("validate")
        .arg(config)
        .output()
        .context("running only1mcp validate")?;
    if !validate.status.success() {
        bail!(
            "`only1mcp validate` refuses a url: backend: {}{}",
            String::from_utf8_lossy(&validate.stdout).trim(),
            String::from_utf8_lossy(&validate.stderr).trim()
        );
    }
    let env: &[(&str, &str)] = match workers {
        Some(n) => &[("ONLY1MCP_WORKERS", n)],
        None => &[],
    };
    let log = format!(
        "gateway-http{}.log",
        workers.map_or(String::new(), |n| format!("-w{n}"))
    );
    let gateway = Gateway::start(bin, config, &dir.join(log), env)?;
    let out = Command::new(bin)
        .args([
            "benchmark",
            "--json",
            "-q",
            "--requests",
            "1",
            "--warmup",
            "0s",
            "--timeout",
            "5s",
        ])
        .args(["--url", &gateway.url])
        .output()
        .context("running only1mcp benchmark")?;
    let json = String::from_utf8_lossy(&out.stdout);
    if number(&json, "ok") != Some(1.0) {
        bail!(
            "a tools/call through a url: backend failed: {}",
            text_field(&json, "first_error").unwrap_or_else(|| String::from_utf8_lossy(
                &out.stderr
            )
            .trim()
            .to_owned())
        );
    }
    Ok(gateway)
}

/// One interleaved pair at c=32: the backend directly, then through the
/// gateway.
#[derive(Debug, Clone)]
struct Round {
    path: &'static str,
    direct_rps: f64,
    through_rps: f64,
    /// CPU µs per request of each process, where xtask knows their pids:
    /// directly (generator, backend), then through the gateway (generator,
    /// backend, gateway).
    cpu: Option<([f64; 2], [f64; 3])>,
}

/// Runs `only1mcp benchmark` with the run's duration and warm-up.
struct Load<'a> {
    bin: &'a Path,
    options: &'a Options,
}

/// One measured row.
#[derive(Debug, Clone)]
struct Row {
    via: &'static str,
    path: &'static str,
    concurrency: u32,
    requests: f64,
    warmup_requests: f64,
    failures: f64,
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    first_error: Option<String>,
    /// CPU time of the gateway process per request (warm-up included), µs.
    gateway_cpu_us: Option<f64>,
    /// The load generator's own CPU time per request (warm-up included),
    /// µs, as it reports it.
    load_cpu_us: Option<f64>,
}

impl Row {
    /// Requests answered, warm-up included.
    fn handled(&self) -> f64 {
        self.requests + self.warmup_requests
    }
}

impl Load<'_> {
    fn run(
        &self,
        via: &'static str,
        path: &'static str,
        concurrency: u32,
        args: &[&str],
        command: &[&std::ffi::OsStr],
    ) -> Result<Row> {
        let c = concurrency.to_string();
        let mut cmd = Command::new(self.bin);
        cmd.args(["benchmark", "--json", "-q", "-c", &c])
            .args([
                "--duration",
                &self.options.duration,
                "--warmup",
                &self.options.warmup,
            ])
            .args(args)
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        eprintln!("xtask: {via} {path}, concurrency {concurrency}");
        let out = cmd
            .output()
            .with_context(|| format!("running only1mcp benchmark ({path})"))?;
        let json = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| number(&json, key);
        let Some(requests) = field("requests") else {
            bail!(
                "only1mcp benchmark ({via} {path}) printed no report: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let failures = [
            "tool_errors",
            "rpc_errors",
            "http_errors",
            "transport_errors",
            "timeouts",
        ]
        .iter()
        .filter_map(|key| field(key))
        .sum();
        Ok(Row {
            via,
            path,
            concurrency,
            requests,
            warmup_requests: field("warmup_requests").unwrap_or_default(),
            failures,
            rps: field("throughput_rps").unwrap_or_default(),
            p50: field("p50").unwrap_or_default(),
            p90: field("p90").unwrap_or_default(),
            p99: field("p99").unwrap_or_default(),
            p999: field("p99_9").unwrap_or_default(),
            max: field("max").unwrap_or_default(),
            first_error: text_field(&json, "first_error"),
            gateway_cpu_us: None,
            load_cpu_us: field("cpu_s").and_then(|cpu| {
                let handled = requests + field("warmup_requests").unwrap_or_default();
                (handled > 0.0).then(|| cpu * 1e6 / handled)
            }),
        })
    }

    /// [`Load::run`], also measuring the CPU time the gateway process
    /// `pid` spends per request (from `/proc`, warm-up requests included).
    fn run_measuring(
        &self,
        pid: u32,
        via: &'static str,
        path: &'static str,
        concurrency: u32,
        args: &[&str],
    ) -> Result<Row> {
        let (mut row, cpu) =
            cpu_per_request(&[pid], || self.run(via, path, concurrency, args, &[]))?;
        row.gateway_cpu_us = cpu[0];
        Ok(row)
    }
}

/// Runs `run` and returns its row with the CPU time each process of `pids`
/// spent per request meanwhile (from `/proc`, warm-up requests included).
fn cpu_per_request(
    pids: &[u32],
    run: impl FnOnce() -> Result<Row>,
) -> Result<(Row, Vec<Option<f64>>)> {
    let before: Vec<Option<u64>> = pids.iter().map(|&pid| cpu_ticks(pid)).collect();
    let row = run()?;
    let cpu = pids
        .iter()
        .zip(before)
        .map(|(&pid, before)| {
            let spent = cpu_ticks(pid)?.checked_sub(before?)?;
            // Kernel clock ticks are 10 ms (USER_HZ 100 on Linux).
            #[allow(clippy::cast_precision_loss, reason = "tick counts are small")]
            let us = spent as f64 * 10_000.0;
            (row.handled() > 0.0).then(|| us / row.handled())
        })
        .collect();
    Ok((row, cpu))
}

/// User plus system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), 1-based from
    // the state: utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A long HTTP→stdio run at concurrency 32, sampling the gateway's RSS.
fn soak_run(load: &Load<'_>, gateway: &Gateway, duration: &str) -> Result<Vec<(u64, Option<u64>)>> {
    let mut child = Command::new(load.bin)
        .args([
            "benchmark",
            "--json",
            "-q",
            "-c",
            "32",
            "--warmup",
            "0s",
            "--duration",
            duration,
        ])
        .args(["--url", &gateway.url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the soak run")?;
    let started = Instant::now();
    let mut samples = vec![(0, rss_kib(gateway.proc.id()))];
    loop {
        std::thread::sleep(Duration::from_secs(10));
        samples.push((started.elapsed().as_secs(), rss_kib(gateway.proc.id())));
        if child.try_wait()?.is_some() {
            return Ok(samples);
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(samples);
        }
    }
}

/// How many start-ups are timed for each start-up row (the median is
/// reported: a single start can be 5x slower when the page cache is cold or
/// another process holds the cores).
const STARTUP_RUNS: usize = 7;

/// The median of [`STARTUP_RUNS`] [`first_call_time`]s of a fresh `command()`.
fn median_first_call_time(command: impl Fn() -> Command, tool: &str) -> Result<Duration> {
    let mut times = (0..STARTUP_RUNS)
        .map(|_| first_call_time(&mut command(), tool))
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(times[STARTUP_RUNS / 2])
}

/// Spawns a server on stdio, sends `initialize` then a `tools/call` of
/// `tool` at once, and times until the call is answered.
fn first_call_time(cmd: &mut Command, tool: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning for the start-up time")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let lines = format!(
        "{}\n{}\n{}\n",
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-bench","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        format_args!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"x"}}}}}}"#
        ),
    );
    stdin.write_all(lines.as_bytes())?;
    stdin.flush()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(r#""id":2"#) {
                let _ = tx.send((Instant::now(), line));
                return;
            }
        }
    });
    let res = rx.recv_timeout(Duration::from_secs(30));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let (at, line) = res.context("no answer to the first tools/call within 30 s")?;
    if !line.contains("\"result\"") {
        bail!("the first tools/call failed: {line}");
    }
    Ok(at - started)
}

/// VmRSS of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The number after `"key":` in the benchmark's JSON (its keys are unique).
fn number(json: &str, key: &str) -> Option<f64> {
    let needle = format!("\"{key}\":");
    let rest = json[json.find(&needle)? + needle.len()..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string after `"key":`, if it is a string (escapes kept as written).
fn text_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":");
    let rest = json[json.find(&needle)? + needle.len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut escaped = false;
    for c in rest.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => return Some(out),
            _ => {
                escaped = false;
                out.push(c);
            }
        }
    }
    None
}

/// Everything measured, and the markdown it becomes.
#[derive(Debug)]
struct Report {
    duration: String,
    warmup: String,
    rows: Vec<Row>,
    startup: Vec<(String, Duration)>,
    idle_rss_ten: Option<u64>,
    rss_load: Option<(Option<u64>, Option<u64>)>,
    soak: Vec<(u64, Option<u64>)>,
    /// Interleaved pairs at c=32.
    rounds: Vec<Round>,
    /// Calls beside the churning backend: quiet, then changing.
    churn: Vec<Row>,
    skipped: Vec<String>,
    total: Duration,
    /// `/proc/loadavg` before and after: other work on the machine skews
    /// every number, so the report says how busy it was.
    load_before: String,
    load_after: String,
}

impl Report {
    fn new(options: &Options) -> Self {
        Self {
            duration: options.duration.clone(),
            warmup: options.warmup.clone(),
            rows: Vec::new(),
            startup: Vec::new(),
            idle_rss_ten: None,
            rss_load: None,
            soak: Vec::new(),
            rounds: Vec::new(),
            churn: Vec::new(),
            skipped: Vec::new(),
            total: Duration::ZERO,
            load_before: String::new(),
            load_after: String::new(),
        }
    }

    fn push(&mut self, row: Row) {
        if row.failures > 0.0 {
            eprintln!(
                "xtask: {} {} c={}: {} failed requests ({})",
                row.via,
                row.path,
                row.concurrency,
                row.failures,
                row.first_error.as_deref().unwrap_or("-")
            );
        }
        self.rows.push(row);
    }

    fn find(&self, via: &str, path: &str, concurrency: u32) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.via == via && r.path == path && r.concurrency == concurrency)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Only1MCP bench report\n");
        let _ = writeln!(out, "{}\n", machine());
        let _ = writeln!(
            out,
            "Load average (1, 5, 15 min) at the start: {}; at the end: {}. Anything above 0 \
             means other work shared the cores during the run.\n",
            self.load_before, self.load_after
        );
        let _ = writeln!(
            out,
            "Each row: `only1mcp benchmark` for {} after a {} warm-up, `tools/call` of the echo \
             tool with `{{\"text\":\"x\"}}`, legacy era unless marked. Latencies in µs. HTTP runs \
             use one connection per in-flight request; stdio runs one process with all requests \
             multiplexed. Load generator, gateway and backend share this machine's cores. The \
             last column is the gateway process's CPU time (user + system, from /proc) per \
             request, warm-up included, where xtask started the gateway: less noisy than the \
             throughput, which depends on everything else running.\n",
            self.duration, self.warmup
        );
        let _ = writeln!(
            out,
            "| via | path | c | requests | errors | req/s | p50 | p90 | p99 | p99.9 | max | gateway CPU µs/req |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.rows {
            let cpu = r
                .gateway_cpu_us
                .map_or_else(|| "—".to_owned(), |us| format!("{us:.1}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {cpu} |",
                r.via,
                r.path,
                r.concurrency,
                r.requests,
                r.failures,
                r.rps,
                r.p50,
                r.p90,
                r.p99,
                r.p999,
                r.max
            );
        }
        let _ = writeln!(
            out,
            "\n## Gateway against the backend alone\n\nThe baseline is the echo backend reached \
             directly over the gateway's backend transport (stdio for `*→stdio`, HTTP for \
             `*→HTTP`), in the same run.\n"
        );
        let _ = writeln!(
            out,
            "| path | c | baseline | throughput ratio | added p50 (µs) | added p99 (µs) |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
        for r in self.rows.iter().filter(|r| r.via == "gateway") {
            let baseline = if r.path.contains("→HTTP") {
                "HTTP"
            } else {
                "stdio"
            };
            let Some(direct) = self.find("direct", baseline, r.concurrency) else {
                continue;
            };
            let ratio = if direct.rps > 0.0 {
                r.rps / direct.rps
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "| {} | {} | direct {} | {:.0} % | {:+.0} | {:+.0} |",
                r.path,
                r.concurrency,
                baseline,
                ratio * 100.0,
                r.p50 - direct.p50,
                r.p99 - direct.p99
            );
        }
        self.render_rounds(&mut out);
        self.render_churn(&mut out);
        let _ = writeln!(out, "\n## Start-up to the first served request\n");
        let _ = writeln!(
            out,
            "Spawn, `initialize`, then `tools/call`; time until the call is answered; the median \
             of {STARTUP_RUNS} starts.\n"
        );
        let _ = writeln!(out, "| what | ms |\n|---|---:|");
        for (what, took) in &self.startup {
            let _ = writeln!(out, "| {what} | {:.1} |", took.as_secs_f64() * 1_000.0);
        }
        let _ = writeln!(out, "\n## Memory (VmRSS)\n");
        let mib = |kib: Option<u64>| {
            kib.map_or_else(
                || "?".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0),
            )
        };
        let _ = writeln!(
            out,
            "- idle gateway, 10 stdio backends configured: {}",
            mib(self.idle_rss_ten)
        );
        if let Some((before, after)) = self.rss_load {
            let _ = writeln!(
                out,
                "- HTTP→stdio gateway before its load runs: {}, after: {}",
                mib(before),
                mib(after)
            );
        }
        if !self.soak.is_empty() {
            let _ = writeln!(
                out,
                "\n### Soak (HTTP→stdio, c=32)\n\n| s | RSS |\n|---:|---:|"
            );
            for (secs, kib) in &self.soak {
                let _ = writeln!(out, "| {secs} | {} |", mib(*kib));
            }
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "\nSkipped: {skipped}");
        }
        let _ = writeln!(
            out,
            "\nWhole run: {:.0} s (`cargo xtask bench`).",
            self.total.as_secs_f64()
        );
        out
    }
}

impl Report {
    /// Calls beside the churning backend.
    fn render_churn(&self, out: &mut String) {
        if self.churn.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Beside a large catalog that keeps changing\n\nHTTP→stdio calls to echo at c=1, \
             the gateway also in front of `only1mcp-churn-server --tools 5000`: quiet, then \
             announcing `tools/list_changed` every 100 ms (the gateway re-reads 5000 tools, \
             about 1.5 MB, and rebuilds its catalog ten times a second). The tail shows what that \
             work costs other requests. The p50 is no comparison: a machine kept busy wakes \
             faster.\n"
        );
        let _ = writeln!(
            out,
            "| the 5000-tool backend | requests | errors | req/s | p50 | p99 | p99.9 | max |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.churn {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                r.path, r.requests, r.failures, r.rps, r.p50, r.p99, r.p999, r.max
            );
        }
    }

    /// The interleaved pairs: each ratio, and their median.
    fn render_rounds(&self, out: &mut String) {
        if self.rounds.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Interleaved rounds (c=32)\n\nThe headline ratios again, each round the backend \
             directly and then through the gateway, back to back: one pair moves with whatever \
             else the machine is doing, the median of several less so.\n"
        );
        let _ = writeln!(
            out,
            "| path | round | direct req/s | gateway req/s | ratio |\n|---|---:|---:|---:|---:|"
        );
        let mut paths: Vec<&str> = self.rounds.iter().map(|r| r.path).collect();
        paths.dedup();
        for path in paths {
            let mut ratios = Vec::new();
            for (round, r) in self.rounds.iter().filter(|r| r.path == path).enumerate() {
                let ratio = if r.direct_rps > 0.0 {
                    r.through_rps / r.direct_rps
                } else {
                    0.0
                };
                ratios.push(ratio);
                let _ = writeln!(
                    out,
                    "| {path} | {} | {:.0} | {:.0} | {:.0} % |",
                    round + 1,
                    r.direct_rps,
                    r.through_rps,
                    ratio * 100.0
                );
            }
            ratios.sort_by(f64::total_cmp);
            if let Some(median) = ratios.get(ratios.len() / 2) {
                let _ = writeln!(
                    out,
                    "| {path} | median of {} | | | **{:.0} %** |",
                    ratios.len(),
                    median * 100.0
                );
            }
        }
        self.render_round_cpu(out);
    }

    /// Where the CPU of each round went, for the paths whose processes
    /// xtask started itself.
    fn render_round_cpu(&self, out: &mut String) {
        let rounds: Vec<(&Round, &([f64; 2], [f64; 3]))> = self
            .rounds
            .iter()
            .filter_map(|r| Some((r, r.cpu.as_ref()?)))
            .collect();
        if rounds.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nCPU per request of each process in those rounds (µs, from /proc and the load \
             generator's own report, warm-up included). With the three processes on the same \
             cores, the throughput ratio is the CPU ratio, (generator + backend) directly over \
             (generator + backend + gateway) through the gateway, times how busy the machine \
             was through the gateway against directly; the CPU ratio moves much less with other \
             work than req/s do.\n"
        );
        let _ = writeln!(
            out,
            "| path | round | direct: generator + backend | through: generator + backend + \
             gateway | CPU ratio |\n|---|---:|---:|---:|---:|"
        );
        for (idx, (r, ([g, e], [g2, e2, gw]))) in rounds.into_iter().enumerate() {
            let direct = g + e;
            let through = g2 + e2 + gw;
            let ratio = if through > 0.0 { direct / through } else { 0.0 };
            let _ = writeln!(
                out,
                "| {} | {} | {g:.1} + {e:.1} = {direct:.1} | {g2:.1} + {e2:.1} + {gw:.1} = \
                 {through:.1} | {:.0} % |",
                r.path,
                idx + 1,
                ratio * 100.0
            );
        }
    }
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine, for the report's header.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "?".to_owned(),
            |k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0),
        );
    let kernel = read("/proc/sys/kernel/osrelease");
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Machine: {model}, {cores} cores, {mem} RAM, Linux {}, {rustc}, release profile.",
        kernel.trim()
    )
}

/// `--reload N`: the gateway serves HTTP in front of the stdio echo backend
/// while a load run keeps 8 requests in flight and the config file is
/// rewritten N times (the arith backend comes and goes, echo stays). Reports
/// how long each reload took to apply (from the gateway's own log: the new
/// backend set and catalog in place, new processes' start-up excluded) and
/// whether any request failed. Writes `target/bench/reload-report.md`.
fn reload_run(bins: &Bins, dir: &Path, changes: u32) -> Result<()> {
    let arith = bins.echo.with_file_name("only1mcp-arith-server");
    let quote = |p: &Path| format!("{:?}", p.display().to_string());
    let config = dir.join("reload.yaml");
    let yaml = |with_arith: bool| {
        let mut text = format!(
            "logging:\n  level: warn\nservers:\n  echo:\n    command: {}\n",
            quote(&bins.echo)
        );
        if with_arith {
            let _ = writeln!(text, "  arith:\n    command: {}", quote(&arith));
        }
        text
    };
    write(&config, &yaml(false))?;
    let log = dir.join("reload-gateway.log");
    let proc = Proc::start(
        "gateway",
        Command::new(&bins.gateway)
            .args(["start", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env(
                "RUST_LOG",
                "warn,only1mcp_proxy::http=info,only1mcp_proxy::gateway=info",
            ),
        &log,
        false,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let text = proc.log_text();
        if let Some(idx) = text.find("Listening url=") {
            break text[idx + "Listening url=".len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if Instant::now() > deadline {
            bail!("the gateway never listened:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let interval = Duration::from_millis(300);
    let seconds = u64::from(changes) * 300 / 1000 + 4;
    let load = Command::new(&bins.gateway)
        .args(["benchmark", "--json", "-q", "-c", "8", "--warmup", "1s"])
        .args(["--duration", &format!("{seconds}s"), "--url", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting only1mcp benchmark")?;
    // Let the warm-up pass, then change the file every 300 ms (longer than
    // the watcher's 200 ms debounce, so every write is its own reload).
    std::thread::sleep(Duration::from_millis(1500));
    for change in 0..changes {
        write(&config, &yaml(change % 2 == 0))?;
        std::thread::sleep(interval);
    }
    let out = load
        .wait_with_output()
        .context("waiting for the load run")?;
    let json = String::from_utf8_lossy(&out.stdout);
    let requests = number(&json, "requests").unwrap_or_default();
    let failures: f64 = [
        "tool_errors",
        "rpc_errors",
        "http_errors",
        "transport_errors",
        "timeouts",
    ]
    .iter()
    .filter_map(|key| number(&json, key))
    .sum();
    // Give the last reload time to be logged.
    std::thread::sleep(Duration::from_millis(500));
    let text = proc.log_text();
    let mut applied: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("Config reloaded"))
        .filter_map(|l| {
            let idx = l.find("applied_us=")?;
            l[idx + "applied_us=".len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    drop(proc);
    applied.sort_unstable();
    if applied.is_empty() {
        bail!("no reload was logged; see {}", log.display());
    }
    let pick = |q: f64| {
        let idx = ((applied.len() as f64 - 1.0) * q).round() as usize;
        applied[idx.min(applied.len() - 1)]
    };
    let report = format!(
        "# Hot reload under load\n\n{} config changes, one every {} ms, while `only1mcp benchmark` kept 8 requests in flight \
         (HTTP→stdio, `echo__echo`); the arith backend came and went, echo stayed.\n\n\
         | reloads applied | apply p50 | apply p99 | apply max | requests | failed requests |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |\n\n\
         {} Load average {}.\n",
        changes,
        interval.as_millis(),
        applied.len(),
        pick(0.5) as f64 / 1000.0,
        pick(0.99) as f64 / 1000.0,
        applied[applied.len() - 1] as f64 / 1000.0,
        requests,
        failures,
        machine(),
        loadavg(),
    );
    write(&dir.join("reload-report.md"), &report)?;
    println!("{report}");
    if failures > 0.0 {
        bail!("{failures} requests failed during the reloads");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_cpu_is_rendered_with_its_ratio() {
        let mut report = Report::new(&parse_options(&[]).unwrap());
        report.rounds.push(Round {
            path: "stdio→stdio",
            direct_rps: 100.0,
            through_rps: 50.0,
            cpu: None,
        });
        report.rounds.push(Round {
            path: "HTTP→HTTP",
            direct_rps: 60_000.0,
            through_rps: 30_000.0,
            cpu: Some(([14.0, 13.0], [14.0, 13.0, 27.0])),
        });
        let mut out = String::new();
        report.render_rounds(&mut out);
        assert!(
            out.contains("| HTTP→HTTP | 1 | 60000 | 30000 | 50 % |"),
            "{out}"
        );
        assert!(
            out.contains(
                "| HTTP→HTTP | 1 | 14.0 + 13.0 = 27.0 | 14.0 + 13.0 + 27.0 = 54.0 | 50 % |"
            ),
            "{out}"
        );
        assert!(!out.contains("| stdio→stdio | 1 | 0"), "{out}");
    }

    #[test]
    fn cpu_ticks_grow_with_work() {
        let before = cpu_ticks(std::process::id()).expect("this process has a /proc stat");
        // Spin until the count moves (a tick is 10 ms of CPU), for at most
        // 5 s of wall time on a busy machine.
        let started = Instant::now();
        let mut after = before;
        let mut x = 0_u64;
        while after == before && started.elapsed() < Duration::from_secs(5) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            after = cpu_ticks(std::process::id()).unwrap();
        }
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn json_fields_are_read() {
        let json = "{\n  \"warmup_requests\": 5,\n  \"requests\": 100,\n  \"first_error\": \"a \\\"b\\\"\",\n  \"latency_us\": {\"p50\": 12.5, \"p99_9\": 40}\n}";
        assert_eq!(number(json, "requests"), Some(100.0));
        assert_eq!(number(json, "warmup_requests"), Some(5.0));
        assert_eq!(number(json, "p50"), Some(12.5));
        assert_eq!(number(json, "p99_9"), Some(40.0));
        assert_eq!(number(json, "nope"), None);
        assert_eq!(text_field(json, "first_error").as_deref(), Some("a \"b\""));
    }
}
