//! The `auth:` section: who may use the HTTP faces (admission) and what each
//! caller may see and call (roles).
//!
//! With no `api_keys` and no `oauth`, nothing is admitted or checked: every
//! HTTP client is anonymous, as before (and stdio always is). With either,
//! every request to `/mcp`, `/mcp/<profile>`, `/sse`, `/messages` and `/ws`
//! must carry `Authorization: Bearer <token>`: an API key, or a JWT of the
//! configured authorization server. See ADR 0016.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `auth:` section.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AuthConfig {
    /// API keys (static bearer tokens), each naming the principal it stands
    /// for. Stored as SHA-256 digests, or read from the environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<ApiKeyConfig>,
    /// The OAuth 2.1 authorization server whose JWTs the gateway accepts
    /// (the MCP authorization spec's resource server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConfig>,
    /// Roles: what a principal holding each may see and call.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleConfig>,
    /// With `true`, a principal sees and calls only what one of its roles
    /// allows; with `false` (the default), whatever no role of it denies.
    #[serde(default)]
    pub default_deny: bool,
    /// Per context profile: the roles one of which a principal must hold,
    /// and the scopes its token must carry, to use `/mcp/<profile>` (the
    /// `default` profile is `/mcp`, `/sse` and `/ws`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, ProfileAccess>,
    /// How many validated tokens are remembered (default 10 000, 1 to
    /// 1 000 000), each until it expires: a token seen again costs a lookup,
    /// not a signature check. When full, the entry nearest its expiry goes.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            oauth: None,
            roles: BTreeMap::new(),
            default_deny: false,
            profiles: BTreeMap::new(),
            cache_size: default_cache_size(),
        }
    }
}

impl AuthConfig {
    /// Whether HTTP clients must authenticate.
    pub fn enabled(&self) -> bool {
        !self.api_keys.is_empty() || self.oauth.is_some()
    }

    /// The bounds of `cache_size`.
    pub const CACHE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;

    /// Every problem of the section, as (field, message).
    pub fn problems(&self, profiles: &[&str]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: &str| problems.push((field, message.to_owned()));
        for (idx, key) in self.api_keys.iter().enumerate() {
            let at = |field: &str| format!("auth.api_keys[{idx}].{field}");
            if key.name.trim().is_empty() {
                problem(at("name"), "must not be empty");
            }
            match (&key.sha256, &key.env) {
                (Some(_), Some(_)) | (None, None) => {
                    problem(at("sha256"), "set exactly one of sha256 and env");
                }
                (Some(digest), None) => {
                    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                        problem(at("sha256"), "must be 64 hex digits (the key's SHA-256)");
                    }
                }
                (None, Some(var)) => {
                    if var.is_empty() || var.contains('=') || var.contains('\0') {
                        problem(at("env"), "is not a valid variable name");
                    }
                }
            }
        }
        if let Some(oauth) = &self.oauth {
            if !is_url(&oauth.issuer) {
                problem("auth.oauth.issuer".to_owned(), "must be an http(s) URL");
            }
            if !is_url(&oauth.resource) || oauth.resource.contains('#') {
                problem(
                    "auth.oauth.resource".to_owned(),
                    "must be an http(s) URL without a fragment (the gateway's /mcp URL as clients reach it)",
                );
            }
            if oauth.jwks_uri.as_deref().is_some_and(|u| !is_url(u)) {
                problem("auth.oauth.jwks_uri".to_owned(), "must be an http(s) URL");
            }
            if oauth.roles_claim.split('.').any(str::is_empty) {
                problem(
                    "auth.oauth.roles_claim".to_owned(),
                    "must be a dotted path of claim names",
                );
            }
            if oauth.leeway > Duration::from_secs(300) {
                problem("auth.oauth.leeway".to_owned(), "must be at most 5m");
            }
        }
        for (name, role) in &self.roles {
            for (list, rules) in [("allow", &role.allow), ("deny", &role.deny)] {
                for (idx, rule) in rules.iter().enumerate() {
                    if let Err(e) = Rule::parse(rule) {
                        problem(format!("auth.roles.{name}.{list}[{idx}]"), &e);
                    }
                }
            }
        }
        for name in self.profiles.keys() {
            if !profiles.contains(&name.as_str()) {
                problem(format!("auth.profiles.{name}"), "names no context profile");
            }
        }
        if !Self::CACHE_SIZE_RANGE.contains(&self.cache_size) {
            problem(
                "auth.cache_size".to_owned(),
                "must be between 1 and 1000000",
            );
        }
        problems
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("api_keys", &self.api_keys.len())
            .field("oauth", &self.oauth)
            .field("roles", &self.roles)
            .field("default_deny", &self.default_deny)
            .field("profiles", &self.profiles)
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

fn default_cache_size() -> usize {
    10_000
}

fn is_url(text: &str) -> bool {
    (text.starts_with("https://") || text.starts_with("http://")) && text.len() > "https://".len()
}

/// One API key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ApiKeyConfig {
    /// The principal's subject (in the log, the audit file and RBAC).
    pub name: String,
    /// The key's SHA-256, as 64 hex digits (`printf %s KEY | sha256sum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Or: the environment variable holding the key itself (read at start
    /// and on reload; an unset or empty variable is an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its scopes (for profiles that require some).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The authorization server whose access tokens (JWTs) the gateway accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OAuthConfig {
    /// The issuer (`iss` of its tokens); its metadata is found at
    /// `<issuer>/.well-known/openid-configuration`, else
    /// `/.well-known/oauth-authorization-server` (RFC 8414). `http://` only
    /// for a loopback host.
    pub issuer: String,
    /// The gateway's canonical resource URI (RFC 8707; its `/mcp` URL as
    /// clients reach it, such as `https://mcp.example.com/mcp`). A token's
    /// `aud` must name it, or `<resource>/<profile>` for `/mcp/<profile>`.
    pub resource: String,
    /// The issuer's JWKS URL, when not taken from its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Where the principal's roles are in a token: a dotted claim path
    /// (default `roles`; `realm_access.roles` for Keycloak, `groups` for
    /// others). A string value is one role, an array several.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Scopes the gateway advertises in its resource metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Scopes every token must carry (beyond a profile's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s, at most 5 min).
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

/// A role's rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RoleConfig {
    /// What it may see and call: `tool:GLOB`, `prompt:GLOB`,
    /// `resource:GLOB` (on exposed names and URIs) or `server:GLOB` (every
    /// item of the matching servers).
    #[serde(default)]
    pub allow: Vec<String>,
    /// What it may not, in the same form; a deny of any role wins over
    /// every allow.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Who may use one context profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ProfileAccess {
    /// A principal needs one of these roles (none listed: any principal).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its token needs all these scopes (403 `insufficient_scope` when not).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// Every item of a server.
    Server,
    /// A tool, by exposed name.
    Tool,
    /// A prompt, by exposed name.
    Prompt,
    /// A resource or template, by URI.
    Resource,
}

/// One parsed rule: its kind and glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<'a> {
    /// What it matches.
    pub kind: RuleKind,
    /// The glob.
    pub glob: &'a str,
}

impl<'a> Rule<'a> {
    /// Reads `kind:glob`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let Some((kind, glob)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} must be kind:glob (kind tool, prompt, resource or server)"
            ));
        };
        let kind = match kind {
            "server" => RuleKind::Server,
            "tool" => RuleKind::Tool,
            "prompt" => RuleKind::Prompt,
            "resource" => RuleKind::Resource,
            other => {
                return Err(format!(
                    "unknown kind {other:?} (tool, prompt, resource or server)"
                ));
            }
        };
        globset::Glob::new(glob).map_err(|e| e.kind().to_string())?;
        Ok(Self { kind, glob })
    }
}
