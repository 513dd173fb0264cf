//! RedisBackend against a real Redis (FASTGATE_TEST_REDIS_URL): exact windows
//! across instances, token reservations and their settlement, all-or-nothing
//! admission, the budget race, lease expiry and seeding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod redis_support;

use std::time::{Duration, Instant};

use fastgate_limits::{
    AdmitError, AdmitResult, Demand, LimitBackend, LimitKind, Limits, PeriodUsage, RedisBackend,
    Refusal, ScopeKind, Totals, Usage,
};
use redis_support::*;

const BOUND: Duration = Duration::from_secs(60);

fn refused(r: AdmitResult) -> Refusal {
    match r {
        Err(AdmitError::Limited(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn rpm(n: u32) -> Limits {
    Limits {
        requests_per_minute: Some(n),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn two_instances_admit_exactly_the_limit_of_a_window() {
    let Some(url) = redis_url("two_instances_admit_exactly_the_limit_of_a_window") else {
        return;
    };
    let prefix = unique_prefix("exact");
    tokio::time::timeout(BOUND, async {
        let a = backend(&url, &prefix).await;
        let b = backend(&url, &prefix).await;
        // An id with a separator and a space must not disturb the key names.
        let key = scope(ScopeKind::Key, "key:a b", rpm(100));
        let mut tasks = Vec::new();
        for i in 0..300 {
            let backend = if i % 2 == 0 { a.clone() } else { b.clone() };
            let req = request(vec![key.clone()], None, Demand::default());
            tasks.push(tokio::spawn(async move { backend.admit(&req).await }));
        }
        let (mut admitted, mut refusals, mut tightest) = (0, 0, u64::MAX);
        for t in tasks {
            match t.await.unwrap().expect("redis answered") {
                Ok(ok) => {
                    admitted += 1;
                    let w = ok.requests.expect("a request window");
                    assert_eq!(w.limit, 100);
                    assert!(w.reset <= Duration::from_secs(60));
                    tightest = tightest.min(w.remaining);
                    assert!(!ok.reservation.is_held(), "rpm alone holds nothing");
                }
                Err(AdmitError::Limited(r)) => {
                    refusals += 1;
                    assert_eq!(
                        (r.kind, r.scope),
                        (LimitKind::RequestsPerMinute, ScopeKind::Key)
                    );
                    assert_eq!((r.limit, r.used, r.requested), (100.0, 100.0, 1.0));
                    let retry = r.retry_after.expect("a window reset");
                    assert!(retry <= Duration::from_secs(60) && retry > Duration::ZERO);
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!((admitted, refusals), (100, 200));
        assert_eq!(tightest, 0, "the 100th request saw nothing remaining");
        let view = a.usage(Some(&key), None).await.unwrap();
        assert_eq!(view.backend, "redis");
        assert_eq!(view.windows.len(), 1);
        assert_eq!(view.windows[0].limit_kind, "requests_per_minute");
        assert_eq!((view.windows[0].limit, view.windows[0].used), (100, 100));
        assert!((1..=60).contains(&view.windows[0].resets_in_secs));
    })
    .await
    .expect("test bounded");
    cleanup(&url, &prefix).await;
}

async fn tokens_used(b: &RedisBackend, s: &fastgate_limits::Scope) -> u64 {
    let view = b.usage(Some(s), None).await.unwrap();
    view.windows
        .iter()
        .find(|w| w.limit_kind == "tokens_per_minute")
        .map(|w| w.used)
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn tokens_per_minute_hold_the_worst_case_until_settled() {
    let Some(url) = redis_url("tokens_per_minute_hold_the_worst_case_until_settled") else {
        return;
    };
    let prefix = unique_prefix("tpm");
    tokio::time::timeout(BOUND, async {
        let b = backend(&url, &prefix).await;
        let tpm = Limits {
            tokens_per_minute: Some(1000),
            ..Limits::default()
        };
        let s = scope(ScopeKind::Model, "gpt x", tpm);
        let demand = |tokens| Demand { tokens, cost: 0.0 };
        let req = |tokens| request(vec![s.clone()], None, demand(tokens));
        let first = b.admit(&req(400)).await.unwrap().unwrap();
        assert_eq!(first.tokens.unwrap().remaining, 600);
        assert!(first.requests.is_none());
        let second = b.admit(&req(400)).await.unwrap().unwrap();
        assert_eq!(second.tokens.unwrap().remaining, 200);
        let r = refused(b.admit(&req(400)).await.unwrap());
        assert_eq!(
            (r.kind, r.scope),
            (LimitKind::TokensPerMinute, ScopeKind::Model)
        );
        assert_eq!((r.limit, r.used, r.requested), (1000.0, 800.0, 400.0));
        assert!(r.retry_after.is_some_and(|d| d <= Duration::from_secs(60)));
        // Larger than the whole limit: waiting does not help.
        let r = refused(b.admit(&req(2000)).await.unwrap());
        assert!(r.too_large() && r.retry_after.is_none());
        assert_eq!(tokens_used(&b, &s).await, 800, "refusals count nothing");

        // The real figure replaces the worst case: 800 - 400 + 100.
        first.reservation.settle(Usage {
            tokens: 100,
            cost: 0.0,
        });
        eventually(Duration::from_secs(5), "the settlement", || async {
            tokens_used(&b, &s).await == 500
        })
        .await;
        let third = b.admit(&req(400)).await.unwrap().unwrap();
        assert_eq!(third.tokens.unwrap().remaining, 100);
        // More than reserved is charged in full: 900 - 400 + 500.
        second.reservation.settle(Usage {
            tokens: 500,
            cost: 0.0,
        });
        // Dropping unsettled releases with zero usage: 1000 - 400.
        drop(third);
        eventually(Duration::from_secs(5), "both settlements", || async {
            tokens_used(&b, &s).await == 600
        })
        .await;
        assert_eq!(b.pending(), 0);
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
async fn a_refusal_anywhere_counts_nothing_anywhere() {
    let Some(url) = redis_url("a_refusal_anywhere_counts_nothing_anywhere") else {
        return;
    };
    let prefix = unique_prefix("aon");
    tokio::time::timeout(BOUND, async {
        let b = backend(&url, &prefix).await;
        let key = scope(
            ScopeKind::Key,
            "k1",
            Limits {
                requests_per_minute: Some(10),
                requests_per_day: Some(1000),
                max_concurrent: Some(5),
                ..Limits::default()
            },
        );
        let route = |id: &str, n| scope(ScopeKind::Route, id, rpm(n));
        let model = scope(
            ScopeKind::Model,
            "m1",
            Limits {
                tokens_per_minute: Some(100),
                ..Limits::default()
            },
        );
        let q = || Some(daily_quota("k1", quota(Some(2), None, None)));
        let d = |tokens| Demand { tokens, cost: 0.0 };
        // Scopes in any order: they are checked by (kind, id).
        let first = b
            .admit(&request(
                vec![model.clone(), route("r1", 1), key.clone()],
                q(),
                d(60),
            ))
            .await
            .unwrap()
            .unwrap();
        let w = first.requests.unwrap();
        assert_eq!(
            (w.limit, w.remaining),
            (1, 0),
            "the route's window is the tightest"
        );
        assert_eq!(first.tokens.unwrap().remaining, 40);

        let r = refused(
            b.admit(&request(
                vec![model.clone(), route("r1", 1), key.clone()],
                q(),
                d(10),
            ))
            .await
            .unwrap(),
        );
        assert_eq!(
            (r.kind, r.scope),
            (LimitKind::RequestsPerMinute, ScopeKind::Route)
        );
        let r = refused(
            b.admit(&request(
                vec![model.clone(), route("r2", 5), key.clone()],
                q(),
                d(60),
            ))
            .await
            .unwrap(),
        );
        assert_eq!(
            (r.kind, r.scope),
            (LimitKind::TokensPerMinute, ScopeKind::Model)
        );
        let second = b
            .admit(&request(vec![route("r2", 5), key.clone()], q(), d(10)))
            .await
            .unwrap()
            .unwrap();
        // Quota requests exhausted (2): refused after every scope passed.
        let r = refused(
            b.admit(&request(vec![route("r3", 5), key.clone()], q(), d(10)))
                .await
                .unwrap(),
        );
        assert_eq!(
            (r.kind, r.scope),
            (LimitKind::QuotaRequests, ScopeKind::Key)
        );
        assert_eq!((r.limit, r.used), (2.0, 2.0));
        assert!(
            r.retry_after
                .is_some_and(|d| d <= Duration::from_secs(86_400))
        );

        let view = b.usage(Some(&key), q().as_ref()).await.unwrap();
        let used = |kind: &str| {
            view.windows
                .iter()
                .find(|w| w.limit_kind == kind)
                .unwrap()
                .used
        };
        assert_eq!(used("requests_per_minute"), 2);
        assert_eq!(used("requests_per_day"), 2);
        assert_eq!(used("max_concurrent"), 2);
        assert_eq!(view.used.requests, 2);
        assert_eq!((view.reserved.tokens, view.reserved.in_flight), (70, 2));
        let r3 = b.usage(Some(&route("r3", 5)), None).await.unwrap();
        assert_eq!(
            r3.windows[0].used, 0,
            "the refused request opened no window"
        );
        assert_eq!(r3.windows[0].resets_in_secs, 0);
        assert_eq!(tokens_used(&b, &model).await, 60);

        // The key's own limits come first: with its concurrency full, the key
        // refuses before the exhausted route is looked at.
        let tight_key = scope(
            ScopeKind::Key,
            "k1",
            Limits {
                max_concurrent: Some(2),
                ..Limits::default()
            },
        );
        let r = refused(
            b.admit(&request(vec![route("r1", 1), tight_key], None, d(0)))
                .await
                .unwrap(),
        );
        assert_eq!((r.kind, r.scope), (LimitKind::Concurrency, ScopeKind::Key));
        assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
        drop((first, second));
    })
    .await
    .expect("test bounded");
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(fastgate_redis_tests),
    ignore = "set FASTGATE_TEST_REDIS_URL to run against Redis"
)]
async fn fifty_requests_race_for_a_budget_of_five() {
    let Some(url) = redis_url("fifty_requests_race_for_a_budget_of_five") else {
        return;
    };
    let prefix = unique_prefix("budget");
    tokio::time::timeout(BOUND, async {
        let a = backend(&url, &prefix).await;
        let b = backend(&url, &prefix).await;
        let check = daily_quota("kb", quota(None, None, Some(0.5)));
        let demand = Demand {
            tokens: 1000,
            cost: 0.1,
        };
        let mut tasks = Vec::new();
        for i in 0..50 {
            let backend = if i % 2 == 0 { a.clone() } else { b.clone() };
            let req = request(vec![], Some(check.clone()), demand);
            tasks.push(tokio::spawn(async move { backend.admit(&req).await }));
        }
        let mut admitted = Vec::new();
        for t in tasks {
            match t.await.unwrap().expect("redis answered") {
                Ok(ok) => admitted.push(ok),
                Err(AdmitError::Limited(r)) => {
                    assert_eq!(r.kind, LimitKind::Budget);
                    assert_eq!((r.limit, r.requested), (0.5, 0.1));
                    assert!((r.used - 0.5).abs() < 1e-9, "used {}", r.used);
                    assert!(r.retry_after.is_some());
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(admitted.len(), 5);
        let view = a.usage(None, Some(&check)).await.unwrap();
        assert!((view.reserved.cost - 0.5).abs() < 1e-9);
        assert_eq!(view.reserved.in_flight, 5);
        for ok in admitted {
            ok.reservation.settle(Usage {
                tokens: 700,
                cost: 0.07,
            });
        }
        eventually(Duration::from_secs(5), "five settlements", || async {
            let v = a.usage(None, Some(&check)).await.unwrap();
            v.reserved.in_flight == 0 && v.used.tokens == 3500
        })
        .await;
        let view = b.usage(None, Some(&check)).await.unwrap();
        assert_eq!(view.used.requests, 5);
        assert!((view.used.cost - 0.35).abs() < 1e-9);
        assert!(view.used.cost <= 0.5);
        assert_eq!((view.reserved.tokens, view.reserved.cost), (0, 0.0));
        assert_eq!(view.period.unwrap().kind, "daily");
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
async fn holds_of_a_request_never_settled_come_back_after_the_lease() {
    let Some(url) = redis_url("holds_of_a_request_never_settled_come_back_after_the_lease") else {
        return;
    };
    let prefix = unique_prefix("lease");
    tokio::time::timeout(BOUND, async {
        let lease = Duration::from_millis(400);
        let b = RedisBackend::connect(settings(&url, &prefix, lease))
            .await
            .unwrap();
        let key = scope(
            ScopeKind::Key,
            "kl",
            Limits {
                max_concurrent: Some(1),
                ..Limits::default()
            },
        );
        let check = daily_quota("kl", quota(None, Some(1000), None));
        let demand = Demand {
            tokens: 600,
            cost: 0.0,
        };
        let req = || request(vec![key.clone()], Some(check.clone()), demand);
        let crashed = b.admit(&req()).await.unwrap().unwrap();
        let started = Instant::now();
        // An instance that dies never settles: forget the reservation.
        std::mem::forget(crashed);
        let r = refused(b.admit(&req()).await.unwrap());
        assert_eq!(r.kind, LimitKind::Concurrency);
        let only_quota = request(vec![], Some(check.clone()), demand);
        let r = refused(b.admit(&only_quota).await.unwrap());
        assert_eq!(
            (r.kind, r.used, r.requested),
            (LimitKind::QuotaTokens, 600.0, 600.0)
        );

        let mut next = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while next.is_none() {
            assert!(Instant::now() < deadline, "the slot never came back");
            match b.admit(&req()).await.unwrap() {
                Ok(ok) => next = Some(ok),
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "came back too early"
        );
        let view = b.usage(Some(&key), Some(&check)).await.unwrap();
        assert_eq!(
            view.reserved.tokens, 600,
            "only the live request holds tokens"
        );
        assert_eq!(view.reserved.in_flight, 1);
        assert_eq!(view.used.requests, 2);
        drop(next);
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
async fn lost_quota_counters_are_seeded_from_the_store_totals() {
    let Some(url) = redis_url("lost_quota_counters_are_seeded_from_the_store_totals") else {
        return;
    };
    let prefix = unique_prefix("seed");
    tokio::time::timeout(BOUND, async {
        let b = backend(&url, &prefix).await;
        let exhausted = daily_quota("k:seed 1", quota(Some(10), None, None));
        let budget = daily_quota("k:seed 1", quota(Some(100), None, Some(1.0)));
        let room = daily_quota("k2", quota(Some(11), None, None));
        let totals = |key: &str, requests, cost| PeriodUsage {
            key_id: key.into(),
            period: exhausted.period.id.clone(),
            totals: Totals {
                requests,
                tokens: 5000,
                cost,
            },
        };
        b.apply_totals(&[totals("k:seed 1", 10, 1.0), totals("k2", 10, 0.0)], &[]);
        let view = b.usage(None, Some(&exhausted)).await.unwrap();
        assert_eq!(
            (view.used.requests, view.used.tokens),
            (10, 5000),
            "seeds shown"
        );

        let r = refused(
            b.admit(&request(vec![], Some(exhausted.clone()), Demand::default()))
                .await
                .unwrap(),
        );
        assert_eq!(
            (r.kind, r.used, r.limit),
            (LimitKind::QuotaRequests, 10.0, 10.0)
        );
        let d = Demand {
            tokens: 1,
            cost: 0.01,
        };
        let r = refused(b.admit(&request(vec![], Some(budget), d)).await.unwrap());
        assert_eq!(r.kind, LimitKind::Budget);
        assert!((r.used - 1.0).abs() < 1e-9);

        let ok = b
            .admit(&request(vec![], Some(room.clone()), d))
            .await
            .unwrap()
            .unwrap();
        drop(ok);
        // Once Redis has counters, seeds no longer matter.
        b.apply_totals(&[totals("k2", 0, 0.0)], &[]);
        let r = refused(
            b.admit(&request(vec![], Some(room.clone()), d))
                .await
                .unwrap(),
        );
        assert_eq!((r.kind, r.used), (LimitKind::QuotaRequests, 11.0));

        // Usage counted elsewhere is added where Redis has counters, and only there.
        let elsewhere = Totals {
            requests: 2,
            tokens: 30,
            cost: 0.25,
        };
        let lost = daily_quota("k3", quota(Some(5), None, None));
        b.add_usage(&[
            PeriodUsage {
                key_id: "k2".into(),
                period: room.period.id.clone(),
                totals: elsewhere,
            },
            PeriodUsage {
                key_id: "k3".into(),
                period: lost.period.id.clone(),
                totals: elsewhere,
            },
        ])
        .await
        .unwrap();
        eventually(
            Duration::from_secs(5),
            "the dropped reservation",
            || async { b.usage(None, Some(&room)).await.unwrap().reserved.in_flight == 0 },
        )
        .await;
        let view = b.usage(None, Some(&room)).await.unwrap();
        assert_eq!((view.used.requests, view.used.tokens), (13, 5030));
        assert!((view.used.cost - 0.25).abs() < 1e-9);
        let view = b.usage(None, Some(&lost)).await.unwrap();
        assert_eq!(view.used.requests, 0, "no counters were created for k3");
        b.admit(&request(vec![], Some(lost), Demand::default()))
            .await
            .unwrap()
            .unwrap();
    })
    .await
    .expect("test bounded");
    cleanup(&url, &prefix).await;
}
