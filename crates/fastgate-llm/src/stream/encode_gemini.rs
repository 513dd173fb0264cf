//! Neutral events -> Gemini `streamGenerateContent` output: each chunk a whole
//! `GenerateContentResponse`, framed as SSE `data:` events (`?alt=sse`) or as the elements of
//! one JSON array (`[{…},\r\n{…}]`, what Google sends without `alt=sse`).
//!
//! Text deltas are sent as they come; a function call is sent whole (Gemini never splits
//! one) when its arguments end, i.e. at the next non-argument event. The finish reason and
//! the usage are held for the last chunk, sent when the upstream ends (an OpenAI upstream
//! sends its usage after its finish reason).

use bytes::{BufMut, BytesMut};

use super::{Encode, Ev};
use crate::convert::{Finish, arguments_to_object};
use crate::errors::{self, Kind};
use crate::wire::gemini as gm;
use crate::{Protocol, Usage};

/// How chunks are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiFraming {
    /// `data: {…}\r\n\r\n` per chunk (`?alt=sse`).
    Sse,
    /// One JSON array of chunks (no `alt`).
    JsonArray,
}

pub(crate) struct GeminiEncoder {
    framing: GeminiFraming,
    model: String,
    response_id: Option<String>,
    /// Chunks written so far (JSON array: 0 means the `[` is still to come).
    written: usize,
    /// The function call being assembled: (id, name, arguments text).
    call: Option<(String, String, String)>,
    finish: Option<Finish>,
    usage: Option<Usage>,
    closed: bool,
}

impl GeminiEncoder {
    pub fn new(client_model: &str, framing: GeminiFraming) -> Self {
        GeminiEncoder {
            framing,
            model: client_model.to_owned(),
            response_id: None,
            written: 0,
            call: None,
            finish: None,
            usage: None,
            closed: false,
        }
    }

    fn frame(&mut self, json: &[u8], out: &mut BytesMut) {
        match self.framing {
            GeminiFraming::Sse => {
                out.put_slice(b"data: ");
                out.put_slice(json);
                out.put_slice(b"\r\n\r\n");
            }
            GeminiFraming::JsonArray => {
                out.put_slice(if self.written == 0 { b"[" } else { b",\r\n" });
                out.put_slice(json);
            }
        }
        self.written += 1;
    }

    fn chunk(&mut self, parts: Vec<gm::Part>, last: bool, out: &mut BytesMut) {
        let finish = last.then(|| {
            self.finish
                .as_ref()
                .unwrap_or(&Finish::Stop)
                .to_gemini()
                .to_owned()
        });
        let resp = gm::GenerateResponse {
            candidates: vec![gm::Candidate {
                content: Some(gm::Content {
                    role: Some("model".into()),
                    parts,
                }),
                finish_reason: finish,
                index: Some(0),
            }],
            usage_metadata: if last {
                self.usage.map(|u| u.to_gemini())
            } else {
                None
            },
            model_version: Some(self.model.clone()),
            response_id: self.response_id.clone(),
            ..Default::default()
        };
        // Serializing these plain structs cannot fail; an empty object is the fallback.
        let json = serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec());
        self.frame(&json, out);
    }

    fn flush_call(&mut self, out: &mut BytesMut) {
        if let Some((id, name, args)) = self.call.take() {
            let part = gm::Part {
                function_call: Some(gm::FunctionCall {
                    id: Some(id),
                    name,
                    args: arguments_to_object(&args),
                }),
                ..Default::default()
            };
            self.chunk(vec![part], false, out);
        }
    }

    fn error(&mut self, kind: Kind, message: &str, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        self.closed = true;
        match self.framing {
            GeminiFraming::Sse => {
                out.put_slice(&errors::stream_event(Protocol::Gemini, kind, message))
            }
            GeminiFraming::JsonArray => {
                let json = errors::body(Protocol::Gemini, kind, message).to_string();
                self.frame(json.as_bytes(), out);
                out.put_slice(b"]");
            }
        }
    }
}

impl Encode for GeminiEncoder {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        if !matches!(ev, Ev::ToolArgs { .. } | Ev::Usage { .. } | Ev::Finish(_)) {
            self.flush_call(out);
        }
        match ev {
            Ev::Start { id, .. } => {
                self.response_id = id.clone().filter(|i| !i.is_empty());
            }
            Ev::Text(t) if !t.is_empty() => {
                let part = gm::Part {
                    text: Some(t.clone()),
                    ..Default::default()
                };
                self.chunk(vec![part], false, out);
            }
            Ev::Thinking(t) if !t.is_empty() => {
                let part = gm::Part {
                    text: Some(t.clone()),
                    thought: Some(true),
                    ..Default::default()
                };
                self.chunk(vec![part], false, out);
            }
            Ev::ToolStart { id, name, .. } => {
                self.call = Some((id.clone(), name.clone(), String::new()));
            }
            Ev::ToolArgs { args, .. } => {
                if let Some((_, _, a)) = self.call.as_mut() {
                    a.push_str(args);
                }
            }
            Ev::Finish(f) => {
                self.flush_call(out);
                self.finish.get_or_insert(f.clone());
            }
            Ev::Usage { usage, .. } => self.usage = Some(*usage),
            Ev::Done => {
                self.closed = true;
                self.chunk(Vec::new(), true, out);
                if self.framing == GeminiFraming::JsonArray {
                    out.put_slice(b"]");
                }
            }
            Ev::Error { kind, message } => self.error(*kind, message, out),
            Ev::Text(_) | Ev::Thinking(_) | Ev::Signature(_) => {}
        }
    }

    fn encode_error(&mut self, message: &str, out: &mut BytesMut) -> bool {
        self.error(Kind::Server, message, out);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(framing: GeminiFraming, evs: &[Ev]) -> String {
        let mut e = GeminiEncoder::new("g", framing);
        let mut out = BytesMut::new();
        for ev in evs {
            e.encode(ev, &mut out);
        }
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn answer() -> Vec<Ev> {
        vec![
            Ev::Start {
                id: Some("r1".into()),
                model: None,
            },
            Ev::Text("hel".into()),
            Ev::Text("lo".into()),
            Ev::ToolStart {
                index: 0,
                id: "c1".into(),
                name: "f".into(),
            },
            Ev::ToolArgs {
                index: 0,
                args: "{\"a\":".into(),
            },
            Ev::ToolArgs {
                index: 0,
                args: "1}".into(),
            },
            Ev::Finish(Finish::ToolCalls),
            Ev::Usage {
                usage: Usage {
                    input_tokens: 2,
                    output_tokens: 3,
                    ..Default::default()
                },
                complete: true,
            },
            Ev::Done,
        ]
    }

    #[test]
    fn json_array_framing_is_one_array() {
        let text = run(GeminiFraming::JsonArray, &answer());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0]["candidates"][0]["content"]["parts"][0]["text"], "hel");
        let fc = &a[2]["candidates"][0]["content"]["parts"][0]["functionCall"];
        assert_eq!(fc["name"], "f");
        assert_eq!(fc["args"]["a"], 1);
        assert_eq!(a[3]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(a[3]["usageMetadata"]["totalTokenCount"], 5);
        assert!(a[0].get("usageMetadata").is_none());
    }

    #[test]
    fn sse_framing_and_errors() {
        let text = run(GeminiFraming::Sse, &answer());
        assert_eq!(text.matches("data: ").count(), 4);
        assert!(text.ends_with("\r\n\r\n"));
        let err = run(
            GeminiFraming::JsonArray,
            &[
                Ev::Text("x".into()),
                Ev::Error {
                    kind: Kind::RateLimit,
                    message: "slow".into(),
                },
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&err).unwrap();
        assert_eq!(v[1]["error"]["status"], "RESOURCE_EXHAUSTED");
        let only_done: serde_json::Value =
            serde_json::from_str(&run(GeminiFraming::JsonArray, &[Ev::Done])).unwrap();
        assert_eq!(only_done.as_array().unwrap().len(), 1);
    }
}
