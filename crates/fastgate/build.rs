//! Test support only: `FASTGATE_TEST_PG_URL` set at build time turns on the
//! `fastgate_pg_tests` cfg, so the PostgreSQL test variants run, and
//! `FASTGATE_TEST_REDIS_URL` the `fastgate_redis_tests` cfg for the Redis ones;
//! without them they are compiled but reported by libtest as ignored, with the
//! reason.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fastgate_pg_tests)");
    println!("cargo::rustc-check-cfg=cfg(fastgate_redis_tests)");
    println!("cargo::rerun-if-env-changed=FASTGATE_TEST_PG_URL");
    println!("cargo::rerun-if-env-changed=FASTGATE_TEST_REDIS_URL");
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in [
        ("FASTGATE_TEST_PG_URL", "fastgate_pg_tests"),
        ("FASTGATE_TEST_REDIS_URL", "fastgate_redis_tests"),
    ] {
        if std::env::var(var).is_ok_and(|v| !v.trim().is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
