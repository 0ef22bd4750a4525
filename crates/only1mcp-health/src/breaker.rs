//! A replica's circuit breaker: closed → open → half-open → closed.
//!
//! Closed, every call goes through and failures in a row are counted; at
//! `failures` it opens. Open, no call goes through for `open_for`; then it
//! is half-open: `trials` calls go through (one at a time each), and if
//! they all succeed it closes, while one failure opens it again. A call
//! that ends in a backend's own JSON-RPC error is a success: the replica
//! answered.
//!
//! The state is a few atomics, read and changed without a lock; time is
//! passed in (nanoseconds since an epoch the owner keeps), so the machine
//! is tested without clocks.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through.
    Closed,
    /// No call goes through.
    Open,
    /// A few trial calls go through.
    HalfOpen,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        })
    }
}

/// A breaker's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures in a row that open it.
    pub failures: u32,
    /// How long it stays open.
    pub open_for: Duration,
    /// Trial calls that must succeed to close it again.
    pub trials: u32,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// What [`Breaker::admit`] let through: pass it back to
/// [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// A call of a closed breaker.
    Normal,
    /// A trial call of a half-open breaker.
    Trial,
}

/// One replica's breaker.
#[derive(Debug)]
pub struct Breaker {
    thresholds: Thresholds,
    state: AtomicU8,
    /// Failures in a row (closed).
    failures: AtomicU32,
    /// When it opened (nanoseconds since the owner's epoch).
    opened_at: AtomicU64,
    /// Trial calls let through and not yet recorded (half-open).
    trials_out: AtomicU32,
    /// Trial calls that succeeded (half-open).
    trials_ok: AtomicU32,
    /// Times it opened.
    opened: AtomicU64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds: Thresholds {
                failures: thresholds.failures.max(1),
                open_for: thresholds.open_for,
                trials: thresholds.trials.max(1),
            },
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            trials_out: AtomicU32::new(0),
            trials_ok: AtomicU32::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// Where it stands at `now`: an open breaker whose time is up is
    /// half-open.
    pub fn state(&self, now: u64) -> State {
        match self.state.load(Ordering::Acquire) {
            CLOSED => State::Closed,
            OPEN if self.open_time_is_up(now) => State::HalfOpen,
            OPEN => State::Open,
            _ => State::HalfOpen,
        }
    }

    /// How many times it opened.
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Whether a call may go through at `now` without taking a trial: the
    /// breaker is closed, or half-open with a trial free.
    pub fn would_admit(&self, now: u64) -> bool {
        match self.state(now) {
            State::Closed => true,
            State::Open => false,
            State::HalfOpen => self.trials_out.load(Ordering::Acquire) < self.thresholds.trials,
        }
    }

    /// Lets a call through at `now`, or refuses it (`None`).
    pub fn admit(&self, now: u64) -> Option<Permit> {
        match self.state.load(Ordering::Acquire) {
            CLOSED => return Some(Permit::Normal),
            OPEN => {
                if !self.open_time_is_up(now) {
                    return None;
                }
                // The first to see the time up makes it half-open.
                if self
                    .state
                    .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.trials_ok.store(0, Ordering::Release);
                    self.trials_out.store(0, Ordering::Release);
                }
            }
            _ => {}
        }
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Some(Permit::Normal);
        }
        self.trials_out
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |out| {
                (out < self.thresholds.trials).then_some(out + 1)
            })
            .ok()
            .map(|_| Permit::Trial)
    }

    /// Records how a call let through by `permit` ended; whether that
    /// opened the breaker.
    pub fn record(&self, permit: Permit, success: bool, now: u64) -> bool {
        match (permit, success) {
            (Permit::Normal, true) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
                false
            }
            (Permit::Normal, false) => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                failures >= self.thresholds.failures && self.open(CLOSED, now)
            }
            (Permit::Trial, true) => {
                if self.state.load(Ordering::Acquire) != HALF_OPEN {
                    return false;
                }
                let ok = self.trials_ok.fetch_add(1, Ordering::AcqRel) + 1;
                if ok >= self.thresholds.trials
                    && self
                        .state
                        .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.failures.store(0, Ordering::Release);
                } else {
                    // Its slot is free for the next trial.
                    self.trials_out.fetch_sub(1, Ordering::AcqRel);
                }
                false
            }
            (Permit::Trial, false) => self.open(HALF_OPEN, now),
        }
    }

    /// Gives back a permit whose call was never made or never ended
    /// (dropped): a trial's slot is free again.
    pub fn release(&self, permit: Permit) {
        if permit == Permit::Trial && self.state.load(Ordering::Acquire) == HALF_OPEN {
            let _ = self
                .trials_out
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |out| {
                    out.checked_sub(1)
                });
        }
    }

    /// Records a failure seen outside a call (a health check that got no
    /// answer): counts like a failed call, and opens a half-open breaker;
    /// whether that opened it.
    pub fn record_failure(&self, now: u64) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => self.record(Permit::Normal, false, now),
            HALF_OPEN => self.open(HALF_OPEN, now),
            // Open with its time up: half-open, and the check failed.
            _ if self.open_time_is_up(now) => self.open(OPEN, now),
            _ => false,
        }
    }

    /// Records a health check answered while half-open: it counts as one
    /// good trial (a closed or open breaker is left as it is).
    pub fn record_check_passed(&self, now: u64) {
        let state = self.state.load(Ordering::Acquire);
        if state == OPEN && self.open_time_is_up(now) {
            // Half-open from here, as `admit` would make it.
            if self
                .state
                .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.trials_ok.store(0, Ordering::Release);
                self.trials_out.store(0, Ordering::Release);
            }
        } else if state != HALF_OPEN {
            return;
        }
        let ok = self.trials_ok.fetch_add(1, Ordering::AcqRel) + 1;
        if ok >= self.thresholds.trials
            && self
                .state
                .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.failures.store(0, Ordering::Release);
        }
    }

    /// Opens it, if it is in state `from`; whether it did.
    fn open(&self, from: u8, now: u64) -> bool {
        let opened = self
            .state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if opened {
            self.opened_at.store(now, Ordering::Release);
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        opened
    }

    fn open_time_is_up(&self, now: u64) -> bool {
        let open_for = u64::try_from(self.thresholds.open_for.as_nanos()).unwrap_or(u64::MAX);
        now.saturating_sub(self.opened_at.load(Ordering::Acquire)) >= open_for
    }
}

#[cfg(test)]
mod tests;
