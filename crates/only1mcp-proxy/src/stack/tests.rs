use std::collections::BTreeMap;

use only1mcp_core::catalog::Route;
use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::Call;
use tower::layer::util::Identity;

use super::*;

fn empty_backends() -> Backends {
    Arc::new(ArcSwap::from_pointee(BTreeMap::new()))
}

fn routed(server: &str) -> Routed {
    Routed::new(
        Call::new("tools/call", None),
        Route {
            server: server.into(),
            name: "x".into(),
        },
        Era::Legacy,
    )
}

#[test]
fn a_bare_router_is_not_boxed_but_a_layered_one_is() {
    let bare = build(&Identity::new(), empty_backends(), None);
    assert_eq!(format!("{bare:?}"), "CallStack(\"router\")");
    let layered = build(
        &tower::layer::layer_fn(|router: Router| tower::util::MapErr::new(router, |e: Error| e)),
        empty_backends(),
        None,
    );
    assert_eq!(format!("{layered:?}"), "CallStack(\"layered\")");
}

#[tokio::test]
async fn a_call_to_a_server_that_is_not_configured_fails_at_once() {
    let stack = build(&Identity::new(), empty_backends(), None);
    let error = stack.dispatch(routed("nope")).await.unwrap_err();
    assert_eq!(
        error,
        Error::UpstreamUnavailable {
            server: "nope".to_owned(),
            reason: "not configured".to_owned(),
        }
    );
}
