//! Inbound authentication and role-based access (issue 21): API keys on
//! every HTTP face, the challenge of a refused request, a principal's
//! filtered catalog, and a denied call answered as an unknown tool.

use only1mcp_test_support::{HttpGateway, examples_config};
use serde_json::{Value, json};

use crate::init;

const MODERN: &str = "2026-07-28";

/// SHA-256 of `key`, as `auth.api_keys[].sha256` wants it.
fn digest(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// A modern POST of `method` to `url` with `token` as its bearer, if any.
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> reqwest::Response {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        req = req.header("mcp-name", name.to_owned());
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .unwrap()
}

async fn tool_names(http: &reqwest::Client, url: &str, token: &str) -> Vec<String> {
    let res = post(http, url, Some(token), "tools/list", json!({})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let mut names: Vec<String> = body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Two API keys (one by digest, one from the environment) for two roles.
fn keyed_config(top_extra: &str) -> only1mcp_test_support::ConfigDir {
    examples_config(
        "",
        &format!(
            "auth:\n  api_keys:\n    - name: ana\n      sha256: \"{}\"\n      roles: [dev]\n    - name: bob\n      env: ONLY1MCP_TEST_BOB_KEY\n      roles: [ops]\n{top_extra}",
            digest("ana-secret-key")
        ),
    )
}

#[tokio::test]
async fn every_http_face_refuses_a_request_without_a_valid_api_key() {
    init();
    let config = keyed_config("");
    let gw = HttpGateway::start_with_env(&config.path, &[("ONLY1MCP_TEST_BOB_KEY", "bob-key")]);
    let http = client();
    let mcp = gw.mcp_url();
    // The lane (HTTP/1.1 POST /mcp) and the router (/mcp/<profile>).
    for url in [mcp.clone(), format!("{mcp}/default")] {
        let missing = post(&http, &url, None, "tools/list", json!({})).await;
        assert_eq!(missing.status(), 401, "{url}");
        assert_eq!(missing.headers()["www-authenticate"], "Bearer", "{url}");
        let wrong = post(&http, &url, Some("not-a-key"), "tools/list", json!({})).await;
        assert_eq!(wrong.status(), 401, "{url}");
        let challenge = wrong.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        for key in ["ana-secret-key", "bob-key"] {
            let ok = post(&http, &url, Some(key), "tools/list", json!({})).await;
            assert_eq!(ok.status(), 200, "{url} {key}");
        }
    }
    // HTTP+SSE, its message endpoint, and WebSocket.
    let sse = http.get(format!("{}/sse", gw.base)).send().await.unwrap();
    assert_eq!(sse.status(), 401);
    let sse = http
        .get(format!("{}/sse", gw.base))
        .bearer_auth("ana-secret-key")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);
    let messages = http
        .post(format!("{}/messages?sessionId=x", gw.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 401);
    let ws = http
        .get(format!("{}/ws", gw.base))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(ws.status(), 401);
    // Without OAuth, no resource metadata is served.
    let meta = http
        .get(format!("{}/.well-known/oauth-protected-resource", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.status(), 404);
    let log = gw.log();
    assert!(
        !log.contains("ana-secret-key") && !log.contains("bob-key"),
        "{log}"
    );
}

#[tokio::test]
async fn a_legacy_session_belongs_to_the_principal_that_opened_it() {
    init();
    let config = keyed_config("");
    let gw = HttpGateway::start_with_env(&config.path, &[("ONLY1MCP_TEST_BOB_KEY", "bob-key")]);
    let http = client();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let opened = http
        .post(gw.mcp_url())
        .bearer_auth("ana-secret-key")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = |key: &'static str| {
        http.post(gw.mcp_url())
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session.clone())
            .header("mcp-protocol-version", "2025-11-25")
            .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
            .send()
    };
    assert_eq!(list("ana-secret-key").await.unwrap().status(), 200);
    // Bob's valid key does not reach Ana's session: it is not found.
    assert_eq!(list("bob-key").await.unwrap().status(), 404);
}

#[tokio::test]
async fn two_principals_see_and_call_what_their_roles_allow() {
    init();
    let roles = "  default_deny: true\n  roles:\n    dev:\n      allow: [\"server:arith\", \"tool:echo__echo\"]\n      deny: [\"tool:arith__multiply\"]\n    ops:\n      allow: [\"server:echo\"]\n";
    let config = keyed_config(roles);
    let gw = HttpGateway::start_with_env(&config.path, &[("ONLY1MCP_TEST_BOB_KEY", "bob-key")]);
    let http = client();
    let mcp = gw.mcp_url();
    let ana = tool_names(&http, &mcp, "ana-secret-key").await;
    assert!(ana.contains(&"arith__add".to_owned()), "{ana:?}");
    assert!(ana.contains(&"echo__echo".to_owned()), "{ana:?}");
    assert!(!ana.contains(&"arith__multiply".to_owned()), "{ana:?}");
    assert!(!ana.contains(&"echo__reverse".to_owned()), "{ana:?}");
    let bob = tool_names(&http, &mcp, "bob-key").await;
    assert!(bob.iter().all(|n| n.starts_with("echo__")), "{bob:?}");
    assert!(bob.contains(&"echo__reverse".to_owned()), "{bob:?}");
    // Allowed: answered by the backend.
    let add = post(
        &http,
        &mcp,
        Some("ana-secret-key"),
        "tools/call",
        json!({"name": "arith__add", "arguments": {"a": 2, "b": 40}}),
    )
    .await;
    let add: Value = add.json().await.unwrap();
    assert_eq!(add["result"]["content"][0]["text"], "42", "{add}");
    // Denied (deny wins over the server's allow), and a name that exists
    // nowhere: the two answers are the same but for the name.
    let call = |name: &'static str| {
        post(
            &http,
            &mcp,
            Some("ana-secret-key"),
            "tools/call",
            json!({"name": name, "arguments": {"a": 6, "b": 7}}),
        )
    };
    let denied = call("arith__multiply").await;
    let denied_status = denied.status();
    let denied: Value = denied.json().await.unwrap();
    let unknown = call("arith__nosuchtool").await;
    let unknown_status = unknown.status();
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(denied_status, unknown_status);
    assert_eq!(
        denied["error"]["code"], unknown["error"]["code"],
        "{denied} {unknown}"
    );
    assert_eq!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .replace("arith__multiply", "NAME"),
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .replace("arith__nosuchtool", "NAME"),
    );
    assert_eq!(denied["error"].get("data"), unknown["error"].get("data"));
    // What Ana may not call, Bob may: it exists, and works for him.
    let reverse = |key: &'static str| {
        post(
            &http,
            &mcp,
            Some(key),
            "tools/call",
            json!({"name": "echo__reverse", "arguments": {"text": "abc"}}),
        )
    };
    let bob_reverses: Value = reverse("bob-key").await.json().await.unwrap();
    assert_eq!(
        bob_reverses["result"]["content"][0]["text"], "cba",
        "{bob_reverses}"
    );
    let ana_reverses: Value = reverse("ana-secret-key").await.json().await.unwrap();
    assert_eq!(
        ana_reverses["error"]["code"], unknown["error"]["code"],
        "{ana_reverses}"
    );
}
