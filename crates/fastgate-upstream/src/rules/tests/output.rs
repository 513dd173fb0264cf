//! Redaction, excerpts and reasons.

use super::*;

#[test]
fn redaction_of_each_secret_form() {
    assert!(redact::SECRETS.is_some(), "the pattern compiles");
    let cases = [
        (
            "key sk-proj-AbCdEf0123456789xyz here",
            "key sk-[redacted] here",
        ),
        ("sk-abcdefgh12", "sk-[redacted]"),
        (
            "x-api-key: sk-ant-api03-AbC_dEf-123456",
            "x-api-key: sk-ant-[redacted]",
        ),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu", "AIza[redacted]"),
        (
            "Authorization: Bearer eyJhbGciOi.payload.sig",
            "Authorization: Bearer [redacted]",
        ),
        (
            "authorization: basic dXNlcjpwYXNzd29yZA==",
            "authorization: basic [redacted]",
        ),
        (
            "GET /v1/models?key=AIzaXYZ&alt=sse",
            "GET /v1/models?key=[redacted]&alt=sse",
        ),
        (
            "https://h/p?api_key=abc123&x=1",
            "https://h/p?api_key=[redacted]&x=1",
        ),
        (
            r#"{"url":"https://h/?token=t0k"}"#,
            r#"{"url":"https://h/?token=[redacted]"}"#,
        ),
        ("id 0123456789abcdef0123456789abcdef!", "id [redacted]!"),
        // Kept: short, prose, long words without digits, and digits alone.
        ("task-force sk-short", "task-force sk-short"),
        (
            "model_not_found_or_no_access_to_this_model",
            "model_not_found_or_no_access_to_this_model",
        ),
        (
            "12345678901234567890123456789012345",
            "12345678901234567890123456789012345",
        ),
        ("monkey=banana", "monkey=banana"),
    ];
    for (text, want) in cases {
        assert_eq!(redact_secrets(text), want, "{text}");
    }
}

#[test]
fn excerpt_shows_the_match_redacted_and_bounded() {
    let rules = when(r#"{ body_contains: "MARKER" }"#);
    let mut body = "a".repeat(5000);
    body.push_str(" key sk-proj-0123456789abcdefABCDEF MARKER tail ");
    body.push_str(&"b\n".repeat(3000));
    let f = one(&rules, &status(400).body(body));
    assert!(
        f.excerpt.chars().count() <= EXCERPT_MAX_CHARS,
        "{}",
        f.excerpt.len()
    );
    assert!(f.excerpt.starts_with('…'), "{}", &f.excerpt[..20]);
    assert!(
        f.excerpt.contains("key sk-[redacted] MARKER tail b b b"),
        "{}",
        f.excerpt
    );
    assert!(!f.excerpt.contains('\n'));
    assert!(f.excerpt.ends_with('…'));
    assert!(f.reason.chars().count() <= 300, "{}", f.reason);
    assert!(f.reason.starts_with("rule r: 400 "), "{}", f.reason);
    assert!(!f.reason.contains("0123456789abcdef"));

    // A window edge never cuts a secret in two: the whole token is masked.
    let secret = format!("sk-{}", "Z9".repeat(200));
    let body = format!("{} {secret} MARKER", "c ".repeat(300));
    let f = one(&rules, &status(400).body(body));
    assert!(!f.excerpt.contains("Z9Z9"), "{}", f.excerpt);

    // No body read: empty excerpt, the reason is the status.
    let f = one(&when("{ status: 402 }"), &status(402));
    assert_eq!(f.excerpt, "");
    assert_eq!(f.reason, "rule r: 402 Payment Required");
}

#[test]
fn outcome_debug_shows_no_body_or_header_values() {
    let ans = status(401)
        .header("x-echo", "sk-proj-0123456789abcdefXYZ")
        .body("Incorrect API key provided: sk-proj-0123456789abcdefXYZ");
    let text = format!("{:?}", ans.outcome());
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(text.contains("body_bytes: Some(55)"), "{text}");
    let failed = format!(
        "{:?}",
        transport("GET https://h/?key=hunter2secret: reset").outcome()
    );
    assert!(!failed.contains("hunter2"), "{failed}");
}
