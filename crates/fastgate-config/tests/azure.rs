//! `kind: azure` upstreams: `api_version` required there and refused elsewhere,
//! the resource URL as `base_url`, deployment names that go into the path.
#![allow(clippy::panic, reason = "a test fails by panicking")]

use fastgate_config::{ConfigError, UpstreamKind, load_str, validate_all};

const TOKEN: &str = "tok-4f9a8b7c6d5e4f3a2b1c";

fn doc(upstream: &str, deployment: &str) -> String {
    format!(
        r#"
admin: {{ token: "{TOKEN}" }}
upstreams:
  - name: other
    kind: openai
    base_url: "https://api.openai.com"
{upstream}
models:
  - name: gpt-4o
    deployments:
      - {{ upstream: az, model: "{deployment}" }}
"#
    )
}

fn azure(extra: &str) -> String {
    format!(
        "  - name: az\n    kind: azure\n    base_url: \"https://myres.openai.azure.com\"\n    credentials: [{{ name: k1, key: \"azk-1\" }}]\n{extra}"
    )
}

fn load(text: &str) -> Result<fastgate_config::Config, ConfigError> {
    load_str(text, &|_| None)
}

#[track_caller]
fn refused(text: &str, path: &str) -> String {
    match load(text) {
        Ok(_) => panic!("should be refused at {path}:\n{text}"),
        Err(err) => {
            assert_eq!(err.field_path(), Some(path), "{err}");
            err.to_string()
        }
    }
}

#[test]
fn azure_upstream_with_api_version_loads() {
    let cfg = load(&doc(
        &azure("    api_version: \"2024-10-21\"\n"),
        "gpt-4o-prod",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let up = &cfg.upstreams[1];
    assert_eq!(up.kind, UpstreamKind::Azure);
    assert_eq!(up.api_version.as_deref(), Some("2024-10-21"));
    assert!(up.kind.is_llm());
    // Entra tokens: another header and scheme.
    let entra = azure(
        "    api_version: \"2025-04-01-preview\"\n    auth_header: authorization\n    auth_scheme: \"Bearer \"\n",
    );
    load(&doc(&entra, "gpt-4o")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn azure_without_api_version_is_refused() {
    let msg = refused(&doc(&azure(""), "gpt-4o"), "upstreams[1].api_version");
    assert!(msg.contains("required for kind azure"), "{msg}");
}

#[test]
fn malformed_api_versions_are_refused() {
    for bad in [
        "",
        "latest",
        "2024-10",
        "2024-13-01",
        "2024-10-21-beta",
        "2024-10-21&x=1",
    ] {
        let text = doc(&azure(&format!("    api_version: \"{bad}\"\n")), "gpt-4o");
        let msg = refused(&text, "upstreams[1].api_version");
        assert!(msg.contains("YYYY-MM-DD"), "{bad}: {msg}");
    }
}

#[test]
fn api_version_on_other_kinds_is_refused() {
    let text = format!(
        r#"
admin: {{ token: "{TOKEN}" }}
upstreams:
  - name: oa
    kind: openai
    base_url: "https://api.openai.com"
    api_version: "2024-10-21"
"#
    );
    let msg = refused(&text, "upstreams[0].api_version");
    assert!(
        msg.contains("only upstreams of kind azure") && msg.contains("openai"),
        "{msg}"
    );
}

#[test]
fn base_url_must_be_the_resource() {
    for url in [
        "https://myres.openai.azure.com/openai",
        "https://myres.openai.azure.com/openai/",
        "https://myres.openai.azure.com/openai/deployments/gpt-4o",
    ] {
        let up = format!(
            "  - name: az\n    kind: azure\n    base_url: \"{url}\"\n    api_version: \"2024-10-21\"\n"
        );
        let msg = refused(&doc(&up, "gpt-4o"), "upstreams[1].base_url");
        assert!(msg.contains("resource URL"), "{msg}");
    }
    // A gateway in front of Azure may add a prefix of its own.
    let up = "  - name: az\n    kind: azure\n    base_url: \"https://apim.example.com/aoai\"\n    api_version: \"2024-10-21\"\n";
    load(&doc(up, "gpt-4o")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn dot_deployment_names_are_refused() {
    let up = azure("    api_version: \"2024-10-21\"\n");
    for bad in [".", ".."] {
        let msg = refused(&doc(&up, bad), "models[0].deployments[0].model");
        assert!(msg.contains("Azure deployment"), "{msg}");
    }
    // Anything else is percent-encoded into one path segment.
    load(&doc(&up, "my.deploy_1")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn every_azure_problem_is_reported() {
    let text = doc(&azure("    api_version: \"bad\"\n"), "..");
    let cfg: fastgate_config::Config =
        yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<String> = validate_all(&cfg)
        .iter()
        .filter_map(|e| e.field_path().map(str::to_owned))
        .collect();
    assert!(
        paths.contains(&"upstreams[1].api_version".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"models[0].deployments[0].model".to_owned()),
        "{paths:?}"
    );
}
