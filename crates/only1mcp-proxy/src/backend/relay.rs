//! Requests a legacy backend sends its client (`sampling/createMessage`,
//! `elicitation/create`, `roots/list`), relayed to the one client whose call
//! caused them (ADR 0006).
//!
//! A legacy backend has one upstream session shared by every client, and on
//! stdio nothing on the wire ties its request to a call. So while a call is in
//! flight on the backend, its client is registered here (one insert and one
//! remove per call). When a request arrives:
//!
//! - if the calls in flight all belong to one client session, it is that
//!   client's: a legacy client gets a real request on the call's own channel;
//!   a modern client's call returns `input_required` and the request waits for
//!   the retry (`session::hold`);
//! - if none is in flight (a `roots/list` at start-up, say), `roots/list` gets
//!   the server's configured `roots`, anything else a clear error;
//! - if several clients have calls in flight, it is refused: the gateway
//!   never guesses, so one client's data never reaches another.
//!
//! A client that did not declare the capability gets nothing sent; the
//! backend gets an error (or the configured roots).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use only1mcp_core::config::{ClientRequests, RootConfig};
use only1mcp_core::jsonrpc::{self, ErrorObject, Id, Message, Outcome, Request, Response};
use only1mcp_core::mcp::method;
use only1mcp_core::upstream::Upstream as _;
use only1mcp_transport::downstream::Outbound;
use only1mcp_transport::network::AnyConnection;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

/// `sampling/createMessage`.
pub(crate) const SAMPLING: &str = "sampling/createMessage";
/// `elicitation/create`.
pub(crate) const ELICITATION: &str = "elicitation/create";
/// `roots/list`.
pub(crate) const ROOTS: &str = "roots/list";

/// The client capabilities declared to a legacy backend that relays.
pub(crate) fn relayed_capabilities() -> serde_json::Value {
    serde_json::json!({ "sampling": {}, "elicitation": {}, "roots": {} })
}

/// How to reach the client of one call.
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    /// A legacy client: send it a real request through this channel.
    Ask(Outbound),
    /// A modern client: hand the request to its call, which answers
    /// `input_required` and waits for the retry.
    Hold(mpsc::Sender<Pending>),
    /// No channel back to the client.
    Nowhere,
}

/// What the relay needs of the client session a call belongs to: a way to
/// send the client a request and wait for its answer. The client session
/// implements it; the relay knows nothing else of sessions.
pub(crate) trait ClientLink: Send + Sync {
    /// Sends `method` with `params` to the client through `via` and waits
    /// for its answer, at most `timeout`.
    fn ask<'a>(
        &'a self,
        method: String,
        params: Option<Box<RawValue>>,
        via: &'a Outbound,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
}

/// The client of one call in flight on the backend.
#[derive(Clone)]
pub(crate) struct Caller {
    /// Its session (a stateless modern request has its own).
    pub(crate) session: Weak<dyn ClientLink>,
    /// How to ask it.
    pub(crate) reach: Reach,
    /// The capabilities it declared.
    pub(crate) capabilities: Option<Box<RawValue>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("session", &self.session.as_ptr().cast::<()>())
            .field("reach", &self.reach)
            .finish_non_exhaustive()
    }
}

/// A backend request waiting for a modern client's retry.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The request's method.
    pub(crate) method: String,
    /// Its params.
    pub(crate) params: Option<Box<RawValue>>,
    /// Where the client's answer goes.
    pub(crate) answer: oneshot::Sender<Outcome>,
}

/// The clients of the calls in flight, and the next id to give one.
#[derive(Debug, Default)]
struct Callers {
    map: Mutex<HashMap<u64, Weak<Caller>, foldhash::fast::RandomState>>,
    next: AtomicU64,
}

/// One backend's relay.
#[derive(Debug)]
pub(crate) struct Relay {
    server: Arc<str>,
    mode: ClientRequests,
    /// `{"roots": [...]}` from the config, if set.
    roots: Option<Box<RawValue>>,
    /// How long a client has to answer.
    timeout: Duration,
    /// The clients of the calls in flight, held weakly (the guard owns
    /// each). A plain mutex, held for one insert or remove, never across an
    /// await: a lock-free map (papaya) measured slower here, its
    /// reclamation sending a `membarrier` IPI to every core.
    /// By the ids this relay chose (so foldhash, not SipHash). Shared by
    /// the replicas of one server (ADR 0017): a call registers its client
    /// before a replica is picked, and whichever replica takes it finds it.
    callers: Arc<Callers>,
    /// The backend's requests being answered, by their id, so the
    /// backend's `notifications/cancelled` can stop one.
    answering: Mutex<HashMap<Id, tokio::task::AbortHandle>>,
}

/// Unregisters a caller when dropped (the call ended or was cancelled).
#[derive(Debug)]
pub(crate) struct CallerGuard {
    relay: Arc<Relay>,
    id: u64,
    _caller: Arc<Caller>,
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        self.relay.callers().remove(&self.id);
    }
}

/// What to do with a backend request.
#[derive(Debug)]
enum Decision {
    /// Ask this caller.
    Ask(Caller),
    /// Answer with the configured roots.
    ConfiguredRoots,
    /// Refuse, saying why.
    Refuse(ErrorObject),
}

impl Relay {
    /// The relay of server `server`.
    pub(crate) fn new(
        server: Arc<str>,
        mode: ClientRequests,
        roots: Option<&[RootConfig]>,
        timeout: Duration,
    ) -> Arc<Self> {
        let roots = roots.map(|roots| {
            let roots: Vec<serde_json::Value> = roots
                .iter()
                .map(|r| match &r.name {
                    Some(name) => serde_json::json!({"uri": r.uri, "name": name}),
                    None => serde_json::json!({"uri": r.uri}),
                })
                .collect();
            serde_json::value::to_raw_value(&serde_json::json!({ "roots": roots }))
                .unwrap_or_default()
        });
        Arc::new(Self {
            server,
            mode,
            roots,
            timeout,
            callers: Arc::new(Callers {
                map: Mutex::new(HashMap::default()),
                next: AtomicU64::new(1),
            }),
            answering: Mutex::new(HashMap::new()),
        })
    }

    /// A relay for another replica of the same server: the same settings,
    /// and the same registered callers (its own requests being answered).
    pub(crate) fn sibling(&self) -> Arc<Self> {
        Arc::new(Self {
            server: self.server.clone(),
            mode: self.mode,
            roots: self.roots.clone(),
            timeout: self.timeout,
            callers: self.callers.clone(),
            answering: Mutex::new(HashMap::new()),
        })
    }

    fn callers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Caller>, foldhash::fast::RandomState>> {
        self.callers
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this backend relays (and so declares the capabilities).
    pub(crate) fn relays(&self) -> bool {
        self.mode == ClientRequests::Relay
    }

    /// Registers the client of a call for as long as the guard lives.
    pub(crate) fn register(self: &Arc<Self>, caller: Caller) -> CallerGuard {
        let id = self.callers.next.fetch_add(1, Ordering::Relaxed);
        let caller = Arc::new(caller);
        self.callers().insert(id, Arc::downgrade(&caller));
        CallerGuard {
            relay: self.clone(),
            id,
            _caller: caller,
        }
    }

    /// Answers one request of the backend, in its own task: the answer may
    /// take as long as a person takes to answer an elicitation.
    pub(crate) fn handle(self: &Arc<Self>, connection: AnyConnection, req: Request) {
        let relay = self.clone();
        let id = req.id.clone();
        self.track(id, async move {
            let outcome = relay.outcome(&req).await;
            if let Err(error) = &outcome {
                tracing::warn!(server = %relay.server, method = %req.method, error = %error.message, "Backend request not relayed");
            }
            let _ = connection.send(Message::Response(Response {
                id: Some(req.id),
                outcome,
            }));
        });
    }

    fn answering(&self) -> std::sync::MutexGuard<'_, HashMap<Id, tokio::task::AbortHandle>> {
        self.answering
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the answering of backend request `id` in its own task, which
    /// [`Relay::cancel`] can stop.
    fn track(
        self: &Arc<Self>,
        id: Id,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let relay = self.clone();
        let key = id.clone();
        let mut answering = self.answering();
        let task = tokio::spawn(async move {
            work.await;
            relay.answering().remove(&key);
        });
        // Registered before the task can finish: it takes this lock to leave.
        answering.insert(id, task.abort_handle());
    }

    /// The backend's `notifications/cancelled`: the request it names stops
    /// being answered. The client, if it was asked, is told (the ask's drop
    /// sends it `notifications/cancelled`), and the backend gets no answer.
    pub(crate) fn cancel(&self, params: Option<&RawValue>) {
        #[derive(serde::Deserialize)]
        struct Cancelled {
            #[serde(rename = "requestId")]
            request_id: Id,
        }
        let Some(cancelled) = params.and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok())
        else {
            return;
        };
        if let Some(task) = self.answering().remove(&cancelled.request_id) {
            tracing::info!(server = %self.server, "The backend cancelled its request to a client");
            task.abort();
        }
    }

    async fn outcome(&self, req: &Request) -> Outcome {
        if req.method == method::PING {
            return Ok(RawValue::from_string("{}".to_owned()).unwrap_or_default());
        }
        let decision = self.decide(&req.method);
        let caller = match decision {
            Decision::Ask(caller) => caller,
            Decision::ConfiguredRoots => return Ok(self.roots.clone().unwrap_or_default()),
            Decision::Refuse(error) => return Err(error),
        };
        match caller.reach {
            Reach::Ask(via) => {
                let Some(session) = caller.session.upgrade() else {
                    return Err(internal("the client's session has ended"));
                };
                session
                    .ask(req.method.clone(), req.params.clone(), &via, self.timeout)
                    .await
            }
            Reach::Hold(calls) => {
                let (answer, answered) = oneshot::channel();
                let pending = Pending {
                    method: req.method.clone(),
                    params: req.params.clone(),
                    answer,
                };
                if calls.send(pending).await.is_err() {
                    return Err(internal("the client's call has ended"));
                }
                match tokio::time::timeout(self.timeout, answered).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => Err(internal(
                        "the client did not retry its call with an answer (it ended or expired)",
                    )),
                    Err(_) => Err(internal("the client did not answer in time")),
                }
            }
            Reach::Nowhere => Err(internal(
                "the call that caused this request has no channel back to its client",
            )),
        }
    }

    fn decide(&self, request: &str) -> Decision {
        let capability = match request {
            SAMPLING => "sampling",
            ELICITATION => "elicitation",
            ROOTS => "roots",
            other => {
                return Decision::Refuse(ErrorObject::new(
                    jsonrpc::code::METHOD_NOT_FOUND,
                    format!("Only1MCP does not relay {other} to clients"),
                ));
            }
        };
        if self.mode == ClientRequests::Refuse {
            return Decision::Refuse(ErrorObject::new(
                jsonrpc::code::METHOD_NOT_FOUND,
                format!(
                    "Only1MCP declared no client capability for {request} (servers.{}.client_requests is refuse)",
                    self.server
                ),
            ));
        }
        let roots_or = |refusal: String| {
            if request == ROOTS && self.roots.is_some() {
                Decision::ConfiguredRoots
            } else {
                Decision::Refuse(internal(&refusal))
            }
        };
        // The live callers, newest registration last, one per session.
        let mut callers: Vec<(u64, Arc<Caller>)> = self
            .callers()
            .iter()
            .filter_map(|(id, c)| Some((*id, c.upgrade()?)))
            .filter(|(_, c)| c.session.strong_count() > 0)
            .collect();
        callers.sort_by_key(|(id, _)| *id);
        let mut sessions: Vec<*const ()> = callers
            .iter()
            .map(|(_, c)| c.session.as_ptr().cast::<()>())
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        match sessions.len() {
            0 => roots_or(format!(
                "no client request is in progress on server {}, so Only1MCP cannot tell which client this {request} is for{}",
                self.server,
                if request == ROOTS {
                    format!(" (set servers.{}.roots to answer it)", self.server)
                } else {
                    String::new()
                }
            )),
            1 => {
                let Some((_, caller)) = callers.last() else {
                    return Decision::Refuse(internal("no caller"));
                };
                let declared = caller
                    .capabilities
                    .as_deref()
                    .and_then(|caps| {
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                            caps.get(),
                        )
                        .ok()
                    })
                    .is_some_and(|caps| caps.contains_key(capability));
                if declared {
                    Decision::Ask(Caller::clone(caller))
                } else {
                    roots_or(format!(
                        "the client whose call caused this {request} did not declare the {capability} capability"
                    ))
                }
            }
            n => Decision::Refuse(internal(&format!(
                "{n} clients have requests in progress on server {}; Only1MCP does not guess which one this {request} is for",
                self.server
            ))),
        }
    }
}

fn internal(message: &str) -> ErrorObject {
    ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, message)
}

#[cfg(test)]
mod tests;
