//! The lean `only1mcp-proxy` binary serves a config over stdio, as
//! `only1mcp start --stdio` does, with no CLI in between.

#![allow(clippy::unwrap_used, reason = "tests")]

use only1mcp_test_support::{self as support, Gateway};
use serde_json::json;

#[test]
fn the_lean_binary_serves_a_config_on_stdio() {
    support::init(env!("CARGO_BIN_EXE_only1mcp-proxy"));
    let config = support::examples_config("", "");
    let mut gateway = Gateway::spawn(
        &support::gateway_bin(),
        &["--stdio", config.path.to_str().unwrap()],
        &[],
    );
    gateway.initialize();
    let sum = gateway.call_tool("arith__add", json!({"a": 20, "b": 22}));
    assert_eq!(support::text(&sum), "42", "{sum}");
    let echoed = gateway.call_tool("echo__echo", json!({"text": "lean"}));
    assert_eq!(support::text(&echoed), "lean", "{echoed}");
    assert!(
        !gateway.log().contains("Admin API listening"),
        "{}",
        gateway.log()
    );
}
