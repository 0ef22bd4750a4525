//! Recent log lines per server, for `GET /servers/{id}/logs` and
//! `only1mcp logs`.
//!
//! A tracing [`Layer`] ([`layer`]) copies every event at INFO or above that
//! carries a `server` field into a bounded ring per server: the backends'
//! stderr lines and log messages (target `only1mcp::backend`) and what the
//! gateway logs about them (ready, failed, restarting). It has its own
//! filter, so `RUST_LOG` quieting the log output does not empty the rings.
//! Followers get new lines through a broadcast channel.
//!
//! A ring keeps at most [`LINES_PER_SERVER`] lines and
//! [`BYTES_PER_SERVER`] bytes, the oldest lines going first; a message
//! longer than [`MAX_MESSAGE`] is kept cut.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::Context;

use serde::{Deserialize, Serialize};

/// One captured log line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    /// Increases with every captured line (across servers).
    pub seq: u64,
    /// The server it is about.
    pub server: String,
    /// When (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// `ERROR`, `WARN` or `INFO`.
    pub level: String,
    /// `backend` (its stderr and log messages) or `gateway` (what the
    /// gateway logged about it).
    pub source: String,
    /// The line.
    pub message: String,
}

/// Lines kept per server.
pub const LINES_PER_SERVER: usize = 1000;
/// Bytes kept per server (messages plus a fixed cost for each line).
pub const BYTES_PER_SERVER: usize = 1024 * 1024;
/// The longest message kept; a longer one is cut, with a marker.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// What a kept line costs beside its message (the other fields, the
/// allocation), counted against [`BYTES_PER_SERVER`].
const LINE_OVERHEAD: usize = 128;
/// Servers with a ring; lines about further servers are not kept.
const MAX_SERVERS: usize = 1024;
/// The target of backends' own output (stderr, `notifications/message`).
const BACKEND_TARGET: &str = "only1mcp::backend";

/// The per-server rings and the channel to followers.
#[derive(Debug)]
pub struct LogBook {
    rings: Mutex<HashMap<Arc<str>, Ring>>,
    next_seq: AtomicU64,
    live: broadcast::Sender<Arc<LogLine>>,
}

/// The process-wide book the layer writes to (the tracing subscriber is
/// process-wide too).
pub fn book() -> &'static LogBook {
    static BOOK: OnceLock<LogBook> = OnceLock::new();
    BOOK.get_or_init(|| LogBook {
        rings: Mutex::new(HashMap::new()),
        next_seq: AtomicU64::new(1),
        live: broadcast::channel(1024).0,
    })
}

/// The lines kept for one server, and their cost in bytes.
#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    bytes: usize,
}

/// What a kept line counts against [`BYTES_PER_SERVER`].
fn cost(line: &LogLine) -> usize {
    line.message.len() + LINE_OVERHEAD
}

impl LogBook {
    /// Keeps one line and hands it to followers.
    pub fn push(&self, server: &str, level: &Level, source: &str, mut message: String) {
        if message.len() > MAX_MESSAGE {
            message.truncate(message.floor_char_boundary(MAX_MESSAGE));
            message.push_str("… [cut]");
        }
        let line = Arc::new(LogLine {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            server: server.to_owned(),
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            level: level.to_string(),
            source: source.to_owned(),
            message,
        });
        {
            let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
            if !rings.contains_key(server) && rings.len() >= MAX_SERVERS {
                return;
            }
            let ring = rings.entry(server.into()).or_default();
            let added = cost(&line);
            while ring.lines.len() >= LINES_PER_SERVER || ring.bytes + added > BYTES_PER_SERVER {
                let Some(oldest) = ring.lines.pop_front() else {
                    break;
                };
                ring.bytes -= cost(&oldest);
            }
            ring.bytes += added;
            ring.lines.push_back(line.clone());
        }
        // Nobody following is not an error.
        let _ = self.live.send(line);
    }

    /// The last `n` lines of `server`, or of every server when `None`
    /// (merged in the order they were logged); oldest first.
    pub fn recent(&self, server: Option<&str>, n: usize) -> Vec<LogLine> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines: Vec<Arc<LogLine>> = match server {
            Some(server) => rings
                .get(server)
                .map(|ring| ring.lines.iter().cloned().collect())
                .unwrap_or_default(),
            None => rings
                .values()
                .flat_map(|ring| ring.lines.iter().cloned())
                .collect(),
        };
        drop(rings);
        lines.sort_unstable_by_key(|line| line.seq);
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).map(|l| (*l).clone()).collect()
    }

    /// Whether any line about `server` is kept.
    pub fn knows(&self, server: &str) -> bool {
        self.rings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(server)
    }

    /// New lines as they are logged.
    pub fn follow(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }
}

/// The layer that fills [`book`]; install it beside the log output.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The hint matters: without it the subscriber's maximum level is TRACE,
    // so every `debug!`/`trace!` callsite (and every `log` record of the
    // dependencies, through tracing-log) is checked at run time instead of
    // being skipped by a static level test.
    Capture.with_filter(
        filter_fn(|meta| {
            meta.is_event()
                && *meta.level() <= Level::INFO
                && meta.fields().field("server").is_some()
        })
        .with_max_level_hint(Level::INFO),
    )
}

/// Copies events about a server into the book.
#[derive(Debug)]
struct Capture;

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(server) = fields.server else { return };
        let meta = event.metadata();
        let source = if meta.target() == BACKEND_TARGET {
            "backend"
        } else {
            "gateway"
        };
        book().push(&server, meta.level(), source, fields.text);
    }
}

/// The message, then the other fields as `key=value`, like the log output.
#[derive(Default)]
struct Fields {
    server: Option<String>,
    text: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "server" => self.server = Some(value.to_owned()),
            "message" => self.text.insert_str(0, value),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "server" => self.server = Some(format!("{value:?}")),
            "message" => self.text.insert_str(0, &format!("{value:?}")),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn captures_lines_about_servers_and_keeps_the_last_ones() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "only1mcp::backend", server = %"logs-test", "[echo] ready on stdio");
            tracing::warn!(server = %"logs-test", reason = "boom", "Backend failed to start");
            tracing::debug!(server = %"logs-test", "Not kept: debug");
            tracing::info!("Not kept: no server");
        });
        let lines = book().recent(Some("logs-test"), 10);
        let got: Vec<(&str, &str, &str)> = lines
            .iter()
            .map(|l| (l.level.as_str(), l.source.as_str(), l.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("INFO", "backend", "[echo] ready on stdio"),
                ("WARN", "gateway", "Backend failed to start reason=\"boom\""),
            ]
        );
        assert_eq!(book().recent(Some("logs-test"), 1).len(), 1);
        for n in 0..LINES_PER_SERVER + 5 {
            book().push("ring-test", &Level::INFO, "backend", n.to_string());
        }
        let kept = book().recent(Some("ring-test"), usize::MAX);
        assert_eq!(kept.len(), LINES_PER_SERVER);
        assert_eq!(kept[0].message, "5");
    }

    /// Long lines are bounded by bytes before the line count is reached:
    /// the ring holds what fits in [`BYTES_PER_SERVER`], newest kept, and
    /// one line over [`MAX_MESSAGE`] is cut.
    #[test]
    fn a_ring_is_bounded_in_bytes_and_long_messages_are_cut() {
        let line = "x".repeat(MAX_MESSAGE);
        for n in 0..100 {
            book().push("bytes-test", &Level::INFO, "backend", format!("{n} {line}"));
        }
        let kept = book().recent(Some("bytes-test"), usize::MAX);
        let bytes: usize = kept.iter().map(|l| l.message.len() + LINE_OVERHEAD).sum();
        assert!(bytes <= BYTES_PER_SERVER, "{bytes} bytes kept");
        assert!(
            kept.len() >= BYTES_PER_SERVER / (MAX_MESSAGE + 100),
            "{}",
            kept.len()
        );
        assert!(kept.last().unwrap().message.starts_with("99 "));
        assert!(kept.iter().all(|l| l.message.ends_with("… [cut]")));
        assert!(kept.iter().all(|l| l.message.len() <= MAX_MESSAGE + 10));
        book().push(
            "bytes-test",
            &Level::INFO,
            "backend",
            "é".repeat(MAX_MESSAGE),
        );
        let last = book().recent(Some("bytes-test"), 1).remove(0);
        assert!(
            last.message.len() <= MAX_MESSAGE + 10,
            "{}",
            last.message.len()
        );
    }
}
