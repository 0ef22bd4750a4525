//! The 2024-11-05 HTTP+SSE transport against `server-everything sse`, and
//! the endpoint origin check against a stand-in.

use std::time::Duration;

use axum::http::Method;
use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::{Call, UpstreamEvent};
use only1mcp_transport::handshake;
use only1mcp_transport::network::{self, NetworkSpec};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::support::{
    self, Peer, Recorder, STEP, eventually, next_event, notification, result, text, tool_names,
};

fn spec(url: String) -> NetworkSpec {
    let mut spec = NetworkSpec::new("ev-sse", url, UrlTransport::Sse);
    spec.headers = vec![("x-test-token".to_owned(), "s3cret".to_owned())];
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_session_over_http_sse() {
    let peer = Peer::everything("sse").await;
    let recorder = Recorder::start(peer.port).await;
    let (connection, mut events) = network::connect(&spec(recorder.url("/sse"))).await.unwrap();
    let mut upstream = connection.clone();

    let established =
        handshake::establish("ev-sse", &mut upstream, &support::identity(), STEP, STEP)
            .await
            .unwrap();
    assert_eq!(established.era, Era::Legacy);
    assert_eq!(established.protocol_version, "2025-11-25");

    let tools = result(&connection, "tools/list", json!({})).await;
    assert!(tool_names(&tools).contains(&"echo".to_owned()), "{tools}");
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: hi");

    // Messages go to the endpoint the stream named, with the headers.
    let requests = recorder.requests();
    assert_eq!(requests[0].method, Method::GET);
    assert_eq!(requests[0].header("accept"), Some("text/event-stream"));
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == Method::POST)
        .collect();
    assert!(posts.len() >= 4, "{posts:?}");
    for post in posts {
        assert!(
            post.target.starts_with("/message?sessionId="),
            "{}",
            post.target
        );
        assert_eq!(post.header("x-test-token"), Some("s3cret"));
        assert_eq!(post.header("content-type"), Some("application/json"));
    }

    let long = result(
        &connection,
        "tools/call",
        json!({
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 2, "steps": 4},
            "_meta": {"progressToken": 7},
        }),
    )
    .await;
    assert!(text(&long).contains("completed"), "{long}");
    for step in 1..=4 {
        let event = next_event(&mut events, STEP, |e| {
            notification(e, "notifications/progress").is_some()
        })
        .await;
        let params = notification(&event, "notifications/progress").unwrap();
        assert_eq!(params["progressToken"], 7);
        assert_eq!(params["progress"], step);
    }

    // Dropping a call in flight POSTs its cancellation.
    let slow = Call::new(
        "tools/call",
        serde_json::value::to_raw_value(&json!({
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 30, "steps": 3},
        }))
        .ok(),
    );
    let abandoned =
        tokio::time::timeout(Duration::from_secs(1), connection.clone().oneshot(slow)).await;
    assert!(abandoned.is_err(), "the slow call answered early");
    let slow_id = recorder
        .posts("tools/call")
        .iter()
        .find(|r| r.body["params"]["arguments"]["duration"] == 30)
        .map(|r| r.body["id"].clone())
        .unwrap();
    eventually(STEP, "the cancellation was POSTed", || {
        recorder
            .posts("notifications/cancelled")
            .iter()
            .any(|r| r.body["params"]["requestId"] == slow_id)
    })
    .await;

    // The session is the GET stream: when the server goes away, the events
    // end with Closed and calls fail.
    drop(recorder);
    peer.kill().await;
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
    let after = connection
        .oneshot(Call::new("tools/list", None))
        .await
        .unwrap_err();
    assert!(matches!(after, Error::UpstreamClosed { .. }), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_on_another_origin_is_refused() {
    // A stand-in server whose endpoint event points elsewhere: posting there
    // would hand the configured headers to another host.
    let app = axum::Router::new().route(
        "/sse",
        axum::routing::get(|| async {
            (
                [("content-type", "text/event-stream")],
                "event: endpoint\ndata: http://elsewhere.example/message\n\n",
            )
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let error = network::connect(&spec(format!("http://{addr}/sse")))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("another origin")),
        "{error:?}"
    );
    server.abort();
}
