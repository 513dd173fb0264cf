//! Fleet cases beyond the main four (a module of `limits_fleet.rs`, which
//! declares it): concurrency slots shared by two instances, a spent quota
//! raised by the operator, a request admitted during an outage that ends
//! after it, and counters Redis has lost.

use std::time::Duration;

use crate::common::{Backend, Harness};
use crate::fleet_support::proxy::RedisProxy;
use crate::fleet_support::redis::RedisKeys;
use crate::fleet_support::{
    OUTAGE_POLICY, Outcome, SERIAL, SETTLED_USD, SWITCH_WITHIN, backend_of, chat, chat_outcome,
    echo_n, gateway_yaml, settled, statuses, stored_cost, stored_requests, usage, wait_key_known,
    wait_usage,
};
use serde_json::json;

/// Polls with requests (a refusal counts nothing) until one is admitted; the
/// refusals seen first.
async fn wait_admitted(base: &str, key: &str, within: Duration) -> usize {
    let start = std::time::Instant::now();
    let mut refused = 0;
    loop {
        let o = echo_n(base, key, 1).await.remove(0);
        match o.status {
            200 => return refused,
            429 => refused += 1,
            _ => panic!("{base}: {o:?}"),
        }
        assert!(
            start.elapsed() < within,
            "{base}: still refused after {within:?} ({refused} refusals), last: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn a_spent_quota_raised_by_the_operator_admits_again() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("raise");
    let h = Harness::start(
        Backend::Postgres,
        &gateway_yaml(&redis.url, &redis.prefix, ""),
    )
    .await;
    let b = h.start_peer().await;
    let (id, key) = h
        .create_key(json!({ "name": "daily2", "quota": { "requests": 2, "period": "daily" } }))
        .await;
    let bases = [h.base.clone(), b.base.clone()];
    for base in &bases {
        wait_key_known(base, &key).await;
    }
    assert_eq!(statuses(&echo_n(&bases[0], &key, 2).await), [200, 200]);
    for base in &bases {
        let o = echo_n(base, &key, 1).await.remove(0);
        assert_eq!(
            (o.status, o.code.as_deref()),
            (429, Some("quota_exceeded")),
            "{o:?}"
        );
    }
    let resp = h
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/api/keys/{id}"),
            Some(json!({ "quota": { "requests": 10, "period": "daily" } })),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // A applies the change at once, B on its next poll of the database.
    for base in &bases {
        let refused = wait_admitted(base, &key, Duration::from_secs(5)).await;
        eprintln!("raised quota: {base} admitted after {refused} refusals");
    }
    let v = usage(&bases[1], &id).await;
    assert_eq!(v["used"]["requests"].as_u64(), Some(4), "{v}");
    b.stop().await;
    h.stop().await;
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn a_request_admitted_in_an_outage_and_settled_after_it_counts_in_redis() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("late-settle");
    let proxy = RedisProxy::start(&redis.target.hostport).await;
    let policy = OUTAGE_POLICY.replace("quotas: deny", "quotas: local");
    let yaml = gateway_yaml(&redis.target.via(proxy.port), &redis.prefix, &policy);
    let h = Harness::start(Backend::Postgres, &yaml).await;
    let (id, key) = h
        .create_key(json!({ "name": "b100", "quota": { "cost": 100.0, "period": "never" } }))
        .await;
    assert_eq!(backend_of(&h.base, &id).await, "redis");
    // One request on Redis first: Redis holds the key's totals from then on
    // (without them, it would seed them from the database, which counts all).
    let first = chat_outcome(&h.http, &h.base, &key).await;
    assert_eq!(first.status, 200, "{first:?}");
    wait_usage(
        &h.base,
        &id,
        SWITCH_WITHIN,
        "the first request settled",
        |v| settled(v) == (1, SETTLED_USD, 0.0, 0),
    )
    .await;

    proxy.cut();
    // Admitted on this instance's own counters (Redis does not answer), and
    // held open by the mock past the end of the outage.
    let held = chat(&h.http, &h.base, &key, Some("late")).await;
    assert_eq!(held.status(), 200);
    assert_eq!(backend_of(&h.base, &id).await, "fallback");
    proxy.restore();
    let v = wait_usage(&h.base, &id, SWITCH_WITHIN, "back on Redis", |v| {
        v["backend"] == "redis"
    })
    .await;
    // Reconciled: the admission counted during the outage.
    assert_eq!(v["used"]["requests"].as_u64(), Some(2), "{v}");

    h.mock.release("late");
    assert!(held.text().await.unwrap().contains("[DONE]"));
    // Its cost is known only now, after the outage: each instance stores
    // what it counted, and Redis must learn it too (it has the key's totals,
    // so it will not seed them from the database again).
    wait_usage(&h.base, &id, SWITCH_WITHIN, "both costs stored", |v| {
        stored_cost(v) == 2.0 * SETTLED_USD
    })
    .await;
    wait_usage(
        &h.base,
        &id,
        Duration::from_secs(5),
        "both costs in Redis",
        |v| settled(v) == (2, 2.0 * SETTLED_USD, 0.0, 0),
    )
    .await;
    h.stop().await;
    drop(proxy);
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn counters_redis_lost_are_seeded_from_the_database() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("seed");
    let h = Harness::start(
        Backend::Postgres,
        &gateway_yaml(&redis.url, &redis.prefix, ""),
    )
    .await;
    let (id, key) = h
        .create_key(json!({ "name": "q4", "quota": { "requests": 4, "period": "never" } }))
        .await;
    assert_eq!(statuses(&echo_n(&h.base, &key, 3).await), [200, 200, 200]);
    wait_usage(&h.base, &id, SWITCH_WITHIN, "3 requests stored", |v| {
        stored_requests(v) == 3
    })
    .await;
    // Redis restarted without persistence, as far as this fleet can tell.
    assert!(redis.wipe().unwrap() > 0, "no keys under {}", redis.prefix);
    let v = usage(&h.base, &id).await;
    assert_eq!(v["used"]["requests"].as_u64(), Some(3), "seeded view: {v}");
    let last = echo_n(&h.base, &key, 2).await;
    assert_eq!(statuses(&last), [200, 429], "{last:?}");
    assert_eq!(last[1].code.as_deref(), Some("quota_exceeded"));
    wait_usage(&h.base, &id, SWITCH_WITHIN, "4 requests stored", |v| {
        stored_requests(v) == 4 && v["used"]["requests"].as_u64() == Some(4)
    })
    .await;
    h.stop().await;
    redis.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(fastgate_pg_tests, fastgate_redis_tests)),
    ignore = "set FASTGATE_TEST_PG_URL and FASTGATE_TEST_REDIS_URL to run the fleet tests"
)]
async fn two_instances_share_concurrency_slots() {
    let _serial = SERIAL.lock().await;
    let redis = RedisKeys::new("slots");
    let h = Harness::start(
        Backend::Postgres,
        &gateway_yaml(&redis.url, &redis.prefix, ""),
    )
    .await;
    let b = h.start_peer().await;
    let (id, key) = h
        .create_key(json!({ "name": "c3", "limits": { "max_concurrent": 3 } }))
        .await;
    let bases = [h.base.clone(), b.base.clone()];
    for base in &bases {
        wait_key_known(base, &key).await;
    }
    let sent = (0..10usize).map(|i| {
        let (http, key, base) = (&h.http, &key, &bases[i % 2]);
        async move { chat(http, base, key, Some("slots")).await }
    });
    let mut held = Vec::new();
    for resp in futures_util::future::join_all(sent).await {
        if resp.status() == 200 {
            held.push(resp);
            continue;
        }
        let o = Outcome::read(resp, std::time::Instant::now()).await;
        assert_eq!(
            (o.status, o.code.as_deref()),
            (429, Some("rate_limit_exceeded")),
            "{o:?}"
        );
        assert_eq!(o.retry_after.as_deref(), Some("1"), "{o:?}");
    }
    assert_eq!(held.len(), 3, "admitted of 10 with max_concurrent 3");
    h.mock.release("slots");
    for resp in held {
        assert!(resp.text().await.unwrap().contains("[DONE]"));
    }
    // Every slot given back: three at once are admitted again, on either instance.
    wait_usage(&bases[1], &id, SWITCH_WITHIN, "no slot held", |v| {
        v["windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["limit_kind"] != "max_concurrent" || w["used"] == 0)
    })
    .await;
    let again = futures_util::future::join_all(
        (0..3usize).map(|i| chat_outcome(&h.http, &bases[i % 2], &key)),
    )
    .await;
    assert_eq!(statuses(&again), [200, 200, 200], "{again:?}");
    b.stop().await;
    h.stop().await;
    redis.cleanup();
}
