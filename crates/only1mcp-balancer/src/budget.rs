//! The retry budget: retries never multiply an outage.
//!
//! Every call deposits a fraction of a retry ([`Budget::new`]'s `ratio`);
//! a retry withdraws a whole one. Besides, `min_per_sec` retries a second
//! are always allowed, so a quiet server can still retry. Lock-free: two
//! atomics per call, one more per retry.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Milli-retries per retry.
const UNIT: i64 = 1000;

/// How many retries may be banked.
const CAP: i64 = 100 * UNIT;

/// A retry budget shared by one server's calls.
#[derive(Debug)]
pub struct Budget {
    /// Milli-retries deposited per call.
    deposit: i64,
    /// Banked milli-retries.
    balance: AtomicI64,
    /// Retries always allowed per second.
    min_per_sec: u64,
    /// The second (since `epoch`) and the retries taken in it, packed
    /// (second << 32 | count).
    window: AtomicU64,
    epoch: Instant,
}

impl Budget {
    /// A budget allowing `ratio` retries per call (0.2: one retry for five
    /// calls), plus `min_per_sec` a second.
    pub fn new(ratio: f64, min_per_sec: u32) -> Self {
        Self {
            // Truncation is intended: the ratio is a fraction of a retry.
            #[allow(clippy::cast_possible_truncation)]
            deposit: (ratio.clamp(0.0, 1.0) * UNIT as f64) as i64,
            balance: AtomicI64::new(0),
            min_per_sec: u64::from(min_per_sec),
            window: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Counts one call.
    pub fn deposit(&self) {
        if self.balance.load(Ordering::Relaxed) < CAP {
            self.balance.fetch_add(self.deposit, Ordering::Relaxed);
        }
    }

    /// Takes one retry, if the budget allows it.
    pub fn withdraw(&self) -> bool {
        let second = self.epoch.elapsed().as_secs();
        let window = self.window.load(Ordering::Relaxed);
        let (at, used) = (window >> 32, window & u64::from(u32::MAX));
        let next = if at == second {
            (used < self.min_per_sec).then(|| window + 1)
        } else {
            Some((second << 32) | 1)
        };
        if let Some(next) = next
            && self
                .window
                .compare_exchange(window, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= UNIT).then_some(b - UNIT)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_fraction_of_calls_beyond_the_floor() {
        let budget = Budget::new(0.2, 0);
        assert!(!budget.withdraw(), "nothing deposited yet");
        for _ in 0..50 {
            budget.deposit();
        }
        let retries = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(retries, 10);
    }

    #[test]
    fn the_floor_allows_a_few_retries_a_second() {
        let budget = Budget::new(0.0, 3);
        let retries = (0..10).filter(|_| budget.withdraw()).count();
        assert_eq!(retries, 3);
    }
}
