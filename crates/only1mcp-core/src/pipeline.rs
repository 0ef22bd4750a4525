//! The call pipeline's types: what every layer between a client's request
//! and a backend sees.
//!
//! Every call the gateway sends to a backend on a client's behalf is a
//! [`Routed`] going through one tower stack (built by the proxy crate's
//! `stack::build`) whose answer is a [`Reply`]. Layers are ordinary tower
//! `Layer`s over any [`CallService`]; a layer that refuses a call answers
//! with [`Error::Denied`], [`Error::RateLimited`] or [`Error::CircuitOpen`],
//! which reach the client with one JSON-RPC code and one HTTP status each
//! ([`Error::jsonrpc_code`], [`Error::http_status`]).
//!
//! ```
//! use std::task::{Context, Poll};
//! use only1mcp_core::Error;
//! use only1mcp_core::pipeline::{Reply, Routed};
//! use tower_service::Service;
//!
//! /// Refuses every call of a tool whose exposed name starts with `admin_`.
//! #[derive(Clone)]
//! struct NoAdminTools<S>(S);
//!
//! impl<S> Service<Routed> for NoAdminTools<S>
//! where
//!     S: Service<Routed, Response = Reply, Error = Error>,
//!     S::Future: Send + 'static,
//! {
//!     type Response = Reply;
//!     type Error = Error;
//!     type Future = std::pin::Pin<
//!         Box<dyn std::future::Future<Output = Result<Reply, Error>> + Send>,
//!     >;
//!
//!     fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
//!         self.0.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, routed: Routed) -> Self::Future {
//!         if routed.exposed.as_deref().is_some_and(|n| n.starts_with("admin_")) {
//!             let denied = Error::Denied {
//!                 reason: format!("{} is not for agents", routed.exposed.as_deref().unwrap_or("")),
//!             };
//!             return Box::pin(async move { Err(denied) });
//!         }
//!         Box::pin(self.0.call(routed))
//!     }
//! }
//! # let _ = NoAdminTools::<()>;
//! ```

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::catalog::Route;
use crate::error::Error;
use crate::jsonrpc::Outcome;
use crate::mcp::Era;
use crate::upstream::Call;

/// A call on its way to a backend, with what any policy needs to know.
///
/// Built once per call, after the exposed name was routed: `route` is where
/// it goes and `call.params` already carry the backend's own name, while
/// `exposed` keeps the name the client used (what RBAC rules, metrics and
/// cache keys speak of).
#[derive(Debug)]
pub struct Routed {
    /// The method and params, as they go to the backend.
    pub call: Call,
    /// The server, and the tool, prompt or resource URI on that server
    /// (empty for a call that names none, such as `logging/setLevel`).
    pub route: Route,
    /// The tool or prompt name, or the resource URI, as the client used it;
    /// `None` for a call the gateway makes to every backend on the client's
    /// behalf (the `logging/setLevel` fan-out).
    pub exposed: Option<Arc<str>>,
    /// The era the client speaks.
    pub era: Era,
    /// Who is calling, when the client authenticated (never on stdio, nor
    /// on HTTP without inbound authentication).
    pub principal: Option<Arc<Principal>>,
    /// Which replica of the server should take the call, if it matters.
    pub affinity: Affinity,
    /// Anything else a layer wants to hand to another (typed, one value per
    /// type).
    pub extensions: http::Extensions,
}

impl Routed {
    /// A call of `call` routed to `route`, for a client of `era`, with no
    /// principal, no affinity and no extensions.
    pub fn new(call: Call, route: Route, era: Era) -> Self {
        Self {
            call,
            route,
            exposed: None,
            era,
            principal: None,
            affinity: Affinity::None,
            extensions: http::Extensions::new(),
        }
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.call.method
    }

    /// The server the call goes to.
    pub fn server(&self) -> &str {
        &self.route.server
    }
}

/// A backend's answer to a [`Routed`] call.
#[derive(Debug)]
pub struct Reply {
    /// The era of the backend that answered (a bridged call may need it).
    pub era: Era,
    /// Its result, or its own JSON-RPC error (relayed as sent).
    pub outcome: Outcome,
}

/// Who is calling: what an authenticator established about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The subject (`sub` of a token, the name of an API key, a
    /// certificate's subject).
    pub subject: String,
    /// Who vouched for it (a token's `iss`), if anyone.
    pub issuer: Option<String>,
    /// Its roles or groups.
    pub roles: Vec<String>,
    /// The OAuth scopes it was granted.
    pub scopes: Vec<String>,
    /// Every other claim, as received.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// Whether it has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether it was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// How a client reached the gateway: what an audit record wants to know of
/// it besides its principal. The face that makes a session sets it; a call
/// carries it (in a [`ClientRequest`] in [`Routed::extensions`]) only when
/// the gateway records calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The face.
    pub transport: Transport,
    /// The client's address, on a network face.
    pub peer: Option<std::net::SocketAddr>,
    /// The session id the client sees (`Mcp-Session-Id`, the HTTP+SSE
    /// session), if the face has one.
    pub session: Option<Arc<str>>,
}

/// The face a client reached the gateway through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The gateway's stdin and stdout.
    Stdio,
    /// Streamable HTTP (`/mcp`).
    StreamableHttp,
    /// Legacy HTTP+SSE (`/sse`, `/messages`).
    Sse,
    /// WebSocket (`/ws`).
    WebSocket,
}

impl Transport {
    /// Its name in records: `stdio`, `http`, `sse`, `ws`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::StreamableHttp => "http",
            Self::Sse => "sse",
            Self::WebSocket => "ws",
        }
    }
}

/// Which client request a call serves: put in [`Routed::extensions`] by the
/// session when the gateway records calls (an audit layer reads it), absent
/// otherwise.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The client's JSON-RPC id, as JSON text.
    pub id: Option<String>,
    /// How the client reached the gateway, if the face said.
    pub origin: Option<Arc<Origin>>,
}

/// Which replica of a server should take a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Affinity {
    /// Any replica will do.
    #[default]
    None,
    /// Calls with the same key should reach the same replica while it
    /// lives (a legacy session's calls, a principal, a value taken from the
    /// arguments): a hash, never the value itself.
    Key(u64),
    /// This replica and no other (a call that continues one already under
    /// way there).
    Replica(u32),
}

/// Whether an endpoint can take calls now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Availability {
    /// Connected and serving.
    Ready,
    /// Starting or restarting: a call waits for it (bounded by the request
    /// timeout).
    Starting,
    /// Failed, stopped or refusing: a call fails at once.
    Down,
}

/// What a balancer or a health check may ask of one endpoint.
pub trait Endpoint {
    /// Whether it can take calls now.
    fn availability(&self) -> Availability;
    /// How many calls it is serving now.
    fn in_flight(&self) -> usize;
}

/// A service that answers [`Routed`] calls: the whole pipeline, any part of
/// it, or one endpoint. Every layer of the pipeline is generic over it.
pub trait CallService:
    tower_service::Service<Routed, Response = Reply, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> CallService for S where
    S: tower_service::Service<Routed, Response = Reply, Error = Error, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routed_call_starts_with_no_identity_and_no_affinity() {
        let routed = Routed::new(
            Call::new("tools/call", None),
            Route {
                server: "fs".into(),
                name: "read_file".into(),
            },
            Era::Legacy,
        );
        assert_eq!(routed.method(), "tools/call");
        assert_eq!(routed.server(), "fs");
        assert!(routed.principal.is_none());
        assert_eq!(routed.affinity, Affinity::None);
    }

    #[test]
    fn principals_answer_for_roles_and_scopes() {
        let principal = Principal {
            subject: "ana".into(),
            roles: vec!["dev".into()],
            scopes: vec!["mcp:tools".into()],
            ..Principal::default()
        };
        assert!(principal.has_role("dev") && !principal.has_role("admin"));
        assert!(principal.has_scope("mcp:tools") && !principal.has_scope("mcp"));
    }
}
