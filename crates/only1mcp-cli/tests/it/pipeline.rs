//! The call pipeline (issue 18, ADR 0012): an embedder's layers, given to
//! `Gateway::builder`, see every call the gateway makes to a backend on a
//! client's behalf, at each entry point, after routing. The gateway runs in
//! this process (as an embedder runs it) in front of the real example
//! servers and the Python conformance fixture; the client talks to its
//! stdio face over an in-memory pipe.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::config::Config;
use only1mcp_core::mcp::Era;
use only1mcp_core::pipeline::{Reply, Routed};
use only1mcp_proxy::Gateway;
use only1mcp_test_support as support;
use serde_json::{Value, json};
use tower::Service;
use tower::layer::layer_fn;

use crate::init;
use crate::inproc::{Client, Record, Seen, recorded_gateway};

fn seen(method: &str, server: &str, name: &str, exposed: Option<&str>, era: Era) -> Seen {
    Seen {
        method: method.to_owned(),
        server: server.to_owned(),
        name: name.to_owned(),
        exposed: exposed.map(str::to_owned),
        era,
        keyed: era == Era::Legacy,
    }
}

fn examples(top: &str) -> Config {
    let yaml = format!(
        "{top}servers:\n  echo:\n    command: {}\n  arith:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-echo-server")),
        support::quote(&support::example_server("only1mcp-arith-server")),
    );
    let dir = support::config(&yaml);
    only1mcp_proxy::load::load_file(&dir.path).unwrap()
}

fn text(response: &Value) -> &str {
    support::text(response)
}

#[tokio::test]
async fn every_entry_point_enters_the_stack_after_routing() {
    init();
    let (gateway, recorded) = recorded_gateway(&examples("")).await;
    let mut client = Client::serve(&gateway, "default");
    client.initialize().await;

    let echoed = client
        .request(
            "tools/call",
            json!({"name": "echo__echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert_eq!(text(&echoed), "hi");
    let prompt = client
        .request(
            "prompts/get",
            json!({"name": "echo__greet", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert!(prompt.get("result").is_some(), "{prompt}");
    let read = client
        .request("resources/read", json!({"uri": "echo://readme"}))
        .await;
    assert!(read.get("result").is_some(), "{read}");
    let completed = client
        .request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "echo__greet"}, "argument": {"name": "name", "value": "A"}}),
        )
        .await;
    assert!(completed.get("result").is_some(), "{completed}");
    // The echo server does not offer subscriptions: its own error comes
    // back, but the call went through the stack to reach it.
    client
        .request("resources/subscribe", json!({"uri": "echo://readme"}))
        .await;
    client
        .request("logging/setLevel", json!({"level": "debug"}))
        .await;
    // A 2026-07-28 request on the same face: no affinity key.
    let modern = client
        .request(
            "tools/call",
            json!({"name": "arith__add", "arguments": {"a": 2, "b": 3}, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }}),
        )
        .await;
    assert_eq!(text(&modern), "5", "{modern}");

    let legacy = Era::Legacy;
    assert_eq!(
        *recorded.lock().unwrap(),
        [
            seen("tools/call", "echo", "echo", Some("echo__echo"), legacy),
            seen("prompts/get", "echo", "greet", Some("echo__greet"), legacy),
            seen(
                "resources/read",
                "echo",
                "echo://readme",
                Some("echo://readme"),
                legacy
            ),
            seen(
                "completion/complete",
                "echo",
                "greet",
                Some("echo__greet"),
                legacy
            ),
            seen(
                "resources/subscribe",
                "echo",
                "echo://readme",
                Some("echo://readme"),
                legacy
            ),
            // The fan-out reaches the one legacy backend that logs.
            seen("logging/setLevel", "echo", "", None, legacy),
            seen(
                "tools/call",
                "arith",
                "add",
                Some("arith__add"),
                Era::Modern
            ),
        ]
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn discover_call_tool_enters_the_stack_as_the_real_tool() {
    init();
    let (gateway, recorded) = recorded_gateway(&examples("context:\n  mode: discover\n")).await;
    let mut client = Client::serve(&gateway, "default");
    client.initialize().await;
    let res = client
        .request(
            "tools/call",
            json!({"name": "call_tool", "arguments": {"name": "arith__multiply", "arguments": {"a": 6, "b": 7}}}),
        )
        .await;
    assert_eq!(text(&res), "42", "{res}");
    // search_tools is answered by the gateway itself: no backend call.
    client
        .request(
            "tools/call",
            json!({"name": "search_tools", "arguments": {"query": "multiply"}}),
        )
        .await;
    assert_eq!(
        *recorded.lock().unwrap(),
        [seen(
            "tools/call",
            "arith",
            "multiply",
            Some("arith__multiply"),
            Era::Legacy
        )]
    );
    gateway.shutdown().await;
}

/// A policy layer refuses before the backend is reached: the client gets
/// the refusal's own code, the backend counts no request.
#[tokio::test]
async fn a_refusing_layer_stops_the_call_before_the_backend() {
    init();
    let gateway = Gateway::builder(&examples(""))
        .layer(layer_fn(|inner| DenyTool {
            inner,
            tool: "echo__env",
        }))
        .start()
        .await;
    let mut client = Client::serve(&gateway, "default");
    client.initialize().await;
    let before = gateway.backend("echo").unwrap().stats().requests;
    let refused = client
        .request(
            "tools/call",
            json!({"name": "echo__env", "arguments": {"name": "HOME"}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32030, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "Forbidden: echo__env is not allowed here"
    );
    assert_eq!(gateway.backend("echo").unwrap().stats().requests, before);
    // Everything else goes on.
    let echoed = client
        .request(
            "tools/call",
            json!({"name": "echo__echo", "arguments": {"text": "ok"}}),
        )
        .await;
    assert_eq!(text(&echoed), "ok");
    assert_eq!(
        gateway.backend("echo").unwrap().stats().requests,
        before + 1
    );
    gateway.shutdown().await;
}

#[derive(Clone)]
struct DenyTool<S> {
    inner: S,
    tool: &'static str,
}

impl<S> Service<Routed> for DenyTool<S>
where
    S: Service<Routed, Response = Reply, Error = Error, Future = only1mcp_proxy::stack::CallFuture>,
{
    type Response = Reply;
    type Error = Error;
    type Future = only1mcp_proxy::stack::CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> Self::Future {
        if routed.exposed.as_deref() == Some(self.tool) {
            let error = Error::Denied {
                reason: format!("{} is not allowed here", self.tool),
            };
            return Box::pin(std::future::ready(Err(error)));
        }
        self.inner.call(routed)
    }
}

/// Server layers: one instance per backend, seeing that backend's calls.
#[tokio::test]
async fn server_layers_are_made_once_per_backend_and_see_its_calls() {
    init();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let made = Arc::new(Mutex::new(0_usize));
    let (seen_by_layer, made_by_layer) = (recorded.clone(), made.clone());
    let gateway = Gateway::builder(&examples(""))
        .server_layer(layer_fn(move |inner| {
            *made_by_layer.lock().unwrap() += 1;
            Record {
                inner,
                seen: seen_by_layer.clone(),
            }
        }))
        .start()
        .await;
    assert_eq!(*made.lock().unwrap(), 2);
    let mut client = Client::serve(&gateway, "default");
    client.initialize().await;
    for _ in 0..3 {
        let res = client
            .request(
                "tools/call",
                json!({"name": "arith__add", "arguments": {"a": 1, "b": 1}}),
            )
            .await;
        assert_eq!(text(&res), "2");
    }
    assert_eq!(recorded.lock().unwrap().len(), 3);
    assert!(recorded.lock().unwrap().iter().all(|s| s.server == "arith"));
    assert_eq!(*made.lock().unwrap(), 2, "made again per call");
    gateway.shutdown().await;
}

/// A legacy client in front of a modern backend that asks for input: each
/// round (the first call, and the retry with the client's answer) is a
/// call of its own through the stack.
#[tokio::test]
async fn each_round_of_a_bridged_input_request_enters_the_stack() {
    init();
    let fixture = support::workspace().join("conformance/fixture_server.py");
    let dir = support::config(&format!(
        "servers:\n  fixture:\n    command: {}\n    args: [{}]\n",
        support::quote(&support::venv_bin("python")),
        support::quote(&fixture),
    ));
    let config = only1mcp_proxy::load::load_file(&dir.path).unwrap();
    let (gateway, recorded) = recorded_gateway(&config).await;
    let mut client = Client::serve(&gateway, "default");
    client.initialize().await;
    let res = client
        .request_answering(
            "tools/call",
            json!({"name": "fixture__test_elicitation", "arguments": {"message": "Who are you?"}}),
            |asked| {
                assert_eq!(asked["method"], "elicitation/create", "{asked}");
                json!({"action": "accept", "content": {"username": "Ada Lovelace", "email": "ada@example.com"}})
            },
        )
        .await;
    assert!(text(&res).contains("Ada Lovelace"), "{res}");
    let round = seen(
        "tools/call",
        "fixture",
        "test_elicitation",
        Some("fixture__test_elicitation"),
        Era::Legacy,
    );
    assert_eq!(*recorded.lock().unwrap(), [round.clone(), round]);
    gateway.shutdown().await;
}
