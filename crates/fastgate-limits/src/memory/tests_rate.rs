//! Rate windows, tokens per minute, concurrency and all-or-nothing admission.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::test_support::*;
use crate::types::{LimitKind, Limits, ScopeKind, Usage, Window, WindowView};

#[test]
fn requests_per_minute_admit_exactly_n_then_refuse_until_the_window_ends() {
    let (clock, b) = setup();
    let req = request(vec![scope(ScopeKind::Key, "k1", rpm(3))], None, 0, 0.0);
    let first = admitted(b.admit_now(&req));
    assert_eq!(
        first.requests,
        Some(Window {
            limit: 3,
            remaining: 2,
            reset: Duration::from_secs(60)
        })
    );
    assert!(first.tokens.is_none());
    // Nothing to give back: no slot, no tokens, no quota.
    assert!(!first.reservation.is_held());
    clock.advance(Duration::from_secs(10));
    admitted(b.admit_now(&req));
    let third = admitted(b.admit_now(&req));
    assert_eq!(third.requests.unwrap().remaining, 0);
    assert_eq!(third.requests.unwrap().reset, Duration::from_secs(50));

    let r = refused(b.admit_now(&req));
    assert_eq!(r.kind, LimitKind::RequestsPerMinute);
    assert_eq!(r.scope, ScopeKind::Key);
    assert_eq!((r.limit, r.used, r.requested), (3.0, 3.0, 1.0));
    assert_eq!(r.retry_after, Some(Duration::from_secs(50)));

    // One millisecond before the window ends it is still closed to requests.
    clock.advance(Duration::from_millis(49_999));
    let r = refused(b.admit_now(&req));
    assert_eq!(r.retry_after, Some(Duration::from_millis(1)));
    clock.advance(Duration::from_millis(1));
    let again = admitted(b.admit_now(&req));
    assert_eq!(again.requests.unwrap().remaining, 2);
    assert_eq!(again.requests.unwrap().reset, Duration::from_secs(60));
}

#[test]
fn requests_per_day_count_in_a_24_hour_window() {
    let (clock, b) = setup();
    let limits = Limits {
        requests_per_day: Some(2),
        ..Limits::default()
    };
    let req = request(vec![scope(ScopeKind::Route, "r", limits)], None, 0, 0.0);
    admitted(b.admit_now(&req));
    clock.advance(Duration::from_secs(3600));
    let second = admitted(b.admit_now(&req));
    assert_eq!(second.requests.unwrap().remaining, 0);
    let r = refused(b.admit_now(&req));
    assert_eq!(
        (r.kind, r.scope),
        (LimitKind::RequestsPerDay, ScopeKind::Route)
    );
    assert_eq!(r.retry_after, Some(Duration::from_secs(23 * 3600)));
    clock.advance(Duration::from_secs(23 * 3600));
    admitted(b.admit_now(&req));
}

#[test]
fn tokens_per_minute_reserve_the_worst_case_and_settle_to_the_real_figure() {
    let (clock, b) = setup();
    let limits = Limits {
        tokens_per_minute: Some(3000),
        ..Limits::default()
    };
    let key = || vec![scope(ScopeKind::Model, "gpt", limits)];
    let first = admitted(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert!(first.reservation.is_held());
    assert_eq!(
        first.tokens,
        Some(Window {
            limit: 3000,
            remaining: 2000,
            reset: Duration::from_secs(60)
        })
    );
    let _second = admitted(b.admit_now(&request(key(), None, 1000, 0.0)));
    clock.advance(Duration::from_secs(20));
    let third = admitted(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert_eq!(third.tokens.unwrap().remaining, 0);
    let r = refused(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert_eq!(r.kind, LimitKind::TokensPerMinute);
    assert_eq!((r.limit, r.used, r.requested), (3000.0, 3000.0, 1000.0));
    assert_eq!(r.retry_after, Some(Duration::from_secs(40)));

    // The first request used 100 of its 1000: 900 come back to the window.
    first.reservation.settle(Usage {
        tokens: 100,
        cost: 0.0,
    });
    let r = refused(b.admit_now(&request(key(), None, 901, 0.0)));
    assert_eq!(r.used, 2100.0);
    let fits = admitted(b.admit_now(&request(key(), None, 900, 0.0)));
    assert_eq!(fits.tokens.unwrap().remaining, 0);

    // A new window after 60 s; a reservation of the old window settled with
    // more than it reserved does not touch the new one.
    clock.advance(Duration::from_secs(40));
    let fresh = admitted(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert_eq!(fresh.tokens.unwrap().remaining, 2000);
    third.reservation.settle(Usage {
        tokens: 5000,
        cost: 0.0,
    });
    drop(fits);
    let next = admitted(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert_eq!(next.tokens.unwrap().remaining, 1000);
    // Settling within the window with more than reserved charges it in full.
    fresh.reservation.settle(Usage {
        tokens: 1500,
        cost: 0.0,
    });
    let r = refused(b.admit_now(&request(key(), None, 1000, 0.0)));
    assert_eq!(r.used, 2500.0);
}

#[test]
fn a_request_larger_than_the_limit_is_refused_without_retry_after() {
    let (_clock, b) = setup();
    let limits = Limits {
        tokens_per_minute: Some(1000),
        ..Limits::default()
    };
    let req = request(vec![scope(ScopeKind::Key, "k", limits)], None, 1001, 0.0);
    let r = refused(b.admit_now(&req));
    assert_eq!(r.kind, LimitKind::TokensPerMinute);
    assert!(r.too_large());
    assert_eq!(r.retry_after, None);
    // Nothing was counted: a request that fits passes in full.
    let ok = request(vec![scope(ScopeKind::Key, "k", limits)], None, 1000, 0.0);
    assert_eq!(admitted(b.admit_now(&ok)).tokens.unwrap().remaining, 0);
}

#[test]
fn concurrency_slots_come_back_on_settle_and_on_drop() {
    let (clock, b) = setup();
    let limits = Limits {
        max_concurrent: Some(2),
        ..Limits::default()
    };
    let req = request(vec![scope(ScopeKind::Key, "k", limits)], None, 0, 0.0);
    let a = admitted(b.admit_now(&req));
    let c = admitted(b.admit_now(&req));
    assert!(a.reservation.is_held());
    let r = refused(b.admit_now(&req));
    assert_eq!(
        (r.kind, r.limit, r.used),
        (LimitKind::Concurrency, 2.0, 2.0)
    );
    assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
    // Time alone frees nothing.
    clock.advance(Duration::from_secs(3600));
    refused(b.admit_now(&req));

    a.reservation.settle(Usage::default());
    let d = admitted(b.admit_now(&req));
    refused(b.admit_now(&req));
    drop(c);
    let _e = admitted(b.admit_now(&req));
    refused(b.admit_now(&req));
    drop(d);
    admitted(b.admit_now(&req));
}

#[test]
fn a_refusal_counts_nothing_in_any_scope() {
    let (_clock, b) = setup();
    let key_limits = Limits {
        requests_per_minute: Some(10),
        max_concurrent: Some(5),
        tokens_per_minute: Some(10_000),
        ..Limits::default()
    };
    let key_scope = scope(ScopeKind::Key, "k", key_limits);
    let scopes = || vec![scope(ScopeKind::Route, "r", rpm(1)), key_scope.clone()];
    let first = admitted(b.admit_now(&request(scopes(), None, 100, 0.0)));
    let r = refused(b.admit_now(&request(scopes(), None, 100, 0.0)));
    assert_eq!(
        (r.kind, r.scope),
        (LimitKind::RequestsPerMinute, ScopeKind::Route)
    );

    let view = b.usage_now(Some(&key_scope), None);
    let used: Vec<(&str, u64)> = view
        .windows
        .iter()
        .map(|w| (w.limit_kind, w.used))
        .collect();
    assert_eq!(
        used,
        [
            ("requests_per_minute", 1),
            ("tokens_per_minute", 100),
            ("max_concurrent", 1)
        ]
    );
    drop(first);
    let view = b.usage_now(Some(&key_scope), None);
    assert_eq!(view.windows[1].used, 0);
    assert_eq!(view.windows[2].used, 0);
}

#[test]
fn the_first_failing_check_is_reported_in_the_documented_order() {
    let (_clock, b) = setup();
    let both = Limits {
        requests_per_minute: Some(1),
        max_concurrent: Some(1),
        ..Limits::default()
    };
    let scopes = || {
        vec![
            scope(ScopeKind::Model, "m", both),
            scope(ScopeKind::Route, "r", both),
            scope(ScopeKind::Key, "k", both),
        ]
    };
    let _held = admitted(b.admit_now(&request(scopes(), None, 0, 0.0)));
    let r = refused(b.admit_now(&request(scopes(), None, 0, 0.0)));
    // Key before route and model; concurrency before the request window.
    assert_eq!((r.scope, r.kind), (ScopeKind::Key, LimitKind::Concurrency));
}

#[test]
fn the_tightest_windows_of_all_scopes_are_reported() {
    let (clock, b) = setup();
    let day = Limits {
        requests_per_day: Some(100),
        tokens_per_minute: Some(500),
        ..Limits::default()
    };
    let key = scope(ScopeKind::Key, "k", rpm(5));
    let route = scope(ScopeKind::Route, "r", day);
    let model = scope(
        ScopeKind::Model,
        "m",
        Limits {
            tokens_per_minute: Some(10_000),
            ..Limits::default()
        },
    );
    let req = request(vec![model, route, key], None, 100, 0.0);
    let a = admitted(b.admit_now(&req));
    assert_eq!(a.requests.unwrap().limit, 5);
    assert_eq!(a.requests.unwrap().remaining, 4);
    assert_eq!(a.tokens.unwrap().limit, 500);
    assert_eq!(a.tokens.unwrap().remaining, 400);
    clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        admitted(b.admit_now(&req));
    }
    let last = admitted(b.admit_now(&req));
    // All five taken: the key's minute window is the tightest (0 left).
    assert_eq!(
        last.requests,
        Some(Window {
            limit: 5,
            remaining: 0,
            reset: Duration::from_secs(59)
        })
    );
    let route_only = request(vec![scope(ScopeKind::Route, "r", day)], None, 0, 0.0);
    let w = admitted(b.admit_now(&route_only)).requests.unwrap();
    assert_eq!((w.limit, w.remaining), (100, 94));
    assert_eq!(w.reset, Duration::from_secs(86_399));
}

#[test]
fn the_usage_view_shows_the_key_windows() {
    let (clock, b) = setup();
    let limits = Limits {
        requests_per_minute: Some(5),
        requests_per_day: Some(100),
        tokens_per_minute: Some(1000),
        max_concurrent: Some(3),
    };
    let key = scope(ScopeKind::Key, "k", limits);
    let never_seen = b.usage_now(Some(&key), None);
    assert_eq!(never_seen.backend, "memory");
    assert!(never_seen.period.is_none());
    assert!(
        never_seen
            .windows
            .iter()
            .all(|w| w.used == 0 && w.resets_in_secs == 0)
    );
    assert_eq!(never_seen.windows.len(), 4);

    let held = admitted(b.admit_now(&request(vec![key.clone()], None, 300, 0.0)));
    clock.advance(Duration::from_millis(1500));
    let view = b.usage_now(Some(&key), None);
    let w = |kind: &str, limit, used, resets_in_secs| WindowView {
        limit_kind: match kind {
            "rpm" => "requests_per_minute",
            "rpd" => "requests_per_day",
            "tpm" => "tokens_per_minute",
            _ => "max_concurrent",
        },
        limit,
        used,
        resets_in_secs,
    };
    assert_eq!(
        view.windows,
        [
            w("rpm", 5, 1, 59),
            w("rpd", 100, 1, 86_399),
            w("tpm", 1000, 300, 59),
            w("cc", 3, 1, 0),
        ]
    );
    held.reservation.settle(Usage {
        tokens: 20,
        cost: 0.0,
    });
    clock.advance(Duration::from_secs(59));
    let view = b.usage_now(Some(&key), None);
    assert_eq!(view.windows[0], w("rpm", 5, 0, 0));
    assert_eq!(view.windows[1].used, 1);
    assert_eq!(view.windows[2], w("tpm", 1000, 0, 0));
    assert_eq!(view.windows[3].used, 0);
}

#[test]
fn retain_forgets_gone_scopes_without_breaking_held_reservations() {
    let (_clock, b) = setup();
    let limits = Limits {
        max_concurrent: Some(1),
        tokens_per_minute: Some(1000),
        ..Limits::default()
    };
    let gone = scope(ScopeKind::Route, "gone", limits);
    let kept = scope(ScopeKind::Key, "kept", limits);
    let held = admitted(b.admit_now(&request(vec![gone.clone(), kept.clone()], None, 800, 0.0)));
    b.retain(|kind, id| kind == ScopeKind::Key && id == "kept");
    // The kept scope still holds its slot and tokens; the gone one is fresh.
    refused(b.admit_now(&request(vec![kept.clone()], None, 0, 0.0)));
    let fresh = admitted(b.admit_now(&request(vec![gone.clone()], None, 1000, 0.0)));
    // Settling the old reservation touches the forgotten state, not the new one.
    held.reservation.settle(Usage {
        tokens: 10,
        cost: 0.0,
    });
    let view = b.usage_now(Some(&gone), None);
    assert_eq!(view.windows[0].used, 1000);
    assert_eq!(view.windows[1].used, 1);
    let kept_view = b.usage_now(Some(&kept), None);
    assert_eq!(kept_view.windows[0].used, 10);
    assert_eq!(kept_view.windows[1].used, 0);
    drop(fresh);
}

#[test]
fn unlimited_requests_hold_nothing() {
    let (_clock, b) = setup();
    let req = request(
        vec![scope(ScopeKind::Key, "k", Limits::default())],
        None,
        50,
        1.0,
    );
    let a = admitted(b.admit_now(&req));
    assert!(a.requests.is_none() && a.tokens.is_none() && !a.reservation.is_held());
    assert!(b.scopes.is_empty() && b.quotas.is_empty());
}
