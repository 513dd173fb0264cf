//! The configuration loader never panics, is deterministic, and whatever it accepts
//! validates and compiles (see `checks::config_load`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::config_load(data);
});
