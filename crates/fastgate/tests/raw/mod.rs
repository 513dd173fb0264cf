//! Raw HTTP/1.1 over a socket, for request targets and headers a client library would
//! normalise or refuse (dot segments, absolute-form, a forged `Host`). Every read has
//! a deadline; no response within it is a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read to the end of the connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header block, as sent.
    pub head: String,
    /// Body, de-chunked when the response was chunked.
    pub body: String,
}

impl RawResponse {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }
}

/// Send `request_line` plus `headers` (each `Name: value`) and `body`, with
/// `Connection: close` and a `Content-Length` when there is a body.
pub async fn send(
    addr: SocketAddr,
    request_line: &str,
    headers: &[String],
    body: &str,
) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{request_line}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("{request_line}: no response within 10 s"))
        .unwrap();
    parse(request_line, &String::from_utf8_lossy(&out))
}

fn parse(what: &str, text: &str) -> RawResponse {
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{what}: not an HTTP response: {text:?}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: no end of headers: {text:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    RawResponse {
        status,
        head: head.to_owned(),
        body,
    }
}

/// The payload of a complete chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}
