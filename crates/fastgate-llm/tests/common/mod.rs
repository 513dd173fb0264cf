//! Shared test helpers.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

use fastgate_llm::sse::{SseDecoder, SseEvent};
use fastgate_llm::{Protocol, StreamOptions, StreamProcessor, stream_processor};
use serde_json::Value;

pub fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

pub fn opts(model: &str) -> StreamOptions {
    StreamOptions {
        client_model: model.into(),
        strip_usage_chunk: false,
        collect_merge: true,
        max_event_bytes: 1 << 20,
    }
}

/// Feed `input` split at the given offsets, then finish.
pub fn run_split(p: &mut dyn StreamProcessor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last = 0;
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|c| *c <= input.len()).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain(std::iter::once(input.len())) {
        match p.feed(&input[last..c]) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => {
                out.extend_from_slice(&p.error_event(&e.to_string()));
                return out;
            }
        }
        last = c;
    }
    match p.finish() {
        Ok(b) => out.extend_from_slice(&b),
        Err(e) => out.extend_from_slice(&p.error_event(&e.to_string())),
    }
    out
}

pub fn run(
    upstream: Protocol,
    client: Protocol,
    o: StreamOptions,
    input: &[u8],
) -> (Vec<u8>, Box<dyn StreamProcessor>) {
    let mut p = stream_processor(upstream, client, o);
    let out = run_split(p.as_mut(), input, &[]);
    (out, p)
}

pub fn events(bytes: &[u8]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new(1 << 24);
    let mut v = Vec::new();
    d.feed(bytes, &mut v).unwrap();
    d.finish(&mut v).unwrap();
    v
}

/// The JSON data of each event (`[DONE]` becomes the string "[DONE]").
pub fn datas(bytes: &[u8]) -> Vec<Value> {
    events(bytes)
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)))
        .collect()
}
