//! The audit layer of the call pipeline: one `call` record per call a
//! client makes to a backend.
//!
//! It sits outermost among the gateway's own layers, so it sees every
//! refusal of the layers inside it: [`Error::Concealed`] (the role check:
//! the client is answered as for an unknown name, the record says `deny`
//! and why), [`Error::Denied`] (`deny`) and [`Error::RateLimited`]
//! (`limit`). A call whose caller went
//! away before the answer (a cancel, a closed stream) is recorded with the
//! code -32800 (request cancelled) when its future is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use only1mcp_core::Error;
use only1mcp_core::pipeline::{ClientRequest, Reply, Routed};
use serde_json::value::RawValue;
use tower_layer::Layer;
use tower_service::Service;

use super::{Auditor, Decision, Event, Kind, Outcome};

/// The code recorded for a call whose caller went away first (the MCP
/// "request cancelled" code).
const CANCELLED: i64 = -32800;

/// Records every call through it with an [`Auditor`].
#[derive(Debug, Clone)]
pub struct AuditLayer {
    auditor: Auditor,
}

impl AuditLayer {
    /// A layer recording with `auditor`.
    pub fn new(auditor: Auditor) -> Self {
        Self { auditor }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Audit<S> {
        Audit {
            inner,
            auditor: self.auditor.clone(),
        }
    }
}

/// The service of [`AuditLayer`].
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    auditor: Auditor,
}

impl<S> Service<Routed> for Audit<S>
where
    S: Service<Routed, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> Self::Future {
        let event = self.describe(&routed);
        let call = self.inner.call(routed);
        let mut pending = Pending {
            event: Some(Box::new(event)),
            auditor: self.auditor.clone(),
            began: Instant::now(),
        };
        Box::pin(async move {
            let res = call.await;
            pending.finish(&res);
            res
        })
    }
}

impl<S> Audit<S> {
    /// The record of `routed`, before it is answered.
    fn describe(&self, routed: &Routed) -> Event {
        let mut event = Event::new(Kind::Call);
        event.principal = routed.principal.as_ref().map(|p| p.subject.clone());
        event.method = Some(routed.method().to_owned());
        event.server = Some(routed.server().to_owned());
        event.target = routed.exposed.as_deref().map(str::to_owned);
        if let Some(request) = routed.extensions.get::<ClientRequest>() {
            event.request_id.clone_from(&request.id);
            if let Some(origin) = &request.origin {
                event.transport = Some(origin.transport.as_str());
                event.client = origin.peer.map(|peer| peer.to_string());
                event.session.clone_from(&origin.session);
            }
        }
        if let Some(params) = routed.call.params.as_deref() {
            event.trace_id = trace_id(params);
            if routed.method() == "tools/call"
                && let Some(arguments) = self.auditor.arguments()
            {
                event.arguments = arguments.apply(params);
            }
        }
        event
    }
}

/// A call's record until it is answered; recorded as cancelled if dropped
/// first.
struct Pending {
    event: Option<Box<Event>>,
    auditor: Auditor,
    began: Instant,
}

impl Pending {
    fn finish(&mut self, res: &Result<Reply, Error>) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        event.duration_ms = Some(self.began.elapsed());
        let (decision, outcome, code, detail) = classify(res);
        event.decision = Some(decision);
        event.outcome = Some(outcome);
        event.code = code;
        event.detail = detail;
        self.auditor.record(*event);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.duration_ms = Some(self.began.elapsed());
            event.decision = Some(Decision::Allow);
            event.outcome = Some(Outcome::Error);
            event.code = Some(CANCELLED);
            event.detail = Some("the caller went away before the answer".to_owned());
            self.auditor.record(*event);
        }
    }
}

/// What the record says of an answer.
fn classify(res: &Result<Reply, Error>) -> (Decision, Outcome, Option<i64>, Option<String>) {
    match res {
        Ok(reply) => match &reply.outcome {
            Ok(result) if is_tool_error(result) => {
                (Decision::Allow, Outcome::ToolError, None, None)
            }
            Ok(_) => (Decision::Allow, Outcome::Ok, None, None),
            Err(error) => (Decision::Allow, Outcome::Error, Some(error.code), None),
        },
        // A refusal the client sees as an unknown name (ADR 0016): the
        // record says why, which the client is never told.
        Err(Error::Concealed { shown, reason }) => (
            Decision::Deny,
            Outcome::Error,
            Some(shown.jsonrpc_code()),
            Some(reason.clone()),
        ),
        Err(error) => {
            let decision = match error {
                Error::Denied { .. } => Decision::Deny,
                Error::RateLimited { .. } => Decision::Limit,
                _ => Decision::Allow,
            };
            (
                decision,
                Outcome::Error,
                Some(error.jsonrpc_code()),
                Some(error.to_string()),
            )
        }
    }
}

/// Whether a `tools/call` result is flagged `isError: true` (a scan of the
/// text, no parse).
fn is_tool_error(result: &RawValue) -> bool {
    let text = result.get();
    let Some(at) = text.find("\"isError\"") else {
        return false;
    };
    text[at + 9..]
        .trim_start()
        .strip_prefix(':')
        .is_some_and(|rest| rest.trim_start().starts_with("true"))
}

/// The trace id of `_meta.traceparent` (`00-<trace id>-<span id>-<flags>`),
/// read only when the params mention one.
fn trace_id(params: &RawValue) -> Option<String> {
    if !params.get().contains("traceparent") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        traceparent: Option<String>,
    }
    let parent = serde_json::from_str::<Params>(params.get())
        .ok()?
        .meta?
        .traceparent?;
    let id = parent.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}
