//! Starting a gateway with the embedder's own layers in its call stack.
//!
//! `only1mcp start` and an embedding program go through the same builder:
//!
//! ```no_run
//! # async fn run(config: only1mcp_core::config::Config) -> std::io::Result<()> {
//! use tower::layer::util::Identity;
//!
//! let gateway = only1mcp_proxy::Gateway::builder(&config)
//!     .layer(Identity::new()) // any Layer over the per-call stack
//!     .server_layer(Identity::new()) // any Layer over each server's endpoint
//!     .start()
//!     .await;
//! // Serve it: `only1mcp_proxy::serve::serve_stdio`, `only1mcp_proxy::http::serve`
//! // on a listener, or mount `only1mcp_proxy::http::router` in an axum app.
//! # drop(gateway);
//! # Ok(())
//! # }
//! ```
//!
//! Layers compose at the type level, as with tower's `ServiceBuilder`: the
//! first `layer` given is the outermost. The stacks' types are erased once
//! when the gateway starts ([`crate::stack`]).

use only1mcp_auth::audit::{AuditLayer, Auditor};
use only1mcp_core::config::Config;
use only1mcp_core::pipeline::CallService;
use only1mcp_observability::metrics::Metrics;
use tower::layer::Layer;
use tower::layer::util::{Identity, Stack};

use crate::gateway::{Access, Gateway};
use crate::stack::{self, Endpoint, Router};

/// A gateway about to start, collecting layers: `L` over the per-call stack,
/// `S` over each server's endpoint.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct GatewayBuilder<L = Identity, S = Identity> {
    config: Config,
    layers: L,
    server_layers: S,
    /// The audit trail ([`GatewayBuilder::auditor`]).
    auditor: Option<Auditor>,
}

impl Gateway {
    /// Starts every enabled backend and waits until each has finished its
    /// first start attempt (ready or failed) or its start-up timeout passed.
    /// A backend that fails is reported and left out; the rest are served.
    /// The same as `Gateway::builder(config).start()`: no layers of the
    /// embedder's in the call stack.
    pub async fn start(config: &Config) -> Self {
        Self::builder(config).start().await
    }

    /// A gateway for `config`, to be given layers before it starts.
    pub fn builder(config: &Config) -> GatewayBuilder {
        GatewayBuilder::new(config)
    }
}

impl GatewayBuilder {
    fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            layers: Identity::new(),
            server_layers: Identity::new(),
            auditor: None,
        }
    }
}

impl<L, S> GatewayBuilder<L, S> {
    /// The config it will start with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds `layer` to the per-call stack, inside the layers added before
    /// it: it sees every call to any backend, after routing (the
    /// [`Routed`](only1mcp_core::pipeline::Routed) names the server, the
    /// backend's name and the client's).
    pub fn layer<N>(self, layer: N) -> GatewayBuilder<Stack<N, L>, S> {
        GatewayBuilder {
            config: self.config,
            layers: Stack::new(layer, self.layers),
            server_layers: self.server_layers,
            auditor: self.auditor,
        }
    }

    /// Adds `layer` to every server's stack, inside the server layers added
    /// before it. Each backend gets its own instance (`Layer::layer` runs
    /// once per backend, when it starts), which lives as long as the
    /// backend, across reloads that keep it.
    pub fn server_layer<N>(self, layer: N) -> GatewayBuilder<L, Stack<N, S>> {
        GatewayBuilder {
            config: self.config,
            layers: self.layers,
            server_layers: Stack::new(layer, self.server_layers),
            auditor: self.auditor,
        }
    }

    /// Adds `layer` to every server's stack, outside the server layers
    /// given so far (the gateway's own, such as the trace layer of
    /// `run`).
    pub(crate) fn outer_server_layer<N>(self, layer: N) -> GatewayBuilder<L, Stack<S, N>> {
        GatewayBuilder {
            config: self.config,
            layers: self.layers,
            server_layers: Stack::new(self.server_layers, layer),
            auditor: self.auditor,
        }
    }

    /// Records calls, reloads and admin changes to `auditor` (opened from
    /// `audit:` with [`Auditor::open`]; [`GatewayBuilder::run`] does it). A
    /// gateway started without one (a short-lived command such as
    /// `only1mcp list`) records nothing.
    pub fn auditor(mut self, auditor: Option<Auditor>) -> Self {
        self.auditor = auditor;
        self
    }

    /// Starts every enabled backend, as [`Gateway::start`] does, with these
    /// layers in the call stacks.
    ///
    /// With `auth` in the config (admission or roles), the role check is
    /// the router's, inside every layer given here: those see the calls it
    /// refuses, as [`only1mcp_core::Error::Concealed`] (ADR 0016).
    ///
    /// With an auditor, the audit layer is the outermost of the per-call
    /// stack: it sees every refusal of the layers inside it.
    pub async fn start(self) -> Gateway
    where
        L: Layer<Router>,
        L::Service: CallService + Sync,
        S: Layer<Endpoint> + Send + Sync + 'static,
        S::Service: CallService + Sync,
    {
        let auth = &self.config.auth;
        let access = Access {
            policy: only1mcp_auth::SharedPolicy::default(),
            enforced: auth.enabled() || !auth.roles.is_empty() || auth.default_deny,
        };
        let policy = access.enforced.then(|| access.policy.clone());
        let auditor = self.auditor;
        let audit = auditor.clone().map(AuditLayer::new);
        // The audit layer, when there is one, is outermost: it sees every
        // refusal of the layers inside.
        // Rate limits are inside it, outside the embedder's layers.
        let limits = only1mcp_auth::ratelimit::RateLimitLayer::new(&self.config.rate_limits);
        let wrap = move |stack: stack::CallStack| {
            let stack = match limits {
                Some(limits) => stack::CallStack::new(limits.layer(stack)),
                None => stack,
            };
            match audit {
                Some(audit) => stack::CallStack::new(audit.layer(stack)),
                None => stack,
            }
        };
        let server_stacks = stack::server_stacks(self.server_layers);
        if !self.config.metrics.enabled {
            let layers = self.layers;
            return Gateway::start_with(
                &self.config,
                move |backends| wrap(stack::build(&layers, backends, policy)),
                server_stacks,
                access,
                auditor,
                None,
            )
            .await;
        }
        // The metrics layer is outside the embedder's layers: it counts
        // what they (and the router's role check) refuse.
        let metrics = Metrics::new();
        let layers = Stack::new(self.layers, metrics.layer());
        Gateway::start_with(
            &self.config,
            move |backends| wrap(stack::build(&layers, backends, policy)),
            server_stacks,
            access,
            auditor,
            Some(metrics),
        )
        .await
    }
}
