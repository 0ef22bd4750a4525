//! A latency histogram of fixed buckets, recorded with three relaxed atomic
//! adds and no allocation or lock, and rendered in the Prometheus text
//! format.
//!
//! The exporter's own histograms keep every sample until the next scrape or
//! upkeep (a block allocated every few dozen samples, memory growing with
//! the call rate between scrapes); a call's duration is recorded here
//! instead, into buckets fixed up front. The same buckets answer
//! `only1mcp status` (p50, p99) by interpolation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in microseconds: from 100 µs (the
/// gateway's own overhead) to a minute (a slow tool), about three per
/// decade. A duration over the last goes to `+Inf` only.
pub const BOUNDS_US: [u64; 19] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 20_000_000, 30_000_000, 60_000_000,
];

/// The same bounds as Prometheus `le` label values (seconds).
const LE: [&str; 19] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "20", "30", "60",
];

/// Counts per bucket (not cumulative; the last one is over every bound),
/// the sum in microseconds, and the total.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let idx = BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A copy of the counts now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// The counts of a [`Histogram`] at one moment; snapshots subtract, so a
/// window's quantiles come from two of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Counts per bucket (not cumulative; the last is over every bound).
    pub buckets: [u64; BOUNDS_US.len() + 1],
    /// The sum of the durations, in microseconds.
    pub sum_us: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            buckets: [0; BOUNDS_US.len() + 1],
            sum_us: 0,
        }
    }
}

impl Snapshot {
    /// How many durations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
    }

    /// What was recorded since `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The `q` quantile (0 to 1), interpolated linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does; `None` with no durations. One
    /// in the `+Inf` bucket reads as the last bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (idx, &n) in self.buckets.iter().enumerate() {
            #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = BOUNDS_US.get(idx) else {
                    return Some(Duration::from_micros(BOUNDS_US[BOUNDS_US.len() - 1]));
                };
                let lower = if idx == 0 { 0 } else { BOUNDS_US[idx - 1] };
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "bounds and counts far below 2^52; the result is positive"
                )]
                let us = lower as f64 + (upper - lower) as f64 * ((rank - below as f64) / n as f64);
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "between two bounds"
                )]
                return Some(Duration::from_micros(us.round() as u64));
            }
            below += n;
        }
        None
    }

    /// Writes the series of one histogram named `name` with `labels`
    /// (already rendered, `key="value"` pairs joined by commas, or empty):
    /// `_bucket` lines (cumulative), `_sum` (seconds) and `_count`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (le, n) in LE.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = cumulative + self.buckets[BOUNDS_US.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss, reason = "a sum in seconds")]
        let sum = self.sum_us as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_bucket_of_their_upper_bound() {
        let histogram = Histogram::default();
        histogram.record(Duration::from_micros(100));
        histogram.record(Duration::from_micros(101));
        histogram.record(Duration::from_secs(3600));
        let snap = histogram.snapshot();
        assert_eq!(snap.buckets[0], 1);
        assert_eq!(snap.buckets[1], 1);
        assert_eq!(snap.buckets[BOUNDS_US.len()], 1);
        assert_eq!(snap.count(), 3);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let histogram = Histogram::default();
        for _ in 0..99 {
            histogram.record(Duration::from_micros(800));
        }
        histogram.record(Duration::from_millis(40));
        let snap = histogram.snapshot();
        // 99 in (500 µs, 1 ms]: the median is halfway through it.
        assert_eq!(snap.quantile(0.5), Some(Duration::from_micros(753)));
        assert_eq!(snap.quantile(0.99), Some(Duration::from_micros(1000)));
        assert_eq!(snap.quantile(1.0), Some(Duration::from_millis(50)));
        assert_eq!(Snapshot::default().quantile(0.5), None);
    }

    #[test]
    fn rendering_is_cumulative_with_sum_and_count() {
        let histogram = Histogram::default();
        histogram.record(Duration::from_micros(50));
        histogram.record(Duration::from_millis(2));
        let mut out = String::new();
        histogram
            .snapshot()
            .render(&mut out, "d_seconds", "a=\"b\"");
        assert!(out.contains("d_seconds_bucket{a=\"b\",le=\"0.0001\"} 1\n"));
        assert!(out.contains("d_seconds_bucket{a=\"b\",le=\"0.0025\"} 2\n"));
        assert!(out.contains("d_seconds_bucket{a=\"b\",le=\"+Inf\"} 2\n"));
        assert!(out.contains("d_seconds_sum{a=\"b\"} 0.00205\n"));
        assert!(out.contains("d_seconds_count{a=\"b\"} 2\n"));
    }
}
