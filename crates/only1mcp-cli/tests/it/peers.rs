//! The gateway between real third-party peers: the Python MCP SDK as the
//! client, npm and PyPI reference servers as backends.

use only1mcp_test_support::{self as support, examples_config, python_client};
use serde_json::{Value, json};

use crate::init;

fn gateway_command(config: &std::path::Path) -> Vec<String> {
    vec![
        "--".to_owned(),
        support::gateway_bin().to_string_lossy().into_owned(),
        "start".to_owned(),
        "--stdio".to_owned(),
        "--config".to_owned(),
        config.to_string_lossy().into_owned(),
    ]
}

fn run(mode: &str, config: &std::path::Path, ops: &Value) -> Value {
    let command = gateway_command(config);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    python_client(mode, &command, ops, &[])
}

fn tool_names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a tool list: {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A server's `(era, status)` from `only1mcp list --json` output.
fn era_and_status(listing: &Value, server: &str) -> (Value, Value) {
    listing["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == server)
        .map(|s| (s["era"].clone(), s["status"].clone()))
        .unwrap_or_else(|| panic!("{server} missing from {listing}"))
}

fn first_text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {result}"))
}

#[test]
fn python_sdk_client_uses_npm_servers_and_an_example_server_through_the_gateway() {
    init();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("hello.txt"), "hi from a file").unwrap();
    let files_dir = files.path().canonicalize().unwrap();
    let extra = format!(
        "  files:\n    command: {}\n    args: [{}]\n  everything:\n    command: {}\n",
        support::quote(&support::npm_bin("mcp-server-filesystem")),
        support::quote(&files_dir),
        support::quote(&support::npm_bin("mcp-server-everything")),
    );
    let config = examples_config(&extra, "");
    let out = run(
        "legacy",
        &config.path,
        &json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "files__read_text_file", "arguments": {"path": files_dir.join("hello.txt")}},
            {"op": "call_tool", "name": "everything__echo", "arguments": {"message": "hi"}},
            {"op": "call_tool", "name": "echo__reverse", "arguments": {"text": "gateway"}},
        ]),
    );
    assert_eq!(out["server_name"], "only1mcp");
    let names = tool_names(&out["results"][0]);
    for expected in [
        "files__read_text_file",
        "files__list_directory",
        "everything__echo",
        "everything__get-sum",
        "echo__echo",
        "arith__add",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(first_text(&out["results"][1]), "hi from a file");
    assert_eq!(first_text(&out["results"][2]), "Echo: hi");
    assert_eq!(first_text(&out["results"][3]), "yawetag");
}

#[test]
fn a_modern_python_client_reaches_legacy_and_modern_backends() {
    init();
    let extra = format!(
        "  everything:\n    command: {}\n  time:\n    command: {}\n    args: [\"--local-timezone\", \"UTC\"]\n",
        support::quote(&support::npm_bin("mcp-server-everything")),
        support::quote(&support::venv_bin("mcp-server-time")),
    );
    let config = examples_config(&extra, "");
    let out = run(
        "2026-07-28",
        &config.path,
        &json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "arith__add", "arguments": {"a": 20, "b": 22}},
            {"op": "call_tool", "name": "everything__get-sum", "arguments": {"a": 1, "b": 2}},
            {"op": "call_tool", "name": "time__convert_time", "arguments": {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}},
        ]),
    );
    assert_eq!(out["protocol_version"], "2026-07-28");
    let names = tool_names(&out["results"][0]);
    assert!(
        names.contains(&"time__get_current_time".to_owned()),
        "{names:?}"
    );
    assert_eq!(first_text(&out["results"][1]), "42");
    assert_eq!(first_text(&out["results"][2]), "The sum of 1 and 2 is 3.");
    let converted: Value = serde_json::from_str(first_text(&out["results"][3]))
        .unwrap_or_else(|e| panic!("{e}: {}", out["results"][3]));
    assert_eq!(converted["source"]["timezone"], "UTC", "{converted}");
    assert_eq!(converted["target"]["timezone"], "Asia/Tokyo", "{converted}");
    assert_eq!(converted["time_difference"], "+9.0h", "{converted}");
    let datetime = |side: &str| converted[side]["datetime"].as_str().unwrap().to_owned();
    assert!(
        datetime("source").ends_with("T12:00:00+00:00"),
        "{converted}"
    );
    assert!(
        datetime("target").ends_with("T21:00:00+09:00"),
        "{converted}"
    );
}

#[test]
fn list_shows_each_backend_in_the_era_it_speaks() {
    init();
    let extra = format!(
        "  everything:\n    command: {}\n  time:\n    command: {}\n",
        support::quote(&support::npm_bin("mcp-server-everything")),
        support::quote(&support::venv_bin("mcp-server-time")),
    );
    let config = examples_config(&extra, "");
    let out = support::run_cli(
        &["list", "--json", "--config", config.path.to_str().unwrap()],
        config.dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let era = |server: &str| era_and_status(&listing, server);
    assert_eq!(era("time"), (json!("modern"), json!("ready")));
    assert_eq!(era("arith"), (json!("modern"), json!("ready")));
    assert_eq!(era("everything"), (json!("legacy"), json!("ready")));
    assert_eq!(era("echo"), (json!("legacy"), json!("ready")));
}

#[test]
fn http_sse_and_modern_http_backends_are_aggregated() {
    init();
    let everything = support::npm_bin("mcp-server-everything");
    let (http_port, sse_port, modern_port) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let _http = support::start_peer(
        &everything,
        &["streamableHttp"],
        &[("PORT", &http_port.to_string())],
        http_port,
    );
    let _sse = support::start_peer(
        &everything,
        &["sse"],
        &[("PORT", &sse_port.to_string())],
        sse_port,
    );
    let fixture = support::workspace().join("conformance/fixture_server.py");
    let _modern = support::start_peer(
        &support::venv_bin("python"),
        &[
            fixture.to_str().unwrap(),
            "--http",
            &modern_port.to_string(),
        ],
        &[],
        modern_port,
    );
    let extra = format!(
        "  evhttp:\n    url: http://127.0.0.1:{http_port}/mcp\n  evsse:\n    url: http://127.0.0.1:{sse_port}/sse\n    transport: sse\n  fixture:\n    url: http://127.0.0.1:{modern_port}/mcp\n    headers:\n      X-Api-Key: \"${{HOME}}\"\n"
    );
    let config = examples_config(&extra, "");
    let list = support::run_cli(
        &["list", "--json", "--config", config.path.to_str().unwrap()],
        config.dir.path(),
    );
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing: Value = serde_json::from_slice(&list.stdout).unwrap();
    let era = |server: &str| era_and_status(&listing, server);
    assert_eq!(
        era("evhttp"),
        (json!("legacy"), json!("ready")),
        "{listing}"
    );
    assert_eq!(era("evsse"), (json!("legacy"), json!("ready")), "{listing}");
    assert_eq!(
        era("fixture"),
        (json!("modern"), json!("ready")),
        "{listing}"
    );

    let out = run(
        "legacy",
        &config.path,
        &json!([
            {"op": "call_tool", "name": "evhttp__echo", "arguments": {"message": "over http"}},
            {"op": "call_tool", "name": "evsse__echo", "arguments": {"message": "over sse"}},
            {"op": "call_tool", "name": "fixture__test_simple_text", "arguments": {}},
        ]),
    );
    assert_eq!(first_text(&out["results"][0]), "Echo: over http");
    assert_eq!(first_text(&out["results"][1]), "Echo: over sse");
    assert_eq!(
        first_text(&out["results"][2]),
        "This is a simple text response for testing."
    );
}

#[test]
fn an_unreachable_http_backend_is_reported_and_left_out() {
    init();
    let port = support::free_port();
    let extra = format!("  gone:\n    url: http://127.0.0.1:{port}/mcp\n");
    let config = examples_config(&extra, "defaults:\n  startup_timeout: 2s\n");
    let out = run(
        "legacy",
        &config.path,
        &json!([{"op": "list_tools"}, {"op": "call_tool", "name": "echo__echo", "arguments": {"text": "ok"}}]),
    );
    let names = tool_names(&out["results"][0]);
    assert!(!names.iter().any(|n| n.starts_with("gone__")), "{names:?}");
    assert_eq!(first_text(&out["results"][1]), "ok");
}

#[test]
fn the_python_sdk_pages_through_the_merged_list() {
    init();
    let config = examples_config("", "defaults:\n  page_size: 4\n");
    let out = run("legacy", &config.path, &json!([{"op": "list_tools"}]));
    let names = tool_names(&out["results"][0]);
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a tool came twice: {names:?}");
    // The merged list is sorted by name; pages follow each other in order.
    assert!(names.is_sorted(), "pages out of order: {names:?}");
    assert_eq!(names.len(), 11, "{names:?}");
}
