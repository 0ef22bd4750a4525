//! The balancer: a [`CallService`] over a server's replicas that picks one
//! for each call, and retries safe calls on another within a budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use only1mcp_core::Error;
use only1mcp_core::config::replicas::{MAX_REPLICAS, Strategy};
use only1mcp_core::pipeline::{Affinity, Availability, CallService, Endpoint, Reply, Routed};
use only1mcp_core::upstream::Call;
use tower::{Service, ServiceExt as _};

use crate::budget::Budget;
use crate::load::PeakEwma;
use crate::ring::Ring;

/// Decides whether a call may be sent again after it reached a replica
/// that failed: the tool is read-only or idempotent, or the method only
/// reads. Implemented for closures.
pub trait Repeatable: Send + Sync + 'static {
    /// Whether `routed` may be sent twice.
    fn repeatable(&self, routed: &Routed) -> bool;
}

impl<F> Repeatable for F
where
    F: Fn(&Routed) -> bool + Send + Sync + 'static,
{
    fn repeatable(&self, routed: &Routed) -> bool {
        self(routed)
    }
}

/// Nothing is sent twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverRepeat;

impl Repeatable for NeverRepeat {
    fn repeatable(&self, _: &Routed) -> bool {
        false
    }
}

/// One replica's state as the balancer sees it, for status pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaLoad {
    /// Whether it takes calls now.
    pub availability: Availability,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// Its peak-EWMA latency estimate.
    pub ewma: Duration,
}

/// Spreads calls over replicas (`S`: each replica's service, usually a
/// circuit breaker over an endpoint). Cheap to clone.
pub struct Balance<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Balance<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Balance<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balance")
            .field("server", &self.shared.server)
            .field("replicas", &self.shared.replicas.len())
            .field("strategy", &self.shared.strategy)
            .finish()
    }
}

struct Shared<S> {
    server: Arc<str>,
    replicas: Box<[Replica<S>]>,
    strategy: Strategy,
    /// The ring, for `Strategy::Hash`.
    ring: Option<Ring>,
    /// The next replica of `Strategy::RoundRobin`.
    next: AtomicUsize,
    budget: Budget,
    repeatable: Box<dyn Repeatable>,
    epoch: Instant,
}

struct Replica<S> {
    service: S,
    load: PeakEwma,
}

impl<S> Balance<S>
where
    S: CallService + Endpoint + Sync,
{
    /// A balancer of `server` over `replicas` (at most 64; more are not
    /// used), picking by `strategy`; calls `repeatable` says are safe are
    /// retried on another replica after a connection failure, within a
    /// budget of one retry per five calls plus ten a second.
    pub fn new(
        server: Arc<str>,
        replicas: Vec<S>,
        strategy: Strategy,
        repeatable: impl Repeatable,
    ) -> Self {
        let replicas: Box<[Replica<S>]> = replicas
            .into_iter()
            .take(MAX_REPLICAS)
            .map(|service| Replica {
                service,
                load: PeakEwma::new(),
            })
            .collect();
        let ring = (strategy == Strategy::Hash).then(|| Ring::new(replicas.len()));
        Self {
            shared: Arc::new(Shared {
                server,
                replicas,
                strategy,
                ring,
                next: AtomicUsize::new(0),
                budget: Budget::new(0.2, 10),
                repeatable: Box::new(repeatable),
                epoch: Instant::now(),
            }),
        }
    }

    /// The replica that would take a call with `affinity` now, if any.
    pub fn pick(&self, affinity: Affinity) -> Option<usize> {
        self.shared.pick(affinity, 0)
    }

    /// Each replica's service (to read its own state).
    pub fn replicas(&self) -> impl Iterator<Item = &S> {
        self.shared.replicas.iter().map(|r| &r.service)
    }

    /// Each replica's load, in order.
    pub fn loads(&self) -> Vec<ReplicaLoad> {
        self.shared
            .replicas
            .iter()
            .map(|r| ReplicaLoad {
                availability: r.service.availability(),
                in_flight: r.service.in_flight(),
                ewma: r.load.rtt(self.shared.epoch),
            })
            .collect()
    }
}

impl<S> Shared<S>
where
    S: CallService + Endpoint + Sync,
{
    /// Picks a replica not in `tried` (a bit per replica): a ready one if
    /// any, else one that is starting.
    fn pick(&self, affinity: Affinity, tried: u64) -> Option<usize> {
        if let Affinity::Replica(idx) = affinity {
            let idx = idx as usize;
            return (idx < self.replicas.len()
                && tried & (1 << idx) == 0
                && self.replicas[idx].service.availability() != Availability::Down)
                .then_some(idx);
        }
        self.pick_among(affinity, tried, |a| a == Availability::Ready)
            .or_else(|| self.pick_among(affinity, tried, |a| a != Availability::Down))
    }

    fn pick_among(
        &self,
        affinity: Affinity,
        tried: u64,
        fits: impl Fn(Availability) -> bool,
    ) -> Option<usize> {
        let n = self.replicas.len();
        let usable =
            |idx: usize| tried & (1 << idx) == 0 && fits(self.replicas[idx].service.availability());
        match (self.strategy, affinity, &self.ring) {
            (Strategy::Hash, Affinity::Key(key), Some(ring)) => ring.get(key, usable),
            (Strategy::RoundRobin, ..) => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|j| (start + j) % n).find(|&idx| usable(idx))
            }
            (Strategy::LeastInFlight, ..) => (0..n)
                .filter(|&idx| usable(idx))
                .min_by_key(|&idx| self.replicas[idx].service.in_flight()),
            // P2c, and Hash without a key.
            _ => {
                if n >= 2 {
                    let a = fastrand::usize(..n);
                    let mut b = fastrand::usize(..n - 1);
                    if b >= a {
                        b += 1;
                    }
                    if usable(a) && usable(b) {
                        return Some(if self.cost(a) <= self.cost(b) { a } else { b });
                    }
                }
                // Few usable: the cheapest of those.
                (0..n)
                    .filter(|&idx| usable(idx))
                    .min_by(|&x, &y| self.cost(x).total_cmp(&self.cost(y)))
            }
        }
    }

    fn cost(&self, idx: usize) -> f64 {
        let replica = &self.replicas[idx];
        replica.load.cost(replica.service.in_flight(), self.epoch)
    }

    /// Sends `routed` to a replica; a replica that refuses it before it is
    /// sent (its breaker is open, it is down) is passed over for another,
    /// and a repeatable call whose replica failed (connection lost or
    /// refused) goes to another within the budget.
    async fn send(&self, routed: Routed) -> Result<Reply, Error> {
        self.budget.deposit();
        let repeatable = self.replicas.len() > 1 && self.repeatable.repeatable(&routed);
        let affinity = routed.affinity;
        let mut routed = Some(routed);
        let mut tried = 0u64;
        let mut last = None;
        loop {
            let Some(idx) = self.pick(affinity, tried) else {
                return Err(last.unwrap_or_else(|| Error::CircuitOpen {
                    server: self.server.to_string(),
                }));
            };
            tried |= 1 << idx;
            let replica = &self.replicas[idx];
            let mut service = replica.service.clone();
            if let Err(refused) = service.ready().await {
                // Nothing was sent: any call may go elsewhere.
                last = Some(refused);
                continue;
            }
            let Some(this) = routed.take() else {
                return Err(last.unwrap_or_else(|| Error::CircuitOpen {
                    server: self.server.to_string(),
                }));
            };
            if repeatable {
                routed = Some(copy(&this));
            }
            let begun = Instant::now();
            let res = service.call(this).await;
            // A call its breaker cut short measured nothing of the replica.
            if !matches!(res, Err(Error::CircuitOpen { .. })) {
                replica.load.observe(begun.elapsed(), self.epoch);
            }
            match res {
                Err(error)
                    if routed.is_some()
                        && connection_failed(&error)
                        && self.pick(affinity, tried).is_some()
                        && self.budget.withdraw() =>
                {
                    tracing::debug!(server = %self.server, replica = idx, error = %error, "Retrying on another replica");
                    last = Some(error);
                }
                res => return res,
            }
        }
    }
}

/// Whether a replica's failure says it could not serve (lost or refused
/// the connection, its breaker open), rather than that the call itself
/// failed or took too long.
fn connection_failed(error: &Error) -> bool {
    matches!(
        error,
        Error::UpstreamClosed { .. }
            | Error::UpstreamUnavailable { .. }
            | Error::CircuitOpen { .. }
    )
}

/// A copy of a call, to send it again.
fn copy(routed: &Routed) -> Routed {
    Routed {
        call: Call::new(routed.call.method.clone(), routed.call.params.clone()),
        route: routed.route.clone(),
        exposed: routed.exposed.clone(),
        era: routed.era,
        principal: routed.principal.clone(),
        affinity: routed.affinity,
        extensions: routed.extensions.clone(),
    }
}

/// The future of a balanced call.
pub type BalanceFuture = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

impl<S> Service<Routed> for Balance<S>
where
    S: CallService + Endpoint + Sync,
{
    type Response = Reply;
    type Error = Error;
    type Future = BalanceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Each call picks a replica that is ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, routed: Routed) -> BalanceFuture {
        let shared = self.shared.clone();
        Box::pin(async move { shared.send(routed).await })
    }
}

impl<S> Endpoint for Balance<S>
where
    S: CallService + Endpoint + Sync,
{
    fn availability(&self) -> Availability {
        let mut best = Availability::Down;
        for replica in &*self.shared.replicas {
            match replica.service.availability() {
                Availability::Ready => return Availability::Ready,
                Availability::Starting => best = Availability::Starting,
                Availability::Down => {}
            }
        }
        best
    }

    fn in_flight(&self) -> usize {
        self.shared
            .replicas
            .iter()
            .map(|r| r.service.in_flight())
            .sum()
    }
}

#[cfg(test)]
mod tests;
