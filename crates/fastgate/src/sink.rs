//! The audit writer's sink: the store.

use std::future::Future;
use std::pin::Pin;

use fastgate_audit::{AuditSink, PackedRecord, SinkError};
use fastgate_store::Store;

pub struct StoreAuditSink(pub Store);

impl AuditSink for StoreAuditSink {
    fn write_batch<'a>(
        &'a self,
        rows: &'a [PackedRecord],
    ) -> Pin<Box<dyn Future<Output = Result<u64, SinkError>> + Send + 'a>> {
        Box::pin(async move {
            self.0.insert_audit_rows(rows).await.map_err(|e| {
                // Logged by the writer: the detail helps an operator and holds no
                // secret (audit rows never carry keys).
                if e.is_transient() {
                    SinkError::unavailable(e.detail())
                } else {
                    SinkError::rejected(e.detail())
                }
            })
        })
    }
}
