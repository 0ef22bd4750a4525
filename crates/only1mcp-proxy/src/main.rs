//! `only1mcp-proxy`: the lean gateway binary. Serves one config, nothing
//! else: `only1mcp-proxy [--stdio] [CONFIG]` (default: as `only1mcp start`
//! finds it). The full CLI is `only1mcp` (crate `only1mcp-cli`); both run
//! the same `GatewayBuilder::run`.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: only1mcp-proxy [--stdio] [CONFIG]";

#[allow(
    clippy::print_stderr,
    reason = "the binary's only output: its usage and fatal errors"
)]
fn main() -> ExitCode {
    let mut stdio = false;
    let mut path = None;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--stdio") => stdio = true,
            Some("-h" | "--help") => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(flag) if flag.starts_with('-') => {
                eprintln!("unknown option {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if path.is_none() => path = Some(std::path::PathBuf::from(arg)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (config, origin) = match only1mcp_proxy::load::load(path.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(78);
        }
    };
    if let Err(e) = only1mcp_proxy::logging::init_with_traces(&config.logging, &config.traces) {
        eprintln!("error: {e}");
        return ExitCode::from(78);
    }
    // One runtime thread, as `only1mcp start` by default (ADR 0008).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = only1mcp_proxy::run::RunOptions {
        origin,
        stdio,
        profile: only1mcp_core::config::ContextConfig::DEFAULT_PROFILE.to_owned(),
        admin_listen: None,
    };
    let builder = only1mcp_proxy::Gateway::builder(&config);
    match runtime.block_on(builder.run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
