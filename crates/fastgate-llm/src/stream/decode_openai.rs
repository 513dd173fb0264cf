//! OpenAI upstream chunks -> neutral events.
//!
//! Usage: OpenAI-compatible servers differ in where they put it. OpenAI (and DashScope,
//! vLLM, Ollama with `stream_options.include_usage`) send one final chunk with `choices: []`;
//! some send a running figure on every chunk, or the final one on the chunk that carries
//! `finish_reason`. Each figure replaces the previous one (never added up); a figure is
//! final (`complete`) once it comes on a usage-only chunk or at/after the `finish_reason`,
//! so a stream cut short keeps only a partial figure and its usage is estimated.

use serde::Deserialize;
use serde_json::Value;

use super::{Decode, Ev, parse_data};
use crate::convert::Finish;
use crate::errors::Kind;
use crate::sse::SseEvent;
use crate::usage::ReportedCost;
use crate::wire::openai::{self, ChunkChoice, ErrorDetail};
use crate::{LlmError, Usage};

/// One streamed chunk, as [`openai::ChatChunk`] plus the provider-reported cost in `usage`.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    #[serde(default)]
    error: Option<Value>,
}

/// `usage` of a chunk: the token counts and, from OpenRouter, `cost`.
#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(flatten)]
    tokens: openai::Usage,
    #[serde(flatten)]
    cost: ReportedCost,
}

#[derive(Default)]
pub(crate) struct OpenAiDecoder {
    started: bool,
    /// Tool indices already started (servers may repeat id/name on later deltas).
    tools_seen: Vec<usize>,
    usage_only: bool,
    /// A `finish_reason` was seen: usage from here on is the final figure.
    finished: bool,
    /// The last provider-reported cost (OpenRouter `usage.cost`).
    cost: Option<f64>,
}

impl Decode for OpenAiDecoder {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError> {
        self.usage_only = false;
        let data = ev.data.trim();
        if data == "[DONE]" {
            out.push(Ev::Done);
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Chunk = parse_data(ev)?;
        if let Some(err) = chunk.error {
            out.push(error_event(err));
            return Ok(());
        }
        // Azure OpenAI opens with `choices: []` plus `prompt_filter_results` (and an
        // empty id/model), and may send such annotation chunks later: nothing to
        // translate, and the message must start from a chunk with the real id.
        if chunk.choices.is_empty() && chunk.usage.is_none() {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(Ev::Start {
                id: chunk.id.clone(),
                model: chunk.model.clone(),
            });
        }
        self.usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
        // Only the first choice is translated (n > 1 is refused on translated requests).
        if let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) {
            let d = choice.delta;
            if let Some(t) = d
                .reasoning_content
                .or(d.reasoning)
                .filter(|t| !t.is_empty())
            {
                out.push(Ev::Thinking(t));
            }
            if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                out.push(Ev::Text(t));
            }
            if let Some(t) = d.refusal.filter(|t| !t.is_empty()) {
                out.push(Ev::Text(t));
            }
            for (pos, tc) in d.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let index = tc.index.unwrap_or(pos);
                let f = tc.function.unwrap_or_default();
                if !self.tools_seen.contains(&index) {
                    self.tools_seen.push(index);
                    out.push(Ev::ToolStart {
                        index,
                        id: tc.id.unwrap_or_else(|| format!("call_{index}")),
                        name: f.name.unwrap_or_default(),
                    });
                }
                if let Some(args) = f.arguments.filter(|a| !a.is_empty()) {
                    out.push(Ev::ToolArgs { index, args });
                }
            }
            if let Some(r) = choice.finish_reason {
                self.finished = true;
                out.push(Ev::Finish(Finish::from_openai(&r)));
            }
        }
        if let Some(u) = chunk.usage {
            if let Some(c) = u.cost.usd() {
                self.cost = Some(c);
            }
            out.push(Ev::Usage {
                usage: Usage::from_openai(&u.tokens),
                complete: self.usage_only || self.finished,
            });
        }
        Ok(())
    }

    fn last_was_usage_only(&self) -> bool {
        self.usage_only
    }

    fn reported_cost(&self) -> Option<f64> {
        self.cost
    }
}

/// A mid-stream `error`: OpenAI's object, or a bare message string (Ollama's shape).
fn error_event(err: Value) -> Ev {
    if let Value::String(message) = err {
        return Ev::Error {
            kind: Kind::Server,
            message,
        };
    }
    let detail: ErrorDetail = serde_json::from_value(err).unwrap_or_default();
    Ev::Error {
        kind: kind_of(detail.kind.as_deref().unwrap_or("")),
        message: detail.message,
    }
}

fn kind_of(t: &str) -> Kind {
    match t {
        "invalid_request_error" => Kind::InvalidRequest,
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => Kind::RateLimit,
        _ => Kind::Server,
    }
}
