//! The HTTP/1.1 server: accept loop, per-request behaviour and chunked streams.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::openai::{self, ChatRequest};
use crate::vertex::Vertex;
use crate::{MockReply, RecordedRequest, Shared, lock};
use crate::{anthropic, azure, gemini, vertex};

type Body = BoxBody<Bytes, io::Error>;

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug)]
struct MockAbort;

impl std::fmt::Display for MockAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock upstream aborted the connection")
    }
}

impl std::error::Error for MockAbort {}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                shared.bump(&shared.connections);
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "mock upstream accept failed");
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let kill = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(KillableIo {
        inner: stream,
        kill: kill.clone(),
    });
    let svc_shared = shared.clone();
    let svc = service_fn(move |req| handle(req, svc_shared.clone(), kill.clone()));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, svc);
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "mock upstream connection ended");
            }
        }
        () = shared.shutdown.cancelled() => {}
    }
}

/// The TCP stream; when dropped with `kill` set, it closes with SO_LINGER 0 (RST).
struct KillableIo {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl Drop for KillableIo {
    fn drop(&mut self) {
        if self.kill.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// One request being answered.
struct Ctx {
    shared: Arc<Shared>,
    kill: Arc<AtomicBool>,
    req: RecordedRequest,
    index: usize,
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    kill: Arc<AtomicBool>,
) -> Result<Response<Body>, MockAbort> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| MockAbort)?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned());
    let req = RecordedRequest {
        method: parts.method.to_string(),
        path,
        headers: parts.headers,
        body,
    };
    let index = {
        let mut all = lock(&shared.requests);
        all.push(req.clone());
        all.len() - 1
    };
    shared.changed();
    let ctx = Ctx {
        shared,
        kill,
        req,
        index,
    };

    let queued = lock(&ctx.shared.queue).pop_front();
    if let Some(reply) = queued
        && let Some(resp) = ctx.apply(reply).await?
    {
        return Ok(resp);
    }
    let keyed =
        api_key(&ctx.req.headers).and_then(|k| lock(&ctx.shared.key_replies).get(k).cloned());
    if let Some(reply) = keyed
        && let Some(resp) = ctx.apply(reply).await?
    {
        return Ok(resp);
    }
    ctx.default_reply().await
}

fn api_key(h: &HeaderMap) -> Option<&str> {
    if let Some(auth) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = auth.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
}

fn header_num(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn header_flag(h: &HeaderMap, name: &str) -> bool {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

async fn hang() -> Result<Response<Body>, MockAbort> {
    match std::future::pending::<Infallible>().await {}
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(status: u16, v: &Value) -> Response<Body> {
    full(status, "application/json", v.to_string())
}

impl Ctx {
    fn with_index(&self, mut resp: Response<Body>) -> Response<Body> {
        resp.headers_mut()
            .insert("x-mock-request-index", self.index.into());
        resp
    }

    fn reset(&self) -> Result<Response<Body>, MockAbort> {
        self.kill.store(true, Ordering::SeqCst);
        Err(MockAbort)
    }

    /// `Ok(None)`: continue with the default behaviour.
    async fn apply(&self, reply: MockReply) -> Result<Option<Response<Body>>, MockAbort> {
        match reply {
            MockReply::Status {
                status,
                body,
                headers,
            } => {
                let mut resp = full(status, "application/json", body);
                for (name, value) in headers {
                    if let (Ok(n), Ok(v)) = (
                        header::HeaderName::try_from(name.as_str()),
                        header::HeaderValue::try_from(value.as_str()),
                    ) {
                        resp.headers_mut().insert(n, v);
                    }
                }
                Ok(Some(self.with_index(resp)))
            }
            MockReply::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            MockReply::Hang => hang().await.map(Some),
            MockReply::Reset => self.reset().map(Some),
        }
    }

    async fn default_reply(&self) -> Result<Response<Body>, MockAbort> {
        let h = &self.req.headers;
        if header_flag(h, "x-mock-hang") {
            return hang().await;
        }
        if let Some(ms) = header_num(h, "x-mock-delay-ms") {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let azure = match azure::check(&self.req) {
            Ok(azure) => azure,
            Err((status, body)) => return Ok(self.with_index(json_response(status, &body))),
        };
        let filter = azure.then(|| azure::filter_mode(h)).flatten();
        if filter == Some("prompt") {
            return Ok(self.with_index(json_response(400, &azure::content_filter_error())));
        }
        let vertex_claude = match vertex::check(&self.req) {
            Vertex::Answer(status, body) => {
                return Ok(self.with_index(json_response(status, &body)));
            }
            Vertex::Claude { model } => Some(model),
            Vertex::No | Vertex::Gemini => None,
        };
        let anthropic_path =
            vertex_claude.is_some() || self.req.path_only().ends_with("/v1/messages");
        if let Some(status) = header_num(h, "x-mock-status") {
            let status = u16::try_from(status).unwrap_or(500);
            let body = if anthropic_path {
                anthropic::error_body(status)
            } else {
                openai::error_body(status)
            };
            let mut resp = json_response(status, &body);
            if let Some(v) = h.get("x-mock-retry-after") {
                resp.headers_mut().insert(header::RETRY_AFTER, v.clone());
            }
            return Ok(self.with_index(resp));
        }
        let chunks = header_num(h, "x-mock-chunks").map_or(5, |n| n as usize);
        let ndjson = header_flag(h, "x-mock-ndjson");
        let path = self.req.path_only();
        let method = self.req.method.as_str();
        let post = method == Method::POST.as_str();

        if post && path.contains(":generateContent") {
            return Ok(self.with_index(json_response(
                200,
                &gemini::generate(&self.req.body, chunks),
            )));
        }
        if post && path.contains(":streamGenerateContent") {
            let events = gemini::stream_events(&self.req.body, chunks);
            let hold_at = events.len().saturating_sub(1);
            return Ok(self.stream(events, hold_at, "text/event-stream"));
        }
        if post && anthropic_path && !ndjson {
            let mut req = anthropic::MessagesRequest::parse(&self.req.body);
            if let Some(model) = vertex_claude {
                req.model = model;
            }
            let tool = h.get("x-mock-tool").and_then(|v| v.to_str().ok());
            let seq = self.shared.ids.fetch_add(1, Ordering::SeqCst);
            let id = format!("msg_mock{seq:020}");
            if req.stream {
                let events = anthropic::message_events(&id, &req, chunks, tool);
                let hold_at = events.len().saturating_sub(3);
                return Ok(self.stream(events, hold_at, "text/event-stream"));
            }
            return Ok(self.with_index(json_response(
                200,
                &anthropic::message(&id, &req, chunks, tool),
            )));
        }
        if ndjson || (post && path.ends_with("/chat/completions")) {
            let chat = ChatRequest::parse(&self.req.body);
            if ndjson {
                let lines = openai::ndjson_lines(&chat, chunks);
                return Ok(self.stream(lines, chunks, "application/x-ndjson"));
            }
            let seq = self.shared.ids.fetch_add(1, Ordering::SeqCst);
            let id = format!("chatcmpl-mock{seq:020}");
            if chat.stream {
                let mut events = openai::chat_sse_events(&id, &chat, chunks);
                let mut hold_at = chunks + 1;
                if azure {
                    if filter == Some("completion") {
                        azure::filter_finish(&mut events);
                    }
                    events.insert(0, azure::prompt_filter_chunk());
                    hold_at += 1;
                }
                return Ok(self.stream(events, hold_at, "text/event-stream"));
            }
            if h.contains_key("x-mock-reset-after") {
                return self.reset();
            }
            let mut v = openai::chat_completion(&id, &chat, chunks);
            if azure {
                azure::annotate_completion(&mut v, filter == Some("completion"));
            }
            return Ok(self.with_index(json_response(200, &v)));
        }
        if h.contains_key("x-mock-reset-after") {
            return self.reset();
        }
        let resp = if post && azure && path.ends_with("/completions") {
            let chat = ChatRequest::parse(&self.req.body);
            let seq = self.shared.ids.fetch_add(1, Ordering::SeqCst);
            let id = format!("cmpl-mock{seq:020}");
            json_response(200, &azure::text_completion(&id, &chat.model, chunks))
        } else if post && path.ends_with("/embeddings") {
            json_response(200, &openai::embeddings(&self.req.body))
        } else if method == Method::GET.as_str() && path.ends_with("/models") {
            json_response(200, &openai::models())
        } else if let Some(n) = header_num(h, "x-mock-body-bytes") {
            full(200, "application/octet-stream", vec![b'x'; n as usize])
        } else {
            json_response(200, &self.echo())
        };
        Ok(self.with_index(resp))
    }

    fn echo(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for name in self.req.headers.keys() {
            let joined = self
                .req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            headers.insert(name.as_str().to_owned(), Value::String(joined));
        }
        json!({
            "method": self.req.method,
            "path": self.req.path,
            "headers": headers,
            "body": String::from_utf8_lossy(&self.req.body),
        })
    }

    /// A chunked response fed by a producer task; `hold_at` is the index of the first
    /// chunk held back by `x-mock-hold`.
    fn stream(&self, chunks: Vec<Bytes>, hold_at: usize, content_type: &str) -> Response<Body> {
        let h = &self.req.headers;
        let plan = StreamPlan {
            delay: Duration::from_millis(header_num(h, "x-mock-chunk-delay-ms").unwrap_or(0)),
            reset_after: header_num(h, "x-mock-reset-after").map(|n| n as usize),
            hold: h
                .get("x-mock-hold")
                .and_then(|v| v.to_str().ok())
                .map(|name| (self.shared.gate(name), hold_at)),
        };
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(produce(tx, chunks, plan, self.kill.clone()));
        let body = StreamBody::new(ChunkStream {
            rx,
            shared: self.shared.clone(),
            finished: false,
            pending_error: None,
        });
        let mut resp = Response::new(body.boxed());
        let headers = resp.headers_mut();
        if let Ok(v) = content_type.parse() {
            headers.insert(header::CONTENT_TYPE, v);
        }
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-cache"),
        );
        self.with_index(resp)
    }
}

struct StreamPlan {
    delay: Duration,
    reset_after: Option<usize>,
    hold: Option<(watch::Sender<bool>, usize)>,
}

enum Item {
    Chunk(Bytes),
    /// Abort the connection (RST) after the chunks before it were written.
    Abort,
}

async fn produce(
    tx: mpsc::Sender<Item>,
    chunks: Vec<Bytes>,
    plan: StreamPlan,
    kill: Arc<AtomicBool>,
) {
    for (i, chunk) in chunks.into_iter().enumerate() {
        if plan.reset_after == Some(i) {
            break;
        }
        if let Some((gate, at)) = &plan.hold
            && *at == i
        {
            let mut open = gate.subscribe();
            tokio::select! {
                _ = open.wait_for(|o| *o) => {}
                () = tx.closed() => return,
            }
        }
        if i > 0 && !plan.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(plan.delay) => {}
                () = tx.closed() => return,
            }
        }
        if tx.send(Item::Chunk(chunk)).await.is_err() {
            return;
        }
    }
    if plan.reset_after.is_some() {
        kill.store(true, Ordering::SeqCst);
        let _ = tx.send(Item::Abort).await;
    }
}

/// The response body of a stream: counts chunks and notices early drops.
struct ChunkStream {
    rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
    /// Saw the end of the stream (normal end or mock-initiated abort).
    finished: bool,
    /// Set on abort: returned on the next poll so hyper flushes the earlier chunks first.
    pending_error: Option<io::Error>,
}

impl Stream for ChunkStream {
    type Item = Result<Frame<Bytes>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.pending_error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Item::Chunk(b))) => {
                this.shared.bump(&this.shared.chunks_sent);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Item::Abort)) => {
                this.finished = true;
                this.pending_error = Some(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "mock upstream reset the stream",
                ));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        if !self.finished && !self.shared.shutdown.is_cancelled() {
            self.shared.bump(&self.shared.streams_cancelled);
        }
    }
}
