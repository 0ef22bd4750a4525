//! Admission on the HTTP face: every request to `/mcp`, `/mcp/<profile>`,
//! `/sse`, `/messages` and `/ws` is admitted by the gateway's
//! `only1mcp_auth::Admission` (when `auth` configures one) before its body
//! is read, and carries the principal it was admitted as ([`Caller`]) to the
//! session it opens or uses. A session belongs to the principal that opened
//! it: another principal's request naming it is answered as for an unknown
//! session. The RFC 9728 metadata routes need no token.
//!
//! Without `auth`, admission costs one atomic load per request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use only1mcp_core::config::ContextConfig;
use only1mcp_core::jsonrpc;
use only1mcp_core::pipeline::Principal;

use super::{HttpState, error_response};
use crate::session::ClientSession;

/// Where the RFC 9728 Protected Resource Metadata is served.
pub(super) const METADATA_ROUTE: &str = only1mcp_auth::authn::METADATA_PATH;

/// Who a request comes from: `None` when the face admits without checking
/// (no `auth`).
#[derive(Debug, Clone, Default)]
pub(super) struct Caller(pub(super) Option<Arc<Principal>>);

impl Caller {
    /// Whether `session` is this caller's: opened by the same principal
    /// (same subject and issuer), or both anonymous.
    pub(super) fn owns(&self, session: &ClientSession) -> bool {
        match (self.0.as_deref(), session.principal().map(Arc::as_ref)) {
            (None, None) => true,
            (Some(a), Some(b)) => a.subject == b.subject && a.issuer == b.issuer,
            _ => false,
        }
    }
}

/// Admits a request to `profile`'s endpoint with this `Authorization`
/// value: the caller, or the refusal to answer with (401/403 and its
/// `WWW-Authenticate` challenge).
pub(super) async fn admit(
    state: &HttpState,
    authorization: Option<&str>,
    profile: &str,
) -> Result<Caller, Response> {
    let admission = {
        let current = state.inner.gateway.admission();
        match current.as_ref() {
            None => return Ok(Caller(None)),
            Some(admission) => admission.clone(),
        }
    };
    match admission.admit(authorization, profile).await {
        Ok(principal) => Ok(Caller(Some(principal))),
        Err(refusal) => {
            tracing::info!(
                status = refusal.status,
                profile,
                reason = %refusal.message,
                "Request refused by admission"
            );
            let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut response =
                error_response(status, jsonrpc::code::INVALID_REQUEST, &refusal.message);
            if let Some(challenge) = refusal
                .challenge
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            Err(response)
        }
    }
}

/// The middleware of the router's MCP routes: admits each request and puts
/// its [`Caller`] in the request's extensions.
pub(super) async fn check(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let profile = request
        .uri()
        .path()
        .strip_prefix("/mcp/")
        .unwrap_or(ContextConfig::DEFAULT_PROFILE)
        .to_owned();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match admit(&state, authorization, &profile).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused,
    }
}

/// `GET /.well-known/oauth-protected-resource[/<resource path>]`: the RFC
/// 9728 metadata of `/mcp` or of `/mcp/<profile>` (404 when OAuth is not
/// configured or the path names no endpoint of the gateway).
pub(super) async fn metadata(State(state): State<HttpState>, request: Request) -> Response {
    let suffix = request
        .uri()
        .path()
        .strip_prefix(METADATA_ROUTE)
        .unwrap_or_default();
    let found = state
        .inner
        .gateway
        .admission()
        .as_ref()
        .and_then(|admission| admission.metadata(suffix));
    let Some((_, document)) =
        found.filter(|(profile, _)| state.inner.gateway.views().has_profile(profile))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = super::json_body(StatusCode::OK, document);
    // Browser-based clients read it from another origin.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
