//! Hot reload: the config file is edited under a running gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, Gateway, HttpGateway, config};
use serde_json::{Value, json};

use crate::init;

/// A config with the echo server, and the arith server if `arith`.
fn yaml(arith: bool) -> String {
    let mut text = format!(
        "servers:\n  echo:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-echo-server"))
    );
    if arith {
        text.push_str(&format!(
            "  arith:\n    command: {}\n",
            support::quote(&support::example_server("only1mcp-arith-server"))
        ));
    }
    text
}

#[test]
fn editing_the_config_adds_and_removes_servers_live() {
    init();
    let cfg = config(&yaml(false));
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    let echo_pid = gateway.children();
    assert_eq!(echo_pid.len(), 1);

    std::fs::write(&cfg.path, yaml(true)).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert_eq!(
        support::text(&gateway.call_tool("arith__add", json!({"a": 2, "b": 3}))),
        "5"
    );
    // The unchanged echo server kept its process.
    assert!(gateway.children().contains(&echo_pid[0]));

    std::fs::write(&cfg.path, yaml(false)).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    let gone = gateway.call_tool("arith__add", json!({"a": 2, "b": 3}));
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
    assert!(
        gone["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{gone}"
    );
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "still"}))),
        "still"
    );
    // The removed backend finishes (nothing in flight) and is stopped.
    let deadline = Instant::now() + support::WAIT;
    while gateway.children() != echo_pid {
        assert!(
            Instant::now() < deadline,
            "the removed backend still runs: {:?}",
            gateway.children()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_invalid_config_is_refused_and_the_next_valid_one_applies() {
    init();
    let cfg = config(&yaml(false));
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    std::fs::write(&cfg.path, "servers:\n  echo:\n    comand: typo\n").unwrap();
    gateway.wait_for_log("Config reload rejected");
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "up"}))),
        "up"
    );
    std::fs::write(&cfg.path, yaml(true)).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert_eq!(
        support::text(&gateway.call_tool("arith__multiply", json!({"a": 6, "b": 7}))),
        "42"
    );
}

/// Ten reloads, each applied before the next file write, while four clients
/// keep calling: every call is answered correctly, and calls are answered
/// while the reloads happen.
#[tokio::test]
async fn reloads_under_load_lose_no_request() {
    init();
    let cfg = config(&yaml(false));
    let gw = HttpGateway::start(&cfg.path);
    let url = gw.mcp_url();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    // Each client stops when told to, or after this many calls at most.
    let (clients, max_calls) = (4, 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for client in 0..clients {
        let (http, url, meta) = (http.clone(), url.clone(), meta.clone());
        let (stop, answered) = (stop.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            let mut correct = 0;
            for call in 0..max_calls {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let text = format!("client {client} call {call}");
                let res = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "echo__echo")
                    .body(json!({"jsonrpc": "2.0", "id": call, "method": "tools/call", "params": {"name": "echo__echo", "arguments": {"text": text}, "_meta": meta}}).to_string())
                    .send()
                    .await
                    .unwrap();
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["result"]["content"][0]["text"], text.as_str(), "{body}");
                correct += 1;
                answered.fetch_add(1, Ordering::SeqCst);
            }
            correct
        }));
    }
    let reloads = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|line| line.contains("Config reloaded"))
            .map(str::to_owned)
            .collect()
    };
    let mut seen = reloads(&gw.log()).len();
    let load_started = answered.load(Ordering::SeqCst);
    // Ten reloads: arith comes and goes. Each is applied before the next
    // write. (A write the watcher sees as two changes may add a reload that
    // changes nothing; never one that changes something else.)
    for n in 0..10 {
        let with_arith = n % 2 == 0;
        let change = if with_arith {
            r#"started=["arith"]"#
        } else {
            r#"stopped=["arith"]"#
        };
        std::fs::write(&cfg.path, yaml(with_arith)).unwrap();
        let deadline = Instant::now() + support::WAIT;
        loop {
            let all = reloads(&gw.log());
            if let Some(at) = all[seen..].iter().position(|line| line.contains(change)) {
                for skipped in &all[seen..seen + at] {
                    assert!(
                        skipped.contains("started=[] stopped=[]"),
                        "reload {n}: {skipped}"
                    );
                }
                seen += at + 1;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "reload {n} ({change}) was not applied:\n{}",
                gw.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let during = answered.load(Ordering::SeqCst) - load_started;
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, answered.load(Ordering::SeqCst));
    assert!(during > 0, "no call was answered while the reloads ran");
}

#[test]
fn a_server_file_dropped_into_the_include_folder_is_picked_up() {
    init();
    let cfg = config(&format!("include_dir: conf.d\n{}", yaml(false)));
    let conf_d = cfg.dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    let arith = format!(
        "servers:\n  arith:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-arith-server"))
    );
    std::fs::write(conf_d.join("arith.yaml"), arith).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert_eq!(
        support::text(&gateway.call_tool("arith__add", json!({"a": 1, "b": 2}))),
        "3"
    );
    std::fs::remove_file(conf_d.join("arith.yaml")).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    let gone = gateway.call_tool("arith__add", json!({"a": 1, "b": 2}));
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
}

/// SIGHUP makes the gateway read its config file again and apply it. The
/// file is changed before the watcher starts, so only the signal can bring
/// the change in: the echo backend waits for a file before it serves
/// (`ONLY1MCP_EXAMPLE_START_AFTER`), the gateway waits for its backends
/// before it watches, and the config is rewritten in between.
#[test]
fn sighup_applies_a_change_the_file_watcher_did_not_see() {
    init();
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let gated_echo = format!(
        "servers:\n  echo:\n    command: {}\n    env:\n      ONLY1MCP_EXAMPLE_START_AFTER: {}\n",
        support::quote(&support::example_server("only1mcp-echo-server")),
        support::quote(&go),
    );
    let cfg = config(&gated_echo);
    let mut gateway = Gateway::start(&cfg.path, &[]);
    // The config is loaded (the backend spawns); the watcher has not started.
    gateway.wait_for_log("Spawning backend server=echo");
    let with_arith = format!(
        "{gated_echo}  arith:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-arith-server"))
    );
    std::fs::write(&cfg.path, &with_arith).unwrap();
    std::fs::write(&go, "").unwrap();
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    let before = crate::tool_names(&mut gateway);
    assert!(
        !before.iter().any(|name| name.starts_with("arith__")),
        "{before:?}"
    );

    gateway.hangup();
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert_eq!(
        support::text(&gateway.call_tool("arith__add", json!({"a": 2, "b": 3}))),
        "5"
    );
    let log = gateway.log();
    let signal = log
        .find("SIGHUP: reloading the config")
        .unwrap_or_else(|| panic!("{log}"));
    let reloaded = log
        .find("Config reloaded")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(signal < reloaded, "{log}");
    assert_eq!(log.matches("Config reloaded").count(), 1, "{log}");
}
