//! A server's replicas and how calls are spread over them: the `replicas`,
//! `endpoints`, `balance`, `breaker` and `health` fields of a server entry
//! (ADR 0017).
//!
//! A server with one replica and none of these set is served as before: no
//! balancer, no breaker, nothing added to its calls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most replicas one server may have.
pub const MAX_REPLICAS: usize = 64;

/// How calls are spread over a server's replicas (`balance:`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BalanceConfig {
    /// `p2c` (default: the power of two choices over peak-EWMA latency),
    /// `round_robin`, `least_in_flight`, or `hash` (consistent hashing on
    /// `key`).
    #[serde(default)]
    pub strategy: Strategy,
    /// What `hash` hashes: `session` (default: a legacy client session),
    /// `principal` (who authenticated), or `arguments.<path>` (a value of
    /// the tool call's arguments, `arguments.repo` or `arguments.a.b`). A
    /// call without the key goes to any replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// See [`BalanceConfig::strategy`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Two replicas drawn at random, the less loaded one (peak-EWMA latency
    /// times calls in flight) takes the call.
    #[default]
    P2c,
    /// Each replica in turn.
    RoundRobin,
    /// The replica with the fewest calls in flight.
    LeastInFlight,
    /// Consistent hashing on [`BalanceConfig::key`]: the same key reaches the
    /// same replica while it is up.
    Hash,
}

/// What [`BalanceConfig::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// The client session (legacy sessions; a modern call has none).
    Session,
    /// The authenticated principal.
    Principal,
    /// A value under the call's `arguments`, by member names.
    Argument(Vec<String>),
}

impl HashKey {
    /// Reads `key` (`session`, `principal`, `arguments.a.b`).
    pub fn parse(key: &str) -> Result<Self, String> {
        match key {
            "session" => Ok(Self::Session),
            "principal" => Ok(Self::Principal),
            _ => match key.strip_prefix("arguments.") {
                Some(path) if path.split('.').all(|p| !p.is_empty()) => {
                    Ok(Self::Argument(path.split('.').map(str::to_owned).collect()))
                }
                _ => Err(format!(
                    "{key:?} is not session, principal or arguments.<name>"
                )),
            },
        }
    }
}

/// A replica's circuit breaker (`breaker:`): after `failures` calls in a
/// row fail (connection lost, no answer in time, refused), the replica gets
/// no calls for `open_for`; then `trials` calls are let through, and if
/// they all succeed it is closed again, else open again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BreakerConfig {
    /// Failures in a row that open it (default 5, 1 to 1000).
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// How long it stays open before trial calls (default 5s, 10ms to 1h).
    #[serde(default = "default_open_for", with = "humantime_serde")]
    pub open_for: Duration,
    /// Trial calls let through when half-open (default 1, 1 to 100); all
    /// must succeed to close it.
    #[serde(default = "default_trials")]
    pub trials: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: default_failures(),
            open_for: default_open_for(),
            trials: default_trials(),
        }
    }
}

fn default_failures() -> u32 {
    5
}

fn default_open_for() -> Duration {
    Duration::from_secs(5)
}

fn default_trials() -> u32 {
    1
}

/// Active health checks of each replica (`health:`): an MCP `ping` every
/// `interval`; no answer within `timeout` counts as a failure for the
/// replica's breaker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HealthConfig {
    /// Time between pings (default 2s, 100ms to 1h).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time a ping has to be answered (default 1s, 10ms to 1h).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

/// The problems of one server's replica settings, as (field, message),
/// fields relative to the server entry.
pub(crate) fn problems(server: &super::ServerConfig) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(n) = server.replicas {
        if server.url.is_some() {
            out.push((
                "replicas",
                "is for a command; a url server lists its replicas in endpoints".to_owned(),
            ));
        }
        if !(1..=MAX_REPLICAS).contains(&(n as usize)) {
            out.push(("replicas", format!("must be between 1 and {MAX_REPLICAS}")));
        }
    }
    if !server.endpoints.is_empty() {
        match &server.url {
            None => out.push((
                "endpoints",
                "needs a url (endpoints are the further replicas of a url server)".to_owned(),
            )),
            Some(url) => {
                let scheme = |u: &str| u.split("://").next().unwrap_or_default().to_owned();
                for endpoint in &server.endpoints {
                    if !endpoint.contains("://") || scheme(endpoint) != scheme(url) {
                        out.push((
                            "endpoints",
                            format!("{endpoint:?} must be a URL of the same scheme as url"),
                        ));
                    }
                }
            }
        }
        if server.endpoints.len() + 1 > MAX_REPLICAS {
            out.push((
                "endpoints",
                format!("at most {} besides url", MAX_REPLICAS - 1),
            ));
        }
    }
    if let Some(balance) = &server.balance {
        match (&balance.key, balance.strategy) {
            (Some(key), Strategy::Hash) => {
                if let Err(e) = HashKey::parse(key) {
                    out.push(("balance.key", e));
                }
            }
            (Some(_), _) => out.push(("balance.key", "is only for strategy hash".to_owned())),
            (None, _) => {}
        }
    }
    if let Some(breaker) = &server.breaker {
        if !(1..=1000).contains(&breaker.failures) {
            out.push(("breaker.failures", "must be between 1 and 1000".to_owned()));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&breaker.open_for) {
            out.push(("breaker.open_for", "must be between 10ms and 1h".to_owned()));
        }
        if !(1..=100).contains(&breaker.trials) {
            out.push(("breaker.trials", "must be between 1 and 100".to_owned()));
        }
    }
    if let Some(health) = &server.health {
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&health.interval) {
            out.push(("health.interval", "must be between 100ms and 1h".to_owned()));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&health.timeout) {
            out.push(("health.timeout", "must be between 10ms and 1h".to_owned()));
        }
    }
    out
}

impl super::ServerConfig {
    /// How many replicas it runs: `replicas` for a command, `url` and each
    /// of `endpoints` for a network server.
    pub fn replica_count(&self) -> usize {
        if self.url.is_some() {
            1 + self.endpoints.len()
        } else {
            self.replicas.map_or(1, |n| n as usize)
        }
    }

    /// Whether its calls go through a balancer and breakers: it has more
    /// than one replica, or a breaker, balancing or health checks are
    /// configured.
    pub fn is_replicated(&self) -> bool {
        self.replica_count() > 1
            || self.balance.is_some()
            || self.breaker.is_some()
            || self.health.is_some()
    }
}
