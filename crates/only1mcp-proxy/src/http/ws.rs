//! WebSocket at `/ws` (subprotocol `mcp`): one JSON-RPC message per text
//! frame, as the TypeScript SDK's WebSocket client speaks it. A connection is
//! one session, like stdio.

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use only1mcp_transport::downstream::Outbound;

use super::HttpState;
use crate::session::ClientSession;

/// `GET /ws` with an upgrade.
pub(super) async fn upgrade(State(state): State<HttpState>, ws: WebSocketUpgrade) -> Response {
    let max = state.inner.max_body;
    ws.protocols(["mcp"])
        .max_message_size(max)
        .on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: HttpState, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (outbound, mut rx) = Outbound::channel(256);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let session = ClientSession::new(state.inner.gateway.clone(), Some(outbound));
    session.forward_list_changes();
    let shutdown = state.inner.shutdown.clone();
    tracing::info!("WebSocket session opened");
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break,
            frame = stream.next() => frame,
        };
        match frame {
            Some(Ok(WsMessage::Text(text))) => session.handle_frame(text.as_bytes()).await,
            Some(Ok(WsMessage::Binary(bytes))) => session.handle_frame(&bytes).await,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
        }
    }
    session.drain().await;
    drop(session);
    let _ = writer.await;
    tracing::info!("WebSocket session closed");
}
