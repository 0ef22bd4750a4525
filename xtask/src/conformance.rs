//! `cargo xtask conformance`: runs the official MCP conformance suite (server mode) against
//! Only1MCP's HTTP face, which fronts our fixture server (`conformance/fixture_server.py`).
//!
//! Targets:
//! - default: build `only1mcp`, write a config with one stdio backend `fixture` (no name
//!   prefix) and an `http.listen` on a free loopback port, start `only1mcp start --config`,
//!   wait until it lists the fixture's tools, then run the suite against `/mcp`;
//! - `--gateway-url URL`: a gateway that is already running (nothing is started);
//! - `--fixture-direct`: the fixture itself over Streamable HTTP (validates the fixture; its
//!   stdio face is smoke-checked first with `conformance/fixture_stdio_check.py`).
//!
//! Each requirement set (`2026-07-28`, `2025-11-25`) runs with
//! `--expected-failures conformance/baseline.yml`; results go under `target/conformance/`.
//! The command fails when the suite reports a failure the baseline does not expect, or a
//! baseline entry that now passes.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo_in, peers, run_step, secs, show};

/// The requirement sets run by default, newest first.
const REQUIREMENTS: &[&str] = &["2026-07-28", "2025-11-25"];

/// How long the target gets to accept connections and list the fixture's tools.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A tool only the fixture has; the target is ready when `tools/list` names it.
const READY_TOOL: &str = "test_simple_text";

const USAGE: &str = "\
Usage: cargo xtask conformance [--gateway-url URL | --fixture-direct]
                               [--requirements REV]... [--scenario NAME] [--baseline FILE]

Runs the MCP conformance suite (server mode) for each requirement set (default: 2026-07-28
and 2025-11-25) with --expected-failures conformance/baseline.yml. Output: target/conformance/.

  (default)           build only1mcp, start it with one stdio backend (the fixture, unprefixed)
                      and an HTTP face on a free 127.0.0.1 port, and test http://127.0.0.1:PORT/mcp
  --gateway-url URL   test an already running gateway at URL (e.g. http://127.0.0.1:7331/mcp)
  --fixture-direct    test conformance/fixture_server.py itself over Streamable HTTP (after a
                      smoke check of its stdio face, conformance/fixture_stdio_check.py)
  --requirements REV  run this requirement set only (repeatable)
  --scenario NAME     run one scenario (at each REV's spec version) instead of the whole set
  --baseline FILE     expected failures (default conformance/baseline.yml; YAML
                      `server: [scenario, \"scenario:check-id\"]`)
";

#[derive(Debug)]
enum Target {
    Gateway,
    GatewayUrl(String),
    FixtureDirect,
}

impl Target {
    fn label(&self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::GatewayUrl(_) => "gateway-url",
            Self::FixtureDirect => "fixture",
        }
    }
}

#[derive(Debug)]
struct Options {
    target: Target,
    /// `--expected-failures` file (default `conformance/baseline.yml`).
    baseline: Option<PathBuf>,
    requirements: Vec<String>,
    scenario: Option<String>,
}

fn parse(args: &[OsString]) -> Result<Options> {
    let mut target = None;
    let mut requirements = Vec::new();
    let mut scenario = None;
    let mut baseline = None;
    let mut args = args.iter().map(|arg| arg.to_string_lossy().into_owned());
    let set_target = |new: Target, target: &mut Option<Target>| {
        if target.replace(new).is_some() {
            bail!("--gateway-url and --fixture-direct exclude each other\n\n{USAGE}");
        }
        Ok(())
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--gateway-url" => {
                set_target(Target::GatewayUrl(value("--gateway-url")?), &mut target)?
            }
            "--fixture-direct" => set_target(Target::FixtureDirect, &mut target)?,
            "--requirements" => requirements.push(value("--requirements")?),
            "--scenario" => scenario = Some(value("--scenario")?),
            "--baseline" => baseline = Some(PathBuf::from(value("--baseline")?)),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg:?}\n\n{USAGE}"),
        }
    }
    if requirements.is_empty() {
        requirements = REQUIREMENTS.iter().map(|rev| (*rev).to_owned()).collect();
    }
    Ok(Options {
        target: target.unwrap_or(Target::Gateway),
        baseline,
        requirements,
        scenario,
    })
}

/// `cargo xtask conformance [ARGS]`.
pub(crate) fn run(workspace: &Path, peers_dir: &Path, args: &[OsString]) -> Result<()> {
    let options = parse(args)?;
    let started = Instant::now();
    peers::install(peers_dir)?;

    let out = target_dir(workspace).join("conformance");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let baseline = match &options.baseline {
        Some(path) => std::path::absolute(path)
            .with_context(|| format!("cannot make {} absolute", path.display()))?,
        None => workspace.join("conformance/baseline.yml"),
    };
    if !baseline.exists() {
        bail!("{} is missing", baseline.display());
    }

    // Keep the started process (if any) alive until the runs are over; dropping stops it.
    let (url, mut server) = match &options.target {
        Target::GatewayUrl(url) => (url.clone(), None),
        Target::Gateway => {
            let (url, server) = start_gateway(workspace, peers_dir, &out)?;
            (url, Some(server))
        }
        Target::FixtureDirect => {
            // The suite only reaches the fixture's HTTP face; check its stdio face too.
            let mut check = Command::new(peers_dir.join("venv/bin/python"));
            check
                .arg(workspace.join("conformance/fixture_stdio_check.py"))
                .current_dir(workspace);
            run_step("fixture stdio check", &mut check)?;
            let (url, server) = start_fixture(workspace, peers_dir, &out)?;
            (url, Some(server))
        }
    };
    if let Some(server) = server.as_mut() {
        wait_ready(&url, server)?;
    }

    let label = options.target.label();
    let mut runs = Vec::new();
    for rev in &options.requirements {
        runs.push(run_suite(
            peers_dir, &url, rev, &options, &baseline, &out, label,
        )?);
    }
    drop(server);

    let summary = render_summary(label, &url, &runs);
    let summary_path = out.join(format!("{label}-summary.txt"));
    fs::write(&summary_path, &summary)
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    println!("{summary}");
    eprintln!(
        "xtask: conformance finished in {}; summary in {}",
        secs(started.elapsed()),
        summary_path.display()
    );
    let failed: Vec<&str> = runs
        .iter()
        .filter(|run| !run.ok)
        .map(|run| run.rev.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "conformance failed for {} (unexpected failures or stale baseline entries; see the logs \
             under {})",
            failed.join(", "),
            out.display()
        )
    }
}

/// `$CARGO_TARGET_DIR` if set, else `<workspace>/target`.
fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

/// A process started for the run; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first, so the gateway can stop its own backends; by pid, via kill(1).
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                eprintln!("xtask: stopped {}", self.name);
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: killed {} (it ignored SIGTERM for 5s)", self.name);
    }
}

impl Server {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Result<Self> {
        let file =
            fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let file2 = file.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(file2));
        eprintln!("xtask: $ {} (log: {})", show(cmd), log.display());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self { name, child, log })
    }

    /// Fails if the process has exited, quoting the end of its log.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} exited ({status}) before it was ready; end of {}:\n{}",
                self.name,
                self.log.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn fixture_script(workspace: &Path) -> Result<PathBuf> {
    let script = workspace.join("conformance/fixture_server.py");
    if !script.exists() {
        bail!("{} is missing", script.display());
    }
    Ok(script)
}

fn start_fixture(workspace: &Path, peers_dir: &Path, out: &Path) -> Result<(String, Server)> {
    let port = free_port()?;
    let mut cmd = Command::new(peers_dir.join("venv/bin/python"));
    cmd.arg(fixture_script(workspace)?)
        .args(["--http", &port.to_string()])
        .current_dir(workspace);
    let server = Server::spawn("the fixture", &mut cmd, out.join("fixture-direct.log"))?;
    Ok((format!("http://127.0.0.1:{port}/mcp"), server))
}

fn start_gateway(workspace: &Path, peers_dir: &Path, out: &Path) -> Result<(String, Server)> {
    let mut build = cargo_in(workspace);
    build.args(["build", "-p", "only1mcp-cli"]);
    run_step("cargo build", &mut build)?;
    let binary = target_dir(workspace).join("debug/only1mcp");
    if !binary.exists() {
        bail!("{} was not built", binary.display());
    }

    let port = free_port()?;
    let config = out.join("only1mcp-conformance.yaml");
    fs::write(
        &config,
        gateway_config(peers_dir, &fixture_script(workspace)?, port),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let mut cmd = Command::new(&binary);
    cmd.arg("start")
        .arg("--config")
        .arg(&config)
        .current_dir(out);
    let server = Server::spawn("the gateway", &mut cmd, out.join("gateway.log"))?;
    Ok((format!("http://127.0.0.1:{port}/mcp"), server))
}

/// The gateway config: one unprefixed stdio backend (the fixture) and the HTTP face.
fn gateway_config(peers_dir: &Path, fixture: &Path, port: u16) -> String {
    let python = peers_dir.join("venv/bin/python");
    format!(
        "# Written by `cargo xtask conformance`: the gateway in front of the conformance fixture.\n\
         logging:\n  level: info\n\
         http:\n  listen: \"127.0.0.1:{port}\"\n\
         servers:\n  fixture:\n    command: {}\n    args: [{}]\n    prefix: false\n",
        yaml_string(&python.to_string_lossy()),
        yaml_string(&fixture.to_string_lossy()),
    )
}

/// A double-quoted YAML scalar.
fn yaml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Waits until `url` accepts connections and a 2026-07-28 `tools/list` names [`READY_TOOL`]
/// (the backend is up). If the port opens but the tool never shows up, warns and goes on:
/// the suite then reports what is wrong.
fn wait_ready(url: &str, server: &mut Server) -> Result<()> {
    let addr = socket_addr(url)?;
    let started = Instant::now();
    let deadline = started + READY_TIMEOUT;
    let mut port_open = false;
    let mut last = String::new();
    while Instant::now() < deadline {
        server.check_alive()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            if !port_open {
                eprintln!(
                    "xtask: {url} accepts connections after {}",
                    secs(started.elapsed())
                );
                port_open = true;
            }
            match probe_tools_list(url, &addr) {
                Ok(body) if body.contains(READY_TOOL) => {
                    eprintln!(
                        "xtask: {url} lists {READY_TOOL} after {}",
                        secs(started.elapsed())
                    );
                    return Ok(());
                }
                Ok(body) => last = body,
                Err(err) => last = format!("{err:#}"),
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    if port_open {
        let last: String = last.chars().take(600).collect();
        eprintln!(
            "xtask: warning: {url} never listed {READY_TOOL} within {} (last answer: {last}); \
             running the suite anyway",
            secs(READY_TIMEOUT)
        );
        Ok(())
    } else {
        bail!(
            "{} did not accept connections on {addr} within {}; see {}",
            server.name,
            secs(READY_TIMEOUT),
            server.log.display()
        )
    }
}

/// `host:port` of an `http://host:port/...` URL.
fn socket_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .parse()
        .with_context(|| format!("{url}: expected a numeric host:port"))
}

/// One raw HTTP/1.1 POST of a 2026-07-28 `tools/list`; returns the response (head and body).
fn probe_tools_list(url: &str, addr: &SocketAddr) -> Result<String> {
    let path = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("/");
    let body = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"#,
        r#""io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
        r#""io.modelcontextprotocol/clientCapabilities":{},"#,
        r#""io.modelcontextprotocol/clientInfo":{"name":"only1mcp-xtask","version":"0"}}}}"#
    );
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/list\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect_timeout(addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    // A timeout after some bytes still leaves a usable (partial) answer.
    let _ = stream.read_to_end(&mut response);
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// The outcome of one suite run.
struct SuiteRun {
    rev: String,
    ok: bool,
    log: PathBuf,
    /// Scenario -> (passed checks, failed checks).
    scenarios: BTreeMap<String, (u32, u32)>,
    /// Scenarios the requirement set runs but does not score (extension, pending, ...).
    unscored: BTreeMap<String, String>,
    /// Scenarios the suite named as unexpected failures (failed or warned, not baselined).
    unexpected: Vec<String>,
    /// Baseline entries that now pass.
    stale: Vec<String>,
    /// The closing lines: `Total: ...` and the baseline verdict.
    closing: Vec<String>,
}

fn run_suite(
    peers_dir: &Path,
    url: &str,
    rev: &str,
    options: &Options,
    baseline: &Path,
    out: &Path,
    label: &str,
) -> Result<SuiteRun> {
    let name = match &options.scenario {
        Some(scenario) => format!("{label}-{rev}-{scenario}"),
        None => format!("{label}-{rev}"),
    };
    let results = out.join(&name);
    if results.exists() {
        fs::remove_dir_all(&results)
            .with_context(|| format!("cannot remove {}", results.display()))?;
    }
    let log = out.join(format!("{name}.log"));

    let mut cmd = Command::new(peers::conformance_bin(peers_dir));
    cmd.env("PATH", peers::path_with(&peers::node22_bin_dir(peers_dir))?)
        .env("NO_COLOR", "1")
        .args(["server", "--url", url]);
    match &options.scenario {
        Some(scenario) => cmd.args(["--scenario", scenario, "--spec-version", rev]),
        None => cmd.args(["--requirements", rev]),
    };
    cmd.arg("--expected-failures")
        .arg(baseline)
        .arg("-o")
        .arg(&results);
    eprintln!("xtask: $ {} (log: {})", show(&cmd), log.display());
    let started = Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot start the conformance suite")?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = strip_ansi(&text);
    fs::write(&log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    eprintln!(
        "xtask: requirements {rev}: {} after {}",
        output.status,
        secs(started.elapsed())
    );

    let mut run = SuiteRun {
        rev: rev.to_owned(),
        ok: output.status.success(),
        log,
        scenarios: BTreeMap::new(),
        unscored: BTreeMap::new(),
        unexpected: Vec::new(),
        stale: Vec::new(),
        closing: Vec::new(),
    };
    parse_output(&text, options.scenario.as_deref(), &mut run);
    run.unscored = unscored(peers_dir, rev)?;
    Ok(run)
}

/// The server scenarios `rev` runs but does not score, with the reason (`extension`,
/// `pending`, `added-after-release`), from `conformance list --requirements REV`.
fn unscored(peers_dir: &Path, rev: &str) -> Result<BTreeMap<String, String>> {
    let mut cmd = Command::new(peers::conformance_bin(peers_dir));
    cmd.env("PATH", peers::path_with(&peers::node22_bin_dir(peers_dir))?)
        .env("NO_COLOR", "1")
        .args(["list", "--requirements", rev]);
    let listing = crate::capture(&mut cmd)?;
    let mut out = BTreeMap::new();
    let mut reason = None;
    for line in listing.lines() {
        if line.starts_with("Run and reported, but never scored") {
            reason = Some(String::new());
        } else if let Some(current) = reason.as_mut() {
            let trimmed = line.trim();
            if let Some(name) = trimmed.strip_prefix("- ") {
                if let Some(name) = name.strip_suffix(" [server]") {
                    out.insert(name.to_owned(), current.clone());
                }
            } else if let Some((why, _count)) = trimmed.split_once(" (") {
                *current = why.to_owned();
            }
        }
    }
    Ok(out)
}

/// Reads the `✓ name: N passed, M failed` lines (or, for a single `scenario`, its
/// `Passed: N/M, K failed` line) and the closing lines.
fn parse_output(text: &str, scenario: Option<&str>, run: &mut SuiteRun) {
    let mut in_closing = false;
    // Inside the closing lists: Some(false) unexpected failures, Some(true) stale entries.
    let mut list: Option<bool> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ "))
            && let Some((name, counts)) = rest.split_once(": ")
        {
            let number = |word: &str| {
                counts
                    .split(", ")
                    .find_map(|part| part.strip_suffix(word))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            run.scenarios
                .insert(name.to_owned(), (number(" passed"), number(" failed")));
        }
        if let (Some(name), Some(rest)) = (scenario, trimmed.strip_prefix("Passed: "))
            && let Some((ratio, _)) = rest.split_once(',')
            && let Some((passed, total)) = ratio.split_once('/')
            && let (Ok(passed), Ok(total)) =
                (passed.trim().parse::<u32>(), total.trim().parse::<u32>())
        {
            let failed = total.saturating_sub(passed);
            run.scenarios.insert(name.to_owned(), (passed, failed));
        }
        if trimmed.starts_with("Total:") || trimmed.starts_with("Passed: ") {
            in_closing = true;
        }
        if !in_closing {
            continue;
        }
        if trimmed.starts_with("Unexpected failures (") {
            list = Some(false);
        } else if trimmed.starts_with("Stale baseline entries") {
            list = Some(true);
        } else if let (Some(stale), Some(name)) = (
            list,
            trimmed
                .strip_prefix("✗ ")
                .or_else(|| trimmed.strip_prefix("✓ ")),
        ) {
            let name = name.split(':').next().unwrap_or(name).to_owned();
            if stale {
                run.stale.push(name);
            } else {
                run.unexpected.push(name);
            }
        } else if !trimmed.is_empty() {
            list = None;
        }
        if !trimmed.is_empty() {
            run.closing.push(trimmed.to_owned());
        }
    }
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A scenario-by-requirement-set table plus each run's closing lines.
fn render_summary(label: &str, url: &str, runs: &[SuiteRun]) -> String {
    let mut names: Vec<&String> = runs.iter().flat_map(|run| run.scenarios.keys()).collect();
    names.sort();
    names.dedup();
    let width = names
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!("MCP conformance (server mode), target {label}: {url}\n\n");
    out.push_str(&format!("{:<width$}", "scenario"));
    for run in runs {
        out.push_str(&format!("  {:<26}", run.rev));
    }
    out.push('\n');
    for name in names {
        out.push_str(&format!("{name:<width$}"));
        for run in runs {
            let cell = match run.scenarios.get(name) {
                None => "-".to_owned(),
                Some((passed, failed)) => {
                    let verdict = if *failed > 0 {
                        "FAIL"
                    } else if run.unexpected.contains(name) {
                        "WARN"
                    } else if run.stale.contains(name) {
                        "pass (stale baseline)"
                    } else {
                        "pass"
                    };
                    let note = run
                        .unscored
                        .get(name)
                        .map(|why| format!(" ({why})"))
                        .unwrap_or_default();
                    format!("{verdict} {passed}/{}{note}", passed + failed)
                }
            };
            out.push_str(&format!("  {cell:<26}"));
        }
        out.push('\n');
    }
    for run in runs {
        out.push_str(&format!(
            "\n{} [{}] (log: {}):\n",
            run.rev,
            if run.ok { "ok" } else { "FAILED" },
            run.log.display()
        ));
        for line in &run.closing {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}
