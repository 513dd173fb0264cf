//! Usage and cost of one LLM exchange: from the upstream's report when there is
//! one, else estimated (and marked so). The client's request is only read for an
//! estimate when the upstream reported no usage.
//!
//! Cost: the deployment's `price` applied to the usage when a price is configured;
//! otherwise the charge the provider itself reported (OpenRouter's `usage.cost`),
//! if it reported one; otherwise none.

use bytes::Bytes;
use fastgate_llm::{
    Price, Protocol, StreamProcessor, Usage, cost, estimate_request_tokens, reported_cost_usd,
};

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
    /// `body` is the upstream's response in `upstream` protocol, read for a reported
    /// cost only when the deployment has no price.
    pub fn token_usage(
        &self,
        reported: Option<Usage>,
        upstream: Protocol,
        body: &[u8],
    ) -> TokenUsage {
        let usage = reported.unwrap_or_else(|| Usage {
            input_tokens: self.prompt_estimate(),
            estimated: true,
            ..Usage::default()
        });
        self.priced(&usage, || reported_cost_usd(upstream, body))
    }

    pub fn usage_for_stream(&self, p: &dyn StreamProcessor) -> TokenUsage {
        let usage = match p.usage() {
            Some(u) => u,
            None => p.final_usage(self.prompt_estimate()),
        };
        self.priced(&usage, || p.reported_cost())
    }

    fn priced(&self, usage: &Usage, reported_cost: impl FnOnce() -> Option<f64>) -> TokenUsage {
        let cost = match &self.price {
            Some(p) => Some(cost(usage, p)),
            None => reported_cost(),
        };
        TokenUsage {
            input: usage.input_tokens,
            output: usage.output_tokens,
            estimated: usage.estimated,
            cost,
        }
    }
}
