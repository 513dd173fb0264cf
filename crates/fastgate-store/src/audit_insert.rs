//! Writing the audit log: rows bound from any form of record, in multi-row
//! statements of a few fixed sizes, with their rollups, in one transaction.

use std::collections::HashSet;
use std::sync::Arc;

use fastgate_audit::{AsAuditRef, AuditRecord, AuditRecordRef};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::audit::audit_cols;
use crate::convert::{opt_u64_to_i64, storable, storable_cow, to_ms, u64_to_i64};
use crate::{Store, StoreError, rollups};

/// Number of columns in `audit_cols!()`.
const AUDIT_COLUMNS: usize = 32;
/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER` (PostgreSQL allows 65535).
const SQLITE_MAX_BINDS: usize = 32766;
/// Encoded bytes of a typical row (PostgreSQL's argument buffer is reserved with it).
const ROW_BYTES_HINT: usize = 512;

/// Rows per multi-row `INSERT`, within both backends' bind limits.
const ROWS_PER_INSERT: usize = {
    let fit = SQLITE_MAX_BINDS / AUDIT_COLUMNS;
    if fit < 500 { fit } else { 500 }
};
/// Statement sizes a batch is cut into, largest first, per backend. A fixed, small
/// set of sizes means a fixed, small set of SQL texts, so every execution hits the
/// driver's prepared-statement cache; batches of arbitrary size would each prepare
/// (and evict) a new multi-kilobyte statement.
///
/// SQLite runs inside the gateway's process, on a thread that shares the cores with
/// the request path, and a statement runs to its end once started: at ~9 µs a row a
/// 128-row statement held a core for over a millisecond, which showed as the added
/// p99 at 1,000 req/s on one core (+1.27 ms). Between two statements the connection's
/// thread waits for the next one, so the request thread gets the core back; 16 rows
/// keep that wait under ~0.2 ms and cost no more instructions per row (callgrind,
/// a32: 125.6k vs 129.8k per request). PostgreSQL runs in its own process and each
/// statement is a round trip, so it keeps the larger sizes.
const SQLITE_CHUNK_SIZES: &[usize] = &[16, 4, 1];
const PG_CHUNK_SIZES: &[usize] = &[ROWS_PER_INSERT_FIXED, 32, 8, 1];
const ROWS_PER_INSERT_FIXED: usize = if ROWS_PER_INSERT < 128 {
    ROWS_PER_INSERT
} else {
    128
};

/// The statement sizes of a backend (`numbered`: PostgreSQL's `$n` placeholders).
fn chunk_sizes(numbered: bool) -> &'static [usize] {
    if numbered {
        PG_CHUNK_SIZES
    } else {
        SQLITE_CHUNK_SIZES
    }
}

/// Cut `n` rows into chunks of the given sizes, largest first (the last size is 1).
fn chunk_plan(mut n: usize, sizes: &[usize]) -> Vec<usize> {
    let mut plan = Vec::new();
    for &size in sizes {
        while n >= size {
            plan.push(size);
            n -= size;
        }
    }
    plan
}

const INSERT_HEAD: &str = concat!("INSERT INTO audit_logs (", audit_cols!(), ") ");
/// SQLite's form. `ON CONFLICT (request_id) DO NOTHING` leaves the NOT NULL checks on
/// their default, abort, and a multi-row statement that may abort inside a
/// transaction keeps a statement journal: a copy of every page it touches, before it
/// touches it. `OR IGNORE` resolves every constraint by skipping the row, so no
/// journal is kept. The only other constraints are NOT NULL on values
/// [`add_record`] always binds (never `None`), so the rows skipped are the same.
const SQLITE_INSERT_HEAD: &str = concat!("INSERT OR IGNORE INTO audit_logs (", audit_cols!(), ") ");

/// Text as stored ([`storable_cow`]), shared with the statement: the one copy a
/// value needs, where a `String` would also box itself for the statement.
fn text(s: &str) -> Arc<str> {
    Arc::from(storable_cow(s).as_ref())
}

fn opt_text(s: Option<&str>) -> Option<Arc<str>> {
    s.map(text)
}

/// The text columns whose values repeat from row to row: the key, the route, the
/// upstream, the model, the client... (indexes into [`RepeatedText`]).
mod col {
    pub(super) const KEY_ID: usize = 0;
    pub(super) const KEY_NAME: usize = 1;
    pub(super) const SOURCE: usize = 2;
    pub(super) const METHOD: usize = 3;
    pub(super) const PATH: usize = 4;
    pub(super) const ROUTE: usize = 5;
    pub(super) const UPSTREAM: usize = 6;
    pub(super) const CREDENTIAL: usize = 7;
    pub(super) const TARGET_URL: usize = 8;
    pub(super) const USER_AGENT: usize = 9;
    pub(super) const CLIENT_IP: usize = 10;
    pub(super) const MODEL: usize = 11;
    pub(super) const REQUEST_HEADERS: usize = 12;
    pub(super) const RESPONSE_HEADERS: usize = 13;
    pub(super) const COUNT: usize = 14;
}

/// Each repeating column's last value, shared with the next row that has the same:
/// a batch's rows mostly come from a few keys, routes and clients, and a clone of
/// the `Arc` replaces an allocation and a copy (14 of them per row before).
#[derive(Default)]
struct RepeatedText<'a> {
    last: [Option<(&'a str, Arc<str>)>; col::COUNT],
}

impl<'a> RepeatedText<'a> {
    fn text(&mut self, column: usize, s: &'a str) -> Arc<str> {
        let Some(slot) = self.last.get_mut(column) else {
            return text(s);
        };
        if let Some((raw, stored)) = slot
            && *raw == s
        {
            return Arc::clone(stored);
        }
        let stored = text(s);
        *slot = Some((s, Arc::clone(&stored)));
        stored
    }

    fn opt(&mut self, column: usize, s: Option<&'a str>) -> Option<Arc<str>> {
        s.map(|s| self.text(column, s))
    }
}

/// Adds the values of `r`'s row, in `audit_cols!()` order, as [`crate::audit::AuditRow`] reads
/// them back.
fn add_record<'a, A>(
    args: &mut A,
    r: &AuditRecordRef<'a>,
    shared: &mut RepeatedText<'a>,
) -> Result<(), StoreError>
where
    A: sqlx::Arguments,
    Arc<str>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    i64: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    i32: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    f64: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    bool: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    Option<Arc<str>>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    Option<i64>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    Option<f64>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
{
    let request_bytes = u64_to_i64("request_bytes", r.request_bytes)?;
    let response_bytes = u64_to_i64("response_bytes", r.response_bytes)?;
    let stream_chunks = u64_to_i64("stream_chunks", r.stream_chunks)?;
    let tokens_in = opt_u64_to_i64("tokens_in", r.tokens_in)?;
    let tokens_out = opt_u64_to_i64("tokens_out", r.tokens_out)?;
    // SQLite turns NaN into NULL; both stores get the same finite values.
    let ttfb_ms = r.ttfb_ms.filter(|v| v.is_finite());
    let duration_ms = if r.duration_ms.is_finite() {
        r.duration_ms
    } else {
        0.0
    };
    let cost = r.cost.filter(|v| v.is_finite());
    let mut add = |args: &mut A| -> Result<(), sqlx::error::BoxDynError> {
        args.add(text(r.request_id))?;
        args.add(shared.opt(col::KEY_ID, r.key_id))?;
        args.add(shared.opt(col::KEY_NAME, r.key_name))?;
        args.add(shared.opt(col::SOURCE, r.source))?;
        args.add(shared.text(col::METHOD, r.method))?;
        args.add(shared.text(col::PATH, r.path))?;
        args.add(opt_text(r.query))?;
        args.add(shared.opt(col::ROUTE, r.route))?;
        args.add(shared.opt(col::UPSTREAM, r.upstream))?;
        args.add(shared.opt(col::CREDENTIAL, r.credential))?;
        args.add(shared.opt(col::TARGET_URL, r.target_url))?;
        args.add(i32::from(r.status_code))?;
        args.add(to_ms(r.request_time))?;
        args.add(ttfb_ms)?;
        args.add(duration_ms)?;
        args.add(request_bytes)?;
        args.add(response_bytes)?;
        args.add(shared.opt(col::USER_AGENT, r.user_agent))?;
        args.add(shared.opt(col::CLIENT_IP, r.client_ip))?;
        args.add(r.is_stream)?;
        args.add(stream_chunks)?;
        args.add(shared.opt(col::MODEL, r.model))?;
        args.add(tokens_in)?;
        args.add(tokens_out)?;
        args.add(r.tokens_estimated)?;
        args.add(cost)?;
        args.add(opt_text(r.error_message))?;
        args.add(shared.opt(col::REQUEST_HEADERS, r.request_headers))?;
        args.add(shared.opt(col::RESPONSE_HEADERS, r.response_headers))?;
        args.add(opt_text(r.request_body))?;
        args.add(opt_text(r.response_body))?;
        args.add(opt_text(r.client_request_id))?;
        Ok(())
    };
    add(args).map_err(|e| StoreError::from(sqlx::Error::Encode(e)))
}

/// The insert statement for `rows` rows: `$n` placeholders when `numbered`
/// (PostgreSQL), else `?` (SQLite), with `RETURNING request_id` when `read_back`.
/// Every shape a batch uses (each backend's sizes × both forms) is written once per
/// process: writing 4,096 placeholders per chunk through the query builder's
/// formatter cost more than a third of the row's own insert.
fn insert_sql(numbered: bool, rows: usize, read_back: bool) -> &'static str {
    type Shapes = Vec<((bool, usize, bool), String)>;
    static SHAPES: std::sync::LazyLock<Shapes> = std::sync::LazyLock::new(|| {
        let mut shapes = Vec::new();
        for numbered in [false, true] {
            for &rows in chunk_sizes(numbered) {
                for read_back in [false, true] {
                    let sql = write_insert_sql(numbered, rows, read_back);
                    shapes.push(((numbered, rows, read_back), sql));
                }
            }
        }
        shapes
    });
    match SHAPES
        .iter()
        .find(|(shape, _)| *shape == (numbered, rows, read_back))
    {
        Some((_, sql)) => sql,
        // Not reached: `chunk_plan` only uses `chunk_sizes`. Leaked once per odd size.
        None => Box::leak(write_insert_sql(numbered, rows, read_back).into_boxed_str()),
    }
}

fn write_insert_sql(numbered: bool, rows: usize, read_back: bool) -> String {
    let head = if numbered {
        INSERT_HEAD
    } else {
        SQLITE_INSERT_HEAD
    };
    let mut sql = String::with_capacity(head.len() + rows * AUDIT_COLUMNS * 7 + 64);
    sql.push_str(head);
    sql.push_str("VALUES ");
    let mut n = 0usize;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..AUDIT_COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if numbered {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    if numbered {
        sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
    }
    if read_back {
        sql.push_str(" RETURNING request_id");
    }
    sql
}

/// The records whose rows were inserted: for a request id inserted, its first
/// occurrence in the batch (rows are inserted in order; later duplicates conflict).
fn inserted_records<'a, R: AsAuditRef>(
    ids: &'a [String],
    records: &'a [R],
    mut new_ids: HashSet<String>,
) -> impl Iterator<Item = AuditRecordRef<'a>> {
    ids.iter()
        .zip(records)
        .filter(move |(id, _)| new_ids.remove(*id))
        .map(|(_, record)| record.audit_ref())
}

impl Store {
    /// Inserts records in one transaction, as multi-row `INSERT`s of the fixed
    /// sizes in [`chunk_sizes`]. Idempotent on `request_id` — the gateway's own id, never
    /// the client's — (`ON CONFLICT DO NOTHING` on PostgreSQL, `INSERT OR IGNORE` on
    /// SQLite), so replaying a spill file or the journal is safe. Text is stored as [`crate::convert::storable`] makes it (NUL
    /// becomes U+FFFD on both backends). The rows inserted are added to the rollups
    /// in the same transaction (see [`crate::rollups`]). Returns the number of rows
    /// inserted.
    ///
    /// Live batches are all new rows, so the insert first runs without asking which
    /// rows went in (row counts only). Only if a chunk reports fewer rows than it
    /// holds (a replay, or one id twice) is that transaction rolled back and the
    /// batch inserted again with `RETURNING request_id`, to add exactly the new rows
    /// to the rollups. Returned rows cost a hand-off each between SQLite's worker
    /// thread and the writer task: with them on every batch the writer used about
    /// as much CPU as the whole request path.
    pub async fn insert_audit_batch(&self, records: &[AuditRecord]) -> Result<u64, StoreError> {
        self.insert_audit_rows(records).await
    }

    /// [`Store::insert_audit_batch`] for records in any form (the audit writer's
    /// packed records).
    pub async fn insert_audit_rows<R: AsAuditRef + Sync>(
        &self,
        records: &[R],
    ) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        if let Some(inserted) = self.insert_rows(records, false).await? {
            return Ok(inserted);
        }
        // Rare (a replay, an id twice): insert again, asking which rows went in.
        Ok(self.insert_rows(records, true).await?.unwrap_or(0))
    }

    /// One transaction of chunked inserts and the rollup upserts. With `read_back`
    /// the inserted ids are returned by the database and only those rows are rolled
    /// up; without it every row must be new, and `None` (nothing kept) says one was not.
    async fn insert_rows<R: AsAuditRef + Sync>(
        &self,
        records: &[R],
        read_back: bool,
    ) -> Result<Option<u64>, StoreError> {
        let count = records.len();
        let ids: Vec<String> = if read_back {
            records
                .iter()
                .map(|r| storable(r.audit_ref().request_id))
                .collect()
        } else {
            Vec::new()
        };
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            let mut new_ids = HashSet::new();
            // Rolled up as they are bound (each record read once); with `read_back`
            // only the rows that went in, once they are known.
            let mut rollup = rollups::Aggregator::default();
            let mut shared = RepeatedText::default();
            let mut rest = records.iter();
            let numbered = matches!(self.inner, crate::store::Inner::Postgres(_));
            for size in chunk_plan(count, chunk_sizes(numbered)) {
                let sql = insert_sql(numbered, size, read_back);
                let mut args = <DB as Database>::Arguments::default();
                sqlx::Arguments::reserve(&mut args, size * AUDIT_COLUMNS, size * ROW_BYTES_HINT);
                for record in rest.by_ref().take(size) {
                    let row = record.audit_ref();
                    add_record(&mut args, &row, &mut shared)?;
                    if !read_back {
                        rollup.add(&row);
                    }
                }
                if read_back {
                    let ids: Vec<String> =
                        sqlx::query_scalar_with(sql, args).fetch_all(&mut *tx).await?;
                    new_ids.extend(ids);
                } else if sqlx::query_with(sql, args).execute(&mut *tx).await?.rows_affected()
                    != size as u64
                {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
            let (inserted, groups) = if read_back {
                let n = new_ids.len() as u64;
                (n, rollups::aggregate(inserted_records(&ids, records, new_ids)))
            } else {
                (count as u64, rollup.groups())
            };
            for chunk in rollups::chunks(&groups) {
                let mut qb = QueryBuilder::<DB>::new(rollups::UPSERT_HEAD.as_str());
                qb.push_values(chunk, rollups::push_group);
                qb.push(rollups::UPSERT_TAIL.as_str());
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Some(inserted))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_plan_covers_every_row_with_few_sizes() {
        for numbered in [false, true] {
            let sizes = super::chunk_sizes(numbered);
            assert_eq!(sizes.last(), Some(&1));
            for n in 0..600 {
                let plan = super::chunk_plan(n, sizes);
                assert_eq!(plan.iter().sum::<usize>(), n);
                assert!(plan.iter().all(|s| sizes.contains(s)));
            }
        }
        // SQLite statements stay short (they run on a core the request path shares).
        assert!(
            super::chunk_plan(512, super::chunk_sizes(false))
                .iter()
                .all(|&s| s <= 16)
        );
    }

    #[test]
    fn insert_text_has_one_placeholder_per_value() {
        for rows in [1, 8, 128] {
            let sqlite = write_insert_sql(false, rows, false);
            assert_eq!(sqlite.matches('?').count(), rows * AUDIT_COLUMNS);
            assert!(sqlite.starts_with("INSERT OR IGNORE INTO audit_logs"));
            assert!(sqlite.ends_with(')'));
            assert!(write_insert_sql(false, rows, true).ends_with(") RETURNING request_id"));
            let pg = write_insert_sql(true, rows, true);
            let last = rows * AUDIT_COLUMNS;
            assert!(pg.contains(&format!("${last})")));
            assert!(!pg.contains(&format!("${}", last + 1)));
            assert!(pg.ends_with("DO NOTHING RETURNING request_id"));
            assert_eq!(insert_sql(true, rows, true), pg);
        }
    }

    #[test]
    fn column_count_matches() {
        assert_eq!(audit_cols!().split(',').count(), AUDIT_COLUMNS);
        const { assert!(ROWS_PER_INSERT * AUDIT_COLUMNS <= SQLITE_MAX_BINDS) };
    }

    #[test]
    fn repeated_text_is_shared_per_column_and_stored_as_text_is() {
        let mut shared = RepeatedText::default();
        let a = shared.text(col::ROUTE, "chat");
        let b = shared.text(col::ROUTE, "chat");
        assert!(Arc::ptr_eq(&a, &b));
        // Same text, another column: its own value.
        let c = shared.text(col::MODEL, "chat");
        assert!(!Arc::ptr_eq(&a, &c));
        // A change replaces the column's value; going back makes a new one.
        assert_eq!(&*shared.text(col::ROUTE, "embed"), "embed");
        let d = shared.text(col::ROUTE, "chat");
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(&*d, "chat");
        // Stored as `text` stores it (NUL replaced), shared or not.
        assert_eq!(&*shared.text(col::PATH, "/a\0b"), &*text("/a\0b"));
        assert_eq!(&*shared.text(col::PATH, "/a\0b"), "/a\u{FFFD}b");
        assert_eq!(shared.opt(col::KEY_ID, None), None);
    }

    #[tokio::test]
    async fn rows_that_share_values_read_back_as_written() {
        let store = Store::connect("sqlite::memory:", 1).await.unwrap();
        let mut records = Vec::new();
        for (i, key) in ["k1", "k1", "k2", "k1"].into_iter().enumerate() {
            let mut r = fastgate_audit::sample_record(&format!("shared-{i}"));
            r.key_id = Some(key.to_owned());
            r.model = (i != 2).then(|| "m".to_owned());
            records.push(r);
        }
        assert_eq!(store.insert_audit_batch(&records).await.unwrap(), 4);
        for r in &records {
            let got = store.get_audit(&r.request_id).await.unwrap().unwrap();
            assert_eq!(got.key_id, r.key_id);
            assert_eq!(got.model, r.model);
            assert_eq!(got.route, r.route);
        }
    }
}
