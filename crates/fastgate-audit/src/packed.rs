//! The form a record takes between the request that made it and the sink: its text
//! in one buffer.
//!
//! Why not the [`AuditRecord`] itself: a record is some fifteen separate strings, and a
//! batch of them lives for a whole batch (512 rows, tens of milliseconds at load). Those
//! strings were freed together after the insert and handed back, long out of the
//! cache, to the next requests' allocations: with the audit on, the allocator's fast path
//! took 5-6 % of the request core, nearly all of it one cache miss per block. A packed
//! record is one allocation, read front to back by the sink; the request's own strings
//! stay with the request and are freed on its thread while still warm.
//!
//! The text is one `str` with the end of each field: reading a field back is a slice
//! (its boundaries checked), not a UTF-8 validation as decoding the journal's byte
//! frame would be.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{AuditRecord, AuditRecordRef};

/// The text fields, in the order they are packed.
const TEXT_FIELDS: usize = 20;

/// One audit record, its text in a single buffer.
#[derive(Clone, PartialEq)]
pub struct PackedRecord {
    text: Box<str>,
    /// Where each text field ends in `text` (it starts where the one before ends).
    /// 4 GiB of text cannot be captured (bodies are capped; the journal frame has the
    /// same bound); past it the fields read back empty rather than wrong.
    ends: [u32; TEXT_FIELDS],
    /// Bit `i` set: optional text field `i` is present.
    present: u32,
    status_code: u16,
    is_stream: bool,
    tokens_estimated: bool,
    request_time: DateTime<Utc>,
    ttfb_ms: Option<f64>,
    duration_ms: f64,
    request_bytes: u64,
    response_bytes: u64,
    stream_chunks: u64,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    cost: Option<f64>,
}

impl PackedRecord {
    /// Copy `r` into a packed record: one allocation for all of its text.
    pub fn pack(r: &AuditRecordRef<'_>) -> Self {
        let fields: [Option<&str>; TEXT_FIELDS] = [
            Some(r.request_id),
            r.client_request_id,
            r.key_id,
            r.key_name,
            r.source,
            Some(r.method),
            Some(r.path),
            r.query,
            r.route,
            r.upstream,
            r.credential,
            r.target_url,
            r.user_agent,
            r.client_ip,
            r.model,
            r.error_message,
            r.request_headers,
            r.response_headers,
            r.request_body,
            r.response_body,
        ];
        let total = fields.iter().flatten().map(|f| f.len()).sum();
        let mut text = String::with_capacity(total);
        let mut ends = [0; TEXT_FIELDS];
        let mut present = 0u32;
        for (i, field) in fields.iter().enumerate() {
            if let Some(f) = field {
                text.push_str(f);
                present |= 1 << i;
            }
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Self {
            text: text.into_boxed_str(),
            ends,
            present,
            status_code: r.status_code,
            is_stream: r.is_stream,
            tokens_estimated: r.tokens_estimated,
            request_time: r.request_time,
            ttfb_ms: r.ttfb_ms,
            duration_ms: r.duration_ms,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            stream_chunks: r.stream_chunks,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            cost: r.cost,
        }
    }

    /// Text field `i`, if present. The ends were taken from the text as it was built,
    /// so the slice is always in bounds and on character boundaries.
    fn field(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start as usize..self.ends[i] as usize)
    }

    /// The record, borrowing its text from this one.
    pub fn view(&self) -> AuditRecordRef<'_> {
        let f = |i| self.field(i);
        AuditRecordRef {
            request_id: f(0).unwrap_or_default(),
            client_request_id: f(1),
            key_id: f(2),
            key_name: f(3),
            source: f(4),
            method: f(5).unwrap_or_default(),
            path: f(6).unwrap_or_default(),
            query: f(7),
            route: f(8),
            upstream: f(9),
            credential: f(10),
            target_url: f(11),
            status_code: self.status_code,
            request_time: self.request_time,
            ttfb_ms: self.ttfb_ms,
            duration_ms: self.duration_ms,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            user_agent: f(12),
            client_ip: f(13),
            is_stream: self.is_stream,
            stream_chunks: self.stream_chunks,
            model: f(14),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            tokens_estimated: self.tokens_estimated,
            cost: self.cost,
            error_message: f(15),
            request_headers: f(16),
            response_headers: f(17),
            request_body: f(18),
            response_body: f(19),
        }
    }

    /// An owned copy of the record.
    pub fn to_record(&self) -> AuditRecord {
        self.view().to_record()
    }

    /// Bytes of text held by this record.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

impl From<&AuditRecord> for PackedRecord {
    fn from(record: &AuditRecord) -> Self {
        Self::pack(&record.view())
    }
}

impl fmt::Debug for PackedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedRecord")
            .field("request_id", &self.view().request_id)
            .field("text_len", &self.text.len())
            .finish()
    }
}

/// Read access to an audit record, whichever form holds it.
pub trait AsAuditRef {
    fn audit_ref(&self) -> AuditRecordRef<'_>;
}

impl AsAuditRef for AuditRecord {
    fn audit_ref(&self) -> AuditRecordRef<'_> {
        self.view()
    }
}

impl AsAuditRef for PackedRecord {
    fn audit_ref(&self) -> AuditRecordRef<'_> {
        self.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{every_field_set, sample_record};

    #[test]
    fn packing_keeps_every_field() {
        for record in [every_field_set("packed-1"), sample_record("plain")] {
            let packed = PackedRecord::from(&record);
            assert_eq!(packed.view(), record.view());
            assert_eq!(packed.to_record(), record);
            assert_eq!(packed.view().request_id, record.request_id);
        }
    }

    #[test]
    fn absent_and_empty_fields_stay_apart() {
        let mut record = sample_record("");
        record.method = String::new();
        record.key_id = Some(String::new());
        record.key_name = None;
        record.request_body = Some(String::new());
        record.response_body = None;
        let packed = PackedRecord::from(&record);
        let view = packed.view();
        assert_eq!(view.key_id, Some(""));
        assert_eq!(view.key_name, None);
        assert_eq!(view.request_body, Some(""));
        assert_eq!(view.response_body, None);
        assert_eq!(view.source, Some("team-a"));
        assert_eq!(packed.to_record(), record);
    }

    #[test]
    fn all_text_is_one_buffer() {
        let record = every_field_set("packed-1");
        let packed = PackedRecord::from(&record);
        let view = record.view();
        let text_fields = [
            Some(view.request_id),
            view.client_request_id,
            view.key_id,
            view.key_name,
            view.source,
            Some(view.method),
            Some(view.path),
            view.query,
            view.route,
            view.upstream,
            view.credential,
            view.target_url,
            view.user_agent,
            view.client_ip,
            view.model,
            view.error_message,
            view.request_headers,
            view.response_headers,
            view.request_body,
            view.response_body,
        ];
        let total: usize = text_fields.iter().flatten().map(|f| f.len()).sum();
        assert_eq!(packed.text_len(), total);
    }

    #[test]
    fn a_view_serialises_as_the_record_does() {
        for record in [every_field_set("packed-1"), sample_record("plain")] {
            let mut record = record;
            record.duration_ms = 12.5;
            let packed = PackedRecord::from(&record);
            assert_eq!(
                serde_json::to_string(&packed.view()).ok(),
                serde_json::to_string(&record).ok()
            );
        }
    }
}
