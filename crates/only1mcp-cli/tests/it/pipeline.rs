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
use only1mcp_core::pipeline::{Affinity, Reply, Routed};
use only1mcp_proxy::Gateway;
use only1mcp_test_support as support;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tower::Service;
use tower::layer::layer_fn;

use crate::init;

/// What a layer saw of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    server: String,
    name: String,
    exposed: Option<String>,
    era: Era,
    keyed: bool,
}

/// A layer that records every call it sees, then passes it on.
#[derive(Clone)]
struct Record<S> {
    inner: S,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl<S> Service<Routed> for Record<S>
where
    S: Service<Routed, Response = Reply, Error = Error>,
{
    type Response = Reply;
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> Self::Future {
        self.seen.lock().unwrap().push(Seen {
            method: routed.method().to_owned(),
            server: routed.server().to_owned(),
            name: routed.route.name.to_string(),
            exposed: routed.exposed.as_deref().map(str::to_owned),
            era: routed.era,
            keyed: matches!(routed.affinity, Affinity::Key(_)),
        });
        self.inner.call(routed)
    }
}

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

/// A client of the gateway's stdio face over an in-memory pipe.
struct Client {
    to_gateway: tokio::io::DuplexStream,
    from_gateway: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
    next_id: i64,
}

impl Client {
    /// Serves `gateway` with the view of `profile` to a new client.
    fn serve(gateway: &Gateway, profile: &str) -> Self {
        let (to_gateway, gateway_in) = tokio::io::duplex(1 << 20);
        let (gateway_out, from_gateway) = tokio::io::duplex(1 << 20);
        let gateway = gateway.clone();
        let profile = profile.to_owned();
        tokio::spawn(async move {
            let _ = only1mcp_proxy::serve::serve_stdio(
                &gateway,
                &profile,
                BufReader::new(gateway_in),
                gateway_out,
                std::future::pending(),
            )
            .await;
        });
        Self {
            to_gateway,
            from_gateway: BufReader::new(from_gateway).lines(),
            next_id: 1,
        }
    }

    async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.to_gateway.write_all(&line).await.unwrap();
    }

    /// Sends a request and returns its response; requests from the gateway
    /// meanwhile are answered by `answer`, notifications skipped.
    async fn request_answering(
        &mut self,
        method: &str,
        params: Value,
        answer: impl Fn(&Value) -> Value,
    ) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(support::WAIT, self.from_gateway.next_line())
                .await
                .expect("no answer in time")
                .unwrap()
                .expect("the gateway closed its output");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("method").is_some() {
                if let Some(asked) = message.get("id") {
                    let result = answer(&message);
                    self.send(&json!({"jsonrpc": "2.0", "id": asked, "result": result}))
                        .await;
                }
                continue;
            }
            if message["id"] == id {
                return message;
            }
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_answering(method, params, |asked| {
            panic!("unexpected request from the gateway: {asked}")
        })
        .await
    }

    async fn initialize(&mut self) {
        let res = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "it", "version": "1"}}),
            )
            .await;
        assert!(res.get("result").is_some(), "{res}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
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
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let seen_by_layer = recorded.clone();
    let gateway = Gateway::builder(&examples(""))
        .layer(layer_fn(move |inner| Record {
            inner,
            seen: seen_by_layer.clone(),
        }))
        .start()
        .await;
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
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let seen_by_layer = recorded.clone();
    let gateway = Gateway::builder(&examples("context:\n  mode: discover\n"))
        .layer(layer_fn(move |inner| Record {
            inner,
            seen: seen_by_layer.clone(),
        }))
        .start()
        .await;
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
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let seen_by_layer = recorded.clone();
    let gateway = Gateway::builder(&config)
        .layer(layer_fn(move |inner| Record {
            inner,
            seen: seen_by_layer.clone(),
        }))
        .start()
        .await;
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
