//! `only1mcp import`: moves the MCP servers configured in the IDEs and
//! desktop clients into `only1mcp.yaml` and, with `--install`, points each
//! client at the gateway instead (`only1mcp start --stdio`), keeping a
//! timestamped backup that `--undo` restores byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use only1mcp_core::config::{Config, ServerConfig};
use only1mcp_core::naming::Namespace;
use only1mcp_proxy::admin::persist;
use only1mcp_proxy::load;

use crate::output;

mod clients;

use clients::{Client, ClientFile, Entry, Location, Rewrite};

/// Arguments of `only1mcp import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// Read this client config file instead of looking for the known ones
    /// (its format is read from its content: `mcpServers`, VS Code's
    /// `servers`, Zed's `context_servers`). Repeatable.
    #[arg(long, value_name = "FILE")]
    from: Vec<PathBuf>,
    /// Only these clients' files (default: every one found).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "from")]
    client: Vec<Client>,
    /// The gateway config to write; merged into when it exists.
    #[arg(long, short, default_value = "only1mcp.yaml")]
    output: PathBuf,
    /// Also rewrite each client config to launch `only1mcp start --stdio`
    /// instead of the servers now in the gateway's config (a timestamped
    /// backup is kept beside each file).
    #[arg(long, conflicts_with = "undo")]
    install: bool,
    /// Restore the client configs `--install` rewrote from their backups.
    #[arg(long)]
    undo: bool,
    /// Print what would change, as a diff of each file, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Exit code for a config that cannot be used (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

/// The infix of a backup's name: `mcp.json.only1mcp-backup-20261207T230000Z`.
const BACKUP_INFIX: &str = ".only1mcp-backup-";

/// Runs `only1mcp import`.
pub(crate) fn import(args: &ImportArgs) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let candidates = candidates(args, &cwd);
    if args.undo {
        return undo(&candidates, args.dry_run);
    }
    let mut files = Vec::new();
    let mut failed = false;
    for (client, path) in &candidates {
        match clients::read(path, &cwd) {
            Ok(Some(file)) => files.push((*client, file)),
            Ok(None) if !args.from.is_empty() => {
                output::error(&format!("{}: no such file", path.display()));
                failed = true;
            }
            Ok(None) => {}
            Err(problem) => {
                output::error(&problem);
                failed = true;
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    let existing = match existing_config(&args.output) {
        Ok(existing) => existing,
        Err(code) => return code,
    };
    let plan = plan(&files, existing.as_ref().map(|(config, _)| config));
    for note in &plan.notes {
        output::note(&format!("note: {note}"));
    }
    if plan.found == 0 {
        output::note(&format!(
            "no MCP servers found in {}",
            if candidates.is_empty() {
                "any known client's config".to_owned()
            } else {
                candidates
                    .iter()
                    .map(|(_, path)| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        return ExitCode::SUCCESS;
    }
    let before = existing
        .as_ref()
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    let mut after = if before.is_empty() {
        format!(
            "# Written by `only1mcp import` from the MCP clients' configs.\n\
             # Check it with: only1mcp validate {0}\n\
             # Run it with:   only1mcp start --stdio --config {0}\n\nservers:\n",
            args.output.display()
        )
    } else {
        before.clone()
    };
    for (id, server) in &plan.added {
        after = match persist::edited_yaml(&after, persist::Edit::Upsert(id, server)) {
            Ok(text) => text,
            Err(reason) => {
                output::error(&format!(
                    "{}: {reason}; add servers.{id} by hand, or import into a new file with --output",
                    args.output.display()
                ));
                return ExitCode::from(EXIT_CONFIG);
            }
        };
    }
    if let Err(problems) = check_yaml(&args.output, &after) {
        output::error(&format!(
            "{}: the merged config would be invalid:",
            args.output.display()
        ));
        for problem in problems {
            output::note(&format!("  - {problem}"));
        }
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut client_edits = Vec::new();
    if args.install {
        let config = absolute(&cwd, &args.output);
        let program = std::env::current_exe()
            .and_then(|exe| exe.canonicalize())
            .unwrap_or_else(|_| PathBuf::from("only1mcp"));
        for (file, rewrites) in install_rewrites(&files, &plan, &program, &config) {
            match clients::rewritten(&file.path, &file.text, &rewrites) {
                Ok(text) => client_edits.push((file, text)),
                Err(problem) => {
                    output::error(&problem);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if args.dry_run {
        if before != after {
            output::line(&diff(&args.output, &before, &after));
        }
        for (file, text) in &client_edits {
            output::line(&diff(&file.path, &file.text, text));
        }
        output::note(&format!(
            "dry run: {} server{} to add to {}{}; nothing written",
            plan.added.len(),
            plural(plan.added.len()),
            args.output.display(),
            if client_edits.is_empty() {
                String::new()
            } else {
                format!(", {} client config(s) to rewrite", client_edits.len())
            }
        ));
        return ExitCode::SUCCESS;
    }
    if before != after
        && let Err(e) = write_new_or_replace(&args.output, &after)
    {
        output::error(&e);
        return ExitCode::FAILURE;
    }
    output::line(&format!(
        "{}: added {} server{}{}",
        args.output.display(),
        plan.added.len(),
        plural(plan.added.len()),
        if plan.added.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                plan.added
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    for (file, text) in &client_edits {
        match install_file(file, text) {
            Ok(backup) => output::line(&format!(
                "{}: now launches only1mcp (backup: {}; undo: only1mcp import --undo)",
                file.path.display(),
                backup.display()
            )),
            Err(e) => {
                output::error(&e);
                return ExitCode::FAILURE;
            }
        }
    }
    if client_edits.is_empty() {
        output::note(&format!(
            "next: only1mcp validate {0}; only1mcp list --config {0}; then `only1mcp import --install` points the clients at the gateway",
            args.output.display()
        ));
    }
    ExitCode::SUCCESS
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The files to read: `--from`, or the known clients' files.
fn candidates(args: &ImportArgs, cwd: &Path) -> Vec<(Option<Client>, PathBuf)> {
    if !args.from.is_empty() {
        return args
            .from
            .iter()
            .map(|path| (Client::guess(path), path.clone()))
            .collect();
    }
    let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
    let config = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
    let wanted: &[Client] = if args.client.is_empty() {
        &Client::ALL
    } else {
        &args.client
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for client in wanted {
        for path in client.files(&home, &config, cwd) {
            if seen.insert(path.clone()) {
                out.push((Some(*client), path));
            }
        }
    }
    out
}

/// The existing gateway config at `path`, loaded and as text; `None` if
/// there is none. An invalid one stops the import (its problems printed).
fn existing_config(path: &Path) -> Result<Option<(Config, String)>, ExitCode> {
    if !path.exists() {
        return Ok(None);
    }
    if !matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) {
        output::error(&format!(
            "{}: import writes YAML; name a .yaml file with --output",
            path.display()
        ));
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        output::error(&format!("{}: cannot read it: {e}", path.display()));
        ExitCode::FAILURE
    })?;
    match load::load_file(path) {
        Ok(config) => Ok(Some((config, text))),
        Err(e) => {
            output::error(&format!(
                "{}: invalid, so nothing is merged into it (fix it first; `only1mcp validate {}` names each field):",
                path.display(),
                path.display()
            ));
            output::note(&format!("  {e}"));
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// What the import will do.
#[derive(Debug, Default)]
struct Plan {
    /// Entries found in the clients' files (servers or not).
    found: usize,
    /// Servers to add, under their ids in the gateway's config.
    added: Vec<(String, ServerConfig)>,
    /// Per file and servers object: the entries the gateway now serves
    /// (added, or already in its config), which `--install` takes out.
    covered: BTreeMap<(PathBuf, Vec<String>), Vec<String>>,
    /// What the user should know: renames, changed references, skipped
    /// entries, each naming the file and field.
    notes: Vec<String>,
}

fn plan(files: &[(Option<Client>, ClientFile)], existing: Option<&Config>) -> Plan {
    let mut plan = Plan::default();
    let namespace = existing
        .and_then(|config| Namespace::new(&config.naming.separator).ok())
        .unwrap_or_default();
    let mut servers: BTreeMap<String, ServerConfig> = existing
        .map(|config| config.servers.clone())
        .unwrap_or_default();
    for (client, file) in files {
        let refs = clients::Refs::of(file);
        for location in &file.locations {
            let Some(entries) = clients::servers_at(&file.value, location) else {
                continue;
            };
            for (name, value) in entries {
                plan.found += 1;
                let field = format!(
                    "{}: {}{}",
                    file.path.display(),
                    location.field(),
                    clients::field_key(name)
                );
                if clients::launches_gateway(value) {
                    continue;
                }
                let (server, notes) =
                    match clients::read_entry(location.shape, &field, value, &refs) {
                        Ok(Entry::Server(server, notes)) => (*server, notes),
                        Ok(Entry::Skipped(why)) => {
                            plan.notes.push(format!("{why}; left where it is"));
                            continue;
                        }
                        Err(problem) => {
                            plan.notes.push(format!("{problem}; left out"));
                            continue;
                        }
                    };
                plan.notes.extend(notes);
                let cover = plan
                    .covered
                    .entry((file.path.clone(), location.path.clone()))
                    .or_default();
                cover.push(name.clone());
                if let Some((same, _)) = servers.iter().find(|(_, known)| **known == server) {
                    if same != name {
                        plan.notes.push(format!(
                            "{field}: the same server as servers.{same}; not added twice"
                        ));
                    }
                    continue;
                }
                let id = free_id(name, *client, file, &servers, &namespace);
                if id != *name {
                    plan.notes
                        .push(format!("{field}: imported as servers.{id}"));
                }
                servers.insert(id.clone(), server.clone());
                plan.added.push((id, server));
            }
        }
    }
    plan
}

/// An id for `name` that no server has, valid as a server id: the name with
/// characters outside `[A-Za-z0-9_-]` made `-`, then the client's name
/// appended, then a number.
fn free_id(
    name: &str,
    client: Option<Client>,
    file: &ClientFile,
    taken: &BTreeMap<String, ServerConfig>,
    namespace: &Namespace,
) -> String {
    let clean = |text: &str| -> String {
        let mapped: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut out = String::new();
        for part in mapped.split('-').filter(|part| !part.is_empty()) {
            if !out.is_empty() {
                out.push('-');
            }
            out.push_str(part);
        }
        if out.is_empty() {
            "server".to_owned()
        } else {
            out
        }
    };
    let mut base = name.to_owned();
    if namespace.check_server_id(&base).is_err() {
        base = clean(name);
    }
    let valid = |id: &str| !taken.contains_key(id) && namespace.check_server_id(id).is_ok();
    if valid(&base) {
        return base;
    }
    let suffix = match client {
        Some(client) => client.slug().to_owned(),
        None => clean(
            &file
                .path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    let with_client = format!("{base}-{suffix}");
    if valid(&with_client) {
        return with_client;
    }
    (2..)
        .map(|n| format!("{with_client}-{n}"))
        .find(|id| valid(id))
        .unwrap_or(with_client)
}

/// For each file with servers now in the gateway: take them out, and add the
/// gateway's own entry to the first servers object of each client (of each
/// `--from` file), so every client launches the gateway once.
fn install_rewrites<'a>(
    files: &'a [(Option<Client>, ClientFile)],
    plan: &Plan,
    program: &Path,
    config: &Path,
) -> Vec<(&'a ClientFile, Vec<Rewrite>)> {
    let mut launched: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (client, file) in files {
        let mut rewrites = Vec::new();
        for location in &file.locations {
            let Some(remove) = plan
                .covered
                .get(&(file.path.clone(), location.path.clone()))
            else {
                continue;
            };
            let key = match client {
                Some(client) => client.slug().to_owned(),
                None => file.path.display().to_string(),
            };
            let add = launched
                .insert(key)
                .then(|| clients::gateway_entry(location.shape, program, config));
            rewrites.push(Rewrite {
                location: Location::clone(location),
                remove: remove.clone(),
                add,
            });
        }
        if !rewrites.is_empty() {
            out.push((file, rewrites));
        }
    }
    out
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    let joined = cwd.join(path);
    joined.canonicalize().unwrap_or(joined)
}

/// Checks `text` as the config at `path` would be loaded, from a temporary
/// file beside it.
fn check_yaml(path: &Path, text: &str) -> Result<(), Vec<String>> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".only1mcp-import-")
        .suffix(".yaml")
        .tempfile_in(dir)
        .map_err(|e| vec![format!("cannot write a file in {}: {e}", dir.display())])?;
    std::fs::write(tmp.path(), text).map_err(|e| vec![e.to_string()])?;
    match load::load_file(tmp.path()) {
        Ok(_) => Ok(()),
        Err(load::LoadError::Invalid(invalid)) => {
            Err(invalid.0.iter().map(ToString::to_string).collect())
        }
        Err(other) => Err(vec![other.to_string()]),
    }
}

fn write_new_or_replace(path: &Path, text: &str) -> Result<(), String> {
    if path.exists() {
        persist::write(path, text).map_err(|e| e.to_string())
    } else {
        std::fs::write(path, text).map_err(|e| format!("{}: cannot write it: {e}", path.display()))
    }
}

/// Backs the client file up beside itself, then writes `text` over it.
fn install_file(file: &ClientFile, text: &str) -> Result<PathBuf, String> {
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let name = file
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = (1..)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            file.path
                .with_file_name(format!("{name}{BACKUP_INFIX}{stamp}{suffix}"))
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or_default();
    // The backup holds what was read, byte for byte, with the file's
    // permissions (a client config may hold tokens).
    std::fs::write(&backup, &file.text)
        .and_then(|()| {
            let permissions = std::fs::metadata(&file.path)?.permissions();
            std::fs::set_permissions(&backup, permissions)
        })
        .map_err(|e| format!("{}: cannot write the backup: {e}", backup.display()))?;
    persist::write(&file.path, text).map_err(|e| e.to_string())?;
    Ok(backup)
}

/// `--undo`: for each candidate file with a backup, restores the newest one
/// if the file still launches the gateway, then removes the backup.
fn undo(candidates: &[(Option<Client>, PathBuf)], dry_run: bool) -> ExitCode {
    let mut restored = 0;
    let mut failed = false;
    for (_, path) in candidates {
        let Some(backup) = newest_backup(path) else {
            continue;
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        let file = clients::read(path, &cwd).ok().flatten();
        let current = file.as_ref().map(|f| f.text.clone()).unwrap_or_default();
        let installed = file.as_ref().is_some_and(|file| {
            file.locations.iter().any(|location| {
                clients::servers_at(&file.value, location)
                    .and_then(|servers| servers.get(clients::GATEWAY_ENTRY))
                    .is_some_and(clients::launches_gateway)
            })
        });
        if !installed {
            output::error(&format!(
                "{}: no longer launches only1mcp (changed since the install?), so it is left as it is; its backup is {}",
                path.display(),
                backup.display()
            ));
            failed = true;
            continue;
        }
        let text = match std::fs::read_to_string(&backup) {
            Ok(text) => text,
            Err(e) => {
                output::error(&format!("{}: cannot read it: {e}", backup.display()));
                failed = true;
                continue;
            }
        };
        if dry_run {
            output::line(&diff(path, &current, &text));
            restored += 1;
            continue;
        }
        match persist::write(path, &text) {
            Ok(()) => {
                let _ = std::fs::remove_file(&backup);
                output::line(&format!(
                    "{}: restored from {}",
                    path.display(),
                    backup.display()
                ));
                restored += 1;
            }
            Err(e) => {
                output::error(&e.to_string());
                failed = true;
            }
        }
    }
    if restored == 0 && !failed {
        output::note("no client config installed by only1mcp import was found");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The newest `--install` backup of `path`, if any.
fn newest_backup(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let prefix = format!("{name}{BACKUP_INFIX}");
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|file| file.starts_with(&prefix))
        .max_by(|a, b| {
            // Same second, numbered: `…Z-2` is newer than `…Z`.
            let key = |s: &str| {
                let rest = &s[prefix.len()..];
                let (stamp, n) = rest.split_once("Z-").unwrap_or((rest, "1"));
                (
                    stamp.trim_end_matches('Z').to_owned(),
                    n.parse::<u32>().unwrap_or(1),
                )
            };
            key(a).cmp(&key(b))
        })
        .map(|file| dir.join(file))
}

/// A unified diff of `before` → `after` for `path`.
fn diff(path: &Path, before: &str, after: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}
