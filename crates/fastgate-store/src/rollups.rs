//! Rollups of the audit log (`audit_rollups`, migration 0008): per minute, hour and
//! day, per key, route, model, upstream, path and status, the sums statistics need.
//!
//! [`Store::insert_audit_batch`] adds the rows it actually inserted (a replayed
//! request id adds nothing) in the same transaction: aggregated in memory first,
//! then one additive upsert per distinct group, in one sorted order so concurrent
//! writers of a fleet lock rows in the same order (no deadlock). Statistics
//! ([`Store::stats_summary`], [`Store::stats_timeseries`], [`Store::stats_top`])
//! read only these rows, never `audit_logs`, so they stay fast and outlive the
//! audit retention.

#[cfg(test)]
mod backfill_tests;
pub mod histogram;
mod query;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use fastgate_audit::AuditRecordRef;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Type};

use crate::convert::{storable_cow, to_ms};
use crate::{Store, StoreError};
use histogram::{BUCKETS, bucket_of};

pub use query::{
    StatsFilter, StatsPoint, StatsSummary, StatsTotals, TopBy, TopItem, series_points,
};

/// The most points one time series may have.
pub const MAX_SERIES_POINTS: u64 = 10_000;

/// Characters of a path kept as a rollup dimension.
pub const PATH_MAX_CHARS: usize = 200;

/// Per-row caps, so that no sum of a bucket can overflow 64 bits (which would make
/// the audit batch fail): 10^9 tokens, 1000 USD, about 11.5 days.
const MAX_TOKENS_PER_ROW: u64 = 1_000_000_000;
const MAX_COST_NANOS_PER_ROW: f64 = 1e12;
const MAX_MICROS_PER_ROW: f64 = 1e12;

/// How long minute and hour rows are kept; day rows are kept for ever.
const MINUTE_RETENTION_MS: i64 = 2 * 86_400_000;
const HOUR_RETENTION_MS: i64 = 90 * 86_400_000;

/// The width of a rollup bucket. Buckets are aligned on the unix epoch, so a day is
/// a UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Minute,
    Hour,
    Day,
}

impl Grain {
    /// Every grain, finest first.
    pub const ALL: [Grain; 3] = [Grain::Minute, Grain::Hour, Grain::Day];

    /// The name stored in `audit_rollups.grain` and used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    /// `minute`, `hour` or `day`.
    pub fn parse(s: &str) -> Option<Grain> {
        Grain::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The bucket width in ms.
    pub fn millis(self) -> i64 {
        match self {
            Grain::Minute => 60_000,
            Grain::Hour => 3_600_000,
            Grain::Day => 86_400_000,
        }
    }

    /// Start of the bucket holding `ms`.
    pub fn floor(self, ms: i64) -> i64 {
        ms - ms.rem_euclid(self.millis())
    }

    /// `ms` rounded up to a bucket start.
    pub fn ceil(self, ms: i64) -> i64 {
        let down = self.floor(ms);
        if down == ms {
            ms
        } else {
            down.saturating_add(self.millis())
        }
    }
}

/// The dimensions of a rollup row ('' for none), as stored. They borrow from the
/// records of the batch (a copy only where NUL must be replaced) until they are bound.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dims<'a> {
    key_id: Cow<'a, str>,
    route: Cow<'a, str>,
    model: Cow<'a, str>,
    upstream: Cow<'a, str>,
    path: Cow<'a, str>,
    status_code: i32,
}

impl<'a> Dims<'a> {
    fn of(r: &AuditRecordRef<'a>) -> Dims<'a> {
        let text = |v: Option<&'a str>| v.map_or(Cow::Borrowed(""), storable_cow);
        let path = match storable_cow(r.path) {
            Cow::Borrowed(p) => Cow::Borrowed(cut_chars(p, PATH_MAX_CHARS)),
            Cow::Owned(p) => Cow::Owned(cut_chars(&p, PATH_MAX_CHARS).to_owned()),
        };
        Dims {
            key_id: text(r.key_id),
            route: text(r.route),
            model: text(r.model),
            upstream: text(r.upstream),
            path,
            status_code: i32::from(r.status_code),
        }
    }
}

/// `s` cut to its first `max` characters.
fn cut_chars(s: &str, max: usize) -> &str {
    // No more bytes than `max` means no more characters: nothing to count (every
    // audit row's path passes here).
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((cut, _)) => &s[..cut],
        None => s,
    }
}

/// The measures of a rollup row (all sums), in the order of [`MEASURE_COLUMNS`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Measures {
    sums: [i64; SUM_COLUMNS.len()],
    latency: [i64; BUCKETS],
    ttfb: [i64; BUCKETS],
}

/// The summed columns before the histograms, in order.
pub(crate) const SUM_COLUMNS: [&str; 10] = [
    "requests",
    "errors",
    "gateway_errors",
    "streams",
    "duration_us",
    "ttfb_us",
    "ttfb_count",
    "tokens_in",
    "tokens_out",
    "cost_nanos",
];

/// Every measure column: the sums, then `lat_00..`, then `ttfb_00..`.
pub(crate) static MEASURE_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut cols: Vec<String> = SUM_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    cols.extend((0..BUCKETS).map(|i| format!("lat_{i:02}")));
    cols.extend((0..BUCKETS).map(|i| format!("ttfb_{i:02}")));
    cols
});

/// A value in ms as whole µs, within the per-row cap (negative becomes 0).
fn micros(ms: f64) -> i64 {
    (ms * 1000.0).round().clamp(0.0, MAX_MICROS_PER_ROW) as i64
}

/// A cost in USD as whole nano-USD, within the per-row cap (negative becomes 0).
pub(crate) fn cost_nanos(usd: f64) -> i64 {
    (usd * 1e9).round().clamp(0.0, MAX_COST_NANOS_PER_ROW) as i64
}

fn capped_tokens(t: Option<u64>) -> i64 {
    t.unwrap_or(0).min(MAX_TOKENS_PER_ROW) as i64
}

/// One more row in histogram bucket `i` (`bucket_of` is always in range).
fn bump(histogram: &mut [i64; BUCKETS], i: usize) {
    if let Some(count) = histogram.get_mut(i) {
        *count = count.saturating_add(1);
    }
}

impl Measures {
    /// One audit row, with its values as the store keeps them (non-finite
    /// durations are 0, non-finite TTFB and cost absent).
    #[cfg(test)]
    fn of(r: &AuditRecordRef<'_>) -> Measures {
        let mut m = Measures::default();
        m.add_row(r);
        m
    }

    /// Adds one audit row: its sums and one count in each histogram. Touches only
    /// what the row changes (building a whole `Measures` per row and adding all its
    /// 58 columns cost more than the rest of the grouping).
    fn add_row(&mut self, r: &AuditRecordRef<'_>) {
        let duration = if r.duration_ms.is_finite() {
            r.duration_ms
        } else {
            0.0
        };
        let ttfb = r.ttfb_ms.filter(|v| v.is_finite());
        let failed = r.status_code >= 400 || r.error_message.is_some();
        let row = [
            1,
            i64::from(failed),
            i64::from(r.error_message.is_some()),
            i64::from(r.is_stream),
            micros(duration),
            ttfb.map_or(0, micros),
            i64::from(ttfb.is_some()),
            capped_tokens(r.tokens_in),
            capped_tokens(r.tokens_out),
            r.cost.filter(|c| c.is_finite()).map_or(0, cost_nanos),
        ];
        for (sum, v) in self.sums.iter_mut().zip(row) {
            *sum = sum.saturating_add(v);
        }
        bump(&mut self.latency, bucket_of(duration));
        if let Some(t) = ttfb {
            bump(&mut self.ttfb, bucket_of(t));
        }
    }

    fn add(&mut self, other: &Measures) {
        let pairs = self.sums.iter_mut().zip(&other.sums);
        let pairs = pairs.chain(self.latency.iter_mut().zip(&other.latency));
        for (sum, v) in pairs.chain(self.ttfb.iter_mut().zip(&other.ttfb)) {
            *sum = sum.saturating_add(*v);
        }
    }

    fn values(&self) -> impl Iterator<Item = i64> + '_ {
        self.sums
            .iter()
            .chain(&self.latency)
            .chain(&self.ttfb)
            .copied()
    }
}

/// One rollup row's share of a batch, ready to bind.
pub(crate) struct Group<'a> {
    grain: Grain,
    bucket_start: i64,
    dims: Dims<'a>,
    measures: Measures,
}

/// Aggregates newly inserted records per (grain, bucket, dimensions), sorted by
/// grain (finest first), bucket, then dimensions: one statement row per stored row
/// (PostgreSQL refuses to update a row twice in one statement), and concurrent
/// batches lock their rows in the same order.
pub(crate) fn aggregate<'a>(records: impl Iterator<Item = AuditRecordRef<'a>>) -> Vec<Group<'a>> {
    let mut aggregator = Aggregator::default();
    for r in records {
        aggregator.add(&r);
    }
    aggregator.groups()
}

/// [`aggregate`] one record at a time, so that a record is read once, while it is
/// being bound to the insert.
#[derive(Default)]
pub(crate) struct Aggregator<'a> {
    minutes: BTreeMap<(i64, Dims<'a>), Measures>,
}

impl<'a> Aggregator<'a> {
    pub(crate) fn add(&mut self, r: &AuditRecordRef<'a>) {
        let bucket = Grain::Minute.floor(to_ms(r.request_time));
        self.minutes
            .entry((bucket, Dims::of(r)))
            .or_default()
            .add_row(r);
    }

    /// The groups of every grain, in the order [`aggregate`] describes.
    pub(crate) fn groups(self) -> Vec<Group<'a>> {
        let mut groups = Vec::new();
        for grain in Grain::ALL {
            let mut merged: BTreeMap<(i64, &Dims<'_>), Measures> = BTreeMap::new();
            for ((minute, dims), m) in &self.minutes {
                merged
                    .entry((grain.floor(*minute), dims))
                    .or_default()
                    .add(m);
            }
            groups.extend(
                merged
                    .into_iter()
                    .map(|((bucket_start, dims), measures)| Group {
                        grain,
                        bucket_start,
                        dims: dims.clone(),
                        measures,
                    }),
            );
        }
        groups
    }
}

/// `INSERT INTO audit_rollups (…) ` before the `VALUES` of [`push_group`].
pub(crate) static UPSERT_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO audit_rollups (grain, bucket_start, key_id, route, model, upstream, \
         path, status_code, {}) ",
        MEASURE_COLUMNS.join(", ")
    )
});

/// After the `VALUES`: adds each measure to a row that exists (`DO UPDATE` reads
/// the row as it was, so each column adds exactly the batch's share).
pub(crate) static UPSERT_TAIL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = MEASURE_COLUMNS
        .iter()
        .map(|c| format!("{c} = audit_rollups.{c} + excluded.{c}"))
        .collect();
    format!(
        " ON CONFLICT (grain, bucket_start, key_id, route, model, upstream, path, status_code) \
         DO UPDATE SET {}",
        sets.join(", ")
    )
});

/// Rows per upsert statement: fixed sizes keep the prepared-statement cache small;
/// 66 binds a row stay below both backends' bind limits.
const CHUNK_SIZES: [usize; 4] = [128, 32, 8, 1];

/// `groups` cut into chunks of the sizes in `CHUNK_SIZES`, largest first.
pub(crate) fn chunks<'g, 'a>(mut groups: &'g [Group<'a>]) -> Vec<&'g [Group<'a>]> {
    let mut out = Vec::new();
    for size in CHUNK_SIZES {
        while groups.len() >= size {
            let (chunk, rest) = groups.split_at(size);
            out.push(chunk);
            groups = rest;
        }
    }
    out
}

/// Binds one group's values, in [`UPSERT_HEAD`] order.
pub(crate) fn push_group<DB>(mut b: Separated<'_, DB, &'static str>, g: &Group<'_>)
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'static str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
{
    b.push_bind(g.grain.as_str())
        .push_bind(g.bucket_start)
        .push_bind(g.dims.key_id.to_string())
        .push_bind(g.dims.route.to_string())
        .push_bind(g.dims.model.to_string())
        .push_bind(g.dims.upstream.to_string())
        .push_bind(g.dims.path.to_string())
        .push_bind(g.dims.status_code);
    for v in g.measures.values() {
        b.push_bind(v);
    }
}

const OLDEST_BUCKET: &str =
    "SELECT MIN(bucket_start) FROM audit_rollups WHERE grain = $1 AND bucket_start < $2";
const DELETE_BUCKET: &str = "DELETE FROM audit_rollups WHERE grain = $1 AND bucket_start = $2";

impl Store {
    /// Retention of the rollups: deletes minute rows older than 2 days and hour
    /// rows older than 90 days (relative to `now`); day rows are kept. One bucket
    /// per statement (each its own transaction, so writers get in between).
    /// Returns the number of rows deleted.
    pub async fn prune_rollups(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = to_ms(now);
        let mut total = 0;
        for (grain, keep) in [
            (Grain::Minute, MINUTE_RETENTION_MS),
            (Grain::Hour, HOUR_RETENTION_MS),
        ] {
            let before = grain.floor(now.saturating_sub(keep));
            total += self.prune_grain(grain, before).await?;
        }
        Ok(total)
    }

    async fn prune_grain(&self, grain: Grain, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let oldest: Option<i64> = with_pool!(self, pool, DB => {
                sqlx::query_scalar(OLDEST_BUCKET)
                    .bind(grain.as_str()).bind(before)
                    .fetch_one(pool).await?
            });
            let Some(bucket) = oldest else {
                return Ok(total);
            };
            total += with_pool!(self, pool, DB => {
                sqlx::query(DELETE_BUCKET)
                    .bind(grain.as_str()).bind(bucket)
                    .execute(pool).await?
                    .rows_affected()
            });
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate_audit::AuditRecord;

    fn record(id: &str, ms: i64, key: &str, status: u16) -> AuditRecord {
        AuditRecord {
            request_id: id.into(),
            client_request_id: None,
            key_id: Some(key.into()),
            key_name: None,
            source: None,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: None,
            route: None,
            upstream: None,
            credential: None,
            target_url: None,
            status_code: status,
            request_time: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            ttfb_ms: Some(3.0),
            duration_ms: 120.0,
            request_bytes: 0,
            response_bytes: 0,
            user_agent: None,
            client_ip: None,
            is_stream: false,
            stream_chunks: 0,
            model: None,
            tokens_in: Some(10),
            tokens_out: None,
            tokens_estimated: false,
            cost: Some(0.000_001_5),
            error_message: None,
            request_headers: None,
            response_headers: None,
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn grains_floor_and_ceil_on_utc_boundaries() {
        assert_eq!(Grain::Minute.floor(61_001), 60_000);
        assert_eq!(Grain::Minute.ceil(61_001), 120_000);
        assert_eq!(Grain::Hour.ceil(3_600_000), 3_600_000);
        assert_eq!(Grain::Day.floor(-1), -86_400_000);
        assert_eq!(Grain::parse("hour"), Some(Grain::Hour));
        assert_eq!(Grain::parse("week"), None);
    }

    #[test]
    fn aggregation_merges_per_grain_in_sorted_order() {
        let hour = 3_600_000;
        // b's stream broke after its 200: an error of the gateway's, same status.
        let mut broken = record("b", hour + 2, "k1", 200);
        broken.error_message = Some("stream cut".into());
        let rows = [
            record("a", hour + 1, "k2", 200),
            broken,
            record("c", hour + 61_000, "k1", 200),
            record("d", 2 * hour, "k1", 200),
        ];
        let groups = aggregate(rows.iter().map(AuditRecord::view));
        let got: Vec<_> = groups
            .iter()
            .map(|g| {
                let m = &g.measures.sums;
                (g.grain, g.bucket_start, g.dims.key_id.as_ref(), m[0], m[1])
            })
            .collect();
        let want = [
            (Grain::Minute, hour, "k1", 1, 1),
            (Grain::Minute, hour, "k2", 1, 0),
            (Grain::Minute, hour + 60_000, "k1", 1, 0),
            (Grain::Minute, 2 * hour, "k1", 1, 0),
            (Grain::Hour, hour, "k1", 2, 1),
            (Grain::Hour, hour, "k2", 1, 0),
            (Grain::Hour, 2 * hour, "k1", 1, 0),
            (Grain::Day, 0, "k1", 3, 1),
            (Grain::Day, 0, "k2", 1, 0),
        ];
        assert_eq!(got, want);
        let day = &groups[7].measures;
        assert_eq!(day.sums[4], 360_000, "duration_us");
        assert_eq!(day.sums[9], 4_500, "cost_nanos");
        assert_eq!(day.latency[histogram::bucket_of(120.0)], 3);
        assert_eq!(day.ttfb[histogram::bucket_of(3.0)], 3);
        assert_eq!(groups[4].measures.sums[2], 1, "gateway_errors");
        let mut failed = record("e", 0, "k1", 503);
        failed.is_stream = true;
        let m = Measures::of(&failed.view());
        assert_eq!(&m.sums[..4], [1, 1, 0, 1]);
    }

    #[test]
    fn values_that_are_stored_alike_share_one_group() {
        // NUL is stored as U+FFFD: both rows land in the same rollup row, so the
        // statement must not carry it twice (PostgreSQL refuses that).
        let mut a = record("a", 0, "k", 200);
        a.model = Some("m\0x".into());
        let mut b = record("b", 1, "k", 200);
        b.model = Some("m\u{FFFD}x".into());
        let rows = [a, b];
        let groups = aggregate(rows.iter().map(AuditRecord::view));
        assert_eq!(groups.len(), Grain::ALL.len());
        assert!(groups.iter().all(|g| g.measures.sums[0] == 2));
        assert!(groups.iter().all(|g| g.dims.model == "m\u{FFFD}x"));
        // Both rows counted in each histogram of every grain (the minute group
        // adds rows one by one, the coarser ones add the minute groups).
        let (lat, ttfb) = (histogram::bucket_of(120.0), histogram::bucket_of(3.0));
        assert!(groups.iter().all(|g| g.measures.latency[lat] == 2));
        assert!(groups.iter().all(|g| g.measures.ttfb[ttfb] == 2));
        assert!(groups.iter().all(|g| g.measures.sums[4] == 240_000));
    }

    #[test]
    fn cut_chars_counts_characters_not_bytes() {
        let short = "é".repeat(150); // 300 bytes, 150 characters
        assert_eq!(cut_chars(&short, 200), short);
        let long = "é".repeat(201);
        assert_eq!(cut_chars(&long, 200), "é".repeat(200));
        assert_eq!(cut_chars("abc", 3), "abc");
        assert_eq!(cut_chars("abcd", 3), "abc");
    }

    #[test]
    fn long_paths_are_cut_and_values_capped() {
        let mut r = record("a", 0, "k", 200);
        r.path = "é".repeat(300);
        r.tokens_in = Some(u64::MAX);
        r.cost = Some(-1.0);
        r.duration_ms = f64::INFINITY;
        let d = Dims::of(&r.view());
        assert_eq!(d.path.chars().count(), PATH_MAX_CHARS);
        let m = Measures::of(&r.view());
        assert_eq!(m.sums[7], MAX_TOKENS_PER_ROW as i64);
        assert_eq!(m.sums[9], 0);
        assert_eq!(m.sums[4], 0);
        assert_eq!(m.latency[0], 1);
    }

    #[test]
    fn statements_are_built_from_every_column() {
        assert_eq!(MEASURE_COLUMNS.len(), 10 + 2 * BUCKETS);
        assert!(UPSERT_TAIL.contains("ttfb_23 = audit_rollups.ttfb_23 + excluded.ttfb_23"));
        assert!(UPSERT_HEAD.contains("cost_nanos, lat_00"));
    }
}
