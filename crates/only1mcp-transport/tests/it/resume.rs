//! Legacy SSE resumption (2025-11-25 polling): a response stream that closes
//! after its priming event, and a GET stream that drops, are both resumed
//! with `Last-Event-ID` after the server's `retry:` delay. No reference
//! server closes its streams on purpose, so a small stand-in does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::mcp::Era;
use only1mcp_transport::handshake;
use only1mcp_transport::network::{self, NetworkSpec};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{self, STEP, next_event, notification, result, text};

#[derive(Debug, Default)]
struct Stand {
    /// The id of the `tools/call` whose answer waits for the resumption.
    pending_call: Option<Value>,
    /// The headers of every GET.
    gets: Vec<(HeaderMap, Instant)>,
    /// When the response stream was closed early.
    closed_at: Option<Instant>,
}

type Shared = Arc<Mutex<Stand>>;

fn sse(body: String, keep_open: bool) -> Response {
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let body = if keep_open {
        Body::from_stream(first.chain(futures::stream::pending()))
    } else {
        Body::from_stream(first)
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

fn message(value: &Value) -> String {
    format!("event: message\ndata: {value}\n\n")
}

async fn post(State(stand): State<Shared>, request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let message: Value = serde_json::from_slice(&body).unwrap();
    let id = message["id"].clone();
    match message["method"].as_str() {
        Some("initialize") => (
            [
                ("content-type", "application/json"),
                ("mcp-session-id", "s1"),
            ],
            json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "resume-stand-in", "version": "0"},
            }})
            .to_string(),
        )
            .into_response(),
        Some("tools/call") => {
            // Priming event, then the stream closes before the answer.
            let mut stand = stand.lock().unwrap();
            stand.pending_call = Some(id);
            stand.closed_at = Some(Instant::now());
            sse("id: p1\nretry: 300\ndata: \n\n".to_owned(), false)
        }
        Some(_) if id.is_null() => StatusCode::ACCEPTED.into_response(),
        _ => (
            [("content-type", "application/json")],
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}})
                .to_string(),
        )
            .into_response(),
    }
}

async fn get(State(stand): State<Shared>, headers: HeaderMap) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut stand = stand.lock().unwrap();
    stand.gets.push((headers, Instant::now()));
    let note = |n: u32| json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": n}});
    match last.as_deref() {
        // The standalone stream: one message, then it drops.
        None => sse(format!("id: g1\nretry: 200\n{}", message(&note(1))), false),
        Some("g1") => sse(format!("id: g2\n{}", message(&note(2))), true),
        // Resuming the response stream of the call.
        Some("p1") => {
            let id = stand.pending_call.take().unwrap_or(Value::Null);
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                "content": [{"type": "text", "text": "resumed"}],
            }});
            sse(format!("id: p2\n{}", message(&answer)), false)
        }
        Some(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_streams_are_resumed_after_the_retry_delay() {
    let stand = Shared::default();
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(post).get(get))
        .with_state(stand.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let spec = NetworkSpec::new(
        "resume",
        format!("http://{addr}/mcp"),
        UrlTransport::StreamableHttp,
    );
    let (connection, mut events) = network::connect(&spec).await.unwrap();
    let mut upstream = connection.clone();
    let established =
        handshake::establish("resume", &mut upstream, &support::identity(), STEP, STEP)
            .await
            .unwrap();
    assert_eq!(established.era, Era::Legacy);

    // The GET stream drops after its first message and is reopened from
    // where it stopped.
    for n in 1..=2 {
        let event = next_event(&mut events, STEP, |e| {
            notification(e, "notifications/message").is_some()
        })
        .await;
        assert_eq!(
            notification(&event, "notifications/message").unwrap()["data"],
            n
        );
    }
    {
        let stand = stand.lock().unwrap();
        assert_eq!(stand.gets.len(), 2);
        assert_eq!(stand.gets[0].0.get("mcp-session-id").unwrap(), "s1");
        assert!(stand.gets[0].0.get("last-event-id").is_none());
        assert_eq!(stand.gets[1].0.get("last-event-id").unwrap(), "g1");
        assert!(stand.gets[1].1 - stand.gets[0].1 >= Duration::from_millis(200));
    }

    // The answer to a call whose stream closed after the priming event
    // comes on the resumed stream.
    let resumed = result(
        &connection,
        "tools/call",
        json!({"name": "anything", "arguments": {}}),
    )
    .await;
    assert_eq!(text(&resumed), "resumed");
    let stand = stand.lock().unwrap();
    let (headers, at) = stand.gets.last().unwrap();
    assert_eq!(headers.get("last-event-id").unwrap(), "p1");
    assert_eq!(headers.get("mcp-session-id").unwrap(), "s1");
    assert!(*at - stand.closed_at.unwrap() >= Duration::from_millis(300));
    server.abort();
}
