//! The HTTP listener: accepts connections (capped), serves HTTP/1.1 and h2 with
//! hyper-util, refuses ambiguous request framing before anything else sees the
//! request, closes connections that stay silent, and drains on shutdown.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use fastgate_config::Config;
use fastgate_proxy::{AppState, ClientProtocol, ConnAbort, PeerAddr, ProxyError};
use http::header::{self, HeaderValue};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serve until `cancel` fires, then let open connections finish within the grace period.
///
/// Requests for paths the router has no route for ([`fastgate_admin::routed_by_router`])
/// go straight to the proxy handler, its fallback, with `state` (the router's own).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    config: Config,
    cancel: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(config.server.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let idle = config.server.idle_timeout;
    let write_timeout = config.server.write_timeout;
    // Fired when the shutdown grace period is over: cut what is still running.
    let abort = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let state = state.clone();
        let conn_abort = ConnAbort::default();
        let signal = conn_abort.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            req.extensions_mut().insert(signal.clone());
            let router = router.clone();
            let state = state.clone();
            async move {
                if let Some(reason) = bad_framing(req.headers()) {
                    return Ok(framing_error(reason));
                }
                if fastgate_admin::routed_by_router(req.uri().path()) {
                    return router.oneshot(req).await;
                }
                let req = req.map(axum::body::Body::new);
                // Boxed, as the router boxed it: hyper keeps the service's future in a
                // box made once per connection and sized for it, so the handler's
                // future inline would hold its several kB for the life of every
                // connection, an open stream's too (33 kB per stream instead of 27).
                Ok(Box::pin(fastgate_proxy::proxy_handler(State(state), req)).await)
            }
        });
        let builder = Arc::clone(&builder);
        let signals = ConnSignals {
            cancel: cancel.clone(),
            abort: abort.clone(),
            conn_abort,
        };
        tracker.spawn(async move {
            let io = ActivityIo::new(stream, write_timeout, signals.conn_abort.clone());
            serve_connection(&builder, io, service, idle, signals).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let grace = config.server.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            ?grace,
            "shutdown grace period over; aborting the requests still running"
        );
        abort.cancel();
        // Dropping a connection closes its audit records at once; this only
        // waits for the tasks to notice.
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    }
}

/// How the server tells one connection to stop.
struct ConnSignals {
    /// Graceful: finish the current exchange, then close.
    cancel: CancellationToken,
    /// Immediate: the shutdown grace period is over.
    abort: CancellationToken,
    /// Why the connection was cut, seen by its requests.
    conn_abort: ConnAbort,
}

async fn serve_connection<S>(
    builder: &Builder<TokioExecutor>,
    io: ActivityIo,
    service: S,
    idle: Duration,
    signals: ConnSignals,
) where
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::clone(&io.activity);
    let io = TokioIo::new(io);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // The first check is one idle period from now (awaiting an immediate first
    // tick would put a timer round-trip, about a millisecond, before the first read).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + idle, idle);
    let mut last_seen = 0u64;
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = signals.cancel.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = signals.abort.cancelled() => {
                // Dropping the connection drops its responses: their upstream
                // requests are cancelled and their audit records closed.
                signals.conn_abort.shut_down();
                return;
            }
            _ = tick.tick(), if !closing => {
                let now = activity.load(Ordering::Relaxed);
                if now == last_seen {
                    // Silent for a whole idle period: stop after the current exchange.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                last_seen = now;
            }
        }
    }
}

/// Request framing that HTTP/1.1 parsers disagree on is refused outright
/// (request smuggling): Content-Length together with Transfer-Encoding, or any
/// Transfer-Encoding other than plain `chunked`.
fn bad_framing(headers: &http::HeaderMap) -> Option<&'static str> {
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if te.is_empty() {
        return None;
    }
    if headers.contains_key(header::CONTENT_LENGTH) {
        return Some("both Content-Length and Transfer-Encoding are present");
    }
    let plain_chunked = te.len() == 1 && te[0].as_bytes().eq_ignore_ascii_case(b"chunked");
    (!plain_chunked).then_some("unsupported Transfer-Encoding")
}

fn framing_error(reason: &'static str) -> Response {
    let mut resp = ProxyError::BadHeader(reason.to_string()).to_response(ClientProtocol::OpenAi);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp.into_response()
}

/// The TCP stream, counting every read and write so the idle watchdog can tell
/// a silent connection from a busy one, and failing a write the client has not
/// accepted a byte of for `write_timeout` (a client that stopped reading).
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
    write_timeout: Duration,
    /// Armed while a write is blocked; created on the first block only.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    conn_abort: ConnAbort,
}

impl ActivityIo {
    fn new(inner: TcpStream, write_timeout: Duration, conn_abort: ConnAbort) -> Self {
        Self {
            inner,
            activity: Arc::new(AtomicU64::new(0)),
            write_timeout,
            stall: None,
            stalled: false,
            conn_abort,
        }
    }

    /// Count progress; on a blocked write, start (or check) the stall clock.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match result {
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.write_timeout;
                if !self.stalled {
                    self.stalled = true;
                    match &mut self.stall {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => self.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                if let Some(sleep) = &mut self.stall
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    self.conn_abort.write_timed_out();
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client accepted no byte within the write timeout",
                    )));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(n)) if n > 0 => {
                self.stalled = false;
                self.activity.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn framing_rules() {
        assert_eq!(bad_framing(&headers(&[("content-length", "4")])), None);
        assert_eq!(
            bad_framing(&headers(&[("transfer-encoding", "chunked")])),
            None
        );
        assert!(
            bad_framing(&headers(&[
                ("transfer-encoding", "chunked"),
                ("content-length", "4")
            ]))
            .is_some()
        );
        assert!(bad_framing(&headers(&[("transfer-encoding", "gzip, chunked")])).is_some());
        assert!(
            bad_framing(&headers(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]))
            .is_some()
        );
    }
}
