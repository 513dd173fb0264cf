//! Reading the client's request body: bounded in size and time.
//!
//! When a body runs over the limit, up to `DRAIN_MAX` more bytes are read and
//! discarded (for at most `DRAIN_TIME`) before the 413 goes out, so a client that
//! is still sending reads the answer instead of a connection reset. Anything
//! beyond that is cut off with the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::ProxyError;

const DRAIN_MAX: u64 = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// What one request body may take.
pub struct BodyLimits {
    /// Largest body of one request.
    pub max_bytes: usize,
    /// Time allowed to receive it.
    pub timeout: Duration,
    /// Body bytes all in-flight requests may hold together.
    pub inflight_max: usize,
}

/// Request body bytes held by in-flight requests, shared by all of them (one
/// atomic counter, never a lock).
#[derive(Debug, Default)]
pub struct BodyBudget {
    used: Arc<AtomicUsize>,
}

impl BodyBudget {
    /// Bytes currently held.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn permit(&self) -> BodyPermit {
        BodyPermit {
            used: Arc::clone(&self.used),
            bytes: 0,
        }
    }
}

/// Bytes one request holds of the [`BodyBudget`]; given back on drop.
#[derive(Debug)]
pub struct BodyPermit {
    used: Arc<AtomicUsize>,
    bytes: usize,
}

impl BodyPermit {
    /// Take `n` more bytes, unless that would pass `max`.
    fn grow(&mut self, n: usize, max: usize) -> Result<(), ProxyError> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > max {
            self.used.fetch_sub(n, Ordering::Relaxed);
            return Err(ProxyError::Overloaded {
                retry_after_secs: 1,
            });
        }
        self.bytes += n;
        Ok(())
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.used.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// Read the whole body (bounded in size and time), holding its bytes in the
/// shared budget: a known length is reserved before the first byte is read, a
/// chunked body as it arrives. Over the budget: 503 (the body is not read).
pub async fn read_body(
    mut body: Body,
    content_length: Option<u64>,
    limits: &BodyLimits,
    budget: &BodyBudget,
) -> Result<(Bytes, Option<BodyPermit>), ProxyError> {
    let limit = limits.max_bytes;
    if let Some(len) = content_length
        && len > limit as u64
    {
        if len <= limit as u64 + DRAIN_MAX {
            drain(body, DRAIN_MAX).await;
        }
        return Err(ProxyError::BodyTooLarge { limit });
    }
    if content_length == Some(0) || (content_length.is_none() && body.is_end_stream()) {
        return Ok((Bytes::new(), None));
    }
    let mut permit = budget.permit();
    let reserved = content_length.map_or(0, |len| len as usize);
    permit.grow(reserved, limits.inflight_max)?;
    let deadline = Instant::now() + limits.timeout;
    // Most bodies arrive as one frame: keep it without copying.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ProxyError::BodyTimeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(ProxyError::BodyRead(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > limit {
            drain(body, DRAIN_MAX).await;
            return Err(ProxyError::BodyTooLarge { limit });
        }
        if total > reserved.max(permit.bytes) {
            permit.grow(total - reserved.max(permit.bytes), limits.inflight_max)?;
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut buf =
                    BytesMut::with_capacity(content_length.map_or(f.len() * 2, |l| l as usize));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    let bytes = match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    };
    Ok((bytes, Some(permit)))
}

/// Read and discard up to `max` bytes, for at most `DRAIN_TIME`.
async fn drain(mut body: Body, max: u64) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut drained = 0u64;
    while drained < max {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                drained += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}
