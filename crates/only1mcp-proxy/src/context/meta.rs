//! The meta tools a `discover` view lists instead of the catalog:
//! `search_tools`, `describe_tool` and `call_tool`.

use std::fmt::Write as _;

use serde_json::Value;

/// `search_tools`: ranks the reachable tools by a query.
pub const SEARCH_TOOLS: &str = "search_tools";
/// `describe_tool`: one tool's whole definition.
pub const DESCRIBE_TOOL: &str = "describe_tool";
/// `call_tool`: calls a tool by name, exactly as a direct `tools/call`.
pub const CALL_TOOL: &str = "call_tool";

/// The names of the meta tools.
pub const NAMES: [&str; 3] = [CALL_TOOL, DESCRIBE_TOOL, SEARCH_TOOLS];

/// Results a search returns when the client does not say.
pub const DEFAULT_LIMIT: usize = 5;
/// The most results a search returns.
pub const MAX_LIMIT: usize = 20;

/// The definitions, in name order, as compact JSON.
pub fn definitions() -> [String; 3] {
    [
        serde_json::json!({
            "name": CALL_TOOL,
            "description": "Call any tool found with search_tools, with its arguments.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's name"},
                    "arguments": {"type": "object", "description": "The tool's arguments"}
                },
                "required": ["name"]
            }
        })
        .to_string(),
        serde_json::json!({
            "name": DESCRIBE_TOOL,
            "description": "Show a tool's full definition: description and input schema.",
            "inputSchema": {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The tool's name"}},
                "required": ["name"]
            }
        })
        .to_string(),
        serde_json::json!({
            "name": SEARCH_TOOLS,
            "description": "Find tools for a task. More tools exist than are listed: search before saying a tool is missing.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What you want to do, in plain words"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "How many tools (default 5)"},
                    "load": {"type": "boolean", "description": "Also add the tools found to your tool list"}
                },
                "required": ["query"]
            }
        })
        .to_string(),
    ]
}

/// One search result line: `name(param: type, optional?: type) — description`.
pub fn signature_line(name: &str, tool: &Value, description: &str) -> String {
    let mut line = String::with_capacity(name.len() + description.len() + 32);
    line.push_str(name);
    line.push('(');
    let schema = tool.get("inputSchema");
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (idx, (param, spec)) in props.iter().enumerate() {
            if idx > 0 {
                line.push_str(", ");
            }
            line.push_str(param);
            if !required.contains(&param.as_str()) {
                line.push('?');
            }
            if let Some(ty) = spec.get("type") {
                let ty = match ty {
                    Value::String(s) => s.clone(),
                    Value::Array(types) => types
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("|"),
                    _ => String::new(),
                };
                if !ty.is_empty() {
                    let _ = write!(line, ": {ty}");
                }
            }
        }
    }
    line.push(')');
    if !description.is_empty() {
        line.push_str(" — ");
        line.push_str(description);
    }
    line
}

/// A `tools/call` result with one text block.
pub fn text_result(text: &str, is_error: bool) -> Value {
    let mut out = serde_json::json!({"content": [{"type": "text", "text": text}]});
    if is_error {
        out["isError"] = Value::Bool(true);
    }
    out
}
