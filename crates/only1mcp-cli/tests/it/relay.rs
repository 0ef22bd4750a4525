//! A legacy backend's requests to its client (sampling, elicitation, roots)
//! relayed through the gateway to the client whose call caused them, for
//! legacy clients (real requests) and 2026-07-28 clients (`input_required`
//! and a gateway-signed `requestState`), with the Python SDK as the client
//! and `@modelcontextprotocol/server-everything` as the backend.

use only1mcp_test_support as support;
use serde_json::{Value, json};

use crate::init;

fn everything_config() -> support::ConfigDir {
    support::config(&format!(
        "servers:
  everything:
    command: {}
    roots:
      - uri: file:///configured/root
        name: configured
",
        support::quote(&support::npm_bin("mcp-server-everything")),
    ))
}

/// Runs the Python SDK client in `mode` (with or without callbacks) through
/// `only1mcp start --stdio`.
fn run(mode: &str, callbacks: bool, config: &std::path::Path, ops: &Value) -> Value {
    let flags: &[&str] = if callbacks { &["--callbacks"] } else { &[] };
    support::python_through_gateway(mode, flags, config, ops)
}

fn texts(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ops() -> Value {
    json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "everything__trigger-sampling-request", "arguments": {"prompt": "hello there", "maxTokens": 20}},
        {"op": "call_tool", "name": "everything__trigger-elicitation-request", "arguments": {}},
        {"op": "call_tool", "name": "everything__get-roots-list", "arguments": {}},
        {"op": "call_tool", "name": "everything__get-sum", "arguments": {"a": 1, "b": 2}}
    ])
}

fn check_relayed(mode: &str, out: &Value) {
    let results = out["results"].as_array().unwrap();
    let names: Vec<&str> = results[0]
        .as_array()
        .unwrap_or_else(|| panic!("{mode}: {out}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for tool in [
        "everything__trigger-sampling-request",
        "everything__trigger-elicitation-request",
        "everything__get-roots-list",
    ] {
        assert!(
            names.contains(&tool),
            "{mode}: {tool} not offered: {names:?}"
        );
    }
    let sampled = texts(&results[1]);
    assert!(
        sampled.contains("sampled: Resource trigger-sampling-request context: hello there"),
        "{mode}: {sampled}"
    );
    let elicited = texts(&results[2]);
    assert!(
        elicited.contains("Name: Ada Lovelace"),
        "{mode}: {elicited}"
    );
    // The backend asks for roots during the call: the calling client's.
    let roots = texts(&results[3]);
    assert!(
        roots.contains("file:///only1mcp/test-root"),
        "{mode}: {roots}"
    );
    assert_eq!(texts(&results[4]), "The sum of 1 and 2 is 3.", "{mode}");
    // What the client's callbacks saw: the backend's own requests, once each.
    let received = out["received"].as_array().unwrap();
    let kinds: Vec<&str> = received
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["sampling", "elicitation", "roots"],
        "{mode}: {received:?}"
    );
    assert_eq!(
        received[0]["params"]["messages"][0]["content"]["text"],
        "Resource trigger-sampling-request context: hello there"
    );
    assert_eq!(
        received[1]["params"]["message"],
        "Please provide inputs for the following fields:"
    );
}

#[test]
fn a_legacy_client_answers_a_legacy_backends_sampling_and_elicitation() {
    init();
    let config = everything_config();
    let out = run("legacy", true, &config.path, &ops());
    check_relayed("legacy", &out);
}

#[test]
fn a_modern_client_answers_them_through_input_required_and_a_signed_state() {
    init();
    let config = everything_config();
    let out = run("2026-07-28", true, &config.path, &ops());
    check_relayed("2026-07-28", &out);
}

/// A client that declared none of the capabilities is never asked: the
/// backend's sampling request fails with a clear error, and its roots
/// request gets the roots configured for the server.
#[test]
fn a_client_without_the_capability_is_never_asked() {
    init();
    let config = everything_config();
    let out = run(
        "legacy",
        false,
        &config.path,
        &json!([
            {"op": "call_tool", "name": "everything__trigger-sampling-request", "arguments": {"prompt": "x", "maxTokens": 5}},
            {"op": "call_tool", "name": "everything__get-roots-list", "arguments": {}}
        ]),
    );
    let result = &out["results"][0];
    let message = if result["isError"] == true {
        texts(result)
    } else {
        result["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        message.contains("did not declare the sampling capability"),
        "{out}"
    );
    let roots = texts(&out["results"][1]);
    assert!(roots.contains("file:///configured/root"), "{roots}");
    assert_eq!(out["received"], json!([]));
}

fn modern_call(name: &str, arguments: Value, extra: Value) -> Value {
    let mut params = json!({
        "name": name,
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}
        }
    });
    for (key, value) in extra.as_object().unwrap() {
        params[key] = value.clone();
    }
    params
}

/// The wire of the modern path, raw: `input_required` with the backend's
/// request, a `requestState` the gateway signed, refused when tampered with
/// or reused, and the held call finishing on the retry.
#[test]
fn the_held_call_resumes_only_with_the_state_the_gateway_signed() {
    init();
    let config = everything_config();
    let mut gw = support::Gateway::start(&config.path, &[]);
    let args = json!({"prompt": "tea?", "maxTokens": 5});
    let first = gw.request(
        "tools/call",
        modern_call(
            "everything__trigger-sampling-request",
            args.clone(),
            json!({}),
        ),
    );
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let (key, request) = result["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(
        request["params"]["messages"][0]["content"]["text"],
        "Resource trigger-sampling-request context: tea?"
    );
    let state = result["requestState"].as_str().unwrap().to_owned();
    assert!(state.starts_with("only1mcp1."), "{state}");
    let answer = json!({key: {
        "role": "assistant",
        "content": {"type": "text", "text": "green, please"},
        "model": "m"
    }});

    // A forged state (one character changed) is refused, and the call stays held.
    let mut forged = state.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = gw.request(
        "tools/call",
        modern_call(
            "everything__trigger-sampling-request",
            args.clone(),
            json!({"inputResponses": answer, "requestState": forged}),
        ),
    );
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // A real state on another tool is refused too: it is bound to its call.
    let elsewhere = gw.request(
        "tools/call",
        modern_call(
            "everything__get-sum",
            json!({"a": 1, "b": 1}),
            json!({"inputResponses": answer, "requestState": state}),
        ),
    );
    assert_eq!(elsewhere["error"]["code"], -32602, "{elsewhere}");

    let done = gw.request(
        "tools/call",
        modern_call(
            "everything__trigger-sampling-request",
            args.clone(),
            json!({"inputResponses": answer, "requestState": state}),
        ),
    );
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(texts(&done["result"]).contains("green, please"), "{done}");

    // Good once.
    let again = gw.request(
        "tools/call",
        modern_call(
            "everything__trigger-sampling-request",
            args,
            json!({"inputResponses": answer, "requestState": state}),
        ),
    );
    let message = again["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired or was already used"), "{again}");
}

/// Our dual-era Python backend (the conformance fixture, on the `mcp` SDK's
/// server) asks through `input_required` results; a legacy client behind
/// the gateway answers real requests (ADR 0003), a 2026-07-28 client the
/// results themselves (passed through).
#[test]
fn a_dual_era_python_backend_asks_clients_of_both_eras() {
    init();
    let fixture = support::workspace().join("conformance/fixture_server.py");
    let config = support::config(&format!(
        "servers:\n  fixture:\n    command: {}\n    args: [{}]\n",
        support::quote(&support::venv_bin("python")),
        support::quote(&fixture),
    ));
    let ops = json!([
        {"op": "call_tool", "name": "fixture__test_sampling", "arguments": {"prompt": "capital of France?"}},
        {"op": "call_tool", "name": "fixture__test_elicitation", "arguments": {"message": "Who are you?"}},
        {"op": "call_tool", "name": "fixture__test_input_required_result_list_roots", "arguments": {}},
        {"op": "call_tool", "name": "fixture__test_input_required_result_multiple_inputs", "arguments": {}}
    ]);
    for mode in ["legacy", "2026-07-28"] {
        let out = run(mode, true, &config.path, &ops);
        let results = out["results"].as_array().unwrap();
        assert_eq!(
            texts(&results[0]),
            "LLM response: sampled: capital of France?",
            "{mode}: {out}"
        );
        let elicited = texts(&results[1]);
        assert!(
            elicited.starts_with("User response: action=accept"),
            "{mode}: {elicited}"
        );
        assert!(elicited.contains("Ada Lovelace"), "{mode}: {elicited}");
        assert_eq!(
            texts(&results[2]),
            "Client roots: file:///only1mcp/test-root",
            "{mode}: {out}"
        );
        assert_eq!(
            texts(&results[3]),
            "sampled: Generate a greeting Ada Lovelace (roots: file:///only1mcp/test-root)",
            "{mode}: {}",
            results[3]
        );
        let kinds: Vec<&str> = out["received"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .filter(|k| ["sampling", "elicitation", "roots"].contains(k))
            .collect();
        // One request per ask, plus the three of the multiple-inputs round.
        assert_eq!(kinds.len(), 6, "{mode}: {kinds:?}");
    }
}
