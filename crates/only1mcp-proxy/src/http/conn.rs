//! One client connection's bounds, on every path of the HTTP face (the
//! HTTP/1.1 lane, hyper's HTTP/1.1 and h2c, and TLS):
//!
//! - [`Limits`]: how many connections are open, in all and from one peer
//!   address (`http.max_connections`, `http.max_connections_per_peer`). A
//!   connection beyond either is closed as soon as it is accepted; the
//!   refusals are logged at most once a second.
//! - [`Conn`]: the connection as hyper reads and writes it. It replays the
//!   bytes the lane read before handing the connection over, and fails a
//!   write that the client has not let through for `http.read_timeout` (a
//!   client that does not read what it is sent is disconnected, not
//!   buffered for).
//! - [`serve_hyper`]: the rest of a connection on hyper, with `read_timeout`
//!   for a request head (idle time included) on HTTP/1.1, and as the idle
//!   time of an HTTP/2 connection with no stream open.
//!
//! All of it is per connection: no lock, timer or allocation per request.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Face;

/// The open connections of one listener.
#[derive(Debug)]
pub(super) struct Limits {
    max: usize,
    per_peer: usize,
    open: AtomicUsize,
    /// Open connections by peer address; an address leaves the map with its
    /// last connection. Locked once when a connection opens and once when
    /// it closes.
    by_peer: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals not yet logged, and the second the last log line was
    /// written (seconds since `started`).
    refused: AtomicU64,
    logged_at: AtomicU64,
    started: Instant,
}

/// A connection counted by [`Limits`]: uncounted when dropped.
#[derive(Debug)]
pub(super) struct Admitted {
    limits: Arc<Limits>,
    peer: IpAddr,
}

impl Limits {
    /// At most `max` connections, `per_peer` of them from one address.
    pub(super) fn new(max: usize, per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            per_peer,
            open: AtomicUsize::new(0),
            by_peer: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Counts a connection from `peer`, or refuses it (`None`, logged) if
    /// it would pass a bound.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.refuse(peer, "http.max_connections", self.max);
            return None;
        }
        {
            let mut by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
            let count = by_peer.entry(peer).or_insert(0);
            if *count < self.per_peer {
                *count += 1;
                return Some(Admitted {
                    limits: self.clone(),
                    peer,
                });
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.refuse(peer, "http.max_connections_per_peer", self.per_peer);
        None
    }

    /// Logs a refusal, at most one line a second (with how many there
    /// were since the last line).
    fn refuse(&self, peer: IpAddr, bound: &'static str, limit: usize) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let second = self.started.elapsed().as_secs() + 1;
        let last = self.logged_at.load(Ordering::Relaxed);
        if second > last
            && self
                .logged_at
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let refused = self.refused.swap(0, Ordering::Relaxed);
            tracing::warn!(
                %peer,
                limit,
                refused,
                "Connection closed at accept: over {bound} ({refused} refused since the last such line)"
            );
        }
    }

    /// Open connections.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut by_peer = self
            .limits
            .by_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = by_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                by_peer.remove(&self.peer);
            }
        }
        drop(by_peer);
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client connection as hyper sees it: the bytes already read are read
/// again first, then the rest; a write the client leaves pending for
/// `stall` fails (`TimedOut`), which ends the connection.
#[derive(Debug)]
pub(super) struct Conn<IO> {
    read: Bytes,
    io: IO,
    stall: Duration,
    /// Armed while a write waits for the client; allocated at the first
    /// such wait.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

impl<IO> Conn<IO> {
    /// `io`, whose first bytes `read` were already taken from it.
    pub(super) fn new(io: IO, read: Bytes, stall: Duration) -> Self {
        Self {
            read,
            io,
            stall,
            stalled: None,
            waiting: false,
        }
    }

    /// What a write of the connection returned, with the stall bound
    /// applied to a write that waits.
    fn bound<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = false;
            return polled;
        }
        let deadline = Instant::now() + self.stall;
        let sleep = match &mut self.stalled {
            Some(sleep) => {
                if !self.waiting {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .stalled
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.waiting = true;
        ready!(sleep.as_mut().poll(cx));
        tracing::debug!(
            "Closing a connection whose client took nothing it was sent in http.read_timeout"
        );
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.bound(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.bound(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.bound(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.bound(cx, polled)
    }
}

/// The HTTP version a connection speaks from here on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    H1,
    /// HTTP/2: prior knowledge (h2c) or chosen by ALPN.
    H2,
}

/// Serves the rest of a connection with hyper until it ends; once
/// `shutdown` is cancelled, asks it to finish what it started and close.
pub(super) async fn serve_hyper<IO>(
    io: Conn<IO>,
    face: Face,
    shutdown: CancellationToken,
    version: Version,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let read_timeout = face.state.inner.read_timeout;
    let max_streams = face.state.inner.max_in_flight;
    let served = match version {
        Version::H2 => {
            let streams = Streams::new();
            let open = streams.clone();
            let service = hyper::service::service_fn(move |request| {
                let stream = open.begin();
                let face = face.clone();
                async move {
                    let response = face.handle(request).await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| Tracked {
                        body,
                        _stream: stream,
                    }))
                }
            });
            let mut builder =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
            // Extended CONNECT: WebSocket over HTTP/2.
            builder.enable_connect_protocol();
            // Requests in flight on one connection: `limits.max_in_flight`.
            builder.max_concurrent_streams(max_streams);
            let mut connection = pin!(builder.serve_connection(io, service));
            let mut closing = false;
            // A graceful close for idleness waits for the client to
            // acknowledge it (a PING); a client that says nothing is not
            // waited for beyond another `read_timeout`.
            let mut given_up = pin!(tokio::time::sleep(Duration::MAX / 4));
            let mut idle_close = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => break served,
                    () = shutdown.cancelled(), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    () = streams.idle_for(read_timeout), if !closing => {
                        tracing::debug!("Closing an HTTP/2 connection with no stream open for http.read_timeout");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        idle_close = true;
                        given_up.as_mut().reset(Instant::now() + read_timeout);
                    }
                    () = given_up.as_mut(), if idle_close => break Ok(()),
                }
            }
        }
        Version::H1 => {
            let service = hyper::service::service_fn(move |request| face.clone().handle(request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(read_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            super::until_done(connection, &shutdown, |c| c.graceful_shutdown()).await
        }
    };
    if let Err(e) = served {
        tracing::trace!(error = %e, "Connection ended with an error");
    }
}

/// The streams open on an HTTP/2 connection, and since when none has been.
#[derive(Debug, Clone)]
struct Streams {
    inner: Arc<StreamsInner>,
}

#[derive(Debug)]
struct StreamsInner {
    open: AtomicUsize,
    /// Milliseconds from `started` to when the last stream closed.
    idle_since: AtomicU64,
    started: Instant,
}

/// One open stream; closed when its response body is dropped.
#[derive(Debug)]
struct Stream(Arc<StreamsInner>);

impl Streams {
    fn new() -> Self {
        Self {
            inner: Arc::new(StreamsInner {
                open: AtomicUsize::new(0),
                idle_since: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }

    fn begin(&self) -> Stream {
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        Stream(self.inner.clone())
    }

    /// Resolves once no stream has been open for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let inner = &self.inner;
            let wake = if inner.open.load(Ordering::Relaxed) == 0 {
                let since = Duration::from_millis(inner.idle_since.load(Ordering::Relaxed));
                let deadline = inner.started + since + timeout;
                if Instant::now() >= deadline {
                    return;
                }
                deadline
            } else {
                Instant::now() + timeout
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since.store(since, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its stream open until it is dropped.
#[derive(Debug)]
struct Tracked {
    body: axum::body::Body,
    _stream: Stream,
}

impl axum::body::HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn connections_are_counted_in_all_and_per_peer() {
        let limits = Limits::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let a2 = limits.admit(a).unwrap();
        assert!(limits.admit(a).is_none(), "third from one peer");
        let b1 = limits.admit(b).unwrap();
        assert!(limits.admit(b).is_none(), "fourth in all");
        assert_eq!(limits.open(), 3);
        drop(a1);
        let b2 = limits.admit(b).unwrap();
        drop((a2, b1, b2));
        assert_eq!(limits.open(), 0);
        assert!(limits.by_peer.lock().unwrap().is_empty());
    }

    /// A connected loopback pair: (the server's end, the client's end).
    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    #[tokio::test]
    async fn what_was_read_is_read_again_first() {
        let (server, mut client) = pair().await;
        let mut conn = Conn::new(
            server,
            Bytes::from_static(b"first "),
            Duration::from_secs(1),
        );
        client.write_all(b"then the rest").await.unwrap();
        drop(client);
        let mut text = String::new();
        conn.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "first then the rest");
    }

    /// A client that reads nothing: writes go on until the socket is full,
    /// then fail once `stall` has passed with nothing taken; a client that
    /// reads keeps its connection however long the transfer takes.
    #[tokio::test]
    async fn a_client_that_takes_nothing_for_the_stall_time_is_cut_off() {
        let stall = Duration::from_millis(300);
        let (server, _client) = pair().await;
        let mut conn = Conn::new(server, Bytes::new(), stall);
        let chunk = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let failed = loop {
            if let Err(e) = conn.write_all(&chunk).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never failed");
        };
        assert_eq!(failed.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= stall);

        let (server, mut client) = pair().await;
        let mut conn = Conn::new(server, Bytes::new(), stall);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                // Slower than the writer, but taking something well within
                // each stall time.
                tokio::time::sleep(Duration::from_millis(1)).await;
                match client.read(&mut buf).await.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        let mut sent = 0;
        let wanted = 8 * 1024 * 1024;
        while sent < wanted {
            conn.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        conn.shutdown().await.unwrap();
        drop(conn);
        assert_eq!(reader.await.unwrap(), wanted);
    }
}
