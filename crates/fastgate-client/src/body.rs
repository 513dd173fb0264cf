//! One exchange on a connection the calling task drives, and the answer's
//! body, which goes on driving it while it is read.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::RequestBody;
use crate::pool::{Conn, Pool, drive};

/// Send `req` on `conn`, driving the connection until the answer's head is
/// in. On failure, the request comes back when it provably never left.
/// (Connections are boxed so that moving one, in and out of the pool and into
/// the body, copies a pointer, not hyper's connection state.)
pub(crate) async fn exchange(
    mut conn: Box<Conn>,
    req: Request<RequestBody>,
    pool: &Arc<Pool>,
    slot: usize,
) -> Result<Response<ResponseBody>, (hyper::Error, Option<Request<RequestBody>>)> {
    let mut finished = false;
    let answer = {
        let Conn { sender, driver, .. } = &mut *conn;
        let mut sent = pin!(sender.try_send_request(req));
        poll_fn(|cx| {
            if !finished && drive(driver, cx) {
                // The pending request is answered with the connection's error.
                finished = true;
            }
            sent.as_mut().poll(cx)
        })
        .await
    };
    match answer {
        Ok(resp) => Ok(resp.map(|body| ResponseBody {
            body,
            conn: (!finished).then_some(conn),
            pool: Arc::clone(pool),
            slot,
            ended: false,
            failed: None,
        })),
        Err(mut e) => {
            let unsent = e.take_message();
            Err((e.into_error(), unsent))
        }
    }
}

/// An upstream answer's body. Reading it drives its connection; once read to
/// the end (and dropped), the connection goes back to the pool. Dropped
/// before its end, it closes the connection.
///
/// An error (the upstream reset the connection mid-answer) is held back for
/// one poll, which returns `Pending` after asking to be polled again: a server
/// writing the body flushes what it holds when the body is pending, but drops
/// it when the body fails. Chunks that arrived together with the reset would
/// otherwise never reach the client, nor the answer's head.
pub struct ResponseBody {
    body: Incoming,
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
    slot: usize,
    ended: bool,
    failed: Option<hyper::Error>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.ended)
            .field("connection", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

fn poll_body(
    body: &mut Incoming,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    let frame = Pin::new(body).poll_frame(cx);
    if let Poll::Ready(None) = frame {
        *ended = true;
    }
    frame
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let frame = match this.conn.as_mut() {
            // The connection is gone: its channel holds what is left.
            None => poll_body(&mut this.body, &mut this.ended, cx),
            Some(conn) => {
                // What the connection already handed over comes first; only
                // then is the socket read (the body asks for more when empty).
                match poll_body(&mut this.body, &mut this.ended, cx) {
                    Poll::Ready(frame) => Poll::Ready(frame),
                    Poll::Pending => {
                        if drive(&mut conn.driver, cx) {
                            this.conn = None;
                        }
                        poll_body(&mut this.body, &mut this.ended, cx)
                    }
                }
            }
        };
        match frame {
            Poll::Ready(Some(Err(e))) => {
                this.failed = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if (self.ended || self.body.is_end_stream()) && conn.is_reusable() {
            self.pool.checkin(self.slot, conn);
        }
    }
}
