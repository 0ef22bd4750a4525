//! Who a backend's request goes to, decided over registered callers.

use only1mcp_core::config::Config;

use super::*;
use crate::gateway::Gateway;
use crate::session::ClientSession;

fn caps(json: &str) -> Option<Box<RawValue>> {
    Some(RawValue::from_string(json.to_owned()).unwrap())
}

fn relay(roots: bool) -> Arc<Relay> {
    let roots = roots.then(|| {
        vec![RootConfig {
            uri: "file:///configured".to_owned(),
            name: Some("configured".to_owned()),
        }]
    });
    Relay::new(
        "srv".into(),
        ClientRequests::Relay,
        roots.as_deref(),
        Duration::from_secs(1),
    )
}

fn caller(session: &Arc<ClientSession>, capabilities: &str) -> Caller {
    Caller {
        session: Arc::downgrade(session) as Weak<dyn ClientLink>,
        reach: Reach::Nowhere,
        capabilities: caps(capabilities),
    }
}

fn refusal(decision: Decision) -> String {
    match decision {
        Decision::Refuse(error) => error.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn no_call_in_flight_gets_the_configured_roots_or_a_clear_error() {
    assert!(matches!(
        relay(true).decide(ROOTS),
        Decision::ConfiguredRoots
    ));
    let message = refusal(relay(false).decide(ROOTS));
    assert!(message.contains("set servers.srv.roots"), "{message}");
    let message = refusal(relay(true).decide(SAMPLING));
    assert!(
        message.contains("no client request is in progress"),
        "{message}"
    );
}

#[tokio::test]
async fn the_one_client_in_flight_is_asked_if_it_declared_the_capability() {
    let gateway = Gateway::start(&Config::default()).await;
    let a = ClientSession::new(gateway, None);
    let relay = relay(true);
    let _one = relay.register(caller(&a, r#"{"sampling":{}}"#));
    // Two calls of the same client are still one client.
    let _two = relay.register(caller(&a, r#"{"sampling":{}}"#));
    match relay.decide(SAMPLING) {
        Decision::Ask(c) => assert!(std::ptr::addr_eq(c.session.as_ptr(), Arc::as_ptr(&a))),
        other => panic!("{other:?}"),
    }
    let message = refusal(relay.decide(ELICITATION));
    assert!(
        message.contains("did not declare the elicitation capability"),
        "{message}"
    );
    // Roots it did not declare: the configured ones, never another's.
    assert!(matches!(relay.decide(ROOTS), Decision::ConfiguredRoots));
}

#[tokio::test]
async fn two_clients_in_flight_are_never_guessed_between() {
    let gateway = Gateway::start(&Config::default()).await;
    let a = ClientSession::new(gateway.clone(), None);
    let b = ClientSession::new(gateway, None);
    let relay = relay(true);
    let _a = relay.register(caller(&a, r#"{"sampling":{},"roots":{}}"#));
    let b_call = relay.register(caller(&b, r#"{"sampling":{},"roots":{}}"#));
    let message = refusal(relay.decide(SAMPLING));
    assert!(message.contains("2 clients"), "{message}");
    assert!(matches!(relay.decide(ROOTS), Decision::Refuse(_)));
    // b's call ends: a is the only one left.
    drop(b_call);
    assert!(matches!(relay.decide(SAMPLING), Decision::Ask(_)));
    // A session that is gone does not count.
    let _gone = relay.register(caller(&b, r#"{"sampling":{}}"#));
    drop(b);
    assert!(matches!(relay.decide(SAMPLING), Decision::Ask(_)));
}

#[tokio::test]
async fn refuse_mode_and_unknown_methods_are_refused() {
    let refusing = Relay::new(
        "srv".into(),
        ClientRequests::Refuse,
        None,
        Duration::from_secs(1),
    );
    assert!(!refusing.relays());
    let message = refusal(refusing.decide(SAMPLING));
    assert!(message.contains("client_requests is refuse"), "{message}");
    let message = refusal(relay(true).decide("tasks/get"));
    assert!(message.contains("does not relay tasks/get"), "{message}");
}

#[tokio::test]
async fn a_held_request_is_answered_by_the_retry() {
    let gateway = Gateway::start(&Config::default()).await;
    let a = ClientSession::new(gateway.clone(), None);
    let relay = relay(false);
    let (tx, mut rx) = mpsc::channel(1);
    let _call = relay.register(Caller {
        session: Arc::downgrade(&a) as Weak<dyn ClientLink>,
        reach: Reach::Hold(tx),
        capabilities: caps(r#"{"sampling":{}}"#),
    });
    let request = Request {
        id: jsonrpc::Id::Number(7),
        method: SAMPLING.to_owned(),
        params: caps(r#"{"messages":[]}"#),
    };
    let answering = tokio::spawn(async move {
        let pending = rx.recv().await.unwrap();
        assert_eq!(pending.method, SAMPLING);
        pending
            .answer
            .send(Ok(RawValue::from_string(r#"{"ok":1}"#.to_owned()).unwrap()))
            .unwrap();
    });
    let outcome = relay.outcome(&request).await.unwrap();
    assert_eq!(outcome.get(), r#"{"ok":1}"#);
    answering.await.unwrap();
}

#[tokio::test]
async fn a_backend_cancel_stops_the_ask_and_tells_the_client() {
    let gateway = Gateway::start(&Config::default()).await;
    let (outbound, mut to_client) =
        Outbound::channel(1 << 16, only1mcp_transport::downstream::OnFull::Disconnect);
    let a = ClientSession::new(gateway, Some(outbound.clone()));
    let relay = relay(false);
    let _call = relay.register(Caller {
        session: Arc::downgrade(&a) as Weak<dyn ClientLink>,
        reach: Reach::Ask(outbound),
        capabilities: caps(r#"{"sampling":{}}"#),
    });
    let request = Request {
        id: jsonrpc::Id::Number(7),
        method: SAMPLING.to_owned(),
        params: caps(r#"{"messages":[]}"#),
    };
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let asking = relay.clone();
    relay.track(request.id.clone(), async move {
        let _ = asking.outcome(&request).await;
        let _ = done_tx.send(());
    });
    // The client is asked...
    let asked: serde_json::Value =
        serde_json::from_slice(&to_client.recv().await.unwrap()).unwrap();
    assert_eq!(asked["method"], SAMPLING);
    let client_id = asked["id"].clone();
    // ...the backend cancels its request 7...
    relay.cancel(Some(
        &RawValue::from_string(r#"{"requestId":7}"#.to_owned()).unwrap(),
    ));
    // ...and the client is told to stop, with the id it was asked under.
    let cancelled: serde_json::Value =
        serde_json::from_slice(&to_client.recv().await.unwrap()).unwrap();
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], client_id);
    // The answering stopped without finishing, and is forgotten.
    assert!(done_rx.try_recv().is_err());
    tokio::task::yield_now().await;
    assert!(relay.answering().is_empty());
    // A cancel of nothing in progress is ignored.
    relay.cancel(Some(
        &RawValue::from_string(r#"{"requestId":8}"#.to_owned()).unwrap(),
    ));
}
