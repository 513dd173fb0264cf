//! Limits shared by a fleet (docs/limits.md, "One instance and a fleet"): two
//! gateway instances on one PostgreSQL schema and one Redis key prefix enforce
//! one rate limit and one budget exactly; an instance that loses Redis (a
//! loopback proxy cut in front of it, never the machine's Redis) applies the
//! failure policy without hanging and returns to Redis, reconciling, when the
//! proxy is restored; an instance started without Redis serves in fallback
//! mode and joins once Redis answers.
//!
//! These tests run against the real PostgreSQL and Redis: they are built to run
//! when `FASTGATE_TEST_PG_URL` and `FASTGATE_TEST_REDIS_URL` are set at build
//! time, and then fail when either service is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fleet_support/cases.rs"]
mod cases;
mod common;
mod fleet_support;
mod subprocess;

use std::time::{Duration, Instant};

use common::{Backend, Harness, http_client};
use fleet_support::proxy::RedisProxy;
use fleet_support::redis::RedisKeys;
use fleet_support::{
    Load, OUTAGE_POLICY, Outcome, SERIAL, SETTLED_USD, SWITCH_WITHIN, WORST_CASE_USD,
    backend_gauge, backend_of, chat, chat_outcome, echo, echo_n, gateway_yaml, metrics, settled,
    statuses, stored_requests, usage, wait_gauge, wait_key_known, wait_usage,
};
use futures_util::{StreamExt, stream};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn two_instances_enforce_one_rate_limit_exactly() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("exact");
    let yaml = gateway_yaml(&redis.url, &redis.prefix, "");
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let b = h.start_peer().await;
    let (id, key) = h
        .create_key(json!({ "name": "fleet-rpm", "limits": { "requests_per_minute": 100 } }))
        .await;
    let bases = [h.base.clone(), b.base.clone()];
    let created = Instant::now();
    for base in &bases {
        wait_key_known(base, &key).await;
        assert_eq!(backend_of(base, &id).await, "redis", "{base}");
    }
    eprintln!(
        "exactness: the key known to B {:?} after its creation on A",
        created.elapsed()
    );

    let http = http_client();
    let start = Instant::now();
    let outcomes: Vec<(usize, Outcome)> = stream::iter(0..300usize)
        .map(|i| {
            let (http, key, base) = (&http, &key, &bases[i % 2]);
            async move { (i % 2, echo(http, base, key, &format!("r{i}")).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = start.elapsed();
    // A fixed window of 60 s opened with the first request: past it, a new
    // window would rightly admit more.
    assert!(took < Duration::from_secs(50), "300 requests took {took:?}");

    let mut split = [[0usize; 2]; 2];
    let mut remaining_admitted = Vec::new();
    for (instance, o) in &outcomes {
        let remaining = o.remaining.expect("x-ratelimit-remaining-requests");
        assert!(remaining >= 0, "negative remaining: {o:?}");
        match o.status {
            200 => {
                split[*instance][0] += 1;
                remaining_admitted.push(remaining);
            }
            429 => {
                split[*instance][1] += 1;
                assert_eq!(remaining, 0, "{o:?}");
                assert_eq!(o.code.as_deref(), Some("rate_limit_exceeded"), "{o:?}");
                assert!(o.retry_after.is_some(), "429 without Retry-After: {o:?}");
            }
            _ => panic!("unexpected answer: {o:?}"),
        }
    }
    eprintln!(
        "exactness: A admitted {} refused {}, B admitted {} refused {}, in {took:?}",
        split[0][0], split[0][1], split[1][0], split[1][1]
    );
    assert_eq!(split[0][0] + split[1][0], 100, "admitted: {split:?}");
    assert_eq!(split[0][1] + split[1][1], 200, "refused: {split:?}");
    // One atomic count per admission: every remaining value 99..=0 exactly once.
    remaining_admitted.sort_unstable();
    assert_eq!(remaining_admitted, (0..100).collect::<Vec<i64>>());
    assert_eq!(h.mock.request_count(), 100, "requests forwarded upstream");
    for base in &bases {
        let v = usage(base, &id).await;
        let window = v["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["limit_kind"] == "requests_per_minute")
            .unwrap_or_else(|| panic!("no minute window on {base}: {v}"))
            .clone();
        assert_eq!(
            (window["limit"].as_u64(), window["used"].as_u64()),
            (Some(100), Some(100))
        );
    }
    b.stop().await;
    h.stop().await;
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn a_budget_admits_exactly_its_worst_cases_across_two_instances() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("budget");
    let yaml = gateway_yaml(&redis.url, &redis.prefix, "");
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let b = h.start_peer().await;
    let budget = 5.0 * WORST_CASE_USD;
    let (id, key) = h
        .create_key(
            json!({ "name": "fleet-budget", "quota": { "cost": budget, "period": "never" } }),
        )
        .await;
    let bases = [h.base.clone(), b.base.clone()];
    for base in &bases {
        wait_key_known(base, &key).await;
    }

    // 50 at once; the admitted ones stay open (held by the mock) until released.
    let http = http_client();
    let sent = (0..50usize).map(|i| {
        let (http, key, base) = (&http, &key, &bases[i % 2]);
        async move { (i % 2, chat(http, base, key, Some("budget")).await) }
    });
    let answers = futures_util::future::join_all(sent).await;
    let mut held = Vec::new();
    let mut split = [[0usize; 2]; 2];
    for (instance, resp) in answers {
        if resp.status() == 200 {
            split[instance][0] += 1;
            held.push(resp);
            continue;
        }
        split[instance][1] += 1;
        let o = Outcome::read(resp, Instant::now()).await;
        assert_eq!(
            (o.status, o.code.as_deref()),
            (402, Some("budget_exceeded")),
            "{o:?}"
        );
    }
    eprintln!(
        "budget: A admitted {} refused {}, B admitted {} refused {}",
        split[0][0], split[0][1], split[1][0], split[1][1]
    );
    assert_eq!(held.len(), 5, "admitted: {split:?}");
    assert_eq!(h.mock.request_count(), 5, "requests forwarded upstream");
    let v = usage(&bases[1], &id).await;
    assert_eq!(settled(&v), (5, 0.0, budget, 5), "held: {v}");

    h.mock.release("budget");
    for resp in held {
        let body = resp.text().await.unwrap();
        assert!(body.contains("[DONE]"), "stream not finished: {body}");
    }
    let spent = 5.0 * SETTLED_USD;
    for base in &bases {
        let v = wait_usage(base, &id, SWITCH_WITHIN, "settled on Redis", |v| {
            settled(v) == (5, spent, 0.0, 0)
        })
        .await;
        assert!(v["used"]["cost"].as_f64().unwrap() <= budget);
    }
    // Each instance writes what it counted to the database: 5 in all.
    wait_usage(&bases[0], &id, SWITCH_WITHIN, "5 requests stored", |v| {
        stored_requests(v) == 5
    })
    .await;
    b.stop().await;
    h.stop().await;
    redis.cleanup();
}

/// Keys of the outage test: a load key (a limit, so that every admission
/// goes to Redis), a key with a small rate limit, a key with a budget.
struct OutageKeys {
    load: (String, String),
    rate: (String, String),
    quota: (String, String),
}

async fn outage_keys(h: &Harness) -> OutageKeys {
    let load = h
        .create_key(json!({ "name": "load", "limits": { "requests_per_minute": 1_000_000 } }))
        .await;
    let rate = h
        .create_key(json!({ "name": "rpm10", "limits": { "requests_per_minute": 10 } }))
        .await;
    let quota = h
        .create_key(json!({ "name": "budget", "quota": { "cost": 1000.0, "period": "never" } }))
        .await;
    OutageKeys { load, rate, quota }
}

/// While Redis is cut: the rate-limited key gets its local share, the key
/// with a quota is refused with 503, the usage view says fallback; every
/// answer comes at once (the instance no longer waits for Redis).
async fn check_fallback_policy(h: &Harness, keys: &OutageKeys) {
    let rate = echo_n(&h.base, &keys.rate.1, 10).await;
    assert_eq!(
        statuses(&rate),
        [200, 200, 200, 200, 200, 429, 429, 429, 429, 429],
        "requests_per_minute 10 over expected_instances 2: {rate:?}"
    );
    assert_eq!(rate[4].remaining, Some(0), "{:?}", rate[4]);
    assert_eq!(rate[5].code.as_deref(), Some("rate_limit_exceeded"));
    let q = chat_outcome(&http_client(), &h.base, &keys.quota.1).await;
    assert_eq!(
        (q.status, q.code.as_deref()),
        (503, Some("limits_unavailable")),
        "{q:?}"
    );
    let message = q.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("quota cannot be checked") && message.contains("Redis"),
        "{message}"
    );
    assert_eq!(q.retry_after.as_deref(), Some("1"));
    let slowest = rate.iter().chain([&q]).map(|o| o.took).max().unwrap();
    assert!(slowest < Duration::from_secs(1), "answered in {slowest:?}");
    assert_eq!(backend_of(&h.base, &keys.quota.0).await, "fallback");
    // Still ready (requests are served under the policy), and it says why.
    let health = reqwest::Client::new()
        .get(format!("{}/health", h.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["limits"], "fallback", "{health}");
}

/// Back on Redis: the settlements of the requests held across the cut were
/// replayed (their real cost, nothing reserved), and the key with a quota is
/// admitted again.
async fn check_recovered(h: &Harness, keys: &OutageKeys, held: u64) {
    let spent = held as f64 * SETTLED_USD;
    wait_usage(
        &h.base,
        &keys.quota.0,
        SWITCH_WITHIN,
        "settlements replayed",
        |v| settled(v) == (held, spent, 0.0, 0),
    )
    .await;
    let again = chat_outcome(&h.http, &h.base, &keys.quota.1).await;
    assert_eq!(again.status, 200, "quota key after recovery: {again:?}");
    wait_usage(
        &h.base,
        &keys.quota.0,
        SWITCH_WITHIN,
        "the new request settled",
        |v| settled(v) == (held + 1, spent + SETTLED_USD, 0.0, 0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn redis_cut_mid_load_applies_the_policy_and_recovers() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("outage");
    let proxy = RedisProxy::start(&redis.target.hostport).await;
    let yaml = gateway_yaml(&redis.target.via(proxy.port), &redis.prefix, OUTAGE_POLICY);
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let keys = outage_keys(&h).await;
    assert_eq!(backend_of(&h.base, &keys.quota.0).await, "redis");

    // Three budget requests admitted on Redis, held open across the cut.
    let held: Vec<reqwest::Response> = futures_util::future::join_all(
        (0..3).map(|_| chat(&h.http, &h.base, &keys.quota.1, Some("q"))),
    )
    .await;
    assert!(held.iter().all(|r| r.status() == 200), "{held:?}");
    let v = usage(&h.base, &keys.quota.0).await;
    assert_eq!(settled(&v), (3, 0.0, 3.0 * WORST_CASE_USD, 3), "{v}");

    let load = Load::start(&h.base, &keys.load.1);
    load.wait_count(50, SWITCH_WITHIN).await;
    let before_cut = load.count();
    proxy.cut();
    let to_fallback = wait_gauge(&h.base, "fallback", SWITCH_WITHIN).await;
    // The held requests end during the outage: their settlements wait.
    h.mock.release("q");
    for resp in held {
        assert!(resp.text().await.unwrap().contains("[DONE]"));
    }
    check_fallback_policy(&h, &keys).await;
    load.wait_count(load.count() + 50, SWITCH_WITHIN).await;
    let during = load.count() - before_cut;

    proxy.restore();
    let restored = Instant::now();
    let to_redis = wait_gauge(&h.base, "redis", SWITCH_WITHIN).await;
    assert_eq!(backend_of(&h.base, &keys.quota.0).await, "redis");
    load.wait_count(load.count() + 50, SWITCH_WITHIN).await;
    let outcomes = load.finish().await;
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap();
    eprintln!(
        "outage: fallback {to_fallback:?} after the cut, redis {to_redis:?} after the restore \
         ({:?} incl. checks); load {} requests ({during} around the outage), slowest {slowest:?}",
        restored.elapsed(),
        outcomes.len()
    );
    assert!(
        outcomes.iter().all(|o| o.status == 200),
        "load refused: {:?}",
        outcomes.iter().find(|o| o.status != 200)
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a request took {slowest:?}"
    );

    check_recovered(&h, &keys, 3).await;
    h.stop().await;
    drop(proxy);
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn quota_counted_locally_during_an_outage_is_added_to_redis() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("reconcile");
    let proxy = RedisProxy::start(&redis.target.hostport).await;
    let policy = OUTAGE_POLICY.replace("quotas: deny", "quotas: local");
    let yaml = gateway_yaml(&redis.target.via(proxy.port), &redis.prefix, &policy);
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let (id, key) = h
        .create_key(json!({ "name": "q5", "quota": { "requests": 5, "period": "never" } }))
        .await;

    // Two on Redis, written to the database (the local fallback counts from it).
    assert_eq!(statuses(&echo_n(&h.base, &key, 2).await), [200, 200]);
    wait_usage(&h.base, &id, SWITCH_WITHIN, "2 requests stored", |v| {
        stored_requests(v) == 2
    })
    .await;

    proxy.cut();
    let local = echo_n(&h.base, &key, 5).await;
    assert_eq!(statuses(&local), [200, 200, 200, 429, 429], "{local:?}");
    assert_eq!(
        local[3].code.as_deref(),
        Some("quota_exceeded"),
        "{:?}",
        local[3]
    );
    let v = usage(&h.base, &id).await;
    assert_eq!(
        (v["backend"].as_str(), v["used"]["requests"].as_u64()),
        (Some("fallback"), Some(5)),
        "{v}"
    );

    proxy.restore();
    let restored = Instant::now();
    wait_usage(&h.base, &id, SWITCH_WITHIN, "back on Redis", |v| {
        v["backend"] == "redis"
    })
    .await;
    let back = restored.elapsed();
    // Redis's count: 2 of its own + 3 reconciled; the sixth is refused there.
    let v = usage(&h.base, &id).await;
    assert_eq!(v["used"]["requests"].as_u64(), Some(5), "{v}");
    let sixth = echo_n(&h.base, &key, 1).await;
    assert_eq!(
        (sixth[0].status, sixth[0].code.as_deref()),
        (429, Some("quota_exceeded"))
    );
    wait_usage(&h.base, &id, SWITCH_WITHIN, "5 requests stored", |v| {
        stored_requests(v) == 5
    })
    .await;
    eprintln!("reconcile: back on redis {back:?} after the restore");
    h.stop().await;
    drop(proxy);
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn an_instance_started_without_redis_joins_when_it_answers() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("late");
    let port = common::dead_port();
    let yaml = gateway_yaml(&redis.target.via(port), &redis.prefix, OUTAGE_POLICY);
    let started = Instant::now();
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let start_took = started.elapsed();
    assert!(
        start_took < Duration::from_secs(10),
        "start took {start_took:?}"
    );
    let (rate_id, rate) = h
        .create_key(json!({ "name": "rpm4", "limits": { "requests_per_minute": 4 } }))
        .await;
    let (quota_id, quota) = h
        .create_key(json!({ "name": "q", "quota": { "requests": 100, "period": "never" } }))
        .await;
    assert_eq!(backend_of(&h.base, &rate_id).await, "fallback");
    assert_eq!(
        statuses(&echo_n(&h.base, &rate, 4).await),
        [200, 200, 429, 429]
    );
    let q = echo_n(&h.base, &quota, 1).await;
    assert_eq!(
        (q[0].status, q[0].code.as_deref()),
        (503, Some("limits_unavailable"))
    );

    let proxy = RedisProxy::start_on(port, &redis.target.hostport).await;
    let up = Instant::now();
    wait_usage(&h.base, &quota_id, SWITCH_WITHIN, "joined Redis", |v| {
        v["backend"] == "redis"
    })
    .await;
    let joined = up.elapsed();
    wait_gauge(&h.base, "redis", SWITCH_WITHIN).await;
    eprintln!("late redis: started in {start_took:?}, joined {joined:?} after Redis came up");
    assert_eq!(statuses(&echo_n(&h.base, &quota, 1).await), [200]);
    // Redis's own window for the key: the fallback's count is not carried over.
    assert_eq!(
        statuses(&echo_n(&h.base, &rate, 5).await),
        [200, 200, 200, 200, 429]
    );
    let v = usage(&h.base, &quota_id).await;
    assert_eq!(v["used"]["requests"].as_u64(), Some(1), "{v}");
    assert!(
        !redis.keys().is_empty(),
        "nothing written under {}",
        redis.prefix
    );
    h.stop().await;
    drop(proxy);
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn the_backend_gauge_shows_the_mode_from_the_start() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("gauge");
    let pg = fastgate_store::testing::pg_test_url().expect("FASTGATE_TEST_PG_URL");
    let (store, schema) = fastgate_store::testing::connect_isolated_pg(&pg)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at FASTGATE_TEST_PG_URL unreachable: {e}"));
    store.close().await;
    let sep = if pg.contains('?') { '&' } else { '?' };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fastgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{ listen: \"127.0.0.1:0\" }}\n\
             database: {{ url: \"{pg}{sep}options=-c%20search_path%3D{schema}\" }}\n\
             admin: {{ token: \"{}\" }}\n\
             data_dir: \"{}\"\n\
             redis: {{ url: \"{}\", key_prefix: \"{}\" }}\n",
            common::ADMIN_TOKEN,
            dir.path().display(),
            redis.url,
            redis.prefix
        ),
    )
    .unwrap();
    // A process of its own: its metrics recorder is installed by this server.
    let gw = subprocess::Gateway::start(&config, dir.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (shown, lines) = loop {
        let text = metrics(&gw.base).await;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("fastgate_limits_backend"))
            .map(str::to_string)
            .collect();
        if backend_gauge(&text, "redis") == Some(1.0) || Instant::now() > deadline {
            break (backend_gauge(&text, "redis") == Some(1.0), lines);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = gw.logs();
    let _ = gw.stop();
    let _ = fastgate_store::testing::drop_isolated_pg(&pg, &schema).await;
    redis.cleanup();
    assert!(
        shown,
        "connected to Redis at start, yet /metrics has {lines:?} for fastgate_limits_backend\n{logs}"
    );
}
