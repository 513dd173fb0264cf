//! Test helpers for this crate and for other crates' tests: a sample record and an
//! in-memory sink that can be made to fail, hang or reject chosen records.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::Utc;
use tokio::sync::watch;

use crate::{AuditRecord, AuditSink, PackedRecord, SinkError};

/// A plausible completed request with the given id.
pub fn sample_record(request_id: &str) -> AuditRecord {
    AuditRecord {
        request_id: request_id.to_owned(),
        client_request_id: None,
        key_id: Some("key_01".into()),
        key_name: Some("ci".into()),
        source: Some("team-a".into()),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        query: None,
        route: Some("openai".into()),
        upstream: Some("openai-main".into()),
        credential: Some("openai-key-1".into()),
        target_url: Some("https://api.openai.com/v1/chat/completions".into()),
        status_code: 200,
        request_time: Utc::now(),
        ttfb_ms: Some(120.5),
        duration_ms: 850.25,
        request_bytes: 512,
        response_bytes: 2048,
        user_agent: Some("curl/8.5".into()),
        client_ip: Some("127.0.0.1".into()),
        is_stream: true,
        stream_chunks: 17,
        model: Some("gpt-4o-mini".into()),
        tokens_in: Some(42),
        tokens_out: Some(128),
        tokens_estimated: false,
        cost: Some(0.000_123),
        error_message: None,
        request_headers: None,
        response_headers: None,
        request_body: None,
        response_body: None,
    }
}

/// A record with every optional field set, where the edges are: empty text, text
/// with newlines, NUL and multi-byte characters, extreme counts, absent numbers and
/// a non-finite duration. For this crate's encoding round trips.
#[cfg(test)]
pub(crate) fn every_field_set(request_id: &str) -> AuditRecord {
    let mut r = sample_record(request_id);
    r.client_request_id = Some("client-7".into());
    r.query = Some("a=1&b=2".into());
    r.error_message = Some("line\nbreak\0nul".into());
    r.request_headers = Some("{\"accept\":\"*/*\"}".into());
    r.response_headers = Some(String::new());
    r.request_body = Some("ünïcödé ✓".into());
    r.response_body = Some("data: {}\n\n".into());
    r.tokens_in = Some(u64::MAX);
    r.tokens_out = Some(0);
    r.cost = None;
    r.ttfb_ms = None;
    r.duration_ms = f64::INFINITY;
    r
}

/// An in-memory sink that deduplicates by `request_id`, like the real store.
pub struct MemorySink {
    rows: Mutex<BTreeMap<String, AuditRecord>>,
    /// Sizes of the batches accepted, in order.
    batches: Mutex<Vec<usize>>,
    /// Ids the sink refuses (any batch holding one fails), to simulate a poison record.
    poison: Mutex<HashSet<String>>,
    fail: AtomicBool,
    calls: AtomicU64,
    hold: watch::Sender<bool>,
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySink {
    pub fn new() -> Self {
        Self {
            rows: Mutex::default(),
            batches: Mutex::default(),
            poison: Mutex::default(),
            fail: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            hold: watch::Sender::new(false),
        }
    }

    /// While set, every call fails.
    pub fn set_failing(&self, failing: bool) {
        self.fail.store(failing, Ordering::SeqCst);
    }

    /// While set, calls wait (as a locked or very slow database would) until released.
    pub fn set_holding(&self, holding: bool) {
        self.hold.send_replace(holding);
    }

    /// Any batch containing this id fails.
    pub fn poison(&self, request_id: &str) {
        lock(&self.poison).insert(request_id.to_owned());
    }

    /// Number of distinct records stored.
    pub fn len(&self) -> usize {
        lock(&self.rows).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, request_id: &str) -> bool {
        lock(&self.rows).contains_key(request_id)
    }

    /// The stored ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        lock(&self.rows).keys().cloned().collect()
    }

    /// Sizes of the accepted batches, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        lock(&self.batches).clone()
    }

    /// Calls made so far, failed or not (including calls still waiting).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AuditSink for MemorySink {
    fn write_batch<'a>(
        &'a self,
        rows: &'a [PackedRecord],
    ) -> Pin<Box<dyn Future<Output = Result<u64, SinkError>> + Send + 'a>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut hold = self.hold.subscribe();
            // The sender lives in `self`, so this cannot fail while we are borrowed.
            let _ = hold.wait_for(|holding| !*holding).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(SinkError::unavailable("memory sink: failing on purpose"));
            }
            {
                let poison = lock(&self.poison);
                if let Some(bad) = rows.iter().find(|r| poison.contains(r.view().request_id)) {
                    return Err(SinkError::rejected(format!(
                        "memory sink: rejects {}",
                        bad.view().request_id
                    )));
                }
            }
            let mut stored = lock(&self.rows);
            let mut inserted = 0;
            for row in rows {
                let row = row.to_record();
                if stored.insert(row.request_id.clone(), row).is_none() {
                    inserted += 1;
                }
            }
            lock(&self.batches).push(rows.len());
            Ok(inserted)
        })
    }
}
