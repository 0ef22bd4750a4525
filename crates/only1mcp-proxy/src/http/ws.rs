//! WebSocket at `/ws` (subprotocol `mcp`): one JSON-RPC message per text
//! frame, as the TypeScript SDK's WebSocket client speaks it. A connection is
//! one session, like stdio.

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use only1mcp_transport::downstream::{OnFull, Outbound};

use super::HttpState;
use crate::session::ClientSession;

/// How much one read of the socket may take. tungstenite zero-fills this
/// much of its buffer before every read (128 KiB by default, which cost more
/// than the rest of a call); frames larger than this take several reads.
const READ_BUFFER: usize = 8 * 1024;

/// `GET /ws` with an upgrade.
pub(super) async fn upgrade(
    State(state): State<HttpState>,
    axum::Extension(caller): axum::Extension<super::authn::Caller>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = state.inner.max_body;
    ws.protocols(["mcp"])
        .max_message_size(max)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(state, caller, socket))
}

async fn serve(state: HttpState, caller: super::authn::Caller, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (outbound, mut rx) = Outbound::channel(state.inner.max_queued_bytes, OnFull::Disconnect);
    let overflowed = rx.overflowed();
    // Whatever is queued goes out in one write: the frames are fed, then
    // flushed once. A client that takes nothing for `http.read_timeout`
    // fails the write (the connection's stall bound); one whose queue
    // overflows is cut off at once.
    let mut writer = tokio::spawn(async move {
        let writing = async {
            'writing: while let Some(bytes) = rx.recv().await {
                let mut next = Some(bytes);
                while let Some(bytes) = next.take() {
                    if sink.feed(text_frame(bytes)).await.is_err() {
                        break 'writing;
                    }
                    next = rx.try_recv();
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        };
        tokio::select! {
            () = writing => {}
            () = overflowed => {}
        }
    });
    let session = ClientSession::with_principal(
        state.inner.gateway.clone(),
        Some(outbound),
        only1mcp_core::config::ContextConfig::DEFAULT_PROFILE.into(),
        caller.0,
    );
    session.set_origin(|| only1mcp_core::pipeline::Origin {
        transport: only1mcp_core::pipeline::Transport::WebSocket,
        peer: None,
        session: None,
    });
    session.forward_list_changes();
    let shutdown = state.inner.shutdown.clone();
    tracing::info!("WebSocket session opened");
    let mut written = false;
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break,
            // The client is gone or cut off: nothing it sends is read.
            _ = &mut writer, if !written => {
                written = true;
                break;
            }
            frame = stream.next() => frame,
        };
        // At `limits.max_in_flight` this waits for an answer to go out,
        // reading nothing meanwhile.
        match frame {
            Some(Ok(WsMessage::Text(text))) => session.handle_frame(text.as_bytes()).await,
            Some(Ok(WsMessage::Binary(bytes))) => session.handle_frame(&bytes).await,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
        }
    }
    drop(stream);
    session.drain().await;
    drop(session);
    if !written {
        let _ = writer.await;
    }
    tracing::info!("WebSocket session closed");
}

/// A text frame of a serialized message (always UTF-8; the lossy path only
/// guards the type).
fn text_frame(bytes: Vec<u8>) -> WsMessage {
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    WsMessage::Text(text.into())
}
