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

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use fastgate_bench::args::{Args, parse_duration};
use fastgate_bench::stream::{self, SampleGroup, StreamConfig};

const USAGE: &str = "usage: bench-stream --url URL [--connections N] [--duration DUR|0] \
[--ramp CONN_PER_SEC] [--header 'name: value']... [--body JSON | --body-file PATH] \
[--threads N] [--stream-timeout DUR] [--sample label=PID[,PID]]... [--sample-interval DUR]";

const DEFAULT_BODY: &str =
    r#"{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-stream: {e:#}\n{USAGE}");
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
        "url",
        "connections",
        "duration",
        "ramp",
        "header",
        "body",
        "body-file",
        "threads",
        "stream-timeout",
        "sample",
        "sample-interval",
        "help",
    ])?;
    let url = args
        .get("url")
        .ok_or_else(|| anyhow!("--url is required"))?
        .to_string();
    let headers = args
        .all("header")
        .into_iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow!("header `{h}` is not `name: value`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = match (args.get("body"), args.get("body-file")) {
        (Some(b), _) => Bytes::from(b.to_string()),
        (None, Some(path)) => Bytes::from(
            std::fs::read(path).with_context(|| format!("cannot read body file {path}"))?,
        ),
        (None, None) => Bytes::from_static(DEFAULT_BODY.as_bytes()),
    };
    let duration_of = |name: &str, default: Duration| match args.get(name) {
        Some(v) => parse_duration(v),
        None => Ok(default),
    };
    let cfg = StreamConfig {
        url,
        connections: args.parse_or("connections", 200)?,
        duration: duration_of("duration", Duration::from_secs(5))?,
        ramp_per_sec: args.parse_or("ramp", 0.0)?,
        headers,
        body,
        stream_timeout: duration_of("stream-timeout", Duration::from_secs(60))?,
        sample: args
            .all("sample")
            .into_iter()
            .map(SampleGroup::parse)
            .collect::<anyhow::Result<Vec<_>>>()?,
        sample_interval: duration_of("sample-interval", Duration::from_millis(100))?,
    };
    let threads: usize = args.parse_or("threads", 1)?;
    let rt = fastgate_bench::runtime(threads)?;
    let report = rt.block_on(stream::run(cfg))?;
    println!("{report}");
    Ok(())
}
