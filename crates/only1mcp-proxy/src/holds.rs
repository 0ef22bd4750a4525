//! Calls held for a modern (2026-07-28) client's retry, when a legacy
//! backend asks for input (ADR 0006): the store and its signed
//! `requestState`s. `session::hold` drives and resumes them.
//!
//! The legacy backend sends a real request (`sampling/createMessage`, …) and
//! waits for its answer; the modern client expects an `input_required`
//! result and retries. So the gateway *holds* the backend call: it answers
//! the client `input_required` with the backend's requests as
//! `inputRequests` and its own `requestState`, keeps the call (still running
//! on the backend) here, and when the retry brings `inputResponses`, hands
//! each answer to the backend and goes on waiting for the result, which may
//! ask again.
//!
//! The `requestState` is `only1mcp1.` + base64url(id ‖ HMAC-SHA256(id ‖
//! binding)), the binding naming the server, method and tool, so a state
//! cannot be forged, guessed, or replayed on another tool; it is good once.
//! A held call nobody resumes is dropped after the request timeout, which
//! cancels it on the backend.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{self, ErrorObject, Outcome};
use only1mcp_core::mcp::Era;
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use tokio::sync::{mpsc, oneshot};

use crate::backend::relay::{CallerGuard, Pending};

const ID_LEN: usize = 16;

/// A backend call in flight, owned (so it outlives the HTTP request that
/// started it).
pub(crate) type BackendCall = Pin<Box<dyn Future<Output = Result<(Era, Outcome), Error>> + Send>>;

/// A held call and what it waits for.
pub(crate) struct Held {
    pub(crate) call: BackendCall,
    /// The backend's requests to the client, from the relay.
    pub(crate) inputs: mpsc::Receiver<Pending>,
    /// Requests sent to the client as `inputRequests`, by key.
    pub(crate) pending: Vec<(String, oneshot::Sender<Outcome>)>,
    pub(crate) next_key: usize,
    /// Keeps the client registered as the caller while the call lives.
    pub(crate) _caller: CallerGuard,
    /// What the state is bound to.
    pub(crate) binding: String,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("binding", &self.binding)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// The held calls of a gateway.
#[derive(Debug)]
pub(crate) struct Holds {
    key: hmac::Key,
    rng: SystemRandom,
    calls: Mutex<HashMap<[u8; ID_LEN], Held>>,
}

impl Holds {
    /// What marks a `requestState` the gateway minted.
    pub(crate) const PREFIX: &'static str = "only1mcp1.";

    /// Holds whose states are signed with `secret`, or with a key drawn at
    /// random (states then die with the process, as the calls do).
    pub(crate) fn new(secret: Option<&[u8]>) -> Arc<Self> {
        let rng = SystemRandom::new();
        let key = match secret {
            Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret),
            // The system RNG failing leaves nothing sensible to do.
            None => hmac::Key::generate(hmac::HMAC_SHA256, &rng)
                .expect("the system random number generator works"),
        };
        Arc::new(Self {
            key,
            rng,
            calls: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a `requestState` claims to be the gateway's.
    pub(crate) fn is_ours(state: &str) -> bool {
        state.starts_with(Self::PREFIX)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; ID_LEN], Held>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the MAC covers: the id, then the binding.
    fn signed_input(id: &[u8], binding: &str) -> Vec<u8> {
        [id, binding.as_bytes()].concat()
    }

    /// Keeps `held` for at most `timeout`; returns its `requestState`.
    pub(crate) fn put(
        self: &Arc<Self>,
        held: Held,
        timeout: Duration,
    ) -> Result<String, ErrorObject> {
        let mut id = [0_u8; ID_LEN];
        self.rng
            .fill(&mut id)
            .map_err(|_| internal("no randomness for a request state"))?;
        let mut token = id.to_vec();
        let tag = hmac::sign(&self.key, &Self::signed_input(&id, &held.binding));
        token.extend_from_slice(tag.as_ref());
        self.calls().insert(id, held);
        let holds = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // Dropping the call cancels it on the backend.
            if let Some(holds) = holds.upgrade()
                && holds.calls().remove(&id).is_some()
            {
                tracing::info!("A held call expired: the client never retried it");
            }
        });
        Ok(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(token)))
    }

    /// The held call a `requestState` names, taken out (a state is good once).
    pub(crate) fn take(&self, state: &str, binding: &str) -> Result<Held, ErrorObject> {
        let invalid = || {
            ErrorObject::new(
                jsonrpc::code::INVALID_PARAMS,
                "requestState is not one this gateway issued for this call",
            )
        };
        let bytes = state
            .strip_prefix(Self::PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|bytes| bytes.len() > ID_LEN)
            .ok_or_else(invalid)?;
        let (id, tag) = bytes.split_at(ID_LEN);
        hmac::verify(&self.key, &Self::signed_input(id, binding), tag).map_err(|_| invalid())?;
        let id: [u8; ID_LEN] = id.try_into().map_err(|_| invalid())?;
        self.calls().remove(&id).ok_or_else(|| {
            ErrorObject::new(
                jsonrpc::code::INVALID_PARAMS,
                "requestState has expired or was already used",
            )
        })
    }
}

fn internal(message: &str) -> ErrorObject {
    ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, message)
}
