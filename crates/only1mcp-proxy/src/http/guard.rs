//! `Host` and `Origin` validation: DNS-rebinding protection.
//!
//! A browser page on an attacker's site can make requests to
//! `http://127.0.0.1:port` through a hostname it controls; the `Host` header
//! then names the attacker's host. So when the gateway listens on loopback,
//! only loopback host names (and configured extras) are accepted, and a
//! present `Origin` must be a loopback origin or a configured one. A refusal
//! is a 403 with a JSON-RPC error body.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use only1mcp_core::config::HttpConfig;
use only1mcp_core::jsonrpc;

use super::{HttpState, error_response};

/// The accepted hosts and origins.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Whether the listener is on a loopback address (then `Host` is checked
    /// even without configured hosts).
    loopback: bool,
    hosts: Vec<String>,
    origins: Vec<String>,
}

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

impl Guard {
    /// A guard for a listener bound to `local`.
    pub fn new(config: &HttpConfig, local: SocketAddr) -> Self {
        Self {
            loopback: local.ip().is_loopback(),
            hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            origins: config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Why the request is refused, if it is. Names compare without regard
    /// to ASCII case, and without copying the headers.
    pub fn refuse(&self, headers: &HeaderMap) -> Option<&'static str> {
        let (host, origin) = host_and_origin(headers);
        self.refuse_values(host, origin)
    }

    /// [`Guard::refuse`] on the values of `Host` and `Origin` (a present
    /// value that is not visible ASCII reads as `""`).
    pub fn refuse_values(&self, host: Option<&str>, origin: Option<&str>) -> Option<&'static str> {
        if let Some(host) = host {
            let name = strip_port(host);
            let known = is_loopback_name(name)
                || self
                    .hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name));
            if !known && (self.loopback || !self.hosts.is_empty()) {
                return Some("Forbidden: Host not allowed");
            }
        }
        if let Some(origin) = origin {
            let origin = origin.trim_end_matches('/');
            let loopback = origin
                .split_once("://")
                .filter(|(scheme, _)| {
                    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
                })
                .is_some_and(|(_, rest)| is_loopback_name(strip_port(rest)));
            if !loopback && !self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Some("Forbidden: Origin not allowed");
            }
        }
        None
    }
}

fn is_loopback_name(name: &str) -> bool {
    LOOPBACK_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The `Host` and `Origin` values as [`Guard::refuse_values`] takes them.
pub(super) fn host_and_origin(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    (text(header::HOST), text(header::ORIGIN))
}

/// `host:port` → `host`, keeping IPv6 brackets (`[::1]:80` → `[::1]`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The middleware: 403 for a refused Host or Origin.
pub(super) async fn check(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let (host, origin) = host_and_origin(request.headers());
    if let Some(refused) = refusal(&state, host, origin) {
        return refused;
    }
    next.run(request).await
}

/// The 403 for a refused Host or Origin, logged; `None` if both pass.
pub(super) fn refusal(
    state: &HttpState,
    host: Option<&str>,
    origin: Option<&str>,
) -> Option<Response> {
    let reason = state.inner.guard.refuse_values(host, origin)?;
    tracing::warn!(host = ?host, origin = ?origin, "{reason}");
    Some(error_response(
        StatusCode::FORBIDDEN,
        jsonrpc::code::INVALID_REQUEST,
        reason,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(origins: &[&str], hosts: &[&str], local: &str) -> Guard {
        let config = HttpConfig {
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allowed_hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            ..HttpConfig::default()
        };
        Guard::new(&config, local.parse().unwrap())
    }

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.insert(header::HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, origin.parse().unwrap());
        }
        map
    }

    #[test]
    fn loopback_hosts_and_origins_pass() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        assert_eq!(g.refuse(&headers(Some("127.0.0.1:7331"), None)), None);
        assert_eq!(
            g.refuse(&headers(Some("localhost"), Some("http://localhost:3000"))),
            None
        );
        assert_eq!(
            g.refuse(&headers(Some("[::1]:7331"), Some("https://[::1]"))),
            None
        );
        // Names are not case-sensitive.
        assert_eq!(
            g.refuse(&headers(
                Some("LocalHost:7331"),
                Some("HTTP://LOCALHOST:3000/")
            )),
            None
        );
        assert!(g.refuse(&headers(Some("Evil.Example"), None)).is_some());
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        assert!(g.refuse(&headers(Some("evil.example"), None)).is_some());
        assert!(
            g.refuse(&headers(Some("localhost.evil.example:7331"), None))
                .is_some()
        );
        assert!(
            g.refuse(&headers(Some("localhost"), Some("http://evil.example")))
                .is_some()
        );
        assert!(
            g.refuse(&headers(Some("localhost"), Some("null")))
                .is_some()
        );
    }

    #[test]
    fn configured_extras_pass() {
        let g = guard(
            &["https://app.example.com"],
            &["gw.internal"],
            "0.0.0.0:7331",
        );
        assert_eq!(
            g.refuse(&headers(
                Some("gw.internal:7331"),
                Some("https://app.example.com")
            )),
            None
        );
        assert_eq!(
            g.refuse(&headers(
                Some("GW.Internal"),
                Some("https://App.Example.com/")
            )),
            None
        );
        assert!(g.refuse(&headers(Some("other"), None)).is_some());
        // Not on loopback and no hosts configured: Host is not checked.
        let open = guard(&[], &[], "0.0.0.0:7331");
        assert_eq!(open.refuse(&headers(Some("anything"), None)), None);
    }
}
