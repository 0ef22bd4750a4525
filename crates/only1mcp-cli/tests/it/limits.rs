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
/// backends' own stop) although a client drips a body that would take the
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
    // 1 s of drain, up to 2 s for the backends to stop, and slack for a
    // loaded machine; without the bound, the drip alone holds it 30 s.
    assert!(
        took < Duration::from_secs(6),
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
