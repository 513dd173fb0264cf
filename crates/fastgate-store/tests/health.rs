//! Credential health on SQLite and PostgreSQL: shared credential states and their
//! change counter and feed, usage counters, rules as live objects; rule events and
//! task leases in the submodules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "health/rule_events.rs"]
mod rule_events;
#[path = "health/tasks.rs"]
mod tasks;

use std::time::Duration;

use fastgate_store::{
    ChangeKind, ChangeListener, CredentialStateRow, CredentialUsageDelta, CredentialUsageRow,
    SpecTable, Store,
};

fn state(upstream: &str, credential: &str, state: &str) -> CredentialStateRow {
    CredentialStateRow {
        upstream: upstream.into(),
        credential: credential.into(),
        state: state.into(),
        reason: format!("{state} by a test"),
        since_ms: 1_000,
        until_ms: Some(601_000),
        changed_by: "rule:out-of-quota".into(),
        updated_at_ms: 1_001,
    }
}

async fn credential_states(store: Store) {
    let v0 = store.change_versions().await.unwrap();
    assert_eq!(v0.health, 0);
    assert_eq!(store.health_version().await.unwrap(), 0);
    assert!(store.list_credential_states().await.unwrap().is_empty());

    let k1 = state("a", "k1", "disabled");
    store.set_credential_state(&k1).await.unwrap();
    assert_eq!(store.list_credential_states().await.unwrap(), vec![k1]);
    let v1 = store.change_versions().await.unwrap();
    assert_eq!(v1.health, 1, "one write, one bump");
    assert_eq!(
        (v1.keys, v1.models, v1.live),
        (v0.keys, v0.models, v0.live),
        "only the health counter moves"
    );

    // An upsert replaces every field.
    let banned = CredentialStateRow {
        state: "banned".into(),
        reason: "401 invalid key".into(),
        since_ms: 5_000,
        until_ms: None,
        changed_by: "admin-token@127.0.0.1".into(),
        updated_at_ms: 5_001,
        ..state("a", "k1", "")
    };
    store.set_credential_state(&banned).await.unwrap();
    store
        .set_credential_state(&state("b", "k1", "exhausted"))
        .await
        .unwrap();
    store
        .set_credential_state(&state("a", "k2", "active"))
        .await
        .unwrap();
    let all = store.list_credential_states().await.unwrap();
    let keys: Vec<_> = all
        .iter()
        .map(|r| (r.upstream.as_str(), r.credential.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("a", "k1", "banned"),
            ("a", "k2", "active"),
            ("b", "k1", "exhausted")
        ]
    );
    assert_eq!(all[0], banned);
    assert_eq!(store.health_version().await.unwrap(), 4);

    // Unknown states are refused as the caller's error, and nothing moves.
    let err = store
        .set_credential_state(&state("a", "k3", "sleepy"))
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(store.health_version().await.unwrap(), 4);
    assert_eq!(store.list_credential_states().await.unwrap().len(), 3);

    // Deleting: one credential, none (no bump), then the rest of an upstream.
    assert_eq!(
        store
            .delete_credential_states("a", Some("k1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.health_version().await.unwrap(), 5);
    assert_eq!(
        store
            .delete_credential_states("a", Some("nope"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.delete_credential_states("zz", None).await.unwrap(), 0);
    assert_eq!(store.health_version().await.unwrap(), 5, "no-op deletes");
    store
        .set_credential_state(&state("a", "k9", "disabled"))
        .await
        .unwrap();
    assert_eq!(store.delete_credential_states("a", None).await.unwrap(), 2);
    let left = store.list_credential_states().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].upstream.as_str(), left[0].credential.as_str()),
        ("b", "k1")
    );
    assert_eq!(store.change_versions().await.unwrap().health, 7);

    // NUL is stored as U+FFFD, as everywhere else.
    let mut nul = state("a", "k\0", "disabled");
    nul.reason = "body had \0".into();
    store.set_credential_state(&nul).await.unwrap();
    let row = store.list_credential_states().await.unwrap().remove(0);
    assert_eq!(row.credential, "k\u{FFFD}");
    assert_eq!(row.reason, "body had \u{FFFD}");
}
both_backends!(credential_states);

/// The next change on `l`, failing the test after 10 s.
async fn next(l: &mut ChangeListener) -> Option<ChangeKind> {
    tokio::time::timeout(Duration::from_secs(10), l.recv())
        .await
        .expect("no notification within 10 s")
        .unwrap()
}

async fn health_feed(store: Store) {
    let Some(mut listener) = store.change_listener().await.unwrap() else {
        assert_eq!(store.backend(), "sqlite", "only SQLite has no feed");
        return;
    };
    store
        .set_credential_state(&state("a", "k1", "disabled"))
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Health));
    // Neither usage nor a delete of nothing notifies: the next notice is the route's.
    store
        .add_credential_usage(&[delta("a", "k1", DAY1, 1)])
        .await
        .unwrap();
    store
        .delete_credential_states("a", Some("none"))
        .await
        .unwrap();
    store
        .upsert_spec(SpecTable::Routes, "r", "{}")
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Live));
    store.delete_credential_states("a", None).await.unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Health));
}
both_backends!(health_feed);

const DAY1: &str = "2026-11-30";
const DAY2: &str = "2026-12-01";
const DAY3: &str = "2026-12-02";

fn delta(upstream: &str, credential: &str, day: &str, requests: u64) -> CredentialUsageDelta {
    CredentialUsageDelta {
        upstream: upstream.into(),
        credential: credential.into(),
        requests,
        tokens: requests * 10,
        quota_day: day.into(),
        ..Default::default()
    }
}

async fn usage_of(store: &Store, upstream: &str, credential: &str) -> CredentialUsageRow {
    store
        .list_credential_usage()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.upstream == upstream && r.credential == credential)
        .unwrap_or_else(|| panic!("no usage row for {upstream}/{credential}"))
}

async fn credential_usage(store: Store) {
    store.add_credential_usage(&[]).await.unwrap();
    assert!(store.list_credential_usage().await.unwrap().is_empty());
    let before = chrono::Utc::now().timestamp_millis();
    let first = CredentialUsageDelta {
        errors: 1,
        last_error: Some("429 rate limited".into()),
        last_error_at_ms: Some(1_000),
        last_used_at_ms: Some(1_500),
        ..delta("a", "k1", DAY1, 2)
    };
    store.add_credential_usage(&[first]).await.unwrap();
    let row = usage_of(&store, "a", "k1").await;
    assert_eq!(
        row,
        CredentialUsageRow {
            upstream: "a".into(),
            credential: "k1".into(),
            requests: 2,
            errors: 1,
            tokens: 20,
            last_error: Some("429 rate limited".into()),
            last_error_at_ms: Some(1_000),
            last_used_at_ms: Some(1_500),
            quota_day: DAY1.into(),
            day_requests: 2,
            day_tokens: 20,
            updated_at_ms: row.updated_at_ms,
        }
    );
    assert!(row.updated_at_ms >= before);

    // One batch: older times and no times keep the newer stored values; totals add.
    let older_error = CredentialUsageDelta {
        errors: 1,
        last_error: Some("500 old".into()),
        last_error_at_ms: Some(900),
        last_used_at_ms: Some(1_200),
        ..delta("a", "k1", DAY1, 1)
    };
    store
        .add_credential_usage(&[
            delta("a", "k1", DAY1, 3),
            older_error,
            delta("b", "k1", DAY1, 7),
        ])
        .await
        .unwrap();
    let row = usage_of(&store, "a", "k1").await;
    assert_eq!((row.requests, row.errors, row.tokens), (6, 2, 60));
    assert_eq!((row.day_requests, row.day_tokens), (6, 60));
    assert_eq!(row.last_error.as_deref(), Some("429 rate limited"));
    assert_eq!(row.last_error_at_ms, Some(1_000));
    assert_eq!(row.last_used_at_ms, Some(1_500));
    assert_eq!(usage_of(&store, "b", "k1").await.requests, 7);

    // A newer error replaces both; an error without a time is stamped at the write.
    let newer = CredentialUsageDelta {
        last_error: Some("timeout".into()),
        last_error_at_ms: Some(2_000),
        last_used_at_ms: Some(2_000),
        ..delta("a", "k1", DAY1, 0)
    };
    store.add_credential_usage(&[newer]).await.unwrap();
    let row = usage_of(&store, "a", "k1").await;
    assert_eq!(
        (
            row.last_error.as_deref(),
            row.last_error_at_ms,
            row.last_used_at_ms
        ),
        (Some("timeout"), Some(2_000), Some(2_000))
    );
    let untimed = CredentialUsageDelta {
        last_error: Some("untimed".into()),
        ..delta("a", "k2", DAY1, 1)
    };
    store.add_credential_usage(&[untimed]).await.unwrap();
    let row = usage_of(&store, "a", "k2").await;
    assert_eq!(row.last_error.as_deref(), Some("untimed"));
    assert!(row.last_error_at_ms.is_some_and(|t| t >= before));
    assert_eq!(row.last_used_at_ms, None);

    day_rollover(&store).await;
    refused_deltas(&store).await;
    day_reset(&store).await;
}
both_backends!(credential_usage);

/// a/k1 counts 6 requests on DAY1 when this starts.
async fn day_rollover(store: &Store) {
    // A later day restarts the day counters from the delta; totals still add.
    store
        .add_credential_usage(&[delta("a", "k1", DAY2, 4)])
        .await
        .unwrap();
    let row = usage_of(store, "a", "k1").await;
    assert_eq!(
        (row.quota_day.as_str(), row.day_requests, row.day_tokens),
        (DAY2, 4, 40)
    );
    assert_eq!(row.requests, 10);
    // An older day's delta (a late flush) adds to the totals only.
    store
        .add_credential_usage(&[delta("a", "k1", DAY1, 5)])
        .await
        .unwrap();
    let row = usage_of(store, "a", "k1").await;
    assert_eq!(
        (row.quota_day.as_str(), row.day_requests, row.day_tokens),
        (DAY2, 4, 40)
    );
    assert_eq!((row.requests, row.tokens), (15, 150));
    // Both days in one batch, the later first: the same result as in day order.
    store
        .add_credential_usage(&[delta("a", "k1", DAY3, 1), delta("a", "k1", DAY2, 2)])
        .await
        .unwrap();
    let row = usage_of(store, "a", "k1").await;
    assert_eq!((row.quota_day.as_str(), row.day_requests), (DAY3, 1));
    assert_eq!(row.requests, 18);
}

/// Bad deltas are refused before anything of their batch is written.
async fn refused_deltas(store: &Store) {
    let total = usage_of(store, "a", "k1").await.requests;
    for day in ["2026-12-1", "01/12/2026", ""] {
        let err = store
            .add_credential_usage(&[delta("a", "k1", DAY3, 1), delta("a", "k1", day, 1)])
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{day:?}: {err}");
    }
    let err = store
        .add_credential_usage(&[CredentialUsageDelta {
            requests: u64::MAX,
            ..delta("a", "k1", DAY3, 0)
        }])
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(usage_of(store, "a", "k1").await.requests, total);
}

/// a/k1 counts DAY3; a/k2 and b/k1 still DAY1.
async fn day_reset(store: &Store) {
    let totals = usage_of(store, "b", "k1").await.requests;
    assert_eq!(store.reset_credential_day_usage(DAY3).await.unwrap(), 2);
    let row = usage_of(store, "b", "k1").await;
    assert_eq!(
        (row.quota_day.as_str(), row.day_requests, row.day_tokens),
        (DAY3, 0, 0)
    );
    assert_eq!(row.requests, totals, "totals survive the reset");
    let kept = usage_of(store, "a", "k1").await;
    assert_eq!(
        (kept.quota_day.as_str(), kept.day_requests),
        (DAY3, 1),
        "today's untouched"
    );
    assert_eq!(store.reset_credential_day_usage(DAY3).await.unwrap(), 0);
    assert_eq!(
        store.reset_credential_day_usage(DAY1).await.unwrap(),
        0,
        "never back"
    );
    assert!(
        store
            .reset_credential_day_usage("tomorrow")
            .await
            .unwrap_err()
            .is_invalid_input()
    );
    assert_eq!(
        store
            .reset_credential_day_usage("2027-01-01")
            .await
            .unwrap(),
        3
    );
    assert!(
        store
            .list_credential_usage()
            .await
            .unwrap()
            .iter()
            .all(|r| r.quota_day == "2027-01-01" && r.day_requests == 0 && r.day_tokens == 0)
    );
    assert_eq!(
        store
            .delete_credential_usage("a", Some("k2"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.delete_credential_usage("a", None).await.unwrap(), 1);
    let left = store.list_credential_usage().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].upstream, "b");
}

async fn rules_are_live_objects(store: Store) {
    let v0 = store.change_versions().await.unwrap();
    let spec = r#"{"name":"out-of-quota","when":{"status":[429]}}"#;
    assert!(
        store
            .upsert_spec(SpecTable::Rules, "out-of-quota", spec)
            .await
            .unwrap()
    );
    assert!(
        !store
            .upsert_spec(SpecTable::Rules, "out-of-quota", "{}")
            .await
            .unwrap()
    );
    store
        .upsert_spec(SpecTable::Rules, "banned", "{\"x\":1}")
        .await
        .unwrap();
    let rules = store.list_specs(SpecTable::Rules).await.unwrap();
    let names: Vec<_> = rules
        .iter()
        .map(|r| (r.name.as_str(), r.spec.as_str()))
        .collect();
    assert_eq!(names, [("banned", "{\"x\":1}"), ("out-of-quota", "{}")]);
    assert!(
        store
            .list_specs(SpecTable::Routes)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_spec(SpecTable::Rules, "banned").await.unwrap());
    assert!(!store.delete_spec(SpecTable::Rules, "banned").await.unwrap());
    let v1 = store.change_versions().await.unwrap();
    assert_eq!(v1.live, v0.live + 4, "three writes and one delete");
    assert_eq!(v1.health, v0.health);
    if let Some(mut listener) = store.change_listener().await.unwrap() {
        store
            .upsert_spec(SpecTable::Rules, "r2", "{}")
            .await
            .unwrap();
        assert_eq!(next(&mut listener).await, Some(ChangeKind::Live));
    }
}
both_backends!(rules_are_live_objects);
