//! Example MCP servers for exercising and testing the Only1MCP gateway.
//!
//! These are small, cheap test servers, **not** part of the gateway. They speak
//! newline-delimited JSON-RPC 2.0 over stdio (one message per line on stdin and
//! stdout, logs on stderr only) and exit when stdin reaches end of file.
//!
//! The crate holds a tiny framework ([`Server`], driven by a [`Catalog`] that
//! lists tools, resources and prompts) and two catalogs:
//!
//! * [`echo::Echo`] for `only1mcp-echo-server`, which speaks only the legacy
//!   (`initialize`-based) MCP era;
//! * [`arith::Arith`] for `only1mcp-arith-server`, which also speaks the
//!   stateless `2026-07-28` era (`server/discover` and per-request `_meta`).
//!
//! With `--http ADDR` either server speaks Streamable HTTP instead (see
//! [`http`]), for benchmarks and HTTP backends.

pub mod arith;
pub mod echo;
pub mod http;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Legacy protocol versions accepted in `initialize`, newest first.
pub const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The stateless protocol version served by dual-era servers.
pub const MODERN_VERSION: &str = "2026-07-28";

/// `_meta` key carrying the protocol version of a modern-era request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// `_meta` key carrying the client capabilities of a modern-era request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// `_meta` key carrying the server info in a `server/discover` result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Environment variable that, when set to `1`, makes a server exit with code 2
/// at startup before reading anything.
pub const STARTUP_FAIL_ENV: &str = "ONLY1MCP_EXAMPLE_STARTUP_FAIL";

/// Environment variable naming a file to which a server appends every message
/// it receives, one JSON line each, before handling it: tests read what a
/// backend really got (which ids a `notifications/cancelled` named, ...).
pub const RECORD_ENV: &str = "ONLY1MCP_EXAMPLE_RECORD";

/// Environment variable naming a file the server waits for (at most a
/// minute) before it serves anything: a test holds a backend's start, and so
/// the gateway's, until it has done something first.
pub const START_AFTER_ENV: &str = "ONLY1MCP_EXAMPLE_START_AFTER";

/// Waits until the file [`START_AFTER_ENV`] names exists, if it names one.
fn wait_for_start_file(name: &str) {
    let Some(path) = std::env::var_os(START_AFTER_ENV).filter(|path| !path.is_empty()) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    log(
        name,
        &format!("waiting for {} before serving", path.display()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The file of [`RECORD_ENV`], opened for appending.
#[derive(Debug)]
struct Recorder(Mutex<std::fs::File>);

impl Recorder {
    /// The recorder `RECORD_ENV` asks for, if any; a file that cannot be
    /// opened is logged and ignored.
    fn from_env(name: &str) -> Option<Self> {
        let path = std::env::var_os(RECORD_ENV).filter(|path| !path.is_empty())?;
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(file) => Some(Self(Mutex::new(file))),
            Err(err) => {
                log(
                    name,
                    &format!("cannot open {RECORD_ENV} file {path:?}: {err}"),
                );
                None
            }
        }
    }

    /// Appends `msg` as one line, in one write.
    fn record(&self, msg: &Value) {
        let mut line = msg.to_string();
        line.push('\n');
        let mut file = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    /// JSON-RPC error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Optional structured data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// Builds an error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured data.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32602 Invalid params`-style error with a custom message.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
}

/// What a tool does when called.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Computes a tool result from the arguments. `Err(message)` becomes a
    /// tool result with `isError: true`.
    Pure(fn(&Map<String, Value>) -> Result<Value, String>),
    /// Waits `ms` milliseconds on its own thread (progress and cancellation aware).
    Sleep,
    /// Logs to stderr and exits the process with code 3 without answering.
    Crash,
    /// Shows or hides the [`EXTRA`] tool and sends
    /// `notifications/tools/list_changed`.
    ToggleExtra,
}

/// The tool that [`Action::ToggleExtra`] adds to and removes from the list.
pub const EXTRA: Tool = Tool {
    name: "extra",
    description: "A tool that appears and disappears (see toggle_extra).",
    input_schema: empty_schema,
    output_schema: None,
    action: Action::Pure(|_| Ok(text_result("extra"))),
};

/// Shows or hides the `extra` tool, announcing the change.
pub const TOGGLE_EXTRA: Tool = Tool {
    name: "toggle_extra",
    description: "Show or hide the `extra` tool and send notifications/tools/list_changed.",
    input_schema: empty_schema,
    output_schema: None,
    action: Action::ToggleExtra,
};

/// One tool of a [`Catalog`].
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Tool name.
    pub name: &'static str,
    /// Tool description.
    pub description: &'static str,
    /// Builds the JSON Schema of the arguments.
    pub input_schema: fn() -> Value,
    /// Builds the JSON Schema of `structuredContent`, if the tool returns one.
    pub output_schema: Option<fn() -> Value>,
    /// What the tool does.
    pub action: Action,
}

impl Tool {
    /// The tool as listed by `tools/list`.
    pub fn descriptor(&self) -> Value {
        let mut tool = json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": (self.input_schema)(),
        });
        if let Some(schema) = self.output_schema {
            tool["outputSchema"] = schema();
        }
        tool
    }
}

/// The `sleep {ms}` tool shared by both servers.
pub const SLEEP: Tool = Tool {
    name: "sleep",
    description: "Wait `ms` milliseconds, then answer \"slept <ms> ms\". Sends progress \
                  notifications when a progress token is given; honours cancellation.",
    input_schema: sleep_schema,
    output_schema: None,
    action: Action::Sleep,
};

/// The `crash {}` tool shared by both servers.
pub const CRASH: Tool = Tool {
    name: "crash",
    description: "Exit the server process immediately with code 3, without answering.",
    input_schema: empty_schema,
    output_schema: None,
    action: Action::Crash,
};

fn sleep_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "ms": { "type": "integer", "minimum": 0, "description": "Milliseconds to wait" }
        },
        "required": ["ms"]
    })
}

fn empty_schema() -> Value {
    json!({ "type": "object", "properties": {}, "required": [] })
}

/// Everything that differs between the example servers.
pub trait Catalog: Send + Sync {
    /// Default `serverInfo.name` (overridable with `--name`).
    fn default_name(&self) -> &'static str;
    /// The `instructions` string.
    fn instructions(&self) -> &'static str;
    /// Whether the server also speaks the stateless `2026-07-28` era.
    fn modern(&self) -> bool;
    /// All tools, listed in one page.
    fn tools(&self) -> &'static [Tool];
    /// The `resources` array of `resources/list`.
    fn resources(&self) -> Value;
    /// The `resourceTemplates` array of `resources/templates/list`.
    fn resource_templates(&self) -> Value;
    /// The `contents` array for `uri`, or `None` if there is no such resource.
    fn read_resource(&self, uri: &str) -> Option<Value>;
    /// The `prompts` array of `prompts/list`.
    fn prompts(&self) -> Value;
    /// The result of `prompts/get` (errors are `-32602`).
    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError>;
}

/// Serialises messages to a shared writer, one line per message, flushed.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Wraps any writer.
    pub fn new(writer: impl Write + Send + 'static) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Box::new(writer))),
        }
    }

    /// Writes to the process's stdout.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    /// Writes `msg` as one line and flushes. Errors are logged to stderr.
    pub fn send(&self, msg: &Value) {
        let line = msg.to_string();
        let mut out = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let written = writeln!(out, "{line}").and_then(|()| out.flush());
        drop(out);
        if let Err(err) = written {
            log("example-server", &format!("cannot write to stdout: {err}"));
        }
    }
}

/// Writes one log line to stderr.
pub fn log(name: &str, msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "[{name}] {msg}");
}

/// Which era a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    Legacy,
    Modern,
}

/// The `ttlMs` of modern list results.
pub const LIST_TTL_MS: u64 = 60_000;

impl Era {
    /// Adds the modern-era result fields (`resultType`, and cache hints on lists).
    fn finish(self, mut result: Value, method: &str) -> Value {
        if self == Self::Modern
            && let Some(obj) = result.as_object_mut()
        {
            obj.insert("resultType".into(), json!("complete"));
            if method.ends_with("/list") {
                // The lists are fixed at start (toggle_extra is echo's, a
                // legacy-only server), so a minute of caching is safe.
                obj.insert("ttlMs".into(), json!(LIST_TTL_MS));
                obj.insert("cacheScope".into(), json!("public"));
            }
        }
        result
    }
}

type Pending = Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>;

/// An MCP server: a [`Catalog`] plus the protocol plumbing.
#[derive(Debug)]
pub struct Server<C> {
    catalog: C,
    name: String,
    outbox: Outbox,
    /// Cancellation flags of running `sleep` calls, keyed by serialised request id.
    pending: Pending,
    initialized: AtomicBool,
    warned_uninitialized: AtomicBool,
    /// Whether the [`EXTRA`] tool is listed.
    extra: AtomicBool,
    /// Where received messages are recorded ([`RECORD_ENV`]).
    recorder: Option<Recorder>,
}

impl<C: Catalog> Server<C> {
    /// Creates a server; `name` overrides the catalog's default name.
    pub fn new(catalog: C, name: Option<String>, outbox: Outbox) -> Self {
        let name = name.unwrap_or_else(|| catalog.default_name().to_owned());
        let recorder = Recorder::from_env(&name);
        Self {
            catalog,
            name,
            recorder,
            outbox,
            pending: Arc::default(),
            initialized: AtomicBool::new(false),
            warned_uninitialized: AtomicBool::new(false),
            extra: AtomicBool::new(false),
        }
    }

    /// The advertised `serverInfo.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads lines from `input` until end of file, answering each on the outbox.
    pub fn serve(&self, mut input: impl BufRead) {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    if let Some(reply) = self.handle_line(&String::from_utf8_lossy(&buf)) {
                        self.outbox.send(&reply);
                    }
                }
                Err(err) => {
                    log(&self.name, &format!("cannot read stdin: {err}"));
                    break;
                }
            }
        }
        log(&self.name, "stdin closed; exiting");
    }

    /// Handles one input line; returns the immediate reply, if any.
    pub fn handle_line(&self, line: &str) -> Option<Value> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(msg) => self.handle(&msg),
            Err(err) => Some(error_response(
                &Value::Null,
                &RpcError::new(-32700, format!("Parse error: {err}")),
            )),
        }
    }

    /// Handles one parsed message; returns the immediate reply, if any.
    ///
    /// Notifications and client responses yield `None`, and so does a `sleep`
    /// call, whose reply is sent later from its own thread.
    pub fn handle(&self, msg: &Value) -> Option<Value> {
        if let Some(recorder) = &self.recorder {
            recorder.record(msg);
        }
        let Some(obj) = msg.as_object() else {
            return Some(error_response(
                &Value::Null,
                &RpcError::new(-32600, "Invalid Request: expected a JSON object"),
            ));
        };
        let id = obj.get("id");
        let method = obj.get("method").and_then(Value::as_str);
        let empty = Map::new();
        let params = match obj.get("params") {
            None | Some(Value::Null) => Ok(&empty),
            Some(Value::Object(params)) => Ok(params),
            Some(_) => Err(RpcError::invalid_params("params must be an object")),
        };
        match (id, method) {
            (None, Some(method)) => {
                if let Ok(params) = params {
                    self.notification(method, params);
                }
                None
            }
            (Some(id), Some(method)) => {
                let outcome = params.and_then(|params| self.request(id, method, params));
                match outcome {
                    Ok(Some(result)) => Some(json!({"jsonrpc": "2.0", "id": id, "result": result})),
                    Ok(None) => None,
                    Err(err) => Some(error_response(id, &err)),
                }
            }
            // A response to something we never sent: ignore it.
            (Some(_), None) if obj.contains_key("result") || obj.contains_key("error") => None,
            (id, None) => Some(error_response(
                id.unwrap_or(&Value::Null),
                &RpcError::new(-32600, "Invalid Request: missing method"),
            )),
        }
    }

    fn notification(&self, method: &str, params: &Map<String, Value>) {
        if method == "notifications/cancelled"
            && let Some(request_id) = params.get("requestId")
        {
            let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(flag) = pending.get(&request_id.to_string()) {
                flag.store(true, Ordering::SeqCst);
            }
        }
        // notifications/initialized and all others: nothing to do.
    }

    /// Decides the era of a request, validating modern `_meta`.
    fn era(&self, params: &Map<String, Value>) -> Result<Era, RpcError> {
        if !self.catalog.modern() {
            return Ok(Era::Legacy);
        }
        let meta = params.get("_meta").and_then(Value::as_object);
        let Some(version) = meta.and_then(|meta| meta.get(META_PROTOCOL_VERSION)) else {
            return Ok(Era::Legacy);
        };
        if version.as_str() != Some(MODERN_VERSION) {
            return Err(RpcError::new(-32022, "Unsupported protocol version")
                .with_data(json!({"supported": [MODERN_VERSION], "requested": version})));
        }
        if !meta.is_some_and(|meta| meta.contains_key(META_CLIENT_CAPABILITIES)) {
            return Err(RpcError::invalid_params(format!(
                "Missing _meta field {META_CLIENT_CAPABILITIES}"
            )));
        }
        Ok(Era::Modern)
    }

    fn request(
        &self,
        id: &Value,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Option<Value>, RpcError> {
        let era = self.era(params)?;
        if era == Era::Legacy
            && !matches!(method, "initialize" | "server/discover" | "ping")
            && !self.initialized.load(Ordering::SeqCst)
            && !self.warned_uninitialized.swap(true, Ordering::SeqCst)
        {
            log(
                &self.name,
                &format!("'{method}' before initialize; answering anyway"),
            );
        }
        let result = match method {
            "initialize" => self.initialize(params),
            "server/discover" if self.catalog.modern() => self.discover(),
            "ping" | "logging/setLevel" => json!({}),
            "tools/list" => {
                let extra = self.extra.load(Ordering::SeqCst).then_some(&EXTRA);
                let tools: Vec<Value> = self
                    .catalog
                    .tools()
                    .iter()
                    .chain(extra)
                    .map(Tool::descriptor)
                    .collect();
                json!({ "tools": tools })
            }
            "tools/call" => match self.call_tool(id, params, era)? {
                Some(result) => result,
                None => return Ok(None),
            },
            "resources/list" => json!({ "resources": self.catalog.resources() }),
            "resources/templates/list" => {
                json!({ "resourceTemplates": self.catalog.resource_templates() })
            }
            "resources/read" => self.read_resource(params, era)?,
            "prompts/list" => json!({ "prompts": self.catalog.prompts() }),
            "prompts/get" => {
                let name = params
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("Missing prompt name"))?;
                let empty = Map::new();
                let args = params
                    .get("arguments")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                self.catalog.get_prompt(name, args)?
            }
            "completion/complete" => json!({ "completion": { "values": [], "hasMore": false } }),
            _ => return Err(RpcError::new(-32601, "Method not found")),
        };
        Ok(Some(era.finish(result, method)))
    }

    fn capabilities() -> Value {
        json!({
            "tools": { "listChanged": true },
            "resources": { "subscribe": false, "listChanged": false },
            "prompts": { "listChanged": false },
            "logging": {},
            "completions": {},
        })
    }

    fn server_info(&self) -> Value {
        json!({ "name": self.name, "version": env!("CARGO_PKG_VERSION") })
    }

    fn initialize(&self, params: &Map<String, Value>) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = requested
            .and_then(|v| LEGACY_VERSIONS.iter().find(|&&known| known == v))
            .unwrap_or(&LEGACY_VERSIONS[0]);
        self.initialized.store(true, Ordering::SeqCst);
        json!({
            "protocolVersion": version,
            "capabilities": Self::capabilities(),
            "serverInfo": self.server_info(),
            "instructions": self.catalog.instructions(),
        })
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": [MODERN_VERSION],
            "capabilities": Self::capabilities(),
            "instructions": self.catalog.instructions(),
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "public",
            "_meta": { META_SERVER_INFO: self.server_info() },
        })
    }

    fn read_resource(&self, params: &Map<String, Value>, era: Era) -> Result<Value, RpcError> {
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("Missing uri"))?;
        match self.catalog.read_resource(uri) {
            Some(contents) => Ok(json!({ "contents": contents })),
            None => {
                let code = if era == Era::Modern { -32602 } else { -32002 };
                Err(RpcError::new(code, "Resource not found").with_data(json!({ "uri": uri })))
            }
        }
    }

    fn call_tool(
        &self,
        id: &Value,
        params: &Map<String, Value>,
        era: Era,
    ) -> Result<Option<Value>, RpcError> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("Missing tool name"))?;
        let extra = self.extra.load(Ordering::SeqCst).then_some(&EXTRA);
        let tool = self
            .catalog
            .tools()
            .iter()
            .chain(extra)
            .find(|tool| tool.name == name)
            .ok_or_else(|| RpcError::invalid_params(format!("Unknown tool: {name}")))?;
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(args)) => args,
            Some(_) => return Ok(Some(tool_error("Invalid arguments: expected an object"))),
        };
        match tool.action {
            Action::Pure(run) => Ok(Some(run(args).unwrap_or_else(|msg| tool_error(&msg)))),
            Action::Crash => {
                log(&self.name, "crash tool called; exiting with code 3");
                std::process::exit(3);
            }
            Action::ToggleExtra => {
                let shown = !self.extra.fetch_xor(true, Ordering::SeqCst);
                self.outbox.send(&json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/tools/list_changed",
                }));
                let state = if shown { "shown" } else { "hidden" };
                Ok(Some(text_result(&format!("extra tool {state}"))))
            }
            Action::Sleep => match arg_u64(args, "ms") {
                Err(msg) => Ok(Some(tool_error(&msg))),
                Ok(ms) => {
                    let token = params
                        .get("_meta")
                        .and_then(|meta| meta.get("progressToken"))
                        .filter(|token| !token.is_null())
                        .cloned();
                    self.spawn_sleep(id.clone(), ms, token, era);
                    Ok(None)
                }
            },
        }
    }

    /// Runs a `sleep` call on its own thread; it answers unless cancelled first.
    fn spawn_sleep(&self, id: Value, ms: u64, token: Option<Value>, era: Era) {
        const STEPS: u64 = 4;
        let key = id.to_string();
        let cancelled = Arc::new(AtomicBool::new(false));
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), Arc::clone(&cancelled));
        let pending = Arc::clone(&self.pending);
        let outbox = self.outbox.clone();
        let name = self.name.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            for step in 1..=STEPS {
                let until = start + Duration::from_millis(ms * step / STEPS);
                // Sleep in short slices so cancellation is noticed quickly.
                while !cancelled.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    std::thread::sleep((until - now).min(Duration::from_millis(10)));
                }
                if cancelled.load(Ordering::SeqCst) {
                    break;
                }
                if let Some(token) = &token {
                    outbox.send(&json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": token,
                            "progress": step,
                            "total": STEPS,
                            "message": format!("sleep {ms} ms: step {step} of {STEPS}"),
                        },
                    }));
                }
            }
            // Decide under the lock, so a late cancellation cannot slip in between.
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.remove(&key);
            if cancelled.load(Ordering::SeqCst) {
                drop(pending);
                log(
                    &name,
                    &format!("sleep request {key} cancelled; not answering"),
                );
                return;
            }
            let result = era.finish(text_result(&format!("slept {ms} ms")), "tools/call");
            outbox.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            drop(pending);
        });
    }
}

/// Builds a JSON-RPC error response.
pub fn error_response(id: &Value, err: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": err })
}

/// A tool result with one text content block.
pub fn text_result(text: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": text }] })
}

/// A tool result with `isError: true` and one text content block.
pub fn tool_error(message: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": message }], "isError": true })
}

/// Reads a required string argument.
pub fn arg_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Invalid arguments: '{key}' must be a string"))
}

/// Reads a required number argument.
pub fn arg_f64(args: &Map<String, Value>, key: &str) -> Result<f64, String> {
    args.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("Invalid arguments: '{key}' must be a number"))
}

/// Reads a required non-negative integer argument.
pub fn arg_u64(args: &Map<String, Value>, key: &str) -> Result<u64, String> {
    args.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("Invalid arguments: '{key}' must be a non-negative integer"))
}

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Serve, optionally overriding `serverInfo.name`.
    Serve {
        /// Value of `--name`.
        name: Option<String>,
    },
    /// Serve Streamable HTTP on an address (`--http ADDR`).
    ServeHttp {
        /// Value of `--name`.
        name: Option<String>,
        /// Value of `--http`.
        addr: std::net::SocketAddr,
    },
    /// `--help` was given.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut args = args.into_iter();
    let mut name = None;
    let mut http = None;
    let parse_addr = |value: &str| {
        value
            .parse::<std::net::SocketAddr>()
            .map_err(|e| format!("--http {value}: {e} (expected e.g. 127.0.0.1:0)"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "--name" => name = Some(args.next().ok_or("--name needs a value")?),
            "--http" => http = Some(parse_addr(&args.next().ok_or("--http needs an address")?)?),
            _ => match (arg.strip_prefix("--name="), arg.strip_prefix("--http=")) {
                (Some(value), _) => name = Some(value.to_owned()),
                (None, Some(value)) => http = Some(parse_addr(value)?),
                (None, None) => return Err(format!("unknown argument: {arg}")),
            },
        }
    }
    Ok(match http {
        Some(addr) => Cli::ServeHttp { name, addr },
        None => Cli::Serve { name },
    })
}

/// The whole program of an example server: startup checks, arguments, serving stdio.
pub fn main_for(catalog: impl Catalog + Clone + 'static) -> ExitCode {
    main_with_args(catalog, std::env::args().skip(1))
}

/// [`main_for`] with the arguments given rather than read from the process
/// (those after the program name): how `only1mcp example-server NAME ARGS…`
/// serves the built-in default's servers from its own binary.
pub fn main_with_args(
    catalog: impl Catalog + Clone + 'static,
    args: impl IntoIterator<Item = String>,
) -> ExitCode {
    let program = catalog.default_name();
    if std::env::var_os(STARTUP_FAIL_ENV).is_some_and(|value| value == "1") {
        log(
            program,
            &format!("{STARTUP_FAIL_ENV}=1: failing at startup"),
        );
        return ExitCode::from(2);
    }
    let name = match parse_args(args) {
        Ok(Cli::Serve { name }) => name,
        Ok(Cli::ServeHttp { name, addr }) => return serve_http(&catalog, name.as_deref(), addr),
        Ok(Cli::Help) => {
            let usage = format!(
                "{program}: example MCP server over stdio (newline-delimited JSON-RPC)\n\n\
                 usage: {program} [--name NAME] [--http ADDR]\n\n  \
                 --name NAME  override serverInfo.name\n  \
                 --http ADDR  serve Streamable HTTP at http://ADDR/mcp instead of stdio\n               \
                 (port 0 picks a free port; the URL is printed on stdout)\n\n\
                 env: {STARTUP_FAIL_ENV}=1 exits with code 2 at startup\n     \
                 {RECORD_ENV}=FILE appends every message received to FILE, one JSON line each\n     \
                 {START_AFTER_ENV}=FILE waits (at most a minute) until FILE exists before serving\n"
            );
            let _ = std::io::stdout().lock().write_all(usage.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            log(program, &format!("{msg} (try --help)"));
            return ExitCode::from(2);
        }
    };
    let server = Server::new(catalog, name, Outbox::stdout());
    wait_for_start_file(server.name());
    log(server.name(), "ready on stdio");
    server.serve(std::io::stdin().lock());
    ExitCode::SUCCESS
}

/// Binds `addr`, prints the endpoint URL as the one line on stdout, and
/// serves Streamable HTTP until the process is killed.
fn serve_http(
    catalog: &(impl Catalog + Clone + 'static),
    name: Option<&str>,
    addr: std::net::SocketAddr,
) -> ExitCode {
    let label = name.unwrap_or_else(|| catalog.default_name()).to_owned();
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(err) => {
            log(&label, &format!("cannot listen on {addr}: {err}"));
            return ExitCode::from(2);
        }
    };
    let url = match listener.local_addr() {
        Ok(local) => http::url(local),
        Err(err) => {
            log(&label, &format!("cannot read the bound address: {err}"));
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{url}").and_then(|()| stdout.flush());
    drop(stdout);
    log(&label, &format!("ready on {url}"));
    http::serve(catalog, name, &listener);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::Arith;
    use crate::echo::Echo;

    /// A writer whose bytes the test can inspect.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        }
    }

    fn arith() -> Server<Arith> {
        Server::new(Arith, None, Outbox::new(std::io::sink()))
    }

    fn echo() -> Server<Echo> {
        Server::new(Echo, None, Outbox::new(std::io::sink()))
    }

    fn req(id: Value, method: &str, params: Value) -> Value {
        let mut msg = json!({ "jsonrpc": "2.0", "method": method });
        msg["id"] = id;
        msg["params"] = params;
        msg
    }

    fn modern_meta() -> Value {
        json!({ META_PROTOCOL_VERSION: MODERN_VERSION, META_CLIENT_CAPABILITIES: {} })
    }

    fn call(server: &Server<impl Catalog>, name: &str, arguments: Value) -> Value {
        let mut params = json!({ "name": name });
        params["arguments"] = arguments;
        server.handle(&req(json!(1), "tools/call", params)).unwrap()
    }

    #[test]
    fn initialize_negotiates_version() {
        for (asked, answered) in [
            ("2025-06-18", "2025-06-18"),
            ("2024-11-05", "2024-11-05"),
            ("1999-01-01", "2025-11-25"),
        ] {
            let msg = req(json!(1), "initialize", json!({ "protocolVersion": asked }));
            let reply = echo().handle(&msg).unwrap();
            assert_eq!(reply["result"]["protocolVersion"], answered);
            assert_eq!(
                reply["result"]["serverInfo"]["name"],
                "only1mcp-echo-server"
            );
            assert_eq!(
                reply["result"]["capabilities"]["tools"]["listChanged"],
                true
            );
        }
        let named = Server::new(Arith, Some("calc".into()), Outbox::new(std::io::sink()));
        let reply = named
            .handle(&req(json!("a"), "initialize", json!({})))
            .unwrap();
        assert_eq!(reply["id"], "a");
        assert_eq!(reply["result"]["protocolVersion"], "2025-11-25");
        assert_eq!(reply["result"]["serverInfo"]["name"], "calc");
    }

    #[test]
    fn modern_discover() {
        let msg = req(
            json!(7),
            "server/discover",
            json!({ "_meta": modern_meta() }),
        );
        let reply = arith().handle(&msg).unwrap();
        let result = &reply["result"];
        assert_eq!(result["supportedVersions"], json!([MODERN_VERSION]));
        assert_eq!(result["resultType"], "complete");
        assert_eq!(result["ttlMs"], 0);
        assert_eq!(result["cacheScope"], "public");
        assert_eq!(
            result["_meta"][META_SERVER_INFO]["name"],
            "only1mcp-arith-server"
        );
        assert_eq!(result["capabilities"]["completions"], json!({}));
    }

    #[test]
    fn legacy_only_server_rejects_discover() {
        let msg = req(
            json!(7),
            "server/discover",
            json!({ "_meta": modern_meta() }),
        );
        assert_eq!(echo().handle(&msg).unwrap()["error"]["code"], -32601);
    }

    #[test]
    fn modern_bad_version_and_missing_capabilities() {
        let meta = json!({ META_PROTOCOL_VERSION: "2025-11-25", META_CLIENT_CAPABILITIES: {} });
        let reply = arith()
            .handle(&req(json!(1), "tools/list", json!({ "_meta": meta })))
            .unwrap();
        assert_eq!(reply["error"]["code"], -32022);
        assert_eq!(
            reply["error"]["data"],
            json!({ "supported": [MODERN_VERSION], "requested": "2025-11-25" })
        );
        let meta = json!({ META_PROTOCOL_VERSION: MODERN_VERSION });
        let reply = arith()
            .handle(&req(json!(1), "tools/list", json!({ "_meta": meta })))
            .unwrap();
        assert_eq!(reply["error"]["code"], -32602);
    }

    #[test]
    fn modern_results_are_marked() {
        let msg = req(json!(1), "tools/list", json!({ "_meta": modern_meta() }));
        let result = arith().handle(&msg).unwrap()["result"].clone();
        assert_eq!(result["resultType"], "complete");
        assert_eq!(result["cacheScope"], "public");
        let msg = req(
            json!(2),
            "resources/read",
            json!({ "uri": "arith://nope", "_meta": modern_meta() }),
        );
        assert_eq!(arith().handle(&msg).unwrap()["error"]["code"], -32602);
        let msg = req(json!(3), "resources/read", json!({ "uri": "arith://nope" }));
        assert_eq!(arith().handle(&msg).unwrap()["error"]["code"], -32002);
    }

    #[test]
    fn add_and_multiply() {
        let reply = call(&arith(), "add", json!({ "a": 2, "b": 3 }));
        assert_eq!(reply["result"]["content"][0]["text"], "5");
        assert_eq!(reply["result"]["structuredContent"], json!({ "result": 5 }));
        let reply = call(&arith(), "add", json!({ "a": 0.5, "b": 0.25 }));
        assert_eq!(reply["result"]["content"][0]["text"], "0.75");
        let reply = call(&arith(), "multiply", json!({ "a": -4, "b": 2.5 }));
        assert_eq!(reply["result"]["content"][0]["text"], "-10");
        let reply = call(&arith(), "add", json!({ "a": 2 }));
        assert_eq!(reply["result"]["isError"], true);
    }

    #[test]
    fn divide_by_zero_is_tool_error() {
        let reply = call(&arith(), "divide", json!({ "a": 1, "b": 0 }));
        assert_eq!(reply["result"]["isError"], true);
        assert_eq!(reply["result"]["content"][0]["text"], "division by zero");
    }

    #[test]
    fn unknown_tool_and_method() {
        let reply = call(&arith(), "nope", json!({}));
        assert_eq!(reply["error"]["code"], -32602);
        assert_eq!(reply["error"]["message"], "Unknown tool: nope");
        let reply = echo()
            .handle(&req(json!(9), "nope/nope", json!({})))
            .unwrap();
        assert_eq!(reply["error"]["code"], -32601);
    }

    #[test]
    fn echo_tools_resources_prompts() {
        let server = echo();
        assert_eq!(
            call(&server, "echo", json!({ "text": "hi" }))["result"]["content"][0]["text"],
            "hi"
        );
        assert_eq!(
            call(&server, "reverse", json!({ "text": "abc" }))["result"]["content"][0]["text"],
            "cba"
        );
        let msg = req(
            json!(1),
            "resources/read",
            json!({ "uri": "echo://messages/42" }),
        );
        assert_eq!(
            server.handle(&msg).unwrap()["result"]["contents"][0]["text"],
            "message 42"
        );
        let msg = req(json!(1), "resources/read", json!({ "uri": "echo://nope" }));
        let reply = server.handle(&msg).unwrap();
        assert_eq!(reply["error"]["code"], -32002);
        assert_eq!(reply["error"]["data"]["uri"], "echo://nope");
        let msg = req(
            json!(1),
            "prompts/get",
            json!({ "name": "greet", "arguments": { "name": "Ann" } }),
        );
        let reply = server.handle(&msg).unwrap();
        assert_eq!(
            reply["result"]["messages"][0]["content"]["text"],
            "Say hello to Ann."
        );
    }

    #[test]
    fn malformed_lines_and_notifications() {
        let reply = echo().handle_line("{not json").unwrap();
        assert_eq!(reply["error"]["code"], -32700);
        assert_eq!(reply["id"], Value::Null);
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        assert!(echo().handle(&note).is_none());
        assert!(echo().handle_line("  ").is_none());
    }

    #[test]
    fn sleep_answers_with_progress_or_stays_silent_when_cancelled() {
        let capture = Capture::default();
        let server = Server::new(Echo, None, Outbox::new(capture.clone()));
        let sleep = |id: Value, ms: u64| {
            req(
                id,
                "tools/call",
                json!({
                    "name": "sleep", "arguments": { "ms": ms }, "_meta": { "progressToken": "tok" }
                }),
            )
        };
        assert!(server.handle(&sleep(json!("s1"), 20)).is_none());
        assert!(server.handle(&sleep(json!(2), 5_000)).is_none());
        let cancel = json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 2 }
        });
        assert!(server.handle(&cancel).is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.pending.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let lines = capture.lines();
        let progress: Vec<&Value> = lines
            .iter()
            .filter(|line| line["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 4);
        assert_eq!(
            progress[3]["params"],
            json!({"progressToken": "tok", "progress": 4, "total": 4, "message": "sleep 20 ms: step 4 of 4"})
        );
        let answers: Vec<&Value> = lines
            .iter()
            .filter(|line| line.get("id").is_some())
            .collect();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["id"], "s1");
        assert_eq!(answers[0]["result"]["content"][0]["text"], "slept 20 ms");
    }

    #[test]
    fn cli_arguments() {
        let args = |list: &[&str]| parse_args(list.iter().map(|arg| (*arg).to_owned()));
        assert_eq!(args(&[]), Ok(Cli::Serve { name: None }));
        assert_eq!(
            args(&["--name", "x"]),
            Ok(Cli::Serve {
                name: Some("x".into())
            })
        );
        assert_eq!(
            args(&["--name=y"]),
            Ok(Cli::Serve {
                name: Some("y".into())
            })
        );
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--name"]).is_err());
    }
}
