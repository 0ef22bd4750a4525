//! `only1mcp-arith-server`: a dual-era example MCP server over stdio (test fixture,
//! not part of the gateway).

use std::process::ExitCode;

fn main() -> ExitCode {
    only1mcp_example_servers::main_for(only1mcp_example_servers::arith::Arith)
}
