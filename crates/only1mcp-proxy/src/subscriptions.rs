//! Resource subscriptions across sessions and backends.
//!
//! Clients subscribe to a resource URI (legacy `resources/subscribe`, or a
//! modern `subscriptions/listen` with `resourceSubscriptions`). The gateway
//! subscribes upstream once per URI, however many clients want it: a legacy
//! owner gets `resources/subscribe`, a modern owner a `subscriptions/listen`
//! stream for that URI. `notifications/resources/updated` from the owner
//! goes to every session subscribed to the URI, and to no other. When the
//! last subscriber leaves (or is gone), the upstream subscription ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use only1mcp_core::catalog::Route;
use only1mcp_core::jsonrpc::Message;
use only1mcp_core::mcp::Era;
use only1mcp_core::pipeline::Routed;
use only1mcp_core::upstream::Call;

/// What a subscription needs of a client session: somewhere to send the
/// updates, and its identity on the calls made for it. The client session
/// implements it; the registry and the gateway know nothing else of
/// sessions.
pub(crate) trait Subscriber: Send + Sync {
    /// Sends `message` to the client now, if there is room; whether it was
    /// queued.
    fn notify(&self, message: &Message) -> bool;
    /// `call` on its way to `route` as this subscriber's own (its principal
    /// and affinity), for a request of `era`.
    fn routed(&self, call: Call, route: Route, exposed: Option<Arc<str>>, era: Era) -> Routed;
}

/// The address of a subscriber, for telling subscribers apart.
fn address(subscriber: &dyn Subscriber) -> *const () {
    std::ptr::from_ref(subscriber).cast::<()>()
}

/// One URI's subscribers and its upstream subscription.
#[derive(Debug)]
struct Entry {
    server: Arc<str>,
    sessions: Vec<Weak<dyn Subscriber>>,
    /// A modern owner's `subscriptions/listen` call; aborted when the entry
    /// goes away.
    upstream: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(task) = &self.upstream {
            task.abort();
        }
    }
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    // Held for one map operation at a time, never across an await.
    by_uri: Mutex<HashMap<String, Entry>>,
}

/// What [`Subscriptions::add`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// The first subscriber: subscribe upstream.
    First,
    /// Already subscribed upstream.
    Joined,
}

impl Subscriptions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_uri.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `session` as a subscriber of `uri`, owned by `server`.
    pub(crate) fn add(&self, uri: &str, server: &Arc<str>, session: &Arc<dyn Subscriber>) -> Added {
        let mut map = self.map();
        let entry = map.entry(uri.to_owned()).or_insert_with(|| Entry {
            server: server.clone(),
            sessions: Vec::new(),
            upstream: None,
        });
        entry.sessions.retain(|s| s.strong_count() > 0);
        let first = entry.sessions.is_empty() && entry.upstream.is_none();
        if !entry
            .sessions
            .iter()
            .any(|s| s.as_ptr().cast::<()>() == address(&**session))
        {
            entry.sessions.push(Arc::downgrade(session));
        }
        if first { Added::First } else { Added::Joined }
    }

    /// Keeps the upstream listen task of `uri` (ended with the entry).
    pub(crate) fn set_upstream(&self, uri: &str, task: tokio::task::JoinHandle<()>) {
        match self.map().get_mut(uri) {
            Some(entry) => entry.upstream = Some(task),
            None => task.abort(),
        }
    }

    /// Removes `session` from `uri`'s subscribers. Returns the owner if that
    /// was the last one (the entry is gone; a listen task is aborted).
    pub(crate) fn remove(&self, uri: &str, session: &dyn Subscriber) -> Option<Arc<str>> {
        let mut map = self.map();
        let entry = map.get_mut(uri)?;
        let gone = address(session);
        entry
            .sessions
            .retain(|s| s.strong_count() > 0 && s.as_ptr().cast::<()>() != gone);
        if entry.sessions.is_empty() {
            return map.remove(uri).map(|e| e.server.clone());
        }
        None
    }

    /// The live sessions subscribed to `uri` on `server`.
    pub(crate) fn subscribers(&self, server: &str, uri: &str) -> Vec<Arc<dyn Subscriber>> {
        let mut map = self.map();
        let Some(entry) = map.get_mut(uri).filter(|e| &*e.server == server) else {
            return Vec::new();
        };
        entry.sessions.retain(|s| s.strong_count() > 0);
        entry.sessions.iter().filter_map(Weak::upgrade).collect()
    }
}
