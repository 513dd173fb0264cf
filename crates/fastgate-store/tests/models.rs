//! Model groups stored through the admin API, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use fastgate_store::Store;

async fn exercise(store: &Store) {
    let v0 = store.model_groups_version().await.unwrap();
    assert!(store.list_model_groups().await.unwrap().is_empty());
    assert!(
        store
            .upsert_model_group("smart", r#"{"name":"smart"}"#)
            .await
            .unwrap()
    );
    let v1 = store.model_groups_version().await.unwrap();
    assert_ne!(v0, v1);
    assert!(
        !store
            .upsert_model_group("smart", r#"{"name":"smart","fallbacks":[]}"#)
            .await
            .unwrap()
    );
    let v2 = store.model_groups_version().await.unwrap();
    assert_ne!(v1, v2);
    let all = store.list_model_groups().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].spec.contains("fallbacks"));
    assert!(!store.delete_model_group("nope").await.unwrap());
    assert_eq!(
        store.model_groups_version().await.unwrap(),
        v2,
        "a no-op delete changes nothing"
    );
    assert!(store.delete_model_group("smart").await.unwrap());
    assert_ne!(store.model_groups_version().await.unwrap(), v2);
    assert!(store.list_model_groups().await.unwrap().is_empty());
}

async fn model_groups(store: Store) {
    exercise(&store).await;
}
both_backends!(model_groups);
