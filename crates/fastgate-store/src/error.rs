//! The store's error type.

/// Errors from the store. Unique-constraint violations surface as [`StoreError::Conflict`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not `sqlite:…` or `postgres://…`, or does not parse.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// A unique constraint was violated (duplicate key name, key hash, id, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value does not fit its column (e.g. a `u64` above `i64::MAX`).
    #[error("value out of range for {field}: {value}")]
    OutOfRange { field: &'static str, value: String },
    /// A stored row could not be turned back into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error (connection, I/O, SQL, decode, pool timeout, …).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Filesystem error (e.g. creating the SQLite file's directory).
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when the database is unreachable or overloaded rather than the request
    /// being wrong: the caller may retry later (or spill the work to disk).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
            ),
            Self::Io(_) => true,
            _ => false,
        }
    }

    pub(crate) fn out_of_range(field: &'static str, value: impl ToString) -> Self {
        Self::OutOfRange {
            field,
            value: value.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            let what = db
                .constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned());
            return Self::Conflict(what);
        }
        Self::Database(e)
    }
}
