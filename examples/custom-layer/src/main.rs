//! `custom-layer [--deny TOOL:ARGUMENT=PATTERN]… CONFIG`: the gateway on
//! stdio, as `only1mcp start --stdio` runs it, with [`DenyArgumentsLayer`]
//! in its call pipeline.

use std::process::ExitCode;

use only1mcp_example_custom_layer::{DenyArgumentsLayer, Rule};
use only1mcp_proxy::Gateway;
use only1mcp_proxy::run::RunOptions;

#[allow(clippy::print_stderr, reason = "an example binary's usage and errors")]
fn main() -> ExitCode {
    let mut rules = Vec::new();
    let mut config = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--deny" {
            match args.next().map(|rule| rule.parse::<Rule>()) {
                Some(Ok(rule)) => rules.push(rule),
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("error: --deny needs TOOL:ARGUMENT=PATTERN");
                    return ExitCode::from(2);
                }
            }
        } else {
            config = Some(std::path::PathBuf::from(arg));
        }
    }
    let Some(path) = config else {
        eprintln!("usage: custom-layer [--deny TOOL:ARGUMENT=PATTERN]... CONFIG");
        return ExitCode::from(2);
    };
    let config = match only1mcp_proxy::load::load_file(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(78);
        }
    };
    if let Err(e) = only1mcp_proxy::logging::init(&config.logging) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = RunOptions {
        origin: only1mcp_proxy::load::Origin::File(path),
        stdio: true,
        profile: "default".to_owned(),
        admin_listen: None,
    };
    let gateway = Gateway::builder(&config).layer(DenyArgumentsLayer::new(rules));
    match runtime.block_on(gateway.run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
