//! The client against an in-process HTTP/1.1 upstream (plain and TLS) that
//! counts its connections and records what it receives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

const CA: &[u8] = include_bytes!("../testdata/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("../testdata/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../testdata/server.key");

/// A streamed answer body: each chunk is sent by the test, the end is the
/// sender dropped.
struct ChunkBody(mpsc::Receiver<Bytes>);

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// `Host` header and request target of each request, in order.
    requests: Mutex<Vec<(String, String)>>,
    /// Senders of the `/stream` answers' chunks, in order.
    streams: Mutex<Vec<mpsc::Sender<Bytes>>>,
}

impl Seen {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

type Answer = Response<BoxBody<Bytes, Infallible>>;

fn full(status: StatusCode, body: &'static str) -> Answer {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *resp.status_mut() = status;
    resp
}

/// `/hello`: `hi`; `/empty`: 204; `/close`: `bye` with `Connection: close`;
/// `/stream`: chunked, each chunk sent by the test.
fn answer(req: &Request<Incoming>, seen: &Seen) -> Answer {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.requests
        .lock()
        .unwrap()
        .push((host, req.uri().to_string()));
    match req.uri().path() {
        "/hello" => full(StatusCode::OK, "hi"),
        "/empty" => full(StatusCode::NO_CONTENT, ""),
        "/close" => {
            let mut resp = full(StatusCode::OK, "bye");
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            resp
        }
        "/stream" => {
            let (tx, rx) = mpsc::channel(4);
            seen.streams.lock().unwrap().push(tx);
            Response::new(ChunkBody(rx).boxed())
        }
        _ => full(StatusCode::NOT_FOUND, "no"),
    }
}

/// Start the upstream on a loopback port; `tls` serves the test certificate.
async fn upstream(tls: bool) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let acceptor = tls.then(|| {
        let certs = vec![CertificateDer::from_pem_slice(SERVER_CERT).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let seen = Arc::clone(&shared);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = answer(&req, &seen);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn settings(max_idle: usize, idle_timeout: Duration) -> ClientSettings {
    ClientSettings {
        connect_timeout: WAIT,
        max_idle_per_host: max_idle,
        idle_timeout,
    }
}

fn plain_client() -> UpstreamClient {
    UpstreamClient::new(settings(8, Duration::from_secs(60))).unwrap()
}

fn get(url: &str) -> Request<RequestBody> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

async fn send(client: &UpstreamClient, url: &str) -> Response<ResponseBody> {
    tokio::time::timeout(WAIT, client.send(get(url)))
        .await
        .expect("no answer in time")
        .expect("request failed")
}

async fn text(resp: Response<ResponseBody>) -> String {
    let body = tokio::time::timeout(WAIT, resp.into_body().collect())
        .await
        .expect("body not read in time")
        .unwrap()
        .to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// A `/stream` answer's body, and the sender of its chunks.
async fn open_stream(
    client: &UpstreamClient,
    addr: SocketAddr,
    seen: &Seen,
) -> (ResponseBody, mpsc::Sender<Bytes>) {
    let body = send(client, &format!("http://{addr}/stream"))
        .await
        .into_body();
    let tx = seen.streams.lock().unwrap().last().unwrap().clone();
    (body, tx)
}

/// Send `chunk` upstream and read it from `body` (bounded by [`WAIT`]).
async fn relay(tx: &mpsc::Sender<Bytes>, body: &mut ResponseBody, chunk: &'static str) {
    tx.send(Bytes::from_static(chunk.as_bytes())).await.unwrap();
    let frame = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("chunk not relayed")
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), chunk);
}

/// The text of a GET of `url`.
async fn fetch(client: &UpstreamClient, url: &str) -> String {
    text(send(client, url).await).await
}

/// An upstream that, on each connection, reads one request head, writes
/// `parts` one by one and closes the connection: with a reset (`SO_LINGER` 0)
/// when `reset`. Returns its address and its count of connections.
async fn raw_upstream(
    parts: &'static [&'static str],
    reset: bool,
) -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                for part in parts {
                    let _ = tcp.write_all(part.as_bytes()).await;
                }
                if reset {
                    let _ = tcp.set_zero_linger();
                }
            });
        }
    });
    (addr, accepted)
}

/// Poll `cond` until it holds (bounded by [`WAIT`]).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn reuses_one_connection_and_sends_origin_form_with_host() {
    let (addr, seen) = upstream(false).await;
    let client = plain_client();
    for i in 0..3 {
        let resp = send(&client, &format!("http://{addr}/hello?n={i}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, "hi");
        assert_eq!(client.idle_connections(), 1);
    }
    assert_eq!(seen.connections(), 1);
    let requests = seen.requests.lock().unwrap().clone();
    let want: Vec<(String, String)> = (0..3)
        .map(|i| (addr.to_string(), format!("/hello?n={i}")))
        .collect();
    assert_eq!(requests, want);
}

#[tokio::test]
async fn a_host_header_of_the_request_is_kept_and_default_ports_are_left_out() {
    let (addr, seen) = upstream(false).await;
    let client = plain_client();
    let mut req = get(&format!("http://{addr}/hello"));
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_static("api.example"),
    );
    let resp = tokio::time::timeout(WAIT, client.send(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(resp).await, "hi");
    assert_eq!(seen.requests.lock().unwrap()[0].0, "api.example");

    let mut req = get("http://example.invalid:80/x");
    let uri = req.uri().clone();
    let key = host_key(&uri).unwrap();
    to_origin_form(&mut req, key.host_header(), &uri).unwrap();
    assert_eq!(req.headers()[http::header::HOST], "example.invalid");
    assert_eq!(req.uri().to_string(), "/x");
}

#[tokio::test]
async fn a_stream_arrives_chunk_by_chunk_and_then_the_connection_is_reused() {
    let (addr, seen) = upstream(false).await;
    let client = plain_client();
    let (mut body, tx) = open_stream(&client, addr, &seen).await;
    for chunk in ["one", "two", "three"] {
        // The chunk comes before the next is even sent: nothing is buffered.
        relay(&tx, &mut body, chunk).await;
    }
    assert_eq!(client.idle_connections(), 0, "in use while streaming");
    drop(tx);
    seen.streams.lock().unwrap().clear();
    let end = tokio::time::timeout(WAIT, body.frame()).await.unwrap();
    assert!(end.is_none(), "the stream ends when the upstream ends it");
    drop(body);
    assert_eq!(client.idle_connections(), 1);
    assert_eq!(fetch(&client, &format!("http://{addr}/hello")).await, "hi");
    assert_eq!(seen.connections(), 1);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_the_connection() {
    let (addr, seen) = upstream(false).await;
    let client = plain_client();
    let (mut body, tx) = open_stream(&client, addr, &seen).await;
    relay(&tx, &mut body, "part").await;
    drop(body);
    assert_eq!(client.idle_connections(), 0);
    // The upstream sees its answer's reader go away.
    eventually("upstream notices the close", || tx.is_closed()).await;
    assert_eq!(fetch(&client, &format!("http://{addr}/hello")).await, "hi");
    assert_eq!(seen.connections(), 2);
}

#[tokio::test]
async fn empty_answers_free_the_connection_and_connection_close_is_honoured() {
    let (addr, seen) = upstream(false).await;
    let client = plain_client();
    let resp = send(&client, &format!("http://{addr}/empty")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Never polled (a server skips bodies that say they are at their end).
    assert!(resp.body().is_end_stream());
    drop(resp);
    assert_eq!(client.idle_connections(), 1);

    let resp = send(&client, &format!("http://{addr}/close")).await;
    assert_eq!(text(resp).await, "bye");
    assert_eq!(
        client.idle_connections(),
        0,
        "Connection: close is not pooled"
    );
    assert_eq!(fetch(&client, &format!("http://{addr}/hello")).await, "hi");
    assert_eq!(seen.connections(), 2);
}

#[tokio::test]
async fn idle_connections_are_capped_and_expire() {
    let (addr, seen) = upstream(false).await;
    let client = UpstreamClient::new(settings(1, Duration::from_millis(300))).unwrap();
    // Two answers in flight at once: two connections.
    let a = send(&client, &format!("http://{addr}/hello")).await;
    let b = send(&client, &format!("http://{addr}/hello")).await;
    assert_eq!(seen.connections(), 2);
    assert_eq!(text(a).await, "hi");
    assert_eq!(text(b).await, "hi");
    assert_eq!(client.idle_connections(), 1, "max_idle_per_host is 1");
    eventually("the idle connection expires", || {
        client.idle_connections() == 0
    })
    .await;
    assert_eq!(fetch(&client, &format!("http://{addr}/hello")).await, "hi");
    assert_eq!(seen.connections(), 3);
}

#[tokio::test]
async fn no_idle_connection_is_kept_when_the_pool_size_is_zero() {
    let (addr, seen) = upstream(false).await;
    let client = UpstreamClient::new(settings(0, Duration::from_secs(60))).unwrap();
    for _ in 0..2 {
        assert_eq!(fetch(&client, &format!("http://{addr}/hello")).await, "hi");
        assert_eq!(client.idle_connections(), 0);
    }
    assert_eq!(seen.connections(), 2);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    // An upstream that answers once per connection, then closes it without a word.
    let (addr, accepted) =
        raw_upstream(&["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], false).await;
    let client = UpstreamClient::new(settings(8, Duration::from_millis(200))).unwrap();
    assert_eq!(fetch(&client, &format!("http://{addr}/a")).await, "ok");
    // The sweeper (or the next checkout) sees the close and drops it.
    eventually("the closed connection leaves the pool", || {
        client.idle_connections() == 0
    })
    .await;
    assert_eq!(fetch(&client, &format!("http://{addr}/b")).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_dead_port_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = plain_client();
    let err = tokio::time::timeout(
        WAIT,
        client.send(get(&format!("http://127.0.0.1:{port}/x"))),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    let err = tokio::time::timeout(WAIT, client.send(get("ftp://127.0.0.1/x")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidUri(_)), "{err}");
    assert!(!err.is_connect());
}

#[tokio::test]
async fn https_is_verified_and_reuses_its_connection() {
    let (addr, seen) = upstream(true).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA).unwrap())
        .unwrap();
    let client = UpstreamClient::with_roots(settings(8, Duration::from_secs(60)), roots).unwrap();
    for _ in 0..2 {
        let resp = send(&client, &format!("https://127.0.0.1:{}/hello", addr.port())).await;
        assert_eq!(text(resp).await, "hi");
    }
    assert_eq!(seen.connections(), 1);

    // The public roots do not know the test CA: the handshake is refused.
    let err = tokio::time::timeout(
        WAIT,
        plain_client().send(get(&format!("https://127.0.0.1:{}/hello", addr.port()))),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
}

#[tokio::test]
async fn chunks_sent_just_before_a_reset_come_before_the_error() {
    // An upstream that writes a head and three chunks, then resets.
    let (addr, _) = raw_upstream(
        &[
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            "1\r\na\r\n",
            "1\r\nb\r\n",
            "1\r\nc\r\n",
        ],
        true,
    )
    .await;
    let client = plain_client();
    let mut body = send(&client, &format!("http://{addr}/s")).await.into_body();
    let mut got = String::new();
    let error = loop {
        // Poll by hand: the error must follow a pending poll (a server flushes
        // what it holds then), never come straight after the last chunk.
        let mut pending_before = false;
        let frame = tokio::time::timeout(
            WAIT,
            std::future::poll_fn(|cx| {
                let poll = Pin::new(&mut body).poll_frame(cx);
                if poll.is_pending() {
                    pending_before = true;
                }
                poll
            }),
        )
        .await
        .expect("body stalled");
        match frame {
            Some(Ok(f)) => got.push_str(std::str::from_utf8(&f.into_data().unwrap()).unwrap()),
            Some(Err(e)) => {
                assert!(
                    pending_before,
                    "the error came without a pending poll first"
                );
                break e;
            }
            None => panic!("a reset stream looked complete: {got:?}"),
        }
    };
    assert_eq!(got, "abc");
    assert!(error.to_string().contains("body"), "{error}");
    drop(body);
    assert_eq!(client.idle_connections(), 0);
}

#[tokio::test]
async fn an_answer_sent_before_the_body_was_taken_is_returned() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that reads the head only, refuses with 413 and stops
    // reading, holding the connection open: the client's write blocks.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before its head");
            got.extend_from_slice(&buf[..n]);
        }
        tcp.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntoo big")
            .await
            .unwrap();
        let _ = held.await;
    });
    let client = plain_client();
    // Far more than the socket buffers hold while nobody reads.
    let body = Bytes::from(vec![b'x'; 32 * 1024 * 1024]);
    let req = Request::post(format!("http://{addr}/upload"))
        .body(Full::new(body))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, client.send(req))
        .await
        .expect("the early answer was not taken")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(text(resp).await, "too big");
    assert_eq!(
        client.idle_connections(),
        0,
        "a half-sent connection was pooled"
    );
    let _ = release.send(());
}
