//! Who may use the admin API: whoever holds its token.
//!
//! - Every request must carry `Authorization: Bearer <token>`; the comparison
//!   takes the same time wherever the first wrong byte is. A missing or
//!   wrong token is a 401, and nothing of the request is acted on (its body
//!   is not even read).
//! - `GET /metrics` also takes `metrics.token`, a token that reads the
//!   Prometheus page and nothing else (ADR 0018).
//! - A request carrying `Origin` is refused (403): browsers send it, the CLI
//!   and scripts do not, and the API is not for web pages.

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use only1mcp_auth::audit::{Decision, Event, Kind};
use subtle::ConstantTimeEq;

use super::AdminState;
use super::dto::ErrorDto;

/// Whether `headers` carry exactly `token` as a bearer token.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    let given = value[scheme.len()..].trim_ascii();
    // `ct_eq` on slices of different lengths is false at once; the length of
    // the token is not the secret.
    bool::from(given.ct_eq(token.as_bytes()))
}

fn refuse(status: StatusCode, error: &str) -> Response {
    let mut res = (
        status,
        Json(ErrorDto {
            error: error.to_owned(),
            problems: Vec::new(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"only1mcp-admin\""),
        );
    }
    res
}

/// The middleware in front of every admin route.
pub(super) async fn check(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if headers.contains_key(header::ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: the admin API does not serve browsers (Origin is set)",
        );
    }
    let auditor = state.inner.gateway.auditor().cloned();
    let scraper = request.uri().path() == "/metrics"
        && request.method() == http::Method::GET
        && state
            .metrics_token()
            .is_some_and(|token| bearer_matches(headers, token));
    if !scraper && !bearer_matches(headers, state.token()) {
        tracing::warn!(path = %request.uri().path(), "Admin API request refused: missing or wrong token");
        if let Some(auditor) = auditor {
            auditor.record(admin_event(Kind::AuthFailure, &request, 401));
        }
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: missing or wrong bearer token",
        );
    }
    // Reads change nothing; every other request is an admin change,
    // recorded with its answer's status.
    let change = auditor
        .filter(|_| request.method() != axum::http::Method::GET)
        .map(|auditor| (auditor, admin_event(Kind::AdminChange, &request, 0)));
    let response = next.run(request).await;
    if let Some((auditor, mut event)) = change {
        event.code = Some(i64::from(response.status().as_u16()));
        event.decision = Some(if response.status().is_success() {
            Decision::Allow
        } else {
            Decision::Deny
        });
        auditor.record(event);
    }
    response
}

/// An audit record of an admin API request.
fn admin_event(kind: Kind, request: &Request, status: u16) -> Event {
    let mut event = Event::new(kind);
    event.transport = Some("admin");
    event.method = Some(request.method().to_string());
    event.target = Some(request.uri().path().to_owned());
    if status != 0 {
        event.code = Some(i64::from(status));
        event.decision = Some(Decision::Deny);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = "s3cret";
        assert!(bearer_matches(
            &headers(&[("authorization", "Bearer s3cret")]),
            token
        ));
        assert!(bearer_matches(
            &headers(&[("authorization", "bearer  s3cret ")]),
            token
        ));
        assert!(!bearer_matches(&headers(&[]), token));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bearer s3cre")]),
            token
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bearer s3cret2")]),
            token
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Basic s3cret")]),
            token
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "s3cret")]),
            token
        ));
    }
}
