//! Streaming: upstream SSE -> protocol-neutral events -> client SSE, event by event.
//!
//! Each upstream protocol has a decoder (`decode_*`: one SSE event -> [`Ev`]s) and each
//! client protocol an encoder (`encode_*`: [`Ev`] -> SSE bytes). A translated stream is one
//! decoder joined to one encoder ([`translate::Translator`]); a same-protocol stream is
//! forwarded unchanged while its decoder reads usage and merges the answer
//! ([`passthrough::Passthrough`]). Nothing is held back beyond the current SSE event, except
//! the closing events that need the usage (sent when the upstream ends).

mod decode_anthropic;
mod decode_gemini;
mod decode_openai;
mod decode_responses;
mod encode_anthropic;
mod encode_gemini;
mod encode_openai;
mod encode_responses;
pub(crate) mod merge;
mod passthrough;
mod translate;

use bytes::BytesMut;

use crate::convert::Finish;
use crate::errors::Kind;
use crate::sse::SseEvent;
use crate::{LlmError, Protocol, StreamOptions, StreamProcessor, Usage};

/// Protocol-neutral stream event. Tool indices are tool-call ordinals (0, 1, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    Text(String),
    Thinking(String),
    Signature(String),
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        args: String,
    },
    Finish(Finish),
    /// `complete`: the upstream's final figure (not a running/partial one).
    Usage {
        usage: Usage,
        complete: bool,
    },
    Error {
        kind: Kind,
        message: String,
    },
    Done,
}

/// Upstream side: one SSE event -> neutral events.
pub(crate) trait Decode: Send {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError>;
    /// The last decoded event was an OpenAI usage-only chunk (`choices: []` + `usage`).
    fn last_was_usage_only(&self) -> bool {
        false
    }
    /// The cost the upstream reported for the request so far (OpenRouter `usage.cost`).
    fn reported_cost(&self) -> Option<f64> {
        None
    }
    /// Responses API streams: the `sequence_number` a terminal error event written after the
    /// events decoded so far must carry.
    fn next_sequence_number(&self) -> Option<u64> {
        None
    }
}

/// Client side: neutral events -> SSE bytes.
pub(crate) trait Encode: Send {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut);
    /// Write the terminal error event for a failure outside the upstream's events (framing
    /// that is not plain SSE needs its own); false: the caller writes the standard one.
    fn encode_error(&mut self, _message: &str, _out: &mut BytesMut) -> bool {
        false
    }
}

pub use encode_gemini::GeminiFraming;

/// The processor for a Gemini client's stream, framed as `framing`. A Gemini upstream's SSE
/// is forwarded unchanged to an `alt=sse` client and re-framed as a JSON array otherwise;
/// other upstreams are translated.
pub fn gemini_stream_processor(
    upstream: Protocol,
    framing: GeminiFraming,
    opts: StreamOptions,
) -> Box<dyn StreamProcessor> {
    if upstream == Protocol::Gemini && framing == GeminiFraming::Sse {
        return Box::new(passthrough::Passthrough::new(upstream, opts));
    }
    let encoder = Box::new(encode_gemini::GeminiEncoder::new(
        &opts.client_model,
        framing,
    ));
    Box::new(translate::Translator::new(
        decoder(upstream),
        encoder,
        Protocol::Gemini,
        opts,
    ))
}

pub(crate) fn decoder(p: Protocol) -> Box<dyn Decode> {
    match p {
        Protocol::OpenAi => Box::new(decode_openai::OpenAiDecoder::default()),
        Protocol::Anthropic => Box::new(decode_anthropic::AnthropicDecoder::default()),
        Protocol::Gemini => Box::new(decode_gemini::GeminiDecoder::default()),
        Protocol::Responses => Box::new(decode_responses::ResponsesDecoder::default()),
    }
}

/// Create the processor for one streamed response.
pub fn stream_processor(
    upstream: Protocol,
    client: Protocol,
    opts: StreamOptions,
) -> Box<dyn StreamProcessor> {
    if upstream == client {
        return Box::new(passthrough::Passthrough::new(upstream, opts));
    }
    if client == Protocol::Gemini {
        return gemini_stream_processor(upstream, GeminiFraming::Sse, opts);
    }
    let encoder: Box<dyn Encode> = match client {
        Protocol::OpenAi => Box::new(encode_openai::OpenAiEncoder::new(
            &opts.client_model,
            !opts.strip_usage_chunk,
        )),
        Protocol::Responses => {
            Box::new(encode_responses::ResponsesEncoder::new(&opts.client_model))
        }
        Protocol::Anthropic if matches!(upstream, Protocol::OpenAi | Protocol::Gemini) => {
            Box::new(encode_anthropic::AnthropicEncoder::new(&opts.client_model))
        }
        _ => {
            return Box::new(translate::Unsupported::new(upstream, client));
        }
    };
    Box::new(translate::Translator::new(
        decoder(upstream),
        encoder,
        client,
        opts,
    ))
}

/// Text accumulated for output-token estimation, bounded: past [`MAX_TEXT`] bytes the rest
/// is only counted (heuristically).
pub(crate) const MAX_TEXT: usize = 4 * 1024 * 1024;

/// Everything read on the side of a stream: usage, text, merged answer, terminal state.
pub(crate) struct Observer {
    pub usage: Option<Usage>,
    pub partial: Option<Usage>,
    pub text: String,
    pub overflow_tokens: u64,
    pub merger: Option<merge::Merger>,
    pub finish_seen: bool,
    pub done: bool,
    pub errored: bool,
}

impl Observer {
    pub fn new(opts: &StreamOptions) -> Self {
        Observer {
            usage: None,
            partial: None,
            text: String::new(),
            overflow_tokens: 0,
            merger: opts
                .collect_merge
                .then(|| merge::Merger::new(&opts.client_model)),
            finish_seen: false,
            done: false,
            errored: false,
        }
    }

    fn push_text(&mut self, s: &str) {
        if self.text.len() + s.len() <= MAX_TEXT {
            self.text.push_str(s);
        } else {
            self.overflow_tokens += crate::estimate::heuristic(s);
        }
    }

    pub fn observe(&mut self, ev: &Ev) {
        match ev {
            Ev::Text(t) | Ev::Thinking(t) => self.push_text(t),
            Ev::ToolStart { name, .. } => self.push_text(name),
            Ev::ToolArgs { args, .. } => self.push_text(args),
            Ev::Finish(_) => self.finish_seen = true,
            Ev::Usage { usage, complete } => {
                self.partial = Some(*usage);
                if *complete {
                    self.usage = Some(*usage);
                }
            }
            Ev::Error { .. } => self.errored = true,
            Ev::Done => self.done = true,
            Ev::Start { .. } | Ev::Signature(_) => {}
        }
        if let Some(m) = self.merger.as_mut() {
            m.push(ev);
        }
    }

    pub fn estimated_output_tokens(&self) -> u64 {
        crate::estimate::estimate_text_tokens(&self.text) + self.overflow_tokens
    }

    pub fn merged(&self, client: Protocol) -> Option<serde_json::Value> {
        self.merger.as_ref().map(|m| m.to_value(client))
    }
}

/// Parse the JSON `data` of an upstream event.
pub(crate) fn parse_data<'a, T: serde::Deserialize<'a>>(ev: &'a SseEvent) -> Result<T, LlmError> {
    serde_json::from_str(&ev.data).map_err(|e| LlmError::Stream(format!("bad upstream event: {e}")))
}
