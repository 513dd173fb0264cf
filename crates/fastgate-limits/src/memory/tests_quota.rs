//! Quotas and budgets: reservations, periods, store totals, concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Barrier;
use std::time::Duration;

use chrono_tz::Tz;
use fastgate_auth::QuotaPeriod;

use super::test_support::*;
use crate::types::{LimitKind, PeriodUsage, ReservedView, ScopeKind, Totals, Usage, UsedView};

fn totals(key: &str, period: &str, requests: u64, tokens: u64, cost: f64) -> PeriodUsage {
    PeriodUsage {
        key_id: key.into(),
        period: period.into(),
        totals: Totals {
            requests,
            tokens,
            cost,
        },
    }
}

#[test]
fn fifty_concurrent_requests_against_a_budget_for_five_admit_five() {
    let (_clock, b) = setup();
    // Binary-exact amounts: the budget covers exactly five worst cases.
    let q = quota(
        "k",
        quota_of(None, None, Some(1.25), QuotaPeriod::Never),
        T0,
        Tz::UTC,
    );
    let req = request(vec![], Some(q.clone()), 100, 0.25);
    let start = Barrier::new(50);
    let all_tried = Barrier::new(50);
    let admitted_count = std::thread::scope(|s| {
        let threads: Vec<_> = (0..50u32)
            .map(|i| {
                let (b, req, start, all_tried) = (&b, &req, &start, &all_tried);
                s.spawn(move || {
                    start.wait();
                    let outcome = b.admit_now(req);
                    // Hold every reservation until all 50 have tried.
                    all_tried.wait();
                    match outcome {
                        Ok(a) => {
                            let cost = 0.25 - f64::from(i % 5) * 0.01;
                            a.reservation.settle(Usage { tokens: 90, cost });
                            1
                        }
                        Err(e) => {
                            assert!(matches!(e, crate::AdmitError::Limited(ref r) if r.kind == LimitKind::Budget));
                            0
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum::<u32>()
    });
    assert_eq!(admitted_count, 5);
    let view = b.usage_now(None, Some(&q));
    assert_eq!(view.used.requests, 5);
    assert_eq!(view.used.tokens, 450);
    assert!(view.used.cost <= 1.25, "spent {}", view.used.cost);
    assert!(view.used.cost >= 1.25 - 5.0 * 0.04 - 1e-9);
    assert_eq!(view.reserved, ReservedView::default());
}

#[test]
fn quota_requests_and_tokens_count_reservations_until_settled() {
    let (_clock, b) = setup();
    let q = quota(
        "k",
        quota_of(Some(3), Some(1000), None, QuotaPeriod::Daily),
        T0,
        Tz::UTC,
    );
    let first = admitted(b.admit_now(&request(vec![], Some(q.clone()), 600, 0.0)));
    assert!(first.reservation.is_held());
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 500, 0.0)));
    assert_eq!((r.kind, r.scope), (LimitKind::QuotaTokens, ScopeKind::Key));
    assert_eq!((r.limit, r.used, r.requested), (1000.0, 600.0, 500.0));
    // 14 h to midnight UTC.
    assert_eq!(r.retry_after, Some(Duration::from_secs(14 * 3600)));
    let view = b.usage_now(None, Some(&q));
    assert_eq!(
        view.period.as_ref().map(|p| p.id.as_str()),
        Some("d2026-11-29")
    );
    assert_eq!(
        (
            view.used.requests,
            view.reserved.tokens,
            view.reserved.in_flight
        ),
        (1, 600, 1)
    );

    first.reservation.settle(Usage {
        tokens: 100,
        cost: 0.0,
    });
    admitted(b.admit_now(&request(vec![], Some(q.clone()), 500, 0.0)));
    admitted(b.admit_now(&request(vec![], Some(q.clone()), 0, 0.0)));
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 0, 0.0)));
    assert_eq!(
        (r.kind, r.used, r.limit),
        (LimitKind::QuotaRequests, 3.0, 3.0)
    );
}

#[test]
fn a_quota_refusal_counts_nothing_in_the_scopes() {
    let (_clock, b) = setup();
    let q = quota(
        "k",
        quota_of(Some(1), None, None, QuotaPeriod::Never),
        T0,
        Tz::UTC,
    );
    let key = scope(ScopeKind::Key, "k", rpm(10));
    admitted(b.admit_now(&request(vec![key.clone()], Some(q.clone()), 0, 0.0)));
    let r = refused(b.admit_now(&request(vec![key.clone()], Some(q.clone()), 0, 0.0)));
    assert_eq!(r.kind, LimitKind::QuotaRequests);
    assert_eq!(r.retry_after, None, "a `never` quota does not reset");
    assert_eq!(b.usage_now(Some(&key), Some(&q)).windows[0].used, 1);
}

#[test]
fn a_budget_smaller_than_the_worst_case_is_refused_for_good() {
    let (_clock, b) = setup();
    let q = quota(
        "k",
        quota_of(None, None, Some(0.5), QuotaPeriod::Daily),
        T0,
        Tz::UTC,
    );
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 10, 0.75)));
    assert_eq!(r.kind, LimitKind::Budget);
    assert_eq!((r.limit, r.used, r.requested), (0.5, 0.0, 0.75));
    assert!(r.too_large());
    assert_eq!(r.retry_after, None);
    // Within the budget but not beside what is held: a retry after the period.
    let held = admitted(b.admit_now(&request(vec![], Some(q.clone()), 10, 0.375)));
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 10, 0.25)));
    assert_eq!((r.used, r.requested), (0.375, 0.25));
    assert_eq!(r.retry_after, Some(Duration::from_secs(14 * 3600)));
    held.reservation.settle(Usage {
        tokens: 5,
        cost: 0.125,
    });
    admitted(b.admit_now(&request(vec![], Some(q.clone()), 10, 0.25)));
}

#[test]
fn a_daily_quota_starts_afresh_at_midnight_in_its_time_zone() {
    let (clock, b) = setup();
    // T0 is 18:00 in Shanghai: midnight there is 6 h away.
    let tz: Tz = "Asia/Shanghai".parse().unwrap();
    let daily = quota_of(Some(2), Some(10_000), None, QuotaPeriod::Daily);
    let q = quota("k", daily.clone(), T0, tz);
    assert_eq!(q.period.id, "d2026-11-29");
    let held = admitted(b.admit_now(&request(vec![], Some(q.clone()), 1000, 0.0)));
    admitted(b.admit_now(&request(vec![], Some(q.clone()), 1000, 0.0)));
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 1000, 0.0)));
    assert_eq!(r.retry_after, Some(Duration::from_secs(6 * 3600)));

    clock.advance(Duration::from_secs(6 * 3600 - 1));
    let q = quota("k", daily.clone(), T0 + (6 * 3600 - 1) * 1000, tz);
    refused(b.admit_now(&request(vec![], Some(q.clone()), 1000, 0.0)));
    clock.advance(Duration::from_secs(1));
    let q = quota("k", daily, T0 + 6 * 3600 * 1000, tz);
    assert_eq!(q.period.id, "d2026-11-30");
    let _today = admitted(b.admit_now(&request(vec![], Some(q.clone()), 1000, 0.0)));
    // Yesterday's reservation settles into yesterday, not into today.
    held.reservation.settle(Usage {
        tokens: 700,
        cost: 1.0,
    });
    let view = b.usage_now(None, Some(&q));
    assert_eq!(
        view.used,
        UsedView {
            requests: 1,
            tokens: 0,
            cost: 0.0
        }
    );
    assert_eq!((view.reserved.tokens, view.reserved.in_flight), (1000, 1));
}

#[test]
fn store_totals_become_the_base_and_flushed_usage_leaves_local() {
    let (_clock, b) = setup();
    let q = quota(
        "k",
        quota_of(Some(1000), None, Some(100.0), QuotaPeriod::Never),
        T0,
        Tz::UTC,
    );
    for _ in 0..3 {
        let a = admitted(b.admit_now(&request(vec![], Some(q.clone()), 50, 1.0)));
        a.reservation.settle(Usage {
            tokens: 10,
            cost: 0.5,
        });
    }
    let used = |b: &super::MemoryBackend| b.usage_now(None, Some(&q)).used;
    assert_eq!(
        used(&b),
        UsedView {
            requests: 3,
            tokens: 30,
            cost: 1.5
        }
    );

    // Two of our three were flushed; another instance had added 7 requests.
    // Totals of another period for this key say nothing about this one.
    let flushed = [totals("k", "all", 2, 20, 1.0)];
    let store = [
        totals("k", "all", 9, 90, 4.5),
        totals("k", "d2026-11-28", 500, 0, 50.0),
    ];
    b.apply_totals_now(&store, &flushed);
    assert_eq!(
        used(&b),
        UsedView {
            requests: 10,
            tokens: 100,
            cost: 5.0
        }
    );
    // Reading the same totals again with nothing flushed changes nothing.
    b.apply_totals_now(&store, &[]);
    assert_eq!(
        used(&b),
        UsedView {
            requests: 10,
            tokens: 100,
            cost: 5.0
        }
    );
    // The third request is flushed; the store also has two more from elsewhere.
    b.apply_totals_now(
        &[totals("k", "all", 12, 120, 6.0)],
        &[totals("k", "all", 1, 10, 0.5)],
    );
    assert_eq!(
        used(&b),
        UsedView {
            requests: 12,
            tokens: 120,
            cost: 6.0
        }
    );
}

#[test]
fn a_quota_used_up_by_other_instances_refuses() {
    let (_clock, b) = setup();
    let q = quota(
        "x",
        quota_of(Some(10), None, None, QuotaPeriod::Never),
        T0,
        Tz::UTC,
    );
    b.apply_totals_now(&[totals("x", "all", 10, 0, 0.0)], &[]);
    let r = refused(b.admit_now(&request(vec![], Some(q), 0, 0.0)));
    assert_eq!(
        (r.kind, r.used, r.limit),
        (LimitKind::QuotaRequests, 10.0, 10.0)
    );

    let q = quota(
        "y",
        quota_of(None, None, Some(1.0), QuotaPeriod::Daily),
        T0,
        Tz::UTC,
    );
    b.apply_totals_now(&[totals("y", "d2026-11-29", 3, 300, 0.9)], &[]);
    let r = refused(b.admit_now(&request(vec![], Some(q.clone()), 10, 0.2)));
    assert_eq!(r.kind, LimitKind::Budget);
    assert_eq!((r.limit, r.used, r.requested), (1.0, 0.9, 0.2));
    assert_eq!(r.retry_after, Some(Duration::from_secs(14 * 3600)));
    admitted(b.admit_now(&request(vec![], Some(q), 10, 0.1)));
}

#[test]
fn a_key_first_seen_in_the_store_takes_its_latest_period() {
    let (_clock, b) = setup();
    let store = [
        totals("f", "d2026-11-29", 7, 70, 0.0),
        totals("f", "d2026-11-28", 5, 0, 0.0),
    ];
    b.apply_totals_now(&store, &[]);
    let q = quota(
        "f",
        quota_of(Some(8), None, None, QuotaPeriod::Daily),
        T0,
        Tz::UTC,
    );
    let view = b.usage_now(None, Some(&q));
    assert_eq!((view.used.requests, view.used.tokens), (7, 70));
    admitted(b.admit_now(&request(vec![], Some(q.clone()), 0, 0.0)));
    refused(b.admit_now(&request(vec![], Some(q), 0, 0.0)));
}

#[test]
fn the_usage_view_of_a_quota() {
    let (_clock, b) = setup();
    let q = quota(
        "k",
        quota_of(None, Some(10_000), Some(10.0), QuotaPeriod::Monthly),
        T0,
        Tz::UTC,
    );
    let never_seen = b.usage_now(None, Some(&q));
    assert_eq!(never_seen.backend, "memory");
    assert_eq!(
        never_seen.period.as_ref().map(|p| p.id.as_str()),
        Some("m2026-11")
    );
    assert_eq!(never_seen.used, UsedView::default());
    assert_eq!(never_seen.reserved, ReservedView::default());
    assert!(never_seen.windows.is_empty());

    let done = admitted(b.admit_now(&request(vec![], Some(q.clone()), 400, 0.5)));
    done.reservation.settle(Usage {
        tokens: 300,
        cost: 0.25,
    });
    let _held = admitted(b.admit_now(&request(vec![], Some(q.clone()), 400, 0.5)));
    let view = b.usage_now(None, Some(&q));
    assert_eq!(
        view.used,
        UsedView {
            requests: 2,
            tokens: 300,
            cost: 0.25
        }
    );
    assert_eq!(
        view.reserved,
        ReservedView {
            tokens: 400,
            cost: 0.5,
            in_flight: 1
        }
    );
}
