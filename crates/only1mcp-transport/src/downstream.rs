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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use only1mcp_core::jsonrpc::Message;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Notify, mpsc};
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
    tx: Tx,
}

/// The receiving end of an [`Outbound`] queue. Dropping it closes the
/// queue.
#[derive(Debug)]
pub struct Inbox {
    rx: Rx,
}

/// The sending side: weighed in bytes ([`Outbound::channel`]), or counted
/// ([`Outbound::for_request`]).
#[derive(Debug, Clone)]
enum Tx {
    Weighed(mpsc::UnboundedSender<Vec<u8>>, Arc<Queue>),
    Counted(mpsc::Sender<Vec<u8>>),
}

#[derive(Debug)]
enum Rx {
    Weighed(mpsc::UnboundedReceiver<Vec<u8>>, Arc<Queue>),
    Counted(mpsc::Receiver<Vec<u8>>),
}

/// The byte bound of a queue. Taking and giving back room are atomic
/// operations; a sender that waits for room (stdio) waits on `freed`.
#[derive(Debug)]
struct Queue {
    /// Bytes taken by messages not received yet.
    used: AtomicUsize,
    max_bytes: usize,
    on_full: OnFull,
    /// Senders waiting for room ([`OnFull::Wait`]).
    waiting: AtomicUsize,
    freed: Notify,
    /// The reader is gone, or the queue overflowed.
    closed: AtomicBool,
    /// A [`OnFull::Disconnect`] queue overflowed; `cut_off` wakes whoever
    /// waits for that.
    overflowed: AtomicBool,
    cut_off: Notify,
}

impl Queue {
    /// What a message of `len` bytes takes of the room.
    fn cost(&self, len: usize) -> usize {
        len.saturating_add(OVERHEAD).min(self.max_bytes)
    }

    /// Takes `cost` bytes of room if there is that much.
    fn take(&self, cost: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + cost <= self.max_bytes).then_some(used + cost)
            })
            .is_ok()
    }

    /// Gives `cost` bytes of room back.
    fn give(&self, cost: usize) {
        self.used.fetch_sub(cost, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.freed.notify_waiters();
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.freed.notify_waiters();
    }

    /// Takes `cost` bytes of room as the queue's [`OnFull`] says; `false`
    /// if the message is not to be queued.
    async fn room(&self, cost: usize) -> bool {
        loop {
            if self.is_closed() {
                return false;
            }
            if self.take(cost) {
                return true;
            }
            if self.on_full == OnFull::Disconnect {
                self.overflow();
                return false;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if !self.is_closed() && self.take(cost) {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return true;
            }
            if !self.is_closed() {
                freed.await;
            }
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Cuts the client off (once, logged).
    fn overflow(&self) {
        if self.overflowed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close();
        self.cut_off.notify_waiters();
        tracing::warn!(
            limit = self.max_bytes,
            "Client disconnected: it does not read what it is sent, and more than limits.max_queued_bytes would be queued for it"
        );
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
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue {
            used: AtomicUsize::new(0),
            max_bytes: max_bytes.max(1),
            on_full,
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
            closed: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            cut_off: Notify::new(),
        });
        (
            Self {
                tx: Tx::Weighed(tx, queue.clone()),
            },
            Inbox {
                rx: Rx::Weighed(rx, queue),
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
        (
            Self {
                tx: Tx::Counted(tx),
            },
            Inbox {
                rx: Rx::Counted(rx),
            },
        )
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
        match &self.tx {
            Tx::Counted(tx) => tx.send(frame).await.is_ok(),
            Tx::Weighed(tx, queue) => {
                let cost = queue.cost(frame.len());
                if !queue.room(cost).await {
                    return false;
                }
                if tx.send(frame).is_err() {
                    queue.give(cost);
                    return false;
                }
                true
            }
        }
    }

    /// Queues a message if there is room now; returns `false` if there is
    /// not (the message is dropped, nothing else happens: for messages that
    /// may be lost, like progress) or the client is gone.
    pub fn try_send(&self, message: &Message) -> bool {
        let frame = message.to_vec();
        match &self.tx {
            Tx::Counted(tx) => tx.try_send(frame).is_ok(),
            Tx::Weighed(tx, queue) => {
                let cost = queue.cost(frame.len());
                if queue.is_closed() || !queue.take(cost) {
                    return false;
                }
                if tx.send(frame).is_err() {
                    queue.give(cost);
                    return false;
                }
                true
            }
        }
    }

    /// Whether the client is gone (or was disconnected).
    pub fn is_closed(&self) -> bool {
        match &self.tx {
            Tx::Counted(tx) => tx.is_closed(),
            Tx::Weighed(tx, queue) => tx.is_closed() || queue.is_closed(),
        }
    }
}

impl Inbox {
    /// The next message; `None` once every [`Outbound`] is gone or the
    /// queue overflowed (what is still queued is dropped then).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        match &mut self.rx {
            Rx::Counted(rx) => rx.recv().await,
            Rx::Weighed(rx, queue) => {
                // An overflow needs a full queue, so it never happens while
                // this waits on an empty one: a look before and after.
                if queue.has_overflowed() {
                    return None;
                }
                let frame = rx.recv().await?;
                taken(queue, &frame).then_some(frame)
            }
        }
    }

    /// The next message if one is queued now.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        match &mut self.rx {
            Rx::Counted(rx) => rx.try_recv().ok(),
            Rx::Weighed(rx, queue) => {
                let frame = rx.try_recv().ok()?;
                taken(queue, &frame).then_some(frame)
            }
        }
    }

    /// Resolves once the queue overflowed ([`OnFull::Disconnect`]): its
    /// client is to be disconnected now. Borrows nothing.
    pub fn overflowed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let queue = match &self.rx {
            Rx::Weighed(_, queue) => Some(queue.clone()),
            Rx::Counted(_) => None,
        };
        async move {
            match queue {
                Some(queue) => queue.overflow_seen().await,
                None => std::future::pending().await,
            }
        }
    }
}

/// Gives a received `frame`'s room back; `false` if the queue overflowed
/// (the frame is not to be delivered).
fn taken(queue: &Queue, frame: &[u8]) -> bool {
    if queue.has_overflowed() {
        return false;
    }
    queue.give(queue.cost(frame.len()));
    true
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Senders waiting for room must not wait for a reader that is gone.
        if let Rx::Weighed(_, queue) = &self.rx {
            queue.close();
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
