//! Streamable HTTP mode of the example servers (`--http ADDR`): a small,
//! std-only HTTP/1.1 server, so the gateway's HTTP backends and the
//! benchmark's direct baseline have a backend that is never the bottleneck.
//!
//! One thread per connection, keep-alive, `Content-Length` or chunked
//! request bodies. `POST /mcp` carries one JSON-RPC message and is answered
//! with `application/json`; a request answered later (`sleep`) is waited for
//! on the connection, and if it sent notifications first (progress) and the
//! client accepts `text/event-stream`, the answer is an SSE body carrying the
//! notifications and then the response. `initialize` answers carry an
//! `Mcp-Session-Id`, but the server is stateless across connections: any
//! session id is accepted, and there is no `GET` stream (405), so
//! `list_changed` is not delivered over HTTP. `DELETE` answers 200.
//!
//! No dependency beyond std and serde_json: a test fixture should be cheap
//! to build and easy to read, and an HTTP stack would cost more per request
//! than this does on a handful of keep-alive connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use serde_json::Value;

use crate::{Catalog, Outbox, Server, log};

/// The largest request body accepted (4 MiB, like the gateway's default).
const MAX_BODY: usize = 4 << 20;

/// How long a deferred answer (`sleep`) may take before the request fails.
const DEFERRED_TIMEOUT: Duration = Duration::from_secs(300);

/// The endpoint path.
pub const PATH: &str = "/mcp";

/// Serves `catalog` over Streamable HTTP on `listener` until the process
/// ends; each connection gets its own thread and its own [`Server`].
pub fn serve<C: Catalog + Clone + 'static>(
    catalog: &C,
    name: Option<&str>,
    listener: &TcpListener,
) {
    let sessions = std::sync::Arc::new(AtomicU64::new(1));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log(catalog.default_name(), &format!("accept failed: {err}"));
                continue;
            }
        };
        let catalog = catalog.clone();
        let name = name.map(str::to_owned);
        let sessions = sessions.clone();
        std::thread::spawn(move || {
            let label = name
                .clone()
                .unwrap_or_else(|| catalog.default_name().to_owned());
            if let Err(err) = Connection::new(catalog, name, &stream, &sessions).run(&stream) {
                log(&label, &format!("connection ended: {err}"));
            }
        });
    }
}

/// The URL clients use for a listener bound to `addr`.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}{PATH}")
}

/// Lines the per-connection [`Server`] writes, handed to the connection.
struct LineSink {
    buf: Vec<u8>,
    lines: Sender<Vec<u8>>,
}

impl Write for LineSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
            // The connection may be gone; then the line has nowhere to go.
            let _ = self.lines.send(line);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One HTTP connection and the MCP server behind it.
struct Connection<'a, C> {
    server: Server<C>,
    /// What the server sent outside a direct reply (deferred answers,
    /// notifications).
    lines: Receiver<Vec<u8>>,
    sessions: &'a AtomicU64,
    reader: BufReader<&'a TcpStream>,
}

/// One parsed HTTP request.
#[derive(Debug, Default)]
struct Request {
    method: String,
    path: String,
    content_length: Option<usize>,
    chunked: bool,
    accepts_sse: bool,
    close: bool,
}

impl<'a, C: Catalog> Connection<'a, C> {
    fn new(
        catalog: C,
        name: Option<String>,
        stream: &'a TcpStream,
        sessions: &'a AtomicU64,
    ) -> Self {
        let _ = stream.set_nodelay(true);
        let (tx, lines) = channel();
        let server = Server::new(
            catalog,
            name,
            Outbox::new(LineSink {
                buf: Vec::new(),
                lines: tx,
            }),
        );
        // Sessions span connections (an HTTP client pools them), and this
        // server keeps no state per session: never warn "before initialize".
        server.initialized.store(true, Ordering::Relaxed);
        Self {
            server,
            lines,
            sessions,
            reader: BufReader::new(stream),
        }
    }

    /// Serves requests until the client closes the connection.
    fn run(mut self, stream: &TcpStream) -> std::io::Result<()> {
        let mut out = stream;
        let mut line = String::new();
        let mut response = Vec::with_capacity(1024);
        loop {
            let Some(request) = self.read_head(&mut line)? else {
                return Ok(());
            };
            let body = self.read_body(&request)?;
            response.clear();
            self.respond(&request, &body, &mut response);
            out.write_all(&response)?;
            if request.close {
                return Ok(());
            }
        }
    }

    /// Reads the request line and headers; `None` at a clean end of stream.
    fn read_head(&mut self, line: &mut String) -> std::io::Result<Option<Request>> {
        line.clear();
        if self.reader.read_line(line)? == 0 {
            return Ok(None);
        }
        let mut parts = line.split_whitespace();
        let mut request = Request {
            method: parts.next().unwrap_or_default().to_owned(),
            path: parts.next().unwrap_or_default().to_owned(),
            ..Request::default()
        };
        request.close = parts.next() == Some("HTTP/1.0");
        loop {
            line.clear();
            if self.reader.read_line(line)? == 0 {
                return Ok(None);
            }
            let header = line.trim_end();
            if header.is_empty() {
                return Ok(Some(request));
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                request.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                request.chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("accept") {
                request.accepts_sse = value.contains("text/event-stream");
            } else if name.eq_ignore_ascii_case("connection") {
                request.close = value.eq_ignore_ascii_case("close");
            }
        }
    }

    fn read_body(&mut self, request: &Request) -> std::io::Result<Vec<u8>> {
        let too_large = || std::io::Error::new(std::io::ErrorKind::InvalidData, "body too large");
        if request.chunked {
            let mut body = Vec::new();
            let mut line = String::new();
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk")
                })?;
                if body.len() + size > MAX_BODY {
                    return Err(too_large());
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
                if size == 0 {
                    return Ok(body);
                }
            }
        }
        let len = request.content_length.unwrap_or(0);
        if len > MAX_BODY {
            return Err(too_large());
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(body)
    }

    /// Writes the whole HTTP response for one request into `out`.
    fn respond(&self, request: &Request, body: &[u8], out: &mut Vec<u8>) {
        if request.path.split('?').next() != Some(PATH) {
            return head(out, "404 Not Found", None, &[], b"");
        }
        match request.method.as_str() {
            "POST" => self.post(request, body, out),
            "DELETE" => head(out, "200 OK", None, &[], b""),
            _ => head(
                out,
                "405 Method Not Allowed",
                None,
                &[("Allow", "POST, DELETE")],
                b"",
            ),
        }
    }

    fn post(&self, request: &Request, body: &[u8], out: &mut Vec<u8>) {
        let message: Value = match serde_json::from_slice(body) {
            Ok(message) => message,
            Err(_) => {
                let reply = self
                    .server
                    .handle_line(&String::from_utf8_lossy(body))
                    .unwrap_or(Value::Null);
                return json(out, "400 Bad Request", &[], &reply);
            }
        };
        let id = message
            .get("id")
            .filter(|_| message.get("method").is_some());
        let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
        // Lines left over from an earlier request (a late notification) are
        // not this request's.
        while self.lines.try_recv().is_ok() {}
        match (self.server.handle(&message), id) {
            (Some(reply), _) => {
                let session;
                let headers: &[(&str, &str)] = if is_initialize {
                    session = format!(
                        "{:08x}{:08x}",
                        std::process::id(),
                        self.sessions.fetch_add(1, Ordering::Relaxed)
                    );
                    &[("Mcp-Session-Id", session.as_str())]
                } else {
                    &[]
                };
                json(out, "200 OK", headers, &reply);
            }
            (None, Some(id)) => self.deferred(id, request.accepts_sse, out),
            (None, None) => head(out, "202 Accepted", None, &[], b""),
        }
    }

    /// Waits for a request answered later (from another thread), keeping the
    /// notifications sent before it.
    fn deferred(&self, id: &Value, sse: bool, out: &mut Vec<u8>) {
        let mut notes = Vec::new();
        loop {
            let Ok(line) = self.lines.recv_timeout(DEFERRED_TIMEOUT) else {
                let error =
                    crate::error_response(id, &crate::RpcError::new(-32603, "no answer in time"));
                return json(out, "200 OK", &[], &error);
            };
            let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if message.get("method").is_none() && message.get("id") == Some(id) {
                if sse && !notes.is_empty() {
                    let mut body = Vec::new();
                    for data in notes.iter().chain(std::iter::once(&line)) {
                        body.extend_from_slice(b"event: message\ndata: ");
                        body.extend_from_slice(data);
                        body.extend_from_slice(b"\n\n");
                    }
                    return head(out, "200 OK", Some("text/event-stream"), &[], &body);
                }
                return head(out, "200 OK", Some("application/json"), &[], &line);
            }
            notes.push(line);
        }
    }
}

/// A JSON response.
fn json(out: &mut Vec<u8>, status: &str, headers: &[(&str, &str)], value: &Value) {
    let body = value.to_string();
    head(
        out,
        status,
        Some("application/json"),
        headers,
        body.as_bytes(),
    );
}

/// A response with a body (possibly empty).
fn head(
    out: &mut Vec<u8>,
    status: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(content_type) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::Echo;

    /// Sends raw HTTP and reads one response (headers and body).
    fn exchange(
        stream: &mut TcpStream,
        reader: &mut BufReader<TcpStream>,
        raw: &str,
    ) -> (String, String) {
        stream.write_all(raw.as_bytes()).unwrap();
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    fn post(body: &str, extra: &str) -> String {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn streamable_http_round_trips() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(&Echo, None, &listener));
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let (head, body) = exchange(&mut stream, &mut reader, &post(init, ""));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Mcp-Session-Id: "), "{head}");
        assert!(body.contains("2025-11-25"), "{body}");
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let (head, _) = exchange(
            &mut stream,
            &mut reader,
            &post(note, "Mcp-Session-Id: a\r\n"),
        );
        assert!(head.starts_with("HTTP/1.1 202"), "{head}");
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
        let (_, body) = exchange(&mut stream, &mut reader, &post(call, ""));
        let reply: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["result"]["content"][0]["text"], "hi");
        // A chunked body.
        let chunked = format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{call}\r\n0\r\n\r\n",
            call.len()
        );
        let (_, body) = exchange(&mut stream, &mut reader, &chunked);
        assert!(body.contains("\"hi\""), "{body}");
        // A deferred answer with progress becomes SSE.
        let sleep = r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"sleep","arguments":{"ms":4},"_meta":{"progressToken":1}}}"#;
        let (head, body) = exchange(&mut stream, &mut reader, &post(sleep, ""));
        assert!(head.contains("text/event-stream"), "{head}");
        assert_eq!(body.matches("notifications/progress").count(), 4, "{body}");
        assert!(body.contains("slept 4 ms"), "{body}");
        let (head, _) = exchange(
            &mut stream,
            &mut reader,
            "GET /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    }
}
