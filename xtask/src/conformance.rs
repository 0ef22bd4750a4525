//! `cargo xtask conformance`: runs the official MCP conformance suite against Only1MCP, in both
//! of its modes.
//!
//! - **Server mode** tests the gateway's HTTP face, which fronts our fixture server
//!   (`conformance/fixture_server.py`):
//!   - default: build `only1mcp`, write a config with the fixture in two halves as two stdio
//!     backends (`test`, renamed by the default prefixing with the separator `_`, and
//!     `fixture`, unprefixed; see [`gateway_config`]) and an `http.listen` on a free loopback
//!     port, start `only1mcp start --config`,
//!     wait until it lists the fixture's tools, then run the suite against `/mcp`;
//!   - `--gateway-url URL`: a gateway that is already running (nothing is started);
//!   - `--fixture-direct`: the fixture itself over Streamable HTTP (validates the fixture; its
//!     stdio face is smoke-checked first with `conformance/fixture_stdio_check.py`).
//! - **Client mode** tests the gateway's backend connector: the suite starts a mock server per
//!   scenario and runs `conformance/client_adapter.py <mock URL>`, which starts
//!   `only1mcp start --stdio` with the mock as its only (`url:`) backend and acts as the end
//!   client in front of it.
//!
//! By default both modes run, each for both requirement sets (`2026-07-28`, `2025-11-25`).
//! Expected failures come from `conformance/baseline.yml` (see [`Baseline`]); for each run a
//! plain suite baseline is derived from it under `target/conformance/`, where all results go.
//! The command fails when the suite reports a failure the baseline does not expect, or a
//! baseline entry that now passes; when a scenario that `conformance list --requirements REV`
//! names for the mode reports no result; and, in client mode, when the adapter (the end client)
//! logs `[adapter] FAILED` in a scenario the baseline's `client-adapter` lists do not name (the
//! suite itself ignores the adapter's exit status), or a `client-adapter` entry no longer fails.

use std::{
    collections::{BTreeMap, BTreeSet},
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

use crate::{cargo_in, peers, quote, run_step, secs, show};

/// The requirement sets run by default, newest first.
const REQUIREMENTS: &[&str] = &["2026-07-28", "2025-11-25"];

/// How long the target gets to accept connections and list the fixture's tools.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Tools only the fixture has, one from each half (`--half prefixed`, `--half bare`); the
/// target is ready when `tools/list` names them all.
const READY_TOOLS: [&str; 2] = ["test_simple_text", "json_schema_2020_12_tool"];

/// The suite's per-scenario client timeout in client mode (`--timeout`, ms). The suite starts all
/// scenarios of a set at once and the adapter queues them (`take_slot` in
/// `conformance/client_adapter.py`), so a scenario's time includes its wait for a slot.
const CLIENT_TIMEOUT_MS: &str = "120000";

const USAGE: &str = "\
Usage: cargo xtask conformance [--server | --client] [--gateway-url URL | --fixture-direct]
                               [--requirements REV]... [--scenario NAME] [--baseline FILE]
                               [--no-build]

Runs the MCP conformance suite for each requirement set (default: 2026-07-28 and 2025-11-25)
in server mode and in client mode, with the expected failures of conformance/baseline.yml.
Output: target/conformance/.

  --server            server mode only: the gateway's HTTP face in front of the fixture
  --client            client mode only: the gateway's backend connector, driven by
                      conformance/client_adapter.py against the suite's mock servers

Server mode's target (by default: build only1mcp, start it with the fixture in two halves as two
stdio backends, one renamed by the default prefixing, and an HTTP face on a free 127.0.0.1 port,
and test http://127.0.0.1:PORT/mcp):
  --gateway-url URL   test an already running gateway at URL (e.g. http://127.0.0.1:7331/mcp);
                      implies --server
  --fixture-direct    test conformance/fixture_server.py itself over Streamable HTTP (after a
                      smoke check of its stdio face, conformance/fixture_stdio_check.py);
                      implies --server

Other options:
  --requirements REV  run this requirement set only (repeatable)
  --scenario NAME     run one scenario (at each REV's spec version) instead of the whole set;
                      its mode is looked up unless --server or --client is given
  --baseline FILE     expected failures (default conformance/baseline.yml)
  --no-build          use the existing target/debug/only1mcp instead of running
                      `cargo build -p only1mcp-cli` (`cargo xtask test` passes this: its
                      `cargo test --workspace` has just built the binary, with the workspace's
                      unified features, which `cargo build -p` would rebuild without)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Server,
    Client,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
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
    /// Server mode's target.
    target: Target,
    /// Modes to run; empty until resolved (both, or the mode of `--scenario`).
    modes: Vec<Mode>,
    /// The baseline file (default `conformance/baseline.yml`).
    baseline: Option<PathBuf>,
    requirements: Vec<String>,
    scenario: Option<String>,
    /// Use the existing gateway binary; do not run `cargo build`.
    no_build: bool,
}

fn parse(args: &[OsString]) -> Result<Options> {
    let mut target = None;
    let mut requirements = Vec::new();
    let mut scenario = None;
    let mut baseline = None;
    let mut modes = Vec::new();
    let mut no_build = false;
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
            "--server" => modes.push(Mode::Server),
            "--client" => modes.push(Mode::Client),
            "--gateway-url" => {
                set_target(Target::GatewayUrl(value("--gateway-url")?), &mut target)?
            }
            "--fixture-direct" => set_target(Target::FixtureDirect, &mut target)?,
            "--requirements" => requirements.push(value("--requirements")?),
            "--scenario" => scenario = Some(value("--scenario")?),
            "--baseline" => baseline = Some(PathBuf::from(value("--baseline")?)),
            "--no-build" => no_build = true,
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
    modes.sort_by_key(|mode| *mode == Mode::Client);
    modes.dedup();
    if target.is_some() {
        if modes.contains(&Mode::Client) {
            bail!(
                "--gateway-url and --fixture-direct select server mode; drop --client\n\n{USAGE}"
            );
        }
        modes = vec![Mode::Server];
    }
    Ok(Options {
        target: target.unwrap_or(Target::Gateway),
        modes,
        baseline,
        requirements,
        scenario,
        no_build,
    })
}

/// `cargo xtask conformance [ARGS]`.
pub(crate) fn run(workspace: &Path, peers_dir: &Path, args: &[OsString]) -> Result<()> {
    let mut options = parse(args)?;
    let started = Instant::now();
    peers::install(peers_dir)?;

    let out = target_dir(workspace).join("conformance");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let baseline_path = match &options.baseline {
        Some(path) => std::path::absolute(path)
            .with_context(|| format!("cannot make {} absolute", path.display()))?,
        None => workspace.join("conformance/baseline.yml"),
    };
    let baseline = Baseline::load(&baseline_path)?;
    if options.modes.is_empty() {
        options.modes = match &options.scenario {
            Some(scenario) => vec![scenario_mode(peers_dir, scenario)?],
            None => vec![Mode::Server, Mode::Client],
        };
    }

    let needs_gateway = options.modes.contains(&Mode::Client) || options.target == Target::Gateway;
    let binary = if needs_gateway {
        Some(build_gateway(workspace, options.no_build)?)
    } else {
        None
    };

    // The modes run side by side: server mode is one gateway and a sequential suite, client
    // mode is mostly waiting on short-lived processes, and neither keeps two cores busy.
    let run_mode = |mode: Mode| -> Result<Section> {
        let mode_started = Instant::now();
        let section = match mode {
            Mode::Server => run_server_mode(
                workspace,
                peers_dir,
                binary.as_deref(),
                &options,
                &baseline,
                &out,
            )?,
            Mode::Client => {
                let binary = binary.as_deref().context("the gateway was not built")?;
                run_client_mode(workspace, peers_dir, binary, &options, &baseline, &out)?
            }
        };
        eprintln!(
            "xtask: conformance {} mode took {}",
            mode.name(),
            secs(mode_started.elapsed())
        );
        Ok(section)
    };
    let sections = thread::scope(|scope| {
        let handles: Vec<_> = options
            .modes
            .iter()
            .map(|&mode| scope.spawn(move || run_mode(mode)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| bail!("a conformance run panicked"))
            })
            .collect::<Result<Vec<Section>>>()
    })?;

    let mut summary = String::new();
    for section in &sections {
        let text = render_summary(section);
        let path = out.join(format!("{}-summary.txt", section.label));
        fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        summary.push_str(&text);
        summary.push('\n');
    }
    println!("{summary}");
    eprintln!(
        "xtask: conformance finished in {}; summaries in {}/*-summary.txt",
        secs(started.elapsed()),
        out.display()
    );
    let failed: Vec<String> = sections
        .iter()
        .flat_map(|section| {
            section
                .runs
                .iter()
                .filter(|run| !run.ok)
                .map(move |run| format!("{} mode {}", section.mode.name(), run.rev))
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "conformance failed for {} (unexpected failures, stale baseline entries, listed \
             scenarios that reported nothing, or adapter failures; see the summary above, the \
             logs under {} and {})",
            failed.join(", "),
            out.display(),
            baseline_path.display()
        )
    }
}

/// Which mode `scenario` belongs to, from `conformance list --client`.
fn scenario_mode(peers_dir: &Path, scenario: &str) -> Result<Mode> {
    let listing = crate::capture(suite(peers_dir)?.args(["list", "--client"]))?;
    let is_client = listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .any(|name| name.split(' ').next() == Some(scenario));
    Ok(if is_client {
        Mode::Client
    } else {
        Mode::Server
    })
}

/// The conformance suite command, with Node 22 first on `PATH` and colours off.
fn suite(peers_dir: &Path) -> Result<Command> {
    let mut cmd = Command::new(peers::conformance_bin(peers_dir));
    cmd.env("PATH", peers::path_with(&peers::node22_bin_dir(peers_dir))?)
        .env("NO_COLOR", "1");
    Ok(cmd)
}

/// `cargo build -p only1mcp-cli` (unless `no_build`); returns the binary.
fn build_gateway(workspace: &Path, no_build: bool) -> Result<PathBuf> {
    let binary = target_dir(workspace).join("debug/only1mcp");
    if no_build {
        if !binary.exists() {
            bail!(
                "{} does not exist; build it (`cargo build -p only1mcp-cli`) or drop --no-build",
                binary.display()
            );
        }
        eprintln!("xtask: using the existing {}", binary.display());
        return Ok(binary);
    }
    let mut build = cargo_in(workspace);
    build.args(["build", "-p", "only1mcp-cli"]);
    run_step("cargo build", &mut build)?;
    if !binary.exists() {
        bail!("{} was not built", binary.display());
    }
    Ok(binary)
}

/// The runs of one mode.
struct Section {
    mode: Mode,
    /// `gateway`, `gateway-url` or `fixture` (server mode), `client` (client mode).
    label: &'static str,
    /// What was tested: the URL (server mode) or the adapter command (client mode).
    subject: String,
    runs: Vec<SuiteRun>,
}

fn run_server_mode(
    workspace: &Path,
    peers_dir: &Path,
    binary: Option<&Path>,
    options: &Options,
    baseline: &Baseline,
    out: &Path,
) -> Result<Section> {
    // Keep the started process (if any) alive until the runs are over; dropping stops it.
    let (url, mut server) = match &options.target {
        Target::GatewayUrl(url) => (url.clone(), None),
        Target::Gateway => {
            let binary = binary.context("the gateway was not built")?;
            let (url, server) = start_gateway(workspace, binary, peers_dir, out)?;
            (url, Some(server))
        }
        Target::FixtureDirect => {
            // The suite only reaches the fixture's HTTP face; check its stdio face too.
            let mut check = Command::new(peers_dir.join("venv/bin/python"));
            check
                .arg(workspace.join("conformance/fixture_stdio_check.py"))
                .current_dir(workspace);
            run_step("fixture stdio check", &mut check)?;
            let (url, server) = start_fixture(workspace, peers_dir, out)?;
            (url, Some(server))
        }
    };
    if let Some(server) = server.as_mut() {
        wait_ready(&url, server)?;
    }
    let label = options.target.label();
    let mut runs = Vec::new();
    for rev in &options.requirements {
        let leg: Vec<OsString> = vec!["server".into(), "--url".into(), url.clone().into()];
        runs.push(run_suite(
            peers_dir,
            Mode::Server,
            &leg,
            &[],
            rev,
            options,
            baseline,
            out,
            label,
        )?);
    }
    drop(server);
    Ok(Section {
        mode: Mode::Server,
        label,
        subject: url,
        runs,
    })
}

fn run_client_mode(
    workspace: &Path,
    peers_dir: &Path,
    binary: &Path,
    options: &Options,
    baseline: &Baseline,
    out: &Path,
) -> Result<Section> {
    let adapter = workspace.join("conformance/client_adapter.py");
    if !adapter.exists() {
        bail!("{} is missing", adapter.display());
    }
    // The suite splits the command at spaces and runs it through a shell, so quoted words
    // survive as long as they contain no spaces.
    let command = [peers_dir.join("venv/bin/python"), adapter]
        .iter()
        .map(|path| quote(path.as_os_str()))
        .collect::<Vec<_>>()
        .join(" ");
    let slots = out.join("client-slots");
    fs::create_dir_all(&slots).with_context(|| format!("cannot create {}", slots.display()))?;
    let env: Vec<(&str, OsString)> = vec![
        ("ONLY1MCP_BIN", binary.as_os_str().to_owned()),
        ("ONLY1MCP_CONFORMANCE_SLOTS", slots.into_os_string()),
    ];
    let leg: Vec<OsString> = vec![
        "client".into(),
        "--command".into(),
        command.clone().into(),
        "--timeout".into(),
        CLIENT_TIMEOUT_MS.into(),
    ];
    // The requirement sets run side by side; the adapter's slots bound the load.
    let runs = thread::scope(|scope| {
        let handles: Vec<_> = options
            .requirements
            .iter()
            .map(|rev| {
                let (leg, env) = (&leg, &env);
                scope.spawn(move || {
                    run_suite(
                        peers_dir,
                        Mode::Client,
                        leg,
                        env,
                        rev,
                        options,
                        baseline,
                        out,
                        "client",
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| bail!("a conformance run panicked"))
            })
            .collect::<Result<Vec<SuiteRun>>>()
    })?;
    Ok(Section {
        mode: Mode::Client,
        label: "client",
        subject: command,
        runs,
    })
}

/// `conformance/baseline.yml`: the expected failures of both modes and all requirement sets.
///
/// The file is YAML in a fixed shape: top-level keys, each holding a list of entries
/// (`scenario` or `scenario:check-id`, as in the suite's `--expected-failures` files), one
/// `- entry` per line with an optional `# comment`, or `[]`. The keys:
///
/// - `server`, `client`: failures expected in every requirement set (the suite's own format, so
///   the file also works as a plain `--expected-failures` file);
/// - `server@REV`, `client@REV`: failures expected in requirement set REV only;
/// - `flaky-server`, `flaky-client`, `flaky-server@REV`, `flaky-client@REV`: entries whose
///   outcome changes from run to run. They are left out of the suite's baseline; when one of
///   them is reported as an unexpected failure, the run still counts as passed (with a
///   warning). Each is a bug to fix.
/// - `client-adapter`, `client-adapter@REV`: client scenarios (`scenario`, or `group/*` for
///   every scenario under `group/`) in which the adapter, the end client, is expected to log
///   `[adapter] FAILED`. Not passed to the suite, which ignores the adapter's exit; xtask
///   fails the run on any other adapter failure, and on an entry that matched a scenario of
///   the run but no failure (stale).
///
/// For each run, [`Baseline::write_for`] writes the suite a plain baseline with the `server`
/// or `client` list of that set.
struct Baseline {
    path: PathBuf,
    lists: BTreeMap<String, Vec<String>>,
}

impl Baseline {
    fn load(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let lists =
            Self::parse(&text).with_context(|| format!("{} is malformed", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            lists,
        })
    }

    fn parse(text: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for (number, line) in text.lines().enumerate() {
            let number = number + 1;
            let content = strip_comment(line);
            if content.trim().is_empty() {
                continue;
            }
            if !line.starts_with([' ', '-']) {
                let (key, rest) = content
                    .split_once(':')
                    .with_context(|| format!("line {number}: expected `key:`"))?;
                let key = key.trim();
                validate_key(key).with_context(|| format!("line {number}"))?;
                if lists.contains_key(key) {
                    bail!("line {number}: `{key}` appears twice");
                }
                match rest.trim() {
                    "" => current = Some(key.to_owned()),
                    "[]" => current = None,
                    other => bail!(
                        "line {number}: write the entries of `{key}` one per line as `  - entry`, \
                         not `{other}`"
                    ),
                }
                lists.insert(key.to_owned(), Vec::new());
            } else {
                let entry = content
                    .trim()
                    .strip_prefix("- ")
                    .with_context(|| format!("line {number}: expected `  - entry`"))?
                    .trim();
                let entry = unquote(entry);
                let key = current
                    .as_ref()
                    .with_context(|| format!("line {number}: an entry outside a list"))?;
                if key.starts_with("client-adapter") {
                    let scenario = entry.strip_suffix("/*").unwrap_or(entry);
                    if scenario.is_empty() || scenario.contains([' ', ':', '*']) {
                        bail!("line {number}: `{entry}` is not `scenario` or `group/*`");
                    }
                } else if entry.is_empty() || entry.contains([' ', '*']) {
                    bail!("line {number}: `{entry}` is not `scenario` or `scenario:check-id`");
                }
                lists.entry(key.clone()).or_default().push(entry.to_owned());
            }
        }
        Ok(lists)
    }

    fn list(&self, key: &str) -> impl Iterator<Item = &String> {
        self.lists.get(key).into_iter().flatten()
    }

    /// The failures expected in `mode` for requirement set `rev`.
    fn expected(&self, mode: Mode, rev: &str) -> Vec<String> {
        let mode = mode.name();
        self.list(mode)
            .chain(self.list(&format!("{mode}@{rev}")))
            .cloned()
            .collect()
    }

    /// The entries of `mode` whose outcome varies for requirement set `rev`.
    fn flaky(&self, mode: Mode, rev: &str) -> Vec<String> {
        let mode = mode.name();
        self.list(&format!("flaky-{mode}"))
            .chain(self.list(&format!("flaky-{mode}@{rev}")))
            .cloned()
            .collect()
    }

    /// The client scenarios whose adapter is expected to fail in requirement set `rev`
    /// (`scenario`, or `group/*`).
    fn adapter_failures(&self, rev: &str) -> Vec<String> {
        self.list("client-adapter")
            .chain(self.list(&format!("client-adapter@{rev}")))
            .cloned()
            .collect()
    }

    /// Writes the suite's `--expected-failures` file for one run and returns its path.
    fn write_for(&self, mode: Mode, rev: &str, out: &Path) -> Result<PathBuf> {
        let path = out.join(format!("baseline-{}-{rev}.yml", mode.name()));
        let entries = self.expected(mode, rev);
        let mut text = format!(
            "# Derived by `cargo xtask conformance` from {} for {} mode, requirements {rev}.\n{}:",
            self.path.display(),
            mode.name(),
            mode.name()
        );
        if entries.is_empty() {
            text.push_str(" []\n");
        } else {
            text.push('\n');
            for entry in entries {
                text.push_str(&format!("  - \"{entry}\"\n"));
            }
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// `line` up to a `#` that starts a comment (at the start or after whitespace).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let end = (0..bytes.len())
        .find(|&at| bytes[at] == b'#' && (at == 0 || bytes[at - 1].is_ascii_whitespace()))
        .unwrap_or(bytes.len());
    &line[..end]
}

fn unquote(entry: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = entry
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    entry
}

fn validate_key(key: &str) -> Result<()> {
    let base = key.strip_prefix("flaky-").unwrap_or(key);
    let (mode, rev) = match base.split_once('@') {
        Some((mode, rev)) => (mode, Some(rev)),
        None => (base, None),
    };
    let rev_ok = rev.is_none_or(|rev| {
        rev.len() == 10
            && rev.char_indices().all(|(at, c)| {
                if at == 4 || at == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            })
    });
    let mode_ok = match mode {
        "server" | "client" => true,
        "client-adapter" => !key.starts_with("flaky-"),
        _ => false,
    };
    if !mode_ok || !rev_ok {
        bail!(
            "unknown key `{key}` (expected server, client, server@REV, client@REV, one of \
             these with a `flaky-` prefix, client-adapter or client-adapter@REV)"
        );
    }
    Ok(())
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

fn start_gateway(
    workspace: &Path,
    binary: &Path,
    peers_dir: &Path,
    out: &Path,
) -> Result<(String, Server)> {
    let port = free_port()?;
    let config = out.join("only1mcp-conformance.yaml");
    fs::write(
        &config,
        gateway_config(peers_dir, &fixture_script(workspace)?, port),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("start")
        .arg("--config")
        .arg(&config)
        .current_dir(out);
    let server = Server::spawn("the gateway", &mut cmd, out.join("gateway.log"))?;
    Ok((format!("http://127.0.0.1:{port}/mcp"), server))
}

/// The gateway config: the fixture in two halves, two stdio backends, and the HTTP face.
///
/// - `test`, with the default prefixing (`always`) and the separator `_`: the fixture's
///   `test_*` tools and prompts, which it serves without `test_` (`--half prefixed`), so the
///   gateway's renaming gives the scenarios their names back (`simple_text` ->
///   `test_simple_text`) and every call, prompt and completion goes through it;
/// - `fixture`, unprefixed: the rest, the resources and templates above all, whose URIs are
///   never renamed (`--half bare`).
fn gateway_config(peers_dir: &Path, fixture: &Path, port: u16) -> String {
    let python = yaml_string(&peers_dir.join("venv/bin/python").to_string_lossy());
    let fixture = yaml_string(&fixture.to_string_lossy());
    format!(
        "# Written by `cargo xtask conformance`: the gateway in front of the conformance fixture,\n\
         # in two halves: `test` renamed by the default prefixing, `fixture` unprefixed.\n\
         logging:\n  level: info\n\
         http:\n  listen: \"127.0.0.1:{port}\"\n\
         naming:\n  separator: \"_\"\n\
         servers:\n  \
           test:\n    command: {python}\n    args: [{fixture}, \"--half\", \"prefixed\"]\n  \
           fixture:\n    command: {python}\n    args: [{fixture}, \"--half\", \"bare\"]\n    prefix: false\n",
    )
}

/// A double-quoted YAML scalar.
fn yaml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Waits until `url` accepts connections and a 2026-07-28 `tools/list` names [`READY_TOOLS`]
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
                Ok(body) if READY_TOOLS.iter().all(|tool| body.contains(tool)) => {
                    eprintln!(
                        "xtask: {url} lists {READY_TOOLS:?} after {}",
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
            "xtask: warning: {url} never listed {READY_TOOLS:?} within {} (last answer: {last}); \
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
    /// The run passed: the suite exited 0, or every deviation it reported is a flaky entry.
    ok: bool,
    log: PathBuf,
    /// Scenario -> checks (passed, failed, warnings).
    scenarios: BTreeMap<String, (u32, u32, u32)>,
    /// Scenarios the requirement set runs but does not score (extension, pending, ...).
    unscored: BTreeMap<String, String>,
    /// Entries the suite named as unexpected failures (failed or warned, not baselined):
    /// `scenario` or `scenario:check-id`.
    unexpected: Vec<String>,
    /// Baseline entries that now pass.
    stale: Vec<String>,
    /// Baseline entries that failed as expected.
    expected: Vec<String>,
    /// Unexpected failures that are flaky entries of the baseline (tolerated).
    tolerated: Vec<String>,
    /// The closing lines: `Total: ...` and the baseline verdict.
    closing: Vec<String>,
    /// Scenarios the requirement set lists (or the one `--scenario`) that reported no result.
    missing: Vec<String>,
    /// Client mode: scenarios whose adapter logged `[adapter] FAILED` (its client actions did
    /// not complete).
    adapter_failed: BTreeSet<String>,
    /// Adapter failures the baseline's `client-adapter` lists do not expect.
    adapter_unexpected: Vec<String>,
    /// `client-adapter` entries that matched a scenario of the run but no adapter failure.
    adapter_stale: Vec<String>,
}

impl SuiteRun {
    fn new(rev: &str, ok: bool, log: PathBuf) -> Self {
        Self {
            rev: rev.to_owned(),
            ok,
            log,
            scenarios: BTreeMap::new(),
            unscored: BTreeMap::new(),
            unexpected: Vec::new(),
            stale: Vec::new(),
            expected: Vec::new(),
            tolerated: Vec::new(),
            closing: Vec::new(),
            missing: Vec::new(),
            adapter_failed: BTreeSet::new(),
            adapter_unexpected: Vec::new(),
            adapter_stale: Vec::new(),
        }
    }

    /// Fills `missing`, and in client mode the adapter verdict, then decides `ok`: the suite's
    /// own verdict (`ok` so far, after flaky entries) and every scenario listed ran, and every
    /// adapter failure is expected by `adapter_baseline` and every entry of it that applies
    /// failed.
    fn judge(
        &mut self,
        listed: &BTreeSet<String>,
        adapter_failed: Option<BTreeSet<String>>,
        adapter_baseline: &[String],
    ) {
        self.missing = listed
            .iter()
            .filter(|name| !self.scenarios.contains_key(*name))
            .cloned()
            .collect();
        if let Some(failed) = adapter_failed {
            self.adapter_unexpected = failed
                .iter()
                .filter(|name| !adapter_baseline.iter().any(|entry| covers(entry, name)))
                .cloned()
                .collect();
            self.adapter_stale = adapter_baseline
                .iter()
                .filter(|entry| {
                    self.scenarios.keys().any(|name| covers(entry, name))
                        && !failed.iter().any(|name| covers(entry, name))
                })
                .cloned()
                .collect();
            self.adapter_failed = failed;
        }
        self.ok = self.ok
            && self.missing.is_empty()
            && self.adapter_unexpected.is_empty()
            && self.adapter_stale.is_empty();
    }
}

/// Whether baseline entry `entry` (`scenario`, or `group/*` for every scenario under `group/`)
/// names `scenario`.
fn covers(entry: &str, scenario: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') => scenario.starts_with(prefix),
        _ => entry == scenario,
    }
}

/// One suite run: `conformance <leg...> --requirements REV` (or `--scenario NAME
/// --spec-version REV`) with the baseline derived for this mode and set.
#[allow(
    clippy::too_many_arguments,
    reason = "a private helper shared by the two modes; a struct would only rename the arguments"
)]
fn run_suite(
    peers_dir: &Path,
    mode: Mode,
    leg: &[OsString],
    env: &[(&str, OsString)],
    rev: &str,
    options: &Options,
    baseline: &Baseline,
    out: &Path,
    label: &str,
) -> Result<SuiteRun> {
    let name = match &options.scenario {
        Some(scenario) => format!("{label}-{rev}-{}", scenario.replace('/', "_")),
        None => format!("{label}-{rev}"),
    };
    let results = out.join(&name);
    if results.exists() {
        fs::remove_dir_all(&results)
            .with_context(|| format!("cannot remove {}", results.display()))?;
    }
    let log = out.join(format!("{name}.log"));
    let expected_failures = baseline.write_for(mode, rev, out)?;

    let mut cmd = suite(peers_dir)?;
    cmd.args(leg);
    for (key, value) in env {
        cmd.env(key, value);
    }
    match &options.scenario {
        Some(scenario) => cmd.args(["--scenario", scenario, "--spec-version", rev]),
        None => cmd.args(["--requirements", rev]),
    };
    cmd.arg("--expected-failures")
        .arg(&expected_failures)
        .arg("-o")
        .arg(&results);
    eprintln!("xtask: $ {} (log: {})", show(&cmd), log.display());
    let started = Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot start the conformance suite")?;
    let stdout = strip_ansi(&String::from_utf8_lossy(&output.stdout));
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    fs::write(&log, format!("{stdout}{stderr}"))
        .with_context(|| format!("cannot write {}", log.display()))?;
    eprintln!(
        "xtask: {} mode, requirements {rev}: {} after {}",
        mode.name(),
        output.status,
        secs(started.elapsed())
    );

    let mut run = SuiteRun::new(rev, output.status.success(), log);
    // The summary and the baseline verdict go to stdout; the client leg's progress (and, for
    // a single client scenario, its `Passed:` line) to stderr.
    parse_output(&stdout, options.scenario.as_deref(), true, &mut run);
    parse_output(&stderr, options.scenario.as_deref(), false, &mut run);
    let listing = listing(peers_dir, mode, rev)?;
    run.unscored = listing.unscored;

    // Flaky entries are not in the suite's baseline: their failures come back as unexpected.
    let flaky = baseline.flaky(mode, rev);
    let is_flaky = |entry: &String| {
        flaky.iter().any(|flaky| {
            entry == flaky
                || entry
                    .strip_prefix(flaky.as_str())
                    .is_some_and(|rest| rest.starts_with(':'))
        })
    };
    let (tolerated, unexpected): (Vec<String>, Vec<String>) =
        run.unexpected.drain(..).partition(|entry| is_flaky(entry));
    run.unexpected = unexpected;
    run.tolerated = tolerated;
    if !run.ok && !run.tolerated.is_empty() && run.unexpected.is_empty() && run.stale.is_empty() {
        eprintln!(
            "xtask: warning: {} mode, requirements {rev}: only flaky baseline entries failed ({}); \
             the run counts as passed",
            mode.name(),
            run.tolerated.join(", ")
        );
        run.ok = true;
    }

    // The suite's exit status covers neither of these: a scenario that never reported (the
    // suite crashed or skipped it) and an end client that did not finish its actions (the
    // suite ignores the adapter's exit status and judges only what reached its mock).
    let listed = match &options.scenario {
        Some(scenario) => BTreeSet::from([scenario.clone()]),
        None => listing.scenarios,
    };
    let adapter_failed = match mode {
        Mode::Client => Some(adapter_failures(&results)?),
        Mode::Server => None,
    };
    run.judge(&listed, adapter_failed, &baseline.adapter_failures(rev));
    if !run.missing.is_empty() {
        eprintln!(
            "xtask: {} mode, requirements {rev}: {} listed scenario(s) reported no result: {}",
            mode.name(),
            run.missing.len(),
            run.missing.join(", ")
        );
    }
    if !run.adapter_unexpected.is_empty() {
        eprintln!(
            "xtask: client mode, requirements {rev}: the adapter FAILED in {} (not in the \
             baseline's client-adapter list)",
            run.adapter_unexpected.join(", ")
        );
    }
    if !run.adapter_stale.is_empty() {
        eprintln!(
            "xtask: client mode, requirements {rev}: client-adapter baseline entries with no \
             adapter failure (stale): {}",
            run.adapter_stale.join(", ")
        );
    }
    Ok(run)
}

/// The scenarios whose adapter logged `[adapter] FAILED`, from the `stderr.txt` the suite
/// saves in each client scenario's results directory (`<results>/<scenario>-<time>/`).
fn adapter_failures(results: &Path) -> Result<BTreeSet<String>> {
    let mut failed = BTreeSet::new();
    if !results.exists() {
        return Ok(failed);
    }
    let mut pending = vec![results.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name == "stderr.txt") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if text
                    .lines()
                    .any(|line| line.starts_with("[adapter] FAILED"))
                    && let Some(scenario) = path
                        .parent()
                        .and_then(|dir| dir.strip_prefix(results).ok())
                        .map(|dir| scenario_of(&dir.to_string_lossy()).to_owned())
                {
                    failed.insert(scenario);
                }
            }
        }
    }
    Ok(failed)
}

/// The scenario of a results directory name: `auth/basic-cimd-2026-12-07T20-17-40-611Z` ->
/// `auth/basic-cimd`.
fn scenario_of(dir: &str) -> &str {
    const STAMP: usize = "-2026-12-07T20-17-40-611Z".len();
    if dir.len() > STAMP && dir.is_char_boundary(dir.len() - STAMP) {
        let (name, stamp) = dir.split_at(dir.len() - STAMP);
        let stamp = stamp.as_bytes();
        if stamp[0] == b'-' && stamp[11] == b'T' && stamp[STAMP - 1] == b'Z' {
            return name;
        }
    }
    dir
}

/// What `conformance list --requirements REV` says about one mode.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    /// Every scenario of the mode the set runs, scored or not.
    scenarios: BTreeSet<String>,
    /// The ones it runs but does not score, with the reason (`extension`, `pending`,
    /// `added-after-release`).
    unscored: BTreeMap<String, String>,
}

fn listing(peers_dir: &Path, mode: Mode, rev: &str) -> Result<Listing> {
    let text = crate::capture(suite(peers_dir)?.args(["list", "--requirements", rev]))?;
    let listing = parse_listing(&text, mode);
    if listing.scenarios.is_empty() {
        bail!(
            "`conformance list --requirements {rev}` names no {} scenario",
            mode.name()
        );
    }
    Ok(listing)
}

/// Reads the listing: `Server scenarios ...:` / `Client scenarios ...:` sections of scored
/// `  - name` lines, then `Run and reported, but never scored:` with `  reason (N):` headings
/// over `    - name [mode]` lines.
fn parse_listing(text: &str, mode: Mode) -> Listing {
    #[derive(PartialEq)]
    enum Part {
        Other,
        Scored,
        Unscored(String),
    }
    let heading = match mode {
        Mode::Server => "Server scenarios",
        Mode::Client => "Client scenarios",
    };
    let suffix = format!(" [{}]", mode.name());
    let mut listing = Listing::default();
    let mut part = Part::Other;
    for line in text.lines() {
        let trimmed = line.trim();
        if !line.starts_with(' ') && !trimmed.is_empty() {
            part = if line.starts_with(heading) {
                Part::Scored
            } else if line.starts_with("Run and reported, but never scored") {
                Part::Unscored(String::new())
            } else {
                Part::Other
            };
            continue;
        }
        match (&mut part, trimmed.strip_prefix("- ")) {
            (Part::Scored, Some(name)) => {
                listing.scenarios.insert(name.to_owned());
            }
            (Part::Unscored(why), Some(name)) => {
                if let Some(name) = name.strip_suffix(suffix.as_str()) {
                    listing.scenarios.insert(name.to_owned());
                    listing.unscored.insert(name.to_owned(), why.clone());
                }
            }
            (Part::Unscored(why), None) => {
                if let Some((reason, _count)) = trimmed.split_once(" (") {
                    *why = reason.to_owned();
                }
            }
            _ => {}
        }
    }
    listing
}

/// Which closing list of the suite's baseline verdict a line belongs to.
#[derive(Clone, Copy)]
enum ClosingList {
    Expected,
    Stale,
    Unexpected,
}

/// Reads the `✓ name: N passed, M failed[, W warnings]` lines (or, for a single `scenario`, its
/// `Passed: N/M, K failed, W warnings` line) and, with `closing`, the closing lines.
fn parse_output(text: &str, scenario: Option<&str>, closing: bool, run: &mut SuiteRun) {
    let mut in_closing = false;
    let mut list: Option<ClosingList> = None;
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
            run.scenarios.insert(
                name.to_owned(),
                (number(" passed"), number(" failed"), number(" warnings")),
            );
        }
        if let (Some(name), Some(rest)) = (scenario, trimmed.strip_prefix("Passed: "))
            && let Some((ratio, rest)) = rest.split_once(',')
            && let Some((passed, total)) = ratio.split_once('/')
            && let (Ok(passed), Ok(total)) =
                (passed.trim().parse::<u32>(), total.trim().parse::<u32>())
        {
            let failed = total.saturating_sub(passed);
            let warnings = rest
                .split(", ")
                .find_map(|part| part.trim().strip_suffix(" warnings"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            run.scenarios
                .insert(name.to_owned(), (passed, failed, warnings));
        }
        // The closing part starts at the totals; for a single client scenario, whose totals
        // go to stderr, at the baseline verdict.
        const OPENERS: [&str; 7] = [
            "Total:",
            "Passed: ",
            "Expected failures (",
            "Stale baseline entries",
            "Unexpected failures (",
            "Baseline check passed",
            "Baseline is stale",
        ];
        if closing && OPENERS.iter().any(|opener| trimmed.starts_with(opener)) {
            in_closing = true;
        }
        if !in_closing {
            continue;
        }
        if trimmed.starts_with("Expected failures (") {
            list = Some(ClosingList::Expected);
        } else if trimmed.starts_with("Stale baseline entries") {
            list = Some(ClosingList::Stale);
        } else if trimmed.starts_with("Unexpected failures (") {
            list = Some(ClosingList::Unexpected);
        } else if let (Some(which), Some(entry)) = (
            list,
            trimmed
                .strip_prefix("✗ ")
                .or_else(|| trimmed.strip_prefix("✓ "))
                .or_else(|| trimmed.strip_prefix("~ ")),
        ) {
            let entry = entry.trim().to_owned();
            match which {
                ClosingList::Expected => run.expected.push(entry),
                ClosingList::Stale => run.stale.push(entry),
                ClosingList::Unexpected => run.unexpected.push(entry),
            }
        } else if !trimmed.is_empty() {
            list = None;
        }
        if !trimmed.is_empty() && !matches!(list, Some(ClosingList::Expected)) {
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
fn render_summary(section: &Section) -> String {
    let runs = &section.runs;
    let mut names: Vec<&String> = runs.iter().flat_map(|run| run.scenarios.keys()).collect();
    names.sort();
    names.dedup();
    let width = names
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "MCP conformance ({} mode), target {}: {}\n\n",
        section.mode.name(),
        section.label,
        section.subject
    );
    out.push_str(&format!("{:<width$}", "scenario"));
    for run in runs {
        out.push_str(&format!("  {:<30}", run.rev));
    }
    out.push('\n');
    for name in names {
        out.push_str(&format!("{name:<width$}"));
        for run in runs {
            let cell = match run.scenarios.get(name) {
                None => "-".to_owned(),
                Some((passed, failed, warnings)) => {
                    let named = |list: &[String]| {
                        list.iter().any(|entry| {
                            entry == name
                                || entry
                                    .strip_prefix(name.as_str())
                                    .is_some_and(|rest| rest.starts_with(':'))
                        })
                    };
                    // Server mode's summary counts no warnings; a scenario the suite names
                    // without failed checks has warnings.
                    let verdict = if *failed > 0 {
                        "FAIL"
                    } else if *warnings > 0 || named(&run.unexpected) || named(&run.tolerated) {
                        "WARN"
                    } else {
                        "pass"
                    };
                    let mark = if named(&run.stale) {
                        " (stale baseline)"
                    } else if named(&run.unexpected) {
                        " (NEW)"
                    } else if named(&run.tolerated) {
                        " (flaky)"
                    } else if named(&run.expected) {
                        " (baseline)"
                    } else {
                        ""
                    };
                    let note = run
                        .unscored
                        .get(name)
                        .map(|why| format!(" ({why})"))
                        .unwrap_or_default();
                    format!("{verdict} {passed}/{}{mark}{note}", passed + failed)
                }
            };
            out.push_str(&format!("  {cell:<30}"));
        }
        out.push('\n');
    }
    for run in runs {
        out.push_str(&format!(
            "\n{} mode {} [{}] (log: {}):\n",
            section.mode.name(),
            run.rev,
            if run.ok { "ok" } else { "FAILED" },
            run.log.display()
        ));
        for line in &run.closing {
            out.push_str(&format!("  {line}\n"));
        }
        if !run.tolerated.is_empty() {
            out.push_str(&format!(
                "  Tolerated (flaky baseline entries): {}\n",
                run.tolerated.join(", ")
            ));
        }
        if !run.missing.is_empty() {
            out.push_str(&format!(
                "  Listed but reported no result: {}\n",
                run.missing.join(", ")
            ));
        }
        if section.mode == Mode::Client {
            let expected = run.adapter_failed.len() - run.adapter_unexpected.len();
            out.push_str(&format!(
                "  Adapter (end client) FAILED in {} scenario(s), {expected} of them expected by \
                 the baseline's client-adapter list\n",
                run.adapter_failed.len()
            ));
        }
        if !run.adapter_unexpected.is_empty() {
            out.push_str(&format!(
                "  Adapter FAILED, not in the baseline: {}\n",
                run.adapter_unexpected.join(", ")
            ));
        }
        if !run.adapter_stale.is_empty() {
            out.push_str(&format!(
                "  Stale client-adapter entries (the adapter did not fail): {}\n",
                run.adapter_stale.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_lists_by_mode_and_requirement_set() {
        let text = "\
# comment
server: []

client:
  # why
  - auth/metadata-default   # trailing comment
  - \"request-metadata:sep-2575-client-populates-meta\"
client@2025-11-25:
  - elicitation-sep1034-client-defaults
flaky-client@2025-11-25:
  - tools_call
";
        let baseline = Baseline {
            path: PathBuf::from("baseline.yml"),
            lists: Baseline::parse(text).unwrap(),
        };
        assert!(baseline.expected(Mode::Server, "2026-07-28").is_empty());
        assert_eq!(
            baseline.expected(Mode::Client, "2026-07-28"),
            [
                "auth/metadata-default",
                "request-metadata:sep-2575-client-populates-meta"
            ]
        );
        assert_eq!(
            baseline.expected(Mode::Client, "2025-11-25"),
            [
                "auth/metadata-default",
                "request-metadata:sep-2575-client-populates-meta",
                "elicitation-sep1034-client-defaults"
            ]
        );
        assert_eq!(baseline.flaky(Mode::Client, "2025-11-25"), ["tools_call"]);
        assert!(baseline.flaky(Mode::Client, "2026-07-28").is_empty());
    }

    #[test]
    fn baseline_rejects_what_it_does_not_understand() {
        for bad in [
            "servers: []\n",
            "client@2026: []\n",
            "client: [tools_call]\n",
            "  - tools_call\n",
            "client:\n  - two words\n",
            "client: []\nclient: []\n",
            "client:\n  - auth/*\n",
            "flaky-client-adapter:\n  - tools_call\n",
            "client-adapter:\n  - tools_call:check-id\n",
            "client-adapter:\n  - auth*\n",
        ] {
            assert!(Baseline::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn closing_lists_are_read_from_the_verdict() {
        let stdout = "\
✗ tools_call: 1 passed, 1 failed
✓ request-metadata: 3 passed, 0 failed, 2 warnings

Total: 4 passed, 1 failed, 2 warnings

Expected failures (in baseline):
  ~ request-metadata:sep-2575-client-sends-client-info

Stale baseline entries (now passing - remove from baseline):
  ✓ auth/basic-cimd

Unexpected failures (not in baseline):
  ✗ tools_call

Baseline is stale: update your expected-failures file to remove passing entries.
";
        let mut run = SuiteRun::new("2025-11-25", false, PathBuf::new());
        parse_output(stdout, None, true, &mut run);
        assert_eq!(run.scenarios["tools_call"], (1, 1, 0));
        assert_eq!(run.scenarios["request-metadata"], (3, 0, 2));
        assert_eq!(
            run.expected,
            ["request-metadata:sep-2575-client-sends-client-info"]
        );
        assert_eq!(run.stale, ["auth/basic-cimd"]);
        assert_eq!(run.unexpected, ["tools_call"]);
    }

    #[test]
    fn baseline_lists_expected_adapter_failures() {
        let text = "\
client: []
client-adapter:
  - auth/*   # not an OAuth client
client-adapter@2025-11-25:
  - elicitation-sep1034-client-defaults
";
        let baseline = Baseline {
            path: PathBuf::from("baseline.yml"),
            lists: Baseline::parse(text).unwrap(),
        };
        assert_eq!(baseline.adapter_failures("2026-07-28"), ["auth/*"]);
        assert_eq!(
            baseline.adapter_failures("2025-11-25"),
            ["auth/*", "elicitation-sep1034-client-defaults"]
        );
        // Adapter entries never reach the suite's own baseline.
        assert!(baseline.expected(Mode::Client, "2025-11-25").is_empty());
    }

    #[test]
    fn listing_names_scored_and_unscored_scenarios_of_one_mode() {
        let text = "\
Required for 2025-11-25 (48 scenarios, frozen; run at the 2025-11-25 wire):

Server scenarios (test against a server):
  - server-initialize
  - ping

Client scenarios (test against a client):
  - initialize
  - auth/metadata-default

Run and reported, but never scored:
  extension (1):
    - auth/dpop [client]
  added-after-release (2):
    - server-session-lifecycle [server]
    - json-schema-2020-12-preservation [client]
";
        let client = parse_listing(text, Mode::Client);
        assert_eq!(
            client.scenarios.iter().collect::<Vec<_>>(),
            [
                "auth/dpop",
                "auth/metadata-default",
                "initialize",
                "json-schema-2020-12-preservation"
            ]
        );
        assert_eq!(client.unscored["auth/dpop"], "extension");
        assert_eq!(
            client.unscored["json-schema-2020-12-preservation"],
            "added-after-release"
        );
        assert_eq!(client.unscored.len(), 2);
        let server = parse_listing(text, Mode::Server);
        assert_eq!(
            server.scenarios.iter().collect::<Vec<_>>(),
            ["ping", "server-initialize", "server-session-lifecycle"]
        );
    }

    #[test]
    fn results_directories_name_their_scenario() {
        assert_eq!(
            scenario_of("auth/basic-cimd-2026-12-07T20-17-40-611Z"),
            "auth/basic-cimd"
        );
        assert_eq!(
            scenario_of("tools_call-2026-12-07T20-17-40-611Z"),
            "tools_call"
        );
        assert_eq!(scenario_of("tools_call"), "tools_call");
    }

    #[test]
    fn adapter_failures_are_read_from_each_scenarios_stderr() {
        let results =
            std::env::temp_dir().join(format!("xtask-adapter-failures-{}", std::process::id()));
        let _ = fs::remove_dir_all(&results);
        let write = |dir: &str, text: &str| {
            let dir = results.join(dir);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("stderr.txt"), text).unwrap();
        };
        write(
            "auth/basic-cimd-2026-12-07T20-17-40-611Z",
            "[adapter] scenario auth/basic-cimd\n[adapter] FAILED after 0.04s: RuntimeError()\n",
        );
        write(
            "tools_call-2026-12-07T20-17-40-611Z",
            "[adapter] tools/call add_numbers -> isError=False\n[adapter] done in 0.9s\n",
        );
        let failed = adapter_failures(&results).unwrap();
        fs::remove_dir_all(&results).unwrap();
        assert_eq!(failed.iter().collect::<Vec<_>>(), ["auth/basic-cimd"]);
    }

    #[test]
    fn a_run_fails_on_a_missing_scenario_or_an_unexpected_adapter_failure() {
        let run_with = |ran: &[&str]| {
            let mut run = SuiteRun::new("2025-11-25", true, PathBuf::new());
            for name in ran {
                run.scenarios.insert((*name).to_owned(), (1, 0, 0));
            }
            run
        };
        let listed: BTreeSet<String> = ["auth/a", "auth/b", "tools_call"].map(str::to_owned).into();
        let adapter_baseline = ["auth/*".to_owned()];
        let failed = |names: &[&str]| Some(names.iter().map(|name| (*name).to_owned()).collect());

        // Everything listed ran; the adapter failed only where the baseline expects it.
        let mut run = run_with(&["auth/a", "auth/b", "tools_call"]);
        run.judge(&listed, failed(&["auth/a", "auth/b"]), &adapter_baseline);
        assert!(run.ok);

        // A listed scenario reported nothing, though the suite exited 0.
        let mut run = run_with(&["auth/a", "auth/b"]);
        run.judge(&listed, failed(&["auth/a"]), &adapter_baseline);
        assert!(!run.ok);
        assert_eq!(run.missing, ["tools_call"]);

        // The end client failed in a scenario whose checks all passed.
        let mut run = run_with(&["auth/a", "auth/b", "tools_call"]);
        run.judge(
            &listed,
            failed(&["auth/a", "tools_call"]),
            &adapter_baseline,
        );
        assert!(!run.ok);
        assert_eq!(run.adapter_unexpected, ["tools_call"]);

        // An expected adapter failure that no longer happens is stale.
        let mut run = run_with(&["auth/a", "auth/b", "tools_call"]);
        run.judge(&listed, failed(&[]), &adapter_baseline);
        assert!(!run.ok);
        assert_eq!(run.adapter_stale, ["auth/*"]);

        // ... but not in a run where no scenario it names ran (one `--scenario`).
        let mut run = run_with(&["tools_call"]);
        run.judge(
            &BTreeSet::from(["tools_call".to_owned()]),
            failed(&[]),
            &adapter_baseline,
        );
        assert!(run.ok);

        // Server mode has no adapter; the suite's own failure stays a failure.
        let mut run = run_with(&["auth/a", "auth/b", "tools_call"]);
        run.ok = false;
        run.judge(&listed, None, &[]);
        assert!(!run.ok);
    }
}
