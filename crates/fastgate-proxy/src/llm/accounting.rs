//! Usage and cost of one LLM exchange: from the upstream's report when there is
//! one, else estimated (and marked so).

use fastgate_llm::{Price, StreamProcessor, Usage, cost};

use crate::context::TokenUsage;

pub struct LlmAccounting {
    pub price: Option<Price>,
    /// Estimated prompt tokens of the client's request, for when usage is missing.
    pub prompt_estimate: u64,
}

impl LlmAccounting {
    /// A whole response's usage; without a report only the prompt is estimated.
    pub fn token_usage(&self, reported: Option<Usage>) -> TokenUsage {
        let usage = reported.unwrap_or(Usage {
            input_tokens: self.prompt_estimate,
            estimated: true,
            ..Usage::default()
        });
        TokenUsage {
            input: usage.input_tokens,
            output: usage.output_tokens,
            estimated: usage.estimated,
            cost: self.price.as_ref().map(|p| cost(&usage, p)),
        }
    }

    pub fn usage_for_stream(&self, p: &dyn StreamProcessor) -> TokenUsage {
        self.token_usage(Some(p.final_usage(self.prompt_estimate)))
    }
}
