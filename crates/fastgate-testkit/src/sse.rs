//! A small test-side Server-Sent Events reader (WHATWG event-stream rules).
//!
//! [`parse_sse`] parses a whole body; [`SseParser`] is fed bytes as they arrive (any
//! split, including inside a UTF-8 sequence or a CRLF) and returns complete events.
//! An event is dispatched at a blank line; a trailing event without one is not returned
//! (use [`SseParser::finish`] to get it anyway, e.g. for truncated streams).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// All `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// True for OpenAI's terminator `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }

    /// The data parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// Parses a complete event-stream body.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    p.feed(text.as_bytes())
}

/// Incremental parser.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// The previous feed ended with `\r`; a leading `\n` belongs to it.
    skip_lf: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut bytes = bytes;
        if self.skip_lf && !bytes.is_empty() {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                let mut next = i + 1;
                if b == b'\r' {
                    if next < self.buf.len() {
                        if self.buf[next] == b'\n' {
                            next += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                if let Some(ev) = self.line(&line) {
                    out.push(ev);
                }
                start = next;
                i = next;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Ends the input: returns a last event that had no terminating blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            let _ = self.line(&line);
        }
        self.line("")
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = ": comment\nevent: delta\ndata: {\"a\":1}\n\ndata: x\ndata: y\r\n\r\ndata:[DONE]\r\rdata: tail";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: Some("delta".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: None,
                data: "x\ny".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn parses_whole_body() {
        let events = parse_sse(BODY);
        assert_eq!(events, expected());
        assert_eq!(events[0].json().unwrap()["a"], 1);
        assert!(events[2].is_done());
    }

    #[test]
    fn split_at_every_offset_gives_same_events() {
        let bytes = BODY.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new();
            let mut events = p.feed(&bytes[..cut]);
            events.extend(p.feed(&bytes[cut..]));
            assert_eq!(events, expected(), "cut at {cut}");
            assert_eq!(p.finish().unwrap().data, "tail");
        }
    }

    #[test]
    fn byte_by_byte_with_multibyte_utf8() {
        let text = "data: héllo ✓\n\n";
        let mut p = SseParser::new();
        let events: Vec<_> = text.as_bytes().iter().flat_map(|b| p.feed(&[*b])).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "héllo ✓");
    }

    #[test]
    fn empty_data_field_dispatches_but_no_data_does_not() {
        assert_eq!(parse_sse("event: x\n\n"), vec![]);
        assert_eq!(parse_sse("data\n\n")[0].data, "");
    }
}
