//! How to reach one network backend: the one type every network client
//! ([`crate::streamable_client`], [`crate::sse_client`],
//! [`crate::ws_client`]) and [`crate::network::connect`] share.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;

/// The connect timeout when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach one network backend.
#[derive(Clone)]
pub struct NetworkSpec {
    /// The server id, used in logs and errors.
    pub server: Arc<str>,
    /// The URL: `http(s)://…` for Streamable HTTP and HTTP+SSE, `ws(s)://…`
    /// for WebSocket.
    pub url: String,
    /// The transport to use.
    pub transport: UrlTransport,
    /// Headers sent on every HTTP request and on the WebSocket handshake,
    /// values already expanded. Never logged.
    pub headers: Vec<(String, String)>,
    /// How long establishing a TCP (and TLS) connection may take.
    pub connect_timeout: Duration,
    /// A PEM file of extra CA certificates to trust besides the webpki roots
    /// (private or self-signed deployments).
    pub extra_ca: Option<PathBuf>,
}

impl NetworkSpec {
    /// A spec with no headers, the default connect timeout and no extra CA.
    pub fn new(
        server: impl Into<Arc<str>>,
        url: impl Into<String>,
        transport: UrlTransport,
    ) -> Self {
        Self {
            server: server.into(),
            url: url.into(),
            transport,
            headers: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_ca: None,
        }
    }

    /// The URL, parsed and checked against the transport's schemes.
    pub(crate) fn parsed_url(&self) -> Result<reqwest::Url, Error> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| self.unavailable(format!("invalid URL: {e}")))?;
        let schemes: &[&str] = match self.transport {
            UrlTransport::StreamableHttp | UrlTransport::Sse => &["http", "https"],
            UrlTransport::Websocket => &["ws", "wss"],
        };
        if !schemes.contains(&url.scheme()) {
            return Err(self.unavailable(format!(
                "URL scheme {:?} does not fit the {:?} transport (expected {})",
                url.scheme(),
                self.transport,
                schemes.join(" or ")
            )));
        }
        Ok(url)
    }

    /// The TLS client configuration for this backend.
    pub(crate) fn tls(&self) -> Result<rustls::ClientConfig, Error> {
        crate::tls::install_provider();
        crate::tls::client_config(self.extra_ca.as_deref()).map_err(|e| self.unavailable(e))
    }

    /// An [`Error::UpstreamUnavailable`] for this backend.
    pub(crate) fn unavailable(&self, reason: impl Into<String>) -> Error {
        Error::UpstreamUnavailable {
            server: self.server.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Debug for NetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials: show the names only.
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("NetworkSpec")
            .field("server", &self.server)
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("headers", &header_names)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_ca", &self.extra_ca)
            .finish()
    }
}
