//! Reading a whole filtered audit log out, in bounded memory (the log export).
//!
//! The walk is keyset-paged: each step is one short query of at most
//! [`EXPORT_CHUNK_ROWS`] rows that starts after the last `(request_time, request_id)`
//! already returned, in the filter's order (the order of `GET /admin/api/logs`).
//! Memory is one chunk, whatever the number of matching rows.
//!
//! Why not one long `fetch` cursor: it would hold a pool connection (and, on SQLite
//! in WAL mode, a read snapshot that keeps the checkpointer from recycling the WAL,
//! which then grows for as long as the slowest client downloads; on PostgreSQL an
//! open snapshot that holds back vacuum) for the whole export, and the cursor's
//! borrow of the pool would have to be carried across the HTTP body's lifetime.
//! Chunks give the connection back between steps, so an export never starves the
//! audit writer. The price: the export is not one snapshot. Rows written while it
//! runs appear if they sort after the cursor; rows deleted by retention before the
//! cursor reaches them do not. `(request_time, request_id)` is unique, so no row is
//! returned twice or skipped otherwise.

use fastgate_audit::{AuditFilter, AuditRecord, SortOrder};
use sqlx::QueryBuilder;

use crate::audit::{AuditRow, SELECT_HEAD};
use crate::audit_filter::push_where;
use crate::{Store, StoreError};

/// Rows fetched by one step of an export.
pub const EXPORT_CHUNK_ROWS: u32 = 1000;

/// `SELECT_HEAD` without the captured headers and bodies (NULL in their place):
/// an export that leaves them out does not read them either.
const SELECT_LEAN: &str = "SELECT request_id, key_id, key_name, source, method, path, query, \
     route, upstream, credential, target_url, status_code, request_time, ttfb_ms, \
     duration_ms, request_bytes, response_bytes, user_agent, client_ip, is_stream, \
     stream_chunks, model, tokens_in, tokens_out, tokens_estimated, cost, error_message, \
     CAST(NULL AS TEXT) AS request_headers, CAST(NULL AS TEXT) AS response_headers, \
     CAST(NULL AS TEXT) AS request_body, CAST(NULL AS TEXT) AS response_body, \
     client_request_id FROM audit_logs";

/// A keyset-paged walk over the audit records matching a filter; see the module
/// documentation. Made by [`Store::export_audit`]; call [`AuditExport::next_chunk`]
/// until it returns `None`.
#[derive(Debug)]
pub struct AuditExport {
    store: Store,
    filter: AuditFilter,
    chunk_rows: u32,
    /// Read the captured headers and bodies (otherwise they come back `None`).
    bodies: bool,
    /// `(request_time ms, request_id)` of the last row returned.
    after: Option<(i64, String)>,
    /// Rows still allowed by `filter.limit` (`None`: no limit).
    remaining: Option<u64>,
    done: bool,
}

impl Store {
    /// Every record matching `filter`, in `filter.order` (by `request_time`, then
    /// `request_id`), as a walk of bounded chunks. Unlike [`Store::query_audit`],
    /// `filter.limit` caps the whole export (`None`: every matching row) and
    /// `filter.offset` skips rows at its start.
    pub fn export_audit(&self, filter: AuditFilter) -> AuditExport {
        AuditExport {
            store: self.clone(),
            remaining: filter.limit.map(u64::from),
            filter,
            chunk_rows: EXPORT_CHUNK_ROWS,
            bodies: true,
            after: None,
            done: false,
        }
    }
}

impl AuditExport {
    /// Rows per step (at least 1; default [`EXPORT_CHUNK_ROWS`]).
    pub fn with_chunk_rows(mut self, rows: u32) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// Whether to read the captured headers and bodies (default true); without
    /// them, `request_headers`, `response_headers`, `request_body` and
    /// `response_body` are `None` in every record.
    pub fn with_bodies(mut self, bodies: bool) -> Self {
        self.bodies = bodies;
        self
    }

    /// The next chunk of records, `None` once the walk is over. After an error the
    /// walk may be retried: the cursor only moves on a successful step.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<AuditRecord>>, StoreError> {
        if self.done || self.remaining == Some(0) {
            self.done = true;
            return Ok(None);
        }
        let chunk = u64::from(self.chunk_rows);
        let want = self.remaining.map_or(chunk, |n| n.min(chunk));
        self.step(want).await
    }

    async fn step(&mut self, want: u64) -> Result<Option<Vec<AuditRecord>>, StoreError> {
        let rows = self.fetch(want).await?;
        let Some(last) = rows.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some((last.request_time, last.request_id.clone()));
        let got = rows.len() as u64;
        if got < want {
            // A short page is the last one: saves the empty query at the end.
            self.done = true;
        }
        if let Some(n) = &mut self.remaining {
            *n = n.saturating_sub(got);
        }
        rows.into_iter()
            .map(AuditRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn fetch(&self, want: u64) -> Result<Vec<AuditRow>, StoreError> {
        let limit = i64::try_from(want).unwrap_or(i64::MAX);
        let first = self.after.is_none();
        let offset = i64::from(self.filter.offset.unwrap_or(0));
        let rows = with_pool!(self.store, pool, DB => {
            let head = if self.bodies { SELECT_HEAD } else { SELECT_LEAN };
            let mut qb = QueryBuilder::<DB>::new(head);
            push_where(&mut qb, &self.filter);
            if let Some((time, id)) = &self.after {
                let (cmp, cmp_eq) = match self.filter.order {
                    SortOrder::Desc => (" < ", " <= "),
                    SortOrder::Asc => (" > ", " >= "),
                };
                // The first conjunct alone can use the `request_time` index; the
                // second breaks ties on the unique `request_id`.
                qb.push(" AND request_time").push(cmp_eq).push_bind(*time);
                qb.push(" AND (request_time").push(cmp).push_bind(*time);
                qb.push(" OR request_id").push(cmp).push_bind(id.clone()).push(")");
            }
            qb.push(match self.filter.order {
                SortOrder::Desc => " ORDER BY request_time DESC, request_id DESC",
                SortOrder::Asc => " ORDER BY request_time ASC, request_id ASC",
            });
            qb.push(" LIMIT ").push_bind(limit);
            if first && offset > 0 {
                qb.push(" OFFSET ").push_bind(offset);
            }
            qb.build_query_as::<AuditRow>().fetch_all(pool).await?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lean select names the same columns, in the same order, as the full one.
    #[test]
    fn lean_select_matches_the_full_one() {
        let columns = |sql: &str| -> Vec<String> {
            let list = sql
                .trim_start_matches("SELECT ")
                .trim_end_matches(" FROM audit_logs");
            list.split(',')
                .map(|c| c.rsplit(' ').next().unwrap_or_default().trim().to_owned())
                .collect()
        };
        assert_eq!(columns(SELECT_LEAN), columns(SELECT_HEAD));
        assert_eq!(columns(SELECT_LEAN).len(), 32);
    }
}
