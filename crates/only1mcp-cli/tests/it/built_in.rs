//! The built-in default config: what `only1mcp start` serves with no config
//! file, from the binary alone.

use only1mcp_test_support::{self as support, python_client_in};
use serde_json::json;

use crate::init;

#[test]
fn a_copied_binary_alone_serves_its_example_servers_with_no_config() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir
        .path()
        .join(format!("only1mcp{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(support::gateway_bin(), &exe).unwrap();
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(beside, [exe.file_name().unwrap()], "the binary is alone");
    let exe = exe.to_string_lossy().into_owned();
    let out = python_client_in(
        dir.path(),
        "legacy",
        &["--", &exe, "start", "--stdio"],
        &json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "arith__add", "arguments": {"a": 2, "b": 3}},
            {"op": "call_tool", "name": "echo__reverse", "arguments": {"text": "gateway"}},
        ]),
        &[],
    );
    let names: Vec<&str> = out["results"][0]
        .as_array()
        .unwrap_or_else(|| panic!("no tool list: {out}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for expected in ["arith__add", "arith__divide", "echo__echo", "echo__reverse"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(out["results"][1]["content"][0]["text"], "5", "{out}");
    assert_eq!(out["results"][2]["content"][0]["text"], "yawetag", "{out}");
}

#[test]
fn the_example_server_subcommand_is_hidden_from_help() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let help = support::run_cli(&["--help"], dir.path());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("start"), "{help}");
    assert!(!help.contains("example-server"), "{help}");
}
