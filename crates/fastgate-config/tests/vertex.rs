//! `kind: vertex` upstreams: project and location required there and refused
//! elsewhere, `base_url` optional, each credential a service-account key checked
//! at load without the key ever appearing in an error.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    reason = "a test fails by panicking"
)]

use fastgate_config::{ConfigError, UpstreamKind, load_str};

const TOKEN: &str = "tok-4f9a8b7c6d5e4f3a2b1c";
const PEM_BODY: &str = "UFJJVkFURUtFWUJPRFk";

fn sa_json(email: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"),
        "token_uri": "https://oauth2.example/token",
    })
    .to_string()
}

fn doc(upstream_extra: &str) -> String {
    doc_model(upstream_extra, "gemini-2.0-flash")
}

fn doc_model(upstream_extra: &str, model: &str) -> String {
    format!(
        r#"
admin: {{ token: "{TOKEN}" }}
upstreams:
  - name: vx
    kind: vertex
    credentials: [{{ name: sa1, key: '${{SA}}' }}]
{upstream_extra}
models:
  - name: flash
    deployments:
      - {{ upstream: vx, model: "{model}" }}
"#
    )
}

fn load_with(text: &str, sa: &str) -> Result<fastgate_config::Config, ConfigError> {
    let sa = sa.to_string();
    load_str(text, &move |name| (name == "SA").then(|| sa.clone()))
}

#[track_caller]
fn refused(text: &str, sa: &str, path: &str) -> String {
    match load_with(text, sa) {
        Ok(_) => panic!("should be refused at {path}:\n{text}"),
        Err(err) => {
            assert_eq!(err.field_path(), Some(path), "{err}");
            err.to_string()
        }
    }
}

#[test]
fn vertex_upstream_loads_without_base_url() {
    let cfg = load_with(
        &doc("    project: my-proj\n    location: us-central1\n"),
        &sa_json("gw@my-proj.iam.gserviceaccount.com"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let up = &cfg.upstreams[0];
    assert_eq!(up.kind, UpstreamKind::Vertex);
    assert_eq!(up.project.as_deref(), Some("my-proj"));
    assert_eq!(up.location.as_deref(), Some("us-central1"));
    assert!(up.base_url.is_empty());
    assert!(up.kind.is_llm());
}

#[test]
fn project_and_location_are_required_and_checked() {
    let sa = sa_json("a@b.iam");
    let e = refused(&doc("    location: global\n"), &sa, "upstreams[0].project");
    assert!(e.contains("required for kind vertex"), "{e}");
    let e = refused(&doc("    project: p\n"), &sa, "upstreams[0].location");
    assert!(e.contains("required for kind vertex"), "{e}");
    refused(
        &doc("    project: p\n    location: \"us/central\"\n"),
        &sa,
        "upstreams[0].location",
    );
}

#[test]
fn project_and_location_are_refused_on_other_kinds() {
    let text = format!(
        r#"
admin: {{ token: "{TOKEN}" }}
upstreams:
  - {{ name: oa, kind: openai, base_url: "https://api.openai.com", project: p }}
"#
    );
    let e = refused(&text, "", "upstreams[0].project");
    assert!(e.contains("only upstreams of kind vertex"), "{e}");
}

#[test]
fn a_broken_key_is_refused_without_quoting_it() {
    let text = doc("    project: p\n    location: global\n");
    let no_email = sa_json("");
    let e = refused(&text, &no_email, "upstreams[0].credentials[0].key");
    assert!(e.contains("client_email"), "{e}");
    assert!(!e.contains(PEM_BODY), "{e}");
    let e = refused(
        &text,
        "not json PRIVATEKEYBODY",
        "upstreams[0].credentials[0].key",
    );
    assert!(!e.contains("PRIVATEKEYBODY"), "{e}");
    let e = refused(
        &text,
        "/nonexistent/sa.json",
        "upstreams[0].credentials[0].key",
    );
    assert!(e.contains("/nonexistent/sa.json"), "{e}");
}

#[test]
fn model_names_go_into_the_path() {
    let sa = sa_json("a@b.iam");
    let extra = "    project: p\n    location: global\n";
    load_with(&doc_model(extra, "claude-sonnet-4@20250514"), &sa).unwrap_or_else(|e| panic!("{e}"));
    for bad in ["models/gemini-2.0-flash", "a:b", ".."] {
        let e = refused(
            &doc_model(extra, bad),
            &sa,
            "models[0].deployments[0].model",
        );
        assert!(e.contains("Vertex AI model name"), "{e}");
    }
}
