//! The `metrics:` section: the Prometheus page (ADR 0018).
//!
//! On by default. The page is served at `GET /metrics` on the admin
//! listener (behind the admin token, or `metrics.token`), and, when `path`
//! is set, on the MCP listener too (behind `metrics.token` when it is set).
//! Read at start-up only.

use serde::{Deserialize, Serialize};

/// Prometheus metrics.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MetricsConfig {
    /// Whether calls are measured and the page served (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Also serve the page on the MCP listener at this path (say
    /// `/metrics`); unset (the default): only on the admin listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A bearer token that reads the page and nothing else (at least 16
    /// characters): accepted by the admin listener's `/metrics` besides the
    /// admin token, and required by the MCP listener's `path` when set.
    /// Give it to Prometheus (`authorization.credentials_file`) instead of
    /// the admin token. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            token: None,
        }
    }
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl MetricsConfig {
    /// The shortest `metrics.token` accepted.
    pub const MIN_TOKEN_LEN: usize = 16;

    /// The paths of the MCP listener that `path` may not take.
    pub const RESERVED_PATHS: [&str; 6] =
        ["/mcp", "/sse", "/messages", "/ws", "/healthz", "/readyz"];

    /// What is wrong with it, as (field, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(path) = &self.path {
            let reserved = Self::RESERVED_PATHS
                .iter()
                .any(|r| path == r || path.starts_with(&format!("{r}/")));
            if !path.starts_with('/') || path.len() < 2 || path.contains(['?', '#']) {
                problems.push((
                    "metrics.path".to_owned(),
                    "must be a path such as /metrics".to_owned(),
                ));
            } else if reserved {
                problems.push((
                    "metrics.path".to_owned(),
                    format!("{path} is a path of the MCP listener already"),
                ));
            }
        }
        if self
            .token
            .as_deref()
            .is_some_and(|t| t.trim().chars().count() < Self::MIN_TOKEN_LEN)
        {
            problems.push((
                "metrics.token".to_owned(),
                format!("must be at least {} characters", Self::MIN_TOKEN_LEN),
            ));
        }
        problems
    }
}
