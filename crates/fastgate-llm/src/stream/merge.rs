//! Merge a streamed answer into one non-stream response body (for the audit record), in the
//! client's protocol: content, role, finish reason, tool calls, usage. Bounded: past
//! [`MAX_MERGED`] bytes of content, further text is not kept and the body gets
//! `"fastgate_truncated": true`.

use serde_json::{Value, json};

use super::Ev;
use crate::convert::{Finish, arguments_to_object, unix_now};
use crate::{Protocol, Usage};

/// Bound on merged content bytes.
pub const MAX_MERGED: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
enum Block {
    Text(String),
    Thinking {
        text: String,
        signature: String,
    },
    Tool {
        index: usize,
        id: String,
        name: String,
        args: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Merger {
    id: Option<String>,
    model: String,
    blocks: Vec<Block>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    bytes: usize,
    truncated: bool,
    error: Option<String>,
}

impl Merger {
    pub fn new(client_model: &str) -> Self {
        Merger {
            id: None,
            model: client_model.to_owned(),
            blocks: Vec::new(),
            finish: None,
            usage: None,
            bytes: 0,
            truncated: false,
            error: None,
        }
    }

    fn budget(&mut self, n: usize) -> bool {
        if self.bytes + n > MAX_MERGED {
            self.truncated = true;
            return false;
        }
        self.bytes += n;
        true
    }

    pub fn push(&mut self, ev: &Ev) {
        match ev {
            Ev::Start { id, .. } if self.id.is_none() => self.id = id.clone(),
            Ev::Text(t) if self.budget(t.len()) => match self.blocks.last_mut() {
                Some(Block::Text(s)) => s.push_str(t),
                _ => self.blocks.push(Block::Text(t.clone())),
            },
            Ev::Thinking(t) if self.budget(t.len()) => match self.blocks.last_mut() {
                Some(Block::Thinking { text, .. }) => text.push_str(t),
                _ => self.blocks.push(Block::Thinking {
                    text: t.clone(),
                    signature: String::new(),
                }),
            },
            Ev::Signature(s) => {
                if let Some(Block::Thinking { signature, .. }) = self.blocks.last_mut() {
                    signature.push_str(s);
                }
            }
            Ev::ToolStart { index, id, name } if self.budget(id.len() + name.len()) => {
                self.blocks.push(Block::Tool {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    args: String::new(),
                });
            }
            Ev::ToolArgs { index, args } if self.budget(args.len()) => {
                let found = self.blocks.iter_mut().rev().find_map(|b| match b {
                    Block::Tool { index: i, args, .. } if i == index => Some(args),
                    _ => None,
                });
                if let Some(a) = found {
                    a.push_str(args);
                }
            }
            Ev::Finish(f) => self.finish = Some(f.clone()),
            Ev::Usage { usage, .. } => self.usage = Some(*usage),
            Ev::Error { message, .. } => self.error = Some(message.clone()),
            _ => {}
        }
    }

    pub fn to_value(&self, client: Protocol) -> Value {
        let mut v = match client {
            Protocol::OpenAi => self.openai(),
            Protocol::Anthropic => self.anthropic(),
            Protocol::Gemini => self.gemini(),
            Protocol::Responses => self.responses(),
        };
        if let Value::Object(o) = &mut v {
            if self.truncated {
                o.insert("fastgate_truncated".into(), Value::Bool(true));
            }
            if let Some(e) = &self.error {
                o.insert("fastgate_error".into(), Value::String(e.clone()));
            }
        }
        v
    }

    fn openai(&self) -> Value {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for b in &self.blocks {
            match b {
                Block::Text(t) => text.push_str(t),
                Block::Thinking { text: t, .. } => reasoning.push_str(t),
                Block::Tool {
                    index,
                    id,
                    name,
                    args,
                } => calls.push(json!({
                    "index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": args}
                })),
            }
        }
        let mut message = json!({"role": "assistant",
            "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        if !reasoning.is_empty() {
            message["reasoning_content"] = Value::String(reasoning);
        }
        json!({
            "id": self.id.clone().unwrap_or_default(),
            "object": "chat.completion",
            "created": unix_now(),
            "model": self.model,
            "choices": [{"index": 0, "message": message,
                "finish_reason": self.finish.as_ref().map(Finish::to_openai)}],
            "usage": self.usage.map(|u| u.to_openai()),
        })
    }

    fn anthropic(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::Thinking { text, signature } => {
                    json!({"type": "thinking", "thinking": text, "signature": signature})
                }
                Block::Tool { id, name, args, .. } => json!({
                    "type": "tool_use", "id": id, "name": name, "input": arguments_to_object(args)
                }),
            })
            .collect();
        let (reason, seq) = match &self.finish {
            Some(f) => {
                let (r, s) = f.to_anthropic();
                (Some(r), s)
            }
            None => (None, None),
        };
        json!({
            "id": self.id.clone().unwrap_or_default(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": seq,
            "usage": self.usage.map(|u| u.to_anthropic()),
        })
    }

    /// The merged answer as a Responses API `response` object.
    fn responses(&self) -> Value {
        use crate::convert::responses_shape as r;
        let output = self
            .blocks
            .iter()
            .enumerate()
            .map(|(n, b)| match b {
                Block::Text(t) => r::message_item(&format!("msg_{n}"), t),
                Block::Thinking { text, .. } => r::reasoning_item(&format!("rs_{n}"), text),
                Block::Tool { id, name, args, .. } => {
                    r::function_call_item(&format!("fc_{n}"), id, name, args)
                }
            })
            .collect();
        let (status, reason) = r::status_for(self.finish.as_ref());
        r::response_object(r::ResponseParts {
            id: &r::response_id(self.id.as_deref().unwrap_or("")),
            created_at: unix_now(),
            model: &self.model,
            status,
            incomplete_reason: reason,
            output,
            usage: self.usage.as_ref(),
        })
    }

    fn gemini(&self) -> Value {
        let parts: Vec<Value> = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => json!({"text": t}),
                Block::Thinking { text, .. } => json!({"text": text, "thought": true}),
                Block::Tool { name, args, .. } => json!({
                    "functionCall": {"name": name, "args": arguments_to_object(args)}
                }),
            })
            .collect();
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": parts},
                "finishReason": self.finish.as_ref().map(Finish::to_gemini),
                "index": 0
            }],
            "usageMetadata": self.usage.map(|u| u.to_gemini()),
            "modelVersion": self.model,
        })
    }
}
