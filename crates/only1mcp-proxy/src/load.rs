//! Loading the config: files (YAML, TOML, or JSON with `mcpServers`),
//! `ONLY1MCP_` environment overrides, and the built-in default.
//!
//! Precedence, lowest first: the file, then environment variables such as
//! `ONLY1MCP_DEFAULTS__REQUEST_TIMEOUT=5s` or
//! `ONLY1MCP_SERVERS__ECHO__ENABLED=false` (`__` separates levels). Only
//! variables under the config's own sections are read, so unrelated
//! `ONLY1MCP_*` variables cannot break loading.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Json, Toml, Yaml};
use only1mcp_core::config::{self, Config};

/// The sections an environment override may target.
const ENV_SECTIONS: &[&str] = &[
    "naming", "defaults", "security", "logging", "http", "admin", "context", "servers",
];

/// Files `start` looks for in the working directory when no `--config` is
/// given.
pub const DEFAULT_FILES: &[&str] = &["only1mcp.yaml", "only1mcp.yml", "only1mcp.toml"];

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file's extension is not one the loader reads.
    #[error("{0}: unknown config format (use .yaml, .yml, .toml or .json)")]
    UnknownFormat(PathBuf),
    /// The file does not exist.
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    /// Parsing failed; the message names the key and the file.
    #[error("{0}")]
    Parse(Box<figment::Error>),
    /// The config parsed but breaks a rule.
    #[error(transparent)]
    Invalid(#[from] config::Invalid),
}

/// Where a loaded config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// The built-in default (two example servers).
    BuiltIn,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::BuiltIn => f.write_str("the built-in default config"),
        }
    }
}

/// Loads, imports `mcpServers` and validates the config at `path`.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_owned()));
    }
    let figment = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Figment::from(Yaml::file_exact(path)),
        Some("toml") => Figment::from(Toml::file_exact(path)),
        Some("json") => Figment::from(Json::file_exact(path)),
        _ => return Err(LoadError::UnknownFormat(path.to_owned())),
    };
    finish(figment, Some(path))
}

/// The `include_dir` of `config`, resolved against the config file's folder.
pub fn include_dir(config: &Config, path: &Path) -> Option<PathBuf> {
    let dir = config.include_dir.as_ref()?;
    if dir.is_absolute() {
        return Some(dir.clone());
    }
    Some(path.parent().unwrap_or_else(|| Path::new(".")).join(dir))
}

/// Merges the server files of the include folder into `config`, in
/// file-name order; an id defined twice is a problem naming both places.
fn merge_include_dir(config: &mut Config, dir: &Path) -> Result<(), LoadError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "toml" | "json")
                )
            })
            .collect(),
        Err(e) => {
            return Err(LoadError::Invalid(config::Invalid(vec![config::Problem {
                field: "include_dir".to_owned(),
                message: format!("{}: {e}", dir.display()),
            }])));
        }
    };
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let figment = match file.extension().and_then(|e| e.to_str()) {
            Some("toml") => Figment::from(Toml::file_exact(&file)),
            Some("json") => Figment::from(Json::file_exact(&file)),
            _ => Figment::from(Yaml::file_exact(&file)),
        };
        let part: config::ServersFile = figment
            .extract()
            .map_err(|e| LoadError::Parse(Box::new(e)))?;
        for (id, server) in part.servers {
            if config.servers.contains_key(&id) || config.mcp_servers.contains_key(&id) {
                problems.push(config::Problem {
                    field: format!("servers.{id}"),
                    message: format!("defined again in {}", file.display()),
                });
            } else {
                config.servers.insert(id, server);
            }
        }
        for (id, entry) in part.mcp_servers {
            if config.servers.contains_key(&id) || config.mcp_servers.contains_key(&id) {
                problems.push(config::Problem {
                    field: format!("mcpServers.{id}"),
                    message: format!("defined again in {}", file.display()),
                });
            } else {
                config.mcp_servers.insert(id, entry);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid(config::Invalid(problems)))
    }
}

/// Loads the config `start` uses: `path` if given, else the first of
/// [`DEFAULT_FILES`] in the working directory, else the first of them in the
/// user's config directory ([`user_config_dir`]), else the built-in default.
pub fn load(path: Option<&Path>) -> Result<(Config, Origin), LoadError> {
    if let Some(path) = path {
        return load_file(path).map(|c| (c, Origin::File(path.to_owned())));
    }
    let dirs = [Some(PathBuf::new()), user_config_dir()];
    for dir in dirs.iter().flatten() {
        for name in DEFAULT_FILES {
            let path = dir.join(name);
            if path.exists() {
                return load_file(&path).map(|c| (c, Origin::File(path)));
            }
        }
    }
    finish(Figment::from(Yaml::string(&built_in_yaml())), None).map(|c| (c, Origin::BuiltIn))
}

/// The user's own config directory for Only1MCP, where `start` looks when
/// the working directory has no config (an IDE often starts the gateway in
/// `/` or a project it knows nothing of): `$XDG_CONFIG_HOME/only1mcp` or
/// `~/.config/only1mcp` on Linux, `~/Library/Application Support/only1mcp`
/// on macOS, `%APPDATA%\only1mcp` on Windows.
pub fn user_config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("only1mcp"))
}

fn finish(figment: Figment, path: Option<&Path>) -> Result<Config, LoadError> {
    let env = Env::prefixed("ONLY1MCP_").split("__").filter(|key| {
        // Keys keep the variable's case here (figment lowercases them later).
        let first = key.as_str().split('.').next().unwrap_or_default();
        ENV_SECTIONS.iter().any(|s| first.eq_ignore_ascii_case(s))
    });
    let mut config: Config = figment
        .merge(env)
        .extract()
        .map_err(|e| LoadError::Parse(Box::new(e)))?;
    if let Some(dir) = path.and_then(|p| include_dir(&config, p)) {
        merge_include_dir(&mut config, &dir)?;
    }
    // A relative audit file is the config file's neighbour, not the
    // working directory's.
    if let (Some(file), Some(folder)) = (config.audit.file.as_mut(), path.and_then(Path::parent))
        && file.is_relative()
    {
        *file = folder.join(&*file);
    }
    config.absorb_mcp_servers()?;
    check(&config)?;
    Ok(config)
}

/// Every rule a config must meet before it runs, all problems at once:
/// [`Config::validate`], then the checks that read the file system (TLS
/// files, [`check_commands`]).
pub fn check(config: &Config) -> Result<(), config::Invalid> {
    let mut problems = Vec::new();
    for res in [
        config.validate(),
        check_tls(config),
        check_commands(config),
        check_auth(config),
    ] {
        if let Err(invalid) = res {
            problems.extend(invalid.0);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(config::Invalid(problems))
    }
}

/// Checks that `auth` can be set up as configured: API keys named by an
/// environment variable are set, the issuer's URLs are usable.
fn check_auth(config: &Config) -> Result<(), config::Invalid> {
    if !config.auth.enabled() {
        return Ok(());
    }
    only1mcp_auth::Admission::new(&config.auth)
        .map(drop)
        .map_err(|message| {
            config::Invalid(vec![config::Problem {
                field: "auth".to_owned(),
                message,
            }])
        })
}

/// Checks every stdio server's `command` against
/// `security.allowed_commands` (when that is set) by the files they name:
/// each side is resolved to an absolute path (a bare name through `PATH`,
/// the server's own `PATH` from its `env` if it sets one, as the spawn does;
/// `${VAR}` expanded as the spawn does; symlinks followed), so a program is
/// allowed only if it is the very file an entry names. Run on every config
/// that is loaded, reloaded or edited through the admin API.
pub fn check_commands(config: &Config) -> Result<(), config::Invalid> {
    let allowed = &config.security.allowed_commands;
    if allowed.is_empty() {
        return Ok(());
    }
    let gateway_path = std::env::var_os("PATH");
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .filter_map(|entry| resolve_program(entry, gateway_path.as_deref(), None))
        .collect();
    let mut problems = Vec::new();
    for (id, server) in &config.servers {
        if server.url.is_some() || server.command.trim().is_empty() {
            continue;
        }
        let lookup = |name: &str| std::env::var(name).ok();
        let command = match config::expand_env(&server.command, lookup) {
            Ok(command) => command,
            Err(e) => {
                problems.push(config::Problem {
                    field: format!("servers.{id}.command"),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let server_path = server
            .env
            .get("PATH")
            .and_then(|path| config::expand_env(path, lookup).ok())
            .map(std::ffi::OsString::from);
        let path = server_path.as_deref().or(gateway_path.as_deref());
        let message = match resolve_program(&command, path, server.cwd.as_deref()) {
            Some(program) if allowed.contains(&program) => continue,
            Some(program) => format!(
                "{:?} ({}) is not in security.allowed_commands",
                server.command,
                program.display()
            ),
            None => format!(
                "{:?} names no program (and security.allowed_commands is set)",
                server.command
            ),
        };
        problems.push(config::Problem {
            field: format!("servers.{id}.command"),
            message,
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(config::Invalid(problems))
    }
}

/// The absolute, symlink-free path of the program `command` names: a bare
/// name is looked up in `path`, anything with a separator is taken as a path
/// (relative to `cwd` if given). `None` if no such file exists.
fn resolve_program(
    command: &str,
    path: Option<&std::ffi::OsStr>,
    cwd: Option<&Path>,
) -> Option<PathBuf> {
    let command = command.trim();
    let as_path = Path::new(command);
    let found = if as_path.components().count() > 1 || as_path.is_absolute() {
        match cwd {
            Some(cwd) if as_path.is_relative() => cwd.join(as_path),
            _ => as_path.to_owned(),
        }
    } else {
        let cwd = cwd.map_or_else(|| std::env::current_dir().ok(), |c| Some(c.to_owned()))?;
        which::which_in(command, path, cwd).ok()?
    };
    std::fs::canonicalize(found).ok()
}

/// Checks that the TLS certificate and key exist and parse as PEM.
fn check_tls(config: &Config) -> Result<(), config::Invalid> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some(tls) = &config.http.tls else {
        return Ok(());
    };
    let mut problems = Vec::new();
    match CertificateDer::pem_file_iter(&tls.cert) {
        Ok(certs) => match certs.collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => {}
            Ok(_) => problems.push(config::Problem {
                field: "http.tls.cert".to_owned(),
                message: format!("{}: no certificate in the file", tls.cert.display()),
            }),
            Err(e) => problems.push(config::Problem {
                field: "http.tls.cert".to_owned(),
                message: format!("{}: {e}", tls.cert.display()),
            }),
        },
        Err(e) => problems.push(config::Problem {
            field: "http.tls.cert".to_owned(),
            message: format!("{}: {e}", tls.cert.display()),
        }),
    }
    if let Err(e) = PrivateKeyDer::from_pem_file(&tls.key) {
        problems.push(config::Problem {
            field: "http.tls.key".to_owned(),
            message: format!("{}: {e}", tls.key.display()),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(config::Invalid(problems))
    }
}

/// The program that serves the built-in default's example servers: the
/// `only1mcp` CLI, through its hidden `example-server NAME` subcommand. It is
/// the running executable when that is the CLI (so an installed or copied
/// binary needs nothing beside it); the lean `only1mcp-proxy` binary, which
/// has no example servers of its own, names the `only1mcp` beside it.
pub fn example_program() -> PathBuf {
    let cli = format!("only1mcp{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&cli));
    if exe.file_stem().and_then(|stem| stem.to_str()) == Some("only1mcp") {
        exe
    } else {
        exe.with_file_name(cli)
    }
}

/// The built-in default: the echo and arith example servers (`examples/servers`),
/// each run as `<program> example-server NAME` with `program` from
/// [`example_program`] (no shell). It needs neither Node nor Python.
pub fn built_in_yaml() -> String {
    built_in_yaml_for(&example_program())
}

/// [`built_in_yaml`] with the program given.
pub fn built_in_yaml_for(program: &Path) -> String {
    // JSON strings are valid YAML scalars and escape any path safely.
    let program = serde_json::to_string(&program.to_string_lossy()).unwrap_or_default();
    format!(
        "servers:\n  echo:\n    command: {program}\n    args: [\"example-server\", \"echo\"]\n  \
         arith:\n    command: {program}\n    args: [\"example-server\", \"arith\"]\n"
    )
}

/// The starter config `only1mcp init` writes.
pub const STARTER_YAML: &str = include_str!("../../../config-templates/solo.yaml");

#[cfg(test)]
mod tests;
