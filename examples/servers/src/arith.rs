//! Catalog of `only1mcp-arith-server`: a dual-era server with arithmetic tools.

use serde_json::{Map, Value, json};

use crate::{Action, CRASH, Catalog, RpcError, SLEEP, Tool, arg_f64, text_result};

/// The arithmetic server's catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arith;

fn pair_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "a": { "type": "number", "description": "First operand" },
            "b": { "type": "number", "description": "Second operand" }
        },
        "required": ["a", "b"]
    })
}

fn result_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "result": { "type": "number" } },
        "required": ["result"]
    })
}

/// Largest magnitude below which every integer is exactly representable in `f64`.
const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Formats `value` as a tool result: integers without `.0`, plus `structuredContent`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "checked to be an exact integer first"
)]
fn number_result(value: f64) -> Result<Value, String> {
    if !value.is_finite() {
        return Err(format!("result is not a finite number ({value})"));
    }
    let number = if value.fract() == 0.0 && value.abs() < EXACT_INT_LIMIT {
        json!(value as i64)
    } else {
        json!(value)
    };
    let mut result = text_result(&number.to_string());
    result["structuredContent"] = json!({ "result": number });
    Ok(result)
}

fn operands(args: &Map<String, Value>) -> Result<(f64, f64), String> {
    Ok((arg_f64(args, "a")?, arg_f64(args, "b")?))
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "add",
        description: "Add two numbers.",
        input_schema: pair_schema,
        output_schema: Some(result_schema),
        action: Action::Pure(|args| operands(args).and_then(|(a, b)| number_result(a + b))),
    },
    Tool {
        name: "multiply",
        description: "Multiply two numbers.",
        input_schema: pair_schema,
        output_schema: Some(result_schema),
        action: Action::Pure(|args| operands(args).and_then(|(a, b)| number_result(a * b))),
    },
    Tool {
        name: "divide",
        description: "Divide `a` by `b`; dividing by zero is a tool error.",
        input_schema: pair_schema,
        output_schema: Some(result_schema),
        action: Action::Pure(|args| {
            let (a, b) = operands(args)?;
            if b == 0.0 {
                return Err("division by zero".to_owned());
            }
            number_result(a / b)
        }),
    },
    SLEEP,
    CRASH,
];

impl Catalog for Arith {
    fn default_name(&self) -> &'static str {
        "only1mcp-arith-server"
    }

    fn instructions(&self) -> &'static str {
        "Example server for testing Only1MCP. Use `add`, `multiply` and `divide` for arithmetic, \
         `sleep` to wait and `crash` to kill the server. Speaks both the initialize-based era \
         and the stateless 2026-07-28 era."
    }

    fn modern(&self) -> bool {
        true
    }

    fn tools(&self) -> &'static [Tool] {
        TOOLS
    }

    fn resources(&self) -> Value {
        json!([{ "uri": "arith://constants", "name": "constants", "mimeType": "application/json" }])
    }

    fn resource_templates(&self) -> Value {
        json!([])
    }

    fn read_resource(&self, uri: &str) -> Option<Value> {
        (uri == "arith://constants").then(|| {
            let constants = json!({ "pi": std::f64::consts::PI, "e": std::f64::consts::E });
            json!([{ "uri": uri, "mimeType": "application/json", "text": constants.to_string() }])
        })
    }

    fn prompts(&self) -> Value {
        json!([{
            "name": "explain",
            "description": "Ask the model to explain how to evaluate an arithmetic expression.",
            "arguments": [{
                "name": "expression",
                "description": "Expression to explain, e.g. 2 + 3 * 4",
                "required": true
            }]
        }])
    }

    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        if name != "explain" {
            return Err(RpcError::invalid_params(format!("Unknown prompt: {name}")));
        }
        let expression = args
            .get("expression")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("Missing required argument: expression"))?;
        Ok(json!({
            "description": "Explain an arithmetic expression",
            "messages": [{
                "role": "user",
                "content": {
                    "type": "text",
                    "text": format!("Explain step by step how to evaluate {expression}.")
                }
            }]
        }))
    }
}
