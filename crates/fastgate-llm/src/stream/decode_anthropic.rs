//! Anthropic upstream events -> neutral events.

use std::collections::HashMap;

use serde_json::Value;

use super::{Decode, Ev, parse_data};
use crate::convert::Finish;
use crate::errors::Kind;
use crate::sse::SseEvent;
use crate::wire::anthropic::{self as an, BlockDelta, StreamEvent};
use crate::{LlmError, Usage};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Block {
    Text,
    Thinking,
    Tool(usize),
    Other,
}

#[derive(Default)]
pub(crate) struct AnthropicDecoder {
    blocks: HashMap<usize, Block>,
    tools: usize,
    usage: an::Usage,
}

impl Decode for AnthropicDecoder {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError> {
        let event: StreamEvent = parse_data(ev)?;
        match event {
            StreamEvent::MessageStart { message } => {
                out.push(Ev::Start {
                    id: Some(message.id),
                    model: Some(message.model),
                });
                self.usage = message.usage;
                out.push(Ev::Usage {
                    usage: Usage::from_anthropic(&self.usage),
                    complete: false,
                });
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, &content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => {
                let block = self.blocks.get(&index).copied().unwrap_or(Block::Other);
                match (delta, block) {
                    (BlockDelta::TextDelta { text }, _) => out.push(Ev::Text(text)),
                    (BlockDelta::ThinkingDelta { thinking }, _) => out.push(Ev::Thinking(thinking)),
                    (BlockDelta::SignatureDelta { signature }, _) => {
                        out.push(Ev::Signature(signature))
                    }
                    (BlockDelta::InputJsonDelta { partial_json }, Block::Tool(i))
                        if !partial_json.is_empty() =>
                    {
                        out.push(Ev::ToolArgs {
                            index: i,
                            args: partial_json,
                        });
                    }
                    _ => {} // server-tool input, citations: not carried
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(r) = delta.stop_reason {
                    out.push(Ev::Finish(Finish::from_anthropic(&r, delta.stop_sequence)));
                }
                if let Some(u) = usage {
                    self.merge_usage(&u);
                    out.push(Ev::Usage {
                        usage: Usage::from_anthropic(&self.usage),
                        complete: true,
                    });
                }
            }
            StreamEvent::MessageStop => out.push(Ev::Done),
            StreamEvent::Error { error } => out.push(Ev::Error {
                kind: kind_of(&error.kind),
                message: error.message,
            }),
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(())
    }
}

impl AnthropicDecoder {
    fn block_start(&mut self, index: usize, block: &Value, out: &mut Vec<Ev>) {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let str_of = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
        let b = match kind {
            "text" => {
                let t = str_of("text");
                if !t.is_empty() {
                    out.push(Ev::Text(t.to_owned()));
                }
                Block::Text
            }
            "thinking" => {
                let t = str_of("thinking");
                if !t.is_empty() {
                    out.push(Ev::Thinking(t.to_owned()));
                }
                Block::Thinking
            }
            "tool_use" => {
                let i = self.tools;
                self.tools += 1;
                out.push(Ev::ToolStart {
                    index: i,
                    id: str_of("id").to_owned(),
                    name: str_of("name").to_owned(),
                });
                if let Some(input) = block.get("input").filter(|v| non_empty_object(v)) {
                    out.push(Ev::ToolArgs {
                        index: i,
                        args: input.to_string(),
                    });
                }
                Block::Tool(i)
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, b);
    }

    /// `message_delta.usage` is cumulative; fields it omits keep their `message_start` value.
    fn merge_usage(&mut self, u: &an::Usage) {
        let s = &mut self.usage;
        s.output_tokens = u.output_tokens.or(s.output_tokens);
        s.input_tokens = u.input_tokens.or(s.input_tokens);
        s.cache_read_input_tokens = u.cache_read_input_tokens.or(s.cache_read_input_tokens);
        s.cache_creation_input_tokens = u
            .cache_creation_input_tokens
            .or(s.cache_creation_input_tokens);
    }
}

fn non_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| !o.is_empty())
}

fn kind_of(t: &str) -> Kind {
    match t {
        "overloaded_error" => Kind::Overloaded,
        "rate_limit_error" => Kind::RateLimit,
        "invalid_request_error" => Kind::InvalidRequest,
        _ => Kind::Server,
    }
}
