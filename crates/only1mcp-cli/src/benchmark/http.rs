//! Streamable HTTP client connections: one TCP connection each, HTTP/1.1,
//! one request at a time (as a browser-less MCP client does).
//!
//! A legacy connection opens its own session (`initialize`, the
//! `Mcp-Session-Id` it returns on every later POST, `DELETE` at the end). A
//! modern one sends the 2026-07-28 headers on every POST. Answers may be
//! `application/json` or a `text/event-stream` whose events end with the
//! response; both are read.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::message::{self, Era, Incoming, LEGACY_VERSION, MODERN_VERSION, Template};
use super::{CallError, Reply, Wire};
use crate::benchmark::target::Endpoint;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// One HTTP/1.1 connection (and, in the legacy era, one MCP session).
#[derive(Debug)]
pub(crate) struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    path: String,
    session: Option<HeaderValue>,
    era: Era,
    /// `Mcp-Method` and `Mcp-Name` for modern requests, built once.
    method: Option<HeaderValue>,
    name: Option<HeaderValue>,
}

impl HttpConn {
    /// Connects and, in the legacy era, initializes a session.
    pub(crate) async fn open(
        endpoint: &Endpoint,
        addr: std::net::SocketAddr,
        era: Era,
        template: &Template,
    ) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = connection.await;
        });
        let host = HeaderValue::from_str(&endpoint.authority).map_err(|e| e.to_string())?;
        let (method, name) = if era == Era::Modern {
            let method = HeaderValue::from_str(&template.method).map_err(|e| e.to_string())?;
            let name = template.name.as_deref().map(header_value).transpose()?;
            (Some(method), name)
        } else {
            (None, None)
        };
        let mut conn = Self {
            sender,
            host,
            path: endpoint.path.clone(),
            session: None,
            era,
            method,
            name,
        };
        if era == Era::Legacy {
            conn.initialize().await?;
        }
        Ok(conn)
    }

    async fn initialize(&mut self) -> Result<(), String> {
        let request = self.post(message::initialize(0), false)?;
        let response = self
            .send(request)
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        let status = response.status();
        self.session = response.headers().get(SESSION_HEADER).cloned();
        let body = collect(response.into_body()).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "initialize: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let request = self.post(message::initialized(), false)?;
        let response = self
            .send(request)
            .await
            .map_err(|e| format!("notifications/initialized: {e}"))?;
        let status = response.status();
        collect(response.into_body()).await?;
        if !status.is_success() {
            return Err(format!("notifications/initialized: HTTP {status}"));
        }
        Ok(())
    }

    /// Waits until the connection can take a request (the previous
    /// response fully read), then sends it.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
    }

    fn post(&self, body: Vec<u8>, benchmarked: bool) -> Result<Request<Full<Bytes>>, String> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, ACCEPT_BOTH);
        match self.era {
            Era::Legacy => {
                if let Some(session) = &self.session {
                    builder = builder
                        .header(SESSION_HEADER, session.clone())
                        .header(VERSION_HEADER, LEGACY_VERSION);
                }
            }
            Era::Modern => {
                builder = builder.header(VERSION_HEADER, MODERN_VERSION);
                if benchmarked {
                    if let Some(method) = &self.method {
                        builder = builder.header("mcp-method", method.clone());
                    }
                    if let Some(name) = &self.name {
                        builder = builder.header("mcp-name", name.clone());
                    }
                }
            }
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }

    /// Sends the benchmarked request with `id` and reads its answer.
    pub(crate) async fn call(&mut self, id: u64, body: Vec<u8>) -> Result<Reply, CallError> {
        let request = self.post(body, true).map_err(CallError::Transport)?;
        let response = self
            .send(request)
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status();
        let sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = collect(response.into_body())
            .await
            .map_err(CallError::Transport)?;
        let wire = if sse { Wire::Sse } else { Wire::Json };
        if sse {
            for payload in message::sse_payloads(&body) {
                if let Ok(Incoming::Response(got, answer)) = message::read(&payload)
                    && got == id
                {
                    return Ok(Reply { answer, wire });
                }
            }
            return Err(CallError::Transport(format!(
                "HTTP {status}: the event stream ended without the response"
            )));
        }
        match message::read(&body) {
            Ok(Incoming::Response(got, answer)) if got == id => Ok(Reply { answer, wire }),
            // Modern errors come with 4xx statuses and a JSON-RPC body.
            Ok(Incoming::Response(got, _)) => Err(CallError::Transport(format!(
                "HTTP {status}: the response has id {got}, not {id}"
            ))),
            Ok(Incoming::Other) | Err(_) if !status.is_success() => Err(CallError::Http(
                status.as_u16(),
                String::from_utf8_lossy(&body).chars().take(200).collect(),
            )),
            Ok(Incoming::Other) => Err(CallError::Transport(format!(
                "HTTP {status}: no response in the body"
            ))),
            Err(e) => Err(CallError::Transport(format!("HTTP {status}: {e}"))),
        }
    }

    /// Ends the legacy session (`DELETE`), so the server can free it.
    pub(crate) async fn close(mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let request = Request::builder()
            .method(Method::DELETE)
            .uri(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(SESSION_HEADER, session)
            .body(Full::new(Bytes::new()));
        if let Ok(request) = request
            && let Ok(response) = self.send(request).await
        {
            let _ = collect(response.into_body()).await;
        }
    }
}

/// A header value; non-ASCII text is sent in MCP's `=?base64?…?=` form.
fn header_value(text: &str) -> Result<HeaderValue, String> {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return HeaderValue::from_str(text).map_err(|e| e.to_string());
    }
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    HeaderValue::from_str(&format!("=?base64?{encoded}?=")).map_err(|e| e.to_string())
}

async fn collect(body: hyper::body::Incoming) -> Result<Bytes, String> {
    body.collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| format!("reading the body: {e}"))
}
