//! `bench-mock`: the fast mock upstream (see `fastgate_bench::mock`).
//!
//! ```text
//! bench-mock [--listen 127.0.0.1:9100] [--threads 1] [--chunks 20]
//!            [--chunk-delay 20ms] [--response-bytes 512] [--backlog 8192]
//! ```
//! Prints `listening on ADDR` once ready; `GET /mock/stats` reports its own CPU.
//! Options are described by `bench-mock --help` (`fastgate_bench::cli::MockArgs`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fastgate_bench::cli::MockArgs;
use fastgate_bench::mock;

fn main() -> ExitCode {
    // Exits with the usage and status 2 on a bad command line.
    let args = MockArgs::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-mock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &MockArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    let rt = fastgate_bench::runtime(args.threads)?;
    rt.block_on(async move {
        let listener = mock::bind(&cfg)?;
        let addr = listener.local_addr().context("no local address")?;
        println!("listening on {addr}");
        mock::serve(listener, cfg).await
    })
}
