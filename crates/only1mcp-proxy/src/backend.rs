//! One backend server: its process, its session, its lists, and the
//! supervisor that restarts it.
//!
//! The supervisor task spawns the process, opens the session in the
//! backend's era, fetches its lists, and then reads what the backend sends
//! unasked until the connection closes. A crash fails the requests in flight
//! (the client gets an error), and the supervisor starts the backend again
//! after an exponential backoff. Callers see the state through
//! [`Backend::status`] and wait for readiness in [`Backend::call`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use futures::StreamExt;
use only1mcp_core::Error;
use only1mcp_core::catalog::{CacheHint, Lists, Prefix, ToolFilter};
use only1mcp_core::jsonrpc::{ErrorObject, Notification, Outcome};
use only1mcp_core::mcp::{self, Era, Implementation, ListKind, ListPage, method};
use only1mcp_core::upstream::{Call, UpstreamEvent};
use only1mcp_transport::handshake::{self, ClientIdentity, Established};
use only1mcp_transport::network::{self, AnyConnection, NetworkSpec};
use only1mcp_transport::stdio;

use self::relay::Relay;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::Service;

mod probe;
pub(crate) mod relay;
mod stats;

pub(crate) use probe::probe;
pub use probe::{Probe, ProbeFailure};
pub use stats::{BackendStats, LastError};

/// The first restart delay; it doubles after each quick crash.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// The longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// How long a stopping backend gets to exit after its stdin closes, and
/// again after `SIGTERM`, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The most pages read from one list (guards against a cursor loop).
const MAX_PAGES: usize = 1000;

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

/// What the supervisor tells the gateway.
pub(crate) trait Hub: Send + Sync + 'static {
    /// A backend's lists (or readiness) changed: rebuild the catalog. Takes
    /// milliseconds for a catalog of thousands of tools, so the supervisor
    /// calls it through [`catalog_work`], off the runtime thread when large.
    fn lists_changed(&self, server: &str);
    /// How many items a rebuild reads: every backend's lists together.
    fn catalog_items(&self) -> usize;
    /// Routes a `notifications/message` to the one request that asked for
    /// log messages, if exactly one such request is in flight on `server`.
    /// Returns whether it was consumed.
    fn log_message(&self, server: &str, notification: &Notification) -> bool;
    /// A backend announced that a resource changed.
    fn resource_updated(&self, server: &str, notification: &Notification);
    /// Routes a progress notification with a gateway token to its request,
    /// synchronously, in wire order. Returns whether it was consumed.
    fn progress(&self, server: &str, notification: &Notification) -> bool;
}

/// Catalog work on more items than this (a rebuild, copying or freeing
/// lists) goes to the catalog thread. Less takes under about 0.3 ms (a
/// rebuild costs about 1.2 µs a tool, divan `catalog_build_50x100`) and
/// runs in place: a gateway with a small catalog starts no extra thread,
/// whose own heap would cost it about 2 MiB.
pub(crate) const LARGE_CATALOG: usize = 256;

/// A list result longer than this is read on the catalog thread (about
/// 0.3 ms of parsing).
const LARGE_LIST_BYTES: usize = 256 << 10;

/// Runs catalog work and returns its result: on the catalog thread if it
/// is `large`, else in place. With one runtime thread (ADR 0008), large
/// work done there would hold every other request for milliseconds.
pub(crate) async fn catalog_work<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    if large {
        on_catalog_thread(work).await
    } else {
        work()
    }
}

/// Runs `work` on the catalog thread and waits for its result: the catalog
/// work that takes milliseconds for thousands of tools (reading a list's
/// items, rebuilding). A panic there is a panic here, as if it ran inline.
async fn on_catalog_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    if let Err(job) = to_catalog_thread(job) {
        tracing::warn!("No catalog thread; doing catalog work on the runtime thread");
        job();
    }
    finished.await.expect("catalog work panicked")
}

/// Runs `work` on the catalog thread without waiting for it (here, if
/// there is no catalog thread).
fn on_catalog_thread_later(work: impl FnOnce() + Send + 'static) {
    if let Err(job) = to_catalog_thread(Box::new(work)) {
        job();
    }
}

/// Hands `job` to the catalog thread, or back if there is none.
fn to_catalog_thread(job: Job) -> Result<(), Job> {
    match catalog_thread() {
        Some(thread) => thread.send(job).map_err(|unsent| unsent.0),
        None => Err(job),
    }
}

/// Work for the catalog thread.
type Job = Box<dyn FnOnce() + Send>;

/// The thread catalog work runs on, one job after another (rebuilds are
/// serialized anyway), started on first use and named `catalog`: not
/// tokio's blocking pool, whose threads look like runtime workers. `None`
/// if it cannot be started.
fn catalog_thread() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static THREAD: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (jobs, queue) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("catalog".to_owned())
                // A job that panics is reported to its caller (its answer
                // never comes); the thread goes on with the next.
                .spawn(move || {
                    for job in queue {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .ok()
                .map(|_| jobs)
        })
        .as_ref()
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
}

/// Counts one call in flight while it lives.
struct InFlight<'a>(&'a Backend);

impl<'a> InFlight<'a> {
    fn new(backend: &'a Backend) -> Self {
        backend
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(backend)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.drained.notify_waiters();
        }
    }
}

impl Backend {
    pub(crate) fn new(
        settings: Settings,
        source: only1mcp_core::config::ServerConfig,
        identity: &Implementation,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let id = settings.launch.server().clone();
        let relay = Relay::new(
            id.clone(),
            source.client_requests,
            source.roots.as_deref(),
            settings.request_timeout,
        );
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
        })
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
        self.source == *source
            && self.settings.request_timeout == settings.request_timeout
            && self.settings.startup_timeout == settings.startup_timeout
            && self.settings.max_log_line == settings.max_log_line
            && self.settings.prefix == settings.prefix
    }

    /// The token that stops this backend's supervisor.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Calls in flight right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no call is in flight, at most `limit`; returns whether it
    /// drained.
    pub async fn drain(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
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

    /// Sends one request, waiting for readiness if the backend is (re)starting,
    /// all within the request timeout. Dropping the future or running out of
    /// time cancels the request on the backend.
    pub async fn call(&self, call: Call) -> Result<(Era, Outcome), Error> {
        let _in_flight = InFlight::new(self);
        self.stats.started();
        let begun = Instant::now();
        let timeout = self.settings.request_timeout;
        let work = async {
            let mut rx = self.status.subscribe();
            let live = loop {
                let status = rx
                    .wait_for(|s| !matches!(s, Status::Starting | Status::Restarting))
                    .await
                    .map(|s| s.clone())
                    .unwrap_or(Status::Stopped);
                match status {
                    Status::Ready => {
                        if let Some(live) = self.live.load_full() {
                            break live;
                        }
                        // The connection just closed and the supervisor has
                        // not yet said so: wait for it to (restart or fail).
                        if rx.changed().await.is_err() {
                            return Err(self.unavailable("stopped".to_owned()));
                        }
                    }
                    Status::Failed(reason) => return Err(self.unavailable(reason)),
                    Status::Stopped => return Err(self.unavailable("stopped".to_owned())),
                    Status::Starting | Status::Restarting => {}
                }
            };
            let era = live.established.era;
            let mut connection = live.connection.clone();
            drop(live);
            connection.call(call).await.map(|outcome| (era, outcome))
        };
        let res = match tokio::time::timeout(timeout, work).await {
            Ok(res) => res,
            Err(_) => Err(Error::UpstreamTimedOut {
                server: self.id.to_string(),
                after: timeout,
            }),
        };
        self.stats.finished(&res, begun.elapsed());
        res
    }

    fn unavailable(&self, reason: String) -> Error {
        Error::UpstreamUnavailable {
            server: self.id.to_string(),
            reason,
        }
    }

    /// Params as this backend's era expects them.
    pub fn adapt_params(
        &self,
        era: Era,
        params: Option<&RawValue>,
    ) -> Result<Option<Box<RawValue>>, ErrorObject> {
        match era {
            Era::Legacy => mcp::legacy_params(params),
            // A modern backend asks for input per request, from the
            // capabilities the request carries: none here.
            Era::Modern => mcp::modern_params(params, &empty_capabilities(), &self.identity.info),
        }
    }

    /// Params for this (modern) backend declaring `capabilities` as the
    /// client's: a legacy client's own, whose input requests the gateway
    /// bridges.
    pub fn adapt_params_with(
        &self,
        capabilities: &RawValue,
        params: Option<&RawValue>,
    ) -> Result<Option<Box<RawValue>>, ErrorObject> {
        mcp::modern_params(params, capabilities, &self.identity.info)
    }

    /// Stores this backend's lists. Large ones they replace are freed on the
    /// catalog thread: thousands of items take milliseconds to free too.
    fn replace_lists(&self, lists: Lists) {
        let previous = self.lists.swap(Arc::new(lists));
        if previous.items() > LARGE_CATALOG {
            on_catalog_thread_later(move || drop(previous));
        }
    }

    /// Tells `hub` that this backend's lists changed, and waits until the
    /// catalog includes them.
    async fn lists_changed(&self, hub: &Arc<dyn Hub>) {
        let (hub, server) = (hub.clone(), self.id.clone());
        let large = hub.catalog_items() > LARGE_CATALOG;
        catalog_work(large, move || hub.lists_changed(&server)).await;
    }

    /// The supervisor: start, serve, restart, until `shutdown`.
    pub(crate) async fn supervise(self: Arc<Self>, hub: Arc<dyn Hub>, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_START;
        loop {
            let started = Instant::now();
            // Not raced against `shutdown`: `run_once` watches it at every
            // wait and stops its process gracefully, which dropping it would
            // cut short (a dropped process is killed at once).
            let outcome = self.run_once(&hub, &shutdown).await;
            self.stats.set_ready(false);
            match outcome {
                RunEnd::Shutdown => break,
                RunEnd::Failed(reason) => {
                    tracing::warn!(server = %self.id, reason = %reason, retry_in_ms = backoff.as_millis(), "Backend failed to start");
                    self.stats.failed(format!("start failed: {reason}"));
                    self.status.send_replace(Status::Failed(reason));
                    // Its tools leave the catalog until it is back.
                    self.live.store(None);
                    self.replace_lists(Lists::default());
                    self.lists_changed(&hub).await;
                }
                RunEnd::Exited => {
                    tracing::warn!(server = %self.id, retry_in_ms = backoff.as_millis(), "Backend exited; restarting");
                    self.stats.failed("exited; restarting".to_owned());
                    self.status.send_replace(Status::Restarting);
                }
            }
            if started.elapsed() >= STABLE_RUN {
                backoff = BACKOFF_START;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        self.live.store(None);
        self.stats.set_ready(false);
        self.status.send_replace(Status::Stopped);
    }

    async fn run_once(&self, hub: &Arc<dyn Hub>, shutdown: &CancellationToken) -> RunEnd {
        let (mut connection, mut events, mut child) = match &self.settings.launch {
            Launch::Stdio(spec) => {
                let mut child = match stdio::spawn(spec) {
                    Ok(child) => child,
                    Err(e) => return RunEnd::Failed(e.to_string()),
                };
                let (connection, events) = stdio::Connection::start(&self.id, &mut child);
                (AnyConnection::from(connection), events, Some(child))
            }
            Launch::Network(spec) => {
                let spec = match expand_headers(spec) {
                    Ok(spec) => spec,
                    Err(e) => return RunEnd::Failed(e),
                };
                let connected = tokio::select! {
                    () = shutdown.cancelled() => return RunEnd::Shutdown,
                    connected = network::connect(&spec) => connected,
                };
                match connected {
                    Ok((connection, events)) => (connection, events, None),
                    Err(e) => return RunEnd::Failed(e.to_string()),
                }
            }
        };
        // Progress is routed in the reader, in wire order, so it always
        // reaches the client before the result of its request.
        let progress_hub = hub.clone();
        let server = self.id.clone();
        connection.set_notification_hook(Arc::new(move |note: &Notification| {
            progress_hub.progress(&server, note) || progress_hub.log_message(&server, note)
        }));
        let startup = async {
            let established = handshake::establish(
                &self.id,
                &mut connection,
                &self.identity,
                // The probe gets the whole start-up time: a slow starter
                // (a Python server on a busy machine) must not be mistaken
                // for a legacy one.
                self.settings.startup_timeout,
                self.settings.startup_timeout,
            )
            .await?;
            let lists = fetch_lists(&self.id, &mut connection, &established, &self.identity).await;
            Ok::<_, Error>((established, lists))
        };
        let (established, lists) = tokio::select! {
            res = startup => match res {
                Ok(ok) => ok,
                Err(e) => {
                    stop(child).await;
                    return RunEnd::Failed(e.to_string());
                }
            },
            // The process died during the handshake.
            status = exited(&mut child) => {
                stop(child).await;
                return RunEnd::Failed(format!("exited during start-up ({status})"));
            }
            () = shutdown.cancelled() => {
                stop(child).await;
                return RunEnd::Shutdown;
            }
        };
        tracing::info!(
            server = %self.id,
            era = ?established.era,
            protocol_version = %established.protocol_version,
            tools = lists.tools.len(),
            prompts = lists.prompts.len(),
            resources = lists.resources.len(),
            "Backend ready"
        );
        self.lists.store(Arc::new(lists));
        self.live.store(Some(Arc::new(Live {
            connection: connection.clone(),
            established: established.clone(),
        })));
        // The catalog includes this backend before anyone waiting for
        // readiness goes on.
        self.lists_changed(hub).await;
        self.stats.set_ready(true);
        self.status.send_replace(Status::Ready);
        // A modern backend announces list changes only on a
        // `subscriptions/listen` stream; keep one open for this session. It
        // is dropped (and so cancelled upstream) when the session ends.
        let _listen = (established.era == Era::Modern)
            .then(|| self.listen(&connection, &established))
            .map(AbortOnDrop);

        let ended = loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => {
                    self.live.store(None);
                    stop(child).await;
                    return RunEnd::Shutdown;
                }
                // A process that exited while something it started holds
                // its stdout open: the connection would never close.
                status = exited(&mut child) => break format!("the process exited ({status})"),
                event = events.next() => event,
            };
            match event {
                None | Some(UpstreamEvent::Closed) => {
                    break if child.is_some() {
                        "its stdout closed".to_owned()
                    } else {
                        "the network connection closed".to_owned()
                    };
                }
                Some(UpstreamEvent::Notification(note)) => {
                    self.on_notification(hub, &mut connection, &established, note)
                        .await;
                }
                Some(UpstreamEvent::Request(req)) => self.relay.handle(connection.clone(), req),
            }
        };
        // No new call goes to this connection; those in flight have failed
        // (stdout closed) or fail when the process is stopped.
        self.live.store(None);
        self.status.send_replace(Status::Restarting);
        tracing::warn!(server = %self.id, reason = %ended, "Backend connection closed");
        // A process that closed its stdout may run on: stop it like any
        // other (stdin, SIGTERM, SIGKILL), so it is restarted, not waited on.
        stop(child).await;
        RunEnd::Exited
    }

    /// Opens a `subscriptions/listen` stream on this (modern) backend for one
    /// resource; its `notifications/resources/updated` arrive as events. The
    /// stream ends when the returned task is aborted.
    pub(crate) fn listen_resource(&self, uri: &str) -> tokio::task::JoinHandle<()> {
        let filter = serde_json::json!({ "notifications": { "resourceSubscriptions": [uri] } });
        let params = serde_json::value::to_raw_value(&filter)
            .ok()
            .and_then(|p| self.adapt_params(Era::Modern, Some(&p)).ok().flatten());
        let live = self.live.load_full();
        let server = self.id.clone();
        tokio::spawn(async move {
            let Some(live) = live else { return };
            let mut connection = live.connection.clone();
            drop(live);
            let res = connection
                .call(Call::new("subscriptions/listen", params))
                .await;
            tracing::debug!(server = %server, ended = ?res.map(|o| o.is_ok()), "Resource subscription stream ended");
        })
    }

    /// Opens the backend's `subscriptions/listen` stream for the list kinds it
    /// offers. Its notifications arrive as events like any other.
    fn listen(
        &self,
        connection: &AnyConnection,
        established: &Established,
    ) -> tokio::task::JoinHandle<()> {
        let caps = &established.capabilities;
        let filter = serde_json::json!({
            "notifications": {
                "toolsListChanged": caps.tools.is_some(),
                "promptsListChanged": caps.prompts.is_some(),
                "resourcesListChanged": caps.resources.is_some(),
            }
        });
        let params = serde_json::value::to_raw_value(&filter)
            .ok()
            .and_then(|p| self.adapt_params(Era::Modern, Some(&p)).ok().flatten());
        let mut connection = connection.clone();
        let server = self.id.clone();
        tokio::spawn(async move {
            let res = connection
                .call(Call::new("subscriptions/listen", params))
                .await;
            tracing::debug!(server = %server, result = ?res.map(|o| o.is_ok()), "Backend subscription stream ended");
        })
    }

    async fn on_notification(
        &self,
        hub: &Arc<dyn Hub>,
        connection: &mut AnyConnection,
        established: &Established,
        note: Notification,
    ) {
        let changed = ListKind::ALL
            .into_iter()
            .filter(|k| k.list_changed() == note.method)
            .collect::<Vec<_>>();
        if !changed.is_empty() {
            let mut fetched = Vec::new();
            for kind in changed {
                match fetch_list(kind, &self.id, connection, established, &self.identity).await {
                    Ok(list) => fetched.push((kind, list)),
                    Err(e) => {
                        tracing::warn!(server = %self.id, list = kind.method(), error = %e, "Refreshing a list failed");
                    }
                }
            }
            if fetched.is_empty() {
                return;
            }
            // The lists that did not change are copied, large ones on the
            // catalog thread: thousands of items take milliseconds.
            let old = self.lists.load_full();
            let large = old.items()
                + fetched
                    .iter()
                    .map(|(_, (items, _))| items.len())
                    .sum::<usize>()
                > LARGE_CATALOG;
            let lists = catalog_work(large, move || {
                let mut lists = Lists {
                    hints: old.hints.clone(),
                    ..Lists::default()
                };
                for kind in ListKind::ALL {
                    if !fetched.iter().any(|(k, _)| *k == kind) {
                        *lists.get_mut(kind) = old.get(kind).to_vec();
                    }
                }
                for (kind, (items, hint)) in fetched {
                    *lists.get_mut(kind) = items;
                    set_hint(&mut lists, kind, hint);
                }
                lists
            })
            .await;
            self.replace_lists(lists);
            self.lists_changed(hub).await;
            return;
        }
        match note.method.as_str() {
            method::PROGRESS => {
                hub.progress(&self.id, &note);
            }
            method::RESOURCES_UPDATED => hub.resource_updated(&self.id, &note),
            // The backend no longer needs the answer to a request it sent.
            method::CANCELLED => self.relay.cancel(note.params.as_deref()),
            method::MESSAGE => {
                let params = note
                    .params
                    .as_deref()
                    .map(RawValue::get)
                    .unwrap_or_default();
                let max = self.settings.max_log_line;
                if params.len() > max {
                    let params = &params[..params.floor_char_boundary(max)];
                    tracing::info!(target: "only1mcp::backend", server = %self.id, "log message: {params}… [cut at {max} bytes]");
                } else {
                    tracing::info!(target: "only1mcp::backend", server = %self.id, "log message: {params}");
                }
            }
            other => {
                tracing::debug!(server = %self.id, method = other, "Backend notification not forwarded")
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves when the child (if any) exits; never for network backends.
async fn exited(child: &mut Option<stdio::Process>) -> String {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Stops the child, if any (see [`stdio::Process::stop`]).
async fn stop(child: Option<stdio::Process>) {
    if let Some(child) = child {
        child.stop(STOP_GRACE).await;
    }
}

/// The spec with `${VAR}` in header values expanded from the environment.
fn expand_headers(spec: &NetworkSpec) -> Result<NetworkSpec, String> {
    let lookup = |name: &str| std::env::var(name).ok();
    let mut spec = spec.clone();
    for (_, value) in &mut spec.headers {
        *value = only1mcp_core::config::expand_env(value, lookup).map_err(|e| e.to_string())?;
    }
    Ok(spec)
}

enum RunEnd {
    Shutdown,
    Failed(String),
    Exited,
}

/// Answers a request the backend sent. The gateway declares no client
/// capabilities to backends, so only `ping` is expected; anything else is
/// refused with a clear error rather than sent to an arbitrary client.
fn empty_capabilities() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}

async fn fetch_lists(
    server: &str,
    connection: &mut AnyConnection,
    established: &Established,
    identity: &ClientIdentity,
) -> Lists {
    let mut lists = Lists::default();
    for kind in ListKind::ALL {
        if !kind.offered_by(&established.capabilities) {
            continue;
        }
        match fetch_list(kind, server, connection, established, identity).await {
            Ok((items, hint)) => {
                *lists.get_mut(kind) = items;
                set_hint(&mut lists, kind, hint);
            }
            Err(e) => tracing::warn!(server, list = kind.method(), error = %e, "Listing failed"),
        }
    }
    lists
}

/// Records (or forgets) a list's cache hint.
fn set_hint(lists: &mut Lists, kind: ListKind, hint: Option<CacheHint>) {
    match hint {
        Some(hint) => {
            lists.hints.insert(kind, hint);
        }
        None => {
            lists.hints.remove(&kind);
        }
    }
}

/// Reads every page of one list, with the cache hint it came with.
async fn fetch_list(
    kind: ListKind,
    server: &str,
    connection: &mut AnyConnection,
    established: &Established,
    identity: &ClientIdentity,
) -> Result<(Vec<mcp::RawObject>, Option<CacheHint>), Error> {
    let mut items = Vec::new();
    let mut hint: Option<CacheHint> = None;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| serde_json::value::to_raw_value(&serde_json::json!({ "cursor": c })))
            .transpose()
            .map_err(|e| protocol(server, &e.to_string()))?;
        let params = match established.era {
            Era::Legacy => params,
            Era::Modern => {
                mcp::modern_params(params.as_deref(), &identity.capabilities, &identity.info)
                    .map_err(|e| protocol(server, &e.message))?
            }
        };
        let outcome = connection.call(Call::new(kind.method(), params)).await?;
        let result =
            outcome.map_err(|e| protocol(server, &format!("{} ({})", e.message, e.code)))?;
        // Thousands of tools take milliseconds to read: not on the runtime
        // thread.
        let large = result.get().len() > LARGE_LIST_BYTES;
        let page = catalog_work(large, move || ListPage::parse(kind, &result))
            .await
            .map_err(|e| protocol(server, &e.to_string()))?;
        if let Some(ttl_ms) = page.ttl_ms {
            let seen = hint.get_or_insert(CacheHint {
                ttl_ms,
                private: false,
            });
            seen.ttl_ms = seen.ttl_ms.min(ttl_ms);
            seen.private |= page.private;
        }
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok((items, hint)),
        }
    }
    Ok((items, hint))
}

fn protocol(server: &str, reason: &str) -> Error {
    Error::UpstreamProtocol {
        server: server.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// On a runtime with one thread, a task keeps running while a catalog
    /// rebuild is under way: the rebuild waits for that task's message,
    /// which it could never get if it held the runtime's only thread.
    #[tokio::test(flavor = "current_thread")]
    async fn catalog_rebuilds_leave_the_runtime_thread_serving() {
        let (tx, rx) = mpsc::channel::<()>();
        let heard = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rebuild = catalog_work(true, {
            let heard = heard.clone();
            move || {
                let got = rx.recv_timeout(Duration::from_secs(10)).is_ok();
                heard.store(got, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let other = async move {
            tokio::task::yield_now().await;
            let _ = tx.send(());
        };
        tokio::join!(rebuild, other);
        assert!(
            heard.load(std::sync::atomic::Ordering::SeqCst),
            "the other task did not run during the rebuild"
        );
    }
}
