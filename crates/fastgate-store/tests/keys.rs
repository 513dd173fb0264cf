//! Test bodies run once per backend (`both_backends!`), so they are not `#[test]`
//! functions themselves: allow what tests may do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::{key, now};
use fastgate_store::{KeyLimits, KeyQuota, KeyUsage, QuotaPeriod, Store, StoreError};

async fn key_round_trip_keeps_every_field(store: Store) {
    let t = now();
    let mut k = key("full");
    k.source = Some("team-a".into());
    k.expires_at = Some(t + Duration::days(30));
    k.allowed_routes = vec!["openai".into(), "anthropic".into()];
    k.allowed_models = vec!["gpt-4o".into(), "claude-*".into()];
    k.limits = KeyLimits {
        requests_per_minute: Some(60),
        requests_per_day: Some(u32::MAX),
        tokens_per_minute: Some(100_000),
        max_concurrent: Some(4),
    };
    k.quota = KeyQuota {
        requests: Some(1000),
        tokens: Some(i64::MAX as u64),
        cost: Some(12.5),
        period: QuotaPeriod::Monthly,
    };
    k.usage_count = 7;
    k.last_used_at = Some(t);
    store.insert_key(&k).await.unwrap();
    assert_eq!(store.get_key(&k.id).await.unwrap(), Some(k.clone()));
    assert_eq!(store.get_key("full").await.unwrap(), Some(k.clone()));
    assert_eq!(store.get_key("missing").await.unwrap(), None);

    let mut big = key("big");
    big.usage_count = u64::MAX;
    let err = store.insert_key(&big).await.unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
}
both_backends!(key_round_trip_keeps_every_field);

async fn key_crud_and_conflicts(store: Store) {
    let mut a = key("alpha");
    a.created_at = now() - Duration::hours(1);
    let b = key("beta");
    store.insert_key(&b).await.unwrap();
    store.insert_key(&a).await.unwrap();
    let names: Vec<_> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"], "ordered by created_at");

    let mut dup_name = key("alpha");
    dup_name.key_hash = "other".into();
    let err = store.insert_key(&dup_name).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let mut dup_hash = key("gamma");
    dup_hash.key_hash = a.key_hash.clone();
    assert!(matches!(
        store.insert_key(&dup_hash).await,
        Err(StoreError::Conflict(_))
    ));
    let mut dup_id = key("delta");
    dup_id.id = a.id.clone();
    assert!(matches!(
        store.insert_key(&dup_id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_keys().await.unwrap().len(), 2);

    // Full update by id; usage fields and created_at stay the store's.
    store
        .record_key_usage(&[KeyUsage {
            key_id: a.id.clone(),
            count: 3,
            last_used_at: now(),
        }])
        .await
        .unwrap();
    let mut changed = a.clone();
    changed.name = "alpha2".into();
    changed.key_hash = "rotated".into();
    changed.allowed_models = vec!["gpt-*".into()];
    changed.quota.period = QuotaPeriod::Daily;
    changed.usage_count = 0;
    assert!(store.update_key(&changed).await.unwrap());
    let got = store.get_key("alpha2").await.unwrap().unwrap();
    assert_eq!(got.key_hash, "rotated");
    assert_eq!(got.allowed_models, ["gpt-*"]);
    assert_eq!(got.quota.period, QuotaPeriod::Daily);
    assert_eq!(got.usage_count, 3);
    assert_eq!(got.created_at, a.created_at);
    assert!(got.updated_at > a.updated_at);
    assert!(store.get_key("alpha").await.unwrap().is_none());

    // An update colliding with another key's name is a conflict and changes nothing.
    let mut clash = got.clone();
    clash.name = "beta".into();
    assert!(matches!(
        store.update_key(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_key(&a.id).await.unwrap().unwrap().name, "alpha2");

    let mut ghost = key("ghost");
    ghost.id = "no-such-id".into();
    assert!(!store.update_key(&ghost).await.unwrap());

    assert!(store.delete_key("alpha2").await.unwrap());
    assert!(!store.delete_key("alpha2").await.unwrap());
    assert!(store.delete_key(&b.id).await.unwrap());
    assert!(store.list_keys().await.unwrap().is_empty());
}
both_backends!(key_crud_and_conflicts);

async fn id_wins_over_name(store: Store) {
    let a = key("first");
    let mut b = key("x");
    b.name = a.id.clone(); // a name equal to another key's id
    store.insert_key(&a).await.unwrap();
    store.insert_key(&b).await.unwrap();
    assert_eq!(store.get_key(&a.id).await.unwrap().unwrap().id, a.id);
    assert!(store.delete_key(&a.id).await.unwrap());
    assert_eq!(store.get_key(&a.id).await.unwrap().unwrap().id, b.id);
}
both_backends!(id_wins_over_name);

async fn revoke(store: Store) {
    let k = key("rev");
    store.insert_key(&k).await.unwrap();
    let r = store.revoke_key("rev").await.unwrap().unwrap();
    assert!(!r.is_active);
    let revoked_at = r.revoked_at.unwrap();
    assert!(revoked_at >= k.created_at);
    assert!(r.updated_at > k.updated_at);
    assert_eq!(store.get_key(&k.id).await.unwrap(), Some(r.clone()));

    let again = store.revoke_key(&k.id).await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(revoked_at),
        "first revocation time kept"
    );
    assert!(again.updated_at > r.updated_at);
    assert!(store.revoke_key("nope").await.unwrap().is_none());
}
both_backends!(revoke);

async fn keys_version_tracks_mutations_but_not_usage(store: Store) {
    let v0 = store.keys_version().await.unwrap();
    assert_eq!(v0.count, 0);

    let k = key("v");
    store.insert_key(&k).await.unwrap();
    let v1 = store.keys_version().await.unwrap();
    assert_ne!(v1, v0);
    assert_eq!(v1.count, 1);

    assert!(store.update_key(&k).await.unwrap());
    let v2 = store.keys_version().await.unwrap();
    assert_ne!(v2, v1);

    let usage = [KeyUsage {
        key_id: k.id.clone(),
        count: 5,
        last_used_at: now(),
    }];
    store.record_key_usage(&usage).await.unwrap();
    assert_eq!(
        store.keys_version().await.unwrap(),
        v2,
        "usage must not reload keys"
    );

    store.revoke_key(&k.id).await.unwrap();
    let v3 = store.keys_version().await.unwrap();
    assert_ne!(v3, v2);

    // No-ops and failures leave it alone.
    assert!(!store.delete_key("missing").await.unwrap());
    assert!(store.revoke_key("missing").await.unwrap().is_none());
    let mut dup = key("v");
    dup.key_hash = "x".into();
    assert!(store.insert_key(&dup).await.is_err());
    assert_eq!(store.keys_version().await.unwrap(), v3);

    assert!(store.delete_key(&k.id).await.unwrap());
    let v4 = store.keys_version().await.unwrap();
    assert_ne!(v4, v3);
    assert_eq!(v4.count, 0);

    // Delete then re-insert the same record: still a new version.
    store.insert_key(&k).await.unwrap();
    let v5 = store.keys_version().await.unwrap();
    assert_ne!(v5, v3);
    assert_ne!(v5, v4);
}
both_backends!(keys_version_tracks_mutations_but_not_usage);

async fn usage_is_batched_and_merged(store: Store) {
    let a = key("ua");
    let b = key("ub");
    store.insert_key(&a).await.unwrap();
    store.insert_key(&b).await.unwrap();
    let t = now();
    let batch = [
        KeyUsage {
            key_id: a.id.clone(),
            count: 3,
            last_used_at: t,
        },
        KeyUsage {
            key_id: b.id.clone(),
            count: 1,
            last_used_at: t - Duration::seconds(5),
        },
        KeyUsage {
            key_id: a.id.clone(),
            count: 2,
            last_used_at: t - Duration::seconds(9),
        },
        KeyUsage {
            key_id: "unknown".into(),
            count: 9,
            last_used_at: t,
        },
    ];
    store.record_key_usage(&batch).await.unwrap();
    store.record_key_usage(&[]).await.unwrap();
    let ga = store.get_key(&a.id).await.unwrap().unwrap();
    assert_eq!((ga.usage_count, ga.last_used_at), (5, Some(t)));
    let gb = store.get_key(&b.id).await.unwrap().unwrap();
    assert_eq!(
        (gb.usage_count, gb.last_used_at),
        (1, Some(t - Duration::seconds(5)))
    );
    assert_eq!(
        ga.updated_at, a.updated_at,
        "usage does not touch updated_at"
    );

    // An older timestamp never moves last_used_at back.
    let older = [KeyUsage {
        key_id: a.id.clone(),
        count: 1,
        last_used_at: t - Duration::days(1),
    }];
    store.record_key_usage(&older).await.unwrap();
    let ga = store.get_key(&a.id).await.unwrap().unwrap();
    assert_eq!((ga.usage_count, ga.last_used_at), (6, Some(t)));

    let huge = [KeyUsage {
        key_id: a.id.clone(),
        count: u64::MAX,
        last_used_at: t,
    }];
    let err = store.record_key_usage(&huge).await.unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
}
both_backends!(usage_is_batched_and_merged);
