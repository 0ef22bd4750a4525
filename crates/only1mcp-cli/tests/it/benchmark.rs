//! `only1mcp benchmark` against a real gateway: short bounded runs that check
//! what the tool reports (counts, JSON and SSE answers, the stop reason),
//! never how fast anything was.

use only1mcp_test_support::{self as support, HttpGateway, examples_config, run_cli};
use serde_json::Value;

use crate::init;

/// Runs `only1mcp benchmark ARGS… --json -q` and returns its report.
fn benchmark(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["benchmark", "--json", "-q"];
    all.extend_from_slice(args);
    let out = run_cli(&all, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "exit {}: {report}\n{stderr}",
        out.status
    );
    report
}

#[test]
fn requests_flag_reports_exactly_that_count_in_both_eras() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let url = gw.mcp_url();
    for era in ["legacy", "modern"] {
        let report = benchmark(&[
            "--url",
            &url,
            "--era",
            era,
            "--requests",
            "57",
            "-c",
            "4",
            "--warmup",
            "0s",
        ]);
        assert_eq!(report["requests"], 57, "{report}");
        assert_eq!(report["ok"], 57, "{report}");
        assert_eq!(report["json_responses"], 57, "{report}");
        assert_eq!(report["stopped_by"], "requests", "{report}");
        assert_eq!(report["connections"], 4, "{report}");
        assert_eq!(report["era"], era, "{report}");
    }
    // The warm-up is not counted.
    let report = benchmark(&["--url", &url, "--requests", "10", "--warmup", "200ms"]);
    assert_eq!(report["requests"], 10, "{report}");
    assert!(report["warmup_requests"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn sse_answers_are_read_like_json_ones() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    // With a progress token the sleep tool reports progress before its
    // result, so the gateway answers each POST with an SSE stream.
    let report = benchmark(&[
        "--url",
        &gw.mcp_url(),
        "--tool",
        "echo__sleep",
        "--arguments",
        r#"{"ms":20}"#,
        "--progress",
        "--requests",
        "6",
        "-c",
        "2",
        "--warmup",
        "0s",
    ]);
    assert_eq!(report["requests"], 6, "{report}");
    assert_eq!(report["ok"], 6, "{report}");
    assert_eq!(report["sse_responses"], 6, "{report}");
    assert_eq!(report["json_responses"], 0, "{report}");
}

#[test]
fn duration_flag_stops_the_run_by_time() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let report = benchmark(&[
        "--url",
        &gw.mcp_url(),
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "-c",
        "2",
    ]);
    assert_eq!(report["stopped_by"], "duration", "{report}");
    assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["requests"], report["ok"], "{report}");
    // Requests are sent until the deadline, then the ones in flight finish.
    assert!(report["elapsed_s"].as_f64().unwrap() >= 1.0, "{report}");
    // A second of requests costs the generator some CPU of its own (Linux
    // tells it in 10 ms ticks).
    assert!(report["cpu_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn stdio_and_websocket_targets_are_measured() {
    init();
    let config = examples_config("", "");
    let gateway = support::gateway_bin();
    let gateway = gateway.to_str().unwrap();
    let config_path = config.path.to_str().unwrap();
    let report = benchmark(&[
        "--requests",
        "40",
        "-c",
        "8",
        "--warmup",
        "0s",
        "--stdio",
        "--",
        gateway,
        "start",
        "--stdio",
        "--config",
        config_path,
    ]);
    assert_eq!(report["requests"], 40, "{report}");
    assert_eq!(report["stream_responses"], 40, "{report}");
    assert_eq!(report["connections"], 1, "{report}");
    let gw = HttpGateway::start(&config.path);
    let ws = format!("{}/ws", gw.base.replace("http://", "ws://"));
    let report = benchmark(&[
        "--ws",
        &ws,
        "--era",
        "modern",
        "--requests",
        "30",
        "-c",
        "6",
        "-n",
        "2",
        "--warmup",
        "0s",
    ]);
    assert_eq!(report["requests"], 30, "{report}");
    assert_eq!(report["ok"], 30, "{report}");
}

#[test]
fn failed_requests_are_counted_and_fail_the_run() {
    init();
    let config = examples_config("", "");
    let gw = HttpGateway::start(&config.path);
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        &[
            "benchmark",
            "--json",
            "-q",
            "--url",
            &gw.mcp_url(),
            "--tool",
            "nope__nope",
            "--requests",
            "3",
            "--warmup",
            "0s",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 3, "{report}");
    assert_eq!(report["rpc_errors"], 3, "{report}");
    assert!(
        report["first_error"].as_str().unwrap().contains("-32602"),
        "{report}"
    );
}

#[test]
fn non_loopback_targets_are_refused() {
    init();
    let dir = tempfile::tempdir().unwrap();
    // Documentation addresses (RFC 5737) and a public name: refused before
    // any connection is attempted.
    for target in [
        ["--url", "http://192.0.2.1:7331/mcp"],
        ["--url", "http://example.com/mcp"],
        ["--ws", "ws://198.51.100.7/ws"],
    ] {
        let out = run_cli(
            &["benchmark", target[0], target[1], "--requests", "1"],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target:?}: {stderr}");
        assert!(stderr.contains("not a loopback address"), "{stderr}");
        assert!(stderr.contains("--allow-remote"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
