//! The plain listener's HTTP/1.1 lane: `POST /mcp`, nearly every request a
//! client sends, read and answered on the connection itself; anything else
//! hands the connection, with the bytes already read, to hyper.
//!
//! hyper's server cost about 15 000 instructions a forwarded call here (its
//! dispatcher, a header map, a body channel), a quarter of the gateway's own
//! user-space work (docs/performance.md, ADR 0010). The lane parses the head
//! with `httparse` (hyper's parser), reads only the headers `POST /mcp` uses
//! ([`PostHeaders`]) straight from the read buffer, and writes the answer's
//! head and body with one write.
//!
//! The lane takes an HTTP/1.1 `POST /mcp` (any query) with a valid
//! `Content-Length` within `http.max_body`, or no body, and no
//! `Transfer-Encoding`, `Expect` or upgrade. Anything else (other routes and
//! methods, chunked bodies, HTTP/1.0, heads that are malformed, larger than
//! 64 KiB or with more than 64 headers, an HTTP/2 preface) goes to hyper for
//! the rest of the connection, so every other answer, error included, is
//! hyper's and axum's as it was before the lane.
//!
//! As with hyper's server: a connection stays open between requests unless
//! the client says `Connection: close`; a client that closes its connection
//! while its request is in flight drops the request's future (the modern
//! era's cancellation); pipelined requests are answered in order; once the
//! gateway stops, an idle connection closes, and one with a request in
//! flight closes after answering it (with `connection: close`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::{Pin, pin};
use std::time::{Duration, SystemTime};

use axum::body::HttpBody as _;
use bytes::{Buf as _, BytesMut};
use http::StatusCode;
use http::header;
use http_body_util::BodyExt as _;
use only1mcp_core::config::ContextConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Conn, Version};
use super::streamable::{self, Answer, PostHeaders};
use super::{Face, authn, guard};

/// A request head longer than this goes to hyper (which allows more).
const HEAD_LIMIT: usize = 64 * 1024;
/// A request with more headers than this goes to hyper (which allows 100).
const MAX_HEADERS: usize = 64;
/// How much room each read asks for.
const READ_CHUNK: usize = 8 * 1024;
/// Buffers grown beyond this by one request are let go after it.
const KEEP: usize = 64 * 1024;
/// How long a connection whose request body is refused unread takes what
/// its client still sends before it closes.
const LINGER: Duration = Duration::from_secs(2);

/// Serves one plain-HTTP connection to its end: on the lane while its
/// requests are `POST /mcp`, then on hyper.
pub(super) async fn serve(mut tcp: TcpStream, face: Face, shutdown: CancellationToken) {
    let max_body = face.state.inner.max_body;
    // What has been read and not yet answered.
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // What arrives while a request is answered (pipelined requests).
    let mut early = BytesMut::new();
    // The answer's head (and a JSON body) before it is written.
    let mut out = Vec::with_capacity(1024);
    let mut first = true;
    let mut stall = Stall::new(face.state.inner.read_timeout);
    // A write the client takes nothing of for this long fails.
    let write_stall = face.state.inner.read_timeout;
    loop {
        let head = loop {
            if first && buf.starts_with(b"PRI") {
                return hand_over(tcp, buf, face, shutdown, Version::H2).await;
            }
            let mut room = READ_CHUNK;
            // (Nothing read yet: nothing to scan.)
            let scanned = if buf.is_empty() {
                Scan::Partial
            } else {
                scan(&buf, max_body)
            };
            match scanned {
                Scan::Lane(head) if buf.len() >= head.len => break head,
                // The rest of a body in as few reads as it takes.
                Scan::Lane(head) => room = room.max(head.len - buf.len()),
                Scan::Partial if buf.len() < HEAD_LIMIT => {}
                Scan::Partial | Scan::Hyper => {
                    return hand_over(tcp, buf, face, shutdown, Version::H1).await;
                }
                // Answered from the head, the body unread.
                Scan::TooLarge(headers) => {
                    let refused = guard::refusal(&face.state, &headers.presented())
                        .unwrap_or_else(|| streamable::too_large(max_body));
                    let _ = write_response(
                        &mut tcp,
                        &mut out,
                        &mut early,
                        refused.into(),
                        false,
                        write_stall,
                    )
                    .await;
                    linger(&mut tcp).await;
                    return;
                }
            }
            buf.reserve(room);
            // A request not yet whole is not yet accepted: stopping drops it.
            let read = tokio::select! {
                // The read first: when its bytes are there, nothing else is
                // polled.
                biased;
                read = tcp.read_buf(&mut buf) => read,
                () = shutdown.cancelled() => return,
                () = stall.expired() => {
                    tracing::debug!("Closing a connection that sent no whole request in http.read_timeout");
                    return;
                }
            };
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        };
        first = false;
        let Head {
            len,
            body,
            close,
            headers,
        } = head;
        let answered = {
            // Pinned where it is made: handed on as a pointer, not copied.
            let answer = pin!(async {
                if let Some(refused) = guard::refusal(&face.state, &headers.presented()) {
                    return Answer::Other(refused);
                }
                let profile = ContextConfig::DEFAULT_PROFILE;
                let caller = match authn::admit(&face.state, headers.authorization, profile).await {
                    Ok(caller) => caller,
                    Err(refused) => return Answer::Other(refused),
                };
                streamable::post_as(&face.state, profile.into(), caller, &headers, &buf[body]).await
            });
            watching(&tcp, &mut early, answer).await
        };
        let Some(response) = answered else {
            return;
        };
        buf.advance(len);
        let keep_alive = !close && !shutdown.is_cancelled();
        let written = write_response(
            &mut tcp,
            &mut out,
            &mut early,
            response,
            keep_alive,
            write_stall,
        )
        .await;
        if written.is_err() {
            return;
        }
        if !keep_alive {
            let _ = tcp.shutdown().await;
            return;
        }
        stall.ready();
        if !early.is_empty() {
            buf.extend_from_slice(&early);
            early.clear();
        }
        // A large request or answer does not stay with an idle connection.
        if buf.is_empty() && buf.capacity() > KEEP {
            buf = BytesMut::with_capacity(READ_CHUNK);
        }
        if out.capacity() > KEEP {
            out = Vec::with_capacity(1024);
        }
    }
}

/// `http.read_timeout` on the lane: from when the connection is ready for a
/// request (accepted, or its previous answer written) it has that long to
/// send one whole, or it closes. One sleep per connection, moved only when it
/// fires: no timer operation per request.
#[derive(Debug)]
struct Stall {
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    ready_at: Instant,
}

impl Stall {
    fn new(timeout: Duration) -> Self {
        let ready_at = Instant::now();
        Self {
            sleep: Box::pin(tokio::time::sleep_until(ready_at + timeout)),
            timeout,
            ready_at,
        }
    }

    /// The connection is ready for its next request.
    fn ready(&mut self) {
        self.ready_at = Instant::now();
    }

    /// Resolves once the connection has been ready for a request for the
    /// whole timeout.
    async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            let deadline = self.ready_at + self.timeout;
            if Instant::now() >= deadline {
                return;
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

/// A request the lane answers.
#[derive(Debug)]
struct Head<'a> {
    /// Head and body, in bytes.
    len: usize,
    /// Where the body is.
    body: Range<usize>,
    /// Whether the client asked to close after the answer.
    close: bool,
    headers: PostHeaders<'a>,
}

#[derive(Debug)]
enum Scan<'a> {
    /// The head is not whole yet.
    Partial,
    Lane(Head<'a>),
    /// A `Content-Length` over `http.max_body`: refused from its head
    /// (413, or the guard's answer), the body never read.
    TooLarge(PostHeaders<'a>),
    /// Not the lane's: hyper serves the connection from here.
    Hyper,
}

/// Reads the request head at the start of `buf`.
fn scan(buf: &[u8], max_body: usize) -> Scan<'_> {
    // Left uninitialised: zeroing 64 slots cost more than the parse.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Scan::Partial,
        Err(_) => return Scan::Hyper,
    };
    let target = request.path.unwrap_or_default();
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if request.method != Some("POST") || request.version != Some(1) || path != "/mcp" {
        return Scan::Hyper;
    }
    let mut length = None;
    let mut close = false;
    let mut headers = PostHeaders::default();
    for line in request.headers.iter() {
        let name = line.name.as_bytes();
        // By length first: one comparison for most names.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                match (length, content_length(line.value)) {
                    (None, Some(n)) => length = Some(n),
                    // Repeated or not a number: hyper's to judge.
                    _ => return Scan::Hyper,
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => return Scan::Hyper,
            6 if name.eq_ignore_ascii_case(b"expect") => return Scan::Hyper,
            7 if name.eq_ignore_ascii_case(b"upgrade") => return Scan::Hyper,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in line.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"upgrade") {
                        return Scan::Hyper;
                    }
                    close |= token.eq_ignore_ascii_case(b"close");
                }
            }
            // SEP-2243's argument headers are checked against the header
            // map (`streamable::param_mismatch`): hyper's path.
            n if n > 10 && name[..10].eq_ignore_ascii_case(b"mcp-param-") => return Scan::Hyper,
            _ => headers.record(name, line.value),
        }
    }
    // No Content-Length and no Transfer-Encoding: no body (RFC 9112 §6.3).
    let body_len = length.unwrap_or(0);
    if body_len > max_body {
        return Scan::TooLarge(headers);
    }
    Scan::Lane(Head {
        len: head_len + body_len,
        body: head_len..head_len + body_len,
        close,
        headers,
    })
}

/// A `Content-Length` value: digits only.
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))
            .flatten()
    })
}

/// Runs `work` while watching the connection: what the client sends
/// meanwhile goes to `early` (up to [`HEAD_LIMIT`]); `None` if the client
/// closes the connection or it fails, and `work` is dropped.
async fn watching<F: Future>(tcp: &TcpStream, early: &mut BytesMut, work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    loop {
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            ready = tcp.readable(), if early.len() < HEAD_LIMIT => {
                ready.ok()?;
                early.reserve(READ_CHUNK);
                match tcp.try_read_buf(early) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            }
        }
    }
}

/// Writes `response`: with `Content-Length` when its body's size is known
/// (head and body in one write), chunked otherwise (each chunk written as it
/// comes, for event streams).
async fn write_response(
    tcp: &mut TcpStream,
    out: &mut Vec<u8>,
    early: &mut BytesMut,
    answer: Answer,
    keep_alive: bool,
    stall: Duration,
) -> io::Result<()> {
    out.clear();
    let response = match answer {
        Answer::Json(status, body) => {
            put_status(out, status);
            put_line(out, b"content-type", b"application/json");
            put_framing(out, keep_alive);
            put_length(out, body.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            return send(tcp, out, stall).await;
        }
        Answer::Other(response) => response,
    };
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    put_head(out, status, &parts.headers, keep_alive);
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        out.extend_from_slice(b"\r\n");
        return send(tcp, out, stall).await;
    }
    if let Some(len) = body.size_hint().exact() {
        put_length(out, usize::try_from(len).map_err(io::Error::other)?);
        out.extend_from_slice(b"\r\n");
        let start = out.len();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(io::Error::other)?.into_data() {
                out.extend_from_slice(&data);
            }
        }
        if (out.len() - start) as u64 != len {
            return Err(io::Error::other(
                "the body's length is not the one it announced",
            ));
        }
        return send(tcp, out, stall).await;
    }
    put_line(out, b"transfer-encoding", b"chunked");
    out.extend_from_slice(b"\r\n");
    send(tcp, out, stall).await?;
    loop {
        let Some(frame) = watching(tcp, early, body.frame()).await else {
            return Err(io::ErrorKind::ConnectionAborted.into());
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(io::Error::other)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        out.clear();
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\r\n");
        send(tcp, out, stall).await?;
    }
    send(tcp, b"0\r\n\r\n", stall).await
}

/// Writes all of `bytes`. A write the client takes nothing of for `stall`
/// fails (`TimedOut`): a client that does not read its answers loses its
/// connection. The timer is armed only when the socket is full, not on
/// every write.
async fn send(tcp: &TcpStream, mut bytes: &[u8], stall: Duration) -> io::Result<()> {
    while !bytes.is_empty() {
        match tcp.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let Ok(ready) = tokio::time::timeout(stall, tcp.writable()).await else {
                    tracing::debug!(
                        "Closing a connection whose client took nothing it was sent in http.read_timeout"
                    );
                    return Err(io::ErrorKind::TimedOut.into());
                };
                ready?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// After an answer to a request whose body is not read: says so with a
/// FIN, then takes (and drops) what the client still sends, for a moment,
/// so that the answer is not lost to a reset sent for unread bytes.
async fn linger(tcp: &mut TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = vec![0u8; READ_CHUNK];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The status line and the headers (without the body's framing and the
/// blank line that ends the head).
fn put_head(out: &mut Vec<u8>, status: StatusCode, headers: &http::HeaderMap, keep_alive: bool) {
    put_status(out, status);
    for (name, value) in headers {
        // The framing is the lane's to write.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        put_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    put_framing(out, keep_alive);
}

fn put_status(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `connection: close` when the connection ends after this answer, and the
/// date.
fn put_framing(out: &mut Vec<u8>, keep_alive: bool) {
    if !keep_alive {
        put_line(out, b"connection", b"close");
    }
    put_date(out);
}

fn put_length(out: &mut Vec<u8>, mut len: usize) {
    // In decimal, last digit first (`format!` costs ten times as much).
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (len % 10) as u8;
        len /= 10;
        if len == 0 {
            break;
        }
    }
    put_line(out, b"content-length", &digits[at..]);
}

fn put_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header (RFC 9110 §6.6.1), formatted once a second per thread,
/// as hyper does.
fn put_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        put_line(out, b"date", text.as_bytes());
    });
}

/// Serves the rest of the connection with hyper, starting with what has been
/// read (`read`).
async fn hand_over(
    tcp: TcpStream,
    read: BytesMut,
    face: Face,
    shutdown: CancellationToken,
    version: Version,
) {
    let io = Conn::new(tcp, read.freeze(), face.state.inner.read_timeout);
    conn::serve_hyper(io, face, shutdown, version).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::{IntoResponse as _, Response};
    use bytes::Bytes;

    const SDK_POST: &[u8] = b"POST /mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\
        Content-Type: application/json\r\nACCEPT: application/json, text/event-stream\r\n\
        mcp-session-id: abc\r\nConnection: keep-alive, Close\r\ncontent-length: 7\r\n\r\n{\"a\":1}";

    fn lane(request: &[u8]) -> Head<'_> {
        match scan(request, 1024) {
            Scan::Lane(head) => head,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(request)),
        }
    }

    #[test]
    fn the_lane_reads_a_post_to_mcp() {
        let head = lane(SDK_POST);
        assert_eq!(head.len, SDK_POST.len());
        assert_eq!(&SDK_POST[head.body], b"{\"a\":1}");
        assert!(head.close);
        assert_eq!(head.headers.host, Some("127.0.0.1:9"));
        assert_eq!(
            head.headers.accept,
            Some("application/json, text/event-stream")
        );
        assert_eq!(head.headers.content_type, Some("application/json"));
        assert_eq!(head.headers.session_id, Some("abc"));
        // Without a body, and kept alive.
        let head = lane(b"POST /mcp HTTP/1.1\r\nhost: h\r\n\r\n");
        assert_eq!((head.len, head.body.len(), head.close), (31, 0, false));
        // A head that is not whole yet, at any cut.
        let head_end = SDK_POST.len() - 7;
        for cut in 0..head_end {
            assert!(
                matches!(scan(&SDK_POST[..cut], 1024), Scan::Partial),
                "cut at {cut}"
            );
        }
        // The head is whole; the body may still be coming.
        assert_eq!(lane(&SDK_POST[..head_end]).len, SDK_POST.len());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for request in [
            &b"GET /mcp HTTP/1.1\r\n\r\n"[..],
            b"DELETE /mcp HTTP/1.1\r\n\r\n",
            b"POST /mcp/profile HTTP/1.1\r\n\r\n",
            b"POST /mcpx HTTP/1.1\r\n\r\n",
            b"POST http://h/mcp HTTP/1.1\r\n\r\n",
            b"POST /mcp HTTP/1.0\r\ncontent-length: 1\r\n\r\n{",
            b"POST /mcp HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 1\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nupgrade: websocket\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nconnection: keep-alive,Upgrade\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n{",
            b"POST /mcp HTTP/1.1\r\ncontent-length: +1\r\n\r\n{",
            b"POST /mcp HTTP/1.1\r\ncontent-length: \r\n\r\n",
            b"POST /mcp HTTP/1.1\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nbad header\r\n\r\n",
            b"\x16\x03\x01\x02\x00",
            // SEP-2243 argument headers are checked against the header map.
            b"POST /mcp HTTP/1.1\r\ncontent-length: 0\r\nMcp-Param-Region: x\r\n\r\n",
        ] {
            assert!(
                matches!(scan(request, 1024), Scan::Hyper),
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
        // At the limit, the lane's; over it, refused from the head.
        lane(b"POST /mcp HTTP/1.1\r\ncontent-length: 1024\r\n\r\n");
        // A header that only starts like one stays on the lane.
        lane(b"POST /mcp HTTP/1.1\r\nmcp-param: x\r\ncontent-length: 0\r\n\r\n");
        let over = b"POST /mcp HTTP/1.1\r\nhost: h\r\ncontent-length: 1025\r\n\r\n";
        assert!(
            matches!(scan(over, 1024), Scan::TooLarge(headers) if headers.host == Some("h")),
            "over the limit"
        );
        // More headers than the lane reads: hyper's.
        let mut many = b"POST /mcp HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(scan(&many, 1024), Scan::Hyper));
    }

    /// Whatever follows a request line, cut anywhere: the scan never
    /// panics, a request it takes lies within what it was given, and a
    /// whole request with only ordinary headers always takes the lane.
    #[quickcheck_macros::quickcheck]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "quickcheck hands arguments over by value"
    )]
    fn any_head_is_scanned_safely(lines: Vec<(u8, String)>, cut: usize) -> bool {
        const ORDINARY: &[&str] = &[
            "host",
            "Origin",
            "accept",
            "mcp-session-id",
            "MCP-Name",
            "x-other",
        ];
        // Framing, repeats, bad names: one line in four.
        const OTHER: &[&str] = &[
            "content-length",
            "Content-Length",
            "transfer-encoding",
            "connection",
            "expect",
            "bad name",
            "",
        ];
        let mut request = b"POST /mcp HTTP/1.1\r\n".to_vec();
        let mut ordinary = true;
        // Up to five lines, so that ordinary heads come often.
        for (pick, value) in lines.iter().take(lines.len() % 6) {
            let pick = usize::from(*pick);
            let name = if pick % 4 == 0 {
                ordinary = false;
                OTHER[pick / 4 % OTHER.len()]
            } else {
                ORDINARY[pick % ORDINARY.len()]
            };
            // Values a real head would carry, and one in eight anything.
            let value = if pick % 8 == 1 {
                ordinary = false;
                value.clone()
            } else if name.eq_ignore_ascii_case("content-length") {
                (value.len() % 20).to_string()
            } else {
                value.chars().filter(char::is_ascii_graphic).collect()
            };
            request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n{}");
        // Half the cases whole, half cut somewhere.
        let whole = cut.is_multiple_of(2);
        let given = if whole {
            &request[..]
        } else {
            &request[..cut / 2 % (request.len() + 1)]
        };
        match scan(given, 16) {
            Scan::Lane(head) => {
                head.body.end == head.len
                    && head.body.len() <= 16
                    && head.body.start <= given.len()
                    // An empty line ends the head; httparse, as hyper,
                    // takes a bare LF for a line end (RFC 9112 §2.2).
                    && (given[..head.body.start].ends_with(b"\n\r\n")
                        || given[..head.body.start].ends_with(b"\n\n"))
            }
            Scan::Partial | Scan::TooLarge(_) | Scan::Hyper => !(whole && ordinary),
        }
    }

    /// A connected loopback pair: (the lane's end, the client's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    async fn written(answer: impl Into<Answer>, keep_alive: bool) -> String {
        let (mut server, mut client) = pair().await;
        let mut out = Vec::new();
        write_response(
            &mut server,
            &mut out,
            &mut BytesMut::new(),
            answer.into(),
            keep_alive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        drop(server);
        let mut text = String::new();
        client.read_to_string(&mut text).await.unwrap();
        text
    }

    /// The head without its `date` line (checked apart), and the body.
    fn undated(text: &str) -> (String, &str) {
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let date = head
            .lines()
            .find_map(|l| l.strip_prefix("date: "))
            .expect("a date header");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        let lines: Vec<&str> = head.lines().filter(|l| !l.starts_with("date: ")).collect();
        (lines.join("\n"), body)
    }

    #[test]
    fn content_lengths_are_digits_only_and_fit() {
        let max = usize::MAX.to_string();
        let over = format!("{max}0");
        for (value, length) in [
            ("0", Some(0)),
            ("0042", Some(42)),
            (max.as_str(), Some(usize::MAX)),
            (over.as_str(), None),
            ("", None),
            ("+1", None),
            ("-1", None),
            ("1 ", None),
            ("1,1", None),
            ("1a", None),
        ] {
            assert_eq!(content_length(value.as_bytes()), length, "{value:?}");
        }
    }

    #[test]
    fn lengths_are_written_in_decimal() {
        for len in [0, 7, 10, 99, 1 << 20, usize::MAX] {
            let mut out = Vec::new();
            put_length(&mut out, len);
            assert_eq!(out, format!("content-length: {len}\r\n").into_bytes());
        }
    }

    #[tokio::test]
    async fn answers_are_written_with_their_framing() {
        let json = Answer::Json(StatusCode::OK, b"{\"ok\":true}".to_vec());
        let text = written(json, true).await;
        assert_eq!(
            undated(&text),
            (
                "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 11".to_owned(),
                "{\"ok\":true}"
            )
        );
        // The same answer as a `Response` (the hyper path's) reads the same.
        for keep_alive in [true, false] {
            let body = b"{\"error\":1}".to_vec();
            let direct = written(
                Answer::Json(StatusCode::NOT_FOUND, body.clone()),
                keep_alive,
            );
            let response = super::super::json_body(StatusCode::NOT_FOUND, body);
            assert_eq!(
                undated(&direct.await),
                undated(&written(response, keep_alive).await)
            );
        }
        let accepted = StatusCode::ACCEPTED.into_response();
        let text = written(accepted, false).await;
        assert_eq!(
            undated(&text),
            (
                "HTTP/1.1 202 Accepted\nconnection: close\ncontent-length: 0".to_owned(),
                ""
            )
        );
        let mut empty = StatusCode::NO_CONTENT.into_response();
        empty
            .headers_mut()
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("0"));
        let text = written(empty, true).await;
        assert_eq!(undated(&text), ("HTTP/1.1 204 No Content".to_owned(), ""));
        // A body of unknown length, as an event stream is: chunked.
        let chunks = ["event: a\n\n", "", "event: b\n\n"]
            .map(|c| Ok::<_, io::Error>(hyper::body::Frame::data(Bytes::from(c))));
        let stream = http_body_util::StreamBody::new(futures::stream::iter(chunks));
        let text = written(Response::new(axum::body::Body::new(stream)), true).await;
        assert_eq!(
            undated(&text),
            (
                "HTTP/1.1 200 OK\ntransfer-encoding: chunked".to_owned(),
                "a\r\nevent: a\n\n\r\na\r\nevent: b\n\n\r\n0\r\n\r\n"
            )
        );
    }
}
