//! The codec on byte buffers: heads, framings, chunked bodies split anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn head(raw: &str, method: &Method) -> Result<Option<Head>, WireError> {
    let mut buf = BytesMut::from(raw);
    parse_head(&mut buf, method)
}

fn parsed(raw: &str) -> Head {
    head(raw, &Method::GET).unwrap().expect("complete head")
}

/// Decode all of `raw` fed in pieces of `step` bytes: the data, the trailers
/// and whether the body ended.
fn decode_all(
    decoder: &mut Decoder,
    raw: &[u8],
    step: usize,
) -> (Vec<u8>, Option<HeaderMap>, bool) {
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut trailers = None;
    let mut pieces = raw.chunks(step.max(1));
    loop {
        match decoder.decode(&mut buf).unwrap() {
            Decoded::Data(d) => data.extend_from_slice(&d),
            Decoded::Trailers(t) => trailers = Some(t),
            Decoded::End => return (data, trailers, true),
            Decoded::NeedMore => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return (data, trailers, false),
            },
        }
    }
}

#[test]
fn request_head_has_origin_form_headers_and_length() {
    let req = Request::post("/v1/chat?x=1")
        .header("host", "api.example")
        .header("content-length", "999")
        .header("transfer-encoding", "chunked")
        .header("x-a", "b")
        .body(())
        .unwrap();
    let head = String::from_utf8(encode_head(&req, 12)).unwrap();
    assert_eq!(
        head,
        "POST /v1/chat?x=1 HTTP/1.1\r\nhost: api.example\r\nx-a: b\r\ncontent-length: 12\r\n\r\n"
    );
    let get = Request::get("/models").body(()).unwrap();
    assert_eq!(
        String::from_utf8(encode_head(&get, 0)).unwrap(),
        "GET /models HTTP/1.1\r\n\r\n"
    );
    let empty_post = Request::post("/x").body(()).unwrap();
    assert!(
        String::from_utf8(encode_head(&empty_post, 0))
            .unwrap()
            .contains("content-length: 0\r\n")
    );
}

#[test]
fn answer_head_is_parsed_and_consumed() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Two: a\r\nx-two: b\r\nContent-Length: 5\r\n\r\nhello",
    );
    let h = parse_head(&mut buf, &Method::POST).unwrap().unwrap();
    assert_eq!(h.response.status(), StatusCode::CREATED);
    assert_eq!(h.response.headers()["content-type"], "text/plain");
    let twos: Vec<_> = h.response.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["a", "b"]);
    assert!(h.keep_alive);
    assert_eq!(h.body.exact_len(), Some(5));
    assert_eq!(&buf[..], b"hello", "the body stays in the buffer");
}

#[test]
fn partial_head_waits_and_a_huge_one_is_refused() {
    assert!(
        head("HTTP/1.1 200 OK\r\nContent-Le", &Method::GET)
            .unwrap()
            .is_none()
    );
    let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD));
    assert!(matches!(
        head(&huge, &Method::GET),
        Err(WireError::Protocol(_))
    ));
    assert!(matches!(
        head("HTTP/1.1 2x0 OK\r\n\r\n", &Method::GET),
        Err(WireError::Protocol(_))
    ));
    assert!(matches!(
        head("SSH-2.0-OpenSSH\r\n\r\n", &Method::GET),
        Err(WireError::Protocol(_))
    ));
}

#[test]
fn informational_answers_are_skipped() {
    let h = parsed(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    );
    assert_eq!(h.response.status(), StatusCode::OK);
    assert!(h.response.headers().get("link").is_none());
}

#[test]
fn framing_follows_rfc_9112() {
    // No body: HEAD, 204, 304, whatever the headers say.
    let h = head(
        "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
        &Method::HEAD,
    )
    .unwrap()
    .unwrap();
    assert!(h.body.is_done() && h.keep_alive);
    assert!(parsed("HTTP/1.1 204 No Content\r\n\r\n").body.is_done());
    assert!(
        parsed("HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n")
            .body
            .is_done()
    );
    // Chunked wins over a length, and the connection is not reused after it.
    let both = parsed("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
    assert!(matches!(both.body, Decoder::Chunked(_)));
    assert!(!both.keep_alive);
    // A transfer coding that does not end in chunked: read to the end.
    let gz = parsed("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
    assert!(matches!(gz.body, Decoder::Eof) && !gz.keep_alive);
    // Neither: read to the end, connection not reused.
    let eof = parsed("HTTP/1.1 200 OK\r\n\r\n");
    assert!(matches!(eof.body, Decoder::Eof) && !eof.keep_alive);
    // Repeated identical lengths are one length; different ones are refused.
    assert_eq!(
        parsed("HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\n\r\n")
            .body
            .exact_len(),
        Some(4)
    );
    for bad in ["4, 5", "-1", "+4", "0x10", "", "99999999999999999999"] {
        let raw = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
        assert!(head(&raw, &Method::GET).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn keep_alive_follows_version_and_connection() {
    assert!(
        !parsed("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").keep_alive
    );
    assert!(!parsed("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
    let kept = parsed("HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n");
    assert!(kept.keep_alive);
    assert_eq!(kept.response.version(), Version::HTTP_10);
}

#[test]
fn length_body_is_sliced_without_reading_past_it() {
    let mut d = Decoder::Length(5);
    let mut buf = BytesMut::from("helloHTTP/1.1");
    assert!(matches!(d.decode(&mut buf).unwrap(), Decoded::Data(b) if b == "hello"));
    assert!(matches!(d.decode(&mut buf).unwrap(), Decoded::End));
    assert_eq!(&buf[..], b"HTTP/1.1", "bytes after the body are not taken");
    let mut short = Decoder::Length(5);
    let (data, _, ended) = decode_all(&mut short, b"hel", 1);
    assert_eq!((data.as_slice(), ended), (&b"hel"[..], false));
    assert!(matches!(short.at_eof(), Err(WireError::Incomplete)));
    let mut eof = Decoder::Eof;
    let (data, _, ended) = decode_all(&mut eof, b"until the end", 4);
    assert_eq!((data.as_slice(), ended), (&b"until the end"[..], false));
    assert!(matches!(eof.at_eof(), Ok(Decoded::End)));
}

#[test]
fn chunked_body_decodes_split_at_every_byte() {
    let raw =
        b"5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-checksum: 42\r\n\r\n";
    for step in 1..=raw.len() {
        let mut d = Decoder::chunked();
        let (data, trailers, ended) = decode_all(&mut d, raw, step);
        assert!(ended, "step {step}");
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
        assert_eq!(trailers.unwrap()["x-checksum"], "42");
    }
    let mut plain = Decoder::chunked();
    let (data, trailers, ended) = decode_all(&mut plain, b"3\nabc\n0\n\n", 2);
    assert_eq!(
        (data.as_slice(), trailers.is_none(), ended),
        (&b"abc"[..], true, true)
    );
}

#[test]
fn chunked_body_stops_at_its_end() {
    let mut d = Decoder::chunked();
    let mut buf = BytesMut::from("2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK");
    assert!(matches!(d.decode(&mut buf).unwrap(), Decoded::Data(b) if b == "hi"));
    assert!(matches!(d.decode(&mut buf).unwrap(), Decoded::End));
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK");
    assert!(matches!(d.at_eof(), Ok(Decoded::End)));
}

#[test]
fn malformed_chunks_are_errors() {
    for raw in [
        &b"zz\r\n"[..],
        b"\r\n",
        b"5\r\nhelloXX",
        b"ffffffffffffffffff\r\n",
        b"5 garbage\r\nhello\r\n",
        b"0\r\nbad trailer line\r\n\r\n",
    ] {
        let mut d = Decoder::chunked();
        let mut buf = BytesMut::from(raw);
        let mut result = Ok(Decoded::NeedMore);
        for _ in 0..8 {
            result = d.decode(&mut buf);
            if !matches!(result, Ok(Decoded::Data(_))) {
                break;
            }
        }
        assert!(
            result.is_err(),
            "{:?} accepted: {result:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let mut long = Decoder::chunked();
    let mut buf = BytesMut::from(&[b'1'; MAX_CHUNK_LINE + 1][..]);
    assert!(long.decode(&mut buf).is_err());
    let mut cut = Decoder::chunked();
    let _ = decode_all(&mut cut, b"5\r\nhel", 3);
    assert!(matches!(cut.at_eof(), Err(WireError::Incomplete)));
}
