//! Invariants of the LLM fuzz targets, shared by the fuzz targets (`fuzz_targets/*.rs`)
//! and the corpus test (`tests/fuzz_corpus.rs`), which replays every file of
//! `corpus/<target>/` under `cargo test`. A violated invariant panics.

use fastgate_llm::sse::{SseDecoder, SseEvent};
use fastgate_llm::{Protocol, StreamOptions, StreamProcessor, stream_processor};

fn decode(parts: &[&[u8]]) -> (Vec<SseEvent>, bool) {
    let mut d = SseDecoder::new(256);
    let mut out = Vec::new();
    for p in parts {
        if d.feed(p, &mut out).is_err() {
            return (out, true);
        }
    }
    let failed = d.finish(&mut out).is_err();
    (out, failed)
}

/// Target `sse_decode`: byte 0 picks a split point, the rest is an SSE byte stream.
/// The decoder never panics, stays bounded (events of at most 256 bytes), and gives
/// the same events whether the stream arrives whole or in two parts.
pub fn sse_decode(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let cut = (usize::from(first) % data.len()).min(body.len());
    let whole = decode(&[body]);
    let split = decode(&[&body[..cut], &body[cut..]]);
    assert_eq!(whole, split);
}

const PAIRS: [(Protocol, Protocol); 4] = [
    (Protocol::Anthropic, Protocol::OpenAi),
    (Protocol::OpenAi, Protocol::Anthropic),
    (Protocol::Gemini, Protocol::OpenAi),
    (Protocol::OpenAi, Protocol::OpenAi),
];

fn run(p: &mut dyn StreamProcessor, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        match p.feed(part) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => {
                out.extend_from_slice(&p.error_event(&e.to_string()));
                return out;
            }
        }
    }
    match p.finish() {
        Ok(b) => out.extend_from_slice(&b),
        Err(e) => out.extend_from_slice(&p.error_event(&e.to_string())),
    }
    let _ = (p.usage(), p.merged(), p.final_usage(1));
    out
}

fn opts() -> StreamOptions {
    StreamOptions {
        client_model: "m".into(),
        strip_usage_chunk: true,
        collect_merge: true,
        max_event_bytes: 4096,
    }
}

/// Target `stream_translate`: byte 0 picks the (upstream, client) protocol pair
/// (0 Anthropic->OpenAI, 1 OpenAI->Anthropic, 2 Gemini->OpenAI, 3 OpenAI->OpenAI),
/// byte 1 the split point, the rest is the upstream's stream. Processors never panic,
/// and the translated output does not depend on how the bytes were split (`created`
/// may tick between the two runs, so lengths are compared).
pub fn stream_translate(data: &[u8]) {
    let [pair, cut, body @ ..] = data else {
        return;
    };
    let (up, client) = PAIRS[usize::from(*pair) % PAIRS.len()];
    let cut = usize::from(*cut).min(body.len());
    let whole = run(stream_processor(up, client, opts()).as_mut(), &[body]);
    let split = run(
        stream_processor(up, client, opts()).as_mut(),
        &[&body[..cut], &body[cut..]],
    );
    assert_eq!(whole.len(), split.len());
}
