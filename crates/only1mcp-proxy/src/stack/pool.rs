//! A server's replicas (ADR 0017): several backends, one server.
//!
//! A server with `replicas: N` (a command) or `endpoints` (a network
//! server), or with `balance`, `breaker` or `health` set, is a [`Pool`]:
//! each replica is a whole [`Backend`] (its own process or connection,
//! supervisor, lists, relay and stats), behind its own circuit breaker
//! (`only1mcp_health::CircuitBreaker`) and health checks
//! (`only1mcp_health::probe::watch`), and calls are spread over them by an
//! `only1mcp_balancer::Balance`. The pool is the server's `stack::Endpoint`,
//! so the embedder's server layers sit above it. The catalog serves the
//! tools (prompts, resources) every replica with lists offers; replicas
//! whose lists differ are logged and shown in the status.
//!
//! What the pool adds to each call: the hash key of the `hash` strategy,
//! whether the call may be sent twice (read-only and idempotent tools by
//! their annotations, the methods that only read), and nothing for a
//! server without a pool.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;
use only1mcp_balancer::{Balance, ReplicaLoad};
use only1mcp_core::catalog::Lists;
use only1mcp_core::config::replicas::{HashKey, Strategy};
use only1mcp_core::config::{HealthConfig, ServerConfig};
use only1mcp_core::mcp::{self, RawObject};
use only1mcp_core::pipeline::{Affinity, Availability, Routed};
use only1mcp_health::{CircuitBreaker, State, Thresholds};
use serde_json::value::RawValue;

use super::{CallFuture, Endpoint};
use crate::backend::Backend;

/// The service of one replica: its endpoint behind its breaker.
pub(crate) type ReplicaService = CircuitBreaker<Endpoint>;

/// The replicas of one server and how calls are spread over them.
pub(crate) struct Pool {
    server: Arc<str>,
    balance: Balance<ReplicaService>,
    /// What `hash` hashes, for that strategy.
    key: Option<HashKey>,
    /// The backend names of the tools that may be sent twice.
    repeatable: Arc<ArcSwap<HashSet<Arc<str>>>>,
    /// What the replicas' lists disagree on, as last reported.
    differences: ArcSwap<Vec<String>>,
    health: HealthConfig,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.server)
            .field("balance", &self.balance)
            .finish_non_exhaustive()
    }
}

/// One replica's state, for the admin API and `only1mcp status`.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaReport {
    /// Its index (0 is the first).
    pub(crate) replica: u32,
    /// `ready`, `starting`, `ejected` (its breaker is open) or `half-open`,
    /// or `down` (failed or stopped).
    pub(crate) state: &'static str,
    /// Its breaker: `closed`, `open` or `half-open`.
    pub(crate) breaker: String,
    /// How many times its breaker opened.
    pub(crate) ejections: u64,
    /// Calls in flight on it.
    pub(crate) in_flight: usize,
    /// Calls it got (health checks included).
    pub(crate) requests: u64,
    /// Its peak-EWMA latency, in milliseconds.
    pub(crate) ewma_ms: f64,
    /// Its process id, for a command.
    pub(crate) pid: Option<u32>,
}

impl Pool {
    /// The pool over `replicas` (already made, not yet started) of
    /// `server` as `source` configures it.
    pub(crate) fn new(server: Arc<str>, source: &ServerConfig, replicas: &[Arc<Backend>]) -> Self {
        let breaker = source.breaker.unwrap_or_default();
        let thresholds = Thresholds {
            failures: breaker.failures,
            open_for: breaker.open_for,
            trials: breaker.trials,
        };
        let services = replicas
            .iter()
            .map(|backend| {
                CircuitBreaker::named(Endpoint::new(backend), thresholds, server.clone())
            })
            .collect();
        let balance_config = source.balance.clone().unwrap_or_default();
        let key = match balance_config.strategy {
            Strategy::Hash => Some(
                balance_config
                    .key
                    .as_deref()
                    .map_or(Ok(HashKey::Session), HashKey::parse)
                    .unwrap_or(HashKey::Session),
            ),
            _ => None,
        };
        let repeatable: Arc<ArcSwap<HashSet<Arc<str>>>> = Arc::default();
        let tools = repeatable.clone();
        let balance = Balance::new(
            server.clone(),
            services,
            balance_config.strategy,
            move |routed: &Routed| repeatable_call(routed, &tools.load()),
        );
        Self {
            server,
            balance,
            key,
            repeatable,
            differences: ArcSwap::from_pointee(Vec::new()),
            health: source.health.unwrap_or_default(),
        }
    }

    /// Sends `routed` to one of the replicas.
    pub(crate) fn dispatch(&self, mut routed: Routed) -> CallFuture {
        if let Some(key) = &self.key
            && !matches!(routed.affinity, Affinity::Replica(_))
        {
            routed.affinity = hash_affinity(key, &routed);
        }
        let mut balance = self.balance.clone();
        tower::Service::call(&mut balance, routed)
    }

    /// Whether any replica can take calls now.
    pub(crate) fn availability(&self) -> Availability {
        only1mcp_core::pipeline::Endpoint::availability(&self.balance)
    }

    /// Calls in flight on all replicas.
    pub(crate) fn in_flight(&self) -> usize {
        only1mcp_core::pipeline::Endpoint::in_flight(&self.balance)
    }

    /// Starts each replica's health checks; each ends when its replica is
    /// stopped.
    pub(crate) fn watch(&self, replicas: &[Arc<Backend>]) {
        let checks = only1mcp_health::probe::Checks {
            interval: self.health.interval,
            timeout: self.health.timeout,
        };
        for (breaker, backend) in self.balance.replicas().zip(replicas) {
            let watch = only1mcp_health::probe::watch(self.server.clone(), breaker.clone(), checks);
            let stop = backend.stop_token();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = watch => {}
                }
            });
        }
    }

    /// Each replica's state.
    pub(crate) fn report(&self, replicas: &[Arc<Backend>]) -> Vec<ReplicaReport> {
        let loads: Vec<ReplicaLoad> = self.balance.loads();
        self.balance
            .replicas()
            .zip(replicas)
            .zip(loads)
            .map(|((breaker, backend), load)| {
                let breaker_state = breaker.state();
                let state = match (breaker_state, backend.availability()) {
                    (State::Open, _) => "ejected",
                    (State::HalfOpen, _) => "half-open",
                    (State::Closed, Availability::Ready) => "ready",
                    (State::Closed, Availability::Starting) => "starting",
                    (State::Closed, Availability::Down) => "down",
                };
                ReplicaReport {
                    replica: backend.replica(),
                    state,
                    breaker: breaker_state.to_string(),
                    ejections: breaker.times_opened(),
                    in_flight: load.in_flight,
                    requests: backend.stats().requests,
                    ewma_ms: load.ewma.as_secs_f64() * 1000.0,
                    pid: backend.pid(),
                }
            })
            .collect()
    }

    /// What the replicas' lists disagree on (the names left out of the
    /// catalog), as of the last catalog build.
    pub(crate) fn differences(&self) -> Vec<String> {
        self.differences.load().to_vec()
    }

    /// The lists every replica offers (of the replicas that have fetched
    /// theirs); what differs is logged once when it changes. Also learns
    /// which tools may be sent twice.
    pub(crate) fn lists(&self, replicas: &[Arc<Backend>]) -> Lists {
        let all: Vec<Arc<Lists>> = replicas
            .iter()
            .map(|b| b.lists())
            .filter(|l| l.items() > 0)
            .collect();
        let Some((first, rest)) = all.split_first() else {
            return Lists::default();
        };
        let mut lists = (**first).clone();
        let mut dropped = Vec::new();
        for other in rest {
            keep_common(&mut lists.tools, &other.tools, "name", &mut dropped);
            keep_common(&mut lists.prompts, &other.prompts, "name", &mut dropped);
            keep_common(&mut lists.resources, &other.resources, "uri", &mut dropped);
            keep_common(
                &mut lists.resource_templates,
                &other.resource_templates,
                "uriTemplate",
                &mut dropped,
            );
            // Also what the others have and the first lacks.
            for (mine, theirs, field) in [
                (&first.tools, &other.tools, "name"),
                (&first.prompts, &other.prompts, "name"),
                (&first.resources, &other.resources, "uri"),
            ] {
                let have: HashSet<String> = names(mine, field).collect();
                dropped.extend(names(theirs, field).filter(|n| !have.contains(n)));
            }
        }
        dropped.sort();
        dropped.dedup();
        if **self.differences.load() != dropped {
            if !dropped.is_empty() {
                tracing::warn!(server = %self.server, left_out = ?dropped, "Replicas offer different lists; serving what they all offer");
            }
            self.differences.store(Arc::new(dropped));
        }
        self.repeatable.store(Arc::new(
            lists
                .tools
                .iter()
                .filter(|tool| safe_to_repeat(tool))
                .filter_map(|tool| mcp::string_field(tool, "name"))
                .map(Arc::from)
                .collect(),
        ));
        lists
    }
}

fn names<'a>(items: &'a [RawObject], field: &'a str) -> impl Iterator<Item = String> + 'a {
    items
        .iter()
        .filter_map(move |i| mcp::string_field(i, field))
}

/// Keeps the items of `mine` that `theirs` has too (by `field`); the names
/// of the others go to `dropped`.
fn keep_common(
    mine: &mut Vec<RawObject>,
    theirs: &[RawObject],
    field: &str,
    dropped: &mut Vec<String>,
) {
    let have: HashSet<String> = names(theirs, field).collect();
    mine.retain(|item| match mcp::string_field(item, field) {
        Some(name) if have.contains(&name) => true,
        Some(name) => {
            dropped.push(name);
            false
        }
        None => false,
    });
}

/// Whether a tool's annotations say calling it twice does no harm.
fn safe_to_repeat(tool: &RawObject) -> bool {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Hints {
        #[serde(default)]
        read_only_hint: bool,
        #[serde(default)]
        idempotent_hint: bool,
    }
    tool.get("annotations")
        .and_then(|raw| serde_json::from_str::<Hints>(raw.get()).ok())
        .is_some_and(|h| h.read_only_hint || h.idempotent_hint)
}

/// Whether `routed` may be sent twice: a tool its annotations call
/// read-only or idempotent, or a method that only reads.
fn repeatable_call(routed: &Routed, tools: &HashSet<Arc<str>>) -> bool {
    match routed.method() {
        "tools/call" => tools.contains(&*routed.route.name),
        "resources/read" | "prompts/get" | "completion/complete" | "ping" | "logging/setLevel" => {
            true
        }
        method => method.ends_with("/list"),
    }
}

/// The affinity of `routed` under the `hash` strategy's `key`; a call
/// without the key goes to any replica.
fn hash_affinity(key: &HashKey, routed: &Routed) -> Affinity {
    let mut hasher = std::hash::DefaultHasher::new();
    match key {
        HashKey::Session => return routed.affinity,
        HashKey::Principal => match &routed.principal {
            Some(p) => (&p.issuer, &p.subject).hash(&mut hasher),
            None => return Affinity::None,
        },
        HashKey::Argument(path) => match argument(routed.call.params.as_deref(), path) {
            Some(value) => value.get().hash(&mut hasher),
            None => return Affinity::None,
        },
    }
    Affinity::Key(hasher.finish())
}

/// The value at `arguments.<path>` of a call's params, as its JSON text.
fn argument(params: Option<&RawValue>, path: &[String]) -> Option<Box<RawValue>> {
    let object = mcp::params_object(params).ok()?;
    let mut value = object.get("arguments")?.clone();
    for name in path {
        let object: RawObject = serde_json::from_str(value.get()).ok()?;
        value = object.get(name.as_str())?.clone();
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_core::catalog::Route;
    use only1mcp_core::mcp::Era;
    use only1mcp_core::upstream::Call;

    fn call(method: &str, name: &str, params: &str) -> Routed {
        Routed::new(
            Call::new(
                method,
                Some(RawValue::from_string(params.to_owned()).unwrap()),
            ),
            Route {
                server: "s".into(),
                name: name.into(),
            },
            Era::Modern,
        )
    }

    #[test]
    fn only_safe_tools_and_reading_methods_are_repeatable() {
        let tools: HashSet<Arc<str>> = [Arc::from("echo")].into_iter().collect();
        assert!(repeatable_call(&call("tools/call", "echo", "{}"), &tools));
        assert!(!repeatable_call(&call("tools/call", "write", "{}"), &tools));
        assert!(repeatable_call(
            &call("resources/read", "r://x", "{}"),
            &tools
        ));
        assert!(!repeatable_call(
            &call("resources/subscribe", "r://x", "{}"),
            &tools
        ));
        let tool = |json: &str| serde_json::from_str::<RawObject>(json).unwrap();
        assert!(safe_to_repeat(&tool(
            r#"{"name":"a","annotations":{"readOnlyHint":true}}"#
        )));
        assert!(safe_to_repeat(&tool(
            r#"{"name":"a","annotations":{"idempotentHint":true}}"#
        )));
        assert!(!safe_to_repeat(&tool(
            r#"{"name":"a","annotations":{"destructiveHint":false}}"#
        )));
        assert!(!safe_to_repeat(&tool(r#"{"name":"a"}"#)));
    }

    #[test]
    fn an_argument_key_hashes_the_value_at_its_path() {
        let key = HashKey::parse("arguments.repo.name").unwrap();
        let a = call(
            "tools/call",
            "t",
            r#"{"name":"t","arguments":{"repo":{"name":"x"},"n":1}}"#,
        );
        let b = call(
            "tools/call",
            "t",
            r#"{"name":"t","arguments":{"n":2,"repo":{"name":"x"}}}"#,
        );
        let c = call(
            "tools/call",
            "t",
            r#"{"name":"t","arguments":{"repo":{"name":"y"}}}"#,
        );
        let none = call("tools/call", "t", r#"{"name":"t","arguments":{}}"#);
        assert!(matches!(hash_affinity(&key, &a), Affinity::Key(_)));
        assert_eq!(hash_affinity(&key, &a), hash_affinity(&key, &b));
        assert_ne!(hash_affinity(&key, &a), hash_affinity(&key, &c));
        assert_eq!(hash_affinity(&key, &none), Affinity::None);
    }
}
