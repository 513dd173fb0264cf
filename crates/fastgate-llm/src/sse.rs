//! Incremental, bounded Server-Sent Events codec.
//!
//! The decoder follows the WHATWG `text/event-stream` parsing rules:
//! lines end with CRLF, LF or CR; a line starting with `:` is a comment; `field: value`
//! (one optional space after the colon); `data` lines are joined with `\n`; an empty line
//! dispatches the event; an event without any `data` line is not dispatched; a leading
//! UTF-8 BOM is skipped; `id` and `retry` are accepted and ignored (no LLM provider uses them).
//!
//! Properties the rest of the crate relies on (and that are property-tested):
//! - **Split-invariant**: feeding a byte stream in any number of chunks split at any offsets
//!   yields exactly the same events (and the same error, at the same place) as feeding it whole.
//! - **Bounded**: the bytes of one event (from the end of the previous event to its blank line,
//!   comments included) may not exceed `max_event_bytes`; the first byte over the bound makes
//!   [`SseDecoder::feed`] fail with [`LlmError::EventTooLarge`]. After an error the decoder
//!   stays failed (every later call returns the same error).
//! - **Bad UTF-8** is replaced by U+FFFD, line by line (deterministic, never an error): a
//!   gateway must not kill a stream because one byte is wrong, and JSON parsing of the data
//!   decides afterwards.
//! - At end of input, [`SseDecoder::finish`] dispatches a last event that has data but no
//!   terminating blank line (lenient: some upstreams omit it); a partial line is completed.

use bytes::{BufMut, Bytes, BytesMut};

use crate::LlmError;

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The joined `data:` lines (without the final newline).
    pub data: String,
}

/// One unit produced by [`SseDecoder::feed_frames`]: the bytes up to and including a blank
/// line (or the final bytes at `finish`), and the event they dispatched, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: Option<SseEvent>,
    pub raw: Vec<u8>,
}

/// Incremental SSE decoder with a bound on the size of one event.
#[derive(Debug)]
pub struct SseDecoder {
    max_event_bytes: usize,
    /// Partial line (bytes after the last line terminator).
    line: Vec<u8>,
    /// Previous byte was a CR: a following LF belongs to the same terminator.
    pending_cr: bool,
    /// Still at the very start of the stream (BOM check pending).
    at_start: bool,
    /// Bytes consumed for the current event so far (complete lines only).
    event_bytes: usize,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// Raw bytes of the current frame (only when capturing).
    capture: bool,
    raw: Vec<u8>,
    failed: Option<usize>,
    /// Everything consumed so far ended with a blank line (or nothing was consumed).
    boundary: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    /// A decoder refusing events larger than `max_event_bytes` (minimum 16).
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes: max_event_bytes.max(16),
            line: Vec::new(),
            pending_cr: false,
            at_start: true,
            event_bytes: 0,
            data: String::new(),
            has_data: false,
            event: None,
            capture: false,
            raw: Vec::new(),
            failed: None,
            boundary: true,
        }
    }

    /// Also keep the raw bytes of each frame (used to re-emit events unchanged).
    pub(crate) fn with_capture(mut self) -> Self {
        self.capture = true;
        self
    }

    /// Feed a chunk; complete events are appended to `out`. On error, the events completed
    /// before the offending byte are still in `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.run(chunk, &mut |f: Frame| {
            if let Some(e) = f.event {
                out.push(e);
            }
        })
    }

    /// End of input: flush a trailing event that lacked its blank line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.finish_frames(&mut |f: Frame| {
            if let Some(e) = f.event {
                out.push(e);
            }
        })
    }

    pub(crate) fn feed_frames(
        &mut self,
        chunk: &[u8],
        sink: &mut dyn FnMut(Frame),
    ) -> Result<(), LlmError> {
        self.run(chunk, sink)
    }

    pub(crate) fn finish_frames(&mut self, sink: &mut dyn FnMut(Frame)) -> Result<(), LlmError> {
        self.check_failed()?;
        if self.at_start && !self.line.is_empty() && BOM.starts_with(&self.line) {
            // Only a (partial) BOM was ever received.
            self.line.clear();
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.event_bytes += line.len();
            self.process_line(&line, sink);
        }
        let event = self.take_event();
        let raw = std::mem::take(&mut self.raw);
        if event.is_some() || !raw.is_empty() {
            sink(Frame { event, raw });
        }
        self.event_bytes = 0;
        Ok(())
    }

    /// True when the bytes consumed so far end at an event boundary (a blank line).
    pub fn at_boundary(&self) -> bool {
        self.boundary && self.line.is_empty()
    }

    fn check_failed(&self) -> Result<(), LlmError> {
        match self.failed {
            Some(limit) => Err(LlmError::EventTooLarge { limit }),
            None => Ok(()),
        }
    }

    fn fail(&mut self) -> LlmError {
        self.failed = Some(self.max_event_bytes);
        self.line.clear();
        self.raw.clear();
        self.data.clear();
        LlmError::EventTooLarge {
            limit: self.max_event_bytes,
        }
    }

    fn run(&mut self, mut chunk: &[u8], sink: &mut dyn FnMut(Frame)) -> Result<(), LlmError> {
        self.check_failed()?;
        if self.at_start {
            chunk = self.skip_bom(chunk);
            if self.at_start {
                return Ok(());
            }
        }
        while !chunk.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                if chunk[0] == b'\n' {
                    if self.capture {
                        self.raw.push(b'\n');
                    }
                    self.event_bytes += 1;
                    chunk = &chunk[1..];
                    self.check_bound(0)?;
                    continue;
                }
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.boundary = false;
                    self.check_bound(self.line.len() + chunk.len())?;
                    self.line.extend_from_slice(chunk);
                    if self.capture {
                        self.raw.extend_from_slice(chunk);
                    }
                    return Ok(());
                }
                Some(pos) => {
                    let term = chunk[pos];
                    let consumed = pos + 1;
                    self.check_bound(self.line.len() + consumed)?;
                    if self.capture {
                        self.raw.extend_from_slice(&chunk[..consumed]);
                    }
                    self.event_bytes += self.line.len() + consumed;
                    if term == b'\r' {
                        self.pending_cr = true;
                    }
                    if self.line.is_empty() {
                        self.process_line(&chunk[..pos], sink);
                    } else {
                        self.line.extend_from_slice(&chunk[..pos]);
                        let line = std::mem::take(&mut self.line);
                        self.process_line(&line, sink);
                        self.line = line;
                        self.line.clear();
                    }
                    chunk = &chunk[consumed..];
                }
            }
        }
        Ok(())
    }

    /// Returns the rest of `chunk` after a leading BOM; keeps `at_start` while undecided.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        // `line` holds the BOM prefix seen so far while at_start.
        let have = self.line.len();
        let need = BOM.len() - have;
        let take = need.min(chunk.len());
        if BOM[have..have + take] == chunk[..take] {
            if take == need {
                self.line.clear();
                self.at_start = false;
                return &chunk[take..];
            }
            self.line.extend_from_slice(&chunk[..take]);
            return &chunk[take..];
        }
        // Not a BOM: whatever prefix we held is ordinary line content.
        self.at_start = false;
        if self.capture {
            self.raw.extend_from_slice(&self.line);
        }
        chunk
    }

    fn check_bound(&mut self, extra: usize) -> Result<(), LlmError> {
        if self.event_bytes + extra > self.max_event_bytes {
            return Err(self.fail());
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], sink: &mut dyn FnMut(Frame)) {
        self.boundary = line.is_empty();
        if line.is_empty() {
            let event = self.take_event();
            let raw = std::mem::take(&mut self.raw);
            self.event_bytes = 0;
            sink(Frame { event, raw });
            return;
        }
        if line[0] == b':' {
            return; // comment (keep-alive); its bytes still count toward the bound
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                self.data.push_str(&String::from_utf8_lossy(value));
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry, unknown fields: ignored
        }
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

/// Encode one event: optional `event:` line, one `data:` line per line of `data`, blank line.
pub fn encode(event: Option<&str>, data: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 16 + event.map_or(0, |e| e.len() + 8));
    encode_into(&mut b, event, data);
    b.freeze()
}

/// Append one encoded event to `buf`.
pub fn encode_into(buf: &mut BytesMut, event: Option<&str>, data: &str) {
    if let Some(e) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(single_line(e).as_bytes());
        buf.put_u8(b'\n');
    }
    for line in split_lines(data) {
        buf.put_slice(b"data: ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
}

fn single_line(s: &str) -> &str {
    s.split(['\r', '\n']).next().unwrap_or("")
}

/// Split like the decoder does (CRLF, LF, CR), so encode/decode round-trips.
fn split_lines(data: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        match rest.find(['\r', '\n']) {
            None => {
                out.push(rest);
                return out;
            }
            Some(i) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
}
