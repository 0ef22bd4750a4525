//! The `limits:` section: what one client may make the gateway hold.
//!
//! Each bound applies on every face where it means something (stdio, the
//! HTTP face's Streamable HTTP, HTTP+SSE and WebSocket), and each says what
//! happens at it. The HTTP listener's own bounds (connections, timeouts) are
//! in `http:`.

use serde::{Deserialize, Serialize};

/// Per-client bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LimitsConfig {
    /// The most entries one JSON-RPC batch may hold (default 64, 1 to
    /// 4096). A larger batch is refused whole, none of it run: one
    /// `-32600` error answer with a `null` id (HTTP 400 on Streamable
    /// HTTP). Batches exist only in 2025-03-26; SDKs send a few entries at
    /// a time, and the answers of a batch are gathered before they are
    /// sent, so this bounds that memory. Read for each batch (a reload
    /// applies at once).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The most resource URIs one session may be subscribed to (legacy
    /// `resources/subscribe`; default 128, 1 to 65 536). A subscription
    /// beyond it is refused with -32600 until the session unsubscribes from
    /// one. Each URI costs an upstream subscription while a session wants
    /// it, and resource templates let a client name any number of URIs.
    /// When a session ends, its subscriptions go with it.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_batch: default_max_batch(),
            max_subscriptions: default_max_subscriptions(),
        }
    }
}

fn default_max_batch() -> usize {
    64
}

fn default_max_subscriptions() -> usize {
    128
}

/// The accepted range of `limits.max_batch`.
const MAX_BATCH: std::ops::RangeInclusive<usize> = 1..=4096;
/// The accepted range of `limits.max_subscriptions`.
const MAX_SUBSCRIPTIONS: std::ops::RangeInclusive<usize> = 1..=65_536;

impl LimitsConfig {
    /// Each field out of its range, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut within = |field: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if !range.contains(&value) {
                problems.push((
                    format!("limits.{field}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        };
        within("max_batch", self.max_batch, MAX_BATCH);
        within(
            "max_subscriptions",
            self.max_subscriptions,
            MAX_SUBSCRIPTIONS,
        );
        problems
    }
}
