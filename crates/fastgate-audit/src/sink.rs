//! The destination of audit batches, implemented by the store.

use std::future::Future;
use std::pin::Pin;

use crate::PackedRecord;

/// Where the writer delivers batches (the database, in production).
///
/// Implementations must be idempotent on `request_id`: the writer may hand the same record
/// over more than once (a retried batch whose first attempt partly succeeded, a spill file
/// or journal replayed after a crash).
pub trait AuditSink: Send + Sync + 'static {
    /// Insert a batch; must be idempotent on request_id. Err means nothing may be assumed
    /// written. Returns the number of rows actually inserted (duplicates may be skipped).
    fn write_batch<'a>(
        &'a self,
        rows: &'a [PackedRecord],
    ) -> Pin<Box<dyn Future<Output = Result<u64, SinkError>> + Send + 'a>>;
}

/// A failed batch write. The message must not contain secrets (it is logged).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
    unavailable: bool,
}

impl SinkError {
    /// The sink is down, locked or overloaded: the rows are fine, try again later. The
    /// writer never bisects a batch to look for a bad record after such an error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unavailable: true,
        }
    }

    /// The sink refused the batch, possibly because of one of its rows.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unavailable: false,
        }
    }

    /// See [`SinkError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}
