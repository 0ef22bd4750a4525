//! Rate limits and per-server concurrency bounds, as a per-call layer
//! (`rate_limits:`).
//!
//! Token buckets are GCRA (a theoretical arrival time per bucket): a direct
//! bucket (global, per server) is one atomic updated with compare-and-swap;
//! keyed buckets (per principal, per tool) live in a map behind a short
//! lock, bounded by `max_principals`: when it is full, buckets that are full
//! again (their arrival time has passed) are forgotten, and if none is, a new
//! key shares one overflow bucket. A call over a limit is refused with
//! [`Error::RateLimited`] and the delay until a token is back.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use globset::{Glob, GlobMatcher};
use only1mcp_core::Error;
use only1mcp_core::config::RateLimitsConfig;
use only1mcp_core::config::rate_limits::Quota;
use only1mcp_core::pipeline::{Reply, Routed};
use tower_layer::Layer;
use tower_service::Service;

/// One GCRA bucket: its arrival time, in nanoseconds since the limiter's
/// start.
#[derive(Debug)]
struct Gcra {
    /// Nanoseconds one token takes to come back.
    every: u64,
    /// How far ahead of now the arrival time may run (burst - 1 tokens).
    tolerance: u64,
}

impl Gcra {
    fn new(quota: &Quota) -> Self {
        let every = u64::try_from(quota.replenish_every().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            every,
            tolerance: every.saturating_mul(u64::from(quota.burst().max(1) - 1)),
        }
    }

    /// Takes a token from the bucket whose arrival time is `tat`, at `now`:
    /// the new arrival time, or how long until a token is back.
    fn take(&self, tat: u64, now: u64) -> Result<u64, Duration> {
        let tat = tat.max(now);
        if tat - now > self.tolerance {
            return Err(Duration::from_nanos(tat - now - self.tolerance));
        }
        Ok(tat + self.every)
    }
}

/// A bucket shared by every call it counts.
#[derive(Debug)]
struct Direct {
    gcra: Gcra,
    tat: AtomicU64,
}

impl Direct {
    fn new(quota: &Quota) -> Self {
        Self {
            gcra: Gcra::new(quota),
            tat: AtomicU64::new(0),
        }
    }

    fn check(&self, now: u64) -> Result<(), Duration> {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = self.gcra.take(tat, now)?;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// Buckets by key, at most `max` of them (plus the overflow bucket).
#[derive(Debug)]
struct Keyed {
    gcra: Gcra,
    max: usize,
    tats: Mutex<HashMap<Arc<str>, u64>>,
    overflow: Direct,
}

impl Keyed {
    fn new(quota: &Quota, max: usize) -> Self {
        Self {
            gcra: Gcra::new(quota),
            max,
            tats: Mutex::new(HashMap::new()),
            overflow: Direct::new(quota),
        }
    }

    fn check(&self, key: &str, now: u64) -> Result<(), Duration> {
        let mut tats = self.tats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tat) = tats.get_mut(key) {
            *tat = self.gcra.take(*tat, now)?;
            return Ok(());
        }
        if tats.len() >= self.max {
            // Buckets full again hold nothing worth keeping.
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= self.max {
                drop(tats);
                return self.overflow.check(now);
            }
        }
        let tat = self.gcra.take(0, now)?;
        tats.insert(key.into(), tat);
        Ok(())
    }
}

/// One server's limits.
#[derive(Debug)]
struct ServerLimit {
    bucket: Option<Direct>,
    max_concurrency: Option<u32>,
    in_flight: Arc<AtomicU32>,
}

/// The limits of `rate_limits:`, shared by every call.
#[derive(Debug)]
struct Limits {
    start: Instant,
    global: Option<Direct>,
    per_principal: Option<Keyed>,
    tools: Vec<(GlobMatcher, Keyed)>,
    servers: BTreeMap<String, ServerLimit>,
}

/// The most tools with a bucket of their own per `tools` glob.
const MAX_TOOLS: usize = 65_536;

/// The calls a server's concurrency bound counts: released when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limits {
    fn admit(&self, routed: &Routed) -> Result<Option<Slot>, Error> {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let limited = |after: Duration| Error::RateLimited {
            retry_after: Some(after.max(Duration::from_millis(1))),
        };
        if let Some(global) = &self.global {
            global.check(now).map_err(limited)?;
        }
        if let Some(each) = &self.per_principal {
            let subject = routed.principal.as_ref().map_or("", |p| p.subject.as_str());
            each.check(subject, now).map_err(limited)?;
        }
        if let Some(tool) = routed.exposed.as_deref()
            && routed.method() == "tools/call"
            && let Some((_, bucket)) = self.tools.iter().find(|(glob, _)| glob.is_match(tool))
        {
            bucket.check(tool, now).map_err(limited)?;
        }
        let Some(server) = self.servers.get(routed.server()) else {
            return Ok(None);
        };
        if let Some(bucket) = &server.bucket {
            bucket.check(now).map_err(limited)?;
        }
        let Some(max) = server.max_concurrency else {
            return Ok(None);
        };
        if server.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
            server.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::RateLimited { retry_after: None });
        }
        Ok(Some(Slot(server.in_flight.clone())))
    }
}

/// Refuses calls over the limits of `rate_limits:`.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limits: Arc<Limits>,
}

impl RateLimitLayer {
    /// The layer of `config`; `None` when it sets no limit (the stack then
    /// has no rate-limit layer at all).
    pub fn new(config: &RateLimitsConfig) -> Option<Self> {
        if !config.any() {
            return None;
        }
        let tools = config
            .tools
            .iter()
            .filter_map(|(glob, quota)| {
                let glob = Glob::new(glob).ok()?.compile_matcher();
                Some((glob, Keyed::new(quota, MAX_TOOLS)))
            })
            .collect();
        let servers = config
            .servers
            .iter()
            .map(|(id, limits)| {
                let limit = ServerLimit {
                    bucket: limits.quota().as_ref().map(Direct::new),
                    max_concurrency: limits.max_concurrency,
                    in_flight: Arc::new(AtomicU32::new(0)),
                };
                (id.clone(), limit)
            })
            .collect();
        Some(Self {
            limits: Arc::new(Limits {
                start: Instant::now(),
                global: config.global.as_ref().map(Direct::new),
                per_principal: config
                    .per_principal
                    .as_ref()
                    .map(|q| Keyed::new(q, config.max_principals)),
                tools,
                servers,
            }),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            limits: self.limits.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limits: Arc<Limits>,
}

impl<S> Service<Routed> for RateLimit<S>
where
    S: Service<Routed, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> Self::Future {
        match self.limits.admit(&routed) {
            Err(refused) => Box::pin(std::future::ready(Err(refused))),
            Ok(slot) => {
                let call = self.inner.call(routed);
                Box::pin(async move {
                    let res = call.await;
                    drop(slot);
                    res
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(requests: u32, per_ms: u64, burst: u32) -> Quota {
        Quota {
            requests,
            per: Duration::from_millis(per_ms),
            burst: Some(burst),
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_a_token_is_back() {
        let bucket = Direct::new(&quota(10, 1000, 3));
        let ms = 1_000_000;
        for _ in 0..3 {
            bucket.check(0).unwrap();
        }
        assert_eq!(bucket.check(0), Err(Duration::from_millis(100)));
        assert_eq!(bucket.check(40 * ms), Err(Duration::from_millis(60)));
        bucket.check(100 * ms).unwrap();
        assert!(bucket.check(100 * ms).is_err());
    }

    #[test]
    fn keyed_buckets_are_bounded_and_forget_full_ones() {
        let keyed = Keyed::new(&quota(1, 1000, 1), 2);
        keyed.check("a", 0).unwrap();
        keyed.check("b", 0).unwrap();
        assert!(keyed.check("a", 0).is_err(), "a has its own bucket");
        // The map is full and nobody's bucket is full again: c shares the
        // overflow bucket, then d finds it empty.
        keyed.check("c", 0).unwrap();
        assert!(keyed.check("d", 0).is_err());
        assert_eq!(keyed.tats.lock().unwrap().len(), 2);
        // A second later a's and b's buckets are full again: forgotten.
        keyed.check("e", 1_000_000_001).unwrap();
        assert_eq!(keyed.tats.lock().unwrap().len(), 1);
    }
}
