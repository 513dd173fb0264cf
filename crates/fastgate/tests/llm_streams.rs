//! LLM streams: translated streams are incremental (the client gets translated
//! events while the upstream still holds the rest), a client that goes away mid
//! translated stream cancels the upstream request, and a stream's audit row
//! carries its time to first byte, its exact chunk count and its cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness};
use fastgate_testkit::sse::{SseEvent, SseParser};
use futures_util::StreamExt;
use serde_json::{Value, json};

const MODELS: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-openai-secret" } ] }
  - { name: ant, kind: anthropic, base_url: "{MOCK}", credentials: [ { name: a1, key: "sk-ant-secret" } ] }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-upstream } ]
    price: { input: 2.0, output: 8.0 }
  - name: claude
    deployments: [ { upstream: ant, model: claude-upstream } ]
"#;

/// How long a test waits for an event the gateway should pass on now.
const SOON: Duration = Duration::from_secs(5);

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open stream: the response body and the events parsed so far.
struct Open {
    request_id: String,
    body: Body,
    parser: SseParser,
    events: Vec<SseEvent>,
}

impl Open {
    async fn start(
        h: &Harness,
        key: &str,
        anthropic_client: bool,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Open {
        let mut rb = if anthropic_client {
            h.http
                .post(h.url("/v1/messages"))
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01")
        } else {
            h.http.post(h.url("/v1/chat/completions")).bearer_auth(key)
        };
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Open {
            request_id: resp.headers()["x-request-id"].to_str().unwrap().to_string(),
            body: Box::pin(resp.bytes_stream()),
            parser: SseParser::new(),
            events: Vec::new(),
        }
    }

    /// Reads until `pred` holds for the events so far; fails after [`SOON`].
    async fn read_until(&mut self, what: &str, pred: impl Fn(&[SseEvent]) -> bool) {
        while !pred(&self.events) {
            let chunk = tokio::time::timeout(SOON, self.body.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("{what}: nothing within {SOON:?}; got {:?}", self.events)
                })
                .unwrap_or_else(|| panic!("{what}: stream ended; got {:?}", self.events))
                .unwrap();
            self.events.extend(self.parser.feed(&chunk));
        }
    }

    async fn read_to_end(&mut self) {
        while let Some(chunk) = self.body.next().await {
            self.events.extend(self.parser.feed(&chunk.unwrap()));
        }
    }

    fn json(&self) -> Vec<Value> {
        self.events.iter().filter_map(SseEvent::json).collect()
    }

    fn names(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| e.event.as_deref())
            .collect()
    }
}

/// The concatenated `choices[0].delta.content` of OpenAI chunks.
fn openai_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The concatenated `delta.text` of Anthropic events.
fn anthropic_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|v| v["delta"]["text"].as_str())
        .collect()
}

fn chat(stream: bool) -> Value {
    json!({ "model": "claude", "stream": stream, "max_tokens": 100,
            "messages": [{ "role": "user", "content": "hello" }] })
}

async fn openai_client_anthropic_upstream_is_incremental(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    // The mock sends message_start … 5 text deltas, then holds the last 3 events.
    let mut s = Open::start(&h, &key, false, chat(true), &[("x-mock-hold", "oa")]).await;
    s.read_until("the 5 translated tokens", |e| {
        openai_text(&e.iter().filter_map(SseEvent::json).collect::<Vec<_>>())
            == "tok0 tok1 tok2 tok3 tok4 "
    })
    .await;
    assert_eq!(h.mock.chunks_sent(), 8, "the mock still holds the rest");
    assert!(
        s.json()
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()),
        "no finish before the upstream's: {:?}",
        s.events
    );
    assert!(!s.events.iter().any(SseEvent::is_done));
    assert_eq!(s.json()[0]["object"], "chat.completion.chunk");
    h.mock.release("oa");
    s.read_to_end().await;
    assert_eq!(h.mock.chunks_sent(), 11);
    assert!(s.events.last().unwrap().is_done(), "{:?}", s.events);
    assert!(
        s.json()
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{:?}",
        s.events
    );
    assert_eq!(openai_text(&s.json()), "tok0 tok1 tok2 tok3 tok4 ");
    let rec = h.audit_of(&s.request_id).await;
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    assert_eq!(rec.tokens_out, Some(5));
    h.stop().await;
}
both_backends!(
    openai_client_anthropic_upstream_is_incremental,
    openai_client_anthropic_upstream_is_incremental
);

async fn anthropic_client_openai_upstream_is_incremental(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let mut body = chat(true);
    body["model"] = json!("gpt");
    // The mock sends the role chunk and 5 tokens, then holds finish, usage, [DONE].
    let mut s = Open::start(&h, &key, true, body, &[("x-mock-hold", "ao")]).await;
    s.read_until("the 5 translated tokens", |e| {
        anthropic_text(&e.iter().filter_map(SseEvent::json).collect::<Vec<_>>())
            == "tok0 tok1 tok2 tok3 tok4 "
    })
    .await;
    assert_eq!(h.mock.chunks_sent(), 6, "the mock still holds the rest");
    assert_eq!(s.names().first(), Some(&"message_start"), "{:?}", s.events);
    assert!(!s.names().contains(&"message_stop"), "{:?}", s.events);
    assert!(!s.names().contains(&"message_delta"), "{:?}", s.events);
    h.mock.release("ao");
    s.read_to_end().await;
    assert_eq!(s.names().last(), Some(&"message_stop"), "{:?}", s.events);
    let delta = s
        .json()
        .into_iter()
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 5);
    assert_eq!(anthropic_text(&s.json()), "tok0 tok1 tok2 tok3 tok4 ");
    let rec = h.audit_of(&s.request_id).await;
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    assert_eq!(rec.tokens_out, Some(5));
    h.stop().await;
}
both_backends!(
    anthropic_client_openai_upstream_is_incremental,
    anthropic_client_openai_upstream_is_incremental
);

/// A client that drops a translated stream (both directions) cancels the
/// upstream request; the audit row says why the stream ended.
async fn disconnect_mid_translated_stream_cancels_upstream(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    for (n, anthropic_client, model) in [(1, false, "claude"), (2, true, "gpt")] {
        let mut body = chat(true);
        body["model"] = json!(model);
        let gate = format!("never-{n}");
        let mut s = Open::start(
            &h,
            &key,
            anthropic_client,
            body,
            &[("x-mock-hold", gate.as_str())],
        )
        .await;
        s.read_until("a first translated event", |e| !e.is_empty())
            .await;
        drop(s.body);
        assert!(
            h.mock
                .wait_until(SOON, |m| m.streams_cancelled() == n)
                .await,
            "upstream stream {n} not cancelled"
        );
        let rec = h.audit_of(&s.request_id).await;
        assert_eq!(
            rec.error_message.as_deref(),
            Some("client disconnected before the response completed"),
            "{rec:?}"
        );
        assert!(rec.is_stream);
        assert_eq!(rec.model.as_deref(), Some(model));
    }
    h.stop().await;
}
both_backends!(
    disconnect_mid_translated_stream_cancels_upstream,
    disconnect_mid_translated_stream_cancels_upstream
);

async fn stream_audit_has_ttfb_exact_chunks_and_cost(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    // Head after 50 ms, then one event every 10 ms (each its own chunk).
    let body = json!({ "model": "gpt", "stream": true,
                       "messages": [{ "role": "user", "content": "hello there friend" }] });
    let mut s = Open::start(
        &h,
        &key,
        false,
        body,
        &[
            ("x-mock-delay-ms", "50"),
            ("x-mock-chunks", "6"),
            ("x-mock-chunk-delay-ms", "10"),
        ],
    )
    .await;
    s.read_to_end().await;
    // role, 6 tokens, finish, [DONE]; the usage chunk the gateway asked for is
    // read and not passed on (the client did not ask for it).
    assert_eq!(s.events.len(), 9, "{:?}", s.events);
    assert_eq!(h.mock.chunks_sent(), 10);
    assert_eq!(openai_text(&s.json()), "tok0 tok1 tok2 tok3 tok4 tok5 ");
    let rec = h.audit_of(&s.request_id).await;
    assert!(rec.is_stream);
    assert_eq!(rec.status_code, 200);
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    assert_eq!(rec.stream_chunks, 9);
    let ttfb = rec.ttfb_ms.expect("ttfb_ms");
    assert!(ttfb >= 50.0, "ttfb {ttfb} ms, the head came after 50 ms");
    assert!(
        ttfb <= rec.duration_ms,
        "ttfb {ttfb} > duration {}",
        rec.duration_ms
    );
    assert!(
        rec.duration_ms >= ttfb + 60.0,
        "the stream lasted 9 gaps of 10 ms after the head: {} vs {ttfb}",
        rec.duration_ms
    );
    // The mock counts 3 prompt words and 6 completion tokens.
    assert_eq!(rec.tokens_in, Some(3));
    assert_eq!(rec.tokens_out, Some(6));
    assert!(!rec.tokens_estimated);
    let cost = rec.cost.expect("cost from the configured price");
    let expected = (3.0 * 2.0 + 6.0 * 8.0) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    h.stop().await;
}
both_backends!(
    stream_audit_has_ttfb_exact_chunks_and_cost,
    stream_audit_has_ttfb_exact_chunks_and_cost
);
