//! Gemini upstream (`streamGenerateContent?alt=sse`) events -> neutral events. Each event is
//! a whole `GenerateContentResponse`; function calls arrive whole; there is no end marker.

use super::{Decode, Ev, parse_data};
use crate::convert::Finish;
use crate::errors::Kind;
use crate::sse::SseEvent;
use crate::wire::gemini::GenerateResponse;
use crate::{LlmError, Usage};

#[derive(Default)]
pub(crate) struct GeminiDecoder {
    started: bool,
    tools: usize,
}

impl Decode for GeminiDecoder {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError> {
        let resp: GenerateResponse = parse_data(ev)?;
        if let Some(err) = resp.error {
            out.push(Ev::Error {
                kind: match err.status.as_str() {
                    "RESOURCE_EXHAUSTED" => Kind::RateLimit,
                    "UNAVAILABLE" => Kind::Overloaded,
                    "INVALID_ARGUMENT" => Kind::InvalidRequest,
                    _ => Kind::Server,
                },
                message: err.message,
            });
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(Ev::Start {
                id: resp.response_id.clone(),
                model: resp.model_version.clone(),
            });
        }
        let mut finish = None;
        if let Some(cand) = resp
            .candidates
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        {
            for part in cand.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(fc) = part.function_call {
                    let index = self.tools;
                    self.tools += 1;
                    out.push(Ev::ToolStart {
                        index,
                        id: fc.id.unwrap_or_else(|| format!("call_{index}")),
                        name: fc.name,
                    });
                    out.push(Ev::ToolArgs {
                        index,
                        args: crate::convert::object_to_arguments(&fc.args),
                    });
                } else if let Some(t) = part.text.filter(|t| !t.is_empty()) {
                    if part.thought == Some(true) {
                        out.push(Ev::Thinking(t));
                    } else {
                        out.push(Ev::Text(t));
                    }
                }
            }
            finish = cand
                .finish_reason
                .map(|r| Finish::from_gemini(&r, self.tools > 0));
        } else if resp
            .prompt_feedback
            .is_some_and(|f| f.block_reason.is_some())
        {
            finish = Some(Finish::ContentFilter);
        }
        let complete = finish.is_some();
        if let Some(f) = finish {
            out.push(Ev::Finish(f));
        }
        if let Some(u) = resp.usage_metadata {
            out.push(Ev::Usage {
                usage: Usage::from_gemini(&u),
                complete,
            });
        }
        Ok(())
    }
}
