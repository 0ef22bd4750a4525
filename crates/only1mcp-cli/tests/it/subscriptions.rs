//! Resource subscriptions end with the sessions that made them: when the
//! last live session that wants a URI goes away, the gateway ends the
//! upstream subscription. The gateway runs in this process (as an embedder
//! runs it) with a layer that records every call it makes to a backend, in
//! front of the npm reference server `server-everything`; its clients talk
//! to the stdio face over in-memory pipes.

use only1mcp_test_support as support;
use serde_json::json;

use crate::init;
use crate::inproc::{Client, Recorded, recorded_gateway};

/// How many times `method` was sent upstream for `uri`.
fn sent(seen: &Recorded, method: &str, uri: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == method && s.name == uri)
        .count()
}

/// Waits until `method` for `uri` has been sent upstream `n` times.
async fn until_sent(seen: &Recorded, method: &str, uri: &str, n: usize) {
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
    let (gateway, seen) = recorded_gateway(&config).await;
    let mut first = Client::serve(&gateway, "default");
    first.initialize().await;
    let mut second = Client::serve(&gateway, "default");
    second.initialize().await;
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
