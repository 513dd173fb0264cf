//! The rollups the audit insert maintains give the figures a scan of the raw rows
//! gives: counts, sums, tokens, cost, errors, distinct keys, histograms and the
//! percentile buckets, for ranges across minute, hour and day boundaries, with
//! filters, after duplicates were re-inserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Utc};
use common::{audit, key};
use fastgate_store::rollups::histogram::{bucket_of, bucket_value_ms};
use fastgate_store::{
    AuditFilter, AuditRecord, Grain, SortOrder, StatsFilter, StatsTotals, Store, TopBy,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// A UTC midnight.
const DAY0: i64 = 1_699_920_000_000;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A small deterministic generator (no dependency for tests).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pick(rng: &mut Lcg, options: &[Option<&str>]) -> Option<String> {
    options[rng.next(options.len() as u64) as usize].map(str::to_owned)
}

/// `n` varied records from 22:00 on DAY0 to about 54 hours later.
fn varied(n: usize, seed: u64) -> Vec<AuditRecord> {
    let mut rng = Lcg(seed);
    let long_path = format!("/v1/{}", "p".repeat(250));
    (0..n)
        .map(|i| {
            let ms = DAY0 + 22 * HOUR + rng.next(54 * HOUR as u64) as i64;
            let mut r = audit(&format!("req-{seed}-{i:04}"), t(ms));
            r.key_id = pick(&mut rng, &[Some("k-a"), Some("k-b"), Some("k-c"), None]);
            r.model = pick(&mut rng, &[Some("gpt-4o"), Some("claude"), None]);
            r.route = pick(&mut rng, &[Some("openai"), Some("anthropic"), None]);
            r.upstream = pick(&mut rng, &[Some("oai"), Some("ant"), Some("oai-2")]);
            r.path = match rng.next(4) {
                0 => long_path.clone(),
                1 => "/v1/messages".into(),
                _ => "/v1/chat/completions".into(),
            };
            let statuses = [200, 200, 200, 201, 400, 401, 429, 500, 502, 503];
            r.status_code = statuses[rng.next(statuses.len() as u64) as usize];
            r.error_message = (rng.next(5) == 0).then(|| "upstream timed out".into());
            // Log-spread durations from 0.1 ms to about 200 s.
            r.duration_ms = 10f64.powf(rng.next(6300) as f64 / 1000.0 - 1.0);
            r.ttfb_ms = (rng.next(3) > 0).then(|| r.duration_ms * rng.next(100) as f64 / 100.0);
            r.is_stream = rng.next(2) == 0;
            r.tokens_in = (rng.next(4) > 0).then(|| rng.next(5000));
            r.tokens_out = (rng.next(4) > 0).then(|| rng.next(3000));
            r.cost = (rng.next(3) > 0).then(|| rng.next(1_000_000) as f64 / 1e7);
            r
        })
        .collect()
}

/// Every stored row, oldest first.
async fn raw_rows(store: &Store) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    loop {
        let page = AuditFilter {
            order: SortOrder::Asc,
            limit: Some(1000),
            offset: Some(all.len() as u32),
            ..AuditFilter::default()
        };
        let rows = store.query_audit(&page).await.unwrap();
        if rows.is_empty() {
            return all;
        }
        all.extend(rows);
    }
}

fn micros(ms: f64) -> u64 {
    (ms * 1000.0).round() as u64
}

/// What the rollups must say about `rows`, computed from the raw rows.
fn scan(rows: &[&AuditRecord]) -> StatsTotals {
    let mut s = StatsTotals::default();
    for r in rows {
        s.requests += 1;
        s.errors += u64::from(r.status_code >= 400 || r.error_message.is_some());
        s.gateway_errors += u64::from(r.error_message.is_some());
        s.streams += u64::from(r.is_stream);
        s.duration_us += micros(r.duration_ms);
        s.latency[bucket_of(r.duration_ms)] += 1;
        if let Some(ttfb) = r.ttfb_ms {
            s.ttfb_us += micros(ttfb);
            s.ttfb_count += 1;
            s.ttfb[bucket_of(ttfb)] += 1;
        }
        s.tokens_in += r.tokens_in.unwrap_or(0);
        s.tokens_out += r.tokens_out.unwrap_or(0);
        s.cost_nanos += r.cost.map_or(0, |c| (c * 1e9).round() as u64);
        s.status_4xx += u64::from((400..500).contains(&r.status_code));
        s.status_5xx += u64::from(r.status_code >= 500);
    }
    s
}

/// The exact nearest-rank percentile of `values`, as the value of its bucket.
fn exact_percentile_bucket(mut values: Vec<f64>, per_mille: usize) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * per_mille).div_ceil(1000).max(1);
    Some(bucket_value_ms(bucket_of(values[rank - 1])))
}

fn matches(r: &AuditRecord, f: &StatsFilter) -> bool {
    let eq = |want: &Option<String>, got: &Option<String>| want.is_none() || want == got;
    eq(&f.key_id, &r.key_id)
        && eq(&f.route, &r.route)
        && eq(&f.model, &r.model)
        && eq(&f.upstream, &r.upstream)
}

fn within<'a>(
    rows: &'a [AuditRecord],
    from: i64,
    to: i64,
    f: &StatsFilter,
) -> Vec<&'a AuditRecord> {
    rows.iter()
        .filter(|r| {
            let ms = r.request_time.timestamp_millis();
            ms >= from && ms < to && matches(r, f)
        })
        .collect()
}

/// Inserts in batches that overlap, repeat a row with other values, and repeat
/// an id inside one batch; returns how many rows are new.
async fn insert_with_duplicates(store: &Store, rows: &[AuditRecord]) -> u64 {
    let mut n = store.insert_audit_batch(&rows[..150]).await.unwrap();
    // Replays with other contents add nothing: the stored row wins.
    let mut replay: Vec<AuditRecord> = rows[100..150].to_vec();
    for r in &mut replay {
        r.tokens_in = Some(1_000_000);
        r.status_code = 500;
    }
    replay.extend_from_slice(&rows[150..300]);
    n += store.insert_audit_batch(&replay).await.unwrap();
    // The same id twice in one batch: the first occurrence is stored.
    let mut twice = rows[300..].to_vec();
    let mut copy = rows[300].clone();
    copy.duration_ms = 99_999.0;
    twice.insert(1, copy);
    n += store.insert_audit_batch(&twice).await.unwrap();
    n += store.insert_audit_batch(&rows[..10]).await.unwrap();
    n
}

async fn check_summary(store: &Store, rows: &[AuditRecord], from: i64, to: i64, f: &StatsFilter) {
    let got = store.stats_summary(t(from), t(to), f).await.unwrap();
    let want_rows = within(rows, from, to, f);
    let ctx = format!("{from}..{to} {f:?}");
    assert_eq!(got.totals, scan(&want_rows), "{ctx}");
    let mut keys: Vec<_> = want_rows
        .iter()
        .filter_map(|r| r.key_id.as_deref())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(got.active_keys, keys.len() as u64, "{ctx}");
    let durations: Vec<f64> = want_rows.iter().map(|r| r.duration_ms).collect();
    let ttfbs: Vec<f64> = want_rows.iter().filter_map(|r| r.ttfb_ms).collect();
    for q in [500, 950] {
        assert_eq!(
            got.totals.latency_percentile_ms(q as u64),
            exact_percentile_bucket(durations.clone(), q),
            "{ctx} latency p{q}"
        );
        assert_eq!(
            got.totals.ttfb_percentile_ms(q as u64),
            exact_percentile_bucket(ttfbs.clone(), q),
            "{ctx} ttfb p{q}"
        );
    }
    assert_eq!((got.from, got.to), (t(from), t(to)));
}

async fn rollups_equal_a_scan_of_the_raw_rows(store: Store) {
    let rows = varied(420, 7);
    assert_eq!(insert_with_duplicates(&store, &rows).await, 420);
    let raw = raw_rows(&store).await;
    assert_eq!(raw.len(), 420);
    assert!(raw.iter().all(|r| r.tokens_in != Some(1_000_000)));
    let none = StatsFilter::default();
    let ranges = [
        // Everything; whole days only; minute edges around two midnights; a few minutes.
        (DAY0, DAY0 + 4 * DAY),
        (DAY0 + DAY, DAY0 + 2 * DAY),
        (
            DAY0 + 23 * HOUR + 17 * MIN,
            DAY0 + 2 * DAY + 5 * HOUR + 3 * MIN,
        ),
        (DAY0 + DAY + 59 * MIN, DAY0 + DAY + 2 * HOUR + MIN),
        (DAY0 + DAY + 10 * MIN, DAY0 + DAY + 13 * MIN),
    ];
    for (from, to) in ranges {
        check_summary(&store, &raw, from, to, &none).await;
    }
    let filters = [
        StatsFilter {
            key_id: Some("k-b".into()),
            ..StatsFilter::default()
        },
        StatsFilter {
            model: Some("claude".into()),
            route: Some("openai".into()),
            ..StatsFilter::default()
        },
        StatsFilter {
            upstream: Some("oai-2".into()),
            ..StatsFilter::default()
        },
        StatsFilter {
            key_id: Some("nobody".into()),
            ..StatsFilter::default()
        },
    ];
    for f in &filters {
        check_summary(&store, &raw, ranges[2].0, ranges[2].1, f).await;
    }
    // A range not on minute edges is widened to whole minutes.
    let odd = store
        .stats_summary(
            t(DAY0 + DAY + 10 * MIN + 5),
            t(DAY0 + DAY + 12 * MIN + 1),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(
        (odd.from, odd.to),
        (t(DAY0 + DAY + 10 * MIN), t(DAY0 + DAY + 13 * MIN))
    );
    let exact = within(&raw, DAY0 + DAY + 10 * MIN, DAY0 + DAY + 13 * MIN, &none);
    assert_eq!(odd.totals, scan(&exact));
}
both_backends!(rollups_equal_a_scan_of_the_raw_rows);

async fn timeseries_points_equal_the_raw_buckets(store: Store) {
    let rows = varied(400, 11);
    insert_with_duplicates(&store, &rows).await;
    let raw = raw_rows(&store).await;
    let f = StatsFilter {
        key_id: Some("k-a".into()),
        ..StatsFilter::default()
    };
    let cases = [
        (Grain::Day, DAY0, DAY0 + 4 * DAY, StatsFilter::default()),
        (
            Grain::Hour,
            DAY0 + 21 * HOUR + 30 * MIN,
            DAY0 + 2 * DAY,
            f.clone(),
        ),
        (
            Grain::Minute,
            DAY0 + DAY + 7 * MIN,
            DAY0 + DAY + 3 * HOUR,
            StatsFilter::default(),
        ),
    ];
    for (grain, from, to, filter) in cases {
        let series = store
            .stats_timeseries(grain, t(from), t(to), &filter)
            .await
            .unwrap();
        let start = grain.floor(from);
        let expected_points = (grain.ceil(to) - start) / grain.millis();
        assert_eq!(series.len() as i64, expected_points, "{grain:?}");
        for (i, p) in series.iter().enumerate() {
            let b = start + i as i64 * grain.millis();
            assert_eq!(p.start, t(b));
            let want = scan(&within(&raw, b, b + grain.millis(), &filter));
            assert_eq!(p.totals, want, "{grain:?} bucket {b}");
        }
        let busy = series.iter().filter(|p| p.totals.requests > 0).count();
        assert!(busy > 1, "{grain:?}: the data must span several buckets");
    }
    let year = store
        .stats_timeseries(
            Grain::Minute,
            t(DAY0),
            t(DAY0 + 365 * DAY),
            &StatsFilter::default(),
        )
        .await;
    assert!(year.is_err_and(|e| e.is_invalid_input()));
}
both_backends!(timeseries_points_equal_the_raw_buckets);

async fn top_lists_equal_the_raw_groups(store: Store) {
    let rows = varied(400, 23);
    insert_with_duplicates(&store, &rows).await;
    let mut named = key("key B");
    named.id = "k-b".into();
    store.insert_key(&named).await.unwrap();
    let raw = raw_rows(&store).await;
    let (from, to) = (DAY0 + 23 * HOUR + 11 * MIN, DAY0 + 3 * DAY);
    let scope = within(&raw, from, to, &StatsFilter::default());
    for by in TopBy::ALL {
        let value = |r: &AuditRecord| -> Option<String> {
            match by {
                TopBy::Key => r.key_id.clone(),
                TopBy::Model => r.model.clone(),
                TopBy::Route => r.route.clone(),
                TopBy::Upstream => r.upstream.clone(),
                TopBy::Path => Some(r.path.chars().take(200).collect()),
                TopBy::Status => Some(r.status_code.to_string()),
            }
        };
        let mut groups: Vec<(Option<String>, Vec<&AuditRecord>)> = Vec::new();
        for r in &scope {
            let v = value(r);
            match groups.iter_mut().find(|(g, _)| *g == v) {
                Some((_, members)) => members.push(r),
                None => groups.push((v, vec![r])),
            }
        }
        // Most requests first, ties by value ("" for none sorts first).
        groups.sort_by(|a, b| {
            let key = |g: &(Option<String>, Vec<&AuditRecord>)| g.0.clone().unwrap_or_default();
            b.1.len().cmp(&a.1.len()).then_with(|| key(a).cmp(&key(b)))
        });
        let top = store
            .stats_top(by, t(from), t(to), &StatsFilter::default(), 3)
            .await
            .unwrap();
        assert_eq!(top.len(), groups.len().min(3), "{by:?}");
        for (item, (value, members)) in top.iter().zip(&groups) {
            assert_eq!(&item.value, value, "{by:?}");
            assert_eq!(item.totals, scan(members), "{by:?} {value:?}");
            let name =
                (by == TopBy::Key && value.as_deref() == Some("k-b")).then(|| "key B".to_owned());
            assert_eq!(item.key_name, name, "{by:?} {value:?}");
        }
    }
}
both_backends!(top_lists_equal_the_raw_groups);

async fn retention_keeps_day_rows(store: Store) {
    let rows = varied(200, 5);
    store.insert_audit_batch(&rows).await.unwrap();
    let whole = StatsFilter::default();
    let days = (DAY0, DAY0 + 4 * DAY);
    let before = store
        .stats_summary(t(days.0), t(days.1), &whole)
        .await
        .unwrap();
    assert_eq!(before.totals.requests, 200);
    // Nothing is old enough yet.
    assert_eq!(store.prune_rollups(t(DAY0 + 2 * DAY)).await.unwrap(), 0);
    // A year later: minute and hour rows are gone, day rows answer whole days.
    let deleted = store.prune_rollups(t(DAY0 + 365 * DAY)).await.unwrap();
    assert!(deleted > 200, "{deleted}");
    let after = store
        .stats_summary(t(days.0), t(days.1), &whole)
        .await
        .unwrap();
    assert_eq!(after.totals, before.totals);
    let hour = store
        .stats_timeseries(Grain::Hour, t(days.0), t(days.1), &whole)
        .await
        .unwrap();
    assert!(hour.iter().all(|p| p.totals.requests == 0));
    // Minute rows go after two days, hour rows stay.
    let fresh = varied(50, 6);
    store.insert_audit_batch(&fresh).await.unwrap();
    let n = store.prune_rollups(t(DAY0 + 6 * DAY)).await.unwrap();
    assert!(n > 0);
    let hours = store
        .stats_timeseries(Grain::Hour, t(days.0), t(days.1), &whole)
        .await
        .unwrap();
    assert_eq!(hours.iter().map(|p| p.totals.requests).sum::<u64>(), 50);
    let minutes = store
        .stats_timeseries(Grain::Minute, t(DAY0 + DAY), t(DAY0 + 2 * DAY), &whole)
        .await
        .unwrap();
    assert!(minutes.iter().all(|p| p.totals.requests == 0));
}
both_backends!(retention_keeps_day_rows);

/// Writers of a fleet add to the same rollup rows at once: every addition lands
/// (no lost update), and none deadlocks (rows are locked in one order).
async fn concurrent_batches_add_up(store: Store) {
    let rows = varied(480, 31);
    let mut tasks = Vec::new();
    for part in rows.chunks(60) {
        // Each batch touches the same few buckets, in its own row order.
        let mut batch: Vec<AuditRecord> = part.to_vec();
        batch.reverse();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.insert_audit_batch(&batch).await.unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        inserted += t.await.unwrap();
    }
    assert_eq!(inserted, 480);
    let raw = raw_rows(&store).await;
    let none = StatsFilter::default();
    let got = store
        .stats_summary(t(DAY0), t(DAY0 + 4 * DAY), &none)
        .await
        .unwrap();
    assert_eq!(got.totals, scan(&within(&raw, DAY0, DAY0 + 4 * DAY, &none)));
    let hours = store
        .stats_timeseries(Grain::Hour, t(DAY0), t(DAY0 + 4 * DAY), &none)
        .await
        .unwrap();
    assert_eq!(hours.iter().map(|p| p.totals.requests).sum::<u64>(), 480);
}
both_backends!(concurrent_batches_add_up);
