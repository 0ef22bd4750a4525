//! `@modelcontextprotocol/server-everything` through the gateway, over stdio
//! and Streamable HTTP, with the Python SDK as the client in the legacy era
//! and in 2026-07-28: progress, paginated resources, prompt argument
//! completion, resource subscription updates and logging (issue 4).

use only1mcp_test_support::{self as support, python_client};
use serde_json::{Value, json};

use crate::init;

/// Where the backend runs.
enum Backend {
    Stdio,
    Http(u16),
}

fn config(backend: &Backend) -> support::ConfigDir {
    let server = match backend {
        Backend::Stdio => format!(
            "    command: {}",
            support::quote(&support::npm_bin("mcp-server-everything"))
        ),
        Backend::Http(port) => format!("    url: http://127.0.0.1:{port}/mcp"),
    };
    // A small page size: the client must page through the merged lists.
    support::config(&format!(
        "defaults:\n  page_size: 2\nservers:\n  everything:\n{server}\n"
    ))
}

fn uris(resources: &Value) -> Vec<String> {
    let mut uris: Vec<String> = resources
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {resources}"))
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect();
    uris.sort();
    uris
}

fn received<'a>(out: &'a Value, kind: &str) -> Vec<&'a Value> {
    out["received"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The URIs server-everything lists when asked directly.
fn direct_resource_uris() -> Vec<String> {
    let everything = support::npm_bin("mcp-server-everything");
    let out = python_client(
        "legacy",
        &["--", everything.to_str().unwrap()],
        &json!([{"op": "list_resources"}]),
        &[],
    );
    uris(&out["results"][0])
}

fn common_ops() -> Vec<Value> {
    vec![
        json!({"op": "call_tool", "name": "everything__trigger-long-running-operation", "arguments": {"duration": 0.3, "steps": 3}, "progress": true}),
        json!({"op": "list_resources"}),
        json!({"op": "complete", "prompt": "everything__completable-prompt", "argument": {"name": "department", "value": "E"}}),
        json!({"op": "complete", "prompt": "everything__completable-prompt", "argument": {"name": "name", "value": ""}, "context": {"department": "Sales"}}),
        json!({"op": "call_tool", "name": "everything__toggle-simulated-logging", "arguments": {}}),
    ]
}

/// `log_in_band`: whether the backend's log message is sure to arrive
/// while the call is in flight. Over stdio it is written before the
/// answer; server-everything over Streamable HTTP sends it on its own GET
/// stream, which may deliver it after the answer, when no request of a
/// client is there to take it (the gateway never hands a shared backend's
/// log line to a client whose call did not cause it).
fn check_common(label: &str, out: &Value, results: &[Value], direct: &[String], log_in_band: bool) {
    // Progress of the long-running operation, with the client's own token.
    let progress = received(out, "progress");
    assert_eq!(progress.len(), 3, "{label}: {:?}", out["received"]);
    assert_eq!(progress[2]["params"]["progress"], 3.0, "{label}");
    assert_eq!(progress[2]["params"]["total"], 3.0, "{label}");
    assert!(
        results[0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Long running operation completed"),
        "{label}: {}",
        results[0]
    );
    // Every resource, paged through the gateway 2 at a time, exactly once.
    let listed = results[1].as_array().unwrap();
    let through = uris(&results[1]);
    let unique: std::collections::BTreeSet<&String> = through.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "{label}: a resource came twice: {through:?}"
    );
    assert_eq!(through, direct, "{label}");
    assert!(listed.len() > 2, "{label}: the list fits one page");
    // Completion routed to the prompt's owner, with context arguments.
    assert_eq!(
        results[2]["completion"]["values"],
        json!(["Engineering"]),
        "{label}"
    );
    assert_eq!(
        results[3]["completion"]["values"],
        json!(["David", "Eve", "Frank"]),
        "{label}"
    );
    // The log message the backend sends while the call is in flight.
    let logs = received(out, "log");
    if log_in_band {
        assert!(
            !logs.is_empty(),
            "{label}: no log message: {:?}",
            out["received"]
        );
    }
}

fn run_all(backend: &Backend) {
    let config = config(backend);
    let direct = direct_resource_uris();
    let log_in_band = matches!(backend, Backend::Stdio);

    // Legacy: logging/setLevel, resources/subscribe.
    let mut ops = vec![json!({"op": "set_logging_level", "level": "debug"})];
    ops.extend(common_ops());
    ops.push(json!({"op": "subscribe_resource", "uri": direct[0]}));
    ops.push(json!({"op": "call_tool", "name": "everything__toggle-subscriber-updates", "arguments": {}}));
    ops.push(json!({"op": "sleep", "seconds": 1}));
    let out = support::python_through_gateway("legacy", &[], &config.path, &Value::Array(ops));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results[0], json!({}), "setLevel: {out}");
    check_common("legacy", &out, &results[1..], &direct, log_in_band);
    let updates: Vec<&Value> = received(&out, "notification")
        .into_iter()
        .filter(|n| n["method"] == "notifications/resources/updated")
        .collect();
    assert!(
        !updates.is_empty(),
        "no resource update: {:?}",
        out["received"]
    );
    assert!(
        updates.iter().all(|n| n["params"]["uri"] == direct[0]),
        "{updates:?}"
    );

    // 2026-07-28: the log level travels in each request's _meta.
    let out = support::python_through_gateway(
        "2026-07-28",
        &["--log-level", "debug"],
        &config.path,
        &Value::Array(common_ops()),
    );
    let results = out["results"].as_array().unwrap();
    check_common("2026-07-28", &out, results, &direct, log_in_band);
}

#[test]
fn server_everything_over_stdio_serves_both_eras_through_the_gateway() {
    init();
    run_all(&Backend::Stdio);
}

#[test]
fn server_everything_over_http_serves_both_eras_through_the_gateway() {
    init();
    let port = support::free_port();
    let _peer = support::start_peer(
        &support::npm_bin("mcp-server-everything"),
        &["streamableHttp"],
        &[("PORT", &port.to_string())],
        port,
    );
    run_all(&Backend::Http(port));
}
