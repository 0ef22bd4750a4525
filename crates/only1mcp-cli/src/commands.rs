//! The subcommands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use only1mcp_core::config::ContextConfig;
use only1mcp_core::mcp::{self, ListKind};
use only1mcp_proxy::load::{self, LoadError, Origin};
use only1mcp_proxy::{Gateway, logging};

use crate::output;

mod audit;
mod doctor;
mod import;
mod manage;
mod tokens;

/// Only1MCP: one MCP endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(name = "only1mcp", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: start every configured server and serve their merged
    /// tools, prompts and resources as one MCP server.
    ///
    /// By default it listens for MCP over HTTP (Streamable HTTP at /mcp,
    /// HTTP+SSE at /sse, WebSocket at /ws) on http.listen
    /// (127.0.0.1:7331). With --stdio it speaks MCP on stdin/stdout instead,
    /// as an IDE launches it.
    ///
    /// With no --config, uses ./only1mcp.yaml, ./only1mcp.yml or
    /// ./only1mcp.toml if present, else the same names in the user's config
    /// directory (~/.config/only1mcp on Linux, ~/Library/Application
    /// Support/only1mcp on macOS, %APPDATA%\only1mcp on Windows), else a
    /// built-in config of two example servers. Logs go to stderr.
    Start {
        /// The config file (.yaml, .yml, .toml, or .json with mcpServers).
        #[arg(long, short, env = "ONLY1MCP_CONFIG")]
        config: Option<PathBuf>,
        /// Speak MCP on stdin/stdout (for IDEs) instead of HTTP.
        #[arg(long)]
        stdio: bool,
        /// Listen on this address instead of http.listen (e.g. 127.0.0.1:0
        /// for any free port; the bound address is logged).
        #[arg(long, conflicts_with = "stdio")]
        listen: Option<std::net::SocketAddr>,
        /// The context profile served on stdio and at /mcp (default:
        /// "default"; every profile is also served at /mcp/<name>).
        #[arg(long)]
        profile: Option<String>,
        /// Serve the admin API on this address instead of admin.listen,
        /// even if it is off (admin.enabled: false, or --stdio without
        /// admin.enabled: true), e.g. 127.0.0.1:0; the bound address is
        /// logged. Its token is admin.token, or one generated and written
        /// to a file only this user can read, where `only1mcp status`
        /// and the other management commands find it.
        #[arg(long, value_name = "ADDR")]
        admin_listen: Option<std::net::SocketAddr>,
        /// Threads that run the gateway: a number, or `auto` for one per
        /// CPU core. One thread (the default) serves tens of thousands of
        /// calls a second at the least CPU per call and leaves the other
        /// cores to the backends; raise it for a gateway that needs more
        /// (docs/adr/0008-one-runtime-thread-by-default.md).
        #[arg(
            long,
            env = "ONLY1MCP_WORKERS",
            value_name = "N|auto",
            default_value = "1"
        )]
        workers: Workers,
    },
    /// Check a config file and report every problem, naming each field.
    Validate {
        /// The config file.
        path: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start the configured servers, print their status and merged tools,
    /// then stop them.
    List {
        /// The config file (default: as for `start`).
        #[arg(long, short, env = "ONLY1MCP_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Count the tokens the tool catalog costs a client: per tool, per
    /// server and per context mode (full, compact, discover, auto), with the
    /// saving, and the aliases of long names. Starts the servers, then stops
    /// them.
    Tokens(tokens::TokensArgs),
    /// Load-test an MCP endpoint: throughput and latency percentiles.
    Benchmark(Box<crate::benchmark::Args>),
    /// Add a server to the running gateway: `add NAME -- COMMAND ARGS…`
    /// or `add NAME --url URL`. Its tools appear at once; --persist also
    /// writes it to the config file.
    Add(manage::AddArgs),
    /// Remove a server from the running gateway (its calls in flight
    /// finish first); --persist also removes it from the config file.
    Remove(manage::RemoveArgs),
    /// Show the running gateway's servers: transport, status, tools, median
    /// latency, errors.
    Status(manage::StatusArgs),
    /// Print the servers' recent log lines (their stderr, and what the
    /// gateway logged about them); --follow keeps printing.
    Logs(manage::LogsArgs),
    /// Test a server on a fresh connection: start it, open a session, list
    /// its tools, each step timed. Works without a gateway (--config).
    Test(manage::TestArgs),
    /// Make the running gateway re-read its config file.
    Reload(manage::ReloadArgs),
    /// Work with the tamper-evident audit trail (audit.file).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Serve one of the built-in example MCP servers on stdio: what the
    /// built-in default config runs (this binary, so it needs no sibling
    /// executables). Hidden: users configure real servers.
    #[command(hide = true)]
    ExampleServer {
        /// Which server.
        name: ExampleServer,
        /// Its own options (`--name NAME`, `--http ADDR`, `--help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Move the MCP servers of Claude Desktop, Claude Code, Cursor, VS Code,
    /// Windsurf and Zed (or --from FILE) into ./only1mcp.yaml; --install
    /// then points those clients at `only1mcp start --stdio` (backups kept,
    /// --undo restores them); --dry-run shows the diff.
    Import(import::ImportArgs),
    /// Check what usually goes wrong: the config, each server's command on
    /// PATH and its ${VAR}s, each server starting (with its stderr tail),
    /// ports in use, the admin API, token file permissions. Exit status 1
    /// when anything is wrong; --json for scripts.
    Doctor(doctor::DoctorArgs),
    /// Print the shell completion script for SHELL, e.g.
    /// `only1mcp completions bash > ~/.local/share/bash-completion/completions/only1mcp`
    /// or `only1mcp completions zsh > "${fpath[1]}/_only1mcp"`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `only1mcp man > ~/.local/share/man/man1/only1mcp.1`.
    Man,
    /// Write a starter config file.
    Init {
        /// Where to write it.
        #[arg(default_value = "only1mcp.yaml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// The example servers `only1mcp example-server` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExampleServer {
    /// Legacy-era tools, resources and prompts (`echo`, `reverse`, …).
    Echo,
    /// Dual-era arithmetic (`add`, `multiply`, `divide`, …).
    Arith,
}

/// How many runtime threads `start` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workers {
    /// This many.
    Count(std::num::NonZeroUsize),
    /// One per CPU core (tokio's default).
    Auto,
}

impl std::str::FromStr for Workers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        text.parse()
            .map(Self::Count)
            .map_err(|_| format!("{text:?} is neither a thread count of at least 1 nor `auto`"))
    }
}

impl Cli {
    /// How many runtime worker threads the command wants (`None`: one per
    /// core, tokio's default, as for the load generator and the short
    /// management commands).
    pub(crate) fn worker_threads(&self) -> Option<usize> {
        match &self.command {
            Command::Start {
                workers: Workers::Count(n),
                ..
            } => Some(n.get()),
            _ => None,
        }
    }

    /// Runs the command here and now if it needs no async runtime (the
    /// example servers are plain blocking programs); `None` for the others.
    pub(crate) fn run_without_runtime(&mut self) -> Option<ExitCode> {
        match &mut self.command {
            Command::ExampleServer { name, args } => {
                Some(serve_example(*name, std::mem::take(args)))
            }
            _ => None,
        }
    }
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Start {
            config,
            stdio,
            listen,
            profile,
            admin_listen,
            workers: _,
        } => start(config.as_deref(), stdio, listen, profile, admin_listen).await,
        Command::Validate { path, json } => validate(&path, json),
        Command::List { config, json } => list(config.as_deref(), json).await,
        Command::Init { path, force } => init(&path, force),
        Command::Add(args) => manage::add(args).await,
        Command::Remove(args) => manage::remove(args).await,
        Command::Status(args) => manage::status(args).await,
        Command::Logs(args) => manage::logs(args).await,
        Command::Test(args) => manage::test(args).await,
        Command::Reload(args) => manage::reload(args).await,
        Command::Benchmark(args) => crate::benchmark::run(&args).await,
        Command::Tokens(args) => tokens::tokens(args).await,
        Command::Import(args) => import::import(&args),
        Command::Doctor(args) => doctor::doctor(&args).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "only1mcp", &mut out);
            output::raw(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out) {
                Ok(()) => output::raw(&out),
                Err(e) => {
                    output::error(&format!("cannot render the man page: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Command::ExampleServer { name, args } => serve_example(name, args),
        Command::Audit(command) => audit::run(command),
    }
}

/// Serves an example server on stdio until its input ends (blocking).
fn serve_example(name: ExampleServer, args: Vec<String>) -> ExitCode {
    match name {
        ExampleServer::Echo => {
            only1mcp_example_servers::main_with_args(only1mcp_example_servers::echo::Echo, args)
        }
        ExampleServer::Arith => {
            only1mcp_example_servers::main_with_args(only1mcp_example_servers::arith::Arith, args)
        }
    }
}

/// Exit code for a config that cannot be used (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn load_or_report(
    path: Option<&Path>,
) -> Result<(only1mcp_core::config::Config, Origin), ExitCode> {
    load::load(path).map_err(|e| {
        output::error(&e.to_string());
        ExitCode::from(EXIT_CONFIG)
    })
}

async fn start(
    path: Option<&Path>,
    stdio: bool,
    listen: Option<std::net::SocketAddr>,
    profile: Option<String>,
    admin_listen: Option<std::net::SocketAddr>,
) -> ExitCode {
    let (mut config, origin) = match load_or_report(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let profile = profile.unwrap_or_else(|| ContextConfig::DEFAULT_PROFILE.to_owned());
    if !config.context.resolved_profiles().contains_key(&profile) {
        output::error(&format!(
            "no context profile {profile:?} (profiles: {})",
            config
                .context
                .resolved_profiles()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return ExitCode::from(EXIT_CONFIG);
    }
    if let Some(listen) = listen {
        config.http.listen = listen;
    }
    if let Err(e) = logging::init_with_traces(&config.logging, &config.traces) {
        output::error(&e.to_string());
        return ExitCode::from(EXIT_CONFIG);
    }
    let options = only1mcp_proxy::run::RunOptions {
        origin,
        stdio,
        profile,
        admin_listen,
    };
    // The same builder an embedder uses; `start` adds no layers of its own.
    match Gateway::builder(&config).run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            e @ (only1mcp_proxy::run::RunError::Listen { .. }
            | only1mcp_proxy::run::RunError::Audit(_)
            | only1mcp_proxy::run::RunError::AuditStdoutTaken),
        ) => {
            output::error(&e.to_string());
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            output::error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &Path, json: bool) -> ExitCode {
    match load::load_file(path) {
        Ok(config) => {
            let servers: Vec<&String> = config.servers.keys().collect();
            if json {
                output::json(&serde_json::json!({ "valid": true, "servers": servers }));
            } else {
                output::line(&format!(
                    "{}: valid ({} server{}: {})",
                    path.display(),
                    servers.len(),
                    if servers.len() == 1 { "" } else { "s" },
                    servers
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let problems: Vec<String> = match &e {
                LoadError::Invalid(invalid) => invalid.0.iter().map(ToString::to_string).collect(),
                other => vec![other.to_string()],
            };
            if json {
                output::json(&serde_json::json!({ "valid": false, "problems": problems }));
            } else {
                output::error(&format!("{}: invalid config", path.display()));
                for problem in &problems {
                    output::note(&format!("  - {problem}"));
                }
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Logging for commands that print a table: warnings only (backend chatter
/// would drown the table); RUST_LOG still wins.
fn quiet_logging(config: &mut only1mcp_core::config::Config) {
    config
        .logging
        .level
        .get_or_insert_with(|| "warn".to_owned());
    if config.logging.level.as_deref() == Some("info") {
        config.logging.level = Some("warn".to_owned());
    }
    let _ = logging::init(&config.logging);
}

async fn list(path: Option<&Path>, json: bool) -> ExitCode {
    let (mut config, _origin) = match load_or_report(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    quiet_logging(&mut config);
    let gateway = Gateway::start(&config).await;
    let catalog = gateway.catalog();
    let report = gateway.report();
    let tools: Vec<(String, String, String)> = catalog
        .entries(ListKind::Tools)
        .iter()
        .map(|entry| {
            let item: mcp::RawObject = serde_json::from_str(entry.item.get()).unwrap_or_default();
            let description = mcp::string_field(&item, "description").unwrap_or_default();
            (
                entry.exposed.to_string(),
                entry.route.server.to_string(),
                description,
            )
        })
        .collect();
    if json {
        let servers: Vec<serde_json::Value> = report
            .iter()
            .map(|r| {
                serde_json::json!({
                    "server": &*r.server,
                    "status": r.status.to_string(),
                    "protocol_version": r.protocol.as_ref().map(|(_, v)| v),
                    "era": r.protocol.as_ref().map(|(era, _)| era),
                })
            })
            .collect();
        let tools: Vec<serde_json::Value> = tools
            .iter()
            .map(|(name, server, description)| {
                serde_json::json!({ "name": name, "server": server, "description": description })
            })
            .collect();
        output::json(&serde_json::json!({ "servers": servers, "tools": tools }));
    } else {
        let rows: Vec<Vec<String>> = report
            .iter()
            .map(|r| {
                let count = tools
                    .iter()
                    .filter(|(_, s, _)| s.as_str() == &*r.server)
                    .count();
                vec![
                    r.server.to_string(),
                    r.status.to_string(),
                    r.protocol
                        .as_ref()
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| "-".to_owned()),
                    count.to_string(),
                ]
            })
            .collect();
        output::line(&output::table(
            &["SERVER", "STATUS", "PROTOCOL", "TOOLS"],
            &rows,
        ));
        let rows: Vec<Vec<String>> = tools
            .iter()
            .map(|(name, server, description)| {
                vec![name.clone(), server.clone(), first_line(description, 60)]
            })
            .collect();
        output::line(&output::table(&["TOOL", "SERVER", "DESCRIPTION"], &rows));
        for conflict in catalog.conflicts() {
            output::note(&format!("note: {conflict}"));
        }
    }
    drop(catalog);
    gateway.shutdown().await;
    ExitCode::SUCCESS
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn init(path: &Path, force: bool) -> ExitCode {
    if path.exists() && !force {
        output::error(&format!(
            "{} exists; pass --force to overwrite it",
            path.display()
        ));
        return ExitCode::FAILURE;
    }
    match std::fs::write(path, load::STARTER_YAML) {
        Ok(()) => {
            output::line(&format!(
                "Wrote {}. Edit its servers, then run: only1mcp start --stdio --config {}",
                path.display(),
                path.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            output::error(&format!("cannot write {}: {e}", path.display()));
            ExitCode::FAILURE
        }
    }
}
