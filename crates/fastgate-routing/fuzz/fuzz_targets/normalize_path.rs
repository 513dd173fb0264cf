//! `normalize_path` never panics; its output is a fixed point free of the refused
//! shapes (see `checks::normalize_path`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::normalize_path(data));
