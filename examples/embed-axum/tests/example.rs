//! Runs the example app in front of the real example servers: its own
//! routes answer, and MCP clients of both eras use the gateway at /mcp.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::disallowed_methods, reason = "runs the example binary itself")]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use only1mcp_test_support as support;
use serde_json::{Value, json};

/// The example app; killed when dropped.
struct App(std::process::Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_app_serves_its_routes_and_the_gateway() {
    support::init(env!("CARGO_BIN_EXE_embed-axum"));
    let config = support::examples_config("", "");
    let mut child = Command::new(support::gateway_bin())
        .arg(&config.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _app = App(child);
    let base = line.trim().strip_prefix("listening ").unwrap().to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/app/status")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    // A 2026-07-28 client: one stateless POST.
    let modern: Value = http
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "arith__add")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "arith__add", "arguments": {"a": 20, "b": 22},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(support::text(&modern), "42", "{modern}");

    // A legacy client: initialize opens a session.
    let init = http
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "it", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let echoed: Value = http
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": "embedded"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(support::text(&echoed), "embedded", "{echoed}");

    // The gateway's guard covers its routes: a foreign Origin is refused.
    let foreign = http
        .post(format!("{base}/mcp"))
        .header("origin", "https://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
}
