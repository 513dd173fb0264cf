//! The streaming client behind `bench-stream`.
//!
//! Opens `connections` HTTP/1.1 connections (optionally ramped), POSTs an OpenAI
//! stream request on each and records, per stream, the time to the first body
//! byte, the total time and the gaps between SSE event arrivals. With a duration
//! every connection repeats its stream (closed loop) until the time is up;
//! without one each connection makes one stream, so all of them are open at the
//! same time (the memory scenario). While running it can sample the resident
//! memory of other processes (the proxy under test) to catch their peak.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::procfs;
use crate::stats::summary;

/// `http://host:port/path` split into what a raw HTTP/1.1 connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub authority: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("URL without a host: {url}");
        }
        Ok(Target {
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    pub async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        let with_port = if self.authority.contains(':') && !self.authority.ends_with(']') {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve {with_port}"))?
            .next()
            .ok_or_else(|| anyhow!("no address for {with_port}"))
    }
}

/// A group of processes whose summed resident memory is sampled.
#[derive(Debug, Clone)]
pub struct SampleGroup {
    pub label: String,
    pub pids: Vec<u32>,
}

impl SampleGroup {
    /// `label=PID[,PID…]`.
    pub fn parse(s: &str) -> anyhow::Result<SampleGroup> {
        let (label, pids) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("expected label=PID[,PID...], got `{s}`"))?;
        let pids = pids
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("invalid PID list in `{s}`"))?;
        Ok(SampleGroup {
            label: label.to_string(),
            pids,
        })
    }

    fn rss_kb(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| procfs::memory_kb(&p.to_string()).ok())
            .map(|(rss, _)| rss)
            .sum()
    }

    fn hwm_kb(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| procfs::memory_kb(&p.to_string()).ok())
            .map(|(_, hwm)| hwm)
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub url: String,
    pub connections: usize,
    /// Closed loop for this long; zero means one stream per connection.
    pub duration: Duration,
    /// New connections per second; zero opens them all at once.
    pub ramp_per_sec: f64,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Longest a single stream may take before it counts as an error.
    pub stream_timeout: Duration,
    pub sample: Vec<SampleGroup>,
    pub sample_interval: Duration,
}

/// Measurements of one connection.
#[derive(Debug, Default)]
struct Recorder {
    ttfb: Vec<u64>,
    total: Vec<u64>,
    gaps: Vec<u64>,
    events: u64,
    streams: u64,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: Vec<String>,
}

impl Recorder {
    fn merge(&mut self, other: Recorder) {
        self.ttfb.extend(other.ttfb);
        self.total.extend(other.total);
        self.gaps.extend(other.gaps);
        self.events += other.events;
        self.streams += other.streams;
        self.ok += other.ok;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.errors.extend(other.errors);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts SSE event ends (blank lines) across arbitrarily split chunks.
#[derive(Debug, Default)]
pub struct EventSplitter {
    prev_newline: bool,
}

impl EventSplitter {
    /// Events completed by `data`.
    pub fn feed(&mut self, data: &[u8]) -> u64 {
        let mut n = 0;
        for &b in data {
            match b {
                b'\n' if self.prev_newline => {
                    n += 1;
                    self.prev_newline = false;
                }
                b'\n' => self.prev_newline = true,
                b'\r' => {}
                _ => self.prev_newline = false,
            }
        }
        n
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn build_request(
    target: &Target,
    headers: &[(HeaderName, HeaderValue)],
    body: &Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut req = Request::post(target.path.as_str()).body(Full::new(body.clone()))?;
    let h = req.headers_mut();
    h.insert(HOST, HeaderValue::from_str(&target.authority)?);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        h.insert(name.clone(), value.clone());
    }
    Ok(req)
}

/// One stream on an open connection.
async fn one_stream(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
    open: &AtomicUsize,
    rec: &mut Recorder,
) -> anyhow::Result<()> {
    sender.ready().await?;
    let t0 = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut splitter = EventSplitter::default();
    let mut first: Option<Instant> = None;
    let mut last_event: Option<Instant> = None;
    let result = async {
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            let now = Instant::now();
            if first.is_none() {
                first = Some(now);
                open.fetch_add(1, Ordering::Relaxed);
            }
            let events = splitter.feed(data);
            if events > 0 {
                rec.events += events;
                if let Some(prev) = last_event {
                    rec.gaps.push(micros(now - prev));
                }
                last_event = Some(now);
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let end = Instant::now();
    if first.is_some() {
        open.fetch_sub(1, Ordering::Relaxed);
    }
    rec.streams += 1;
    *rec.statuses.entry(status).or_default() += 1;
    result?;
    if let Some(first) = first {
        rec.ttfb.push(micros(first - t0));
    }
    rec.total.push(micros(end - t0));
    if status == 200 {
        rec.ok += 1;
    } else {
        rec.errors.push(format!("HTTP status {status}"));
    }
    Ok(())
}

struct Shared {
    cfg: StreamConfig,
    target: Target,
    addr: SocketAddr,
    headers: Vec<(HeaderName, HeaderValue)>,
    open: AtomicUsize,
}

async fn connection(shared: Arc<Shared>, start_at: Instant, end_at: Option<Instant>) -> Recorder {
    tokio::time::sleep_until(start_at).await;
    let mut rec = Recorder::default();
    let mut sender = match connect(shared.addr).await {
        Ok(s) => s,
        Err(e) => {
            rec.errors.push(format!("{e:#}"));
            return rec;
        }
    };
    loop {
        let req = match build_request(&shared.target, &shared.headers, &shared.cfg.body) {
            Ok(r) => r,
            Err(e) => {
                rec.errors.push(format!("{e:#}"));
                return rec;
            }
        };
        let run = one_stream(&mut sender, req, &shared.open, &mut rec);
        match tokio::time::timeout(shared.cfg.stream_timeout, run).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                rec.errors.push(format!("{e:#}"));
                return rec;
            }
            Err(_) => {
                rec.errors.push(format!(
                    "stream took longer than {:?}",
                    shared.cfg.stream_timeout
                ));
                return rec;
            }
        }
        match end_at {
            Some(end) if Instant::now() < end => {}
            _ => return rec,
        }
    }
}

#[derive(Debug, Default)]
struct Sampled {
    peak_open: usize,
    peak_open_at_s: f64,
    rss_peak: Vec<u64>,
    rss_at_peak_open: Vec<u64>,
}

async fn sampler(shared: Arc<Shared>, started: Instant, stop: Arc<tokio::sync::Notify>) -> Sampled {
    let groups = &shared.cfg.sample;
    let mut s = Sampled {
        rss_peak: vec![0; groups.len()],
        rss_at_peak_open: vec![0; groups.len()],
        ..Sampled::default()
    };
    let mut tick = tokio::time::interval(shared.cfg.sample_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.notified() => return s,
        }
        let open = shared.open.load(Ordering::Relaxed);
        let rss: Vec<u64> = groups.iter().map(SampleGroup::rss_kb).collect();
        for (peak, now) in s.rss_peak.iter_mut().zip(&rss) {
            *peak = (*peak).max(*now);
        }
        if open > s.peak_open || (open == s.peak_open && open > 0) {
            if open > s.peak_open {
                s.peak_open_at_s = started.elapsed().as_secs_f64();
            }
            s.peak_open = open;
            // At the same concurrency keep the largest reading.
            for (at, now) in s.rss_at_peak_open.iter_mut().zip(&rss) {
                *at = (*at).max(*now);
            }
        }
    }
}

/// Runs the benchmark and returns its JSON report.
pub async fn run(cfg: StreamConfig) -> anyhow::Result<Value> {
    let target = Target::parse(&cfg.url)?;
    let addr = target.resolve().await?;
    let headers = cfg
        .headers
        .iter()
        .map(|(n, v)| {
            Ok((
                HeaderName::from_bytes(n.trim().as_bytes())
                    .with_context(|| format!("invalid header name `{n}`"))?,
                HeaderValue::from_str(v.trim())
                    .with_context(|| format!("invalid value for header `{n}`"))?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shared = Arc::new(Shared {
        cfg,
        target,
        addr,
        headers,
        open: AtomicUsize::new(0),
    });
    let cpu_before = procfs::cpu_seconds("self").unwrap_or(0.0);
    let started = Instant::now();
    let stop = Arc::new(tokio::sync::Notify::new());
    let sampler_task = tokio::spawn(sampler(Arc::clone(&shared), started, Arc::clone(&stop)));

    let n = shared.cfg.connections.max(1);
    let ramp = shared.cfg.ramp_per_sec;
    let ramp_time = if ramp > 0.0 {
        Duration::from_secs_f64(n as f64 / ramp)
    } else {
        Duration::ZERO
    };
    let end_at =
        (!shared.cfg.duration.is_zero()).then(|| started + ramp_time + shared.cfg.duration);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let offset = if ramp > 0.0 {
            Duration::from_secs_f64(i as f64 / ramp)
        } else {
            Duration::ZERO
        };
        tasks.push(tokio::spawn(connection(
            Arc::clone(&shared),
            started + offset,
            end_at,
        )));
    }
    let mut rec = Recorder::default();
    for t in tasks {
        match t.await {
            Ok(r) => rec.merge(r),
            Err(e) => rec.errors.push(format!("connection task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    stop.notify_one();
    let sampled = sampler_task.await.unwrap_or_default();
    let cpu = procfs::cpu_seconds("self").unwrap_or(0.0) - cpu_before;

    let mut rss = serde_json::Map::new();
    for (i, g) in shared.cfg.sample.iter().enumerate() {
        rss.insert(
            g.label.clone(),
            json!({
                "peak_kb": sampled.rss_peak.get(i),
                "at_peak_open_kb": sampled.rss_at_peak_open.get(i),
                "hwm_kb": g.hwm_kb(),
            }),
        );
    }
    let mut error_samples: Vec<&String> = rec.errors.iter().take(5).collect();
    error_samples.dedup();
    let statuses: serde_json::Map<String, Value> = rec
        .statuses
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Ok(json!({
        "url": shared.cfg.url,
        "connections": n,
        "elapsed_s": elapsed.as_secs_f64(),
        "streams": rec.streams,
        "ok": rec.ok,
        "errors": rec.errors.len(),
        "error_samples": error_samples,
        "statuses": statuses,
        "events": rec.events,
        "ttfb_us": summary(&mut rec.ttfb),
        "total_us": summary(&mut rec.total),
        "gap_us": summary(&mut rec.gaps),
        "peak_open_streams": sampled.peak_open,
        "peak_open_at_s": sampled.peak_open_at_s,
        "rss": rss,
        "client_cpu_seconds": cpu,
    }))
}

/// One request on a fresh connection; returns the status and the whole body.
pub async fn one_shot(
    url: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> anyhow::Result<(u16, Bytes)> {
    let target = Target::parse(url)?;
    let mut sender = connect(target.resolve().await?).await?;
    let headers = headers
        .iter()
        .map(|(n, v)| {
            Ok((
                HeaderName::from_bytes(n.as_bytes())?,
                HeaderValue::from_str(v)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let req = build_request(&target, &headers, &Bytes::copy_from_slice(body))?;
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `GET url` on a fresh connection.
pub async fn get(url: &str) -> anyhow::Result<(u16, Bytes)> {
    let target = Target::parse(url)?;
    let mut sender = connect(target.resolve().await?).await?;
    let req = Request::get(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .body(Full::new(Bytes::new()))?;
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockConfig, spawn};

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/v1/chat/completions").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(Target::parse("http://h:1").unwrap().path, "/");
        assert!(Target::parse("https://h/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn sample_groups() {
        let g = SampleGroup::parse("nginx=10,11").unwrap();
        assert_eq!(g.label, "nginx");
        assert_eq!(g.pids, vec![10, 11]);
        assert!(SampleGroup::parse("nopids").is_err());
        assert!(SampleGroup::parse("x=a").is_err());
    }

    #[test]
    fn event_splitting_across_chunks() {
        let mut s = EventSplitter::default();
        assert_eq!(s.feed(b"data: a\n\ndata: b\n"), 1);
        assert_eq!(s.feed(b"\n"), 1);
        assert_eq!(s.feed(b"data: c\r\n\r\n"), 1);
        assert_eq!(s.feed(b"data: d\ndata: e\n"), 0);
        assert_eq!(s.feed(b"\ndata: [DONE]\n\n"), 2);
    }

    #[tokio::test]
    async fn measures_streams_against_the_mock() {
        let addr = spawn(MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            chunks: 4,
            chunk_delay: Duration::from_millis(10),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let report = run(StreamConfig {
            url: format!("http://{addr}/v1/chat/completions"),
            connections: 5,
            duration: Duration::ZERO,
            ramp_per_sec: 0.0,
            headers: vec![("x-mock-chunks".into(), "6".into())],
            body: Bytes::from_static(br#"{"model":"m","stream":true}"#),
            stream_timeout: Duration::from_secs(10),
            sample: vec![SampleGroup {
                label: "self".into(),
                pids: vec![std::process::id()],
            }],
            sample_interval: Duration::from_millis(5),
        })
        .await
        .unwrap();
        assert_eq!(report["streams"], 5);
        assert_eq!(report["ok"], 5);
        assert_eq!(report["errors"], 0);
        // 6 chunks, the last carrying [DONE]: 7 events in 6 arrivals, 5 gaps.
        assert_eq!(report["events"], 35);
        assert_eq!(report["gap_us"]["count"], 25);
        assert!(report["gap_us"]["p50"].as_u64().unwrap() >= 5_000);
        assert_eq!(report["ttfb_us"]["count"], 5);
        assert!(report["rss"]["self"]["peak_kb"].as_u64().unwrap() > 0);
    }

    #[tokio::test]
    async fn reports_connection_errors() {
        // A port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let report = run(StreamConfig {
            url: format!("http://{addr}/"),
            connections: 2,
            duration: Duration::ZERO,
            ramp_per_sec: 0.0,
            headers: vec![],
            body: Bytes::new(),
            stream_timeout: Duration::from_secs(5),
            sample: vec![],
            sample_interval: Duration::from_millis(50),
        })
        .await
        .unwrap();
        assert_eq!(report["errors"], 2);
        assert_eq!(report["ok"], 0);
    }
}
