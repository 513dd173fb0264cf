//! Limits, quotas and budgets end to end (docs/limits.md), on the single-instance
//! (memory) backend: a key's request and token windows with OpenAI's headers,
//! refusals in each client's error shape that never reach the upstream, a budget
//! raced by 50 requests in flight, a daily quota in the configured time zone that
//! survives a restart, route and model-group limits over every key, concurrency
//! slots given back when a client goes away, the usage API, input validation and
//! the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;
mod usage;

use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use common::{ADMIN_TOKEN, Backend, Harness, eventually};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// `priced` costs $1000 per 1M tokens in and out, so a request's worst-case
/// cost in USD is its worst-case tokens / 1000. `solo` serves one request at a
/// time over every key. `/shared/**` allows 3 requests a minute over every key.
const MODELS: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-limits-secret" } ] }
routes:
  - name: shared
    match: { path: "/shared/**" }
    upstream: oai
    limits: { requests_per_minute: 3 }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-upstream } ]
  - name: priced
    deployments: [ { upstream: oai, model: priced-upstream } ]
    price: { input: 1000.0, output: 1000.0 }
  - name: solo
    deployments: [ { upstream: oai, model: solo-upstream } ]
    limits: { max_concurrent: 1 }
"#;

/// The mock counts the words of the messages as prompt tokens ("hello there")
/// and answers 5 completion tokens.
const REAL_TOKENS: u64 = 2 + 5;
/// The real cost of one request to `priced`: 7 tokens at $1000 per 1M.
const REAL_COST: f64 = REAL_TOKENS as f64 * 1000.0 / 1e6;

/// How long a test waits for something the gateway should do promptly.
const SOON: Duration = Duration::from_secs(10);

fn chat_body(model: &str, max_tokens: u64, stream: bool) -> Value {
    json!({ "model": model, "max_tokens": max_tokens, "stream": stream,
            "messages": [ { "role": "user", "content": "hello there" } ] })
}

/// `POST /v1/chat/completions`; with `hold`, the mock keeps a stream open
/// (head and first chunks sent) until that gate is released. Every exchange is
/// bounded by the harness client's timeout.
async fn chat(h: &Harness, key: &str, body: &Value, hold: Option<&str>) -> reqwest::Response {
    let mut rb = h.http.post(h.url("/v1/chat/completions")).bearer_auth(key);
    if let Some(gate) = hold {
        rb = rb.header("x-mock-hold", gate);
    }
    rb.json(body).send().await.unwrap()
}

/// Reads a held stream to its end (after its gate was released).
async fn finish_stream(resp: reqwest::Response) {
    let text = resp.text().await.unwrap();
    assert!(text.contains("[DONE]"), "stream ended early: {text}");
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", resp.headers()))
        .to_str()
        .unwrap()
}

fn header_u64(resp: &reqwest::Response, name: &str) -> u64 {
    header(resp, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {:?}", resp.headers()))
}

/// Parses OpenAI's reset format (`20ms`, `59s`, `1m0s`, `1h2m3s`), failing on
/// anything else, including a non-canonical form such as `75s` or `0m5s`.
fn openai_duration(text: &str) -> Duration {
    if let Some(ms) = text.strip_suffix("ms") {
        let ms: u64 = ms.parse().unwrap_or_else(|_| panic!("bad reset {text:?}"));
        assert!(ms < 1000, "{text:?} should be written in seconds");
        return Duration::from_millis(ms);
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("bad reset {text:?}"));
        digits.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => panic!("bad reset {text:?}"),
        };
    }
    assert!(digits.is_empty(), "bad reset {text:?}");
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let canonical = match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    };
    assert_eq!(text, canonical, "not OpenAI's duration format");
    Duration::from_secs(total)
}

/// A refusal's `Retry-After`, in seconds.
fn retry_after(resp: &reqwest::Response) -> u64 {
    header_u64(resp, "retry-after")
}

/// The OpenAI-shaped error of a refusal: (code, type, message).
async fn openai_error(resp: reqwest::Response) -> (String, String, String) {
    let v: Value = resp.json().await.unwrap();
    let e = &v["error"];
    assert!(e["param"].is_null(), "{v}");
    let text = |k: &str| {
        e[k].as_str()
            .unwrap_or_else(|| panic!("no error.{k}: {v}"))
            .to_string()
    };
    (text("code"), text("type"), text("message"))
}

async fn usage(h: &Harness, id: &str) -> Value {
    let resp = h.admin_get(&format!("/admin/api/keys/{id}/usage")).await;
    assert_eq!(resp.status(), 200, "usage of {id}");
    resp.json().await.unwrap()
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_requests_per_minute_is_exact_in_both_protocols() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (_, key) = h
        .create_key(json!({ "name": "rpm3", "limits": { "requests_per_minute": 3 } }))
        .await;
    for i in 0..3u64 {
        let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header_u64(&resp, "x-ratelimit-remaining-requests"), 2 - i);
        let reset = openai_duration(header(&resp, "x-ratelimit-reset-requests"));
        assert!(
            (Duration::from_secs(40)..=Duration::from_secs(60)).contains(&reset),
            "the window opened by the first request resets a minute later: {reset:?}"
        );
        assert!(
            resp.headers().get("x-ratelimit-limit-tokens").is_none(),
            "no token window is in force"
        );
    }
    assert_eq!(h.mock.request_count(), 3);

    // The 4th, as an OpenAI client.
    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 429);
    assert!(
        (1..=60).contains(&retry_after(&resp)),
        "{:?}",
        resp.headers()
    );
    assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "3");
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    let (code, kind, message) = openai_error(resp).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert_eq!(kind, "rate_limit_error");
    assert!(
        message.contains("this API key's requests_per_minute of 3 is reached")
            && message.contains("retry after"),
        "{message}"
    );

    // The same key as an Anthropic client: Anthropic's error shape.
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&chat_body("gpt", 16, false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(
        (1..=60).contains(&retry_after(&resp)),
        "{:?}",
        resp.headers()
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requests_per_minute of 3"),
        "{v}"
    );
    assert_eq!(
        h.mock.request_count(),
        3,
        "refused requests are not forwarded"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_minute_reserves_the_worst_case_then_settles_the_real_tokens() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (id, key) = h
        .create_key(json!({ "name": "tpm", "limits": { "tokens_per_minute": 1000 } }))
        .await;
    let body = chat_body("gpt", 200, true);
    let first = chat(&h, &key, &body, Some("tpm")).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "1000");
    let reset = openai_duration(header(&first, "x-ratelimit-reset-tokens"));
    assert!(reset <= Duration::from_secs(60), "{reset:?}");
    // Reserved: the prompt's estimate plus max_tokens.
    let worst = 1000 - header_u64(&first, "x-ratelimit-remaining-tokens");
    assert!((201..260).contains(&worst), "worst case {worst}");
    let fits = 1000 / worst;
    let mut held = vec![first];
    for n in 2..=fits {
        let resp = chat(&h, &key, &body, Some("tpm")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header_u64(&resp, "x-ratelimit-remaining-tokens"),
            1000 - n * worst
        );
        held.push(resp);
    }

    // The window cannot hold another worst case while these are in flight.
    let resp = chat(&h, &key, &body, Some("tpm")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), "1000");
    assert_eq!(header(&resp, "x-ratelimit-remaining-tokens"), "0");
    assert!(
        (1..=60).contains(&retry_after(&resp)),
        "{:?}",
        resp.headers()
    );
    let (code, _, message) = openai_error(resp).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(message.contains("tokens_per_minute of 1000"), "{message}");

    // A request larger than the whole limit: waiting would not help.
    let resp = chat(&h, &key, &chat_body("gpt", 5000, false), None).await;
    assert_eq!(resp.status(), 429);
    assert!(
        resp.headers().get("retry-after").is_none(),
        "{:?}",
        resp.headers()
    );
    assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), "1000");
    let (code, _, message) = openai_error(resp).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(
        message.contains("too large") && message.contains("lower max_tokens"),
        "{message}"
    );
    assert_eq!(h.mock.request_count() as u64, fits);

    // At the end the window keeps only the real tokens.
    h.mock.release("tpm");
    for resp in held {
        finish_stream(resp).await;
    }
    let settled = fits * REAL_TOKENS;
    eventually(SOON, "the window corrected to the real tokens", || async {
        let u = usage(&h, &id).await;
        let w = u["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["limit_kind"] == "tokens_per_minute")
            .cloned()
            .unwrap_or_else(|| panic!("no tokens window: {u}"));
        (w["used"] == settled).then_some(())
    })
    .await;
    let resp = chat(&h, &key, &chat_body("gpt", 200, false), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header_u64(&resp, "x-ratelimit-remaining-tokens"),
        1000 - settled - worst
    );
    h.stop().await;
}

async fn fifty_requests_race_for_a_budget_of_five(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    // One request's worst case: (prompt estimate + 100000 tokens) × $1000/1M,
    // i.e. $100 plus a tenth of a cent per prompt token. $520 covers 5 of them
    // (for any prompt estimate under 4000 tokens) and never 6.
    let (id, key) = h
        .create_key(json!({ "name": "budget", "quota": { "cost": 520.0 } }))
        .await;
    let body = chat_body("priced", 100_000, true);
    let all =
        futures_util::future::join_all((0..50).map(|_| chat(&h, &key, &body, Some("race")))).await;
    let statuses: Vec<u16> = all.iter().map(|r| r.status().as_u16()).collect();
    let (admitted, refused): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.status() == 200);
    assert_eq!(admitted.len(), 5, "{statuses:?}");
    assert_eq!(refused.len(), 45, "{statuses:?}");
    for resp in refused {
        assert_eq!(resp.status(), 402);
        assert!(
            resp.headers().get("retry-after").is_none(),
            "a `never` budget does not come back: {:?}",
            resp.headers()
        );
        let (code, kind, message) = openai_error(resp).await;
        assert_eq!(code, "budget_exceeded");
        assert_eq!(kind, "insufficient_quota");
        assert!(
            message.starts_with("budget exceeded")
                && message.contains("budget of $520.000000")
                && message.contains("held by requests in flight"),
            "{message}"
        );
    }
    assert_eq!(
        h.mock.request_count(),
        5,
        "refused requests are not forwarded"
    );

    // While the 5 are held: their worst cases are reserved.
    let u = usage(&h, &id).await;
    assert_eq!(u["reserved"]["in_flight"], 5, "{u}");
    let reserved = f64_of(&u["reserved"]["cost"]);
    assert!((500.0..=520.0).contains(&reserved), "{u}");
    assert!(
        close(reserved, f64_of(&u["reserved"]["tokens"]) / 1000.0),
        "{u}"
    );
    assert_eq!(u["used"]["requests"], 5, "{u}");
    assert!(
        close(f64_of(&u["remaining"]["cost"]), 520.0 - reserved),
        "{u}"
    );

    h.mock.release("race");
    for resp in admitted {
        finish_stream(resp).await;
    }
    let u = eventually(SOON, "every reservation settled", || async {
        let u = usage(&h, &id).await;
        (u["reserved"]["in_flight"] == 0).then_some(u)
    })
    .await;
    let spent = f64_of(&u["used"]["cost"]);
    assert!(spent <= 520.0, "{u}");
    assert!(close(spent, 5.0 * REAL_COST), "charged the real usage: {u}");
    assert_eq!(u["used"]["requests"], 5, "{u}");
    assert_eq!(u["used"]["tokens"], 5 * REAL_TOKENS, "{u}");
    assert_eq!(u["reserved"]["tokens"], 0, "{u}");
    assert!(close(f64_of(&u["reserved"]["cost"]), 0.0), "{u}");
    h.stop().await;
}
both_backends!(
    fifty_requests_race_for_a_budget_of_five,
    fifty_requests_race_for_a_budget_of_five
);

/// Today's daily period in Asia/Shanghai (UTC+8 all year): its id and end.
fn shanghai_day() -> (String, DateTime<Utc>) {
    let tz = FixedOffset::east_opt(8 * 3600).unwrap();
    let local = Utc::now().with_timezone(&tz);
    let next = local
        .date_naive()
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(tz)
        .unwrap()
        .with_timezone(&Utc);
    (format!("d{}", local.format("%Y-%m-%d")), next)
}

async fn a_daily_quota_ends_at_local_midnight_and_survives_a_restart(backend: Backend) {
    let mut h = Harness::start(backend, &format!("{MODELS}timezone: Asia/Shanghai\n")).await;
    // Stay clear of midnight: the test's requests must share one day.
    let (today, end) = shanghai_day();
    if end - Utc::now() < chrono::Duration::seconds(30) {
        eventually(Duration::from_secs(60), "past local midnight", || async {
            (shanghai_day().0 != today).then_some(())
        })
        .await;
    }
    let (today, end) = shanghai_day();
    let (id, key) = h
        .create_key(json!({ "name": "daily", "quota": { "requests": 3, "period": "daily" } }))
        .await;
    for _ in 0..3 {
        let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 429);
    let expected = (end - Utc::now()).num_seconds();
    let retry = i64::try_from(retry_after(&resp)).unwrap();
    assert!(
        (retry - expected).abs() <= 2,
        "Retry-After {retry}s, next midnight in Shanghai in {expected}s"
    );
    assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "3");
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    let (code, kind, message) = openai_error(resp).await;
    assert_eq!(code, "quota_exceeded");
    assert_eq!(kind, "insufficient_quota");
    assert!(
        message.contains("quota of 3 requests is used up"),
        "{message}"
    );
    assert_eq!(h.mock.request_count(), 3);

    // Restart on the same database: shutdown writes the usage, the new server
    // reads it back.
    h.server.take().unwrap().shutdown().await;
    let file = h.dir.path().join("fastgate.yaml");
    let cfg =
        fastgate_config::load_str(&std::fs::read_to_string(&file).unwrap(), &|_| None).unwrap();
    let server = fastgate::server::start_from(cfg, Some(file)).await.unwrap();
    h.base = server.url();
    h.server = Some(server);
    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 429, "the quota survives the restart");
    let (code, _, _) = openai_error(resp).await;
    assert_eq!(code, "quota_exceeded");
    assert_eq!(h.mock.request_count(), 3);

    let u = usage(&h, &id).await;
    assert_eq!(u["period"]["kind"], "daily", "{u}");
    assert_eq!(u["period"]["id"], today.as_str(), "{u}");
    let ends: DateTime<Utc> = u["period"]["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends, end, "{u}");
    assert_eq!(u["used"]["requests"], 3, "{u}");
    assert_eq!(u["remaining"]["requests"], 0, "{u}");
    let history = u["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|r| r["period"] == today.as_str() && r["requests"] == 3),
        "{u}"
    );
    h.stop().await;
}
both_backends!(
    a_daily_quota_ends_at_local_midnight_and_survives_a_restart,
    a_daily_quota_ends_at_local_midnight_and_survives_a_restart
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_limit_counts_every_keys_requests() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let a = h.key().await;
    let b = h.key().await;
    let get = |key: &str, path: &str| h.http.get(h.url(path)).bearer_auth(key.to_string()).send();
    for (i, (key, path)) in [(&a, "/shared/1"), (&b, "/shared/2"), (&a, "/shared/3")]
        .into_iter()
        .enumerate()
    {
        let resp = get(key, path).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "3");
        assert_eq!(
            header_u64(&resp, "x-ratelimit-remaining-requests"),
            2 - i as u64
        );
    }
    for key in [&b, &a] {
        let resp = get(key, "/shared/4").await.unwrap();
        assert_eq!(resp.status(), 429);
        assert!((1..=60).contains(&retry_after(&resp)));
        let (code, _, message) = openai_error(resp).await;
        assert_eq!(code, "rate_limit_exceeded");
        assert!(
            message.contains("this route's requests_per_minute of 3"),
            "{message}"
        );
    }
    assert_eq!(h.mock.request_count(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_groups_concurrency_counts_every_key_and_only_that_model() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let a = h.key().await;
    let b = h.key().await;
    let held = chat(&h, &a, &chat_body("solo", 16, true), Some("solo")).await;
    assert_eq!(held.status(), 200);

    let resp = chat(&h, &b, &chat_body("solo", 16, false), None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "1");
    let (code, _, message) = openai_error(resp).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(
        message.contains("this model allows 1 concurrent requests"),
        "{message}"
    );
    // Another model is not affected, for either key.
    for key in [&b, &a] {
        let resp = chat(&h, key, &chat_body("gpt", 16, false), None).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(h.mock.request_count(), 3);

    h.mock.release("solo");
    finish_stream(held).await;
    eventually(SOON, "the model's slot given back", || async {
        let resp = chat(&h, &b, &chat_body("solo", 16, false), None).await;
        match resp.status().as_u16() {
            200 => Some(()),
            429 => None,
            s => panic!("unexpected status {s}"),
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_slot_and_reservation_come_back_when_its_client_goes_away() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (id, key) = h
        .create_key(
            json!({ "name": "one-at-a-time", "limits": { "max_concurrent": 1 },
                            "quota": { "tokens": 100000 } }),
        )
        .await;
    let resp = chat(&h, &key, &chat_body("gpt", 16, true), Some("cut")).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = tokio::time::timeout(SOON, stream.next())
        .await
        .expect("no first chunk")
        .expect("stream ended")
        .unwrap();
    assert!(!first.is_empty());

    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 429, "the slot is held by the open stream");
    assert_eq!(header(&resp, "retry-after"), "1");
    let (_, _, message) = openai_error(resp).await;
    assert!(
        message.contains("allows 1 concurrent requests"),
        "{message}"
    );
    let worst = usage(&h, &id).await["reserved"]["tokens"].as_u64().unwrap();
    assert!(worst > 16, "{worst}");

    // The client goes away mid-stream; the gate is never released. What was
    // streamed is charged (an estimate), the rest of the reservation released.
    drop(stream);
    let u = eventually(SOON, "the stream settled", || async {
        let u = usage(&h, &id).await;
        (u["reserved"]["in_flight"] == 0).then_some(u)
    })
    .await;
    assert_eq!(u["reserved"]["tokens"], 0, "{u}");
    let charged = u["used"]["tokens"].as_u64().unwrap();
    assert!((1..=worst).contains(&charged), "{u}");
    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 200, "the key's slot is back");
    eventually(SOON, "the upstream stream cancelled", || async {
        (h.mock.streams_cancelled() >= 1).then_some(())
    })
    .await;

    // A client that gives up before any answer: nothing is used.
    let before = usage(&h, &id).await["used"].clone();
    let gave_up = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-hang", "1")
        .timeout(Duration::from_millis(500))
        .json(&chat_body("gpt", 16, false))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    let requests = before["requests"].as_u64().unwrap() + 1;
    let u = eventually(SOON, "the abandoned request settled", || async {
        let u = usage(&h, &id).await;
        (u["reserved"]["in_flight"] == 0 && u["used"]["requests"] == requests).then_some(u)
    })
    .await;
    assert_eq!(u["used"]["tokens"], before["tokens"], "{u}");
    assert_eq!(u["reserved"]["tokens"], 0, "{u}");
    let resp = chat(&h, &key, &chat_body("gpt", 16, false), None).await;
    assert_eq!(resp.status(), 200, "the key's slot is back");
    h.mock.release("cut");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_counted_nowhere() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (id, key) = h
        .create_key(
            json!({ "name": "atomic", "limits": { "requests_per_minute": 2 },
                            "quota": { "cost": 1.0 } }),
        )
        .await;
    // Worst case over $100: more than the whole budget, in either protocol.
    let resp = chat(&h, &key, &chat_body("priced", 100_000, false), None).await;
    assert_eq!(resp.status(), 402);
    assert!(
        resp.headers().get("retry-after").is_none(),
        "{:?}",
        resp.headers()
    );
    let (code, _, message) = openai_error(resp).await;
    assert_eq!(code, "budget_exceeded");
    assert!(
        message.contains("more than this API key's whole budget of $1.000000")
            && message.contains("lower max_tokens"),
        "{message}"
    );
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&chat_body("priced", 100_000, false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 402);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("billing_error")),
        "{v}"
    );
    // Refused by the model group's concurrency, held by another key.
    let other = h.key().await;
    let held = chat(&h, &other, &chat_body("solo", 16, true), Some("atomic")).await;
    assert_eq!(held.status(), 200);
    let resp = chat(&h, &key, &chat_body("solo", 16, false), None).await;
    assert_eq!(resp.status(), 429);

    // None of the three used the key's window or its quota.
    for left in [1u64, 0] {
        let resp = chat(&h, &key, &chat_body("priced", 10, false), None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header_u64(&resp, "x-ratelimit-remaining-requests"), left);
    }
    let resp = chat(&h, &key, &chat_body("priced", 10, false), None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(usage(&h, &id).await["used"]["requests"], 2);
    assert_eq!(h.mock.request_count(), 3);
    h.mock.release("atomic");
    finish_stream(held).await;
    h.stop().await;
}
