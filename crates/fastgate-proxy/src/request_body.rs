//! Reading the client's request body: bounded in size and time.
//!
//! When a body runs over the limit, up to `DRAIN_MAX` more bytes are read and
//! discarded (for at most `DRAIN_TIME`) before the 413 goes out, so a client that
//! is still sending reads the answer instead of a connection reset. Anything
//! beyond that is cut off with the connection.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::ProxyError;

const DRAIN_MAX: u64 = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Read the whole body (at most `limit` bytes, within `timeout`).
pub async fn read_body(
    mut body: Body,
    content_length: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ProxyError> {
    if let Some(len) = content_length
        && len > limit as u64
    {
        if len <= limit as u64 + DRAIN_MAX {
            drain(body, DRAIN_MAX).await;
        }
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let deadline = Instant::now() + timeout;
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
    Ok(match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
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
