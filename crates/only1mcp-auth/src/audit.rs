//! The tamper-evident audit trail: one JSON line per event worth auditing,
//! each chained to the one before it by a SHA-256 hash (ADR 0019).
//!
//! - [`Auditor`]: the handle everyone records through (the call layer, the
//!   HTTP face's authentication, the admin API, reloads). Recording never
//!   waits: the event goes into a bounded queue read by a writer thread; when
//!   the queue is full the event is dropped and counted, and the writer
//!   records the count in a `dropped` line before its next line.
//! - [`AuditLayer`]: the per-call layer that records every call a client
//!   makes to a backend: allowed, denied (by a policy: [`Error::Denied`],
//!   or a rate limit), and how it ended.
//! - [`chain`]: the line format and its hash; [`verify`] checks a file (or
//!   a rotated series) and names the first line changed, removed or
//!   reordered.
//!
//! [`Error::Denied`]: only1mcp_core::Error::Denied

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use only1mcp_core::config::AuditConfig;
use serde::Serialize;

mod arguments;
pub mod chain;
mod layer;
pub mod verify;
mod writer;

pub use arguments::Arguments;
pub use layer::{Audit, AuditLayer};

/// What kind of event a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The audit trail (re)started: the gateway started.
    Start,
    /// A client's call to a backend (allowed or denied).
    Call,
    /// A client failed to authenticate.
    AuthFailure,
    /// The admin API changed the running config.
    AdminChange,
    /// The config was reloaded (file, SIGHUP, admin API).
    Reload,
    /// Events were lost because the writer's queue was full.
    Dropped,
    /// The gateway stopped (the last line of a cleanly ended run).
    Stop,
}

/// Whether the gateway let a call through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// It reached its backend.
    Allow,
    /// A policy refused it.
    Deny,
    /// A rate or concurrency limit refused it.
    Limit,
}

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// The backend answered with a result flagged `isError`.
    ToolError,
    /// It ended with a JSON-RPC error (the backend's or the gateway's; the
    /// record's `code` says which).
    Error,
}

/// One event, as recorded. Fields that do not apply stay `None`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened.
    pub event: Kind,
    /// Who: the principal's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's session id.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_str")]
    pub session: Option<Arc<str>>,
    /// The face (`stdio`, `http`, `sse`, `ws`, `admin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    /// The JSON-RPC method, or the admin API's HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The server a call went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// What it named: the tool or prompt as the client named it, a resource
    /// URI, an admin path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether it was let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// How it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The JSON-RPC error code it ended with (or the HTTP status of an
    /// admin change or an authentication failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// How long it took, in milliseconds (three decimals).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "millis")]
    pub duration_ms: Option<Duration>,
    /// The client's JSON-RPC request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace id of the call (`_meta.traceparent`), if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The arguments, as `audit.arguments` keeps them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// Words for what happened (a refusal's reason, a reload's summary, how
    /// many events were dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn shared_str<S: serde::Serializer>(text: &Option<Arc<str>>, ser: S) -> Result<S::Ok, S::Error> {
    text.as_deref().serialize(ser)
}

fn millis<S: serde::Serializer>(duration: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
    let micros = duration.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    // 1234 µs as 1.234: exact, whatever the float formatting.
    let value = serde_json::Number::from_f64(micros as f64 / 1000.0)
        .unwrap_or_else(|| serde_json::Number::from(0));
    value.serialize(ser)
}

impl Event {
    /// An event of `kind` with nothing else set.
    pub fn new(kind: Kind) -> Self {
        Self {
            event: kind,
            principal: None,
            client: None,
            session: None,
            transport: None,
            method: None,
            server: None,
            target: None,
            decision: None,
            outcome: None,
            code: None,
            duration_ms: None,
            request_id: None,
            trace_id: None,
            arguments: None,
            detail: None,
        }
    }
}

/// What the writer thread is sent.
#[derive(Debug)]
enum Message {
    /// An event and when it happened.
    Event(SystemTime, Box<Event>),
    /// Write a `stop` line, flush, fsync and end.
    Stop,
}

/// Where audit events are recorded: cheap to clone, shared by every part of
/// the gateway that records. Dropping the last clone (or [`Auditor::close`])
/// ends the writer after it wrote what was queued.
#[derive(Debug, Clone)]
pub struct Auditor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: mpsc::SyncSender<Message>,
    /// Events dropped because the queue was full, not yet recorded.
    dropped: Arc<AtomicU64>,
    /// Events dropped since the start (for `only1mcp status` and tests).
    dropped_total: AtomicU64,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    arguments: Option<Arc<Arguments>>,
}

/// Why the audit trail could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audit file (or its folder) could not be opened or read.
    #[error("cannot open the audit file {path}: {source}")]
    OpenFailed {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process (a second gateway) writes the audit file: two
    /// writers would break the chain.
    #[error(
        "the audit file {0} is in use by another process (a second gateway?); give each its own audit.file"
    )]
    InUse(std::path::PathBuf),
    /// `audit.arguments` holds a glob that does not parse.
    #[error("audit.arguments: {0}")]
    BadGlob(String),
    /// The writer thread could not be started.
    #[error("cannot start the audit writer: {0}")]
    WriterFailed(std::io::Error),
}

impl Auditor {
    /// Opens the trail `config` describes (its file is created or appended
    /// to, the chain continued from its last line) and starts the writer,
    /// which records a `start` line. `None` when auditing is off.
    pub fn open(config: &AuditConfig) -> Result<Option<Self>, Error> {
        if !config.enabled() {
            return Ok(None);
        }
        let arguments = if config.arguments.keeps_any() {
            Some(Arc::new(Arguments::new(&config.arguments)?))
        } else {
            None
        };
        let sink = writer::Sink::open(config)?;
        let (queue, events) = mpsc::sync_channel(config.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = {
            let dropped = dropped.clone();
            std::thread::Builder::new()
                .name("audit".to_owned())
                .spawn(move || writer::run(sink, &events, &dropped))
                .map_err(Error::WriterFailed)?
        };
        let auditor = Self {
            inner: Arc::new(Inner {
                queue,
                dropped,
                dropped_total: AtomicU64::new(0),
                writer: std::sync::Mutex::new(Some(writer)),
                arguments,
            }),
        };
        auditor.record(Event::new(Kind::Start));
        Ok(Some(auditor))
    }

    /// Records `event`, now. Never waits: with the queue full the event is
    /// dropped and counted (see the module docs).
    pub fn record(&self, event: Event) {
        let message = Message::Event(SystemTime::now(), Box::new(event));
        if let Err(mpsc::TrySendError::Full(_)) = self.inner.queue.try_send(message) {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            let before = self.inner.dropped_total.fetch_add(1, Ordering::Relaxed);
            // Logged on the first loss and then every 1024th, not per event.
            if before.is_multiple_of(1024) {
                tracing::warn!(
                    dropped = before + 1,
                    "Audit queue full (audit.queue): events dropped; the trail records how many"
                );
            }
        }
    }

    /// How many events were dropped since the start because the queue was
    /// full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped_total.load(Ordering::Relaxed)
    }

    /// What `audit.arguments` keeps of a call's arguments, if anything.
    pub(crate) fn arguments(&self) -> Option<&Arc<Arguments>> {
        self.inner.arguments.as_ref()
    }

    /// Records a `stop` line, waits until everything queued is written and
    /// synced, and ends the writer. Blocks (call it off the async runtime's
    /// threads). Later events are not recorded.
    pub fn close(&self) {
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            // A blocking send: the stop line must not be dropped.
            let _ = self.inner.queue.send(Message::Stop);
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests;
