//! A fast mock upstream speaking the OpenAI chat API (JSON and SSE).
//!
//! Built to never be the bottleneck: responses are prepared once, a stream is a
//! small state machine with one timer (no task, no channel), and the whole server
//! runs on one thread by default so it can be pinned to a core.
//!
//! Any path answers like `POST /v1/chat/completions`, except:
//! * `GET /health` → `ok`;
//! * `GET /mock/stats` → `{"requests","streams","bytes_in","cpu_seconds","rss_kb"}`.
//!
//! A request whose JSON body has `"stream": true` gets an SSE stream of `chunks`
//! events `chunk_delay` apart (the first one immediately, `data: [DONE]` sent with
//! the last one); any other request gets a chat completion of about
//! `response_bytes` bytes. Per-request overrides: headers `x-mock-chunks`,
//! `x-mock-chunk-delay-ms` and `x-mock-response-bytes`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Sleep;

use crate::procfs;

/// One SSE event as OpenAI sends it for a streamed chat completion.
pub const SSE_CHUNK: &str = concat!(
    r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"#,
    r#""model":"bench-model","choices":[{"index":0,"delta":{"content":"token "},"#,
    r#""finish_reason":null}]}"#,
    "\n\n"
);
/// OpenAI's end-of-stream marker.
pub const SSE_DONE: &str = "data: [DONE]\n\n";

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub listen: SocketAddr,
    /// SSE events per streamed response.
    pub chunks: u32,
    /// Delay between two SSE events.
    pub chunk_delay: Duration,
    /// Approximate size of a non-streamed response body.
    pub response_bytes: usize,
    /// Listen backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            chunks: 20,
            chunk_delay: Duration::from_millis(20),
            response_bytes: 512,
            backlog: 8192,
        }
    }
}

#[derive(Debug, Default)]
pub struct MockStats {
    pub requests: AtomicU64,
    pub streams: AtomicU64,
    pub bytes_in: AtomicU64,
}

struct Shared {
    cfg: MockConfig,
    completion: Bytes,
    chunk: Bytes,
    last: Bytes,
    stats: MockStats,
}

/// A chat completion body padded to about `target` bytes.
pub fn completion_body(target: usize) -> Bytes {
    const HEAD: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":""#;
    const TAIL: &str = r#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36}}"#;
    const WORDS: &[u8] = b"lorem ipsum dolor sit amet ";
    let pad = target.saturating_sub(HEAD.len() + TAIL.len()).max(2);
    let mut out = Vec::with_capacity(HEAD.len() + pad + TAIL.len());
    out.extend_from_slice(HEAD.as_bytes());
    out.extend(WORDS.iter().cycle().take(pad));
    out.extend_from_slice(TAIL.as_bytes());
    Bytes::from(out)
}

/// Does this JSON body ask for a stream (`"stream": true` anywhere)?
pub fn wants_stream(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"stream\"";
    let mut from = 0;
    while let Some(pos) = body
        .get(from..)
        .and_then(|rest| rest.windows(KEY.len()).position(|w| w == KEY))
    {
        let after = from + pos + KEY.len();
        let rest = body.get(after..).unwrap_or_default();
        let rest = rest.trim_ascii_start();
        if let Some(value) = rest.strip_prefix(b":")
            && value.trim_ascii_start().starts_with(b"true")
        {
            return true;
        }
        from = after;
    }
    false
}

fn header_num<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The response body: a prepared buffer or a timed SSE stream.
pub enum MockBody {
    Full(Option<Bytes>),
    Sse(SseBody),
}

/// `remaining` events, `delay` apart, the first without delay.
pub struct SseBody {
    remaining: u32,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    chunk: Bytes,
    last: Bytes,
}

impl SseBody {
    pub fn new(chunks: u32, delay: Duration, chunk: Bytes, last: Bytes) -> SseBody {
        SseBody {
            remaining: chunks.max(1),
            delay,
            sleep: None,
            chunk,
            last,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Sse(sse) => {
                if sse.remaining == 0 {
                    return Poll::Ready(None);
                }
                if let Some(sleep) = sse.sleep.as_mut() {
                    ready!(sleep.as_mut().poll(cx));
                }
                sse.remaining -= 1;
                let data = if sse.remaining == 0 {
                    sse.last.clone()
                } else {
                    sse.chunk.clone()
                };
                if sse.remaining > 0 && !sse.delay.is_zero() {
                    match sse.sleep.as_mut() {
                        // A steady cadence: each event `delay` after the previous
                        // deadline, so timer lateness does not accumulate.
                        Some(sleep) => {
                            let next = sleep.deadline() + sse.delay;
                            sleep.as_mut().reset(next);
                        }
                        None => sse.sleep = Some(Box::pin(tokio::time::sleep(sse.delay))),
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(data) => data.is_none(),
            MockBody::Sse(sse) => sse.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Sse(_) => SizeHint::default(),
        }
    }
}

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::Full(Some(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn stats_json(stats: &MockStats) -> Bytes {
    let cpu = procfs::cpu_seconds("self").unwrap_or(-1.0);
    let rss = procfs::memory_kb("self").map(|(rss, _)| rss).unwrap_or(0);
    let v = serde_json::json!({
        "requests": stats.requests.load(Ordering::Relaxed),
        "streams": stats.streams.load(Ordering::Relaxed),
        "bytes_in": stats.bytes_in.load(Ordering::Relaxed),
        "cpu_seconds": cpu,
        "rss_kb": rss,
    });
    Bytes::from(v.to_string())
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<MockBody> {
    if req.method() == Method::GET {
        match req.uri().path() {
            "/health" => return full(StatusCode::OK, "text/plain", Bytes::from_static(b"ok")),
            "/mock/stats" => {
                return full(
                    StatusCode::OK,
                    "application/json",
                    stats_json(&shared.stats),
                );
            }
            _ => {}
        }
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return full(
                StatusCode::BAD_REQUEST,
                "text/plain",
                Bytes::from(format!("cannot read the request body: {e}")),
            );
        }
    };
    let stats = &shared.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats
        .bytes_in
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    if wants_stream(&body) {
        stats.streams.fetch_add(1, Ordering::Relaxed);
        let chunks = header_num(&parts.headers, "x-mock-chunks").unwrap_or(shared.cfg.chunks);
        let delay = header_num::<u64>(&parts.headers, "x-mock-chunk-delay-ms")
            .map_or(shared.cfg.chunk_delay, Duration::from_millis);
        let mut resp = Response::new(MockBody::Sse(SseBody::new(
            chunks,
            delay,
            shared.chunk.clone(),
            shared.last.clone(),
        )));
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return resp;
    }
    let body = match header_num::<usize>(&parts.headers, "x-mock-response-bytes") {
        Some(n) if n != shared.cfg.response_bytes => completion_body(n),
        _ => shared.completion.clone(),
    };
    full(StatusCode::OK, "application/json", body)
}

/// Binds the listener with the configured backlog.
pub fn bind(cfg: &MockConfig) -> anyhow::Result<TcpListener> {
    let socket = if cfg.listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(cfg.listen)
        .with_context(|| format!("cannot bind {}", cfg.listen))?;
    Ok(socket.listen(cfg.backlog)?)
}

/// Serves until the task is dropped. Connections are HTTP/1.1 with keep-alive.
pub async fn serve(listener: TcpListener, cfg: MockConfig) -> anyhow::Result<()> {
    let chunk = Bytes::from_static(SSE_CHUNK.as_bytes());
    let last = Bytes::from([SSE_CHUNK, SSE_DONE].concat());
    let shared = Arc::new(Shared {
        completion: completion_body(cfg.response_bytes),
        cfg,
        chunk,
        last,
        stats: MockStats::default(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("bench-mock: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(req, shared).await) }
            }),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Starts the mock on the current runtime; returns its address.
pub async fn spawn(cfg: MockConfig) -> anyhow::Result<SocketAddr> {
    let listener = bind(&cfg)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, cfg).await {
            eprintln!("bench-mock: {e:#}");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_detection() {
        assert!(wants_stream(br#"{"model":"m","stream":true}"#));
        assert!(wants_stream(br#"{"stream" :  true, "x": 1}"#));
        assert!(!wants_stream(br#"{"model":"m","stream":false}"#));
        assert!(!wants_stream(br#"{"model":"m"}"#));
        assert!(!wants_stream(
            br#"{"content":"\"stream\" is a word","stream":false}"#
        ));
        assert!(wants_stream(
            br#"{"content":"\"stream\" is a word","stream":true}"#
        ));
        assert!(!wants_stream(b""));
    }

    #[test]
    fn completion_is_json_of_about_the_size() {
        for target in [0, 100, 512, 4096] {
            let body = completion_body(target);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["object"], "chat.completion");
            if target > 300 {
                assert_eq!(body.len(), target);
            }
        }
    }

    #[test]
    fn sse_chunk_is_valid() {
        let data = SSE_CHUNK.strip_prefix("data: ").unwrap().trim_end();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        assert!(SSE_CHUNK.ends_with("\n\n"));
    }

    #[tokio::test]
    async fn serves_json_and_sse() {
        let addr = spawn(MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            chunks: 3,
            chunk_delay: Duration::from_millis(5),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let url = format!("http://{addr}/v1/chat/completions");
        let json = crate::stream::one_shot(&url, br#"{"model":"m"}"#, &[])
            .await
            .unwrap();
        assert_eq!(json.0, 200);
        let v: serde_json::Value = serde_json::from_slice(&json.1).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(json.1.len(), 512);

        let sse = crate::stream::one_shot(&url, br#"{"model":"m","stream":true}"#, &[])
            .await
            .unwrap();
        let text = String::from_utf8(sse.1.to_vec()).unwrap();
        assert_eq!(text.matches("chat.completion.chunk").count(), 3);
        assert!(text.ends_with(SSE_DONE));

        let custom = crate::stream::one_shot(
            &url,
            br#"{"stream": true}"#,
            &[("x-mock-chunks".into(), "5".into())],
        )
        .await
        .unwrap();
        let text = String::from_utf8(custom.1.to_vec()).unwrap();
        assert_eq!(text.matches("chat.completion.chunk").count(), 5);

        let stats = crate::stream::get(&format!("http://{addr}/mock/stats"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&stats.1).unwrap();
        assert_eq!(v["requests"], 3);
        assert_eq!(v["streams"], 2);
    }
}
