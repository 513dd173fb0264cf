//! `WHERE` / `ORDER BY` / paging for audit queries, built with bound parameters only.

use fastgate_audit::{AuditFilter, SortOrder};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::convert::{storable, to_ms};

/// Page size when the filter has none.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// Appends ` WHERE …` for every present filter (AND). `from` is inclusive, `to`
/// exclusive; `status_min`/`status_max` are inclusive.
pub(crate) fn push_where<DB>(qb: &mut QueryBuilder<DB>, f: &AuditFilter)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(t) = f.from {
        qb.push(" AND request_time >= ").push_bind(to_ms(t));
    }
    if let Some(t) = f.to {
        qb.push(" AND request_time < ").push_bind(to_ms(t));
    }
    let equals = [
        ("key_id", &f.key_id),
        ("client_request_id", &f.client_request_id),
        ("route", &f.route),
        ("upstream", &f.upstream),
        ("method", &f.method),
        ("model", &f.model),
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
    if let Some(s) = f.status {
        qb.push(" AND status_code = ").push_bind(i32::from(s));
    }
    if let Some(s) = f.status_min {
        qb.push(" AND status_code >= ").push_bind(i32::from(s));
    }
    if let Some(s) = f.status_max {
        qb.push(" AND status_code <= ").push_bind(i32::from(s));
    }
    if only_indexed_statuses(f) {
        qb.push(" AND status_code >= ").push(INDEXED_STATUS_MIN);
    }
    if let Some(p) = &f.path_prefix {
        qb.push(" AND path LIKE ")
            .push_bind(like_prefix(&storable(p)))
            .push(" ESCAPE '\\'");
    }
    if let Some(s) = f.is_stream {
        qb.push(" AND is_stream = ").push_bind(s);
    }
    match f.has_error {
        Some(true) => qb.push(" AND (error_message IS NOT NULL AND error_message <> '')"),
        Some(false) => qb.push(" AND (error_message IS NULL OR error_message = '')"),
        None => qb,
    };
}

/// The smallest status the partial status index holds (migration 0011).
const INDEXED_STATUS_MIN: u16 = 300;

/// True when the status filter only matches rows the partial status index holds.
/// The query then says so with a literal term (`status_code >= 300`): a bound value
/// proves nothing to either planner at prepare time, the literal lets both use the
/// index. The term changes no result: it is implied by the filter.
fn only_indexed_statuses(f: &AuditFilter) -> bool {
    f.status.is_some_and(|s| s >= INDEXED_STATUS_MIN)
        || f.status_min.is_some_and(|s| s >= INDEXED_STATUS_MIN)
}

/// Appends ` ORDER BY … LIMIT … OFFSET …` (limit clamped to 1..=1000, default 100).
pub(crate) fn push_order_and_page<DB>(qb: &mut QueryBuilder<DB>, f: &AuditFilter)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    push_order(qb, f);
    qb.push(" LIMIT ").push_bind(i64::from(page_limit(f)));
    qb.push(" OFFSET ")
        .push_bind(i64::from(f.offset.unwrap_or(0)));
}

/// Appends ` ORDER BY …` (by `request_time`, then `request_id`, in `f.order`).
pub(crate) fn push_order<DB: Database>(qb: &mut QueryBuilder<DB>, f: &AuditFilter) {
    qb.push(match f.order {
        SortOrder::Desc => " ORDER BY request_time DESC, request_id DESC",
        SortOrder::Asc => " ORDER BY request_time ASC, request_id ASC",
    });
}

pub(crate) fn page_limit(f: &AuditFilter) -> u32 {
    f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// A `LIKE` pattern matching strings that start with `prefix` literally
/// (`\`, `%` and `_` escaped with `\`).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_metacharacters() {
        assert_eq!(like_prefix("/a_b%c\\d"), "/a\\_b\\%c\\\\d%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn clamps_limit() {
        let mut f = AuditFilter::default();
        assert_eq!(page_limit(&f), 100);
        f.limit = Some(0);
        assert_eq!(page_limit(&f), 1);
        f.limit = Some(5000);
        assert_eq!(page_limit(&f), 1000);
    }

    #[test]
    fn binds_every_value() {
        let f = AuditFilter {
            key_id: Some("k' OR 1=1 --".into()),
            path_prefix: Some("/a_b".into()),
            status_min: Some(500),
            has_error: Some(true),
            ..AuditFilter::default()
        };
        let mut qb = QueryBuilder::<sqlx::Postgres>::new("SELECT 1 FROM audit_logs");
        push_where(&mut qb, &f);
        push_order_and_page(&mut qb, &f);
        let sql = qb.into_string();
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(sql.contains("key_id = $1"), "{sql}");
        assert!(sql.contains("path LIKE $3 ESCAPE '\\'"), "{sql}");
        assert!(sql.ends_with("LIMIT $4 OFFSET $5"), "{sql}");
    }
}
