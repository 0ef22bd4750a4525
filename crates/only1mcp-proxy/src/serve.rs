//! The gateway's stdio face: `only1mcp start --stdio`.
//!
//! Reads the client's messages from stdin (one per line, at most
//! [`MAX_DOWNSTREAM_LINE`] bytes), answers on stdout, logs only to stderr.
//! At most `limits.max_in_flight` requests are answered at once: at the
//! bound, stdin is not read until an answer is out, and answers wait for
//! stdout (at most `limits.max_queued_bytes` queued), so a client that
//! stops reading holds the gateway's memory to those bounds.
//! At end of input it waits for the requests in flight, then stops every
//! backend, so no child outlives the gateway.

use tokio::io::{AsyncBufRead, AsyncWrite};

use only1mcp_transport::downstream::{self, MAX_DOWNSTREAM_LINE};
use only1mcp_transport::framing::{Line, LineReader};

use crate::gateway::Gateway;
use crate::session::ClientSession;

/// Serves one client, with the tool view of context `profile`, over a
/// reader/writer pair until the reader ends or
/// `stop` resolves (a signal), then drains and returns. The caller shuts the
/// gateway down.
pub async fn serve_stdio<R, W>(
    gateway: &Gateway,
    profile: &str,
    reader: R,
    writer: W,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Bounded in bytes; a client that does not read stdout holds up the
    // writer, then the senders, then (at `limits.max_in_flight`) the reading
    // of its input.
    let max_queued = gateway.config().limits.max_queued_bytes;
    let (outbound, writer_task) = downstream::writer(writer, max_queued);
    let session = ClientSession::with_profile(gateway.clone(), Some(outbound), profile.into());
    session.set_origin(|| only1mcp_core::pipeline::Origin {
        transport: only1mcp_core::pipeline::Transport::Stdio,
        peer: None,
        session: None,
    });
    session.forward_list_changes();
    let mut lines = LineReader::new(reader, MAX_DOWNSTREAM_LINE);
    tokio::pin!(stop);
    let res = loop {
        let line = tokio::select! {
            // The line first: one already read costs no look at the signals
            // (tokio's budget still makes a busy reader yield to them).
            biased;
            line = lines.next_line() => line,
            () = &mut stop => break Ok(()),
        };
        match line {
            // At `limits.max_in_flight` this waits for an answer to go out,
            // reading nothing meanwhile; a stop does not wait for it.
            Ok(Some(Line::Data(bytes))) => tokio::select! {
                biased;
                () = session.handle_frame(&bytes) => {}
                () = &mut stop => break Ok(()),
            },
            Ok(Some(Line::TooLong { len, .. })) => {
                tracing::warn!(
                    len,
                    limit = MAX_DOWNSTREAM_LINE,
                    "Client message too large; rejected"
                );
                session.reject_oversized(MAX_DOWNSTREAM_LINE).await;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    tracing::info!("Client input ended; finishing requests in flight");
    session.drain().await;
    drop(session);
    // The writer ends once the last handle to the client is gone.
    let _ = writer_task.await;
    res
}
