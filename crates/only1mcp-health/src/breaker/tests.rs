use quickcheck::{Arbitrary, Gen};
use quickcheck_macros::quickcheck;

use super::*;

const SEC: u64 = 1_000_000_000;

fn breaker(failures: u32, trials: u32) -> Breaker {
    Breaker::new(Thresholds {
        failures,
        open_for: Duration::from_secs(5),
        trials,
    })
}

#[test]
fn it_opens_after_failures_in_a_row_and_closes_after_good_trials() {
    let b = breaker(3, 2);
    for _ in 0..2 {
        let p = b.admit(0).unwrap();
        b.record(p, false, 0);
    }
    // A success resets the count.
    let p = b.admit(0).unwrap();
    b.record(p, true, 0);
    for _ in 0..3 {
        let p = b.admit(SEC).unwrap();
        b.record(p, false, SEC);
    }
    assert_eq!(b.state(SEC), State::Open);
    assert_eq!(b.admit(2 * SEC), None);
    assert_eq!(b.state(6 * SEC), State::HalfOpen);
    let t1 = b.admit(6 * SEC).unwrap();
    let t2 = b.admit(6 * SEC).unwrap();
    assert_eq!((t1, t2), (Permit::Trial, Permit::Trial));
    assert_eq!(b.admit(6 * SEC), None, "only two trials at once");
    b.record(t1, true, 6 * SEC);
    assert_eq!(b.state(6 * SEC), State::HalfOpen);
    b.record(t2, true, 6 * SEC);
    assert_eq!(b.state(6 * SEC), State::Closed);
    assert_eq!(b.times_opened(), 1);
}

#[test]
fn a_failed_trial_opens_it_again() {
    let b = breaker(1, 1);
    let p = b.admit(0).unwrap();
    b.record(p, false, 0);
    let t = b.admit(5 * SEC).unwrap();
    b.record(t, false, 5 * SEC);
    assert_eq!(b.state(9 * SEC), State::Open);
    assert_eq!(b.state(10 * SEC), State::HalfOpen);
    assert_eq!(b.times_opened(), 2);
}

/// One step of a run of the breaker.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Time passes (seconds).
    Wait(u8),
    /// A call is let through (or not) and ends, well or badly.
    Call(bool),
    /// A health check fails.
    CheckFails,
    /// A health check is answered.
    CheckPasses,
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 6 {
            0 => Self::Wait(u8::arbitrary(g) % 8),
            1 | 2 => Self::Call(true),
            3 => Self::Call(false),
            4 => Self::CheckFails,
            _ => Self::CheckPasses,
        }
    }
}

/// The model: the same machine written as plainly as possible.
#[derive(Debug)]
struct Model {
    state: State,
    failures: u32,
    opened_at: u64,
    trials_ok: u32,
}

#[quickcheck]
fn the_breaker_follows_its_model(failures: u8, trials: u8, steps: Vec<Step>) -> bool {
    let failures = u32::from(failures % 6) + 1;
    let trials = u32::from(trials % 3) + 1;
    let b = breaker(failures, trials);
    let mut m = Model {
        state: State::Closed,
        failures: 0,
        opened_at: 0,
        trials_ok: 0,
    };
    let mut now = 0u64;
    for step in steps {
        // The model's open → half-open when the time is up.
        if m.state == State::Open && now - m.opened_at >= 5 * SEC {
            m.state = State::HalfOpen;
            m.trials_ok = 0;
        }
        if b.state(now) != m.state {
            return false;
        }
        match step {
            Step::Wait(s) => now += u64::from(s) * SEC,
            Step::Call(ok) => {
                let permit = b.admit(now);
                let expected = match m.state {
                    State::Closed => Some(Permit::Normal),
                    State::Open => None,
                    // Trials are sequential here: one is always free.
                    State::HalfOpen => Some(Permit::Trial),
                };
                if permit != expected {
                    return false;
                }
                let Some(permit) = permit else { continue };
                b.record(permit, ok, now);
                match (m.state, ok) {
                    (State::Closed, true) => m.failures = 0,
                    (State::Closed, false) => {
                        m.failures += 1;
                        if m.failures >= failures {
                            m.state = State::Open;
                            m.opened_at = now;
                        }
                    }
                    (State::HalfOpen, true) => {
                        m.trials_ok += 1;
                        if m.trials_ok >= trials {
                            m.state = State::Closed;
                            m.failures = 0;
                        }
                    }
                    (State::HalfOpen, false) => {
                        m.state = State::Open;
                        m.opened_at = now;
                    }
                    (State::Open, _) => unreachable!(),
                }
            }
            Step::CheckPasses => {
                b.record_check_passed(now);
                if m.state == State::HalfOpen {
                    m.trials_ok += 1;
                    if m.trials_ok >= trials {
                        m.state = State::Closed;
                        m.failures = 0;
                    }
                }
            }
            Step::CheckFails => {
                // A check only runs while calls may go through (the prober
                // skips an open replica).
                if m.state == State::Open {
                    continue;
                }
                b.record_failure(now);
                match m.state {
                    State::Closed => {
                        m.failures += 1;
                        if m.failures >= failures {
                            m.state = State::Open;
                            m.opened_at = now;
                        }
                    }
                    State::HalfOpen => {
                        m.state = State::Open;
                        m.opened_at = now;
                    }
                    State::Open => {}
                }
            }
        }
    }
    true
}

#[quickcheck]
fn an_open_breaker_lets_nothing_through_before_its_time(failures: u8, wait_ms: u16) -> bool {
    let b = breaker(u32::from(failures % 4) + 1, 1);
    for _ in 0..=failures % 4 {
        let p = b.admit(0).unwrap();
        b.record(p, false, 0);
    }
    let now = u64::from(wait_ms) * 1_000_000;
    let admitted = b.admit(now).is_some();
    admitted == (now >= 5 * SEC)
}
