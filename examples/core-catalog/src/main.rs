//! `core-catalog`: prints how `only1mcp-core` merges two servers' tool lists
//! and routes a namespaced call (see the crate's README).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the example's output is what it is for"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    match only1mcp_example_core_catalog::report() {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("core-catalog: {error}");
            ExitCode::FAILURE
        }
    }
}
