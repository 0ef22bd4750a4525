//! The admin API and the management commands (`add`, `remove`, `status`,
//! `logs`, `test`, `reload`), each run as a real process against a real
//! running gateway.

use std::path::Path;
use std::process::Output;

use only1mcp_test_support::{self as support, Gateway, HttpGateway, config};
use serde_json::{Value, json};

use crate::{init, tool_names};

const TOKEN: &str = "admin-token-for-tests";

/// A config with the echo server (and `top` before it).
fn echo_yaml(top: &str) -> String {
    format!(
        "{top}servers:\n  echo:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-echo-server"))
    )
}

fn arith() -> String {
    support::example_server("only1mcp-arith-server")
        .to_string_lossy()
        .into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `only1mcp ARGS… --admin URL` with the token in the environment and
/// checks it succeeded.
fn cli_ok(args: &[&str], admin: &str, dir: &Path) -> String {
    cli_ok_with(args, admin, dir, &[("ONLY1MCP_ADMIN_TOKEN", TOKEN)])
}

/// Runs `only1mcp ARGS… --admin URL` with `env` and checks it succeeded.
fn cli_ok_with(args: &[&str], admin: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = cli(args, admin, dir, env);
    assert!(
        out.status.success(),
        "only1mcp {args:?} failed ({}):\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn cli(args: &[&str], admin: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
    // `--admin` goes before a `--` that ends the options.
    let mut full: Vec<&str> = Vec::new();
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    full.extend_from_slice(&args[..split]);
    full.extend_from_slice(&["--admin", admin]);
    full.extend_from_slice(&args[split..]);
    support::run_cli_with(&full, dir, env)
}

/// An HTTP client that sends `token` as the bearer token of every request.
fn authorized_client(token: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Times and latencies vary: they are redacted, in tables by [`redact`].
macro_rules! assert_table_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![
            (r"\d+(\.\d+)? (ms|s)\b", "[time]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[timestamp]"),
        ]}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

/// The table with the cells of `columns` redacted (`-` stays), realigned
/// as the CLI aligns tables (cells never hold two spaces in a row).
fn redact(table: &str, columns: &[&str]) -> String {
    let rows: Vec<Vec<String>> = table
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let redacted: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, name)| columns.contains(&name.as_str()))
        .map(|(idx, _)| idx)
        .collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .enumerate()
        .map(|(row_idx, row)| {
            row.into_iter()
                .enumerate()
                .map(|(idx, cell)| {
                    if row_idx > 0 && redacted.contains(&idx) && cell != "-" {
                        "[time]".to_owned()
                    } else {
                        cell
                    }
                })
                .collect()
        })
        .collect();
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns)
        .map(|idx| {
            rows.iter()
                .filter_map(|row| row.get(idx))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(idx, cell)| format!("{cell:<width$}", width = widths[idx]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn cli_adds_and_removes_servers_of_a_running_gateway() {
    init();
    let cfg = config(&echo_yaml(""));
    let dir = cfg.dir.path();
    // The token comes from the environment here.
    let mut gateway = Gateway::start(&cfg.path, &[("ONLY1MCP_ADMIN_TOKEN", TOKEN)]);
    gateway.initialize();
    let admin = gateway.admin_url();
    assert!(
        gateway.log().contains("auth=\"bearer token (configured)\""),
        "{}",
        gateway.log()
    );
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "hi"}))),
        "hi"
    );

    let out = cli_ok(&["add", "arith", "--", &arith()], &admin, dir);
    assert_table_snapshot!("admin_add", out);
    gateway.wait_for_notification("notifications/tools/list_changed");
    assert!(tool_names(&mut gateway).contains(&"arith__add".to_owned()));
    assert_eq!(
        support::text(&gateway.call_tool("arith__add", json!({"a": 2, "b": 3}))),
        "5"
    );

    let out = cli_ok(&["status"], &admin, dir);
    insta::assert_snapshot!("admin_status", redact(&out, &["RATE", "P50", "P99"]));
    let status: Value = serde_json::from_str(&cli_ok(&["status", "--json"], &admin, dir)).unwrap();
    let echo = &status["servers"][1];
    assert_eq!(echo["id"], "echo", "{status}");
    assert_eq!(
        (echo["requests"].as_u64(), echo["errors"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(echo["p50_ms"].as_f64().unwrap() > 0.0, "{status}");
    // The last minute, from the metrics' histograms: the one call, no error.
    let recent = &echo["recent"];
    assert_eq!(recent["calls"], 1, "{status}");
    assert_eq!(recent["error_rate"], 0.0, "{status}");
    assert!(recent["rate"].as_f64().unwrap() > 0.0, "{status}");
    let (p50, p99) = (
        recent["p50_ms"].as_f64().unwrap(),
        recent["p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "{status}");
    assert_eq!(status["servers"][0]["era"], "modern", "{status}");

    let out = cli_ok(&["logs", "--server", "arith"], &admin, dir);
    assert!(
        out.contains("[only1mcp-arith-server] ready on stdio"),
        "{out}"
    );
    assert!(out.contains("Backend ready"), "{out}");
    assert!(!out.contains("only1mcp-echo-server"), "{out}");
    let all = cli_ok(&["logs"], &admin, dir);
    assert!(
        all.contains("echo: [only1mcp-echo-server] ready on stdio"),
        "{all}"
    );

    let out = cli_ok(&["test", "arith"], &admin, dir);
    assert_table_snapshot!("admin_test_arith", out);

    let out = cli_ok(&["remove", "arith"], &admin, dir);
    assert_table_snapshot!("admin_remove", out);
    gateway.wait_for_notification("notifications/tools/list_changed");
    let gone = gateway.call_tool("arith__add", json!({"a": 2, "b": 3}));
    assert!(
        gone["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{gone}"
    );
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "still here"}))),
        "still here"
    );

    let out = cli_ok(&["reload"], &admin, dir);
    assert_table_snapshot!("admin_reload", out);
    // Nothing was persisted: the file is as it was.
    assert_eq!(std::fs::read_to_string(&cfg.path).unwrap(), echo_yaml(""));
}

#[tokio::test]
async fn the_admin_api_refuses_a_missing_or_wrong_token() {
    init();
    let cfg = config(&echo_yaml(&format!("admin:\n  token: {TOKEN}\n")));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let servers = format!("{admin}/servers");

    let res = http.get(&servers).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"only1mcp-admin\""
    );
    let res = http
        .get(&servers)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "Unauthorized: missing or wrong bearer token");
    // Mutations are refused too, and change nothing.
    let res = http.delete(format!("{servers}/echo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A browser (it sends Origin) is refused even with the token.
    let res = http
        .get(&servers)
        .bearer_auth(TOKEN)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http.get(&servers).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["servers"][0]["id"], "echo", "{body}");
    assert_eq!(body["servers"][0]["status"], "ready", "{body}");

    // The CLI says what is wrong.
    let dir = cfg.dir.path();
    let out = cli(&["status"], &admin, dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ONLY1MCP_ADMIN_TOKEN"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["status", "--token", "wrong"], &admin, dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = cli(&["status", "--token", TOKEN], &admin, dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn api_changes_apply_live_and_are_validated() {
    init();
    let cfg = config(&echo_yaml(""));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    assert!(
        gw.log().contains("auth=\"bearer token (generated)\""),
        "{}",
        gw.log()
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = authorized_client(&gw.admin_token());

    // A bad entry names the field; nothing changes.
    let res = http
        .post(format!("{admin}/servers"))
        .json(&json!({"id": "bad", "comand": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["problems"][0].as_str().unwrap().contains("comand"),
        "{body}"
    );
    let res = http
        .post(format!("{admin}/servers"))
        .json(&json!({"id": "echo", "command": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = http
        .post(format!("{admin}/servers"))
        .json(&json!({"id": "a__b", "command": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Added through the API: the gateway serves its tools at once.
    let res = http
        .post(format!("{admin}/servers"))
        .json(&json!({"id": "arith", "command": arith()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let change: Value = res.json().await.unwrap();
    assert_eq!(change["reload"]["started"], json!(["arith"]), "{change}");
    assert_eq!(change["reload"]["kept"], json!(["echo"]), "{change}");
    assert_eq!(change["persisted"], Value::Null, "{change}");

    // Disabled: stopped, listed as disabled; enabled: back.
    let res = http
        .post(format!("{admin}/servers/arith/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Value = http
        .get(format!("{admin}/servers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["servers"][0]["status"], "disabled", "{list}");
    assert_eq!(list["servers"][0]["tools"], 0, "{list}");
    let res = http
        .post(format!("{admin}/servers/arith/enable"))
        .send()
        .await
        .unwrap();
    let change: Value = res.json().await.unwrap();
    assert_eq!(change["reload"]["started"], json!(["arith"]), "{change}");
    let res = http
        .post(format!("{admin}/servers/nope/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Test through the API, with timing.
    let test: Value = http
        .post(format!("{admin}/servers/arith/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["era"], "modern", "{test}");
    assert_eq!(test["timings_ms"][3][0], "total", "{test}");
    assert_eq!(test["tools"].as_array().unwrap().len(), 5, "{test}");

    // Logs as JSON.
    let logs: Value = http
        .get(format!("{admin}/servers/arith/logs?lines=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs["lines"].as_array().unwrap().len(), 2, "{logs}");
}

#[test]
fn an_invalid_config_is_refused_by_reload_and_the_gateway_keeps_serving() {
    init();
    let cfg = config(&echo_yaml(""));
    let dir = cfg.dir.path();
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    let admin = gateway.admin_url();
    std::fs::write(
        &cfg.path,
        "naming:\n  separator: \"::\"\nservers:\n  echo:\n    command: \"\"\n",
    )
    .unwrap();
    let (env, runtime_dir) = gateway.admin_env();
    let out = support::run_cli_with(&["reload", "--admin", &admin], dir, &[(env, &runtime_dir)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let token = gateway.admin_token();
    insta::with_settings!({filters => vec![(r"/\S*only1mcp\.yaml", "[config]")]}, {
        insta::assert_snapshot!("admin_reload_invalid", stderr(&out));
    });
    // The same answer from the API itself: a 400 with every problem.
    let res = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let res = authorized_client(&token)
                .post(format!("{admin}/reload"))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        })
    })
    .join()
    .unwrap();
    assert_eq!(res.0, 400);
    assert_eq!(res.1["problems"].as_array().unwrap().len(), 2, "{}", res.1);
    // Still serving on the previous config.
    assert_eq!(
        support::text(&gateway.call_tool("echo__echo", json!({"text": "up"}))),
        "up"
    );
}

#[test]
fn persisted_changes_edit_only_their_entry() {
    init();
    let original = format!(
        "# My gateway.\nnaming:\n  prefix: always   # keep names prefixed\n\n{}\n# The end.\n",
        echo_yaml("").trim_end()
    );
    let cfg = config(&original);
    let dir = cfg.dir.path();
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    // The user who started the gateway needs no token: the CLI reads the
    // generated one from its file.
    let (env, runtime_dir) = gw.admin_env();
    let env = [(env, runtime_dir.as_str())];
    let out = cli_ok_with(
        &[
            "add",
            "arith",
            "--persist",
            "-e",
            "GREETING=hello world",
            "--",
            &arith(),
        ],
        &admin,
        dir,
        &env,
    );
    assert!(out.contains("Wrote "), "{out}");
    let written = std::fs::read_to_string(&cfg.path).unwrap();
    insta::with_settings!({filters => vec![(r#""/\S*/only1mcp-(\w+)-server""#, "[$1 server]")]}, {
        insta::assert_snapshot!("admin_persisted_add", written);
    });
    cli_ok_with(&["remove", "arith", "--persist"], &admin, dir, &env);
    assert_eq!(std::fs::read_to_string(&cfg.path).unwrap(), original);
}

#[test]
fn logs_follow_prints_new_lines_as_they_come() {
    init();
    let cfg = config(&echo_yaml(""));
    let dir = cfg.dir.path();
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let (env, runtime_dir) = gw.admin_env();
    let env = [(env, runtime_dir.as_str())];
    let follower = support::spawn_cli(
        &[
            "logs", "--follow", "--server", "echo", "-n", "1", "--admin", &admin,
        ],
        dir,
        &env,
    );
    // The recent line first, then what happens next: a test starts a fresh
    // echo process, whose stderr is captured under the server's name.
    follower.read_until("echo:");
    cli_ok_with(&["test", "echo"], &admin, dir, &env);
    let lines = follower.read_until("Test passed");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Testing the server on a fresh connection")),
        "{lines:?}"
    );
}

#[test]
fn test_works_offline_from_the_config_file() {
    init();
    let cfg = config(&format!(
        "{}  broken:\n    command: /nonexistent/only1mcp-test-server\n",
        echo_yaml("")
    ));
    let dir = cfg.dir.path();
    let out = support::run_cli(&["test", "echo", "--config", "only1mcp.yaml"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_table_snapshot!("admin_test_offline", stdout(&out));
    let out = support::run_cli(&["test", "broken", "--config", "only1mcp.yaml"], dir);
    assert_eq!(out.status.code(), Some(1));
    assert_table_snapshot!("admin_test_offline_broken", stdout(&out));
    let out = support::run_cli(&["test", "nope", "--config", "only1mcp.yaml"], dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no server \"nope\""),
        "{}",
        stderr(&out)
    );
}
