//! OpenTelemetry traces, end to end: the test client's `traceparent` → the
//! gateway's server span → its client span → the backend (the official
//! Python SDK, `tests/py/trace_server.py`, which records the `_meta` it
//! received) sees the same trace, with the client span as its parent.
//!
//! No OpenTelemetry collector can be installed here (none is packaged in
//! Debian, PyPI or npm without downloading a binary), so the receiver is
//! [`Receiver`]: a small OTLP/HTTP server in this test that decodes each
//! `ExportTraceServiceRequest` with the `opentelemetry-proto` crate, the
//! protocol's own generated types.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, Gateway};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};

use crate::init;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
    error: bool,
    service_name: String,
}

/// An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1: `POST /v1/traces`,
/// answered 200 with an empty `ExportTraceServiceResponse`.
struct Receiver {
    port: u16,
    spans: Arc<(Mutex<Vec<Span>>, Condvar)>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let shared = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { port, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until a received span satisfies `matches`; every span
    /// received by then comes with it.
    fn wait_for(&self, what: &str, matches: impl Fn(&Span) -> bool) -> (Span, Vec<Span>) {
        let (lock, arrived) = &*self.spans;
        let deadline = Instant::now() + support::WAIT;
        let mut spans = lock.lock().unwrap();
        loop {
            if let Some(found) = spans.iter().find(|s| matches(s)) {
                return (found.clone(), spans.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no span {what}; received: {spans:#?}");
            spans = arrived.wait_timeout(spans, left).unwrap().0;
        }
    }
}

/// Serves one connection: HTTP/1.1 requests with a `Content-Length` body.
fn serve(stream: TcpStream, spans: &(Mutex<Vec<Span>>, Condvar)) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path_ok = line.starts_with("POST /v1/traces ");
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(path_ok, "the exporter posted to {line:?}");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let (lock, arrived) = spans;
        lock.lock().unwrap().extend(flatten(request));
        arrived.notify_all();
        writer
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            )
            .unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                    error: span.status.is_some_and(|s| s.code == 2),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    spans
}

/// A config with traces sent to `receiver` (`top` adds to the `traces:`
/// section) and the recording Python SDK server as `rec`.
fn config(receiver: &Receiver, traces: &str, record: &Path) -> support::ConfigDir {
    let script = support::workspace().join("crates/only1mcp-cli/tests/py/trace_server.py");
    support::config(&format!(
        "traces:\n  enabled: true\n  endpoint: {}\n  protocol: http_protobuf\n  service_name: gateway-under-test\n{traces}servers:\n  rec:\n    command: {}\n    args: [{}]\n    env:\n      TRACE_RECORD: {}\n",
        receiver.endpoint(),
        support::quote(&support::venv_bin("python")),
        support::quote(&script),
        support::quote(record),
    ))
}

/// What the backend recorded for the call whose text was `text`.
fn recorded(record: &PathBuf, text: &str) -> Value {
    let deadline = Instant::now() + support::WAIT;
    loop {
        let lines = std::fs::read_to_string(record).unwrap_or_default();
        if let Some(found) = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["text"] == text)
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the backend never recorded {text}: {lines}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn call(gateway: &mut Gateway, text: &str, meta: Value) -> Value {
    let res = gateway.request(
        "tools/call",
        json!({"name": "rec__whoami", "arguments": {"text": text}, "_meta": meta}),
    );
    assert_eq!(
        res["result"]["content"][0]["text"],
        text,
        "{res}\n{}",
        gateway.log()
    );
    res
}

#[test]
fn a_client_trace_continues_through_the_gateway_into_the_backend() {
    init();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("meta.jsonl");
    // Ratio 0: only a request whose parent was sampled is traced.
    let config = config(&receiver, "  sample_ratio: 0\n", &record);
    let mut gateway = Gateway::start(&config.path, &[("OTEL_BSP_SCHEDULE_DELAY", "50")]);
    gateway.initialize();

    // A parent that was not sampled: no span, and its context reaches the
    // backend untouched.
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    call(&mut gateway, "unsampled", json!({"traceparent": unsampled}));
    assert_eq!(
        recorded(&record, "unsampled")["meta"]["traceparent"],
        unsampled
    );

    // A sampled parent: a server span under it, a client span under that,
    // and the backend's parent is the client span.
    let traceparent = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    call(
        &mut gateway,
        "sampled",
        json!({"traceparent": traceparent, "tracestate": "rojo=00f067aa0ba902b7"}),
    );
    let (server, _) = receiver.wait_for("of kind server", |s| {
        s.trace_id == TRACE && s.kind == SpanKind::Server as i32
    });
    assert_eq!(server.parent_span_id, CLIENT_SPAN, "{server:#?}");
    assert_eq!(server.name, "tools/call rec__whoami");
    assert_eq!(server.attributes["mcp.method.name"], "tools/call");
    assert_eq!(server.attributes["gen_ai.tool.name"], "rec__whoami");
    assert_eq!(server.attributes["gen_ai.operation.name"], "execute_tool");
    assert!(server.attributes.contains_key("jsonrpc.request.id"));
    assert!(server.attributes.contains_key("mcp.protocol.version"));
    assert_eq!(server.service_name, "gateway-under-test");
    assert!(!server.error);
    let (client, all) = receiver.wait_for("of kind client", |s| {
        s.trace_id == TRACE && s.kind == SpanKind::Client as i32
    });
    assert_eq!(client.parent_span_id, server.span_id, "{client:#?}");
    assert_eq!(client.name, "tools/call whoami");
    assert_eq!(client.attributes["gen_ai.tool.name"], "whoami");
    assert_eq!(client.attributes["only1mcp.server.id"], "rec");
    // Arguments are never recorded.
    assert!(
        all.iter()
            .all(|s| s.attributes.values().all(|v| !v.contains("sampled"))),
        "{all:#?}"
    );
    // Nothing of the unsampled request was exported (it ended first, so
    // its spans would have come in this batch or an earlier one).
    assert!(
        all.iter().all(|s| !s.trace_id.starts_with("1111")),
        "{all:#?}"
    );

    let seen = recorded(&record, "sampled");
    assert_eq!(
        seen["meta"]["traceparent"],
        format!("00-{TRACE}-{}-01", client.span_id),
        "{seen}"
    );
    assert_eq!(
        seen["meta"]["tracestate"], "rojo=00f067aa0ba902b7",
        "{seen}"
    );
    gateway.finish();
}

#[test]
fn traces_off_leave_the_client_trace_context_to_the_backend() {
    init();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("meta.jsonl");
    let config = config(&receiver, "", &record);
    let off = std::fs::read_to_string(&config.path)
        .unwrap()
        .replace("enabled: true", "enabled: false");
    std::fs::write(&config.path, off).unwrap();
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let traceparent = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    call(&mut gateway, "off", json!({"traceparent": traceparent}));
    assert_eq!(recorded(&record, "off")["meta"]["traceparent"], traceparent);
    gateway.finish();
    assert!(receiver.spans.0.lock().unwrap().is_empty());
}

/// The JSON log lines of `gateway` so far.
fn json_lines(gateway: &Gateway) -> Vec<Value> {
    gateway
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[test]
fn json_logs_carry_request_and_trace_ids_and_the_access_log_never_an_argument() {
    init();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("meta.jsonl");
    let config = config(&receiver, "", &record);
    let yaml = std::fs::read_to_string(&config.path).unwrap();
    std::fs::write(
        &config.path,
        format!("logging:\n  format: json\n  access_log: true\n{yaml}"),
    )
    .unwrap();
    let mut gateway = Gateway::start(&config.path, &[("OTEL_BSP_SCHEDULE_DELAY", "50")]);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let init = gateway.request(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
            "_meta": {"traceparent": format!("00-{trace}-b7ad6b7169203331-01")}
        }),
    );
    assert!(init["result"].is_object(), "{init}");
    gateway.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let secret = "an-argument-value-never-logged";
    call(&mut gateway, secret, json!({}));
    let unknown = gateway.request("tools/call", json!({"name": "rec__nope", "arguments": {}}));
    assert!(unknown["error"].is_object(), "{unknown}");
    gateway.wait_for_log("rec__nope");

    let lines = json_lines(&gateway);
    // A line written inside the initialize request: its request id, and
    // the trace id the client sent.
    let initialized = lines
        .iter()
        .find(|l| l["fields"]["message"] == "Client initialized a session")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(initialized["span"]["request_id"], "1", "{initialized}");
    assert_eq!(initialized["span"]["trace_id"], trace, "{initialized}");

    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "only1mcp::access")
        .collect();
    let line_of = |target: &str| {
        access
            .iter()
            .find(|l| l["fields"]["target"] == target)
            .unwrap_or_else(|| panic!("no access line for {target}: {access:#?}"))
    };
    let ok = line_of("rec__whoami");
    assert_eq!(ok["fields"]["method"], "tools/call", "{ok}");
    assert_eq!(ok["fields"]["outcome"], "ok", "{ok}");
    assert!(ok["fields"]["duration_us"].as_u64().is_some(), "{ok}");
    assert_eq!(ok["span"]["request_id"], ok["fields"]["request_id"], "{ok}");
    // No principal on stdio: the field is absent, not empty.
    assert!(ok["fields"].get("principal").is_none(), "{ok}");
    let refused = line_of("rec__nope");
    assert_eq!(refused["fields"]["outcome"], "error", "{refused}");
    assert_eq!(refused["fields"]["code"], -32602, "{refused}");
    // One line per request: initialize, whoami, nope.
    assert_eq!(access.len(), 3, "{access:#?}");
    let log = gateway.log();
    assert!(!log.contains(secret), "an argument reached the log:\n{log}");
    gateway.finish();
}
