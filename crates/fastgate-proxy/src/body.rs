//! The response body handed to the client: the upstream body, frame by frame,
//! never buffered. It counts bytes and chunks, enforces the idle (between chunks)
//! and total deadlines, optionally copies a capped prefix for the audit log, and
//! closes the request's audit record exactly once — at the end of the stream, on
//! an upstream error, or when the client goes away (drop).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::context::{Outcome, RequestContext, capture_text};
use crate::metrics as m;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("upstream stream failed: {0}")]
    Upstream(#[from] hyper::Error),
    #[error("upstream sent nothing for {0:?}")]
    Idle(Duration),
    #[error("request exceeded its total time limit")]
    Total,
}

pub struct TrackedBody {
    inner: Incoming,
    ctx: Option<RequestContext>,
    outcome: Outcome,
    idle_limit: Duration,
    idle: Pin<Box<Sleep>>,
    total: Pin<Box<Sleep>>,
    capture: Option<(Vec<u8>, usize)>,
}

impl TrackedBody {
    pub fn new(
        inner: Incoming,
        ctx: RequestContext,
        outcome: Outcome,
        idle_limit: Duration,
        total_deadline: Instant,
        capture_max: Option<usize>,
    ) -> Self {
        if outcome.is_stream {
            metrics::gauge!(m::ACTIVE_STREAMS).increment(1.0);
        }
        Self {
            inner,
            ctx: Some(ctx),
            outcome,
            idle_limit,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            total: Box::pin(tokio::time::sleep_until(total_deadline)),
            capture: capture_max.map(|max| (Vec::new(), max)),
        }
    }

    fn finish(&mut self, error: Option<String>) {
        let Some(ctx) = self.ctx.take() else {
            return;
        };
        if self.outcome.is_stream {
            metrics::gauge!(m::ACTIVE_STREAMS).decrement(1.0);
        }
        let mut outcome = std::mem::take(&mut self.outcome);
        if outcome.error.is_none() {
            outcome.error = error;
        }
        if let Some((buf, max)) = self.capture.take() {
            outcome.response_body = Some(capture_text(&buf, max));
        }
        ctx.finish(outcome);
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = &mut *self;
        if this.ctx.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.outcome.chunks += 1;
                    this.outcome.response_bytes += data.len() as u64;
                    if let Some((buf, max)) = &mut this.capture {
                        let room = max.saturating_sub(buf.len());
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    let next = Instant::now() + this.idle_limit;
                    this.idle.as_mut().reset(next);
                }
                // With a known length the server may stop polling once the last
                // byte is out, so close the record as soon as the upstream is done.
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(format!("upstream stream failed: {e}")));
                Poll::Ready(Some(Err(StreamError::Upstream(e))))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.total.as_mut().poll(cx).is_ready() {
                    this.finish(Some(StreamError::Total.to_string()));
                    return Poll::Ready(Some(Err(StreamError::Total)));
                }
                ready!(this.idle.as_mut().poll(cx));
                let err = StreamError::Idle(this.idle_limit);
                this.finish(Some(err.to_string()));
                Poll::Ready(Some(Err(err)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ctx.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        // Still open: the client went away before the end. Dropping `inner`
        // right after closes the upstream connection, cancelling the request.
        if self.ctx.is_some() {
            self.finish(Some(
                "client disconnected before the response completed".into(),
            ));
        }
    }
}
