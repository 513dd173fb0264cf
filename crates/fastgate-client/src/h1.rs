//! HTTP/1.1 on the wire, client side: the request head written, the answer's
//! head parsed (httparse) and its body framed (RFC 9112 §6.3). Pure functions
//! over byte buffers; the socket is [`crate::body`]'s.
//!
//! Why not hyper's client connection: it gives every connection a fixed 8 kB
//! head buffer and a request channel whose first block is about 9 kB, and an
//! open stream touches pages of both for as long as it lasts (about 12 kB of
//! the 40 kB a stream cost; docs/performance-profile.md). Here the head is
//! written from a buffer sized to it and freed at once, the read buffer starts
//! at 4 kB, and nothing else is kept per connection.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};

use crate::error::WireError;

/// Most headers an answer (or its trailers) may have, as hyper's default.
const MAX_HEADERS: usize = 100;
/// Largest answer head accepted; a longer one is refused, not buffered.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// The request head for `req` with a body of `body_len` bytes, in origin form
/// (the URI is already `/path?query`). Framing is always `Content-Length`: the
/// body is known in full, so any `Content-Length` or `Transfer-Encoding` the
/// request carries is replaced.
pub(crate) fn encode_head<B>(req: &Request<B>, body_len: usize) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let headers_len: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    let mut out = Vec::with_capacity(req.method().as_str().len() + target.len() + headers_len + 48);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || expects_body(req.method()) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body_len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Methods whose requests carry a body by definition: an empty one is still
/// announced (`Content-Length: 0`), as hyper and curl do.
fn expects_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::DELETE
            | Method::OPTIONS
            | Method::TRACE
            | Method::CONNECT
    )
}

/// Does the request itself ask to close the connection after the answer?
pub(crate) fn wants_close<B>(req: &Request<B>) -> bool {
    has_token(req.headers(), "close")
}

/// An answer's head, parsed.
pub(crate) struct Head {
    pub(crate) response: Response<()>,
    pub(crate) body: Decoder,
    /// May the connection carry another request after this answer's body?
    pub(crate) keep_alive: bool,
}

/// Parse an answer head at the start of `buf`, consuming it. `Ok(None)`: not
/// all of it is in yet. Informational answers (1xx, but 101) are skipped.
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, WireError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(WireError::Protocol("answer head too large"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(WireError::Protocol("too many headers in the answer"));
            }
            Err(_) => return Err(WireError::Protocol("malformed answer head")),
        };
        let code = parsed.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| WireError::Protocol("invalid status code"))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            buf.advance(len);
            continue;
        }
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // The head is copied out (a few hundred bytes) so that its header
        // values do not pin the read buffer, which the body goes on using.
        let base = buf.as_ptr() as usize;
        let head = Bytes::copy_from_slice(&buf[..len]);
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| WireError::Protocol("invalid header name"))?;
            let start = h.value.as_ptr() as usize - base;
            let value = HeaderValue::from_maybe_shared(head.slice(start..start + h.value.len()))
                .map_err(|_| WireError::Protocol("invalid header value"))?;
            headers.append(name, value);
        }
        buf.advance(len);
        let (body, mut keep_alive) = framing(status, method, &headers)?;
        keep_alive &= match version {
            Version::HTTP_10 => has_token(&headers, "keep-alive"),
            _ => !has_token(&headers, "close"),
        };
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(Head {
            response,
            body,
            keep_alive,
        }));
    }
}

/// How the answer's body is delimited, and whether that leaves the connection
/// usable (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Decoder, bool), WireError> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        // 101: the connection is the upstream's now; nothing more of HTTP on it.
        return Ok((
            Decoder::Length(0),
            status != StatusCode::SWITCHING_PROTOCOLS,
        ));
    }
    let mut te = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    if te.peek().is_some() {
        let last = te
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .last();
        // Both framings at once is how requests are smuggled: the connection
        // is not reused after such an answer.
        let reusable = !headers.contains_key(CONTENT_LENGTH);
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => (Decoder::chunked(), reusable),
            _ => (Decoder::Eof, false),
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = parse_length(part.trim_ascii())?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::Protocol("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Decoder::Length(n), true),
        None => (Decoder::Eof, false),
    })
}

fn parse_length(digits: &[u8]) -> Result<u64, WireError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(WireError::Protocol("invalid content-length"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Does a `Connection` header list `token`?
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Where the body decoder stands.
#[derive(Debug)]
pub(crate) enum Decoder {
    /// `Content-Length`: this many bytes left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Delimited by the connection's end.
    Eof,
    /// Read to its end.
    Done,
}

#[derive(Debug)]
pub(crate) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting its CRLF.
    DataEnd,
    /// After the last chunk: the trailer section.
    Trailers,
}

/// What the decoder made of the buffer.
#[derive(Debug)]
pub(crate) enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes must be read first.
    NeedMore,
}

impl Decoder {
    fn chunked() -> Self {
        Self::Chunked(Chunk::Size)
    }

    /// The body's exact remaining length, when it is known.
    pub(crate) fn exact_len(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Done => Some(0),
            _ => None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Self::Done | Self::Length(0))
    }

    /// Take what `buf` holds of the body: data as it comes (a slice of `buf`,
    /// no copy), never waiting for a chunk to be complete.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match self {
                Self::Done => return Ok(Decoded::End),
                Self::Length(0) => {
                    *self = Self::Done;
                    return Ok(Decoded::End);
                }
                Self::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = take_len(*left, buf.len());
                    *left -= n as u64;
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Self::Eof => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                Self::Chunked(state) => match decode_chunked(state, buf)? {
                    Some(Decoded::End) => *self = Self::Done,
                    Some(trailers @ Decoded::Trailers(_)) => {
                        // The trailers close the body.
                        *self = Self::Done;
                        return Ok(trailers);
                    }
                    Some(decoded) => return Ok(decoded),
                    None => {}
                },
            }
        }
    }

    /// The connection ended: the end of an `Eof` body, an error for the others.
    pub(crate) fn at_eof(&mut self) -> Result<Decoded, WireError> {
        match self {
            Self::Eof | Self::Done => {
                *self = Self::Done;
                Ok(Decoded::End)
            }
            _ => Err(WireError::Incomplete),
        }
    }
}

/// How much of `available` bytes a body with `left` bytes to go takes.
fn take_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// One step of chunked decoding. `None`: the state moved on, go again.
fn decode_chunked(state: &mut Chunk, buf: &mut BytesMut) -> Result<Option<Decoded>, WireError> {
    match state {
        Chunk::Size => {
            let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                if buf.len() > MAX_CHUNK_LINE {
                    return Err(WireError::Protocol("chunk-size line too long"));
                }
                return Ok(Some(Decoded::NeedMore));
            };
            let size = parse_chunk_size(&buf[..end])?;
            buf.advance(end + 1);
            *state = if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            };
            Ok(None)
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Some(Decoded::NeedMore));
            }
            let n = take_len(*left, buf.len());
            *left -= n as u64;
            let data = buf.split_to(n).freeze();
            if *left == 0 {
                *state = Chunk::DataEnd;
            }
            Ok(Some(Decoded::Data(data)))
        }
        Chunk::DataEnd => match buf.first() {
            None => Ok(Some(Decoded::NeedMore)),
            Some(b'\n') => {
                buf.advance(1);
                *state = Chunk::Size;
                Ok(None)
            }
            Some(b'\r') => match buf.get(1) {
                None => Ok(Some(Decoded::NeedMore)),
                Some(b'\n') => {
                    buf.advance(2);
                    *state = Chunk::Size;
                    Ok(None)
                }
                Some(_) => Err(WireError::Protocol("chunk data longer than its size")),
            },
            Some(_) => Err(WireError::Protocol("chunk data longer than its size")),
        },
        Chunk::Trailers => decode_trailers(buf),
    }
}

/// The trailer section after the last chunk: `End` when it is empty, else
/// the trailers (the decoder then ends).
fn decode_trailers(buf: &mut BytesMut) -> Result<Option<Decoded>, WireError> {
    if buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
        buf.advance(if buf[0] == b'\r' { 2 } else { 1 });
        return Ok(Some(Decoded::End));
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, fields))) => {
            let mut trailers = HeaderMap::with_capacity(fields.len());
            for f in fields {
                let name = HeaderName::from_bytes(f.name.as_bytes())
                    .map_err(|_| WireError::Protocol("invalid trailer name"))?;
                let value = HeaderValue::from_bytes(f.value)
                    .map_err(|_| WireError::Protocol("invalid trailer value"))?;
                trailers.append(name, value);
            }
            buf.advance(len);
            Ok(Some(Decoded::Trailers(trailers)))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
            Err(WireError::Protocol("trailer section too large"))
        }
        Ok(httparse::Status::Partial) => Ok(Some(Decoded::NeedMore)),
        Err(_) => Err(WireError::Protocol("malformed trailers")),
    }
}

/// `1a;ext=v\r` → 26: hex digits, then optional whitespace and extensions.
fn parse_chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    // Whitespace may come before the extensions, nothing else.
    let rest = line[digits..].trim_ascii_start();
    if digits == 0 || digits > 15 || !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(WireError::Protocol("invalid chunk size"));
    }
    let mut size = 0u64;
    for b in &line[..digits] {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = size * 16 + u64::from(d);
    }
    Ok(size)
}

#[cfg(test)]
mod tests;
