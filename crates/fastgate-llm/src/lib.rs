//! fastgate-llm: LLM wire protocols (OpenAI Chat Completions, Anthropic Messages, Gemini
//! generateContent), an incremental bounded SSE codec, request/response/error/stream
//! translation, usage reading, token estimates and cost. Pure logic: no I/O, no async.
//!
//! # Translation matrix
//!
//! | client → upstream | request | response | stream | errors |
//! |---|---|---|---|---|
//! | OpenAI → OpenAI | `model` rewritten; `stream_options.include_usage` forced on request | passthrough (`model` echoed) | passthrough; usage-only chunk stripped if the client did not ask | passthrough |
//! | Anthropic → Anthropic | `model` rewritten | passthrough (`model` echoed) | passthrough (thinking blocks untouched) | passthrough |
//! | Gemini → Gemini | body unchanged; model in the path ([`gemini_path`]) | passthrough | passthrough | passthrough |
//! | OpenAI → Anthropic | yes | yes | yes | yes |
//! | Anthropic → OpenAI | yes | yes | yes | yes |
//! | OpenAI → Gemini | yes | yes | yes | yes |
//! | Gemini → OpenAI, Gemini → Anthropic | yes, via the OpenAI representation ([`translate_gemini_request`]) | yes | yes, SSE or JSON array ([`gemini_stream_processor`]) | yes |
//! | Anthropic → Gemini | yes, via the OpenAI representation (Anthropic → OpenAI → Gemini) | yes (Gemini → OpenAI → Anthropic) | yes (Gemini decoder + Anthropic encoder) | yes |
//!
//! ## Media parts
//!
//! Unchanged between the same protocols; translated where the upstream has an equivalent;
//! otherwise refused with [`LlmError::Unsupported`] (a client 400) whose message names the
//! part in the client's request (`messages[1].content[2]: input_audio cannot be carried to
//! an Anthropic upstream (it has no audio input)`, `contents[0].parts[3]: inlineData
//! (video/mp4) …`). Never dropped silently (except images/documents inside Anthropic
//! `tool_result` blocks, which carry text only). Gemini fields are read in camelCase or
//! snake_case.
//!
//! | client part | → OpenAI | → Anthropic | → Gemini |
//! |---|---|---|---|
//! | OpenAI `input_audio` (wav, mp3) | unchanged | refused (no audio) | `inlineData` `audio/wav` / `audio/mp3` |
//! | OpenAI `file` `data:` PDF / text/* / image | unchanged | `document` base64 / `document` text source (decoded) / `image` | `inlineData` |
//! | OpenAI `file` `data:` audio, video, other | unchanged | refused | `inlineData` |
//! | OpenAI `file` `file_id` | unchanged | refused | refused |
//! | Anthropic `document` base64 PDF | `file` (`data:` URL) | unchanged | `inlineData` `application/pdf` |
//! | Anthropic `document` text source | text part | unchanged | text part |
//! | Anthropic `document` url source | refused (Chat Completions cannot fetch files) | unchanged | `fileData` `application/pdf` |
//! | Gemini `inlineData` image / wav, mp3 audio / PDF / text/* | `image_url` / `input_audio` / `file` / text | `image` / refused / `document` / `document` (text) | unchanged |
//! | Gemini `inlineData` other audio, other documents | refused | refused | unchanged |
//! | Gemini `inlineData` / `fileData` video | refused | refused | unchanged |
//! | Gemini `fileData` http(s) image / PDF | `image_url` / refused | `image` url / `document` url | unchanged |
//! | Gemini `fileData` `gs://` or Files API URI | refused | refused | unchanged |
//!
//! Estimates count media by payload size, never as base64 text (see [`estimate`]).
//!
//! ## Anthropic client → Gemini upstream
//!
//! Composed through the OpenAI representation: Anthropic → OpenAI (media checked against
//! Gemini, so a url `document` becomes `fileData`) → Gemini, path [`gemini_path`].
//! `tool_use` / `tool_result` → `functionCall` / `functionResponse` (named after the call);
//! `tool_choice` auto / any / tool / none → AUTO / ANY / ANY + `allowedFunctionNames` /
//! NONE; `thinking`, `top_k`, `metadata`, `disable_parallel_tool_use` dropped. Responses:
//! Gemini → OpenAI → Anthropic (finish STOP / with calls / MAX_TOKENS / SAFETY →
//! `end_turn` / `tool_use` / `max_tokens` / `refusal`; thought summaries dropped: they would
//! carry no Anthropic signature). Streams: the Gemini decoder feeds the Anthropic encoder
//! (`message_start` … whole `tool_use` blocks … `message_delta` with the final usage,
//! `message_stop`).
//!
//! ## Gemini client → OpenAI / Anthropic upstream
//!
//! The Gemini request becomes an OpenAI chat request (then, for Anthropic, goes through the
//! OpenAI → Anthropic converter above): `systemInstruction` → `system` message; `user` /
//! `model` contents → `user` / `assistant` messages; `text`; `inlineData` / `fileData` as
//! in the media table above;
//! `functionCall` → `tool_calls` (the part's `id`, else `call_N`); `functionResponse` → a
//! `tool` message answering the earliest unanswered call of that name; `functionDeclarations`
//! → function tools (upper-case schema `type`s lowered); `functionCallingConfig`
//! AUTO/NONE/ANY(one allowed name) → `tool_choice` auto/none/required(named);
//! `generationConfig` `temperature`, `topP`, `maxOutputTokens`, `stopSequences`,
//! `candidateCount`, penalties, `seed`, `responseMimeType`(+`responseJsonSchema`) →
//! `temperature`, `top_p`, `max_tokens`, `stop`, `n`, …, `response_format`. Thought parts
//! sent back by the client are dropped. Responses: text / `reasoning_content` (a
//! `thought: true` part) / `tool_calls` → parts; finish stop/tool_calls → `STOP`, length →
//! `MAX_TOKENS`, content_filter → `SAFETY`; usage → `usageMetadata`. Streams: one chunk per
//! text delta, a function call whole once its arguments end, the last chunk (empty parts)
//! with `finishReason` and `usageMetadata`.
//!
//! ## OpenAI client ↔ Anthropic upstream
//!
//! | OpenAI | Anthropic | notes |
//! |---|---|---|
//! | `system` / `developer` messages (anywhere) | top-level `system` (string, or text blocks when several) | hoisted in order |
//! | `user` text / `image_url` (http URL or `data:` base64) | `text` / `image` (`url` or `base64` source) | |
//! | `file` part with `data:` URL | `document` (PDF base64, text/* text source) / `image` | other types, `file_id` → refused |
//! | `input_audio` | — | refused |
//! | `assistant` content + `tool_calls` | `text` + `tool_use` blocks (`arguments` parsed; invalid JSON kept as `{"_raw_arguments": …}`) | |
//! | `tool` messages | `tool_result` blocks in a `user` message | consecutive results merged |
//! | consecutive same-role messages | merged into one message | alternation |
//! | `max_completion_tokens` / `max_tokens` | `max_tokens` | default `RequestOptions::default_max_tokens` |
//! | `temperature` (0–2) | `temperature` clamped to 0–1 | |
//! | `top_p`, `stop` | `top_p`, `stop_sequences` | |
//! | `tools[].function{name,description,parameters}` | `tools[]{name,description,input_schema}` | non-function tools → Unsupported |
//! | `tool_choice` auto / none / required / named | `auto` / `none` / `any` / `tool` | |
//! | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use: true` | |
//! | `user` | `metadata.user_id` | |
//! | `n > 1` | — | Unsupported |
//! | `response_format`, `logprobs`, `seed`, penalties, `logit_bias`, `reasoning_effort`, `stream_options` | — | dropped |
//! | `finish_reason` stop / length / tool_calls / content_filter | `stop_reason` end_turn, stop_sequence, pause_turn / max_tokens / tool_use / refusal | |
//! | `usage.prompt_tokens` (incl. cached), `prompt_tokens_details.cached_tokens` | `input_tokens + cache_read + cache_creation`, `cache_read_input_tokens` | |
//! | `message.reasoning_content` / `delta.reasoning_content` | `thinking` blocks / `thinking_delta` | Anthropic→OpenAI only; signatures and `redacted_thinking` dropped |
//!
//! ## Anthropic client ↔ OpenAI upstream
//!
//! | Anthropic | OpenAI | notes |
//! |---|---|---|
//! | `system` (string or text blocks) | first `system` message | blocks joined with `\n`; `cache_control` dropped |
//! | `text` / `image` (base64 → `data:` URL, url) / `document` (base64 → `file` part, text source → text) | content parts | |
//! | `tool_result` blocks | `tool` messages, placed before the rest of that user turn | `is_error` and images inside results dropped |
//! | `tool_use` blocks | `assistant.tool_calls` (`input` serialised) | |
//! | `thinking` / `redacted_thinking` blocks, `thinking` config | — | dropped (an OpenAI upstream cannot verify them) |
//! | `max_tokens` | `max_tokens` (`max_completion_tokens` for o1/o3/o4/gpt-5 models) | |
//! | `stop_sequences`, `temperature`, `top_p`, `metadata.user_id` | `stop`, `temperature`, `top_p`, `user` | `top_k` dropped |
//! | `tools` (client tools) | function tools | server tools (`web_search_…`) → Unsupported |
//! | `tool_choice` auto / any / tool / none, `disable_parallel_tool_use` | auto / required / named / none, `parallel_tool_calls: false` | |
//! | `stream: true` | `stream: true` + `stream_options.include_usage: true` | always, so usage is known |
//! | response `reasoning_content` | — | dropped: never produces thinking blocks |
//! | response `refusal` (no content) | `text` block | |
//!
//! ## OpenAI client → Gemini upstream
//!
//! `system`/`developer` → `systemInstruction`; `user`/`assistant` → `contents` roles
//! `user`/`model` (merged when consecutive); text; `data:` images/files → `inlineData`, other
//! URLs → `fileData` (media type guessed from the extension); `input_audio` → `inlineData`
//! (`audio/wav`, `audio/mp3`); `file_id` refused;
//! `tool_calls` → `functionCall`; `tool` messages → `functionResponse` (name looked up from the
//! earlier call; a JSON-object result is passed as is, else `{"content": text}`); tools →
//! `functionDeclarations` (`$schema`, `additionalProperties`, `strict` removed from schemas);
//! `tool_choice` → `functionCallingConfig` AUTO/NONE/ANY(+`allowedFunctionNames`);
//! `temperature`, `top_p`, `max_*tokens`, `stop`, `n`, penalties, `seed` → `generationConfig`;
//! `response_format` json_object/json_schema → `responseMimeType` (+`responseJsonSchema`).
//! Responses: `text` parts → content (`thought: true` parts → `reasoning_content`),
//! `functionCall` → `tool_calls` (id from the part, else `call_N`), finishReason STOP/
//! MAX_TOKENS/SAFETY… → stop (tool_calls when functions were called)/length/content_filter,
//! `usageMetadata` → usage (thoughts counted as output). Gemini 3 `thoughtSignature`s are not
//! carried back through OpenAI tool calls.
//!
//! ## Responses API client
//!
//! A Responses request (`POST /v1/responses`) becomes a Chat Completions request, then goes
//! on to the upstream's protocol through the converters above (OpenAI → Anthropic, OpenAI →
//! Gemini); media parts are checked against the final upstream, so refusals name the
//! client's own `input[i].content[j]`. Upstreams that serve the Responses API themselves
//! get the body unchanged (`model` rewritten).
//!
//! | Responses request | Chat Completions | notes |
//! |---|---|---|
//! | `instructions` | first `system` message | |
//! | `input` string | one `user` message | |
//! | `message` items (role user / assistant / system / developer) | messages (`developer` → `system`) | content a string or parts |
//! | `input_text` / `output_text` / `refusal` parts | text | system and assistant messages take text parts only |
//! | `input_image` `image_url` (URL or `data:`), `detail` | `image_url` part | `file_id` → refused |
//! | `input_file` `file_data` (`data:` URL, or bare base64 typed by `filename`) | OpenAI: `file` (PDF), `image_url`, `input_audio` (wav/mp3), text (text/*); Anthropic / Gemini: `file` → `document` / `inlineData` | what the upstream lacks → refused |
//! | `input_file` `file_url` | Anthropic: PDF `document` url; Gemini: `fileData` | OpenAI → refused (Chat Completions cannot fetch files) |
//! | `input_file` `file_id` | OpenAI: `file` `file_id` | others → refused |
//! | `input_audio` | `input_audio` | Anthropic → refused |
//! | `function_call` {`call_id`, `name`, `arguments`} | assistant `tool_calls` (`id` = `call_id`) | consecutive calls and the assistant message right before them merged into one message |
//! | `function_call_output` {`call_id`, `output`} | `tool` message (`tool_call_id`) | text parts joined; image / file parts refused; an unknown `call_id` → refused |
//! | `reasoning` items | — | dropped (OpenAI-side encrypted state) |
//! | `tools` `{type: function, name, description, parameters, strict}` | function tools | built-in tools (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`, `mcp`, `image_generation`, `local_shell`, …) and `custom` tools → refused |
//! | `tool_choice` auto / none / required / `{type: function, name}` | the same | |
//! | `tool_choice` `{type: allowed_tools, mode, tools}` | `tools` restricted to those named, `tool_choice` = mode | |
//! | `max_output_tokens` | `max_tokens` (`max_completion_tokens` for o1/o3/o4/gpt-5 models) | |
//! | `temperature`, `top_p`, `parallel_tool_calls`, `stream` | the same | `stream_options.include_usage` always on |
//! | `safety_identifier` (else `user`) | `user` | |
//! | `text.format` text / json_object / json_schema{name, schema, strict, description} | `response_format` | |
//! | `reasoning.effort` | `reasoning_effort` | dropped by the Anthropic and Gemini converters |
//! | `metadata`, `include`, `truncation`, `service_tier`, `top_logprobs`, `prompt_cache_key`, `max_tool_calls`, `stream_options`, `reasoning.summary`, `text.verbosity` | — | dropped |
//!
//! Refused with [`LlmError::InvalidRequest`] (a client 400, the message says how to send the
//! request statelessly): `previous_response_id`, `store: true`, `background: true`,
//! `conversation`, a stored `prompt`, `item_reference` items and built-in tools' items
//! (`web_search_call`, `computer_call`, `mcp_*`, …) in `input`. `store: false` or no
//! `store` is fine. Media and tool-result parts an upstream cannot carry are refused with
//! [`LlmError::Unsupported`] (also a 400).
//!
//! Responses: the chat completion's first choice becomes a `response` object (`id`
//! `resp_…` from the upstream id, `model` the client's): `reasoning_content` → a
//! `reasoning` item (summary text) first, content → a `message` item (`output_text`; a
//! `refusal` → a `refusal` part), each tool call → a `function_call` item whose `call_id`
//! is the upstream's call id. finish stop / tool_calls → `status: completed`; length →
//! `incomplete` (`max_output_tokens`); content_filter → `incomplete` (`content_filter`).
//! Usage → `usage` {`input_tokens` (cached included), `input_tokens_details.cached_tokens`,
//! `output_tokens`, `total_tokens`}. A native Responses body's usage is read by
//! [`usage_from_response`].
//!
//! # Streams
//!
//! Translated streams are re-framed event by event as upstream events arrive (nothing is
//! buffered beyond one SSE event; the final Anthropic `message_delta`, which needs the usage,
//! is sent when the upstream ends). See [`StreamProcessor`] for the contract and
//! [`sse`] for the codec's guarantees (split-invariant, bounded, bad UTF-8 → U+FFFD).
//!
//! Split invariance: translated streams and the OpenAI strip mode produce the same bytes
//! however the upstream body is split (property-tested; only `created` depends on the clock).
//! An unchanged passthrough forwards each chunk as it comes, so there the output is exactly
//! the input (and, after a failure, the input so far plus one error event).
//!
//! Translated bodies are re-serialised (object keys come out in sorted order); the
//! same-protocol rewrite keeps every field but may reorder keys the same way.
//!
//! # For the proxy
//!
//! - Paths: [`TranslatedRequest::path`]; Gemini needs `?alt=sse` for streams (included) and
//!   the model in the path ([`gemini_path`] for Gemini→Gemini, whose `stream` the proxy reads
//!   from the client's URL: `:streamGenerateContent` vs `:generateContent`).
//! - Credentials and fixed headers: [`upstream::auth_header`] (Gemini: `x-goog-api-key`),
//!   [`upstream::required_headers`] (Anthropic: `anthropic-version`), and
//!   [`upstream::client_only_headers`] to drop when translating.
//! - Streams: `StreamOptions::strip_usage_chunk = !TranslatedRequest::client_wants_usage`
//!   for OpenAI clients; translated responses are `text/event-stream` (drop the upstream's
//!   `content-length`). Upstream non-2xx: [`translate_error`] with the upstream status.
//! - Usage: non-stream [`translate_response`] returns it; streams
//!   [`StreamProcessor::final_usage`] with [`estimate_request_tokens`] as the input fallback.
//!
//! # Usage
//!
//! [`Usage`] is normalised (all prompt tokens in `input_tokens`, cache reads/writes as
//! subsets); see [`usage`] for each protocol's semantics. When usage is missing, estimate with
//! [`estimate_request_tokens`] / [`StreamProcessor::final_usage`] (marked `estimated`).
//! A provider's own reported charge (OpenRouter `usage.cost`, USD): [`reported_cost_usd`]
//! and [`StreamProcessor::reported_cost`].

pub mod errors;
pub mod estimate;
pub mod sse;
pub mod upstream;
pub mod usage;
pub mod wire;

mod convert;
mod error;
mod models;
mod stream;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use convert::gemini_embed::{gemini_embed_to_openai, openai_embeddings_to_gemini};
pub use convert::openai_gemini::gemini_path;
pub use error::LlmError;
pub use errors::translate_error;
pub use estimate::{
    anthropic_count_tokens, estimate_request_object, estimate_request_tokens,
    estimate_request_value, estimate_text_tokens,
};
pub use models::openai_model_list;
pub use stream::{GeminiFraming, gemini_stream_processor, stream_processor};
pub use usage::{Price, Usage, cost, reported_cost_usd, usage_from_response};

use convert::{from_slice, to_vec};

/// An LLM wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI Chat Completions (serde: "openai").
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini generateContent.
    Gemini,
    /// OpenAI Responses API (`POST /v1/responses`). A client protocol, served by every
    /// upstream through the Chat Completions representation (`convert::responses_chat`);
    /// as an upstream protocol only for OpenAI upstreams that serve `/v1/responses`
    /// themselves (the body then passes through, `model` rewritten).
    Responses,
}

/// Options for translating a client request to an upstream protocol.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// Model name to put in the upstream request (Gemini: in the path).
    pub upstream_model: &'a str,
    /// `max_tokens` when Anthropic requires it and the client gave none (e.g. 4096).
    pub default_max_tokens: u32,
    /// OpenAI upstreams: set `stream_options.include_usage=true` on streaming requests.
    pub force_openai_stream_usage: bool,
}

/// A request ready for the upstream.
#[derive(Debug, Clone)]
pub struct TranslatedRequest {
    /// Upstream body.
    pub body: Vec<u8>,
    /// The client asked for a stream.
    pub stream: bool,
    /// Upstream path (without base URL): "/v1/chat/completions", "/v1/messages",
    /// "/v1beta/models/{model}:generateContent" or ":streamGenerateContent?alt=sse".
    pub path: String,
    /// OpenAI client asked `stream_options.include_usage`.
    pub client_wants_usage: bool,
}

/// Client body (in `from`) -> upstream body (in `to`). `from == to`: only `model` is rewritten
/// (and OpenAI `include_usage` when forced); everything else is preserved.
pub fn translate_request(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    opts: &RequestOptions,
) -> Result<TranslatedRequest, LlmError> {
    let map: serde_json::Map<String, serde_json::Value> = convert::from_slice(body)?;
    translate_request_value(from, to, map, opts)
}

/// [`translate_request`] for a body the caller has already parsed (so a request is
/// parsed once, whatever the number of deployments tried).
pub fn translate_request_value(
    from: Protocol,
    to: Protocol,
    body: serde_json::Map<String, serde_json::Value>,
    opts: &RequestOptions,
) -> Result<TranslatedRequest, LlmError> {
    use Protocol::*;
    if from == to {
        return convert::same::request(from, body, opts);
    }
    let body = serde_json::Value::Object(body);
    match (from, to) {
        (OpenAi, Anthropic) => {
            let req: wire::openai::ChatRequest = from_value(body)?;
            let wants = wants_usage(&req);
            let out = convert::openai_anthropic::request(req, opts)?;
            Ok(TranslatedRequest {
                stream: out.stream.unwrap_or(false),
                body: to_vec(&out)?,
                path: "/v1/messages".into(),
                client_wants_usage: wants,
            })
        }
        (Anthropic, OpenAi) => {
            let req: wire::anthropic::MessagesRequest = from_value(body)?;
            let out = convert::anthropic_openai::request(req, opts)?;
            Ok(TranslatedRequest {
                stream: out.stream.unwrap_or(false),
                body: to_vec(&out)?,
                path: "/v1/chat/completions".into(),
                client_wants_usage: false,
            })
        }
        (OpenAi, Gemini) => {
            let req: wire::openai::ChatRequest = from_value(body)?;
            let wants = wants_usage(&req);
            let stream = req.stream.unwrap_or(false);
            let out = convert::openai_gemini::request(req)?;
            Ok(TranslatedRequest {
                body: to_vec(&out)?,
                stream,
                path: gemini_path(opts.upstream_model, stream),
                client_wants_usage: wants,
            })
        }
        (Anthropic, Gemini) => {
            // Composed through the OpenAI representation, like Gemini clients.
            let req: wire::anthropic::MessagesRequest = from_value(body)?;
            let stream = req.stream.unwrap_or(false);
            let chat = convert::anthropic_openai::request_for(req, opts, Gemini)?;
            let out = convert::openai_gemini::request(chat)?;
            Ok(TranslatedRequest {
                body: to_vec(&out)?,
                stream,
                path: gemini_path(opts.upstream_model, stream),
                client_wants_usage: false,
            })
        }
        (Gemini, _) => translate_gemini_request(to, body, false, opts),
        (Responses, _) => translate_responses_request(to, body, opts),
        _ => Err(unsupported(from, to)),
    }
}

/// A Gemini client's request (`generateContent` body; `stream` from the client's path:
/// `:streamGenerateContent`) for an upstream of protocol `to`. Gemini upstreams get the body
/// unchanged (model in the path); OpenAI and Anthropic upstreams a translation composed
/// through the OpenAI representation (Gemini → OpenAI, then OpenAI → Anthropic).
pub fn translate_gemini_request(
    to: Protocol,
    body: serde_json::Value,
    stream: bool,
    opts: &RequestOptions,
) -> Result<TranslatedRequest, LlmError> {
    if to == Protocol::Gemini {
        return Ok(TranslatedRequest {
            body: to_vec(&body)?,
            stream,
            path: gemini_path(opts.upstream_model, stream),
            client_wants_usage: true,
        });
    }
    let req: wire::gemini::GenerateRequest = from_value(body)?;
    let chat = convert::gemini_openai::request_for(req, opts.upstream_model, stream, to)?;
    if to == Protocol::OpenAi {
        return Ok(TranslatedRequest {
            body: to_vec(&chat)?,
            stream,
            path: "/v1/chat/completions".into(),
            client_wants_usage: true,
        });
    }
    let out = convert::openai_anthropic::request(chat, opts)?;
    Ok(TranslatedRequest {
        stream: out.stream.unwrap_or(false),
        body: to_vec(&out)?,
        path: "/v1/messages".into(),
        client_wants_usage: true,
    })
}

/// A Responses API client's request for an upstream of protocol `to` (not `Responses`:
/// that is the same-protocol passthrough). The request becomes a Chat Completions request
/// ([`convert::responses_chat::request`]), then for Anthropic and Gemini upstreams goes
/// through the OpenAI → Anthropic / OpenAI → Gemini converters. Stateful requests
/// (`previous_response_id`, `store: true`) are refused with `LlmError::InvalidRequest`.
fn translate_responses_request(
    to: Protocol,
    body: serde_json::Value,
    opts: &RequestOptions,
) -> Result<TranslatedRequest, LlmError> {
    let mut chat = convert::responses_chat::request(body, opts, to)?;
    let stream = chat.stream.unwrap_or(false);
    if stream {
        // The Responses stream ends with the usage (`response.completed`): ask for it.
        chat.stream_options = Some(wire::openai::StreamOptions {
            include_usage: Some(true),
        });
    }
    match to {
        Protocol::OpenAi => Ok(TranslatedRequest {
            body: to_vec(&chat)?,
            stream,
            path: "/v1/chat/completions".into(),
            client_wants_usage: true,
        }),
        Protocol::Anthropic => {
            let out = convert::openai_anthropic::request(chat, opts)?;
            Ok(TranslatedRequest {
                stream: out.stream.unwrap_or(false),
                body: to_vec(&out)?,
                path: "/v1/messages".into(),
                client_wants_usage: true,
            })
        }
        Protocol::Gemini => {
            let out = convert::openai_gemini::request(chat)?;
            Ok(TranslatedRequest {
                body: to_vec(&out)?,
                stream,
                path: gemini_path(opts.upstream_model, stream),
                client_wants_usage: true,
            })
        }
        Protocol::Responses => Err(unsupported(Protocol::Responses, to)),
    }
}

fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, LlmError> {
    serde_json::from_value(v).map_err(LlmError::json)
}

fn wants_usage(req: &wire::openai::ChatRequest) -> bool {
    req.stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false)
}

fn unsupported(from: Protocol, to: Protocol) -> LlmError {
    LlmError::Unsupported(format!(
        "translation from {from:?} clients to {to:?} upstreams"
    ))
}

/// Non-stream upstream response body -> client body, and the usage it reported.
/// Same protocol: the body is returned with `model` set to `client_model` (OpenAI, Anthropic)
/// or unchanged (Gemini, or a body that is not a JSON object).
pub fn translate_response(
    upstream: Protocol,
    client: Protocol,
    body: &[u8],
    client_model: &str,
) -> Result<(Vec<u8>, Option<Usage>), LlmError> {
    use Protocol::*;
    let usage = usage_from_response(upstream, body);
    match (upstream, client) {
        (Gemini, Gemini) => Ok((body.to_vec(), usage)),
        (u, c) if u == c => {
            let Ok(mut v) =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            else {
                return Ok((body.to_vec(), usage));
            };
            if v.contains_key("model") {
                v.insert("model".into(), client_model.into());
            }
            Ok((to_vec(&v)?, usage))
        }
        (Anthropic, OpenAi) => {
            let (out, u) = convert::openai_anthropic::response(from_slice(body)?, client_model);
            Ok((to_vec(&out)?, Some(u)))
        }
        (OpenAi, Anthropic) => {
            let (out, u) = convert::anthropic_openai::response(from_slice(body)?, client_model);
            Ok((to_vec(&out)?, u))
        }
        (Gemini, OpenAi) => {
            let (out, u) = convert::openai_gemini::response(from_slice(body)?, client_model);
            Ok((to_vec(&out)?, u))
        }
        (OpenAi, Gemini) => {
            let chat: wire::openai::ChatCompletion = from_slice(body)?;
            let out = convert::gemini_openai::response(chat, usage, client_model);
            Ok((to_vec(&out)?, usage))
        }
        (Gemini, Anthropic) => {
            let (chat, u) = convert::openai_gemini::response(from_slice(body)?, client_model);
            let (out, _) = convert::anthropic_openai::response(chat, client_model);
            Ok((to_vec(&out)?, u))
        }
        (Anthropic, Gemini) => {
            let (chat, u) = convert::openai_anthropic::response(from_slice(body)?, client_model);
            let out = convert::gemini_openai::response(chat, Some(u), client_model);
            Ok((to_vec(&out)?, Some(u)))
        }
        (OpenAi, Responses) => {
            let chat: wire::openai::ChatCompletion = from_slice(body)?;
            let out = convert::responses_chat::response(chat, usage, client_model);
            Ok((to_vec(&out)?, usage))
        }
        (Anthropic, Responses) => {
            let (chat, u) = convert::openai_anthropic::response(from_slice(body)?, client_model);
            let out = convert::responses_chat::response(chat, Some(u), client_model);
            Ok((to_vec(&out)?, Some(u)))
        }
        (Gemini, Responses) => {
            let (chat, u) = convert::openai_gemini::response(from_slice(body)?, client_model);
            let out = convert::responses_chat::response(chat, u, client_model);
            Ok((to_vec(&out)?, u))
        }
        (u, c) => Err(unsupported(c, u)),
    }
}

/// Options of one streamed response.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Model name the client asked for (echoed in translated events and the merge).
    pub client_model: String,
    /// OpenAI client that did not ask for stream usage (set it to
    /// `!TranslatedRequest::client_wants_usage`): passthrough drops the upstream's usage-only
    /// chunk (usage still recorded); translation to OpenAI generates no usage chunk.
    pub strip_usage_chunk: bool,
    /// Build [`StreamProcessor::merged`].
    pub collect_merge: bool,
    /// Bound on one SSE event (e.g. 1 MiB).
    pub max_event_bytes: usize,
}

/// Incremental processing of one streamed response (passthrough or translation).
///
/// Contract: `feed` every upstream chunk as it arrives (split anywhere) and send what it
/// returns; at a clean upstream end call `finish` and send its bytes. If `feed` or `finish`
/// returns `Err` (malformed or oversized event, upstream ended before the answer was
/// complete), or the upstream connection fails, send `error_event(msg)`: it returns any
/// output produced before the failure followed by one terminal error event in the client's
/// protocol (never a fake `[DONE]`/`message_stop`), and nothing after it is sent.
pub trait StreamProcessor: Send {
    /// Raw upstream bytes in, client bytes out (possibly empty).
    fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, LlmError>;
    /// Upstream ended cleanly: flush pending closing events (`[DONE]`, `message_stop`).
    fn finish(&mut self) -> Result<Bytes, LlmError>;
    /// Upstream failed mid-stream: pending output + a terminal error event.
    fn error_event(&mut self, message: &str) -> Bytes;
    /// Final usage carried by the stream, if it carried it (complete figures only).
    fn usage(&self) -> Option<Usage>;
    /// Output text so far (text, reasoning and tool-call arguments; bounded) for estimates.
    fn text_so_far(&self) -> &str;
    /// Merged answer in the client's non-stream response shape (None unless `collect_merge`).
    fn merged(&self) -> Option<serde_json::Value>;

    /// True when `feed` returns its input unchanged: the proxy may forward its own chunk and
    /// call [`StreamProcessor::observe`] instead of `feed`.
    fn passthrough_unchanged(&self) -> bool {
        false
    }
    /// Read a chunk on the side only (usage, text, merge); for `passthrough_unchanged`.
    fn observe(&mut self, chunk: &[u8]) -> Result<(), LlmError> {
        self.feed(chunk).map(|_| ())
    }
    /// The usage seen so far even if not final (e.g. Anthropic `message_start` input tokens).
    fn partial_usage(&self) -> Option<Usage> {
        self.usage()
    }
    /// The cost the upstream itself reported, in USD (OpenRouter's `usage.cost`; the
    /// last figure seen). None when it reported none. See [`reported_cost_usd`].
    fn reported_cost(&self) -> Option<f64> {
        None
    }
    /// Estimated output tokens of what was streamed so far.
    fn estimated_output_tokens(&self) -> u64 {
        estimate_text_tokens(self.text_so_far())
    }
    /// Usage to record: the stream's own if complete, else estimated (`estimated: true`) from
    /// partial figures, `estimated_input_tokens` (see [`estimate_request_tokens`]) and the
    /// output so far.
    fn final_usage(&self, estimated_input_tokens: u64) -> Usage {
        if let Some(u) = self.usage() {
            return u;
        }
        let partial = self.partial_usage().unwrap_or_default();
        Usage {
            input_tokens: if partial.input_tokens > 0 {
                partial.input_tokens
            } else {
                estimated_input_tokens
            },
            output_tokens: partial.output_tokens.max(self.estimated_output_tokens()),
            cached_input_tokens: partial.cached_input_tokens,
            cache_creation_tokens: partial.cache_creation_tokens,
            estimated: true,
        }
    }
}

/// A mid-stream error event in `client`'s protocol (for failures before any processor
/// exists, e.g. the upstream failed between headers and body).
pub fn stream_error_event(client: Protocol, message: &str) -> Bytes {
    errors::stream_event(client, errors::Kind::Server, message)
}

/// Build the tokenizer used by estimates now (optional; call once at start).
pub fn warm_up_estimator() {
    estimate::warm_up();
}
