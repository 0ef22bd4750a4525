//! The call path of one backend: waiting for it to be ready, the request
//! timeout, in-flight counting (which a reload's drain waits on) and stats,
//! and params fitted to the backend's era. `stack::Endpoint` calls
//! [`Backend::call`] for every client call that reaches this backend.

use std::time::{Duration, Instant};

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{ErrorObject, Outcome};
use only1mcp_core::mcp::{self, Era};
use only1mcp_core::upstream::Call;
use serde_json::value::RawValue;
use tower::Service;

use super::{Backend, Status};

/// Counts one call in flight while it lives.
struct InFlight<'a>(&'a Backend);

impl<'a> InFlight<'a> {
    fn new(backend: &'a Backend) -> Self {
        backend
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(backend)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.drained.notify_waiters();
        }
    }
}

impl Backend {
    /// Calls in flight right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no call is in flight, at most `limit`; returns whether it
    /// drained.
    pub async fn drain(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Sends one request, waiting for readiness if the backend is (re)starting,
    /// all within the request timeout. Dropping the future or running out of
    /// time cancels the request on the backend.
    pub async fn call(&self, call: Call) -> Result<(Era, Outcome), Error> {
        let in_flight = InFlight::new(self);
        // A call that looked this backend up just before a reload replaced
        // it goes to its successor: counted first, so a drain either waits
        // for it or it is not sent here (ADR 0014).
        if let Some(successor) = self.successor() {
            drop(in_flight);
            return Box::pin(successor.call(call)).await;
        }
        let _in_flight = in_flight;
        self.stats.started();
        let begun = Instant::now();
        let timeout = self.settings.request_timeout;
        let work = async {
            let mut rx = self.status.subscribe();
            let live = loop {
                let status = rx
                    .wait_for(|s| !matches!(s, Status::Starting | Status::Restarting))
                    .await
                    .map(|s| s.clone())
                    .unwrap_or(Status::Stopped);
                match status {
                    Status::Ready => {
                        if let Some(live) = self.live.load_full() {
                            break live;
                        }
                        // The connection just closed and the supervisor has
                        // not yet said so: wait for it to (restart or fail).
                        if rx.changed().await.is_err() {
                            return Err(self.unavailable("stopped".to_owned()));
                        }
                    }
                    Status::Failed(reason) => return Err(self.unavailable(reason)),
                    Status::Stopped => return Err(self.unavailable("stopped".to_owned())),
                    Status::Starting | Status::Restarting => {}
                }
            };
            let era = live.established.era;
            let mut connection = live.connection.clone();
            drop(live);
            connection.call(call).await.map(|outcome| (era, outcome))
        };
        let res = match tokio::time::timeout(timeout, work).await {
            Ok(res) => res,
            Err(_) => Err(Error::UpstreamTimedOut {
                server: self.id.to_string(),
                after: timeout,
            }),
        };
        self.stats.finished(&res, begun.elapsed());
        res
    }

    fn unavailable(&self, reason: String) -> Error {
        Error::UpstreamUnavailable {
            server: self.id.to_string(),
            reason,
        }
    }

    /// Params as this backend's era expects them.
    pub fn adapt_params(
        &self,
        era: Era,
        params: Option<&RawValue>,
    ) -> Result<Option<Box<RawValue>>, ErrorObject> {
        match era {
            Era::Legacy => mcp::legacy_params(params),
            // A modern backend asks for input per request, from the
            // capabilities the request carries: none here.
            Era::Modern => mcp::modern_params(params, &empty_capabilities(), &self.identity.info),
        }
    }

    /// Params for this (modern) backend declaring `capabilities` as the
    /// client's: a legacy client's own, whose input requests the gateway
    /// bridges.
    pub fn adapt_params_with(
        &self,
        capabilities: &RawValue,
        params: Option<&RawValue>,
    ) -> Result<Option<Box<RawValue>>, ErrorObject> {
        mcp::modern_params(params, capabilities, &self.identity.info)
    }
}

/// The client capabilities the gateway declares to a modern backend on its
/// own behalf: none (a client's own go with its calls, `adapt_params_with`).
fn empty_capabilities() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}
