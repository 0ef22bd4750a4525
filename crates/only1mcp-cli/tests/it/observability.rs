//! Metrics and health endpoints (issue 20): the real gateway binary serving
//! HTTP, real example servers behind it, the Prometheus page and the probes
//! read over real sockets.

use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, HttpGateway, config};
use serde_json::{Value, json};

use crate::init;

const MODERN: &str = "2026-07-28";
const SCRAPE_TOKEN: &str = "scrape-only-token-1234";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// A config of the echo server (its extra `server` lines indented under
/// it), with `top` first.
fn echo_config(top: &str, server: &str) -> support::ConfigDir {
    config(&format!(
        "{top}\nservers:\n  echo:\n    command: {}\n{server}",
        support::quote(&support::example_server("only1mcp-echo-server"))
    ))
}

/// A modern `tools/call` of `name` over Streamable HTTP; its JSON answer.
async fn call(http: &reqwest::Client, gw: &HttpGateway, name: &str, arguments: Value) -> Value {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta}});
    let res = http
        .post(gw.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

/// The admin API's `/metrics` page, read with `token`.
async fn scrape(http: &reqwest::Client, gw: &HttpGateway, token: &str) -> String {
    let res = http
        .get(format!("{}/metrics", gw.admin_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    res.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly) on `page`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn the_metrics_page_counts_calls_by_server_tool_and_outcome() {
    init();
    let config = echo_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    for n in 0..3 {
        let answer = call(&http, &gw, "echo__echo", json!({"text": format!("hi {n}")})).await;
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("hi {n}"),
            "{answer}"
        );
    }
    // A JSON-RPC error of the backend's own: a missing argument.
    let answer = call(&http, &gw, "echo__echo", json!({})).await;
    assert!(
        answer.get("error").is_some() || answer["result"]["isError"] == true,
        "{answer}"
    );
    let page = scrape(&http, &gw, &gw.admin_token()).await;
    let client_ops = "mcp_client_operation_duration_seconds_count{server=\"echo\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo__echo\"";
    assert_eq!(
        sample(&page, &format!("{client_ops},error_type=\"\"}}")),
        Some(3.0),
        "{page}"
    );
    let failed: f64 = page
        .lines()
        .filter(|l| l.starts_with(client_ops) && !l.contains("error_type=\"\"}"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(failed, 1.0, "{page}");
    assert_eq!(
        sample(
            &page,
            "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",error_type=\"\"}"
        ),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "only1mcp_backend_up{server=\"echo\",state=\"ready\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&page, "only1mcp_catalog_items{kind=\"tools\"}").unwrap() >= 2.0);
    assert_eq!(
        sample(&page, "only1mcp_backend_restarts_total{server=\"echo\"}"),
        Some(0.0)
    );
    // The buckets go up to the call count.
    let inf = "mcp_client_operation_duration_seconds_bucket{server=\"echo\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo__echo\",error_type=\"\",le=\"+Inf\"}";
    assert_eq!(sample(&page, inf), Some(3.0));
    // A backend that exits is counted as restarted once it is back.
    let _ = call(&http, &gw, "echo__crash", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = scrape(&http, &gw, &gw.admin_token()).await;
        if sample(&page, "only1mcp_backend_restarts_total{server=\"echo\"}") == Some(1.0)
            && sample(
                &page,
                "only1mcp_backend_up{server=\"echo\",state=\"ready\"}",
            ) == Some(1.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no restart counted:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_metrics_token_reads_the_page_and_nothing_else() {
    init();
    let config = echo_config(
        &format!("metrics:\n  path: /metrics\n  token: {SCRAPE_TOKEN}\n"),
        "",
    );
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let admin = gw.admin_url();
    let status = |url: String, token: Option<&'static str>| {
        let http = http.clone();
        async move {
            let mut req = http.get(url);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    // On the admin listener: the scrape token reads /metrics only.
    assert_eq!(
        status(format!("{admin}/metrics"), Some(SCRAPE_TOKEN)).await,
        200
    );
    assert_eq!(
        status(format!("{admin}/servers"), Some(SCRAPE_TOKEN)).await,
        401
    );
    assert_eq!(status(format!("{admin}/metrics"), None).await, 401);
    assert_eq!(
        status(format!("{admin}/metrics"), Some("wrong-token-wrong-token")).await,
        401
    );
    // On the MCP listener, at metrics.path, behind the same token.
    let page = http
        .get(format!("{}/metrics", gw.base))
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("only1mcp_backend_up{server=\"echo\"")
    );
    assert_eq!(status(format!("{}/metrics", gw.base), None).await, 401);
}

#[tokio::test]
async fn metrics_off_serve_no_page() {
    init();
    let config = echo_config("metrics:\n  enabled: false\n  path: /metrics\n", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let res = http
        .get(format!("{}/metrics", gw.admin_url()))
        .bearer_auth(gw.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Calls go on as ever.
    let answer = call(&http, &gw, "echo__echo", json!({"text": "still"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "still");
}

#[tokio::test]
async fn unknown_tool_names_leave_the_series_count_bounded() {
    init();
    let config = echo_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let _ = call(&http, &gw, "echo__echo", json!({"text": "x"})).await;
    let series = |page: &str| page.lines().filter(|l| !l.starts_with('#')).count();
    let before = scrape(&http, &gw, &gw.admin_token()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    for n in 0..10_000u32 {
        let name = format!("no-such-tool-{:08x}", n.wrapping_mul(2_654_435_761));
        let answer = call(&http, &gw, &name, json!({})).await;
        assert!(answer.get("error").is_some(), "{answer}");
        assert!(
            Instant::now() < deadline,
            "10,000 calls took over two minutes"
        );
    }
    let after = scrape(&http, &gw, &gw.admin_token()).await;
    assert!(
        !after.contains("no-such-tool"),
        "a name no catalog holds became a label"
    );
    // The refusals add one error type to the client-facing tools/call
    // histogram (22 lines) and nothing per name.
    assert!(
        series(&after) <= series(&before) + 22,
        "{} series after, {} before",
        series(&after),
        series(&before)
    );
    let refused = after
        .lines()
        .filter(|l| {
            l.starts_with(
                "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\"",
            ) && !l.contains("error_type=\"\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum::<f64>();
    assert_eq!(refused, 10_000.0);
}

/// `GET url`: the status and the JSON body.
async fn probe(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn readyz_waits_for_the_required_servers() {
    init();
    let config = echo_config(
        "defaults:\n  startup_timeout: 1s\n",
        &format!(
            "    required: true\n    env:\n      ONLY1MCP_EXAMPLE_START_AFTER: {}\n  spare:\n    command: {}\n    env:\n      ONLY1MCP_EXAMPLE_STARTUP_FAIL: \"1\"\n",
            support::quote(&std::env::temp_dir().join("never").join("x")),
            support::quote(&support::example_server("only1mcp-arith-server")),
        ),
    );
    // The start file is written into the config dir once the probe said
    // "not ready".
    let start_file = config.dir.path().join("go");
    let yaml = std::fs::read_to_string(&config.path).unwrap().replace(
        &support::quote(&std::env::temp_dir().join("never").join("x")),
        &support::quote(&start_file),
    );
    std::fs::write(&config.path, yaml).unwrap();
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let (status, body) = probe(&http, &format!("{}/healthz", gw.base)).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    let (status, body) = probe(&http, &format!("{}/readyz", gw.base)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    assert!(body["reason"].as_str().unwrap().contains("echo"), "{body}");
    assert!(body["servers"]["echo"].is_string(), "{body}");
    // A server that is not required and fails does not hold readiness.
    assert!(body["servers"].get("spare").is_none(), "{body}");
    std::fs::write(&start_file, b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = probe(&http, &format!("{}/readyz", gw.base)).await;
        if status == 200 {
            assert_eq!(body["status"], "ready");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn probes_answer_whatever_the_host() {
    init();
    let config = echo_config("", "");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    // A kubelet names the pod's address; the MCP routes refuse such a Host.
    let res = http
        .get(format!("{}/healthz", gw.base))
        .header("host", "10.1.2.3:7331")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/readyz", gw.base))
        .header("host", "10.1.2.3:7331")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/mcp", gw.base))
        .header("host", "10.1.2.3:7331")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
