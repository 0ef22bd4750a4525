//! The example run as a user runs it, and its steps checked one by one.

use only1mcp_core::mcp::ListKind;
use only1mcp_example_core_catalog::{
    CALL_GIT_STATUS, CALL_UNKNOWN, FS_TOOLS, GIT_TOOLS, listing, merge, report, route,
};

/// What `cargo run -p only1mcp-example-core-catalog` prints (the README shows it).
const EXPECTED_OUTPUT: &str = r#"merged tools (4):
  fs__status   -> fs / status
  git__status  -> git / status
  log          -> git / log
  read_file    -> fs / read_file
client: {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"git__status","arguments":{"repo_path":"."}}}
to git: {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"status","arguments":{"repo_path":"."}}}
client: {"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"hg__status"}}
answer: {"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"Unknown tool: hg__status"}}
"#;

#[test]
fn the_binary_prints_the_merged_tools_and_the_routed_call() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test runs the example's own binary, built by cargo, with no shell"
    )]
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_core-catalog"))
        .output()
        .expect("the example binary runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), EXPECTED_OUTPUT);
    assert_eq!(report().expect("report"), EXPECTED_OUTPUT);
}

#[test]
fn a_name_two_servers_offer_is_namespaced_for_both() {
    let catalog = merge(&[
        listing("fs", FS_TOOLS).expect("fs list"),
        listing("git", GIT_TOOLS).expect("git list"),
    ]);
    let exposed: Vec<&str> = catalog
        .entries(ListKind::Tools)
        .iter()
        .map(|entry| &*entry.exposed)
        .collect();
    assert_eq!(exposed, ["fs__status", "git__status", "log", "read_file"]);
    // Prefixing on conflict is not a conflict the catalog had to resolve.
    assert!(catalog.conflicts().is_empty(), "{:?}", catalog.conflicts());
    let route = catalog.tool("git__status").expect("git__status routes");
    assert_eq!((&*route.server, &*route.name), ("git", "status"));
    let route = catalog.tool("read_file").expect("read_file routes");
    assert_eq!((&*route.server, &*route.name), ("fs", "read_file"));
    assert!(catalog.tool("status").is_none());
}

#[test]
fn a_routed_call_keeps_every_byte_but_the_name() {
    let catalog = merge(&[
        listing("fs", FS_TOOLS).expect("fs list"),
        listing("git", GIT_TOOLS).expect("git list"),
    ]);
    let routed = route(&catalog, CALL_GIT_STATUS).expect("routes");
    assert_eq!(&*routed.route.server, "git");
    assert_eq!(
        routed.request.params.expect("params").get(),
        r#"{"name":"status","arguments":{"repo_path":"."}}"#
    );
    let refused = route(&catalog, CALL_UNKNOWN).expect_err("hg__status is no tool");
    let error = refused.outcome.expect_err("an error answer");
    assert_eq!(
        (error.code, &*error.message),
        (-32602, "Unknown tool: hg__status")
    );
}

#[test]
fn bad_input_gets_the_gateways_error() {
    let catalog = merge(&[listing("fs", FS_TOOLS).expect("fs list")]);
    let code = |line: &str| {
        route(&catalog, line)
            .expect_err("refused")
            .outcome
            .expect_err("an error answer")
            .code
    };
    assert_eq!(code("not json"), -32700);
    assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), -32600);
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"x"}}"#),
        -32601
    );
    assert_eq!(
        code(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#),
        -32602
    );
    let error = listing("fs", r#"{"tools":"none"}"#).expect_err("not a tool list");
    assert!(
        error
            .to_string()
            .starts_with(r#"server "fs" sent an invalid answer: "#),
        "{error}"
    );
}
