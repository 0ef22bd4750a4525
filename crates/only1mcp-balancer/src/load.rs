//! Peak-EWMA latency of one replica, lock-free.
//!
//! A slower answer than the estimate replaces it at once (the peak); a
//! faster one pulls it down with a weight that decays over [`DECAY`], so a
//! replica that slowed down is avoided at once and trusted again gradually
//! (the idea of tower's `load::PeakEwma`, kept in two atomics so every
//! clone of a replica shares it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How fast the estimate forgets a peak.
const DECAY: Duration = Duration::from_secs(10);

/// The estimate before the first answer: no replica is preferred.
const DEFAULT_RTT_NS: f64 = 1_000_000.0;

/// One replica's latency estimate.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    /// The estimate in nanoseconds (`f64` bits); 0 before the first answer.
    rtt_ns: AtomicU64,
    /// When it was last updated, in nanoseconds since the balancer's epoch.
    stamp_ns: AtomicU64,
}

impl PeakEwma {
    pub(crate) fn new() -> Self {
        Self {
            rtt_ns: AtomicU64::new(0),
            stamp_ns: AtomicU64::new(0),
        }
    }

    /// Folds in one call that took `rtt`, finished at `now` since `epoch`.
    pub(crate) fn observe(&self, rtt: Duration, epoch: Instant) {
        let now = nanos(epoch.elapsed());
        let rtt = nanos(rtt) as f64;
        let prev = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let est = if prev == 0.0 || rtt > prev {
            rtt
        } else {
            let elapsed = now.saturating_sub(self.stamp_ns.load(Ordering::Relaxed)) as f64;
            let w = (-elapsed / DECAY.as_nanos() as f64).exp();
            prev * w + rtt * (1.0 - w)
        };
        self.rtt_ns.store(est.to_bits(), Ordering::Relaxed);
        self.stamp_ns.store(now, Ordering::Relaxed);
    }

    /// The estimate at `epoch.elapsed()`: it decays while no call ends, so
    /// a replica that was slow gets tried again (the default before the
    /// first answer).
    pub(crate) fn rtt(&self, epoch: Instant) -> Duration {
        // Never negative or NaN; truncation to whole nanoseconds is intended.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Duration::from_nanos(self.estimate(epoch) as u64)
    }

    fn estimate(&self, epoch: Instant) -> f64 {
        let est = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        if est == 0.0 {
            return DEFAULT_RTT_NS;
        }
        let elapsed = nanos(epoch.elapsed()).saturating_sub(self.stamp_ns.load(Ordering::Relaxed));
        est * (-(elapsed as f64) / DECAY.as_nanos() as f64).exp()
    }

    /// What sending one more call costs: the estimate times the calls in
    /// flight plus this one.
    pub(crate) fn cost(&self, in_flight: usize, epoch: Instant) -> f64 {
        self.estimate(epoch) * (in_flight as f64 + 1.0)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_is_taken_at_once_and_forgotten_slowly() {
        let epoch = Instant::now();
        let load = PeakEwma::new();
        load.observe(Duration::from_millis(2), epoch);
        assert!(load.rtt(epoch) <= Duration::from_millis(2));
        load.observe(Duration::from_millis(50), epoch);
        assert!(load.rtt(epoch) > Duration::from_millis(49));
        load.observe(Duration::from_millis(2), epoch);
        // Right after the peak, a fast answer barely moves it.
        assert!(load.rtt(epoch) > Duration::from_millis(40));
        assert!(load.cost(3, epoch) > load.cost(0, epoch));
    }

    #[test]
    fn an_estimate_decays_while_no_call_ends() {
        // An epoch 20 s ago: the peak observed "at 0" is two decay times old.
        let Some(epoch) = Instant::now().checked_sub(Duration::from_secs(20)) else {
            return;
        };
        let load = PeakEwma::new();
        load.rtt_ns
            .store(500_000_000f64.to_bits(), Ordering::Relaxed);
        assert!(
            load.rtt(epoch) < Duration::from_millis(70),
            "{:?}",
            load.rtt(epoch)
        );
    }
}
