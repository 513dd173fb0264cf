//! `bench-mock`: the fast mock upstream (see `fastgate_bench::mock`).
//!
//! ```text
//! bench-mock [--listen 127.0.0.1:9100] [--threads 1] [--chunks 20]
//!            [--chunk-delay 20ms] [--response-bytes 512] [--backlog 8192]
//! ```
//! Prints `listening on ADDR` once ready; `GET /mock/stats` reports its own CPU.

use std::process::ExitCode;

use anyhow::Context;
use fastgate_bench::args::{Args, parse_duration};
use fastgate_bench::mock::{self, MockConfig};

const USAGE: &str = "usage: bench-mock [--listen ADDR] [--threads N] [--chunks N] \
[--chunk-delay DUR] [--response-bytes N] [--backlog N]";

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-mock: {e:#}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = Args::parse(std::env::args().skip(1), &["help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    args.reject_unknown(&[
        "listen",
        "threads",
        "chunks",
        "chunk-delay",
        "response-bytes",
        "backlog",
        "help",
    ])?;
    let defaults = MockConfig::default();
    let cfg = MockConfig {
        listen: args.parse_or("listen", defaults.listen)?,
        chunks: args.parse_or("chunks", defaults.chunks)?,
        chunk_delay: match args.get("chunk-delay") {
            Some(d) => parse_duration(d)?,
            None => defaults.chunk_delay,
        },
        response_bytes: args.parse_or("response-bytes", defaults.response_bytes)?,
        backlog: args.parse_or("backlog", defaults.backlog)?,
    };
    let threads: usize = args.parse_or("threads", 1)?;
    let rt = fastgate_bench::runtime(threads)?;
    rt.block_on(async move {
        let listener = mock::bind(&cfg)?;
        let addr = listener.local_addr().context("no local address")?;
        println!("listening on {addr}");
        mock::serve(listener, cfg).await
    })
}
