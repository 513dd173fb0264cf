//! Upstream side of a native Responses API stream (passthrough to a Responses client):
//! Responses events -> neutral events, so usage, text and the merged answer are read on the
//! side while the bytes go through unchanged.
//!
//! `response.created` -> Start; `response.output_text.delta` -> Text;
//! `response.reasoning_summary_text.delta` / `response.reasoning_text.delta` -> Thinking;
//! `response.output_item.added` with a `function_call` item -> ToolStart (ordinal of the
//! call, its `call_id`, name); `response.function_call_arguments.delta` -> ToolArgs (by
//! `item_id`); `response.completed` / `response.incomplete` -> final Usage, Finish, Done;
//! `response.failed` and `error` -> Error. Other event types carry nothing we read. A
//! function call whose arguments came in no delta has them read from its
//! `response.output_item.done`; refusal deltas count as text.

use serde::Deserialize;

use super::{Decode, Ev, parse_data};
use crate::convert::Finish;
use crate::errors::Kind;
use crate::sse::SseEvent;
use crate::{LlmError, Usage};

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    item: Option<Item>,
    #[serde(default)]
    response: Option<Response>,
    /// `error` events: `code`, `message`.
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize, Default)]
struct Response {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    error: Option<ResponseError>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<CachedDetails>,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Deserialize)]
struct CachedDetails {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads a native Responses stream on the side of a passthrough.
#[derive(Default)]
pub(crate) struct ResponsesDecoder {
    /// Function call items by ordinal: (item id, arguments seen).
    calls: Vec<(String, bool)>,
    /// The last `sequence_number` seen.
    last_seq: Option<u64>,
}

/// The error kind for an OpenAI error `code`.
fn kind_for(code: Option<&str>) -> Kind {
    match code.unwrap_or("") {
        "rate_limit_exceeded" | "insufficient_quota" => Kind::RateLimit,
        "invalid_api_key" => Kind::Authentication,
        "model_not_found" => Kind::NotFound,
        "overloaded" | "server_is_overloaded" => Kind::Overloaded,
        "invalid_request_error" | "invalid_prompt" | "context_length_exceeded" => {
            Kind::InvalidRequest
        }
        _ => Kind::Server,
    }
}

impl ResponsesDecoder {
    /// `response.completed` / `response.incomplete`: final usage, finish reason, end.
    fn end(&self, response: Option<Response>, incomplete: bool, out: &mut Vec<Ev>) {
        let response = response.unwrap_or_default();
        if let Some(u) = response.usage {
            let usage = Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cached_input_tokens: u.input_tokens_details.map_or(0, |d| d.cached_tokens),
                ..Default::default()
            };
            out.push(Ev::Usage {
                usage,
                complete: true,
            });
        }
        let reason = response.incomplete_details.and_then(|d| d.reason);
        let finish = match reason.as_deref() {
            Some("content_filter") => Finish::ContentFilter,
            _ if incomplete => Finish::Length,
            _ if !self.calls.is_empty() => Finish::ToolCalls,
            _ => Finish::Stop,
        };
        out.push(Ev::Finish(finish));
        out.push(Ev::Done);
    }

    fn item_added(&mut self, item: Option<Item>, out: &mut Vec<Ev>) {
        let Some(item) = item.filter(|i| i.kind == "function_call") else {
            return;
        };
        let index = self.calls.len();
        let item_id = item.id.unwrap_or_default();
        out.push(Ev::ToolStart {
            index,
            id: item.call_id.unwrap_or_else(|| item_id.clone()),
            name: item.name.unwrap_or_default(),
        });
        self.calls.push((item_id, false));
    }

    /// A function call's arguments, as a delta.
    fn args(&mut self, item_id: Option<&str>, args: Option<String>, out: &mut Vec<Ev>) {
        let Some(index) = item_id.and_then(|id| self.calls.iter().position(|c| c.0 == id)) else {
            return;
        };
        if let Some(args) = args.filter(|a| !a.is_empty()) {
            self.calls[index].1 = true;
            out.push(Ev::ToolArgs { index, args });
        }
    }

    /// A finished function call whose arguments came in no delta (servers that send the
    /// call whole): they are read from the item.
    fn item_done(&mut self, item: Option<Item>, out: &mut Vec<Ev>) {
        let Some(item) = item.filter(|i| i.kind == "function_call") else {
            return;
        };
        let seen = item
            .id
            .as_deref()
            .and_then(|id| self.calls.iter().find(|c| c.0 == id))
            .is_some_and(|c| c.1);
        if !seen {
            self.args(item.id.as_deref(), item.arguments, out);
        }
    }
}

impl Decode for ResponsesDecoder {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError> {
        if ev.data.trim().is_empty() {
            return Ok(());
        }
        let e: Event = parse_data(ev)?;
        if let Some(n) = e.sequence_number {
            self.last_seq = Some(n);
        }
        let kind = e.kind.as_deref().or(ev.event.as_deref()).unwrap_or("");
        match kind {
            "response.created" => {
                let r = e.response;
                out.push(Ev::Start {
                    id: r.as_ref().and_then(|r| r.id.clone()),
                    model: r.and_then(|r| r.model),
                });
            }
            // A refusal is the answer's text as far as usage and the record go.
            "response.output_text.delta" | "response.refusal.delta" => {
                out.extend(e.delta.map(Ev::Text))
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out.extend(e.delta.map(Ev::Thinking))
            }
            "response.output_item.added" => self.item_added(e.item, out),
            "response.output_item.done" => self.item_done(e.item, out),
            "response.function_call_arguments.delta" => {
                self.args(e.item_id.as_deref(), e.delta, out)
            }
            "response.completed" => self.end(e.response, false, out),
            "response.incomplete" => self.end(e.response, true, out),
            "response.failed" => {
                let err = e.response.and_then(|r| r.error);
                let (code, message) = match err {
                    Some(er) => (er.code, er.message),
                    None => (None, None),
                };
                out.push(Ev::Error {
                    kind: kind_for(code.as_deref()),
                    message: message.unwrap_or_else(|| "the response failed".into()),
                });
            }
            "error" => out.push(Ev::Error {
                kind: kind_for(e.code.as_ref().and_then(|c| c.as_str())),
                message: e.message.unwrap_or_else(|| "upstream error".into()),
            }),
            _ => {}
        }
        Ok(())
    }

    fn next_sequence_number(&self) -> Option<u64> {
        Some(self.last_seq.map_or(0, |n| n + 1))
    }
}
