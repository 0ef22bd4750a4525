//! WebSocket backends. No official MCP WebSocket server exists (the SDKs
//! ship only clients), so a small in-test stand-in plays the backend: a
//! legacy MCP server with `echo` (progress when asked), `slow` (never
//! answers) and `hang_up` (closes the socket). It also answers single POSTs
//! with JSON, which the TLS tests use for HTTPS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Version};
use axum::response::{IntoResponse, Response};
use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::{Call, UpstreamEvent};
use only1mcp_transport::handshake;
use only1mcp_transport::network::{self, NetworkSpec};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::support::{self, STEP, eventually, next_event, notification, result, text};

/// What the stand-in saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Every message received.
    pub(crate) messages: Vec<Value>,
    /// The headers of the last handshake or POST.
    pub(crate) headers: Option<HeaderMap>,
    /// The HTTP version of the last POST.
    pub(crate) version: Option<Version>,
}

pub(crate) type Shared = Arc<Mutex<Seen>>;

/// The stand-in's routes: `GET /mcp` upgrades to WebSocket (subprotocol
/// `mcp`), `GET /no-subprotocol` upgrades without choosing one, `POST /mcp`
/// answers one message with JSON.
pub(crate) fn stand_in(seen: Shared) -> axum::Router {
    axum::Router::new()
        .route("/mcp", axum::routing::get(upgrade).post(post))
        .route(
            "/no-subprotocol",
            axum::routing::get(upgrade_without_subprotocol),
        )
        .with_state(seen)
}

async fn upgrade(State(seen): State<Shared>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    seen.lock().unwrap().headers = Some(headers);
    ws.protocols(["mcp"])
        .on_upgrade(move |socket| serve(socket, seen))
}

async fn upgrade_without_subprotocol(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|_socket| async {})
}

async fn post(State(seen): State<Shared>, request: Request) -> Response {
    let version = request.version();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let message: Value = serde_json::from_slice(&body).unwrap();
    {
        let mut seen = seen.lock().unwrap();
        seen.messages.push(message.clone());
        seen.headers = Some(headers);
        seen.version = Some(version);
    }
    match answer(&message) {
        Reply::Answer(_, answer) => {
            ([("content-type", "application/json")], answer.to_string()).into_response()
        }
        Reply::Nothing | Reply::HangUp => axum::http::StatusCode::ACCEPTED.into_response(),
    }
}

enum Reply {
    /// Notifications to send first, then the response.
    Answer(Vec<Value>, Value),
    Nothing,
    HangUp,
}

fn answer(message: &Value) -> Reply {
    let Some(method) = message["method"].as_str() else {
        return Reply::Nothing;
    };
    let id = message.get("id").cloned();
    let Some(id) = id else {
        return Reply::Nothing;
    };
    let ok = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match method {
        "initialize" => Reply::Answer(
            vec![],
            ok(json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "ws-stand-in", "version": "0"},
            })),
        ),
        "tools/list" => Reply::Answer(
            vec![],
            ok(json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})),
        ),
        "tools/call" => match message["params"]["name"].as_str() {
            Some("echo") => {
                let progress = message["params"]["_meta"]["progressToken"].clone();
                let notes = if progress.is_null() {
                    vec![]
                } else {
                    vec![json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {"progressToken": progress, "progress": 1, "total": 1},
                    })]
                };
                let said = message["params"]["arguments"]["message"]
                    .as_str()
                    .unwrap_or_default();
                Reply::Answer(
                    notes,
                    ok(json!({"content": [{"type": "text", "text": format!("Echo: {said}")}]})),
                )
            }
            Some("slow") => Reply::Nothing,
            Some("hang_up") => Reply::HangUp,
            _ => Reply::Answer(vec![], ok(json!({"content": [], "isError": true}))),
        },
        _ => Reply::Answer(
            vec![],
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
        ),
    }
}

async fn serve(mut socket: WebSocket, seen: Shared) {
    while let Some(Ok(frame)) = socket.recv().await {
        let Message::Text(text) = frame else { continue };
        let message: Value = serde_json::from_str(&text).unwrap();
        seen.lock().unwrap().messages.push(message.clone());
        match answer(&message) {
            Reply::Answer(notes, response) => {
                for note in notes.into_iter().chain([response]) {
                    if socket
                        .send(Message::Text(note.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Reply::Nothing => {}
            Reply::HangUp => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}

/// Serves the stand-in on plain TCP; returns its address.
async fn start() -> (std::net::SocketAddr, Shared, tokio::task::JoinHandle<()>) {
    let seen = Shared::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = stand_in(seen.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen, task)
}

fn spec(url: String) -> NetworkSpec {
    let mut spec = NetworkSpec::new("ws", url, UrlTransport::Websocket);
    spec.headers = vec![("x-test-token".to_owned(), "s3cret".to_owned())];
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_backend() {
    let (addr, seen, server) = start().await;
    let (connection, mut events) = network::connect(&spec(format!("ws://{addr}/mcp")))
        .await
        .unwrap();
    let mut upstream = connection.clone();
    {
        let seen = seen.lock().unwrap();
        let headers = seen.headers.as_ref().unwrap();
        assert_eq!(headers["x-test-token"], "s3cret");
        assert_eq!(headers["sec-websocket-protocol"], "mcp");
    }

    let established = handshake::establish("ws", &mut upstream, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    assert_eq!(established.era, Era::Legacy);
    assert_eq!(established.protocol_version, "2025-11-25");
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}, "_meta": {"progressToken": "p"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: hi");
    let event = next_event(&mut events, STEP, |e| {
        notification(e, "notifications/progress").is_some()
    })
    .await;
    assert_eq!(
        notification(&event, "notifications/progress").unwrap()["progressToken"],
        "p"
    );
    assert!(
        seen.lock()
            .unwrap()
            .messages
            .iter()
            .any(|m| m["method"] == "notifications/initialized")
    );

    // Dropping a call in flight sends its cancellation.
    let slow = Call::new(
        "tools/call",
        serde_json::value::to_raw_value(&json!({"name": "slow", "arguments": {}})).ok(),
    );
    let abandoned =
        tokio::time::timeout(Duration::from_millis(300), connection.clone().oneshot(slow)).await;
    assert!(abandoned.is_err());
    eventually(STEP, "the cancellation was sent", || {
        let seen = seen.lock().unwrap();
        let slow_id = seen
            .messages
            .iter()
            .find(|m| m["params"]["name"] == "slow")
            .map(|m| m["id"].clone());
        seen.messages.iter().any(|m| {
            m["method"] == "notifications/cancelled"
                && Some(&m["params"]["requestId"]) == slow_id.as_ref()
        })
    })
    .await;

    // The server closing the socket ends the events; calls then fail.
    let hang_up = Call::new(
        "tools/call",
        serde_json::value::to_raw_value(&json!({"name": "hang_up", "arguments": {}})).ok(),
    );
    let error = connection.clone().oneshot(hang_up).await.unwrap_err();
    assert!(matches!(error, Error::UpstreamClosed { .. }), "{error:?}");
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_ignores_the_subprotocol_is_refused() {
    let (addr, _seen, server) = start().await;
    let error = network::connect(&spec(format!("ws://{addr}/no-subprotocol")))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("subprotocol")),
        "{error:?}"
    );
    server.abort();
}
