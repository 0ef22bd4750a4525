//! The `context:` section: how much of the tool catalog each client sees.
//!
//! A *profile* picks a mode (`full`, `compact`, `discover`, `auto`) and
//! optionally the toolsets it exposes. The profile named `default` serves
//! `/mcp` and stdio unless `--profile` says otherwise; every profile is also
//! served at `/mcp/<name>`. Without a `profiles` map, `default` is
//! `{ mode: <context.mode> }`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diet::compact::CompactOptions;

/// How a profile presents the tool catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// Tools as the backends listed them.
    #[default]
    Full,
    /// Descriptions cut and schema annotations removed; every tool keeps
    /// accepting exactly the same arguments.
    Compact,
    /// Meta tools (`search_tools`, `describe_tool`, `call_tool`) and the
    /// pinned tools instead of the whole catalog.
    Discover,
    /// `full` while the listing fits in `budget_tokens`, `discover` (with
    /// the most-used tools pinned) above it.
    Auto,
}

impl ContextMode {
    /// Every mode, in the order reports show them.
    pub const ALL: [Self; 4] = [Self::Full, Self::Compact, Self::Discover, Self::Auto];

    /// The name used in config and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Compact => "compact",
            Self::Discover => "discover",
            Self::Auto => "auto",
        }
    }
}

impl std::fmt::Display for ContextMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ContextMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (expected full, compact, discover or auto)"))
    }
}

/// The `context:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// The mode of the `default` profile when `profiles` does not define it.
    pub mode: ContextMode,
    /// `auto`: the largest full listing (in tokens) still served in full.
    pub budget_tokens: usize,
    /// `auto` and `discover`: how many of the most-called tools stay listed
    /// beside the meta tools (recomputed when the catalog is rebuilt).
    pub pin_most_used: usize,
    /// Tools always listed beside the meta tools (exposed names).
    pub pinned: Vec<String>,
    /// `compact`: the longest tool description kept, in characters, after
    /// cutting to the first sentence.
    pub description_max: usize,
    /// `compact`: the longest parameter description kept (0 drops them).
    pub param_description_max: usize,
    /// Per-server overrides of the compaction lengths.
    pub servers: BTreeMap<String, ContextOverride>,
    /// Named subsets of tools.
    pub toolsets: BTreeMap<String, Vec<ToolsetRule>>,
    /// Named client profiles.
    pub profiles: BTreeMap<String, ProfileConfig>,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            mode: ContextMode::Full,
            budget_tokens: 10_000,
            pin_most_used: 5,
            pinned: Vec::new(),
            description_max: CompactOptions::default().description_max,
            param_description_max: CompactOptions::default().param_description_max,
            servers: BTreeMap::new(),
            toolsets: BTreeMap::new(),
            profiles: BTreeMap::new(),
        }
    }
}

/// A server's own compaction lengths.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ContextOverride {
    /// Replaces `context.description_max` for this server's tools.
    pub description_max: Option<usize>,
    /// Replaces `context.param_description_max` for this server's tools.
    pub param_description_max: Option<usize>,
}

/// One rule of a toolset: a server's tools, all of them or those whose
/// (backend) name matches one of the globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ToolsetRule {
    /// The server id.
    pub server: String,
    /// Globs over the server's own tool names; empty means every tool.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// One client profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// The mode; `context.mode` when unset.
    pub mode: Option<ContextMode>,
    /// The toolsets whose tools are listed; empty lists every tool.
    pub toolsets: Vec<String>,
    /// Whether tools outside the toolsets stay reachable through the meta
    /// tools (`search_tools`, `call_tool`). Default: yes.
    pub discover_hidden: Option<bool>,
}

impl ContextConfig {
    /// The name of the profile served at `/mcp` and on stdio.
    pub const DEFAULT_PROFILE: &'static str = "default";

    /// Every profile, `default` included, with its mode resolved.
    pub fn resolved_profiles(&self) -> BTreeMap<String, ProfileConfig> {
        let mut profiles = self.profiles.clone();
        profiles
            .entry(Self::DEFAULT_PROFILE.to_owned())
            .or_default();
        for profile in profiles.values_mut() {
            profile.mode.get_or_insert(self.mode);
            profile.discover_hidden.get_or_insert(true);
        }
        profiles
    }

    /// Problems with profile names, toolset references and globs, each
    /// naming its field.
    pub fn problems(&self, servers: &[&str]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for name in self.profiles.keys() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push((
                    format!("context.profiles.{name}"),
                    "a profile name may only contain ASCII letters, digits, '_' and '-' (it is a URL path segment)".to_owned(),
                ));
            }
        }
        for (name, profile) in &self.profiles {
            for (idx, set) in profile.toolsets.iter().enumerate() {
                if !self.toolsets.contains_key(set) {
                    problems.push((
                        format!("context.profiles.{name}.toolsets[{idx}]"),
                        format!("no toolset named {set:?} in context.toolsets"),
                    ));
                }
            }
        }
        for (name, rules) in &self.toolsets {
            for (idx, rule) in rules.iter().enumerate() {
                let at = format!("context.toolsets.{name}[{idx}]");
                if !servers.contains(&rule.server.as_str()) {
                    problems.push((
                        format!("{at}.server"),
                        format!("no server {:?} in servers", rule.server),
                    ));
                }
                for (pidx, pattern) in rule.tools.iter().enumerate() {
                    if let Err(e) = globset::Glob::new(pattern) {
                        problems.push((format!("{at}.tools[{pidx}]"), e.kind().to_string()));
                    }
                }
            }
        }
        for id in self.servers.keys() {
            if !servers.contains(&id.as_str()) {
                problems.push((
                    format!("context.servers.{id}"),
                    format!("no server {id:?} in servers"),
                ));
            }
        }
        problems
    }
}
