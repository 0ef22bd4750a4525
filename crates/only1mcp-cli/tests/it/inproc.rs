//! The gateway run in this process, as an embedder runs it: a layer that
//! records every call it makes to a backend, and clients of its stdio face
//! over in-memory pipes. Used by the pipeline and subscription tests.

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

/// What a layer saw of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) server: String,
    pub(crate) name: String,
    pub(crate) exposed: Option<String>,
    pub(crate) era: Era,
    pub(crate) keyed: bool,
}

/// A layer that records every call it sees, then passes it on.
#[derive(Clone)]
pub(crate) struct Record<S> {
    pub(crate) inner: S,
    pub(crate) seen: Recorded,
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

/// Every call a [`Record`] layer saw, in order.
pub(crate) type Recorded = Arc<Mutex<Vec<Seen>>>;

/// A gateway for `config` with a [`Record`] layer over its call stack, and
/// what the layer saw.
pub(crate) async fn recorded_gateway(config: &Config) -> (Gateway, Recorded) {
    let recorded = Recorded::default();
    let seen = recorded.clone();
    let gateway = Gateway::builder(config)
        .layer(layer_fn(move |inner| Record {
            inner,
            seen: seen.clone(),
        }))
        .start()
        .await;
    (gateway, recorded)
}

/// A client of the gateway's stdio face over an in-memory pipe.
pub(crate) struct Client {
    to_gateway: tokio::io::DuplexStream,
    from_gateway: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
    served: tokio::task::JoinHandle<()>,
    next_id: i64,
}

impl Client {
    /// Serves `gateway` with the view of `profile` to a new client.
    pub(crate) fn serve(gateway: &Gateway, profile: &str) -> Self {
        let (to_gateway, gateway_in) = tokio::io::duplex(1 << 20);
        let (gateway_out, from_gateway) = tokio::io::duplex(1 << 20);
        let gateway = gateway.clone();
        let profile = profile.to_owned();
        let served = tokio::spawn(async move {
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
            served,
            next_id: 1,
        }
    }

    pub(crate) async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.to_gateway.write_all(&line).await.unwrap();
    }

    /// Sends a request and returns its response; requests from the gateway
    /// meanwhile are answered by `answer`, notifications skipped.
    pub(crate) async fn request_answering(
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

    pub(crate) async fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_answering(method, params, |asked| {
            panic!("unexpected request from the gateway: {asked}")
        })
        .await
    }

    pub(crate) async fn initialize(&mut self) {
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

    /// Closes the client's input and waits until its session has been
    /// served to the end (and dropped).
    pub(crate) async fn gone(self) {
        drop(self.to_gateway);
        drop(self.from_gateway);
        tokio::time::timeout(support::WAIT, self.served)
            .await
            .expect("the session did not end")
            .unwrap();
    }
}
