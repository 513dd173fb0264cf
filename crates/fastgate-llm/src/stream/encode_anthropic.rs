//! Neutral events -> Anthropic Messages stream events.
//!
//! `message_start` (usage unknown yet: zeros) -> per text / tool_use block
//! `content_block_start`, deltas (`text_delta`, `input_json_delta`), `content_block_stop`
//! (a block is closed when the next one starts) -> at the end `message_delta` (stop_reason,
//! cumulative usage incl. `input_tokens` and cache fields) -> `message_stop`.
//! Used for OpenAI and Gemini upstreams. Thinking is never produced: OpenAI reasoning and
//! Gemini thought summaries carry no Anthropic signature, and a client would send such
//! blocks back. Gemini function calls arrive whole (one `ToolStart` + one `ToolArgs`), which
//! makes one `tool_use` block with a single `input_json_delta`.

use bytes::{BufMut, BytesMut};
use serde_json::json;

use super::{Encode, Ev};
use crate::convert::Finish;
use crate::{Protocol, Usage, errors};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text(usize),
    Tool(usize),
}

pub(crate) struct AnthropicEncoder {
    model: String,
    started: bool,
    open: Option<Open>,
    next_block: usize,
    /// tool ordinal -> block index
    tools: Vec<(usize, usize)>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    closed: bool,
}

fn event(out: &mut BytesMut, name: &str, data: &serde_json::Value) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    let _ = serde_json::to_writer((&mut *out).writer(), data);
    out.put_slice(b"\n\n");
}

impl AnthropicEncoder {
    pub fn new(client_model: &str) -> Self {
        AnthropicEncoder {
            model: client_model.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            finish: None,
            usage: None,
            closed: false,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let id = id.filter(|i| !i.is_empty()).unwrap_or("msg_fastgate");
        let msg = json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}
        }});
        event(out, "message_start", &msg);
    }

    fn close_open(&mut self, out: &mut BytesMut) {
        if let Some(open) = self.open.take() {
            let index = match open {
                Open::Text(i) | Open::Tool(i) => i,
            };
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn text(&mut self, t: &str, out: &mut BytesMut) {
        let index = match self.open {
            Some(Open::Text(i)) => i,
            _ => {
                self.close_open(out);
                let i = self.next_block;
                self.next_block += 1;
                self.open = Some(Open::Text(i));
                let start = json!({"type": "content_block_start", "index": i,
                    "content_block": {"type": "text", "text": ""}});
                event(out, "content_block_start", &start);
                i
            }
        };
        let d = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": t}});
        event(out, "content_block_delta", &d);
    }

    fn tool_start(&mut self, ordinal: usize, id: &str, name: &str, out: &mut BytesMut) -> usize {
        self.close_open(out);
        let i = self.next_block;
        self.next_block += 1;
        self.open = Some(Open::Tool(i));
        self.tools.push((ordinal, i));
        let start = json!({"type": "content_block_start", "index": i,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}});
        event(out, "content_block_start", &start);
        i
    }

    fn tool_args(&mut self, ordinal: usize, args: &str, out: &mut BytesMut) {
        let block = match self.tools.iter().find(|(o, _)| *o == ordinal) {
            Some((_, b)) => *b,
            // Arguments before any id/name: open the block with a generated id.
            None => self.tool_start(ordinal, &format!("toolu_fastgate_{ordinal}"), "", out),
        };
        // A late fragment for an earlier (closed) block still carries that block's index;
        // SDKs accumulate by index.
        let d = json!({"type": "content_block_delta", "index": block,
            "delta": {"type": "input_json_delta", "partial_json": args}});
        event(out, "content_block_delta", &d);
    }

    fn close(&mut self, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.start(None, out);
        self.close_open(out);
        let (reason, seq) = self.finish.clone().unwrap_or(Finish::Stop).to_anthropic();
        let u = self.usage.unwrap_or_default().to_anthropic();
        let d = json!({"type": "message_delta",
        "delta": {"stop_reason": reason, "stop_sequence": seq},
        "usage": {
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
        }});
        event(out, "message_delta", &d);
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl Encode for AnthropicEncoder {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        match ev {
            Ev::Start { id, .. } => self.start(id.as_deref(), out),
            Ev::Text(t) => {
                self.start(None, out);
                self.text(t, out);
            }
            Ev::ToolStart { index, id, name } => {
                self.start(None, out);
                self.tool_start(*index, id, name, out);
            }
            Ev::ToolArgs { index, args } => {
                self.start(None, out);
                self.tool_args(*index, args, out);
            }
            Ev::Finish(f) => self.finish = Some(f.clone()),
            Ev::Usage { usage, .. } => self.usage = Some(*usage),
            Ev::Done => self.close(out),
            Ev::Error { kind, message } => {
                self.closed = true;
                out.put_slice(&errors::stream_event(Protocol::Anthropic, *kind, message));
            }
            Ev::Thinking(_) | Ev::Signature(_) => {}
        }
    }
}
