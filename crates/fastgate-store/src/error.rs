//! The store's error type.
//!
//! `Display` never carries the database's own message (which can quote the SQL, a
//! value or a schema detail): it names the class of the failure and, for database
//! errors, the SQLSTATE / SQLite result code. The full text, for logs, is
//! [`StoreError::detail`]. Callers that answer a client map the classes:
//! [`StoreError::is_invalid_input`] (the caller's value cannot be stored: 400),
//! [`StoreError::Conflict`] (409), [`StoreError::is_transient`] (503, retry later),
//! anything else (500).

/// Errors from the store. Unique-constraint violations surface as [`StoreError::Conflict`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not `sqlite:…` or `postgres://…`, or does not parse.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// A unique constraint was violated (duplicate key name, key hash, id, …). Holds the
    /// constraint's name.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value does not fit its column (e.g. a `u64` above `i64::MAX`).
    #[error("value out of range for {field}: {value}")]
    OutOfRange { field: &'static str, value: String },
    /// The database refused a value: a data exception (bad encoding, too long, invalid
    /// number) or a constraint other than uniqueness (check, not null, foreign key).
    #[error("invalid value: {reason}")]
    InvalidInput {
        /// What kind of refusal, e.g. `check constraint violated` (no value, no SQL).
        reason: String,
        #[source]
        source: sqlx::Error,
    },
    /// A stored row could not be turned back into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error (connection, I/O, SQL, decode, pool timeout, …).
    #[error("database error: {}", describe(.0))]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Filesystem error (e.g. creating the SQLite file's directory).
    #[error("io error: {}", .0.kind())]
    Io(#[from] std::io::Error),
}

/// SQLite result codes (primary, low byte) that mean "busy, try again".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// The primary SQLite result code of `db`, or `None` when `db` is not a SQLite error.
fn sqlite_primary(db: &dyn sqlx::error::DatabaseError) -> Option<i64> {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    db.code()?.parse::<i64>().ok().map(|c| c & 0xFF)
}

/// A value-free description of a sqlx error: its class and the database's code.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("the database refused the statement (code {code})"),
            None => "the database refused the statement".to_owned(),
        },
        sqlx::Error::Io(_) => "connection lost or refused".to_owned(),
        sqlx::Error::Tls(_) => "tls error".to_owned(),
        sqlx::Error::Protocol(_) => "protocol error (connection lost?)".to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::PoolClosed => "connection pool closed".to_owned(),
        sqlx::Error::WorkerCrashed => "database worker crashed".to_owned(),
        sqlx::Error::RowNotFound => "row not found".to_owned(),
        sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
        sqlx::Error::ColumnNotFound(name) => format!("column not found: {name}"),
        sqlx::Error::Decode(_) => "cannot decode a value".to_owned(),
        sqlx::Error::Configuration(_) => "configuration error".to_owned(),
        _ => "unexpected error".to_owned(),
    }
}

impl StoreError {
    /// True when the database is unreachable, locked or overloaded rather than the
    /// request being wrong: the caller may retry later (or spill the work to disk).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => match sqlite_primary(db.as_ref()) {
                    Some(primary) => primary == SQLITE_BUSY || primary == SQLITE_LOCKED,
                    None => db.code().is_some_and(|c| transient_sqlstate(&c)),
                },
                _ => false,
            },
            Self::Io(_) => true,
            _ => false,
        }
    }

    /// True when the caller's input cannot be stored (a value out of range or refused
    /// by a constraint or a type): answer 400, not 503, and do not retry.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::OutOfRange { .. } | Self::InvalidInput { .. })
    }

    /// True for a unique-constraint violation.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// The full error including the database's own message, for logs only (never for a
    /// response body).
    pub fn detail(&self) -> String {
        match self {
            Self::Database(e) | Self::InvalidInput { source: e, .. } => format!("{self}: {e}"),
            Self::Io(e) => format!("io error: {e}"),
            other => other.to_string(),
        }
    }

    pub(crate) fn out_of_range(field: &'static str, value: impl ToString) -> Self {
        Self::OutOfRange {
            field,
            value: value.to_string(),
        }
    }
}

/// PostgreSQL SQLSTATEs that mean "down, busy or locked right now".
fn transient_sqlstate(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources; 57P01-57P03: admin shutdown,
    // crash shutdown, cannot connect now (e.g. pg_terminate_backend); 55P03: lock not
    // available; 40001 / 40P01: serialization failure, deadlock.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "55P03" | "40001" | "40P01")
}

/// Why the database refused a value, when it did (class 22 / 23 but unique).
fn invalid_input_reason(db: &dyn sqlx::error::DatabaseError) -> Option<String> {
    use sqlx::error::ErrorKind;
    let kind = match db.kind() {
        ErrorKind::ForeignKeyViolation => Some("foreign key constraint violated"),
        ErrorKind::NotNullViolation => Some("a required value is missing"),
        ErrorKind::CheckViolation => Some("check constraint violated"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Some(kind.to_owned());
    }
    // SQLite: SQLITE_TOOBIG (18), SQLITE_MISMATCH (20), SQLITE_RANGE (25).
    if let Some(primary) = sqlite_primary(db) {
        return match primary {
            18 => Some("value too large".to_owned()),
            20 => Some("datatype mismatch".to_owned()),
            25 => Some("parameter out of range".to_owned()),
            _ => None,
        };
    }
    let code = db.code()?;
    (code.len() == 5 && code.starts_with("22"))
        .then(|| format!("value not accepted by the database (SQLSTATE {code})"))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let what = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "unique constraint".to_owned());
                return Self::Conflict(what);
            }
            if let Some(reason) = invalid_input_reason(db.as_ref()) {
                return Self::InvalidInput { reason, source: e };
            }
        }
        Self::Database(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_sqlstates() {
        assert!(transient_sqlstate("57P01"));
        assert!(transient_sqlstate("08006"));
        assert!(transient_sqlstate("55P03"));
        assert!(!transient_sqlstate("22021"));
        assert!(!transient_sqlstate("42P01"));
        assert!(!transient_sqlstate("23505"));
    }

    #[test]
    fn display_is_value_free() {
        let e = StoreError::Database(sqlx::Error::Protocol("secret-looking server text".into()));
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.detail().contains("secret"));
        assert!(e.is_transient());
        assert!(!e.is_invalid_input());
        assert!(StoreError::out_of_range("x", 1).is_invalid_input());
    }
}
