//! Per-backend counters for the admin API and `only1mcp status`: requests,
//! errors, the median latency of the most recent calls, uptime and the last
//! error.
//!
//! Recording a call touches only atomics (no lock on the request path); the
//! median is computed when someone asks for it.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use only1mcp_core::Error;
use only1mcp_core::jsonrpc::Outcome;
use only1mcp_core::mcp::Era;

/// How many recent latencies the median is taken over.
const WINDOW: usize = 128;

/// A backend's most recent failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// What went wrong.
    pub message: String,
    /// When.
    pub at: SystemTime,
}

/// A snapshot of one backend's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStats {
    /// Requests forwarded to it (since it was configured as it is).
    pub requests: u64,
    /// Those that failed: no answer (timeout, crash, unavailable) or a
    /// JSON-RPC error from the backend. A tool result with `isError` is an
    /// answer, not an error.
    pub errors: u64,
    /// Requests in flight right now.
    pub in_flight: usize,
    /// The median latency of the last answered requests (at most 128).
    pub p50: Option<Duration>,
    /// How long its current session has been up; `None` while it is not
    /// ready.
    pub uptime: Option<Duration>,
    /// The last failure (a request's or a start's).
    pub last_error: Option<LastError>,
    /// How often its connection ended and it was started again.
    pub restarts: u64,
}

/// The live counters.
#[derive(Debug)]
pub(crate) struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Latencies in microseconds, a ring indexed by `recorded % WINDOW`.
    latencies: [AtomicU32; WINDOW],
    recorded: AtomicUsize,
    restarts: AtomicU64,
    ready_since: Mutex<Option<Instant>>,
    last_error: ArcSwapOption<LastError>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latencies: std::array::from_fn(|_| AtomicU32::new(0)),
            recorded: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            ready_since: Mutex::new(None),
            last_error: ArcSwapOption::empty(),
        }
    }
}

impl Stats {
    /// A request starts.
    pub(crate) fn started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended with `res` after `elapsed`.
    pub(crate) fn finished(&self, res: &Result<(Era, Outcome), Error>, elapsed: Duration) {
        let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        let slot = self.recorded.fetch_add(1, Ordering::Relaxed) % WINDOW;
        self.latencies[slot].store(micros, Ordering::Relaxed);
        let failure = match res {
            Ok((_, Ok(_))) => return,
            Ok((_, Err(error))) => format!("error {}: {}", error.code, error.message),
            Err(error) => error.to_string(),
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.failed(failure);
    }

    /// Records a failure that was not a request's (a start that failed).
    pub(crate) fn failed(&self, message: String) {
        self.last_error.store(Some(std::sync::Arc::new(LastError {
            message,
            at: SystemTime::now(),
        })));
    }

    /// Its connection ended; it restarts.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The backend became ready (`true`) or lost its session (`false`).
    pub(crate) fn set_ready(&self, ready: bool) {
        *self
            .ready_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ready.then(Instant::now);
    }

    /// A snapshot; `in_flight` comes from the backend.
    pub(crate) fn snapshot(&self, in_flight: usize) -> BackendStats {
        let n_recorded = self.recorded.load(Ordering::Relaxed).min(WINDOW);
        let mut recent: Vec<u32> = self.latencies[..n_recorded]
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect();
        recent.sort_unstable();
        let p50 = recent
            .get(recent.len() / 2)
            .map(|&micros| Duration::from_micros(u64::from(micros)));
        BackendStats {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            in_flight,
            p50,
            uptime: self
                .ready_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .map(|since| since.elapsed()),
            last_error: self.last_error.load_full().map(|e| (*e).clone()),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_core::jsonrpc::ErrorObject;
    use serde_json::value::RawValue;

    fn ok() -> Result<(Era, Outcome), Error> {
        Ok((
            Era::Legacy,
            Ok(RawValue::from_string("{}".to_owned()).unwrap()),
        ))
    }

    #[test]
    fn counts_requests_errors_and_the_median() {
        let stats = Stats::default();
        for ms in [5, 1, 3] {
            stats.started();
            stats.finished(&ok(), Duration::from_millis(ms));
        }
        stats.started();
        stats.finished(
            &Ok((
                Era::Legacy,
                Err(ErrorObject::new(-32602, "Unknown tool: x")),
            )),
            Duration::from_millis(4),
        );
        let snap = stats.snapshot(0);
        assert_eq!((snap.requests, snap.errors), (4, 1));
        // Sorted 1, 3, 4, 5: the upper median.
        assert_eq!(snap.p50, Some(Duration::from_millis(4)));
        assert_eq!(
            snap.last_error.map(|e| e.message).as_deref(),
            Some("error -32602: Unknown tool: x")
        );
        assert_eq!(snap.uptime, None);
        stats.set_ready(true);
        assert!(stats.snapshot(0).uptime.is_some());
    }

    #[test]
    fn the_window_keeps_only_recent_calls() {
        let stats = Stats::default();
        for _ in 0..WINDOW {
            stats.finished(&ok(), Duration::from_secs(1));
        }
        for _ in 0..WINDOW {
            stats.finished(&ok(), Duration::from_millis(2));
        }
        assert_eq!(stats.snapshot(0).p50, Some(Duration::from_millis(2)));
    }
}
