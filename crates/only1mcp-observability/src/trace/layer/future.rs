//! The future of a [`super::Trace`] call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use only1mcp_core::Error;
use only1mcp_core::pipeline::Reply;

use crate::trace::server::{record_error, record_outcome};

pin_project_lite::pin_project! {
    /// The inner call's future, and the client span it ends when traced.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        traced: Option<(tracing::Span, &'static str)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn untraced(inner: F) -> Self {
        Self {
            inner,
            traced: None,
        }
    }

    pub(super) fn traced(inner: F, span: tracing::Span, method: &'static str) -> Self {
        Self {
            inner,
            traced: Some((span, method)),
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Reply, Error>>,
{
    type Output = Result<Reply, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some((span, method)) = this.traced.as_ref() else {
            return this.inner.poll(cx);
        };
        let res = {
            let _entered = span.enter();
            std::task::ready!(this.inner.poll(cx))
        };
        match &res {
            Ok(reply) => record_outcome(span, method, &reply.outcome),
            Err(error) => record_error(span, error.jsonrpc_code(), &error.to_string()),
        }
        // The span ends here, with the call, not when the future is dropped.
        *this.traced = None;
        Poll::Ready(res)
    }
}
