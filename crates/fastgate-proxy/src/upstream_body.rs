//! The body of an upstream answer, with what was read ahead of the relay put
//! back in front: rules may look at the start of an error answer (its status
//! and message decide what happens to the credential) before the client gets
//! the answer unchanged. Success bodies and streams are never read ahead.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::client::ResponseBody;

/// Most of an error answer read for rule matching.
pub const PEEK_LIMIT: usize = 64 * 1024;

pub struct UpstreamBody {
    ahead: VecDeque<Frame<Bytes>>,
    rest: Option<ResponseBody>,
}

impl UpstreamBody {
    /// The answer body as it comes, nothing read ahead.
    pub fn new(body: ResponseBody) -> Self {
        Self {
            ahead: VecDeque::new(),
            rest: Some(body),
        }
    }

    /// Read up to [`PEEK_LIMIT`] bytes of the body (each read waiting at most
    /// `idle`), returning them and the whole body to relay. A body that fails
    /// or stalls while read ahead ends the relay there, as it would have anyway.
    pub async fn peek(body: ResponseBody, idle: Duration) -> (Bytes, Self) {
        let mut this = Self::new(body);
        let mut seen = BytesMut::new();
        while seen.len() < PEEK_LIMIT {
            let Some(rest) = this.rest.as_mut() else {
                break;
            };
            match tokio::time::timeout(idle, rest.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        let room = PEEK_LIMIT - seen.len();
                        seen.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    this.ahead.push_back(frame);
                }
                Ok(None) => this.rest = None,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "upstream error body failed while read for rules");
                    this.rest = None;
                }
                Err(_) => {
                    tracing::debug!("upstream error body stalled while read for rules");
                    this.rest = None;
                }
            }
        }
        (seen.freeze(), this)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = crate::client::WireError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::client::WireError>>> {
        if let Some(frame) = self.ahead.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let ahead: u64 = self
            .ahead
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        match &self.rest {
            None => SizeHint::with_exact(ahead),
            Some(rest) => {
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + ahead);
                if let Some(upper) = h.upper() {
                    out.set_upper(upper + ahead);
                }
                out
            }
        }
    }
}
