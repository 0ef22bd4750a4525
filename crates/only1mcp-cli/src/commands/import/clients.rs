//! The MCP clients `only1mcp import` knows: where each keeps its servers, and
//! how each writes one.
//!
//! Every file is read as JSON with comments (Zed's and VS Code's settings are
//! JSONC) into a concrete syntax tree, so `--install` changes the servers
//! block and leaves every other byte where it was. Where the servers sit is
//! read from the content, not the file name, so `--from` takes any of them:
//!
//! - `mcpServers` (Claude Desktop, Claude Code's `.mcp.json`, Cursor,
//!   Windsurf): `command`, `args`, `env`, `cwd`, `url` (Windsurf:
//!   `serverUrl`), `headers`, `type`, `disabled`;
//! - `projects.<this folder>.mcpServers` (Claude Code's `~/.claude.json`,
//!   its "local" scope);
//! - `servers` and `inputs` (VS Code's `mcp.json`; `mcp.servers` in its
//!   `settings.json`): `type`, `command`, `args`, `env`, `envFile`, `cwd`,
//!   `url`, `headers`;
//! - `context_servers` (Zed's `settings.json`): `command` as a string or as
//!   `{ path, args, env }`, `args`, `env`, `url`, `headers`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use only1mcp_core::config::{ServerConfig, UrlTransport};
use serde_json::{Map, Value};

/// A client whose config files `import` finds by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Client {
    /// Claude Desktop (`claude_desktop_config.json`).
    ClaudeDesktop,
    /// Claude Code (`~/.claude.json`, `./.mcp.json`).
    ClaudeCode,
    /// Cursor (`~/.cursor/mcp.json`, `./.cursor/mcp.json`).
    Cursor,
    /// VS Code (`mcp.json` of the user profile, `./.vscode/mcp.json`).
    Vscode,
    /// Windsurf (`~/.codeium/windsurf/mcp_config.json`).
    Windsurf,
    /// Zed (`settings.json`, `./.zed/settings.json`).
    Zed,
}

impl Client {
    /// Every known client, in the order they are looked for.
    pub(crate) const ALL: [Self; 6] = [
        Self::ClaudeDesktop,
        Self::ClaudeCode,
        Self::Cursor,
        Self::Vscode,
        Self::Windsurf,
        Self::Zed,
    ];

    /// The name used on the command line and as a suffix of renamed servers.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::ClaudeDesktop => "claude-desktop",
            Self::ClaudeCode => "claude-code",
            Self::Cursor => "cursor",
            Self::Vscode => "vscode",
            Self::Windsurf => "windsurf",
            Self::Zed => "zed",
        }
    }

    /// The client a file named on the command line belongs to, guessed from
    /// its name and folder (for the suffix of a renamed server).
    pub(crate) fn guess(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let folder = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        Some(match (name, folder) {
            ("claude_desktop_config.json", _) => Self::ClaudeDesktop,
            (".claude.json" | ".mcp.json", _) => Self::ClaudeCode,
            ("mcp_config.json", _) => Self::Windsurf,
            (_, ".cursor") => Self::Cursor,
            (_, ".vscode" | "User") => Self::Vscode,
            (_, ".zed" | "zed" | "Zed") => Self::Zed,
            _ => return None,
        })
    }

    /// The client's config files on this OS, user-level first, then those of
    /// the project in `cwd`. `home` and `config` are the user's home and
    /// config folders (`dirs`).
    pub(crate) fn files(self, home: &Path, config: &Path, cwd: &Path) -> Vec<PathBuf> {
        match self {
            Self::ClaudeDesktop => vec![config.join("Claude").join("claude_desktop_config.json")],
            Self::ClaudeCode => vec![home.join(".claude.json"), cwd.join(".mcp.json")],
            Self::Cursor => vec![
                home.join(".cursor").join("mcp.json"),
                cwd.join(".cursor").join("mcp.json"),
            ],
            Self::Vscode => vec![
                config.join("Code").join("User").join("mcp.json"),
                cwd.join(".vscode").join("mcp.json"),
            ],
            Self::Windsurf => vec![
                home.join(".codeium")
                    .join("windsurf")
                    .join("mcp_config.json"),
            ],
            Self::Zed => {
                let user = if cfg!(windows) {
                    config.join("Zed")
                } else if cfg!(target_os = "macos") {
                    home.join(".config").join("zed")
                } else {
                    config.join("zed")
                };
                vec![
                    user.join("settings.json"),
                    cwd.join(".zed").join("settings.json"),
                ]
            }
        }
    }
}

/// How a servers object writes one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `mcpServers` entries.
    McpServers,
    /// VS Code's `servers` entries.
    Vscode,
    /// Zed's `context_servers` entries.
    Zed,
}

/// One servers object in a file.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// The keys leading to it from the root (`["mcpServers"]`,
    /// `["projects", "/home/me/app", "mcpServers"]`).
    pub(crate) path: Vec<String>,
    /// How its entries are written.
    pub(crate) shape: Shape,
}

impl Location {
    /// The location as a field path, for messages (`mcpServers`,
    /// `projects["/home/me/app"].mcpServers`).
    pub(crate) fn field(&self) -> String {
        let mut out = String::new();
        for key in &self.path {
            out.push_str(&field_key(key));
        }
        out.trim_start_matches('.').to_owned()
    }
}

/// `key` as the next step of a field path: `.key`, or `["key"]` when it has
/// characters other than letters, digits, `_` and `-`.
pub(crate) fn field_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{key}")
    } else {
        format!("[{}]", Value::String(key.to_owned()))
    }
}

/// A client config file, parsed.
#[derive(Debug)]
pub(crate) struct ClientFile {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Its text as read.
    pub(crate) text: String,
    /// Its content.
    pub(crate) value: Value,
    /// The servers objects in it.
    pub(crate) locations: Vec<Location>,
    /// The folder `${workspaceFolder}` means for a project's file.
    pub(crate) project: Option<PathBuf>,
}

/// Reads and parses `path`; `Ok(None)` if it does not exist.
pub(crate) fn read(path: &Path, cwd: &Path) -> Result<Option<ClientFile>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read it: {e}", path.display())),
    };
    let root = parse(path, &text)?;
    let value = root
        .to_serde_value()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let locations = locations_in(&value, cwd);
    let project = project_folder(path);
    Ok(Some(ClientFile {
        path: path.to_owned(),
        text,
        value,
        locations,
        project,
    }))
}

fn parse(path: &Path, text: &str) -> Result<CstRootNode, String> {
    CstRootNode::parse(text, &jsonc_parser::ParseOptions::default()).map_err(|e| {
        format!(
            "{}: not JSON (with comments): {e}; fix the file, or leave it out with --client",
            path.display()
        )
    })
}

/// The folder of the project a file belongs to (`.vscode/mcp.json` → the
/// folder holding `.vscode`), for `${workspaceFolder}`; `None` for a
/// user-level file.
fn project_folder(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    let name = parent.file_name()?.to_str()?;
    if matches!(name, ".vscode" | ".cursor" | ".zed") {
        return parent.parent().map(Path::to_owned);
    }
    (path.file_name()?.to_str()? == ".mcp.json").then(|| parent.to_owned())
}

/// The servers objects of `value` (see the module docs).
pub(crate) fn locations_in(value: &Value, cwd: &Path) -> Vec<Location> {
    let mut out = Vec::new();
    let is_object = |v: Option<&Value>| v.is_some_and(Value::is_object);
    let mut add = |path: &[&str], shape: Shape| {
        out.push(Location {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            shape,
        });
    };
    if is_object(value.get("mcpServers")) {
        add(&["mcpServers"], Shape::McpServers);
    }
    if is_object(value.get("servers")) {
        add(&["servers"], Shape::Vscode);
    }
    if is_object(value.get("mcp").and_then(|mcp| mcp.get("servers"))) {
        add(&["mcp", "servers"], Shape::Vscode);
    }
    if is_object(value.get("context_servers")) {
        add(&["context_servers"], Shape::Zed);
    }
    if let Some(projects) = value.get("projects").and_then(Value::as_object) {
        let canonical = cwd.canonicalize().ok();
        let here = [Some(cwd.to_path_buf()), canonical];
        for (dir, project) in projects {
            let this_folder = here
                .iter()
                .flatten()
                .any(|h| h.as_os_str() == std::ffi::OsStr::new(dir));
            if this_folder && is_object(project.get("mcpServers")) {
                add(&["projects", dir, "mcpServers"], Shape::McpServers);
            }
        }
    }
    out
}

/// The object at `location` in `value`.
pub(crate) fn servers_at<'a>(
    value: &'a Value,
    location: &Location,
) -> Option<&'a Map<String, Value>> {
    location
        .path
        .iter()
        .try_fold(value, |v, key| v.get(key))?
        .as_object()
}

/// What reading one entry gave.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A server, with what the reader had to change or leave out.
    Server(Box<ServerConfig>, Vec<String>),
    /// Not a server the gateway can run; why.
    Skipped(String),
}

/// What an entry's strings may refer to besides environment variables.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// VS Code's `inputs` by id: their descriptions.
    pub(crate) inputs: BTreeMap<String, String>,
    /// The folder `${workspaceFolder}` stands for.
    pub(crate) project: Option<PathBuf>,
}

impl Refs {
    /// The references of `file` (its VS Code inputs, its project folder).
    pub(crate) fn of(file: &ClientFile) -> Self {
        let mut inputs = BTreeMap::new();
        for input in file
            .value
            .get("inputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = input.get("id").and_then(Value::as_str) {
                let description = input
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                inputs.insert(id.to_owned(), description.to_owned());
            }
        }
        Self {
            inputs,
            project: file.project.clone(),
        }
    }
}

/// Reads the entry `name` of a servers object of `shape`; `Err` is a
/// problem with the entry (its field and what to do), which leaves it out.
pub(crate) fn read_entry(
    shape: Shape,
    field: &str,
    value: &Value,
    refs: &Refs,
) -> Result<Entry, String> {
    let Some(entry) = value.as_object() else {
        return Err(format!("{field}: must be an object"));
    };
    let mut notes = Vec::new();
    let mut server = ServerConfig {
        enabled: true,
        ..ServerConfig::default()
    };
    let mut known: Vec<&str> = vec!["command", "args", "env", "cwd", "url", "headers"];
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{field}.{key}: must be a string")),
        }
    };
    let mut args: Vec<String> = Vec::new();
    let mut env = BTreeMap::new();
    let command = match (shape, entry.get("command")) {
        (Shape::Zed, Some(Value::Object(inner))) => {
            // Zed's older form: `"command": { "path", "args", "env" }`.
            args = strings(inner.get("args"), &format!("{field}.command.args"))?;
            env = string_map(inner.get("env"), &format!("{field}.command.env"))?;
            match inner.get("path") {
                Some(Value::String(path)) => Some(path.clone()),
                _ => return Err(format!("{field}.command.path: must be a string")),
            }
        }
        _ => text("command")?,
    };
    args.extend(strings(entry.get("args"), &format!("{field}.args"))?);
    env.extend(string_map(entry.get("env"), &format!("{field}.env"))?);
    let mut url = text("url")?;
    if shape == Shape::McpServers {
        known.push("serverUrl");
        if let Some(server_url) = text("serverUrl")? {
            url.get_or_insert(server_url);
        }
    }
    let headers = string_map(entry.get("headers"), &format!("{field}.headers"))?;
    known.push("type");
    let kind = text("type")?;
    server.transport = match kind.as_deref() {
        None | Some("stdio" | "local") => None,
        Some("http" | "streamable-http" | "streamableHttp" | "streamable_http" | "remote") => {
            Some(UrlTransport::StreamableHttp)
        }
        Some("sse") => Some(UrlTransport::Sse),
        Some("ws" | "websocket") => Some(UrlTransport::Websocket),
        Some(other) => {
            return Err(format!(
                "{field}.type: unknown transport {other:?} (only1mcp runs stdio, http, sse and websocket servers); fix the entry or leave it out"
            ));
        }
    };
    known.extend(["disabled", "enabled"]);
    if entry.get("disabled") == Some(&Value::Bool(true))
        || entry.get("enabled") == Some(&Value::Bool(false))
    {
        server.enabled = false;
        notes.push(format!(
            "{field}: disabled in the client, imported with enabled: false"
        ));
    }
    match shape {
        Shape::Vscode => {
            known.push("envFile");
            if entry.contains_key("envFile") {
                notes.push(format!(
                    "{field}.envFile: not read (only1mcp takes env values, or ${{VAR}} from its own environment); move its variables into servers.<id>.env"
                ));
            }
        }
        Shape::Zed => {
            known.extend(["source", "settings"]);
            if command.is_none() && url.is_none() {
                return Ok(Entry::Skipped(format!(
                    "{field}: a server of a Zed extension (no command); give it a command to import it"
                )));
            }
        }
        Shape::McpServers => {}
    }
    let ignored: Vec<&str> = entry
        .keys()
        .map(String::as_str)
        .filter(|key| !known.contains(key))
        .collect();
    if !ignored.is_empty() {
        notes.push(format!(
            "{field}: {} not imported (no such setting in only1mcp)",
            ignored.join(", ")
        ));
    }
    let mut convert = |text: &str, at: &str| gateway_text(text, at, refs, &mut notes);
    match (command, url) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{field}: has both command and url; keep one of them"
            ));
        }
        (None, None) => {
            return Err(format!(
                "{field}: has neither command nor url; add one or leave the entry out"
            ));
        }
        (Some(command), None) => {
            server.command = convert(&command, &format!("{field}.command"));
            server.args = args
                .iter()
                .enumerate()
                .map(|(idx, arg)| convert(arg, &format!("{field}.args[{idx}]")))
                .collect();
            server.env = env
                .iter()
                .map(|(key, value)| (key.clone(), convert(value, &format!("{field}.env.{key}"))))
                .collect();
            if server.transport.is_some() {
                return Err(format!(
                    "{field}.type: {} needs a url, but the entry has a command",
                    kind.unwrap_or_default()
                ));
            }
        }
        (None, Some(url)) => {
            server.url = Some(convert(&url, &format!("{field}.url")));
            server.headers = headers
                .iter()
                .map(|(key, value)| {
                    (
                        key.clone(),
                        convert(value, &format!("{field}.headers.{key}")),
                    )
                })
                .collect();
        }
    }
    if let Some(cwd) = text("cwd")? {
        server.cwd = Some(PathBuf::from(convert(&cwd, &format!("{field}.cwd"))));
    }
    Ok(Entry::Server(Box::new(server), notes))
}

fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(idx, item)| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(format!("{field}[{idx}]: must be a string")),
            })
            .collect(),
        Some(_) => Err(format!("{field}: must be a list of strings")),
    }
}

fn string_map(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, String> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, item)| match item {
                Value::String(s) => Ok((key.clone(), s.clone())),
                Value::Number(n) => Ok((key.clone(), n.to_string())),
                Value::Bool(b) => Ok((key.clone(), b.to_string())),
                _ => Err(format!("{field}.{key}: must be a string")),
            })
            .collect(),
        Some(_) => Err(format!("{field}: must be an object of strings")),
    }
}

/// A client's text with its variable references rewritten for the gateway,
/// which expands `${VAR}` from its own environment (and reads `$$` as `$`):
/// `${env:VAR}` (Cursor, Windsurf, VS Code) becomes `${VAR}`; `${VAR}` stays;
/// `${VAR:-default}` (Claude Code) becomes `${VAR}`, noted, since the
/// gateway has no defaults; VS Code's `${input:id}` becomes `${ID}` and
/// `${userHome}` `${HOME}`, `${pathSeparator}` the OS's; `${workspaceFolder}` becomes the project's folder
/// where there is one. Anything else is kept and noted.
pub(crate) fn gateway_text(
    text: &str,
    field: &str,
    refs: &Refs,
    notes: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        let Some(end) = after.strip_prefix('{').and_then(|body| body.find('}')) else {
            // A `$` of its own: the gateway reads `$$` as one `$`.
            out.push_str(if after.starts_with('$') { "$$$$" } else { "$" });
            rest = after.strip_prefix('$').unwrap_or(after);
            continue;
        };
        let inner = &after[1..=end];
        rest = &after[end + 2..];
        if let Some(var) = inner.strip_prefix("env:") {
            out.push_str(&format!("${{{var}}}"));
        } else if let Some(id) = inner.strip_prefix("input:") {
            let var = env_name(id);
            let description = refs
                .inputs
                .get(id)
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            notes.push(format!(
                "{field}: VS Code asked for the input {id:?}{description}; it is ${{{var}}} now: set {var} in the environment only1mcp starts in"
            ));
            out.push_str(&format!("${{{var}}}"));
        } else if inner == "userHome" {
            out.push_str("${HOME}");
        } else if inner == "pathSeparator" || inner == "/" {
            out.push_str(std::path::MAIN_SEPARATOR_STR);
        } else if inner == "workspaceFolder" {
            match &refs.project {
                Some(folder) => out.push_str(&folder.to_string_lossy()),
                None => {
                    notes.push(format!(
                        "{field}: ${{workspaceFolder}} has no single folder outside the editor; replace it with a path"
                    ));
                    out.push_str("${workspaceFolder}");
                }
            }
        } else if let Some((var, default)) = inner.split_once(":-") {
            notes.push(format!(
                "{field}: ${{{var}:-{default}}} becomes ${{{var}}} (only1mcp has no defaults): set {var} in the environment only1mcp starts in"
            ));
            out.push_str(&format!("${{{var}}}"));
        } else if inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(&format!("${{{inner}}}"));
        } else {
            notes.push(format!(
                "{field}: ${{{inner}}} is the client's own variable, kept as it is; replace it with a value or ${{VAR}}"
            ));
            out.push_str(&format!("${{{inner}}}"));
        }
    }
    out.push_str(rest);
    out
}

/// An environment variable name for a VS Code input id (`github-token` →
/// `GITHUB_TOKEN`).
fn env_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether the entry launches the gateway itself (`only1mcp … start
/// --stdio`), as `--install` writes it.
pub(crate) fn launches_gateway(value: &Value) -> bool {
    let command = match value.get("command") {
        Some(Value::String(command)) => command.as_str(),
        Some(Value::Object(inner)) => inner
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        _ => return false,
    };
    let stem = Path::new(command)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let args: Vec<&str> = value
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    stem == "only1mcp" && args.contains(&"start") && args.contains(&"--stdio")
}

/// The name of the entry `--install` adds.
pub(crate) const GATEWAY_ENTRY: &str = "only1mcp";

/// The entry that launches the gateway, in `shape`'s form.
pub(crate) fn gateway_entry(shape: Shape, program: &Path, config: &Path) -> Value {
    let args = serde_json::json!(["start", "--stdio", "--config", config.to_string_lossy()]);
    let command = Value::String(program.to_string_lossy().into_owned());
    let mut entry = Map::new();
    if shape == Shape::Vscode {
        entry.insert("type".to_owned(), Value::String("stdio".to_owned()));
    }
    entry.insert("command".to_owned(), command);
    entry.insert("args".to_owned(), args);
    Value::Object(entry)
}

/// One change `--install` makes to a servers object.
#[derive(Debug)]
pub(crate) struct Rewrite {
    /// The servers object.
    pub(crate) location: Location,
    /// The entries to take out (now in the gateway's config).
    pub(crate) remove: Vec<String>,
    /// The entry to add (named [`GATEWAY_ENTRY`]), for the file that
    /// launches the gateway.
    pub(crate) add: Option<Value>,
}

/// `text` (the file at `path`) with `rewrites` applied; every byte outside
/// the entries removed and added stays.
pub(crate) fn rewritten(path: &Path, text: &str, rewrites: &[Rewrite]) -> Result<String, String> {
    let root = parse(path, text)?;
    for rewrite in rewrites {
        let field = rewrite.location.field();
        let servers = object_at(&root, &rewrite.location.path)
            .ok_or_else(|| format!("{}: {field}: not an object any more", path.display()))?;
        for name in &rewrite.remove {
            if let Some(prop) = servers.get(name) {
                prop.remove();
            }
        }
        if let Some(entry) = &rewrite.add {
            if let Some(existing) = servers.get(GATEWAY_ENTRY) {
                let ours = existing
                    .to_serde_value()
                    .is_some_and(|value| launches_gateway(&value));
                if !ours {
                    return Err(format!(
                        "{}: {field}.{GATEWAY_ENTRY}: a server of that name is there and is not the gateway; rename it, then run import again",
                        path.display()
                    ));
                }
                existing.remove();
            }
            servers.append(GATEWAY_ENTRY, cst_value(entry));
        }
    }
    Ok(root.to_string())
}

fn object_at(root: &CstRootNode, path: &[String]) -> Option<CstObject> {
    let mut object = root.object_value()?;
    for key in path {
        object = object.object_value(key)?;
    }
    Some(object)
}

fn cst_value(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(cst_value).collect()),
        Value::Object(map) => CstInputValue::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), cst_value(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_references_become_the_gateways() {
        let refs = Refs {
            inputs: BTreeMap::from([("gh-token".to_owned(), "GitHub token".to_owned())]),
            project: Some(PathBuf::from("/work/app")),
        };
        let mut notes = Vec::new();
        let mut convert = |text: &str| gateway_text(text, "f", &refs, &mut notes);
        assert_eq!(convert("${env:API_KEY}"), "${API_KEY}");
        assert_eq!(convert("Bearer ${TOKEN}"), "Bearer ${TOKEN}");
        assert_eq!(convert("${DEBUG:-false}"), "${DEBUG}");
        assert_eq!(convert("${input:gh-token}"), "${GH_TOKEN}");
        assert_eq!(convert("${workspaceFolder}/src"), "/work/app/src");
        assert_eq!(convert("${userHome}/x"), "${HOME}/x");
        assert_eq!(convert("cost: $5 and $$"), "cost: $5 and $$$$");
        assert_eq!(convert("a${pathSeparator}b"), "a/b");
        assert_eq!(convert("${config:editor.x}"), "${config:editor.x}");
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[1].contains("GitHub token") && notes[1].contains("GH_TOKEN"));
    }

    #[test]
    fn the_gateways_own_entry_is_recognised() {
        let ours = serde_json::json!({"command": "/usr/bin/only1mcp", "args": ["start", "--stdio", "--config", "/a.yaml"]});
        assert!(launches_gateway(&ours));
        let other = serde_json::json!({"command": "npx", "args": ["start", "--stdio"]});
        assert!(!launches_gateway(&other));
    }
}
