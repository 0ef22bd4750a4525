//! The admin API is safe by default (issue 17, ADR 0011): it always wants a
//! token, an IDE's `--stdio` gateway has no admin listener unless asked
//! for, `security.allowed_commands` binds admin edits by the files commands
//! resolve to, and its listener bounds idle and excess connections. Each
//! test runs the real binary and talks to it over 127.0.0.1.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use only1mcp_test_support::{self as support, Gateway, HttpGateway, config};
use serde_json::{Value, json};

use crate::init;

fn echo_yaml(top: &str) -> String {
    format!(
        "{top}servers:\n  echo:\n    command: {}\n",
        support::quote(&support::example_server("only1mcp-echo-server"))
    )
}

/// `POST {admin}/servers` with `body`, with `token` as the bearer token if
/// given; the status and the body.
fn post_server(admin: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let admin = admin.to_owned();
    let token = token.map(str::to_owned);
    let body = body.clone();
    // The tests are synchronous; reqwest wants a runtime of its own.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut request = reqwest::Client::new()
                .post(format!("{admin}/servers"))
                .json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        })
    })
    .join()
    .unwrap()
}

/// The server ids the admin API lists.
fn server_ids(admin: &str, token: &str) -> Vec<String> {
    let admin = admin.to_owned();
    let token = token.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let list: Value = reqwest::Client::new()
                .get(format!("{admin}/servers"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// A server entry that would leave `marker` behind if it ever ran.
fn shell_entry(id: &str, marker: &Path) -> Value {
    json!({
        "id": id,
        "command": "/bin/sh",
        "args": ["-c", format!("touch {}", marker.display())],
    })
}

#[test]
fn a_process_without_the_generated_token_gets_401_and_runs_nothing() {
    init();
    let cfg = config(&echo_yaml(""));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let token = gw.admin_token();
    let marker = cfg.dir.path().join("pwned");

    for wrong in [None, Some("wrong"), Some(&token[..token.len() - 1])] {
        let (status, body) = post_server(&admin, wrong, &shell_entry("x", &marker));
        assert_eq!(status, 401, "{body}");
    }
    // A request the gateway did act on would have started the server by
    // the time its answer came; the listed servers prove nothing was added.
    assert_eq!(server_ids(&admin, &token), ["echo"]);
    assert!(!marker.exists(), "the command ran");

    // The token: 256 random bits, in a file only the user can read, never
    // in the log.
    assert_eq!(token.len(), 64, "{token}");
    let file = Path::new(&gw.admin_env().1)
        .join(format!("admin-{}.token", admin.rsplit(':').next().unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    assert!(
        gw.log().contains(&file.display().to_string()),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains(&token), "the token reached the log");

    // The holder of the token may change the config (and the file goes
    // with the gateway).
    let (status, body) = post_server(
        &admin,
        Some(&token),
        &json!({"id": "arith", "command": support::example_server("only1mcp-arith-server")}),
    );
    assert_eq!(status, 201, "{body}");
    let (code, _) = gw.stop();
    assert_eq!(code, Some(0));
    assert!(!file.exists(), "the token file outlived the gateway");
}

/// Starts `only1mcp start --stdio` on `config` exactly as an IDE does (no
/// `--admin-listen`), initializes it, and returns it with its log path.
#[allow(
    clippy::disallowed_methods,
    reason = "the harness always asks for an admin listener; this test must not"
)]
fn ide_gateway(config: &Path, log: &Path) -> std::process::Child {
    let mut child = Command::new(support::gateway_bin())
        .args(["start", "--stdio", "--config"])
        .arg(config)
        .env_remove("ONLY1MCP_ADMIN_TOKEN")
        .env("ONLY1MCP_RUNTIME_DIR", log.parent().unwrap())
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"it","version":"1"}}}}}}"#
    )
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0_u8; 1];
    // The first byte of the answer: the gateway is serving (and has started
    // its admin API, if any, before it served).
    stdout.read_exact(&mut first).unwrap();
    child
}

#[test]
fn an_ide_gateway_has_no_admin_listener_unless_asked_for() {
    init();
    let port = support::free_port();
    let cfg = config(&echo_yaml(&format!("admin:\n  listen: 127.0.0.1:{port}\n")));
    let log = cfg.dir.path().join("gateway.log");
    let mut gateway = ide_gateway(&cfg.path, &log);
    let refused = TcpStream::connect(("127.0.0.1", port));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        refused.is_err(),
        "an admin API listens under --stdio:\n{text}"
    );
    assert!(!text.contains("Admin API listening"), "{text}");
    gateway.kill().unwrap();
    gateway.wait().unwrap();

    // Asked for in the config: served, with a generated token.
    let cfg = config(&echo_yaml(&format!(
        "admin:\n  enabled: true\n  listen: 127.0.0.1:{port}\n"
    )));
    let log = cfg.dir.path().join("gateway.log");
    let mut gateway = ide_gateway(&cfg.path, &log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("auth=\"bearer token (generated)\""), "{text}");
    let admin = format!("http://127.0.0.1:{port}");
    let (status, _) = post_server(&admin, None, &json!({"id": "x", "command": "x"}));
    assert_eq!(status, 401);
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}

#[test]
fn allowed_commands_bind_admin_edits_by_the_file_a_command_names() {
    init();
    let echo = support::example_server("only1mcp-echo-server");
    let arith = support::example_server("only1mcp-arith-server");
    let cfg = config(&echo_yaml(&format!(
        "security:\n  allowed_commands: [{}, {}]\n",
        support::quote(&echo),
        support::quote(&arith)
    )));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let token = gw.admin_token();
    let marker = cfg.dir.path().join("pwned");

    // A shell, and a look-alike with the allowed file name elsewhere.
    let look_alike_dir = cfg.dir.path().join("attacker");
    std::fs::create_dir(&look_alike_dir).unwrap();
    let look_alike = look_alike_dir.join("only1mcp-arith-server");
    std::fs::write(
        &look_alike,
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&look_alike, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for entry in [
        shell_entry("shell", &marker),
        json!({"id": "look_alike", "command": look_alike}),
    ] {
        let (status, body) = post_server(&admin, Some(&token), &entry);
        assert_eq!(status, 400, "{body}");
        let problem = body["problems"][0].as_str().unwrap();
        assert!(
            problem.contains("is not in security.allowed_commands"),
            "{body}"
        );
    }
    assert_eq!(server_ids(&admin, &token), ["echo"]);
    assert!(!marker.exists(), "a refused command ran");

    // The allowed file itself is accepted.
    let (status, body) = post_server(
        &admin,
        Some(&token),
        &json!({"id": "arith", "command": arith}),
    );
    assert_eq!(status, 201, "{body}");
}

/// Reads from `stream` until the peer closes it; how long that took.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Duration {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buf = [0_u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return started.elapsed();
            }
            Err(e) => panic!("not closed within {limit:?}: {e}"),
        }
    }
}

#[test]
fn the_admin_listener_closes_idle_and_stalled_connections() {
    init();
    let cfg = config(&echo_yaml("http:\n  read_timeout: 1s\n"));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let addr = admin.trim_start_matches("http://").to_owned();

    let opened = Instant::now();
    let mut idle = TcpStream::connect(&addr).unwrap();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"GET /servers HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    for stream in [&mut idle, &mut stalled] {
        time_to_close(stream, Duration::from_secs(10));
        let took = opened.elapsed();
        assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    }
    // The API still answers.
    assert_eq!(server_ids(&admin, &gw.admin_token()), ["echo"]);
}

#[test]
fn the_admin_listener_holds_a_bounded_number_of_connections() {
    init();
    let cfg = config(&echo_yaml(""));
    let gw = HttpGateway::start(&cfg.path);
    let admin = gw.admin_url();
    let addr = admin.trim_start_matches("http://").to_owned();
    const MAX: usize = 64;

    let held: Vec<TcpStream> = (0..MAX)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let mut one_more = TcpStream::connect(&addr).unwrap();
    time_to_close(&mut one_more, Duration::from_secs(10));
    gw_log_contains(&gw, "Admin API connection refused: too many open");

    drop(held);
    // Once they are gone, the API answers again (the listener notices the
    // closed connections as they end).
    let deadline = Instant::now() + support::WAIT;
    loop {
        let mut probe = TcpStream::connect(&addr).unwrap();
        probe
            .write_all(b"GET /servers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = probe.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 401") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never answered again: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gw_log_contains(gw: &HttpGateway, needle: &str) {
    let deadline = Instant::now() + support::WAIT;
    while !gw.log().contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stdio harness gateway has an admin listener (it asks for one), and
/// its management commands find the generated token with no extra step.
#[test]
fn the_user_who_started_the_gateway_needs_no_token() {
    init();
    let cfg = config(&echo_yaml(""));
    let mut gateway = Gateway::start(&cfg.path, &[]);
    gateway.initialize();
    let admin = gateway.admin_url();
    let (env, dir) = gateway.admin_env();
    let out = support::run_cli_with(
        &["status", "--json", "--admin", &admin],
        cfg.dir.path(),
        &[(env, &dir)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["servers"][0]["id"], "echo", "{status}");
    // Without it (another user's environment), refused.
    let out = support::run_cli_with(&["status", "--admin", &admin], cfg.dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
}
