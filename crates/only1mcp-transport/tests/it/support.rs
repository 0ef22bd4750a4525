//! What the tests share: the peers (real MCP servers started as processes),
//! a recording HTTP proxy to see what the transports put on the wire, and
//! small helpers to call a connection and watch its events.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use only1mcp_core::jsonrpc::Outcome;
use only1mcp_core::mcp::{self, Implementation};
use only1mcp_core::upstream::{Call, Events, UpstreamEvent};
use only1mcp_transport::handshake::ClientIdentity;
use only1mcp_transport::network::AnyConnection;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tower::ServiceExt;

/// How long any single step may take before the test fails.
pub(crate) const STEP: Duration = Duration::from_secs(20);

/// Where `cargo xtask peers` installed the npm and PyPI peers.
pub(crate) fn peers() -> PathBuf {
    let dir = std::env::var_os("ONLY1MCP_PEERS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers"),
        PathBuf::from,
    );
    assert!(
        dir.join("venv").exists() && dir.join("node").exists(),
        "the MCP peers are not installed in {}: run `cargo xtask peers` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped.
#[derive(Debug)]
pub(crate) struct Peer {
    child: Child,
    /// The port it serves on (127.0.0.1).
    pub(crate) port: u16,
}

impl Peer {
    /// Starts `program args` with `env`, then waits until it accepts
    /// connections on `port`.
    pub(crate) async fn start(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        port: u16,
    ) -> Self {
        #[allow(
            clippy::disallowed_methods,
            reason = "tests start real MCP servers as peers"
        )]
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut peer = Self { child, port };
        peer.wait_ready().await;
        peer
    }

    /// `mcp-server-everything <mode>` (`streamableHttp` or `sse`) on a free
    /// port. It is legacy-only and binds every interface.
    pub(crate) async fn everything(mode: &str) -> Self {
        Self::everything_on(mode, free_port()).await
    }

    /// `mcp-server-everything <mode>` on `port`.
    pub(crate) async fn everything_on(mode: &str, port: u16) -> Self {
        let program = peers().join("node/node_modules/.bin/mcp-server-everything");
        Self::start(&program, &[mode], &[("PORT", &port.to_string())], port).await
    }

    /// The Python SDK fixture `modern_server.py` (dual-era) with
    /// `transport` (`streamable-http` or `sse`) on `port`.
    pub(crate) async fn python_on(transport: &str, port: u16) -> Self {
        let program = peers().join("venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/modern_server.py");
        let script = script.to_str().unwrap().to_owned();
        Self::start(
            &program,
            &[&script, &port.to_string(), transport],
            &[],
            port,
        )
        .await
    }

    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the peer exited before serving: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the peer did not open port {} in time",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process and waits for it.
    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The gateway's identity towards the backends in these tests.
pub(crate) fn identity() -> ClientIdentity {
    ClientIdentity::new(
        &Implementation {
            name: "only1mcp-transport-tests".into(),
            version: "0.0.0".into(),
            title: None,
        },
        &json!({}),
    )
}

/// Modern params: `params` with the 2026-07-28 `_meta` keys added.
pub(crate) fn modern(params: &Value) -> Value {
    let identity = identity();
    let raw = serde_json::value::to_raw_value(params).unwrap();
    let params = mcp::modern_params(Some(&raw), &identity.capabilities, &identity.info).unwrap();
    serde_json::from_str(params.unwrap().get()).unwrap()
}

/// Calls `method` with `params` and returns the outcome (a JSON-RPC error is
/// `Err` inside); a transport error fails the test.
pub(crate) async fn call(connection: &AnyConnection, method: &str, params: Value) -> Outcome {
    let params = serde_json::value::to_raw_value(&params).unwrap();
    let future = connection.clone().oneshot(Call::new(method, Some(params)));
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{method} timed out"))
        .unwrap_or_else(|e| panic!("{method} failed: {e}"))
}

/// Calls `method` and returns its result as JSON; an error fails the test.
pub(crate) async fn result(connection: &AnyConnection, method: &str, params: Value) -> Value {
    match call(connection, method, params).await {
        Ok(result) => serde_json::from_str(result.get()).unwrap(),
        Err(error) => panic!("{method} answered an error: {error:?}"),
    }
}

/// The first text content of a `tools/call` result.
pub(crate) fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// The tool names of a `tools/list` result.
pub(crate) fn tool_names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads events until one satisfies `wanted` (returned), failing the test
/// after `within`.
pub(crate) async fn next_event(
    events: &mut Events,
    within: Duration,
    mut wanted: impl FnMut(&UpstreamEvent) -> bool,
) -> UpstreamEvent {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Some(event) if wanted(&event) => return event,
                Some(UpstreamEvent::Closed) => panic!("the events ended before the expected one"),
                Some(_) => {}
                None => panic!("the event stream ended without Closed"),
            }
        }
    })
    .await
    .expect("the expected event did not arrive in time")
}

/// The params of a notification event as JSON, if it is `method`.
pub(crate) fn notification(event: &UpstreamEvent, method: &str) -> Option<Value> {
    match event {
        UpstreamEvent::Notification(note) if note.method == method => Some(
            note.params
                .as_ref()
                .map_or(Value::Null, |p| serde_json::from_str(p.get()).unwrap()),
        ),
        _ => None,
    }
}

/// The `ESTABLISHED` state in `/proc/net/tcp`.
pub(crate) const ESTABLISHED: u8 = 1;

/// The TCP sockets of connections to or from port `port`, from
/// `/proc/net/tcp` and `/proc/net/tcp6`: (local port, remote port, state as
/// in the kernel's `tcp_states.h`).
pub(crate) fn sockets_of(port: u16) -> Vec<(u16, u16, u8)> {
    // IPv4 connections to a server bound to `::` show as IPv4-mapped IPv6.
    let table = ["/proc/net/tcp", "/proc/net/tcp6"]
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .concat();
    let port_of = |address: &str| {
        address
            .split_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = port_of(fields.get(1)?)?;
            let remote = port_of(fields.get(2)?)?;
            let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            (local == port || remote == port).then_some((local, remote, state))
        })
        .collect()
}

/// Whether the server on `127.0.0.1:port` has closed a connection (first):
/// its side of one is in FIN_WAIT1, FIN_WAIT2 or TIME_WAIT, or the client's
/// side in CLOSE_WAIT or LAST_ACK (`/proc/net/tcp`). Only the side that
/// closes first goes through FIN_WAIT and TIME_WAIT.
pub(crate) fn server_closed_a_connection(port: u16) -> bool {
    const FIN_WAIT1: u8 = 4;
    const FIN_WAIT2: u8 = 5;
    const TIME_WAIT: u8 = 6;
    const CLOSE_WAIT: u8 = 8;
    const LAST_ACK: u8 = 9;
    sockets_of(port).iter().any(|&(local, remote, state)| {
        (local == port && matches!(state, FIN_WAIT1 | FIN_WAIT2 | TIME_WAIT))
            || (remote == port && matches!(state, CLOSE_WAIT | LAST_ACK))
    })
}

/// Waits until [`server_closed_a_connection`] holds; fails the test after
/// `within`, listing the port's sockets.
pub(crate) async fn wait_until_server_closed_a_connection(port: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while !server_closed_a_connection(port) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection to port {port} closed by the server within {within:?}: {:?}",
            sockets_of(port)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, polling; fails the test after `within`.
pub(crate) async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request that went through the [`Recorder`].
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The HTTP method.
    pub(crate) method: Method,
    /// The path and query.
    pub(crate) target: String,
    /// The request headers.
    pub(crate) headers: HeaderMap,
    /// The body, parsed as JSON (`Null` if empty or not JSON).
    pub(crate) body: Value,
}

impl Recorded {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC method of a POSTed message.
    pub(crate) fn rpc_method(&self) -> Option<&str> {
        self.body["method"].as_str()
    }
}

/// A transparent HTTP proxy in front of a peer that records every request,
/// so tests can check what the transports send (headers, cancellations,
/// the closing DELETE). Responses, event streams included, are passed
/// through as they arrive.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Where the proxy listens.
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<Vec<(Method, StatusCode)>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<Vec<(Method, StatusCode)>>>,
}

impl Recorder {
    /// A recorder forwarding to `http://127.0.0.1:{port}`.
    pub(crate) async fn start(port: u16) -> Self {
        // reqwest is built without a TLS provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ProxyState {
            upstream: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder().build().unwrap(),
            log: log.clone(),
            answers: answers.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            log,
            answers,
            task,
        }
    }

    /// The proxy's URL for `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything recorded so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// The statuses the peer answered requests of `method` with so far (an
    /// event stream counts once its head arrived), in order.
    pub(crate) fn answered(&self, method: &Method) -> Vec<StatusCode> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, status)| *status)
            .collect()
    }

    /// The POSTed JSON-RPC messages with `method`.
    pub(crate) fn posts(&self, method: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == Method::POST && r.rpc_method() == Some(method))
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    state.log.lock().unwrap().push(Recorded {
        method: parts.method.clone(),
        target: target.clone(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let mut upstream = state
        .client
        .request(parts.method.clone(), format!("{}{target}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.send().await else {
        return Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .unwrap();
    };
    state
        .answers
        .lock()
        .unwrap()
        .push((parts.method.clone(), answer.status()));
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap()
}
