//! Upstreams, provider keys, routes, the admin audit trail and the change feed,
//! on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use fastgate_store::{
    AdminEvent, AdminEventFilter, ChangeKind, SpecTable, Store, StoredCredential,
};

fn cred(upstream: &str, name: &str, sealed: &str) -> StoredCredential {
    StoredCredential {
        upstream: upstream.into(),
        name: name.into(),
        sealed_key: sealed.into(),
        key_hint: "…abcd".into(),
        weight: 2,
        quota: None,
    }
}

async fn specs_and_credentials(store: Store) {
    let v0 = store.live_version().await.unwrap();
    for table in [SpecTable::Upstreams, SpecTable::Routes] {
        assert!(store.list_specs(table).await.unwrap().is_empty());
        assert!(
            store
                .upsert_spec(table, "a", r#"{"name":"a"}"#)
                .await
                .unwrap()
        );
        assert!(
            !store
                .upsert_spec(table, "a", r#"{"name":"a","x":1}"#)
                .await
                .unwrap()
        );
        let all = store.list_specs(table).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].spec, r#"{"name":"a","x":1}"#);
    }
    let v1 = store.live_version().await.unwrap();
    assert_eq!(v1, v0 + 4, "each change bumps the counter once");
    // The routes table and the upstreams table are separate.
    assert!(store.delete_spec(SpecTable::Routes, "a").await.unwrap());
    assert_eq!(
        store.list_specs(SpecTable::Upstreams).await.unwrap().len(),
        1
    );

    assert!(
        store
            .upsert_credential(&cred("a", "k1", "v1.x.one"))
            .await
            .unwrap()
    );
    assert!(
        store
            .upsert_credential(&cred("a", "k2", "v1.x.two"))
            .await
            .unwrap()
    );
    assert!(
        store
            .upsert_credential(&cred("file-up", "k1", "v1.x.three"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .upsert_credential(&cred("a", "k1", "v1.x.uno"))
            .await
            .unwrap()
    );
    let all = store.list_credentials().await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].sealed_key, "v1.x.uno");
    assert_eq!(all[0].weight, 2);
    assert_eq!(all[2].upstream, "file-up");

    // Rotation is all or nothing.
    let before = store.live_version().await.unwrap();
    let err = store
        .reseal_credentials(&[
            ("a".into(), "k1".into(), "v1.y.new".into()),
            ("a".into(), "gone".into(), "v1.y.new".into()),
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("conflict"), "{err}");
    assert_eq!(
        store.list_credentials().await.unwrap()[0].sealed_key,
        "v1.x.uno"
    );
    assert_eq!(store.live_version().await.unwrap(), before);
    store
        .reseal_credentials(&[("a".into(), "k1".into(), "v1.y.new".into())])
        .await
        .unwrap();
    assert_eq!(
        store.list_credentials().await.unwrap()[0].sealed_key,
        "v1.y.new"
    );

    assert!(!store.delete_credential("a", "nope").await.unwrap());
    assert!(store.delete_credential("a", "k2").await.unwrap());
    // Deleting an upstream deletes its stored keys, not other upstreams' keys.
    let v2 = store.live_version().await.unwrap();
    assert!(store.delete_spec(SpecTable::Upstreams, "a").await.unwrap());
    assert!(!store.delete_spec(SpecTable::Upstreams, "a").await.unwrap());
    assert_eq!(store.live_version().await.unwrap(), v2 + 1);
    let left = store.list_credentials().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].upstream, "file-up");
    // NUL in a name is stored as U+FFFD, as everywhere else.
    assert!(
        store
            .upsert_spec(SpecTable::Routes, "n\0ul", "{}")
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_specs(SpecTable::Routes).await.unwrap()[0].name,
        "n\u{FFFD}ul"
    );
}
both_backends!(specs_and_credentials);

async fn admin_events(store: Store) {
    let mut ids = Vec::new();
    for (i, kind) in ["route", "upstream", "route"].iter().enumerate() {
        let mut e = AdminEvent::now("admin-token@127.0.0.1", "create", kind, &format!("o{i}"));
        e.after = Some(serde_json::json!({ "name": format!("o{i}"), "key": "[redacted]" }));
        if i == 2 {
            e.action = "delete".into();
            e.before = e.after.take();
        }
        store.insert_admin_event(&e).await.unwrap();
        ids.push(e.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let all = store
        .list_admin_events(&AdminEventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), {
        let mut r = ids.clone();
        r.reverse();
        r
    });
    assert_eq!(all[0].action, "delete");
    assert!(all[0].after.is_none());
    assert_eq!(all[0].before.as_ref().unwrap()["name"], "o2");
    let routes = store
        .list_admin_events(&AdminEventFilter {
            object_kind: Some("route".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(routes.len(), 2);
    let page = store
        .list_admin_events(&AdminEventFilter {
            before_id: Some(ids[2].clone()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[1]);
    let none = store
        .list_admin_events(&AdminEventFilter {
            since: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
both_backends!(admin_events);

async fn change_versions(store: Store) {
    let v0 = store.change_versions().await.unwrap();
    store
        .upsert_spec(SpecTable::Routes, "r", "{}")
        .await
        .unwrap();
    let v1 = store.change_versions().await.unwrap();
    assert_eq!(v1.live, v0.live + 1);
    assert_eq!(
        (v1.keys, v1.models, v1.health),
        (v0.keys, v0.models, v0.health)
    );
    store.upsert_model_group("m", "{}").await.unwrap();
    let v2 = store.change_versions().await.unwrap();
    assert_eq!(v2.models, v1.models + 1);
    let key = common::key("k");
    store.insert_key(&key).await.unwrap();
    let v3 = store.change_versions().await.unwrap();
    assert_ne!(v3.keys, v2.keys);
    assert_eq!(v3.keys, store.keys_version().await.unwrap());

    // The feed: PostgreSQL notifies each change at commit; SQLite has none.
    let Some(mut listener) = store.change_listener().await.unwrap() else {
        assert_eq!(store.backend(), "sqlite");
        return;
    };
    store
        .upsert_spec(SpecTable::Upstreams, "u", "{}")
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Live));
    store.upsert_model_group("m2", "{}").await.unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Models));
    store.revoke_key("k").await.unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Keys));
    // Usage counts are not changes.
    store
        .record_key_usage(&[fastgate_store::KeyUsage {
            key_id: key.id.clone(),
            count: 1,
            last_used_at: chrono::Utc::now(),
        }])
        .await
        .unwrap();
    store.delete_credential("u", "none").await.unwrap();
    store.delete_spec(SpecTable::Routes, "r").await.unwrap();
    assert_eq!(next(&mut listener).await, Some(ChangeKind::Live));
}
both_backends!(change_versions);

/// The next change on `l`, failing the test after 10 s.
async fn next(l: &mut fastgate_store::ChangeListener) -> Option<ChangeKind> {
    tokio::time::timeout(Duration::from_secs(10), l.recv())
        .await
        .expect("no notification within 10 s")
        .unwrap()
}
