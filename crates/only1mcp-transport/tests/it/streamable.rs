//! Streamable HTTP against real servers: `server-everything streamableHttp`
//! (legacy only) and the Python SDK fixture (dual-era, modern by probe).

use std::time::Duration;

use axum::http::Method;
use futures::StreamExt;
use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::{Call, UpstreamEvent};
use only1mcp_transport::handshake;
use only1mcp_transport::network::{self, NetworkSpec};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{
    self, Peer, Recorder, STEP, call, eventually, modern, next_event, notification, result, text,
    tool_names,
};

const TOKEN: &str = "x-test-token";

fn spec(url: String) -> NetworkSpec {
    let mut spec = NetworkSpec::new("ev", url, UrlTransport::StreamableHttp);
    spec.headers = vec![(TOKEN.to_owned(), "s3cret".to_owned())];
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_session_over_streamable_http() {
    let peer = Peer::everything("streamableHttp").await;
    let recorder = Recorder::start(peer.port).await;
    let (connection, mut events) = network::connect(&spec(recorder.url("/mcp"))).await.unwrap();
    let mut upstream = connection.clone();

    let established = handshake::establish("ev", &mut upstream, &support::identity(), STEP, STEP)
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

    // What went on the wire: the modern probe, then a legacy session whose
    // id and version ride on every later request.
    let probe = &recorder.posts("server/discover")[0];
    assert_eq!(probe.header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(probe.header("mcp-method"), Some("server/discover"));
    assert_eq!(probe.header("mcp-session-id"), None);
    let init = &recorder.posts("initialize")[0];
    assert_eq!(init.header("mcp-session-id"), None);
    for later in ["notifications/initialized", "tools/list", "tools/call"] {
        let request = &recorder.posts(later)[0];
        assert!(
            request
                .header("mcp-session-id")
                .is_some_and(|id| !id.is_empty()),
            "{later}"
        );
        assert_eq!(
            request.header("mcp-protocol-version"),
            Some("2025-11-25"),
            "{later}"
        );
        assert_eq!(request.header("mcp-method"), None, "{later}");
    }
    for request in recorder.requests() {
        assert_eq!(
            request.header(TOKEN),
            Some("s3cret"),
            "{} {}",
            request.method,
            request.target
        );
        if request.method == Method::POST {
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert_eq!(
                request.header("accept"),
                Some("application/json, text/event-stream")
            );
        }
    }
    let session_id = recorder.posts("tools/list")[0]
        .header("mcp-session-id")
        .unwrap()
        .to_owned();

    // Progress notifications of a call arrive as events while it runs.
    let long = result(
        &connection,
        "tools/call",
        json!({
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 2, "steps": 4},
            "_meta": {"progressToken": "tok-1"},
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
        assert_eq!(params["progressToken"], "tok-1");
        assert_eq!(params["progress"], step);
    }

    // The standalone GET stream is open and its messages become events:
    // the simulated logging sends a log message there at once.
    eventually(STEP, "the GET stream was opened", || {
        recorder.requests().iter().any(|r| {
            r.method == Method::GET
                && r.header("mcp-session-id") == Some(&session_id)
                && r.header("accept") == Some("text/event-stream")
        })
    })
    .await;
    result(
        &connection,
        "tools/call",
        json!({"name": "toggle-simulated-logging", "arguments": {}}),
    )
    .await;
    next_event(&mut events, Duration::from_secs(12), |e| {
        notification(e, "notifications/message").is_some()
    })
    .await;

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
        recorder.posts("notifications/cancelled").iter().any(|r| {
            r.body["params"]["requestId"] == slow_id
                && r.header("mcp-session-id") == Some(&session_id)
        })
    })
    .await;

    // Dropping the last clone ends the session with a DELETE, and the
    // events end with Closed.
    drop(connection);
    drop(upstream);
    eventually(STEP, "the session was deleted", || {
        recorder
            .requests()
            .iter()
            .any(|r| r.method == Method::DELETE && r.header("mcp-session-id") == Some(&session_id))
    })
    .await;
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_session_closes_the_connection() {
    // The Python fixture answers 404 to an unknown session id, as the spec
    // asks; restarting it forgets every session.
    let port = support::free_port();
    let peer = Peer::python_on("streamable-http", port).await;
    let (connection, mut events) = network::connect(&spec(format!("http://127.0.0.1:{port}/mcp")))
        .await
        .unwrap();
    // A legacy session, opened by hand (the probe would find it modern).
    let init = result(
        &connection,
        "initialize",
        json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        }),
    )
    .await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "a"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: a");

    peer.kill().await;
    let _peer = Peer::python_on("streamable-http", port).await;

    let params =
        serde_json::value::to_raw_value(&json!({"name": "echo", "arguments": {"message": "b"}}))
            .ok();
    let error = connection
        .clone()
        .oneshot(Call::new("tools/call", params))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("session")),
        "{error:?}"
    );
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
    let after = connection
        .clone()
        .oneshot(Call::new("tools/list", None))
        .await
        .unwrap_err();
    assert!(matches!(after, Error::UpstreamClosed { .. }), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_legacy_server_closes_the_connection_and_a_new_one_works() {
    let port = support::free_port();
    let peer = Peer::everything_on("streamableHttp", port).await;
    let recorder = Recorder::start(port).await;
    let url = recorder.url("/mcp");
    let (connection, mut events) = network::connect(&spec(url.clone())).await.unwrap();
    let mut upstream = connection.clone();
    handshake::establish("ev", &mut upstream, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    // Wait until the server has opened the GET stream, so its loss is noticed.
    eventually(STEP, "the server opened the GET stream", || {
        recorder.answered(&Method::GET) == [axum::http::StatusCode::OK]
    })
    .await;

    peer.kill().await;
    let _peer = Peer::everything_on("streamableHttp", port).await;
    // The old session is gone with the old process: the events end, as the
    // supervisor needs to start over.
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;

    let (mut fresh, _events) = network::connect(&spec(url)).await.unwrap();
    let established = handshake::establish("ev", &mut fresh, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    assert_eq!(established.era, Era::Legacy);
    let echo = result(
        &fresh,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "again"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: again");
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_era_over_streamable_http() {
    let peer = Peer::python_on("streamable-http", support::free_port()).await;
    let recorder = Recorder::start(peer.port).await;
    let (connection, mut events) = network::connect(&spec(recorder.url("/mcp"))).await.unwrap();
    let mut upstream = connection.clone();

    let established = handshake::establish("py", &mut upstream, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    assert_eq!(established.era, Era::Modern);
    assert_eq!(established.protocol_version, "2026-07-28");

    // The fixture rejects a modern request whose headers do not mirror its
    // body (-32020), so an answer proves the headers.
    let echo = result(
        &connection,
        "tools/call",
        modern(&json!({"name": "echo", "arguments": {"message": "hi"}})),
    )
    .await;
    assert_eq!(text(&echo), "Echo: hi");
    let sent = &recorder.posts("tools/call")[0];
    assert_eq!(sent.header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(sent.header("mcp-method"), Some("tools/call"));
    assert_eq!(sent.header("mcp-name"), Some("echo"));
    assert_eq!(sent.header(TOKEN), Some("s3cret"));
    assert!(
        recorder
            .requests()
            .iter()
            .all(|r| r.method == Method::POST && r.header("mcp-session-id").is_none()),
        "a modern connection has no session and no GET stream"
    );

    // A JSON-RPC error sent with an HTTP error status (404, 400) is the
    // call's answer, not a transport failure.
    let unknown = call(&connection, "no/such-method", modern(&json!({}))).await;
    assert_eq!(unknown.unwrap_err().code, -32601);
    let old_version = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "1900-01-01",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let refused = call(&connection, "tools/list", old_version).await;
    assert_eq!(refused.unwrap_err().code, -32022);

    // Progress arrives on the call's SSE stream, as events.
    let done = result(
        &connection,
        "tools/call",
        modern(
            &json!({"name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": 42}}),
        ),
    )
    .await;
    assert_eq!(text(&done), "done");
    for step in 1..=3 {
        let event = next_event(&mut events, STEP, |e| {
            notification(e, "notifications/progress").is_some()
        })
        .await;
        let params = notification(&event, "notifications/progress").unwrap();
        assert_eq!(params["progressToken"], 42);
        assert_eq!(params["progress"], step);
    }

    // Dropping a modern call closes its stream, which cancels it on the
    // server; no notification is sent.
    let slow = Call::new(
        "tools/call",
        serde_json::value::to_raw_value(&modern(
            &json!({"name": "slow", "arguments": {"seconds": 30}}),
        ))
        .ok(),
    );
    let abandoned =
        tokio::time::timeout(Duration::from_secs(1), connection.clone().oneshot(slow)).await;
    assert!(abandoned.is_err(), "the slow call answered early");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let count = result(
            &connection,
            "tools/call",
            modern(&json!({"name": "cancelled_count", "arguments": {}})),
        )
        .await;
        if text(&count) == "1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never saw the cancellation: {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recorder.posts("notifications/cancelled").is_empty());

    drop(connection);
    drop(upstream);
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
    assert!(events.next().await.is_none());
    assert!(
        !recorder
            .requests()
            .iter()
            .any(|r| r.method == Method::DELETE)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_unavailable() {
    let port = support::free_port();
    let (connection, _events) = network::connect(&spec(format!("http://127.0.0.1:{port}/mcp")))
        .await
        .unwrap();
    let error = connection
        .oneshot(Call::new("tools/list", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("cannot connect")),
        "{error:?}"
    );
}

/// A server closes an idle keep-alive connection (uvicorn, after one idle
/// second here). A call after that must not fail on the pooled connection the
/// server closed: it is noticed and a new one is opened.
#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_the_server_closed_while_idle_is_replaced() {
    let peer = Peer::python_on("streamable-http-json", support::free_port()).await;
    let url = format!("http://127.0.0.1:{}/mcp", peer.port);
    let (connection, _events) = network::connect(&spec(url)).await.unwrap();
    let mut upstream = connection.clone();
    let established = handshake::establish("py", &mut upstream, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    assert_eq!(established.era, Era::Modern);
    let echo = |message: &'static str| {
        let connection = connection.clone();
        async move {
            let answer = result(
                &connection,
                "tools/call",
                modern(&json!({"name": "echo", "arguments": {"message": message}})),
            )
            .await;
            text(&answer).to_owned()
        }
    };
    assert_eq!(echo("before").await, "Echo: before");
    // The calls so far went over one pooled connection, still open.
    let established_sockets = || {
        support::sockets_of(peer.port)
            .into_iter()
            .filter(|&(_, remote, state)| remote == peer.port && state == support::ESTABLISHED)
            .count()
    };
    assert_eq!(
        established_sockets(),
        1,
        "{:?}",
        support::sockets_of(peer.port)
    );
    assert!(!support::server_closed_a_connection(peer.port));
    // The server's keep-alive timer, not ours: wait until it closed it.
    support::wait_until_server_closed_a_connection(peer.port, STEP).await;
    assert_eq!(echo("after").await, "Echo: after");
    assert_eq!(echo("again").await, "Echo: again");
}
