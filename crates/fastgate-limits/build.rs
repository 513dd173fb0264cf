//! Test support only: `FASTGATE_TEST_REDIS_URL` set at build time turns on the
//! `fastgate_redis_tests` cfg, so the Redis tests run; without it they are
//! compiled but reported by libtest as ignored, with the reason.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fastgate_redis_tests)");
    println!("cargo::rerun-if-env-changed=FASTGATE_TEST_REDIS_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("FASTGATE_TEST_REDIS_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=fastgate_redis_tests");
    }
}
