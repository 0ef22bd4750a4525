//! Black-box tests of the `only1mcp` binary: the gateway runs as a real
//! child process, in front of real MCP servers (the example servers of this
//! repository and the npm/PyPI reference servers installed by
//! `cargo xtask peers`), driven by raw JSON-RPC lines or the Python SDK.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(
    clippy::needless_pass_by_value,
    reason = "tests pass json! literals; taking them by value reads better"
)]

mod admin;
mod admin_security;
mod audit;
mod auth;
mod backend_faults;
mod benchmark;
mod built_in;
mod cli;
mod context;
mod doctor;
mod everything;
mod http;
mod import;
mod inproc;
mod limits;
mod observability;
mod origin;
mod peers;
mod pipeline;
mod relay;
mod reload;
mod replicas;
mod stdio;
mod subscriptions;
mod swap;
mod traces;

/// Points the harness at the binary under test.
fn init() {
    only1mcp_test_support::init(env!("CARGO_BIN_EXE_only1mcp"));
}

/// The names in the gateway's `tools/list`.
fn tool_names(gateway: &mut only1mcp_test_support::Gateway) -> Vec<String> {
    let list = gateway.request("tools/list", serde_json::json!({}));
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}
