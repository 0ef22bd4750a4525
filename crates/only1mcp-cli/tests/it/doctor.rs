//! `only1mcp doctor`: quiet on a healthy setup, and each planted fault is
//! found, named and given a fix.

use only1mcp_test_support::{self as support, config};
use serde_json::Value;

use crate::init;

/// The example servers, run by the binary under test.
fn healthy_servers() -> String {
    let exe = support::quote(&support::gateway_bin());
    format!(
        "  echo:\n    command: {exe}\n    args: [example-server, echo]\n  arith:\n    command: {exe}\n    args: [example-server, arith]\n"
    )
}

/// Runs `only1mcp doctor ARGS…` on `yaml` with an empty token folder of its own.
fn doctor(yaml: &str, args: &[&str], runtime: &std::path::Path) -> std::process::Output {
    let config = config(yaml);
    let mut all = vec!["doctor", "--config", config.path.to_str().unwrap()];
    all.extend(args);
    support::run_cli_with(
        &all,
        config.dir.path(),
        &[("ONLY1MCP_RUNTIME_DIR", runtime.to_str().unwrap())],
    )
}

#[test]
fn a_healthy_setup_gets_one_line_and_exit_status_zero() {
    init();
    let runtime = tempfile::tempdir().unwrap();
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nservers:\n{}",
        healthy_servers()
    );
    let out = doctor(&yaml, &[], runtime.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("only1mcp doctor: no problems found"),
        "{stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_planted_fault_is_found_with_its_fix() {
    init();
    let runtime = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let token = runtime.path().join("admin-7399.token");
        std::fs::write(&token, "0123456789abcdef0123456789abcdef").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let exe = support::quote(&support::gateway_bin());
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:{port}\nadmin:\n  enabled: false\nservers:\n{}  missing:\n    command: no-such-program-only1mcp\n  secret:\n    command: {exe}\n    args: [example-server, echo]\n    env: {{ API_KEY: \"${{ONLY1MCP_DOCTOR_UNSET}}\" }}\n  crashing:\n    command: {exe}\n    args: [example-server, arith]\n    env: {{ ONLY1MCP_EXAMPLE_STARTUP_FAIL: \"1\" }}\n",
        healthy_servers()
    );
    let out = doctor(&yaml, &["--json"], runtime.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let found: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["check"].as_str().unwrap().to_owned(),
                p["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected = vec![
        ("command".to_owned(), "servers.missing.command".to_owned()),
        ("env".to_owned(), "servers.secret.env.API_KEY".to_owned()),
        ("start".to_owned(), "servers.crashing".to_owned()),
        ("port".to_owned(), format!("http.listen 127.0.0.1:{port}")),
    ];
    if cfg!(unix) {
        expected.push((
            "token-file".to_owned(),
            runtime
                .path()
                .join("admin-7399.token")
                .display()
                .to_string(),
        ));
    }
    assert_eq!(found, expected, "{report:#}");
    let problem = |check: &str| {
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["check"] == check)
            .unwrap()
            .clone()
    };
    assert!(
        problem("start")["problem"]
            .as_str()
            .unwrap()
            .contains("ONLY1MCP_EXAMPLE_STARTUP_FAIL=1: failing at startup"),
        "the stderr tail: {report:#}"
    );
    assert!(
        problem("command")["fix"]
            .as_str()
            .unwrap()
            .contains("give its full path")
    );
    assert!(
        problem("token-file")["fix"]
            .as_str()
            .unwrap()
            .starts_with("chmod 600 ")
    );
    drop(busy);
}

#[test]
fn an_invalid_config_is_reported_by_field() {
    init();
    let runtime = tempfile::tempdir().unwrap();
    let out = doctor("servers:\n  a:\n    comand: x\n", &[], runtime.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("comand"), "{stdout}");
    assert!(stdout.contains("fix: fix the field named"), "{stdout}");
}
