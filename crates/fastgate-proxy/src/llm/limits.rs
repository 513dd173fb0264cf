//! The worst case of an LLM request, reserved against token limits and
//! budgets at admission (docs/limits.md): the prompt's estimated tokens plus
//! the output cap, priced at the dearest deployment that may serve it.

use std::sync::Arc;

use fastgate_limits::Demand;
use fastgate_llm::estimate_request_object;
use serde_json::{Map, Value};

use super::Endpoint;
use super::models::DeploymentRuntime;

/// The output cap the client set, by the field its protocol uses.
fn requested_cap(endpoint: Endpoint, request: &Map<String, Value>) -> Option<u64> {
    if matches!(endpoint, Endpoint::GeminiGenerate | Endpoint::GeminiStream) {
        return request
            .get("generationConfig")
            .and_then(|g| g.get("maxOutputTokens"))
            .and_then(Value::as_u64);
    }
    let fields: &[&str] = match endpoint {
        Endpoint::Responses => &["max_output_tokens"],
        Endpoint::Messages => &["max_tokens"],
        _ => &["max_completion_tokens", "max_tokens"],
    };
    fields
        .iter()
        .find_map(|f| request.get(*f).and_then(Value::as_u64))
}

pub fn worst_case(
    endpoint: Endpoint,
    request: &Map<String, Value>,
    group_cap: Option<u32>,
    candidates: &[Arc<DeploymentRuntime>],
    default_cap: u32,
) -> Demand {
    let prompt = estimate_request_object(endpoint.client_protocol(), request);
    let output = match endpoint {
        Endpoint::Embeddings
        | Endpoint::CountTokens
        | Endpoint::GeminiCountTokens
        | Endpoint::GeminiEmbed
        | Endpoint::GeminiBatchEmbed => 0,
        _ => requested_cap(endpoint, request)
            .unwrap_or_else(|| u64::from(group_cap.unwrap_or(default_cap))),
    };
    // The dearest deployment that may serve it, per 1M tokens.
    let (input_price, output_price) = candidates
        .iter()
        .filter_map(|d| d.price.as_ref())
        .fold((0.0_f64, 0.0_f64), |(i, o), p| {
            (i.max(p.input), o.max(p.output))
        });
    Demand {
        tokens: prompt.saturating_add(output),
        cost: (prompt as f64 * input_price + output as f64 * output_price) / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_comes_from_the_request_then_the_group_then_the_default() {
        let req: Map<String, Value> = serde_json::from_str(
            r#"{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}"#,
        )
        .unwrap();
        let with_cap = worst_case(Endpoint::Chat, &req, Some(50), &[], 4096);
        let mut no_cap = req.clone();
        no_cap.remove("max_tokens");
        let group = worst_case(Endpoint::Chat, &no_cap, Some(50), &[], 4096);
        let default = worst_case(Endpoint::Chat, &no_cap, None, &[], 4096);
        let prompt = with_cap.tokens - 100;
        assert!(prompt > 0);
        assert_eq!(group.tokens, prompt + 50);
        assert_eq!(default.tokens, prompt + 4096);
        assert_eq!(with_cap.cost, 0.0);
        let emb = worst_case(Endpoint::Embeddings, &req, None, &[], 4096);
        assert_eq!(emb.tokens, prompt);
    }

    #[test]
    fn gemini_cap_is_generation_config_max_output_tokens() {
        let req: Map<String, Value> = serde_json::from_str(
            r#"{"contents":[{"parts":[{"text":"hello there"}]}],"generationConfig":{"maxOutputTokens":70}}"#,
        )
        .unwrap();
        let capped = worst_case(Endpoint::GeminiGenerate, &req, Some(50), &[], 4096);
        let mut no_cap = req.clone();
        no_cap.remove("generationConfig");
        let group = worst_case(Endpoint::GeminiStream, &no_cap, Some(50), &[], 4096);
        assert_eq!(capped.tokens - 70, group.tokens - 50);
        assert!(group.tokens > 50, "the prompt is counted");
        let count = worst_case(Endpoint::GeminiCountTokens, &req, Some(50), &[], 4096);
        assert_eq!(count.tokens, capped.tokens - 70);
    }
}
