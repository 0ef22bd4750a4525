//! DNS-rebinding protection on every route and every HTTP version path: a
//! request naming a foreign host (`Host`, or HTTP/2's `:authority`) or coming
//! from a foreign `Origin` is refused with 403 before it reaches anything.
//!
//! The check runs in three places, and each has its own test here:
//! - the HTTP/1.1 lane (`http::lane`), for `POST /mcp` with a
//!   `Content-Length` body;
//! - `Face::handle`, for `POST /mcp` that hyper serves: a chunked body over
//!   HTTP/1.1, h2c, and both versions over TLS;
//! - the router's layer (`http::guard::check`), for every other route:
//!   `GET`/`DELETE /mcp`, `POST /mcp/{profile}`, `/sse`, `/messages`, `/ws`.
//!
//! "Nothing reached a backend" is read from the admin API's request count of
//! the `echo` server, which each refused request would have called.

use std::net::SocketAddr;

use only1mcp_test_support::{self as support, HttpGateway, examples_config};
use serde_json::{Value, json};

use crate::init;

const FOREIGN: &str = "evil.example";
const FOREIGN_ORIGIN: &str = "http://evil.example";
const MODERN: &str = "2026-07-28";

/// How a request leaves the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Plain HTTP/1.1.
    H1,
    /// Plain HTTP/2 with prior knowledge.
    H2c,
    /// HTTPS, HTTP/1.1.
    TlsH1,
    /// HTTPS, HTTP/2 (ALPN).
    TlsH2,
}

impl Path {
    fn version(self) -> reqwest::Version {
        match self {
            Self::H1 | Self::TlsH1 => reqwest::Version::HTTP_11,
            Self::H2c | Self::TlsH2 => reqwest::Version::HTTP_2,
        }
    }
}

/// What is foreign about a request.
#[derive(Debug, Clone, Copy)]
enum Foreign {
    /// The host it names (`Host` over HTTP/1.1, `:authority` over HTTP/2).
    Host,
    /// Its `Origin`.
    Origin,
}

const BOTH: [Foreign; 2] = [Foreign::Host, Foreign::Origin];

/// A gateway on the example servers, plain or TLS, and a client for one
/// path that resolves [`FOREIGN`] to it.
struct Target {
    gw: HttpGateway,
    _config: support::ConfigDir,
    _tls: Option<tempfile::TempDir>,
    ca: Option<reqwest::Certificate>,
    addr: SocketAddr,
}

impl Target {
    fn plain() -> Self {
        init();
        let config = examples_config("", "");
        let gw = HttpGateway::start(&config.path);
        Self::new(gw, config, None, None)
    }

    /// HTTPS ([`tls_config`]).
    fn tls() -> Self {
        init();
        let (dir, top, ca) = tls_config();
        let config = examples_config("", &top);
        let gw = HttpGateway::start(&config.path);
        assert!(gw.base.starts_with("https://"), "{}", gw.base);
        Self::new(gw, config, Some(dir), Some(ca))
    }

    fn new(
        gw: HttpGateway,
        config: support::ConfigDir,
        tls: Option<tempfile::TempDir>,
        ca: Option<reqwest::Certificate>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = gw.base.split_once("://").unwrap().1.parse().unwrap();
        Self {
            gw,
            _config: config,
            _tls: tls,
            ca,
            addr,
        }
    }

    fn scheme(&self) -> &'static str {
        if self.ca.is_some() { "https" } else { "http" }
    }

    /// A client for `path`.
    fn client(&self, path: Path) -> reqwest::Client {
        let builder = reqwest::Client::builder().resolve(FOREIGN, self.addr);
        let builder = match (path, &self.ca) {
            (Path::H1, None) => builder.http1_only(),
            (Path::H2c, None) => builder.http2_prior_knowledge(),
            (Path::TlsH1, Some(ca)) => builder.tls_certs_only([ca.clone()]).http1_only(),
            (Path::TlsH2, Some(ca)) => builder.tls_certs_only([ca.clone()]),
            other => panic!("no client for {other:?}"),
        };
        builder.build().unwrap()
    }

    /// The URL of `route` (a path and query), naming the gateway by
    /// address, or by the foreign name when the host is what is foreign.
    fn url(&self, route: &str, foreign: Foreign) -> String {
        let port = self.addr.port();
        match foreign {
            Foreign::Host => format!("{}://{FOREIGN}:{port}{route}", self.scheme()),
            Foreign::Origin => format!("{}://127.0.0.1:{port}{route}", self.scheme()),
        }
    }

    /// A request to `route`, foreign as `foreign` says.
    fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        route: &str,
        foreign: Foreign,
    ) -> reqwest::RequestBuilder {
        let req = http.request(method, self.url(route, foreign));
        match foreign {
            Foreign::Host => req,
            Foreign::Origin => req.header("origin", FOREIGN_ORIGIN),
        }
    }

    /// How many requests the `echo` backend has been sent.
    async fn echo_requests(&self) -> u64 {
        let servers: Value = reqwest::Client::new()
            .get(format!("{}/servers", self.gw.admin_url()))
            .bearer_auth(self.gw.admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let echo = servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "echo")
            .unwrap_or_else(|| panic!("{servers}"));
        echo["requests"].as_u64().unwrap()
    }
}

/// HTTPS files for a gateway: a leaf certificate for `localhost`,
/// `127.0.0.1` and [`FOREIGN`] (so the foreign name gets past TLS and
/// reaches the guard), signed by a test CA. Returns their directory, the
/// `http.tls` config lines, and the CA to trust.
pub(crate) fn tls_config() -> (tempfile::TempDir, String, reqwest::Certificate) {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names = ["localhost", "127.0.0.1", FOREIGN].map(str::to_owned);
    let leaf = rcgen::CertificateParams::new(names.to_vec())
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
    let top = format!(
        "http:\n  tls:\n    cert: {}\n    key: {}\n",
        support::quote(&dir.path().join("cert.pem")),
        support::quote(&dir.path().join("key.pem"))
    );
    let ca = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
    (dir, top, ca)
}

/// A modern `tools/call` of `echo__echo`: it reaches the echo backend if it
/// is let through.
fn echo_call() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "echo__echo", "arguments": {"text": "reached"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {}
        }
    }})
    .to_string()
}

/// The headers of a modern `tools/call` of `echo__echo`.
fn modern_headers(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo__echo")
}

/// Sends `req`; `None` if it was refused with 403 and a JSON-RPC error over
/// `path`'s version, else what happened instead.
async fn let_through(req: reqwest::RequestBuilder, path: Path, what: &str) -> Option<String> {
    let res = match req.send().await {
        Ok(res) => res,
        Err(e) => return Some(format!("{what} over {path:?}: {e}")),
    };
    // (The status first: a stream let through would never end.)
    if res.status() != 403 || res.version() != path.version() {
        return Some(format!(
            "{what} over {path:?}: {} over {:?}",
            res.status(),
            res.version()
        ));
    }
    let body: Value = res.json().await.unwrap();
    (body["error"]["code"] != -32600).then(|| format!("{what} over {path:?}: {body}"))
}

/// A control request on the same path reaches the backend: the count
/// moves, so its standing still elsewhere means something.
async fn assert_reaches(target: &Target, req: reqwest::RequestBuilder) {
    let before = target.echo_requests().await;
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("reached"), "{text}");
    assert_eq!(target.echo_requests().await, before + 1);
}

/// The lane answers HTTP/1.1 `POST /mcp` with a `Content-Length` body
/// itself: a foreign Host or Origin gets 403 there and never reaches the
/// backend. Fails when the lane's `guard::refusal` call is removed.
#[tokio::test]
async fn the_http1_lane_refuses_foreign_hosts_and_origins() {
    let target = Target::plain();
    let http = target.client(Path::H1);
    let before = target.echo_requests().await;
    let mut failures = Vec::new();
    for foreign in BOTH {
        let req = target.request(&http, reqwest::Method::POST, "/mcp", foreign);
        let req = modern_headers(req).body(echo_call());
        failures.extend(let_through(req, Path::H1, &format!("lane POST /mcp, {foreign:?}")).await);
    }
    assert!(failures.is_empty(), "let through: {failures:#?}");
    assert_eq!(target.echo_requests().await, before, "a refused call ran");
    let good = http
        .post(format!("{}/mcp", target.gw.base))
        .body(echo_call());
    assert_reaches(&target, modern_headers(good)).await;
}

/// A `POST /mcp` body that streams (chunked), so the lane hands the
/// connection to hyper.
fn chunked_echo_call() -> reqwest::Body {
    let chunks = [Ok::<_, std::io::Error>(echo_call())];
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// `POST /mcp` that hyper serves goes to `Face::handle` without the
/// router: a chunked body over HTTP/1.1 (handed over by the lane), h2c, and
/// HTTPS over both versions. Fails when `Face::handle`'s guard is removed.
#[tokio::test]
async fn post_mcp_through_hyper_refuses_foreign_hosts_and_origins() {
    let plain = Target::plain();
    let tls = Target::tls();
    let mut failures = Vec::new();
    for (target, path) in [
        (&plain, Path::H1),
        (&plain, Path::H2c),
        (&tls, Path::TlsH1),
        (&tls, Path::TlsH2),
    ] {
        let http = target.client(path);
        let before = target.echo_requests().await;
        for foreign in BOTH {
            let req = target.request(&http, reqwest::Method::POST, "/mcp", foreign);
            let req = modern_headers(req);
            let req = if path == Path::H1 {
                req.body(chunked_echo_call())
            } else {
                req.body(echo_call())
            };
            failures.extend(let_through(req, path, &format!("POST /mcp, {foreign:?}")).await);
        }
        if !failures.is_empty() {
            continue;
        }
        assert_eq!(target.echo_requests().await, before, "{path:?}: a call ran");
        let good = http.post(target.url("/mcp", Foreign::Origin));
        let good = if path == Path::H1 {
            good.body(chunked_echo_call())
        } else {
            good.body(echo_call())
        };
        assert_reaches(target, modern_headers(good)).await;
    }
    assert!(failures.is_empty(), "let through: {failures:#?}");
}

/// The sessions the other routes need, opened with good headers.
struct Sessions {
    /// A legacy Streamable HTTP session.
    legacy: String,
    /// An initialized HTTP+SSE session, its stream held open.
    sse: String,
    _sse_stream: reqwest::Response,
}

impl Sessions {
    async fn open(target: &Target, http: &reqwest::Client) -> Self {
        let url = |route: &str| target.url(route, Foreign::Origin);
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "it", "version": "1"}}});
        let res = http
            .post(url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let legacy = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let mut stream = http
            .get(url("/sse"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let mut text = String::new();
        let sse = loop {
            let chunk = stream.chunk().await.unwrap().expect("the SSE stream ended");
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(at) = text.find("sessionId=") {
                let rest = &text[at + "sessionId=".len()..];
                if let Some(end) = rest.find(['\n', '\r']) {
                    break rest[..end].to_owned();
                }
            }
        };
        let messages = format!("/messages?sessionId={sse}");
        for message in [
            init,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ] {
            let res = http
                .post(url(&messages))
                .header("content-type", "application/json")
                .body(message.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
        }
        Self {
            legacy,
            sse,
            _sse_stream: stream,
        }
    }
}

/// Every route but `POST /mcp` goes through the router, whose layer checks
/// Host and Origin: `GET` and `DELETE /mcp` of a live session, `POST
/// /mcp/{profile}`, `GET /sse`, `POST /messages` of a live session, and the
/// WebSocket upgrade at `/ws`, over plain HTTP/1.1, h2c and HTTPS. Fails
/// when the router's `guard::check` layer is removed.
#[tokio::test]
async fn every_other_route_refuses_foreign_hosts_and_origins() {
    use reqwest::Method;
    let plain = Target::plain();
    let tls = Target::tls();
    let mut failures = Vec::new();
    for (target, path) in [
        (&plain, Path::H1),
        (&plain, Path::H2c),
        (&tls, Path::TlsH1),
        (&tls, Path::TlsH2),
    ] {
        let http = target.client(path);
        let sessions = Sessions::open(target, &http).await;
        let before = target.echo_requests().await;
        let legacy_call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"text": "reached"}}})
        .to_string();
        let messages = format!("/messages?sessionId={}", sessions.sse);
        for foreign in BOTH {
            let at = |method: Method, route: &str| target.request(&http, method, route, foreign);
            let cases = [
                (
                    "GET /mcp",
                    at(Method::GET, "/mcp")
                        .header("accept", "text/event-stream")
                        .header("mcp-session-id", &sessions.legacy),
                ),
                (
                    "DELETE /mcp",
                    at(Method::DELETE, "/mcp").header("mcp-session-id", &sessions.legacy),
                ),
                (
                    "POST /mcp/default",
                    modern_headers(at(Method::POST, "/mcp/default")).body(echo_call()),
                ),
                (
                    "GET /sse",
                    at(Method::GET, "/sse").header("accept", "text/event-stream"),
                ),
                (
                    "POST /messages",
                    at(Method::POST, &messages)
                        .header("content-type", "application/json")
                        .body(legacy_call.clone()),
                ),
                (
                    "GET /ws",
                    at(Method::GET, "/ws")
                        .header("connection", "upgrade")
                        .header("upgrade", "websocket")
                        .header("sec-websocket-version", "13")
                        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                        .header("sec-websocket-protocol", "mcp"),
                ),
            ];
            for (what, req) in cases {
                failures.extend(let_through(req, path, &format!("{what}, {foreign:?}")).await);
            }
        }
        if !failures.is_empty() {
            continue;
        }
        assert_eq!(target.echo_requests().await, before, "{path:?}: a call ran");
        // The refused DELETE ended nothing: the legacy session still answers.
        let res = http
            .post(target.url("/mcp", Foreign::Origin))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &sessions.legacy)
            .header("mcp-protocol-version", "2025-11-25")
            .body(legacy_call.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path:?}");
        assert!(res.text().await.unwrap().contains("reached"));
        assert_eq!(target.echo_requests().await, before + 1);
        // And a good POST /mcp/{profile} reaches the backend.
        let good = http
            .post(target.url("/mcp/default", Foreign::Origin))
            .body(echo_call());
        assert_reaches(target, modern_headers(good)).await;
    }
    assert!(failures.is_empty(), "let through: {failures:#?}");
}

/// Sends raw HTTP/1.1 bytes and returns the status of the answer.
async fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(support::WAIT, tcp.read(&mut head))
        .await
        .expect("no answer")
        .unwrap();
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap()
}

/// An HTTP/1.1 request must name its host exactly once (400 otherwise,
/// RFC 9112 §3.2), and a second `Origin` is refused (403) even when the
/// first is a good one: on the lane (a `Content-Length` body) and on hyper
/// (chunked).
#[tokio::test]
async fn missing_or_repeated_hosts_and_repeated_origins_are_refused() {
    let target = Target::plain();
    let before = target.echo_requests().await;
    let body = echo_call();
    let addr = target.addr;
    let headers = format!(
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: {MODERN}\r\nMcp-Method: tools/call\r\nMcp-Name: echo__echo\r\n"
    );
    let lane = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\n{headers}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let hyper = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\n{headers}{extra}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    let host = format!("Host: {addr}\r\n");
    let cases = [
        ("no Host", String::new(), 400),
        ("two Hosts", format!("{host}Host: {FOREIGN}\r\n"), 400),
        ("two good Hosts", format!("{host}{host}"), 400),
        (
            "two Origins",
            format!("{host}Origin: http://localhost\r\nOrigin: {FOREIGN_ORIGIN}\r\n"),
            403,
        ),
    ];
    for (what, extra, status) in cases {
        assert_eq!(
            raw_status(addr, &lane(&extra)).await,
            status,
            "lane, {what}"
        );
        assert_eq!(
            raw_status(addr, &hyper(&extra)).await,
            status,
            "hyper, {what}"
        );
    }
    assert_eq!(target.echo_requests().await, before, "a refused call ran");
    // The same requests with one good Host reach the backend.
    for request in [lane(&host), hyper(&host)] {
        assert_eq!(raw_status(addr, &request).await, 200);
    }
    assert_eq!(target.echo_requests().await, before + 2);
}
