#![allow(clippy::panic, clippy::unwrap_used)]
//! Configuration alone decides where a request goes (issue 7 point 9): deployment
//! model names cannot alter an upstream URL, and no configured header can set `Host`.

use fastgate_config::{ConfigError, load_str};

fn models_doc(kind: &str, model: &str) -> String {
    // A JSON string is a YAML double-quoted scalar; YAML also wants DEL escaped.
    let model = serde_json::to_string(model)
        .unwrap_or_default()
        .replace('\u{7f}', "\\u007f");
    format!(
        r#"
admin: {{ token: "tok-4f9a8b7c6d5e4f3a2b1c" }}
upstreams:
  - {{ name: up, kind: {kind}, base_url: "https://llm.example", credentials: [ {{ name: k1, key: "sk-1" }} ] }}
models:
  - name: group
    deployments: [ {{ upstream: up, model: {model} }} ]
"#
    )
}

fn load(text: &str) -> Result<fastgate_config::Config, ConfigError> {
    load_str(text, &|_| None)
}

#[track_caller]
fn refused(kind: &str, model: &str) -> String {
    match load(&models_doc(kind, model)) {
        Ok(_) => panic!("{kind}: model {model:?} should be refused"),
        Err(e) => {
            assert_eq!(
                e.field_path(),
                Some("models[0].deployments[0].model"),
                "{kind} {model:?}: {e}"
            );
            e.to_string()
        }
    }
}

#[track_caller]
fn accepted(kind: &str, model: &str) {
    if let Err(e) = load(&models_doc(kind, model)) {
        panic!("{kind}: model {model:?} should be accepted: {e}");
    }
}

#[test]
fn gemini_model_is_one_path_segment() {
    for model in [
        "gemini-1.5-pro",
        "gemini-2.0-flash-exp",
        "models/gemini-1.5-flash-002",
        "gemini-pro:beta",
        "a_b~c@d+e",
    ] {
        accepted("gemini", model);
    }
    for model in [
        "a/b",
        "models/a/b",
        "../../v1/admin",
        "..",
        "a..b",
        "models/",
        "gemini?key=x",
        "gemini#frag",
        "gemini%2F..",
        "gem ini",
        "gemini\n",
        "gemini\t",
        "gemini\u{0}",
        "gemini\\x",
        "gemini;x",
        "géminі",
    ] {
        let msg = refused("gemini", model);
        assert!(!msg.is_empty());
    }
    let msg = refused("gemini", "a/b");
    assert!(msg.contains("URL path"), "{msg}");
}

#[test]
fn body_only_models_keep_slashes() {
    for kind in ["openai", "anthropic", "mock"] {
        for model in [
            "gpt-4o",
            "openai/gpt-4o",
            "openai/gpt-4o:online",
            "meta-llama/Meta-Llama-3-8B-Instruct",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "ft:gpt-3.5-turbo:org:suffix:id",
            "llama3:8b",
            "a..b",
        ] {
            accepted(kind, model);
        }
        for model in [
            "",
            "   ",
            "gpt 4o",
            " gpt-4o",
            "gpt-4o\n",
            "gpt\r\nx-injected: 1",
            "gpt\u{7f}",
            "gpt\u{a0}4o",
            "gpt?x=1",
            "gpt#x",
            "gpt%2F..",
            "a\\b",
        ] {
            refused(kind, model);
        }
    }
    let msg = refused("openai", "gpt?x=1");
    assert!(msg.contains("`?`"), "{msg}");
    let too_long = "m".repeat(201);
    refused("openai", &too_long);
    accepted("openai", &"m".repeat(200));
}

fn host_doc(section: &str) -> String {
    format!(
        r#"
admin: {{ token: "tok-4f9a8b7c6d5e4f3a2b1c" }}
upstreams:
  - name: up
    kind: openai
    base_url: "https://llm.example"
    credentials: [ {{ name: k1, key: "sk-1" }} ]
{section}
"#
    )
}

#[test]
fn host_header_cannot_be_configured() {
    let cases = [
        (
            "    add_headers: { Host: evil.example }\n",
            "upstreams[0].add_headers.Host",
        ),
        (
            "    headers: { host: evil.example }\n",
            "upstreams[0].headers.host",
        ),
        ("    auth_header: HOST\n", "upstreams[0].auth_header"),
        (
            "routes:\n  - { name: r, match: { path: \"/v1/**\" }, upstream: up, add_headers: { host: evil.example } }\n",
            "routes[0].add_headers.host",
        ),
        (
            "models:\n  - { name: g, deployments: [ { upstream: up, model: m, add_headers: { HOST: evil.example } } ] }\n",
            "models[0].deployments[0].add_headers.HOST",
        ),
    ];
    for (section, path) in cases {
        let text = host_doc(section);
        match load(&text) {
            Ok(_) => panic!("should be refused:\n{text}"),
            Err(e) => {
                assert_eq!(e.field_path(), Some(path), "{e}");
                assert!(e.to_string().contains("host"), "{e}");
            }
        }
    }
    // Neighbours stay allowed.
    for section in [
        "    add_headers: { x-forwarded-host: gw.example, x-host: a }\n",
        "routes:\n  - { name: r, match: { path: \"/v1/**\", headers: { host: api.example } }, upstream: up, remove_headers: [ host ] }\n",
    ] {
        let text = host_doc(section);
        if let Err(e) = load(&text) {
            panic!("should be accepted: {e}\n{text}");
        }
    }
}
