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
    /// The backend sent something that is not valid MCP.
    #[error("server {server:?} sent an invalid answer: {reason}")]
    UpstreamProtocol {
        /// The server id.
        server: String,
        /// What was wrong.
        reason: String,
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
            Self::InvalidRequest(_) | Self::MessageTooLarge { .. } => code::INVALID_REQUEST,
            Self::UnsupportedProtocolVersion { .. } => error_code::UNSUPPORTED_PROTOCOL_VERSION,
            Self::UpstreamUnavailable { .. }
            | Self::UpstreamClosed { .. }
            | Self::UpstreamTimedOut { .. }
            | Self::UpstreamProtocol { .. } => code::INTERNAL_ERROR,
        }
    }

    /// Who is at fault.
    pub fn source(&self) -> Source {
        match self {
            Self::MethodNotFound(_)
            | Self::InvalidParams(_)
            | Self::InvalidRequest(_)
            | Self::MessageTooLarge { .. }
            | Self::UnsupportedProtocolVersion { .. }
            | Self::ToolNotFound(_)
            | Self::PromptNotFound(_)
            | Self::ResourceNotFound(_) => Source::Downstream,
            Self::UpstreamUnavailable { .. }
            | Self::UpstreamClosed { .. }
            | Self::UpstreamTimedOut { .. }
            | Self::UpstreamProtocol { .. } => Source::Upstream,
        }
    }

    /// Whether the same request may succeed if sent again.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamUnavailable { .. }
                | Self::UpstreamClosed { .. }
                | Self::UpstreamTimedOut { .. }
        )
    }

    /// The JSON-RPC error object a client receives.
    pub fn to_error_object(&self) -> ErrorObject {
        let message = self.to_string();
        match self {
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
            Self::UpstreamUnavailable { server, .. }
            | Self::UpstreamClosed { server }
            | Self::UpstreamTimedOut { server, .. }
            | Self::UpstreamProtocol { server, .. } => ErrorObject::with_data(
                self.jsonrpc_code(),
                message,
                &serde_json::json!({ "server": server }),
            ),
            Self::MethodNotFound(_)
            | Self::InvalidParams(_)
            | Self::InvalidRequest(_)
            | Self::MessageTooLarge { .. }
            | Self::ToolNotFound(_)
            | Self::PromptNotFound(_) => ErrorObject::new(self.jsonrpc_code(), message),
        }
    }
}

impl From<Error> for ErrorObject {
    fn from(error: Error) -> Self {
        error.to_error_object()
    }
}
