//! A translated stream: upstream decoder + client encoder, re-framed event by event.

use bytes::{Bytes, BytesMut};

use super::{Decode, Encode, Ev, Observer};
use crate::errors::{self, Kind};
use crate::sse::{SseDecoder, SseEvent};
use crate::{LlmError, Protocol, StreamOptions, StreamProcessor, Usage};

pub(crate) struct Translator {
    sse: SseDecoder,
    upstream: Box<dyn Decode>,
    encoder: Box<dyn Encode>,
    client: Protocol,
    obs: Observer,
    /// Output produced before a failure, handed out by `error_event`.
    pending: BytesMut,
    events: Vec<SseEvent>,
    evs: Vec<Ev>,
    terminated: bool,
    /// A call failed: later calls fail too, until `error_event`.
    broken: bool,
}

impl Translator {
    pub fn new(
        upstream: Box<dyn Decode>,
        encoder: Box<dyn Encode>,
        client: Protocol,
        opts: StreamOptions,
    ) -> Self {
        Translator {
            sse: SseDecoder::new(opts.max_event_bytes),
            upstream,
            encoder,
            client,
            obs: Observer::new(&opts),
            pending: BytesMut::new(),
            events: Vec::new(),
            evs: Vec::new(),
            terminated: false,
            broken: false,
        }
    }

    /// Decode and encode the SSE events collected in `self.events`.
    fn pump(&mut self, out: &mut BytesMut) -> Result<(), LlmError> {
        let events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for ev in &events {
            if self.terminated {
                break;
            }
            self.evs.clear();
            if let Err(e) = self.upstream.decode(ev, &mut self.evs) {
                result = Err(e);
                break;
            }
            for e in self.evs.drain(..) {
                self.obs.observe(&e);
                self.encoder.encode(&e, out);
                if matches!(e, Ev::Error { .. } | Ev::Done) {
                    self.terminated = true;
                    break;
                }
            }
        }
        self.events = events;
        self.events.clear();
        result
    }

    fn fail(&mut self, out: BytesMut, e: LlmError) -> Result<Bytes, LlmError> {
        self.pending.unsplit(out);
        self.broken = true;
        Err(e)
    }
}

impl StreamProcessor for Translator {
    fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, LlmError> {
        if self.broken {
            return Err(LlmError::Stream("stream already failed".into()));
        }
        if self.terminated {
            return Ok(Bytes::new());
        }
        let mut out = BytesMut::new();
        let decoded = self.sse.feed(chunk, &mut self.events);
        let pumped = self.pump(&mut out);
        match decoded.and(pumped) {
            Ok(()) => Ok(out.freeze()),
            Err(e) => self.fail(out, e),
        }
    }

    fn finish(&mut self) -> Result<Bytes, LlmError> {
        let mut out = BytesMut::new();
        if self.broken {
            return Err(LlmError::Stream("stream already failed".into()));
        }
        if self.terminated {
            return Ok(out.freeze());
        }
        let decoded = self.sse.finish(&mut self.events);
        if let Err(e) = decoded.and(self.pump(&mut out)) {
            return self.fail(out, e);
        }
        if !self.terminated {
            if !self.obs.finish_seen {
                return self.fail(
                    out,
                    LlmError::Stream("upstream stream ended before the answer was complete".into()),
                );
            }
            // Gemini has no end marker; others may omit it: close the client's stream.
            self.obs.observe(&Ev::Done);
            self.encoder.encode(&Ev::Done, &mut out);
            self.terminated = true;
        }
        Ok(out.freeze())
    }

    fn error_event(&mut self, message: &str) -> Bytes {
        let mut out = std::mem::take(&mut self.pending);
        if !self.terminated {
            self.terminated = true;
            self.obs.errored = true;
            if !self.encoder.encode_error(message, &mut out) {
                out.extend_from_slice(&errors::stream_event(self.client, Kind::Server, message));
            }
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
        self.obs.merged(self.client)
    }
}

/// For (upstream, client) pairs without a stream translation: every call fails.
pub(crate) struct Unsupported {
    msg: String,
    client: Protocol,
}

impl Unsupported {
    pub fn new(upstream: Protocol, client: Protocol) -> Self {
        Unsupported {
            msg: format!("no stream translation from {upstream:?} to {client:?}"),
            client,
        }
    }
}

impl StreamProcessor for Unsupported {
    fn feed(&mut self, _chunk: &[u8]) -> Result<Bytes, LlmError> {
        Err(LlmError::Unsupported(self.msg.clone()))
    }

    fn finish(&mut self) -> Result<Bytes, LlmError> {
        Err(LlmError::Unsupported(self.msg.clone()))
    }

    fn error_event(&mut self, message: &str) -> Bytes {
        errors::stream_event(self.client, Kind::Server, message)
    }

    fn usage(&self) -> Option<Usage> {
        None
    }

    fn text_so_far(&self) -> &str {
        ""
    }

    fn merged(&self) -> Option<serde_json::Value> {
        None
    }
}
