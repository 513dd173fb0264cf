//! Statistics read from the rollups: a summary of a range, a time series, the top
//! values of a dimension. Ranges are widened to whole minutes (the finest grain),
//! and read at the coarsest grain that covers each part exactly.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::histogram::{BUCKETS, Histogram, bucket_value_ms, percentile_bucket};
use super::{Grain, MAX_SERIES_POINTS, MEASURE_COLUMNS, SUM_COLUMNS};
use crate::convert::{from_ms, i64_to_u64, storable, to_ms};
use crate::{Store, StoreError};

/// Filters of a statistics query: every present one must hold (equality).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsFilter {
    pub key_id: Option<String>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub upstream: Option<String>,
}

/// Sums over a set of rollup rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTotals {
    pub requests: u64,
    /// Status >= 400, or an error message (e.g. a stream cut after its 200).
    pub errors: u64,
    /// Rows with an error message: answered or cut by the gateway itself.
    pub gateway_errors: u64,
    pub streams: u64,
    /// Sum of durations, in whole µs.
    pub duration_us: u64,
    /// Sum of TTFBs, in whole µs, over the `ttfb_count` rows that have one.
    pub ttfb_us: u64,
    pub ttfb_count: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Nano-USD.
    pub cost_nanos: u64,
    /// Rows with a status in 400..=499 and in 500..=599 (or above).
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Duration histogram (buckets of [`super::histogram::BOUNDS_MS`]).
    pub latency: Histogram,
    /// TTFB histogram.
    pub ttfb: Histogram,
}

impl StatsTotals {
    /// Share of requests that are not errors; `None` without requests.
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0)
            .then(|| self.requests.saturating_sub(self.errors) as f64 / self.requests as f64)
    }

    /// Mean duration in ms; `None` without requests.
    pub fn avg_latency_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.duration_us as f64 / 1000.0 / self.requests as f64)
    }

    /// Mean TTFB in ms; `None` without a TTFB.
    pub fn avg_ttfb_ms(&self) -> Option<f64> {
        (self.ttfb_count > 0).then(|| self.ttfb_us as f64 / 1000.0 / self.ttfb_count as f64)
    }

    /// The duration percentile `per_mille`/1000, as its histogram bucket's value
    /// ([`super::histogram::bucket_value_ms`]).
    pub fn latency_percentile_ms(&self, per_mille: u64) -> Option<u64> {
        percentile_bucket(&self.latency, per_mille).map(bucket_value_ms)
    }

    /// The TTFB percentile `per_mille`/1000, as its histogram bucket's value.
    pub fn ttfb_percentile_ms(&self, per_mille: u64) -> Option<u64> {
        percentile_bucket(&self.ttfb, per_mille).map(bucket_value_ms)
    }

    /// From the columns of [`TOTALS_SELECT`], in order.
    fn from_values(v: &[i64]) -> Result<StatsTotals, StoreError> {
        if v.len() != TOTALS_COLUMNS {
            return Err(StoreError::Corrupt(format!(
                "rollup totals: {} columns, expected {TOTALS_COLUMNS}",
                v.len()
            )));
        }
        let get = |i: usize| -> Result<u64, StoreError> {
            let field = MEASURE_COLUMNS.get(i).map_or("status", |c| c.as_str());
            let value = v.get(i).copied().unwrap_or_default();
            i64_to_u64("rollup sum", value)
                .map_err(|_| StoreError::Corrupt(format!("{field}: negative sum {value}")))
        };
        let hist = |from: usize| -> Result<Histogram, StoreError> {
            let mut h = [0u64; BUCKETS];
            for (i, slot) in h.iter_mut().enumerate() {
                *slot = get(from + i)?;
            }
            Ok(h)
        };
        let n = SUM_COLUMNS.len();
        Ok(StatsTotals {
            requests: get(0)?,
            errors: get(1)?,
            gateway_errors: get(2)?,
            streams: get(3)?,
            duration_us: get(4)?,
            ttfb_us: get(5)?,
            ttfb_count: get(6)?,
            tokens_in: get(7)?,
            tokens_out: get(8)?,
            cost_nanos: get(9)?,
            latency: hist(n)?,
            ttfb: hist(n + BUCKETS)?,
            status_4xx: get(TOTALS_COLUMNS - 2)?,
            status_5xx: get(TOTALS_COLUMNS - 1)?,
        })
    }
}

/// Statistics of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSummary {
    /// The range read: the one asked for, widened to whole minutes.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: StatsTotals,
    /// Distinct keys with at least one request (requests without a key not counted).
    pub active_keys: u64,
}

/// One bucket of a time series.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPoint {
    pub start: DateTime<Utc>,
    pub totals: StatsTotals,
}

/// The dimension a top list groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Key,
    Model,
    Route,
    Upstream,
    Path,
    Status,
}

impl TopBy {
    /// Every dimension, as the API names them.
    pub const ALL: [TopBy; 6] = [
        TopBy::Key,
        TopBy::Model,
        TopBy::Route,
        TopBy::Upstream,
        TopBy::Path,
        TopBy::Status,
    ];

    /// `key`, `model`, `route`, `upstream`, `path` or `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            TopBy::Key => "key",
            TopBy::Model => "model",
            TopBy::Route => "route",
            TopBy::Upstream => "upstream",
            TopBy::Path => "path",
            TopBy::Status => "status",
        }
    }

    /// The API name back to the dimension.
    pub fn parse(s: &str) -> Option<TopBy> {
        TopBy::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The selected expression and the grouped column (literals, never input).
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            TopBy::Key => ("key_id", "key_id"),
            TopBy::Model => ("model", "model"),
            TopBy::Route => ("route", "route"),
            TopBy::Upstream => ("upstream", "upstream"),
            TopBy::Path => ("path", "path"),
            TopBy::Status => ("CAST(status_code AS TEXT)", "status_code"),
        }
    }
}

/// One entry of a top list.
#[derive(Debug, Clone, PartialEq)]
pub struct TopItem {
    /// The dimension's value (`None`: requests without a key, route, model or
    /// upstream); a status as its decimal text.
    pub value: Option<String>,
    /// For [`TopBy::Key`]: the key's current name (`None` once deleted).
    pub key_name: Option<String>,
    pub totals: StatsTotals,
}

/// Columns of [`TOTALS_SELECT`]: every measure, then the 4xx and 5xx counts.
const TOTALS_COLUMNS: usize = 10 + 2 * BUCKETS + 2;

/// The summed measures. `SUM` of a `BIGINT` is a `NUMERIC` on PostgreSQL and `NULL`
/// over no row: both are cast back.
static TOTALS_SELECT: LazyLock<String> = LazyLock::new(|| {
    let mut cols: Vec<String> = MEASURE_COLUMNS
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
        .collect();
    for (lo, hi) in [(400, 500), (500, 1000)] {
        cols.push(format!(
            "CAST(COALESCE(SUM(CASE WHEN status_code >= {lo} AND status_code < {hi} \
             THEN requests ELSE 0 END), 0) AS BIGINT)"
        ));
    }
    cols.join(", ")
});

/// A part of a range read at one grain: buckets starting in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    grain: Grain,
    start: i64,
    end: i64,
}

/// `[from, to)` (whole minutes) as the fewest buckets: whole UTC days as day
/// buckets, the whole hours left as hour buckets, the rest as minute buckets (at
/// most five segments). A 30-day range reads about 30 rows per group.
fn cover(from: i64, to: i64) -> Vec<Segment> {
    let mut out = Vec::new();
    cover_with(
        from,
        to,
        &[Grain::Day, Grain::Hour, Grain::Minute],
        &mut out,
    );
    out
}

fn cover_with(from: i64, to: i64, grains: &[Grain], out: &mut Vec<Segment>) {
    let Some((&grain, finer)) = grains.split_first() else {
        return;
    };
    if from >= to {
        return;
    }
    let (start, end) = (grain.ceil(from), grain.floor(to));
    if finer.is_empty() || start >= end {
        if finer.is_empty() {
            out.push(Segment { grain, start, end });
        } else {
            cover_with(from, to, finer, out);
        }
        return;
    }
    cover_with(from, start, finer, out);
    out.push(Segment { grain, start, end });
    cover_with(end, to, finer, out);
}

/// Appends ` WHERE (segments) AND filters`.
fn push_where<DB>(qb: &mut QueryBuilder<DB>, segments: &[Segment], f: &StatsFilter)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'static str: Encode<'q, DB> + Type<DB>,
{
    // No constant `1 = 0 OR …` in front of the segments: with it SQLite scans the
    // whole table; without it, each segment is a range of the primary key
    // (a multi-index OR; PostgreSQL a bitmap OR).
    if segments.is_empty() {
        qb.push(" WHERE (1 = 0");
    } else {
        qb.push(" WHERE (");
    }
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(grain = ")
            .push_bind(s.grain.as_str())
            .push(" AND bucket_start >= ")
            .push_bind(s.start)
            .push(" AND bucket_start < ")
            .push_bind(s.end)
            .push(")");
    }
    qb.push(")");
    let equals = [
        ("key_id", &f.key_id),
        ("route", &f.route),
        ("model", &f.model),
        ("upstream", &f.upstream),
    ];
    for (column, value) in equals {
        if let Some(v) = value {
            // `column` is one of the literals above, never user input.
            qb.push(" AND ")
                .push(column)
                .push(" = ")
                .push_bind(storable(v));
        }
    }
}

/// `n` integer columns of `row` from index `from`.
pub(super) fn ints<R: Row>(row: &R, from: usize, n: usize) -> Result<Vec<i64>, StoreError>
where
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    (from..from + n)
        .map(|i| row.try_get::<i64, _>(i).map_err(StoreError::from))
        .collect()
}

/// `from`..`to` widened to whole minutes, as unix ms.
fn minute_range(from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64) {
    (
        Grain::Minute.floor(to_ms(from)),
        Grain::Minute.ceil(to_ms(to)),
    )
}

/// Number of `grain` buckets of a time series from `from` to `to` (widened to
/// whole buckets); 0 when `to` is not after `from`.
pub fn series_points(grain: Grain, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let (start, end) = (grain.floor(to_ms(from)), grain.ceil(to_ms(to)));
    u64::try_from((end - start).max(0) / grain.millis()).unwrap_or(u64::MAX)
}

impl Store {
    /// Totals of `[from, to)` widened to whole minutes, with the number of
    /// distinct keys seen. Reads day buckets for whole UTC days, hour buckets for
    /// whole hours, minute buckets for the rest (minute rows are kept 2 days and
    /// hour rows 90 days: older edges are missing from the figures).
    pub async fn stats_summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        filter: &StatsFilter,
    ) -> Result<StatsSummary, StoreError> {
        let (start, end) = minute_range(from, to);
        let segments = cover(start, end);
        let head = format!(
            "SELECT COUNT(DISTINCT CASE WHEN key_id <> '' THEN key_id END), {} \
             FROM audit_rollups",
            *TOTALS_SELECT
        );
        let values: Vec<i64> = with_pool!(self, pool, DB => {
            let mut qb = QueryBuilder::<DB>::new(head);
            push_where(&mut qb, &segments, filter);
            let row = qb.build().fetch_one(pool).await?;
            ints(&row, 0, 1 + TOTALS_COLUMNS)?
        });
        let active = values.first().copied().unwrap_or_default();
        Ok(StatsSummary {
            from: from_ms("from", start)?,
            to: from_ms("to", end.max(start))?,
            totals: StatsTotals::from_values(values.get(1..).unwrap_or_default())?,
            active_keys: i64_to_u64("active_keys", active)?,
        })
    }

    /// One point per `grain` bucket from `from` to `to` (widened to whole buckets),
    /// oldest first, buckets without requests included (zero totals). More than
    /// [`MAX_SERIES_POINTS`] points is refused ([`StoreError::is_invalid_input`]).
    pub async fn stats_timeseries(
        &self,
        grain: Grain,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        filter: &StatsFilter,
    ) -> Result<Vec<StatsPoint>, StoreError> {
        let points = series_points(grain, from, to);
        if points > MAX_SERIES_POINTS {
            return Err(StoreError::out_of_range("points", points));
        }
        let (start, end) = (grain.floor(to_ms(from)), grain.ceil(to_ms(to)));
        let segment = [Segment { grain, start, end }];
        let head = format!("SELECT bucket_start, {} FROM audit_rollups", *TOTALS_SELECT);
        let rows: Vec<Vec<i64>> = with_pool!(self, pool, DB => {
            let mut qb = QueryBuilder::<DB>::new(head);
            push_where(&mut qb, &segment, filter);
            qb.push(" GROUP BY bucket_start");
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter().map(|r| ints(r, 0, 1 + TOTALS_COLUMNS)).collect::<Result<_, _>>()?
        });
        let mut found: HashMap<i64, StatsTotals> = HashMap::with_capacity(rows.len());
        for v in rows {
            let bucket = v.first().copied().unwrap_or_default();
            let totals = StatsTotals::from_values(v.get(1..).unwrap_or_default())?;
            found.insert(bucket, totals);
        }
        let mut series = Vec::with_capacity(usize::try_from(points).unwrap_or_default());
        let mut t = start;
        while t < end {
            series.push(StatsPoint {
                start: from_ms("bucket_start", t)?,
                totals: found.remove(&t).unwrap_or_default(),
            });
            t += grain.millis();
        }
        Ok(series)
    }

    /// The `limit` values of a dimension with the most requests in `[from, to)`
    /// (widened to whole minutes, read as [`Store::stats_summary`] does), most
    /// first, ties by value.
    pub async fn stats_top(
        &self,
        by: TopBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        filter: &StatsFilter,
        limit: u32,
    ) -> Result<Vec<TopItem>, StoreError> {
        let (start, end) = minute_range(from, to);
        let segments = cover(start, end);
        let (select, group) = by.sql();
        let head = format!("SELECT {select}, {} FROM audit_rollups", *TOTALS_SELECT);
        let rows: Vec<(String, Vec<i64>)> = with_pool!(self, pool, DB => {
            let mut qb = QueryBuilder::<DB>::new(head);
            push_where(&mut qb, &segments, filter);
            qb.push(" GROUP BY ").push(group);
            qb.push(" ORDER BY 2 DESC, 1 LIMIT ").push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, ints(r, 1, TOTALS_COLUMNS)?)))
                .collect::<Result<_, StoreError>>()?
        });
        let mut items = rows
            .into_iter()
            .map(|(value, v)| {
                Ok(TopItem {
                    value: (!value.is_empty()).then_some(value),
                    key_name: None,
                    totals: StatsTotals::from_values(&v)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if by == TopBy::Key {
            self.name_keys(&mut items).await?;
        }
        Ok(items)
    }

    /// Fills in the current names of the keys of a top list.
    async fn name_keys(&self, items: &mut [TopItem]) -> Result<(), StoreError> {
        let ids: Vec<String> = items.iter().filter_map(|i| i.value.clone()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let names: Vec<(String, String)> = with_pool!(self, pool, DB => {
            let mut qb = QueryBuilder::<DB>::new("SELECT id, name FROM api_keys WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(pool).await?
        });
        let names: HashMap<String, String> = names.into_iter().collect();
        for item in items {
            item.key_name = item.value.as_ref().and_then(|id| names.get(id).cloned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 86_400_000;

    fn seg(grain: Grain, start: i64, end: i64) -> Segment {
        Segment { grain, start, end }
    }

    #[test]
    fn cover_uses_the_coarsest_exact_grain() {
        assert_eq!(cover(0, 0), []);
        assert_eq!(cover(MIN, 3 * MIN), [seg(Grain::Minute, MIN, 3 * MIN)]);
        assert_eq!(
            cover(HOUR - MIN, 3 * HOUR + 2 * MIN),
            [
                seg(Grain::Minute, HOUR - MIN, HOUR),
                seg(Grain::Hour, HOUR, 3 * HOUR),
                seg(Grain::Minute, 3 * HOUR, 3 * HOUR + 2 * MIN),
            ]
        );
        assert_eq!(
            cover(DAY - HOUR - MIN, 31 * DAY + HOUR + MIN),
            [
                seg(Grain::Minute, DAY - HOUR - MIN, DAY - HOUR),
                seg(Grain::Hour, DAY - HOUR, DAY),
                seg(Grain::Day, DAY, 31 * DAY),
                seg(Grain::Hour, 31 * DAY, 31 * DAY + HOUR),
                seg(Grain::Minute, 31 * DAY + HOUR, 31 * DAY + HOUR + MIN),
            ]
        );
        assert_eq!(cover(0, 2 * DAY), [seg(Grain::Day, 0, 2 * DAY)]);
    }

    #[test]
    fn cover_is_contiguous_and_exact() {
        for (from, to) in [(7 * MIN, 5 * DAY + 3 * MIN), (HOUR, DAY), (0, 25 * HOUR)] {
            let parts = cover(from, to);
            assert_eq!(parts.first().map(|s| s.start), Some(from));
            assert_eq!(parts.last().map(|s| s.end), Some(to));
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
            assert!(parts.iter().all(|s| s.start % s.grain.millis() == 0));
            assert!(parts.iter().all(|s| s.end % s.grain.millis() == 0));
        }
    }

    #[test]
    fn series_points_count_whole_buckets() {
        let t = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        assert_eq!(series_points(Grain::Minute, t(1), t(MIN + 1)), 2);
        assert_eq!(series_points(Grain::Hour, t(0), t(DAY)), 24);
        assert_eq!(series_points(Grain::Day, t(DAY), t(0)), 0);
        assert_eq!(series_points(Grain::Minute, t(0), t(366 * DAY)), 527_040);
    }

    #[test]
    fn totals_select_has_every_column() {
        assert_eq!(TOTALS_SELECT.matches("SUM(").count(), TOTALS_COLUMNS);
    }
}
