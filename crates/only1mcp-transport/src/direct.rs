//! The fast path of Streamable HTTP calls to a plain `http://` backend:
//! POSTs on pooled HTTP/1.1 connections, written and read in the caller's
//! own task.
//!
//! reqwest (through hyper-util's pool) runs every connection in a task of its
//! own, so each call is handed to that task and its answer handed back: two
//! task wake-ups per call. hyper's own connection, driven in the caller's
//! task, still cost about 17 000 instructions a call (a dispatch channel, a
//! body channel, header maps both ways). A POST of a JSON-RPC message is one
//! known shape, so this module writes it as one buffer and reads the answer
//! with `httparse` (the parser hyper uses): a JSON answer (`Content-Length`,
//! chunked, or delimited by the connection's close) is read whole and the
//! connection goes back to the pool. Anything else (an event stream, an
//! error status) leaves the fast path as a [`reqwest::Response`] whose body
//! is read from this connection, so everything after it is the same code as
//! for reqwest's own responses; a redirect is sent again through reqwest,
//! which follows it within the origin.
//!
//! Used only where reqwest would add nothing: `http` URLs without user info,
//! and no proxy configured in the environment (reqwest honours
//! `HTTP_PROXY`/`ALL_PROXY`; this path does not). `https` backends keep
//! reqwest (TLS, HTTP/2).

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use reqwest::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue,
    TRANSFER_ENCODING, USER_AGENT,
};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http_client::MAX_MESSAGE;

/// How many idle connections the pool keeps per backend.
const MAX_IDLE: usize = 64;

/// The largest response head (status line and headers) read.
const MAX_HEAD: usize = 64 * 1024;

/// The most header fields a response head may have.
const MAX_HEADERS: usize = 64;

/// The longest chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4 * 1024;

/// How much room a read asks for at least.
const READ_SIZE: usize = 8 * 1024;

/// The environment variables through which reqwest picks a proxy for `http`
/// URLs.
const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// A pool of HTTP/1.1 connections to one `http://` endpoint.
#[derive(Debug)]
pub(crate) struct Direct {
    /// Where to connect.
    target: Target,
    /// What every request starts with: the request line, `Host` and
    /// `User-Agent`.
    preamble: Vec<u8>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Debug)]
enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

/// One connection and what has been read from it but not used yet.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// The answer to a POST.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A success status with an `application/json` body, read whole.
    Json {
        /// The `Mcp-Session-Id` header, if any.
        session_id: Option<HeaderValue>,
        /// The body.
        body: Bytes,
    },
    /// Anything else, still streaming.
    Other(reqwest::Response),
}

/// Why a POST failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting, sending or reading failed.
    Transport(String),
    /// The JSON answer is larger than [`MAX_MESSAGE`].
    TooLarge,
    /// A redirect: the caller re-sends through reqwest, which follows it
    /// within the origin.
    Redirect,
}

/// How an exchange on one connection ended without an answer.
enum Exchange {
    /// Nothing of the request left: an idle connection the server had
    /// closed. Safe to send again.
    Unsent,
    /// The request may have reached the server: never sent again.
    Failed(Failure),
}

impl From<Failure> for Exchange {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

impl Direct {
    /// The fast path for `url`, if it can take it (see the module doc).
    pub(crate) fn for_url(url: &Url, connect_timeout: Duration) -> Option<Self> {
        if url.scheme() != "http"
            || !url.username().is_empty()
            || url.password().is_some()
            || PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some())
        {
            return None;
        }
        let port = url.port_or_known_default()?;
        let target = match url.host()? {
            url::Host::Ipv4(ip) => Target::Addr(SocketAddr::from((ip, port))),
            url::Host::Ipv6(ip) => Target::Addr(SocketAddr::from((ip, port))),
            url::Host::Domain(name) => Target::Name(name.to_owned(), port),
        };
        // A parsed URL has no spaces or line breaks in its path, query or
        // authority (the parser strips or percent-encodes them).
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let preamble = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: only1mcp/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        Some(Self {
            target,
            preamble: preamble.into_bytes(),
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// POSTs `body` with `headers`, on an idle connection if one is alive,
    /// else on a new one. A request that an idle connection closed under
    /// before it was sent is sent again on a new connection; one that may
    /// have reached the server never is.
    pub(crate) async fn post(&self, headers: &HeaderMap, body: &[u8]) -> Result<Answer, Failure> {
        let request = self.request(headers, body);
        while let Some(conn) = self.checkout() {
            match self.exchange(conn, &request).await {
                Ok(answer) => return Ok(answer),
                Err(Exchange::Unsent) => {}
                Err(Exchange::Failed(failure)) => return Err(failure),
            }
        }
        let conn = self.connect().await?;
        match self.exchange(conn, &request).await {
            Ok(answer) => Ok(answer),
            Err(Exchange::Unsent) => Err(Failure::Transport(
                "the connection closed before the request was sent".to_owned(),
            )),
            Err(Exchange::Failed(failure)) => Err(failure),
        }
    }

    /// The whole request, ready to write: the preamble, the given headers
    /// (but those this module sets), `Content-Length` and the body.
    fn request(&self, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.preamble.len() + headers.len() * 48 + body.len() + 32);
        out.extend_from_slice(&self.preamble);
        for (name, value) in headers {
            if [
                HOST,
                USER_AGENT,
                CONTENT_LENGTH,
                TRANSFER_ENCODING,
                CONNECTION,
            ]
            .contains(name)
            {
                continue;
            }
            // A `HeaderValue` holds no line breaks.
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
        out
    }

    /// An idle connection that is still open, if any.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            // A server that closed the connection while it was idle made it
            // readable (end of file); a live one has nothing to read.
            let mut probe = [0u8; 1];
            if matches!(conn.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection whose last answer was read whole back in the pool.
    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let connecting = async {
            match &self.target {
                Target::Addr(addr) => TcpStream::connect(addr).await,
                Target::Name(name, port) => TcpStream::connect((name.as_str(), *port)).await,
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| Failure::Transport("connecting timed out".to_owned()))?
            .map_err(|e| Failure::Transport(format!("cannot connect: {e}")))?;
        // Each message is one write; never wait for the peer's ACK.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_SIZE),
        })
    }

    /// Writes `request` on `conn` and reads the answer's head; a JSON
    /// answer is read whole and the connection, if it stays open, goes back
    /// to the pool.
    async fn exchange(&self, mut conn: Conn, request: &[u8]) -> Result<Answer, Exchange> {
        let mut written = 0;
        while written < request.len() {
            match conn.stream.write(&request[written..]).await {
                Ok(0) if written == 0 => return Err(Exchange::Unsent),
                Ok(0) => return Err(transport("the connection closed while sending").into()),
                Ok(n) => written += n,
                Err(_) if written == 0 => return Err(Exchange::Unsent),
                Err(e) => return Err(transport(&format!("sending the request failed: {e}")).into()),
            }
        }
        let head = read_head(&mut conn)
            .await
            .map_err(|e| transport(&format!("reading the response failed: {e}")))?;
        let headers = match head.kind {
            Kind::Json { session_id } => {
                let reusable = head.keep_alive && !matches!(head.framing, Framing::Close);
                let mut body = Body::new(conn, head.framing);
                let whole = body.read_whole(MAX_MESSAGE).await?;
                if reusable && body.conn.buf.is_empty() {
                    let mut conn = body.conn;
                    if whole.len() > READ_SIZE {
                        // The buffer would grow back into the answer's
                        // allocation once it is freed: a pooled connection
                        // keeps a small one, not the largest answer it read.
                        conn.buf = BytesMut::with_capacity(READ_SIZE);
                    }
                    self.checkin(conn);
                }
                return Ok(Answer::Json {
                    session_id,
                    body: whole,
                });
            }
            Kind::Other(headers) => headers,
        };
        if head.status.is_redirection() {
            return Err(Failure::Redirect.into());
        }
        // The body outlives this call and the connection with it: it closes
        // once the body is read or dropped.
        let body =
            futures::stream::try_unfold(Body::new(conn, head.framing), |mut body| async move {
                Ok::<_, io::Error>(body.next().await?.map(|bytes| (bytes, body)))
            });
        let mut response = http::Response::new(reqwest::Body::wrap_stream(body));
        *response.status_mut() = head.status;
        *response.headers_mut() = headers;
        Ok(Answer::Other(reqwest::Response::from(response)))
    }
}

fn transport(reason: &str) -> Failure {
    Failure::Transport(reason.to_owned())
}

/// What a response's head says.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
    framing: Framing,
    kind: Kind,
}

/// The two kinds of answer the fast path tells apart.
#[derive(Debug)]
enum Kind {
    /// A success with an `application/json` body: of its headers only the
    /// session id is kept (no header map is built).
    Json { session_id: Option<HeaderValue> },
    /// Anything else, with all its headers.
    Other(HeaderMap),
}

/// Reads the head of the next final response (informational `1xx` heads
/// are skipped).
async fn read_head(conn: &mut Conn) -> io::Result<Head> {
    loop {
        if !conn.buf.is_empty() {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut fields);
            match parsed.parse(&conn.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = parsed.code.unwrap_or_default();
                    if (100..200).contains(&code) && code != 101 {
                        conn.buf.advance(len);
                        continue;
                    }
                    if code == 101 {
                        return Err(invalid("the server switched protocols"));
                    }
                    let status = StatusCode::from_u16(code)
                        .map_err(|_| invalid(&format!("invalid status {code}")))?;
                    let head = head(status, parsed.version == Some(1), parsed.headers)?;
                    conn.buf.advance(len);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if conn.buf.len() >= MAX_HEAD => {
                    return Err(invalid(&format!("response head over {MAX_HEAD} bytes")));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(invalid(&format!("invalid response head: {e}"))),
            }
        }
        if fill(conn).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before the answer",
            ));
        }
    }
}

/// The head of a final response with `status` from its parsed fields.
fn head(status: StatusCode, http11: bool, fields: &[httparse::Header<'_>]) -> io::Result<Head> {
    let close = !http11 || named(fields, CONNECTION.as_str()).any(|f| has_token(f.value, "close"));
    let framing = Framing::of(status, fields).map_err(|e| invalid(&e))?;
    let json = status.is_success()
        && named(fields, CONTENT_TYPE.as_str())
            .next()
            .is_some_and(|f| is_json(f.value));
    let kind = if json {
        let session_id = named(fields, "mcp-session-id")
            .next()
            .map(|f| HeaderValue::from_bytes(f.value))
            .transpose()
            .map_err(|_| invalid("invalid header value"))?;
        Kind::Json { session_id }
    } else {
        let mut headers = HeaderMap::with_capacity(fields.len());
        for field in fields {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| invalid("invalid header name"))?;
            let value = HeaderValue::from_bytes(field.value)
                .map_err(|_| invalid("invalid header value"))?;
            headers.append(name, value);
        }
        Kind::Other(headers)
    };
    Ok(Head {
        status,
        keep_alive: !close,
        framing,
        kind,
    })
}

/// Reads more of the connection into its buffer; 0 at end of file.
async fn fill(conn: &mut Conn) -> io::Result<usize> {
    if conn.buf.capacity() - conn.buf.len() < READ_SIZE / 4 {
        conn.buf.reserve(READ_SIZE);
    }
    conn.stream.read_buf(&mut conn.buf).await
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}

/// Whether a comma-separated header value lists `token` (ASCII case aside).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How a response's body ends (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// After this many bytes.
    Length(u64),
    /// With the last chunk.
    Chunked,
    /// When the server closes the connection.
    Close,
}

impl Framing {
    fn of(status: StatusCode, fields: &[httparse::Header<'_>]) -> Result<Self, String> {
        if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Ok(Self::Length(0));
        }
        if let Some(last) = named(fields, TRANSFER_ENCODING.as_str()).next_back() {
            // Chunked only if it is the last coding; otherwise the body
            // runs to the close.
            let coding = last
                .value
                .rsplit(|&b| b == b',')
                .next()
                .map(<[u8]>::trim_ascii);
            return Ok(match coding {
                Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Self::Chunked,
                _ => Self::Close,
            });
        }
        let mut length = None;
        for field in named(fields, CONTENT_LENGTH.as_str()) {
            for part in field.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(part.trim_ascii())
                    .ok()
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or("invalid Content-Length")?;
                if length.is_some_and(|seen| seen != n) {
                    return Err("conflicting Content-Length values".to_owned());
                }
                length = Some(n);
            }
        }
        Ok(length.map_or(Self::Close, Self::Length))
    }
}

/// The fields of a head named `name` (ASCII case aside), in order.
fn named<'h, 'b>(
    fields: &'h [httparse::Header<'b>],
    name: &'static str,
) -> impl DoubleEndedIterator<Item = &'h httparse::Header<'b>> {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
}

/// Where a body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes are left.
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk, this many bytes left.
    ChunkData(u64),
    /// After a chunk's data, before its line break.
    ChunkEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    /// Up to the end of the connection.
    Close,
    /// The body has been read.
    Done,
}

/// A response body read off its connection.
#[derive(Debug)]
struct Body {
    conn: Conn,
    state: State,
}

impl Body {
    fn new(conn: Conn, framing: Framing) -> Self {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Self { conn, state }
    }

    /// The whole body, if it is at most `limit` bytes.
    async fn read_whole(&mut self, limit: usize) -> Result<Bytes, Failure> {
        let failed = |e: io::Error| Failure::Transport(format!("reading the response failed: {e}"));
        if let State::Length(n) = self.state {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= limit)
                .ok_or(Failure::TooLarge)?;
            if self.conn.buf.len() < n {
                self.conn.buf.reserve(n - self.conn.buf.len());
            }
            while self.conn.buf.len() < n {
                if fill(&mut self.conn).await.map_err(failed)? == 0 {
                    return Err(failed(closed_mid_body()));
                }
            }
            self.state = State::Done;
            return Ok(self.conn.buf.split_to(n).freeze());
        }
        let mut whole = BytesMut::new();
        while let Some(part) = self.next().await.map_err(failed)? {
            if whole.len() + part.len() > limit {
                return Err(Failure::TooLarge);
            }
            whole.extend_from_slice(&part);
        }
        Ok(whole.freeze())
    }

    /// The next piece of the body; `None` once it has been read.
    async fn next(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let buf = &mut self.conn.buf;
            match self.state {
                State::Done => return Ok(None),
                State::Length(left) | State::ChunkData(left) if !buf.is_empty() => {
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let rest = left - take as u64;
                    self.state = match (self.state, rest) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), rest) => State::Length(rest),
                        (_, 0) => State::ChunkEnd,
                        (_, rest) => State::ChunkData(rest),
                    };
                    return Ok(Some(buf.split_to(take).freeze()));
                }
                State::Close if !buf.is_empty() => return Ok(Some(buf.split().freeze())),
                State::ChunkSize => {
                    if let Some(line) = take_line(buf)? {
                        let size = line.split(|&b| b == b';').next().unwrap_or_default();
                        let size = std::str::from_utf8(size.trim_ascii())
                            .ok()
                            .filter(|t| !t.is_empty())
                            .and_then(|t| u64::from_str_radix(t, 16).ok())
                            .ok_or_else(|| invalid("invalid chunk size"))?;
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size)
                        };
                        continue;
                    }
                }
                State::ChunkEnd => {
                    if let Some(line) = take_line(buf)? {
                        if !line.is_empty() {
                            return Err(invalid("chunk data longer than its size"));
                        }
                        self.state = State::ChunkSize;
                        continue;
                    }
                }
                State::Trailers => {
                    if let Some(line) = take_line(buf)? {
                        if line.is_empty() {
                            self.state = State::Done;
                        }
                        continue;
                    }
                }
                State::Length(_) | State::ChunkData(_) | State::Close => {}
            }
            if fill(&mut self.conn).await? == 0 {
                if self.state == State::Close {
                    self.state = State::Done;
                    return Ok(None);
                }
                return Err(closed_mid_body());
            }
        }
    }
}

fn closed_mid_body() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed in the middle of the body",
    )
}

/// The next line of `buf` without its line break, if it holds a whole one.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Err(invalid("line in a chunked body too long"))
        } else {
            Ok(None)
        };
    };
    let mut line = buf.split_to(end + 1).freeze();
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
}

/// Whether a `Content-Type` value is `application/json` (parameters aside).
fn is_json(value: &[u8]) -> bool {
    value
        .split(|&b| b == b';')
        .next()
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    #[test]
    fn only_plain_http_without_credentials_takes_the_fast_path() {
        let timeout = Duration::from_secs(1);
        let fast = |url: &str| Direct::for_url(&Url::parse(url).unwrap(), timeout);
        let preamble = |d: &Direct| String::from_utf8(d.preamble.clone()).unwrap();
        let direct = fast("http://127.0.0.1:8080/mcp?x=1").expect("plain http");
        assert!(
            preamble(&direct).starts_with("POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"),
            "{}",
            preamble(&direct)
        );
        let v6 = fast("http://[::1]/mcp").expect("IPv6 literal");
        assert!(preamble(&v6).contains("\r\nhost: [::1]\r\n"));
        assert!(matches!(v6.target, Target::Addr(addr) if addr.port() == 80));
        assert!(matches!(
            fast("http://localhost:9/mcp").unwrap().target,
            Target::Name(ref n, 9) if n == "localhost"
        ));
        // Whatever the URL held, the request line stays one line.
        let odd = fast("http://127.0.0.1/a b\r\nx: y?q=1 2#frag").expect("plain http");
        let line = preamble(&odd).lines().next().unwrap().to_owned();
        assert_eq!(line, "POST /a%20bx:%20y?q=1%202 HTTP/1.1");
        assert!(fast("https://127.0.0.1/mcp").is_none());
        assert!(fast("http://user:secret@127.0.0.1/mcp").is_none());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let of = |status: u16, fields: &[(&'static str, &'static str)]| {
            let fields: Vec<httparse::Header<'_>> = fields
                .iter()
                .map(|(name, value)| httparse::Header {
                    name,
                    value: value.as_bytes(),
                })
                .collect();
            Framing::of(StatusCode::from_u16(status).unwrap(), &fields)
        };
        assert_eq!(
            of(200, &[("content-length", "12")]),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            of(200, &[("content-length", "12, 12")]),
            Ok(Framing::Length(12))
        );
        assert!(of(200, &[("content-length", "12"), ("content-length", "13")]).is_err());
        assert!(of(200, &[("content-length", "-1")]).is_err());
        assert!(of(200, &[("content-length", "+5")]).is_err());
        assert_eq!(
            of(
                200,
                &[
                    ("Transfer-Encoding", "gzip, Chunked"),
                    ("content-length", "3")
                ]
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            of(200, &[("transfer-encoding", "chunked, gzip")]),
            Ok(Framing::Close)
        );
        assert_eq!(of(200, &[]), Ok(Framing::Close));
        assert_eq!(of(204, &[]), Ok(Framing::Length(0)));
    }

    /// A scripted HTTP server on a real loopback socket: for each accepted
    /// connection, `script` gets the connection's index and answers the
    /// requests read on it. Returns the URL and the accept count.
    async fn server<F, Fut>(script: F) -> (Url, Arc<AtomicUsize>)
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script(n, stream));
            }
        });
        (url, accepted)
    }

    /// Reads one request (head and `Content-Length` body); `None` at end of
    /// file.
    async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
        let mut buf = Vec::new();
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut body = buf[end + 4..].to_vec();
                while body.len() < length {
                    let mut more = [0u8; 4096];
                    let n = stream.read(&mut more).await.unwrap();
                    assert!(n > 0, "the body was cut short");
                    body.extend_from_slice(&more[..n]);
                }
                return Some((head, body));
            }
            let mut more = [0u8; 4096];
            match stream.read(&mut more).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&more[..n]),
            }
        }
    }

    /// Answers every request on the connection with `answer`.
    async fn answer_all(mut stream: TcpStream, answer: &'static [u8]) {
        while read_request(&mut stream).await.is_some() {
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }

    fn direct(url: &Url) -> Direct {
        Direct::for_url(url, Duration::from_secs(5)).expect("plain http")
    }

    fn json_body(answer: Result<Answer, Failure>) -> String {
        match answer {
            Ok(Answer::Json { body, .. }) => String::from_utf8(body.to_vec()).unwrap(),
            other => panic!("expected a JSON answer, got {other:?}"),
        }
    }

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-session-id", HeaderValue::from_static("abc"));
        // Set by this module; a configured one must not be sent twice.
        headers.insert(HOST, HeaderValue::from_static("elsewhere"));
        headers
    }

    #[tokio::test]
    async fn a_json_answer_is_read_whole_and_its_connection_reused() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let (url, accepted) = server(move |_, mut stream| {
            let record = record.clone();
            async move {
                while let Some(request) = read_request(&mut stream).await {
                    record.lock().unwrap().push(request);
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
                    stream.write_all(answer).await.unwrap();
                }
            }
        })
        .await;
        let direct = direct(&url);
        for _ in 0..3 {
            match direct.post(&json_headers(), b"{\"a\":1}").await {
                Ok(Answer::Json { session_id, body }) => {
                    assert_eq!(&body[..], b"{\"ok\":true}");
                    assert_eq!(session_id.unwrap(), "s1");
                }
                other => panic!("expected a JSON answer, got {other:?}"),
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one pooled connection");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        let (head, body) = &seen[0];
        assert_eq!(body, b"{\"a\":1}");
        let lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines[0], "POST /mcp HTTP/1.1");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
                .count(),
            1,
            "{head}"
        );
        assert!(
            lines.contains(&format!("host: {}", url.authority()).as_str()),
            "{head}"
        );
        assert!(lines.contains(&"content-type: application/json"), "{head}");
        assert!(lines.contains(&"mcp-session-id: abc"), "{head}");
        assert!(lines.contains(&"content-length: 7"), "{head}");
    }

    #[tokio::test]
    async fn chunked_and_close_delimited_json_answers_are_read_whole() {
        let (url, accepted) = server(|_, mut stream| async move {
            // Informational head first, chunk extensions, a trailer.
            let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n4;ext=1\r\n{\"ok\r\n7\r\n\":true}\r\n0\r\nx-trailer: 1\r\n\r\n";
            let closed = b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"closed\":1}";
            for answer in [&chunked[..], &closed[..]] {
                if read_request(&mut stream).await.is_some() {
                    stream.write_all(answer).await.unwrap();
                }
            }
        })
        .await;
        let direct = direct(&url);
        assert_eq!(
            json_body(direct.post(&json_headers(), b"{}").await),
            "{\"ok\":true}"
        );
        // The chunked answer left its connection reusable...
        assert_eq!(
            json_body(direct.post(&json_headers(), b"{}").await),
            "{\"closed\":1}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // ...the close-delimited one did not.
        assert!(direct.idle.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_event_stream_streams_and_a_redirect_goes_back() {
        let (url, _) = server(|n, mut stream| async move {
            let answer: &'static [u8] = if n == 0 {
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndata: 1\r\n2\r\n\n\n\r\n0\r\n\r\n"
            } else {
                b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /other\r\ncontent-length: 0\r\n\r\n"
            };
            if read_request(&mut stream).await.is_some() {
                stream.write_all(answer).await.unwrap();
            }
            let _ = read_request(&mut stream).await;
        })
        .await;
        let direct = direct(&url);
        match direct.post(&json_headers(), b"{}").await {
            Ok(Answer::Other(response)) => {
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
                assert_eq!(response.bytes().await.unwrap(), "data: 1\n\n");
            }
            other => panic!("expected a stream, got {other:?}"),
        }
        assert!(matches!(
            direct.post(&json_headers(), b"{}").await,
            Err(Failure::Redirect)
        ));
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closed_is_not_used() {
        // The first connection answers once and closes; the second answers
        // everything.
        let (url, accepted) = server(|n, mut stream| async move {
            let answer =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            if n == 0 {
                if read_request(&mut stream).await.is_some() {
                    stream.write_all(answer).await.unwrap();
                }
            } else {
                answer_all(stream, answer).await;
            }
        })
        .await;
        let direct = direct(&url);
        assert_eq!(json_body(direct.post(&json_headers(), b"{}").await), "{}");
        // Let the close reach this side.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let idle = direct.idle.lock().unwrap();
            if idle
                .first()
                .is_some_and(|c| c.stream.try_read(&mut [0u8; 1]).is_ok())
            {
                break;
            }
        }
        assert_eq!(json_body(direct.post(&json_headers(), b"{}").await), "{}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn bad_and_oversized_answers_fail_clearly() {
        let (url, _) = server(|n, mut stream| async move {
            let answer: &'static [u8] = match n {
                0 => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 999999999999\r\n\r\n{",
                1 => b"NOT HTTP AT ALL\r\n\r\n",
                2 => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"a\"",
                _ => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            };
            if read_request(&mut stream).await.is_some() {
                stream.write_all(answer).await.unwrap();
            }
        })
        .await;
        let direct = direct(&url);
        assert!(matches!(
            direct.post(&json_headers(), b"{}").await,
            Err(Failure::TooLarge)
        ));
        let reason = |answer: Result<Answer, Failure>| match answer {
            Err(Failure::Transport(reason)) => reason,
            other => panic!("expected a transport failure, got {other:?}"),
        };
        let bad_head = reason(direct.post(&json_headers(), b"{}").await);
        assert!(bad_head.contains("invalid response head"), "{bad_head}");
        let cut = reason(direct.post(&json_headers(), b"{}").await);
        assert!(cut.contains("closed in the middle of the body"), "{cut}");
        let bad_chunk = reason(direct.post(&json_headers(), b"{}").await);
        assert!(bad_chunk.contains("invalid chunk size"), "{bad_chunk}");
        assert!(direct.idle.lock().unwrap().is_empty());
    }
}
