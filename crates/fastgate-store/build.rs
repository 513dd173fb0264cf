//! Test support only: `FASTGATE_TEST_PG_URL` set at build time turns on the
//! `fastgate_pg_tests` cfg, so the PostgreSQL test variants run; without it they
//! are compiled but reported by libtest as ignored, with the reason.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fastgate_pg_tests)");
    println!("cargo::rerun-if-env-changed=FASTGATE_TEST_PG_URL");
    println!("cargo::rerun-if-changed=build.rs");
    // The embedded migrations (`sqlx::migrate!`): a new file must rebuild the crate.
    println!("cargo::rerun-if-changed=migrations");
    let set = std::env::var("FASTGATE_TEST_PG_URL").is_ok_and(|v| !v.trim().is_empty());
    if set {
        println!("cargo::rustc-cfg=fastgate_pg_tests");
    }
}
