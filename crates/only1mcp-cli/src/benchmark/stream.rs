//! Stream connections, stdio and WebSocket: many requests in flight on one
//! connection, matched to their answers by id.
//!
//! A writer task drains a queue of outgoing messages (batching what is
//! queued before each flush); a reader task reads every incoming message and
//! completes the waiting call with that id. When the peer closes, every call
//! still waiting fails.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::message::{self, Answer, Era, Incoming};
use super::target::Endpoint;
use super::{CallError, Reply, Wire};

/// Calls waiting for their answer, by id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// One stdio child or WebSocket connection.
#[derive(Debug)]
pub(crate) struct StreamConn {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    /// Why the connection ended, once it has.
    closed: Arc<Mutex<Option<String>>>,
    child: Option<Child>,
    writer: tokio::task::JoinHandle<()>,
}

/// Removes a call from the pending map when it ends (answered, timed out or
/// dropped).
struct PendingGuard<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamConn {
    /// Spawns `program args` (directly, never through a shell) and speaks
    /// MCP on its stdio. Its stderr is discarded so that a chatty server
    /// does not garble the progress bar.
    pub(crate) async fn spawn(
        program: &std::ffi::OsStr,
        args: &[std::ffi::OsString],
        era: Era,
    ) -> Result<Self, String> {
        #[allow(
            clippy::disallowed_methods,
            reason = "a load generator spawns the command the user named, without a shell, like a client IDE does; it is not a gateway backend"
        )]
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the child has no stdio pipes".to_owned());
        };
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            let mut out = BufWriter::new(stdin);
            while let Some(first) = queue.recv().await {
                let mut next = Some(first);
                while let Some(line) = next {
                    if out.write_all(&line).await.is_err() || out.write_all(b"\n").await.is_err() {
                        return;
                    }
                    next = queue.try_recv().ok();
                }
                if out.flush().await.is_err() {
                    return;
                }
            }
            // Closing stdin asks the child to exit.
            let _ = out.shutdown().await;
        });
        let pending = Pending::default();
        let closed = Arc::new(Mutex::new(None));
        let (reader_pending, reader_closed) = (pending.clone(), closed.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::with_capacity(4096);
            let reason = loop {
                line.clear();
                match lines.read_until(b'\n', &mut line).await {
                    Ok(0) => break "the child closed its stdout".to_owned(),
                    Ok(_) => deliver(&reader_pending, &line),
                    Err(e) => break format!("reading the child's stdout: {e}"),
                }
            };
            fail_all(&reader_pending, &reader_closed, reason);
        });
        let conn = Self {
            outgoing,
            pending,
            closed,
            child: Some(child),
            writer,
        };
        conn.handshake(era).await?;
        Ok(conn)
    }

    /// Opens a WebSocket (subprotocol `mcp`) to `addr`.
    pub(crate) async fn websocket(
        endpoint: &Endpoint,
        addr: std::net::SocketAddr,
        era: Era,
    ) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let mut request = endpoint
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{}: {e}", endpoint.url))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static("mcp"),
        );
        // tungstenite zero-fills its read buffer before every read (128 KiB
        // by default), which would make the generator the costly side.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024);
        let (socket, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| format!("WebSocket handshake with {}: {e}", endpoint.url))?;
        let (mut sink, mut source) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut next = Some(first);
                while let Some(bytes) = next {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if sink.feed(WsMessage::text(text)).await.is_err() {
                        return;
                    }
                    next = queue.try_recv().ok();
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let pending = Pending::default();
        let closed = Arc::new(Mutex::new(None));
        let (reader_pending, reader_closed) = (pending.clone(), closed.clone());
        tokio::spawn(async move {
            let reason = loop {
                match source.next().await {
                    Some(Ok(WsMessage::Text(text))) => {
                        deliver(&reader_pending, text.as_str().as_bytes());
                    }
                    Some(Ok(WsMessage::Binary(bytes))) => deliver(&reader_pending, &bytes),
                    Some(Ok(WsMessage::Close(_))) | None => {
                        break "the server closed the WebSocket".to_owned();
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("WebSocket: {e}"),
                }
            };
            fail_all(&reader_pending, &reader_closed, reason);
        });
        let conn = Self {
            outgoing,
            pending,
            closed,
            child: None,
            writer,
        };
        conn.handshake(era).await?;
        Ok(conn)
    }

    async fn handshake(&self, era: Era) -> Result<(), String> {
        if era == Era::Modern {
            return Ok(());
        }
        // Id 0 is never used by the benchmarked requests (they start at 1).
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            self.call(0, message::initialize(0)),
        )
        .await
        .map_err(|_| "initialize: no answer within 30 s".to_owned())?
        .map_err(|e| format!("initialize: {e}"))?;
        if let Answer::RpcError(code, text) = answer.answer {
            return Err(format!("initialize: error {code}: {text}"));
        }
        self.outgoing
            .send(message::initialized())
            .map_err(|_| "the connection closed".to_owned())?;
        Ok(())
    }

    /// Sends a request with `id` and waits for its answer.
    pub(crate) async fn call(&self, id: u64, body: Vec<u8>) -> Result<Reply, CallError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let _guard = PendingGuard {
            pending: &self.pending,
            id,
        };
        if let Some(reason) = lock(&self.closed).as_ref() {
            return Err(CallError::Transport(reason.clone()));
        }
        if self.outgoing.send(body).is_err() {
            return Err(CallError::Transport("the connection closed".to_owned()));
        }
        match rx.await {
            Ok(answer) => Ok(Reply {
                answer,
                wire: Wire::Stream,
            }),
            Err(_) => Err(CallError::Transport(
                lock(&self.closed)
                    .clone()
                    .unwrap_or_else(|| "the connection closed".to_owned()),
            )),
        }
    }

    /// Closes the connection: a WebSocket close frame, or the child's stdin
    /// (then a kill if it has not exited within two seconds).
    pub(crate) async fn close(self) {
        let Self {
            outgoing,
            writer,
            child,
            ..
        } = self;
        drop(outgoing);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        if let Some(mut child) = child
            && tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

/// Completes the call a message answers; everything else is ignored.
fn deliver(pending: &Pending, bytes: &[u8]) {
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() {
        return;
    }
    if let Ok(Incoming::Response(id, answer)) = message::read(bytes)
        && let Some(waiter) = lock(pending).remove(&id)
    {
        let _ = waiter.send(answer);
    }
}

/// Marks the connection closed and fails every call still waiting.
fn fail_all(pending: &Pending, closed: &Mutex<Option<String>>, reason: String) {
    *lock(closed) = Some(reason);
    lock(pending).clear();
}
