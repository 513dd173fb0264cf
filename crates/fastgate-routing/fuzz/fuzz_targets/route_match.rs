//! The route table never panics and finds what a linear scan finds (see
//! `checks::route_match` for the input format).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::route_match(data));
