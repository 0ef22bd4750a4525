//! The `limits:` section: what one client may make the gateway hold.
//!
//! Each bound applies on every face where it means something (stdio, the
//! HTTP face's Streamable HTTP, HTTP+SSE and WebSocket), and each says what
//! happens at it. The HTTP listener's own bounds (connections, timeouts) are
//! in `http:`. A bound is read when it is applied: a batch, a session or a
//! connection that starts after a reload gets the new value; the HTTP face
//! reads `session_idle_timeout` when it starts.

use std::ops::RangeInclusive;
use std::time::Duration;

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
    /// sent, so this bounds that memory.
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
    /// The most requests of one client answered at once (default 128, 1 to
    /// 65 536): per stdio client, WebSocket connection, HTTP+SSE session and
    /// legacy Streamable HTTP session (a request whose client went away
    /// still counts until it is answered), and per HTTP/2 connection (its
    /// concurrent streams). At the bound the gateway stops reading that
    /// client (a POST waits) until an answer is out: back-pressure, nothing
    /// is refused.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The most bytes queued for one client that it has not taken yet
    /// (default 8 MiB, 64 KiB to 1 GiB; each message counts 64 bytes more
    /// than its length, and one larger than the bound goes when nothing
    /// else is queued). A WebSocket, HTTP+SSE or event-stream client whose
    /// queue would pass it is disconnected and logged; on stdio the
    /// gateway waits for the client to read.
    #[serde(default = "default_max_queued_bytes")]
    pub max_queued_bytes: usize,
    /// The most sessions the HTTP face holds at once: legacy Streamable HTTP
    /// (`Mcp-Session-Id`) and HTTP+SSE (`/sse`) together (default 1024, 1
    /// to 1,000,000). An `initialize` (or `GET /sse`) beyond it is refused
    /// with HTTP 503 and -32033 until one ends. The modern era has no
    /// sessions; a WebSocket session is its connection (`http.max_connections`).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// A legacy Streamable HTTP session with no request in flight and no
    /// GET stream open for this long is ended (default 30 min, 1 s to 7
    /// days); a request naming it then gets 404, and the client starts a new
    /// session with `initialize`, as the specification says.
    #[serde(default = "default_session_idle_timeout", with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// The most bytes of unsolicited messages a legacy Streamable HTTP
    /// session keeps for `Last-Event-ID` replay (default 256 KiB, 1 KiB to
    /// 64 MiB; at most 256 messages too). The oldest go first; a GET stream
    /// that falls behind what is kept is closed (the client resumes with
    /// `Last-Event-ID`).
    #[serde(default = "default_replay_bytes")]
    pub replay_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_batch: default_max_batch(),
            max_subscriptions: default_max_subscriptions(),
            max_in_flight: default_max_in_flight(),
            max_queued_bytes: default_max_queued_bytes(),
            max_sessions: default_max_sessions(),
            session_idle_timeout: default_session_idle_timeout(),
            replay_bytes: default_replay_bytes(),
        }
    }
}

fn default_max_batch() -> usize {
    64
}

fn default_max_subscriptions() -> usize {
    128
}

fn default_max_in_flight() -> usize {
    128
}

fn default_max_queued_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_max_sessions() -> usize {
    1024
}

fn default_session_idle_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_replay_bytes() -> usize {
    256 * 1024
}

const MAX_BATCH: RangeInclusive<usize> = 1..=4096;
const MAX_SUBSCRIPTIONS: RangeInclusive<usize> = 1..=65_536;
const MAX_IN_FLIGHT: RangeInclusive<usize> = 1..=65_536;
const MAX_QUEUED_BYTES: RangeInclusive<usize> = 64 * 1024..=1024 * 1024 * 1024;
const MAX_SESSIONS: RangeInclusive<usize> = 1..=1_000_000;
const SESSION_IDLE_TIMEOUT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 60 * 60);
const REPLAY_BYTES: RangeInclusive<usize> = 1024..=64 * 1024 * 1024;

impl LimitsConfig {
    /// Each field out of its range, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut within = |field: &str, value: usize, range: RangeInclusive<usize>| {
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
        within("max_in_flight", self.max_in_flight, MAX_IN_FLIGHT);
        within("max_queued_bytes", self.max_queued_bytes, MAX_QUEUED_BYTES);
        within("max_sessions", self.max_sessions, MAX_SESSIONS);
        within("replay_bytes", self.replay_bytes, REPLAY_BYTES);
        if !SESSION_IDLE_TIMEOUT.contains(&self.session_idle_timeout) {
            problems.push((
                "limits.session_idle_timeout".to_owned(),
                "must be between 1s and 7days".to_owned(),
            ));
        }
        problems
    }
}
