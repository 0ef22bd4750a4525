//! The HTTP face: Streamable HTTP (both eras), HTTP+SSE and WebSocket, with
//! real clients (the Python SDK, the TypeScript SDK) and raw HTTP.

use std::time::Duration;

use only1mcp_test_support::{self as support, HttpGateway, examples_config, python_client};
use serde_json::{Value, json};

use crate::init;

const MODERN: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// A POST to /mcp with the headers a modern client sends.
fn modern_post(
    http: &reqwest::Client,
    gw: &HttpGateway,
    method: &str,
    name: Option<&str>,
    params: Value,
) -> reqwest::RequestBuilder {
    let mut req = http
        .post(gw.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = name {
        req = req.header("mcp-name", name);
    }
    req.body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
}

/// Parses an SSE body into its `data:` payloads.
fn sse_messages(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                .collect();
            (!data.is_empty() && !data.concat().is_empty())
                .then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

fn python(mode: &str, flag: &str, url: &str, ops: &Value) -> Value {
    python_client(mode, &[flag, url], ops, &[])
}

#[test]
fn python_sdk_clients_of_both_eras_use_the_http_face() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let ops = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "arith__add", "arguments": {"a": 2, "b": 40}},
        {"op": "call_tool", "name": "echo__reverse", "arguments": {"text": "abc"}},
    ]);
    for mode in ["legacy", MODERN] {
        let out = python(mode, "--url", &gw.mcp_url(), &ops);
        let expected_version = if mode == "legacy" {
            "2025-11-25"
        } else {
            MODERN
        };
        assert_eq!(out["protocol_version"], expected_version, "{out}");
        assert_eq!(out["results"][0].as_array().unwrap().len(), 11, "{out}");
        assert_eq!(out["results"][1]["content"][0]["text"], "42", "{out}");
        assert_eq!(out["results"][2]["content"][0]["text"], "cba", "{out}");
    }
    let sse = python("legacy", "--sse", &format!("{}/sse", gw.base), &ops);
    assert_eq!(sse["results"][1]["content"][0]["text"], "42", "{sse}");
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn typescript_sdk_websocket_client_calls_a_tool() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let ws = format!("{}/ws", gw.base.replace("http://", "ws://"));
    let out = support::node_script(
        "ws_client.mjs",
        &[&ws, "arith__multiply", r#"{"a":6,"b":7}"#],
    );
    assert_eq!(out["server"]["name"], "only1mcp", "{out}");
    assert!(
        out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "echo__echo"),
        "{out}"
    );
    assert_eq!(out["result"]["content"][0]["text"], "42", "{out}");
}

/// Two clients send the same progressToken to the same backend, the second
/// while the first call is in flight (it has had its first progress): the
/// gateway gives each call its own token upstream, so each client gets
/// exactly the four progress notifications of its own call (told apart by
/// their message), with its token put back, and then its answer.
#[tokio::test]
async fn two_clients_with_the_same_token_each_get_only_their_own_progress() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let (http_a, http_b) = (client(), client());
    let call = |http: &reqwest::Client, ms: u64| {
        modern_post(
            http,
            &gw,
            "tools/call",
            Some("echo__sleep"),
            json!({"name": "echo__sleep", "arguments": {"ms": ms}, "_meta": {"progressToken": "shared", "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}}),
        )
        .send()
    };
    let mut a = call(&http_a, 1600).await.unwrap();
    assert_eq!(a.headers()["content-type"], "text/event-stream");
    // A's first progress event: its call is in flight, its route registered.
    let mut a_body = String::new();
    while !sse_messages(&a_body)
        .iter()
        .any(|m| m["method"] == "notifications/progress")
    {
        let chunk = a.chunk().await.unwrap().expect("A's stream ended early");
        a_body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let b = call(&http_b, 200).await.unwrap();
    let b_body = b.text().await.unwrap();
    while let Some(chunk) = a.chunk().await.unwrap() {
        a_body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    for (body, ms) in [(a_body, 1600), (b_body, 200)] {
        let messages = sse_messages(&body);
        let progress: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .map(|m| &m["params"])
            .collect();
        let expected: Vec<Value> = (1..=4)
            .map(|step| json!({"progressToken": "shared", "progress": step, "total": 4, "message": format!("sleep {ms} ms: step {step} of 4")}))
            .collect();
        assert_eq!(
            progress,
            expected.iter().collect::<Vec<_>>(),
            "{messages:?}"
        );
        assert_eq!(messages.len(), 5, "{messages:?}");
        let last = messages.last().unwrap();
        assert_eq!(
            last["result"]["content"][0]["text"],
            format!("slept {ms} ms"),
            "{messages:?}"
        );
        assert_eq!(last["result"]["resultType"], "complete");
    }
}

#[tokio::test]
async fn modern_requests_are_checked_against_their_headers() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let ok = modern_post(&http, &gw, "tools/list", None, json!({"_meta": meta()}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers().get("mcp-session-id").is_none(),
        "the modern era has no sessions"
    );
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["result"]["resultType"], "complete");
    // A second Mcp-Method header that disagrees with the body.
    let res = modern_post(&http, &gw, "tools/list", None, json!({"_meta": meta()}))
        .header("mcp-method", "prompts/list")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], -32020);
    // Mcp-Name disagrees with params.name.
    let res = modern_post(
        &http,
        &gw,
        "tools/call",
        Some("echo__reverse"),
        json!({"name": "echo__echo", "arguments": {"text": "x"}, "_meta": meta()}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    // Unknown method: 404 with -32601.
    let res = modern_post(&http, &gw, "nope/nope", None, json!({"_meta": meta()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], -32601);
}

#[tokio::test]
async fn plain_http_serves_http1_and_h2c_clients() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (http, version) in [
        (client(), reqwest::Version::HTTP_11),
        (h2c, reqwest::Version::HTTP_2),
    ] {
        let params = json!({"name": "echo__echo", "arguments": {"text": "hi"}, "_meta": meta()});
        let res = modern_post(&http, &gw, "tools/call", Some("echo__echo"), params)
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["result"]["content"][0]["text"], "hi", "{body}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_other_sessions_go_on() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let post = |body: String| {
        http.post(gw.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
    };
    // A legacy session that must keep working throughout.
    let init = post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        session.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "{session}"
    );
    let call_echo = |text: &str| {
        post(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":text}}}).to_string())
            .header("mcp-session-id", session.as_str())
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    assert_eq!(call_echo("one").await.unwrap().status(), 200);

    // Bad Origin: 403.
    let res = post("{}".to_owned())
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // DNS rebinding: a foreign Host is refused too.
    let res = post("{}".to_owned())
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // No session id on a legacy request: 400.
    let res = post(json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // An unknown session: 404.
    let res = post(json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}).to_string())
        .header("mcp-session-id", "no-such-session")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // An oversized body: 413, answered without reading it all.
    assert_eq!(oversized_post_status(&gw.base, 10 * 1024 * 1024).await, 413);
    // Malformed JSON: a parse error.
    let res = post("{nope".to_owned()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], -32700);
    // Wrong content type: 415.
    let res = http
        .post(gw.mcp_url())
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let res = call_echo("two").await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let message = sse_messages(&text)
        .pop()
        .unwrap_or_else(|| serde_json::from_str(&text).unwrap());
    assert_eq!(message["result"]["content"][0]["text"], "two");

    // DELETE ends the session; it is then unknown.
    let res = http
        .delete(gw.mcp_url())
        .header("mcp-session-id", session.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(call_echo("three").await.unwrap().status(), 404);
}

/// Sends a POST announcing `len` body bytes over a raw socket, writes what
/// the server takes, and returns the status it answers with. (An HTTP client
/// library fails with a broken pipe when the server answers early, which is
/// exactly what a body limit should do.)
async fn oversized_post_status(base: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {len}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < len {
        match tokio::time::timeout(Duration::from_millis(500), socket.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let mut response = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status_line = String::from_utf8_lossy(&response[..n]).into_owned();
    status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// Reads SSE events from a streaming response until `pred` matches one;
/// returns the events read.
async fn read_events_until(
    res: &mut reqwest::Response,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("no SSE event within 10 s")
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event = buffer[..end].to_owned();
            buffer.drain(..end + 2);
            let done = pred(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

#[tokio::test]
async fn legacy_get_stream_carries_list_changed_and_is_resumable() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let post = |body: Value, session: Option<&str>| {
        let mut req = http
            .post(gw.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = session {
            req = req
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        req.body(body.to_string()).send()
    };
    let init = post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}), None)
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            Some(&session)
        )
        .await
        .unwrap()
        .status(),
        202
    );
    let open = |last: Option<&str>| {
        let mut req = http
            .get(gw.mcp_url())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session.as_str());
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        req.send()
    };
    let mut stream = open(None).await.unwrap();
    assert_eq!(stream.status(), 200);
    // 2025-11-25: the stream opens with a priming event (an id, empty data).
    let priming = read_events_until(&mut stream, |_| true).await;
    assert_eq!(priming, ["id: 0\ndata: "], "{priming:?}");

    // A backend's tool list changes: the session's stream says so.
    post(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo__toggle_extra","arguments":{}}}), Some(&session)).await.unwrap();
    let events = read_events_until(&mut stream, |e| {
        e.contains("notifications/tools/list_changed")
    })
    .await;
    let event = events.last().unwrap();
    assert!(event.starts_with("id: 1\n"), "{event:?}");
    drop(stream);

    // While no stream is open, the next change is kept; a reconnect with
    // Last-Event-ID replays it, and only it.
    post(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo__toggle_extra","arguments":{}}}), Some(&session)).await.unwrap();
    let mut resumed = open(Some("1")).await.unwrap();
    let replayed = read_events_until(&mut resumed, |e| e.contains("list_changed")).await;
    assert!(replayed[0].starts_with("id: 2\n"), "{replayed:?}");
    // That change was the extra tool going away again.
    let list = post(
        json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}),
        Some(&session),
    )
    .await
    .unwrap();
    let list: Value = list.json().await.unwrap();
    assert!(!list.to_string().contains("echo__extra"), "{list}");

    // GET without a session is not offered (405); DELETE of an unknown one is 404.
    let res = http
        .get(gw.mcp_url())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let res = http
        .delete(gw.mcp_url())
        .header("mcp-session-id", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn https_with_a_test_ca() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
    let tls = format!(
        "http:\n  tls:\n    cert: {}\n    key: {}\n",
        support::quote(&dir.path().join("cert.pem")),
        support::quote(&dir.path().join("key.pem"))
    );
    let config = examples_config("", &tls);
    let gw = HttpGateway::start(&config.path);
    assert!(gw.base.starts_with("https://"), "{}", gw.base);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let res = modern_post(
        &http,
        &gw,
        "tools/call",
        Some("arith__add"),
        json!({"name": "arith__add", "arguments": {"a": 1, "b": 1}, "_meta": meta()}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let message = sse_messages(&text)
        .pop()
        .unwrap_or_else(|| serde_json::from_str(&text).unwrap());
    assert_eq!(message["result"]["content"][0]["text"], "2");
    // A client that does not trust the CA fails the handshake.
    let untrusting = reqwest::Client::builder().build().unwrap();
    assert!(untrusting.get(gw.mcp_url()).send().await.is_err());
}

#[tokio::test]
async fn closing_a_modern_response_stream_cancels_the_backend_call() {
    init();
    let config = support::recording_examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let params = json!({"name": "echo__sleep", "arguments": {"ms": 20000}, "_meta": {"progressToken": "p", "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}});
    let mut res = modern_post(&http, &gw, "tools/call", Some("echo__sleep"), params)
        .send()
        .await
        .unwrap();
    // The first progress event shows the call reached the backend.
    read_events_until(&mut res, |e| e.contains("notifications/progress")).await;
    drop(res);
    let upstream = wait_recorded(&config, "echo", "the sleep call", |message| {
        message["method"] == "tools/call" && message["params"]["name"] == "sleep"
    })
    .await;
    wait_recorded(&config, "echo", "its cancellation", |message| {
        message["method"] == "notifications/cancelled"
            && message["params"]["requestId"] == upstream["id"]
    })
    .await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let params = json!({"name": "arith__sleep", "arguments": {"ms": 1500}, "_meta": {"progressToken": 1, "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}});
    let mut res = modern_post(&http, &gw, "tools/call", Some("arith__sleep"), params)
        .send()
        .await
        .unwrap();
    // The call is running on the backend; now ask the gateway to stop.
    read_events_until(&mut res, |e| e.contains("notifications/progress")).await;
    let stopped = tokio::task::spawn_blocking(move || gw.stop());
    let events = read_events_until(&mut res, |e| e.contains("\"result\"")).await;
    assert!(
        events.last().unwrap().contains("slept 1500 ms"),
        "{events:?}"
    );
    let (code, log) = stopped.await.unwrap();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn shutdown_is_not_held_by_connections_that_sent_nothing() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let addr = gw
        .mcp_url()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    // One connection that never sends a byte, one idle after a request.
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let http = client();
    let res = modern_post(&http, &gw, "tools/list", None, json!({"_meta": meta()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (code, log) = tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{log}");
    drop(silent);
}

/// Opens a legacy Streamable HTTP session; returns its id.
async fn legacy_session(http: &reqwest::Client, url: &str) -> String {
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "it", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    res.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// A POST of `body` in legacy session `session`, not sent yet.
fn legacy_post(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .body(body.to_string())
}

/// The response to one legacy POST, JSON or SSE.
async fn legacy_call(http: &reqwest::Client, url: &str, session: &str, body: Value) -> Value {
    let res = legacy_post(http, url, session, &body).send().await.unwrap();
    let sse = res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = res.text().await.unwrap();
    if sse {
        sse_messages(&text)
            .into_iter()
            .find(|m| m.get("id").is_some())
            .unwrap_or_else(|| panic!("no response in {text}"))
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Two clients use the same request ids at the same time, 1,000 each, 16
/// in flight per client, through one shared stdio backend: every answer
/// carries its request's id and its own client's text.
#[tokio::test]
async fn two_clients_with_the_same_ids_never_get_each_others_answers() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let url = gw.mcp_url();
    let sessions = [
        ("a", legacy_session(&http, &url).await),
        ("b", legacy_session(&http, &url).await),
    ];
    let mut clients = Vec::new();
    for (name, session) in sessions {
        let (http, url) = (http.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            use futures::StreamExt as _;
            let calls = futures::stream::iter(1..=1000_u32).map(|id| {
                let (http, url, session) = (&http, &url, &session);
                async move {
                    let text = format!("{name}-{id}");
                    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                        "params": {"name": "echo__echo", "arguments": {"text": text}}});
                    let answer = legacy_call(http, url, session, body).await;
                    (id, text, answer)
                }
            });
            let answers: Vec<(u32, String, Value)> = calls.buffer_unordered(16).collect().await;
            for (id, text, answer) in &answers {
                assert_eq!(answer["id"], *id, "{answer}");
                assert_eq!(answer["result"]["content"][0]["text"], *text, "{answer}");
            }
            answers.len()
        }));
    }
    for client in clients {
        assert_eq!(client.await.unwrap(), 1000);
    }
}

/// A legacy client that goes away does not cancel its request: the call goes
/// on in the background and reaches the backend's answer (ADR 0007), while
/// `notifications/cancelled` still does cancel. What the backend received
/// is read from its recording.
#[tokio::test]
async fn a_legacy_client_that_disconnects_does_not_cancel_but_cancelled_does() {
    init();
    let config = support::recording_examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let url = gw.mcp_url();
    let session = legacy_session(&http, &url).await;
    let sleep = |id: u64, ms: u64| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo__sleep","arguments":{"ms":ms}}});
    let sleep_of = |ms: u64| {
        move |message: &Value| {
            message["method"] == "tools/call"
                && message["params"]["name"] == "sleep"
                && message["params"]["arguments"]["ms"] == ms
        }
    };
    let echo_counts = || async {
        let servers: Value = http
            .get(format!("{}/servers", gw.admin_url()))
            .bearer_auth(gw.admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let echo = servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "echo")
            .cloned()
            .unwrap_or_else(|| panic!("{servers}"));
        (
            echo["requests"].as_u64().unwrap(),
            echo["in_flight"].as_u64().unwrap(),
        )
    };
    let (before, _) = echo_counts().await;

    // The client goes away once the backend has its call.
    let gave_up = {
        let (http, url, session) = (http.clone(), url.clone(), session.clone());
        tokio::spawn(async move {
            legacy_post(&http, &url, &session, &sleep(2, 1000))
                .send()
                .await
        })
    };
    wait_recorded(&config, "echo", "the 1000 ms sleep", sleep_of(1000)).await;
    assert_eq!(echo_counts().await, (before + 1, 1));
    gave_up.abort();
    assert!(gave_up.await.unwrap_err().is_cancelled());
    // The call finishes: nothing in flight any more ...
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while echo_counts().await != (before + 1, 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}\n{}",
            echo_counts().await,
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and not by a cancellation. A later call to the same backend
    // reaching it means everything sent before it has too.
    let later = legacy_call(
        &http,
        &url,
        &session,
        json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"later"}}}),
    )
    .await;
    assert_eq!(later["result"]["content"][0]["text"], "later", "{later}");
    let cancels: Vec<Value> = support::recorded(&config, "echo")
        .into_iter()
        .filter(|message| message["method"] == "notifications/cancelled")
        .collect();
    assert!(cancels.is_empty(), "{cancels:?}");

    // notifications/cancelled does cancel: the backend is told and the
    // waiting POST gets an error.
    let call = {
        let (http, url, session) = (http.clone(), url.clone(), session.clone());
        tokio::spawn(async move { legacy_call(&http, &url, &session, sleep(3, 20000)).await })
    };
    let upstream = wait_recorded(&config, "echo", "the 20000 ms sleep", sleep_of(20000)).await;
    let cancel = legacy_post(
        &http,
        &url,
        &session,
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(cancel.status(), 202);
    let answer = call.await.unwrap();
    assert_eq!(answer["id"], 3, "{answer}");
    assert!(answer["error"]["message"].as_str().is_some(), "{answer}");
    wait_recorded(&config, "echo", "the cancellation", |message| {
        message["method"] == "notifications/cancelled"
            && message["params"]["requestId"] == upstream["id"]
    })
    .await;
}

/// Waits, without blocking the test's runtime, until example server
/// `server` of a recording config has received a message `matches` holds
/// for, and returns it.
async fn wait_recorded(
    config: &support::ConfigDir,
    server: &str,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let messages = support::recorded(config, server);
        if let Some(found) = messages.iter().find(|message| matches(message)) {
            return found.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{server} never received {what}: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages larger than one read of the WebSocket face's socket (8 KiB)
/// arrive whole, in both directions, and the connection goes on.
#[tokio::test]
async fn websocket_messages_larger_than_one_read_arrive_whole() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let mut request = format!("{}/ws", gw.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut call = async |message: Value| -> Value {
        socket.send(Ws::text(message.to_string())).await.unwrap();
        loop {
            match socket.next().await.unwrap().unwrap() {
                Ws::Text(text) => {
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    if answer.get("id") == message.get("id") {
                        return answer;
                    }
                }
                Ws::Ping(_) | Ws::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    };
    let init = call(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})).await;
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    let text: String = (0..200_000u32)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect();
    let answer = call(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":text}}})).await;
    assert_eq!(answer["result"]["content"][0]["text"], text.as_str());
    let answer = call(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"small"}}})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "small");
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, n: usize) {
    use tokio::io::AsyncReadExt as _;
    while buf.len() < n {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within 10 s; have {:?}",
                    String::from_utf8_lossy(buf)
                )
            })
            .unwrap();
        assert!(read > 0, "closed early: {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..read]);
    }
}

/// Takes one HTTP/1.1 response off a raw connection (`buf` holds what was
/// read and not yet taken): its head, in lower case, and its body, framed by
/// `content-length` or chunked.
async fn take_response(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> (String, String) {
    let find = |buf: &[u8], from: usize, what: &[u8]| {
        buf[from..]
            .windows(what.len())
            .position(|w| w == what)
            .map(|at| from + at)
    };
    // An earlier read may already hold this whole response.
    let mut end = find(buf, 0, b"\r\n\r\n");
    while end.is_none() {
        let n = buf.len() + 1;
        fill(tcp, buf, n).await;
        end = find(buf, 0, b"\r\n\r\n");
    }
    let end = end.unwrap() + 4;
    let head = String::from_utf8(buf.drain(..end).collect())
        .unwrap()
        .to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let len: usize = len.parse().unwrap();
        fill(tcp, buf, len).await;
        body = buf.drain(..len).collect();
    } else if head.contains("transfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(at) = find(buf, 0, b"\r\n") {
                    break at;
                }
                let n = buf.len() + 1;
                fill(tcp, buf, n).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            fill(tcp, buf, line_end + 2 + size + 2).await;
            body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    (head, String::from_utf8(body).unwrap())
}

/// A gateway on the (recording) example servers and a legacy session on it,
/// for the HTTP/1.1 tests that write their requests by hand.
struct RawPosts {
    config: support::ConfigDir,
    _gw: HttpGateway,
    addr: String,
    session: String,
}

impl RawPosts {
    async fn start() -> Self {
        Self::start_with("").await
    }

    /// With `top` at the top of the configuration.
    async fn start_with(top: &str) -> Self {
        init();
        let config = support::recording_examples_config("", top);
        let gw = HttpGateway::start(&config.path);
        let session = legacy_session(&client(), &gw.mcp_url()).await;
        let addr = gw.base.trim_start_matches("http://").to_owned();
        Self {
            config,
            _gw: gw,
            addr,
            session,
        }
    }

    /// A `POST /mcp` calling echo with `t{id}`, with `extra` header lines.
    fn post(&self, id: u64, extra: &str) -> Vec<u8> {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": format!("t{id}")}}});
        self.request(&call, extra)
    }

    /// A `POST /mcp` of `message`, with `extra` header lines.
    fn request(&self, message: &Value, extra: &str) -> Vec<u8> {
        let body = message.to_string();
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n\
             MCP-Protocol-Version: 2025-11-25\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            self.session,
            body.len()
        )
        .into_bytes()
    }

    async fn connect(&self) -> tokio::net::TcpStream {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp
    }
}

/// Asserts a 200 whose JSON body answers request `id`.
fn assert_echoed(response: &(String, String), id: u64) {
    let (head, body) = response;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}{body}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"],
        format!("t{id}"),
        "{body}"
    );
}

#[tokio::test]
async fn http1_requests_pipelined_split_or_closing_are_answered_in_order() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let raw = RawPosts::start().await;
    let mut tcp = raw.connect().await;
    let mut buf = Vec::new();
    // Three requests in one write: three answers, in order.
    let pipelined = [raw.post(1, ""), raw.post(2, ""), raw.post(3, "")].concat();
    tcp.write_all(&pipelined).await.unwrap();
    for id in 1..=3 {
        assert_echoed(&take_response(&mut tcp, &mut buf).await, id);
    }
    // One request in 17-byte pieces, cut inside its head and its body.
    for piece in raw.post(4, "").chunks(17) {
        tcp.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 4);
    // The next request arrives while the one before is still being answered
    // (the backend has it).
    let sleep = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "echo__sleep", "arguments": {"ms": 300}}});
    tcp.write_all(&raw.request(&sleep, "")).await.unwrap();
    wait_recorded(&raw.config, "echo", "the sleep call", |message| {
        message["params"]["name"] == "sleep"
    })
    .await;
    tcp.write_all(&raw.post(6, "")).await.unwrap();
    let (head, body) = take_response(&mut tcp, &mut buf).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}{body}");
    assert!(body.contains("slept 300 ms"), "{body}");
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 6);
    // A 1 MiB request and its 1 MiB answer, then a small one again.
    let big = "x".repeat(1 << 20);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo__echo", "arguments": {"text": &big}}});
    tcp.write_all(&raw.request(&call, "")).await.unwrap();
    let (head, body) = take_response(&mut tcp, &mut buf).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["content"][0]["text"], big.as_str());
    tcp.write_all(&raw.post(8, "")).await.unwrap();
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 8);
    // `Connection: close`: answered, said so, and the connection ends.
    tcp.write_all(&raw.post(5, "Connection: close\r\n"))
        .await
        .unwrap();
    let response = take_response(&mut tcp, &mut buf).await;
    assert_echoed(&response, 5);
    assert!(
        response.0.contains("\r\nconnection: close\r\n"),
        "{}",
        response.0
    );
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the gateway did not close the connection")
        .unwrap();
    assert!(buf.is_empty() && rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn http1_connection_serves_any_request_after_the_common_ones() {
    use tokio::io::AsyncWriteExt as _;
    let raw = RawPosts::start().await;
    let mut tcp = raw.connect().await;
    let mut buf = Vec::new();
    tcp.write_all(&raw.post(1, "")).await.unwrap();
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 1);
    // A refused Origin: 403, and the connection goes on.
    tcp.write_all(&raw.post(2, "Origin: http://evil.example\r\n"))
        .await
        .unwrap();
    let (head, body) = take_response(&mut tcp, &mut buf).await;
    assert!(head.starts_with("http/1.1 403 "), "{head}{body}");
    // A chunked body, then another route, then a plain POST again, all on
    // the same connection.
    let post = String::from_utf8(raw.post(3, "")).unwrap();
    let (head, body) = post.split_once("\r\n\r\n").unwrap();
    let head = head.replace(
        &format!("Content-Length: {}", body.len()),
        "Transfer-Encoding: chunked",
    );
    let chunked = format!("{head}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    tcp.write_all(chunked.as_bytes()).await.unwrap();
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 3);
    let get = format!("GET /nowhere HTTP/1.1\r\nHost: {}\r\n\r\n", raw.addr);
    tcp.write_all(get.as_bytes()).await.unwrap();
    let (head, _) = take_response(&mut tcp, &mut buf).await;
    assert!(head.starts_with("http/1.1 404 "), "{head}");
    tcp.write_all(&raw.post(4, "")).await.unwrap();
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 4);
    // A malformed head: 400.
    let mut bad = raw.connect().await;
    bad.write_all(b"POST /mcp HTTP/1.1\r\nno colon here\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = take_response(&mut bad, &mut Vec::new()).await;
    assert!(head.starts_with("http/1.1 400 "), "{head}");
}

/// `http.read_timeout`: a connection that sends no whole request within it
/// of being ready for one is closed, idle or part-way through a head, on the
/// lane and on hyper's side; a request already read is answered however long
/// its backend takes, and the connection then has the whole timeout again.
#[tokio::test]
async fn connections_that_send_no_whole_request_in_read_timeout_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    // Long enough that a loaded machine's scheduling does not reach it
    // between an answer and the next request.
    const TIMEOUT: Duration = Duration::from_secs(1);
    let raw = RawPosts::start_with("http:\n  read_timeout: 1s\n").await;
    let started = tokio::time::Instant::now();
    let idle = raw.connect().await;
    let mut half = raw.connect().await;
    half.write_all(&raw.post(1, "")[..40]).await.unwrap();
    // Answered by hyper (404), then half a head: hyper's own timeout.
    let mut handed = raw.connect().await;
    let get = format!("GET /nowhere HTTP/1.1\r\nHost: {}\r\n\r\n", raw.addr);
    handed.write_all(get.as_bytes()).await.unwrap();
    let (head, _) = take_response(&mut handed, &mut Vec::new()).await;
    assert!(head.starts_with("http/1.1 404 "), "{head}");
    handed.write_all(&raw.post(2, "")[..40]).await.unwrap();
    for (what, tcp) in [("idle", idle), ("half a head", half), ("hyper's", handed)] {
        assert_closed(what, tcp).await;
        assert!(started.elapsed() >= TIMEOUT, "{what} closed too soon");
    }
    // A call that takes two and a half timeouts is answered, and the
    // connection then serves the next request; left idle after that, it
    // closes.
    let mut tcp = raw.connect().await;
    let mut buf = Vec::new();
    let sleep = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "echo__sleep", "arguments": {"ms": 2500}}});
    tcp.write_all(&raw.request(&sleep, "")).await.unwrap();
    let (head, body) = take_response(&mut tcp, &mut buf).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}{body}");
    assert!(body.contains("slept 2500 ms"), "{body}");
    let asked = tokio::time::Instant::now();
    tcp.write_all(&raw.post(3, "")).await.unwrap();
    assert_echoed(&take_response(&mut tcp, &mut buf).await, 3);
    assert_closed("kept alive", tcp).await;
    assert!(
        asked.elapsed() >= TIMEOUT,
        "closed too soon after an answer"
    );
}

/// Asserts the gateway closes `tcp` (within ten seconds) without sending
/// anything more.
async fn assert_closed(what: &str, mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt as _;
    let mut rest = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await {
        Ok(Ok(_)) => assert!(rest.is_empty(), "{what}: {rest:?}"),
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{what}"),
        Err(_) => panic!("{what}: the gateway did not close the connection"),
    }
}
