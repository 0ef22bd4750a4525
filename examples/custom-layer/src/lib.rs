//! A tower layer of your own in the Only1MCP call pipeline: [`DenyArguments`]
//! refuses a `tools/call` whose arguments match a rule, before the call
//! reaches the backend, and lets every other call through untouched.
//!
//! A rule is `TOOL:ARGUMENT=PATTERN` (globs: `fs__*:path=/etc/**` refuses any
//! `fs__…` tool reading under `/etc`). The layer sees each call after
//! routing ([`Routed::exposed`] is the name the client used, also when it
//! called through a discover profile's `call_tool`), and answers a refusal
//! with [`Error::Denied`], which the client receives as JSON-RPC error
//! -32030 (HTTP 403 for a 2026-07-28 client).
//!
//! It reads the arguments only of calls whose tool matches a rule: every
//! other call costs one glob match on its name.

use std::sync::Arc;
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::pipeline::{Reply, Routed};
use only1mcp_proxy::stack::CallFuture;
use serde_json::Value;
use tower::Service;
use tower::layer::Layer;

/// One rule: refuse `tool` when its argument `argument` is a string that
/// matches `pattern`.
#[derive(Debug, Clone)]
pub struct Rule {
    text: String,
    tool: globset::GlobMatcher,
    argument: String,
    pattern: globset::GlobMatcher,
}

impl std::str::FromStr for Rule {
    type Err = String;

    /// Parses `TOOL:ARGUMENT=PATTERN`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (tool, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected TOOL:ARGUMENT=PATTERN"))?;
        let (argument, pattern) = rest
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected TOOL:ARGUMENT=PATTERN"))?;
        let glob = |g: &str| {
            globset::Glob::new(g)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("{text:?}: {e}"))
        };
        Ok(Self {
            text: text.to_owned(),
            tool: glob(tool)?,
            argument: argument.to_owned(),
            pattern: glob(pattern)?,
        })
    }
}

/// The layer: refuses calls that break one of its rules.
#[derive(Debug, Clone)]
pub struct DenyArgumentsLayer {
    rules: Arc<[Rule]>,
}

impl DenyArgumentsLayer {
    /// A layer enforcing `rules`.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules: rules.into(),
        }
    }
}

impl<S> Layer<S> for DenyArgumentsLayer {
    type Service = DenyArguments<S>;

    fn layer(&self, inner: S) -> DenyArguments<S> {
        DenyArguments {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The service: see [`DenyArgumentsLayer`].
#[derive(Debug, Clone)]
pub struct DenyArguments<S> {
    inner: S,
    rules: Arc<[Rule]>,
}

impl<S> DenyArguments<S> {
    /// The first rule `routed` breaks, if any.
    fn broken(&self, routed: &Routed) -> Option<&Rule> {
        if routed.method() != "tools/call" {
            return None;
        }
        let tool = routed.exposed.as_deref()?;
        let mut rules = self
            .rules
            .iter()
            .filter(|r| r.tool.is_match(tool))
            .peekable();
        rules.peek()?;
        let params: Value = serde_json::from_str(routed.call.params.as_deref()?.get()).ok()?;
        let arguments = params.get("arguments")?;
        rules.find(|rule| {
            arguments
                .get(&rule.argument)
                .and_then(Value::as_str)
                .is_some_and(|value| rule.pattern.is_match(value))
        })
    }
}

impl<S> Service<Routed> for DenyArguments<S>
where
    S: Service<Routed, Response = Reply, Error = Error, Future = CallFuture>,
{
    type Response = Reply;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> CallFuture {
        if let Some(rule) = self.broken(&routed) {
            let error = Error::Denied {
                reason: format!("the call breaks the rule {}", rule.text),
            };
            return Box::pin(std::future::ready(Err(error)));
        }
        self.inner.call(routed)
    }
}
