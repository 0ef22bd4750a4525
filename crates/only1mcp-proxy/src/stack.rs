//! The call pipeline: every call the gateway makes to a backend on a
//! client's behalf goes through one tower stack, built here (ADR 0012).
//!
//! ```text
//! client request ─ session: era, routing by exposed name, progress/log routes
//!   └─ per-call stack (CallStack, built once by `build`)
//!        ├─ the embedder's call layers, in the order given (first = outermost)
//!        │    (observability, authorization, rate limits and the cache plug
//!        │     in here, outermost first, as they arrive)
//!        └─ Router: the server's own stack, by `Routed::route.server`
//!             └─ per-server stack (built once per backend, kept with it
//!                across reloads that keep the backend)
//!                  ├─ the embedder's server layers (first = outermost)
//!                  │    (balancing over replicas and the circuit breaker
//!                  │     plug in here)
//!                  └─ Endpoint: one backend; waits while it starts (bounded
//!                       by its request timeout), counts its stats, calls it
//! ```
//!
//! Layers are plain tower `Layer`s over any
//! [`CallService`], composed at the
//! type level; the stack's type is erased once, by [`CallStack::new`], which
//! recognizes a bare [`Router`] or [`Endpoint`], or the metrics layer over a
//! bare router (`only1mcp_observability::metrics::Metered`, the outermost
//! layer the gateway adds when metrics are on), and keeps it unboxed, so a
//! gateway with no layers of the embedder's pays one boxed future per call,
//! as before.
//!
//! The entry points: `tools/call` (including a discover profile's
//! `call_tool`, unwrapped to the real tool before it enters), each round of
//! a bridged input request, `prompts/get`, `resources/read`,
//! `completion/complete`, legacy `resources/subscribe` and `unsubscribe`,
//! and the `logging/setLevel` fan-out. The gateway's own calls (list
//! fetches, the era probe, `only1mcp test`) are not a client's and do not
//! enter it.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use only1mcp_core::Error;
use only1mcp_core::pipeline::{Availability, CallService, Reply, Routed};
use only1mcp_observability::metrics::{Metered, Metrics};
use tower::Service;
use tower::ServiceExt as _;
use tower::layer::Layer;

use crate::backend::Backend;

/// The future of a call through an erased stack.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

/// One server of the set, with its server stack (made once when the
/// server starts; kept with it across reloads that keep it).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The backend (the first replica of a pool).
    pub(crate) backend: Arc<Backend>,
    /// The server layers over its endpoint.
    pub(crate) stack: CallStack,
    /// Its replicas, the first being `backend`, and their pool, when it
    /// has one (ADR 0017).
    pub(crate) pool: Option<(Arc<[Arc<Backend>]>, Arc<pool::Pool>)>,
}

impl Member {
    /// Every backend of the server: its replicas, or the one.
    pub(crate) fn replicas(&self) -> &[Arc<Backend>] {
        match &self.pool {
            Some((replicas, _)) => replicas,
            None => std::slice::from_ref(&self.backend),
        }
    }

    /// The backend that speaks for the server now: a ready replica (the
    /// first), else the first.
    pub(crate) fn lead(&self) -> &Arc<Backend> {
        match &self.pool {
            Some((replicas, _)) => replicas
                .iter()
                .find(|b| b.availability() == Availability::Ready)
                .unwrap_or(&self.backend),
            None => &self.backend,
        }
    }

    /// Where the server stands: ready if any replica is, else where its
    /// first stands.
    pub(crate) fn status(&self) -> crate::backend::Status {
        let replicas = self.replicas();
        if replicas
            .iter()
            .any(|b| b.status() == crate::backend::Status::Ready)
        {
            return crate::backend::Status::Ready;
        }
        self.backend.status()
    }

    /// Its lists: what every replica offers.
    pub(crate) fn lists(&self) -> Arc<only1mcp_core::catalog::Lists> {
        match &self.pool {
            Some((replicas, pool)) => Arc::new(pool.lists(replicas)),
            None => self.backend.lists(),
        }
    }
}

/// The backends by id, as the gateway swaps them on reload.
pub(crate) type Backends = Arc<ArcSwap<BTreeMap<Arc<str>, Member>>>;

/// A stack of layers over [`Routed`] calls with its type erased: the whole
/// per-call pipeline, or one server's stack. Cheap to clone.
#[derive(Clone)]
pub struct CallStack(Inner);

#[derive(Clone)]
enum Inner {
    /// No call layers: the router itself.
    Router(Router),
    /// No server layers: the endpoint itself.
    Endpoint(Endpoint),
    /// The metrics layer alone over the router.
    Metered(Metered<Router>),
    /// Anything else, boxed once.
    Erased(Arc<dyn Erased>),
}

/// A call service behind a pointer.
trait Erased: Send + Sync {
    fn dispatch(&self, routed: Routed) -> CallFuture;
}

impl<S> Erased for S
where
    S: CallService + Sync,
{
    fn dispatch(&self, routed: Routed) -> CallFuture {
        Box::pin(self.clone().oneshot(routed))
    }
}

impl std::fmt::Debug for CallStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Inner::Router(_) => "router",
            Inner::Endpoint(_) => "endpoint",
            Inner::Metered(_) => "metered router",
            Inner::Erased(_) => "layered",
        };
        f.debug_tuple("CallStack").field(&kind).finish()
    }
}

impl CallStack {
    /// Erases `service`'s type. A bare [`Router`] or [`Endpoint`] (no layers
    /// over it) is kept as it is; anything else is boxed once.
    pub fn new<S>(service: S) -> Self
    where
        S: CallService + Sync,
    {
        let any: Box<dyn Any> = Box::new(service);
        let any = match any.downcast::<Router>() {
            Ok(router) => return Self(Inner::Router(*router)),
            Err(any) => any,
        };
        let any = match any.downcast::<Endpoint>() {
            Ok(endpoint) => return Self(Inner::Endpoint(*endpoint)),
            Err(any) => any,
        };
        let any = match any.downcast::<Metered<Router>>() {
            Ok(metered) => return Self(Inner::Metered(*metered)),
            Err(any) => any,
        };
        match any.downcast::<S>() {
            Ok(service) => Self(Inner::Erased(Arc::new(*service))),
            // `any` was made from an `S` above.
            Err(_) => unreachable!("a Box<dyn Any> of S downcasts to S"),
        }
    }

    /// Whether this is a bare router: no call layers.
    pub(crate) fn is_bare_router(&self) -> bool {
        matches!(self.0, Inner::Router(_))
    }

    /// The metrics of a stack that is the metrics layer alone over the
    /// router.
    pub(crate) fn metered_router(&self) -> Option<&Metrics> {
        match &self.0 {
            Inner::Metered(metered) => Some(metered.metrics()),
            Inner::Router(_) | Inner::Endpoint(_) | Inner::Erased(_) => None,
        }
    }

    /// Sends `routed` through the stack.
    pub fn dispatch(&self, routed: Routed) -> CallFuture {
        match &self.0 {
            Inner::Router(router) => router.route(routed),
            Inner::Endpoint(endpoint) => endpoint.dispatch(routed),
            Inner::Metered(metered) => {
                let tracker = metered.metrics().track(&routed);
                let call = metered.inner().route(routed);
                Box::pin(async move {
                    let res = call.await;
                    tracker.finish(&res);
                    res
                })
            }
            Inner::Erased(service) => service.dispatch(routed),
        }
    }
}

impl Service<Routed> for CallStack {
    type Response = Reply;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Each call drives the readiness of what it reaches.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, routed: Routed) -> CallFuture {
        self.dispatch(routed)
    }
}

/// The end of the per-call stack: hands each call to the stack of the
/// server it is routed to, as the backend set is now.
#[derive(Clone)]
pub struct Router {
    backends: Backends,
    /// The role policy a call must pass first (`auth.roles`; ADR 0016),
    /// when the gateway started with `auth`.
    policy: Option<only1mcp_auth::SharedPolicy>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    pub(crate) fn new(backends: Backends, policy: Option<only1mcp_auth::SharedPolicy>) -> Self {
        Self { backends, policy }
    }

    fn route(&self, routed: Routed) -> CallFuture {
        if let Some(policy) = &self.policy
            && let Some(policy) = policy.load().as_deref()
            && let Some(refused) = only1mcp_auth::rbac::refusal(policy, &routed)
        {
            return Box::pin(std::future::ready(Err(refused)));
        }
        let backends = self.backends.load();
        match backends.get(routed.server()) {
            Some(member) => member.stack.dispatch(routed),
            None => {
                let error = Error::UpstreamUnavailable {
                    server: routed.server().to_owned(),
                    reason: "not configured".to_owned(),
                };
                Box::pin(std::future::ready(Err(error)))
            }
        }
    }
}

impl Service<Routed> for Router {
    type Response = Reply;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, routed: Routed) -> CallFuture {
        self.route(routed)
    }
}

/// One server as a service: the innermost part of its stack.
///
/// For a server of one backend: its `poll_ready` fails at once when the
/// backend is down (failed or stopped) and is ready otherwise; a call to a
/// starting backend waits for it, bounded by the server's request timeout,
/// which also bounds the call. It counts the call in the backend's stats
/// and in-flight gauge (what draining and `only1mcp status` read). For a
/// server with replicas it is their pool (`pool::Pool`: a balancer over
/// each replica's breaker over that replica's own endpoint).
#[derive(Clone)]
pub struct Endpoint(Target);

#[derive(Clone)]
enum Target {
    /// One backend.
    One(Arc<Backend>),
    /// The replicas of a server.
    Pool(Arc<pool::Pool>),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Target::One(backend) => f
                .debug_struct("Endpoint")
                .field("server", backend.id())
                .field("replica", &backend.replica())
                .finish(),
            Target::Pool(pool) => f.debug_tuple("Endpoint").field(pool).finish(),
        }
    }
}

impl Endpoint {
    /// The endpoint of `backend`.
    pub(crate) fn new(backend: &Arc<Backend>) -> Self {
        Self(Target::One(backend.clone()))
    }

    /// The endpoint of a server with replicas.
    pub(crate) fn pool(pool: Arc<pool::Pool>) -> Self {
        Self(Target::Pool(pool))
    }

    fn dispatch(&self, routed: Routed) -> CallFuture {
        match &self.0 {
            Target::One(backend) => {
                let backend = backend.clone();
                Box::pin(async move {
                    let (era, outcome) = backend.call(routed.call).await?;
                    Ok(Reply { era, outcome })
                })
            }
            Target::Pool(pool) => pool.dispatch(routed),
        }
    }
}

impl only1mcp_core::pipeline::Endpoint for Endpoint {
    fn availability(&self) -> Availability {
        match &self.0 {
            Target::One(backend) => backend.availability(),
            Target::Pool(pool) => pool.availability(),
        }
    }

    fn in_flight(&self) -> usize {
        match &self.0 {
            Target::One(backend) => backend.in_flight(),
            Target::Pool(pool) => pool.in_flight(),
        }
    }
}

impl Service<Routed> for Endpoint {
    type Response = Reply;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Target::One(backend) = &self.0 else {
            // The pool picks a replica that is ready.
            return Poll::Ready(Ok(()));
        };
        match backend.availability() {
            Availability::Ready | Availability::Starting => Poll::Ready(Ok(())),
            Availability::Down => Poll::Ready(Err(Error::UpstreamUnavailable {
                server: backend.id().to_string(),
                reason: "down".to_owned(),
            })),
        }
    }

    fn call(&mut self, routed: Routed) -> CallFuture {
        self.dispatch(routed)
    }
}

/// Builds a server's stack over an endpoint; kept by the gateway so every
/// backend it starts, at start or on reload, gets the same layers.
#[derive(Clone)]
pub(crate) struct ServerStacks {
    build: Arc<dyn Fn(Endpoint) -> CallStack + Send + Sync>,
    /// No server layers: each stack is the bare endpoint.
    identity: bool,
    /// Only the gateway's trace layer over each endpoint
    /// (`trace::TraceLayer`, added by `run` when traces are on).
    traced_identity: bool,
}

impl ServerStacks {
    /// Whether every server's stack is its bare endpoint.
    pub(crate) fn is_identity(&self) -> bool {
        self.identity
    }

    /// Whether every server's stack is its endpoint under the trace layer
    /// alone, which does nothing to a call outside a sampled request.
    pub(crate) fn is_traced_identity(&self) -> bool {
        self.traced_identity
    }

    /// The stack of the backend behind `endpoint`.
    pub(crate) fn build(&self, endpoint: Endpoint) -> CallStack {
        (self.build)(endpoint)
    }
}

impl std::fmt::Debug for ServerStacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStacks").finish_non_exhaustive()
    }
}

/// The per-call stack: `layers` over the router.
pub(crate) fn build<L>(
    layers: &L,
    backends: Backends,
    policy: Option<only1mcp_auth::SharedPolicy>,
) -> CallStack
where
    L: Layer<Router>,
    L::Service: CallService + Sync,
{
    CallStack::new(layers.layer(Router::new(backends, policy)))
}

/// The factory of per-server stacks: `layers` over each endpoint.
pub(crate) fn server_stacks<S>(layers: S) -> ServerStacks
where
    S: Layer<Endpoint> + Send + Sync + 'static,
    S::Service: CallService + Sync,
{
    let service = std::any::TypeId::of::<S::Service>();
    ServerStacks {
        identity: service == std::any::TypeId::of::<Endpoint>(),
        traced_identity: service
            == std::any::TypeId::of::<only1mcp_observability::trace::Trace<Endpoint>>(),
        build: Arc::new(move |endpoint| CallStack::new(layers.layer(endpoint))),
    }
}

pub(crate) mod pool;
#[cfg(test)]
mod tests;
