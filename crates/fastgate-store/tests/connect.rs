//! Test bodies run once per backend (`both_backends!`), so they are not `#[test]`
//! functions themselves: allow what tests may do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, audit, key};
use fastgate_store::{AuditFilter, Store, StoreError};

#[tokio::test]
async fn sqlite_file_is_created_with_parent_dirs_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/deeper/fastgate.db");
    let url = format!("sqlite://{}", file.display());

    let store = Store::connect(&url, 4).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.ping().await.unwrap();
    store.insert_key(&key("persisted")).await.unwrap();
    assert!(file.exists());
    assert!(
        dir.path().join("nested/deeper/fastgate.db-wal").exists(),
        "WAL mode"
    );
    store.close().await;

    // Reopening runs migrations again (a no-op) and sees the data.
    let store = Store::connect(&url, 2).await.unwrap();
    assert!(store.get_key("persisted").await.unwrap().is_some());
    store.close().await;
}

/// The page size stored in a SQLite file's header (bytes 16-17; 1 means 65,536).
fn page_size(file: &std::path::Path) -> u32 {
    let bytes = std::fs::read(file).unwrap();
    match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => u32::from(n),
    }
}

/// New files get 16 KiB pages (fewer WAL writes per audit row); a database made with
/// another page size keeps it and works as before (WAL mode cannot change it).
#[tokio::test]
async fn sqlite_page_size_is_16k_for_new_files_and_kept_for_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new.db");
    let store = Store::connect(&format!("sqlite://{}", new_file.display()), 2)
        .await
        .unwrap();
    store
        .insert_audit_batch(&[audit("r1", at(0))])
        .await
        .unwrap();
    store.close().await;
    assert_eq!(page_size(&new_file), 16_384);

    let old_file = dir.path().join("old.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&old_file)
        .create_if_missing(true)
        .page_size(4096)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE before_fastgate (x INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::connect(&format!("sqlite://{}", old_file.display()), 2)
        .await
        .unwrap();
    store
        .insert_audit_batch(&[audit("r2", at(0))])
        .await
        .unwrap();
    let rows = store.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request_id, "r2");
    store.close().await;
    assert_eq!(page_size(&old_file), 4096);
}

#[tokio::test]
async fn bad_urls_are_rejected() {
    for url in ["mysql://x/y", "", "file.db"] {
        let err = Store::connect(url, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err}");
    }
    let err = Store::connect("postgres://user:hunter2@127.0.0.1:notaport/db", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!err.is_transient());
    assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_transient());
}

#[tokio::test]
async fn memory_stores_are_private_and_shared_by_the_pool() {
    let a = Store::connect("sqlite::memory:", 4).await.unwrap();
    let b = Store::connect("sqlite::memory:", 4).await.unwrap();
    a.insert_key(&key("only-a")).await.unwrap();
    assert!(b.get_key("only-a").await.unwrap().is_none());
    // Every pooled connection sees the same in-memory database.
    let reads = (0..8).map(|_| {
        let a = a.clone();
        tokio::spawn(async move { a.get_key("only-a").await })
    });
    for r in reads {
        assert!(r.await.unwrap().unwrap().is_some());
    }
}

async fn concurrent_writers(store: Store) {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let rows = [audit(&format!("c{t}-{i}"), at(i))];
                    store.insert_audit_batch(&rows).await?;
                    store.insert_key(&key(&format!("key-{t}-{i}"))).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        store.count_audit(&AuditFilter::default()).await.unwrap(),
        80
    );
    assert_eq!(store.keys_version().await.unwrap().count, 80);
    assert_eq!(store.keys_version().await.unwrap().changes, 80);
}
both_backends!(concurrent_writers);

/// Every store future is `Send`, so callers can `tokio::spawn` them.
#[expect(dead_code, reason = "compile-time check only")]
fn futures_are_send(store: Store, f: AuditFilter) {
    fn send<T: Send>(_: T) {}
    let k = key("k");
    let t = at(0);
    send(Store::connect("sqlite::memory:", 1));
    send(store.ping());
    send(store.close());
    send(store.insert_key(&k));
    send(store.list_keys());
    send(store.get_key("k"));
    send(store.update_key(&k));
    send(store.revoke_key("k"));
    send(store.delete_key("k"));
    send(store.keys_version());
    send(store.record_key_usage(&[]));
    send(store.insert_audit_batch(&[]));
    send(store.query_audit(&f));
    send(store.count_audit(&f));
    send(store.get_audit("r"));
    send(store.delete_audit_before(t, 10));
    send(fastgate_store::testing::connect_isolated_pg(
        "postgres://x/y",
    ));
    send(fastgate_store::testing::drop_isolated_pg(
        "postgres://x/y",
        "t_0",
    ));
}
