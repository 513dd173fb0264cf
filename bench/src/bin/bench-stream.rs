//! `bench-stream`: the streaming client (see `fastgate_bench::stream`).
//!
//! ```text
//! bench-stream --url http://127.0.0.1:8080/v1/chat/completions
//!              [--connections 200] [--duration 5s | 0] [--ramp 0 (conn/s)]
//!              [--header "name: value"]... [--body JSON | --body-file PATH]
//!              [--threads 1] [--stream-timeout 60s]
//!              [--sample label=PID[,PID...]]... [--sample-interval 100ms]
//! ```
//! Prints one JSON object: TTFB, total and inter-event gap percentiles (µs),
//! errors, peak concurrent streams and the sampled processes' peak RSS.
//! Options are described by `bench-stream --help` (`fastgate_bench::cli::StreamArgs`).

use std::process::ExitCode;

use clap::Parser;
use fastgate_bench::cli::StreamArgs;
use fastgate_bench::stream;

fn main() -> ExitCode {
    // Exits with the usage and status 2 on a bad command line.
    let args = StreamArgs::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-stream: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &StreamArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let rt = fastgate_bench::runtime(args.threads)?;
    let report = rt.block_on(stream::run(cfg))?;
    println!("{report}");
    Ok(())
}
