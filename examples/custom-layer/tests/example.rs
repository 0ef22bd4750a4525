//! Runs the example binary in front of the real example servers and checks
//! the layer refuses exactly what its rule says, before the backend.

#![allow(clippy::unwrap_used, reason = "tests")]

use only1mcp_test_support::{self as support, Gateway};
use serde_json::json;

#[test]
fn the_layer_refuses_matching_arguments_and_passes_the_rest() {
    support::init(env!("CARGO_BIN_EXE_custom-layer"));
    let config = support::examples_config("", "context:\n  mode: discover\n");
    let mut gateway = Gateway::spawn(
        &support::gateway_bin(),
        &[
            "--deny",
            "echo__*:text=*password*",
            config.path.to_str().unwrap(),
        ],
        &[],
    );
    gateway.initialize();
    let call = |name: &str, text: &str| json!({"name": name, "arguments": {"text": text}});

    let refused = gateway.call_tool("call_tool", call("echo__echo", "my password is 1234"));
    assert_eq!(refused["error"]["code"], -32030, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "Forbidden: the call breaks the rule echo__*:text=*password*"
    );
    let refused = gateway.call_tool("call_tool", call("echo__reverse", "password"));
    assert_eq!(refused["error"]["code"], -32030, "{refused}");

    let passed = gateway.call_tool("call_tool", call("echo__echo", "hello"));
    assert_eq!(support::text(&passed), "hello", "{passed}");
    // Another server's tool with the same argument is not covered.
    let sum = gateway.call_tool(
        "call_tool",
        json!({"name": "arith__add", "arguments": {"a": 1, "b": 2, "text": "password"}}),
    );
    assert_eq!(support::text(&sum), "3", "{sum}");
}

#[test]
#[allow(clippy::disallowed_methods, reason = "runs the example binary itself")]
fn a_malformed_rule_is_refused_at_start() {
    support::init(env!("CARGO_BIN_EXE_custom-layer"));
    let config = support::examples_config("", "");
    let out = std::process::Command::new(support::gateway_bin())
        .args(["--deny", "no-colon", config.path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected TOOL:ARGUMENT=PATTERN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
