//! The response body handed to the client: the upstream body, frame by frame,
//! never buffered. It counts bytes and chunks, enforces the idle (between chunks)
//! and total deadlines, optionally copies a capped prefix for the audit log, and
//! closes the request's audit record exactly once — at the end of the stream, on
//! an upstream error, or when the client goes away (drop).
//!
//! LLM streams carry a `StreamProcessor` that re-frames events as they arrive
//! (translation, usage chunk stripping) and reads usage on the side; a stream
//! that breaks then ends with a terminal error event in the client's protocol.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use fastgate_llm::StreamProcessor;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::context::{Outcome, RequestContext, capture_text};
use crate::llm::accounting::LlmAccounting;
use crate::metrics as m;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("upstream stream failed: {0}")]
    Upstream(BoxError),
    #[error("upstream sent nothing for {0:?}")]
    Idle(Duration),
    #[error("request exceeded its total time limit")]
    Total,
}

/// Per-stream LLM work: the processor and what is needed to account usage.
pub struct LlmStream {
    pub processor: Box<dyn StreamProcessor>,
    pub accounting: LlmAccounting,
}

pub struct TrackedBody<B> {
    inner: B,
    ctx: Option<RequestContext>,
    outcome: Outcome,
    idle_limit: Duration,
    /// When the upstream last sent something (the idle limit counts from here).
    last_frame: Instant,
    total_deadline: Instant,
    /// One timer for both limits, set to whichever comes first; created only
    /// when the upstream makes the body wait (a body that is ready when polled,
    /// as most non-streamed answers are, never arms one).
    timer: Option<Pin<Box<Sleep>>>,
    capture: Option<(Vec<u8>, usize)>,
    llm: Option<Box<LlmStream>>,
    /// Set once the final frame (processor flush or error event) was produced.
    done: bool,
}

impl<B> TrackedBody<B> {
    pub fn new(
        inner: B,
        ctx: RequestContext,
        outcome: Outcome,
        idle_limit: Duration,
        total_deadline: Instant,
        capture_max: Option<usize>,
    ) -> Self {
        if outcome.is_stream {
            m::global().active_streams.increment(1.0);
        }
        Self {
            inner,
            ctx: Some(ctx),
            outcome,
            idle_limit,
            last_frame: Instant::now(),
            total_deadline,
            timer: None,
            capture: capture_max.map(|max| (Vec::new(), max)),
            llm: None,
            done: false,
        }
    }

    pub fn with_llm(mut self, llm: LlmStream) -> Self {
        self.llm = Some(Box::new(llm));
        self
    }

    fn finish(&mut self, error: Option<String>) {
        let Some(ctx) = self.ctx.take() else {
            return;
        };
        if self.outcome.is_stream {
            m::global().active_streams.decrement(1.0);
        }
        let mut outcome = std::mem::take(&mut self.outcome);
        if outcome.error.is_none() {
            outcome.error = error;
        }
        if let Some(llm) = &self.llm {
            outcome.usage = Some(llm.accounting.usage_for_stream(llm.processor.as_ref()));
            if ctx.audit.bodies {
                outcome.response_body = llm
                    .processor
                    .merged()
                    .map(|v| capture_text(v.to_string().as_bytes(), ctx.audit.body_max_bytes));
            }
        }
        if let Some((buf, max)) = self.capture.take()
            && outcome.response_body.is_none()
        {
            outcome.response_body = Some(capture_text(&buf, max));
        }
        ctx.finish(outcome);
    }

    fn count(&mut self, data: &[u8]) {
        self.outcome.chunks += 1;
        self.outcome.response_bytes += data.len() as u64;
        if let Some((buf, max)) = &mut self.capture {
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    /// Ready once the idle or the total limit is reached (whichever is first).
    /// The timer is not moved on every chunk: when it fires before the limit
    /// (chunks came meanwhile, so the idle limit moved on), it is set again to
    /// the limit. A stream then re-arms it about once per idle period rather
    /// than once per chunk. The limit only moves later, so it never fires late.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let due = (self.last_frame + self.idle_limit).min(self.total_deadline);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            ready!(timer.as_mut().poll(cx));
            if timer.deadline() >= due {
                return Poll::Ready(());
            }
            timer.as_mut().reset(due);
        }
    }

    /// The upstream broke: LLM streams get a terminal error event; others an error.
    fn fail(&mut self, err: StreamError) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let message = err.to_string();
        let event = self.llm.as_mut().map(|l| l.processor.error_event(&message));
        if let Some(bytes) = &event {
            self.outcome.response_bytes += bytes.len() as u64;
        }
        self.finish(Some(message));
        self.done = true;
        match event {
            Some(bytes) if !bytes.is_empty() => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Some(_) => Poll::Ready(None),
            None => Poll::Ready(Some(Err(err))),
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = &mut *self;
        loop {
            if this.done || this.ctx.is_none() && this.llm.is_none() {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let now = Instant::now();
                    // An upstream that never pauses is held to the total limit too.
                    if now >= this.total_deadline {
                        return this.fail(StreamError::Total);
                    }
                    this.last_frame = now;
                    let frame = match frame.into_data() {
                        Ok(data) => data,
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    };
                    let out = match &mut this.llm {
                        None => frame,
                        // Nothing to change: forward our own bytes, read them on the side.
                        Some(llm) if llm.processor.passthrough_unchanged() => {
                            match llm.processor.observe(&frame) {
                                Ok(()) => frame,
                                Err(e) => return this.fail(StreamError::Upstream(Box::new(e))),
                            }
                        }
                        Some(llm) => match llm.processor.feed(&frame) {
                            Ok(out) => out,
                            Err(e) => return this.fail(StreamError::Upstream(Box::new(e))),
                        },
                    };
                    if out.is_empty() {
                        continue;
                    }
                    this.count(&out);
                    // With a known length the server may stop polling once the last
                    // byte is out, so close the record as soon as the upstream is done.
                    if this.llm.is_none() && this.inner.is_end_stream() {
                        this.finish(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Some(Err(e))) => return this.fail(StreamError::Upstream(e.into())),
                Poll::Ready(None) => {
                    let tail = match &mut this.llm {
                        Some(llm) => llm.processor.finish(),
                        None => Ok(Bytes::new()),
                    };
                    let tail = match tail {
                        Ok(t) => t,
                        Err(e) => return this.fail(StreamError::Upstream(Box::new(e))),
                    };
                    if !tail.is_empty() {
                        this.count(&tail);
                    }
                    this.finish(None);
                    this.done = true;
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
                Poll::Pending => {
                    ready!(this.poll_timer(cx));
                    if Instant::now() >= this.total_deadline {
                        return this.fail(StreamError::Total);
                    }
                    let limit = this.idle_limit;
                    return this.fail(StreamError::Idle(limit));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.llm.is_none() && (self.ctx.is_none() || self.inner.is_end_stream()))
    }

    fn size_hint(&self) -> SizeHint {
        if self.llm.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        // Still open: the client went away before the end. Dropping `inner`
        // right after closes the upstream connection, cancelling the request.
        if let Some(ctx) = &self.ctx {
            let reason = ctx
                .conn_abort
                .as_ref()
                .and_then(|a| a.reason())
                .unwrap_or("client disconnected before the response completed");
            self.finish(Some(reason.into()));
        }
    }
}
