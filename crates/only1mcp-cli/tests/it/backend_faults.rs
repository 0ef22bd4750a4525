//! Backends that misbehave: the gateway bounds what they cost, fails what
//! they break at once, stops them in order (stdin, SIGTERM, SIGKILL, their
//! whole process group) and keeps serving the other backends throughout.
//! The misbehaving backend is `tests/py/faulty_server.py`, one fault per
//! tool.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, Gateway, examples_config};
use serde_json::{Value, json};

use crate::init;

/// The `servers:` entry of the faulty backend, with extra arguments and
/// entry lines (indented four spaces).
fn faulty(args: &[&str], extra: &str) -> String {
    let script = support::workspace().join("crates/only1mcp-cli/tests/py/faulty_server.py");
    let mut all = vec![script.to_string_lossy().into_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    format!(
        "  faulty:\n    command: {}\n    args: {}\n{extra}",
        support::quote(&support::venv_bin("python")),
        serde_json::to_string(&all).unwrap(),
    )
}

/// The peak resident memory of a process (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024
}

fn error_message(response: &Value) -> &str {
    response["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {response}"))
}

/// Sends several requests at once and returns their responses by id.
fn responses(gateway: &mut Gateway, ids: &[Value]) -> Vec<Value> {
    let mut got: Vec<Option<Value>> = vec![None; ids.len()];
    while got.iter().any(Option::is_none) {
        let message = gateway.recv();
        match ids.iter().position(|id| message.get("id") == Some(id)) {
            Some(idx) if message.get("method").is_none() => got[idx] = Some(message),
            _ => gateway.notifications.push(message),
        }
    }
    got.into_iter().map(Option::unwrap).collect()
}

/// Waits until `pid` no longer runs (gone, or a zombie of a reaper that is
/// not the gateway).
fn wait_gone(pid: u32, what: &str, gateway: &Gateway) {
    let deadline = Instant::now() + support::WAIT;
    while support::process_running(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} ({pid}) still runs:\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_of(gateway: &mut Gateway) -> u32 {
    let res = gateway.call_tool("faulty__pid", json!({}));
    support::text(&res).parse().unwrap()
}

/// Three 100 MB stderr lines, then bytes that are not UTF-8: the gateway
/// logs each long line cut at `defaults.max_log_line` (16 KiB) and reads
/// the rest without keeping it, so its peak memory stays under 96 MiB (it
/// grew by 485 MB before); it goes on draining stderr after the bad bytes
/// (the backend's later megabyte of stderr is written, not blocked or
/// refused); and the other backend answers meanwhile.
#[test]
fn stderr_floods_and_bad_bytes_cost_bounded_memory_and_never_stop_the_draining() {
    init();
    let config = examples_config(&faulty(&[], ""), "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let flood = gateway.send_request(
        "tools/call",
        json!({"name": "faulty__stderr_flood", "arguments": {"lines": 3, "bytes": 100_000_000}}),
    );
    let echo = gateway.send_request(
        "tools/call",
        json!({"name": "echo__echo", "arguments": {"text": "meanwhile"}}),
    );
    let [flooded, echoed] =
        <[Value; 2]>::try_from(responses(&mut gateway, &[flood, echo])).unwrap();
    assert_eq!(support::text(&echoed), "meanwhile");
    assert_eq!(support::text(&flooded), "wrote 300000003 bytes");

    let bad = gateway.call_tool("faulty__stderr_bad_utf8", json!({}));
    assert_eq!(support::text(&bad), "written");
    // A megabyte more of stderr: far more than the pipe holds, so it is
    // written only if the gateway still reads.
    let more = gateway.call_tool(
        "faulty__stderr_flood",
        json!({"lines": 100, "bytes": 10_000}),
    );
    assert_eq!(support::text(&more), "wrote 1000100 bytes", "{more}");
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "after"}))),
        "after"
    );

    let peak = peak_rss_mib(gateway.pid());
    gateway.wait_for_log("bad \u{fffd}\u{fffd} bytes");
    let (_, log) = gateway.finish();
    assert!(peak < 96, "the gateway's peak RSS was {peak} MiB");
    let cut = log.matches("… [line cut at 16384 bytes]").count();
    assert_eq!(cut, 3, "three cut lines expected");
    // Three cut lines and a megabyte of short ones, not 300 MB.
    assert!(log.len() < 2 << 20, "the log has {} bytes", log.len());
}

/// A backend that closes its stdout and runs on: the calls in flight fail
/// at once (not after the 60 s request timeout), it is stopped and
/// restarted, and the other backend serves throughout.
#[test]
fn a_backend_that_closes_stdout_fails_its_calls_at_once_and_is_restarted() {
    init();
    let config = examples_config(&faulty(&[], ""), "defaults:\n  request_timeout: 60s\n");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let first = pid_of(&mut gateway);
    let begun = Instant::now();
    let hang = gateway.send_request(
        "tools/call",
        json!({"name": "faulty__hang", "arguments": {}}),
    );
    let close = gateway.send_request(
        "tools/call",
        json!({"name": "faulty__close_stdout", "arguments": {}}),
    );
    for failed in responses(&mut gateway, &[hang, close]) {
        assert_eq!(failed["error"]["code"], -32603, "{failed}");
        assert!(
            error_message(&failed).contains("closed the connection"),
            "{failed}"
        );
    }
    assert!(
        begun.elapsed() < Duration::from_secs(10),
        "the calls failed only after {:?}",
        begun.elapsed()
    );
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "still"}))),
        "still"
    );
    // The next call waits for the restart.
    let second = pid_of(&mut gateway);
    assert_ne!(first, second, "the backend was not restarted");
    wait_gone(first, "the backend that closed its stdout", &gateway);
    let (_, log) = gateway.finish();
    assert!(
        log.contains("server=faulty reason=its stdout closed"),
        "{log}"
    );
}

/// The lingering backend records end of input and SIGTERM and exits on
/// neither; its grandchild sleeps. At shutdown the gateway closes its
/// stdin, waits, sends SIGTERM to the group, waits, kills the group: the
/// record shows both steps in order, a grace period apart, and the backend
/// and its grandchild are gone. The well-behaved echo backend exits by
/// itself when its stdin closes.
#[test]
fn shutdown_closes_stdin_then_terminates_then_kills_the_whole_group() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let record: PathBuf = dir.path().join("record");
    let config = examples_config(&faulty(&["--linger", record.to_str().unwrap()], ""), "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let backend = pid_of(&mut gateway);
    let grandchild = gateway.call_tool("faulty__grandchild", json!({"hold_stdout": false}));
    let grandchild: u32 = support::text(&grandchild).parse().unwrap();
    assert!(support::process_running(grandchild));

    let (code, log) = gateway.finish();
    assert_eq!(code, Some(0), "{log}");
    let record = std::fs::read_to_string(&record).unwrap();
    let steps: Vec<(&str, f64)> = record
        .lines()
        .map(|l| {
            let (what, at) = l.split_once(' ').unwrap();
            (what, at.parse().unwrap())
        })
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["eof", "term"],
        "{record}"
    );
    let apart = steps[1].1 - steps[0].1;
    assert!(apart >= 1.5, "SIGTERM came {apart:.3} s after end of input");
    assert!(!support::process_running(backend), "the backend survived");
    assert!(
        !support::process_running(grandchild),
        "the grandchild survived"
    );
    assert!(log.contains("server=faulty how=killed (SIGKILL)"), "{log}");
    assert!(log.contains("server=echo how=exited"), "{log}");
}

/// A backend that exits while its grandchild holds its stdout open: the
/// connection would never close, but the gateway sees the exit, kills the
/// rest of the group (the grandchild) and restarts the backend. Removing the
/// backend by a reload takes its new grandchild along too.
#[test]
fn a_backend_is_restarted_when_it_exits_and_its_grandchildren_go_with_it() {
    init();
    let config = examples_config(&faulty(&[], ""), "");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    gateway.wait_for_log("Watching the config file");
    let first = pid_of(&mut gateway);
    let holder = gateway.call_tool("faulty__grandchild", json!({"hold_stdout": true}));
    let holder: u32 = support::text(&holder).parse().unwrap();
    let exit = gateway.call_tool("faulty__exit", json!({"code": 4}));
    assert!(
        error_message(&exit).contains("closed the connection"),
        "{exit}"
    );
    let second = pid_of(&mut gateway);
    assert_ne!(first, second);
    wait_gone(holder, "the grandchild holding stdout", &gateway);

    let sleeper = gateway.call_tool("faulty__grandchild", json!({"hold_stdout": false}));
    let sleeper: u32 = support::text(&sleeper).parse().unwrap();
    gateway.notifications.clear();
    let without = examples_config("", "");
    std::fs::copy(&without.path, &config.path).unwrap();
    gateway.wait_for_notification("notifications/tools/list_changed");
    wait_gone(second, "the removed backend", &gateway);
    wait_gone(sleeper, "the removed backend's grandchild", &gateway);
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "on"}))),
        "on"
    );
    let (_, log) = gateway.finish();
    assert!(
        log.contains("server=faulty reason=the process exited"),
        "{log}"
    );
}

/// An answer over the 64 MiB frame cap fails its call at once with a clear
/// error, whether its `id` comes before the large result or after it (the
/// request timeout is 60 s; the error comes long before). The connection
/// goes on serving. The answers are 200 MiB, and the gateway's peak memory
/// stays under 256 MiB: what it keeps of a line is capped at 64 MiB (up to
/// twice that while its buffer grows), the rest is scanned and dropped.
#[test]
fn an_answer_over_the_frame_cap_fails_its_call_at_once() {
    init();
    let config = examples_config(&faulty(&[], ""), "defaults:\n  request_timeout: 60s\n");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    for id_last in [false, true] {
        let begun = Instant::now();
        let big = gateway.call_tool(
            "faulty__big_answer",
            json!({"mib": 200, "id_last": id_last}),
        );
        assert_eq!(big["error"]["code"], -32603, "{big}");
        let message = error_message(&big);
        let len: usize = message
            .strip_prefix("server \"faulty\" answered with ")
            .and_then(|rest| rest.strip_suffix(" bytes, over the limit of 67108864 bytes"))
            .and_then(|len| len.parse().ok())
            .unwrap_or_else(|| panic!("id_last {id_last}: {message}"));
        assert!(len > 200 << 20 && len < (200 << 20) + 200, "{len}");
        assert!(
            begun.elapsed() < Duration::from_secs(15),
            "failed only after {:?}",
            begun.elapsed()
        );
        assert_eq!(
            support::text(&gateway.call_tool("faulty__echo", json!({"text": "next"}))),
            "next"
        );
    }
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "other"}))),
        "other"
    );
    let peak = peak_rss_mib(gateway.pid());
    assert!(peak < 256, "the gateway's peak RSS was {peak} MiB");
}

/// `${VAR}` values expanded into a stdio server's command line and env and
/// into a network server's headers reach the backend but never the log:
/// the spawn line shows the arguments as configured.
#[test]
fn secrets_expanded_from_the_environment_never_reach_the_log() {
    init();
    const SECRET: &str = "s3cret-9f8e7d6c5b4a";
    let network = format!(
        "  remote:\n    url: http://127.0.0.1:{}/mcp\n    headers:\n      Authorization: \"Bearer ${{ONLY1MCP_IT_SECRET}}\"\n",
        support::free_port()
    );
    let missing = "  broken:\n    command: \"/nonexistent/${ONLY1MCP_IT_SECRET}/server\"\n    args: [\"--key=${ONLY1MCP_IT_SECRET}\"]\n";
    let servers = faulty(
        &["--token=${ONLY1MCP_IT_SECRET}"],
        "    env:\n      API_KEY: \"${ONLY1MCP_IT_SECRET}\"\n",
    ) + &network
        + missing;
    let config = examples_config(&servers, "");
    let mut gateway = Gateway::start(&config.path, &[("ONLY1MCP_IT_SECRET", SECRET)]);
    gateway.initialize();
    let argv = gateway.call_tool("faulty__argv", json!({"env": "API_KEY"}));
    let argv: Value = serde_json::from_str(support::text(&argv)).unwrap();
    assert_eq!(argv["argv"][0], format!("--token={SECRET}"), "{argv}");
    assert_eq!(argv["env"], SECRET, "{argv}");
    gateway.wait_for_log("server=broken");
    gateway.wait_for_log("server=remote");
    let (_, log) = gateway.finish();
    assert!(!log.contains(SECRET), "a secret reached the log:\n{log}");
    assert!(
        log.contains(r#"--token=${ONLY1MCP_IT_SECRET}"#),
        "the spawn line is logged as configured:\n{log}"
    );
}
