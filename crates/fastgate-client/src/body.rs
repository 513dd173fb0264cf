//! One exchange on a connection, driven by the calling task, and the answer's
//! body, which reads the connection while it is read itself.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWrite;

use crate::RequestBody;
use crate::error::WireError;
use crate::h1::{self, Decoded, Decoder, Head};
use crate::pool::{Conn, Pool};

/// Send `req` on `conn` and read the answer's head. On failure, the request
/// comes back when it provably never left (not one byte was written).
/// (Connections are boxed so that moving one, in and out of the pool and into
/// the body, copies a pointer.)
pub(crate) async fn exchange(
    mut conn: Box<Conn>,
    req: Request<RequestBody>,
    pool: &Arc<Pool>,
    slot: usize,
) -> Result<Response<ResponseBody>, (WireError, Option<Request<RequestBody>>)> {
    let body = full_bytes(req.body());
    let head = h1::encode_head(&req, body.len());
    let mut keep_alive = !h1::wants_close(&req);
    let method = req.method().clone();
    let mut sent = 0;
    let written = poll_fn(|cx| poll_send(&mut conn, cx, &head, &body, &mut sent, &method)).await;
    drop(head);
    let answer = match written {
        Ok(Sent::All) => poll_fn(|cx| poll_head(&mut conn, cx, &method)).await,
        // The upstream answered before taking the whole body (a 413, say):
        // that answer stands, and the connection ends with it.
        Ok(Sent::AnsweredEarly(answer)) => {
            keep_alive = false;
            Ok(answer)
        }
        Err(e) => return Err((e.into(), (sent == 0).then_some(req))),
    };
    let Head {
        response,
        body: decoder,
        keep_alive: reusable,
    } = answer.map_err(|e| (e, None))?;
    Ok(response.map(|()| ResponseBody {
        conn: Some(conn),
        decoder,
        keep_alive: keep_alive && reusable,
        pool: Arc::clone(pool),
        slot,
        failed: None,
    }))
}

/// The bytes of a request body known in full (taken from a clone: the request
/// stays whole, to be sent again on another connection if this one fails).
fn full_bytes(body: &RequestBody) -> Bytes {
    let mut body = body.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Bytes::new();
    // `Full` yields its one data frame at once, and nothing after it.
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out = data;
        }
    }
    out
}

enum Sent {
    All,
    AnsweredEarly(Head),
}

/// Write head and body (vectored while the head is not all out), then flush.
/// While the upstream does not take more, see whether it answered already.
fn poll_send(
    conn: &mut Conn,
    cx: &mut Context<'_>,
    head: &[u8],
    body: &[u8],
    sent: &mut usize,
    method: &Method,
) -> Poll<io::Result<Sent>> {
    while *sent < head.len() + body.len() {
        let written = if *sent < head.len() {
            let bufs = [IoSlice::new(&head[*sent..]), IoSlice::new(body)];
            Pin::new(&mut conn.io).poll_write_vectored(cx, &bufs)
        } else {
            Pin::new(&mut conn.io).poll_write(cx, &body[*sent - head.len()..])
        };
        match written {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => *sent += n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                return match early_answer(conn, cx, method) {
                    Some(head) => Poll::Ready(Ok(Sent::AnsweredEarly(head))),
                    None => Poll::Pending,
                };
            }
        }
    }
    ready!(Pin::new(&mut conn.io).poll_flush(cx))?;
    Poll::Ready(Ok(Sent::All))
}

/// A complete answer head the upstream sent while the request was still
/// being written. A read error is left for the write to report.
fn early_answer(conn: &mut Conn, cx: &mut Context<'_>, method: &Method) -> Option<Head> {
    loop {
        match conn.poll_fill(cx) {
            Poll::Ready(Ok(n)) if n > 0 => match h1::parse_head(&mut conn.read_buf, method) {
                Ok(Some(head)) => return Some(head),
                Ok(None) => {}
                // Not an answer (or one too large): the write reports the failure.
                Err(_) => return None,
            },
            _ => return None,
        }
    }
}

/// Read until the answer's head is complete.
fn poll_head(
    conn: &mut Conn,
    cx: &mut Context<'_>,
    method: &Method,
) -> Poll<Result<Head, WireError>> {
    loop {
        if let Some(head) = h1::parse_head(&mut conn.read_buf, method)? {
            return Poll::Ready(Ok(head));
        }
        if ready!(conn.poll_fill(cx))? == 0 {
            return Poll::Ready(Err(WireError::Incomplete));
        }
    }
}

/// An upstream answer's body. Reading it reads its connection; read to its
/// end, the connection goes back to the pool (when the answer allows another
/// request on it). Dropped before its end, it closes the connection (the
/// upstream stops working on an answer nobody reads).
///
/// An error (the upstream reset the connection mid-answer) is held back for
/// one poll, which returns `Pending` after asking to be polled again: a server
/// writing the body flushes what it holds when the body is pending, but drops
/// it when the body fails. Chunks that arrived together with the reset would
/// otherwise never reach the client, nor the answer's head.
pub struct ResponseBody {
    conn: Option<Box<Conn>>,
    decoder: Decoder,
    keep_alive: bool,
    pool: Arc<Pool>,
    slot: usize,
    failed: Option<WireError>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("decoder", &self.decoder)
            .field("connection", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    /// The body is complete: the connection goes back to the pool if it can
    /// carry another request.
    fn finish(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && self.keep_alive
            && conn.is_reusable()
        {
            self.pool.checkin(self.slot, conn);
        }
    }

    fn fail(
        &mut self,
        e: WireError,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        self.conn = None;
        self.failed = Some(e);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = WireError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WireError>>> {
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let decoded = match this.decoder.decode(&mut conn.read_buf) {
                Ok(Decoded::NeedMore) => match conn.poll_fill(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(0)) => {
                        // Only a body delimited by the connection's end may end here.
                        this.keep_alive = false;
                        this.decoder.at_eof()
                    }
                    Poll::Ready(Ok(_)) => continue,
                    Poll::Ready(Err(e)) => Err(WireError::Body(e)),
                },
                other => other,
            };
            return match decoded {
                Ok(Decoded::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Decoded::Trailers(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Ok(Decoded::End) => {
                    this.finish();
                    Poll::Ready(None)
                }
                Ok(Decoded::NeedMore) => continue,
                Err(e) => this.fail(e, cx),
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && (self.conn.is_none() || self.decoder.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.exact_len() {
            Some(n) if self.failed.is_none() => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.decoder.is_done() {
            self.finish();
        }
    }
}
