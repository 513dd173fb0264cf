//! Task leases: one winner per race, renewal, expiry takeover, finish by the
//! holder only, not before the task is due.

use std::sync::Arc;

use fastgate_store::{Store, TaskRow};
use tokio::sync::Barrier;

const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 60_000;

/// `n` instances try to take `name` at the same moment; returns the winners.
async fn race(store: &Store, name: &str, n: usize, now_ms: i64) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(n));
    let tries: Vec<_> = (0..n)
        .map(|i| {
            let (store, barrier, name) = (store.clone(), barrier.clone(), name.to_owned());
            tokio::spawn(async move {
                let holder = format!("gw-{i}-at-{now_ms}");
                barrier.wait().await;
                let won = store
                    .try_acquire_task(&name, &holder, now_ms, LEASE)
                    .await
                    .unwrap();
                won.then_some(holder)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tries {
        winners.extend(t.await.unwrap());
    }
    winners
}

async fn task(store: &Store, name: &str) -> TaskRow {
    store
        .list_tasks()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

async fn lease_race(store: Store) {
    // No row yet: 8 racing inserts, one winner.
    let winners = race(&store, "quota-reset", 8, T0).await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let holder = winners[0].clone();
    let row = task(&store, "quota-reset").await;
    assert_eq!(
        row,
        TaskRow {
            name: "quota-reset".into(),
            holder: Some(holder.clone()),
            lease_until_ms: T0 + LEASE,
            last_started_ms: Some(T0),
            last_finished_ms: None,
            last_ok: None,
            last_result: None,
            next_run_ms: None,
        }
    );
    // Held: nobody else wins, even racing; the holder renews.
    assert!(race(&store, "quota-reset", 8, T0 + 10).await.is_empty());
    assert!(
        store
            .try_acquire_task("quota-reset", &holder, T0 + 20, LEASE)
            .await
            .unwrap()
    );
    assert_eq!(
        task(&store, "quota-reset").await.lease_until_ms,
        T0 + 20 + LEASE
    );
    // Expired: a race over the stale row, one winner.
    let later = T0 + 20 + LEASE;
    let winners = race(&store, "quota-reset", 8, later).await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_ne!(winners[0], holder);
    // Another task is independent.
    assert_eq!(race(&store, "retention", 4, later).await.len(), 1);
    assert_eq!(store.list_tasks().await.unwrap().len(), 2);
}
crate::both_backends!(lease_race);

async fn finish_and_due(store: Store) {
    assert!(
        store
            .try_acquire_task("probe", "gw-a", T0, LEASE)
            .await
            .unwrap()
    );
    // Only the holder finishes; anyone else changes nothing.
    let err = store
        .finish_task("probe", "gw-b", T0 + 5, false, "not mine", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let err = store
        .finish_task("unknown", "gw-a", T0 + 5, true, "", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(task(&store, "probe").await.last_finished_ms, None);

    let next = T0 + 3_600_000;
    store
        .finish_task(
            "probe",
            "gw-a",
            T0 + 5,
            true,
            "3 credentials probed",
            Some(next),
        )
        .await
        .unwrap();
    let row = task(&store, "probe").await;
    assert_eq!(
        row,
        TaskRow {
            name: "probe".into(),
            holder: Some("gw-a".into()),
            lease_until_ms: 0,
            last_started_ms: Some(T0),
            last_finished_ms: Some(T0 + 5),
            last_ok: Some(true),
            last_result: Some("3 credentials probed".into()),
            next_run_ms: Some(next),
        }
    );
    // Released but not due: nobody runs it again early, not even its last holder.
    assert!(
        !store
            .try_acquire_task("probe", "gw-b", T0 + 10, LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_task("probe", "gw-a", T0 + 10, LEASE)
            .await
            .unwrap()
    );
    // Due: one of a race takes it.
    let winners = race(&store, "probe", 8, next).await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners[0].clone();
    store
        .finish_task("probe", &winner, next + 1, false, "upstream down", None)
        .await
        .unwrap();
    let row = task(&store, "probe").await;
    assert_eq!(
        (row.last_ok, row.last_result.as_deref(), row.next_run_ms),
        (Some(false), Some("upstream down"), None)
    );
    // No next run given: free at once.
    assert!(
        store
            .try_acquire_task("probe", "gw-c", next + 2, LEASE)
            .await
            .unwrap()
    );
}
crate::both_backends!(finish_and_due);

async fn expiry_takeover(store: Store) {
    assert!(
        store
            .try_acquire_task("digest", "gw-a", T0, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_task("digest", "gw-b", T0 + 999, 1_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_acquire_task("digest", "gw-b", T0 + 1_000, 1_000)
            .await
            .unwrap()
    );
    // The old holder lost it: its finish is refused and records nothing.
    let err = store
        .finish_task("digest", "gw-a", T0 + 1_100, true, "late", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let row = task(&store, "digest").await;
    assert_eq!(row.holder.as_deref(), Some("gw-b"));
    assert_eq!(row.last_started_ms, Some(T0 + 1_000));
    assert_eq!(row.last_result, None);
    // A lease must last.
    for bad in [0, -5, i64::MAX] {
        let err = store
            .try_acquire_task("x", "gw-a", T0, bad)
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{bad}: {err}");
    }
}
crate::both_backends!(expiry_takeover);

/// The race on a SQLite file in WAL mode (as in production), threads in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_race_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("leases.db").display());
    let store = Store::connect(&url, 8).await.unwrap();
    for round in 0..5 {
        let now = T0 + round * (LEASE + 1);
        let winners = race(&store, "quota-reset", 8, now).await;
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
    }
    store.close().await;
}
