//! Clients never choose where a request goes (issue 7 point 9): body fields naming a
//! URL, a forged `Host`, an absolute-form request target and `X-Forwarded-Host` (and
//! its relatives) leave the upstream host and path exactly as configured. A second
//! mock, the "attacker" upstream, is reachable on loopback and named by every one of
//! those client inputs: it must see nothing, and the configured mock must see its own
//! authority in `Host` and the configured path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod raw;

use common::{Backend, Harness};
use fastgate_testkit::{MockUpstream, RecordedRequest};
use serde_json::{Value, json};

const CONFIG: &str = r#"
upstreams:
  - { name: plain, kind: http, base_url: "{MOCK}/base", credentials: [ { name: k1, key: "sk-plain" } ] }
  - { name: oai, kind: openai, base_url: "{MOCK}/oai", credentials: [ { name: k2, key: "sk-oai" } ] }
  - { name: gem, kind: gemini, base_url: "{MOCK}", credentials: [ { name: k3, key: "gem-key" } ] }
models:
  - { name: gpt, deployments: [ { upstream: oai, model: gpt-upstream } ] }
  - { name: flash, deployments: [ { upstream: gem, model: gemini-upstream } ] }
routes:
  - { name: pass, match: { path: "/api/**" }, upstream: plain }
"#;

struct Setup {
    h: Harness,
    evil: MockUpstream,
    key: String,
}

impl Setup {
    async fn start(backend: Backend) -> Setup {
        let evil = MockUpstream::start().await;
        let h = Harness::start(backend, CONFIG).await;
        let key = h.key().await;
        Setup { h, evil, key }
    }

    /// `host:port` of the attacker's upstream.
    fn evil(&self) -> String {
        self.evil.addr().to_string()
    }

    /// Headers a client might use to steer a proxy, all naming the attacker.
    fn steering_headers(&self) -> Vec<(String, String)> {
        let evil = self.evil();
        vec![
            ("x-forwarded-host".into(), evil.clone()),
            ("x-forwarded-proto".into(), "https".into()),
            ("x-forwarded-port".into(), "1".into()),
            ("forwarded".into(), format!("host={evil};proto=http")),
            ("x-original-url".into(), "/evil/path".into()),
            ("x-rewrite-url".into(), "/evil/path".into()),
            ("x-host".into(), evil.clone()),
        ]
    }

    /// A JSON body whose URL-like fields all name the attacker.
    fn steering_body(&self, model: Option<&str>) -> Value {
        let url = format!("http://{}/evil", self.evil());
        let mut v = json!({
            "api_base": url,
            "base_url": url,
            "url": url,
            "endpoint": url,
            "messages": [ { "role": "user", "content": "hi" } ],
        });
        if let Some(m) = model {
            v["model"] = json!(m);
        }
        v
    }

    /// The request the configured mock received last, after checking that exactly
    /// one more arrived since `before` and that the attacker saw nothing.
    fn seen(&self, before: usize, what: &str) -> RecordedRequest {
        assert_eq!(self.h.mock.request_count(), before + 1, "{what}");
        assert_eq!(self.evil.request_count(), 0, "{what}: attacker reached");
        let rec = self.h.mock.last_request().unwrap();
        assert_eq!(
            rec.header("host"),
            Some(self.h.mock.addr().to_string().as_str()),
            "{what}: upstream Host"
        );
        rec
    }

    async fn stop(self) {
        self.h.stop().await;
        self.evil.shutdown().await;
    }
}

/// Body fields and steering headers on a passthrough route and on the LLM endpoints.
async fn body_fields_and_forwarding_headers(backend: Backend) {
    let s = Setup::start(backend).await;
    let cases: [(&str, Option<&str>, &str); 3] = [
        ("/api/things?q=1", None, "/base/api/things?q=1"),
        (
            "/v1/chat/completions",
            Some("gpt"),
            "/oai/v1/chat/completions",
        ),
        (
            "/v1/chat/completions",
            Some("flash"),
            "/v1beta/models/gemini-upstream:generateContent",
        ),
    ];
    for (path, model, upstream_path) in cases {
        let before = s.h.mock.request_count();
        let body = s.steering_body(model);
        let mut rb = s.h.http.post(s.h.url(path)).bearer_auth(&s.key).json(&body);
        for (k, v) in s.steering_headers() {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.unwrap();
        let what = format!("{path} {model:?}");
        assert_eq!(resp.status(), 200, "{what}");
        let answer: Value = resp.json().await.unwrap();
        let rec = s.seen(before, &what);
        assert_eq!(rec.path, upstream_path, "{what}");
        match model {
            // Passthrough: the body goes as it came; the gateway never reads a URL
            // from it (the mock echoes what it received).
            None => {
                assert_eq!(rec.json().unwrap(), body, "{what}");
                assert_eq!(answer["path"], upstream_path, "{what}");
            }
            Some(_) => {
                assert_eq!(
                    answer["choices"][0]["message"]["content"], "tok0 tok1 tok2 tok3 tok4 ",
                    "{what}"
                );
            }
        }
        if model == Some("gpt") {
            assert_eq!(rec.json().unwrap()["model"], "gpt-upstream");
        }
    }
    s.stop().await;
}
both_backends!(
    body_fields_and_forwarding_headers,
    body_fields_and_forwarding_headers
);

/// A forged `Host` and an absolute-form request target naming the attacker, over a
/// raw socket (client libraries would not send them as written).
async fn host_header_and_absolute_form(backend: Backend) {
    let s = Setup::start(backend).await;
    let addr = s.h.server().addr;
    let evil = s.evil();
    let auth = format!("Authorization: Bearer {}", s.key);
    let chat = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#;
    let json_ct = "Content-Type: application/json".to_owned();
    let cases: Vec<(String, Vec<String>, &str, &str)> = vec![
        (
            "GET /api/host HTTP/1.1".into(),
            vec![format!("Host: {evil}"), auth.clone()],
            "",
            "/base/api/host",
        ),
        (
            format!("GET http://{evil}/api/absolute HTTP/1.1"),
            vec![format!("Host: {evil}"), auth.clone()],
            "",
            "/base/api/absolute",
        ),
        (
            format!("GET https://{evil}/api/absolute-tls?x=1 HTTP/1.1"),
            vec![format!("Host: {evil}"), auth.clone()],
            "",
            "/base/api/absolute-tls?x=1",
        ),
        (
            format!("GET http://{evil}/api/other-host HTTP/1.1"),
            vec!["Host: gateway.test".into(), auth.clone()],
            "",
            "/base/api/other-host",
        ),
        (
            "POST /v1/chat/completions HTTP/1.1".into(),
            vec![format!("Host: {evil}"), auth.clone(), json_ct.clone()],
            chat,
            "/oai/v1/chat/completions",
        ),
        (
            format!("POST http://{evil}/v1/chat/completions HTTP/1.1"),
            vec![format!("Host: {evil}"), auth.clone(), json_ct.clone()],
            chat,
            "/oai/v1/chat/completions",
        ),
    ];
    for (line, headers, body, upstream_path) in cases {
        let before = s.h.mock.request_count();
        let resp = raw::send(addr, &line, &headers, body).await;
        assert_eq!(resp.status, 200, "{line}: {}", resp.body);
        let rec = s.seen(before, &line);
        assert_eq!(rec.path, upstream_path, "{line}");
    }

    // An absolute-form target for the admin area is still the admin area's path:
    // it is refused as a proxy route and nothing is forwarded anywhere.
    let before = s.h.mock.request_count();
    let resp = raw::send(
        addr,
        &format!("GET http://{evil}//admin/api/keys HTTP/1.1"),
        &[format!("Host: {evil}"), auth.clone()],
        "",
    )
    .await;
    assert_eq!(
        (resp.status, resp.error_code().as_deref()),
        (404, Some("route_not_found")),
        "{}",
        resp.body
    );
    // CONNECT (authority-form) never opens a tunnel.
    let resp = raw::send(
        addr,
        &format!("CONNECT {evil} HTTP/1.1"),
        &[format!("Host: {evil}"), auth],
        "",
    )
    .await;
    assert!(
        (400..500).contains(&resp.status),
        "CONNECT -> {} {}",
        resp.status,
        resp.body
    );
    assert_eq!(s.h.mock.request_count(), before, "nothing forwarded");
    assert_eq!(s.evil.request_count(), 0, "attacker reached");
    s.stop().await;
}
both_backends!(host_header_and_absolute_form, host_header_and_absolute_form);

/// Model groups created through the admin API go through the same validation: a
/// Gemini deployment whose model would change the upstream URL is refused with 400
/// naming the field, nothing is stored or sent; a slash stays fine where the name only
/// travels in the JSON body.
async fn admin_api_model_names(backend: Backend) {
    let s = Setup::start(backend).await;
    for model in [
        "../../admin",
        "gemini/x",
        "gemini?alt=x",
        "gemini%2F..",
        "a b",
    ] {
        let resp = s
            .h
            .http
            .post(s.h.url("/admin/api/models"))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(
                &json!({ "name": "bad", "deployments": [ { "upstream": "gem", "model": model } ] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{model}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("deployments[0].model"), "{model}: {text}");
    }
    let listed: Value =
        s.h.admin_get("/admin/api/models")
            .await
            .json()
            .await
            .unwrap();
    assert!(
        !listed.to_string().contains("\"bad\""),
        "refused group listed: {listed}"
    );

    let resp = s
        .h
        .http
        .post(s.h.url("/admin/api/models"))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&json!({ "name": "routed", "deployments": [ { "upstream": "oai", "model": "openai/gpt-4o" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let before = s.h.mock.request_count();
    let resp =
        s.h.http
            .post(s.h.url("/v1/chat/completions"))
            .bearer_auth(&s.key)
            .json(&s.steering_body(Some("routed")))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    let rec = s.seen(before, "routed");
    assert_eq!(rec.path, "/oai/v1/chat/completions");
    assert_eq!(rec.json().unwrap()["model"], "openai/gpt-4o");
    s.stop().await;
}
both_backends!(admin_api_model_names, admin_api_model_names);
