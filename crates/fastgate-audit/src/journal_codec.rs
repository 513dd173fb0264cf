//! The journal's binary record frame. The journal is written on the request path, so
//! its encoding is a flat copy of the fields (no escaping, no number or date formatting):
//! several times cheaper than the spill file's JSON lines.
//!
//! Frame: `MAGIC` (2 bytes), payload length (u32 LE), CRC-32 of the payload (u32 LE),
//! payload. Payload: a version byte, then the fields of [`AuditRecord`] in declaration
//! order — strings as u32 LE length + UTF-8 bytes, options as a 0/1 tag then the value,
//! integers and floats little-endian, the request time as seconds (i64) + nanoseconds
//! (u32). A reader that meets a frame whose checksum fails (torn by a power loss, or a
//! short write on a full disk) skips ahead to the next valid frame.

use chrono::{DateTime, Utc};

use crate::{AuditRecord, AuditRecordRef};

pub(crate) const MAGIC: [u8; 2] = [0xFA, 0x6A];
const VERSION: u8 = 1;
const HEADER: usize = 10;
/// Largest payload accepted when reading (a sanity bound against a damaged length).
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// Append the frame of `r` to `out`.
pub(crate) fn encode(r: &AuditRecordRef<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let body = out.len();
    out.push(VERSION);
    put_str(out, r.request_id);
    put_opt_str(out, r.client_request_id);
    put_opt_str(out, r.key_id);
    put_opt_str(out, r.key_name);
    put_opt_str(out, r.source);
    put_str(out, r.method);
    put_str(out, r.path);
    put_opt_str(out, r.query);
    put_opt_str(out, r.route);
    put_opt_str(out, r.upstream);
    put_opt_str(out, r.credential);
    put_opt_str(out, r.target_url);
    out.extend_from_slice(&r.status_code.to_le_bytes());
    out.extend_from_slice(&r.request_time.timestamp().to_le_bytes());
    out.extend_from_slice(&r.request_time.timestamp_subsec_nanos().to_le_bytes());
    put_opt_f64(out, r.ttfb_ms);
    out.extend_from_slice(&r.duration_ms.to_le_bytes());
    out.extend_from_slice(&r.request_bytes.to_le_bytes());
    out.extend_from_slice(&r.response_bytes.to_le_bytes());
    put_opt_str(out, r.user_agent);
    put_opt_str(out, r.client_ip);
    out.push(u8::from(r.is_stream));
    out.extend_from_slice(&r.stream_chunks.to_le_bytes());
    put_opt_str(out, r.model);
    put_opt_u64(out, r.tokens_in);
    put_opt_u64(out, r.tokens_out);
    out.push(u8::from(r.tokens_estimated));
    put_opt_f64(out, r.cost);
    put_opt_str(out, r.error_message);
    put_opt_str(out, r.request_headers);
    put_opt_str(out, r.response_headers);
    put_opt_str(out, r.request_body);
    put_opt_str(out, r.response_body);
    let payload = &out[body..];
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let sum = crate::spill::crc32(payload).to_le_bytes();
    let header = &mut out[start..body];
    header[..2].copy_from_slice(&MAGIC);
    header[2..6].copy_from_slice(&len);
    header[6..10].copy_from_slice(&sum);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    // A string over 4 GiB cannot occur (bodies are capped); its frame would not decode.
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn put_opt_f64(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

/// Reads the frames of a whole segment.
pub(crate) struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    /// Damaged regions skipped so far.
    pub(crate) corrupt: u64,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            corrupt: 0,
        }
    }

    /// The frame at `pos` if it is complete and its checksum and payload are valid.
    fn frame_at(&self, pos: usize) -> Option<(AuditRecord, usize)> {
        let header = self.data.get(pos..pos + HEADER)?;
        if header[..2] != MAGIC {
            return None;
        }
        let len = u32::from_le_bytes(header[2..6].try_into().ok()?) as usize;
        let sum = u32::from_le_bytes(header[6..10].try_into().ok()?);
        if len > MAX_PAYLOAD {
            return None;
        }
        let payload = self.data.get(pos + HEADER..pos + HEADER + len)?;
        if crate::spill::crc32(payload) != sum {
            return None;
        }
        Some((decode(payload)?.to_record(), HEADER + len))
    }
}

impl Iterator for Frames<'_> {
    type Item = AuditRecord;

    fn next(&mut self) -> Option<AuditRecord> {
        let mut damaged = false;
        while self.pos < self.data.len() {
            if let Some((record, size)) = self.frame_at(self.pos) {
                self.pos += size;
                if damaged {
                    self.corrupt += 1;
                }
                return Some(record);
            }
            // Not a valid frame here: a zero-filled tail is not damage (the file was
            // extended but never written), anything else is. Resynchronise on the next
            // magic number.
            if !damaged && self.data[self.pos..].iter().any(|&b| b != 0) {
                damaged = true;
            }
            self.pos += 1;
            match self.data[self.pos..].iter().position(|&b| b == MAGIC[0]) {
                Some(skip) => self.pos += skip,
                None => self.pos = self.data.len(),
            }
        }
        if damaged {
            self.corrupt += 1;
        }
        None
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.data.get(..n)?, self.data.get(n..)?);
        self.data = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.array()?))
    }

    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).ok()
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Some(None)
        }
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        self.opt(Self::string)
    }
}

/// The record in a frame's payload, borrowing its text.
fn decode(payload: &[u8]) -> Option<AuditRecordRef<'_>> {
    let mut r = Reader { data: payload };
    if r.u8()? != VERSION {
        return None;
    }
    let record = AuditRecordRef {
        request_id: r.string()?,
        client_request_id: r.opt_string()?,
        key_id: r.opt_string()?,
        key_name: r.opt_string()?,
        source: r.opt_string()?,
        method: r.string()?,
        path: r.string()?,
        query: r.opt_string()?,
        route: r.opt_string()?,
        upstream: r.opt_string()?,
        credential: r.opt_string()?,
        target_url: r.opt_string()?,
        status_code: u16::from_le_bytes(r.array()?),
        request_time: {
            let secs = i64::from_le_bytes(r.array()?);
            let nanos = u32::from_le_bytes(r.array()?);
            DateTime::<Utc>::from_timestamp(secs, nanos)?
        },
        ttfb_ms: r.opt(Reader::f64)?,
        duration_ms: r.f64()?,
        request_bytes: r.u64()?,
        response_bytes: r.u64()?,
        user_agent: r.opt_string()?,
        client_ip: r.opt_string()?,
        is_stream: r.bool()?,
        stream_chunks: r.u64()?,
        model: r.opt_string()?,
        tokens_in: r.opt(Reader::u64)?,
        tokens_out: r.opt(Reader::u64)?,
        tokens_estimated: r.bool()?,
        cost: r.opt(Reader::f64)?,
        error_message: r.opt_string()?,
        request_headers: r.opt_string()?,
        response_headers: r.opt_string()?,
        request_body: r.opt_string()?,
        response_body: r.opt_string()?,
    };
    r.data.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{every_field_set, sample_record};

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let records = [
            every_field_set("full"),
            sample_record("b"),
            sample_record("c"),
        ];
        for r in &records {
            encode(&r.view(), &mut buf);
        }
        let mut frames = Frames::new(&buf);
        let got: Vec<_> = frames.by_ref().collect();
        assert_eq!(got, records);
        assert_eq!(frames.corrupt, 0);
    }

    #[test]
    fn damage_is_skipped_and_the_rest_recovered() {
        let mut buf = Vec::new();
        for id in ["a", "b", "c"] {
            encode(&sample_record(id).view(), &mut buf);
        }
        let one = buf.len() / 3;
        // Flip a byte in the middle of "b" and tear "c".
        buf[one + one / 2] ^= 0xFF;
        let mut torn = buf.clone();
        torn.truncate(buf.len() - 5);
        let mut frames = Frames::new(&torn);
        let ids: Vec<_> = frames.by_ref().map(|r| r.request_id).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(frames.corrupt, 1);

        let mut frames = Frames::new(&buf);
        let ids: Vec<_> = frames.by_ref().map(|r| r.request_id).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(frames.corrupt, 1);

        // A zero-filled tail is not damage.
        let mut zeros = Vec::new();
        encode(&sample_record("z").view(), &mut zeros);
        zeros.extend_from_slice(&[0; 100]);
        let mut frames = Frames::new(&zeros);
        assert_eq!(frames.by_ref().count(), 1);
        assert_eq!(frames.corrupt, 0);
    }
}
