//! `only1mcp`: the command-line entry of the Only1MCP gateway.
//!
//! Thin by design: argument parsing and output live here, everything a test
//! would want to reach lives in `only1mcp-proxy`.

mod benchmark;
mod commands;
mod output;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let mut cli = commands::Cli::parse();
    if let Some(code) = cli.run_without_runtime() {
        return code;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = cli.worker_threads() {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(commands::run(cli))
}
