//! The bounds of `limits:` and `http:` against the real binary: each
//! reproduces an attack of issue 17 at a scale that runs in seconds and
//! asserts what happens at the bound, that memory stays under a stated
//! ceiling, and that the gateway keeps serving another client meanwhile.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use only1mcp_test_support::{self as support, Gateway, HttpGateway, examples_config};
use serde_json::{Value, json};

use crate::init;

/// How many requests the backend `server` has been sent (admin API).
async fn backend_requests(admin: &str, token: &str, server: &str) -> u64 {
    let servers: Value = client()
        .get(format!("{admin}/servers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == server)
        .unwrap_or_else(|| panic!("{servers}"));
    entry["requests"].as_u64().unwrap()
}

/// An HTTP client (rustls with ring).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A batch of `n` `echo__echo` calls.
fn echo_batch(n: usize) -> String {
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": format!("b{i}")}}})
        })
        .collect();
    Value::Array(entries).to_string()
}

/// `limits.max_batch` (default 64) on stdio: a batch of 65 is refused whole
/// with one -32600 answer and none of it reaches a backend; 64 run. The
/// attack of issue 17 (a 4 MB batch of 80,000 `tools/list`, which built a
/// 149 MB answer) gets the same one answer, and the gateway's RSS grows by
/// less than 64 MiB.
#[test]
fn batches_over_max_batch_are_refused_whole() {
    init();
    let config = examples_config("", "");
    let mut gateway = Gateway::start(&config.path, &[]);
    let init = gateway.request(
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    let rt = runtime();
    let (admin, token) = (gateway.admin_url(), gateway.admin_token());
    let echo_requests = || rt.block_on(backend_requests(&admin, &token, "echo"));
    let before = echo_requests();

    gateway.send_raw(echo_batch(65).as_bytes());
    let refused = gateway.recv();
    assert_eq!(refused["id"], Value::Null, "{refused}");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("limits.max_batch"), "{message}");
    assert_eq!(echo_requests(), before, "part of a refused batch ran");

    gateway.send_raw(echo_batch(64).as_bytes());
    let answers = gateway.recv();
    assert_eq!(answers.as_array().map(Vec::len), Some(64), "{answers}");
    assert_eq!(echo_requests(), before + 64);

    let baseline = support::rss_kib(gateway.pid());
    let entry = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let attack = format!("[{}]", vec![entry; 80_000].join(","));
    assert!(attack.len() < 4 * 1024 * 1024, "{}", attack.len());
    gateway.send_raw(attack.as_bytes());
    let refused = gateway.recv();
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let grown = support::rss_kib(gateway.pid()).saturating_sub(baseline);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    // The session goes on.
    let echo = gateway.call_tool("echo__echo", json!({"text": "still here"}));
    assert_eq!(support::text(&echo), "still here");
}

/// On Streamable HTTP a batch over `limits.max_batch` (here 3) is a 400
/// with the same one error; a batch at the limit runs.
#[tokio::test]
async fn http_batches_over_max_batch_get_400() {
    init();
    let config = examples_config("", "limits:\n  max_batch: 3\n");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let post = |body: String, session: Option<&str>| {
        let mut req = http
            .post(gw.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(session) = session {
            req = req
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-03-26");
        }
        req.body(body).send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}});
    let res = post(init.to_string(), None).await.unwrap();
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let (admin, token) = (gw.admin_url(), gw.admin_token());
    let before = backend_requests(&admin, &token, "echo").await;
    let res = post(echo_batch(4), Some(&session)).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(body["id"], Value::Null, "{body}");
    assert_eq!(backend_requests(&admin, &token, "echo").await, before);
    let res = post(echo_batch(3), Some(&session)).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
}

/// The gateway's `host:port`.
fn addr_of(gw: &HttpGateway) -> std::net::SocketAddr {
    gw.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `addr` from the loopback address `from` (Linux routes
/// all of 127.0.0.0/8 to loopback).
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A modern `tools/call` of `echo__echo` as raw HTTP/1.1 (the lane's).
fn raw_echo(addr: std::net::SocketAddr, text: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "echo__echo", "arguments": {"text": text},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        }
    }})
    .to_string();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: echo__echo\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` on `tcp` and returns what comes back until the answer
/// holds `until` (or the connection ends).
async fn exchange(tcp: &mut tokio::net::TcpStream, request: &[u8], until: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tcp.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        let n = tokio::time::timeout(support::WAIT, tcp.read(&mut chunk))
            .await
            .expect("no answer in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Waits for the gateway to close `tcp` (end of stream or a reset), at
/// most `within`; returns how long it took.
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> Duration {
    use tokio::io::AsyncReadExt as _;
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), tcp.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was not closed within {within:?}"),
        }
    }
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `http.max_connections` and `http.max_connections_per_peer` (here 6 and
/// 3): a connection over either is closed as soon as it is accepted, the
/// refusals are logged at most once a second, the connections held are
/// served, and a closed one frees its place.
#[tokio::test]
async fn connections_over_the_bounds_are_closed_at_accept() {
    init();
    let config = examples_config(
        "",
        "http:\n  max_connections: 6\n  max_connections_per_peer: 3\n",
    );
    let gw = HttpGateway::start(&config.path);
    let addr = addr_of(&gw);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", addr).await);
    }
    // A fourth from the same address: closed at once.
    let mut over_peer = connect_from("127.0.0.1", addr).await;
    let first_refusal = Instant::now();
    closed_within(&mut over_peer, Duration::from_secs(5)).await;
    // Another address is still served meanwhile.
    let mut other = connect_from("127.0.0.2", addr).await;
    let answer = exchange(&mut other, &raw_echo(addr, "other"), "other").await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    held.push(other);
    for _ in 0..2 {
        held.push(connect_from("127.0.0.2", addr).await);
    }
    // Six open: a seventh, from a third address, is closed at once too,
    // and so is each of a burst of 40.
    for _ in 0..41 {
        let mut refused = connect_from("127.0.0.3", addr).await;
        closed_within(&mut refused, Duration::from_secs(5)).await;
    }
    // The refusals are logged at most once a second, each line with how
    // many there were since the one before.
    let log = gw.log();
    let lines = log.matches("Connection closed at accept").count();
    let seconds = usize::try_from(first_refusal.elapsed().as_secs()).unwrap();
    assert!(lines <= seconds + 1, "{lines} lines in {seconds} s:\n{log}");
    assert!(
        log.contains("over http.max_connections_per_peer (1 refused"),
        "{log}"
    );
    tokio::time::sleep_until((first_refusal + Duration::from_millis(1100)).into()).await;
    let mut refused = connect_from("127.0.0.3", addr).await;
    closed_within(&mut refused, Duration::from_secs(5)).await;
    let deadline = Instant::now() + support::WAIT;
    while !gw.log().contains("over http.max_connections (") {
        assert!(Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every refusal is counted in one of the lines: 1 + 41 + 1.
    let counted: usize = gw
        .log()
        .lines()
        .filter_map(|l| {
            l.split(" refused since the last such line")
                .next()?
                .rsplit('(')
                .next()
        })
        .filter_map(|n| n.parse::<usize>().ok())
        .sum();
    assert_eq!(counted, 43, "{}", gw.log());
    // Every held connection is open and served.
    for (idx, tcp) in held.iter_mut().enumerate() {
        let text = format!("held{idx}");
        let answer = exchange(tcp, &raw_echo(addr, &text), &text).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }
    // One closes: its place is free again.
    drop(held.pop());
    let deadline = Instant::now() + support::WAIT;
    loop {
        let mut next = connect_from("127.0.0.3", addr).await;
        let answer = exchange(&mut next, &raw_echo(addr, "freed"), "freed").await;
        if answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        // (The gateway may not have seen the close yet.)
        assert!(Instant::now() < deadline, "the place was never freed");
        tokio::task::yield_now().await;
    }
}

/// A POST /mcp head with a chunked body (so hyper serves it), whose body
/// the test then sends a byte at a time.
fn chunked_head(addr: std::net::SocketAddr, path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
}

/// The HTTP/2 preface and an empty SETTINGS frame: an h2c connection that
/// then sends nothing.
const H2C_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// `http.read_timeout` (here 1 s) on hyper's side, at the scale of issue 17:
/// 100 connections dripping a chunked `POST /mcp` body a byte at a time get
/// 408 and are closed; so is a dripped `/messages` body; 100 idle h2c
/// connections are closed; a 10 MiB `Content-Length` is refused with 413
/// before any of its body is sent. Meanwhile another client is served, RSS
/// grows by less than 64 MiB, and once they are closed the gateway holds no
/// more file descriptors than before.
#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_after_read_timeout() {
    use tokio::io::AsyncWriteExt as _;
    init();
    let config = examples_config("", "http:\n  read_timeout: 1s\n");
    let gw = HttpGateway::start(&config.path);
    let addr = addr_of(&gw);
    let pid = gw.pid();
    let (fds, rss) = (open_fds(pid), support::rss_kib(pid));
    let started = Instant::now();

    let mut drips = Vec::new();
    for _ in 0..100 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(chunked_head(addr, "/mcp").as_bytes())
            .await
            .unwrap();
        drips.push(tcp);
    }
    let mut idle = Vec::new();
    for _ in 0..100 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(H2C_HELLO).await.unwrap();
        idle.push(tcp);
    }
    // A /messages body that never arrives whole.
    let http = client();
    let mut sse = http
        .get(format!("{}/sse", gw.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let endpoint = String::from_utf8_lossy(&sse.chunk().await.unwrap().unwrap()).into_owned();
    let messages = endpoint
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("{endpoint}"))
        .to_owned();
    let mut short = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {messages} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    short.write_all(head.as_bytes()).await.unwrap();

    // The attack goes on: a byte of each chunked body at a time, while
    // another client is served.
    let mut served = 0;
    let mut answered = Vec::new();
    let mut drips_left = drips;
    while !drips_left.is_empty() {
        let mut still = Vec::new();
        for mut tcp in drips_left {
            if tcp.write_all(b"1\r\n \r\n").await.is_ok() {
                still.push(tcp);
            } else {
                answered.push(tcp);
            }
        }
        drips_left = still;
        let answer = http
            .post(format!("{}/mcp", gw.base))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        served += 1;
        let grown = support::rss_kib(pid).saturating_sub(rss);
        assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} dripping connections still open",
            drips_left.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served >= 1, "the other client was never served");
    // Each dripping body was answered 408 (or closed) after the timeout.
    for mut tcp in answered {
        let text = exchange(&mut tcp, b"", "\r\n\r\n").await;
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408 "),
            "{text}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "cut off too soon"
    );
    for mut tcp in idle {
        closed_within(&mut tcp, Duration::from_secs(10)).await;
    }
    let text = exchange(&mut short, b"", "\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    closed_within(&mut short, Duration::from_secs(10)).await;

    // 413 from the head alone.
    let mut large = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let text = exchange(&mut large, head.as_bytes(), "\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    closed_within(&mut large, Duration::from_secs(10)).await;

    // Nothing is left open: the file descriptors come back.
    drop(sse);
    let deadline = Instant::now() + support::WAIT;
    while open_fds(pid) > fds + 2 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors open, {fds} before",
            open_fds(pid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `http.shutdown_timeout` (here 1 s): SIGTERM returns within it (plus the
/// backends' own stop, under 9 s in all) although a client drips a body that would take the
/// whole `read_timeout` (30 s), an h2c connection sits idle, a legacy GET
/// stream is open and a call that takes 20 s is in flight.
#[tokio::test]
async fn sigterm_returns_within_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt as _;
    init();
    let config = examples_config("", "http:\n  shutdown_timeout: 1s\n");
    let gw = HttpGateway::start(&config.path);
    let addr = addr_of(&gw);
    let mut drip = tokio::net::TcpStream::connect(addr).await.unwrap();
    drip.write_all(chunked_head(addr, "/mcp").as_bytes())
        .await
        .unwrap();
    drip.write_all(b"1\r\n{\r\n").await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(H2C_HELLO).await.unwrap();
    let http = client();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}});
    let res = http
        .post(gw.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let mut stream = http
        .get(gw.mcp_url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap();
    // A call the backend takes 20 s to answer, on the lane; its first
    // progress shows it is in flight.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "echo__sleep", "arguments": {"ms": 20000}, "_meta": {"progressToken": "p"}}})
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {session}\r\n\
         MCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(&mut slow, request.as_bytes(), "notifications/progress").await;

    let stopping = Instant::now();
    let (code, log) = tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{log}");
    // 1 s of drain, then the backends' own stop (they exit when their
    // stdin closes; at most about 6 s if one would not), and slack for a
    // loaded machine; without the bound, the drip alone holds it 30 s and
    // the call 20 s.
    assert!(
        took < Duration::from_secs(9),
        "SIGTERM took {took:?}:\n{log}"
    );
    assert!(
        log.contains("Connections still busy after http.shutdown_timeout"),
        "{log}"
    );
    drop((drip, idle, stream, slow));
}

/// The same bounds over TLS (here `read_timeout: 1s`): a connection that
/// never starts its handshake is closed, and a body that never ends gets
/// 408, over HTTP/2 and HTTP/1.1, while another client is served.
#[tokio::test]
async fn tls_connections_get_the_same_timeouts() {
    init();
    let (_dir, top, ca) = crate::origin::tls_config();
    let top = top.replacen("http:\n", "http:\n  read_timeout: 1s\n", 1);
    let config = examples_config("", &top);
    let gw = HttpGateway::start(&config.path);
    let addr: std::net::SocketAddr = gw.base.trim_start_matches("https://").parse().unwrap();
    let silent = tokio::spawn(async move {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        closed_within(&mut tcp, Duration::from_secs(10)).await
    });
    let _ = client();
    for http1 in [false, true] {
        let builder = reqwest::Client::builder().tls_certs_only([ca.clone()]);
        let http = if http1 { builder.http1_only() } else { builder }
            .build()
            .unwrap();
        // One chunk, then nothing more, ever.
        let endless = futures::stream::iter([Ok::<_, std::io::Error>("{\"jsonrpc\"")])
            .chain(futures::stream::pending());
        let body = reqwest::Body::wrap_stream(endless);
        let refused = http
            .post(gw.mcp_url())
            .header("content-type", "application/json")
            .body(body)
            .send();
        let served = http
            .post(gw.mcp_url())
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
            .send();
        let (refused, served) = tokio::join!(tokio::time::timeout(support::WAIT, refused), served);
        let refused = refused.expect("the endless body was not cut off").unwrap();
        assert_eq!(refused.status(), 408, "http1: {http1}");
        assert_eq!(served.unwrap().status(), 200, "http1: {http1}");
    }
    let took = silent.await.unwrap();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
}

/// The legacy `initialize` a Streamable HTTP client sends.
fn initialize_body() -> String {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}})
    .to_string()
}

/// A legacy POST of `body` in `session` (or none).
fn legacy(
    http: &reqwest::Client,
    gw: &HttpGateway,
    session: Option<&str>,
    body: String,
) -> reqwest::RequestBuilder {
    let req = http
        .post(gw.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    match session {
        Some(session) => req
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25"),
        None => req,
    }
}

/// Opens a legacy session; its id.
async fn open_session(http: &reqwest::Client, gw: &HttpGateway) -> String {
    let res = legacy(http, gw, None, initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let res = legacy(http, gw, Some(&session), initialized.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    session
}

/// The status of a `ping` in `session`.
async fn ping(http: &reqwest::Client, gw: &HttpGateway, session: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    legacy(http, gw, Some(session), body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `limits.max_sessions` (here 20), with the attack of issue 17
/// (initialize after initialize): the 21st session, legacy or HTTP+SSE,
/// gets 503 and -32033, 2,000 more attempts leave RSS within 32 MiB, the
/// sessions held keep working, and DELETE frees a place.
#[tokio::test]
async fn legacy_sessions_are_bounded_in_number() {
    init();
    let config = examples_config("", "limits:\n  max_sessions: 20\n");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let baseline = support::rss_kib(gw.pid());
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(open_session(&http, &gw).await);
    }
    let refused = legacy(&http, &gw, None, initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32033, "{body}");
    assert_eq!(body["id"], 0, "{body}");
    let sse = http
        .get(format!("{}/sse", gw.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 503);
    for _ in 0..2000 {
        let res = legacy(&http, &gw, None, initialize_body())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
    }
    let grown = support::rss_kib(gw.pid()).saturating_sub(baseline);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
    for session in &sessions {
        assert_eq!(ping(&http, &gw, session).await, 200);
    }
    // DELETE frees a place.
    let ended = sessions.pop().unwrap();
    let res = http
        .delete(gw.mcp_url())
        .header("mcp-session-id", &ended)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(ping(&http, &gw, &ended).await, 404);
    open_session(&http, &gw).await;
}

/// `limits.session_idle_timeout` (here 1 s): a session in use (requests,
/// or an open GET stream) lives past the idle time; an idle one ends, its
/// requests get 404 (its client starts anew with `initialize`), and its
/// place among `limits.max_sessions` (here 4) is free again.
#[tokio::test]
async fn idle_legacy_sessions_expire() {
    init();
    let config = examples_config(
        "",
        "limits:\n  max_sessions: 4\n  session_idle_timeout: 1s\n",
    );
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let busy = open_session(&http, &gw).await;
    let streaming = open_session(&http, &gw).await;
    let idle = [
        open_session(&http, &gw).await,
        open_session(&http, &gw).await,
    ];
    let mut stream = http
        .get(gw.mcp_url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &streaming)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap();
    let left = Instant::now();
    // The idle ones end 1 s (and at most a tick) after their last use; the
    // log names each as it ends. (A request would renew them: the log is
    // how to watch without touching.)
    let ended = |id: &str| {
        gw.log().lines().any(|l| {
            l.contains("HTTP session ended: idle for limits.session_idle_timeout") && l.contains(id)
        })
    };
    while !idle.iter().all(|id| ended(id)) {
        assert!(left.elapsed() < Duration::from_secs(10), "never expired");
        assert_eq!(ping(&http, &gw, &busy).await, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        left.elapsed() >= Duration::from_millis(900),
        "{:?}",
        left.elapsed()
    );
    for id in &idle {
        assert_eq!(ping(&http, &gw, id).await, 404);
    }
    // Well past the idle time, the busy and the streaming one live on.
    while left.elapsed() < Duration::from_millis(2500) {
        assert_eq!(ping(&http, &gw, &busy).await, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ping(&http, &gw, &streaming).await, 200);
    assert!(!ended(&busy) && !ended(&streaming), "{}", gw.log());
    // The two expired places are free again, and only those.
    for _ in 0..2 {
        open_session(&http, &gw).await;
    }
    let res = legacy(&http, &gw, None, initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    drop(stream);
}

/// The next SSE event of `stream` (`events` holds what was read and not
/// yet taken).
async fn next_event(stream: &mut reqwest::Response, events: &mut String) -> String {
    loop {
        if let Some(end) = events.find("\n\n") {
            let event = events[..end].to_owned();
            events.drain(..end + 2);
            return event;
        }
        let chunk = tokio::time::timeout(support::WAIT, stream.chunk())
            .await
            .expect("no event")
            .unwrap()
            .expect("the stream ended");
        events.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// `limits.replay_bytes` (here 1 KiB): a session keeps only the newest of
/// its unsolicited messages within that many bytes for `Last-Event-ID`
/// replay.
#[tokio::test]
async fn a_sessions_replay_is_bounded_in_bytes() {
    init();
    let config = examples_config("", "limits:\n  replay_bytes: 1024\n");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let session = open_session(&http, &gw).await;
    let open = |last: Option<&str>| {
        let mut req = http
            .get(gw.mcp_url())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session);
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        req.send()
    };
    let mut stream = open(None).await.unwrap();
    let mut events = String::new();
    let toggle = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo__toggle_extra", "arguments": {}}})
    .to_string();
    // 40 changes, each seen on the stream before the next.
    let mut last_id = 0;
    for _ in 0..40 {
        let res = legacy(&http, &gw, Some(&session), toggle.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let event = loop {
            let event = next_event(&mut stream, &mut events).await;
            if event.contains("list_changed") {
                break event;
            }
        };
        last_id = event
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .parse()
            .unwrap();
    }
    drop(stream);
    assert!(last_id >= 40, "{last_id}");
    // Replay from the start: only the newest within 1 KiB.
    let mut resumed = open(Some("0")).await.unwrap();
    let mut replayed = Vec::new();
    events.clear();
    while replayed.last().map(|(id, _)| *id) != Some(last_id) {
        let event = next_event(&mut resumed, &mut events).await;
        let Some(id) = event.lines().find_map(|l| l.strip_prefix("id: ")) else {
            continue;
        };
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_default()
            .len();
        replayed.push((id.parse::<u64>().unwrap(), data));
    }
    let bytes: usize = replayed.iter().map(|(_, len)| len).sum();
    assert!(bytes <= 1024, "{bytes} bytes replayed: {replayed:?}");
    assert!(replayed[0].0 > 1, "nothing was let go: {replayed:?}");
    let ids: Vec<u64> = replayed.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (replayed[0].0..=last_id).collect();
    assert_eq!(ids, expected, "not the newest, in order");
}

/// A legacy `tools/list` request as one line of JSON.
fn tools_list(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string()
}

/// A modern `tools/list` through the lane: the gateway serves another
/// client.
async fn serves_another_client(http: &reqwest::Client, gw: &HttpGateway) {
    let answer = http
        .post(gw.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert!(body["result"]["tools"].is_array(), "{body}");
}

/// The attack of issue 17 on `/ws` (100,000 `tools/list` frames, never a
/// read; 422 MB before): the gateway stops reading the client at
/// `limits.max_in_flight`, and once more than `limits.max_queued_bytes`
/// (here 64 KiB) waits for it, disconnects it. RSS stays within 64 MiB and
/// another client is served throughout.
#[tokio::test]
async fn a_websocket_client_that_never_reads_is_disconnected() {
    use futures::SinkExt as _;
    use tokio_tungstenite::tungstenite::{Message as Ws, client::IntoClientRequest};
    init();
    let config = examples_config("", "limits:\n  max_queued_bytes: 65536\n");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let pid = gw.pid();
    let baseline = support::rss_kib(pid);
    let mut request = format!("{}/ws", gw.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    socket.send(Ws::text(init.to_string())).await.unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut cut_off = false;
    while sent < 100_000 && started.elapsed() < Duration::from_secs(30) {
        // A send that cannot go through within a second: the gateway
        // stopped reading (back-pressure), or the connection is gone.
        match tokio::time::timeout(
            Duration::from_secs(1),
            socket.send(Ws::text(tools_list(sent + 1))),
        )
        .await
        {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            Err(_) => {
                serves_another_client(&http, &gw).await;
                if gw.log().contains("Client disconnected: it does not read") {
                    cut_off = true;
                    break;
                }
            }
        }
        if sent.is_multiple_of(1000) {
            let grown = support::rss_kib(pid).saturating_sub(baseline);
            assert!(
                grown < 64 * 1024,
                "RSS grew by {grown} KiB after {sent} frames"
            );
            serves_another_client(&http, &gw).await;
        }
    }
    assert!(
        cut_off,
        "sent {sent} frames and still connected:\n{}",
        gw.log()
    );
    let grown = support::rss_kib(pid).saturating_sub(baseline);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert!(
        gw.log().contains("Client disconnected: it does not read"),
        "{}",
        gw.log()
    );
    serves_another_client(&http, &gw).await;
}

/// The same on HTTP+SSE (50,000 POSTs to `/messages` with the stream never
/// read; 216 MB before): once more than `limits.max_queued_bytes` (here
/// 64 KiB) waits for the stream, the session is cut off and its
/// `/messages` get 404. RSS stays within 64 MiB; another client is served.
#[tokio::test]
async fn an_sse_client_that_never_reads_is_disconnected() {
    use futures::StreamExt as _;
    init();
    let config = examples_config("", "limits:\n  max_queued_bytes: 65536\n");
    let gw = HttpGateway::start(&config.path);
    let http = client();
    let pid = gw.pid();
    let baseline = support::rss_kib(pid);
    let mut stream = http
        .get(format!("{}/sse", gw.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let endpoint = String::from_utf8_lossy(&stream.chunk().await.unwrap().unwrap()).into_owned();
    let messages = format!(
        "{}{}",
        gw.base,
        endpoint
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("{endpoint}"))
    );
    let post = |body: String| {
        http.post(&messages)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    assert_eq!(post(init.to_string()).await.unwrap().status(), 202);
    // From here the stream is never read.
    let mut statuses = futures::stream::iter(1..=50_000u64)
        .map(|id| {
            let post = &post;
            async move { post(tools_list(id)).await.unwrap().status().as_u16() }
        })
        .buffer_unordered(16);
    let mut posted = 0u64;
    let mut gone = false;
    while let Some(status) = statuses.next().await {
        posted += 1;
        if status == 404 {
            gone = true;
            break;
        }
        assert_eq!(status, 202);
        if posted.is_multiple_of(1000) {
            let grown = support::rss_kib(pid).saturating_sub(baseline);
            assert!(
                grown < 64 * 1024,
                "RSS grew by {grown} KiB after {posted} POSTs"
            );
            serves_another_client(&http, &gw).await;
        }
    }
    drop(statuses);
    assert!(gone, "{posted} POSTs and the session is still there");
    let grown = support::rss_kib(pid).saturating_sub(baseline);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert!(
        gw.log().contains("Client disconnected: it does not read"),
        "{}",
        gw.log()
    );
    serves_another_client(&http, &gw).await;
    drop(stream);
}

/// The stdio face with a client that writes 20,000 `tools/list` requests
/// and reads nothing: the answers wait for stdout (at most
/// `limits.max_queued_bytes`, here 64 KiB, queued), the requests wait at
/// `limits.max_in_flight` (here 16), and then the gateway reads no more
/// input, so the client's writes stop. RSS stays within 32 MiB; once the
/// client reads, every request is answered.
#[test]
fn a_stdio_client_that_stops_reading_is_held_back() {
    use std::io::{BufRead as _, Write as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    init();
    const REQUESTS: u64 = 20_000;
    let config = examples_config(
        "",
        "limits:\n  max_queued_bytes: 65536\n  max_in_flight: 16\n",
    );
    let mut gateway = support::RawStdio::start(&config.path);
    let child = &mut gateway.child;
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"result\""), "{line}");
    let baseline = support::rss_kib(pid);
    let written = std::sync::Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let writer = std::thread::spawn(move || {
        for id in 1..=REQUESTS {
            if writeln!(stdin, "{}", tools_list(id)).is_err() {
                return;
            }
            counter.store(id, Ordering::Relaxed);
        }
        drop(stdin);
    });
    // The client reads nothing until its writes stop going through.
    let started = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let grown = support::rss_kib(pid).saturating_sub(baseline);
        assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
        let now = written.load(Ordering::Relaxed);
        assert!(
            now < REQUESTS,
            "all {REQUESTS} requests were taken with nothing read"
        );
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never held back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // (About 1,500 here: the in-flight ones, and what the pipe and the
    // reader's buffer hold.)
    // Now it reads: every request is answered.
    let mut answered = 0;
    while answered < REQUESTS {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout ended");
        if line.contains("\"tools\"") {
            answered += 1;
        }
        if answered.is_multiple_of(5000) {
            let grown = support::rss_kib(pid).saturating_sub(baseline);
            assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
        }
    }
    writer.join().unwrap();
}
