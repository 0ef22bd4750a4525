//! The bounded label values: methods, error types, and the escaping of the
//! values that come from the catalog.
//!
//! Every label value a call can produce is one of a fixed set, or a name the
//! catalog holds: a method no one listed is `_OTHER`, a backend's own
//! JSON-RPC error code outside the standard ones is `_OTHER`, and a tool the
//! catalog does not hold is `_OTHER` (the OpenTelemetry fallback value).

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::Outcome;
use only1mcp_core::mcp::method;

/// The value every unlisted method, code or name folds into.
pub const OTHER: &str = "_OTHER";

/// The methods a client's call carries through the gateway, with their own
/// series; anything else is [`OTHER`] (the last index).
pub const METHODS: [&str; 18] = [
    method::TOOLS_CALL,
    method::PROMPTS_GET,
    method::RESOURCES_READ,
    method::COMPLETION_COMPLETE,
    method::RESOURCES_SUBSCRIBE,
    method::RESOURCES_UNSUBSCRIBE,
    method::LOGGING_SET_LEVEL,
    method::INITIALIZE,
    method::SERVER_DISCOVER,
    method::PING,
    method::TOOLS_LIST,
    method::PROMPTS_LIST,
    method::RESOURCES_LIST,
    method::RESOURCES_TEMPLATES_LIST,
    "subscriptions/listen",
    "tasks/get",
    "tasks/result",
    OTHER,
];

/// The index of `name` in [`METHODS`] ([`OTHER`]'s when it is not there).
pub fn method_idx(name: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == name)
        .unwrap_or(METHODS.len() - 1)
}

/// Why a call failed, as the `error_type` label says it; index 0 is
/// success (no label value).
pub const ERROR_TYPES: [&str; 22] = [
    "",
    // A tool's result with `isError: true` (the convention's value).
    "tool_error",
    // A backend's own JSON-RPC error, by code.
    "-32700",
    "-32600",
    "-32601",
    "-32602",
    "-32603",
    "-32002",
    // Any other code of a backend's.
    OTHER,
    // The gateway's own failures, by `only1mcp_core::Error` variant.
    "upstream_unavailable",
    "upstream_closed",
    "timeout",
    "upstream_answer_too_large",
    "upstream_protocol",
    "denied",
    "rate_limited",
    "circuit_open",
    "too_many_sessions",
    "method_not_found",
    "invalid_params",
    "invalid_request",
    "unsupported_protocol_version",
];

/// The number of error types (index 0 is success).
pub const N_ERROR_TYPES: usize = ERROR_TYPES.len();

/// The `error_type` index of a JSON-RPC error `code` sent back.
pub fn code_idx(code: i64) -> usize {
    match code {
        -32700 => 2,
        -32600 => 3,
        -32601 => 4,
        -32602 => 5,
        -32603 => 6,
        -32002 => 7,
        _ => 8,
    }
}

/// The `error_type` index of a gateway failure.
pub fn error_idx(error: &Error) -> usize {
    match error {
        Error::UpstreamUnavailable { .. } => 9,
        Error::UpstreamClosed { .. } => 10,
        Error::UpstreamTimedOut { .. } => 11,
        Error::UpstreamAnswerTooLarge { .. } => 12,
        Error::UpstreamProtocol { .. } => 13,
        // A concealed refusal is a denial to the operator, whatever the
        // client was told.
        Error::Denied { .. } | Error::Concealed { .. } => 14,
        Error::RateLimited { .. } => 15,
        Error::CircuitOpen { .. } => 16,
        Error::TooManySessions { .. } => 17,
        Error::MethodNotFound(_) => 18,
        Error::InvalidParams(_)
        | Error::ToolNotFound(_)
        | Error::PromptNotFound(_)
        | Error::ResourceNotFound(_) => 19,
        Error::InvalidRequest(_) | Error::MessageTooLarge { .. } | Error::BatchTooLarge { .. } => {
            20
        }
        Error::UnsupportedProtocolVersion { .. } => 21,
    }
}

/// The `error_type` index of an answer: 0 for a result (1 when `tool` and
/// the result says `isError: true`), else its code's.
pub fn outcome_idx(outcome: &Outcome, tool: bool) -> usize {
    match outcome {
        Ok(result) if tool && is_error(result.get().as_bytes()) => 1,
        Ok(_) => 0,
        Err(error) => code_idx(error.code),
    }
}

/// Whether a tool result's JSON says `"isError": true`. A scan for the
/// member's name (a string value that holds the same text, with its quotes
/// escaped, cannot match); results are small next to their transfer.
fn is_error(json: &[u8]) -> bool {
    let finder = memchr::memmem::find_iter(json, b"\"isError\"");
    for at in finder {
        let rest = &json[at + 9..];
        let rest = rest.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        if rest.trim_ascii_start().starts_with(b"true") {
            return true;
        }
    }
    false
}

/// `value` escaped as a Prometheus label value (backslash, double quote
/// and newline).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_and_codes_fold_into_other() {
        assert_eq!(METHODS[method_idx("tools/call")], "tools/call");
        assert_eq!(METHODS[method_idx("x/random-123")], OTHER);
        assert_eq!(ERROR_TYPES[code_idx(-32602)], "-32602");
        assert_eq!(ERROR_TYPES[code_idx(4711)], OTHER);
    }

    #[test]
    fn tool_errors_are_read_from_the_result() {
        assert!(is_error(br#"{"content":[],"isError":true}"#));
        assert!(is_error(br#"{"isError" : true}"#));
        assert!(!is_error(br#"{"content":[],"isError":false}"#));
        assert!(!is_error(
            br#"{"content":[{"type":"text","text":"\"isError\":true"}]}"#
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
