//! Normalised token usage, per-protocol conversions, prices and cost.
//!
//! Semantics kept straight:
//! - OpenAI `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens` (DeepSeek:
//!   `prompt_cache_hit_tokens`, read the same way); `completion_tokens` includes
//!   `completion_tokens_details.reasoning_tokens`.
//! - Anthropic `input_tokens` EXCLUDES `cache_read_input_tokens` and
//!   `cache_creation_input_tokens`.
//! - OpenAI Responses `input_tokens` INCLUDES `input_tokens_details.cached_tokens`;
//!   `output_tokens` includes `output_tokens_details.reasoning_tokens`.
//! - Gemini `promptTokenCount` INCLUDES `cachedContentTokenCount`; `thoughtsTokenCount` is
//!   billed as output but reported apart from `candidatesTokenCount`.
//!
//! [`Usage`] is normalised: `input_tokens` counts ALL prompt tokens, cached and cache-written
//! ones included; `cached_input_tokens` and `cache_creation_tokens` are subsets of it.
//!
//! A provider's own charge (OpenRouter's `usage.cost`) is not part of [`Usage`] (a `Copy`
//! figure of tokens); read it with [`reported_cost_usd`] and
//! [`crate::StreamProcessor::reported_cost`].

use serde::{Deserialize, Serialize};

use crate::Protocol;
use crate::wire::{anthropic, gemini, openai};

/// Normalised usage of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// All prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Output tokens (reasoning/thinking tokens included).
    pub output_tokens: u64,
    /// Cache reads (subset of `input_tokens`).
    pub cached_input_tokens: u64,
    /// Anthropic cache writes (subset of `input_tokens`).
    pub cache_creation_tokens: u64,
    /// True when any part of it was estimated rather than reported by the upstream.
    pub estimated: bool,
}

impl Usage {
    /// Prompt tokens billed at the plain input price.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cached_input_tokens)
            .saturating_sub(self.cache_creation_tokens)
    }

    /// From OpenAI usage. Cache reads: `prompt_tokens_details.cached_tokens`, or DeepSeek's
    /// `prompt_cache_hit_tokens` (the larger when both are sent; both are subsets of
    /// `prompt_tokens`). `completion_tokens` already counts reasoning tokens
    /// (`completion_tokens_details.reasoning_tokens` is a subset of it).
    pub fn from_openai(u: &openai::Usage) -> Self {
        let cached = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .max(u.prompt_cache_hit_tokens.unwrap_or(0));
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cached_input_tokens: cached.min(u.prompt_tokens),
            cache_creation_tokens: 0,
            estimated: false,
        }
    }

    /// To OpenAI usage (cache writes stay inside `prompt_tokens`; OpenAI has no field for them).
    pub fn to_openai(&self) -> openai::Usage {
        openai::Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: self.input_tokens + self.output_tokens,
            prompt_tokens_details: Some(openai::PromptTokensDetails {
                cached_tokens: Some(self.cached_input_tokens),
            }),
            prompt_cache_hit_tokens: None,
        }
    }

    /// From Anthropic usage (missing fields count as 0).
    pub fn from_anthropic(u: &anthropic::Usage) -> Self {
        let read = u.cache_read_input_tokens.unwrap_or(0);
        let write = u.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: u.input_tokens.unwrap_or(0) + read + write,
            output_tokens: u.output_tokens.unwrap_or(0),
            cached_input_tokens: read,
            cache_creation_tokens: write,
            estimated: false,
        }
    }

    /// To Anthropic usage (`input_tokens` without cache reads/writes).
    pub fn to_anthropic(&self) -> anthropic::Usage {
        anthropic::Usage {
            input_tokens: Some(self.uncached_input_tokens()),
            output_tokens: Some(self.output_tokens),
            cache_creation_input_tokens: Some(self.cache_creation_tokens),
            cache_read_input_tokens: Some(self.cached_input_tokens),
        }
    }

    /// From Gemini usage metadata.
    pub fn from_gemini(u: &gemini::UsageMetadata) -> Self {
        let input = u.prompt_token_count + u.tool_use_prompt_token_count.unwrap_or(0);
        Usage {
            input_tokens: input,
            output_tokens: u.candidates_token_count + u.thoughts_token_count.unwrap_or(0),
            cached_input_tokens: u.cached_content_token_count.unwrap_or(0).min(input),
            cache_creation_tokens: 0,
            estimated: false,
        }
    }

    /// To Gemini usage metadata.
    pub fn to_gemini(&self) -> gemini::UsageMetadata {
        gemini::UsageMetadata {
            prompt_token_count: self.input_tokens,
            candidates_token_count: self.output_tokens,
            total_token_count: self.input_tokens + self.output_tokens,
            cached_content_token_count: (self.cached_input_tokens > 0)
                .then_some(self.cached_input_tokens),
            thoughts_token_count: None,
            tool_use_prompt_token_count: None,
        }
    }
}

/// Usage from a non-stream response body of `protocol` (None if absent or unparsable).
pub fn usage_from_response(protocol: Protocol, body: &[u8]) -> Option<Usage> {
    match protocol {
        Protocol::OpenAi => {
            #[derive(Deserialize)]
            struct R {
                usage: Option<openai::Usage>,
            }
            let r: R = serde_json::from_slice(body).ok()?;
            r.usage.as_ref().map(Usage::from_openai)
        }
        Protocol::Anthropic => {
            #[derive(Deserialize)]
            struct R {
                usage: Option<anthropic::Usage>,
            }
            let r: R = serde_json::from_slice(body).ok()?;
            r.usage.as_ref().map(Usage::from_anthropic)
        }
        Protocol::Responses => {
            #[derive(Deserialize)]
            struct R {
                usage: Option<ResponsesUsage>,
            }
            let r: R = serde_json::from_slice(body).ok()?;
            r.usage.as_ref().map(ResponsesUsage::normalised)
        }
        Protocol::Gemini => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct R {
                usage_metadata: Option<gemini::UsageMetadata>,
            }
            let r: R = serde_json::from_slice(body).ok()?;
            r.usage_metadata.as_ref().map(Usage::from_gemini)
        }
    }
}

/// The `usage` of an OpenAI Responses API `response` object. `input_tokens` includes
/// `input_tokens_details.cached_tokens`; `output_tokens` includes the reasoning tokens;
/// `total_tokens` is not read (it is their sum).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<ResponsesInputDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct ResponsesInputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl ResponsesUsage {
    fn normalised(&self) -> Usage {
        let cached = self
            .input_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cached_input_tokens: cached.min(self.input_tokens),
            cache_creation_tokens: 0,
            estimated: false,
        }
    }
}

/// The cost the provider itself reported for a non-stream response of `protocol`, in USD:
/// OpenRouter's `usage.cost` (its credits are US dollars; `cost_details` and `is_byok` are
/// not read). None when absent, not a finite non-negative number, or for protocols whose
/// responses carry no cost (Anthropic, Gemini). Streams: [`crate::StreamProcessor::reported_cost`].
pub fn reported_cost_usd(protocol: Protocol, body: &[u8]) -> Option<f64> {
    if protocol != Protocol::OpenAi {
        return None;
    }
    #[derive(Deserialize)]
    struct R {
        usage: Option<ReportedCost>,
    }
    let r: R = serde_json::from_slice(body).ok()?;
    r.usage?.usd()
}

/// The `cost` member of an OpenAI-shaped `usage` object (OpenRouter), read on the side of
/// the token counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct ReportedCost {
    #[serde(default)]
    cost: Option<f64>,
}

impl ReportedCost {
    /// The cost when it is a usable amount (finite, not negative).
    pub(crate) fn usd(self) -> Option<f64> {
        self.cost.filter(|c| c.is_finite() && *c >= 0.0)
    }
}

/// Price per 1M tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Plain prompt tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache reads; defaults to `input`.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Cache writes; defaults to `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// Cost in the price table's currency:
/// `((input - cached - creation) * input + cached * cached_input + creation * cache_write
/// + output * output) / 1e6`.
pub fn cost(usage: &Usage, price: &Price) -> f64 {
    let plain = usage.uncached_input_tokens() as f64 * price.input;
    let cached = usage.cached_input_tokens as f64 * price.cached_input.unwrap_or(price.input);
    let write = usage.cache_creation_tokens as f64 * price.cache_write.unwrap_or(price.input);
    let out = usage.output_tokens as f64 * price.output;
    (plain + cached + write + out) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn anthropic_round_trip(input in 0u64..1_000_000, cached in 0u64..1_000_000,
                                write in 0u64..1_000_000, out in 0u64..1_000_000) {
            let u = Usage {
                input_tokens: input + cached + write,
                output_tokens: out,
                cached_input_tokens: cached,
                cache_creation_tokens: write,
                estimated: false,
            };
            prop_assert_eq!(Usage::from_anthropic(&u.to_anthropic()), u);
            let back = Usage::from_openai(&u.to_openai());
            prop_assert_eq!(back.input_tokens, u.input_tokens);
            prop_assert_eq!(back.cached_input_tokens, cached);
            prop_assert_eq!(Usage::from_gemini(&u.to_gemini()).input_tokens, u.input_tokens);
        }
    }

    #[test]
    fn cached_never_exceeds_input() {
        let o = openai::Usage {
            prompt_tokens: 5,
            completion_tokens: 1,
            total_tokens: 6,
            prompt_tokens_details: Some(openai::PromptTokensDetails {
                cached_tokens: Some(50),
            }),
            prompt_cache_hit_tokens: Some(70),
        };
        assert_eq!(Usage::from_openai(&o).cached_input_tokens, 5);
    }

    #[test]
    fn deepseek_cache_hits_are_cached_input() {
        let u: openai::Usage = serde_json::from_str(
            r#"{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,
                "prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":36}"#,
        )
        .unwrap();
        let n = Usage::from_openai(&u);
        assert_eq!((n.input_tokens, n.cached_input_tokens), (100, 64));
        assert_eq!(n.uncached_input_tokens(), 36);
    }

    #[test]
    fn reported_cost_only_from_openai_shaped_usage() {
        let body =
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.25,"is_byok":false}}"#;
        assert_eq!(reported_cost_usd(Protocol::OpenAi, body), Some(0.25));
        assert_eq!(reported_cost_usd(Protocol::Anthropic, body), None);
        assert_eq!(
            reported_cost_usd(Protocol::OpenAi, br#"{"usage":{"cost":-1}}"#),
            None
        );
        assert_eq!(
            reported_cost_usd(Protocol::OpenAi, br#"{"usage":{}}"#),
            None
        );
        assert_eq!(reported_cost_usd(Protocol::OpenAi, b"not json"), None);
    }
}
