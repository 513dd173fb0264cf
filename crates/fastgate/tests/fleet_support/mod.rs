//! Support for the fleet tests (`limits_fleet.rs`): the gateway config with a
//! `redis:` section, requests and their outcome, the usage view, the backend
//! gauge, and a load loop that records how long every request took.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

pub mod proxy;
pub mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ADMIN_TOKEN, http_client};

/// The tests of this binary run one at a time: the machine has two cores, and
/// the Prometheus recorder is one per process, so the backend gauge of one
/// test's instance would show in another's `/metrics`.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// USD per 1M output tokens of the test model: 1/8 USD a token, exact in
/// binary, so worst cases and settled costs add up without rounding.
pub const OUTPUT_PRICE: f64 = 125_000.0;
/// Output cap the chat requests ask for: a worst case of exactly 8 USD (the
/// input price is 0, so the prompt estimate costs nothing).
pub const MAX_TOKENS: u64 = 64;
pub const WORST_CASE_USD: f64 = 8.0;
/// The mock answers 5 tokens: a settled cost of 5/8 USD.
pub const SETTLED_USD: f64 = 0.625;

/// Upstream, an echo route and a priced model group, with `redis:` and
/// `limits:` sections (flow-style fields after the given ones).
pub fn gateway_yaml(redis_url: &str, prefix: &str, redis_extra: &str) -> String {
    format!(
        r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{{MOCK}}"
    credentials: [ {{ name: k1, key: "sk-provider-secret-1" }} ]
routes:
  - name: echo
    match: {{ path: "/echo/**" }}
    upstream: mock
models:
  - name: fleet-model
    deployments: [ {{ upstream: mock, model: mock-model }} ]
    price: {{ input: 0.0, output: {OUTPUT_PRICE:.1} }}
redis: {{ url: "{redis_url}", key_prefix: "{prefix}"{redis_extra} }}
limits: {{ flush_interval: 200ms }}
"#
    )
}

/// How long a switch of backend (to fallback, back to Redis) may take: the
/// recovery loop runs every second.
pub const SWITCH_WITHIN: Duration = Duration::from_secs(10);

/// The failure policy of the outage tests.
pub const OUTAGE_POLICY: &str = ", connect_timeout: 500ms, command_timeout: 200ms, expected_instances: 2, \
     on_failure: { rate_limits: local, quotas: deny }";

/// (used requests, used cost, reserved cost, requests in flight) of a usage view.
pub fn settled(v: &Value) -> (u64, f64, f64, u64) {
    (
        v["used"]["requests"].as_u64().unwrap(),
        v["used"]["cost"].as_f64().unwrap(),
        v["reserved"]["cost"].as_f64().unwrap(),
        v["reserved"]["in_flight"].as_u64().unwrap(),
    )
}

/// Requests of the stored usage (the database) in the `never` period.
pub fn stored_requests(v: &Value) -> u64 {
    v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["period"] == "all")
        .map(|p| p["requests"].as_u64().unwrap())
        .sum()
}

/// Cost of the stored usage (the database) in the `never` period.
pub fn stored_cost(v: &Value) -> f64 {
    v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["period"] == "all")
        .map(|p| p["cost"].as_f64().unwrap())
        .sum()
}

pub fn statuses(outcomes: &[Outcome]) -> Vec<u16> {
    outcomes.iter().map(|o| o.status).collect()
}

/// `n` echo requests one after another.
pub async fn echo_n(base: &str, key: &str, n: usize) -> Vec<Outcome> {
    let http = http_client();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(echo(&http, base, key, &format!("seq-{i}")).await);
    }
    out
}

/// The outcome of one request as the tests judge it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u16,
    /// `x-ratelimit-remaining-requests`, parsed as signed so that a negative
    /// value would show as one.
    pub remaining: Option<i64>,
    pub retry_after: Option<String>,
    /// `error.code` of a refusal.
    pub code: Option<String>,
    pub message: Option<String>,
    pub took: Duration,
}

impl Outcome {
    /// Reads the answer to its end; `start` is when the request was sent.
    pub async fn read(resp: reqwest::Response, start: Instant) -> Outcome {
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let remaining = header("x-ratelimit-remaining-requests").map(|v| {
            v.parse::<i64>()
                .unwrap_or_else(|_| panic!("x-ratelimit-remaining-requests {v:?}"))
        });
        let retry_after = header("retry-after");
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let field = |f: &str| body["error"][f].as_str().map(str::to_string);
        Outcome {
            status,
            remaining,
            retry_after,
            code: field("code"),
            message: field("message"),
            took: start.elapsed(),
        }
    }
}

/// `GET {base}/echo/{what}` with `key`, through the echo route.
pub async fn echo(http: &reqwest::Client, base: &str, key: &str, what: &str) -> Outcome {
    let start = Instant::now();
    let resp = http
        .get(format!("{base}/echo/{what}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("echo through {base}: {e}"));
    Outcome::read(resp, start).await
}

/// A chat request for the priced model, asking for [`MAX_TOKENS`]. Streamed
/// with the usage chunk (so the settled cost is the mock's exact count), held
/// before its finish chunk by the mock when `hold` names a gate.
pub async fn chat(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    hold: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": "fleet-model",
            "max_tokens": MAX_TOKENS,
            "stream": true,
            "stream_options": { "include_usage": true },
            "messages": [ { "role": "user", "content": "hello fleet" } ],
        }));
    if let Some(gate) = hold {
        req = req.header("x-mock-hold", gate);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("chat through {base}: {e}"))
}

/// A chat request that is refused or answered at once; its outcome.
pub async fn chat_outcome(http: &reqwest::Client, base: &str, key: &str) -> Outcome {
    let start = Instant::now();
    Outcome::read(chat(http, base, key, None).await, start).await
}

/// Waits until the instance at `base` knows `key`: a path with no route
/// answers 404 to a known key (authenticated, nothing counted) and 401 to
/// one the instance has not loaded yet.
pub async fn wait_key_known(base: &str, key: &str) {
    let http = http_client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .get(format!("{base}/fleet-probe"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            404 => return,
            401 => assert!(
                Instant::now() < deadline,
                "{base} did not load the key within 10 s"
            ),
            other => panic!("key probe on {base} answered {other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /admin/api/keys/{id}/usage` on the instance at `base`.
pub async fn usage(base: &str, id: &str) -> Value {
    let resp = http_client()
        .get(format!("{base}/admin/api/keys/{id}/usage"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "usage of {id} on {base}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The `backend` the usage view reports (`redis` or `fallback`): this
/// instance's mode, unlike the gauge, which is one per process.
pub async fn backend_of(base: &str, id: &str) -> String {
    usage(base, id).await["backend"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `fastgate_limits_backend{mode=...}` value in a Prometheus text.
pub fn backend_gauge(metrics: &str, mode: &str) -> Option<f64> {
    let series = format!("fastgate_limits_backend{{mode=\"{mode}\"}}");
    metrics.lines().find_map(|l| {
        l.strip_prefix(&series)
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
}

/// `/metrics` of the instance at `base`.
pub async fn metrics(base: &str) -> String {
    let resp = http_client()
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "/metrics");
    resp.text().await.unwrap()
}

/// Polls until the gauge shows `mode` 1 and every other mode 0; how long it took.
pub async fn wait_gauge(base: &str, mode: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let text = metrics(base).await;
        let shows = ["memory", "redis", "fallback"].iter().all(|m| {
            let want = if *m == mode { 1.0 } else { 0.0 };
            backend_gauge(&text, m).unwrap_or(0.0) == want
        });
        if shows {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "fastgate_limits_backend not {mode} within {within:?}:\n{}",
            text.lines()
                .filter(|l| l.contains("limits_backend"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the usage view of `id` on `base` until `check` holds; the view.
pub async fn wait_usage(
    base: &str,
    id: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = usage(base, id).await;
        if check(&v) {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "not within {within:?}: {what}; last view: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests sent one after another by a background task until stopped (at
/// most [`Load::MAX`]), each with its outcome.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<std::sync::Mutex<Vec<Outcome>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Bound on the requests of one load loop.
    pub const MAX: usize = 20_000;

    pub fn start(base: &str, key: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (base, key) = (base.to_string(), key.to_string());
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let task = tokio::spawn({
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            async move {
                for i in 0..Self::MAX {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let out = echo(&http, &base, &key, &format!("load-{i}")).await;
                    done.lock().unwrap().push(out);
                }
            }
        });
        Load { stop, done, task }
    }

    pub fn count(&self) -> usize {
        self.done.lock().unwrap().len()
    }

    /// Waits until at least `n` requests have answered.
    pub async fn wait_count(&self, n: usize, within: Duration) {
        let start = Instant::now();
        while self.count() < n {
            assert!(
                !self.task.is_finished(),
                "the load loop stopped (a request failed)"
            );
            assert!(
                start.elapsed() < within,
                "load: {} of {n} requests within {within:?}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the loop; every outcome in order.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the load loop did not stop")
            .expect("a load request failed");
        Arc::try_unwrap(self.done).unwrap().into_inner().unwrap()
    }
}
