//! Usage and cost of one LLM exchange: from the upstream's report when there is
//! one, else estimated (and marked so). The client's request is only read for an
//! estimate when the upstream reported no usage.

use bytes::Bytes;
use fastgate_llm::{Price, Protocol, StreamProcessor, Usage, cost, estimate_request_tokens};

use crate::context::TokenUsage;

pub struct LlmAccounting {
    pub price: Option<Price>,
    /// The client's request body, for a prompt estimate when usage is missing.
    pub request: Bytes,
    /// The protocol that body is in.
    pub protocol: Protocol,
}

impl LlmAccounting {
    fn prompt_estimate(&self) -> u64 {
        estimate_request_tokens(self.protocol, &self.request)
    }

    /// A whole response's usage; without a report only the prompt is estimated.
    pub fn token_usage(&self, reported: Option<Usage>) -> TokenUsage {
        let usage = reported.unwrap_or_else(|| Usage {
            input_tokens: self.prompt_estimate(),
            estimated: true,
            ..Usage::default()
        });
        self.priced(&usage)
    }

    pub fn usage_for_stream(&self, p: &dyn StreamProcessor) -> TokenUsage {
        let usage = match p.usage() {
            Some(u) => u,
            None => p.final_usage(self.prompt_estimate()),
        };
        self.priced(&usage)
    }

    fn priced(&self, usage: &Usage) -> TokenUsage {
        TokenUsage {
            input: usage.input_tokens,
            output: usage.output_tokens,
            estimated: usage.estimated,
            cost: self.price.as_ref().map(|p| cost(usage, p)),
        }
    }
}
