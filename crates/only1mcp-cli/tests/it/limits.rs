//! The bounds of `limits:` and `http:` against the real binary: each
//! reproduces an attack of issue 17 at a scale that runs in seconds and
//! asserts what happens at the bound, that memory stays under a stated
//! ceiling, and that the gateway keeps serving another client meanwhile.

use only1mcp_test_support::{self as support, Gateway, HttpGateway, examples_config};
use serde_json::{Value, json};

use crate::init;

/// How many requests the backend `server` has been sent (admin API).
async fn backend_requests(admin: &str, token: &str, server: &str) -> u64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let servers: Value = reqwest::Client::new()
        .get(format!("{admin}/servers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == server)
        .unwrap_or_else(|| panic!("{servers}"));
    entry["requests"].as_u64().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A batch of `n` `echo__echo` calls.
fn echo_batch(n: usize) -> String {
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": format!("b{i}")}}})
        })
        .collect();
    Value::Array(entries).to_string()
}

/// `limits.max_batch` (default 64) on stdio: a batch of 65 is refused whole
/// with one -32600 answer and none of it reaches a backend; 64 run. The
/// attack of issue 17 (a 4 MB batch of 80,000 `tools/list`, which built a
/// 149 MB answer) gets the same one answer, and the gateway's RSS grows by
/// less than 64 MiB.
#[test]
fn batches_over_max_batch_are_refused_whole() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let init = gateway.request(
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    let rt = runtime();
    let (admin, token) = (gateway.admin_url(), gateway.admin_token());
    let echo_requests = || rt.block_on(backend_requests(&admin, &token, "echo"));
    let before = echo_requests();

    gateway.send_raw(echo_batch(65).as_bytes());
    let refused = gateway.recv();
    assert_eq!(refused["id"], Value::Null, "{refused}");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("limits.max_batch"), "{message}");
    assert_eq!(echo_requests(), before, "part of a refused batch ran");

    gateway.send_raw(echo_batch(64).as_bytes());
    let answers = gateway.recv();
    assert_eq!(answers.as_array().map(Vec::len), Some(64), "{answers}");
    assert_eq!(echo_requests(), before + 64);

    let baseline = support::rss_kib(gateway.pid());
    let entry = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let attack = format!("[{}]", vec![entry; 80_000].join(","));
    assert!(attack.len() < 4 * 1024 * 1024, "{}", attack.len());
    gateway.send_raw(attack.as_bytes());
    let refused = gateway.recv();
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let grown = support::rss_kib(gateway.pid()).saturating_sub(baseline);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    // The session goes on.
    let echo = gateway.call_tool("echo__echo", json!({"text": "still here"}));
    assert_eq!(support::text(&echo), "still here");
}

/// On Streamable HTTP a batch over `limits.max_batch` (here 3) is a 400
/// with the same one error; a batch at the limit runs.
#[tokio::test]
async fn http_batches_over_max_batch_get_400() {
    init();
    let config = examples_config("", "limits:\n  max_batch: 3\n");
    let gw = HttpGateway::start(&config.path);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let post = |body: String, session: Option<&str>| {
        let mut req = http
            .post(gw.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(session) = session {
            req = req
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-03-26");
        }
        req.body(body).send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}});
    let res = post(init.to_string(), None).await.unwrap();
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let (admin, token) = (gw.admin_url(), gw.admin_token());
    let before = backend_requests(&admin, &token, "echo").await;
    let res = post(echo_batch(4), Some(&session)).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(body["id"], Value::Null, "{body}");
    assert_eq!(backend_requests(&admin, &token, "echo").await, before);
    let res = post(echo_batch(3), Some(&session)).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
}
