//! The gateway's errors and their one mapping to JSON-RPC error codes.
//!
//! Every failure that reaches a client goes through [`Error::to_error_object`],
//! which matches every variant with no wildcard arm: a new variant must decide
//! its code here. A backend's own JSON-RPC error is not an [`Error`]: it is
//! relayed to the client as the backend sent it.

use std::time::Duration;

use crate::jsonrpc::{ErrorObject, code};
use crate::mcp::{error_code, version};

/// Where a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client sent something wrong.
    Downstream,
    /// A backend failed.
    Upstream,
    /// The gateway itself.
    Internal,
}

/// Everything the gateway can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The client called a method the gateway does not serve.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// The client's params are malformed.
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    /// The client's message is not a valid request in this state.
    #[error("Invalid Request: {0}")]
    InvalidRequest(String),
    /// A frame exceeded the size limit.
    #[error("Invalid Request: message larger than {limit} bytes")]
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A batch held more entries than `limits.max_batch`; none of it ran.
    #[error(
        "Invalid Request: a batch of {entries} entries is over the limit of {limit} (limits.max_batch); none of it was run"
    )]
    BatchTooLarge {
        /// The entries the batch held.
        entries: usize,
        /// The limit.
        limit: usize,
    },
    /// A modern request named a protocol version the gateway does not speak.
    #[error("Unsupported protocol version: {requested}")]
    UnsupportedProtocolVersion {
        /// What the client asked for.
        requested: String,
    },
    /// No tool has this exposed name.
    #[error("Unknown tool: {0}")]
    ToolNotFound(String),
    /// No prompt has this exposed name.
    #[error("Unknown prompt: {0}")]
    PromptNotFound(String),
    /// No backend owns this resource URI.
    #[error("Resource not found: {0}")]
    ResourceNotFound(String),
    /// The backend is not running (starting, restarting, failed to start).
    #[error("server {server:?} is unavailable: {reason}")]
    UpstreamUnavailable {
        /// The server id.
        server: String,
        /// Why.
        reason: String,
    },
    /// The backend went away while the request was in flight.
    #[error("server {server:?} closed the connection before answering")]
    UpstreamClosed {
        /// The server id.
        server: String,
    },
    /// The backend did not answer in time; the request was cancelled there.
    #[error("server {server:?} did not answer within {}ms", after.as_millis())]
    UpstreamTimedOut {
        /// The server id.
        server: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The backend's answer was larger than the gateway accepts; the call
    /// fails at once instead of waiting for an answer that was dropped.
    #[error("server {server:?} answered with {len} bytes, over the limit of {limit} bytes")]
    UpstreamAnswerTooLarge {
        /// The server id.
        server: String,
        /// How many bytes the answer had.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The backend sent something that is not valid MCP.
    #[error("server {server:?} sent an invalid answer: {reason}")]
    UpstreamProtocol {
        /// The server id.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// A policy refused the call (authorization, an argument rule, …).
    #[error("Forbidden: {reason}")]
    Denied {
        /// Why, in words the client may see.
        reason: String,
    },
    /// An authorization policy refused the call, and the client must not
    /// learn that what it named exists: the client gets exactly `shown` (the
    /// error of an unknown tool, prompt or resource: same code, message and
    /// data), while a layer outside the policy's sees the refusal and its
    /// reason (ADR 0016).
    #[error("{shown}")]
    Concealed {
        /// What the client is answered.
        shown: Box<Self>,
        /// Why it was refused (for the audit log, never for the client).
        reason: String,
    },
    /// The caller sent more calls than it may.
    #[error("Too many requests{}", retry_after.map(|d| format!("; retry after {}s", d.as_millis().div_ceil(1000).max(1))).unwrap_or_default())]
    RateLimited {
        /// When a call may succeed again, if known.
        retry_after: Option<Duration>,
    },
    /// The server failed so often that calls to it are refused for a while.
    #[error("server {server:?} is failing; calls to it are paused")]
    CircuitOpen {
        /// The server id.
        server: String,
    },
    /// The HTTP face holds `limits.max_sessions` sessions; a new one waits
    /// until one ends.
    #[error(
        "the gateway holds {limit} sessions already (limits.max_sessions); end one (DELETE) or retry later"
    )]
    TooManySessions {
        /// The limit.
        limit: usize,
    },
}

/// A result with the core error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The JSON-RPC error code for this error.
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            Self::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            Self::InvalidParams(_)
            | Self::ToolNotFound(_)
            | Self::PromptNotFound(_)
            | Self::ResourceNotFound(_) => code::INVALID_PARAMS,
            Self::InvalidRequest(_) | Self::MessageTooLarge { .. } | Self::BatchTooLarge { .. } => {
                code::INVALID_REQUEST
            }
            Self::UnsupportedProtocolVersion { .. } => error_code::UNSUPPORTED_PROTOCOL_VERSION,
            Self::UpstreamUnavailable { .. }
            | Self::UpstreamClosed { .. }
            | Self::UpstreamTimedOut { .. }
            | Self::UpstreamAnswerTooLarge { .. }
            | Self::UpstreamProtocol { .. } => code::INTERNAL_ERROR,
            Self::Denied { .. } => error_code::DENIED,
            Self::Concealed { shown, .. } => shown.jsonrpc_code(),
            Self::RateLimited { .. } => error_code::RATE_LIMITED,
            Self::CircuitOpen { .. } => error_code::CIRCUIT_OPEN,
            Self::TooManySessions { .. } => error_code::TOO_MANY_SESSIONS,
        }
    }

    /// The HTTP status a Streamable HTTP answer carrying this error has, for
    /// a modern client (legacy answers are 200 with the error in the body).
    pub fn http_status(&self) -> u16 {
        http_status(self.jsonrpc_code())
    }

    /// Who is at fault.
    pub fn source(&self) -> Source {
        match self {
            Self::MethodNotFound(_)
            | Self::InvalidParams(_)
            | Self::InvalidRequest(_)
            | Self::MessageTooLarge { .. }
            | Self::BatchTooLarge { .. }
            | Self::UnsupportedProtocolVersion { .. }
            | Self::ToolNotFound(_)
            | Self::PromptNotFound(_)
            | Self::ResourceNotFound(_)
            | Self::Denied { .. }
            | Self::Concealed { .. }
            | Self::RateLimited { .. } => Source::Downstream,
            Self::UpstreamUnavailable { .. }
            | Self::UpstreamClosed { .. }
            | Self::UpstreamTimedOut { .. }
            | Self::UpstreamAnswerTooLarge { .. }
            | Self::UpstreamProtocol { .. }
            | Self::CircuitOpen { .. } => Source::Upstream,
            Self::TooManySessions { .. } => Source::Internal,
        }
    }

    /// Whether the same request may succeed if sent again.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamUnavailable { .. }
                | Self::UpstreamClosed { .. }
                | Self::UpstreamTimedOut { .. }
                | Self::RateLimited { .. }
                | Self::CircuitOpen { .. }
                | Self::TooManySessions { .. }
        )
    }

    /// The JSON-RPC error object a client receives.
    pub fn to_error_object(&self) -> ErrorObject {
        let message = self.to_string();
        match self {
            Self::Concealed { shown, .. } => shown.to_error_object(),
            Self::UnsupportedProtocolVersion { requested } => ErrorObject::with_data(
                self.jsonrpc_code(),
                message,
                &serde_json::json!({
                    "supported": version::MODERN,
                    "requested": requested,
                }),
            ),
            Self::ResourceNotFound(uri) => ErrorObject::with_data(
                self.jsonrpc_code(),
                message,
                &serde_json::json!({ "uri": uri }),
            ),
            Self::RateLimited {
                retry_after: Some(after),
            } => ErrorObject::with_data(
                self.jsonrpc_code(),
                message,
                &serde_json::json!({ "retryAfterMs": u64::try_from(after.as_millis()).unwrap_or(u64::MAX) }),
            ),
            Self::UpstreamUnavailable { server, .. }
            | Self::UpstreamClosed { server }
            | Self::UpstreamTimedOut { server, .. }
            | Self::UpstreamAnswerTooLarge { server, .. }
            | Self::UpstreamProtocol { server, .. }
            | Self::CircuitOpen { server } => ErrorObject::with_data(
                self.jsonrpc_code(),
                message,
                &serde_json::json!({ "server": server }),
            ),
            Self::MethodNotFound(_)
            | Self::InvalidParams(_)
            | Self::InvalidRequest(_)
            | Self::MessageTooLarge { .. }
            | Self::BatchTooLarge { .. }
            | Self::ToolNotFound(_)
            | Self::PromptNotFound(_)
            | Self::Denied { .. }
            | Self::RateLimited { retry_after: None }
            | Self::TooManySessions { .. } => ErrorObject::new(self.jsonrpc_code(), message),
        }
    }
}

/// The HTTP status of a Streamable HTTP answer to a modern client whose
/// JSON-RPC error has `code` (the one mapping, for the gateway's own errors
/// and a backend's alike): malformed requests 400, unknown methods 404,
/// refusals 403, 429 and 503; anything else 200 with the error in the body.
pub fn http_status(code: i64) -> u16 {
    match code {
        code::METHOD_NOT_FOUND => 404,
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | error_code::HEADER_MISMATCH
        | error_code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | error_code::UNSUPPORTED_PROTOCOL_VERSION => 400,
        error_code::DENIED => 403,
        error_code::RATE_LIMITED => 429,
        error_code::CIRCUIT_OPEN | error_code::TOO_MANY_SESSIONS => 503,
        _ => 200,
    }
}

impl From<Error> for ErrorObject {
    fn from(error: Error) -> Self {
        error.to_error_object()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_their_own_code_and_http_status() {
        let cases = [
            (
                Error::Denied {
                    reason: "no".into(),
                },
                -32030,
                403,
            ),
            (Error::RateLimited { retry_after: None }, -32031, 429),
            (
                Error::CircuitOpen {
                    server: "fs".into(),
                },
                -32032,
                503,
            ),
            (Error::TooManySessions { limit: 1 }, -32033, 503),
            (
                Error::BatchTooLarge {
                    entries: 2,
                    limit: 1,
                },
                code::INVALID_REQUEST,
                400,
            ),
            (Error::ToolNotFound("x".into()), code::INVALID_PARAMS, 400),
            (
                Error::MethodNotFound("x".into()),
                code::METHOD_NOT_FOUND,
                404,
            ),
            (
                Error::UpstreamClosed {
                    server: "fs".into(),
                },
                code::INTERNAL_ERROR,
                200,
            ),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.jsonrpc_code(), code, "{error}");
            assert_eq!(error.http_status(), status, "{error}");
            assert_eq!(error.to_error_object().code, code, "{error}");
        }
    }

    #[test]
    fn a_rate_limit_says_when_to_retry() {
        let error = Error::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(error.to_string(), "Too many requests; retry after 2s");
        let object = error.to_error_object();
        assert_eq!(
            object.data.as_deref().map(|d| d.get()),
            Some(r#"{"retryAfterMs":1500}"#)
        );
        assert!(error.retryable());
        assert_eq!(error.source(), Source::Downstream);
    }
}
