//! FastGate storage: the only crate with SQL.
//!
//! One [`Store`] handle wraps either a SQLite or a PostgreSQL pool (the sqlx `Any`
//! driver is avoided on purpose). Both backends share one schema shape, kept in
//! `migrations/sqlite` and `migrations/postgres`, with identical semantics:
//!
//! - timestamps are `BIGINT` unix milliseconds (UTC), so sub-millisecond precision of
//!   a [`chrono::DateTime`] is dropped on the way in;
//! - list fields (`allowed_routes`, `allowed_models`) are JSON text;
//! - `u64` fields are `BIGINT` with checked conversion ([`StoreError::OutOfRange`]).
//!
//! Queries are written once and run against the concrete pool of each backend via
//! the internal `with_pool!` macro; dynamic SQL is always built with
//! [`sqlx::QueryBuilder`] and bound parameters.

/// Runs `$body` with `$pool` bound to the concrete pool of the store and `$db` a
/// type alias for the backend's `sqlx::Database`. The body is compiled once per backend.
macro_rules! with_pool {
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$store.inner {
            $crate::store::Inner::Sqlite($pool) => {
                #[allow(dead_code, reason = "not every body names the backend type")]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Inner::Postgres($pool) => {
                #[allow(dead_code, reason = "not every body names the backend type")]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}

mod admin_events;
mod audit;
mod audit_export;
mod audit_filter;
mod audit_insert;
mod changes;
mod convert;
mod error;
mod health;
mod key_usage;
mod keys;
mod live;
mod models;
pub mod rollups;
mod rule_events;
mod store;
mod tasks;
pub mod testing;

pub use admin_events::{AdminEvent, AdminEventFilter};
pub use audit_export::{AuditExport, EXPORT_CHUNK_ROWS};
pub use changes::{CHANGE_CHANNEL, ChangeKind, ChangeListener, ChangeVersions};
pub use convert::NUL_REPLACEMENT;
pub use error::StoreError;
pub use health::{CredentialStateRow, CredentialUsageDelta, CredentialUsageRow};
pub use key_usage::KeyPeriodUsage;
pub use keys::{KeyUsage, KeysVersion};
pub use live::{SpecTable, StoredCredential, StoredSpec};
pub use models::StoredModelGroup;
pub use rollups::{
    Grain, MAX_SERIES_POINTS, StatsFilter, StatsPoint, StatsSummary, StatsTotals, TopBy, TopItem,
};
pub use rule_events::{
    NewRuleEvent, RULE_EVENTS_DEFAULT_LIMIT, RULE_EVENTS_MAX_LIMIT, RuleEventFilter, RuleEventRow,
};
pub use store::Store;
pub use tasks::TaskRow;

pub use fastgate_audit::{AuditFilter, AuditRecord, SortOrder};
pub use fastgate_auth::{ApiKeyRecord, KeyLimits, KeyQuota, QuotaPeriod};
