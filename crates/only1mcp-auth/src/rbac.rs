//! Role-based access: which tools, prompts and resources a principal may
//! see and call.
//!
//! Each role of `auth.roles` has `allow` and `deny` rules (`tool:GLOB`,
//! `prompt:GLOB`, `resource:GLOB` on exposed names and URIs, `server:GLOB`
//! on server ids, covering every item of the server). An item is allowed to
//! a principal when no rule of any of its roles denies it (deny wins) and a
//! rule of one of its roles allows it, or, without `auth.default_deny`, when
//! none denies it. Roles a principal holds that the config does not name
//! grant nothing.
//!
//! The same [`Policy`] filters what a principal is listed (the session asks
//! [`Policy::allows`] for each item) and refuses its calls ([`refusal`],
//! which the gateway's call stack runs in its router, inside every layer).
//! A refused call fails with
//! [`Error::Concealed`]: the client gets exactly the answer of an unknown
//! name, while a layer outside this one (audit) sees the refusal.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use globset::{Glob, GlobSet, GlobSetBuilder};
use only1mcp_core::Error;
use only1mcp_core::config::AuthConfig;
use only1mcp_core::config::auth::{Rule, RuleKind};
use only1mcp_core::pipeline::{Principal, Routed};

/// The roles' rules, compiled.
#[derive(Debug)]
pub struct Policy {
    roles: HashMap<String, Rules>,
    default_deny: bool,
}

/// One role's rules: a glob set per kind, for allow and for deny.
#[derive(Debug, Default)]
struct Rules {
    allow: Sets,
    deny: Sets,
}

#[derive(Debug, Default)]
struct Sets {
    server: Option<GlobSet>,
    tool: Option<GlobSet>,
    prompt: Option<GlobSet>,
    resource: Option<GlobSet>,
}

impl Sets {
    fn build(rules: &[String]) -> Result<Self, String> {
        let mut builders: [Option<GlobSetBuilder>; 4] = Default::default();
        for text in rules {
            let rule = Rule::parse(text)?;
            let slot = match rule.kind {
                RuleKind::Server => 0,
                RuleKind::Tool => 1,
                RuleKind::Prompt => 2,
                RuleKind::Resource => 3,
            };
            let glob = Glob::new(rule.glob).map_err(|e| e.to_string())?;
            builders[slot]
                .get_or_insert_with(GlobSetBuilder::new)
                .add(glob);
        }
        let [server, tool, prompt, resource] =
            builders.map(|b| b.map(|b| b.build().map_err(|e| e.to_string())));
        Ok(Self {
            server: server.transpose()?,
            tool: tool.transpose()?,
            prompt: prompt.transpose()?,
            resource: resource.transpose()?,
        })
    }

    fn matches(&self, kind: RuleKind, server: &str, name: &str) -> bool {
        let set = match kind {
            RuleKind::Server => None,
            RuleKind::Tool => self.tool.as_ref(),
            RuleKind::Prompt => self.prompt.as_ref(),
            RuleKind::Resource => self.resource.as_ref(),
        };
        set.is_some_and(|s| s.is_match(name))
            || self.server.as_ref().is_some_and(|s| s.is_match(server))
    }
}

impl Policy {
    /// The policy of `auth`; `None` when it has no roles and no default
    /// deny (everything is allowed to everyone: nothing to check).
    pub fn new(auth: &AuthConfig) -> Result<Option<Self>, String> {
        if auth.roles.is_empty() && !auth.default_deny {
            return Ok(None);
        }
        let mut roles = HashMap::with_capacity(auth.roles.len());
        for (name, role) in &auth.roles {
            let rules = Rules {
                allow: Sets::build(&role.allow).map_err(|e| format!("auth.roles.{name}: {e}"))?,
                deny: Sets::build(&role.deny).map_err(|e| format!("auth.roles.{name}: {e}"))?,
            };
            roles.insert(name.clone(), rules);
        }
        Ok(Some(Self {
            roles,
            default_deny: auth.default_deny,
        }))
    }

    /// A policy that allows nothing to anyone (for a config whose rules
    /// could not be compiled: never an open door).
    pub fn deny_all() -> Self {
        Self {
            roles: HashMap::new(),
            default_deny: true,
        }
    }

    /// Whether `principal` may see and call the item of `kind` named `name`
    /// (exposed name, or URI) on `server`.
    pub fn allows(&self, principal: &Principal, kind: RuleKind, server: &str, name: &str) -> bool {
        let mut allowed = !self.default_deny;
        for role in &principal.roles {
            let Some(rules) = self.roles.get(role) else {
                continue;
            };
            if rules.deny.matches(kind, server, name) {
                return false;
            }
            allowed |= rules.allow.matches(kind, server, name);
        }
        allowed
    }
}

/// The policy in force, swapped whole on reload; `None`: no policy.
pub type SharedPolicy = Arc<ArcSwapOption<Policy>>;

/// The error `policy` refuses `routed` with ([`Error::Concealed`]), or
/// `None` if it may go: a call without a principal (stdio, no `auth`) or
/// without a name (the `logging/setLevel` fan-out) is not judged.
pub fn refusal(policy: &Policy, routed: &Routed) -> Option<Error> {
    let principal = routed.principal.as_deref()?;
    let exposed = routed.exposed.as_deref()?;
    let kind = kind_of(routed)?;
    if policy.allows(principal, kind, routed.server(), exposed) {
        return None;
    }
    let shown = match kind {
        RuleKind::Tool | RuleKind::Server => Error::ToolNotFound(exposed.to_owned()),
        RuleKind::Prompt => Error::PromptNotFound(exposed.to_owned()),
        RuleKind::Resource => Error::ResourceNotFound(exposed.to_owned()),
    };
    Some(Error::Concealed {
        shown: Box::new(shown),
        reason: format!("{} may not use {exposed} (auth.roles)", principal.subject),
    })
}

/// What a call is about, by its method (`completion/complete` by its
/// `ref`); `None` for a call the policy does not judge.
fn kind_of(routed: &Routed) -> Option<RuleKind> {
    match routed.method() {
        "tools/call" => Some(RuleKind::Tool),
        "prompts/get" => Some(RuleKind::Prompt),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            Some(RuleKind::Resource)
        }
        "completion/complete" => {
            #[derive(serde::Deserialize)]
            struct Params {
                r#ref: Ref,
            }
            #[derive(serde::Deserialize)]
            struct Ref {
                r#type: String,
            }
            let params = routed.call.params.as_deref()?;
            let read: Params = serde_json::from_str(params.get()).ok()?;
            match read.r#ref.r#type.as_str() {
                "ref/prompt" => Some(RuleKind::Prompt),
                // Anything else is judged as a resource: refusing more is
                // the safe side.
                _ => Some(RuleKind::Resource),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_core::config::auth::RoleConfig;
    use std::collections::BTreeMap;

    fn policy(default_deny: bool) -> Policy {
        let roles = BTreeMap::from([
            (
                "dev".to_owned(),
                RoleConfig {
                    allow: vec!["tool:arith__*".into(), "server:echo".into()],
                    deny: vec!["tool:*__delete*".into()],
                },
            ),
            (
                "reader".to_owned(),
                RoleConfig {
                    allow: vec!["resource:file:///docs/**".into()],
                    deny: vec!["server:arith".into()],
                },
            ),
        ]);
        Policy::new(&AuthConfig {
            roles,
            default_deny,
            ..AuthConfig::default()
        })
        .expect("valid")
        .expect("a policy")
    }

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            subject: "ana".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..Principal::default()
        }
    }

    #[test]
    fn deny_wins_over_allow_and_default_deny_needs_an_allow() {
        let strict = policy(true);
        let dev = principal(&["dev"]);
        assert!(strict.allows(&dev, RuleKind::Tool, "arith", "arith__add"));
        assert!(!strict.allows(&dev, RuleKind::Tool, "arith", "arith__delete_all"));
        assert!(strict.allows(&dev, RuleKind::Prompt, "echo", "echo__greet"));
        assert!(!strict.allows(&dev, RuleKind::Tool, "fs", "fs__read"));
        // A second role's deny of the whole server wins over the first's allow.
        let both = principal(&["dev", "reader"]);
        assert!(!strict.allows(&both, RuleKind::Tool, "arith", "arith__add"));
        assert!(strict.allows(&both, RuleKind::Resource, "fs", "file:///docs/a/b.md"));
        // Unknown roles grant nothing.
        assert!(!strict.allows(&principal(&["root"]), RuleKind::Tool, "arith", "arith__add"));
        let open = policy(false);
        assert!(open.allows(&principal(&["root"]), RuleKind::Tool, "fs", "fs__read"));
        assert!(!open.allows(&dev, RuleKind::Tool, "fs", "fs__delete"));
    }

    #[test]
    fn no_roles_and_no_default_deny_is_no_policy() {
        assert!(
            Policy::new(&AuthConfig::default())
                .expect("valid")
                .is_none()
        );
    }
}
