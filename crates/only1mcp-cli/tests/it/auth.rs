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

/// The canonical resource URI the OAuth tests configure (any URI will do:
/// it is what tokens must be for, not where the gateway listens).
const RESOURCE: &str = "http://gw.test/mcp";

/// npm's `oidc-provider` on `port` (tests/js/oidc_provider.mjs), signing with
/// the keys in `keys` (made if missing).
fn start_oidc(port: u16, keys: &std::path::Path) -> only1mcp_test_support::Peer {
    let node22 = only1mcp_test_support::peers().join("node22/node_modules/node/bin/node");
    let script =
        only1mcp_test_support::workspace().join("crates/only1mcp-cli/tests/js/oidc_provider.mjs");
    let peers = only1mcp_test_support::peers();
    only1mcp_test_support::start_peer(
        &node22,
        &[
            script.to_str().unwrap(),
            &port.to_string(),
            keys.to_str().unwrap(),
        ],
        &[("ONLY1MCP_PEERS", peers.to_str().unwrap())],
        port,
    )
}

/// An access token of `client` (client credentials) for `resource`.
async fn token(http: &reqwest::Client, issuer: &str, client: &str, resource: &str) -> String {
    let res = http
        .post(format!("{issuer}/token"))
        .basic_auth(client, Some(format!("{client}-secret")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope=mcp%3Atools&resource={}",
            resource.replace(':', "%3A").replace('/', "%2F")
        ))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// A token's three parts, the first two decoded.
fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let header = serde_json::from_slice(&unb64(it.next().unwrap())).unwrap();
    let payload = serde_json::from_slice(&unb64(it.next().unwrap())).unwrap();
    (header, payload, it.next().unwrap().to_owned())
}

/// Whether `token` is refused on /mcp with 401 `invalid_token`.
async fn refused(http: &reqwest::Client, url: &str, token: &str) -> bool {
    let res = post(http, url, Some(token), "tools/list", json!({})).await;
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    res.status() == 401 && challenge.contains("error=\"invalid_token\"")
}

#[tokio::test]
async fn jwts_of_a_real_openid_provider_are_checked_as_the_mcp_spec_asks() {
    init();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("keys.json");
    let (port, other_port) = (
        only1mcp_test_support::free_port(),
        only1mcp_test_support::free_port(),
    );
    let _oidc = start_oidc(port, &key_file);
    // Another issuer signing with the very same key.
    let _other = start_oidc(other_port, &key_file);
    let issuer = format!("http://127.0.0.1:{port}");
    let config = examples_config(
        "",
        &format!(
            "auth:\n  oauth:\n    issuer: {issuer}\n    resource: {RESOURCE}\n    leeway: 0s\n  default_deny: true\n  roles:\n    dev:\n      allow: [\"server:arith\"]\n    ops:\n      allow: [\"server:echo\"]\n"
        ),
    );
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let mcp = gw.mcp_url();

    // RFC 9728 metadata, at the bare and the path-suffixed well-known URL.
    for path in ["", "/mcp"] {
        let meta: Value = http
            .get(format!(
                "{}/.well-known/oauth-protected-resource{path}",
                gw.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["resource"], RESOURCE, "{meta}");
        assert_eq!(meta["authorization_servers"], json!([issuer]), "{meta}");
    }
    let dev_meta: Value = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp/default",
            gw.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dev_meta["resource"], format!("{RESOURCE}/default"));
    // No token: 401 naming the metadata.
    let missing = post(&http, &mcp, None, "tools/list", json!({})).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer resource_metadata=\"http://gw.test/.well-known/oauth-protected-resource/mcp\""
    );

    // Two principals, two catalogs.
    let dev = token(&http, &issuer, "svc-dev", RESOURCE).await;
    let ops = token(&http, &issuer, "svc-ops", RESOURCE).await;
    let dev_tools = tool_names(&http, &mcp, &dev).await;
    let ops_tools = tool_names(&http, &mcp, &ops).await;
    assert!(
        !dev_tools.is_empty() && dev_tools.iter().all(|n| n.starts_with("arith__")),
        "{dev_tools:?}"
    );
    assert!(
        !ops_tools.is_empty() && ops_tools.iter().all(|n| n.starts_with("echo__")),
        "{ops_tools:?}"
    );
    // Cached: the same token again.
    assert_eq!(tool_names(&http, &mcp, &dev).await, dev_tools);

    // Another resource's token.
    let elsewhere = token(&http, &issuer, "svc-dev", "http://other.test/mcp").await;
    assert!(refused(&http, &mcp, &elsewhere).await, "wrong audience");
    // Another issuer's token, signed with the same key.
    let other = token(
        &http,
        &format!("http://127.0.0.1:{other_port}"),
        "svc-dev",
        RESOURCE,
    )
    .await;
    assert!(refused(&http, &mcp, &other).await, "wrong issuer");

    let (header, payload, signature) = parts(&dev);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let body = b64(payload.to_string().as_bytes());
    // alg none, no signature.
    let none = format!(
        "{}.{body}.",
        b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes())
    );
    assert!(refused(&http, &mcp, &none).await, "alg none");
    // HS256 keyed with the public key as the JWKS publishes it.
    let jwks: Value = http
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let hs_head = b64(json!({"alg": "HS256", "kid": kid}).to_string().as_bytes());
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()),
        format!("{hs_head}.{body}").as_bytes(),
    );
    let hs = format!("{hs_head}.{body}.{}", b64(mac.as_ref()));
    assert!(refused(&http, &mcp, &hs).await, "HS256 with the public key");
    // Tampered: the ops role written into the dev token.
    let mut raised = payload.clone();
    raised["roles"] = json!(["ops"]);
    let head = dev.split('.').next().unwrap();
    let tampered = format!("{head}.{}.{signature}", b64(raised.to_string().as_bytes()));
    assert!(refused(&http, &mcp, &tampered).await, "tampered");
    // A key the issuer does not publish.
    let unknown = format!(
        "{}.{body}.{signature}",
        b64(json!({"alg": "RS256", "kid": "no-such-key"})
            .to_string()
            .as_bytes())
    );
    assert!(refused(&http, &mcp, &unknown).await, "unknown kid");

    // Expired (the provider's 2 s tokens; no leeway): once the clock is past exp.
    let short = token(&http, &issuer, "svc-short", RESOURCE).await;
    let exp = parts(&short).1["exp"].as_u64().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while now() <= exp {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock never passed exp"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused(&http, &mcp, &short).await, "expired");

    // The provider rotates its key: a token signed with the new one is
    // accepted (the gateway fetches the JWKS again for the new kid).
    let rotated: Value = http
        .post(format!("{issuer}/__rotate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = token(&http, &issuer, "svc-dev", RESOURCE).await;
    assert_eq!(parts(&fresh).0["kid"], rotated["kid"]);
    assert_ne!(rotated["kid"], json!(kid));
    assert_eq!(tool_names(&http, &mcp, &fresh).await, dev_tools);
    let log = gw.log();
    assert!(
        !log.contains(&dev) && !log.contains(&fresh),
        "a token reached the log"
    );
}
