//! The built-in rules and Retry-After.

use super::*;

#[test]
fn builtin_auth_takes_the_providers_message() {
    let rules = builtins_only();
    assert!(rules.builtin_rules());
    assert!(!rules.needs_body());
    assert!(rules.is_empty());
    let openai = status(401).body(
        r#"{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijklmnop1234. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    );
    let f = one(&rules, &openai);
    assert_eq!(&*f.rule, "builtin:auth");
    assert!(f.builtin);
    assert_eq!(f.status, Some(401));
    assert_eq!(f.actions, [RuleAction::Disable(Duration::from_secs(3600))]);
    assert_eq!(
        f.reason,
        "Incorrect API key provided: sk-[redacted]. You can find your API key at https://platform.openai.com/account/api-keys."
    );
    assert!(!f.excerpt.contains("abcdefghijklmnop1234"), "{}", f.excerpt);

    let anthropic = status(401).body(
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    );
    assert_eq!(one(&rules, &anthropic).reason, "invalid x-api-key");
    let gemini = status(403).body(
        r#"[{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}]"#,
    );
    assert_eq!(
        one(&rules, &gemini).reason,
        "Method doesn't allow unregistered callers."
    );
    assert_eq!(one(&rules, &status(403)).reason, "403 Forbidden");
    assert_eq!(
        one(&rules, &status(401).body("<html>nope</html>")).reason,
        "401 Unauthorized"
    );

    assert!(fire(&rules, &status(500), Instant::now()).is_empty());
    assert!(fire(&rules, &status(200), Instant::now()).is_empty());
    assert!(fire(&rules, &transport("reset"), Instant::now()).is_empty());
}

fn rate_limit_cooldown(ans: &Ans, wall: SystemTime) -> Duration {
    let rules = builtins_only();
    let firings = rules.evaluate_with(&ans.outcome(), Instant::now(), &|| wall);
    assert_eq!(firings.len(), 1);
    assert_eq!(&*firings[0].rule, "builtin:rate-limit");
    match firings[0].actions.as_slice() {
        [RuleAction::Disable(d)] => *d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn builtin_rate_limit_honours_retry_after() {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let s = Duration::from_secs;
    let r = |ans: Ans| rate_limit_cooldown(&ans, wall);
    assert_eq!(
        r(status(429)),
        s(60),
        "no header: health.rate_limit_cooldown"
    );
    assert_eq!(r(status(429).header("retry-after", "30")), s(30));
    assert_eq!(
        r(status(429).header("retry-after", " 2.5 ")),
        Duration::from_millis(2500)
    );
    assert_eq!(
        r(status(429).header("retry-after-ms", "1500")),
        Duration::from_millis(1500)
    );
    assert_eq!(
        r(status(429)
            .header("retry-after-ms", "1500")
            .header("retry-after", "2")),
        Duration::from_millis(1500),
        "retry-after-ms is the finer one"
    );
    let in_two_minutes = httpdate::fmt_http_date(wall + s(120));
    assert_eq!(
        r(status(429).header("retry-after", &in_two_minutes)),
        s(120)
    );
    assert_eq!(
        r(status(429).header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")),
        MIN_RETRY_AFTER,
        "past date"
    );
    assert_eq!(r(status(429).header("retry-after", "0")), MIN_RETRY_AFTER);
    assert_eq!(
        r(status(429).header("retry-after", "86400")),
        s(600),
        "capped at max_cooldown"
    );
    assert_eq!(r(status(429).header("retry-after-ms", "1e300")), s(600));
    assert_eq!(
        r(status(429).header("retry-after", "soon")),
        s(60),
        "unreadable: default"
    );
    assert_eq!(r(status(429).header("retry-after", "-5")), s(60));

    let f = one(
        &builtins_only(),
        &status(429).body(
            r#"{"error":{"message":"Rate limit reached for gpt-4o","code":"rate_limit_exceeded"}}"#,
        ),
    );
    assert_eq!(f.reason, "Rate limit reached for gpt-4o");
    assert_eq!(
        one(&builtins_only(), &status(429)).reason,
        "429 Too Many Requests"
    );
}

#[test]
fn builtins_step_aside_when_a_configured_rule_matched() {
    let mut rules = parse(
        "- name: slow\n  when: { status: 429 }\n  threshold: { hits: 3, within: 60s }\n  actions: [ { log: true } ]\n",
    );
    rules.extend(parse("- name: other-upstream\n  upstreams: [claude]\n  when: { status: 401 }\n  actions: [ { log: true } ]\n"));
    let set = RuleSet::compile(&rules, &health()).unwrap();
    let t0 = Instant::now();
    // Matched but not fired (threshold 3): no built-in either.
    assert!(fire(&set, &status(429), t0).is_empty());
    // A rule out of scope does not count as matched.
    assert_eq!(fire(&set, &status(401), t0), ["builtin:auth"]);
    assert_eq!(
        fire(&set, &status(401).at("claude", "k1"), t0),
        ["other-upstream"]
    );

    let off = RuleSet::compile(&[], &no_builtins()).unwrap();
    assert!(!off.builtin_rules());
    assert!(fire(&off, &status(401), t0).is_empty());
    assert!(fire(&RuleSet::empty(), &status(429), t0).is_empty());
    assert!(!RuleSet::empty().builtin_rules());
}
