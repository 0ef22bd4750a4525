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
//!    HTTP→stdio and HTTP→HTTP also with `--workers 2` (two runtime
//!    threads; one is the default).
//! 5. Memory: VmRSS of the idle gateway with ten backends, and of the
//!    HTTP→stdio gateway before and after its load runs.
//! 6. `target/bench-report.md`: machine, commands, the table, and the
//!    ratios (gateway/direct throughput, added p50/p99 latency).
//!
//! Options (`cargo xtask bench --help` lists them all): `--duration D` (per
//! run, default 5s), `--warmup D` (default 1s), `--no-build`, `--profile NAME`
//! (default release), `--rounds N`, `--soak D` with `--soak-backend
//! stdio|http` and `--soak-every D` (a long run at concurrency 32 sampling the
//! gateway's RSS; off by default).
//!
//! Runs of their own, for the figures docs/performance.md publishes beside
//! the whole run: `--pairs N` (interleaved HTTP→HTTP pairs of `--requests`
//! calls with each process's CPU), `--callgrind` (instructions per call under
//! valgrind, HTTP→HTTP and the stdio face), `--reload N` (hot reload under
//! load), `--swap N` (the called server's own config changed under load,
//! `bench/swap.rs`).
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

mod swap;

/// `cargo xtask bench --help`: every option.
const USAGE: &str = "\
Usage: cargo xtask bench [OPTIONS]

The gateway measured against its own echo backend on this machine (docs/performance.md). By
default: the whole run (about three minutes after the build), written to target/bench-report.md.
Every figure in docs/performance.md comes from one of the runs below.

Build and binaries:
  --no-build             use the binaries already built for the profile (no cargo build)
  --profile NAME         the cargo profile to build and measure (default: release; `dev`
                         measures target/debug, for trying a recipe out, not for figures)

The whole run:
  --duration D           each load run's length (default 5s)
  --warmup D             each load run's unmeasured warm-up (default 1s)
  --rounds N             extra interleaved pairs of the backend directly and through the gateway
                         at c=32, HTTP->HTTP and stdio->stdio, with each ratio and their median
                         (default 3; 0: none)
  --soak D               add a long run at c=32 after the main ones, sampling the gateway's RSS
  --soak-backend B       the soak's backend: stdio (HTTP->stdio, the default) or http (HTTP->HTTP)
  --soak-every D         how often the soak samples the RSS (default 10s)

Runs of their own (one at a time; each writes target/bench/<name>-report.md):
  --pairs N              N interleaved pairs at c=32, HTTP->HTTP: the echo backend directly, then
                         through the gateway, each a fixed number of calls (--requests), with each
                         process's CPU per call from /proc (the `ab.sh` pair tables)
  --callgrind            instructions per call under valgrind's callgrind: the gateway's HTTP face
                         in front of the HTTP echo backend at c=32 (--unmeasured calls, then the
                         counters zeroed, --requests calls measured: the `cg.sh` figures), and the
                         stdio face under `only1mcp benchmark --stdio -c 32` (start-up included)
  --requests N           calls per run of --pairs (default 150000) or --callgrind (default 20000)
  --unmeasured N         --callgrind: calls before the counters are zeroed (default 2000)
  --reload N             hot reload: N config changes under load, the time each took to apply
  --swap N               hot swap: N changes of the called server's own config under load (and
                         N whose replacement cannot start), latency against a run without reloads
  --metrics-pairs N      N interleaved pairs at c=32, HTTP->HTTP, each --duration long: a gateway
                         with `metrics.enabled: false`, then one with metrics on (the default), in
                         front of the same HTTP echo backend, the order swapped every other pair,
                         with each gateway's CPU per call
  --traces RATIO         --pairs and --callgrind: the gateway with OpenTelemetry traces on at this
                         sample ratio (0 to 1), exporting to an OTLP/HTTP sink run by xtask that
                         reads and discards each export

  -h, --help             this message

Recipes for the published figures (docs/performance.md):
  cargo xtask bench                                     main table, rounds, start-up, memory
  cargo xtask bench --pairs 3                           interleaved pairs, 150 000 calls each
  cargo xtask bench --callgrind                         instructions per call (HTTP->HTTP, stdio)
  cargo xtask bench --soak 300s --soak-backend http --soak-every 15s
                                                        the HTTP->HTTP soak (`soak.sh`)
  cargo xtask bench --soak 5m                           the HTTP->stdio soak
";

/// The soak's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SoakBackend {
    /// HTTP face, stdio echo backend.
    Stdio,
    /// HTTP face, HTTP echo backend (`url:`).
    Http,
}

/// What one `cargo xtask bench` run is asked to do.
#[derive(Debug)]
struct Options {
    duration: String,
    warmup: String,
    build: bool,
    /// The cargo profile built and measured.
    profile: String,
    soak: Option<String>,
    soak_backend: SoakBackend,
    soak_every: Duration,
    /// Extra interleaved direct/gateway pairs at c=32 for the headline
    /// ratios (HTTP→HTTP, stdio→stdio), to see how much one pair varies.
    rounds: u32,
    /// A run of its own instead of the whole run.
    only: Option<Only>,
    /// Calls per run of `--pairs` or `--callgrind` (their own defaults if unset).
    requests: Option<u64>,
    /// `--callgrind`: calls before the counters are zeroed.
    unmeasured: u64,
    /// `--pairs`, `--callgrind`: the gateway's traces on at this sample
    /// ratio, exported to [`otlp_sink`].
    traces: Option<f64>,
}

/// The runs of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    /// Hot reload: this many config changes under load.
    Reload(u32),
    /// Hot swap: this many changes of the called server's own config.
    Swap(u32),
    /// This many interleaved HTTP→HTTP pairs.
    Pairs(u32),
    /// Instructions per call under callgrind.
    Callgrind,
    /// This many interleaved pairs of a gateway without and with metrics.
    MetricsPairs(u32),
}

fn parse_options(args: &[OsString]) -> Result<Option<Options>> {
    let mut options = Options {
        duration: "5s".to_owned(),
        warmup: "1s".to_owned(),
        build: true,
        profile: "release".to_owned(),
        soak: None,
        soak_backend: SoakBackend::Stdio,
        soak_every: Duration::from_secs(10),
        rounds: 3,
        only: None,
        requests: None,
        unmeasured: 2000,
        traces: None,
    };
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    let number = |value: String, name: &str| -> Result<u64> {
        value
            .parse()
            .with_context(|| format!("{name} needs a whole number, not {value:?}\n\n{USAGE}"))
    };
    let set_only = |only: Only, options: &mut Options| {
        if let Some(earlier) = options.only.replace(only) {
            bail!("{earlier:?} and {only:?} are runs of their own: give one\n\n{USAGE}");
        }
        Ok(())
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--duration" => options.duration = value("--duration")?,
            "--warmup" => options.warmup = value("--warmup")?,
            "--no-build" => options.build = false,
            "--profile" => options.profile = value("--profile")?,
            "--soak" => options.soak = Some(value("--soak")?),
            "--soak-backend" => {
                options.soak_backend = match value("--soak-backend")?.as_str() {
                    "stdio" => SoakBackend::Stdio,
                    "http" => SoakBackend::Http,
                    other => bail!("--soak-backend is stdio or http, not {other:?}"),
                };
            }
            "--soak-every" => options.soak_every = parse_duration(&value("--soak-every")?)?,
            "--rounds" => {
                options.rounds = u32::try_from(number(value("--rounds")?, "--rounds")?)
                    .context("--rounds is too large")?;
            }
            "--traces" => {
                let text = value("--traces")?;
                let ratio: f64 = text
                    .parse()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .with_context(|| format!("--traces needs a ratio from 0 to 1, not {text:?}"))?;
                options.traces = Some(ratio);
            }
            "--reload" => {
                let changes = u32::try_from(number(value("--reload")?, "--reload")?)
                    .context("--reload is too large")?;
                set_only(Only::Reload(changes), &mut options)?;
            }
            "--swap" => {
                let changes = u32::try_from(number(value("--swap")?, "--swap")?)
                    .context("--swap is too large")?;
                set_only(Only::Swap(changes), &mut options)?;
            }
            "--pairs" => {
                let pairs = u32::try_from(number(value("--pairs")?, "--pairs")?)
                    .context("--pairs is too large")?;
                if pairs == 0 {
                    bail!("--pairs needs at least 1");
                }
                set_only(Only::Pairs(pairs), &mut options)?;
            }
            "--callgrind" => set_only(Only::Callgrind, &mut options)?,
            "--metrics-pairs" => {
                let pairs = u32::try_from(number(value("--metrics-pairs")?, "--metrics-pairs")?)
                    .context("--metrics-pairs is too large")?;
                if pairs == 0 {
                    bail!("--metrics-pairs needs at least 1");
                }
                set_only(Only::MetricsPairs(pairs), &mut options)?;
            }
            "--requests" => options.requests = Some(number(value("--requests")?, "--requests")?),
            "--unmeasured" => options.unmeasured = number(value("--unmeasured")?, "--unmeasured")?,
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    if options.requests == Some(0) {
        bail!("--requests needs at least 1");
    }
    Ok(Some(options))
}

/// `500ms`, `15s`, `5m`: a duration as the options take it.
fn parse_duration(text: &str) -> Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a duration like 500ms, 15s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(amount)),
        "s" => Ok(Duration::from_secs(amount)),
        "m" => Ok(Duration::from_secs(amount * 60)),
        _ => bail!("{text:?} is not a duration like 500ms, 15s or 5m"),
    }
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
    let Some(options) = parse_options(args)? else {
        return Ok(());
    };
    let started = Instant::now();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    if options.build {
        let mut cmd = super::cargo_in(workspace);
        cmd.args(["build", "--profile", &options.profile, "--workspace"]);
        super::run_step(
            &format!("cargo build --profile {}", options.profile),
            &mut cmd,
        )?;
    }
    // Cargo's own profiles keep their historical directory names.
    let profile_dir = match options.profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let release = target_dir.join(profile_dir);
    let bins = Bins {
        gateway: release.join("only1mcp"),
        echo: release.join("only1mcp-echo-server"),
        churn: release.join("only1mcp-churn-server"),
    };
    for bin in [&bins.gateway, &bins.echo, &bins.churn] {
        if !bin.exists() {
            bail!(
                "{} is missing: build with `cargo build --profile {} --workspace`",
                bin.display(),
                options.profile
            );
        }
    }
    let dir = target_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match options.only {
        Some(Only::Reload(changes)) => return reload_run(&bins, &dir, changes, &options.profile),
        Some(Only::Swap(changes)) => {
            return swap::swap_run(&bins, &dir, changes, &options.profile);
        }
        Some(Only::Pairs(pairs)) => return pairs_run(&bins, &dir, &options, pairs),
        Some(Only::Callgrind) => return callgrind_run(&bins, &dir, &options),
        Some(Only::MetricsPairs(pairs)) => return metrics_run(&bins, &dir, &options, pairs),
        None => {}
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
        requests: None,
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
    if let Some(soak) = &options.soak
        && options.soak_backend == SoakBackend::Stdio
    {
        report.soak = Some(soak_run(&load, &gateway, "HTTP→stdio", soak)?);
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
                if workers.is_none()
                    && let Some(soak) = &options.soak
                    && options.soak_backend == SoakBackend::Http
                {
                    report.soak = Some(soak_run(&load, &gateway, "HTTP→HTTP", soak)?);
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
        let url = listening_url(&proc, Duration::from_secs(30))?;
        Ok(Self { proc, url })
    }
}

/// The URL a gateway started with `RUST_LOG=...only1mcp_proxy::http=info`
/// logs once it listens, waiting at most `within`.
fn listening_url(proc: &Proc, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let text = proc.log_text();
        if let Some(idx) = text.find("Listening url=") {
            return Ok(text[idx + "Listening url=".len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned());
        }
        if Instant::now() > deadline {
            bail!("the {} never listened:\n{text}", proc.name);
        }
        std::thread::sleep(Duration::from_millis(20));
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

/// Runs `only1mcp benchmark` with the run's duration and warm-up, or a
/// fixed number of requests.
struct Load<'a> {
    bin: &'a Path,
    options: &'a Options,
    /// Measure this many requests instead of `--duration`.
    requests: Option<u64>,
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
            .args(["--warmup", &self.options.warmup]);
        match self.requests {
            // The run stops at the count (or at the generator's 10-minute cap).
            Some(requests) => cmd.args(["--requests", &requests.to_string()]),
            None => cmd.args(["--duration", &self.options.duration]),
        };
        cmd.args(args)
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
        let failures = failures(&json);
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

/// A long run at concurrency 32 through `gateway`, sampling its RSS.
#[derive(Debug)]
struct Soak {
    path: &'static str,
    duration: String,
    every: Duration,
    /// Seconds since the start, and the RSS then.
    samples: Vec<(u64, Option<u64>)>,
    requests: f64,
    rps: f64,
    failures: f64,
}

/// A long run at concurrency 32 through `gateway` (its path named by
/// `path`), sampling the gateway's RSS every `--soak-every`.
fn soak_run(
    load: &Load<'_>,
    gateway: &Gateway,
    path: &'static str,
    duration: &str,
) -> Result<Soak> {
    let every = load.options.soak_every;
    eprintln!("xtask: soak, {path} at c=32 for {duration}, RSS every {every:?}");
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the soak run")?;
    let started = Instant::now();
    let mut samples = vec![(0, rss_kib(gateway.proc.id()))];
    // The load generator stops itself at --duration (and at 10 minutes).
    let limit = Duration::from_secs(900);
    let mut next = every;
    while child.try_wait()?.is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        if started.elapsed() >= next {
            samples.push((started.elapsed().as_secs(), rss_kib(gateway.proc.id())));
            next += every;
        }
        std::thread::sleep(Duration::from_millis(100).min(every));
    }
    let end = started.elapsed().as_secs();
    if samples.last().is_none_or(|(secs, _)| *secs != end) {
        samples.push((end, rss_kib(gateway.proc.id())));
    }
    let out = child
        .wait_with_output()
        .context("waiting for the soak run")?;
    let json = String::from_utf8_lossy(&out.stdout);
    Ok(Soak {
        path,
        duration: duration.to_owned(),
        every,
        samples,
        requests: number(&json, "requests").unwrap_or_default(),
        rps: number(&json, "throughput_rps").unwrap_or_default(),
        failures: failures(&json),
    })
}

/// The failed requests of a benchmark report, of every kind.
fn failures(json: &str) -> f64 {
    [
        "tool_errors",
        "rpc_errors",
        "http_errors",
        "transport_errors",
        "timeouts",
    ]
    .iter()
    .filter_map(|key| number(json, key))
    .sum()
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
    /// The measured binaries' cargo profile.
    profile: String,
    rows: Vec<Row>,
    startup: Vec<(String, Duration)>,
    idle_rss_ten: Option<u64>,
    rss_load: Option<(Option<u64>, Option<u64>)>,
    soak: Option<Soak>,
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
            profile: options.profile.clone(),
            rows: Vec::new(),
            startup: Vec::new(),
            idle_rss_ten: None,
            rss_load: None,
            soak: None,
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
        let _ = writeln!(out, "{}\n", machine(&self.profile));
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
        if let Some(soak) = &self.soak {
            let _ = writeln!(
                out,
                "\n### Soak ({}, c=32, {}, RSS every {} s)\n\n{:.0} requests, {:.0} a second, {:.0} \
                 failed.\n\n| s | RSS |\n|---:|---:|",
                soak.path,
                soak.duration,
                soak.every.as_secs_f64(),
                soak.requests,
                soak.rps,
                soak.failures
            );
            for (secs, kib) in &soak.samples {
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

/// The machine and the measured binaries' cargo profile, for a report's header.
fn machine(profile: &str) -> String {
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
        "Machine: {model}, {cores} cores, {mem} RAM, Linux {}, {rustc}, {profile} profile.",
        kernel.trim()
    )
}

/// `--reload N`: the gateway serves HTTP in front of the stdio echo backend
/// while a load run keeps 8 requests in flight and the config file is
/// rewritten N times (the arith backend comes and goes, echo stays). Reports
/// how long each reload took to apply (from the gateway's own log: the new
/// backend set and catalog in place, new processes' start-up excluded) and
/// whether any request failed. Writes `target/bench/reload-report.md`.
fn reload_run(bins: &Bins, dir: &Path, changes: u32, profile: &str) -> Result<()> {
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
        machine(profile),
        loadavg(),
    );
    write(&dir.join("reload-report.md"), &report)?;
    println!("{report}");
    if failures > 0.0 {
        bail!("{failures} requests failed during the reloads");
    }
    Ok(())
}

/// The HTTP echo backend for a run of its own, and a config putting the
/// gateway in front of it (`url:`).
fn http_echo(
    bins: &Bins,
    dir: &Path,
    name: &str,
    traces: Option<f64>,
) -> Result<(Proc, String, PathBuf)> {
    let mut backend = Proc::start(
        "echo backend (HTTP)",
        Command::new(&bins.echo).args(["--http", "127.0.0.1:0"]),
        &dir.join(format!("{name}-echo.log")),
        true,
    )?;
    let url = backend.first_stdout_line(Duration::from_secs(10))?;
    let config = dir.join(format!("{name}-http.yaml"));
    let traces = match traces {
        Some(ratio) => format!(
            "traces:\n  enabled: true\n  endpoint: http://127.0.0.1:{}\n  sample_ratio: {ratio}\n",
            otlp_sink()?
        ),
        None => String::new(),
    };
    write(
        &config,
        &format!("logging:\n  level: warn\n{traces}servers:\n  echo:\n    url: {url:?}\n"),
    )?;
    Ok((backend, url, config))
}

/// An OTLP/HTTP sink on 127.0.0.1 for `--traces`: reads each export (HTTP/1.1
/// with a `Content-Length` body), answers 200 with an empty
/// `ExportTraceServiceResponse`, and keeps nothing. Runs until xtask exits;
/// returns its port.
fn otlp_sink() -> Result<u16> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut writer = stream.try_clone()?;
                let mut reader = std::io::BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            return Ok(());
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
                    writer.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    )?;
                }
            });
        }
    });
    Ok(port)
}

/// How the gateway's traces were set, for a report.
fn traces_note(traces: Option<f64>) -> String {
    traces.map_or_else(
        || "Traces off.".to_owned(),
        |ratio| {
            format!(
                "The gateway's OpenTelemetry traces on, `sample_ratio: {ratio}`, exported over \
                 OTLP/HTTP to a sink in xtask that discards them (`--traces {ratio}`)."
            )
        },
    )
}

/// `--pairs N`: N interleaved pairs at c=32, HTTP→HTTP: `--requests` calls
/// (default 150 000) to the HTTP echo backend directly, then the same
/// through one gateway in front of it, each process's CPU per call from
/// `/proc`. Writes `target/bench/pairs-report.md`.
fn pairs_run(bins: &Bins, dir: &Path, options: &Options, pairs: u32) -> Result<()> {
    let requests = options.requests.unwrap_or(150_000);
    let (mut backend, echo_url, config) = http_echo(bins, dir, "pairs", options.traces)?;
    let mut gateway = Gateway::start(&bins.gateway, &config, &dir.join("pairs-gateway.log"), &[])?;
    let load = Load {
        bin: &bins.gateway,
        options,
        requests: Some(requests),
    };
    let load_before = loadavg();
    let started = Instant::now();
    let mut rounds = Vec::new();
    for _ in 0..pairs {
        let (direct, direct_cpu) = cpu_per_request(&[backend.id()], || {
            load.run(
                "direct",
                "HTTP",
                32,
                &["--url", &echo_url, "--tool", "echo"],
                &[],
            )
        })?;
        let (through, through_cpu) = cpu_per_request(&[backend.id(), gateway.proc.id()], || {
            load.run("gateway", "HTTP→HTTP", 32, &["--url", &gateway.url], &[])
        })?;
        for row in [&direct, &through] {
            if row.failures > 0.0 {
                bail!(
                    "{} {}: {} requests failed ({})",
                    row.via,
                    row.path,
                    row.failures,
                    row.first_error.as_deref().unwrap_or("-")
                );
            }
        }
        let cpu = match (direct.load_cpu_us, direct_cpu[0], through.load_cpu_us) {
            (Some(g), Some(e), Some(g2)) => through_cpu[0]
                .zip(through_cpu[1])
                .map(|(e2, gw)| ([g, e], [g2, e2, gw])),
            _ => None,
        };
        rounds.push(Round {
            path: "HTTP→HTTP",
            direct_rps: direct.rps,
            through_rps: through.rps,
            cpu,
        });
    }
    gateway.proc.stop();
    backend.stop();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut report = format!(
        "# Interleaved pairs, HTTP→HTTP at c=32\n\n{}\n\nLoad average at the start: {load_before}; \
         at the end: {}. Each pair: {requests} calls (after a {} warm-up) to the HTTP echo backend \
         directly, then the same through the gateway (`url:` backend), back to back; CPU from \
         /proc and the load generator's own report, warm-up included. \"busy\" is the three \
         processes' CPU over {cores} cores' time. Whole run: {:.0} s (`cargo xtask bench --pairs \
         {pairs} --requests {requests}`). {}\n\n",
        machine(&options.profile),
        loadavg(),
        options.warmup,
        started.elapsed().as_secs_f64(),
        traces_note(options.traces),
    );
    render_pairs(&rounds, cores, &mut report);
    let path = dir.join("pairs-report.md");
    write(&path, &report)?;
    println!("{report}");
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// `--metrics-pairs N`: N interleaved pairs at c=32, HTTP→HTTP, each
/// `--duration` long: a gateway with metrics off and one with metrics on
/// (the default), both in front of the same HTTP echo backend, the order
/// swapped every other pair, each gateway's CPU per call from `/proc`.
/// Writes `target/bench/metrics-report.md`.
fn metrics_run(bins: &Bins, dir: &Path, options: &Options, pairs: u32) -> Result<()> {
    let (mut backend, echo_url, _) = http_echo(bins, dir, "metrics", None)?;
    let config = |metrics: bool| -> Result<PathBuf> {
        let path = dir.join(format!(
            "metrics-{}.yaml",
            if metrics { "on" } else { "off" }
        ));
        write(
            &path,
            &format!(
                "logging:\n  level: warn\nadmin:\n  enabled: false\nmetrics:\n  enabled: {metrics}\nservers:\n  echo:\n    url: {echo_url:?}\n"
            ),
        )?;
        Ok(path)
    };
    let mut off = Gateway::start(
        &bins.gateway,
        &config(false)?,
        &dir.join("metrics-off-gateway.log"),
        &[],
    )?;
    let mut on = Gateway::start(
        &bins.gateway,
        &config(true)?,
        &dir.join("metrics-on-gateway.log"),
        &[],
    )?;
    let load = Load {
        bin: &bins.gateway,
        options,
        requests: None,
    };
    let load_before = loadavg();
    let started = Instant::now();
    let mut rows: Vec<(Row, Row)> = Vec::new();
    for pair in 0..pairs {
        let measure = |gateway: &Gateway, path: &'static str| {
            load.run_measuring(
                gateway.proc.id(),
                "gateway",
                path,
                32,
                &["--url", &gateway.url],
            )
        };
        let (without, with) = if pair % 2 == 0 {
            let without = measure(&off, "HTTP→HTTP, metrics off")?;
            (without, measure(&on, "HTTP→HTTP, metrics on")?)
        } else {
            let with = measure(&on, "HTTP→HTTP, metrics on")?;
            (measure(&off, "HTTP→HTTP, metrics off")?, with)
        };
        for row in [&without, &with] {
            if row.failures > 0.0 {
                bail!(
                    "{}: {} requests failed ({})",
                    row.path,
                    row.failures,
                    row.first_error.as_deref().unwrap_or("-")
                );
            }
        }
        rows.push((without, with));
    }
    off.proc.stop();
    on.proc.stop();
    backend.stop();
    let mut report = format!(
        "# Metrics off and on, HTTP→HTTP at c=32\n\n{}\n\nLoad average at the start: {load_before}; \
         at the end: {}. Each pair: {} (after a {} warm-up) through a gateway with \
         `metrics.enabled: false`, and the same through one with metrics on (the default), both \
         in front of one HTTP echo backend, the order swapped every other pair. Gateway CPU from \
         /proc, warm-up included. Whole run: {:.0} s (`cargo xtask bench --metrics-pairs {pairs}`).\n\n\
         | pair | off req/s | on req/s | on/off | off p50 / p99 µs | on p50 / p99 µs | off CPU µs a call | on CPU µs a call |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        machine(&options.profile),
        loadavg(),
        options.duration,
        options.warmup,
        started.elapsed().as_secs_f64(),
    );
    let mut ratios = Vec::new();
    for (idx, (without, with)) in rows.iter().enumerate() {
        let ratio = if without.rps > 0.0 {
            with.rps / without.rps
        } else {
            0.0
        };
        ratios.push(ratio);
        let cpu = |row: &Row| {
            row.gateway_cpu_us
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"))
        };
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.0} | {ratio:.3} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {} |",
            idx + 1,
            without.rps,
            with.rps,
            without.p50,
            without.p99,
            with.p50,
            with.p99,
            cpu(without),
            cpu(with),
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let _ = writeln!(report, "\nMedian on/off throughput: {median:.3}.");
    let path = dir.join("metrics-report.md");
    write(&path, &report)?;
    println!("{report}");
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// The pairs' table: throughput, CPU a call, how busy the machine was, and
/// the median ratio.
fn render_pairs(rounds: &[Round], cores: usize, out: &mut String) {
    let _ = writeln!(
        out,
        "| pair | direct req/s | gateway req/s | ratio | CPU µs a call, direct: generator + \
         backend | through: generator + backend + gateway | CPU ratio | busy direct | busy \
         through |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut ratios = Vec::new();
    #[allow(clippy::cast_precision_loss, reason = "a core count")]
    let cores = cores as f64;
    for (idx, round) in rounds.iter().enumerate() {
        let ratio = if round.direct_rps > 0.0 {
            round.through_rps / round.direct_rps
        } else {
            0.0
        };
        ratios.push(ratio);
        let cpu = round.cpu.map_or_else(
            || "| — | — | — | — | —".to_owned(),
            |([g, e], [g2, e2, gw])| {
                let (direct, through) = (g + e, g2 + e2 + gw);
                let busy = |us: f64, rps: f64| us * rps / 1e6 / cores * 100.0;
                format!(
                    "| {g:.1} + {e:.1} = {direct:.1} | {g2:.1} + {e2:.1} + {gw:.1} = {through:.1} \
                     | {:.0} % | {:.0} % | {:.0} %",
                    if through > 0.0 {
                        direct / through * 100.0
                    } else {
                        0.0
                    },
                    busy(direct, round.direct_rps),
                    busy(through, round.through_rps),
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} % {cpu} |",
            idx + 1,
            round.direct_rps,
            round.through_rps,
            ratio * 100.0
        );
    }
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        let _ = writeln!(
            out,
            "\nMedian ratio of {} pairs: **{:.0} %**.",
            ratios.len(),
            median * 100.0
        );
    }
}

/// `--callgrind`: user-space instructions per call under valgrind's
/// callgrind (`valgrind`, `callgrind_control` and `callgrind_annotate` must
/// be on `PATH`). Two figures:
/// - HTTP→HTTP: the gateway's HTTP face in front of the HTTP echo backend,
///   under callgrind; `--unmeasured` calls at c=32, the counters zeroed
///   (`callgrind_control -z`), `--requests` calls (default 20 000), a dump
///   (`callgrind_control -d`): its total over the calls;
/// - the stdio face: `only1mcp benchmark --stdio -c 32 --requests N --
///   valgrind --tool=callgrind only1mcp start --stdio`, the whole run's
///   total (start-up included) over the calls answered.
///
/// Writes `target/bench/callgrind-report.md`; the raw profiles stay in
/// `target/bench/` for `callgrind_annotate`.
fn callgrind_run(bins: &Bins, dir: &Path, options: &Options) -> Result<()> {
    let requests = options.requests.unwrap_or(20_000);
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!("{tool} is not on PATH (install valgrind)");
        }
    }
    // Profiles of an earlier run would be summed in.
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("callgrind."))
        {
            std::fs::remove_file(&path)?;
        }
    }
    let started = Instant::now();
    let load_before = loadavg();

    // HTTP→HTTP, the counters zeroed after the unmeasured calls.
    let (mut backend, _echo_url, config) = http_echo(bins, dir, "callgrind", options.traces)?;
    let out_file = dir.join("callgrind.http.out");
    let mut gateway = Proc::start(
        "gateway under callgrind",
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg(&bins.gateway)
            .args(["start", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn,only1mcp_proxy::http=info"),
        &dir.join("callgrind-gateway.log"),
        false,
    )?;
    let url = listening_url(&gateway, Duration::from_secs(120))?;
    let generate = |calls: u64| -> Result<f64> {
        let out = Command::new(&bins.gateway)
            .args(["benchmark", "--json", "-q", "-c", "32", "--warmup", "0s"])
            .args(["--requests", &calls.to_string(), "--url", &url])
            .stdin(Stdio::null())
            .output()
            .context("running only1mcp benchmark")?;
        let json = String::from_utf8_lossy(&out.stdout);
        if failures(&json) > 0.0 || number(&json, "requests").is_none() {
            bail!(
                "the load run against the gateway under callgrind failed: {}{}",
                json.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(number(&json, "requests").unwrap_or_default()
            + number(&json, "warmup_requests").unwrap_or_default())
    };
    eprintln!(
        "xtask: callgrind, HTTP→HTTP: {} unmeasured calls",
        options.unmeasured
    );
    if options.unmeasured > 0 {
        generate(options.unmeasured)?;
    }
    let pid = gateway.id().to_string();
    callgrind_control(&["-z", &pid])?;
    eprintln!("xtask: callgrind, HTTP→HTTP: {requests} measured calls");
    let http_calls = generate(requests)?;
    callgrind_control(&["-d", &pid])?;
    // The dump is `<out file>.<n>`, beside the final profile written at exit.
    let dump = newest_with_prefix(dir, "callgrind.http.out.")?;
    let http_total = program_totals(&dump)?;
    gateway.stop();
    backend.stop();

    // The stdio face: the whole process, start-up included.
    let stdio_config = dir.join("callgrind-stdio.yaml");
    write(
        &stdio_config,
        &format!(
            "logging:\n  level: warn\nservers:\n  echo:\n    command: {:?}\n",
            bins.echo.display().to_string()
        ),
    )?;
    eprintln!("xtask: callgrind, stdio face: {requests} calls, start-up included");
    let out = Command::new(&bins.gateway)
        .args(["benchmark", "--json", "-q", "-c", "32", "--warmup", "0s"])
        .args(["--requests", &requests.to_string(), "--stdio", "--"])
        .arg("valgrind")
        .arg("--tool=callgrind")
        .arg(format!(
            "--callgrind-out-file={}",
            dir.join("callgrind.stdio.out.%p").display()
        ))
        .arg(&bins.gateway)
        .args(["start", "--stdio", "--config"])
        .arg(&stdio_config)
        .stdin(Stdio::null())
        .output()
        .context("running only1mcp benchmark --stdio under callgrind")?;
    let json = String::from_utf8_lossy(&out.stdout);
    let stdio_calls = number(&json, "requests").unwrap_or_default()
        + number(&json, "warmup_requests").unwrap_or_default();
    if failures(&json) > 0.0 || stdio_calls == 0.0 {
        bail!(
            "the stdio run under callgrind failed: {}{}",
            json.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut stdio_total = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("callgrind.stdio.out."))
        {
            stdio_total += program_totals(&path)?;
        }
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "instruction counts fit f64's 53 bits here"
    )]
    let per_call = |total: u64, calls: f64| total as f64 / calls;
    let report = format!(
        "# Instructions per call (callgrind)\n\n{}\n\nLoad average at the start: {load_before}; \
         at the end: {} (callgrind counts instructions, so the load only stretches the time). \
         Whole run: {:.0} s (`cargo xtask bench --callgrind --requests {requests} --unmeasured \
         {}`). HTTP→HTTP: {}\n\n\
         | what | calls | instructions | a call |\n|---|---:|---:|---:|\n\
         | HTTP→HTTP at c=32: the gateway's HTTP face, counters zeroed after {} calls | {http_calls:.0} \
         | {http_total} | **{:.2}k** |\n\
         | stdio face at c=32 (`benchmark --stdio`), start-up included | {stdio_calls:.0} | \
         {stdio_total} | **{:.2}k** |\n\n\
         The profiles: `{}` (HTTP→HTTP, the measured calls) and `callgrind.stdio.out.<pid>`; \
         `callgrind_annotate --inclusive=yes <file>` shows where the instructions go.\n",
        machine(&options.profile),
        loadavg(),
        started.elapsed().as_secs_f64(),
        options.unmeasured,
        traces_note(options.traces),
        options.unmeasured,
        per_call(http_total, http_calls) / 1000.0,
        per_call(stdio_total, stdio_calls) / 1000.0,
        dump.display(),
    );
    let path = dir.join("callgrind-report.md");
    write(&path, &report)?;
    println!("{report}");
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// Runs `callgrind_control ARGS`; fails unless it succeeds.
fn callgrind_control(args: &[&str]) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .output()
        .context("running callgrind_control")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The most recently modified file in `dir` whose name starts with `prefix`.
fn newest_with_prefix(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        if newest.as_ref().is_none_or(|(at, _)| modified > *at) {
            newest = Some((modified, entry.path()));
        }
    }
    newest
        .map(|(_, path)| path)
        .with_context(|| format!("no {prefix}* file in {}", dir.display()))
}

/// The `PROGRAM TOTALS` of a callgrind profile, from `callgrind_annotate`.
fn program_totals(profile: &Path) -> Result<u64> {
    let out = Command::new("callgrind_annotate")
        .arg(profile)
        .output()
        .context("running callgrind_annotate")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_program_totals(&text).with_context(|| {
        format!(
            "no PROGRAM TOTALS in `callgrind_annotate {}`: {}",
            profile.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// The instruction count of the `PROGRAM TOTALS` line: `12,345,678 (100.0%)
/// PROGRAM TOTALS` (older versions: `12,345,678  PROGRAM TOTALS`).
fn parse_program_totals(annotate: &str) -> Option<u64> {
    let line = annotate
        .lines()
        .find(|line| line.contains("PROGRAM TOTALS"))?;
    line.split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Result<Option<Options>> {
        parse_options(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn options_select_one_run_of_their_own() {
        let all = options(&[]).unwrap().unwrap();
        assert_eq!(all.only, None);
        assert_eq!(all.profile, "release");
        assert_eq!(all.soak_backend, SoakBackend::Stdio);
        let pairs = options(&["--pairs", "3", "--requests", "1000"])
            .unwrap()
            .unwrap();
        assert_eq!(pairs.only, Some(Only::Pairs(3)));
        assert_eq!(pairs.requests, Some(1000));
        let soak = options(&[
            "--soak",
            "300s",
            "--soak-backend",
            "http",
            "--soak-every",
            "15s",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(soak.soak_backend, SoakBackend::Http);
        assert_eq!(soak.soak_every, Duration::from_secs(15));
        assert!(options(&["--help"]).unwrap().is_none());
        for bad in [
            &["--pairs", "2", "--callgrind"][..],
            &["--pairs", "0"],
            &["--requests", "0"],
            &["--soak-backend", "ws"],
            &["--soak-every", "15"],
            &["--rounds"],
            &["--bogus"],
        ] {
            assert!(options(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn durations_are_read() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn help_lists_every_option() {
        for option in [
            "--no-build",
            "--profile",
            "--duration",
            "--warmup",
            "--rounds",
            "--soak",
            "--soak-backend",
            "--soak-every",
            "--pairs",
            "--callgrind",
            "--requests",
            "--unmeasured",
            "--reload",
            "--help",
        ] {
            let described = USAGE.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with(&format!("{option} "))
                    || line.starts_with(&format!("-h, {option} "))
            });
            assert!(described, "{option} is not described in the help");
        }
    }

    #[test]
    fn program_totals_are_read_from_callgrind_annotate() {
        let annotate = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
641,023,407 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
";
        assert_eq!(parse_program_totals(annotate), Some(641_023_407));
        assert_eq!(
            parse_program_totals("12,345  PROGRAM TOTALS\n"),
            Some(12_345)
        );
        assert_eq!(parse_program_totals("nothing here"), None);
    }

    #[test]
    fn pairs_are_rendered_with_cpu_busy_and_median() {
        let rounds = [
            Round {
                path: "HTTP→HTTP",
                direct_rps: 60_000.0,
                through_rps: 30_000.0,
                cpu: Some(([14.0, 13.0], [14.0, 13.0, 27.0])),
            },
            Round {
                path: "HTTP→HTTP",
                direct_rps: 50_000.0,
                through_rps: 30_000.0,
                cpu: None,
            },
        ];
        let mut out = String::new();
        render_pairs(&rounds, 2, &mut out);
        // 27 µs a call at 60k/s is 1.62 of 2 cores; 54 µs at 30k/s the same.
        assert!(
            out.contains("| 1 | 60000 | 30000 | 50 % | 14.0 + 13.0 = 27.0 | 14.0 + 13.0 + 27.0 = 54.0 | 50 % | 81 % | 81 % |"),
            "{out}"
        );
        assert!(out.contains("| 2 | 50000 | 30000 | 60 % | — |"), "{out}");
        assert!(out.contains("Median ratio of 2 pairs: **60 %**."), "{out}");
    }

    #[test]
    fn round_cpu_is_rendered_with_its_ratio() {
        let mut report = Report::new(&parse_options(&[]).unwrap().unwrap());
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
