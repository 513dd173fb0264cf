//! Every ```yaml block of docs/providers.md is a complete configuration that loads
//! through the same loader and validator as `fastgate check`: a provider snippet that
//! stops parsing or validating fails here.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    reason = "a test fails by panicking"
)]

use fastgate_config::{UpstreamKind, load_str};

const DOC: &str = include_str!("../../../docs/providers.md");

/// (line of the opening fence, text) of each ```yaml block.
fn yaml_blocks(doc: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in doc.lines().enumerate() {
        match current.as_mut() {
            None if line.trim_start().starts_with("```yaml") => {
                current = Some((n + 1, String::new()));
            }
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(current.take());
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unclosed ```yaml block in providers.md");
    blocks
}

/// A service-account key shaped as Google issues them (not a usable key).
fn service_account_json() -> String {
    serde_json::json!({
        "type": "service_account",
        "client_email": "fastgate@my-gcp-project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nUFJJVkFURUtFWUJPRFk\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

/// Whether the page references `${name}`.
fn referenced(name: &str) -> bool {
    DOC.contains(&format!("${{{name}}}"))
}

/// The environment: each `${VAR}` the page references set to a test value, nothing else
/// (the loader also asks for its `FASTGATE_*` overrides and shortcuts such as
/// `DATABASE_URL`, which must stay unset here).
fn env(name: &str) -> Option<String> {
    match name {
        _ if !referenced(name) => None,
        "VERTEX_SA_JSON" => Some(service_account_json()),
        other => Some(format!("test-value-for-{}", other.to_ascii_lowercase())),
    }
}

#[test]
fn every_provider_snippet_is_a_valid_configuration() {
    let blocks = yaml_blocks(DOC);
    assert!(
        blocks.len() >= 10,
        "expected a snippet per provider, found {}",
        blocks.len()
    );
    for (line, text) in &blocks {
        let cfg = load_str(text, &env)
            .unwrap_or_else(|e| panic!("docs/providers.md block at line {line}: {e}\n{text}"));
        assert!(
            !cfg.upstreams.is_empty(),
            "block at line {line}: no upstream"
        );
        assert!(
            !cfg.models.is_empty(),
            "block at line {line}: no model group"
        );
        for group in &cfg.models {
            for d in &group.deployments {
                assert!(
                    cfg.upstreams.iter().any(|u| u.name == d.upstream),
                    "block at line {line}: {} uses an undeclared upstream",
                    group.name
                );
            }
        }
    }
}

#[test]
fn snippets_cover_every_documented_provider() {
    let blocks = yaml_blocks(DOC);
    let configs: Vec<_> = blocks
        .iter()
        .map(|(_, t)| load_str(t, &env).unwrap())
        .collect();
    let base_urls: Vec<&str> = configs
        .iter()
        .flat_map(|c| c.upstreams.iter().map(|u| u.base_url.as_str()))
        .collect();
    for url in [
        "https://api.openai.com",
        "https://api.anthropic.com",
        "https://generativelanguage.googleapis.com",
        "https://myres.openai.azure.com",
        "https://api.deepseek.com",
        "https://dashscope.aliyuncs.com/compatible-mode",
        "https://openrouter.ai/api",
        "http://127.0.0.1:11434",
    ] {
        assert!(base_urls.contains(&url), "no snippet for {url}");
    }
    let kinds: Vec<UpstreamKind> = configs
        .iter()
        .flat_map(|c| c.upstreams.iter().map(|u| u.kind))
        .collect();
    for kind in [
        UpstreamKind::Openai,
        UpstreamKind::Anthropic,
        UpstreamKind::Gemini,
        UpstreamKind::Vertex,
        UpstreamKind::Azure,
    ] {
        assert!(kinds.contains(&kind), "no snippet of kind {kind:?}");
    }
}

#[test]
fn a_broken_snippet_would_be_caught() {
    // The extraction and the loader really look at the text: a mistyped field fails.
    let broken = "upstreams:\n  - { name: x, kind: openai, base_ur: \"http://h\" }\n";
    assert!(load_str(broken, &env).is_err());
    let blocks = yaml_blocks("a\n```yaml\nk: 1\n```\nb\n```sh\nnot yaml\n```\n");
    assert_eq!(blocks, [(2, "k: 1\n".to_owned())]);
}
