//! `GET /v1/models` in OpenAI's list shape.

use serde_json::{Value, json};

/// `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}` from
/// (model name, owned_by) pairs, in the given order.
pub fn openai_model_list(models: &[(&str, &str)], created: i64) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": created, "owned_by": owner}))
        .collect();
    json!({"object": "list", "data": data})
}
