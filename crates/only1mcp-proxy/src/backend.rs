//! One backend server: what it is (its launch and settings), where it
//! stands, and the state its supervisor shares with its callers.
//!
//! The work is split by job:
//! - `supervise`: the supervisor task. It spawns the process (or connects),
//!   opens the session in the backend's era, fetches its lists, reads what
//!   the backend sends unasked until the connection closes, and restarts it
//!   after an exponential backoff. A crash fails the requests in flight (the
//!   client gets an error).
//! - `lists`: reading a backend's lists page by page, and storing them.
//! - `catalog`: the catalog thread, where large catalog work runs off the
//!   runtime thread.
//! - `call`: the call path: waiting for readiness, the timeout, in-flight
//!   counting and draining, params fitted to the backend's era.
//! - `relay`: the backend's requests to clients (ADR 0006); `probe`: testing
//!   a server on a fresh connection; `stats`: per-backend counters.
//!
//! Callers see the state through [`Backend::status`] and wait for readiness
//! in [`Backend::call`].

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use only1mcp_core::catalog::{Lists, Prefix, ToolFilter};
use only1mcp_core::mcp::{Era, Implementation};
use only1mcp_transport::handshake::{ClientIdentity, Established};
use only1mcp_transport::network::{AnyConnection, NetworkSpec};
use only1mcp_transport::stdio;

use self::relay::Relay;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod call;
mod catalog;
mod lists;
mod probe;
pub(crate) mod relay;
mod stats;
mod supervise;

pub(crate) use catalog::{LARGE_CATALOG, catalog_work};
pub(crate) use probe::probe;
pub use probe::{Probe, ProbeFailure};
pub use stats::{BackendStats, LastError};
pub(crate) use supervise::Hub;

/// Where a backend stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Its first start is under way.
    Starting,
    /// Serving.
    Ready,
    /// It exited; a new start is under way or scheduled.
    Restarting,
    /// The last start failed (the reason); another is scheduled.
    Failed(String),
    /// Shut down.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Starting => f.write_str("starting"),
            Self::Ready => f.write_str("ready"),
            Self::Restarting => f.write_str("restarting"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
            Self::Stopped => f.write_str("stopped"),
        }
    }
}

/// How a backend is reached.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A child process speaking stdio.
    Stdio(stdio::Spec),
    /// A server over the network. Header values are expanded (`${VAR}`) at
    /// each connect.
    Network(NetworkSpec),
}

impl Launch {
    /// The server id.
    pub fn server(&self) -> &Arc<str> {
        match self {
            Self::Stdio(spec) => &spec.server,
            Self::Network(spec) => &spec.server,
        }
    }

    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Self::Stdio(_) => "stdio",
            Self::Network(spec) => match spec.transport {
                only1mcp_core::config::UrlTransport::StreamableHttp => "streamable-http",
                only1mcp_core::config::UrlTransport::Sse => "sse",
                only1mcp_core::config::UrlTransport::Websocket => "websocket",
            },
        }
    }
}

/// Settings of one backend, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How to reach it.
    pub launch: Launch,
    /// Time it has per request.
    pub request_timeout: Duration,
    /// Time it has to start and finish the handshake.
    pub startup_timeout: Duration,
    /// The longest line it puts in the log (a stderr line, a log message);
    /// longer ones are cut.
    pub max_log_line: usize,
    /// How its names are exposed.
    pub prefix: Prefix,
    /// Which tools are exposed.
    pub filter: ToolFilter,
}

/// A live session with the backend.
#[derive(Debug)]
struct Live {
    connection: AnyConnection,
    established: Established,
    /// The process id, for a command.
    pid: Option<u32>,
}

/// One backend and its supervisor's shared state.
#[derive(Debug)]
pub struct Backend {
    id: Arc<str>,
    settings: Settings,
    /// The config it was built from: a reload keeps a backend whose config
    /// did not change.
    source: only1mcp_core::config::ServerConfig,
    live: ArcSwapOption<Live>,
    lists: ArcSwap<Lists>,
    status: watch::Sender<Status>,
    identity: ClientIdentity,
    /// Where its requests to clients (sampling, elicitation, roots) go.
    relay: Arc<Relay>,
    /// Stops this backend's supervisor (a child of the gateway's token).
    stop: CancellationToken,
    /// Calls in flight, for draining before a stop.
    in_flight: std::sync::atomic::AtomicUsize,
    drained: tokio::sync::Notify,
    /// Requests, errors, latencies, uptime (for the admin API).
    stats: stats::Stats,
    /// Set when a reload took it out of the backend set: a call that reaches
    /// it after that (it looked the backend up just before the swap) goes to
    /// `successor`, if it has one. Checked after the call is counted in
    /// flight, so the drain either waits for the call or the call moves on.
    retired: std::sync::atomic::AtomicBool,
    /// The backend that replaced it, if one did.
    successor: ArcSwapOption<Self>,
    /// Why the last change to its config was not applied: the replacement
    /// failed to start, so this backend serves on (ADR 0014).
    replace_failed: ArcSwapOption<String>,
    /// Which replica of its server it is (0 for a server of one).
    replica: u32,
    /// Whether its server's calls go through a pool of replicas
    /// (`crate::replicas`), never straight to it.
    pooled: bool,
}

impl Backend {
    pub(crate) fn new(
        settings: Settings,
        source: only1mcp_core::config::ServerConfig,
        identity: &Implementation,
        stop: CancellationToken,
        replica: u32,
        first: Option<&Self>,
    ) -> Arc<Self> {
        let pooled = source.is_replicated();
        let id = settings.launch.server().clone();
        // The replicas of a server share who their requests go to.
        let relay = match first {
            Some(first) => first.relay.sibling(),
            None => Relay::new(
                id.clone(),
                source.client_requests,
                source.roots.as_deref(),
                settings.request_timeout,
            ),
        };
        // A relaying backend is offered sampling, elicitation and roots in
        // its handshake (legacy backends act on these; modern ones get each
        // client's own capabilities per request).
        let capabilities = if relay.relays() {
            relay::relayed_capabilities()
        } else {
            serde_json::json!({})
        };
        Arc::new(Self {
            identity: ClientIdentity::new(identity, &capabilities),
            relay,
            id,
            settings,
            source,
            live: ArcSwapOption::empty(),
            lists: ArcSwap::from_pointee(Lists::default()),
            status: watch::Sender::new(Status::Starting),
            stop,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            drained: tokio::sync::Notify::new(),
            stats: stats::Stats::default(),
            retired: std::sync::atomic::AtomicBool::new(false),
            successor: ArcSwapOption::empty(),
            replace_failed: ArcSwapOption::empty(),
            replica,
            pooled,
        })
    }

    /// Takes it out of service after a reload swapped it out: calls that
    /// still reach it go to `successor` (if any) from now on.
    pub(crate) fn retire(&self, successor: Option<Arc<Self>>) {
        self.successor.store(successor);
        self.retired
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The backend that replaced it, once it is retired.
    pub(crate) fn successor(&self) -> Option<Arc<Self>> {
        if self.retired.load(std::sync::atomic::Ordering::SeqCst) {
            self.successor.load_full()
        } else {
            None
        }
    }

    /// Why the last change to its config was not applied (its replacement
    /// failed to start), if it was not.
    pub fn replace_failed(&self) -> Option<Arc<String>> {
        self.replace_failed.load_full()
    }

    /// Records that a replacement failed to start (`None`: the config it
    /// runs on is the current one again).
    pub(crate) fn set_replace_failed(&self, reason: Option<String>) {
        self.replace_failed.store(reason.map(Arc::new));
    }

    /// Starts with `lists` as its lists, so the catalog keeps the tools of
    /// the backend it replaces while it starts (break-before-make).
    pub(crate) fn seed_lists(&self, lists: Arc<Lists>) {
        self.lists.store(lists);
    }

    /// Which replica of its server it is (0 for a server of one).
    pub fn replica(&self) -> u32 {
        self.replica
    }

    /// Whether its server's calls go through a pool of replicas.
    pub(crate) fn pooled(&self) -> bool {
        self.pooled
    }

    /// The process id of its command, while connected.
    pub fn pid(&self) -> Option<u32> {
        self.live.load().as_ref().and_then(|l| l.pid)
    }

    /// Whether it can take calls now (for balancers and health checks).
    pub fn availability(&self) -> only1mcp_core::pipeline::Availability {
        use only1mcp_core::pipeline::Availability;
        match &*self.status.borrow() {
            Status::Ready => Availability::Ready,
            Status::Starting | Status::Restarting => Availability::Starting,
            Status::Failed(_) | Status::Stopped => Availability::Down,
        }
    }

    /// Where its requests to clients go (ADR 0006).
    pub(crate) fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// Its counters: requests, errors, median latency, uptime, last error.
    pub fn stats(&self) -> BackendStats {
        self.stats.snapshot(self.in_flight())
    }

    /// The config it was built from.
    pub fn source(&self) -> &only1mcp_core::config::ServerConfig {
        &self.source
    }

    /// Whether this backend was built from exactly these settings.
    pub(crate) fn same_source(
        &self,
        source: &only1mcp_core::config::ServerConfig,
        settings: &Settings,
    ) -> bool {
        // The swap mode says how the next replacement goes; changing only it
        // replaces nothing.
        let unswapped =
            |s: &only1mcp_core::config::ServerConfig| only1mcp_core::config::ServerConfig {
                swap: only1mcp_core::config::SwapMode::default(),
                ..s.clone()
            };
        let same = if self.source.swap == source.swap {
            self.source == *source
        } else {
            unswapped(&self.source) == unswapped(source)
        };
        same && self.settings.request_timeout == settings.request_timeout
            && self.settings.startup_timeout == settings.startup_timeout
            && self.settings.max_log_line == settings.max_log_line
            && self.settings.prefix == settings.prefix
    }

    /// The token that stops this backend's supervisor.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The server id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// Its settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where it stands now.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Its last fetched lists (kept while it restarts).
    pub fn lists(&self) -> Arc<Lists> {
        self.lists.load_full()
    }

    /// The era and capabilities of the current session, if one is open.
    pub fn established(&self) -> Option<Established> {
        self.live.load().as_ref().map(|l| l.established.clone())
    }

    /// The era of the current session, if one is open (without copying the
    /// rest of [`Backend::established`]; every forwarded call asks).
    pub fn era(&self) -> Option<Era> {
        self.live.load().as_ref().map(|l| l.established.era)
    }

    /// Marks a backend whose supervisor never ran as stopped (the gateway
    /// shut down first), so nothing waits for it to start.
    pub(crate) fn mark_stopped(&self) {
        self.status.send_replace(Status::Stopped);
    }

    /// Waits until its supervisor has stopped (its process is gone).
    pub(crate) async fn stopped(&self) {
        let mut rx = self.status.subscribe();
        let _ = rx.wait_for(|s| *s == Status::Stopped).await;
    }

    /// Waits until the backend has finished its current start attempt
    /// (ready or failed), at most `limit`.
    pub async fn settled(&self, limit: Duration) {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(
            limit,
            rx.wait_for(|s| !matches!(s, Status::Starting | Status::Restarting)),
        )
        .await;
    }
}
