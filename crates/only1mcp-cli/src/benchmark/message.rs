//! The bytes the benchmark sends and how it reads what comes back.
//!
//! The request is serialized once into a [`Template`]; each send only
//! splices in a fresh numeric id, so the load generator spends its time
//! waiting on the target, not on JSON. Replies are read just enough to tell
//! success from failure: the id, `error.code`, and `result.isError`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The modern protocol revision (stateless, `_meta` on every request).
pub(crate) const MODERN_VERSION: &str = "2026-07-28";
/// The legacy revision the benchmark negotiates with `initialize`.
pub(crate) const LEGACY_VERSION: &str = "2025-11-25";

/// A placeholder for the id; JSON-escaped it can never clash with user text.
const ID_MARK: &str = "\u{0}only1mcp-benchmark-id\u{0}";

/// A request serialized once, with holes where the id goes.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The text between the ids (one more than the number of holes).
    parts: Vec<String>,
    /// The method, for the `Mcp-Method` header.
    pub(crate) method: String,
    /// `params.name` (or `params.uri`), for the `Mcp-Name` header.
    pub(crate) name: Option<String>,
}

/// Which MCP era the benchmark speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Era {
    /// `initialize` per connection (an `Mcp-Session-Id` on HTTP).
    Legacy,
    /// 2026-07-28: no handshake; `_meta` on every request and the
    /// `MCP-Protocol-Version`/`Mcp-Method`/`Mcp-Name` headers on HTTP.
    Modern,
}

impl Era {
    /// The name used in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Modern => "modern",
        }
    }
}

impl Template {
    /// Builds the request. `params` is the whole params object; with
    /// `progress`, `_meta.progressToken` is set to the request's own id (so
    /// it is unique), and the modern era adds its `_meta` keys.
    pub(crate) fn new(
        method: &str,
        params: Option<Value>,
        progress: bool,
        era: Era,
    ) -> Result<Self, String> {
        let mut params = match params {
            None => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err("params must be a JSON object".to_owned()),
        };
        let name = ["name", "uri"]
            .iter()
            .find_map(|key| params.get(*key).and_then(Value::as_str))
            .map(str::to_owned)
            .filter(|_| matches!(method, "tools/call" | "prompts/get" | "resources/read"));
        if progress || era == Era::Modern {
            let meta = params
                .entry("_meta")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or("params._meta must be an object")?;
            if progress {
                meta.insert("progressToken".to_owned(), json!(ID_MARK));
            }
            if era == Era::Modern {
                meta.insert(
                    "io.modelcontextprotocol/protocolVersion".to_owned(),
                    json!(MODERN_VERSION),
                );
                meta.insert(
                    "io.modelcontextprotocol/clientCapabilities".to_owned(),
                    json!({}),
                );
            }
        }
        let mut request = json!({ "jsonrpc": "2.0", "id": ID_MARK, "method": method });
        if !params.is_empty() {
            request["params"] = Value::Object(params);
        }
        let text = request.to_string();
        let mark = serde_json::to_string(ID_MARK).map_err(|e| e.to_string())?;
        Ok(Self {
            parts: text.split(mark.as_str()).map(str::to_owned).collect(),
            method: method.to_owned(),
            name,
        })
    }

    /// The request with this id, as bytes.
    pub(crate) fn render(&self, id: u64) -> Vec<u8> {
        let id = id.to_string();
        let len = self.parts.iter().map(String::len).sum::<usize>() + id.len() * self.parts.len();
        let mut out = Vec::with_capacity(len);
        for (idx, part) in self.parts.iter().enumerate() {
            if idx > 0 {
                out.extend_from_slice(id.as_bytes());
            }
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// The legacy `initialize` request.
pub(crate) fn initialize(id: u64) -> Vec<u8> {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "only1mcp-benchmark", "version": env!("CARGO_PKG_VERSION") },
        },
    })
    .to_string()
    .into_bytes()
}

/// The `notifications/initialized` notification.
pub(crate) fn initialized() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec()
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A result (for `tools/call`: without `isError: true`).
    Ok,
    /// A `tools/call` result with `isError: true`.
    ToolError(String),
    /// A JSON-RPC error.
    RpcError(i64, String),
}

/// One incoming message, read only as far as the benchmark needs.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A response to the request with this numeric id.
    Response(u64, Answer),
    /// A notification, a request from the server, or a response with an id
    /// the benchmark never sends.
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ToolResult<'a> {
    #[serde(default, rename = "isError")]
    is_error: bool,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// Reads one JSON-RPC message.
pub(crate) fn read(bytes: &[u8]) -> Result<Incoming, String> {
    let env: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON-RPC message: {e}"))?;
    if env.method.is_some() {
        return Ok(Incoming::Other);
    }
    let Some(id) = env.id.and_then(|id| id.get().parse::<u64>().ok()) else {
        if let Some(error) = env.error {
            // An error about a request whose id the server could not read.
            return Err(format!(
                "error without an id: {} {}",
                error.code, error.message
            ));
        }
        return Ok(Incoming::Other);
    };
    let answer = match (env.result, env.error) {
        (_, Some(error)) => Answer::RpcError(error.code, error.message),
        (Some(result), None) => match serde_json::from_str::<ToolResult<'_>>(result.get()) {
            Ok(ToolResult {
                is_error: true,
                content,
            }) => Answer::ToolError(content.map(|c| c.get().to_owned()).unwrap_or_default()),
            Ok(_) | Err(_) => Answer::Ok,
        },
        (None, None) => return Err("a response with neither result nor error".to_owned()),
    };
    Ok(Incoming::Response(id, answer))
}

/// The `data:` payloads of a complete `text/event-stream` body.
pub(crate) fn sse_payloads(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if has_data && !data.is_empty() {
                out.push(std::mem::take(&mut data));
            }
            data.clear();
            has_data = false;
        } else if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            if has_data {
                data.push(b'\n');
            }
            data.extend_from_slice(rest);
            has_data = true;
        }
    }
    if has_data && !data.is_empty() {
        out.push(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_splices_ids() {
        let params = json!({ "name": "echo__echo", "arguments": { "text": "x" } });
        let t = Template::new("tools/call", Some(params), true, Era::Legacy).unwrap();
        let v: Value = serde_json::from_slice(&t.render(42)).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["params"]["_meta"]["progressToken"], 42);
        assert_eq!(v["params"]["arguments"]["text"], "x");
        assert_eq!(t.name.as_deref(), Some("echo__echo"));
        let t = Template::new("ping", None, false, Era::Modern).unwrap();
        let v: Value = serde_json::from_slice(&t.render(7)).unwrap();
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN_VERSION
        );
        assert_eq!(t.name, None);
    }

    #[test]
    fn replies_are_classified() {
        let ok = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
        assert!(matches!(read(ok), Ok(Incoming::Response(3, Answer::Ok))));
        let tool = br#"{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}"#;
        assert!(matches!(
            read(tool),
            Ok(Incoming::Response(4, Answer::ToolError(_)))
        ));
        let err = br#"{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"no"}}"#;
        assert!(matches!(
            read(err),
            Ok(Incoming::Response(5, Answer::RpcError(-32602, _)))
        ));
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
        assert!(matches!(read(note), Ok(Incoming::Other)));
        assert!(read(b"nope").is_err());
    }

    #[test]
    fn sse_bodies_are_split() {
        let body =
            b"event: message\ndata: {\"a\":1}\n\n: ping\n\nid: 3\ndata: {\"b\":\ndata: 2}\n\n";
        let payloads = sse_payloads(body);
        assert_eq!(
            payloads,
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":\n2}".to_vec()]
        );
    }
}
