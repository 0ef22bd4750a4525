//! The circuit breaker as a tower service over one replica.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use only1mcp_core::Error;
use only1mcp_core::pipeline::{Availability, CallService, Endpoint, Reply, Routed};
use tower::Service;

use crate::breaker::{Breaker, Permit, State, Thresholds};

/// Makes [`CircuitBreaker`]s with the same thresholds.
#[derive(Debug, Clone, Copy)]
pub struct CircuitBreakerLayer {
    thresholds: Thresholds,
}

impl CircuitBreakerLayer {
    /// Breakers with `thresholds`.
    pub fn new(thresholds: Thresholds) -> Self {
        Self { thresholds }
    }
}

impl<S> tower::Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker::new(inner, self.thresholds)
    }
}

/// A replica behind its breaker: `poll_ready` refuses with
/// [`Error::CircuitOpen`] while the breaker is open (or half-open with
/// every trial out), and each call's end is recorded. Through
/// [`Endpoint`], an open breaker makes the replica unavailable, so a
/// balancer passes it over. Clones share the breaker.
#[derive(Debug)]
pub struct CircuitBreaker<S> {
    inner: S,
    shared: Arc<Shared>,
    /// The permit `poll_ready` took for the next call.
    permit: Option<Permit>,
}

#[derive(Debug)]
struct Shared {
    breaker: Breaker,
    epoch: Instant,
    server: Arc<str>,
    /// Woken when the breaker opens: the calls in flight give up.
    opened: tokio::sync::Notify,
}

impl<S: Clone> Clone for CircuitBreaker<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            permit: None,
        }
    }
}

impl<S> CircuitBreaker<S> {
    /// `inner` behind a closed breaker.
    pub fn new(inner: S, thresholds: Thresholds) -> Self {
        Self::named(inner, thresholds, Arc::from(""))
    }

    /// `inner` (a replica of `server`, named in refusals) behind a closed
    /// breaker.
    pub fn named(inner: S, thresholds: Thresholds, server: Arc<str>) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                breaker: Breaker::new(thresholds),
                epoch: Instant::now(),
                server,
                opened: tokio::sync::Notify::new(),
            }),
            permit: None,
        }
    }

    /// The service behind the breaker.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Where the breaker stands now.
    pub fn state(&self) -> State {
        self.shared.breaker.state(self.shared.now())
    }

    /// How many times it opened.
    pub fn times_opened(&self) -> u64 {
        self.shared.breaker.times_opened()
    }

    /// Records an answered health check (a half-open breaker counts it as
    /// a good trial).
    pub fn check_passed(&self) {
        self.shared.breaker.record_check_passed(self.shared.now());
    }

    /// Records a failed health check.
    pub fn check_failed(&self) {
        let opened = self.shared.breaker.record_failure(self.shared.now());
        self.shared.opened_if(opened);
    }
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self, permit: Permit, res: &Result<Reply, Error>) {
        let opened = self
            .breaker
            .record(permit, !replica_failed(res), self.now());
        self.opened_if(opened);
    }

    fn opened_if(&self, opened: bool) {
        if opened {
            tracing::warn!(server = %self.server, "Replica ejected: its breaker opened");
            self.opened.notify_waiters();
        }
    }
}

/// Whether a call's end says the replica failed: it lost or refused the
/// connection, or did not answer in time. A backend's own JSON-RPC error
/// is an answer.
fn replica_failed(res: &Result<Reply, Error>) -> bool {
    matches!(
        res,
        Err(Error::UpstreamClosed { .. }
            | Error::UpstreamUnavailable { .. }
            | Error::UpstreamTimedOut { .. }
            | Error::UpstreamProtocol { .. })
    )
}

/// The future of a call through a breaker.
pub type CircuitFuture = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

impl<S> Service<Routed> for CircuitBreaker<S>
where
    S: CallService,
{
    type Response = Reply;
    type Error = Error;
    type Future = CircuitFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.permit.is_none() {
            match self.shared.breaker.admit(self.shared.now()) {
                Some(permit) => self.permit = Some(permit),
                None => {
                    return Poll::Ready(Err(Error::CircuitOpen {
                        server: self.shared.server.to_string(),
                    }));
                }
            }
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                if let Some(permit) = self.permit.take() {
                    self.shared.record(permit, &Err(e.clone()));
                }
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }

    fn call(&mut self, routed: Routed) -> CircuitFuture {
        let permit = self.permit.take().unwrap_or(Permit::Normal);
        let mut pending = Pending {
            shared: self.shared.clone(),
            permit: Some(permit),
        };
        let call = self.inner.call(routed);
        Box::pin(async move {
            // A call in flight when the breaker opens (the replica hangs)
            // gives up at once rather than at its timeout; a balancer may
            // send it to another replica if it is safe to repeat.
            let shared = pending.shared.clone();
            let opened = shared.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            let res = tokio::select! {
                biased;
                res = call => res,
                () = opened => Err(Error::CircuitOpen {
                    server: shared.server.to_string(),
                }),
            };
            if let Some(permit) = pending.permit.take() {
                if matches!(res, Err(Error::CircuitOpen { .. })) {
                    shared.breaker.release(permit);
                } else {
                    shared.record(permit, &res);
                }
            }
            res
        })
    }
}

impl<S> Drop for CircuitBreaker<S> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.shared.breaker.release(permit);
        }
    }
}

/// A call's permit until its end is recorded; a call dropped before its
/// end (cancelled) gives its permit back.
struct Pending {
    shared: Arc<Shared>,
    permit: Option<Permit>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.shared.breaker.release(permit);
        }
    }
}

impl<S> Endpoint for CircuitBreaker<S>
where
    S: Endpoint,
{
    fn availability(&self) -> Availability {
        if self.shared.breaker.would_admit(self.shared.now()) {
            self.inner.availability()
        } else {
            Availability::Down
        }
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
}
