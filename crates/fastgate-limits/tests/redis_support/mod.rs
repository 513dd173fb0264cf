//! Shared by the Redis integration tests: the test URL, unique key prefixes and
//! their cleanup, request builders, and a loopback TCP proxy that can cut Redis
//! off (to simulate an outage without touching the machine's Redis).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastgate_auth::{KeyQuota, QuotaPeriod};
use fastgate_limits::{
    AdmitRequest, Demand, Limits, Period, QuotaCheck, RedisBackend, RedisSettings, Scope, ScopeKind,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The test Redis, or `None` (after printing why the test is skipped).
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("FASTGATE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        // Built to run (the cfg is set at build time): a missing URL now is an error.
        _ if cfg!(fastgate_redis_tests) => {
            panic!("{test}: built with FASTGATE_TEST_REDIS_URL, but it is unset now")
        }
        _ => {
            println!("skipping {test}: FASTGATE_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "fgtest:{test}:{}-{nanos}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn settings(url: &str, prefix: &str, lease: Duration) -> RedisSettings {
    RedisSettings {
        url: url.to_string(),
        key_prefix: prefix.to_string(),
        connect_timeout: Duration::from_secs(3),
        command_timeout: Duration::from_secs(3),
        lease,
    }
}

/// A backend on the test Redis; panics when it is unreachable (the URL is set).
pub async fn backend(url: &str, prefix: &str) -> RedisBackend {
    RedisBackend::connect(settings(url, prefix, Duration::from_secs(60)))
        .await
        .expect("FASTGATE_TEST_REDIS_URL is set but Redis is unreachable")
}

/// Deletes every key under `prefix`.
pub async fn cleanup(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap()
    .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

pub fn rid() -> Arc<str> {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("req-{}", N.fetch_add(1, Ordering::Relaxed)).into()
}

pub fn scope(kind: ScopeKind, id: &str, limits: Limits) -> Scope {
    Scope {
        kind,
        id: id.into(),
        limits,
    }
}

pub fn daily_quota(key_id: &str, quota: KeyQuota) -> QuotaCheck {
    let now = chrono::Utc::now().timestamp_millis();
    QuotaCheck {
        key_id: key_id.into(),
        period: Period::at(quota.period, now, chrono_tz::Tz::UTC),
        quota,
    }
}

pub fn quota(requests: Option<u64>, tokens: Option<u64>, cost: Option<f64>) -> KeyQuota {
    KeyQuota {
        requests,
        tokens,
        cost,
        period: QuotaPeriod::Daily,
    }
}

pub fn request(scopes: Vec<Scope>, quota: Option<QuotaCheck>, demand: Demand) -> AdmitRequest {
    AdmitRequest {
        request_id: rid(),
        scopes,
        quota,
        demand,
    }
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port` (user, password
/// and database kept), and the original `host:port`.
pub fn via_port(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let upstream = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    (
        format!("{scheme}://{userinfo}127.0.0.1:{port}{path}"),
        upstream,
    )
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// A black hole: nothing is forwarded, open connections stay open.
    Cut,
    /// New connections are forwarded; those held during the cut stay silent
    /// for ever (a peer that died without a reset).
    ForwardNewOnly,
}

/// A loopback TCP proxy in front of Redis. `cut` makes it a black hole: open
/// connections stop forwarding but stay open, and new ones are accepted and
/// never answered (a network partition, not a refused port). `restore` closes
/// the held connections and forwards new ones again; `forward_new_only`
/// forwards new ones and keeps the held ones silent.
pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, rx) = watch::channel(Mode::Forward);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), rx.clone()));
            }
        });
        Self { port, mode, accept }
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }

    pub fn forward_new_only(&self) {
        self.mode.send_replace(Mode::ForwardNewOnly);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() != Mode::Cut {
        let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream));
        let Ok(Ok(mut server)) = connect.await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            cut = mode.wait_for(|m| *m == Mode::Cut) => if cut.is_err() { return },
        }
    }
    // Cut: swallow whatever the client sends until restored, then close.
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            n = client.read(&mut buf) => if matches!(n, Ok(0) | Err(_)) { return },
            _ = mode.wait_for(|m| *m == Mode::Forward) => return,
        }
    }
}
