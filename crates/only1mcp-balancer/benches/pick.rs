//! divan benches of picking a replica: what the balancer adds to each call
//! of a server with replicas (ADR 0017), per strategy, over 3 and 16
//! replicas that are all ready.
//!
//! Run with `cargo bench -p only1mcp-balancer --bench pick`.

#![allow(
    clippy::unwrap_used,
    reason = "bench set-up; a failure is a bug in the bench"
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use divan::Bencher;
use only1mcp_balancer::{Balance, NeverRepeat};
use only1mcp_core::Error;
use only1mcp_core::config::replicas::Strategy;
use only1mcp_core::pipeline::{Affinity, Availability, Endpoint, Reply, Routed};

fn main() {
    divan::main();
}

/// A replica that is always ready, with a gauge of calls in flight.
#[derive(Clone)]
struct Ready(Arc<AtomicUsize>);

impl Endpoint for Ready {
    fn availability(&self) -> Availability {
        Availability::Ready
    }

    fn in_flight(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl tower::Service<Routed> for Ready {
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Routed) -> Self::Future {
        Box::pin(std::future::ready(Err(Error::CircuitOpen {
            server: String::new(),
        })))
    }
}

fn balance(strategy: Strategy, n: usize) -> Balance<Ready> {
    let replicas = (0..n)
        .map(|i| Ready(Arc::new(AtomicUsize::new(i % 3))))
        .collect();
    Balance::new("bench".into(), replicas, strategy, NeverRepeat)
}

const STRATEGIES: [Strategy; 4] = [
    Strategy::P2c,
    Strategy::RoundRobin,
    Strategy::LeastInFlight,
    Strategy::Hash,
];

#[divan::bench(args = STRATEGIES, consts = [3, 16])]
fn pick<const N: usize>(bencher: Bencher<'_, '_>, strategy: Strategy) {
    let balance = balance(strategy, N);
    let mut key = 0u64;
    bencher.bench_local(|| {
        key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
        divan::black_box(balance.pick(divan::black_box(Affinity::Key(key))))
    });
}
