//! Responses API client side of a translated stream: neutral events -> the Responses
//! streaming event sequence, each event `event: <type>` + `data: {"type": <type>,
//! "sequence_number": n, …}` with `n` counting from 0:
//!
//! `response.created`, `response.in_progress` (status `in_progress`, no output yet) ->
//! per output item `response.output_item.added` … `response.output_item.done`, with inside
//! - reasoning (thinking): `reasoning_summary_part.added`, `reasoning_summary_text.delta`…,
//!   `reasoning_summary_text.done`, `reasoning_summary_part.done`;
//! - message (text): `content_part.added`, `output_text.delta`…, `output_text.done`,
//!   `content_part.done`;
//! - function call (one per tool ordinal): `function_call_arguments.delta`…,
//!   `function_call_arguments.done`;
//!
//! -> at the end `response.completed` or `response.incomplete` (length / content filter)
//! with the whole response object, output and usage included. No `[DONE]` line: the
//! Responses API sends none. A failure ends the stream with the `error` event, its
//! `sequence_number` continuing the stream's.
//!
//! A reasoning or message item is closed when another item starts; function call items
//! stay open until the end (arguments of several calls may interleave) unless text or
//! reasoning follows them. Only the text the `*.done` events and the final response need
//! is kept.

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Encode, Ev};
use crate::Usage;
use crate::convert::responses_shape::{
    ResponseParts, function_call_item, function_call_item_open, message_item, message_item_open,
    output_text, reasoning_item, reasoning_item_open, response_id, response_object, status_for,
};
use crate::convert::{Finish, unix_now};
use crate::errors::{self, Kind};

/// The kinds of output item a translated stream produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Reasoning,
    Message,
    Call,
}

/// One output item; `text` is the summary, the message text or the arguments.
struct Item {
    kind: ItemKind,
    id: String,
    call_id: String,
    name: String,
    text: String,
    done: bool,
}

impl Item {
    fn to_value(&self) -> Value {
        match self.kind {
            ItemKind::Reasoning => reasoning_item(&self.id, &self.text),
            ItemKind::Message => message_item(&self.id, &self.text),
            ItemKind::Call => function_call_item(&self.id, &self.call_id, &self.name, &self.text),
        }
    }
}

/// A delta event, serialized without building a JSON tree.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<usize>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[u8; 0]>,
}

/// Neutral events -> Responses API streaming events (see the module docs).
pub(crate) struct ResponsesEncoder {
    model: String,
    id: String,
    created_at: i64,
    seq: u64,
    started: bool,
    /// Output items; the position is the `output_index`.
    items: Vec<Item>,
    /// The open reasoning or message item.
    open: Option<usize>,
    /// Tool ordinal -> output index, for calls still open.
    calls: Vec<(usize, usize)>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    closed: bool,
}

impl ResponsesEncoder {
    pub fn new(client_model: &str) -> Self {
        ResponsesEncoder {
            model: client_model.to_owned(),
            id: String::new(),
            created_at: 0,
            seq: 0,
            started: false,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            closed: false,
        }
    }

    fn write<T: Serialize>(out: &mut BytesMut, kind: &str, data: &T) {
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\ndata: ");
        let _ = serde_json::to_writer((&mut *out).writer(), data);
        out.put_slice(b"\n\n");
    }

    /// Write one event: `data` gets the `type` and the next `sequence_number`.
    fn emit(&mut self, out: &mut BytesMut, kind: &str, mut data: Value) {
        if let Value::Object(o) = &mut data {
            o.insert("type".into(), Value::String(kind.to_owned()));
            o.insert("sequence_number".into(), self.seq.into());
        }
        self.seq += 1;
        Self::write(out, kind, &data);
    }

    fn delta(&mut self, out: &mut BytesMut, kind: &str, index: usize, delta: &str) {
        let item = &self.items[index];
        let d = Delta {
            kind,
            sequence_number: self.seq,
            item_id: &item.id,
            output_index: index,
            content_index: (item.kind == ItemKind::Message).then_some(0),
            summary_index: (item.kind == ItemKind::Reasoning).then_some(0),
            delta,
            logprobs: (item.kind == ItemKind::Message).then_some([]),
        };
        Self::write(out, kind, &d);
        self.seq += 1;
    }

    fn in_progress(&self) -> Value {
        response_object(ResponseParts {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
            status: "in_progress",
            incomplete_reason: None,
            output: Vec::new(),
            usage: None,
        })
    }

    fn start(&mut self, id: Option<&str>, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(id.unwrap_or(""));
        self.created_at = unix_now();
        let response = self.in_progress();
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    /// Open a new output item and announce it.
    fn add_item(&mut self, kind: ItemKind, call_id: &str, name: &str, out: &mut BytesMut) -> usize {
        let index = self.items.len();
        let prefix = match kind {
            ItemKind::Reasoning => "rs",
            ItemKind::Message => "msg",
            ItemKind::Call => "fc",
        };
        let id = format!("{prefix}_{index}");
        let item = match kind {
            ItemKind::Reasoning => reasoning_item_open(&id),
            ItemKind::Message => message_item_open(&id),
            ItemKind::Call => function_call_item_open(&id, call_id, name),
        };
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        match kind {
            ItemKind::Reasoning => self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            ),
            ItemKind::Message => self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                    "part": output_text("")}),
            ),
            ItemKind::Call => {}
        }
        self.items.push(Item {
            kind,
            id,
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            text: String::new(),
            done: false,
        });
        index
    }

    /// Close item `index`: its `*.done` events, then `output_item.done`.
    fn close_item(&mut self, index: usize, out: &mut BytesMut) {
        let Some(item) = self.items.get_mut(index) else {
            return;
        };
        if item.done {
            return;
        }
        item.done = true;
        let item = &self.items[index];
        let (id, text) = (item.id.as_str(), item.text.as_str());
        let events: Vec<(&str, Value)> = match item.kind {
            ItemKind::Reasoning => vec![
                (
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                ),
                (
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}}),
                ),
            ],
            ItemKind::Message => vec![
                (
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "text": text, "logprobs": []}),
                ),
                (
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "part": output_text(text)}),
                ),
            ],
            ItemKind::Call => vec![(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "name": item.name,
                    "arguments": text}),
            )],
        };
        let done = json!({"output_index": index, "item": item.to_value()});
        for (kind, data) in events {
            self.emit(out, kind, data);
        }
        self.emit(out, "response.output_item.done", done);
    }

    /// Close the open reasoning / message item.
    fn close_open(&mut self, out: &mut BytesMut) {
        if let Some(i) = self.open.take() {
            self.close_item(i, out);
        }
    }

    /// Close every open function call, in output order.
    fn close_calls(&mut self, out: &mut BytesMut) {
        let mut open: Vec<usize> = self.calls.drain(..).map(|(_, i)| i).collect();
        open.sort_unstable();
        for i in open {
            self.close_item(i, out);
        }
    }

    /// Text or thinking: append to the open item of that kind, or open a new one.
    fn content(&mut self, kind: ItemKind, text: &str, out: &mut BytesMut) {
        let index = match self.open {
            Some(i) if self.items[i].kind == kind => i,
            _ => {
                self.close_open(out);
                self.close_calls(out);
                let i = self.add_item(kind, "", "", out);
                self.open = Some(i);
                i
            }
        };
        let event = match kind {
            ItemKind::Reasoning => "response.reasoning_summary_text.delta",
            _ => "response.output_text.delta",
        };
        self.delta(out, event, index, text);
        self.items[index].text.push_str(text);
    }

    fn tool_start(&mut self, ordinal: usize, call_id: &str, name: &str, out: &mut BytesMut) {
        self.close_open(out);
        let i = self.add_item(ItemKind::Call, call_id, name, out);
        self.calls.push((ordinal, i));
    }

    fn tool_args(&mut self, ordinal: usize, args: &str, out: &mut BytesMut) {
        let index = match self.calls.iter().find(|(o, _)| *o == ordinal) {
            Some((_, i)) => *i,
            // Arguments for a call never announced: open it with a generated id. (A late
            // fragment for a call already closed would do the same: no event may follow
            // its `done`.)
            None => {
                self.tool_start(ordinal, &format!("call_fastgate_{ordinal}"), "", out);
                self.items.len() - 1
            }
        };
        self.delta(out, "response.function_call_arguments.delta", index, args);
        self.items[index].text.push_str(args);
    }

    /// The end: close every item, then `response.completed` / `response.incomplete`.
    fn close(&mut self, out: &mut BytesMut) {
        self.close_open(out);
        self.close_calls(out);
        self.closed = true;
        let (status, reason) = status_for(self.finish.as_ref());
        let response = response_object(ResponseParts {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
            status,
            incomplete_reason: reason,
            output: self.items.iter().map(Item::to_value).collect(),
            usage: self.usage.as_ref(),
        });
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, kind, json!({"response": response}));
    }

    fn error(&mut self, kind: Kind, message: &str, out: &mut BytesMut) {
        self.closed = true;
        out.put_slice(&errors::responses_error_event(kind, message, self.seq));
        self.seq += 1;
    }
}

impl Encode for ResponsesEncoder {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        if let Ev::Error { kind, message } = ev {
            self.error(*kind, message, out);
            return;
        }
        let id = match ev {
            Ev::Start { id, .. } => id.as_deref(),
            _ => None,
        };
        self.start(id, out);
        match ev {
            Ev::Text(t) => self.content(ItemKind::Message, t, out),
            Ev::Thinking(t) => self.content(ItemKind::Reasoning, t, out),
            Ev::ToolStart { index, id, name } => self.tool_start(*index, id, name, out),
            Ev::ToolArgs { index, args } => self.tool_args(*index, args, out),
            Ev::Finish(f) => self.finish = Some(f.clone()),
            Ev::Usage { usage, .. } => self.usage = Some(*usage),
            Ev::Done => self.close(out),
            Ev::Start { .. } | Ev::Signature(_) | Ev::Error { .. } => {}
        }
    }

    fn encode_error(&mut self, message: &str, out: &mut BytesMut) -> bool {
        if !self.closed {
            self.error(Kind::Server, message, out);
        }
        true
    }
}
