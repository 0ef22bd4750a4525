//! The metrics layer of the call pipeline: times each call and records it
//! in its series, by server, method and exposed name, with its error type.
//!
//! The gateway puts it outside every other call layer (the audit layer
//! aside), so a call refused by a layer inside it (denied, rate limited,
//! circuit open) is counted with that error type. A call whose future is dropped before it ends (the client
//! cancelled, or went away) is not recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use only1mcp_core::Error;
use only1mcp_core::mcp::method;
use only1mcp_core::pipeline::{Reply, Routed};
use tower_layer::Layer;
use tower_service::Service;

use super::Metrics;
use super::labels;
use super::series::Series;

/// Wraps a call service in [`Metered`].
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    /// The layer recording into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A call service whose calls are timed and counted.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Metered<S> {
    /// The service it wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Metrics {
    /// Starts timing `routed`: what [`Metered`] does for each call, for a
    /// caller that makes the call itself.
    #[inline]
    pub fn track(&self, routed: &Routed) -> Tracker {
        let method_idx = labels::method_idx(routed.method());
        let table = self.inner.table.load();
        let series = table
            .lookup(routed.server(), method_idx, routed.exposed.as_deref())
            .cloned();
        Tracker {
            series,
            tool: routed.method() == method::TOOLS_CALL,
            start: Instant::now(),
        }
    }
}

/// One call being timed.
#[derive(Debug)]
#[must_use = "a call is recorded when it is finished"]
pub struct Tracker {
    series: Option<Arc<Series>>,
    tool: bool,
    start: Instant,
}

impl Tracker {
    /// Records the call as ended with `res`.
    #[inline]
    pub fn finish(self, res: &Result<Reply, Error>) {
        let Some(series) = self.series else {
            return;
        };
        let error_idx = match res {
            Ok(reply) => labels::outcome_idx(&reply.outcome, self.tool),
            Err(error) => labels::error_idx(error),
        };
        series.record(error_idx, self.start.elapsed());
    }
}

impl<S> Service<Routed> for Metered<S>
where
    S: Service<Routed, Response = Reply, Error = Error>,
{
    type Response = Reply;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, routed: Routed) -> Self::Future {
        let tracker = self.metrics.track(&routed);
        ResponseFuture {
            inner: self.inner.call(routed),
            tracker: Some(tracker),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Metered`] call.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        tracker: Option<Tracker>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Reply, Error>>,
{
    type Output = Result<Reply, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        if let Some(tracker) = this.tracker.take() {
            tracker.finish(&res);
        }
        Poll::Ready(res)
    }
}
