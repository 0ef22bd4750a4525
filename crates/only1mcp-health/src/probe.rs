//! Active health checks: an MCP `ping` to each replica on an interval.

use std::time::Duration;

use only1mcp_core::catalog::Route;
use only1mcp_core::mcp::Era;
use only1mcp_core::pipeline::{Availability, CallService, Endpoint, Routed};
use only1mcp_core::upstream::Call;
use tower::ServiceExt as _;

use crate::breaker::State;
use crate::circuit::CircuitBreaker;

/// How a replica is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Time between checks.
    pub interval: Duration,
    /// Time a check has to be answered.
    pub timeout: Duration,
}

/// Pings the replica behind `breaker` (through its service, not the
/// breaker) every `checks.interval` while it is ready and its breaker is
/// not open. A ping with no answer within `checks.timeout` or a lost
/// connection counts as a failure (it opens a half-open breaker again,
/// cutting its trial calls short); an answer (a backend's own error is one)
/// counts as a good trial of a half-open breaker. Runs until dropped.
pub async fn watch<S>(server: std::sync::Arc<str>, breaker: CircuitBreaker<S>, checks: Checks)
where
    S: CallService + Endpoint,
{
    let mut ticks = tokio::time::interval(checks.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A starting replica is its supervisor's business; an open breaker
        // waits for its time to be up.
        if breaker.inner().availability() != Availability::Ready || breaker.state() == State::Open {
            continue;
        }
        let ping = Routed::new(
            Call::new("ping", None),
            Route {
                server: server.clone(),
                name: "".into(),
            },
            Era::Legacy,
        );
        let res = tokio::time::timeout(checks.timeout, breaker.inner().clone().oneshot(ping)).await;
        let answered = res.is_ok_and(|res| {
            !matches!(
                res,
                Err(only1mcp_core::Error::UpstreamClosed { .. }
                    | only1mcp_core::Error::UpstreamUnavailable { .. }
                    | only1mcp_core::Error::UpstreamTimedOut { .. })
            )
        });
        if answered {
            breaker.check_passed();
        } else {
            tracing::warn!(server = %server, "Health check got no answer");
            breaker.check_failed();
        }
    }
}
