//! The management commands: `add`, `remove`, `status`, `logs`, `test` and
//! `reload`, each a client of a running gateway's admin API
//! (`only1mcp_proxy::admin`). `test` also works without a gateway, from the
//! config file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use only1mcp_core::config::{ServerConfig, UrlTransport};
use only1mcp_proxy::admin::dto::{
    ChangeDto, ErrorDto, LogLineDto, LogsDto, ReloadDto, ServerList, ServerStatus, TestDto,
};
use only1mcp_proxy::load;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::output;

/// Where the admin API answers unless told otherwise.
const DEFAULT_ADMIN: &str = "http://127.0.0.1:7332";
/// Exit code for a config that cannot be used (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

/// How to reach the running gateway's admin API.
#[derive(Debug, Clone, Args)]
pub(crate) struct AdminArgs {
    /// The admin API's URL [default: http://127.0.0.1:7332].
    #[arg(long, env = "ONLY1MCP_ADMIN_URL", value_name = "URL")]
    admin: Option<String>,
    /// Its bearer token (prefer the environment variable: arguments are
    /// visible to other users of the machine). Without it, the token a
    /// local gateway generated is read from its file (only its user can).
    #[arg(long, env = "ONLY1MCP_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// `only1mcp add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The server id (letters, digits, `_` and `-`).
    name: String,
    /// A network server's URL, instead of a command.
    #[arg(long, conflicts_with = "command")]
    url: Option<String>,
    /// How to reach --url (default: by its scheme).
    #[arg(long, requires = "url", value_parser = ["streamable-http", "sse", "websocket"])]
    transport: Option<String>,
    /// An environment variable for the server, `KEY=VALUE` (repeatable;
    /// `${VAR}` in the value is expanded by the gateway).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// An HTTP header for --url, `NAME=VALUE` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", requires = "url")]
    headers: Vec<String>,
    /// The server's working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Also write the server to the gateway's config file.
    #[arg(long)]
    persist: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "url")]
    command: Vec<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `only1mcp remove`.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// The server id.
    name: String,
    /// Also remove it from the gateway's config file.
    #[arg(long)]
    persist: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `only1mcp status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

/// `only1mcp logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Only this server's lines.
    #[arg(long, short)]
    server: Option<String>,
    /// Keep printing new lines as they come (until Ctrl-C).
    #[arg(long, short)]
    follow: bool,
    /// How many recent lines to print first.
    #[arg(long, short = 'n', default_value_t = 100)]
    lines: usize,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `only1mcp test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// The server id.
    name: String,
    /// Test the server as this config file defines it, without a gateway.
    /// Without --config and --admin, the running gateway is asked, and the
    /// default config file is used if none answers.
    #[arg(long, short, env = "ONLY1MCP_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `only1mcp reload`.
#[derive(Debug, Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

/// Why a call to the admin API failed.
#[derive(Debug)]
enum Failure {
    /// Nothing answers at the URL.
    Unreachable(String),
    /// The API answered with an error.
    Refused(reqwest::StatusCode, ErrorDto),
    /// Anything else (a body that is not what was expected, …).
    Other(String),
}

/// A client of one admin API.
struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    fn new(args: &AdminArgs, timeout: Option<Duration>) -> Result<Self, Failure> {
        // reqwest is built without a TLS provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let http = builder.build().map_err(|e| Failure::Other(e.to_string()))?;
        let base = args
            .admin
            .as_deref()
            .unwrap_or(DEFAULT_ADMIN)
            .trim_end_matches('/')
            .to_owned();
        let token = args
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| generated_token(&base));
        Ok(Self { base, token, http })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token.trim()),
            None => request,
        };
        let res = request.send().await.map_err(|e| {
            if e.is_connect() {
                Failure::Unreachable(self.base.clone())
            } else {
                Failure::Other(format!("{}: {e}", self.base))
            }
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body = res.bytes().await.unwrap_or_default();
        let error = serde_json::from_slice(&body).unwrap_or_else(|_| ErrorDto {
            error: format!("{status}: {}", String::from_utf8_lossy(&body)),
            problems: Vec::new(),
        });
        Err(Failure::Refused(status, error))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request)
            .await?
            .json()
            .await
            .map_err(|e| Failure::Other(format!("unexpected answer from {}: {e}", self.base)))
    }
}

/// The token a gateway on this machine generated for its admin API at
/// `base`, read from the file only its user can read; `None` when `base` is
/// not a loopback address or there is no readable file.
fn generated_token(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    let host = url.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return None;
    }
    let port = url.port_or_known_default()?;
    only1mcp_proxy::admin::secret::read(port)
        .ok()
        .map(|(token, _)| token)
        .filter(|t| !t.is_empty())
}

/// Reports a failure and returns the exit code for it.
fn report(failure: Failure) -> ExitCode {
    match failure {
        Failure::Unreachable(url) => {
            output::error(&format!(
                "no gateway answers at {url}: is `only1mcp start` running? (pass --admin URL \
                 or set ONLY1MCP_ADMIN_URL for another address)"
            ));
            ExitCode::FAILURE
        }
        Failure::Refused(status, error) if status == reqwest::StatusCode::UNAUTHORIZED => {
            output::error(&format!(
                "{}: pass the admin token with --token or ONLY1MCP_ADMIN_TOKEN (a local \
                 gateway without admin.token writes the one it generated to a file only \
                 the user who started it can read)",
                error.error
            ));
            ExitCode::FAILURE
        }
        Failure::Refused(status, error) => {
            output::error(&error.error);
            for problem in &error.problems {
                output::note(&format!("  - {problem}"));
            }
            if status == reqwest::StatusCode::BAD_REQUEST {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
        Failure::Other(message) => {
            output::error(&message);
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &impl Serialize) {
    output::json(&serde_json::to_value(value).unwrap_or_default());
}

/// Generous: a change waits for the servers it starts.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Splits `KEY=VALUE` pairs.
fn pairs(
    items: &[String],
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{what} {item:?} is not KEY=VALUE"))
        })
        .collect()
}

/// The server entry `add` sends.
fn entry(args: &AddArgs) -> Result<ServerConfig, String> {
    let mut server = ServerConfig {
        enabled: true,
        env: pairs(&args.env, "--env")?,
        headers: pairs(&args.headers, "--header")?,
        cwd: args.cwd.clone(),
        url: args.url.clone(),
        ..ServerConfig::default()
    };
    server.transport = match args.transport.as_deref() {
        Some("sse") => Some(UrlTransport::Sse),
        Some("websocket") => Some(UrlTransport::Websocket),
        Some(_) => Some(UrlTransport::StreamableHttp),
        None => None,
    };
    if let Some((command, rest)) = args.command.split_first() {
        server.command.clone_from(command);
        server.args = rest.to_vec();
    }
    Ok(server)
}

fn persist_query(persist: bool) -> &'static str {
    if persist { "?persist=true" } else { "" }
}

/// `only1mcp add NAME -- COMMAND ARGS…` / `only1mcp add NAME --url URL`.
pub(crate) async fn add(args: AddArgs) -> ExitCode {
    let server = match entry(&args) {
        Ok(server) => server,
        Err(e) => {
            output::error(&e);
            return ExitCode::from(2);
        }
    };
    let mut body = serde_json::to_value(&server).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert("id".to_owned(), args.name.clone().into());
    }
    let res = async {
        let client = Client::new(&args.admin, Some(CHANGE_TIMEOUT))?;
        let path = format!("/servers{}", persist_query(args.persist));
        let change: ChangeDto = client
            .call(reqwest::Method::POST, &path, Some(&body))
            .await?;
        let list: ServerList = client.call(reqwest::Method::GET, "/servers", None).await?;
        Ok((change, list))
    };
    match res.await {
        Ok((change, list)) => {
            if args.admin.json {
                print_json(&change);
            } else {
                let row = list.servers.iter().find(|s| s.id == args.name);
                let state = row.map_or_else(String::new, |s| match &s.reason {
                    Some(reason) => format!(" ({}: {reason})", s.status),
                    None => format!(" ({}, {} tools)", s.status, s.tools),
                });
                output::line(&format!("Added {}{state}.", args.name));
                print_persisted(&change);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => report(failure),
    }
}

fn print_persisted(change: &ChangeDto) {
    if let Some(path) = &change.persisted {
        output::line(&format!("Wrote {path}."));
    }
}

/// `only1mcp remove NAME`.
pub(crate) async fn remove(args: RemoveArgs) -> ExitCode {
    let res = async {
        let client = Client::new(&args.admin, Some(CHANGE_TIMEOUT))?;
        let path = format!("/servers/{}{}", args.name, persist_query(args.persist));
        client
            .call::<ChangeDto>(reqwest::Method::DELETE, &path, None)
            .await
    };
    match res.await {
        Ok(change) => {
            if args.admin.json {
                print_json(&change);
            } else {
                output::line(&format!("Removed {}.", args.name));
                print_persisted(&change);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => report(failure),
    }
}

/// A latency for people: `0.42 ms`, `12 ms`, `1.3 s`.
fn latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// The columns of `only1mcp status`: RATE, P50, P99 and ERR% are the last
/// minute's, from the metrics' histograms (P50 falls back on the recent
/// calls' median when metrics are off); ERRORS counts since the server
/// started.
const STATUS_COLUMNS: [&str; 9] = [
    "SERVER",
    "TRANSPORT",
    "STATUS",
    "TOOLS",
    "RATE",
    "P50",
    "P99",
    "ERR%",
    "ERRORS",
];

fn status_rows(servers: &[ServerStatus]) -> Vec<Vec<String>> {
    let none = || "-".to_owned();
    servers
        .iter()
        .map(|s| {
            let recent = s.recent.as_ref();
            vec![
                s.id.clone(),
                s.transport.clone(),
                s.status.clone(),
                s.tools.to_string(),
                recent.map_or_else(none, |r| format!("{:.2}/s", r.rate)),
                recent
                    .map_or(s.p50_ms, |r| r.p50_ms)
                    .map_or_else(none, latency),
                recent.and_then(|r| r.p99_ms).map_or_else(none, latency),
                recent
                    .and_then(|r| r.error_rate)
                    .map_or_else(none, |e| format!("{:.1} %", e * 100.0)),
                s.errors.to_string(),
            ]
        })
        .collect()
}

/// `only1mcp status`.
pub(crate) async fn status(args: StatusArgs) -> ExitCode {
    let res = async {
        let client = Client::new(&args.admin, Some(Duration::from_secs(30)))?;
        client
            .call::<ServerList>(reqwest::Method::GET, "/servers", None)
            .await
    };
    match res.await {
        Ok(list) => {
            if args.admin.json {
                print_json(&list);
                return ExitCode::SUCCESS;
            }
            output::line(&output::table(&STATUS_COLUMNS, &status_rows(&list.servers)));
            for profile in &list.context {
                output::note(&format!(
                    "context profile {} ({}{}): {} tools, {} tokens per listing (full: {}); {} listings served, {} tokens saved",
                    profile.profile,
                    profile.mode,
                    if profile.mode == profile.effective_mode {
                        String::new()
                    } else {
                        format!(" → {}", profile.effective_mode)
                    },
                    profile.tools_listed,
                    profile.tokens_listed,
                    profile.tokens_full,
                    profile.lists_served,
                    profile.tokens_saved,
                ));
            }
            for server in &list.servers {
                for replica in &server.replicas {
                    output::note(&format!(
                        "{} replica {}: {} (breaker {}, ejected {} times), {} in flight, EWMA {}",
                        server.id,
                        replica.replica,
                        replica.state,
                        replica.breaker,
                        replica.ejections,
                        replica.in_flight,
                        latency(replica.ewma_ms),
                    ));
                }
                if !server.replicas_differ.is_empty() {
                    output::note(&format!(
                        "{}: replicas differ; left out of the catalog: {}",
                        server.id,
                        server.replicas_differ.join(", ")
                    ));
                }
                if let Some(reason) = &server.replace_failed {
                    output::note(&format!(
                        "{}: runs on its previous config: {reason}",
                        server.id
                    ));
                }
                if let Some(reason) = &server.reason {
                    output::note(&format!("{}: {reason}", server.id));
                } else if let Some(last) = &server.last_error {
                    output::note(&format!(
                        "{}: last error at {}: {}",
                        server.id, last.at, last.message
                    ));
                }
            }
            ExitCode::SUCCESS
        }
        Err(failure) => report(failure),
    }
}

fn log_line(line: &LogLineDto) -> String {
    format!(
        "{} {:<5} {}: {}",
        line.at, line.level, line.server, line.message
    )
}

/// `only1mcp logs [--server NAME] [--follow]`.
pub(crate) async fn logs(args: LogsArgs) -> ExitCode {
    let timeout = (!args.follow).then_some(Duration::from_secs(30));
    let client = match Client::new(&args.admin, timeout) {
        Ok(client) => client,
        Err(failure) => return report(failure),
    };
    let path = match &args.server {
        Some(server) => format!("/servers/{server}/logs"),
        None => "/logs".to_owned(),
    };
    let query = format!("{path}?lines={}&follow={}", args.lines, args.follow);
    if !args.follow {
        return match client
            .call::<LogsDto>(reqwest::Method::GET, &query, None)
            .await
        {
            Ok(logs) if args.admin.json => {
                print_json(&logs);
                ExitCode::SUCCESS
            }
            Ok(logs) => {
                for line in &logs.lines {
                    output::line(&log_line(line));
                }
                ExitCode::SUCCESS
            }
            Err(failure) => report(failure),
        };
    }
    let request = client.http.get(format!("{}{query}", client.base));
    let res = match client.send(request).await {
        Ok(res) => res,
        Err(failure) => return report(failure),
    };
    let mut events = eventsource_stream::Eventsource::eventsource(res.bytes_stream());
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            _ = &mut stop => return ExitCode::SUCCESS,
            event = events.next() => event,
        };
        match event {
            Some(Ok(event)) if event.event == "log" => {
                let Ok(line) = serde_json::from_str::<LogLineDto>(&event.data) else {
                    continue;
                };
                if args.admin.json {
                    output::line(&serde_json::to_string(&line).unwrap_or_default());
                } else {
                    output::line(&log_line(&line));
                }
            }
            Some(Ok(event)) if event.event == "lagged" => {
                output::note(&format!("({} lines missed)", event.data));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                output::error(&format!("the log stream broke: {e}"));
                return ExitCode::FAILURE;
            }
            None => return ExitCode::SUCCESS,
        }
    }
}

/// `only1mcp test NAME`: through the running gateway, or offline from the
/// config file.
pub(crate) async fn test(args: TestArgs) -> ExitCode {
    let online = args.admin.admin.is_some() || args.config.is_none();
    if online {
        let res = async {
            let client = Client::new(&args.admin, Some(CHANGE_TIMEOUT))?;
            let path = format!("/servers/{}/test", args.name);
            client
                .call::<TestDto>(reqwest::Method::POST, &path, None)
                .await
        };
        match res.await {
            Ok(test) => return print_test(&test, args.admin.json),
            // No --admin given and nobody at the default: test offline.
            Err(Failure::Unreachable(url)) if args.admin.admin.is_none() => {
                output::note(&format!(
                    "No gateway answers at {url}; testing from the config file."
                ));
            }
            Err(failure) => return report(failure),
        }
    }
    let (config, origin) = match load::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            output::error(&e.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let Some(server) = config.servers.get(&args.name) else {
        output::error(&format!("no server {:?} in {origin}", args.name));
        return ExitCode::FAILURE;
    };
    // The server's own stderr would drown the result; RUST_LOG still wins.
    let mut logging = config.logging.clone();
    logging.level = Some("warn".to_owned());
    let _ = only1mcp_proxy::logging::init(&logging);
    let res = only1mcp_proxy::gateway::test_server(&args.name, server, &config).await;
    let transport = only1mcp_proxy::admin::transport_name(server);
    print_test(&TestDto::new(&args.name, transport, res), args.admin.json)
}

fn print_test(test: &TestDto, json: bool) -> ExitCode {
    let code = if test.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        print_json(test);
        return code;
    }
    match &test.failure {
        Some(failure) => output::line(&format!(
            "{}: FAILED ({}): {}",
            test.server, test.transport, failure.error
        )),
        None => {
            let era = test
                .era
                .map(|era| format!("{era:?}").to_lowercase())
                .unwrap_or_default();
            let mut about = format!(
                "{}, {era} {}",
                test.transport,
                test.protocol_version.as_deref().unwrap_or("?")
            );
            if let Some(info) = &test.server_info {
                about.push_str(&format!(", {} {}", info.name, info.version));
            }
            output::line(&format!("{}: ok ({about})", test.server));
        }
    }
    let rows: Vec<Vec<String>> = test
        .timings_ms
        .iter()
        .map(|(step, ms)| vec![step.clone(), latency(*ms)])
        .collect();
    output::line(&output::table(&["STEP", "TIME"], &rows));
    if !test.tools.is_empty() {
        let rows: Vec<Vec<String>> = test
            .tools
            .iter()
            .map(|tool| {
                vec![
                    tool.name.clone(),
                    if tool.exposed { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        output::line(&output::table(&["TOOL", "EXPOSED"], &rows));
    }
    code
}

/// `only1mcp reload`.
pub(crate) async fn reload(args: ReloadArgs) -> ExitCode {
    let res = async {
        let client = Client::new(&args.admin, Some(CHANGE_TIMEOUT))?;
        client
            .call::<ReloadDto>(reqwest::Method::POST, "/reload", None)
            .await
    };
    match res.await {
        Ok(report) if args.admin.json => {
            print_json(&report);
            ExitCode::SUCCESS
        }
        Ok(report) => {
            let join = |ids: &[String]| {
                if ids.is_empty() {
                    "-".to_owned()
                } else {
                    ids.join(", ")
                }
            };
            let mut rows = vec![
                vec!["kept".to_owned(), join(&report.kept)],
                vec!["started".to_owned(), join(&report.started)],
                vec!["stopped".to_owned(), join(&report.stopped)],
                vec!["failed".to_owned(), join(&report.failed)],
            ];
            // Changed servers whose replacement failed to start: they serve
            // on with their previous config.
            if !report.kept_previous.is_empty() {
                rows.push(vec![
                    "kept previous".to_owned(),
                    join(&report.kept_previous),
                ]);
            }
            output::line("Reloaded.");
            output::line(&output::table(&["CHANGE", "SERVERS"], &rows));
            ExitCode::SUCCESS
        }
        Err(failure) => report(failure),
    }
}
