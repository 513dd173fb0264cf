//! A same-protocol stream: bytes go to the client unchanged while the upstream decoder reads
//! usage, text and the merged answer on the side.
//!
//! With `strip_usage_chunk` on an OpenAI stream, output is re-framed per SSE event (the raw
//! bytes of each event, unchanged) so that exactly the usage-only chunk (`choices: []` with
//! `usage`) can be left out; its usage is still recorded.

use bytes::{Bytes, BytesMut};

use super::{Decode, Ev, Observer, decoder};
use crate::errors::{self, Kind};
use crate::sse::{Frame, SseDecoder};
use crate::{LlmError, Protocol, StreamOptions, StreamProcessor, Usage};

pub(crate) struct Passthrough {
    sse: SseDecoder,
    upstream: Box<dyn Decode>,
    protocol: Protocol,
    strip: bool,
    obs: Observer,
    evs: Vec<Ev>,
    pending: BytesMut,
    broken: Option<String>,
    terminated: bool,
}

impl Passthrough {
    pub fn new(protocol: Protocol, opts: StreamOptions) -> Self {
        let strip = opts.strip_usage_chunk && protocol == Protocol::OpenAi;
        let mut sse = SseDecoder::new(opts.max_event_bytes);
        if strip {
            sse = sse.with_capture();
        }
        Passthrough {
            sse,
            upstream: decoder(protocol),
            protocol,
            strip,
            obs: Observer::new(&opts),
            evs: Vec::new(),
            pending: BytesMut::new(),
            broken: None,
            terminated: false,
        }
    }

    /// Decode one frame; returns whether its raw bytes go to the client.
    fn frame(&mut self, f: &Frame) -> bool {
        let Some(ev) = &f.event else {
            return true;
        };
        self.evs.clear();
        // Same protocol: an event we cannot read is still the client's business; it is
        // forwarded, and only our side-reading skips it.
        if self.upstream.decode(ev, &mut self.evs).is_err() {
            return true;
        }
        for e in &self.evs {
            self.obs.observe(e);
        }
        !(self.strip && self.upstream.last_was_usage_only())
    }

    fn run(&mut self, chunk: Option<&[u8]>, out: &mut BytesMut) -> Result<(), LlmError> {
        let mut frames = Vec::new();
        let res = match chunk {
            Some(c) => self.sse.feed_frames(c, &mut |f| frames.push(f)),
            None => self.sse.finish_frames(&mut |f| frames.push(f)),
        };
        for f in frames {
            if self.frame(&f) && self.strip {
                out.extend_from_slice(&f.raw);
            }
        }
        res
    }

    fn fail(&mut self, e: LlmError) -> LlmError {
        self.broken = Some(e.to_string());
        e
    }
}

impl StreamProcessor for Passthrough {
    fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, LlmError> {
        if let Some(m) = &self.broken {
            return Err(LlmError::Stream(m.clone()));
        }
        let mut out = BytesMut::new();
        match self.run(Some(chunk), &mut out) {
            Ok(()) if self.strip => Ok(out.freeze()),
            Ok(()) => Ok(Bytes::copy_from_slice(chunk)),
            Err(e) => {
                self.pending.unsplit(out);
                Err(self.fail(e))
            }
        }
    }

    fn finish(&mut self) -> Result<Bytes, LlmError> {
        if let Some(m) = &self.broken {
            return Err(LlmError::Stream(m.clone()));
        }
        let mut out = BytesMut::new();
        match self.run(None, &mut out) {
            Ok(()) => Ok(out.freeze()),
            Err(e) => {
                self.pending.unsplit(out);
                Err(self.fail(e))
            }
        }
    }

    fn error_event(&mut self, message: &str) -> Bytes {
        let mut out = std::mem::take(&mut self.pending);
        if self.terminated {
            return out.freeze();
        }
        self.terminated = true;
        self.obs.errored = true;
        if !self.strip && !self.sse.at_boundary() {
            // The client already got part of an event: end it so the error is its own event.
            out.extend_from_slice(b"\n\n");
        }
        match self.upstream.next_sequence_number() {
            // The Responses error event continues the upstream's sequence numbers.
            Some(seq) if self.protocol == Protocol::Responses => {
                out.extend_from_slice(&errors::responses_error_event(Kind::Server, message, seq));
            }
            _ => out.extend_from_slice(&errors::stream_event(self.protocol, Kind::Server, message)),
        }
        out.freeze()
    }

    fn usage(&self) -> Option<Usage> {
        self.obs.usage
    }

    fn partial_usage(&self) -> Option<Usage> {
        self.obs.usage.or(self.obs.partial)
    }

    fn text_so_far(&self) -> &str {
        &self.obs.text
    }

    fn reported_cost(&self) -> Option<f64> {
        self.upstream.reported_cost()
    }

    fn estimated_output_tokens(&self) -> u64 {
        self.obs.estimated_output_tokens()
    }

    fn merged(&self) -> Option<serde_json::Value> {
        self.obs.merged(self.protocol)
    }

    fn passthrough_unchanged(&self) -> bool {
        !self.strip
    }

    fn observe(&mut self, chunk: &[u8]) -> Result<(), LlmError> {
        if self.strip {
            return self.feed(chunk).map(|_| ());
        }
        if let Some(m) = &self.broken {
            return Err(LlmError::Stream(m.clone()));
        }
        let mut sink = BytesMut::new();
        self.run(Some(chunk), &mut sink).map_err(|e| self.fail(e))
    }
}
