//! Upstream WebSocket: a backend at a `ws(s)://` URL.
//!
//! WebSocket is not a standard MCP transport; this follows the TypeScript
//! SDK's client: the handshake asks for the subprotocol `mcp` (the server
//! must select it) and carries the configured headers, and every JSON-RPC
//! message is one text frame. One task owns the socket: it writes what the
//! connection sends and delivers what arrives. When the socket closes, the
//! events end with `Closed`; dropping every clone closes the socket. A
//! dropped call is cancelled with `notifications/cancelled`.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{SinkExt, StreamExt};
use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{Message, Outcome};
use only1mcp_core::upstream::{Call, Events, Upstream};
use reqwest::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::ResponseFuture;
use crate::correlate::Correlator;
use crate::http_client::{self, MAX_MESSAGE};
use crate::spec::NetworkSpec;

/// The subprotocol MCP clients ask for.
pub const SUBPROTOCOL: &str = "mcp";

/// How many outgoing messages may wait for the socket.
const OUTGOING_CAPACITY: usize = 1024;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection to a WebSocket backend: a cheap-to-clone [`Upstream`].
#[derive(Debug, Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    correlator: Arc<Correlator>,
    // Dropping the last sender makes the socket task close the socket.
    outgoing: mpsc::Sender<Vec<u8>>,
}

impl Connection {
    /// Performs the handshake (within the connect timeout) and starts the
    /// socket task.
    pub async fn connect(spec: &NetworkSpec) -> Result<(Self, Events), Error> {
        let url = spec.parsed_url()?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| spec.unavailable(format!("invalid WebSocket URL: {e}")))?;
        let headers = http_client::header_map(&spec.headers).map_err(|e| spec.unavailable(e))?;
        request.headers_mut().extend(headers);
        request.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let mut tls = spec.tls()?;
        // WebSocket upgrades run over HTTP/1.1.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE);
        // tungstenite zero-fills this much of its buffer before every read
        // (128 KiB by default); larger frames take several reads.
        config.read_buffer_size = 8 * 1024;
        let handshake = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(Connector::Rustls(Arc::new(tls))),
        );
        let (socket, _response) = tokio::time::timeout(spec.connect_timeout, handshake)
            .await
            .map_err(|_| {
                spec.unavailable(format!(
                    "no WebSocket handshake with {} within {}ms",
                    http_client::display_url(&url),
                    spec.connect_timeout.as_millis()
                ))
            })?
            .map_err(|e| handshake_error(spec, &url, e))?;
        tracing::debug!(server = %spec.server, url = %http_client::display_url(&url), "WebSocket connected");
        let (correlator, events) = Correlator::new(spec.server.clone());
        let (outgoing, rx) = mpsc::channel(OUTGOING_CAPACITY);
        tokio::spawn(run(correlator.clone(), socket, rx));
        Ok((
            Self {
                shared: Arc::new(Shared {
                    correlator,
                    outgoing,
                }),
            },
            events,
        ))
    }

    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        self.shared.correlator.server()
    }

    /// Sets the hook that sees notifications in wire order (see
    /// [`crate::NotificationHook`]).
    pub fn set_notification_hook(&self, hook: crate::NotificationHook) {
        self.shared.correlator.set_hook(hook);
    }
}

fn handshake_error(spec: &NetworkSpec, url: &reqwest::Url, error: tungstenite::Error) -> Error {
    let shown = http_client::display_url(url);
    match error {
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().unwrap_or_default();
            http_client::status_error(&spec.server, response.status(), body)
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(e),
        ) => spec.unavailable(format!(
            "{shown} did not accept the WebSocket subprotocol {SUBPROTOCOL:?}: {e}"
        )),
        other => spec.unavailable(format!(
            "cannot connect to {shown}: {}",
            http_client::chain(&other)
        )),
    }
}

/// Owns the socket: writes outgoing messages, delivers incoming frames,
/// and closes the connection when either side ends.
async fn run(
    correlator: Arc<Correlator>,
    mut socket: Socket,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
) {
    let server = correlator.server().clone();
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    if !correlator.deliver_frame(text.as_bytes()).await {
                        break;
                    }
                }
                Some(Ok(Frame::Binary(_))) => {
                    tracing::warn!(server = %server, "Backend sent a binary WebSocket frame; ignored");
                }
                Some(Ok(Frame::Close(_))) | None => break,
                Some(Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_))) => {}
                Some(Err(e)) => {
                    tracing::debug!(server = %server, error = %e, "WebSocket failed");
                    break;
                }
            },
            message = outgoing.recv() => match message {
                Some(bytes) => {
                    let Ok(text) = String::from_utf8(bytes) else { continue };
                    if let Err(e) = socket.send(Frame::text(text)).await {
                        tracing::debug!(server = %server, error = %e, "WebSocket write failed");
                        break;
                    }
                }
                None => {
                    let _ = socket.close(None).await;
                    break;
                }
            },
        }
    }
    tracing::debug!(server = %server, "WebSocket closed");
    correlator.close();
}

impl tower_service::Service<Call> for Connection {
    type Response = Outcome;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Backpressure is the bounded outgoing queue, awaited inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> ResponseFuture {
        let shared = self.shared.clone();
        Box::pin(crate::correlate::call_over_queue(
            shared.correlator.clone(),
            shared.outgoing.clone(),
            call,
        ))
    }
}

impl Upstream for Connection {
    fn send(&self, message: Message) -> Result<(), Error> {
        if self.shared.correlator.is_closed() {
            return Err(self.shared.correlator.closed_error());
        }
        self.shared
            .outgoing
            .try_send(message.to_vec())
            .map_err(|_| self.shared.correlator.closed_error())
    }
}
