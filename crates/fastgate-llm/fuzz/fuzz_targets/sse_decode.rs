//! The SSE decoder never panics, stays bounded, and is split-invariant.
#![no_main]

use fastgate_llm::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fn decode(parts: &[&[u8]]) -> (Vec<fastgate_llm::sse::SseEvent>, bool) {
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

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let cut = data[0] as usize % data.len();
    let body = &data[1..];
    let cut = cut.min(body.len());
    let whole = decode(&[body]);
    let split = decode(&[&body[..cut], &body[cut..]]);
    assert_eq!(whole, split);
});
