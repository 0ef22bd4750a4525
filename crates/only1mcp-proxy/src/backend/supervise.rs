//! The supervisor of one backend: start (spawn or connect, handshake, read
//! the lists), serve (read what the backend sends unasked: notifications,
//! its requests to clients), restart after an exponential backoff, until
//! shutdown; and the `subscriptions/listen` streams of modern backends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use only1mcp_core::Error;
use only1mcp_core::catalog::Lists;
use only1mcp_core::jsonrpc::Notification;
use only1mcp_core::mcp::{Era, ListKind, method};
use only1mcp_core::upstream::{Call, UpstreamEvent};
use only1mcp_transport::handshake::{self, Established};
use only1mcp_transport::network::{self, AnyConnection, NetworkSpec};
use only1mcp_transport::stdio;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::lists::fetch_lists;
use super::{Backend, Launch, Live, Status};

/// The first restart delay; it doubles after each quick crash.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// The longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// How long a stopping backend gets to exit after its stdin closes, and
/// again after `SIGTERM`, before it is killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the supervisor tells the gateway.
pub(crate) trait Hub: Send + Sync + 'static {
    /// A backend's lists (or readiness) changed: rebuild the catalog. Takes
    /// milliseconds for a catalog of thousands of tools, so the supervisor
    /// calls it through [`catalog_work`](super::catalog_work), off the
    /// runtime thread when large.
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

impl Backend {
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
                    self.stats.restarted();
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
            pid: child.as_ref().and_then(stdio::Process::id),
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
            self.refresh_lists(hub, connection, established, changed)
                .await;
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
pub(super) fn expand_headers(spec: &NetworkSpec) -> Result<NetworkSpec, String> {
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
