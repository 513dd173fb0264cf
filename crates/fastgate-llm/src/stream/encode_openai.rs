//! Neutral events -> OpenAI `chat.completion.chunk` SSE.
//!
//! Order: a role chunk first; content / `reasoning_content` / `tool_calls` deltas (a tool
//! call's first delta carries `index`, `id`, `type`, `function.name` and empty `arguments`,
//! later ones `index` and an `arguments` fragment); one chunk with `finish_reason`; the
//! usage chunk (`choices: []`) when the client asked for it; `data: [DONE]`.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::{Encode, Ev};
use crate::wire::openai as oa;
use crate::{Protocol, Usage, errors};

pub(crate) struct OpenAiEncoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    finished: bool,
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<oa::Usage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl OpenAiEncoder {
    pub fn new(client_model: &str, include_usage: bool) -> Self {
        OpenAiEncoder {
            id: "chatcmpl-fastgate".into(),
            model: client_model.to_owned(),
            created: crate::convert::unix_now(),
            include_usage,
            started: false,
            finished: false,
            usage: None,
        }
    }

    fn write(&self, out: &mut BytesMut, delta: DeltaOut<'_>, finish: Option<&str>) {
        self.write_chunk(
            out,
            vec![ChoiceOut {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            None,
        );
    }

    fn write_chunk(
        &self,
        out: &mut BytesMut,
        choices: Vec<ChoiceOut<'_>>,
        usage: Option<oa::Usage>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        out.put_slice(b"data: ");
        // Serializing these plain structs cannot fail; an empty object is the fallback.
        let _ = serde_json::to_writer((&mut *out).writer(), &chunk);
        out.put_slice(b"\n\n");
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            let delta = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..Default::default()
            };
            self.write(out, delta, None);
        }
    }
}

impl Encode for OpenAiEncoder {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut) {
        match ev {
            Ev::Start { id, .. } => {
                if let Some(id) = id.as_deref().filter(|i| !i.is_empty()) {
                    self.id = id.to_owned();
                }
                self.ensure_started(out);
            }
            Ev::Text(t) => {
                self.ensure_started(out);
                let d = DeltaOut {
                    content: Some(t),
                    ..Default::default()
                };
                self.write(out, d, None);
            }
            Ev::Thinking(t) => {
                self.ensure_started(out);
                let d = DeltaOut {
                    reasoning_content: Some(t),
                    ..Default::default()
                };
                self.write(out, d, None);
            }
            Ev::ToolStart { index, id, name } => {
                self.ensure_started(out);
                let call = ToolCallOut {
                    index: *index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                let d = DeltaOut {
                    tool_calls: Some([call]),
                    ..Default::default()
                };
                self.write(out, d, None);
            }
            Ev::ToolArgs { index, args } => {
                self.ensure_started(out);
                let call = ToolCallOut {
                    index: *index,
                    id: None,
                    kind: None,
                    function: FunctionOut {
                        name: None,
                        arguments: args,
                    },
                };
                let d = DeltaOut {
                    tool_calls: Some([call]),
                    ..Default::default()
                };
                self.write(out, d, None);
            }
            Ev::Finish(f) if !self.finished => {
                self.ensure_started(out);
                self.finished = true;
                self.write(out, DeltaOut::default(), Some(f.to_openai()));
            }
            Ev::Usage { usage, .. } => self.usage = Some(*usage),
            Ev::Done => {
                self.ensure_started(out);
                if self.include_usage
                    && let Some(u) = self.usage
                {
                    self.write_chunk(out, Vec::new(), Some(u.to_openai()));
                }
                out.put_slice(b"data: [DONE]\n\n");
            }
            Ev::Error { kind, message } => {
                out.put_slice(&errors::stream_event(Protocol::OpenAi, *kind, message));
            }
            Ev::Finish(_) | Ev::Signature(_) => {}
        }
    }
}
