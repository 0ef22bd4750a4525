//! Resource subscriptions end with the sessions that made them: when the
//! last live session that wants a URI goes away, the gateway ends the
//! upstream subscription. The gateway runs in this process (as an embedder
//! runs it) with a layer that records every call it makes to a backend, in
//! front of the npm reference server `server-everything`; its clients talk
//! to the stdio face over in-memory pipes.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::pipeline::{Reply, Routed};
use only1mcp_proxy::Gateway;
use only1mcp_test_support as support;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tower::Service;
use tower::layer::layer_fn;

use crate::init;

/// `(method, resource URI or name)` of every call the layer saw.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

#[derive(Clone)]
struct Record<S> {
    inner: S,
    seen: Seen,
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
        self.seen
            .lock()
            .unwrap()
            .push((routed.method().to_owned(), routed.route.name.to_string()));
        self.inner.call(routed)
    }
}

/// A legacy client of the stdio face over an in-memory pipe; its session
/// ends when it is [`Client::gone`].
struct Client {
    to_gateway: tokio::io::DuplexStream,
    from_gateway: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
    served: tokio::task::JoinHandle<()>,
    next_id: i64,
}

impl Client {
    async fn connect(gateway: &Gateway) -> Self {
        let (to_gateway, gateway_in) = tokio::io::duplex(1 << 20);
        let (gateway_out, from_gateway) = tokio::io::duplex(1 << 20);
        let gateway = gateway.clone();
        let served = tokio::spawn(async move {
            let _ = only1mcp_proxy::serve::serve_stdio(
                &gateway,
                "default",
                BufReader::new(gateway_in),
                gateway_out,
                std::future::pending(),
            )
            .await;
        });
        let mut client = Self {
            to_gateway,
            from_gateway: BufReader::new(from_gateway).lines(),
            served,
            next_id: 1,
        };
        let init = client
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "{init}");
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        client
    }

    async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.to_gateway.write_all(&line).await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
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
            if message.get("method").is_none() && message["id"] == id {
                return message;
            }
        }
    }

    /// Closes the client's input and waits until its session has been
    /// served to the end (and dropped).
    async fn gone(self) {
        drop(self.to_gateway);
        drop(self.from_gateway);
        tokio::time::timeout(support::WAIT, self.served)
            .await
            .expect("the session did not end")
            .unwrap();
    }
}

/// How many times `method` was sent upstream for `uri`.
fn sent(seen: &Seen, method: &str, uri: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, u)| m == method && u == uri)
        .count()
}

/// Waits until `method` for `uri` has been sent upstream `n` times.
async fn until_sent(seen: &Seen, method: &str, uri: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while sent(seen, method, uri) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{method} {uri} was not sent: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two sessions subscribe to the same URI: one upstream subscription. The
/// first session goes away: the URI stays subscribed for the other. The
/// other goes away too: the gateway sends `resources/unsubscribe` for each
/// URI it held. `limits.max_subscriptions` (here 2) bounds one session's
/// URIs, and an unsubscribe makes room.
#[tokio::test]
async fn subscriptions_of_sessions_that_end_are_released_upstream() {
    init();
    let dir = support::config(&format!(
        "limits:\n  max_subscriptions: 2\nservers:\n  everything:\n    command: {}\n",
        support::quote(&support::npm_bin("mcp-server-everything"))
    ));
    let config = only1mcp_proxy::load::load_file(&dir.path).unwrap();
    let seen = Seen::default();
    let recorder = seen.clone();
    let gateway = Gateway::builder(&config)
        .layer(layer_fn(move |inner| Record {
            inner,
            seen: recorder.clone(),
        }))
        .start()
        .await;
    let mut first = Client::connect(&gateway).await;
    let mut second = Client::connect(&gateway).await;
    let listed = first.request("resources/list", json!({})).await;
    let uris: Vec<String> = listed["result"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .take(3)
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uris.len(), 3, "{listed}");
    let (shared, own, third) = (&uris[0], &uris[1], &uris[2]);
    const SUBSCRIBE: &str = "resources/subscribe";
    const UNSUBSCRIBE: &str = "resources/unsubscribe";

    for client in [&mut first, &mut second] {
        let res = client.request(SUBSCRIBE, json!({"uri": shared})).await;
        assert_eq!(res["result"], json!({}), "{res}");
    }
    assert_eq!(
        sent(&seen, SUBSCRIBE, shared),
        1,
        "one upstream subscription"
    );
    // The bound: two URIs per session; the third is refused until one goes.
    let res = second.request(SUBSCRIBE, json!({"uri": own})).await;
    assert_eq!(res["result"], json!({}), "{res}");
    let refused = second.request(SUBSCRIBE, json!({"uri": third})).await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_subscriptions"),
        "{refused}"
    );
    assert_eq!(sent(&seen, SUBSCRIBE, third), 0);
    let res = second.request(UNSUBSCRIBE, json!({"uri": own})).await;
    assert_eq!(res["result"], json!({}), "{res}");
    assert_eq!(sent(&seen, UNSUBSCRIBE, own), 1);
    let res = second.request(SUBSCRIBE, json!({"uri": third})).await;
    assert_eq!(res["result"], json!({}), "{res}");

    // The first session ends: the shared URI is still wanted.
    first.gone().await;
    // (A request through the gateway after the session's end: anything the
    // end sent upstream was sent before this answer.)
    let res = second.request("ping", json!({})).await;
    assert_eq!(res["result"], json!({}), "{res}");
    assert_eq!(sent(&seen, UNSUBSCRIBE, shared), 0, "{:?}", seen.lock());

    // The second ends: nobody wants either URI any more.
    second.gone().await;
    until_sent(&seen, UNSUBSCRIBE, shared, 1).await;
    until_sent(&seen, UNSUBSCRIBE, third, 1).await;
    gateway.shutdown().await;
}
