//! Probes for orchestrators, and the Prometheus page when asked for on this
//! listener.
//!
//! - `GET /healthz`: 200 `{"status":"ok"}` while the process serves.
//! - `GET /readyz`: 200 `{"status":"ready"}` when the config is loaded and
//!   every server marked `required` is ready; otherwise 503 with
//!   `{"status":"not ready","reason":…,"servers":{id: state}}` naming each
//!   required server that is not, and 503 once the face is shutting down.
//!
//! Both are outside the Host/Origin guard: a kubelet probes with the pod's
//! address as `Host`, and neither says more than which required servers
//! are not ready. The metrics page (`metrics.path`) is behind the guard and,
//! when `metrics.token` is set, that bearer token.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::HttpState;
use crate::backend::Status;

/// A probe's answer.
#[derive(Debug, Serialize)]
pub(super) struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    servers: BTreeMap<String, String>,
}

/// `GET /healthz`.
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        reason: None,
        servers: BTreeMap::new(),
    })
}

/// `GET /readyz`.
pub(super) async fn readyz(State(state): State<HttpState>) -> Response {
    let not_ready = |reason: String, servers| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "not ready",
                reason: Some(reason),
                servers,
            }),
        )
            .into_response()
    };
    if state.inner.shutdown.is_cancelled() {
        return not_ready("shutting down".to_owned(), BTreeMap::new());
    }
    let gateway = &state.inner.gateway;
    let config = gateway.config();
    let mut waiting = BTreeMap::new();
    for (id, server) in config.servers.iter().filter(|(_, s)| s.required) {
        let state = match (server.enabled, gateway.backend(id)) {
            (false, _) => "disabled".to_owned(),
            (true, None) => "not started".to_owned(),
            (true, Some(backend)) => match backend.status() {
                Status::Ready => continue,
                Status::Starting => "starting".to_owned(),
                Status::Restarting => "restarting".to_owned(),
                Status::Failed(reason) => format!("failed: {reason}"),
                Status::Stopped => "stopped".to_owned(),
            },
        };
        waiting.insert(id.clone(), state);
    }
    if waiting.is_empty() {
        return Json(Health {
            status: "ready",
            reason: None,
            servers: BTreeMap::new(),
        })
        .into_response();
    }
    let names: Vec<&str> = waiting.keys().map(String::as_str).collect();
    not_ready(
        format!("required servers not ready: {}", names.join(", ")),
        waiting,
    )
}

/// Whether `headers` carry `token` as a bearer token (compared in constant
/// time).
fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    bool::from(value[scheme.len()..].trim_ascii().ct_eq(token.as_bytes()))
}

/// `GET <metrics.path>`: the Prometheus page.
pub(super) async fn metrics(State(state): State<HttpState>, request: Request) -> Response {
    let gateway = &state.inner.gateway;
    let config = gateway.config();
    if let Some(token) = config.metrics.token.as_deref()
        && !bearer_is(request.headers(), token.trim())
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"only1mcp-metrics\"",
            )],
            "missing or wrong bearer token\n",
        )
            .into_response();
    }
    match gateway.metrics_page() {
        Some(page) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            page,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}
