//! Downstream stdio: the gateway as an MCP server on its own stdin/stdout.
//!
//! The reading side is a [`crate::framing::LineReader`] over stdin; the
//! writing side is an [`Outbound`] handle: any task may send a message, and
//! one writer task puts each on stdout as a single line, so concurrent
//! responses never interleave. Nothing else may write to stdout.

use only1mcp_core::jsonrpc::Message;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::framing::write_batch;

/// The largest message a client may send on stdio (4 MiB).
pub const MAX_DOWNSTREAM_LINE: usize = 4 * 1024 * 1024;

/// A handle that queues messages for the client.
#[derive(Debug, Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Vec<u8>>,
}

impl Outbound {
    /// A handle whose messages arrive, serialized, on the returned receiver
    /// (for a response stream of the HTTP face, or a WebSocket writer).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx }, rx)
    }

    /// Queues a message; returns `false` if the client is gone.
    pub async fn send(&self, message: &Message) -> bool {
        self.tx.send(message.to_vec()).await.is_ok()
    }

    /// Queues one already-serialized frame (a batch answer); returns `false`
    /// if the client is gone.
    pub async fn send_raw(&self, frame: Vec<u8>) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    /// Queues a message if there is room now; returns `false` if the queue
    /// is full or the client is gone.
    pub fn try_send(&self, message: &Message) -> bool {
        self.tx.try_send(message.to_vec()).is_ok()
    }

    /// Whether the client is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Starts the writer task over `writer` (stdout, or a pipe in tests). The
/// task ends when every [`Outbound`] is dropped or the write side fails.
pub fn writer<W>(mut writer: W) -> (Outbound, JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
    let task = tokio::spawn(async move {
        let mut buffer = Vec::new();
        while let Some(line) = rx.recv().await {
            if write_batch(&mut writer, line, &mut rx, &mut buffer)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    (Outbound { tx }, task)
}
