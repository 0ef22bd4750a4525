//! What the load goes to, and the loopback rule.
//!
//! A load generator is a weapon if pointed at someone else's server, so
//! network targets must be on this machine (127.0.0.0/8, `::1`,
//! `localhost`) unless `--allow-remote` says otherwise. The check runs on
//! the URL's host and again on every address it resolves to.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};

use http::Uri;

/// Where the benchmark sends its requests.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Streamable HTTP: POSTs to this URL.
    Http(Endpoint),
    /// WebSocket (subprotocol `mcp`), one JSON-RPC message per text frame.
    Ws(Endpoint),
    /// A command spawned per connection, speaking MCP on its stdin/stdout.
    Stdio {
        /// The program.
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
}

/// A parsed network endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The URL as given.
    pub(crate) url: String,
    /// Host name or address, without IPv6 brackets.
    pub(crate) host: String,
    /// Port (the scheme's default if absent).
    pub(crate) port: u16,
    /// Path and query, at least `/`.
    pub(crate) path: String,
    /// The `Host` header value (`host[:port]` as written in the URL).
    pub(crate) authority: String,
}

/// Why a target was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    /// The URL could not be parsed or has the wrong scheme.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host is not a loopback address.
    #[error(
        "{host} is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a server on another machine, if it is yours"
    )]
    NotLoopback {
        /// The host.
        host: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

impl Endpoint {
    /// Parses `url`, accepting the given schemes (`(scheme, default port)`).
    pub(crate) fn parse(url: &str, schemes: &[(&str, u16)]) -> Result<Self, TargetError> {
        let bad = |reason: &str| TargetError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        let Some(&(_, default_port)) = schemes.iter().find(|(s, _)| *s == scheme) else {
            let wanted: Vec<&str> = schemes.iter().map(|(s, _)| *s).collect();
            return Err(bad(&format!("the scheme must be {}", wanted.join(" or "))));
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            url: url.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(default_port),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
            authority: authority.as_str().to_owned(),
        })
    }

    /// Refuses a host that is not loopback, unless `allow_remote`.
    pub(crate) fn check_loopback(&self, allow_remote: bool) -> Result<(), TargetError> {
        if allow_remote || is_loopback_name(&self.host) {
            return Ok(());
        }
        Err(TargetError::NotLoopback {
            host: self.host.clone(),
        })
    }

    /// Resolves the endpoint; every address must be loopback unless
    /// `allow_remote` (a name like `localhost` could point elsewhere).
    pub(crate) async fn resolve(&self, allow_remote: bool) -> Result<SocketAddr, TargetError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| TargetError::Resolve {
                host: self.host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        if !allow_remote && let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(TargetError::NotLoopback {
                host: remote.ip().to_string(),
            });
        }
        addrs.first().copied().ok_or_else(|| TargetError::Resolve {
            host: self.host.clone(),
            reason: "no address".to_owned(),
        })
    }
}

/// Whether a URL host is loopback: `localhost` (and `*.localhost`), an
/// address in 127.0.0.0/8, or `::1`.
pub(crate) fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Target {
    /// A short description for the report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Http(endpoint) | Self::Ws(endpoint) => endpoint.url.clone(),
            Self::Stdio { program, args } => {
                let mut out = program.to_string_lossy().into_owned();
                for arg in args {
                    out.push(' ');
                    out.push_str(&arg.to_string_lossy());
                }
                out
            }
        }
    }

    /// The transport's name: `http`, `ws` or `stdio`.
    pub(crate) fn transport(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Ws(_) => "ws",
            Self::Stdio { .. } => "stdio",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "localhost",
            "LOCALHOST.",
            "a.localhost",
        ] {
            assert!(is_loopback_name(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "192.168.1.1",
            "example.com",
            "0.0.0.0",
            "::",
            "8.8.8.8",
        ] {
            assert!(!is_loopback_name(host), "{host}");
        }
    }

    #[test]
    fn endpoints_parse() {
        let http = [("http", 80)];
        let e = Endpoint::parse("http://127.0.0.1:7331/mcp", &http).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 7331, "/mcp")
        );
        let e = Endpoint::parse("http://[::1]/mcp?x=1", &http).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 80, "/mcp?x=1")
        );
        assert_eq!(e.authority, "[::1]");
        assert!(Endpoint::parse("ws://127.0.0.1/ws", &http).is_err());
        let e = Endpoint::parse("http://10.1.2.3:80/mcp", &http).unwrap();
        assert!(e.check_loopback(false).is_err());
        assert!(e.check_loopback(true).is_ok());
    }
}
