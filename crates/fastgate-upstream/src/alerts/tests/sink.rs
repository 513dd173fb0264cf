//! The local sink: a hyper server on 127.0.0.1:0 that records what it receives and
//! answers from a script.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Longest any wait in these tests may take before it counts as a failure.
pub(super) const DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub(super) method: String,
    /// Path and query as received.
    pub(super) target: String,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

impl Recorded {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(super) fn query(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://h{}", self.target)).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A local HTTP server answering the n-th request with `replies[n]` (the last reply
/// repeats). When gated, it records a request, then waits for a permit to answer.
pub(super) struct Sink {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Receiver<usize>,
    gate: Option<Arc<Semaphore>>,
}

impl Sink {
    pub(super) async fn start(replies: &[(u16, &'static str)]) -> Self {
        Self::start_with(replies, false).await
    }

    pub(super) async fn start_with(replies: &[(u16, &'static str)], gated: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0usize);
        let count_tx = Arc::new(count_tx);
        let gate = gated.then(|| Arc::new(Semaphore::new(0)));
        let replies: Arc<Vec<(u16, &'static str)>> = Arc::new(replies.to_vec());
        let (recorded, server_gate) = (Arc::clone(&requests), gate.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (recorded, gate) = (Arc::clone(&recorded), server_gate.clone());
                let (count_tx, replies) = (Arc::clone(&count_tx), Arc::clone(&replies));
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (recorded, gate) = (Arc::clone(&recorded), gate.clone());
                    let (count_tx, replies) = (Arc::clone(&count_tx), Arc::clone(&replies));
                    async move {
                        let method = req.method().to_string();
                        let target = req
                            .uri()
                            .path_and_query()
                            .map_or_else(String::new, ToString::to_string);
                        let content_type = req
                            .headers()
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                        let index = {
                            let mut all = recorded.lock().unwrap();
                            all.push(Recorded {
                                method,
                                target,
                                content_type,
                                body,
                            });
                            all.len() - 1
                        };
                        count_tx.send_modify(|n| *n += 1);
                        if let Some(gate) = gate {
                            gate.acquire().await.unwrap().forget();
                        }
                        let (status, body) = replies[index.min(replies.len() - 1)];
                        let response = hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            addr,
            requests,
            count,
            gate,
        }
    }

    pub(super) fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub(super) async fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        let mut count = self.count.clone();
        tokio::time::timeout(DEADLINE, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("expected {n} requests, got {:?}", self.requests()))
            .unwrap();
        self.requests()
    }

    pub(super) fn release(&self, answers: usize) {
        self.gate.as_ref().unwrap().add_permits(answers);
    }
}
