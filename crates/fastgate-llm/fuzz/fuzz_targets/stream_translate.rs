//! Stream processors never panic on arbitrary upstream bytes, and translated output does
//! not depend on how the bytes were split (see `checks::stream_translate`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::stream_translate(data));
