//! Downstream: what the gateway sends its clients.
//!
//! An [`Outbound`] handle queues messages for one client: any task may send
//! one, and one consumer takes them in order ([`Inbox`]): the stdio writer
//! task ([`writer`]), which puts each on stdout as a single line so
//! concurrent responses never interleave (nothing else may write to
//! stdout), or a stream of the HTTP face (an event stream, a WebSocket).
//!
//! The queue is bounded in bytes (`limits.max_queued_bytes`): each message
//! counts its length plus [`OVERHEAD`], and a message larger than the whole
//! bound counts as the bound, so it still goes when the queue is empty. What
//! happens when a message does not fit is the queue's [`OnFull`]: stdio
//! waits (the client not reading stdout is back-pressure), a network client
//! is disconnected, since a client that does not read must not make the
//! gateway keep every answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use only1mcp_core::jsonrpc::Message;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Notify, Semaphore, TryAcquireError, mpsc};
use tokio::task::JoinHandle;

/// The largest message a client may send on stdio (4 MiB).
pub const MAX_DOWNSTREAM_LINE: usize = 4 * 1024 * 1024;

/// What each queued message costs besides its bytes (its allocation and
/// place in the queue), so that a flood of tiny messages is bounded too.
pub const OVERHEAD: usize = 64;

/// What a send does when its message does not fit in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Wait for room (stdio: the pipe's own back-pressure).
    Wait,
    /// Close the queue: the client is disconnected (logged once), every
    /// later send fails, and its [`Inbox`] ends.
    Disconnect,
}

/// A handle that queues messages for the client.
#[derive(Debug, Clone)]
pub struct Outbound {
    tx: mpsc::Sender<Vec<u8>>,
    /// The byte bound; `None` for one request's own notifications
    /// ([`Outbound::for_request`]), bounded by count.
    queue: Option<Arc<Queue>>,
}

/// The receiving end of an [`Outbound`] queue. Dropping it closes the
/// queue.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Vec<u8>>,
    queue: Option<Arc<Queue>>,
}

#[derive(Debug)]
struct Queue {
    /// Room left, in bytes: taken by a send, given back when the message is
    /// received. Closed when the queue is.
    room: Semaphore,
    max_bytes: usize,
    on_full: OnFull,
    /// Set when a [`OnFull::Disconnect`] queue overflowed; `cut_off`
    /// wakes whoever waits for it.
    overflowed: AtomicBool,
    cut_off: Notify,
}

impl Queue {
    /// What a message of `len` bytes takes of the room.
    fn cost(&self, len: usize) -> u32 {
        let cost = len.saturating_add(OVERHEAD).min(self.max_bytes);
        u32::try_from(cost).unwrap_or(u32::MAX)
    }

    fn has_overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    async fn overflow_seen(&self) {
        loop {
            let cut_off = self.cut_off.notified();
            let mut cut_off = std::pin::pin!(cut_off);
            cut_off.as_mut().enable();
            if self.has_overflowed() {
                return;
            }
            cut_off.await;
        }
    }
}

impl Outbound {
    /// A queue of at most `max_bytes` (see the module doc) whose messages
    /// arrive, serialized, in the returned [`Inbox`].
    pub fn channel(max_bytes: usize, on_full: OnFull) -> (Self, Inbox) {
        // (A semaphore counts at most `u32::MAX` permits at once.)
        let max_bytes = max_bytes.clamp(1, u32::MAX as usize);
        // The bytes bound the count: the channel's own is never reached.
        let (tx, rx) = mpsc::channel(max_bytes / OVERHEAD + 1);
        let queue = Arc::new(Queue {
            room: Semaphore::new(max_bytes),
            max_bytes,
            on_full,
            overflowed: AtomicBool::new(false),
            cut_off: Notify::new(),
        });
        (
            Self {
                tx,
                queue: Some(queue.clone()),
            },
            Inbox {
                rx,
                queue: Some(queue),
            },
        )
    }

    /// A queue for one request's own notifications (its progress, the
    /// requests its backend asks the client) on the response that answers
    /// it: at most `capacity` messages, a send waiting for room. It lives
    /// as long as the request, so it needs no byte bound of its own, and
    /// costs no more than a channel.
    pub fn for_request(capacity: usize) -> (Self, Inbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx, queue: None }, Inbox { rx, queue: None })
    }

    /// Queues a message; returns `false` if the client is gone (or, for a
    /// [`OnFull::Disconnect`] queue, has just been disconnected because the
    /// message did not fit).
    pub async fn send(&self, message: &Message) -> bool {
        self.send_raw(message.to_vec()).await
    }

    /// Queues one already-serialized frame (a batch answer); as
    /// [`Outbound::send`].
    pub async fn send_raw(&self, frame: Vec<u8>) -> bool {
        let Some(queue) = &self.queue else {
            return self.tx.send(frame).await.is_ok();
        };
        let cost = queue.cost(frame.len());
        let permit = match queue.on_full {
            OnFull::Wait => queue.room.acquire_many(cost).await.ok(),
            OnFull::Disconnect => match queue.room.try_acquire_many(cost) {
                Ok(permit) => Some(permit),
                Err(TryAcquireError::NoPermits) => {
                    overflow(queue);
                    None
                }
                Err(TryAcquireError::Closed) => None,
            },
        };
        let Some(permit) = permit else {
            return false;
        };
        permit.forget();
        if self.tx.try_send(frame).is_err() {
            queue.room.add_permits(cost as usize);
            return false;
        }
        true
    }

    /// Queues a message if there is room now; returns `false` if there is
    /// not (the message is dropped, nothing else happens: for messages that
    /// may be lost, like progress) or the client is gone.
    pub fn try_send(&self, message: &Message) -> bool {
        let frame = message.to_vec();
        let Some(queue) = &self.queue else {
            return self.tx.try_send(frame).is_ok();
        };
        let cost = queue.cost(frame.len());
        let Ok(permit) = queue.room.try_acquire_many(cost) else {
            return false;
        };
        permit.forget();
        if self.tx.try_send(frame).is_err() {
            queue.room.add_permits(cost as usize);
            return false;
        }
        true
    }

    /// Whether the client is gone (or was disconnected).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.queue.as_ref().is_some_and(|q| q.room.is_closed())
    }
}

/// Cuts a [`OnFull::Disconnect`] queue's client off (once, logged).
fn overflow(queue: &Queue) {
    if queue.overflowed.swap(true, Ordering::AcqRel) {
        return;
    }
    queue.room.close();
    queue.cut_off.notify_waiters();
    tracing::warn!(
        limit = queue.max_bytes,
        "Client disconnected: it does not read what it is sent, and more than limits.max_queued_bytes would be queued for it"
    );
}

impl Inbox {
    /// The next message; `None` once every [`Outbound`] is gone or the
    /// queue overflowed (what is still queued is dropped then).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        // An overflow happens while messages are queued, so never while
        // this waits on an empty queue: a look before and after is enough.
        if self.queue.as_ref().is_some_and(|q| q.has_overflowed()) {
            return None;
        }
        let frame = self.rx.recv().await?;
        self.taken(&frame).then_some(frame)
    }

    /// The next message if one is queued now.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        let frame = self.rx.try_recv().ok()?;
        self.taken(&frame).then_some(frame)
    }

    /// Resolves once the queue overflowed ([`OnFull::Disconnect`]): its
    /// client is to be disconnected now. Borrows nothing.
    pub fn overflowed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let queue = self.queue.clone();
        async move {
            match queue {
                Some(queue) => queue.overflow_seen().await,
                None => std::future::pending().await,
            }
        }
    }

    /// Gives `frame`'s room back; `false` if the queue overflowed (the
    /// frame is not to be delivered).
    fn taken(&self, frame: &[u8]) -> bool {
        let Some(queue) = &self.queue else {
            return true;
        };
        if queue.has_overflowed() {
            return false;
        }
        if !queue.room.is_closed() {
            queue.room.add_permits(queue.cost(frame.len()) as usize);
        }
        true
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Senders waiting for room must not wait for a reader that is gone.
        if let Some(queue) = &self.queue {
            queue.room.close();
        }
    }
}

/// Starts the stdio writer task over `writer` (stdout, or a pipe in tests),
/// with a queue of at most `max_bytes` whose senders wait for room. The task
/// ends when every [`Outbound`] is dropped or the write side fails.
pub fn writer<W>(mut writer: W, max_bytes: usize) -> (Outbound, JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (outbound, mut inbox) = Outbound::channel(max_bytes, OnFull::Wait);
    let task = tokio::spawn(async move {
        let mut buffer = Vec::new();
        while let Some(line) = inbox.recv().await {
            if write_batch(&mut writer, &line, &mut inbox, &mut buffer)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    (outbound, task)
}

/// Writes `first` and whatever else is already queued (up to 64 KiB more),
/// each followed by a newline, with one write and one flush: a syscall and
/// a wake-up of the reader per batch rather than per message under load.
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    first: &[u8],
    inbox: &mut Inbox,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    const BATCH: usize = 64 * 1024;
    buffer.clear();
    buffer.extend_from_slice(first);
    buffer.push(b'\n');
    while buffer.len() < BATCH {
        let Some(line) = inbox.try_recv() else { break };
        buffer.extend_from_slice(&line);
        buffer.push(b'\n');
    }
    writer.write_all(buffer).await?;
    writer.flush().await?;
    // A large batch does not stay with an idle writer.
    if buffer.capacity() > 4 * BATCH {
        *buffer = Vec::new();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        vec![b'x'; len]
    }

    #[tokio::test]
    async fn a_queue_that_would_pass_its_bytes_disconnects_its_client() {
        let (outbound, mut inbox) = Outbound::channel(1000, OnFull::Disconnect);
        // Two of 400 (+64 each) fit; a third does not.
        assert!(outbound.send_raw(frame(400)).await);
        assert!(outbound.send_raw(frame(400)).await);
        // A message that may be lost is just dropped.
        let note = Message::Notification(only1mcp_core::jsonrpc::Notification {
            method: "notifications/progress".to_owned(),
            params: None,
        });
        assert!(!outbound.try_send(&note));
        assert!(!outbound.is_closed());
        assert!(!outbound.send_raw(frame(400)).await);
        assert!(outbound.is_closed());
        inbox.overflowed().await;
        // The client is cut off: what was queued is not delivered.
        assert_eq!(inbox.recv().await, None);
        assert!(!outbound.send_raw(frame(1)).await);
    }

    #[tokio::test]
    async fn received_messages_give_their_room_back() {
        let (outbound, mut inbox) = Outbound::channel(1000, OnFull::Disconnect);
        for _ in 0..100 {
            assert!(outbound.send_raw(frame(400)).await);
            assert!(outbound.send_raw(frame(400)).await);
            assert_eq!(inbox.recv().await.map(|f| f.len()), Some(400));
            assert_eq!(inbox.try_recv().map(|f| f.len()), Some(400));
        }
        // A message over the whole bound goes when the queue is empty.
        assert!(outbound.send_raw(frame(5000)).await);
        assert_eq!(inbox.recv().await.map(|f| f.len()), Some(5000));
    }

    #[tokio::test]
    async fn a_waiting_queue_holds_its_senders_until_there_is_room() {
        let (outbound, mut inbox) = Outbound::channel(1000, OnFull::Wait);
        assert!(outbound.send_raw(frame(400)).await);
        assert!(outbound.send_raw(frame(400)).await);
        let third = tokio::spawn({
            let outbound = outbound.clone();
            async move { outbound.send_raw(frame(400)).await }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "sent although there was no room");
        assert!(inbox.recv().await.is_some());
        assert!(third.await.unwrap());
        // A reader that goes away frees a waiting sender.
        let fourth = tokio::spawn({
            let outbound = outbound.clone();
            async move { outbound.send_raw(frame(900)).await }
        });
        drop(inbox);
        assert!(!fourth.await.unwrap());
        assert!(outbound.is_closed());
    }

    #[tokio::test]
    async fn the_writer_puts_each_message_on_its_own_line() {
        let (pipe, mut read) = tokio::io::duplex(1 << 16);
        let (outbound, task) = writer(pipe, 1 << 20);
        for text in ["a", "bb", "ccc"] {
            assert!(outbound.send_raw(text.as_bytes().to_vec()).await);
        }
        drop(outbound);
        task.await.unwrap();
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut read, &mut out)
            .await
            .unwrap();
        assert_eq!(out, "a\nbb\nccc\n");
    }
}
