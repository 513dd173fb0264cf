//! Model groups stored through the admin API, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

#[tokio::test]
async fn model_groups_sqlite() {
    let store = Store::connect("sqlite::memory:", 1).await.unwrap();
    exercise(&store).await;
}

#[tokio::test]
async fn model_groups_postgres() {
    let Some(url) = fastgate_store::testing::pg_test_url() else {
        eprintln!("skipping postgres: FASTGATE_TEST_PG_URL unset");
        return;
    };
    let (store, schema) = fastgate_store::testing::connect_isolated_pg(&url)
        .await
        .unwrap();
    exercise(&store).await;
    store.close().await;
    fastgate_store::testing::drop_isolated_pg(&url, &schema)
        .await
        .unwrap();
}
