//! The merged catalog: every backend's tools, prompts, resources and resource
//! templates under one set of names, and the routes back.
//!
//! [`Catalog::build`] is pure: given each server's lists (in priority order)
//! and naming rules, it returns the merged lists, an index from exposed name to
//! `(server, backend name)`, and every collision it had to resolve. Nothing is
//! dropped silently: a renamed item or a shadowed resource is a [`Conflict`].
//!
//! Output order is fixed: items are sorted by exposed name (resources by URI),
//! so `tools/list` stays byte-identical across calls while the catalog does not
//! change, and clients' prompt caches keep hitting.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::value::RawValue;

use crate::config::{PrefixMode, ToolFilterConfig};
use crate::mcp::{ListKind, RawObject, set_string_field, string_field};
use crate::naming::{Namespace, is_portable_tool_name, tool_alias};

/// A compiled allow/deny filter for tool names.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    allow: Option<GlobSet>,
    deny: Option<GlobSet>,
}

impl ToolFilter {
    /// Compiles the patterns. [`crate::config::Config::validate`] has already
    /// checked them; an invalid pattern here is an error all the same.
    pub fn new(config: &ToolFilterConfig) -> Result<Self, globset::Error> {
        fn build(patterns: &[String]) -> Result<Option<GlobSet>, globset::Error> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                builder.add(Glob::new(pattern)?);
            }
            builder.build().map(Some)
        }
        Ok(Self {
            allow: build(&config.allow)?,
            deny: build(&config.deny)?,
        })
    }

    /// A filter that exposes nothing (the safe fallback for a filter that
    /// could not be compiled).
    pub fn deny_all() -> Self {
        Self {
            allow: Some(GlobSet::empty()),
            deny: None,
        }
    }

    /// Whether a tool with this (backend) name is exposed.
    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|set| set.is_match(name))
            && !self.deny.as_ref().is_some_and(|set| set.is_match(name))
    }
}

/// How one server's names are exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Always `server__name`.
    Always,
    /// Bare unless another server has the same name.
    OnConflict,
    /// Bare; a collision still falls back to the prefixed name.
    Never,
}

impl Prefix {
    /// The effective mode from the global mode and a server's override.
    pub fn resolve(global: PrefixMode, server: Option<bool>) -> Self {
        match (server, global) {
            (Some(true), _) => Self::Always,
            (Some(false), _) => Self::Never,
            (None, PrefixMode::Always) => Self::Always,
            (None, PrefixMode::OnConflict) => Self::OnConflict,
        }
    }
}

/// One server's lists, as the catalog builder takes them.
#[derive(Debug, Clone)]
pub struct ServerListing {
    /// The server id.
    pub server: Arc<str>,
    /// How its names are exposed.
    pub prefix: Prefix,
    /// Which of its tools are exposed.
    pub filter: ToolFilter,
    /// Its tools, prompts, resources and templates, as the backend listed them.
    pub lists: Lists,
}

/// A modern list result's cache hint (`ttlMs`, `cacheScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheHint {
    /// How long the list may be cached, in milliseconds.
    pub ttl_ms: u64,
    /// Whether the list depends on who asks (`cacheScope: "private"`).
    pub private: bool,
}

impl CacheHint {
    /// The hint for a merge of parts: the shortest lifetime, private if any
    /// part is. A part without a hint (a legacy server, which can change its
    /// list at any time) counts as a lifetime of 0.
    pub fn merge(parts: impl IntoIterator<Item = Option<Self>>) -> Self {
        let mut merged: Option<Self> = None;
        for part in parts {
            let part = part.unwrap_or_default();
            merged = Some(match merged {
                None => part,
                Some(m) => Self {
                    ttl_ms: m.ttl_ms.min(part.ttl_ms),
                    private: m.private || part.private,
                },
            });
        }
        merged.unwrap_or_default()
    }
}

/// Raw items per list kind.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// `tools/list` items.
    pub tools: Vec<RawObject>,
    /// `prompts/list` items.
    pub prompts: Vec<RawObject>,
    /// `resources/list` items.
    pub resources: Vec<RawObject>,
    /// `resources/templates/list` items.
    pub resource_templates: Vec<RawObject>,
    /// The cache hint the server gave for each list (modern servers only).
    pub hints: HashMap<ListKind, CacheHint>,
}

impl Lists {
    /// The items of one kind.
    pub fn get(&self, kind: ListKind) -> &[RawObject] {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::ResourceTemplates => &self.resource_templates,
        }
    }

    /// How many items there are, of every kind.
    pub fn items(&self) -> usize {
        self.tools.len() + self.prompts.len() + self.resources.len() + self.resource_templates.len()
    }

    /// The items of one kind, mutably.
    pub fn get_mut(&mut self, kind: ListKind) -> &mut Vec<RawObject> {
        match kind {
            ListKind::Tools => &mut self.tools,
            ListKind::Prompts => &mut self.prompts,
            ListKind::Resources => &mut self.resources,
            ListKind::ResourceTemplates => &mut self.resource_templates,
        }
    }
}

/// Where an exposed name or URI routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The owning server.
    pub server: Arc<str>,
    /// The item's name (or URI) on that server.
    pub name: Arc<str>,
}

/// An item in the merged catalog.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where calls to it go.
    pub route: Route,
    /// The exposed name (or URI / URI template).
    pub exposed: Arc<str>,
    /// The item as clients see it (name rewritten, everything else verbatim).
    pub item: Arc<RawValue>,
    /// For a tool exposed under a portable alias: the name it would have had
    /// (see [`crate::naming::tool_alias`]).
    pub alias_of: Option<Arc<str>>,
}

/// A collision the builder resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Which list.
    pub kind: ListKind,
    /// The name (or URI) both servers wanted.
    pub wanted: String,
    /// The server that kept it.
    pub kept_by: Arc<str>,
    /// The server that lost it.
    pub server: Arc<str>,
    /// What the loser's item is exposed as; `None` for a shadowed resource URI,
    /// which cannot be renamed and routes to `kept_by`.
    pub exposed_as: Option<String>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.exposed_as {
            Some(name) => write!(
                f,
                "{} {:?} of server {:?} collides with server {:?}; exposed as {:?}",
                self.kind.key(),
                self.wanted,
                self.server,
                self.kept_by,
                name
            ),
            None => write!(
                f,
                "{} {:?} of server {:?} is shadowed by server {:?}, which owns it",
                self.kind.key(),
                self.wanted,
                self.server,
                self.kept_by
            ),
        }
    }
}

/// The merged catalog of all servers.
///
/// Built from each server's listing in priority order: on a collision the
/// earlier server keeps the name, the later one's item is renamed, and the
/// collision is reported in [`Catalog::conflicts`].
///
/// ```
/// use std::sync::Arc;
///
/// use only1mcp_core::catalog::{Catalog, Lists, Prefix, ServerListing, ToolFilter};
/// use only1mcp_core::config::ToolFilterConfig;
/// use only1mcp_core::mcp::{ListKind, ListPage};
/// use only1mcp_core::naming::Namespace;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listing = |server: &str, prefix, filter, result: &str| -> serde_json::Result<_> {
///     let page = ListPage::parse(ListKind::Tools, serde_json::from_str(result)?)?;
///     Ok(ServerListing {
///         server: Arc::from(server),
///         prefix,
///         filter,
///         lists: Lists { tools: page.items, ..Lists::default() },
///     })
/// };
/// // Both servers want their names bare; `git` hides its `push` tool.
/// let no_push = ToolFilter::new(&ToolFilterConfig { allow: vec![], deny: vec!["push".into()] })?;
/// let fs = listing("fs", Prefix::Never, ToolFilter::default(),
///     r#"{"tools":[{"name":"read_file"},{"name":"status","description":"Disk usage"}]}"#)?;
/// let git = listing("git", Prefix::Never, no_push,
///     r#"{"tools":[{"name":"status","description":"Working tree"},{"name":"push"}]}"#)?;
/// let catalog = Catalog::build(&[fs, git], &Namespace::default());
///
/// // `fs` came first and keeps `status`; git's is renamed, and the collision reported.
/// let exposed: Vec<&str> = catalog.entries(ListKind::Tools).iter().map(|e| &*e.exposed).collect();
/// assert_eq!(exposed, ["git__status", "read_file", "status"]);
/// assert_eq!(
///     catalog.conflicts()[0].to_string(),
///     r#"name "status" of server "git" collides with server "fs"; exposed as "git__status""#
/// );
///
/// // Each exposed name routes back to its owner and the backend's own name.
/// let route = catalog.tool("git__status").expect("routed");
/// assert_eq!((&*route.server, &*route.name), ("git", "status"));
/// assert_eq!(&*catalog.tool("status").expect("routed").server, "fs");
/// assert!(catalog.tool("push").is_none());
///
/// // The listed item carries the exposed name, the rest as the server sent it.
/// let item = &catalog.entries(ListKind::Tools)[0].item;
/// assert_eq!(item.get(), r#"{"name":"git__status","description":"Working tree"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tools: Vec<Entry>,
    prompts: Vec<Entry>,
    resources: Vec<Entry>,
    resource_templates: Vec<Entry>,
    // Keyed by names the backends chose, hashed with foldhash: a lookup
    // per call, several times cheaper than SipHash.
    tool_index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    prompt_index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    resource_index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    conflicts: Vec<Conflict>,
    hints: HashMap<ListKind, CacheHint>,
}

impl Catalog {
    /// Merges the listings, which come in priority order: on a collision the
    /// earlier server keeps the name.
    pub fn build(listings: &[ServerListing], namespace: &Namespace) -> Self {
        let mut conflicts = Vec::new();
        let tools = merge_named(ListKind::Tools, listings, namespace, &mut conflicts);
        let prompts = merge_named(ListKind::Prompts, listings, namespace, &mut conflicts);
        let resources = merge_uris(ListKind::Resources, listings, &mut conflicts);
        let resource_templates = merge_uris(ListKind::ResourceTemplates, listings, &mut conflicts);
        let index = |entries: &[Entry]| {
            entries
                .iter()
                .enumerate()
                .map(|(idx, e)| (e.exposed.clone(), idx))
                .collect::<HashMap<_, _, _>>()
        };
        let hints = ListKind::ALL
            .into_iter()
            .map(|kind| {
                let parts = listings.iter().map(|l| l.lists.hints.get(&kind).copied());
                (kind, CacheHint::merge(parts))
            })
            .collect();
        Self {
            hints,
            tool_index: index(&tools),
            prompt_index: index(&prompts),
            resource_index: index(&resources),
            tools,
            prompts,
            resources,
            resource_templates,
            conflicts,
        }
    }

    /// The merged items of one kind, in their fixed order.
    pub fn entries(&self, kind: ListKind) -> &[Entry] {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::ResourceTemplates => &self.resource_templates,
        }
    }

    /// The cache hint of a merged list: the shortest of the servers'
    /// lifetimes (0 if any server gave none), private if any server's is.
    pub fn cache_hint(&self, kind: ListKind) -> CacheHint {
        self.hints.get(&kind).copied().unwrap_or_default()
    }

    /// The collisions resolved while merging.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// The position of an exposed tool name in [`Catalog::entries`].
    pub fn tool_position(&self, exposed: &str) -> Option<usize> {
        self.tool_index.get(exposed).copied()
    }

    /// Routes an exposed tool name.
    pub fn tool(&self, exposed: &str) -> Option<&Route> {
        self.tool_index
            .get(exposed)
            .map(|&idx| &self.tools[idx].route)
    }

    /// Routes an exposed prompt name.
    pub fn prompt(&self, exposed: &str) -> Option<&Route> {
        self.prompt_index
            .get(exposed)
            .map(|&idx| &self.prompts[idx].route)
    }

    /// Routes a resource URI: a listed resource first, then the first
    /// template (in priority order) that matches.
    pub fn resource(&self, uri: &str) -> Option<&Arc<str>> {
        if let Some(&idx) = self.resource_index.get(uri) {
            return Some(&self.resources[idx].route.server);
        }
        self.resource_template_owner(uri)
    }

    /// The server whose resource template matches `uri`, if any.
    pub fn resource_template_owner(&self, uri: &str) -> Option<&Arc<str>> {
        // Templates stay in priority order: the first match owns the URI.
        self.resource_templates
            .iter()
            .find(|e| template_matches(&e.exposed, uri))
            .map(|e| &e.route.server)
    }

    /// Routes a `ref/resource` completion reference (a template or URI).
    pub fn template(&self, uri_template: &str) -> Option<&Arc<str>> {
        self.resource_templates
            .iter()
            .find(|e| &*e.exposed == uri_template)
            .map(|e| &e.route.server)
            .or_else(|| self.resource(uri_template))
    }
}

/// A cursor that names no position of the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor {0:?}")]
pub struct InvalidCursor(pub String);

/// One page of a merged list: the items after `cursor`, at most `size` of
/// them (0 means all), and the cursor of the next page if any remain.
///
/// The cursor is opaque to clients; it encodes the exposed name (or URI) of
/// the last item served, so paging stays correct when the catalog changes
/// between pages: sorted lists resume after that name, and every item that
/// stays in the list is served exactly once.
pub fn page<'a>(
    kind: ListKind,
    entries: &'a [Entry],
    cursor: Option<&str>,
    size: usize,
) -> Result<(&'a [Entry], Option<String>), InvalidCursor> {
    let start = match cursor.filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => {
            let last = decode_cursor(cursor).ok_or_else(|| InvalidCursor(cursor.to_owned()))?;
            match kind {
                // Sorted by exposed name: resume after it even if it is gone.
                ListKind::Tools | ListKind::Prompts | ListKind::Resources => {
                    entries.partition_point(|e| *e.exposed <= *last)
                }
                // Priority order: the item must still be there.
                ListKind::ResourceTemplates => entries
                    .iter()
                    .position(|e| *e.exposed == *last)
                    .map(|idx| idx + 1)
                    .ok_or_else(|| InvalidCursor(cursor.to_owned()))?,
            }
        }
    };
    let rest = &entries[start.min(entries.len())..];
    if size == 0 || rest.len() <= size {
        return Ok((rest, None));
    }
    let page = &rest[..size];
    let next = page.last().map(|e| encode_cursor(&e.exposed));
    Ok((page, next))
}

fn encode_cursor(last: &str) -> String {
    let mut out = String::with_capacity(2 + last.len() * 2);
    out.push_str("c1");
    for byte in last.bytes() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let hex = cursor.strip_prefix("c1")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|idx| u8::from_str_radix(hex.get(idx..idx + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn merge_named(
    kind: ListKind,
    listings: &[ServerListing],
    namespace: &Namespace,
    conflicts: &mut Vec<Conflict>,
) -> Vec<Entry> {
    // Every (server, name) pair, filtered, in priority order.
    let mut wanted: Vec<(&ServerListing, &RawObject, String)> = Vec::new();
    for listing in listings {
        for item in listing.lists.get(kind) {
            let Some(name) = string_field(item, kind.key()) else {
                continue;
            };
            if kind == ListKind::Tools && !listing.filter.allows(&name) {
                continue;
            }
            wanted.push((listing, item, name));
        }
    }
    // How many servers offer each bare name (for on-conflict prefixing).
    let mut owners: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (listing, _, name) in &wanted {
        owners.entry(name).or_default().insert(&listing.server);
    }
    let mut taken: HashMap<String, Arc<str>> = HashMap::new();
    let mut entries = Vec::with_capacity(wanted.len());
    for (listing, item, name) in &wanted {
        let prefixed = || namespace.join(&listing.server, name);
        let first_choice = match listing.prefix {
            Prefix::Always => prefixed(),
            Prefix::Never => name.clone(),
            Prefix::OnConflict if owners[name.as_str()].len() > 1 => prefixed(),
            Prefix::OnConflict => name.clone(),
        };
        let mut exposed = first_choice.clone();
        if let Some(holder) = taken.get(&exposed) {
            let kept_by = holder.clone();
            exposed = prefixed();
            let mut n = 2;
            while taken.contains_key(&exposed) {
                exposed = format!("{}_{n}", prefixed());
                n += 1;
            }
            conflicts.push(Conflict {
                kind,
                wanted: first_choice,
                kept_by,
                server: listing.server.clone(),
                exposed_as: Some(exposed.clone()),
            });
        }
        // Tool names longer than 64 characters or with characters outside
        // `[A-Za-z0-9_-]` are refused by many clients: expose a portable alias.
        let mut alias_of = None;
        if kind == ListKind::Tools && !is_portable_tool_name(&exposed) {
            let mut salt = 0;
            let mut alias = tool_alias(&exposed, salt);
            while taken.contains_key(&alias) || owners.contains_key(alias.as_str()) {
                salt += 1;
                alias = tool_alias(&exposed, salt);
            }
            alias_of = Some(Arc::from(std::mem::replace(&mut exposed, alias)));
        }
        taken.insert(exposed.clone(), listing.server.clone());
        let mut item = (*item).clone();
        set_string_field(&mut item, kind.key(), &exposed);
        let mut entry = entry(listing, name, exposed, &item);
        entry.alias_of = alias_of;
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.exposed.cmp(&b.exposed));
    entries
}

fn merge_uris(
    kind: ListKind,
    listings: &[ServerListing],
    conflicts: &mut Vec<Conflict>,
) -> Vec<Entry> {
    let mut taken: HashMap<String, Arc<str>> = HashMap::new();
    let mut entries = Vec::new();
    for listing in listings {
        for item in listing.lists.get(kind) {
            let Some(uri) = string_field(item, kind.key()) else {
                continue;
            };
            if let Some(holder) = taken.get(&uri) {
                conflicts.push(Conflict {
                    kind,
                    wanted: uri,
                    kept_by: holder.clone(),
                    server: listing.server.clone(),
                    exposed_as: None,
                });
                continue;
            }
            taken.insert(uri.clone(), listing.server.clone());
            entries.push(entry(listing, &uri, uri.clone(), item));
        }
    }
    // Templates keep priority order, since routing takes the first match;
    // resources are sorted for a stable listing.
    if kind == ListKind::Resources {
        entries.sort_by(|a, b| a.exposed.cmp(&b.exposed));
    }
    entries
}

fn entry(listing: &ServerListing, name: &str, exposed: String, item: &RawObject) -> Entry {
    let item = serde_json::value::to_raw_value(item)
        .map(Arc::from)
        .unwrap_or_else(|_| Arc::from(RawValue::NULL.to_owned()));
    Entry {
        route: Route {
            server: listing.server.clone(),
            name: name.into(),
        },
        exposed: exposed.into(),
        item,
        alias_of: None,
    }
}

/// Whether `uri` matches an RFC 6570 URI template (levels 1–3, as MCP uses
/// them): `{var}` matches one or more characters other than `/?#`, `{+var}`
/// and `{#var}` match anything, `{?a,b}` and `{&a}` match a query tail.
pub fn template_matches(template: &str, uri: &str) -> bool {
    match template.find('{') {
        None => template == uri,
        Some(open) => {
            let Some(close_rel) = template[open..].find('}') else {
                return template == uri;
            };
            let close = open + close_rel;
            let (literal, expr, rest) = (
                &template[..open],
                &template[open + 1..close],
                &template[close + 1..],
            );
            let Some(tail) = uri.strip_prefix(literal) else {
                return false;
            };
            let (stops, min): (&[char], usize) = match expr.chars().next() {
                Some('+' | '#') => (&[], 1),
                Some('?' | '&') => (&[], 0),
                _ => (&['/', '?', '#'], 1),
            };
            // Try every split of `tail` that the expression may take, longest
            // first (templates are short, so this stays cheap).
            let max = tail.find(|c| stops.contains(&c)).unwrap_or(tail.len());
            (min..=max)
                .rev()
                .filter(|&len| tail.is_char_boundary(len))
                .any(|len| template_matches(rest, &tail[len..]))
        }
    }
}

#[cfg(test)]
mod tests;
