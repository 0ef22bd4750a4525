//! `embed-axum CONFIG [ADDR]`: an axum app of its own (`/` and `/app/status`)
//! that also serves the Only1MCP gateway's HTTP face (`/mcp`, `/mcp/{profile}`,
//! `/sse`, `/messages`, `/ws`), started from `CONFIG` in the same process.
//! Prints `listening http://ADDR` on stdout once it accepts connections;
//! stops on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use only1mcp_proxy::Gateway;
use only1mcp_proxy::http::{HttpState, router};

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example binary: its address and its errors"
)]
#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: embed-axum CONFIG [ADDR]");
        return ExitCode::from(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let config = match only1mcp_proxy::load::load_file(path.as_ref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(78);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(local) = listener.local_addr() else {
        return ExitCode::FAILURE;
    };
    // The gateway, with the same builder `only1mcp start` uses (add
    // `.layer(…)` here for policies of your own).
    let gateway = Gateway::builder(&config).start().await;
    // The gateway's routes keep their own Host/Origin guard and body limit;
    // the app's routes are the app's.
    let state = HttpState::new(gateway.clone(), &config.http, local);
    let app = Router::new()
        .route(
            "/",
            get(|| async { "my app, with an MCP gateway at /mcp\n" }),
        )
        .route("/app/status", get(|| async { "ok" }))
        .merge(router(state.clone()));
    println!("listening http://{local}");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            only1mcp_proxy::run::stop_signal().await;
            // Long streams (GET, SSE, WebSocket) end, so the drain finishes.
            state.close_streams();
        })
        .await;
    gateway.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
