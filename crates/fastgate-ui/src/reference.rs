//! `/admin/ui/api-reference`: the admin API's OpenAPI document rendered on the
//! server as plain HTML (maud escapes every value; no script, no remote asset),
//! so it works under the UI's Content-Security-Policy and offline.
//!
//! Operations are grouped by tag in the document's order; each shows its method,
//! path, summary, description, parameters, request body and responses. Schemas
//! are rendered as nested lists, and a `$ref` links to the schema's entry in the
//! schemas section at the end.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{MethodRouter, get};
use fastgate_proxy::AppState;
use http::{HeaderMap, StatusCode};
use maud::{DOCTYPE, Markup, html};
use serde_json::{Map, Value};

use crate::i18n::Lang;

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];
/// Nested schemas deeper than this are cut (a `$ref` never recurses: it links).
const MAX_DEPTH: usize = 8;
const SCHEMA_REF: &str = "#/components/schemas/";

/// The page's route; `doc` gives the OpenAPI document (JSON) to render.
pub fn route(doc: fn() -> Arc<Value>) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, headers: HeaderMap| async move {
            if crate::session::from_headers(
                &crate::admin_token(&state),
                &headers,
                crate::now_secs(),
            )
            .is_none()
            {
                return crate::to_login();
            }
            crate::html(StatusCode::OK, page(&doc(), Lang::of(&headers)))
        },
    )
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn schema_anchor(name: &str) -> String {
    format!("schema-{name}")
}

/// One operation of the document.
struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    op: &'a Value,
}

impl Operation<'_> {
    fn tag(&self) -> &str {
        self.op
            .get("tags")
            .and_then(|t| t.get(0))
            .and_then(Value::as_str)
            .unwrap_or("other")
    }

    fn anchor(&self) -> String {
        let path: String = self
            .path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("op-{}{}", self.method, path)
    }
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut out = Vec::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push(Operation { method, path, op });
            }
        }
    }
    out
}

/// The tags in the document's order, then any only operations name.
fn tags<'a>(doc: &'a Value, ops: &'a [Operation<'a>]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| (text(t, "name"), text(t, "description")))
        .collect();
    for op in ops {
        if !out.iter().any(|(name, _)| *name == op.tag()) {
            out.push((op.tag(), ""));
        }
    }
    out
}

/// The whole page.
pub fn page(doc: &Value, lang: Lang) -> Markup {
    let info = doc.get("info").unwrap_or(&Value::Null);
    let ops = operations(doc);
    let tags = tags(doc, &ops);
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (text(info, "title")) " · API reference" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/admin/ui/assets/app.css";
            }
            body class="api-reference" {
                header {
                    a href="/admin/ui" { "FastGate" }
                    " · "
                    a href="/admin/api/openapi.json" { "openapi.json" }
                }
                main {
                    h1 { (text(info, "title")) " " small { (text(info, "version")) } }
                    p { "OpenAPI " (text(doc, "openapi")) }
                    p class="description" { (text(info, "description")) }
                    nav class="toc" {
                        ul {
                            @for (tag, _) in &tags {
                                li {
                                    a href=(format!("#tag-{tag}")) { (tag) }
                                    ul {
                                        @for op in ops.iter().filter(|o| o.tag() == *tag) {
                                            li { a href=(format!("#{}", op.anchor())) {
                                                code { (op.method.to_uppercase()) " " (op.path) }
                                            } }
                                        }
                                    }
                                }
                            }
                            @if schemas.is_some() { li { a href="#schemas" { "Schemas" } } }
                        }
                    }
                    @for (tag, description) in &tags {
                        section class="tag" id=(format!("tag-{tag}")) {
                            h2 { (tag) }
                            @if !description.is_empty() { p { (description) } }
                            @for op in ops.iter().filter(|o| o.tag() == *tag) {
                                (operation(op))
                            }
                        }
                    }
                    @if let Some(schemas) = schemas {
                        section id="schemas" {
                            h2 { "Schemas" }
                            @for (name, schema) in schemas {
                                section class="schema" id=(schema_anchor(name)) {
                                    h3 { code { (name) } }
                                    (schema_view(schema, 0))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn operation(o: &Operation<'_>) -> Markup {
    let op = o.op;
    let params = op.get("parameters").and_then(Value::as_array);
    let responses = op.get("responses").and_then(Value::as_object);
    let public = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(Map::is_empty)));
    html! {
        article class="operation" id=(o.anchor()) {
            h3 {
                span class=(format!("method method-{}", o.method)) { (o.method.to_uppercase()) }
                " " code { (o.path) }
            }
            @if !text(op, "summary").is_empty() { p class="summary" { strong { (text(op, "summary")) } } }
            @if !text(op, "description").is_empty() { p { (text(op, "description")) } }
            @if public { p class="auth" { "No token needed." } }
            @if let Some(params) = params.filter(|p| !p.is_empty()) {
                h4 { "Parameters" }
                table {
                    thead { tr { th { "Name" } th { "In" } th { "Required" } th { "Schema" } th { "Description" } } }
                    tbody {
                        @for p in params {
                            tr {
                                td { code { (text(p, "name")) } }
                                td { (text(p, "in")) }
                                td { @if p.get("required").and_then(Value::as_bool).unwrap_or(false) { "yes" } @else { "no" } }
                                td { (schema_view(p.get("schema").unwrap_or(&Value::Null), 0)) }
                                td { (text(p, "description")) }
                            }
                        }
                    }
                }
            }
            @if let Some(body) = op.get("requestBody") {
                h4 {
                    "Request body"
                    @if !body.get("required").and_then(Value::as_bool).unwrap_or(false) { " (optional)" }
                }
                @if !text(body, "description").is_empty() { p { (text(body, "description")) } }
                (content(body))
            }
            @if let Some(responses) = responses {
                h4 { "Responses" }
                dl class="responses" {
                    @for (status, response) in responses {
                        dt { code { (status) } " " (text(response, "description")) }
                        dd { (content(response)) }
                    }
                }
            }
        }
    }
}

/// The media types of a request body or response, each with its schema.
fn content(v: &Value) -> Markup {
    let types = v.get("content").and_then(Value::as_object);
    html! {
        @for (media, m) in types.into_iter().flatten() {
            div class="media" {
                code { (media) }
                @if let Some(schema) = m.get("schema") { (schema_view(schema, 0)) }
            }
        }
    }
}

/// A short name for a schema's type: a link for a `$ref`, `array of …`, the
/// type names (`string | null`), with the format.
fn type_label(schema: &Value) -> Markup {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix(SCHEMA_REF).unwrap_or(r);
        return html! { a href=(format!("#{}", schema_anchor(name))) { (name) } };
    }
    let names: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is_array = names.contains(&"array");
    html! {
        @if is_array {
            "array of "
            (type_label(schema.get("items").unwrap_or(&Value::Null)))
            @for other in names.iter().filter(|n| **n != "array") { " | " (other) }
        } @else if names.is_empty() {
            @if schema.get("oneOf").or(schema.get("anyOf")).or(schema.get("allOf")).is_some() {
                "one of the schemas below"
            } @else if schema.get("properties").is_some() {
                "object"
            } @else {
                "any JSON value"
            }
        } @else {
            (names.join(" | "))
        }
        @if let Some(format) = schema.get("format").and_then(Value::as_str) { " (" (format) ")" }
    }
}

/// A schema: its type, description, constraints, and its parts (properties,
/// alternatives, items, additional properties) nested.
fn schema_view(schema: &Value, depth: usize) -> Markup {
    if depth > MAX_DEPTH {
        return html! { span class="schema-type" { "…" } };
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let items = schema
        .get("items")
        .filter(|i| i.get("$ref").is_none() && i.is_object());
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    html! {
        div class="schema-view" {
            span class="schema-type" { (type_label(schema)) }
            @if let Some(d) = schema.get("description").and_then(Value::as_str) { " — " (d) }
            @if let Some(values) = schema.get("enum").and_then(Value::as_array) {
                " one of: "
                @for (i, v) in values.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (v) }
                }
            }
            @if let Some(v) = schema.get("default") { " default: " code { (v) } }
            @if let Some(v) = schema.get("example").or(schema.get("examples").and_then(|e| e.get(0))) {
                " e.g. " code { (v) }
            }
            @if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                " (no other fields)"
            }
            @if let Some(properties) = properties.filter(|p| !p.is_empty()) {
                ul class="properties" {
                    @for (name, prop) in properties {
                        li {
                            code { (name) }
                            @if required.contains(&name.as_str()) { " " span class="required" { "required" } }
                            " "
                            (schema_view(prop, depth + 1))
                        }
                    }
                }
            }
            @if let Some(items) = items { (schema_view(items, depth + 1)) }
            @if let Some(additional) = additional {
                div { "each other field: " (schema_view(additional, depth + 1)) }
            }
            @for key in ["oneOf", "anyOf", "allOf"] {
                @if let Some(parts) = schema.get(key).and_then(Value::as_array) {
                    div {
                        (match key { "oneOf" => "exactly one of:", "anyOf" => "any of:", _ => "all of:" })
                        ol {
                            @for part in parts { li { (schema_view(part, depth + 1)) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_operations_schemas_and_escapes() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "info": { "title": "T <b>", "version": "1" },
            "tags": [ { "name": "keys", "description": "Keys & <i>more</i>" } ],
            "paths": { "/admin/api/keys/{id}": { "get": {
                "tags": ["keys"], "summary": "Show <script>x</script>",
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
                "responses": { "200": { "description": "ok", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Key" } } } } }
            } } },
            "components": { "schemas": { "Key": { "type": "object", "required": ["id"],
                "properties": { "id": { "type": "string" }, "tags": { "type": ["array", "null"], "items": { "type": "string" } } } } } }
        });
        let html = page(&doc, Lang::En).into_string();
        assert!(
            html.contains("Show &lt;script&gt;x&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("T &lt;b&gt;"));
        assert!(html.contains("href=\"#schema-Key\""));
        assert!(html.contains("id=\"schema-Key\""));
        assert!(html.contains("/admin/api/keys/{id}"));
        assert!(html.contains("array of string | null"));
    }
}
