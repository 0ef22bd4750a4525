//! The context diet on the request path: what each client profile sees of
//! the merged tool catalog.
//!
//! Every time the catalog is rebuilt (a backend's list changed, a reload),
//! [`Views::build`] makes one [`View`] per profile of `context.profiles`
//! (`default` always exists) and the gateway swaps them in with the catalog.
//! A view holds the exact tool listing its clients get, ready to serve:
//!
//! - `full`: the catalog's items as the backends listed them;
//! - `compact`: each item rewritten by [`only1mcp_core::diet::compact`]
//!   (same arguments accepted, fewer tokens);
//! - `discover`: the meta tools (`search_tools`, `describe_tool`,
//!   `call_tool`) and the pinned tools (configured, then the most called);
//! - `auto`: `full` while the full listing fits in `context.budget_tokens`,
//!   `discover` above it.
//!
//! Toolsets narrow what a profile lists; with `discover_hidden` (default)
//! the rest stays reachable through the meta tools, which are then listed
//! too. Listings are sorted by name, so they are byte-identical across calls
//! and reloads while the catalog does not change.
//!
//! Nothing here runs per request except a lookup and an atomic increment.
//! Token counts are made lazily (see [`tokens`]), except for `auto`
//! profiles, which need one to choose their mode.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use globset::{Glob, GlobSet, GlobSetBuilder};
use only1mcp_core::catalog::{Catalog, Entry, Route};
use only1mcp_core::config::{Config, ContextConfig, ContextMode, ProfileConfig};
use only1mcp_core::diet::compact::{CompactOptions, compact_tool};
use only1mcp_core::diet::search::{Document, ToolIndex};
use only1mcp_core::mcp::ListKind;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

pub mod meta;
pub mod tokens;

/// Every profile's view of one catalog snapshot, and how often each tool was
/// called.
#[derive(Debug, Default)]
pub struct Views {
    catalog: Arc<Catalog>,
    views: BTreeMap<Arc<str>, Arc<View>>,
    /// Calls per tool, by position in the catalog's tool list.
    usage: Vec<AtomicU64>,
    /// Tokens of the whole catalog listed in full (the baseline of savings).
    baseline: OnceLock<usize>,
}

/// One profile's view.
#[derive(Debug)]
pub struct View {
    /// The profile's name.
    pub profile: Arc<str>,
    /// The mode the profile asks for.
    pub configured: ContextMode,
    /// The mode in effect (`auto` resolved to `full` or `discover`).
    pub mode: ContextMode,
    /// The listing, sorted by exposed name.
    listed: Vec<Entry>,
    /// Whether a tool (by catalog position) may be called through this view.
    reachable: Vec<bool>,
    /// Whether the meta tools are listed and answered.
    meta: bool,
    /// Compacted items by catalog position (for discover-mode listings).
    compact: Vec<Option<Arc<RawValue>>>,
    /// The search index over the reachable tools, and each document's
    /// catalog position.
    index: Option<(ToolIndex, Vec<usize>)>,
    /// Full listings served (first pages).
    served: AtomicU64,
    /// Tokens of `listed`, counted on first need.
    tokens: OnceLock<usize>,
}

/// What a profile costs and saves, for status reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProfileReport {
    /// The profile.
    pub profile: String,
    /// The mode it asks for.
    pub mode: ContextMode,
    /// The mode in effect.
    pub effective_mode: ContextMode,
    /// Tools in its listing.
    pub tools_listed: usize,
    /// Tokens of its listing (o200k_base).
    pub tokens_listed: usize,
    /// Tokens of the whole catalog listed in full.
    pub tokens_full: usize,
    /// Listings served since the catalog was last rebuilt.
    pub lists_served: u64,
    /// Tokens not sent: `lists_served × (tokens_full − tokens_listed)`.
    pub tokens_saved: u64,
}

/// The JSON array of a listing, exactly as `tools/list` sends it
/// (without pagination).
pub fn listing_json(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(
        2 + entries
            .iter()
            .map(|e| e.item.get().len() + 1)
            .sum::<usize>(),
    );
    push_listing(&mut out, entries);
    out
}

/// Appends the JSON array of `entries`' items to `out`.
pub fn push_listing(out: &mut String, entries: &[Entry]) {
    out.push('[');
    for (idx, entry) in entries.iter().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        out.push_str(entry.item.get());
    }
    out.push(']');
}

/// The compaction lengths for one server.
pub fn compact_options(context: &ContextConfig, server: &str) -> CompactOptions {
    let over = context.servers.get(server);
    CompactOptions {
        description_max: over
            .and_then(|o| o.description_max)
            .unwrap_or(context.description_max),
        param_description_max: over
            .and_then(|o| o.param_description_max)
            .unwrap_or(context.param_description_max),
        ..CompactOptions::default()
    }
}

/// A catalog entry with its item compacted.
pub fn compacted(entry: &Entry, context: &ContextConfig) -> Entry {
    let options = compact_options(context, &entry.route.server);
    // Compacted under the backend's own name (a title that repeats it goes),
    // then exposed under the catalog's.
    let item = serde_json::from_str::<Value>(entry.item.get())
        .ok()
        .map(|mut tool| {
            tool["name"] = Value::from(&*entry.route.name);
            let mut tool = compact_tool(&tool, &options);
            tool["name"] = Value::from(&*entry.exposed);
            tool
        })
        .and_then(|tool| serde_json::value::to_raw_value(&tool).ok())
        .map_or_else(|| entry.item.clone(), Arc::from);
    Entry {
        item,
        ..entry.clone()
    }
}

fn meta_entries() -> Vec<Entry> {
    meta::definitions()
        .into_iter()
        .zip(meta::NAMES)
        .map(|(json, name)| Entry {
            route: Route {
                server: Arc::from(""),
                name: name.into(),
            },
            exposed: name.into(),
            item: Arc::from(
                RawValue::from_string(json).unwrap_or_else(|_| RawValue::NULL.to_owned()),
            ),
            alias_of: None,
        })
        .collect()
}

/// Compiles a profile's toolsets into per-server glob sets (`None`: every
/// tool of that server).
fn toolset_matcher(
    context: &ContextConfig,
    profile: &ProfileConfig,
) -> HashMap<String, Vec<Option<GlobSet>>> {
    let mut by_server: HashMap<String, Vec<Option<GlobSet>>> = HashMap::new();
    for set in &profile.toolsets {
        for rule in context.toolsets.get(set).into_iter().flatten() {
            let globs = if rule.tools.is_empty() {
                None
            } else {
                let mut builder = GlobSetBuilder::new();
                for pattern in &rule.tools {
                    // Validated with the config; a bad pattern matches nothing.
                    if let Ok(glob) = Glob::new(pattern) {
                        builder.add(glob);
                    }
                }
                Some(builder.build().unwrap_or_else(|_| GlobSet::empty()))
            };
            by_server
                .entry(rule.server.clone())
                .or_default()
                .push(globs);
        }
    }
    by_server
}

impl Views {
    /// The views of `catalog` for every profile of `config`. Call counts and
    /// most-used pins carry over from `previous` by tool name.
    pub fn build(catalog: Arc<Catalog>, config: &Config, previous: Option<&Self>) -> Self {
        let tools = catalog.entries(ListKind::Tools);
        let usage: Vec<AtomicU64> = tools
            .iter()
            .map(|e| {
                let before = previous
                    .and_then(|p| p.catalog.tool_position(&e.exposed).map(|pos| (p, pos)))
                    .and_then(|(p, pos)| p.usage.get(pos))
                    .map_or(0, |n| n.load(Ordering::Relaxed));
                AtomicU64::new(before)
            })
            .collect();
        let mut views = Self {
            catalog,
            views: BTreeMap::new(),
            usage,
            baseline: OnceLock::new(),
        };
        for (name, profile) in config.context.resolved_profiles() {
            let view = views.view_for(Arc::from(name.as_str()), &profile, &config.context);
            views.views.insert(view.profile.clone(), Arc::new(view));
        }
        views
    }

    fn view_for(&self, name: Arc<str>, profile: &ProfileConfig, context: &ContextConfig) -> View {
        let tools = self.catalog.entries(ListKind::Tools);
        let matcher = toolset_matcher(context, profile);
        let visible: Vec<bool> = tools
            .iter()
            .map(|e| {
                profile.toolsets.is_empty()
                    || matcher.get(&*e.route.server).is_some_and(|rules| {
                        rules
                            .iter()
                            .any(|g| g.as_ref().is_none_or(|g| g.is_match(&*e.route.name)))
                    })
            })
            .collect();
        let discover_hidden = profile.discover_hidden.unwrap_or(true);
        let reachable = if discover_hidden {
            vec![true; tools.len()]
        } else {
            visible.clone()
        };
        let configured = profile.mode.unwrap_or(context.mode);
        let visible_entries = || {
            tools
                .iter()
                .zip(&visible)
                .filter(|(_, v)| **v)
                .map(|(e, _)| e.clone())
                .collect::<Vec<_>>()
        };
        let mode = match configured {
            ContextMode::Auto => {
                if tokens::count(&listing_json(&visible_entries())) <= context.budget_tokens {
                    ContextMode::Full
                } else {
                    ContextMode::Discover
                }
            }
            other => other,
        };
        let meta =
            mode == ContextMode::Discover || reachable.iter().zip(&visible).any(|(r, v)| *r && !*v);
        let compact: Vec<Option<Arc<RawValue>>> = if mode == ContextMode::Full && !meta {
            Vec::new()
        } else {
            tools
                .iter()
                .zip(&reachable)
                .map(|(e, r)| r.then(|| compacted(e, context).item))
                .collect()
        };
        let with_item = |pos: usize| Entry {
            item: compact
                .get(pos)
                .cloned()
                .flatten()
                .unwrap_or_else(|| tools[pos].item.clone()),
            ..tools[pos].clone()
        };
        let mut listed: Vec<Entry> = match mode {
            ContextMode::Full | ContextMode::Auto => visible_entries(),
            ContextMode::Compact => (0..tools.len())
                .filter(|&pos| visible[pos])
                .map(with_item)
                .collect(),
            ContextMode::Discover => self
                .pinned(context, &reachable)
                .into_iter()
                .map(with_item)
                .collect(),
        };
        let index = meta.then(|| {
            let values: Vec<(usize, Value)> = tools
                .iter()
                .enumerate()
                .filter(|(pos, _)| reachable[*pos])
                .filter_map(|(pos, e)| Some((pos, serde_json::from_str(e.item.get()).ok()?)))
                .collect();
            let index = ToolIndex::build(values.iter().map(|(pos, tool)| Document {
                name: &tools[*pos].exposed,
                server: &tools[*pos].route.server,
                tool,
            }));
            (index, values.iter().map(|(pos, _)| *pos).collect())
        });
        if meta {
            // A backend tool with a meta tool's name stays reachable through
            // `call_tool`; the listing shows the meta tool.
            listed.retain(|e| !meta::NAMES.contains(&&*e.exposed));
            listed.extend(meta_entries());
        }
        listed.sort_by(|a, b| a.exposed.cmp(&b.exposed));
        View {
            profile: name,
            configured,
            mode,
            listed,
            reachable,
            meta,
            compact,
            index,
            served: AtomicU64::new(0),
            tokens: OnceLock::new(),
        }
    }

    /// The pinned tools of a discover listing: the configured ones, then the
    /// most called (at least once), by catalog position.
    fn pinned(&self, context: &ContextConfig, reachable: &[bool]) -> Vec<usize> {
        let mut pinned: Vec<usize> = context
            .pinned
            .iter()
            .filter_map(|name| self.catalog.tool_position(name))
            .filter(|&pos| reachable[pos])
            .collect();
        let mut used: Vec<(u64, usize)> = self
            .usage
            .iter()
            .enumerate()
            .map(|(pos, n)| (n.load(Ordering::Relaxed), pos))
            .filter(|&(n, pos)| n > 0 && reachable[pos] && !pinned.contains(&pos))
            .collect();
        // Most called first; ties by position, so the choice is stable.
        used.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        pinned.extend(
            used.into_iter()
                .take(context.pin_most_used)
                .map(|(_, pos)| pos),
        );
        pinned
    }

    /// The catalog these views were built from.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// A profile's view; the `default` profile's if `profile` is gone (a
    /// reload removed it while a client was connected).
    pub fn get(&self, profile: &str) -> Option<&Arc<View>> {
        self.views
            .get(profile)
            .or_else(|| self.views.get(ContextConfig::DEFAULT_PROFILE))
    }

    /// Whether a profile of this name exists.
    pub fn has_profile(&self, profile: &str) -> bool {
        self.views.contains_key(profile)
    }

    /// Every view, by profile name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<View>> {
        self.views.values()
    }

    /// Counts a call of the tool at `position`.
    pub fn record_call(&self, position: usize) {
        if let Some(n) = self.usage.get(position) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tokens of the whole catalog listed in full.
    pub fn baseline_tokens(&self) -> usize {
        *self
            .baseline
            .get_or_init(|| tokens::count(&listing_json(self.catalog.entries(ListKind::Tools))))
    }

    /// What each profile costs and saved. Counts tokens on first call after a
    /// rebuild (blocking: call it off the async runtime).
    pub fn report(&self) -> Vec<ProfileReport> {
        let full = self.baseline_tokens();
        self.views
            .values()
            .map(|view| {
                let listed = view.tokens();
                let served = view.served.load(Ordering::Relaxed);
                ProfileReport {
                    profile: view.profile.to_string(),
                    mode: view.configured,
                    effective_mode: view.mode,
                    tools_listed: view.listed.len(),
                    tokens_listed: listed,
                    tokens_full: full,
                    lists_served: served,
                    tokens_saved: served
                        .saturating_mul(u64::try_from(full.saturating_sub(listed)).unwrap_or(0)),
                }
            })
            .collect()
    }

    /// Whether two view sets list different tools for some profile.
    pub fn differ(&self, other: &Self) -> bool {
        self.views.len() != other.views.len()
            || self
                .views
                .iter()
                .zip(&other.views)
                .any(|((a, va), (b, vb))| {
                    a != b
                        || va.listed.len() != vb.listed.len()
                        || va
                            .listed
                            .iter()
                            .zip(&vb.listed)
                            .any(|(x, y)| x.item.get() != y.item.get())
                })
    }
}

impl View {
    /// The listing, sorted by exposed name.
    pub fn listed(&self) -> &[Entry] {
        &self.listed
    }

    /// Whether the meta tools are listed and answered.
    pub fn has_meta(&self) -> bool {
        self.meta
    }

    /// Whether the tool at catalog `position` may be called.
    pub fn reachable(&self, position: usize) -> bool {
        self.reachable.get(position).copied().unwrap_or(false)
    }

    /// Counts one listing served.
    pub fn record_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Tokens of the listing (counted on first need).
    pub fn tokens(&self) -> usize {
        *self
            .tokens
            .get_or_init(|| tokens::count(&listing_json(&self.listed)))
    }

    /// The tool at catalog `position` as this view lists it beside the meta
    /// tools (compacted), if reachable.
    pub fn entry_at(&self, catalog: &Catalog, position: usize) -> Option<Entry> {
        if !self.reachable(position) {
            return None;
        }
        let entry = catalog.entries(ListKind::Tools).get(position)?;
        Some(Entry {
            item: self
                .compact
                .get(position)
                .cloned()
                .flatten()
                .unwrap_or_else(|| entry.item.clone()),
            ..entry.clone()
        })
    }

    /// The best `limit` reachable tools for `query`, as catalog positions.
    pub fn search(&self, query: &str, limit: usize) -> Vec<usize> {
        let Some((index, positions)) = &self.index else {
            return Vec::new();
        };
        index
            .search(query, limit)
            .into_iter()
            .filter_map(|hit| positions.get(hit.index).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests;
