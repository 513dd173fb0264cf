//! RedisBackend when Redis goes away: bounded failures, queued settlements,
//! recovery and replay (a loopback proxy cuts the test Redis off; the
//! machine's Redis itself is never touched).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod redis_support;

use std::time::{Duration, Instant};

use fastgate_limits::{
    Demand, KeyUsageView, LimitBackend, Limits, QuotaCheck, RedisBackend, RedisSettings, Scope,
    ScopeKind, Usage,
};
use redis_support::*;

const BOUND: Duration = Duration::from_secs(60);

async fn view(b: &RedisBackend, key: &Scope, check: &QuotaCheck) -> KeyUsageView {
    b.usage(Some(key), Some(check)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn an_outage_fails_fast_queues_settlements_and_recovers() {
    let Some(url) = redis_url("an_outage_fails_fast_queues_settlements_and_recovers") else {
        return;
    };
    let prefix = unique_prefix("outage");
    tokio::time::timeout(BOUND, async {
        let (_, upstream) = via_port(&url, 0);
        let proxy = Proxy::start(upstream).await;
        let (proxied_url, _) = via_port(&url, proxy.port);
        let command_timeout = Duration::from_millis(300);
        let b = RedisBackend::connect(RedisSettings {
            command_timeout,
            connect_timeout: Duration::from_secs(2),
            ..settings(&proxied_url, &prefix, Duration::from_secs(60))
        })
        .await
        .unwrap();
        let direct = backend(&url, &prefix).await;
        let key = scope(
            ScopeKind::Key,
            "ko",
            Limits {
                max_concurrent: Some(10),
                ..Limits::default()
            },
        );
        let check = daily_quota("ko", quota(None, Some(100_000), Some(10.0)));
        let demand = Demand {
            tokens: 100,
            cost: 0.01,
        };
        let req = || request(vec![key.clone()], Some(check.clone()), demand);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(b.admit(&req()).await.unwrap().unwrap());
        }

        proxy.cut();
        let started = Instant::now();
        let failed = tokio::time::timeout(Duration::from_secs(5), b.admit(&req()))
            .await
            .expect("admit is bounded by the command timeout");
        assert!(failed.is_err(), "admitted through a cut: {failed:?}");
        let took = started.elapsed();
        assert!(
            took < command_timeout + Duration::from_millis(700),
            "took {took:?}"
        );
        let ping = tokio::time::timeout(Duration::from_secs(5), b.ping())
            .await
            .unwrap();
        assert!(ping.is_err());

        for h in held {
            h.reservation.settle(Usage {
                tokens: 40,
                cost: 0.004,
            });
        }
        // Three settlements, and the release of the admission whose fate is
        // unknown (it timed out).
        eventually(Duration::from_secs(5), "queued settlements", || async {
            b.pending() == 4
        })
        .await;
        // The timed-out admission may still have run on Redis (a command the
        // cut proxy had already forwarded): both outcomes are legitimate, and
        // its queued release must set either right.
        let v = view(&direct, &key, &check).await;
        let ran = v.reserved.in_flight.checked_sub(3).expect("three held");
        assert!(ran <= 1, "{v:?}");
        assert_eq!((v.reserved.tokens, v.used.tokens), (300 + 100 * ran, 0));
        assert!(b.replay_pending().await.is_err(), "replayed through a cut");
        assert_eq!(b.pending(), 4, "a failed replay keeps everything");

        proxy.restore();
        eventually(Duration::from_secs(10), "redis back", || async {
            b.ping().await.is_ok()
        })
        .await;
        assert_eq!(b.replay_pending().await.unwrap(), 4);
        assert_eq!(b.pending(), 0);
        let v = view(&direct, &key, &check).await;
        assert_eq!(v.used.requests, 3 + ran, "requests count from admission");
        assert_eq!((v.used.tokens, v.reserved.tokens), (120, 0));
        assert!((v.used.cost - 0.012).abs() < 1e-9);
        assert_eq!((v.reserved.in_flight, v.reserved.cost), (0, 0.0));
        let again = b.admit(&req()).await.unwrap().unwrap();
        assert!(again.reservation.is_held());
    })
    .await
    .expect("test bounded");
    cleanup(&url, &prefix).await;
}

#[tokio::test]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn a_connection_that_went_silent_is_replaced() {
    let Some(url) = redis_url("a_connection_that_went_silent_is_replaced") else {
        return;
    };
    let prefix = unique_prefix("silent");
    tokio::time::timeout(BOUND, async {
        let (_, upstream) = via_port(&url, 0);
        let proxy = Proxy::start(upstream).await;
        let (proxied_url, _) = via_port(&url, proxy.port);
        let b = RedisBackend::connect(RedisSettings {
            command_timeout: Duration::from_millis(200),
            ..settings(&proxied_url, &prefix, Duration::from_secs(60))
        })
        .await
        .unwrap();
        proxy.cut();
        assert!(b.ping().await.is_err());
        // The old connection never answers nor closes; only a new one works.
        proxy.forward_new_only();
        eventually(Duration::from_secs(10), "a new connection", || async {
            b.ping().await.is_ok()
        })
        .await;
        let key = scope(
            ScopeKind::Key,
            "ks",
            Limits {
                requests_per_minute: Some(5),
                ..Limits::default()
            },
        );
        let ok = b
            .admit(&request(vec![key], None, Demand::default()))
            .await
            .unwrap();
        assert!(ok.is_ok());
    })
    .await
    .expect("test bounded");
    cleanup(&url, &prefix).await;
}

#[tokio::test]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn connecting_to_nothing_fails_within_the_connect_timeout() {
    let Some(url) = redis_url("connecting_to_nothing_fails_within_the_connect_timeout") else {
        return;
    };
    // A port nobody listens on: bind one, then free it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (dead_url, _) = via_port(&url, port);
    let started = Instant::now();
    let connect = RedisBackend::connect(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        ..settings(&dead_url, "unused:", Duration::from_secs(1))
    });
    let err = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .expect("connect is bounded")
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.0.contains(&format!("127.0.0.1:{port}")), "{err}");

    // A black hole (accepts, never answers) fails within the timeouts too.
    let (_, upstream) = via_port(&url, 0);
    let proxy = Proxy::start(upstream).await;
    proxy.cut();
    let (hole_url, _) = via_port(&url, proxy.port);
    let connect = RedisBackend::connect(RedisSettings {
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        ..settings(&hole_url, "unused:", Duration::from_secs(1))
    });
    let r = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .expect("connect is bounded");
    assert!(r.is_err());
}

#[test]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
fn settling_without_a_runtime_queues_the_settlement() {
    let Some(url) = redis_url("settling_without_a_runtime_queues_the_settlement") else {
        return;
    };
    let prefix = unique_prefix("nort");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = scope(
        ScopeKind::Key,
        "kn",
        Limits {
            max_concurrent: Some(1),
            ..Limits::default()
        },
    );
    let b = rt.block_on(backend(&url, &prefix));
    let admitted = rt
        .block_on(b.admit(&request(vec![key.clone()], None, Demand::default())))
        .unwrap()
        .unwrap();
    // Outside the runtime: nothing to spawn on, so it waits in the queue.
    admitted.reservation.settle(Usage::default());
    assert_eq!(b.pending(), 1);
    rt.block_on(async {
        tokio::time::timeout(BOUND, async {
            assert_eq!(b.replay_pending().await.unwrap(), 1);
            let v = b.usage(Some(&key), None).await.unwrap();
            assert_eq!(v.windows[0].used, 0, "the slot was given back");
            cleanup(&url, &prefix).await;
        })
        .await
        .unwrap();
    });
}
