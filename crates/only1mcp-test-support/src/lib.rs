//! The harness of Only1MCP's black-box tests: paths to the gateway, the
//! example servers and the installed npm/PyPI peers; a gateway process driven
//! line by line over stdio; the Python SDK test client.
//!
//! Dev-dependency only. It starts real processes and talks to them over real
//! pipes; nothing here is a mock. It depends on no Only1MCP crate, so tests
//! see the gateway exactly as a client does.

#![allow(
    clippy::disallowed_methods,
    reason = "the harness starts the processes under test"
)]
#![allow(clippy::unwrap_used, reason = "a harness failure is a test failure")]
#![allow(
    clippy::needless_pass_by_value,
    reason = "tests pass json! literals; taking them by value reads better"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// Where `cargo xtask peers` installed the npm and PyPI peers.
pub fn peers() -> PathBuf {
    let dir = std::env::var_os("ONLY1MCP_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("peers"));
    assert!(
        dir.join("venv").exists() && dir.join("node").exists(),
        "the MCP peers are not installed in {}: run `cargo xtask peers` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// An npm peer's executable, e.g. `mcp-server-everything`.
pub fn npm_bin(name: &str) -> PathBuf {
    peers().join("node/node_modules/.bin").join(name)
}

/// A program in the peers' Python venv, e.g. `python` or `mcp-server-time`.
pub fn venv_bin(name: &str) -> PathBuf {
    peers().join("venv/bin").join(name)
}

/// The example servers, built once per test run with the same cargo and
/// profile as the tests (they belong to another package, so cargo does not
/// build them for this one).
pub fn example_server(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "only1mcp-example-servers",
                "--bins",
            ])
            .current_dir(workspace())
            .status()
            .unwrap();
        assert!(status.success(), "building the example servers failed");
        gateway_bin().parent().unwrap().to_owned()
    });
    dir.join(name)
}

static GATEWAY_BIN: OnceLock<PathBuf> = OnceLock::new();

/// Tells the harness where the `only1mcp` binary under test is; call it with
/// `env!("CARGO_BIN_EXE_only1mcp")` before anything else (repeat calls are
/// fine).
pub fn init(gateway: &str) {
    let _ = GATEWAY_BIN.set(PathBuf::from(gateway));
}

/// The `only1mcp` binary under test.
pub fn gateway_bin() -> PathBuf {
    GATEWAY_BIN
        .get()
        .expect("call only1mcp_test_support::init first")
        .clone()
}

/// A temp dir with a config file in it.
#[derive(Debug)]
pub struct ConfigDir {
    /// The dir (removed on drop).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub path: PathBuf,
}

/// Writes `yaml` as `only1mcp.yaml` in a new temp dir.
pub fn config(yaml: &str) -> ConfigDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("only1mcp.yaml");
    std::fs::write(&path, yaml).unwrap();
    ConfigDir { dir, path }
}

/// A YAML config of the two example servers plus `extra` (more servers,
/// indented as entries under `servers:`), with optional top-level text.
pub fn examples_config(extra_servers: &str, top: &str) -> ConfigDir {
    config(&format!(
        "{top}\nservers:\n  echo:\n    command: {}\n  arith:\n    command: {}\n{extra_servers}",
        quote(&example_server("only1mcp-echo-server")),
        quote(&example_server("only1mcp-arith-server")),
    ))
}

/// [`examples_config`], with both example servers recording every message
/// they receive (`ONLY1MCP_EXAMPLE_RECORD`) to `<config dir>/<server>.jsonl`,
/// read with [`recorded`] and [`wait_for_recorded`].
pub fn recording_examples_config(extra_servers: &str, top: &str) -> ConfigDir {
    let dir = tempfile::tempdir().unwrap();
    let server = |name: &str, binary: &str| {
        format!(
            "  {name}:\n    command: {}\n    env:\n      ONLY1MCP_EXAMPLE_RECORD: {}\n",
            quote(&example_server(binary)),
            quote(&dir.path().join(format!("{name}.jsonl"))),
        )
    };
    let yaml = format!(
        "{top}\nservers:\n{}{}{extra_servers}",
        server("echo", "only1mcp-echo-server"),
        server("arith", "only1mcp-arith-server"),
    );
    let path = dir.path().join("only1mcp.yaml");
    std::fs::write(&path, yaml).unwrap();
    ConfigDir { dir, path }
}

/// The messages example server `server` of a [`recording_examples_config`]
/// has received so far, in order (none if it recorded nothing yet).
pub fn recorded(config: &ConfigDir, server: &str) -> Vec<Value> {
    let path = config.dir.path().join(format!("{server}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // A line still being written has no newline yet; leave it for the next read.
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until example server `server` of a [`recording_examples_config`]
/// has received a message for which `matches` holds, and returns it.
pub fn wait_for_recorded(
    config: &ConfigDir,
    server: &str,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let messages = recorded(config, server);
        if let Some(found) = messages.iter().find(|message| matches(message)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{server} never received {what}; it received:\n{}",
            messages
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The upstream request `tools/call` of tool `name` that a recording example
/// server received, waiting for it.
pub fn wait_for_recorded_call(config: &ConfigDir, server: &str, name: &str) -> Value {
    wait_for_recorded(
        config,
        server,
        &format!("a tools/call of {name}"),
        |message| message["method"] == "tools/call" && message["params"]["name"] == name,
    )
}

/// A path as a quoted YAML scalar.
pub fn quote(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).unwrap()
}

/// The gateway as a child process speaking MCP on its stdio, driven line by
/// line. Its stderr (the log) goes to a file the test can read.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    next_id: i64,
    /// Notifications received while waiting for responses.
    pub notifications: Vec<Value>,
}

impl Gateway {
    /// Starts `only1mcp start --stdio --config <config>` with extra env.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_args(config, &[], env)
    }

    /// Starts `only1mcp start --stdio --config <config> <args…>` with extra
    /// env.
    pub fn start_with_args(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let config = config.to_string_lossy();
        let mut full = vec![
            "start",
            "--stdio",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
            &config,
        ];
        full.extend_from_slice(args);
        Self::spawn(&gateway_bin(), &full, env)
    }

    /// Starts `program ARGS…` as a gateway speaking MCP on its stdio (the
    /// lean `only1mcp-proxy` binary, or `only1mcp` with other arguments),
    /// with extra env.
    pub fn spawn(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("gateway.log");
        let mut child = Command::new(program)
            .args(args)
            .env_remove("ONLY1MCP_ADMIN_TOKEN")
            .env(RUNTIME_DIR_ENV, log_dir.path())
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            log,
            _log_dir: log_dir,
            next_id: 1,
            notifications: Vec::new(),
        }
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes raw bytes followed by a newline.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Writes one message.
    pub fn send(&mut self, message: &Value) {
        self.send_raw(serde_json::to_string(message).unwrap().as_bytes());
    }

    /// The next line from stdout, as written.
    pub fn recv_line(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no message within {WAIT:?}; log:\n{}", self.log())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the gateway closed stdout; log:\n{}", self.log())
            }
        }
    }

    /// The next line from stdout, parsed. Every line must be JSON.
    pub fn recv(&mut self) -> Value {
        let line = self.recv_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Sends a request and returns its response line exactly as the gateway
    /// wrote it (notifications read meanwhile are kept aside).
    pub fn request_raw(&mut self, method: &str, params: Value) -> String {
        let id = self.send_request(method, params);
        loop {
            let line = self.recv_line();
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if message.get("id") == Some(&id) && message.get("method").is_none() {
                return line;
            }
            self.notifications.push(message);
        }
    }

    /// Reads until the response with `id`, keeping notifications aside.
    pub fn response(&mut self, id: &Value) -> Value {
        loop {
            let message = self.recv();
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return message;
            }
            if message.get("id").is_none() {
                self.notifications.push(message);
            } else {
                panic!("unexpected message while waiting for id {id}: {message}");
            }
        }
    }

    /// Reads until a notification with `method` arrives (or one already
    /// read is waiting), and takes it out of [`Gateway::notifications`].
    pub fn wait_for_notification(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(idx) = self
                .notifications
                .iter()
                .position(|n| n["method"] == method)
            {
                return self.notifications.remove(idx);
            }
            assert!(Instant::now() < deadline, "no {method}:\n{}", self.log());
            let message = self.recv();
            self.notifications.push(message);
        }
    }

    /// Sends a request with a fresh numeric id and returns its response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(&id)
    }

    /// Sends a request with a fresh numeric id, returns the id.
    pub fn send_request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Runs the legacy handshake (2025-11-25) and returns the result.
    pub fn initialize(&mut self) -> Value {
        let res = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        res["result"].clone()
    }

    /// Calls a tool and returns the whole response.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_within(needle, WAIT);
    }

    /// Waits until the log contains `needle`, at most `within`.
    pub fn wait_for_log_within(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin API's base URL (`http://127.0.0.1:PORT`), once logged.
    pub fn admin_url(&self) -> String {
        wait_for_admin_url(&self.log)
    }

    /// The admin token the gateway generated, read from its file as the
    /// CLI of the same user does.
    pub fn admin_token(&self) -> String {
        read_admin_token(&self.admin_url(), self._log_dir.path())
    }

    /// The environment under which the management commands find this
    /// gateway's generated admin token (its runtime directory).
    pub fn admin_env(&self) -> (&'static str, String) {
        (
            RUNTIME_DIR_ENV,
            self._log_dir.path().to_string_lossy().into_owned(),
        )
    }

    /// Child process ids of the gateway (its backends).
    pub fn children(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let tasks = format!("/proc/{}/task", self.pid());
        for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        out.sort_unstable();
        out
    }

    /// Sends SIGHUP (the gateway reloads its config file).
    pub fn hangup(&self) {
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM (stdin stays open).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the gateway to exit with stdin still open; returns its exit
    /// code.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let code = wait_exit(&mut self.child, &self.log, "exit");
        (code, self.log())
    }

    /// Closes stdin and waits for the gateway to exit; returns its exit code.
    pub fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let code = wait_exit(&mut self.child, &self.log, "exit after stdin closed");
        (code, self.log())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `only1mcp start --stdio --config <config>` with its stdin and stdout
/// piped and left to the caller: unlike [`Gateway`], nothing reads its
/// stdout unless the test does (a client that stops reading). Its log is
/// discarded; it is killed when dropped.
#[derive(Debug)]
pub struct RawStdio {
    /// The process; take its `stdin` and `stdout`.
    pub child: Child,
}

impl RawStdio {
    /// Starts the gateway on `config`.
    pub fn start(config: &Path) -> Self {
        let child = Command::new(gateway_bin())
            .args(["start", "--stdio", "--config"])
            .arg(config)
            .env_remove("ONLY1MCP_ADMIN_TOKEN")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child }
    }
}

impl Drop for RawStdio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// A process's state letter from `/proc` (`R`, `S`, `Z` for a zombie, …),
/// or `None` once it is fully gone (reaped).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Sends `signal` (`-KILL`, `-STOP`, `-CONT`, …) to process `pid` with
/// `kill(1)`, checking it was delivered.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Whether a process still runs (exists and is neither a zombie nor dead).
pub fn process_running(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Runs the Python SDK test client (see [`python_client`]) against
/// `only1mcp start --stdio --config <config>`, with the client's own flags
/// (`--callbacks`, `--log-level L`) before the command.
pub fn python_through_gateway(mode: &str, flags: &[&str], config: &Path, ops: &Value) -> Value {
    let bin = gateway_bin().to_string_lossy().into_owned();
    let config = config.to_string_lossy().into_owned();
    let mut target: Vec<&str> = flags.to_vec();
    target.extend([
        "--",
        bin.as_str(),
        "start",
        "--stdio",
        "--config",
        config.as_str(),
    ]);
    python_client(mode, &target, ops, &[])
}

/// Runs the Python SDK test client (`tests/py/mcp_client.py` of the CLI
/// crate) with the ops as JSON; returns its JSON output. `target` selects the
/// server: `["--", "cmd", "arg"]`, `["--url", url]` or `["--sse", url]`.
pub fn python_client(mode: &str, target: &[&str], ops: &Value, env: &[(&str, &str)]) -> Value {
    python_client_in(Path::new("."), mode, target, ops, env)
}

/// [`python_client`] run in the working directory `dir` (so a stdio server it
/// launches starts there too).
pub fn python_client_in(
    dir: &Path,
    mode: &str,
    target: &[&str],
    ops: &Value,
    env: &[(&str, &str)],
) -> Value {
    let script = workspace().join("crates/only1mcp-cli/tests/py/mcp_client.py");
    let mut child = Command::new(venv_bin("python"))
        .current_dir(dir)
        .arg(script)
        .args(["--mode", mode])
        .args(target)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(ops).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python client printed no JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `only1mcp ARGS…` in `dir` to completion (logs at error level).
pub fn run_cli(args: &[&str], dir: &Path) -> std::process::Output {
    run_cli_with(args, dir, &[])
}

/// The environment variables of the management commands, cleared so the
/// developer's own settings never leak into a test.
const ADMIN_ENV: &[&str] = &[
    "ONLY1MCP_ADMIN_URL",
    "ONLY1MCP_ADMIN_TOKEN",
    "ONLY1MCP_CONFIG",
];

/// [`run_cli`] with extra environment variables.
pub fn run_cli_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(gateway_bin());
    for name in ADMIN_ENV {
        command.env_remove(name);
    }
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Starts `only1mcp ARGS…` in `dir` with stdout piped (for commands that
/// keep running, like `logs --follow`); killed when dropped.
pub fn spawn_cli(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> CliProcess {
    let mut command = Command::new(gateway_bin());
    for name in ADMIN_ENV {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    CliProcess { child, lines }
}

/// A running `only1mcp` command; killed when dropped.
#[derive(Debug)]
pub struct CliProcess {
    child: Child,
    lines: Receiver<String>,
}

impl CliProcess {
    /// Reads stdout lines until one contains `needle`; returns the lines
    /// read, that one included.
    pub fn read_until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; read so far:\n{}", seen.join("\n")),
            }
        }
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variable that tells a gateway (and the CLI) where generated admin
/// tokens are written; each test gateway gets its own directory.
const RUNTIME_DIR_ENV: &str = "ONLY1MCP_RUNTIME_DIR";

/// The generated admin token of the admin API at `admin_url`, from its file
/// in `dir`.
fn read_admin_token(admin_url: &str, dir: &Path) -> String {
    let port = admin_url.rsplit(':').next().unwrap_or_default();
    let path = dir.join(format!("admin-{port}.token"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Waits until the log at `log` names the admin API's URL, and returns it.
fn wait_for_admin_url(log: &Path) -> String {
    const MARK: &str = "Admin API listening url=";
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(idx) = text.find(MARK) {
            return text[idx + MARK.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the admin API never listened:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The gateway serving HTTP on a free loopback port (`--listen 127.0.0.1:0`).
#[derive(Debug)]
pub struct HttpGateway {
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    /// `http(s)://127.0.0.1:PORT` (no path).
    pub base: String,
}

impl HttpGateway {
    /// Starts `only1mcp start --config <config> --listen 127.0.0.1:0` and
    /// waits until it logs the address it listens on.
    pub fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[])
    }

    /// [`HttpGateway::start`] with extra environment variables.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("gateway.log");
        let child = Command::new(gateway_bin())
            .envs(env.iter().copied())
            .args([
                "start",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(config)
            .env_remove("ONLY1MCP_ADMIN_TOKEN")
            .env(RUNTIME_DIR_ENV, log_dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(idx) = text.find("Listening url=") {
                let url = text[idx + "Listening url=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default();
                break url.trim_end_matches("/mcp").to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the gateway never listened:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            log,
            _log_dir: log_dir,
            base,
        }
    }

    /// The admin API's base URL (`http://127.0.0.1:PORT`).
    pub fn admin_url(&self) -> String {
        wait_for_admin_url(&self.log)
    }

    /// The admin token the gateway generated (see [`Gateway::admin_token`]).
    pub fn admin_token(&self) -> String {
        read_admin_token(&self.admin_url(), self._log_dir.path())
    }

    /// See [`Gateway::admin_env`].
    pub fn admin_env(&self) -> (&'static str, String) {
        (
            RUNTIME_DIR_ENV,
            self._log_dir.path().to_string_lossy().into_owned(),
        )
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (the gateway reloads its config file).
    pub fn hangup(&self) {
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// The Streamable HTTP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let code = wait_exit(&mut self.child, &self.log, "stop");
        (code, self.log())
    }
}

impl Drop for HttpGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Node script from the CLI crate's `tests/js` with the peers' Node
/// modules on its path; returns its stdout parsed as JSON.
pub fn node_script(script: &str, args: &[&str]) -> Value {
    let path = workspace()
        .join("crates/only1mcp-cli/tests/js")
        .join(script);
    let out = Command::new("node")
        .arg("--experimental-websocket")
        .arg(path)
        .args(args)
        .env("NODE_PATH", peers().join("node/node_modules"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "node {script} printed no JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Waits (at most [`WAIT`]) for the gateway process to exit; returns its
/// exit code. `what` names the expectation in the failure message.
fn wait_exit(child: &mut Child, log: &Path, what: &str) -> Option<i32> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not {what}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first text content of a `tools/call` response.
pub fn text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer process (an npm or PyPI server) killed when dropped.
#[derive(Debug)]
pub struct Peer(Child);

impl Peer {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a peer server and waits until it accepts connections on `port`.
pub fn start_peer(program: &Path, args: &[&str], env: &[(&str, &str)], port: u16) -> Peer {
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut peer = Peer(child);
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = peer.0.try_wait().unwrap() {
            panic!("{} exited before listening: {status}", program.display());
        }
        assert!(
            Instant::now() < deadline,
            "{} never listened on {port}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    peer
}
