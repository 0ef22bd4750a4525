//! `https` and `wss` backends with a private CA: the stand-in of the
//! WebSocket tests served over TLS (ring), with the test certificates in
//! `certs/`. Without the extra CA the handshake must fail.

use std::path::{Path, PathBuf};

use axum::http::Version;
use axum_server::tls_rustls::RustlsConfig;
use only1mcp_core::Error;
use only1mcp_core::config::UrlTransport;
use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::Call;
use only1mcp_transport::handshake;
use only1mcp_transport::network::{self, NetworkSpec};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{self, STEP, result, text};
use crate::ws::{Shared, stand_in};

fn cert(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/certs")
        .join(name)
}

/// Serves the stand-in over TLS on 127.0.0.1; returns its port.
async fn start_tls() -> (u16, Shared, axum_server::Handle<std::net::SocketAddr>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(cert("server.pem"), cert("server.key"))
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Shared::default();
    let app = stand_in(seen.clone());
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(async move { server.serve(app.into_make_service()).await.unwrap() });
    (port, seen, handle)
}

fn spec(url: String, transport: UrlTransport, with_ca: bool) -> NetworkSpec {
    let mut spec = NetworkSpec::new("tls", url, transport);
    spec.extra_ca = with_ca.then(|| cert("ca.pem"));
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_an_extra_ca_speaks_http2() {
    let (port, seen, handle) = start_tls().await;
    let url = format!("https://localhost:{port}/mcp");
    let (connection, _events) =
        network::connect(&spec(url.clone(), UrlTransport::StreamableHttp, true))
            .await
            .unwrap();
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "tls"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: tls");
    assert_eq!(seen.lock().unwrap().version, Some(Version::HTTP_2));

    // The same server is not trusted without the CA.
    let (untrusted, _events) = network::connect(&spec(url, UrlTransport::StreamableHttp, false))
        .await
        .unwrap();
    let error = untrusted
        .oneshot(Call::new("tools/list", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("certificate")),
        "{error:?}"
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_with_an_extra_ca() {
    let (port, _seen, handle) = start_tls().await;
    let url = format!("wss://localhost:{port}/mcp");
    let (connection, _events) = network::connect(&spec(url.clone(), UrlTransport::Websocket, true))
        .await
        .unwrap();
    let mut upstream = connection.clone();
    let established = handshake::establish("tls", &mut upstream, &support::identity(), STEP, STEP)
        .await
        .unwrap();
    assert_eq!(established.era, Era::Legacy);
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "wss"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: wss");

    let error = network::connect(&spec(url, UrlTransport::Websocket, false))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&error, Error::UpstreamUnavailable { reason, .. } if reason.contains("certificate")),
        "{error:?}"
    );
    handle.shutdown();
}
