//! `only1mcp-churn-server`: a legacy-era stdio MCP server with a large tool
//! catalog that keeps changing (test and benchmark fixture, not part of the
//! gateway).
//!
//! `--tools N` (default 5000) generated tools, each with a description and
//! a three-property input schema, about the size of a real tool. With
//! `--every MS`, after `notifications/initialized` it drops or restores its
//! last tool every MS milliseconds and announces
//! `notifications/tools/list_changed`, so a gateway in front of it re-reads
//! and rebuilds a catalog of N tools that many times a second. `--every 0`
//! (the default) never changes. Calling any tool answers `ok`.
//!
//! `cargo xtask bench` measures calls to another backend beside it, with and
//! without the churn: what a catalog rebuild costs everyone else.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use only1mcp_example_servers::{LEGACY_VERSIONS, log, text_result};
use serde_json::{Value, json};

const NAME: &str = "churn";

fn main() -> ExitCode {
    let (tools, every) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(msg) => {
            log(NAME, &format!("{msg} (usage: --tools N --every MS)"));
            return ExitCode::from(2);
        }
    };
    let catalog: Vec<Value> = (0..tools).map(tool).collect();
    let out: Arc<Mutex<std::io::Stdout>> = Arc::new(Mutex::new(std::io::stdout()));
    let shorter = Arc::new(AtomicBool::new(false));
    let mut churning = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            log(NAME, "unparseable line ignored");
            continue;
        };
        let id = msg.get("id").cloned();
        let method = msg
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let result = match method {
            "initialize" => {
                let asked = msg
                    .pointer("/params/protocolVersion")
                    .and_then(Value::as_str);
                let version = asked
                    .and_then(|v| LEGACY_VERSIONS.iter().find(|&&known| known == v))
                    .unwrap_or(&LEGACY_VERSIONS[0]);
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": { "tools": { "listChanged": true } },
                    "serverInfo": { "name": NAME, "version": env!("CARGO_PKG_VERSION") },
                }))
            }
            "notifications/initialized" => {
                if every > 0 && !churning {
                    churning = true;
                    churn(out.clone(), shorter.clone(), Duration::from_millis(every));
                }
                continue;
            }
            "ping" => Ok(json!({})),
            "tools/list" => {
                let shown = catalog.len() - usize::from(shorter.load(Ordering::SeqCst));
                Ok(json!({ "tools": &catalog[..shown.min(catalog.len())] }))
            }
            "tools/call" => Ok(text_result("ok")),
            _ => Err(json!({ "code": -32601, "message": format!("Method not found: {method}") })),
        };
        let Some(id) = id else { continue };
        let answer = match result {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        };
        send(&out, &answer);
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(usize, u64), String> {
    let (mut tools, mut every) = (5000, 0);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--tools" => tools = value.parse().map_err(|e| format!("--tools: {e}"))?,
            "--every" => every = value.parse().map_err(|e| format!("--every: {e}"))?,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok((tools, every))
}

/// Tool number `n`.
fn tool(n: usize) -> Value {
    json!({
        "name": format!("tool_{n}"),
        "description": format!(
            "Generated tool number {n}: takes a query, a limit and a flag, and answers with a short text."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": { "type": "string", "description": "What to look for." },
                "limit": { "type": "integer", "minimum": 1, "description": "At most this many results." },
                "exact": { "type": "boolean", "description": "Match the query exactly." }
            },
            "required": ["query"]
        }
    })
}

/// Every `every`, drops or restores the last tool and announces it.
fn churn(out: Arc<Mutex<std::io::Stdout>>, shorter: Arc<AtomicBool>, every: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(every);
            shorter.fetch_xor(true, Ordering::SeqCst);
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" });
            if !send(&out, &note) {
                return;
            }
        }
    });
}

/// Writes one message as a line; false once stdout is gone.
fn send(out: &Mutex<std::io::Stdout>, msg: &Value) -> bool {
    let mut out = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut line = msg.to_string();
    line.push('\n');
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}
