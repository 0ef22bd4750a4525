//! `Host` and `Origin` validation: DNS-rebinding protection.
//!
//! A browser page on an attacker's site can make requests to
//! `http://127.0.0.1:port` through a hostname it controls; the `Host` header
//! then names the attacker's host. So when the gateway listens on loopback,
//! only loopback host names (and configured extras) are accepted, and a
//! present `Origin` must be a loopback origin or a configured one. A refusal
//! is a 403 with a JSON-RPC error body.
//!
//! Every name a request gives for the host it wants is checked: the `Host`
//! header and, over HTTP/2 (or in an absolute-form HTTP/1.1 target), the
//! authority of the request target. A request of HTTP/1.1 or later that
//! names no host at all, or that repeats `Host`, is malformed (RFC 9112
//! §3.2: 400); one that repeats `Origin` is refused (403): a second value
//! could otherwise pass unchecked.

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

/// What a request says about where it is going and where it comes from, as
/// [`Guard::refuse`] checks it. Values that are present but not visible
/// ASCII read as `""` (refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The first `Host` header.
    pub host: Option<&'a str>,
    /// The authority of the request target: HTTP/2's `:authority`, or an
    /// absolute-form HTTP/1.1 target's.
    pub authority: Option<&'a str>,
    /// The first `Origin` header.
    pub origin: Option<&'a str>,
    /// `Host` or `Origin` came more than once (its name).
    pub repeated: Option<&'static str>,
    /// Whether the request must name its host (HTTP/1.1 and later).
    pub host_required: bool,
}

impl<'a> Presented<'a> {
    /// What `request` presents.
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        let headers = request.headers();
        let repeated = [(header::HOST, "Host"), (header::ORIGIN, "Origin")]
            .into_iter()
            .find(|(name, _)| headers.get_all(name).iter().nth(1).is_some())
            .map(|(_, text)| text);
        let (host, origin) = host_and_origin(headers);
        Self {
            host,
            authority: request.uri().authority().map(http::uri::Authority::as_str),
            origin,
            repeated,
            host_required: request.version() >= http::Version::HTTP_11,
        }
    }
}

/// Why a request is refused: its status and message.
pub type Refused = (StatusCode, &'static str);

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
    pub fn refuse(&self, presented: &Presented<'_>) -> Option<Refused> {
        match presented.repeated {
            Some("Host") => {
                return Some((
                    StatusCode::BAD_REQUEST,
                    "Bad Request: more than one Host header",
                ));
            }
            Some(_) => {
                return Some((
                    StatusCode::FORBIDDEN,
                    "Forbidden: more than one Origin header",
                ));
            }
            None => {}
        }
        if presented.host_required && presented.host.is_none() && presented.authority.is_none() {
            return Some((
                StatusCode::BAD_REQUEST,
                "Bad Request: the request names no host (Host header)",
            ));
        }
        for host in [presented.host, presented.authority].into_iter().flatten() {
            if !self.host_allowed(host) {
                return Some((StatusCode::FORBIDDEN, "Forbidden: Host not allowed"));
            }
        }
        if let Some(origin) = presented.origin
            && !self.origin_allowed(origin)
        {
            return Some((StatusCode::FORBIDDEN, "Forbidden: Origin not allowed"));
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host);
        let known = is_loopback_name(name)
            || self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name));
        known || (!self.loopback && self.hosts.is_empty())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        let loopback = origin
            .split_once("://")
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
            })
            .is_some_and(|(_, rest)| is_loopback_name(strip_port(rest)));
        loopback || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

fn is_loopback_name(name: &str) -> bool {
    LOOPBACK_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The first `Host` and `Origin` values.
fn host_and_origin(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
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

/// The middleware: 403 (or 400) for a refused request.
pub(super) async fn check(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = refusal(&state, &Presented::of(&request)) {
        return refused;
    }
    next.run(request).await
}

/// The answer to a refused request, logged; `None` if it passes.
pub(super) fn refusal(state: &HttpState, presented: &Presented<'_>) -> Option<Response> {
    let (status, reason) = state.inner.guard.refuse(presented)?;
    tracing::warn!(
        host = ?presented.host,
        authority = ?presented.authority,
        origin = ?presented.origin,
        "{reason}"
    );
    Some(error_response(
        status,
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

    /// An HTTP/1.1 request's view.
    fn h1<'a>(host: Option<&'a str>, origin: Option<&'a str>) -> Presented<'a> {
        Presented {
            host,
            origin,
            host_required: true,
            ..Presented::default()
        }
    }

    fn refused(g: &Guard, presented: &Presented<'_>) -> Option<StatusCode> {
        g.refuse(presented).map(|(status, _)| status)
    }

    #[test]
    fn loopback_hosts_and_origins_pass() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        assert_eq!(g.refuse(&h1(Some("127.0.0.1:7331"), None)), None);
        assert_eq!(
            g.refuse(&h1(Some("localhost"), Some("http://localhost:3000"))),
            None
        );
        assert_eq!(
            g.refuse(&h1(Some("[::1]:7331"), Some("https://[::1]"))),
            None
        );
        // Names are not case-sensitive.
        assert_eq!(
            g.refuse(&h1(Some("LocalHost:7331"), Some("HTTP://LOCALHOST:3000/"))),
            None
        );
        assert!(g.refuse(&h1(Some("Evil.Example"), None)).is_some());
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        let forbidden = Some(StatusCode::FORBIDDEN);
        assert_eq!(refused(&g, &h1(Some("evil.example"), None)), forbidden);
        assert_eq!(
            refused(&g, &h1(Some("localhost.evil.example:7331"), None)),
            forbidden
        );
        assert_eq!(
            refused(&g, &h1(Some("localhost"), Some("http://evil.example"))),
            forbidden
        );
        assert_eq!(refused(&g, &h1(Some("localhost"), Some("null"))), forbidden);
    }

    /// HTTP/2's `:authority` is checked like `Host`, alone or beside it.
    #[test]
    fn the_request_targets_authority_is_checked_too() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        let h2 = |host, authority| Presented {
            host,
            authority,
            host_required: true,
            ..Presented::default()
        };
        assert_eq!(g.refuse(&h2(None, Some("127.0.0.1:7331"))), None);
        assert_eq!(
            refused(&g, &h2(None, Some("evil.example"))),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused(&g, &h2(Some("localhost"), Some("evil.example"))),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused(&g, &h2(Some("evil.example"), Some("localhost"))),
            Some(StatusCode::FORBIDDEN)
        );
    }

    /// A request of HTTP/1.1 or later must name its host once; `Origin`
    /// must not repeat. HTTP/1.0 may leave `Host` out.
    #[test]
    fn missing_and_repeated_hosts_and_origins_are_refused() {
        let g = guard(&[], &[], "127.0.0.1:7331");
        assert_eq!(refused(&g, &h1(None, None)), Some(StatusCode::BAD_REQUEST));
        let h10 = Presented::default();
        assert_eq!(g.refuse(&h10), None);
        let mut twice = h1(Some("localhost"), Some("http://localhost"));
        twice.repeated = Some("Host");
        assert_eq!(refused(&g, &twice), Some(StatusCode::BAD_REQUEST));
        twice.repeated = Some("Origin");
        assert_eq!(refused(&g, &twice), Some(StatusCode::FORBIDDEN));
        // Read from a header map: both repeats are seen.
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .append(header::HOST, "localhost".parse().unwrap());
        request
            .headers_mut()
            .append(header::ORIGIN, "http://localhost".parse().unwrap());
        request
            .headers_mut()
            .append(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(Presented::of(&request).repeated, Some("Origin"));
        request
            .headers_mut()
            .append(header::HOST, "evil.example".parse().unwrap());
        assert_eq!(Presented::of(&request).repeated, Some("Host"));
        // No Host: a request of HTTP/1.1 (the default) must name one.
        let bare = http::Request::new(());
        assert!(Presented::of(&bare).host_required);
        let mut old = http::Request::new(());
        *old.version_mut() = http::Version::HTTP_10;
        assert!(!Presented::of(&old).host_required);
    }

    #[test]
    fn configured_extras_pass() {
        let g = guard(
            &["https://app.example.com"],
            &["gw.internal"],
            "0.0.0.0:7331",
        );
        assert_eq!(
            g.refuse(&h1(
                Some("gw.internal:7331"),
                Some("https://app.example.com")
            )),
            None
        );
        assert_eq!(
            g.refuse(&h1(Some("GW.Internal"), Some("https://App.Example.com/"))),
            None
        );
        assert!(g.refuse(&h1(Some("other"), None)).is_some());
        // Not on loopback and no hosts configured: Host is not checked.
        let open = guard(&[], &[], "0.0.0.0:7331");
        assert_eq!(open.refuse(&h1(Some("anything"), None)), None);
    }
}
