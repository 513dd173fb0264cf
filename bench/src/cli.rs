//! Command lines of `bench-mock` and `bench-stream` (clap derive).
//!
//! Options are `--name value` or `--name=value`; a repeated single-value option
//! keeps its last value, `--header` and `--sample` may be repeated. Durations are
//! a bare number of seconds (`1.5`) or a humantime span (`250ms`, `2s`, `1m`,
//! `1m 30s`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;

use crate::mock::MockConfig;
use crate::stream::{SampleGroup, StreamConfig};

/// Default request body of `bench-stream`.
pub const DEFAULT_STREAM_BODY: &str =
    r#"{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;

/// bench-mock: a fast mock upstream speaking the OpenAI chat API (JSON and SSE).
///
/// Prints `listening on ADDR` once ready; `GET /mock/stats` reports its own CPU.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-mock", args_override_self = true)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value_t = MockConfig::default().listen)]
    pub listen: SocketAddr,
    /// Runtime threads (1 = current-thread runtime).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// SSE events per streamed response.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().chunks)]
    pub chunks: u32,
    /// Delay between two SSE events.
    #[arg(long, value_name = "DUR", default_value = "20ms", value_parser = parse_duration)]
    pub chunk_delay: Duration,
    /// Approximate size of a non-streamed response body.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().response_bytes)]
    pub response_bytes: usize,
    /// Listen backlog (the kernel caps it at `net.core.somaxconn`).
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().backlog)]
    pub backlog: u32,
}

impl MockArgs {
    pub fn config(&self) -> MockConfig {
        MockConfig {
            listen: self.listen,
            chunks: self.chunks,
            chunk_delay: self.chunk_delay,
            response_bytes: self.response_bytes,
            backlog: self.backlog,
        }
    }
}

/// bench-stream: opens connections, POSTs streaming chat requests and prints one
/// JSON object with TTFB, total and inter-event gap percentiles (µs), errors, peak
/// concurrent streams and the sampled processes' peak RSS.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-stream", args_override_self = true)]
pub struct StreamArgs {
    /// Target URL (http:// only).
    #[arg(long)]
    pub url: String,
    /// Concurrent connections.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub connections: usize,
    /// Closed loop for this long; 0 opens one stream per connection.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// New connections per second; 0 opens them all at once.
    #[arg(
        long,
        value_name = "CONN_PER_SEC",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub ramp: f64,
    /// Request header `name: value` (repeatable).
    #[arg(long = "header", value_name = "'name: value'", value_parser = parse_header, allow_hyphen_values = true)]
    pub headers: Vec<(String, String)>,
    /// Request body (JSON); wins over --body-file.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    pub body: Option<String>,
    /// Read the request body from this file.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// Runtime threads (1 = current-thread runtime).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Longest a single stream may take before it counts as an error.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub stream_timeout: Duration,
    /// Sample the summed RSS of these processes (repeatable).
    #[arg(long = "sample", value_name = "label=PID[,PID...]", value_parser = parse_sample)]
    pub samples: Vec<SampleGroup>,
    /// Interval between two RSS samples.
    #[arg(long, value_name = "DUR", default_value = "100ms", value_parser = parse_duration)]
    pub sample_interval: Duration,
}

impl StreamArgs {
    /// The run's configuration (reads `--body-file` when given without `--body`).
    pub fn config(&self) -> anyhow::Result<StreamConfig> {
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(path)) => Bytes::from(
                std::fs::read(path)
                    .with_context(|| format!("cannot read body file {}", path.display()))?,
            ),
            (None, None) => Bytes::from_static(DEFAULT_STREAM_BODY.as_bytes()),
        };
        Ok(StreamConfig {
            url: self.url.clone(),
            connections: self.connections,
            duration: self.duration,
            ramp_per_sec: self.ramp,
            headers: self.headers.clone(),
            body,
            stream_timeout: self.stream_timeout,
            sample: self.samples.clone(),
            sample_interval: self.sample_interval,
        })
    }
}

/// Parses a bare number of seconds (`"1.5"`) or a humantime duration (`"250ms"`,
/// `"2s"`, `"1m"`, `"1m 30s"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration `{s}`"));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("header `{s}` is not `name: value`"))
}

fn parse_sample(s: &str) -> Result<SampleGroup, String> {
    SampleGroup::parse(s).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn mock(argv: &[&str]) -> Result<MockArgs, clap::Error> {
        MockArgs::try_parse_from(std::iter::once("bench-mock").chain(argv.iter().copied()))
    }

    fn stream(argv: &[&str]) -> Result<StreamArgs, clap::Error> {
        StreamArgs::try_parse_from(std::iter::once("bench-stream").chain(argv.iter().copied()))
    }

    #[test]
    fn commands_are_consistent() {
        MockArgs::command().debug_assert();
        StreamArgs::command().debug_assert();
    }

    #[test]
    fn mock_defaults_match_config() {
        let a = mock(&[]).unwrap();
        let (got, want) = (a.config(), MockConfig::default());
        assert_eq!(got.listen, want.listen);
        assert_eq!(got.chunks, want.chunks);
        assert_eq!(got.chunk_delay, want.chunk_delay);
        assert_eq!(got.response_bytes, want.response_bytes);
        assert_eq!(got.backlog, want.backlog);
        assert_eq!(a.threads, 1);
    }

    #[test]
    fn mock_harness_command_line() {
        let a = mock(&[
            "--listen",
            "127.0.0.1:19100",
            "--threads",
            "1",
            "--backlog",
            "16384",
            "--chunk-delay=500ms",
            "--chunks",
            "3",
            "--chunks",
            "4",
        ])
        .unwrap();
        assert_eq!(a.listen, "127.0.0.1:19100".parse().unwrap());
        assert_eq!(a.backlog, 16384);
        assert_eq!(a.chunk_delay, Duration::from_millis(500));
        assert_eq!(a.chunks, 4, "last value wins");
    }

    #[test]
    fn stream_defaults() {
        let c = stream(&["--url", "http://127.0.0.1:1/x"])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.connections, 200);
        assert_eq!(c.duration, Duration::from_secs(5));
        assert_eq!(c.ramp_per_sec, 0.0);
        assert!(c.headers.is_empty());
        assert_eq!(c.body, DEFAULT_STREAM_BODY.as_bytes());
        assert_eq!(c.stream_timeout, Duration::from_secs(60));
        assert!(c.sample.is_empty());
        assert_eq!(c.sample_interval, Duration::from_millis(100));
    }

    #[test]
    fn stream_harness_command_line() {
        let a = stream(&[
            "--url",
            "http://127.0.0.1:8080/v1/chat/completions",
            "--connections",
            "9045",
            "--duration",
            "0s",
            "--ramp",
            "4000",
            "--header",
            "x-mock-chunks: 20",
            "--header=x-mock-chunk-delay-ms: 500",
            "--threads",
            "1",
            "--stream-timeout",
            "120s",
            "--header",
            "authorization: Bearer fg_abc",
            "--sample",
            "nginx=10,11",
            "--sample",
            "fastgate=12",
            "--body",
            "{}",
        ])
        .unwrap();
        let c = a.config().unwrap();
        assert_eq!(c.connections, 9045);
        assert_eq!(c.duration, Duration::ZERO);
        assert_eq!(c.ramp_per_sec, 4000.0);
        assert_eq!(
            c.headers,
            vec![
                ("x-mock-chunks".to_string(), "20".to_string()),
                ("x-mock-chunk-delay-ms".to_string(), "500".to_string()),
                ("authorization".to_string(), "Bearer fg_abc".to_string()),
            ]
        );
        assert_eq!(c.stream_timeout, Duration::from_secs(120));
        assert_eq!(c.sample.len(), 2);
        assert_eq!(c.sample[0].label, "nginx");
        assert_eq!(c.sample[0].pids, vec![10, 11]);
        assert_eq!(c.sample[1].pids, vec![12]);
        assert_eq!(c.body, "{}".as_bytes());
    }

    #[test]
    fn stream_body_file() {
        let path = std::env::temp_dir().join(format!("bench-cli-body-{}", std::process::id()));
        std::fs::write(&path, b"{\"a\":1}").unwrap();
        let p = path.to_str().unwrap();
        let c = stream(&["--url", "http://h/", "--body-file", p])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.body, "{\"a\":1}".as_bytes());
        let c = stream(&["--url", "http://h/", "--body-file", p, "--body", "x"])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.body, "x".as_bytes(), "--body wins");
        std::fs::remove_file(&path).unwrap();
        assert!(
            stream(&["--url", "http://h/", "--body-file", p])
                .unwrap()
                .config()
                .is_err()
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(stream(&[]).is_err(), "--url is required");
        assert!(stream(&["--url", "http://h/", "positional"]).is_err());
        assert!(stream(&["--url", "http://h/", "--bogus", "1"]).is_err());
        assert!(stream(&["--url", "http://h/", "--connections"]).is_err());
        assert!(stream(&["--url", "http://h/", "--connections", "x"]).is_err());
        assert!(stream(&["--url", "http://h/", "--header", "no-colon"]).is_err());
        assert!(stream(&["--url", "http://h/", "--sample", "x=1,y"]).is_err());
        assert!(stream(&["--url", "http://h/", "--duration", "soon"]).is_err());
        assert!(mock(&["--listen", "nowhere"]).is_err());
        assert!(mock(&["--typo", "1"]).is_err());
    }

    #[test]
    fn help_is_not_an_error_of_the_command_line() {
        let e = stream(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let e = mock(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("inf").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
