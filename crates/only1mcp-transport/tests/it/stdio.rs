//! A stdio backend behind [`AnyConnection`]: the proxy's one connection type
//! serves child processes as well.

use std::collections::BTreeMap;
use std::sync::Arc;

use only1mcp_core::mcp::Era;
use only1mcp_core::upstream::UpstreamEvent;
use only1mcp_transport::network::AnyConnection;
use only1mcp_transport::{handshake, stdio};
use serde_json::json;

use crate::support::{self, STEP, next_event, result, text};

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_backend_works_as_any_connection() {
    let server: Arc<str> = "ev-stdio".into();
    let spec = stdio::Spec {
        server: server.clone(),
        command: support::peers()
            .join("node/node_modules/.bin/mcp-server-everything")
            .to_str()
            .unwrap()
            .to_owned(),
        args: vec!["stdio".to_owned()],
        env: BTreeMap::new(),
        cwd: None,
        max_log_line: 16 * 1024,
    };
    let mut child = stdio::spawn(&spec).unwrap();
    let (connection, mut events) = stdio::Connection::start(&server, &mut child);
    let mut connection = AnyConnection::from(connection);
    assert_eq!(connection.server().as_ref(), "ev-stdio");

    let established = handshake::establish(
        "ev-stdio",
        &mut connection,
        &support::identity(),
        STEP,
        STEP,
    )
    .await
    .unwrap();
    assert_eq!(established.era, Era::Legacy);
    let echo = result(
        &connection,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    )
    .await;
    assert_eq!(text(&echo), "Echo: hi");

    let ended = child.stop(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        ended,
        stdio::Ended::Exited,
        "it exits when its stdin closes"
    );
    next_event(&mut events, STEP, |e| matches!(e, UpstreamEvent::Closed)).await;
}

/// Dropping the connection closes the child's stdin, so a server that exits
/// on EOF (as MCP servers do) stops by itself. `cat` stands in for one: it
/// exits exactly when its input ends.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_connection_closes_the_backends_stdin() {
    let server: Arc<str> = "cat".into();
    let spec = stdio::Spec {
        server: server.clone(),
        command: "cat".to_owned(),
        args: vec![],
        env: BTreeMap::new(),
        cwd: None,
        max_log_line: 16 * 1024,
    };
    let mut child = stdio::spawn(&spec).unwrap();
    let (connection, _events) = stdio::Connection::start(&server, &mut child);
    // A message through the writer task's queue, then the drop.
    use only1mcp_core::upstream::Upstream;
    connection
        .send(only1mcp_core::jsonrpc::Message::Notification(
            only1mcp_core::jsonrpc::Notification {
                method: "notifications/initialized".to_owned(),
                params: None,
            },
        ))
        .unwrap();
    drop(connection);
    let exited = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await;
    assert_eq!(
        exited.as_deref(),
        Ok("exit status: 0"),
        "cat did not see EOF"
    );
}
