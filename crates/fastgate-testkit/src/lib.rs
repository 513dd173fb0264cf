//! fastgate-testkit: a real mock upstream HTTP/1.1 server for FastGate's integration
//! tests and benchmarks (dev only).
//!
//! [`MockUpstream::start`] listens on `127.0.0.1:0` and answers like an OpenAI-compatible
//! provider (chat completions, streaming SSE, embeddings, models) or echoes the request.
//! Tests steer it per request with `x-mock-*` headers (they pass through the gateway) or
//! with [`MockUpstream::enqueue`]. Streams are written chunk by chunk through a
//! channel-backed body, so chunk pacing, mid-stream resets and client disconnects are
//! observable.
//!
//! # Default behaviour by path
//! - `POST …/chat/completions`: `"stream": true` gives SSE events
//!   `[role, "tok0 " … "tok{N-1} ", finish_reason "stop", usage (only with
//!   stream_options.include_usage), [DONE]]`; otherwise a `chat.completion` whose content
//!   is the N tokens. `model` is echoed; usage is `prompt_tokens` = words in the message
//!   texts (at least 1), `completion_tokens` = N.
//! - `POST …/embeddings`: an embedding list (8 dimensions, one per input).
//! - `GET …/models`: a model list (`mock-model`, `mock-embedding`).
//! - anything else: 200 JSON `{"method", "path", "headers", "body"}` (echo).
//!
//! # Control headers
//! - `x-mock-status: 503` answer with this status and an OpenAI-style error body
//!   (`x-mock-retry-after: 2` adds `retry-after`).
//! - `x-mock-delay-ms: 200` wait before the response head.
//! - `x-mock-chunks: 20` content chunks / tokens (default 5).
//! - `x-mock-chunk-delay-ms: 20` pause between stream chunks (default 0).
//! - `x-mock-reset-after: 3` write the first 3 stream chunks (counting the role chunk),
//!   then reset the connection (SO_LINGER 0) with no terminating chunk. On a
//!   non-streaming request: reset without a response.
//! - `x-mock-hold: NAME` write the role and content chunks, then wait for
//!   [`MockUpstream::release`]`(NAME)` before the finish chunk (NDJSON: before the
//!   `done` line).
//! - `x-mock-hang: 1` never answer.
//! - `x-mock-body-bytes: N` (echo/other paths) answer with N filler bytes.
//! - `x-mock-ndjson: 1` (any path) stream N NDJSON lines
//!   `{"model","created_at","message":{"role","content"},"done":false}` and a final
//!   `"done":true` line (`application/x-ndjson`), Ollama-like.
//!
//! # Azure OpenAI paths
//! A request under `/openai/` is checked as Azure would: a deployment path
//! `/openai/deployments/{deployment}/{chat/completions|completions|embeddings}` and an
//! `api-version` query (none on `/openai/v1/…`), and exactly one credential: `api-key`
//! or `authorization: Bearer` (both: 400, none: 401, bad path: 404). Answers carry
//! Azure's annotations (a first stream chunk with `choices: []` and
//! `prompt_filter_results`). `x-mock-content-filter: prompt` answers Azure's content
//! filter 400; `x-mock-content-filter: completion` ends with `finish_reason:
//! "content_filter"`.
//!
//! # Vertex AI
//! `POST /token` is a service account's token endpoint and
//! `/v1/projects/{project}/locations/{location}/publishers/…` are Vertex's model
//! paths, checked as Google would (see the `vertex` module; [`VERTEX_TEST_KEY_PEM`],
//! [`vertex_service_account_json`]).
//!
//! Every response carries `x-mock-request-index` (0-based position in
//! [`MockUpstream::requests`]).
//!
//! Request handling order: the request body is read fully and recorded, then the first
//! enqueued [`MockReply`] (if any) applies, then a reply registered with
//! [`MockUpstream::fail_key`] for the request's API key, then the `x-mock-*` headers,
//! then the default behaviour for the path.

// Test support code: a failing assertion or setup step here should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod azure;
mod gemini;
mod openai;
mod server;
pub mod sse;
mod vertex;
pub use vertex::{VERTEX_TEST_KEY_PEM, VERTEX_TOKEN_PATH, vertex_service_account_json};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One request as the mock received it (after the whole body arrived).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as received, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name`, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// The value of query parameter `name` (as sent, not decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|p| p.split_once('=').or(Some((p, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The Azure deployment of an `/openai/deployments/{deployment}/…` path
    /// (percent-decoded).
    pub fn azure_deployment(&self) -> Option<String> {
        azure::deployment(self.path_only())
    }
}

/// A scripted reply, consumed FIFO (see [`MockUpstream::enqueue`]) or bound to an API key
/// (see [`MockUpstream::fail_key`]).
#[derive(Debug, Clone)]
pub enum MockReply {
    /// Answer with exactly this status, body and headers (`content-type` defaults to
    /// `application/json`).
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Sleep, then answer normally (headers and path decide).
    Delay(Duration),
    /// Accept the request and never answer.
    Hang,
    /// Close the connection without a response (TCP RST).
    Reset,
}

impl MockReply {
    /// A [`MockReply::Status`] with an OpenAI-style error body.
    pub fn error(status: u16) -> MockReply {
        MockReply::Status {
            status,
            body: openai::error_body(status).to_string(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to a [`MockReply::Status`] (no-op for other variants).
    pub fn with_header(mut self, name: &str, value: &str) -> MockReply {
        if let MockReply::Status { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }
}

/// State shared by the accept loop, the connections and the handle.
pub(crate) struct Shared {
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) connections: AtomicUsize,
    pub(crate) chunks_sent: AtomicUsize,
    pub(crate) streams_cancelled: AtomicUsize,
    pub(crate) queue: Mutex<VecDeque<MockReply>>,
    pub(crate) gates: Mutex<HashMap<String, watch::Sender<bool>>>,
    pub(crate) key_replies: Mutex<HashMap<String, MockReply>>,
    /// Bumped on every observable change; waiters re-check their predicate.
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) ids: AtomicU64,
    pub(crate) shutdown: CancellationToken,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn bump(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        self.changed();
    }

    /// The gate's watch sender, created closed on first use.
    pub(crate) fn gate(&self, name: &str) -> watch::Sender<bool> {
        lock(&self.gates)
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .clone()
    }
}

/// A running mock upstream. Dropping it shuts the server down (listener and all
/// connections, including hanging and held requests).
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// Starts the mock on `127.0.0.1:0`.
    pub async fn start() -> MockUpstream {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind mock upstream on 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock upstream local addr");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            chunks_sent: AtomicUsize::new(0),
            streams_cancelled: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
            gates: Mutex::new(HashMap::new()),
            key_replies: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
            ids: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let accept_task = tokio::spawn(server::accept_loop(listener, shared.clone()));
        MockUpstream {
            addr,
            shared,
            accept_task: Some(accept_task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request fully received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stream chunks (SSE events incl. `[DONE]`, or NDJSON lines) handed to the
    /// connection so far, over all requests.
    pub fn chunks_sent(&self) -> usize {
        self.shared.chunks_sent.load(Ordering::SeqCst)
    }

    /// Streams whose body was dropped before its last chunk was handed over, i.e. the
    /// client (the gateway) went away. Mock-initiated resets are not counted.
    pub fn streams_cancelled(&self) -> usize {
        self.shared.streams_cancelled.load(Ordering::SeqCst)
    }

    /// Queues a one-shot reply; queued replies are consumed FIFO, one per request,
    /// before any other behaviour.
    pub fn enqueue(&self, reply: MockReply) {
        lock(&self.shared.queue).push_back(reply);
    }

    /// Answers every request whose API key (`authorization: Bearer KEY`, `x-api-key`
    /// or `api-key`) equals `key` with `reply`, until [`MockUpstream::clear_key`].
    pub fn fail_key(&self, key: &str, reply: MockReply) {
        lock(&self.shared.key_replies).insert(key.to_owned(), reply);
    }

    pub fn clear_key(&self, key: &str) {
        lock(&self.shared.key_replies).remove(key);
    }

    /// Opens the gate `name` (see `x-mock-hold`). Gates stay open once released.
    pub fn release(&self, gate: &str) {
        self.shared.gate(gate).send_replace(true);
    }

    /// Waits until at least `n` requests were fully received; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |m| m.request_count() >= n).await
    }

    /// Waits until `pred` holds; re-evaluated on every state change of the mock
    /// (request recorded, connection accepted, chunk sent, stream cancelled).
    /// Returns false on timeout.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&MockUpstream) -> bool,
    ) -> bool {
        let mut rx = self.shared.changes.subscribe();
        let wait = async {
            loop {
                if pred(self) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return pred(self);
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Shuts down and waits for the listener to be closed.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .field("connections", &self.connection_count())
            .finish()
    }
}
