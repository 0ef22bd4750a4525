//! Catalog of `only1mcp-echo-server`: a legacy-era-only server with text tools.

use serde_json::{Map, Value, json};

use crate::{Action, CRASH, Catalog, RpcError, SLEEP, TOGGLE_EXTRA, Tool, arg_str, text_result};

const README: &str = "only1mcp-echo-server is an example MCP server used to test the Only1MCP \
gateway. Tools: echo, reverse, sleep, crash, env.";

/// The echo server's catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

fn text_schema(description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { "text": { "type": "string", "description": description } },
        "required": ["text"]
    })
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "echo",
        description: "Return the given text unchanged.",
        input_schema: || text_schema("Text to echo back"),
        output_schema: None,
        action: Action::Pure(|args| Ok(text_result(arg_str(args, "text")?))),
    },
    Tool {
        name: "reverse",
        description: "Return the given text reversed (by Unicode scalar value).",
        input_schema: || text_schema("Text to reverse"),
        output_schema: None,
        action: Action::Pure(|args| {
            let reversed: String = arg_str(args, "text")?.chars().rev().collect();
            Ok(text_result(&reversed))
        }),
    },
    SLEEP,
    CRASH,
    TOGGLE_EXTRA,
    Tool {
        name: "env",
        description: "Return the value of an environment variable of the server process, \
                      or \"(unset)\".",
        input_schema: || {
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "Environment variable name" }
                },
                "required": ["name"]
            })
        },
        output_schema: None,
        action: Action::Pure(|args| {
            let value = std::env::var_os(arg_str(args, "name")?).map_or_else(
                || "(unset)".to_owned(),
                |v| v.to_string_lossy().into_owned(),
            );
            Ok(text_result(&value))
        }),
    },
];

impl Catalog for Echo {
    fn default_name(&self) -> &'static str {
        "only1mcp-echo-server"
    }

    fn instructions(&self) -> &'static str {
        "Example server for testing Only1MCP. Use `echo` or `reverse` to transform text, \
         `sleep` to wait, `env` to read an environment variable, and `crash` to kill the server."
    }

    fn modern(&self) -> bool {
        false
    }

    fn tools(&self) -> &'static [Tool] {
        TOOLS
    }

    fn resources(&self) -> Value {
        json!([{ "uri": "echo://readme", "name": "readme", "mimeType": "text/plain" }])
    }

    fn resource_templates(&self) -> Value {
        json!([{ "uriTemplate": "echo://messages/{id}", "name": "message" }])
    }

    fn read_resource(&self, uri: &str) -> Option<Value> {
        let text = if uri == "echo://readme" {
            README.to_owned()
        } else {
            let id = uri
                .strip_prefix("echo://messages/")
                .filter(|id| !id.is_empty())?;
            format!("message {id}")
        };
        Some(json!([{ "uri": uri, "mimeType": "text/plain", "text": text }]))
    }

    fn prompts(&self) -> Value {
        json!([{
            "name": "greet",
            "description": "Ask the model to greet someone.",
            "arguments": [{ "name": "name", "description": "Who to greet", "required": true }]
        }])
    }

    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        if name != "greet" {
            return Err(RpcError::invalid_params(format!("Unknown prompt: {name}")));
        }
        let who = args
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("Missing required argument: name"))?;
        Ok(json!({
            "description": "Greet someone by name",
            "messages": [{
                "role": "user",
                "content": { "type": "text", "text": format!("Say hello to {who}.") }
            }]
        }))
    }
}
