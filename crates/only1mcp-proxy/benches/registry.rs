//! The registry's hot path: finding the backend for a server id and the
//! route for a tool name, with 100 servers and 5,000 tools (issue 5's goal:
//! p99 under 1 µs), and building the merged catalog they come from (paid on
//! every reload and list change).
//!
//! Run with `cargo bench -p only1mcp-proxy --bench registry`.

#![allow(clippy::unwrap_used, reason = "bench setup")]

use std::sync::{Arc, LazyLock};

use divan::{Bencher, black_box};
use only1mcp_core::catalog::{Catalog, Lists, Prefix, ServerListing, ToolFilter};
use only1mcp_core::config::{Config, ServerConfig};
use only1mcp_core::mcp::RawObject;
use only1mcp_core::naming::Namespace;
use only1mcp_proxy::Gateway;

const SERVERS: usize = 100;
const TOOLS_PER_SERVER: usize = 50;

fn main() {
    // Set up before measuring, so no sample pays for it.
    LazyLock::force(&CATALOG);
    LazyLock::force(&NAMES);
    LazyLock::force(&GATEWAY);
    divan::main();
}

fn server_id(idx: usize) -> String {
    format!("server-{idx:03}")
}

fn tool(idx: usize) -> RawObject {
    let item = serde_json::json!({
        "name": format!("tool_{idx:02}"),
        "description": "A tool of a benchmark server.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    });
    serde_json::from_value(item).unwrap()
}

fn listings() -> Vec<ServerListing> {
    (0..SERVERS)
        .map(|server_idx| ServerListing {
            server: server_id(server_idx).into(),
            prefix: Prefix::Always,
            filter: ToolFilter::default(),
            lists: Lists {
                tools: (0..TOOLS_PER_SERVER).map(tool).collect(),
                ..Lists::default()
            },
        })
        .collect()
}

static LISTINGS: LazyLock<Vec<ServerListing>> = LazyLock::new(listings);
static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::build(&LISTINGS, &Namespace::default()));

/// Exposed tool names to look up, spread over every server.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..SERVERS * TOOLS_PER_SERVER)
        .step_by(37)
        .map(|idx| {
            format!(
                "{}__tool_{:02}",
                server_id(idx / TOOLS_PER_SERVER),
                idx % TOOLS_PER_SERVER
            )
        })
        .collect()
});

/// A gateway with 100 configured backends. Their commands do not exist, so
/// each start fails at once; the backends stay registered (as a failing
/// backend does), which is all a lookup needs. The runtime is not driven
/// after start-up, so no retry runs during the measurement.
static GATEWAY: LazyLock<(tokio::runtime::Runtime, Gateway)> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    for idx in 0..SERVERS {
        config.servers.insert(
            server_id(idx),
            ServerConfig {
                command: "/nonexistent/only1mcp-bench-server".to_owned(),
                enabled: true,
                ..ServerConfig::default()
            },
        );
    }
    let gateway = runtime.block_on(Gateway::start(&config));
    assert_eq!(gateway.backends().len(), SERVERS);
    (runtime, gateway)
});

#[divan::bench(sample_count = 200, sample_size = 500)]
fn tool_by_name(bencher: Bencher<'_, '_>) {
    let catalog = &*CATALOG;
    assert_eq!(
        catalog.entries(only1mcp_core::mcp::ListKind::Tools).len(),
        5000
    );
    let names = &*NAMES;
    let mut idx = 0;
    bencher.bench_local(|| {
        idx = (idx + 1) % names.len();
        black_box(catalog.tool(black_box(&names[idx])))
    });
}

#[divan::bench(sample_count = 200, sample_size = 500)]
fn backend_by_server_id(bencher: Bencher<'_, '_>) {
    let gateway = &GATEWAY.1;
    let ids: Vec<Arc<str>> = (0..SERVERS).map(|idx| server_id(idx).into()).collect();
    let mut idx = 0;
    bencher.bench_local(|| {
        idx = (idx + 1) % ids.len();
        black_box(gateway.backend(black_box(&ids[idx])))
    });
}

/// The whole lookup of a `tools/call`: load the catalog snapshot, route the
/// name, find the owning backend.
#[divan::bench(sample_count = 200, sample_size = 500)]
fn route_tool_call(bencher: Bencher<'_, '_>) {
    let gateway = &GATEWAY.1;
    let catalog = &*CATALOG;
    let names = &*NAMES;
    let mut idx = 0;
    bencher.bench_local(|| {
        idx = (idx + 1) % names.len();
        // The gateway's own catalog is empty (its backends never started);
        // loading it costs the same as loading a full one.
        black_box(gateway.catalog());
        let route = catalog.tool(black_box(&names[idx]));
        black_box(route.and_then(|route| gateway.backend(&route.server)))
    });
}

#[divan::bench(sample_count = 20)]
fn build_catalog(bencher: Bencher<'_, '_>) {
    let listings = &*LISTINGS;
    let namespace = Namespace::default();
    bencher.bench_local(|| black_box(Catalog::build(listings, &namespace)));
}
