use std::sync::Mutex;
use std::sync::atomic::AtomicU8;

use only1mcp_core::catalog::Route;
use only1mcp_core::mcp::Era;

use super::*;

/// A replica that answers or fails as told, and counts what it got.
#[derive(Clone)]
struct Fake(Arc<FakeState>);

struct FakeState {
    /// 0 ready, 1 starting, 2 down.
    availability: AtomicU8,
    /// Fail every call with this, if set.
    fail: Mutex<Option<Error>>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
}

impl Fake {
    fn new() -> Self {
        Self(Arc::new(FakeState {
            availability: AtomicU8::new(0),
            fail: Mutex::new(None),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        }))
    }

    fn down(&self) {
        self.0.availability.store(2, Ordering::Relaxed);
    }

    fn failing(&self, error: Error) {
        *self.0.fail.lock().unwrap() = Some(error);
    }

    fn calls(&self) -> usize {
        self.0.calls.load(Ordering::Relaxed)
    }
}

impl Endpoint for Fake {
    fn availability(&self) -> Availability {
        match self.0.availability.load(Ordering::Relaxed) {
            0 => Availability::Ready,
            1 => Availability::Starting,
            _ => Availability::Down,
        }
    }

    fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Relaxed)
    }
}

impl Service<Routed> for Fake {
    type Response = Reply;
    type Error = Error;
    type Future = BalanceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(if self.availability() == Availability::Down {
            Err(Error::CircuitOpen {
                server: "s".to_owned(),
            })
        } else {
            Ok(())
        })
    }

    fn call(&mut self, _: Routed) -> BalanceFuture {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        let fail = self.0.fail.lock().unwrap().clone();
        Box::pin(async move {
            match fail {
                Some(error) => Err(error),
                None => Ok(Reply {
                    era: Era::Legacy,
                    outcome: Ok(serde_json::value::RawValue::from_string("{}".to_owned()).unwrap()),
                }),
            }
        })
    }
}

fn routed(affinity: Affinity) -> Routed {
    let mut routed = Routed::new(
        Call::new("tools/call", None),
        Route {
            server: "s".into(),
            name: "t".into(),
        },
        Era::Legacy,
    );
    routed.affinity = affinity;
    routed
}

fn balance(n: usize, strategy: Strategy, repeat: bool) -> (Balance<Fake>, Vec<Fake>) {
    let fakes: Vec<Fake> = (0..n).map(|_| Fake::new()).collect();
    let balance = Balance::new("s".into(), fakes.clone(), strategy, move |_: &Routed| {
        repeat
    });
    (balance, fakes)
}

fn closed() -> Error {
    Error::UpstreamClosed {
        server: "s".to_owned(),
    }
}

#[tokio::test]
async fn a_down_replica_gets_no_calls() {
    for strategy in [
        Strategy::P2c,
        Strategy::RoundRobin,
        Strategy::LeastInFlight,
        Strategy::Hash,
    ] {
        let (mut balance, fakes) = balance(3, strategy, false);
        fakes[1].down();
        for key in 0..60 {
            balance.call(routed(Affinity::Key(key))).await.unwrap();
        }
        assert_eq!(fakes[1].calls(), 0, "{strategy:?}");
        assert_eq!(fakes[0].calls() + fakes[2].calls(), 60, "{strategy:?}");
    }
}

#[tokio::test]
async fn round_robin_takes_each_replica_in_turn() {
    let (mut balance, fakes) = balance(3, Strategy::RoundRobin, false);
    for _ in 0..30 {
        balance.call(routed(Affinity::None)).await.unwrap();
    }
    assert!(fakes.iter().all(|f| f.calls() == 10));
}

#[tokio::test]
async fn least_in_flight_avoids_the_busy_replica() {
    let (mut balance, fakes) = balance(3, Strategy::LeastInFlight, false);
    fakes[0].0.in_flight.store(5, Ordering::Relaxed);
    fakes[2].0.in_flight.store(1, Ordering::Relaxed);
    for _ in 0..10 {
        balance.call(routed(Affinity::None)).await.unwrap();
    }
    assert_eq!(fakes[1].calls(), 10);
}

#[tokio::test]
async fn when_every_replica_is_down_calls_fail_at_once() {
    let (mut balance, fakes) = balance(3, Strategy::P2c, true);
    fakes.iter().for_each(Fake::down);
    let error = balance.call(routed(Affinity::None)).await.unwrap_err();
    assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");
    assert!(fakes.iter().all(|f| f.calls() == 0));
}

#[tokio::test]
async fn a_repeatable_call_goes_to_another_replica_when_one_fails() {
    let (mut balance, fakes) = balance(3, Strategy::RoundRobin, true);
    fakes[0].failing(closed());
    for _ in 0..9 {
        balance.call(routed(Affinity::None)).await.unwrap();
    }
    assert_eq!(fakes[1].calls() + fakes[2].calls(), 9);
}

#[tokio::test]
async fn a_call_that_is_not_repeatable_is_never_sent_twice() {
    let (mut balance, fakes) = balance(3, Strategy::RoundRobin, false);
    fakes.iter().for_each(|f| f.failing(closed()));
    for _ in 0..9 {
        let error = balance.call(routed(Affinity::None)).await.unwrap_err();
        assert_eq!(error, closed());
    }
    let sent: usize = fakes.iter().map(Fake::calls).sum();
    assert_eq!(sent, 9);
}

#[tokio::test]
async fn retries_stay_within_the_budget() {
    let (mut balance, fakes) = balance(2, Strategy::RoundRobin, true);
    fakes.iter().for_each(|f| f.failing(closed()));
    let calls = 100;
    for _ in 0..calls {
        balance.call(routed(Affinity::None)).await.unwrap_err();
    }
    let sent: usize = fakes.iter().map(Fake::calls).sum();
    // At most one retry per five calls, plus ten a second (the test takes
    // well under two seconds).
    assert!(
        sent - calls <= calls / 5 + 20,
        "{sent} sent for {calls} calls"
    );
    assert!(sent > calls, "some were retried");
}

#[tokio::test]
async fn a_call_bound_to_a_replica_goes_there_or_fails() {
    let (mut balance, fakes) = balance(3, Strategy::P2c, true);
    for _ in 0..5 {
        balance.call(routed(Affinity::Replica(2))).await.unwrap();
    }
    assert_eq!(fakes[2].calls(), 5);
    fakes[2].down();
    let error = balance
        .call(routed(Affinity::Replica(2)))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CircuitOpen { .. }));
}

#[test]
fn p2c_spreads_calls_and_prefers_the_idle_replica() {
    let (balance, fakes) = balance(3, Strategy::P2c, false);
    fakes[0].0.in_flight.store(50, Ordering::Relaxed);
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        counts[balance.pick(Affinity::None).unwrap()] += 1;
    }
    // Replica 0 only wins a draw against itself, which P2C never makes.
    assert_eq!(counts[0], 0, "{counts:?}");
    assert!(counts[1] > 1000 && counts[2] > 1000, "{counts:?}");
}
