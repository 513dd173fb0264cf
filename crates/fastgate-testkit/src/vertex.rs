//! Vertex AI: a token endpoint and the aiplatform model paths, checked the way
//! Google would check them.
//!
//! - `POST /token` (the service account's `token_uri`): a form body with
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an `assertion`
//!   JWT signed RS256 by [`VERTEX_TEST_KEY_PEM`], with `iss`, the cloud-platform
//!   `scope`, `aud` ending in `/token`, and `exp = iat + 3600`. Answers
//!   `{"access_token": "ya29.mock-{n}", "expires_in": 3599}`; anything else 400
//!   `invalid_grant`.
//! - `POST /v1/projects/{project}/locations/{location}/publishers/{google|anthropic}/models/{model}:{op}`:
//!   needs `authorization: Bearer ya29.mock-…` (401 otherwise). Google's models
//!   answer like Gemini (`generateContent`, `streamGenerateContent`); Anthropic's
//!   (`rawPredict`, `streamRawPredict`) need `anthropic_version:
//!   "vertex-2023-10-16"` and no `model` in the body (400 otherwise) and answer
//!   Anthropic's Messages shape for the path's model; `models/count-tokens:rawPredict`
//!   takes `model` in the body and answers `{"input_tokens": words}`.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::RecordedRequest;
use crate::azure::percent_decode;

/// A TEST-ONLY 2048-bit RSA key (PKCS#8 PEM, with a label line before it). It
/// protects nothing; never use it outside tests.
pub const VERTEX_TEST_KEY_PEM: &str = include_str!("../fixtures/vertex-test-key.pem");

/// The token endpoint's path on the mock.
pub const VERTEX_TOKEN_PATH: &str = "/token";

/// A service-account JSON key (one line) for `client_email`, signing with the
/// test key and trading at `token_uri`.
pub fn vertex_service_account_json(client_email: &str, token_uri: &str) -> String {
    let pem = VERTEX_TEST_KEY_PEM
        .find("-----BEGIN")
        .map_or(VERTEX_TEST_KEY_PEM, |i| &VERTEX_TEST_KEY_PEM[i..]);
    json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "0000",
        "private_key": pem,
        "client_email": client_email,
        "token_uri": token_uri,
    })
    .to_string()
}

/// What the mock makes of a request.
pub(crate) enum Vertex {
    /// Not a Vertex path: the usual behaviour.
    No,
    /// Answer this status and body.
    Answer(u16, Value),
    /// A valid Google model call: the usual Gemini behaviour.
    Gemini,
    /// A valid Claude call for this model.
    Claude { model: String },
}

pub(crate) fn check(req: &RecordedRequest) -> Vertex {
    let path = req.path_only();
    if path == VERTEX_TOKEN_PATH && req.method == "POST" {
        return match token(&req.body) {
            Ok(v) => Vertex::Answer(200, v),
            Err(why) => Vertex::Answer(
                400,
                json!({"error": "invalid_grant", "error_description": why}),
            ),
        };
    }
    let Some(rest) = path.strip_prefix("/v1/projects/") else {
        return Vertex::No;
    };
    let parts: Vec<&str> = rest.splitn(7, '/').collect();
    let shape = parts.len() == 7
        && parts[1] == "locations"
        && parts[3] == "publishers"
        && parts[5] == "models"
        && !parts[0].is_empty()
        && !parts[2].is_empty();
    let Some((model, op)) = parts
        .get(6)
        .and_then(|m| m.split_once(':'))
        .filter(|_| shape)
    else {
        return google_error(404, "NOT_FOUND", "The requested URL was not found.");
    };
    let bearer = req
        .header("authorization")
        .is_some_and(|v| v.starts_with("Bearer ya29.mock-"));
    if !bearer {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    match (parts[4], op) {
        ("google", "generateContent" | "streamGenerateContent" | "countTokens") => Vertex::Gemini,
        ("anthropic", "rawPredict" | "streamRawPredict") => claude(req, model, op),
        _ => google_error(404, "NOT_FOUND", "Publisher model not found."),
    }
}

fn claude(req: &RecordedRequest, model: &str, op: &str) -> Vertex {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if model == "count-tokens" {
        return count_tokens(&body);
    }
    if body.get("model").is_some() {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "model: Extra inputs are not permitted",
        );
    }
    if body.get("anthropic_version").and_then(Value::as_str) != Some("vertex-2023-10-16") {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "anthropic_version: vertex-2023-10-16 required",
        );
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if stream != (op == "streamRawPredict") {
        return google_error(400, "INVALID_ARGUMENT", "stream does not match the method");
    }
    Vertex::Claude {
        model: percent_decode(model),
    }
}

/// Vertex's Claude token counter: `model` in the body, an `input_tokens` answer
/// (words in the message texts, at least 1).
fn count_tokens(body: &Value) -> Vertex {
    if body.get("model").and_then(Value::as_str).is_none() {
        return google_error(400, "INVALID_ARGUMENT", "model: Field required");
    }
    if body.get("anthropic_version").and_then(Value::as_str) != Some("vertex-2023-10-16") {
        return google_error(400, "INVALID_ARGUMENT", "anthropic_version required");
    }
    let words = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(|t| t.split_whitespace().count())
        .sum::<usize>()
        .max(1);
    Vertex::Answer(200, json!({ "input_tokens": words }))
}

fn google_error(code: u16, status: &str, message: &str) -> Vertex {
    Vertex::Answer(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// Check a token request; the answer or why it is refused.
fn token(body: &[u8]) -> Result<Value, String> {
    static ISSUED: AtomicU64 = AtomicU64::new(0);
    let form = String::from_utf8_lossy(body);
    let field = |name: &str| {
        form.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(&v.replace('+', " ")))
    };
    if field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err("bad grant_type".into());
    }
    let assertion = field("assertion").ok_or("no assertion")?;
    let claims = verify(&assertion)?;
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    let ok = claims["iss"].as_str().is_some_and(|s| s.contains('@'))
        && claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        && claims["aud"]
            .as_str()
            .is_some_and(|a| a.ends_with(VERTEX_TOKEN_PATH))
        && claims["exp"].as_u64() == Some(iat + 3600);
    if !ok {
        return Err(format!("bad claims: {claims}"));
    }
    let n = ISSUED.fetch_add(1, Ordering::SeqCst);
    Ok(
        json!({"access_token": format!("ya29.mock-{n}"), "expires_in": 3599, "token_type": "Bearer"}),
    )
}

/// The claims of a JWT signed RS256 by the test key.
fn verify(jwt: &str) -> Result<Value, String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "bad base64url".to_string())
    };
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    if header != json!({"alg": "RS256", "typ": "JWT"}) {
        return Err(format!("bad header {header}"));
    }
    let public = test_public_key();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
        .verify(format!("{h}.{c}").as_bytes(), &decode(s)?)
        .map_err(|_| "bad signature".to_string())?;
    serde_json::from_slice(&decode(c)?).map_err(|e| e.to_string())
}

fn test_public_key() -> Vec<u8> {
    let body: String = VERTEX_TEST_KEY_PEM
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = STANDARD.decode(body).expect("test key base64");
    let pair = RsaKeyPair::from_pkcs8(&der).expect("test key");
    pair.public_key().as_ref().to_vec()
}
