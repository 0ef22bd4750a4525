//! Upstream stdio: a backend MCP server as a child process.
//!
//! [`spawn`] is the one place in the workspace that starts a process: the
//! command is executed directly (never through a shell), with a small default
//! environment plus the configured variables, and is killed if its handle is
//! dropped. [`Connection::start`] wires the child's pipes: a writer task
//! writes queued messages to stdin in batches (a caller that finds nothing
//! queued writes its small message itself, saving the hand-off), a reader
//! task hands stdout lines to the shared correlation (which
//! matches responses to calls by id and turns the rest into
//! [`only1mcp_core::upstream::UpstreamEvent`]s), and a third task copies
//! stderr lines into the log under the server's name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use only1mcp_core::{Error, config};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
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
    stdin: Arc<Stdin>,
}

/// Linux's `PIPE_BUF`: a write of at most this many bytes to a pipe is
/// atomic, all of it or (non-blocking, pipe full) none.
const PIPE_BUF: usize = 4096;

/// The backend's stdin: a queue drained in batches by the writer task, and a
/// fast path for a caller that finds nothing queued.
#[derive(Debug)]
struct Stdin {
    queue: mpsc::Sender<Vec<u8>>,
    /// Messages queued, or taken by the writer task and not written yet.
    queued: AtomicUsize,
    /// The pipe; `None` if the child has no stdin. Locked by the writer task
    /// for each batch, tried by callers for the fast path.
    pipe: tokio::sync::Mutex<Option<pipe::Sender>>,
}

impl Stdin {
    /// Writes `frame` and a newline now, if nothing is queued (so nothing
    /// sent before is overtaken), the pipe is free, and the pipe takes it
    /// whole in one non-blocking write; otherwise queues it for the writer
    /// task. Writing in place saves the hand-off to the writer task. Only
    /// frames under `PIPE_BUF` qualify: such a write is all or nothing, so a
    /// caller dropped at any point never leaves half a message in the pipe.
    /// Returns whether the message was written or queued.
    async fn send(&self, mut frame: Vec<u8>) -> bool {
        if frame.len() < PIPE_BUF
            && self.queued.load(Ordering::Acquire) == 0
            && let Ok(pipe) = self.pipe.try_lock()
            && self.queued.load(Ordering::Acquire) == 0
            && let Some(pipe) = pipe.as_ref()
        {
            frame.push(b'\n');
            match pipe.try_write(&frame) {
                Ok(n) if n == frame.len() => return true,
                // Not possible for a write under PIPE_BUF; the stream would
                // be broken.
                Ok(_) => return false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    frame.pop();
                }
                Err(_) => return false,
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(frame).await.is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Queues `frame` without waiting; `false` if the queue is full or gone.
    fn try_send(&self, frame: Vec<u8>) -> bool {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(frame).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
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
        let pipe = child.stdin.take().and_then(|stdin| {
            stdin
                .into_owned_fd()
                .and_then(pipe::Sender::from_owned_fd)
                .inspect_err(
                    |e| tracing::warn!(server = %server, error = %e, "Backend stdin unusable"),
                )
                .ok()
        });
        let has_stdin = pipe.is_some();
        let stdin = Arc::new(Stdin {
            queue: writer_tx,
            queued: AtomicUsize::new(0),
            pipe: tokio::sync::Mutex::new(pipe),
        });
        if has_stdin {
            tokio::spawn(write_loop(
                server.clone(),
                Arc::downgrade(&stdin),
                writer_rx,
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(stderr_loop(server.clone(), stderr));
        }
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_loop(correlator.clone(), stdout));
        } else {
            correlator.close();
        }
        let shared = Arc::new(Shared { correlator, stdin });
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

/// Writes what is queued for the backend's stdin. It holds the stdin weakly:
/// when the connection is dropped, so are the queue and the pipe, and the
/// backend reads EOF (MCP servers exit on it).
async fn write_loop(
    server: Arc<str>,
    stdin: std::sync::Weak<Stdin>,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let mut buffer = Vec::new();
    while let Some(line) = rx.recv().await {
        let Some(stdin) = stdin.upgrade() else { break };
        let mut pipe = stdin.pipe.lock().await;
        let Some(writer) = pipe.as_mut() else { break };
        let written = write_batch(writer, line, &mut rx, &mut buffer).await;
        drop(pipe);
        match written {
            Ok(count) => {
                stdin.queued.fetch_sub(count, Ordering::AcqRel);
            }
            Err(e) => {
                tracing::debug!(server = %server, error = %e, "Backend stdin closed");
                break;
            }
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
        Box::pin(async move {
            let stdin = shared.stdin.clone();
            let cancel_stdin = stdin.clone();
            let cancel = move |note: Message| {
                cancel_stdin.try_send(note.to_vec());
            };
            crate::correlate::call_with(
                shared.correlator.clone(),
                call,
                cancel,
                |frame| async move { stdin.send(frame).await },
            )
            .await
        })
    }
}

impl Upstream for Connection {
    fn send(&self, message: Message) -> Result<(), Error> {
        if self.shared.stdin.try_send(message.to_vec()) {
            Ok(())
        } else {
            Err(self.shared.correlator.closed_error())
        }
    }
}
