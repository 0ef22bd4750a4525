//! The tamper-evident audit trail of a real gateway: what its lines say of
//! calls, reloads and admin changes, and `only1mcp audit verify` on the
//! file as written and after it was edited, cut or reordered.

use std::path::Path;

use only1mcp_test_support::{self as support, Gateway};
use serde_json::{Value, json};

/// The lines of the audit file, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `only1mcp audit verify FILES…`: (exit code, stdout, stderr).
fn verify(files: &[&Path], dir: &Path) -> (Option<i32>, String, String) {
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run_cli(&args, dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Rewrites the file with `edit` applied to its lines.
fn edit_lines(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    edit(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn calls_reloads_and_admin_changes_are_audited_and_verify_catches_every_edit() {
    super::init();
    let config = support::examples_config(
        "",
        "audit:\n  file: audit/trail.jsonl\n  fsync: always\n  arguments:\n    include: [text]\n    redact: [secret]\n",
    );
    let dir = config.dir.path();
    let file = dir.join("audit/trail.jsonl");
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    let echo = gateway.call_tool("echo__echo", json!({"text": "hi", "secret": "s3cret"}));
    assert_eq!(support::text(&echo), "hi");
    let divide = gateway.call_tool("arith__divide", json!({"a": 1, "b": 0}));
    assert_eq!(divide["result"]["isError"], true);
    // A reload (SIGHUP) and an admin change (`only1mcp reload` through the
    // admin API).
    gateway.hangup();
    gateway.wait_for_log("Config reloaded");
    let admin = gateway.admin_url();
    let (env_name, env_value) = gateway.admin_env();
    let out = support::run_cli_with(
        &["reload", "--admin", &admin],
        dir,
        &[(env_name, env_value.as_str())],
    );
    assert!(out.status.success(), "{out:?}");
    let (code, _) = gateway.finish();
    assert_eq!(code, Some(0));

    let trail = lines(&file);
    let kinds: Vec<&str> = trail.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        // The admin change is recorded when it is answered, after the
        // reload it caused.
        [
            "start",
            "call",
            "call",
            "reload",
            "reload",
            "admin_change",
            "stop"
        ],
        "{trail:#?}"
    );
    let echo = &trail[1];
    assert_eq!(echo["seq"], 2);
    assert_eq!(echo["transport"], "stdio");
    assert_eq!(echo["method"], "tools/call");
    assert_eq!(echo["server"], "echo");
    assert_eq!(echo["target"], "echo__echo");
    assert_eq!(echo["decision"], "allow");
    assert_eq!(echo["outcome"], "ok");
    assert!(echo["duration_ms"].as_f64().unwrap() > 0.0, "{echo}");
    assert!(echo["request_id"].is_string(), "{echo}");
    assert_eq!(
        echo["arguments"],
        json!({"text": "hi", "secret": "[redacted]"}),
        "kept as audit.arguments says"
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains("s3cret"));
    assert_eq!(trail[2]["outcome"], "tool_error");
    assert!(trail[2].get("arguments").is_none(), "a and b are not kept");
    assert_eq!(trail[5]["transport"], "admin");
    assert_eq!(trail[5]["method"], "POST");
    assert_eq!(trail[5]["target"], "/reload");
    assert_eq!(trail[5]["code"], 200);
    for (idx, line) in trail.iter().enumerate() {
        assert_eq!(line["seq"], idx + 1);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the trail is the user's only");
    }

    let (code, out, err) = verify(&[&file], dir);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("intact: 7 lines, seq 1 to 7, from the start"),
        "{out}"
    );

    let pristine = std::fs::read_to_string(&file).unwrap();
    let restore = || std::fs::write(&file, &pristine).unwrap();

    // A changed line.
    edit_lines(&file, |l| l[1] = l[1].replace("echo__echo", "arith__add"));
    let (code, _, err) = verify(&[&file], dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("trail.jsonl:2 was changed"), "{err}");
    restore();

    // A removed line.
    edit_lines(&file, |l| {
        l.remove(2);
    });
    let (code, _, err) = verify(&[&file], dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("removed before line") && err.contains("trail.jsonl:3"),
        "{err}"
    );
    restore();

    // Two lines swapped.
    edit_lines(&file, |l| l.swap(3, 4));
    let (code, _, err) = verify(&[&file], dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("trail.jsonl:4 is out of order") && err.contains("trail.jsonl:5"),
        "{err}"
    );
    restore();
    assert_eq!(verify(&[&file], dir).0, Some(0));
}

#[test]
fn a_second_gateway_on_the_same_trail_does_not_start() {
    super::init();
    let config = support::examples_config("", "audit:\n  file: trail.jsonl\n");
    let mut first = Gateway::start(&config.path, &[]);
    first.initialize();
    let second = Gateway::start(&config.path, &[]);
    let (code, log) = second.finish();
    assert_eq!(code, Some(78), "{log}");
    assert!(log.contains("in use by another process"), "{log}");
    let (code, _) = first.finish();
    assert_eq!(code, Some(0));
    let (code, out, err) = verify(&[&config.dir.path().join("trail.jsonl")], config.dir.path());
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn audit_stdout_is_refused_when_mcp_is_on_stdio() {
    super::init();
    let config = support::examples_config("", "audit:\n  stdout: true\n");
    let gateway = Gateway::start(&config.path, &[]);
    let (code, log) = gateway.finish();
    assert_eq!(code, Some(78), "{log}");
    assert!(
        log.contains("audit.stdout cannot be used with --stdio"),
        "{log}"
    );
}

#[test]
fn calls_over_the_burst_are_refused_with_the_retry_delay_and_recover() {
    super::init();
    let config = support::examples_config(
        "",
        "rate_limits:\n  global:\n    requests: 2\n    per: 600ms\n    burst: 2\n",
    );
    let mut gateway = Gateway::start(&config.path, &[]);
    gateway.initialize();
    for _ in 0..2 {
        let echo = gateway.call_tool("echo__echo", json!({"text": "hi"}));
        assert_eq!(support::text(&echo), "hi");
    }
    let refused = gateway.call_tool("echo__echo", json!({"text": "hi"}));
    assert_eq!(refused["error"]["code"], -32031, "{refused}");
    let after = refused["error"]["data"]["retryAfterMs"].as_u64().unwrap();
    assert!(after > 0 && after <= 300, "{refused}");
    // Waiting the delay the gateway gave is enough (a few tries at most).
    let mut tries = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(after));
        let echo = gateway.call_tool("echo__echo", json!({"text": "again"}));
        if echo.get("result").is_some() {
            assert_eq!(support::text(&echo), "again");
            break;
        }
        tries += 1;
        assert!(tries < 5, "{echo}");
    }
}
