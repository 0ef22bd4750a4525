//! `only1mcp-echo-server`: a legacy-era example MCP server over stdio (test fixture,
//! not part of the gateway).

use std::process::ExitCode;

fn main() -> ExitCode {
    only1mcp_example_servers::main_for(only1mcp_example_servers::echo::Echo)
}
