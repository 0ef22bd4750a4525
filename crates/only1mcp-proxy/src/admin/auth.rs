//! Who may use the admin API.
//!
//! - With a token, every request must carry `Authorization: Bearer <token>`;
//!   the comparison takes the same time wherever the first wrong byte is.
//!   A missing or wrong token is a 401.
//! - Without one, the listener is bound to loopback only (see
//!   [`super::start`]), and the `Host` header must name a loopback host, so a
//!   web page cannot reach the API through DNS rebinding.
//! - Either way a request carrying `Origin` is refused (403): browsers send
//!   it, the CLI and scripts do not, and the API is not for web pages (a page
//!   could otherwise post to it with no preflight).

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
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

/// Whether `Host` names a loopback host (or is absent, as in HTTP/1.0).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let host = host.to_str().unwrap_or_default().to_ascii_lowercase();
    let name = if host.starts_with('[') {
        host.find(']').map_or(host.as_str(), |end| &host[..=end])
    } else {
        host.rsplit_once(':')
            .map_or(host.as_str(), |(name, _)| name)
    };
    matches!(name, "localhost" | "[::1]")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    match state.token() {
        Some(token) => {
            if !bearer_matches(headers, token) {
                tracing::warn!(path = %request.uri().path(), "Admin API request refused: missing or wrong token");
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: missing or wrong bearer token",
                );
            }
        }
        None => {
            if !loopback_host(headers) {
                return refuse(StatusCode::FORBIDDEN, "Forbidden: Host not allowed");
            }
        }
    }
    next.run(request).await
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

    #[test]
    fn hosts_must_be_loopback_without_a_token() {
        for host in [
            "127.0.0.1:7332",
            "localhost:7332",
            "[::1]:7332",
            "localhost",
            "127.1.2.3",
        ] {
            assert!(loopback_host(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "evil.example:7332",
            "10.0.0.1:7332",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(&headers(&[("host", host)])), "{host}");
        }
    }
}
