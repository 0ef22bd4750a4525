//! Request/response correlation, shared by every upstream connection.
//!
//! A [`Correlator`] owns the JSON-RPC id space towards one backend: it hands
//! out ids, keeps a waiter per call in flight, completes the waiter when the
//! response with that id arrives (on whatever stream it arrives), turns
//! everything else the backend sends into [`UpstreamEvent`]s, and on
//! [`Correlator::close`] fails every waiter and ends the event stream with
//! [`UpstreamEvent::Closed`]. A [`CallGuard`] lives in each call's future:
//! if the caller drops the future before the answer, the guard forgets the id
//! and, where the transport cancels that way, sends
//! `notifications/cancelled`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{self, Frame, Id, Message, Notification, Outcome};
use only1mcp_core::mcp::method;
use only1mcp_core::upstream::{Events, UpstreamEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Calls in flight by the id sent for them: each gets the backend's answer,
/// or an error the gateway found for it (an answer too large to read).
type Pending = HashMap<i64, oneshot::Sender<Reply>, foldhash::fast::RandomState>;

/// What a waiting call gets.
pub(crate) type Reply = Result<Outcome, Error>;

/// How many unread events a connection buffers before it stops reading from
/// the backend (backpressure, as on stdio).
const EVENT_BUFFER: usize = 1024;

/// The waiters of one connection, and where its unasked messages go.
#[derive(Debug)]
pub(crate) struct Correlator {
    server: Arc<str>,
    next_id: AtomicI64,
    // A plain mutex: held for one map operation, never across an await.
    /// By the ids this correlator chose (so foldhash, not SipHash).
    pending: Mutex<Pending>,
    events: mpsc::Sender<UpstreamEvent>,
    closed: CancellationToken,
    /// Sees each notification before it becomes an event (see
    /// [`NotificationHook`]).
    hook: std::sync::OnceLock<Hook>,
}

/// The hook, printable.
struct Hook(NotificationHook);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationHook")
    }
}

/// A function that sees each notification from the backend in the reader
/// task, in wire order, before any later response completes its call.
/// Returning `true` consumes the notification (no event is emitted). The
/// gateway routes progress this way, so a request's progress always reaches
/// its client before the request's result.
pub type NotificationHook = Arc<dyn Fn(&Notification) -> bool + Send + Sync>;

impl Correlator {
    /// A correlator for `server`, and the event stream it feeds.
    pub(crate) fn new(server: Arc<str>) -> (Arc<Self>, Events) {
        let (events_tx, events_rx) = mpsc::channel(EVENT_BUFFER);
        let closed = CancellationToken::new();
        let correlator = Arc::new(Self {
            server,
            next_id: AtomicI64::new(1),
            pending: Mutex::new(Pending::default()),
            events: events_tx,
            closed: closed.clone(),
            hook: std::sync::OnceLock::new(),
        });
        (correlator, events_stream(events_rx, closed))
    }

    /// The server id.
    pub(crate) fn server(&self) -> &Arc<str> {
        &self.server
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the notification hook (once; later calls are ignored).
    pub(crate) fn set_hook(&self, hook: NotificationHook) {
        let _ = self.hook.set(Hook(hook));
    }

    /// Allocates the id of a new call and registers its waiter.
    pub(crate) fn register(&self) -> (i64, oneshot::Receiver<Reply>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending().insert(id, tx);
        (id, rx)
    }

    /// Drops the waiter of `id`; returns whether it was still waiting.
    pub(crate) fn forget(&self, id: i64) -> bool {
        self.pending().remove(&id).is_some()
    }

    /// Completes the call `id` with `outcome`; returns whether it was waiting.
    pub(crate) fn complete(&self, id: i64, outcome: Outcome) -> bool {
        self.settle(id, Ok(outcome))
    }

    /// Fails the call `id` with `error`; returns whether it was waiting.
    pub(crate) fn fail(&self, id: i64, error: Error) -> bool {
        self.settle(id, Err(error))
    }

    fn settle(&self, id: i64, reply: Reply) -> bool {
        match self.pending().remove(&id) {
            Some(tx) => {
                let _ = tx.send(reply);
                true
            }
            None => false,
        }
    }

    /// Handles a message from the backend that was over the size limit and
    /// skipped, of which only the envelope is known (see
    /// [`crate::framing::EnvelopeScan`]). An answer (no `method`) whose `id`
    /// is a call in flight fails that call at once with
    /// [`Error::UpstreamAnswerTooLarge`]. Anything else cannot be told apart
    /// from the other messages: a request or notification, or an answer
    /// without a usable `id` (none, `null`, not ours), is logged and
    /// dropped, and a call it may have answered runs into its timeout.
    pub(crate) fn oversized(&self, len: usize, limit: usize, id: Option<&Id>, method: bool) {
        let call = match (id, method) {
            (Some(Id::Number(id)), false) => Some(*id),
            _ => None,
        };
        let failed = call.is_some_and(|id| {
            self.fail(
                id,
                Error::UpstreamAnswerTooLarge {
                    server: self.server.to_string(),
                    len,
                    limit,
                },
            )
        });
        if failed {
            tracing::warn!(server = %self.server, len, limit, id = ?id, "Backend answer over the size limit; its call failed");
        } else {
            tracing::warn!(server = %self.server, len, limit, id = ?id, method, "Backend message over the size limit; dropped");
        }
    }

    /// Routes one message from the backend: a response completes its call,
    /// anything else becomes an event. Returns `false` once nobody reads the
    /// events any more.
    pub(crate) async fn deliver(&self, message: Message) -> bool {
        let event = match message {
            Message::Response(res) => {
                let completed = match &res.id {
                    Some(Id::Number(id)) => self.complete(*id, res.outcome),
                    _ => false,
                };
                if !completed {
                    tracing::debug!(
                        server = %self.server,
                        id = ?res.id,
                        "Response to no pending request (late or cancelled); dropped"
                    );
                }
                return true;
            }
            Message::Notification(note) => {
                if self.hook.get().is_some_and(|hook| (hook.0)(&note)) {
                    return true;
                }
                UpstreamEvent::Notification(note)
            }
            Message::Request(req) => UpstreamEvent::Request(req),
        };
        self.events.send(event).await.is_ok()
    }

    /// Parses one frame (a line, an HTTP body, an SSE `data`, a WebSocket
    /// text frame) and delivers every message in it. Frames that are not
    /// JSON-RPC are logged and skipped. Returns `false` once nobody reads
    /// the events any more.
    ///
    /// A frame over [`PARSE_ELSEWHERE`] (a list of thousands of tools) is
    /// parsed on a blocking thread: parsing 1.5 MB takes a couple of
    /// milliseconds, which the runtime thread spends on other requests
    /// meanwhile (ADR 0008). Frames stay in order: the next is read only
    /// once this one is delivered.
    pub(crate) async fn deliver_frame(&self, bytes: &[u8]) -> bool {
        let parsed = if bytes.len() > PARSE_ELSEWHERE {
            let owned = bytes.to_vec();
            match tokio::task::spawn_blocking(move || jsonrpc::parse(&owned)).await {
                Ok(parsed) => parsed,
                // Only a runtime shutting down cancels it.
                Err(_) => return false,
            }
        } else {
            jsonrpc::parse(bytes)
        };
        let messages = match parsed {
            Ok(Frame::Single(message)) => vec![message],
            Ok(Frame::Batch(entries)) => entries.into_iter().filter_map(Result::ok).collect(),
            Err(invalid) => {
                tracing::warn!(
                    server = %self.server,
                    error = %invalid.error.message,
                    "Backend sent a message that is not JSON-RPC; ignored"
                );
                return true;
            }
        };
        for message in messages {
            if !self.deliver(message).await {
                return false;
            }
        }
        true
    }

    /// Marks the connection gone: every call still waiting fails with
    /// [`Error::UpstreamClosed`], and the event stream ends with
    /// [`UpstreamEvent::Closed`] after the events already queued. Idempotent.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        let waiting: Vec<_> = self.pending().drain().collect();
        drop(waiting);
    }

    /// Whether [`Correlator::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// A token cancelled when the connection closes, for background tasks.
    pub(crate) fn closed_token(&self) -> &CancellationToken {
        &self.closed
    }

    /// The error of a call on a connection that is gone.
    pub(crate) fn closed_error(&self) -> Error {
        Error::UpstreamClosed {
            server: self.server.to_string(),
        }
    }

    /// Waits for the answer to a registered call; a closed connection fails
    /// it with [`Error::UpstreamClosed`], an answer over the size limit with
    /// [`Error::UpstreamAnswerTooLarge`].
    pub(crate) async fn wait(&self, rx: oneshot::Receiver<Reply>) -> Result<Outcome, Error> {
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }
}

/// Sends `call` as one serialized message on `queue` (the writer task of a
/// stream transport: a child's stdin, a WebSocket) and waits for its answer.
/// Dropping the future before the answer sends `notifications/cancelled`
/// on the same queue, except for `initialize` (MCP lifecycle rule).
pub(crate) async fn call_over_queue(
    correlator: Arc<Correlator>,
    queue: mpsc::Sender<Vec<u8>>,
    call: only1mcp_core::upstream::Call,
) -> Result<Outcome, Error> {
    let cancel_queue = queue.clone();
    let cancel = move |note: Message| {
        let _ = cancel_queue.try_send(note.to_vec());
    };
    call_with(correlator, call, cancel, |frame| async move {
        queue.send(frame).await.is_ok()
    })
    .await
}

/// Sends `call` as one serialized message with `send` (which says whether
/// it went out) and waits for its answer. Dropping the future before the
/// answer hands `notifications/cancelled` to `cancel`, except for
/// `initialize` (MCP lifecycle rule).
pub(crate) async fn call_with<C, S, F>(
    correlator: Arc<Correlator>,
    call: only1mcp_core::upstream::Call,
    cancel: C,
    send: S,
) -> Result<Outcome, Error>
where
    C: FnOnce(Message) + Send + 'static,
    S: FnOnce(Vec<u8>) -> F,
    F: std::future::Future<Output = bool>,
{
    let (id, rx) = correlator.register();
    let cancel = (call.method != method::INITIALIZE).then(|| Box::new(cancel) as Cancel);
    let mut guard = CallGuard::new(correlator.clone(), id, cancel);
    let frame = Message::Request(jsonrpc::Request {
        id: Id::Number(id),
        method: call.method,
        params: call.params,
    })
    .to_vec();
    if correlator.is_closed() || !send(frame).await {
        guard.disarm();
        return Err(correlator.closed_error());
    }
    correlator.wait(rx).await
}

/// The event stream: queued events first, then one `Closed` when the
/// correlator closes or is dropped.
fn events_stream(rx: mpsc::Receiver<UpstreamEvent>, closed: CancellationToken) -> Events {
    let stream = futures::stream::unfold(Some((rx, closed)), |state| async move {
        let (mut rx, closed) = state?;
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                Some(event) => Some((event, Some((rx, closed)))),
                None => Some((UpstreamEvent::Closed, None)),
            },
            () = closed.cancelled() => Some((UpstreamEvent::Closed, None)),
        }
    });
    Box::pin(stream)
}

/// How a transport tells the backend that a call was abandoned; it receives
/// the `notifications/cancelled` message to send.
pub(crate) type Cancel = Box<dyn FnOnce(Message) + Send>;

/// Lives in a call's future: dropping it before the call completed forgets
/// the call and sends the cancellation, if the transport gave one.
pub(crate) struct CallGuard {
    correlator: Arc<Correlator>,
    id: i64,
    cancel: Option<Cancel>,
}

impl std::fmt::Debug for CallGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallGuard")
            .field("id", &self.id)
            .field("armed", &self.cancel.is_some())
            .finish_non_exhaustive()
    }
}

impl CallGuard {
    /// Guards call `id`. `cancel` is `None` when the call must not be
    /// cancelled (`initialize`) or the transport cancels by other means
    /// (closing a modern HTTP response stream).
    pub(crate) fn new(correlator: Arc<Correlator>, id: i64, cancel: Option<Cancel>) -> Self {
        Self {
            correlator,
            id,
            cancel,
        }
    }

    /// Sends no cancellation on drop: the backend never received the call,
    /// or it already answered.
    pub(crate) fn disarm(&mut self) {
        self.cancel = None;
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.correlator.forget(self.id)
            && let Some(cancel) = self.cancel.take()
        {
            cancel(cancelled(self.id));
        }
    }
}

/// The `notifications/cancelled` message for call `id`.
pub(crate) fn cancelled(id: i64) -> Message {
    let params = serde_json::json!({ "requestId": id, "reason": "cancelled by the gateway" });
    Message::Notification(Notification {
        method: method::CANCELLED.to_owned(),
        params: serde_json::value::to_raw_value(&params).ok(),
    })
}

/// Frames longer than this are parsed off the runtime thread (256 KiB: about
/// 0.3 ms of parsing, against the hand-off's tens of microseconds).
pub(crate) const PARSE_ELSEWHERE: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use only1mcp_core::jsonrpc::Response;

    use super::*;

    fn raw(json: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(json.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn response_completes_its_call_and_events_end_with_closed() {
        let (correlator, mut events) = Correlator::new("s".into());
        let (id, rx) = correlator.register();
        assert!(
            correlator
                .deliver_frame(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#)
                .await
        );
        correlator
            .deliver(Message::Response(Response::result(
                Id::Number(id),
                raw("7"),
            )))
            .await;
        assert_eq!(correlator.wait(rx).await.unwrap().unwrap().get(), "7");
        let (_, pending) = correlator.register();
        correlator.close();
        assert!(matches!(
            correlator.wait(pending).await,
            Err(Error::UpstreamClosed { .. })
        ));
        assert!(matches!(
            events.next().await,
            Some(UpstreamEvent::Notification(n)) if n.method == "notifications/progress"
        ));
        assert!(matches!(events.next().await, Some(UpstreamEvent::Closed)));
        assert!(events.next().await.is_none());
    }

    /// A frame parsed on a blocking thread is delivered whole and in order
    /// with the frames around it.
    #[tokio::test(flavor = "current_thread")]
    async fn large_frames_are_delivered_in_order_with_small_ones() {
        let (correlator, mut events) = Correlator::new("s".into());
        let (id, rx) = correlator.register();
        let big = format!("\"{}\"", "x".repeat(PARSE_ELSEWHERE + 1));
        let large = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{big}}}"#);
        let note = |n: u32| {
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"n":{n}}}}}"#)
        };
        let large_note = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"n":2,"pad":{big}}}}}"#
        );
        for frame in [note(1), large.clone(), large_note, note(3)] {
            assert!(correlator.deliver_frame(frame.as_bytes()).await);
        }
        assert_eq!(correlator.wait(rx).await.unwrap().unwrap().get(), big);
        for n in 1..=3 {
            match events.next().await {
                Some(UpstreamEvent::Notification(note)) => {
                    let params = note.params.unwrap();
                    assert!(params.get().starts_with(&format!(r#"{{"n":{n}"#)), "{n}");
                }
                other => panic!("expected notification {n}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn dropped_guard_cancels_only_unanswered_calls() {
        let (correlator, _events) = Correlator::new("s".into());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let cancel = |sent: &Arc<Mutex<Vec<Vec<u8>>>>| -> Option<Cancel> {
            let sent = sent.clone();
            Some(Box::new(move |m: Message| {
                sent.lock().unwrap().push(m.to_vec())
            }))
        };
        let (answered, _rx) = correlator.register();
        let guard = CallGuard::new(correlator.clone(), answered, cancel(&sent));
        correlator.complete(answered, Ok(raw("1")));
        drop(guard);
        assert!(sent.lock().unwrap().is_empty());

        let (abandoned, _rx) = correlator.register();
        drop(CallGuard::new(correlator.clone(), abandoned, cancel(&sent)));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let note: serde_json::Value = serde_json::from_slice(&sent[0]).unwrap();
        assert_eq!(note["method"], "notifications/cancelled");
        assert_eq!(note["params"]["requestId"], abandoned);
        assert!(!correlator.forget(abandoned));
    }
}
