//! The gateway: every backend, the merged catalog, and what ties clients'
//! requests to backends and back.
//!
//! The catalog is an immutable snapshot behind an [`ArcSwap`]: requests load
//! it without locking, and a backend whose lists change makes the gateway
//! build a new snapshot beside the old one and swap it in. Clients learn of a
//! change through [`Gateway::subscribe`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use only1mcp_core::catalog::{Catalog, Prefix, ServerListing, ToolFilter};
use only1mcp_core::config::{Config, ContextMode, ServerConfig, SwapMode};
use only1mcp_core::jsonrpc::{Message, Notification};
use only1mcp_core::mcp::{self, Implementation, ListKind, ServerCapabilities};
use only1mcp_core::naming::Namespace;
use only1mcp_transport::downstream::Outbound;
use only1mcp_transport::handshake::ClientIdentity;
use only1mcp_transport::network::NetworkSpec;
use only1mcp_transport::stdio::Spec;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, Hub, LARGE_CATALOG, Launch, Settings, Status, catalog_work};
use crate::context::{self, Views};
use crate::holds::Holds;
use crate::stack::{CallStack, Endpoint, Member};
use crate::subscriptions::{Added, Subscriber, Subscriptions};
use only1mcp_core::pipeline::Affinity;

/// The gateway's name towards clients and backends.
pub fn implementation() -> Implementation {
    Implementation {
        name: "only1mcp".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        title: Some("Only1MCP".to_owned()),
    }
}

/// Where a progress notification with a gateway token goes.
#[derive(Debug)]
struct ProgressRoute {
    outbound: Outbound,
    original: Box<RawValue>,
}

#[derive(Debug)]
struct Shared {
    namespace: ArcSwap<Namespace>,
    /// The backends by id, in priority order: an immutable snapshot that a
    /// reload swaps whole (shared with the call stack's router).
    backends: crate::stack::Backends,
    /// The per-call stack every call to a backend goes through.
    stack: CallStack,
    /// Builds each new backend's server stack.
    server_stacks: crate::stack::ServerStacks,
    /// No layers anywhere: the stack is the identity, and a call goes to
    /// its backend's endpoint in the caller's own future ([`Gateway::call`]).
    direct: bool,
    /// The audit trail, when `audit:` turns it on.
    auditor: Option<only1mcp_auth::audit::Auditor>,
    /// The only layer is the trace layer over each endpoint: a call outside
    /// a sampled request goes the direct way too.
    direct_untraced: bool,
    catalog: ArcSwap<Catalog>,
    /// Each client profile's view of the catalog, swapped with it.
    views: ArcSwap<Views>,
    /// Orders and coalesces catalog rebuilds (never taken on the request
    /// path; a large catalog is rebuilt on the catalog thread).
    rebuilds: Rebuilds,
    /// Calls held for a modern client's retry (ADR 0006).
    holds: Arc<Holds>,
    changes: broadcast::Sender<ListKind>,
    next_token: AtomicU64,
    // Held for one map operation at a time, never across an await.
    progress: Mutex<HashMap<String, ProgressRoute>>,
    subscriptions: Subscriptions,
    page_size: std::sync::atomic::AtomicUsize,
    /// Serializes reloads (never taken on the request path).
    reload: tokio::sync::Mutex<()>,
    /// Requests that asked for log messages, per server.
    log_routes: Mutex<HashMap<Arc<str>, Vec<(u64, Outbound)>>>,
    /// The config last applied (the admin API edits a copy of it).
    config: ArcSwap<Config>,
    /// Who may use the HTTP faces (`auth:`); `None`: everyone, unchecked.
    /// Rebuilt when a reload changes `auth` (its caches start empty).
    admission: arc_swap::ArcSwapOption<only1mcp_auth::Admission>,
    /// What each principal may see and call (`auth.roles`), shared with
    /// the call stack's `rbac::Enforce` layer.
    policy: only1mcp_auth::SharedPolicy,
    /// Whether the call stack's router checks the role policy; when it does
    /// not (the gateway started without `auth` and a reload added roles),
    /// the session checks calls itself.
    enforced: bool,
    /// The Prometheus metrics, unless `metrics.enabled` is false.
    metrics: Option<only1mcp_observability::metrics::Metrics>,
    /// Client sessions open now (made, less dropped).
    sessions: std::sync::atomic::AtomicUsize,
}

/// Catalog rebuilds, one at a time and no more than needed.
///
/// Every change (a backend's lists stored, the backend set swapped) is
/// numbered before its rebuild is asked for. A rebuild reads the newest
/// number before it reads any list, so it includes every change numbered up
/// to there; a rebuild asked for a change that an already finished rebuild
/// includes is skipped. Ten backends becoming ready together thus cost a
/// rebuild or two rather than ten, and the last swap is always from the
/// newest lists.
#[derive(Debug, Default)]
pub(crate) struct Rebuilds {
    /// The newest change.
    changed: AtomicU64,
    /// The newest change the current catalog includes; held while building.
    built: Mutex<u64>,
}

impl Rebuilds {
    /// Numbers a change whose effects are already stored.
    pub(crate) fn change(&self) -> u64 {
        self.changed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Runs `build` unless a finished rebuild includes change `wanted`.
    /// Returns whether it ran.
    pub(crate) fn include(&self, wanted: u64, build: impl FnOnce()) -> bool {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if *built >= wanted {
            return false;
        }
        let covers = self.changed.load(Ordering::SeqCst);
        build();
        *built = covers;
        true
    }
}

impl Shared {
    /// Rebuilds the catalog to include everything stored so far. Takes
    /// milliseconds for thousands of tools: call it through
    /// [`catalog_work`], which takes a large catalog off the runtime thread
    /// (ADR 0008).
    fn rebuild(&self) {
        let wanted = self.rebuilds.change();
        self.rebuilds.include(wanted, || self.build());
    }

    fn build(&self) {
        let listings: Vec<ServerListing> = self
            .backends
            .load()
            .values()
            .map(|member| ServerListing {
                server: member.backend.id().clone(),
                prefix: member.backend.settings().prefix,
                filter: member.backend.settings().filter.clone(),
                lists: (*member.lists()).clone(),
            })
            .collect();
        let next = Arc::new(Catalog::build(&listings, &self.namespace.load()));
        let views = Views::build(next.clone(), &self.config.load(), Some(&self.views.load()));
        if let Some(metrics) = &self.metrics {
            metrics.set_catalog(&next);
        }
        let previous = self.catalog.swap(next);
        let previous_views = self.views.swap(Arc::new(views));
        let views_changed = previous_views.differ(&self.views.load());
        let current = self.catalog.load();
        for conflict in current.conflicts() {
            if !previous.conflicts().contains(conflict) {
                tracing::warn!(%conflict, "Name collision resolved");
            }
        }
        for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
            let differs = |k: ListKind| {
                let (old, new) = (previous.entries(k), current.entries(k));
                old.len() != new.len()
                    || old
                        .iter()
                        .zip(new)
                        .any(|(a, b)| a.item.get() != b.item.get())
            };
            let changed = differs(kind)
                || (kind == ListKind::Resources && differs(ListKind::ResourceTemplates))
                || (kind == ListKind::Tools && views_changed);
            if changed {
                let _ = self.changes.send(kind);
            }
        }
    }
}

impl Hub for Shared {
    fn lists_changed(&self, server: &str) {
        tracing::debug!(server, "Rebuilding the catalog");
        self.rebuild();
    }

    fn catalog_items(&self) -> usize {
        self.backends
            .load()
            .values()
            .map(|member| member.lists().items())
            .sum()
    }

    fn log_message(&self, server: &str, notification: &Notification) -> bool {
        if notification.method != mcp::method::MESSAGE {
            return false;
        }
        let routes = self
            .log_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A shared backend's log line names no request: it is delivered only
        // when exactly one request that asked for logs is in flight, so it
        // can never reach the wrong client.
        match routes.get(server).map(Vec::as_slice) {
            Some([(_, outbound)]) => {
                let message = Message::Notification(Notification {
                    method: notification.method.clone(),
                    params: notification.params.clone(),
                });
                outbound.try_send(&message);
                true
            }
            Some(_) | None => false,
        }
    }

    fn resource_updated(&self, server: &str, notification: &Notification) {
        let Ok(params) = mcp::params_object(notification.params.as_deref()) else {
            return;
        };
        let Some(uri) = mcp::string_field(&params, "uri") else {
            return;
        };
        let message = Message::Notification(Notification {
            method: notification.method.clone(),
            params: notification.params.clone(),
        });
        for session in self.subscriptions.subscribers(server, &uri) {
            session.notify(&message);
        }
    }

    fn progress(&self, server: &str, notification: &Notification) -> bool {
        if notification.method != mcp::method::PROGRESS {
            return false;
        }
        let Ok(mut params) = mcp::params_object(notification.params.as_deref()) else {
            return false;
        };
        let Some(token) = mcp::string_field(&params, mcp::meta::PROGRESS_TOKEN) else {
            return false;
        };
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(route) = progress.get(&token) else {
            tracing::debug!(server, token, "Progress for no active request; dropped");
            return true;
        };
        params.insert(mcp::meta::PROGRESS_TOKEN.to_owned(), route.original.clone());
        let Ok(params) = mcp::to_raw_object(&params) else {
            return true;
        };
        let message = Message::Notification(Notification {
            method: notification.method.clone(),
            params: Some(params),
        });
        // Progress is lossy by nature: a client too slow to take it misses
        // some, and never holds up the backend's reader.
        if !route.outbound.try_send(&message) {
            tracing::debug!(server, "Client not keeping up; progress dropped");
        }
        true
    }
}

/// A log route registered for one forwarded request; dropping it removes it.
#[derive(Debug)]
pub struct LogGuard {
    shared: Arc<Shared>,
    server: Arc<str>,
    id: u64,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let mut routes = self
            .shared
            .log_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = routes.get_mut(&self.server) {
            list.retain(|(id, _)| *id != self.id);
        }
    }
}

/// A progress token registered for one forwarded request; dropping it
/// unregisters the route, so progress stops once the request is answered.
#[derive(Debug)]
pub struct ProgressGuard {
    shared: Arc<Shared>,
    token: String,
}

impl ProgressGuard {
    /// The token to send to the backend.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.token);
    }
}

/// A legacy session's `resources/subscribe` or `unsubscribe` of `uri` on
/// its way to `server`.
fn resource_call(
    session: &dyn Subscriber,
    method: &str,
    params: Option<Box<RawValue>>,
    server: &Arc<str>,
    uri: &str,
) -> only1mcp_core::pipeline::Routed {
    let uri: Arc<str> = uri.into();
    session.routed(
        only1mcp_core::upstream::Call::new(method, params),
        only1mcp_core::catalog::Route {
            server: server.clone(),
            name: uri.clone(),
        },
        Some(uri),
        mcp::Era::Legacy,
    )
}

/// How long a removed or changed backend may take to finish its calls in
/// flight before it is stopped.
const DRAIN: Duration = Duration::from_secs(30);

/// The longest a backend's stop takes (stdin closed, `SIGTERM`, `SIGKILL`,
/// each given its grace), with room to spare.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Drains a backend a reload took out of the set (its calls in flight
/// finish, at most [`DRAIN`]) and stops it; then, for a break-before-make
/// replacement (`gap`), runs the replacement's supervisor.
async fn drain_and_stop(backend: Arc<Backend>, gap: Option<Arc<Backend>>, shared: Arc<Shared>) {
    if !backend.drain(DRAIN).await {
        tracing::warn!(server = %backend.id(), in_flight = backend.in_flight(), "Drain timed out; stopping anyway");
    }
    backend.stop_token().cancel();
    let Some(next) = gap else { return };
    backend.stopped().await;
    if next.stop_token().is_cancelled() {
        next.mark_stopped();
        return;
    }
    tracing::info!(server = %next.id(), "The previous backend stopped; starting its replacement");
    let hub: Arc<dyn Hub> = shared;
    let stop = next.stop_token();
    next.supervise(hub, stop).await;
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Backends whose config did not change (process and connection kept).
    pub kept: Vec<Arc<str>>,
    /// Backends started (new, or changed).
    pub started: Vec<Arc<str>>,
    /// Backends stopped after draining (removed, disabled, or changed).
    pub stopped: Vec<Arc<str>>,
    /// Started backends whose first start failed.
    pub failed: Vec<Arc<str>>,
    /// Changed servers whose replacement failed to start: the running
    /// backend serves on with its previous config (make-before-break); the
    /// next reload tries the change again.
    pub kept_previous: Vec<Arc<str>>,
    /// Microseconds from the start of the reload until the new backend set
    /// and catalog were in place (new processes' own start-up excluded).
    pub applied_us: u64,
}

/// The settings of one backend under `config`.
fn settings_for(id: &Arc<str>, server: &ServerConfig, config: &Config) -> Settings {
    // Config::validate has checked the patterns; should one still fail to
    // compile, expose nothing rather than what it meant to deny.
    let filter = ToolFilter::new(&server.tools).unwrap_or_else(|e| {
        tracing::error!(server = %id, error = %e, "Invalid tool filter; exposing no tools");
        ToolFilter::deny_all()
    });
    let launch = match (&server.url, Config::url_transport(server)) {
        (Some(url), Some(transport)) => {
            let mut spec = NetworkSpec::new(id.clone(), url.clone(), transport);
            spec.headers = server.headers.clone().into_iter().collect();
            spec.connect_timeout = config.defaults.startup_timeout;
            spec.extra_ca = server.ca_file.clone();
            Launch::Network(spec)
        }
        _ => Launch::Stdio(Spec {
            server: id.clone(),
            command: server.command.clone(),
            args: server.args.clone(),
            env: server.env.clone(),
            cwd: server.cwd.clone(),
            max_log_line: config.defaults.max_log_line,
        }),
    };
    Settings {
        launch,
        request_timeout: config.request_timeout(server),
        startup_timeout: config.defaults.startup_timeout,
        max_log_line: config.defaults.max_log_line,
        prefix: Prefix::resolve(config.naming.prefix, server.prefix),
        filter,
    }
}

/// The settings of replica `replica` of `server`: a network server's
/// replicas are its `url` and then each of its `endpoints`.
fn replica_settings(settings: &Settings, server: &ServerConfig, replica: usize) -> Settings {
    let mut settings = settings.clone();
    if let Launch::Network(spec) = &mut settings.launch
        && let Some(url) = replica.checked_sub(1).and_then(|i| server.endpoints.get(i))
    {
        spec.url.clone_from(url);
    }
    settings
}

/// A backend's status, for `only1mcp list` and logs.
#[derive(Debug, Clone)]
pub struct BackendReport {
    /// The server id.
    pub server: Arc<str>,
    /// Where it stands.
    pub status: Status,
    /// The era and version it speaks, if connected.
    pub protocol: Option<(mcp::Era, String)>,
}

/// How the builder set up authorization: the policy cell the call stack's
/// router reads, and whether it reads it.
#[derive(Debug, Default)]
pub(crate) struct Access {
    pub(crate) policy: only1mcp_auth::SharedPolicy,
    pub(crate) enforced: bool,
}

/// The admission `config.auth` asks for. A config that cannot be admitted
/// with (checked by `load::check` before it gets here; an embedder may skip
/// that) gets an admission that refuses every request: never an open door.
fn admission_for(config: &Config) -> Option<only1mcp_auth::Admission> {
    only1mcp_auth::Admission::new(&config.auth).unwrap_or_else(|e| {
        tracing::error!(error = %e, "auth: cannot admit with this config; refusing every HTTP request");
        Some(only1mcp_auth::Admission::closed(e))
    })
}

/// The role policy `config.auth` asks for (a bad one, which `load::check`
/// refuses first, allows nothing).
fn policy_for(config: &Config) -> Option<only1mcp_auth::Policy> {
    only1mcp_auth::Policy::new(&config.auth).unwrap_or_else(|e| {
        tracing::error!(error = %e, "auth.roles: cannot build the policy; allowing nothing");
        Some(only1mcp_auth::Policy::deny_all())
    })
}

/// The running gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Gateway {
    /// Starts the gateway with the call stack made by `stack` (over the
    /// router of `backends`) and each backend's stack by `server_stacks`
    /// (see `Gateway::start` and `Gateway::builder`).
    pub(crate) async fn start_with(
        config: &Config,
        stack: impl FnOnce(crate::stack::Backends) -> CallStack,
        server_stacks: crate::stack::ServerStacks,
        access: Access,
        auditor: Option<only1mcp_auth::audit::Auditor>,
        metrics: Option<only1mcp_observability::metrics::Metrics>,
    ) -> Self {
        let backends: crate::stack::Backends = Arc::new(ArcSwap::from_pointee(BTreeMap::new()));
        let stack = stack(backends.clone());
        let shared = Arc::new(Shared {
            auditor,
            namespace: ArcSwap::from_pointee(Namespace::default()),
            // (The role check is the router's: with it, calls go through it.)
            direct: (stack.is_bare_router() || stack.metered_router().is_some())
                && server_stacks.is_identity()
                && !access.enforced,
            direct_untraced: (stack.is_bare_router() || stack.metered_router().is_some())
                && server_stacks.is_traced_identity()
                && !access.enforced,
            stack,
            server_stacks,
            backends,
            catalog: ArcSwap::from_pointee(Catalog::default()),
            views: ArcSwap::from_pointee(Views::default()),
            rebuilds: Rebuilds::default(),
            holds: Holds::new(config.security.state_key.as_deref().map(str::as_bytes)),
            changes: broadcast::channel(64).0,
            next_token: AtomicU64::new(1),
            progress: Mutex::new(HashMap::new()),
            subscriptions: Subscriptions::default(),
            page_size: std::sync::atomic::AtomicUsize::new(0),
            reload: tokio::sync::Mutex::new(()),
            log_routes: Mutex::new(HashMap::new()),
            config: ArcSwap::from_pointee(config.clone()),
            admission: arc_swap::ArcSwapOption::from(admission_for(config).map(Arc::new)),
            policy: access.policy,
            enforced: access.enforced,
            metrics,
            sessions: std::sync::atomic::AtomicUsize::new(0),
        });
        shared.policy.store(policy_for(config).map(Arc::new));
        let gateway = Self {
            shared,
            shutdown: CancellationToken::new(),
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        gateway
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawn(timer_floor(gateway.shutdown.clone()));
        if let Some(metrics) = gateway.shared.metrics.clone() {
            gateway
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .spawn(metrics_ticks(metrics, gateway.shutdown.clone()));
        }
        if config
            .context
            .resolved_profiles()
            .values()
            .any(|p| p.mode == Some(ContextMode::Auto))
        {
            // `auto` views count tokens when the catalog is built: make the
            // encoder while the backends start.
            tokio::task::spawn_blocking(context::tokens::warm);
        }
        let report = gateway.apply(config).await;
        for server in &report.failed {
            if let Some(backend) = gateway.backend(server)
                && let Status::Failed(reason) = backend.status()
            {
                tracing::error!(server = %server, reason = %reason, "Backend left out: it failed to start");
            }
        }
        gateway
    }

    /// A server of the set, not yet started: one backend, or its replicas
    /// and their pool (ADR 0017), with its server stack, made once; it
    /// lives as long as the server stays in the set.
    fn member(
        &self,
        settings: Settings,
        server: &ServerConfig,
        identity: &Implementation,
    ) -> Member {
        let id = settings.launch.server().clone();
        let new = |settings: Settings, replica: usize, first: Option<&Backend>| {
            Backend::new(
                settings,
                server.clone(),
                identity,
                self.shutdown.child_token(),
                u32::try_from(replica).unwrap_or(u32::MAX),
                first,
            )
        };
        if !server.is_replicated() {
            let backend = new(settings, 0, None);
            let stack = self.shared.server_stacks.build(Endpoint::new(&backend));
            return Member {
                backend,
                stack,
                pool: None,
            };
        }
        let first = new(settings.clone(), 0, None);
        let replicas: Arc<[Arc<Backend>]> = std::iter::once(first.clone())
            .chain((1..server.replica_count()).map(|replica| {
                new(
                    replica_settings(&settings, server, replica),
                    replica,
                    Some(&first),
                )
            }))
            .collect();
        let pool = Arc::new(crate::stack::pool::Pool::new(id, server, &replicas));
        let stack = self
            .shared
            .server_stacks
            .build(Endpoint::pool(pool.clone()));
        Member {
            backend: replicas[0].clone(),
            stack,
            pool: Some((replicas, pool)),
        }
    }

    /// Applies a new config: backends whose config did not change keep their
    /// process and connection; added ones start; removed or changed ones stop
    /// taking new requests at once, finish the calls in flight (at most
    /// `drain`), then stop. The catalog is rebuilt and clients are told of
    /// what changed. Waits until the started backends have finished their
    /// first start attempt. The caller has validated `config`.
    pub async fn reload(&self, config: &Config) -> ReloadReport {
        let report = self.apply(config).await;
        if let Some(auditor) = &self.shared.auditor {
            let mut event = only1mcp_auth::audit::Event::new(only1mcp_auth::audit::Kind::Reload);
            event.detail = Some(format!(
                "kept {:?}, started {:?}, stopped {:?}, failed {:?}",
                report.kept, report.started, report.stopped, report.failed
            ));
            auditor.record(event);
        }
        self.record_reload(true, Duration::from_micros(report.applied_us));
        tracing::info!(
            applied_us = report.applied_us,
            kept = report.kept.len(),
            started = ?report.started,
            stopped = ?report.stopped,
            failed = ?report.failed,
            kept_previous = ?report.kept_previous,
            "Config reloaded"
        );
        report
    }

    async fn apply(&self, config: &Config) -> ReloadReport {
        let _one_at_a_time = self.shared.reload.lock().await;
        let began = std::time::Instant::now();
        let previous = self.shared.config.swap(Arc::new(config.clone()));
        if previous.auth != config.auth {
            self.shared
                .admission
                .store(admission_for(config).map(Arc::new));
            self.shared.policy.store(policy_for(config).map(Arc::new));
            if self.shared.policy.load().is_some() && !self.shared.enforced {
                tracing::warn!(
                    "auth.roles came with a reload: calls are checked by the session until a restart puts the check in the call stack"
                );
            }
        }
        let identity = implementation();
        self.shared.namespace.store(Arc::new(
            Namespace::new(&config.naming.separator).unwrap_or_default(),
        ));
        self.shared
            .page_size
            .store(config.defaults.page_size, Ordering::Relaxed);
        let old = self.shared.backends.load_full();
        let mut next = BTreeMap::new();
        let mut report = ReloadReport::default();
        // New servers, and break-before-make replacements: started after
        // the swap (a replacement once its predecessor has stopped).
        let mut started = Vec::new();
        let mut gapped = Vec::new();
        // Make-before-break replacements: started now, beside the old one,
        // which stays in the set until its replacement is ready.
        let mut overlapping = Vec::new();
        // Pools of replicas whose health checks start once they are in the
        // set (ADR 0017).
        let mut pools = Vec::new();
        for (id, server) in config.servers.iter().filter(|(_, s)| s.enabled) {
            let id: Arc<str> = id.as_str().into();
            let settings = settings_for(&id, server, config);
            let current = old.get(&id);
            if let Some(member) = current
                && member.backend.same_source(server, &settings)
            {
                // Back on the config it runs on: no change is pending.
                member.backend.set_replace_failed(None);
                report.kept.push(id.clone());
                next.insert(id, member.clone());
                continue;
            }
            let member = self.member(settings, server, &identity);
            report.started.push(id.clone());
            // A server with replicas is always replaced make before break.
            let swap = match current {
                Some(old_member) if old_member.pool.is_none() && member.pool.is_none() => {
                    server.swap
                }
                _ => SwapMode::MakeBeforeBreak,
            };
            match (current, swap) {
                (Some(old_member), SwapMode::MakeBeforeBreak) => {
                    for backend in member.replicas() {
                        self.supervise(backend);
                    }
                    next.insert(id.clone(), old_member.clone());
                    overlapping.push((id, member));
                }
                (Some(old_member), SwapMode::BreakBeforeMake) => {
                    // The catalog keeps the old one's tools while the new
                    // one starts; calls in the gap wait for it.
                    member.backend.seed_lists(old_member.backend.lists());
                    gapped.push((old_member.backend.clone(), member.backend.clone()));
                    next.insert(id, member);
                }
                (None, _) => {
                    started.extend(member.replicas().iter().cloned());
                    pools.extend(member.pool.clone());
                    next.insert(id, member);
                }
            }
        }
        let limit = config.defaults.startup_timeout + Duration::from_secs(1);
        // Make before break: each replacement takes the old one's place only
        // once it is ready (a pool: one of its replicas); one that fails to
        // start is stopped, and the old one serves on. It gets what a start
        // can take: the era probe and then `initialize`, each bounded by the
        // start-up timeout.
        let overlap_limit = config.defaults.startup_timeout * 2 + Duration::from_secs(1);
        futures::future::join_all(
            overlapping
                .iter()
                .flat_map(|(_, m)| m.replicas().iter().map(|b| b.settled(overlap_limit))),
        )
        .await;
        for (id, member) in overlapping {
            match member.status() {
                Status::Ready => {
                    pools.extend(member.pool.clone());
                    next.insert(id, member);
                }
                status => {
                    let reason = match status {
                        Status::Failed(reason) => reason,
                        other => format!("not ready within {overlap_limit:?} ({other})"),
                    };
                    tracing::error!(server = %id, reason = %reason, "The changed server's replacement failed to start; the running one keeps serving on its previous config");
                    for backend in member.replicas() {
                        backend.stop_token().cancel();
                    }
                    if let Some(running) = next.get(&id) {
                        running.backend.set_replace_failed(Some(format!(
                            "the new config failed to start: {reason}"
                        )));
                    }
                    report.failed.push(id.clone());
                    report.kept_previous.push(id);
                }
            }
        }
        // Everything of the old set that the new one does not hold (each
        // replica), with what replaced it (if anything).
        let retired: Vec<(Arc<Backend>, Option<Arc<Backend>>)> = old
            .iter()
            .filter(|(id, member)| {
                !next
                    .get(*id)
                    .is_some_and(|m| Arc::ptr_eq(&m.backend, &member.backend))
            })
            .flat_map(|(id, member)| {
                let successor = next.get(id).map(|m| m.backend.clone());
                member
                    .replicas()
                    .iter()
                    .map(move |backend| (backend.clone(), successor.clone()))
            })
            .collect();
        if let Some(metrics) = &self.shared.metrics {
            metrics.add_servers(next.keys());
        }
        // The swap: from here on, new requests see only the new set.
        self.shared.backends.store(Arc::new(next));
        for backend in &started {
            self.supervise(backend);
        }
        for (replicas, pool) in &pools {
            pool.watch(replicas);
        }
        let shared = self.shared.clone();
        let large = shared.catalog_items() > LARGE_CATALOG;
        catalog_work(large, move || shared.rebuild()).await;
        report.applied_us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        for (backend, successor) in retired {
            if report.stopped.last() != Some(backend.id()) {
                report.stopped.push(backend.id().clone());
            }
            let gap = successor
                .as_ref()
                .filter(|s| gapped.iter().any(|(_, g)| Arc::ptr_eq(g, s)))
                .cloned();
            backend.retire(successor);
            let task = drain_and_stop(backend, gap.clone(), self.shared.clone());
            match gap {
                // Break before make: the replacement's supervisor runs once
                // the old one has stopped; it is a gateway task like any
                // supervisor, so shutdown waits for it.
                Some(_) => {
                    self.tasks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .spawn(task);
                }
                None => {
                    tokio::spawn(task);
                }
            }
        }
        // A break-before-make replacement first waits for the old one to
        // drain and stop.
        let gap_limit = limit + DRAIN + STOP_LIMIT;
        futures::future::join_all(
            started
                .iter()
                .map(|b| b.settled(limit))
                .chain(gapped.iter().map(|(_, b)| b.settled(gap_limit))),
        )
        .await;
        report.failed.extend(
            started
                .iter()
                .chain(gapped.iter().map(|(_, b)| b))
                .filter(|b| matches!(b.status(), Status::Failed(_)))
                .map(|b| b.id().clone()),
        );
        report.failed.dedup();
        report
    }

    /// Runs `backend`'s supervisor as a gateway task.
    fn supervise(&self, backend: &Arc<Backend>) {
        let hub: Arc<dyn Hub> = self.shared.clone();
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawn(backend.clone().supervise(hub, backend.stop_token()));
    }

    /// The config the gateway runs on: the one last applied by
    /// [`Gateway::start`] or [`Gateway::reload`].
    pub fn config(&self) -> Arc<Config> {
        self.shared.config.load_full()
    }

    /// Who may use the HTTP faces; `None` when `auth` configures no
    /// admission.
    pub fn admission(&self) -> arc_swap::Guard<Option<Arc<only1mcp_auth::Admission>>> {
        self.shared.admission.load()
    }

    /// The role policy in force, if any.
    pub fn policy(&self) -> Option<Arc<only1mcp_auth::Policy>> {
        self.shared.policy.load_full()
    }

    /// Whether the session must check calls against the policy itself (the
    /// call stack has no `rbac::Enforce` layer).
    pub(crate) fn checks_calls_itself(&self) -> bool {
        !self.shared.enforced
    }

    /// Items per page of the merged lists (0: whole lists).
    pub fn page_size(&self) -> usize {
        self.shared.page_size.load(Ordering::Relaxed)
    }

    /// The current merged catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.shared.catalog.load_full()
    }

    /// The calls held for modern clients' retries.
    pub(crate) fn holds(&self) -> &Arc<Holds> {
        &self.shared.holds
    }

    /// Every client profile's view of the current catalog (the tool listing
    /// each profile serves, and the tools it reaches).
    pub fn views(&self) -> Arc<Views> {
        self.shared.views.load_full()
    }

    /// A backend by server id: for a server with replicas, the first ready
    /// one (else the first).
    pub fn backend(&self, server: &str) -> Option<Arc<Backend>> {
        self.shared
            .backends
            .load()
            .get(server)
            .map(|member| member.lead().clone())
    }

    /// Each replica's state and what their lists disagree on, for a server
    /// with a pool of replicas.
    pub(crate) fn replicas(
        &self,
        server: &str,
    ) -> Option<(Vec<crate::stack::pool::ReplicaReport>, Vec<String>)> {
        let backends = self.shared.backends.load();
        let (replicas, pool) = backends.get(server)?.pool.as_ref()?;
        Some((pool.report(replicas), pool.differences()))
    }

    /// Every backend's status.
    pub fn report(&self) -> Vec<BackendReport> {
        self.shared
            .backends
            .load()
            .values()
            .map(|member| &member.backend)
            .map(|b| BackendReport {
                server: b.id().clone(),
                status: b.status(),
                protocol: b.established().map(|e| (e.era, e.protocol_version)),
            })
            .collect()
    }

    /// The merged capabilities of the connected backends.
    pub fn capabilities(&self) -> ServerCapabilities {
        let all: Vec<ServerCapabilities> = self
            .shared
            .backends
            .load()
            .values()
            .filter_map(|member| member.backend.established())
            .map(|e| {
                let mut caps = e.capabilities;
                // A modern backend's resources can be watched through
                // subscriptions/listen, which the gateway bridges.
                if e.era == mcp::Era::Modern
                    && let Some(resources) = &mut caps.resources
                {
                    resources.subscribe = true;
                }
                caps
            })
            .collect();
        let mut merged = ServerCapabilities::merge(&all);
        // The aggregate always serves tools/list, even if empty for now.
        merged
            .tools
            .get_or_insert(mcp::ListChanged { list_changed: true });
        merged
    }

    /// The backends' instructions, each labelled with its server.
    pub fn instructions(&self) -> Option<String> {
        let parts: Vec<String> = self
            .shared
            .backends
            .load()
            .values()
            .filter_map(|member| {
                let b = &member.backend;
                let text = b.established()?.instructions?;
                Some(format!("[{}] {}", b.id(), text.trim()))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// The call stack every call to a backend goes through
    /// ([`crate::stack`]).
    pub fn stack(&self) -> &CallStack {
        &self.shared.stack
    }

    /// The audit trail, when `audit:` turns it on: where the faces record
    /// authentication failures and the admin API its changes.
    pub fn auditor(&self) -> Option<&only1mcp_auth::audit::Auditor> {
        self.shared.auditor.as_ref()
    }

    /// Sends `routed`, routed to `backend`, through the call stack. With no
    /// layers anywhere the stack is the identity: the call goes straight to
    /// the backend's endpoint, in the caller's own future (no boxed future,
    /// no second lookup of the server), which is what the endpoint at the
    /// end of the stack would do. So it is when the only layer is the trace
    /// layer and the call is not part of a sampled request.
    pub(crate) async fn call(
        &self,
        backend: &Backend,
        routed: only1mcp_core::pipeline::Routed,
    ) -> Result<only1mcp_core::pipeline::Reply, only1mcp_core::Error> {
        let direct = self.shared.direct
            || (self.shared.direct_untraced
                && !only1mcp_observability::trace::in_sampled_request());
        if direct && !backend.pooled() {
            let Some(metrics) = self.shared.stack.metered_router() else {
                let (era, outcome) = backend.call(routed.call).await?;
                return Ok(only1mcp_core::pipeline::Reply { era, outcome });
            };
            // What the metrics layer over the router would do.
            let tracker = metrics.track(&routed);
            let res = backend
                .call(routed.call)
                .await
                .map(|(era, outcome)| only1mcp_core::pipeline::Reply { era, outcome });
            tracker.finish(&res);
            return res;
        }
        self.shared.stack.dispatch(routed).await
    }

    /// The Prometheus metrics, unless they are off.
    pub fn metrics(&self) -> Option<&only1mcp_observability::metrics::Metrics> {
        self.shared.metrics.as_ref()
    }

    /// Counts a reload applied (`ok`) or refused, and how long it took.
    pub(crate) fn record_reload(&self, ok: bool, took: Duration) {
        if let Some(metrics) = &self.shared.metrics {
            metrics.reload(ok, took);
        }
    }

    /// A client session began (`true`) or ended: each legacy, HTTP+SSE,
    /// WebSocket or stdio client's, and a modern request's own while it is
    /// answered.
    pub(crate) fn count_session(&self, open: bool) {
        if open {
            self.shared.sessions.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus page: the metrics and the gateway's state now;
    /// `None` when metrics are off.
    pub fn metrics_page(&self) -> Option<String> {
        use only1mcp_observability::metrics::{BackendState, GatewayState, ProfileTokens, Up};
        let metrics = self.shared.metrics.as_ref()?;
        let catalog = self.catalog();
        let state = GatewayState {
            backends: self
                .backends()
                .iter()
                .map(|b| BackendState {
                    server: b.id().clone(),
                    up: match b.availability() {
                        only1mcp_core::pipeline::Availability::Ready => Up::Ready,
                        only1mcp_core::pipeline::Availability::Starting => Up::Starting,
                        only1mcp_core::pipeline::Availability::Down => Up::Down,
                    },
                    in_flight: b.in_flight(),
                    restarts: b.stats().restarts,
                })
                .collect(),
            catalog: [
                ("tools", ListKind::Tools),
                ("prompts", ListKind::Prompts),
                ("resources", ListKind::Resources),
                ("resource_templates", ListKind::ResourceTemplates),
            ]
            .into_iter()
            .map(|(name, kind)| (name, catalog.entries(kind).len()))
            .collect(),
            sessions: self.shared.sessions.load(Ordering::Relaxed),
            profiles: self
                .views()
                .report()
                .into_iter()
                .map(|p| ProfileTokens {
                    profile: p.profile,
                    listed: p.tokens_listed,
                    full: p.tokens_full,
                    saved: p.tokens_saved,
                })
                .collect(),
        };
        Some(metrics.render(&state))
    }

    /// Every backend, in priority order (a snapshot).
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.shared
            .backends
            .load()
            .values()
            .map(|member| member.backend.clone())
            .collect()
    }

    /// Every backend, each replica of a server with replicas included (a
    /// snapshot).
    pub(crate) fn all_backends(&self) -> Vec<Arc<Backend>> {
        self.shared
            .backends
            .load()
            .values()
            .flat_map(|member| member.replicas().iter().cloned())
            .collect()
    }

    /// Catalog changes, one message per changed list kind.
    pub fn subscribe(&self) -> broadcast::Receiver<ListKind> {
        self.shared.changes.subscribe()
    }

    /// Subscribes `session` to `uri` (owned by `server`), subscribing
    /// upstream if it is the first subscriber. A legacy owner gets
    /// `resources/subscribe`; a modern one a `subscriptions/listen` stream.
    pub(crate) async fn subscribe_resource(
        &self,
        session: &Arc<dyn Subscriber>,
        server: &Arc<str>,
        uri: &str,
    ) -> Result<(), only1mcp_core::jsonrpc::ErrorObject> {
        let backend = self.unknown_server(server)?;
        if self.shared.subscriptions.add(uri, server, session) == Added::Joined {
            return Ok(());
        }
        let era = backend.era().unwrap_or(mcp::Era::Legacy);
        match era {
            mcp::Era::Legacy => {
                let params =
                    serde_json::value::to_raw_value(&serde_json::json!({ "uri": uri })).ok();
                let mut routed = resource_call(
                    &**session,
                    mcp::method::RESOURCES_SUBSCRIBE,
                    params,
                    server,
                    uri,
                );
                // Its updates come from the replica subscribed to.
                if backend.pooled() {
                    routed.affinity = Affinity::Replica(backend.replica());
                }
                let res = self.stack().dispatch(routed).await;
                match res.map(|reply| reply.outcome) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => {
                        self.shared.subscriptions.remove(uri, &**session);
                        Err(error)
                    }
                    Err(error) => {
                        self.shared.subscriptions.remove(uri, &**session);
                        Err(error.to_error_object())
                    }
                }
            }
            mcp::Era::Modern => {
                let task = backend.listen_resource(uri);
                self.shared.subscriptions.set_upstream(uri, task);
                Ok(())
            }
        }
    }

    /// Unsubscribes `session` from `uri`; the last one out ends the upstream
    /// subscription.
    pub(crate) async fn unsubscribe_resource(&self, session: &dyn Subscriber, uri: &str) {
        if let Some(routed) = self.leave_resource(session, uri) {
            let _ = self.stack().dispatch(routed).await;
        }
    }

    /// Takes `session` off `uri`'s subscribers. If it was the last, the
    /// upstream subscription ends: a modern owner's listen stream at once,
    /// a legacy owner's with the returned `resources/unsubscribe` call.
    fn leave_resource(
        &self,
        session: &dyn Subscriber,
        uri: &str,
    ) -> Option<only1mcp_core::pipeline::Routed> {
        let server = self.shared.subscriptions.remove(uri, session)?;
        let backend = self.backend(&server)?;
        if backend.era() != Some(mcp::Era::Legacy) {
            return None;
        }
        let params = serde_json::value::to_raw_value(&serde_json::json!({ "uri": uri })).ok();
        let mut routed = resource_call(
            session,
            mcp::method::RESOURCES_UNSUBSCRIBE,
            params,
            &server,
            uri,
        );
        if backend.pooled() {
            routed.affinity = Affinity::Replica(backend.replica());
        }
        Some(routed)
    }

    /// Releases the subscriptions of `session`, which is ending, to `uris`:
    /// each one no other live session wants is ended upstream (in a task
    /// of its own, as this runs where the session is dropped).
    pub(crate) fn release_resources(&self, session: &dyn Subscriber, uris: &[String]) {
        let calls: Vec<_> = uris
            .iter()
            .filter_map(|uri| self.leave_resource(session, uri))
            .collect();
        tracing::debug!(
            subscriptions = uris.len(),
            upstream = calls.len(),
            "Session ended; its resource subscriptions are released"
        );
        if calls.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let gateway = self.clone();
        runtime.spawn(async move {
            for routed in calls {
                let _ = gateway.stack().dispatch(routed).await;
            }
        });
    }

    fn unknown_server(
        &self,
        server: &str,
    ) -> Result<Arc<Backend>, only1mcp_core::jsonrpc::ErrorObject> {
        self.backend(server).ok_or_else(|| {
            only1mcp_core::Error::UpstreamUnavailable {
                server: server.to_owned(),
                reason: "not configured".to_owned(),
            }
            .to_error_object()
        })
    }

    /// Registers `outbound` as the receiver of `server`'s log messages while
    /// the returned guard lives.
    pub fn register_log(&self, server: &Arc<str>, outbound: Outbound) -> LogGuard {
        let id = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        self.shared
            .log_routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(server.clone())
            .or_default()
            .push((id, outbound));
        LogGuard {
            shared: self.shared.clone(),
            server: server.clone(),
            id,
        }
    }

    /// Registers a progress route: the backend will see a gateway-unique
    /// token, and its progress goes to `outbound` with `original` put back.
    pub fn register_progress(&self, outbound: Outbound, original: Box<RawValue>) -> ProgressGuard {
        let token = format!(
            "only1mcp-{}",
            self.shared.next_token.fetch_add(1, Ordering::Relaxed)
        );
        self.shared
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), ProgressRoute { outbound, original });
        ProgressGuard {
            shared: self.shared.clone(),
            token,
        }
    }

    /// Stops every backend (closing stdin, then killing after a grace
    /// period) and waits for their supervisors to finish.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while tasks.join_next().await.is_some() {}
        if let Some(auditor) = self.shared.auditor.clone() {
            // Writes the `stop` line and syncs: a blocking wait, off the
            // runtime's threads.
            let _ = tokio::task::spawn_blocking(move || auditor.close()).await;
        }
    }
}

/// How often [`timer_floor`] ticks.
const TIMER_FLOOR: Duration = Duration::from_secs(1);

/// Keeps a timer at most [`TIMER_FLOOR`] away until `shutdown`.
///
/// Every request arms a timeout. When that timeout is the runtime's earliest
/// timer, tokio wakes the thread waiting in epoll to shorten its wait: one
/// `eventfd` write and one extra `epoll_wait` per request (strace, one
/// request at a time). With this tick always earlier than any request's
/// deadline of a second or more, arming one changes nothing. Its own cost is
/// one wake-up a second.
async fn timer_floor(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TIMER_FLOOR);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
    }
}

/// Tests server `id` as `config` would run it, on a fresh connection of its
/// own (a new process for a stdio server): open the session and list its
/// tools, each step timed. Needs no running gateway.
pub async fn test_server(
    id: &str,
    server: &ServerConfig,
    config: &Config,
) -> Result<crate::backend::Probe, crate::backend::ProbeFailure> {
    let id: Arc<str> = id.into();
    let settings = settings_for(&id, server, config);
    let identity = ClientIdentity::new(&implementation(), &serde_json::json!({}));
    crate::backend::probe(&settings, &identity).await
}

/// Replaces the progress token in request params (`_meta.progressToken`).
pub fn with_progress_token(
    params: Option<&RawValue>,
    token: &str,
) -> Result<Option<Box<RawValue>>, only1mcp_core::jsonrpc::ErrorObject> {
    mcp::edit_meta(params, |meta| {
        meta.set_string(mcp::meta::PROGRESS_TOKEN, token)
    })
}

/// How often the metrics' per-server windows take a sample (a minute's
/// worth are kept).
const METRICS_TICK: Duration = Duration::from_secs(5);

/// Samples the metrics' windows until `shutdown`.
async fn metrics_ticks(
    metrics: only1mcp_observability::metrics::Metrics,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(METRICS_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => metrics.tick(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn rebuilds_asked_during_a_rebuild_are_done_once_after_it() {
        let rebuilds = Arc::new(Rebuilds::default());
        let (started, wait_started) = mpsc::channel();
        let (go, wait_go) = mpsc::channel::<()>();
        let first = rebuilds.change();
        let running = std::thread::spawn({
            let rebuilds = rebuilds.clone();
            move || {
                rebuilds.include(first, || {
                    started.send(()).unwrap();
                    wait_go.recv().unwrap();
                })
            }
        });
        wait_started.recv().unwrap();
        // Two changes while the first rebuild runs: it read the lists
        // before them, so one more rebuild must follow, and one suffices.
        let builds = Arc::new(AtomicUsize::new(0));
        let queued = Arc::new(Barrier::new(3));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let wanted = rebuilds.change();
                let (rebuilds, builds, queued) = (rebuilds.clone(), builds.clone(), queued.clone());
                std::thread::spawn(move || {
                    queued.wait();
                    rebuilds.include(wanted, || {
                        builds.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        queued.wait();
        go.send(()).unwrap();
        assert!(running.join().unwrap());
        let ran: Vec<bool> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(builds.load(Ordering::SeqCst), 1, "ran: {ran:?}");
        assert_eq!(ran.iter().filter(|r| **r).count(), 1);
    }

    #[test]
    fn a_change_after_a_finished_rebuild_gets_its_own() {
        let rebuilds = Rebuilds::default();
        let first = rebuilds.change();
        assert!(rebuilds.include(first, || {}));
        assert!(!rebuilds.include(first, || panic!("already included")));
        let second = rebuilds.change();
        let mut ran = false;
        assert!(rebuilds.include(second, || ran = true));
        assert!(ran);
    }
}
