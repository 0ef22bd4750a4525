//! Testing a server on a fresh connection: start (or connect), open the
//! session, list its tools, stop; each step timed. Used by the admin API's
//! `POST /servers/{id}/test` and by `only1mcp test` without a gateway.
//!
//! The probe never touches the live backend: it starts a process (or opens a
//! connection) of its own, so it also checks a config the gateway does not
//! run, and the gateway's session and counters stay as they are.

use std::time::{Duration, Instant};

use only1mcp_core::mcp::{self, Era, ListKind};
use only1mcp_transport::handshake::{self, ClientIdentity};
use only1mcp_transport::network::{self, AnyConnection};
use only1mcp_transport::stdio;

use super::lists::fetch_list;
use super::supervise::{STOP_GRACE, expand_headers};
use super::{Launch, Settings};

/// A successful test of one server.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    pub transport: &'static str,
    /// Spawning the process or opening the connection.
    pub connect: Duration,
    /// The era probe and handshake.
    pub initialize: Duration,
    /// Reading every page of `tools/list`.
    pub list_tools: Duration,
    /// All of it.
    pub total: Duration,
    /// The era it speaks.
    pub era: Era,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// Its name and version, as it reported them.
    pub server_info: Option<mcp::Implementation>,
    /// Its tools (the backend's names) and whether the server's tool filter
    /// exposes each.
    pub tools: Vec<(String, bool)>,
}

/// A test that failed, and at which step.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step} failed after {} ms: {message}", elapsed.as_millis())]
pub struct ProbeFailure {
    /// `start`, `initialize` or `tools/list`.
    pub step: &'static str,
    /// Why.
    pub message: String,
    /// Time spent until it failed.
    pub elapsed: Duration,
}

/// Tests the server of `settings` on a fresh connection.
pub(crate) async fn probe(
    settings: &Settings,
    identity: &ClientIdentity,
) -> Result<Probe, ProbeFailure> {
    let begun = Instant::now();
    let fail = |step: &'static str, message: String| ProbeFailure {
        step,
        message,
        elapsed: begun.elapsed(),
    };
    let server = settings.launch.server().clone();
    tracing::info!(server = %server, "Testing the server on a fresh connection");
    let (mut connection, events, child) = match &settings.launch {
        Launch::Stdio(spec) => {
            let mut child = stdio::spawn(spec).map_err(|e| fail("start", e.to_string()))?;
            let (connection, events) = stdio::Connection::start(&server, &mut child);
            (AnyConnection::from(connection), events, Some(child))
        }
        Launch::Network(spec) => {
            let spec = expand_headers(spec).map_err(|e| fail("start", e))?;
            let connect = tokio::time::timeout(settings.startup_timeout, network::connect(&spec));
            let (connection, events) = connect
                .await
                .map_err(|_| fail("start", "timed out".to_owned()))?
                .map_err(|e| fail("start", e.to_string()))?;
            (connection, events, None)
        }
    };
    let connected = begun.elapsed();
    let res = async {
        let established = handshake::establish(
            &server,
            &mut connection,
            identity,
            settings.startup_timeout,
            settings.startup_timeout,
        )
        .await
        .map_err(|e| fail("initialize", e.to_string()))?;
        let initialized = begun.elapsed();
        let listing = fetch_list(
            ListKind::Tools,
            &server,
            &mut connection,
            &established,
            identity,
        );
        let (tools, _hint) = tokio::time::timeout(settings.request_timeout, listing)
            .await
            .map_err(|_| fail("tools/list", "timed out".to_owned()))?
            .map_err(|e| fail("tools/list", e.to_string()))?;
        let listed = begun.elapsed();
        let tools = tools
            .iter()
            .filter_map(|tool| mcp::string_field(tool, "name"))
            .map(|name| {
                let exposed = settings.filter.allows(&name);
                (name, exposed)
            })
            .collect();
        Ok(Probe {
            transport: settings.launch.transport_name(),
            connect: connected,
            initialize: initialized - connected,
            list_tools: listed - initialized,
            total: listed,
            era: established.era,
            protocol_version: established.protocol_version,
            server_info: established.server_info,
            tools,
        })
    }
    .await;
    drop(connection);
    drop(events);
    if let Some(child) = child {
        child.stop(STOP_GRACE).await;
    }
    match &res {
        Ok(probe) => {
            tracing::info!(server = %server, total_ms = probe.total.as_millis(), tools = probe.tools.len(), "Test passed");
        }
        Err(failure) => tracing::warn!(server = %server, error = %failure, "Test failed"),
    }
    res
}
