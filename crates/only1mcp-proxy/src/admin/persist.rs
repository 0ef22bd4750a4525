//! Writing a change made through the admin API back to the config file
//! (`?persist=true`), keeping what the user wrote as far as reasonable.
//!
//! - YAML: only the `servers.<id>` entry is rewritten (or appended, or
//!   removed); every other line, comments included, stays byte for byte.
//!   Comments *inside* the rewritten entry are lost, and a `servers` map
//!   written in flow style (`servers: {a: …}`) is refused.
//! - TOML: edited with `toml_edit`, which keeps comments and layout outside
//!   the entry.
//! - JSON: re-written (JSON has no comments); an entry under `mcpServers`
//!   (Claude Desktop's format) stays there when its settings fit that format.
//!
//! Entries are written with only the fields that differ from the defaults.
//! The file is replaced atomically (see [`write()`]), so the file watcher
//! never reads half a file.

use std::path::{Path, PathBuf};

use only1mcp_core::config::ServerConfig;
use serde_json::{Map, Value};

/// A change to one server's entry.
#[derive(Debug, Clone, Copy)]
pub enum Edit<'a> {
    /// Add the entry, or replace it.
    Upsert(&'a str, &'a ServerConfig),
    /// Remove the entry.
    Remove(&'a str),
}

/// Why the file was not written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file's syntax could not be edited safely.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Applies `edit` to the config file at `path`.
pub fn persist(path: &Path, edit: Edit<'_>) -> Result<(), PersistError> {
    let text = edited(path, edit)?;
    write(path, &text)
}

/// The text of the config file at `path` with `edit` applied (nothing is
/// written).
pub fn edited(path: &Path, edit: Edit<'_>) -> Result<String, PersistError> {
    let text = std::fs::read_to_string(path).map_err(|source| PersistError::Io {
        path: path.to_owned(),
        source,
    })?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => edit_yaml(&text, edit),
        Some("toml") => edit_toml(&text, edit),
        Some("json") => edit_json(&text, edit),
        _ => Err("unknown config format".to_owned()),
    }
    .map_err(|reason| PersistError::Unsupported {
        path: path.to_owned(),
        reason,
    })
}

/// `text`, a YAML config, with `edit` applied the way [`persist`] edits a
/// `.yaml` file (only that entry's lines change); `Err` says why it cannot be
/// edited safely. `only1mcp import` writes its servers through this.
pub fn edited_yaml(text: &str, edit: Edit<'_>) -> Result<String, String> {
    edit_yaml(text, edit)
}

/// Replaces the file at `path` with `text`, atomically: a new file under a
/// random name, created exclusively (`O_EXCL`, so never through a planted
/// symlink) in the same directory with the original's permissions, renamed
/// over it. A `path` that is a symlink stays one: the file it points to is
/// replaced.
pub fn write(path: &Path, text: &str) -> Result<(), PersistError> {
    write_atomically(path, text).map_err(|source| PersistError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    // A symlinked config stays a link: the file it points to is replaced.
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    // A fresh file under a random name, created with O_EXCL (never an
    // existing file or a planted symlink), in the target's directory so the
    // rename is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(".only1mcp-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    let permissions = std::fs::metadata(&target)?.permissions();
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

/// The entry's fields that differ from a default server.
fn fields(server: &ServerConfig) -> Map<String, Value> {
    let baseline = ServerConfig {
        enabled: true,
        ..ServerConfig::default()
    };
    let as_map = |s: &ServerConfig| match serde_json::to_value(s) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let defaults = as_map(&baseline);
    as_map(server)
        .into_iter()
        .filter(|(key, value)| defaults.get(key) != Some(value))
        .collect()
}

// ---- YAML ----------------------------------------------------------------

/// The indentation of a line (spaces), or `None` for a blank line.
fn indent(line: &str) -> Option<usize> {
    let trimmed = line.trim_start_matches(' ');
    let body = trimmed.trim_end();
    (!body.is_empty()).then(|| line.len() - trimmed.len())
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The key of a `key:` line (unquoted), if it is one.
fn yaml_key(line: &str) -> Option<&str> {
    let body = line.trim();
    let (key, rest) = if let Some(quoted) = body.strip_prefix('"') {
        let end = quoted.find('"')?;
        (&quoted[..end], &quoted[end + 1..])
    } else if let Some(quoted) = body.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        let end = body.find(':')?;
        (&body[..end], &body[end..])
    };
    let rest = rest.strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(key.trim_end())
}

/// A key as YAML, quoted when a plain scalar would not read back as the
/// same string.
fn yaml_key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.starts_with(['-', '.'])
        && !key.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
        );
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

/// Renders `map` as a YAML block at `depth` spaces; values are JSON, which
/// YAML reads as flow scalars and sequences.
fn yaml_block(map: &Map<String, Value>, depth: usize, out: &mut String) {
    let pad = " ".repeat(depth);
    for (key, value) in map {
        let key = yaml_key_text(key);
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                yaml_block(inner, depth + 2, out);
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(Value::to_string).collect();
                out.push_str(&format!("{pad}{key}: [{}]\n", items.join(", ")));
            }
            other => out.push_str(&format!("{pad}{key}: {other}\n")),
        }
    }
}

fn yaml_entry(id: &str, server: &ServerConfig, depth: usize) -> String {
    let mut out = format!("{}{}:\n", " ".repeat(depth), yaml_key_text(id));
    yaml_block(&fields(server), depth + 2, &mut out);
    out
}

/// Whether the top-level map `section` has an entry `id` (a flow-style
/// map counts if it names `id` anywhere, to be safe).
fn yaml_mentions(lines: &[String], section: &str, id: &str) -> bool {
    let Some(start) = lines
        .iter()
        .position(|l| indent(l) == Some(0) && yaml_key(l) == Some(section))
    else {
        return false;
    };
    let after = lines[start]
        .split_once(':')
        .map_or("", |(_, rest)| rest.trim());
    if !after.is_empty() && !after.starts_with('#') {
        return after.contains(id);
    }
    let block = lines[start + 1..]
        .iter()
        .take_while(|l| indent(l) != Some(0) || is_comment(l));
    let mut child = None;
    for line in block {
        let Some(depth) = indent(line).filter(|_| !is_comment(line)) else {
            continue;
        };
        let child = *child.get_or_insert(depth);
        if depth == child && yaml_key(line) == Some(id) {
            return true;
        }
    }
    false
}

fn edit_yaml(text: &str, edit: Edit<'_>) -> Result<String, String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
    }
    let id = match edit {
        Edit::Upsert(id, _) | Edit::Remove(id) => id,
    };
    if yaml_mentions(&lines, "mcpServers", id) {
        return Err(format!("{id} is defined under mcpServers; edit it by hand"));
    }
    let servers_idx = lines
        .iter()
        .position(|l| indent(l) == Some(0) && yaml_key(l) == Some("servers"));
    let Some(servers_idx) = servers_idx else {
        return match edit {
            Edit::Remove(_) => Err(format!("no servers.{id} entry in the file")),
            Edit::Upsert(id, server) => {
                let mut out = lines.concat();
                out.push_str("\nservers:\n");
                out.push_str(&yaml_entry(id, server, 2));
                Ok(out)
            }
        };
    };
    // `servers:` with something after the colon is flow style (or `{}`).
    let after = lines[servers_idx]
        .split_once(':')
        .map(|(_, rest)| rest.trim())
        .unwrap_or_default();
    if after == "{}" {
        lines[servers_idx] = "servers:\n".to_owned();
    } else if !after.is_empty() && !after.starts_with('#') {
        return Err("servers is written in flow style; edit it by hand".to_owned());
    }
    // The block: up to the next line at column 0 that is not a comment.
    let block_end = (servers_idx + 1..lines.len())
        .find(|&idx| indent(&lines[idx]) == Some(0) && !is_comment(&lines[idx]))
        .unwrap_or(lines.len());
    let content = |idx: &usize| indent(&lines[*idx]).is_some() && !is_comment(&lines[*idx]);
    let child = (servers_idx + 1..block_end)
        .find(content)
        .and_then(|idx| indent(&lines[idx]))
        .unwrap_or(2);
    let entry_idx = (servers_idx + 1..block_end)
        .find(|&idx| indent(&lines[idx]) == Some(child) && yaml_key(&lines[idx]) == Some(id));
    match (entry_idx, edit) {
        (Some(start), _) => {
            // The entry runs until the next line at its depth or less
            // (comments there belong to what follows), minus trailing blanks.
            let mut end = (start + 1..block_end)
                .find(|&idx| indent(&lines[idx]).is_some_and(|i| i <= child))
                .unwrap_or(block_end);
            while end > start + 1 && indent(&lines[end - 1]).is_none() {
                end -= 1;
            }
            let replacement = match edit {
                Edit::Upsert(id, server) => vec![yaml_entry(id, server, child)],
                Edit::Remove(_) => Vec::new(),
            };
            lines.splice(start..end, replacement);
        }
        (None, Edit::Remove(_)) => return Err(format!("no servers.{id} entry in the file")),
        (None, Edit::Upsert(id, server)) => {
            // After the block's last content line (trailing comments and
            // blank lines belong to what follows).
            let at = (servers_idx + 1..block_end)
                .rev()
                .find(content)
                .map_or(servers_idx + 1, |idx| idx + 1);
            lines.insert(at, yaml_entry(id, server, child));
        }
    }
    Ok(lines.concat())
}

// ---- TOML ----------------------------------------------------------------

fn toml_value(value: &Value) -> Option<toml_edit::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items.iter().filter_map(toml_value) {
                array.push(item);
            }
            array.into()
        }
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (key, item) in map {
                if let Some(item) = toml_value(item) {
                    table.insert(key, item);
                }
            }
            table.into()
        }
    })
}

fn edit_toml(text: &str, edit: Edit<'_>) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let id = match edit {
        Edit::Upsert(id, _) | Edit::Remove(id) => id,
    };
    if doc
        .get("mcpServers")
        .and_then(toml_edit::Item::as_table_like)
        .is_some_and(|servers| servers.contains_key(id))
    {
        return Err(format!("{id} is defined under mcpServers; edit it by hand"));
    }
    if !doc.contains_key("servers") {
        let mut servers = toml_edit::Table::new();
        servers.set_implicit(true);
        doc.insert("servers", toml_edit::Item::Table(servers));
    }
    let Some(toml_edit::Item::Table(servers)) = doc.get_mut("servers") else {
        return Err("servers is not written as a table; edit it by hand".to_owned());
    };
    match edit {
        Edit::Remove(id) => {
            servers
                .remove(id)
                .ok_or_else(|| format!("no servers.{id} entry in the file"))?;
        }
        Edit::Upsert(id, server) => {
            let mut table = toml_edit::Table::new();
            for (key, value) in &fields(server) {
                if let Some(value) = toml_value(value) {
                    table.insert(key, toml_edit::value(value));
                }
            }
            match servers.get_mut(id) {
                // Keep the entry's place and the comment above it.
                Some(toml_edit::Item::Table(existing)) => {
                    existing.clear();
                    for (key, item) in table.iter() {
                        existing.insert(key, item.clone());
                    }
                }
                _ => {
                    servers.insert(id, toml_edit::Item::Table(table));
                }
            }
        }
    }
    Ok(doc.to_string())
}

// ---- JSON ----------------------------------------------------------------

/// The `mcpServers` form of a server, if it fits that format.
fn mcp_entry(server: &ServerConfig) -> Option<Map<String, Value>> {
    let mut map = fields(server);
    let fits = map.keys().all(|k| {
        matches!(
            k.as_str(),
            "command" | "args" | "env" | "cwd" | "url" | "headers" | "transport" | "enabled"
        )
    });
    if !fits {
        return None;
    }
    if let Some(transport) = map.remove("transport") {
        map.insert("type".to_owned(), transport);
    }
    if map.remove("enabled").is_some() {
        map.insert("disabled".to_owned(), Value::Bool(true));
    }
    Some(map)
}

fn edit_json(text: &str, edit: Edit<'_>) -> Result<String, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let root = doc
        .as_object_mut()
        .ok_or_else(|| "the file is not a JSON object".to_owned())?;
    let in_mcp = |root: &Map<String, Value>, id: &str| {
        root.get("mcpServers")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(id))
    };
    match edit {
        Edit::Remove(id) => {
            let section = if in_mcp(root, id) {
                "mcpServers"
            } else {
                "servers"
            };
            root.get_mut(section)
                .and_then(Value::as_object_mut)
                .and_then(|m| m.remove(id))
                .ok_or_else(|| format!("no servers.{id} entry in the file"))?;
        }
        Edit::Upsert(id, server) => {
            // Claude Desktop's format stays itself while it can.
            let prefer_mcp = in_mcp(root, id)
                || (root.contains_key("mcpServers") && !root.contains_key("servers"));
            let entry = mcp_entry(server).filter(|_| prefer_mcp);
            let (section, value, other) = match entry {
                Some(entry) => ("mcpServers", entry, "servers"),
                None => ("servers", fields(server), "mcpServers"),
            };
            if let Some(other) = root.get_mut(other).and_then(Value::as_object_mut) {
                other.remove(id);
            }
            let map = root
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| format!("{section} is not an object"))?;
            map.insert(id.to_owned(), Value::Object(value));
        }
    }
    let mut out = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests;
