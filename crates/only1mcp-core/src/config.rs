//! Config data: what a user writes in `only1mcp.yaml` / `.toml`, and its
//! validation.
//!
//! Loading (files, env overrides, the `mcpServers` import) happens in
//! `only1mcp-proxy` with figment; this module only defines the shapes and the
//! rules. Every struct refuses unknown keys, and [`Config::validate`] reports
//! every problem at once, each naming the field it is about.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::naming::Namespace;

pub mod audit;
pub mod auth;
pub mod context;
pub mod limits;
pub mod metrics;
pub mod rate_limits;
pub mod replicas;
pub mod traces;

pub use audit::AuditConfig;
pub use auth::{AuthConfig, OAuthConfig};
pub use context::{ContextConfig, ContextMode, ContextOverride, ProfileConfig, ToolsetRule};
pub use limits::LimitsConfig;
pub use metrics::MetricsConfig;
pub use rate_limits::RateLimitsConfig;
pub use replicas::{BalanceConfig, BreakerConfig, HealthConfig};
pub use traces::{OtlpProtocol, TracesConfig};

/// The whole gateway config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Config {
    /// How tool and prompt names are namespaced.
    #[serde(default)]
    pub naming: NamingConfig,
    /// Defaults that servers may override.
    #[serde(default)]
    pub defaults: DefaultsConfig,
    /// Security settings.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Log output.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// The HTTP face (Streamable HTTP, legacy HTTP+SSE, WebSocket).
    #[serde(default)]
    pub http: HttpConfig,
    /// The admin API (its own listener, off the MCP port).
    #[serde(default)]
    pub admin: AdminConfig,
    /// What one client may make the gateway hold (batches, sessions,
    /// requests in flight, queued answers).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How much of the tool catalog clients see (the context diet).
    #[serde(default)]
    pub context: ContextConfig,
    /// Prometheus metrics (on by default; the page is on the admin
    /// listener).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces (off by default).
    #[serde(default)]
    pub traces: TracesConfig,
    /// The tamper-evident audit trail (off unless a file or stdout is set).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Token buckets and concurrency bounds on calls (none by default).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Who may use the HTTP faces, and what each caller may see and call.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The backends, keyed by server id. Collisions are resolved in key order.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerConfig>,
    /// A `conf.d`-style folder (relative to the config file): every
    /// `*.yaml`, `*.yml`, `*.toml` and `*.json` file in it holds more
    /// `servers` (or `mcpServers`) entries, merged in file-name order. A
    /// server id defined twice is an error. Watched like the file itself.
    #[serde(default)]
    pub include_dir: Option<std::path::PathBuf>,
    /// Servers in the `mcpServers` format of Claude Desktop and Cursor, so an
    /// existing list can be used as it is. [`Config::absorb_mcp_servers`]
    /// moves them into `servers`.
    #[serde(
        default,
        rename = "mcpServers",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub mcp_servers: BTreeMap<String, McpServerEntry>,
}

/// One file of the [`Config::include_dir`] folder: servers only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    /// Servers in the gateway's own format.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerConfig>,
    /// Servers in the `mcpServers` format.
    #[serde(default, rename = "mcpServers")]
    pub mcp_servers: BTreeMap<String, McpServerEntry>,
}

/// One entry of a Claude Desktop / Cursor `mcpServers` block.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpServerEntry {
    /// The program.
    #[serde(default)]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    /// The server's URL, for network servers.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP headers for network servers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The transport type: `stdio`, `http`/`streamable-http`/`streamableHttp`,
    /// `sse` or `websocket`/`ws`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Cursor's and others' switch to turn an entry off.
    #[serde(default)]
    pub disabled: bool,
}

/// How exposed names are built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NamingConfig {
    /// Between the server id and the backend's name (default `__`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// When to prefix names with the server id.
    #[serde(default)]
    pub prefix: PrefixMode,
}

impl Default for NamingConfig {
    fn default() -> Self {
        Self {
            separator: default_separator(),
            prefix: PrefixMode::default(),
        }
    }
}

fn default_separator() -> String {
    Namespace::DEFAULT_SEPARATOR.to_owned()
}

/// When names get the server prefix.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PrefixMode {
    /// Every name is `server__name`.
    #[default]
    Always,
    /// Names stay bare where unique; colliding names get the prefix.
    OnConflict,
}

/// Defaults for every server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DefaultsConfig {
    /// Time a backend has to answer one request (default 30 s).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time a backend has to answer the era probe and handshake (default 10 s).
    #[serde(default = "default_startup_timeout", with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Items per page of the merged lists the gateway serves; 0 (the
    /// default) serves each list whole in one page.
    #[serde(default)]
    pub page_size: usize,
    /// The longest line a backend puts in the log, in bytes (default 16 KiB,
    /// 256 B to 64 KiB): each line of a stdio backend's stderr, each
    /// `notifications/message`. A longer one is logged cut, with a marker;
    /// the rest of a stderr line is read and discarded, never buffered.
    #[serde(default = "default_max_log_line")]
    pub max_log_line: usize,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        Self {
            request_timeout: default_request_timeout(),
            startup_timeout: default_startup_timeout(),
            page_size: 0,
            max_log_line: default_max_log_line(),
        }
    }
}

/// The bounds of `defaults.max_log_line`: room for a useful line, and few
/// enough bytes that the lines kept for the admin API (a ring per server, a
/// queue for followers) stay small.
pub const MAX_LOG_LINE_RANGE: std::ops::RangeInclusive<usize> = 256..=64 * 1024;

fn default_max_log_line() -> usize {
    16 * 1024
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_startup_timeout() -> Duration {
    Duration::from_secs(10)
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("allowed_commands", &self.allowed_commands)
            .field("state_key", &self.state_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Security settings.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SecurityConfig {
    /// When non-empty, the only programs a stdio server may run. Each entry
    /// and each server's `command` are resolved to the absolute path of the
    /// file they name (a bare name through `PATH`, symlinks followed) and the
    /// paths are compared, so `/tmp/x/node` is not `node`. Checked when a
    /// config is loaded, reloaded or edited through the admin API.
    #[serde(default)]
    pub allowed_commands: Vec<String>,
    /// The key that signs the `requestState` the gateway mints when it holds
    /// a legacy backend's call for a modern client (at least 32 characters;
    /// `${VAR}` is not expanded here, use `ONLY1MCP_SECURITY__STATE_KEY`).
    /// Unset: a random key drawn at start. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_key: Option<String>,
}

/// Log output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LoggingConfig {
    /// A `tracing` filter (`info`, `only1mcp=debug`); `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
    /// Human-readable or JSON lines.
    #[serde(default)]
    pub format: LogFormat,
    /// Write logs to this file instead of stderr.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
    /// One `info` line per client request (target `only1mcp::access`):
    /// method, target (tool or prompt name, resource URI), outcome,
    /// duration, request id, and the principal's subject when the client
    /// authenticated; never an argument or a secret. Default `false`.
    #[serde(default)]
    pub access_log: bool,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The gateway's HTTP face.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpConfig {
    /// Where to listen (default `127.0.0.1:7331`). Binding anything but a
    /// loopback address exposes the gateway to the network.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// Extra `Origin` values accepted besides the loopback ones
    /// (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Extra `Host` names accepted besides the loopback ones (DNS-rebinding
    /// protection).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The largest request body in bytes (default 4 MiB).
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// How long a client connection may take to send its next request
    /// whole, idle time included (default 30 s, at most 24 h). A connection that sends
    /// none in that time (a slow or stalled client, or an idle kept-alive
    /// connection) is closed; a request already read is answered however
    /// long its backend takes. On hyper's side (HTTP/2, TLS, and HTTP/1.1
    /// other than a plain `POST /mcp` with a `Content-Length`), the head
    /// has this long and then the body this long again (408 past it); an
    /// HTTP/2 connection with no stream open for this long is closed, and so
    /// is a TLS connection whose handshake takes longer. It is also how long
    /// a client may take nothing of what the gateway sends it (its answers,
    /// its event stream) before it is disconnected.
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// The most client connections open at once (default 512, 1 to
    /// 1,000,000). A connection beyond it is closed as soon as it is
    /// accepted, before anything is read, and logged (at most one line a
    /// second). Each one costs a file descriptor, and the usual soft limit
    /// is 1024 per process.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The most connections open at once from one peer address (default
    /// 256, 1 to `max_connections`); beyond it, as for `max_connections`.
    /// Behind a reverse proxy every connection comes from the proxy's
    /// address: raise it to `max_connections` there.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
    /// How long a stop (SIGTERM, Ctrl-C) waits for open connections to
    /// finish the requests they have (default 10 s, at most 1 h; 0 closes
    /// them at once). Event streams are ended at once; what is left after
    /// this time is closed, so no client can hold the stop up longer.
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// TLS (HTTPS); off unless both files are given.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body: default_max_body(),
            read_timeout: default_read_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_peer: default_max_connections_per_peer(),
            shutdown_timeout: default_shutdown_timeout(),
            tls: None,
        }
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 7331))
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The longest `http.read_timeout`: a day (the clock a deadline is added to
/// must not overflow).
const MAX_READ_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

fn default_max_connections() -> usize {
    512
}

fn default_max_connections_per_peer() -> usize {
    256
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The most `http.max_connections` may be.
const MAX_CONNECTIONS: usize = 1_000_000;
/// The longest `http.shutdown_timeout`.
const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The admin API: list, add, remove, enable and disable servers, reload,
/// read their logs and test them, on a listener of its own.
///
/// Read at start-up only: a reload does not move the admin listener or change
/// its token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AdminConfig {
    /// Whether `only1mcp start` serves the admin API. Unset (the default):
    /// on when the gateway serves HTTP, off under `--stdio` (an IDE's
    /// gateway has no admin listener unless asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Where it listens (default `127.0.0.1:7332`). With a generated token
    /// (no `token` set) it binds loopback only, whatever address is given
    /// here.
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
    /// The bearer token every request must carry
    /// (`Authorization: Bearer …`, at least 16 characters). The environment
    /// variable `ONLY1MCP_ADMIN_TOKEN` overrides it. Without either, the
    /// gateway draws a random token at start and writes it to a file only
    /// its user can read, where the CLI finds it (ADR 0011). The API is
    /// never served without a token. Never logged.
    #[serde(default)]
    pub token: Option<String>,
}

impl AdminConfig {
    /// The shortest token `admin.token` accepts.
    pub const MIN_TOKEN_LEN: usize = 16;

    /// Whether the admin API is served, for a gateway that serves stdio
    /// (`stdio`) or HTTP.
    pub fn serves(&self, stdio: bool) -> bool {
        self.enabled.unwrap_or(!stdio)
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            listen: default_admin_listen(),
            token: None,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 7332))
}

/// Certificate and key for HTTPS (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TlsConfig {
    /// The certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// The private key (PEM).
    pub key: std::path::PathBuf,
}

/// How the gateway reaches a backend given by `url`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UrlTransport {
    /// Streamable HTTP (2025-03-26 and later; both eras). The default for
    /// `http(s)://` URLs.
    #[default]
    StreamableHttp,
    /// The deprecated HTTP+SSE transport of 2024-11-05 (`GET /sse`).
    Sse,
    /// One JSON-RPC message per WebSocket text frame (subprotocol `mcp`).
    /// The default for `ws(s)://` URLs.
    Websocket,
}

/// One backend MCP server: a child process speaking stdio (`command`) or a
/// server reached over the network (`url`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServerConfig {
    /// The program to run: a path, or a name looked up in `PATH`. Never run
    /// through a shell. Exactly one of `command` and `url` is set.
    #[serde(default)]
    pub command: String,
    /// The server's URL (`http(s)://…/mcp`, `http://…/sse`, `ws(s)://…`).
    #[serde(default)]
    pub url: Option<String>,
    /// How to reach `url` (default: by its scheme).
    #[serde(default)]
    pub transport: Option<UrlTransport>,
    /// Extra HTTP headers sent to `url` (`${VAR}` in values is expanded), for
    /// example an API key. Never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A PEM file of CA certificates to trust for `https://`/`wss://` besides
    /// the public roots (a private or self-signed backend).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Its arguments, passed as they are (`${VAR}` is expanded).
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables (`${VAR}` in values is expanded from the
    /// gateway's environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    /// Whether to start this server (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whether the gateway is ready (`GET /readyz` answers 200) only while
    /// this server is (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Override the global prefix mode: `false` keeps names bare, `true`
    /// always prefixes.
    #[serde(default)]
    pub prefix: Option<bool>,
    /// Override the default request timeout.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// Which tools to expose.
    #[serde(default)]
    pub tools: ToolFilterConfig,
    /// What happens to this server's own requests (`sampling/createMessage`,
    /// `elicitation/create`, `roots/list`) when it speaks a legacy revision
    /// (ADR 0006): `relay` (default) declares those client capabilities and
    /// relays each request to the client whose call caused it; `refuse`
    /// declares none.
    #[serde(default)]
    pub client_requests: ClientRequests,
    /// The roots this server gets for a `roots/list` that no client request
    /// caused (one sent at start-up, say), or whose client declared no roots.
    /// Unset: such a request gets an error, never another client's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<RootConfig>>,
    /// How a reload replaces this server when its config changes
    /// (ADR 0014): `make-before-break` (default) starts the new one beside
    /// the old, which serves until the new one is ready; `break-before-make`
    /// stops the old one first (a server holding an exclusive resource), and
    /// calls in the gap wait for the new one, bounded by the request
    /// timeout.
    #[serde(default)]
    pub swap: SwapMode,
    /// How many copies of `command` to run as one server (default 1, at
    /// most 64); calls are spread over them (`balance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Further URLs of the same server, each a replica besides `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// How calls are spread over the replicas (default `p2c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<BalanceConfig>,
    /// Each replica's circuit breaker (on with its defaults for a server
    /// with more than one replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// Active health checks of each replica (on with its defaults for a
    /// server with more than one replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
}

/// See [`ServerConfig::swap`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwapMode {
    /// Start the new backend beside the old one; swap when it is ready; the
    /// old one drains and stops. A replacement that fails to start leaves
    /// the old one serving.
    #[default]
    MakeBeforeBreak,
    /// Drain and stop the old backend, then start the new one; calls in the
    /// gap wait for it.
    BreakBeforeMake,
}

/// See [`ServerConfig::client_requests`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientRequests {
    /// Declare sampling, elicitation and roots; relay each request to the
    /// client whose call caused it.
    #[default]
    Relay,
    /// Declare no client capabilities; refuse such requests.
    Refuse,
}

/// One root of [`ServerConfig::roots`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The root's URI (`file:///home/me/project`).
    pub uri: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn yes() -> bool {
    true
}

/// Allow and deny lists of tool names (glob patterns: `*`, `?`, `[ab]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ToolFilterConfig {
    /// When non-empty, only tools matching one of these are exposed.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tools matching one of these are hidden (deny wins over allow).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// One problem found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, as a dotted path (`servers.fs.command`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem of a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config:")?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Moves `mcpServers` entries into `servers`. An id present in both, or an
    /// entry that is not a stdio server, is a problem naming the field.
    pub fn absorb_mcp_servers(&mut self) -> Result<(), Invalid> {
        let mut problems = Vec::new();
        for (id, entry) in std::mem::take(&mut self.mcp_servers) {
            let field = format!("mcpServers.{id}");
            if self.servers.contains_key(&id) {
                problems.push(Problem {
                    field,
                    message: format!("duplicate server id: servers.{id} is defined too"),
                });
                continue;
            }
            let transport = match entry.kind.as_deref() {
                None | Some("stdio") => None,
                Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => {
                    Some(UrlTransport::StreamableHttp)
                }
                Some("sse") => Some(UrlTransport::Sse),
                Some("websocket" | "ws") => Some(UrlTransport::Websocket),
                Some(other) => {
                    problems.push(Problem {
                        field: format!("{field}.type"),
                        message: format!(
                            "unknown transport {other:?} (expected stdio, http, sse or websocket)"
                        ),
                    });
                    continue;
                }
            };
            self.servers.insert(
                id,
                ServerConfig {
                    command: entry.command,
                    args: entry.args,
                    env: entry.env,
                    cwd: entry.cwd,
                    url: entry.url,
                    transport: transport.filter(|_| entry.kind.is_some()),
                    headers: entry.headers,
                    enabled: !entry.disabled,
                    ..ServerConfig::default()
                },
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Invalid(problems))
        }
    }

    /// The transport to use for a `url` server.
    pub fn url_transport(server: &ServerConfig) -> Option<UrlTransport> {
        let url = server.url.as_deref()?;
        Some(
            server
                .transport
                .unwrap_or(if url.starts_with("ws://") || url.starts_with("wss://") {
                    UrlTransport::Websocket
                } else {
                    UrlTransport::StreamableHttp
                }),
        )
    }

    /// Checks the rules serde cannot: separators, server ids, commands,
    /// patterns, the command allowlist. Reports every problem.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| {
            problems.push(Problem { field, message });
        };
        let namespace = match Namespace::new(&self.naming.separator) {
            Ok(ns) => Some(ns),
            Err(e) => {
                problem("naming.separator".to_owned(), e.to_string());
                None
            }
        };
        if self.defaults.request_timeout.is_zero() {
            problem(
                "defaults.request_timeout".to_owned(),
                "must be greater than zero".to_owned(),
            );
        }
        if !MAX_LOG_LINE_RANGE.contains(&self.defaults.max_log_line) {
            problem(
                "defaults.max_log_line".to_owned(),
                format!(
                    "must be between {} and {} bytes",
                    MAX_LOG_LINE_RANGE.start(),
                    MAX_LOG_LINE_RANGE.end()
                ),
            );
        }
        if self.http.read_timeout.is_zero() || self.http.read_timeout > MAX_READ_TIMEOUT {
            problem(
                "http.read_timeout".to_owned(),
                "must be greater than zero and at most 24h".to_owned(),
            );
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.http.max_connections) {
            problem(
                "http.max_connections".to_owned(),
                format!("must be between 1 and {MAX_CONNECTIONS}"),
            );
        }
        if !(1..=self.http.max_connections.max(1)).contains(&self.http.max_connections_per_peer) {
            problem(
                "http.max_connections_per_peer".to_owned(),
                "must be between 1 and http.max_connections".to_owned(),
            );
        }
        if self.http.shutdown_timeout > MAX_SHUTDOWN_TIMEOUT {
            problem(
                "http.shutdown_timeout".to_owned(),
                "must be at most 1h".to_owned(),
            );
        }
        if self
            .security
            .state_key
            .as_deref()
            .is_some_and(|k| k.chars().count() < 32)
        {
            problem(
                "security.state_key".to_owned(),
                "must be at least 32 characters".to_owned(),
            );
        }
        if self
            .admin
            .token
            .as_deref()
            .is_some_and(|t| t.trim().chars().count() < AdminConfig::MIN_TOKEN_LEN)
        {
            problem(
                "admin.token".to_owned(),
                format!(
                    "must be at least {} characters (remove it to have one generated)",
                    AdminConfig::MIN_TOKEN_LEN
                ),
            );
        }
        for (field, message) in self.metrics.problems() {
            problem(field, message);
        }
        if self.admin.enabled != Some(false)
            && self.admin.listen.port() != 0
            && self.admin.listen == self.http.listen
        {
            problem(
                "admin.listen".to_owned(),
                format!(
                    "{} is http.listen too; the admin API needs its own port",
                    self.admin.listen
                ),
            );
        }
        for (id, server) in &self.servers {
            let at = |field: &str| format!("servers.{id}.{field}");
            if let Some(ns) = &namespace
                && let Err(e) = ns.check_server_id(id)
            {
                problem(format!("servers.{id}"), e.to_string());
            }
            if let Some(url) = &server.url {
                if !server.command.is_empty() {
                    problem(at("url"), "set either command or url, not both".to_owned());
                }
                let scheme = url.split("://").next().unwrap_or_default();
                if !url.contains("://") || !matches!(scheme, "http" | "https" | "ws" | "wss") {
                    problem(
                        at("url"),
                        format!("{url:?} must start with http://, https://, ws:// or wss://"),
                    );
                }
            } else if server.transport.is_some() || !server.headers.is_empty() {
                problem(
                    at("transport"),
                    "transport and headers need a url".to_owned(),
                );
            } else if server.command.trim().is_empty() {
                problem(at("command"), "must not be empty (or set url)".to_owned());
            }
            if server.request_timeout.is_some_and(|t| t.is_zero()) {
                problem(
                    at("request_timeout"),
                    "must be greater than zero".to_owned(),
                );
            }
            for (list, patterns) in [("allow", &server.tools.allow), ("deny", &server.tools.deny)] {
                for (idx, pattern) in patterns.iter().enumerate() {
                    if let Err(e) = globset::Glob::new(pattern) {
                        problem(at(&format!("tools.{list}[{idx}]")), e.kind().to_string());
                    }
                }
            }
            for (field, message) in replicas::problems(server) {
                problem(at(field), message);
            }
            for key in server.env.keys() {
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    problem(at("env"), format!("{key:?} is not a valid variable name"));
                }
            }
        }
        let ids: Vec<&str> = self.servers.keys().map(String::as_str).collect();
        for (field, message) in self.context.problems(&ids) {
            problem(field, message);
        }
        for (field, message) in self.traces.problems() {
            problem(field, message);
        }
        for (field, message) in self.limits.problems() {
            problem(field, message);
        }
        for (field, message) in self.audit.problems() {
            problem(field, message);
        }
        for (field, message) in self.rate_limits.problems(&ids) {
            problem(field, message);
        }
        let profiles = self.context.resolved_profiles();
        let profiles: Vec<&str> = profiles.keys().map(String::as_str).collect();
        for (field, message) in self.auth.problems(&profiles) {
            problem(field, message);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Invalid(problems))
        }
    }

    /// The request timeout of one server.
    pub fn request_timeout(&self, server: &ServerConfig) -> Duration {
        server
            .request_timeout
            .unwrap_or(self.defaults.request_timeout)
    }
}

/// An environment variable that `${VAR}` expansion needed but did not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingVar(pub String);

/// Expands `${VAR}` from `lookup`; `$$` is a literal `$`. Any other `$` is
/// kept as it is.
pub fn expand_env(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVar> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = body.find('}')
        {
            let name = &body[..end];
            out.push_str(&lookup(name).ok_or_else(|| MissingVar(name.to_owned()))?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
