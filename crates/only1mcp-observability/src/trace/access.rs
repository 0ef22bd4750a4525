//! The access log: one `info` line per client request (target
//! [`ACCESS_TARGET`]), when `logging.access_log` asks for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use only1mcp_core::jsonrpc::{self, Outcome};
use only1mcp_core::mcp::{self, method};

use super::server::is_tool_error;

/// The `tracing` target of access-log lines.
pub const ACCESS_TARGET: &str = "only1mcp::access";

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the access log on or off for the whole process (read at start,
/// from `logging.access_log`).
pub fn set_access_log(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// One request on its way to an access-log line: what it asked for and
/// when it started. Holds the method and the name of its target (a tool,
/// a prompt, a resource URI), never its arguments.
#[derive(Debug)]
pub struct AccessLog {
    started: Instant,
    method: String,
    target: Option<String>,
    request_id: String,
}

impl AccessLog {
    /// `Some` when the access log is on (one relaxed load otherwise).
    pub fn start(req: &jsonrpc::Request) -> Option<Self> {
        if !ON.load(Ordering::Relaxed) {
            return None;
        }
        let params = req.params.as_deref();
        let target = match req.method.as_str() {
            method::TOOLS_CALL | method::PROMPTS_GET => mcp::param_string(params, "name"),
            method::RESOURCES_READ
            | method::RESOURCES_SUBSCRIBE
            | method::RESOURCES_UNSUBSCRIBE => mcp::param_string(params, "uri"),
            _ => None,
        };
        Some(Self {
            started: Instant::now(),
            method: req.method.clone(),
            target,
            request_id: req.id.to_string(),
        })
    }

    /// Writes the line: `outcome` is `ok`, `tool_error` (a `tools/call`
    /// result with `isError: true`) or `error` (with its JSON-RPC `code`);
    /// `principal` is the subject of the authenticated client, if any.
    pub fn finish(self, outcome: &Outcome, principal: Option<&str>) {
        let duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (result, code) = match outcome {
            Ok(result) if self.method == method::TOOLS_CALL && is_tool_error(result) => {
                ("tool_error", None)
            }
            Ok(_) => ("ok", None),
            Err(error) => ("error", Some(error.code)),
        };
        tracing::info!(
            target: ACCESS_TARGET,
            method = %self.method,
            target = self.target.as_deref(),
            outcome = result,
            code,
            duration_us,
            request_id = %self.request_id,
            principal,
            "request"
        );
    }
}
