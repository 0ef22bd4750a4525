//! Upstream stdio: a backend MCP server as a child process.
//!
//! [`spawn`] is the one place in the workspace that starts a process: the
//! command is executed directly (never through a shell), with a small default
//! environment plus the configured variables, and is killed if its handle is
//! dropped. [`Connection::start`] wires the child's pipes: a writer task owns
//! stdin, a reader task hands stdout lines to the shared correlation (which
//! matches responses to calls by id and turns the rest into
//! [`only1mcp_core::upstream::UpstreamEvent`]s), and a third task copies
//! stderr lines into the log under the server's name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use only1mcp_core::{Error, config};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

pub use crate::ResponseFuture;
use crate::correlate::Correlator;
use crate::framing::{Line, LineReader, write_batch};

/// The variables a child inherits from the gateway, as the MCP SDKs do; any
/// other variable must be configured explicitly, so secrets in the gateway's
/// own environment do not leak to every backend.
pub const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR",
];

/// The largest line a backend may send (responses can carry big resources).
pub const MAX_UPSTREAM_LINE: usize = 64 * 1024 * 1024;

/// How to start one backend.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The server id, used in logs and errors.
    pub server: Arc<str>,
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
}

/// Why a backend could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `${VAR}` named a variable that is not set.
    #[error(transparent)]
    MissingVar(#[from] config::MissingVar),
    /// The OS refused to start the program.
    #[error("could not start {command:?}: {source}")]
    Io {
        /// The program.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts the backend process with piped stdio. No shell is involved: the
/// command and each argument reach `execve` as they are, after `${VAR}`
/// expansion from the gateway's environment.
pub fn spawn(spec: &Spec) -> Result<Child, SpawnError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let command = config::expand_env(&spec.command, lookup)?;
    let args = spec
        .args
        .iter()
        .map(|arg| config::expand_env(arg, lookup))
        .collect::<Result<Vec<_>, _>>()?;
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the one blessed place that spawns backends"
    )]
    let mut cmd = Command::new(&command);
    cmd.args(&args)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in &spec.env {
        cmd.env(key, config::expand_env(value, lookup)?);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    tracing::info!(server = %spec.server, command = %command, args = ?args, "Spawning backend");
    cmd.spawn()
        .map_err(|source| SpawnError::Io { command, source })
}

/// Stops a child: close its stdin (MCP servers exit on EOF), wait up to
/// `grace`, then kill it and reap it, so no zombie is left behind.
pub async fn stop(mut child: Child, grace: Duration) {
    drop(child.stdin.take());
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

#[derive(Debug)]
struct Shared {
    correlator: Arc<Correlator>,
    writer: mpsc::Sender<Vec<u8>>,
}

/// A connection to a stdio backend: a cheap-to-clone [`Upstream`] service.
#[derive(Debug, Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    /// Takes over the child's pipes and starts the reader, writer and stderr
    /// tasks. The returned events end with `UpstreamEvent::Closed` when the
    /// backend closes its stdout (it exited or crashed).
    pub fn start(server: &Arc<str>, child: &mut Child) -> (Self, Events) {
        let (writer_tx, writer_rx) = mpsc::channel(1024);
        let (correlator, events) = Correlator::new(server.clone());
        if let Some(stdin) = child.stdin.take() {
            tokio::spawn(write_loop(server.clone(), stdin, writer_rx));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(stderr_loop(server.clone(), stderr));
        }
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_loop(correlator.clone(), stdout));
        } else {
            correlator.close();
        }
        let shared = Arc::new(Shared {
            correlator,
            writer: writer_tx,
        });
        (Self { shared }, events)
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        self.shared.correlator.server()
    }

    /// Sets the hook that sees notifications in wire order (see
    /// [`crate::NotificationHook`]).
    pub fn set_notification_hook(&self, hook: crate::NotificationHook) {
        self.shared.correlator.set_hook(hook);
    }
}

async fn write_loop(server: Arc<str>, mut stdin: ChildStdin, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buffer = Vec::new();
    while let Some(line) = rx.recv().await {
        if let Err(e) = write_batch(&mut stdin, line, &mut rx, &mut buffer).await {
            tracing::debug!(server = %server, error = %e, "Backend stdin closed");
            break;
        }
    }
}

async fn stderr_loop(server: Arc<str>, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "only1mcp::backend", server = %server, "{line}");
    }
}

async fn read_loop(correlator: Arc<Correlator>, stdout: ChildStdout) {
    let mut reader = LineReader::new(BufReader::new(stdout), MAX_UPSTREAM_LINE);
    loop {
        let line = match reader.next_line().await {
            Ok(Some(Line::Data(line))) => line,
            Ok(Some(Line::TooLong { len })) => {
                tracing::warn!(server = %correlator.server(), len, "Backend sent an oversized message; dropped");
                continue;
            }
            Ok(None) | Err(_) => break,
        };
        if !correlator.deliver_frame(&line).await {
            break;
        }
    }
    // The backend is gone: fail everything still waiting.
    correlator.close();
}

impl tower_service::Service<Call> for Connection {
    type Response = Outcome;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Backpressure is the bounded writer queue, awaited inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(crate::correlate::call_over_queue(
            shared.correlator.clone(),
            shared.writer.clone(),
            call,
        ))
    }
}

impl Upstream for Connection {
    fn send(&self, message: Message) -> Result<(), Error> {
        self.shared
            .writer
            .try_send(message.to_vec())
            .map_err(|_| self.shared.correlator.closed_error())
    }
}
