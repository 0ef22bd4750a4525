//! Upstream stdio: a backend MCP server as a child process.
//!
//! [`spawn`] is the one place in the workspace that starts a process: the
//! command is executed directly (never through a shell), with a small default
//! environment plus the configured variables, as the leader of a process
//! group of its own on Unix, in a job object on Windows (`process-wrap`), so
//! whatever it starts goes with it. [`Process::stop`] ends it gracefully:
//! stdin closed first, then `SIGTERM` to the group (Unix; Windows has no
//! polite signal for a console-less child, so it goes straight on), then a
//! kill, then the reap; a [`Process`] dropped without a stop kills its group
//! at once.
//!
//! [`Connection::start`] wires the child's pipes: a writer task
//! writes queued messages to stdin in batches (a caller that finds nothing
//! queued writes its small message itself, saving the hand-off), a reader
//! task hands stdout lines to the shared correlation (which
//! matches responses to calls by id and turns the rest into
//! [`only1mcp_core::upstream::UpstreamEvent`]s), and a third task copies
//! stderr lines, read as bytes and cut at a configured length, into the log
//! under the server's name. The stderr task drains until end of input
//! whatever the backend writes, so the backend never blocks on (or dies of)
//! a full stderr pipe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use only1mcp_core::{Error, config};
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop};
use tokio::io::BufReader;
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::ResponseFuture;
use crate::correlate::Correlator;
use crate::framing::{Line, LineReader, LogLines, write_batch};

/// The variables a child inherits from the gateway, as the MCP SDKs do; any
/// other variable must be configured explicitly, so secrets in the gateway's
/// own environment do not leak to every backend.
#[cfg(not(windows))]
pub const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR",
];

/// The variables a child inherits from the gateway, as the MCP SDKs do on
/// Windows (a program started without `SYSTEMROOT` cannot even open a
/// socket there); any other variable must be configured explicitly, so
/// secrets in the gateway's own environment do not leak to every backend.
#[cfg(windows)]
pub const INHERITED_ENV: &[&str] = &[
    "APPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PATHEXT",
    "PROCESSOR_ARCHITECTURE",
    "PROGRAMFILES",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "TMP",
    "USERNAME",
    "USERPROFILE",
];

/// The largest line a backend may send (responses can carry big resources).
/// A longer answer fails its call at once (see
/// [`crate::framing::EnvelopeScan`]).
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
    /// The longest stderr line logged, in bytes; a longer one is logged cut
    /// and the rest of it is discarded.
    pub max_log_line: usize,
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
        /// The program, as configured (`${VAR}` not expanded).
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts the backend process with piped stdio, as the leader of a new
/// process group. No shell is involved: the command and each argument reach
/// `execve` as they are, after `${VAR}` expansion from the gateway's
/// environment. The log and errors show them as configured, so values
/// expanded from the environment (tokens) are never logged.
pub fn spawn(spec: &Spec) -> Result<Process, SpawnError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let command = config::expand_env(&spec.command, lookup)?;
    let args = spec
        .args
        .iter()
        .map(|arg| config::expand_env(arg, lookup))
        .collect::<Result<Vec<_>, _>>()?;
    #[cfg(windows)]
    let command = windows_program(command, spec);
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
        .stderr(Stdio::piped());
    for (key, value) in &spec.env {
        cmd.env(key, config::expand_env(value, lookup)?);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    tracing::info!(server = %spec.server, command = %spec.command, args = ?spec.args, "Spawning backend");
    let mut cmd = CommandWrap::from(cmd);
    #[cfg(unix)]
    cmd.wrap(process_wrap::tokio::ProcessGroup::leader());
    #[cfg(windows)]
    cmd.wrap(process_wrap::tokio::JobObject);
    let child = cmd
        .wrap(KillOnDrop)
        .spawn()
        .map_err(|source| SpawnError::Io {
            command: spec.command.clone(),
            source,
        })?;
    Ok(Process {
        server: spec.server.clone(),
        child,
        max_log_line: spec.max_log_line,
        attached: None,
        reaped: false,
    })
}

/// On Windows, the file a bare `command` names: looked up in the server's
/// `PATH` (its `env`, else the gateway's) with the extensions of `PATHEXT`,
/// so `npx` finds `npx.cmd` as a shell would, without a shell. Windows
/// itself tries only `.exe`. A batch file (`.cmd`, `.bat`) is run by the
/// standard library through `cmd.exe` with its arguments escaped (it refuses
/// arguments it cannot escape safely). Anything not found is left as it is,
/// for the spawn to report.
#[cfg(windows)]
fn windows_program(command: String, spec: &Spec) -> std::ffi::OsString {
    let path = spec
        .env
        .get("PATH")
        .and_then(|path| config::expand_env(path, |name| std::env::var(name).ok()).ok())
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"));
    let cwd = spec
        .cwd
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    match which::which_in(&command, path, cwd) {
        Ok(found) => found.into_os_string(),
        Err(_) => command.into(),
    }
}

/// A running backend: the leader of its own process group. Stop it with
/// [`Process::stop`]; dropped without a stop, it kills the whole group at
/// once (`SIGKILL`).
#[derive(Debug)]
pub struct Process {
    server: Arc<str>,
    child: Box<dyn ChildWrapper>,
    max_log_line: usize,
    /// Set by [`Connection::start`].
    attached: Option<Attached>,
    /// Reaped by [`Process::stop`]: nothing is left to kill.
    reaped: bool,
}

/// What [`Connection::start`] left with the process, for the stop.
#[derive(Debug)]
struct Attached {
    stdin: Weak<Stdin>,
    correlator: Arc<Correlator>,
    /// The stdout and stderr readers.
    readers: Vec<JoinHandle<()>>,
}

/// How a stopped backend ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself, within the grace period after its stdin closed
    /// (or before the stop).
    Exited,
    /// It exited on `SIGTERM`.
    Terminated,
    /// It was killed (`SIGKILL`).
    Killed,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exited => "exited",
            Self::Terminated => "terminated (SIGTERM)",
            Self::Killed => "killed (SIGKILL)",
        })
    }
}

impl Process {
    /// The process id of the leader, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until the leader exits and returns how, as text. Cancel-safe.
    pub async fn wait(&mut self) -> String {
        self.child
            .wait()
            .await
            .map_or_else(|e| e.to_string(), |s| s.to_string())
    }

    /// Stops the backend: closes its stdin (MCP servers exit on end of
    /// input) and waits up to `grace`; then sends `SIGTERM` to its process
    /// group and waits up to `grace` again; then sends `SIGKILL`. Once the
    /// leader is reaped, whatever is left of its group (grandchildren) is
    /// killed, the pipe readers finish (at most `grace` more, then they are
    /// aborted) and the calls still waiting fail. Logs and returns how it
    /// ended.
    pub async fn stop(mut self, grace: Duration) -> Ended {
        match self.attached.as_ref().and_then(|a| a.stdin.upgrade()) {
            Some(stdin) => stdin.close().await,
            None => drop(self.child.stdin().take()),
        }
        let mut ended = Ended::Exited;
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut status = tokio::time::timeout(grace, self.child.wait()).await.ok();
        #[cfg(unix)]
        if status.is_none() {
            ended = Ended::Terminated;
            let sigterm = tokio::signal::unix::SignalKind::terminate().as_raw_value();
            let _ = self.child.signal(sigterm);
            status = tokio::time::timeout(grace, self.child.wait()).await.ok();
        }
        let status = match status {
            Some(status) => status,
            None => {
                ended = Ended::Killed;
                let _ = self.child.start_kill();
                self.child.wait().await
            }
        };
        // The rest of the group (no error if none is left).
        let _ = self.child.start_kill();
        self.reaped = true;
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        tracing::info!(server = %self.server, how = %ended, status = %status, "Backend stopped");
        if let Some(attached) = self.attached.take() {
            // They end at end of input, which is now unless a process that
            // left the group holds the pipes.
            for reader in attached.readers {
                let abort = reader.abort_handle();
                if tokio::time::timeout(grace, reader).await.is_err() {
                    abort.abort();
                }
            }
            attached.correlator.close();
        }
        ended
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.reaped {
            // The whole group; tokio reaps the leader (kill-on-drop).
            let _ = self.child.start_kill();
        }
        if let Some(attached) = self.attached.take() {
            for reader in attached.readers {
                reader.abort();
            }
            attached.correlator.close();
        }
    }
}

#[derive(Debug)]
struct Shared {
    correlator: Arc<Correlator>,
    stdin: Arc<Stdin>,
}

/// Linux's `PIPE_BUF`: a write of at most this many bytes to a pipe is
/// atomic, all of it or (non-blocking, pipe full) none.
#[cfg(unix)]
const PIPE_BUF: usize = 4096;

/// The write end of the backend's stdin: on Unix a non-blocking pipe that
/// can be tried without waiting (the fast path of [`Stdin::send`]); on
/// Windows the child's ordinary stdin, always written by the writer task.
#[cfg(unix)]
type PipeWriter = tokio::net::unix::pipe::Sender;
#[cfg(windows)]
type PipeWriter = tokio::process::ChildStdin;

/// The backend's stdin: a queue drained in batches by the writer task, and a
/// fast path for a caller that finds nothing queued.
#[derive(Debug)]
struct Stdin {
    queue: mpsc::Sender<Vec<u8>>,
    /// Messages queued, or taken by the writer task and not written yet.
    queued: AtomicUsize,
    /// The pipe; `None` if the child has no stdin, or once it is closed.
    /// Locked by the writer task for each batch, tried by callers for the
    /// fast path.
    pipe: tokio::sync::Mutex<Option<PipeWriter>>,
    /// Cancelled by [`Stdin::close`]: the writer task lets go of the pipe
    /// even in the middle of a write the backend does not read.
    closing: CancellationToken,
}

impl Stdin {
    /// Writes `frame` and a newline now, if nothing is queued (so nothing
    /// sent before is overtaken), the pipe is free, and the pipe takes it
    /// whole in one non-blocking write; otherwise queues it for the writer
    /// task. Writing in place saves the hand-off to the writer task. Only
    /// frames under `PIPE_BUF` qualify: such a write is all or nothing, so a
    /// caller dropped at any point never leaves half a message in the pipe.
    /// Returns whether the message was written or queued.
    async fn send(&self, #[allow(unused_mut)] mut frame: Vec<u8>) -> bool {
        #[cfg(unix)]
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

    /// Closes the pipe, so the backend reads end of input; what is still
    /// queued is not written.
    async fn close(&self) {
        self.closing.cancel();
        let pipe = self.pipe.lock().await.take();
        drop(pipe);
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

/// The child's stdin as a [`PipeWriter`].
#[cfg(unix)]
fn pipe_writer(stdin: tokio::process::ChildStdin) -> std::io::Result<PipeWriter> {
    stdin
        .into_owned_fd()
        .and_then(tokio::net::unix::pipe::Sender::from_owned_fd)
}

/// The child's stdin as a [`PipeWriter`].
#[cfg(windows)]
#[allow(clippy::unnecessary_wraps, reason = "the same shape as on Unix")]
fn pipe_writer(stdin: tokio::process::ChildStdin) -> std::io::Result<PipeWriter> {
    Ok(stdin)
}

/// A connection to a stdio backend: a cheap-to-clone [`Upstream`] service.
#[derive(Debug, Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    /// Takes over the process's pipes and starts the reader, writer and
    /// stderr tasks. The returned events end with `UpstreamEvent::Closed`
    /// when the backend closes its stdout (it exited or crashed, or it
    /// closed stdout and runs on: the connection is over either way) or
    /// the process is stopped.
    pub fn start(server: &Arc<str>, process: &mut Process) -> (Self, Events) {
        let (writer_tx, writer_rx) = mpsc::channel(1024);
        let (correlator, events) = Correlator::new(server.clone());
        let child = &mut process.child;
        let pipe = child.stdin().take().and_then(|stdin| {
            pipe_writer(stdin)
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
            closing: CancellationToken::new(),
        });
        if has_stdin {
            tokio::spawn(write_loop(
                server.clone(),
                Arc::downgrade(&stdin),
                writer_rx,
                stdin.closing.clone(),
            ));
        }
        let mut readers = Vec::with_capacity(2);
        if let Some(stderr) = child.stderr().take() {
            readers.push(tokio::spawn(stderr_loop(
                server.clone(),
                stderr,
                process.max_log_line,
            )));
        }
        if let Some(stdout) = child.stdout().take() {
            readers.push(tokio::spawn(read_loop(correlator.clone(), stdout)));
        } else {
            correlator.close();
        }
        process.attached = Some(Attached {
            stdin: Arc::downgrade(&stdin),
            correlator: correlator.clone(),
            readers,
        });
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
    stdin: Weak<Stdin>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    closing: CancellationToken,
) {
    let mut buffer = Vec::new();
    // Every wait ends when the stdin closes: a backend that reads nothing
    // must not keep the pipe open through a write that never finishes.
    while let Some(Some(line)) = closing.run_until_cancelled(rx.recv()).await {
        let Some(stdin) = stdin.upgrade() else { break };
        let Some(mut pipe) = closing.run_until_cancelled(stdin.pipe.lock()).await else {
            break;
        };
        let Some(writer) = pipe.as_mut() else { break };
        let Some(written) = closing
            .run_until_cancelled(write_batch(writer, line, &mut rx, &mut buffer))
            .await
        else {
            break;
        };
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

/// Logs the backend's stderr line by line until end of input: bytes that
/// are not UTF-8 become U+FFFD, a line over `max` bytes is logged cut, with
/// a marker, and the rest of it is read and discarded.
async fn stderr_loop(server: Arc<str>, stderr: ChildStderr, max: usize) {
    let mut lines = LogLines::new(BufReader::with_capacity(64 << 10, stderr), max);
    loop {
        match lines.next_line().await {
            Ok(Some((line, false))) => {
                let line = String::from_utf8_lossy(line);
                tracing::info!(target: "only1mcp::backend", server = %server, "{line}");
            }
            Ok(Some((line, true))) => {
                let line = String::from_utf8_lossy(line);
                tracing::info!(target: "only1mcp::backend", server = %server, "{line}… [line cut at {max} bytes]");
            }
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(server = %server, error = %e, "Reading the backend's stderr failed");
                break;
            }
        }
    }
}

async fn read_loop(correlator: Arc<Correlator>, stdout: ChildStdout) {
    let mut reader = LineReader::new(BufReader::new(stdout), MAX_UPSTREAM_LINE);
    loop {
        let line = match reader.next_line().await {
            Ok(Some(Line::Data(line))) => line,
            Ok(Some(Line::TooLong { len, id, method })) => {
                correlator.oversized(len, MAX_UPSTREAM_LINE, id.as_ref(), method);
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
