//! The background sender: one task reads the queue and POSTs each message, retrying
//! transport errors, 5xx, 429 and platform error codes with exponential backoff.
//! Messages go one at a time, so a slow platform holds the queue back rather than
//! opening many connections; the queue bound keeps that from growing memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AlertEvent, Channel, Job, Shared, format, kind_label};

/// How the sender behaves; the defaults are the production values, tests shorten them.
#[derive(Debug, Clone)]
pub(crate) struct SendOptions {
    /// Whole exchange: connect, send, read the answer.
    pub(crate) timeout: Duration,
    /// Tries per message (the first one included).
    pub(crate) attempts: u32,
    /// Wait before the second try; doubled before each further one.
    pub(crate) backoff_base: Duration,
    pub(crate) queue_capacity: usize,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff_base: Duration::from_secs(1),
            queue_capacity: 1024,
        }
    }
}

/// Largest answer read; platforms answer with a few bytes of JSON.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why one try failed. Messages never contain the channel URL or secret.
#[derive(Debug, thiserror::Error)]
pub(super) enum DeliveryError {
    #[error("the channel URL is not a valid http(s) URL")]
    BadUrl,
    #[error("no HTTP client: {0}")]
    NoClient(String),
    #[error("could not build the message: {0}")]
    Format(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("platform error code {code}: {message}")]
    Platform { code: i64, message: String },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl DeliveryError {
    /// Worth another try: the platform or the network may do better in a moment.
    pub(super) fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) | Self::Platform { .. } | Self::Unexpected(_) => {
                true
            }
            Self::Status(s) => *s == 429 || (500..600).contains(s),
            Self::BadUrl | Self::NoClient(_) | Self::Format(_) => false,
        }
    }
}

/// The sender task: until `cancel` fires or every handle is gone.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut jobs: mpsc::Receiver<Job>,
    cancel: CancellationToken,
    options: SendOptions,
) {
    let client = build_client().inspect_err(|e| {
        tracing::error!("alert HTTP client could not be built ({e}); every alert will fail");
    });
    loop {
        let job = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let Some(channel) = shared.channels().get(&job.channel).cloned() else {
            tracing::debug!(channel = %job.channel, "alert for a channel removed by a reload dropped");
            shared.count_dropped(None);
            continue;
        };
        let outcome = deliver(client.as_ref(), &channel, &job.event, &options, &cancel).await;
        record(&shared, &channel, &job.event, outcome);
    }
    // Stopped: what is still queued is not sent; later notifies find the queue closed.
    jobs.close();
    let mut left = 0u64;
    while let Ok(job) = jobs.try_recv() {
        left += 1;
        let channel = shared.channels().get(&job.channel).cloned();
        shared.count_dropped(channel.as_deref());
    }
    if left > 0 {
        tracing::info!(left, "alert sender stopped; queued alerts dropped");
    }
}

/// A failure after `attempts` tries.
struct Failed {
    error: DeliveryError,
    attempts: u32,
}

async fn deliver(
    client: Result<&HttpClient, &String>,
    channel: &Channel,
    event: &AlertEvent,
    options: &SendOptions,
    cancel: &CancellationToken,
) -> Result<u32, Failed> {
    let once = |error| Failed { error, attempts: 1 };
    let client = client.map_err(|e| once(DeliveryError::NoClient(e.clone())))?;
    let url = channel
        .url
        .as_ref()
        .ok_or_else(|| once(DeliveryError::BadUrl))?;
    let mut attempt = 1;
    loop {
        let error = match send_once(client, channel, url.expose(), event, options.timeout).await {
            Ok(()) => return Ok(attempt),
            Err(e) => e,
        };
        if !error.retryable() || attempt >= options.attempts.max(1) || cancel.is_cancelled() {
            return Err(Failed {
                error,
                attempts: attempt,
            });
        }
        tracing::debug!(channel = %channel.name, attempt, error = %redact(&error, channel), "alert attempt failed; will retry");
        let delay = options
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(16));
        tokio::select! {
            () = cancel.cancelled() => return Err(Failed { error, attempts: attempt }),
            () = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
    }
}

/// One POST, signed afresh (signatures carry the time).
async fn send_once(
    client: &HttpClient,
    channel: &Channel,
    url: &url::Url,
    event: &AlertEvent,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let secret = channel.secret.as_ref().map(|s| s.expose().as_str());
    let out = format::request(channel.kind, url, secret, event, chrono::Utc::now())?;
    let uri: http::Uri = out
        .url
        .as_str()
        .parse()
        .map_err(|_| DeliveryError::BadUrl)?;
    let request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("FastGate/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(out.body)))
        .map_err(|_| DeliveryError::BadUrl)?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| DeliveryError::Transport(error_chain(&e)))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| DeliveryError::Transport(format!("reading the answer: {e}")))?
            .to_bytes();
        format::check_answer(channel.kind, status, &body)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| DeliveryError::Timeout(timeout))?
}

fn record(shared: &Shared, channel: &Channel, event: &AlertEvent, outcome: Result<u32, Failed>) {
    let kind = kind_label(channel.kind);
    let label = metrics::SharedString::from(Arc::clone(&channel.name));
    match outcome {
        Ok(attempts) => {
            channel.counters.sent.fetch_add(1, Ordering::Relaxed);
            shared.totals.sent.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("fastgate_alerts_sent_total", "channel" => label, "kind" => kind)
                .increment(1);
            tracing::debug!(channel = %channel.name, kind, attempts, rule = %event.rule, "alert sent");
        }
        Err(failed) => {
            channel.counters.failed.fetch_add(1, Ordering::Relaxed);
            shared.totals.failed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("fastgate_alerts_failed_total", "channel" => label, "kind" => kind)
                .increment(1);
            tracing::warn!(
                channel = %channel.name,
                kind,
                attempts = failed.attempts,
                rule = %event.rule,
                upstream = %event.upstream,
                credential = %event.credential,
                error = %redact(&failed.error, channel),
                "alert not delivered"
            );
        }
    }
}

/// The error text with the channel's URL, its path and query, the token-like parts
/// of its path and its secret blanked out, in case a platform or a library ever
/// echoes them.
pub(super) fn redact(error: &DeliveryError, channel: &Channel) -> String {
    let mut text = error.to_string();
    let mut hide: Vec<&str> = Vec::new();
    if let Some(url) = &channel.url {
        let url = url.expose();
        hide.push(url.as_str());
        hide.push(url.path());
        hide.extend(url.query());
        let segments: Vec<&str> = url.path_segments().into_iter().flatten().collect();
        hide.extend(segments.last());
        hide.extend(segments.iter().filter(|s| s.len() >= 12));
    }
    if let Some(secret) = &channel.secret {
        hide.push(secret.expose());
    }
    // Longest first, so a whole URL goes before the parts it contains; very short
    // parts say nothing and would only mangle the text.
    hide.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for part in hide.into_iter().filter(|p| p.len() >= 4) {
        if text.contains(part) {
            text = text.replace(part, "[redacted]");
        }
    }
    text
}

/// An error and its sources, `: `-separated (hyper's own text is only the outermost).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn build_client() -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS setup: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build(https))
}
