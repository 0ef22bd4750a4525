//! The stdio face against the example servers, driven by raw JSON-RPC lines.

use only1mcp_test_support::{self as support, Gateway, examples_config};
use serde_json::{Value, json};

use crate::{init, tool_names};

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {response}"))
}

#[test]
fn merged_tools_list_is_namespaced_and_stable() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let init = gateway.initialize();
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert_eq!(init["serverInfo"]["name"], "only1mcp");
    assert_eq!(init["capabilities"]["tools"]["listChanged"], true);
    let first = gateway.request("tools/list", json!({}));
    let second = gateway.request("tools/list", json!({}));
    assert_eq!(
        first["result"], second["result"],
        "tools/list must be stable"
    );
    insta::assert_json_snapshot!("merged_tools_list", first["result"]);
}

#[test]
fn calls_reach_each_backend_in_its_own_era() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    // echo speaks only the legacy era, arith answers server/discover.
    let echo = gateway.call_tool("echo__echo", json!({"text": "hi"}));
    assert_eq!(support::text(&echo), "hi");
    let add = gateway.call_tool("arith__add", json!({"a": 2, "b": 3}));
    assert_eq!(support::text(&add), "5");
    assert_eq!(add["result"]["structuredContent"], json!({"result": 5}));
    let divide = gateway.call_tool("arith__divide", json!({"a": 1, "b": 0}));
    assert_eq!(divide["result"]["isError"], true);
    let (_, log) = gateway.finish();
    assert!(
        log.contains("server=arith era=Modern protocol_version=2026-07-28"),
        "{log}"
    );
    assert!(
        log.contains("server=echo era=Legacy protocol_version=2025-11-25"),
        "{log}"
    );
}

/// With bare names where they are unique, a call whose name the backend
/// shares goes through with its params as they came; a prefixed one is
/// renamed; both reach the right backend, in either era.
#[test]
fn bare_and_prefixed_names_reach_their_backend() {
    init();
    let config = examples_config("", "naming:\n  prefix: on-conflict\n");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let reverse = gateway.call_tool("reverse", json!({"text": "abc"}));
    assert_eq!(support::text(&reverse), "cba");
    // Spacing and member order as a client may send them.
    let raw = r#"{"jsonrpc":"2.0","id":"sp","method":"tools/call","params":{ "arguments" : {"text":"x y"} , "name" : "echo" }}"#;
    gateway.send_raw(raw.as_bytes());
    let echo = gateway.response(&json!("sp"));
    assert_eq!(support::text(&echo), "x y", "{echo}");
    let add = gateway.call_tool("add", json!({"a": 2, "b": 3}));
    assert_eq!(support::text(&add), "5");
    let slept = gateway.call_tool("echo__sleep", json!({"ms": 1}));
    assert_eq!(support::text(&slept), "slept 1 ms");
    let slept = gateway.call_tool("arith__sleep", json!({"ms": 2}));
    assert_eq!(support::text(&slept), "slept 2 ms");
    let unknown = gateway.call_tool("sleep", json!({"ms": 1}));
    assert_eq!(error_code(&unknown), -32602, "{unknown}");
}

#[test]
fn prompts_resources_and_templates_route_to_their_owner() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let prompt = gateway.request(
        "prompts/get",
        json!({"name": "echo__greet", "arguments": {"name": "Ada"}}),
    );
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "Say hello to Ada."
    );
    let resources = gateway.request("resources/list", json!({}));
    let uris: Vec<&str> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["arith://constants", "echo://readme"]);
    let constants = gateway.request("resources/read", json!({"uri": "arith://constants"}));
    assert!(
        constants["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("3.14159")
    );
    let templated = gateway.request("resources/read", json!({"uri": "echo://messages/42"}));
    assert_eq!(templated["result"]["contents"][0]["text"], "message 42");
    let missing = gateway.request("resources/read", json!({"uri": "nowhere://x"}));
    assert_eq!(error_code(&missing), -32602);
    let unknown_tool = gateway.call_tool("nope__tool", json!({}));
    assert_eq!(error_code(&unknown_tool), -32602);
}

#[test]
fn modern_requests_are_served_statelessly() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let discover = gateway.request("server/discover", json!({"_meta": meta}));
    assert_eq!(
        discover["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    assert_eq!(discover["result"]["resultType"], "complete");
    let list = gateway.request("tools/list", json!({"_meta": meta}));
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(list["result"]["ttlMs"], 0);
    // A legacy-only backend answers a modern client through the gateway.
    let echo = gateway.request(
        "tools/call",
        json!({"name": "echo__reverse", "arguments": {"text": "abc"}, "_meta": meta}),
    );
    assert_eq!(support::text(&echo), "cba");
    assert_eq!(echo["result"]["resultType"], "complete");
    // Version and capability checks, and methods the modern era removed.
    let bad = gateway.request("tools/list", json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "1900-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}));
    assert_eq!(error_code(&bad), -32022);
    assert_eq!(bad["error"]["data"]["requested"], "1900-01-01");
    let no_caps = gateway.request(
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    );
    assert_eq!(error_code(&no_caps), -32602);
    let ping = gateway.request("ping", json!({"_meta": meta}));
    assert_eq!(error_code(&ping), -32601);
    // Without _meta and without initialize there is no era to answer in.
    let neither = gateway.request("tools/list", json!({}));
    assert_eq!(error_code(&neither), -32602);
}

#[test]
fn bad_input_gets_errors_and_the_gateway_keeps_serving() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();

    gateway.send_raw(b"this is not json");
    let res = gateway.recv();
    assert_eq!((res["id"].clone(), error_code(&res)), (Value::Null, -32700));

    gateway.send_raw(br#"{"jsonrpc":"1.0","id":41,"method":"ping"}"#);
    let res = gateway.recv();
    assert_eq!((res["id"].clone(), error_code(&res)), (json!(41), -32600));

    let res = gateway.request("no/such/method", json!({}));
    assert_eq!(error_code(&res), -32601);

    // A 10 MB line is refused as a whole, without reading it into memory.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"echo__echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    gateway.send_raw(huge.as_bytes());
    let res = gateway.recv();
    assert_eq!(error_code(&res), -32600);
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{res}"
    );

    // Batches are for 2025-03-26 sessions only.
    gateway.send_raw(br#"[{"jsonrpc":"2.0","id":43,"method":"ping"}]"#);
    assert_eq!(error_code(&gateway.recv()), -32600);

    let echo = gateway.call_tool("echo__echo", json!({"text": "still here"}));
    assert_eq!(support::text(&echo), "still here");
}

#[test]
fn batches_work_for_2025_03_26_clients() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let res = gateway.request("initialize", json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}));
    assert_eq!(res["result"]["protocolVersion"], "2025-03-26");
    gateway.send_raw(br#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"arith__multiply","arguments":{"a":6,"b":7}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#);
    let batch = gateway.recv();
    let mut answers = batch.as_array().unwrap().clone();
    answers.sort_by_key(|r| r["id"].as_str().unwrap().to_owned());
    assert_eq!(answers.len(), 2, "{batch}");
    assert_eq!(answers[0]["result"], json!({}));
    assert_eq!(answers[1]["result"]["content"][0]["text"], "42");
}

#[test]
fn a_crash_mid_call_fails_that_call_and_the_backend_comes_back() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let before = gateway.children();
    assert_eq!(before.len(), 2, "two backends expected: {before:?}");
    let crash = gateway.call_tool("echo__crash", json!({}));
    assert_eq!(error_code(&crash), -32603);
    assert!(
        crash["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed the connection"),
        "{crash}"
    );
    // The next call waits for the restart and succeeds.
    let echo = gateway.call_tool("echo__echo", json!({"text": "again"}));
    assert_eq!(
        echo["result"]["content"][0]["text"],
        "again",
        "{echo}\n{}",
        gateway.log()
    );
    // The crashed process was reaped, not left as a zombie, and replaced.
    let after = gateway.children();
    assert_eq!(after.len(), 2, "{after:?}");
    let gone: Vec<_> = before.iter().filter(|pid| !after.contains(pid)).collect();
    assert_eq!(
        gone.len(),
        1,
        "exactly one backend was replaced: {before:?} -> {after:?}"
    );
    assert_eq!(
        support::process_state(*gone[0]),
        None,
        "the crashed backend was not reaped"
    );
}

#[test]
fn a_timeout_answers_the_client_and_cancels_the_backend_request() {
    init();
    let config = support::recording_examples_config("", "defaults:\n  request_timeout: 300ms\n");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let slow = gateway.call_tool("echo__sleep", json!({"ms": 20000}));
    assert_eq!(error_code(&slow), -32603);
    assert!(
        slow["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300ms"),
        "{slow}"
    );
    // The backend itself received a cancellation naming the call it was given.
    assert_backend_got_one_cancel(&config, "echo");
    let echo = gateway.call_tool("echo__echo", json!({"text": "fine"}));
    assert_eq!(support::text(&echo), "fine");
}

/// Waits until example server `server` of a recording config has received
/// `notifications/cancelled` for the id of the `sleep` call it received, and
/// checks it got exactly one cancellation.
pub(crate) fn assert_backend_got_one_cancel(config: &support::ConfigDir, server: &str) {
    let call = support::wait_for_recorded_call(config, server, "sleep");
    assert_eq!(call["params"]["arguments"]["ms"], 20000, "{call}");
    let cancel = support::wait_for_recorded(config, server, "notifications/cancelled", |message| {
        message["method"] == "notifications/cancelled"
    });
    assert_eq!(
        cancel["params"]["requestId"], call["id"],
        "{cancel} for {call}"
    );
    let n_cancels = support::recorded(config, server)
        .iter()
        .filter(|message| message["method"] == "notifications/cancelled")
        .count();
    assert_eq!(n_cancels, 1, "{:?}", support::recorded(config, server));
}

#[test]
fn a_client_cancellation_reaches_the_backend_and_gets_no_answer() {
    init();
    let config = support::recording_examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let id = gateway.send_request(
        "tools/call",
        json!({"name": "arith__sleep", "arguments": {"ms": 20000}}),
    );
    // Cancel only once the backend has the call, so the cancel has something to reach.
    support::wait_for_recorded_call(&config, "arith", "sleep");
    gateway.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id}}));
    assert_backend_got_one_cancel(&config, "arith");
    // The next answer is for the next request, not the cancelled one.
    let ping = gateway.request("ping", json!({}));
    assert_eq!(ping["result"], json!({}));
}

#[test]
fn progress_reaches_the_client_with_its_own_token() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let res = gateway.request("tools/call", json!({"name": "echo__sleep", "arguments": {"ms": 200}, "_meta": {"progressToken": "mine"}}));
    assert_eq!(support::text(&res), "slept 200 ms");
    let progress: Vec<&Value> = gateway
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(
        !progress.is_empty(),
        "no progress forwarded: {:?}",
        gateway.notifications
    );
    assert!(
        progress
            .iter()
            .all(|n| n["params"]["progressToken"] == "mine"),
        "{progress:?}"
    );
}

#[test]
fn a_backend_that_fails_to_start_is_left_out() {
    init();
    let broken = format!(
        "  broken:\n    command: {}\n    env:\n      ONLY1MCP_EXAMPLE_STARTUP_FAIL: \"1\"\n  missing:\n    command: /nonexistent/mcp-server\n",
        support::quote(&support::example_server("only1mcp-echo-server"))
    );
    let config = examples_config(&broken, "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let list = gateway.request("tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo__echo") && names.contains(&"arith__add"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("broken__") || n.starts_with("missing__")),
        "{names:?}"
    );
    let log = gateway.log();
    assert!(
        log.contains("Backend left out: it failed to start server=broken"),
        "{log}"
    );
    assert!(
        log.contains("Backend left out: it failed to start server=missing"),
        "{log}"
    );
}

#[test]
fn env_is_expanded_and_the_gateway_env_is_not_leaked() {
    init();
    let extra = format!(
        "  probe:\n    command: {}\n    env:\n      GREETING: \"hello-${{ONLY1MCP_IT_SECRET}}\"\n",
        support::quote(&support::example_server("only1mcp-echo-server"))
    );
    let config = examples_config(&extra, "");
    let mut gateway = Gateway::start(&config.path, &[("ONLY1MCP_IT_SECRET", "s3cret")]);
    gateway.initialize();
    let greeting = gateway.call_tool("probe__env", json!({"name": "GREETING"}));
    assert_eq!(support::text(&greeting), "hello-s3cret");
    let leaked = gateway.call_tool("probe__env", json!({"name": "ONLY1MCP_IT_SECRET"}));
    assert_eq!(support::text(&leaked), "(unset)");
}

/// SIGTERM stops the stdio face while its client keeps stdin open: a call
/// in flight is answered first, then the gateway exits cleanly.
#[test]
fn sigterm_drains_the_stdio_face() {
    init();
    let config = support::recording_examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let echo = gateway.call_tool("echo__echo", json!({"text": "before"}));
    assert_eq!(support::text(&echo), "before");
    let id = gateway.send_request(
        "tools/call",
        json!({"name": "echo__sleep", "arguments": {"ms": 400}}),
    );
    // The call is in flight once the backend has it.
    support::wait_for_recorded_call(&config, "echo", "sleep");
    gateway.terminate();
    let slept = gateway.response(&id);
    assert_eq!(support::text(&slept), "slept 400 ms");
    let (code, log) = gateway.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("finishing requests in flight"), "{log}");
}

#[test]
fn backends_stop_when_the_client_closes_stdin() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let children = gateway.children();
    assert_eq!(children.len(), 2, "{children:?}");
    let (code, log) = gateway.finish();
    assert_eq!(code, Some(0), "{log}");
    for pid in children {
        assert!(
            !support::process_running(pid),
            "backend {pid} outlived the gateway"
        );
    }
}

#[test]
fn a_backend_list_change_reaches_the_client_and_the_catalog() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    assert!(!tool_names(&mut gateway).contains(&"echo__extra".to_owned()));
    let shown = gateway.call_tool("echo__toggle_extra", json!({}));
    assert_eq!(support::text(&shown), "extra tool shown");
    // The gateway re-lists the backend, then tells the client.
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert!(tool_names(&mut gateway).contains(&"echo__extra".to_owned()));
    assert_eq!(
        support::text(&gateway.call_tool("echo__extra", json!({}))),
        "extra"
    );
    gateway.notifications.clear();
    gateway.call_tool("echo__toggle_extra", json!({}));
    gateway.wait_for_notification("notifications/tools/list_changed");
    let gone = gateway.call_tool("echo__extra", json!({}));
    assert_eq!(error_code(&gone), -32602);
}

#[test]
fn a_backend_whose_list_keeps_changing_does_not_disturb_the_others() {
    init();
    // 2000 tools, one of them dropped or restored every 20 ms: the gateway
    // re-reads and rebuilds all the time, off its runtime thread.
    let config = support::config(&format!(
        "servers:\n  echo:\n    command: {}\n  churn:\n    command: {}\n    \
         args: [\"--tools\", \"2000\", \"--every\", \"20\"]\n",
        support::quote(&support::example_server("only1mcp-echo-server")),
        support::quote(&support::example_server("only1mcp-churn-server")),
    ));
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    gateway.wait_for_notification("notifications/tools/list_changed");
    for n in 0..200 {
        let text = format!("call {n}");
        let answer = gateway.call_tool("echo__echo", json!({ "text": text }));
        assert_eq!(support::text(&answer), text);
    }
    // Every listing is one of the backend's two lists whole (2000 or 1999
    // tools), beside echo's own, each tool once.
    let echo_tools = tool_names(&mut gateway)
        .iter()
        .filter(|n| n.starts_with("echo__"))
        .count();
    for _ in 0..5 {
        let names = tool_names(&mut gateway);
        let churn = names.iter().filter(|n| n.starts_with("churn__")).count();
        assert!(churn == 2000 || churn == 1999, "{churn} churn tools");
        assert_eq!(names.len(), churn + echo_tools);
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"churn__tool_0".to_owned()));
    }
    assert_eq!(
        support::text(&gateway.call_tool("churn__tool_0", json!({}))),
        "ok"
    );
    // A catalog this large is read and rebuilt on a thread of its own.
    assert_eq!(threads_named(gateway.pid(), "catalog"), 1);
    let (code, log) = gateway.finish();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn paged_lists_serve_every_item_once_and_refuse_bad_cursors() {
    init();
    let config = examples_config("", "defaults:\n  page_size: 3\n");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let mut names = Vec::new();
    let mut cursor: Option<Value> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = gateway.request("tools/list", params);
        let tools = page["result"]["tools"].as_array().unwrap().clone();
        assert!(tools.len() <= 3, "{page}");
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["result"].get("nextCursor") {
            Some(next) => cursor = Some(next.clone()),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "an item was served twice: {names:?}"
    );
    assert_eq!(names.len(), 11, "{names:?}");
    assert_eq!(pages, 4);
    let bad = gateway.request("tools/list", json!({"cursor": "not-a-cursor"}));
    assert_eq!(error_code(&bad), -32602);
}

#[test]
fn modern_list_cache_hints_are_the_shortest_of_the_backends() {
    init();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    // arith alone (modern, 60 s): its hint goes through.
    let arith_only = support::config(&format!(
        "servers:\n  arith:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-arith-server"))
    ));
    let mut gateway = Gateway::start(&arith_only.path, &[]);
    let list = gateway.request("tools/list", json!({"_meta": meta}));
    assert_eq!(
        (
            list["result"]["ttlMs"].clone(),
            list["result"]["cacheScope"].clone()
        ),
        (json!(60000), json!("public")),
        "{list}"
    );
    // With the legacy echo server beside it, whose list can change at any
    // time, the merged list must not be cached.
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let list = gateway.request("tools/list", json!({"_meta": meta}));
    assert_eq!(list["result"]["ttlMs"], 0, "{list}");
}

/// How many of the gateway's threads have this name.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn workers_sets_the_runtime_threads() {
    init();
    let config = examples_config("", "");
    let cores = std::thread::available_parallelism().unwrap().get();
    for (args, env, expected) in [
        (&[][..], &[][..], 1),
        (&["--workers", "3"][..], &[][..], 3),
        (&[][..], &[("ONLY1MCP_WORKERS", "2")][..], 2),
        (&["--workers", "auto"][..], &[][..], cores),
    ] {
        let mut gateway = Gateway::start_with_args(&config.path, args, env);
        gateway.initialize();
        let answer = gateway.call_tool("echo__echo", json!({"text": "hi"}));
        assert_eq!(support::text(&answer), "hi");
        let pid = gateway.pid();
        assert_eq!(
            threads_named(pid, "tokio-rt-worker"),
            expected,
            "{args:?} {env:?}"
        );
        // A catalog this small is built in place: no catalog thread.
        assert_eq!(threads_named(pid, "catalog"), 0);
        let (code, log) = gateway.finish();
        assert_eq!(code, Some(0), "{log}");
    }
    for bad in ["0", "many"] {
        let refused = support::run_cli(
            &["start", "--stdio", "--workers", bad],
            &std::env::temp_dir(),
        );
        assert!(!refused.status.success(), "--workers {bad}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("--workers"), "{stderr}");
        assert!(stderr.contains(bad), "{stderr}");
    }
}
