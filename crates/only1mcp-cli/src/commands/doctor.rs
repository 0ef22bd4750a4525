//! `only1mcp doctor`: checks what usually goes wrong and says how to fix it.
//!
//! In order: the config loads and is valid; each server's command is on
//! `PATH` and the `${VAR}`s it uses are set; each server starts, answers the
//! handshake and lists its tools (on a fresh process or connection of its
//! own, as `only1mcp test` does; a failure shows the end of its stderr); the
//! gateway's ports are free, or held by a gateway whose admin API answers;
//! the admin token files are readable by their user only. A healthy setup
//! prints one line; every problem names what it is about and the fix. Exit
//! status 0 when nothing is wrong, 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use only1mcp_core::config::{self, Config, ServerConfig};
use only1mcp_proxy::admin::secret;
use only1mcp_proxy::load;
use serde::Serialize;

use crate::output;

/// Arguments of `only1mcp doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// The config file (default: as for `start`).
    #[arg(long, short, env = "ONLY1MCP_CONFIG")]
    config: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// One problem found.
#[derive(Debug, Serialize)]
struct Finding {
    /// Which check found it: `config`, `command`, `env`, `start`, `port`,
    /// `admin`, `token-file`.
    check: &'static str,
    /// What it is about: a field path, a file, an address.
    subject: String,
    /// What is wrong.
    problem: String,
    /// How to fix it.
    fix: String,
}

/// Lines of a failed server's stderr shown.
const STDERR_TAIL: usize = 8;

/// Runs `only1mcp doctor`.
pub(crate) async fn doctor(args: &DoctorArgs) -> ExitCode {
    let mut findings = Vec::new();
    let (config, origin) = match load::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            let subject = args
                .config
                .as_ref()
                .map_or_else(|| "the config".to_owned(), |p| p.display().to_string());
            let problems: Vec<String> = match &e {
                load::LoadError::Invalid(invalid) => {
                    invalid.0.iter().map(ToString::to_string).collect()
                }
                other => vec![other.to_string()],
            };
            for problem in problems {
                findings.push(Finding {
                    check: "config",
                    subject: subject.clone(),
                    problem,
                    fix: "fix the field named (`only1mcp validate FILE` lists every problem), then run doctor again".to_owned(),
                });
            }
            return finish(&findings, "the config", 0, args.json);
        }
    };
    // Backends' stderr goes to the capture book (for the tails), not the
    // terminal; RUST_LOG still wins.
    let mut logging = config.logging.clone();
    logging.level = Some("off".to_owned());
    let _ = only1mcp_proxy::logging::init(&logging);

    let mut startable = Vec::new();
    for (id, server) in config.servers.iter().filter(|(_, s)| s.enabled) {
        let before = findings.len();
        check_server(id, server, &mut findings);
        if findings.len() == before {
            startable.push((id.clone(), server.clone()));
        }
    }
    let config = &config;
    let tests = startable.iter().map(|(id, server)| async move {
        (
            id,
            only1mcp_proxy::gateway::test_server(id, server, config).await,
        )
    });
    for (id, res) in futures::future::join_all(tests).await {
        if let Err(failure) = res {
            let tail: Vec<String> = only1mcp_proxy::logging::capture::book()
                .recent(Some(id), 200)
                .into_iter()
                .filter(|line| line.source == "backend")
                .map(|line| line.message)
                .collect();
            let tail = &tail[tail.len().saturating_sub(STDERR_TAIL)..];
            let problem = if tail.is_empty() {
                failure.to_string()
            } else {
                format!(
                    "{failure}; its stderr ended with:\n      {}",
                    tail.join("\n      ")
                )
            };
            findings.push(Finding {
                check: "start",
                subject: format!("servers.{id}"),
                problem,
                fix: format!("run its command by hand to see why; `only1mcp test {id} --config FILE` times each step"),
            });
        }
    }
    check_ports(config, &mut findings).await;
    check_token_files(&mut findings);
    finish(
        &findings,
        &origin.to_string(),
        config.servers.len(),
        args.json,
    )
}

fn finish(findings: &[Finding], origin: &str, n_servers: usize, json: bool) -> ExitCode {
    let code = if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        output::json(&serde_json::json!({
            "ok": findings.is_empty(),
            "config": origin,
            "problems": findings,
        }));
        return code;
    }
    if findings.is_empty() {
        output::line(&format!(
            "only1mcp doctor: no problems found ({origin}, {n_servers} server{})",
            if n_servers == 1 { "" } else { "s" }
        ));
        return code;
    }
    for finding in findings {
        output::line(&format!(
            "✗ {}: {}\n    fix: {}",
            finding.subject, finding.problem, finding.fix
        ));
    }
    output::line(&format!(
        "only1mcp doctor: {} problem{} ({origin})",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    ));
    code
}

/// The command is found and every `${VAR}` the server uses is set.
fn check_server(id: &str, server: &ServerConfig, findings: &mut Vec<Finding>) {
    let lookup = |name: &str| std::env::var(name).ok();
    let mut missing = |field: String, text: &str| {
        if let Err(config::MissingVar(var)) = config::expand_env(text, lookup) {
            findings.push(Finding {
                check: "env",
                subject: field,
                problem: format!("${{{var}}} is not set"),
                fix: format!("set {var} in the environment only1mcp starts in"),
            });
            return true;
        }
        false
    };
    for (key, value) in &server.env {
        missing(format!("servers.{id}.env.{key}"), value);
    }
    for (idx, arg) in server.args.iter().enumerate() {
        missing(format!("servers.{id}.args[{idx}]"), arg);
    }
    for (key, value) in &server.headers {
        missing(format!("servers.{id}.headers.{key}"), value);
    }
    if server.command.is_empty() || missing(format!("servers.{id}.command"), &server.command) {
        return;
    }
    let command = config::expand_env(&server.command, lookup).unwrap_or_default();
    let path = server
        .env
        .get("PATH")
        .and_then(|p| config::expand_env(p, lookup).ok())
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"));
    let cwd = server
        .cwd
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    if which::which_in(&command, path, &cwd).is_err() {
        let program = Path::new(&command)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&command);
        let fix = match program {
            "npx" | "node" | "npm" => {
                "install Node.js (npx comes with npm), or give the full path of npx".to_owned()
            }
            "uvx" | "uv" => {
                "install uv (uvx comes with it), or give the full path of uvx".to_owned()
            }
            "docker" => {
                "install Docker (and start its daemon), or give the full path of docker".to_owned()
            }
            "python" | "python3" => {
                "install Python 3, or give the full path of its interpreter".to_owned()
            }
            _ if command.contains(std::path::MAIN_SEPARATOR) => {
                format!("check that {command} exists and is executable")
            }
            _ => format!("install {command}, or give its full path in servers.{id}.command"),
        };
        findings.push(Finding {
            check: "command",
            subject: format!("servers.{id}.command"),
            problem: format!("{command:?} is not found on PATH"),
            fix,
        });
    }
}

/// The MCP and admin ports are free, or held by a gateway whose admin API
/// answers.
async fn check_ports(config: &Config, findings: &mut Vec<Finding>) {
    let admin = config.admin.enabled != Some(false);
    let admin_running = if admin {
        admin_answers(config).await
    } else {
        AdminState::Off
    };
    let busy = |addr: std::net::SocketAddr| {
        addr.port() != 0
            && matches!(std::net::TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
    };
    let running = matches!(admin_running, AdminState::Answers);
    if busy(config.http.listen) && !running {
        findings.push(Finding {
            check: "port",
            subject: format!("http.listen {}", config.http.listen),
            problem:
                "the port is in use by another program (no only1mcp admin API answers beside it)"
                    .to_owned(),
            fix: "stop that program, or set http.listen (or `start --listen`) to a free port"
                .to_owned(),
        });
    }
    match admin_running {
        AdminState::Refuses(why) => findings.push(Finding {
            check: "admin",
            subject: format!("admin.listen {}", config.admin.listen),
            problem: why,
            fix: "set ONLY1MCP_ADMIN_TOKEN (or admin.token) to the running gateway's token, or set admin.listen to a free port".to_owned(),
        }),
        AdminState::Answers | AdminState::Off | AdminState::Free => {}
    }
}

/// What is at the admin API's address.
#[derive(Debug)]
enum AdminState {
    /// The admin API is off in the config.
    Off,
    /// Nothing listens there.
    Free,
    /// A running gateway's admin API answers with the token.
    Answers,
    /// Something listens but is not an admin API that takes our token.
    Refuses(String),
}

async fn admin_answers(config: &Config) -> AdminState {
    let addr = config.admin.listen;
    if addr.port() == 0 || std::net::TcpListener::bind(addr).is_ok() {
        return AdminState::Free;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(http) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return AdminState::Free;
    };
    let token = std::env::var("ONLY1MCP_ADMIN_TOKEN")
        .ok()
        .or_else(|| config.admin.token.clone())
        .or_else(|| secret::read(addr.port()).ok().map(|(token, _)| token));
    let mut request = http.get(format!("http://{addr}/servers"));
    if let Some(token) = token {
        request = request.bearer_auth(token.trim());
    }
    match request.send().await {
        Ok(res) if res.status().is_success() => AdminState::Answers,
        Ok(res) => AdminState::Refuses(format!(
            "a program listens there but the admin API refuses the token ({})",
            res.status()
        )),
        Err(e) => AdminState::Refuses(format!(
            "the port is in use but no only1mcp admin API answers there ({e})"
        )),
    }
}

/// The generated admin token files are readable by their user only.
fn check_token_files(findings: &mut Vec<Finding>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Some(dir) = secret::runtime_dir() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("admin-") && name.ends_with(".token")) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                findings.push(Finding {
                    check: "token-file",
                    subject: path.display().to_string(),
                    problem: format!("an admin token readable by other users (mode {mode:o})"),
                    fix: format!("chmod 600 {}", path.display()),
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = findings;
}
