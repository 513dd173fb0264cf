//! The SSE decoder never panics, stays bounded, and is split-invariant (see
//! `checks::sse_decode`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sse_decode(data));
