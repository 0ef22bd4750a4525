//! divan benches for the gateway's per-request hot paths, all in core:
//! the JSON-RPC envelope (parse, serialize, the upstream id rewrite), the
//! `tools/call` name rewrite, routing by tool name, merging a catalog of
//! 50 servers × 100 tools, namespacing, and `search_tools` over the corpus.
//!
//! Run with `cargo bench -p only1mcp-core --bench hot_paths` (add
//! `-- --sample-count 1000` or a name filter as divan allows).

#![allow(
    clippy::unwrap_used,
    reason = "bench set-up; a failure is a bug in the bench"
)]

use std::hint::black_box;

use divan::Bencher;
use only1mcp_core::catalog::{Catalog, Lists, Prefix, ServerListing, ToolFilter};
use only1mcp_core::diet::search::{Document, ToolIndex};
use only1mcp_core::jsonrpc::{self, Frame, Id, Message, Request, Response};
use only1mcp_core::mcp::{self, RawObject};
use only1mcp_core::naming::Namespace;

fn main() {
    divan::main();
}

/// A `tools/call` as a client sends it.
const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"hello, world"},"_meta":{"progressToken":17}}}"#;

/// A backend's answer to it.
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":4242,"result":{"content":[{"type":"text","text":"hello, world"}]}}"#;

/// Envelope parsing: what every client frame and every backend line costs.
mod envelope {
    use super::*;

    #[divan::bench]
    fn parse_request() -> Frame {
        jsonrpc::parse(black_box(CALL)).unwrap()
    }

    #[divan::bench]
    fn parse_response() -> Frame {
        jsonrpc::parse(black_box(RESULT)).unwrap()
    }

    /// Serializing a response whose result is raw (the bytes pass through).
    #[divan::bench]
    fn serialize_response(bencher: Bencher<'_, '_>) {
        let Ok(Frame::Single(Message::Response(res))) = jsonrpc::parse(RESULT) else {
            panic!("not a response")
        };
        let message = Message::Response(Response {
            id: Some(Id::Number(17)),
            outcome: res.outcome,
        });
        bencher.bench_local(|| black_box(&message).to_vec());
    }

    /// What the stdio connection does per call: a new upstream id, the
    /// method and raw params re-serialized into one line.
    #[divan::bench]
    fn id_rewrite(bencher: Bencher<'_, '_>) {
        bencher.bench_local(|| {
            let Ok(Frame::Single(Message::Request(req))) = jsonrpc::parse(black_box(CALL)) else {
                panic!("not a request")
            };
            Message::Request(Request {
                id: Id::Number(4242),
                method: req.method,
                params: req.params,
            })
            .to_vec()
        });
    }
}

/// The `tools/call` params rewrite (`echo__echo` → `echo`) as
/// `ClientSession::call_tool` does it: the params' members borrowed from the
/// text (`mcp::Members`), `name` set, serialized.
#[divan::bench]
fn rename_params(bencher: Bencher<'_, '_>) {
    let Ok(Frame::Single(Message::Request(req))) = jsonrpc::parse(CALL) else {
        panic!("not a request")
    };
    let params = req.params.unwrap();
    bencher.bench_local(|| {
        let mut members = mcp::Members::parse(Some(black_box(&params))).unwrap();
        let name = members.string("name").unwrap();
        members.set_string("name", &name[6..]);
        members.to_raw().unwrap()
    });
}

/// The same rewrite through an owned `RawObject` (an `IndexMap`), as it was
/// done before `Members` and still is on the less travelled paths.
#[divan::bench]
fn rename_params_raw_object(bencher: Bencher<'_, '_>) {
    let Ok(Frame::Single(Message::Request(req))) = jsonrpc::parse(CALL) else {
        panic!("not a request")
    };
    let params = req.params.unwrap();
    bencher.bench_local(|| {
        let mut object = mcp::params_object(Some(black_box(&params))).unwrap();
        let name = mcp::string_field(&object, "name").unwrap();
        mcp::set_string_field(&mut object, "name", &name[6..]);
        mcp::to_raw_object(&object).unwrap()
    });
}

fn tool(name: &str) -> RawObject {
    serde_json::from_str(&format!(
        r#"{{"name":"{name}","description":"Does {name} to the given text.","inputSchema":{{"type":"object","properties":{{"text":{{"type":"string"}}}},"required":["text"]}}}}"#
    ))
    .unwrap()
}

/// `servers` servers with `tools` tools each, every name unique per server
/// and half of them colliding across servers.
fn listings(servers: usize, tools: usize) -> Vec<ServerListing> {
    (0..servers)
        .map(|s| ServerListing {
            server: format!("server{s}").into(),
            prefix: Prefix::Always,
            filter: ToolFilter::default(),
            lists: Lists {
                tools: (0..tools)
                    .map(|t| {
                        if t % 2 == 0 {
                            tool(&format!("shared_tool_{t}"))
                        } else {
                            tool(&format!("tool_{s}_{t}"))
                        }
                    })
                    .collect(),
                ..Lists::default()
            },
        })
        .collect()
}

/// The merged catalog of 50 servers × 100 tools (a rebuild on every
/// `list_changed`).
#[divan::bench(args = [Prefix::Always, Prefix::OnConflict])]
fn catalog_build_50x100(bencher: Bencher<'_, '_>, prefix: Prefix) {
    let mut listings = listings(50, 100);
    for listing in &mut listings {
        listing.prefix = prefix;
    }
    let namespace = Namespace::default();
    bencher.bench_local(|| Catalog::build(black_box(&listings), &namespace));
}

/// Routing one exposed tool name in the 5000-tool catalog.
#[divan::bench]
fn catalog_tool_lookup(bencher: Bencher<'_, '_>) {
    let catalog = Catalog::build(&listings(50, 100), &Namespace::default());
    let names = [
        "server0__shared_tool_0",
        "server49__tool_49_99",
        "nope__nope",
    ];
    bencher.bench_local(|| {
        for name in names {
            black_box(catalog.tool(black_box(name)));
        }
    });
}

/// Namespacing: join and split of one name.
mod naming {
    use super::*;

    #[divan::bench]
    fn join(bencher: Bencher<'_, '_>) {
        let namespace = Namespace::default();
        bencher.bench_local(|| namespace.join(black_box("filesystem"), black_box("read_file")));
    }

    #[divan::bench]
    fn split(bencher: Bencher<'_, '_>) {
        let namespace = Namespace::default();
        bencher.bench_local(|| {
            namespace
                .split(black_box("filesystem__read_file"))
                .map(|(s, n)| s.len() + n.len())
        });
    }
}

/// The six captured catalogs of docs/corpus (51 tools of real servers), as
/// `(server, exposed name, tool)`.
fn search_corpus() -> Vec<(&'static str, String, serde_json::Value)> {
    [
        (
            "everything",
            include_str!("../../../docs/corpus/everything.json"),
        ),
        (
            "filesystem",
            include_str!("../../../docs/corpus/filesystem.json"),
        ),
        ("memory", include_str!("../../../docs/corpus/memory.json")),
        ("git", include_str!("../../../docs/corpus/git.json")),
        ("time", include_str!("../../../docs/corpus/time.json")),
        ("fetch", include_str!("../../../docs/corpus/fetch.json")),
    ]
    .into_iter()
    .flat_map(|(server, text)| {
        let file: serde_json::Value = serde_json::from_str(text).unwrap();
        let tools = file["tools"].as_array().unwrap().clone();
        tools.into_iter().map(move |tool| {
            let name = format!("{server}__{}", tool["name"].as_str().unwrap());
            (server, name, tool)
        })
    })
    .collect()
}

fn search_documents<'a>(
    tools: &'a [(&'static str, String, serde_json::Value)],
) -> impl Iterator<Item = Document<'a>> {
    tools
        .iter()
        .map(|(server, name, tool)| Document { name, server, tool })
}

const SEARCH_QUERY: &str = "which files in Downloads are taking up the most space?";

/// `search_tools` from scratch: index the corpus, then rank it for one query.
#[divan::bench]
fn search_50_tools(bencher: Bencher<'_, '_>) {
    let tools = search_corpus();
    bencher.bench_local(|| {
        let index = ToolIndex::build(search_documents(black_box(&tools)));
        index.search(black_box(SEARCH_QUERY), 3)
    });
}

/// One query against the built index: what each `search_tools` call costs
/// while the catalog does not change.
#[divan::bench]
fn search_50_tools_query_only(bencher: Bencher<'_, '_>) {
    let tools = search_corpus();
    let index = ToolIndex::build(search_documents(&tools));
    bencher.bench_local(|| index.search(black_box(SEARCH_QUERY), 3));
}
