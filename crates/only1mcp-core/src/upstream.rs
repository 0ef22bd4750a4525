//! The routing traits: what a backend connection is to the rest of the
//! gateway.
//!
//! A backend connection is a tower [`Service`] from [`Call`] to the backend's
//! [`Outcome`]. The connection owns the id space towards its backend: it picks
//! the JSON-RPC id of every call, so ids from different clients never collide
//! upstream, and dropping the response future cancels the call on the backend
//! (`notifications/cancelled`). What the backend sends unasked (notifications,
//! and requests such as `roots/list`) arrives as [`UpstreamEvent`]s on a
//! stream the transport hands out beside the service.

use std::pin::Pin;

use serde_json::value::RawValue;
use tower_service::Service;

use crate::error::Error;
use crate::jsonrpc::{Message, Notification, Outcome, Request};

/// One request to a backend; the connection assigns the id.
#[derive(Debug)]
pub struct Call {
    /// The method.
    pub method: String,
    /// The params, as they go on the wire.
    pub params: Option<Box<RawValue>>,
}

impl Call {
    /// A call of `method` with `params`.
    pub fn new(method: impl Into<String>, params: Option<Box<RawValue>>) -> Self {
        Self {
            method: method.into(),
            params,
        }
    }
}

/// Something a backend sent without being asked.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A notification (progress, list changed, log message, …).
    Notification(Notification),
    /// A request from the backend (sampling, elicitation, roots); answer it
    /// with [`Upstream::send`] and a response carrying the same id.
    Request(Request),
    /// The connection ended; no more events follow.
    Closed,
}

/// The stream of [`UpstreamEvent`]s of one connection.
pub type Events = Pin<Box<dyn futures_core::Stream<Item = UpstreamEvent> + Send>>;

/// A backend connection.
///
/// Implemented by every upstream transport. The service's error is a
/// transport failure (closed, timed out); a JSON-RPC error from the backend is
/// an `Err` inside the [`Outcome`].
pub trait Upstream:
    Service<Call, Response = Outcome, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Sends a message that expects no answer: a notification, or the
    /// response to a request the backend sent.
    fn send(&self, message: Message) -> Result<(), Error>;
}
