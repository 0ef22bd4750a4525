//! The `rate_limits:` section: token buckets (GCRA) per principal, per
//! tool, per server and for the whole gateway, and per-server concurrency
//! bounds.
//!
//! Nothing is limited unless a quota is set; with the section empty (the
//! default) the call stack has no rate-limit layer at all. A call over a
//! limit is refused before it reaches its backend with -32031 and
//! `retryAfterMs` (HTTP 429 with `Retry-After` on the Streamable HTTP face).
//! Limits are read when the gateway starts; a reload that changes them is
//! logged and takes effect at the next start.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The rate limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RateLimitsConfig {
    /// One bucket for every call through the gateway.
    #[serde(default)]
    pub global: Option<Quota>,
    /// One bucket per principal (its subject; calls without a principal,
    /// on stdio or unauthenticated HTTP, share one bucket).
    #[serde(default)]
    pub per_principal: Option<Quota>,
    /// Tools by glob over the exposed name (`fs__write_*`): each matching
    /// tool has a bucket of its own with the quota of the first glob (in
    /// key order) it matches.
    #[serde(default)]
    pub tools: BTreeMap<String, Quota>,
    /// Servers by id: a bucket and a concurrency bound each.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerLimits>,
    /// The most principals with a bucket of their own (default 10,000, 1
    /// to 10,000,000). Buckets full again are forgotten when the bound is
    /// reached; principals beyond it while all are in use share one
    /// overflow bucket, so a flood of new subjects costs bounded memory.
    #[serde(default = "default_max_principals")]
    pub max_principals: usize,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            global: None,
            per_principal: None,
            tools: BTreeMap::new(),
            servers: BTreeMap::new(),
            max_principals: default_max_principals(),
        }
    }
}

/// A token bucket: `requests` per `per` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Quota {
    /// How many calls per `per` (1 to 1,000,000).
    pub requests: u32,
    /// The period (default 1s, 1ms to 1 day).
    #[serde(default = "default_per", with = "humantime_serde")]
    pub per: Duration,
    /// How many calls may come at once after a quiet time (default
    /// `requests`, 1 to 1,000,000).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl Quota {
    /// The burst size.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }

    /// The time one token takes to come back.
    pub fn replenish_every(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// One server's limits.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServerLimits {
    /// Calls to the server per `per` (none: no bucket).
    #[serde(default)]
    pub requests: Option<u32>,
    /// The period of `requests` (default 1s).
    #[serde(default = "default_per", with = "humantime_serde")]
    pub per: Duration,
    /// The burst of `requests` (default `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
    /// The most calls in flight to it at once (1 to 65,536); one more is
    /// refused at once with -32031 (HTTP 429), not queued.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

impl ServerLimits {
    /// Its bucket, if it has one.
    pub fn quota(&self) -> Option<Quota> {
        self.requests.map(|requests| Quota {
            requests,
            per: self.per,
            burst: self.burst,
        })
    }
}

fn default_per() -> Duration {
    Duration::from_secs(1)
}

fn default_max_principals() -> usize {
    10_000
}

const REQUESTS: RangeInclusive<u32> = 1..=1_000_000;
const PER: RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(86_400);
const MAX_PRINCIPALS: RangeInclusive<usize> = 1..=10_000_000;
const MAX_CONCURRENCY: RangeInclusive<u32> = 1..=65_536;

impl RateLimitsConfig {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.global.is_some()
            || self.per_principal.is_some()
            || !self.tools.is_empty()
            || self
                .servers
                .values()
                .any(|s| s.requests.is_some() || s.max_concurrency.is_some())
    }

    /// Each problem, as (field, message); `servers` are the configured ids.
    pub fn problems(&self, servers: &[&str]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut quota = |field: String, quota: &Quota| {
            if !REQUESTS.contains(&quota.requests) {
                problems.push((
                    format!("{field}.requests"),
                    "must be between 1 and 1000000".to_owned(),
                ));
            }
            if quota.burst.is_some_and(|b| !REQUESTS.contains(&b)) {
                problems.push((
                    format!("{field}.burst"),
                    "must be between 1 and 1000000".to_owned(),
                ));
            }
            if !PER.contains(&quota.per) {
                problems.push((
                    format!("{field}.per"),
                    "must be between 1ms and 1day".to_owned(),
                ));
            }
        };
        if let Some(global) = &self.global {
            quota("rate_limits.global".to_owned(), global);
        }
        if let Some(each) = &self.per_principal {
            quota("rate_limits.per_principal".to_owned(), each);
        }
        for (glob, each) in &self.tools {
            quota(format!("rate_limits.tools.{glob}"), each);
        }
        for (id, limits) in &self.servers {
            if let Some(each) = &limits.quota() {
                quota(format!("rate_limits.servers.{id}"), each);
            }
        }
        for glob in self.tools.keys() {
            if let Err(e) = globset::Glob::new(glob) {
                problems.push((format!("rate_limits.tools.{glob}"), e.to_string()));
            }
        }
        for (id, limits) in &self.servers {
            if !servers.contains(&id.as_str()) {
                problems.push((
                    format!("rate_limits.servers.{id}"),
                    "names no configured server".to_owned(),
                ));
            }
            if limits
                .max_concurrency
                .is_some_and(|n| !MAX_CONCURRENCY.contains(&n))
            {
                problems.push((
                    format!("rate_limits.servers.{id}.max_concurrency"),
                    "must be between 1 and 65536".to_owned(),
                ));
            }
        }
        if !MAX_PRINCIPALS.contains(&self.max_principals) {
            problems.push((
                "rate_limits.max_principals".to_owned(),
                "must be between 1 and 10000000".to_owned(),
            ));
        }
        problems
    }
}
