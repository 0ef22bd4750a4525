//! The deprecated HTTP+SSE transport of 2024-11-05: `GET /sse` opens a
//! session stream whose first event names the URL to POST messages to
//! (`/messages?sessionId=…`); every answer and notification then arrives on
//! that stream as an `event: message`. The session ends when the stream does.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use only1mcp_core::jsonrpc;
use only1mcp_transport::downstream::{OnFull, Outbound};

use super::{HttpState, error_response, sse_body};
use crate::session::ClientSession;

/// Removes the session when its stream ends (the client went away), and
/// frees its place among `limits.max_sessions`.
struct Forget {
    state: HttpState,
    id: String,
    _slot: super::SessionSlot,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.state.sse_sessions().remove(&self.id);
        tracing::info!(session = %self.id, "SSE session closed");
    }
}

/// `GET /sse`.
pub(super) async fn open(
    State(state): State<HttpState>,
    axum::Extension(caller): axum::Extension<super::authn::Caller>,
) -> Response {
    let Some(slot) = state.session_slot() else {
        let limit = state.inner.gateway.config().limits.max_sessions;
        let error = only1mcp_core::Error::TooManySessions { limit }.to_error_object();
        return error_response(StatusCode::SERVICE_UNAVAILABLE, error.code, &error.message);
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    // A client that does not read its stream is cut off once this much
    // waits for it.
    let (outbound, mut rx) = Outbound::channel(state.inner.max_queued_bytes, OnFull::Disconnect);
    let session = ClientSession::with_principal(
        state.inner.gateway.clone(),
        Some(outbound),
        only1mcp_core::config::ContextConfig::DEFAULT_PROFILE.into(),
        caller.0,
    );
    session.set_origin(|| only1mcp_core::pipeline::Origin {
        transport: only1mcp_core::pipeline::Transport::Sse,
        peer: None,
        session: Some(id.as_str().into()),
    });
    session.forward_list_changes();
    state.sse_sessions().insert(id.clone(), session);
    tracing::info!(session = %id, "SSE session opened");
    let shutdown = state.inner.shutdown.clone();
    let endpoint = format!("/messages?sessionId={id}");
    let forget = Forget {
        state,
        id,
        _slot: slot,
    };
    let stream = async_stream::stream! {
        let _forget = forget;
        yield sse_body::event(None, Some("endpoint"), endpoint.as_bytes());
        let mut keep_alive = tokio::time::interval(sse_body::KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = keep_alive.tick() => yield sse_body::ping(),
                message = rx.recv() => match message {
                    Some(bytes) => yield sse_body::message(&bytes),
                    None => break,
                },
            }
        }
    };
    sse_body::response(stream)
}

/// `POST /messages?sessionId=…`: 202, the answer goes to the stream.
pub(super) async fn message(
    State(state): State<HttpState>,
    axum::Extension(caller): axum::Extension<super::authn::Caller>,
    Query(query): Query<HashMap<String, String>>,
    request: axum::extract::Request,
) -> Response {
    let id = query
        .get("sessionId")
        .map(String::as_str)
        .unwrap_or_default();
    let session = state
        .sse_sessions()
        .get(id)
        .cloned()
        .filter(|session| caller.owns(session));
    // A session whose client was cut off (it read nothing of its stream) is
    // gone, whether or not its stream has ended yet.
    let session = session.filter(|session| {
        let cut_off = session.is_disconnected();
        if cut_off {
            state.sse_sessions().remove(id);
        }
        !cut_off
    });
    let Some(session) = session else {
        return error_response(
            StatusCode::NOT_FOUND,
            jsonrpc::code::INVALID_REQUEST,
            "Session not found",
        );
    };
    let body = match super::streamable::read_body(&state, request.into_body()).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if let Err(invalid) = jsonrpc::parse(&body) {
        let body = jsonrpc::Message::Response(invalid.into_response()).to_vec();
        return super::json_body(StatusCode::BAD_REQUEST, body);
    }
    session.handle_frame(&body).await;
    StatusCode::ACCEPTED.into_response()
}
