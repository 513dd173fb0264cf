//! Each condition kind, nesting, scope, compile errors.

use super::*;

#[test]
fn issue_example() {
    let rules = set(ISSUE_EXAMPLE);
    assert_eq!(rules.len(), 1);
    assert!(rules.needs_body());
    let t0 = Instant::now();
    let quota = status(429)
        .body(r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#);
    let firings = rules.evaluate(&quota.outcome(), t0);
    assert_eq!(firings.len(), 1);
    let f = &firings[0];
    assert_eq!(&*f.rule, "out-of-quota");
    assert!(!f.builtin);
    assert_eq!(f.status, Some(429));
    assert_eq!(
        f.actions,
        [
            RuleAction::Disable(Duration::from_secs(600)),
            RuleAction::Alert(vec![Arc::from("ops-feishu")]),
        ]
    );
    assert_eq!(
        f.reason,
        "rule out-of-quota: 429 insufficient_quota: You exceeded your current quota, please check your plan and billing details."
    );
    assert!(
        f.excerpt
            .starts_with(r#"{"error":{"message":"You exceeded"#),
        "{}",
        f.excerpt
    );

    // Same credential within the 5 minute cooldown: ignored, even a 402.
    assert!(fire(&rules, &status(402), t0 + MIN).is_empty());
    // Another credential of the same upstream has its own cooldown.
    assert_eq!(
        fire(&rules, &status(402).at("openai-main", "k2"), t0 + MIN),
        ["out-of-quota"]
    );
    // Another upstream is out of scope.
    assert!(fire(&rules, &quota.clone().at("claude", "k1"), t0).is_empty());
    // After the cooldown, the body alone is enough (any).
    let body_only = status(200).body("error: insufficient_quota");
    assert_eq!(fire(&rules, &body_only, t0 + 5 * MIN), ["out-of-quota"]);
    assert!(fire(&rules, &status(500), t0 + 20 * MIN).is_empty());
}

#[test]
fn statuses_and_ranges() {
    let one = when("{ status: 429 }");
    assert!(matches(&one, &status(429)));
    assert!(!matches(&one, &status(428)));
    let list = when(r#"{ status: [401, "403", "500-503"] }"#);
    for (code, hit) in [
        (401, true),
        (402, false),
        (403, true),
        (499, false),
        (500, true),
        (503, true),
        (504, false),
    ] {
        assert_eq!(matches(&list, &status(code)), hit, "{code}");
    }
    let range = when(r#"{ status: "500-599" }"#);
    assert!(matches(&range, &status(599)));
    assert!(!matches(&range, &status(429)));
    // No answer, no status.
    assert!(!matches(&range, &transport("connection reset")));
}

#[test]
fn transport_errors_and_latency() {
    let te = when("{ transport_error: true }");
    assert!(matches(&te, &transport("connect timeout")));
    assert!(!matches(&te, &status(502)));
    let answered = when("{ transport_error: false }");
    assert!(matches(&answered, &status(502)));
    assert!(!matches(&answered, &transport("reset")));

    let slow = when("{ latency_ms_over: 1000 }");
    assert!(matches(&slow, &status(200).latency_ms(1001)));
    assert!(!matches(&slow, &status(200).latency_ms(1000)));
    assert!(matches(&slow, &transport("timeout").latency_ms(30_000)));

    // On a transport error only these two can match; `not` of the others is true.
    let body = when(r#"{ body_contains: "x" }"#);
    let with_body = transport("reset").body("x");
    assert!(!matches(&body, &with_body));
    assert!(matches(
        &when("{ not: { status: 500 } }"),
        &transport("reset")
    ));
    let header = when(r#"{ header: { name: x-a, contains: "" } }"#);
    assert!(!matches(&header, &transport("reset").header("x-a", "1")));

    let firing = &te.evaluate(
        &transport("connect to https://x/v1?key=hunter2secret failed").outcome(),
        Instant::now(),
    )[0];
    assert_eq!(firing.status, None);
    assert_eq!(
        firing.excerpt,
        "connect to https://x/v1?key=[redacted] failed"
    );
    assert_eq!(
        firing.reason,
        "rule r: transport error: connect to https://x/v1?key=[redacted] failed"
    );
}

#[test]
fn body_text_conditions() {
    let contains = when(r#"{ body_contains: "quota" }"#);
    assert!(matches(&contains, &status(429).body("over quota")));
    assert!(!matches(&contains, &status(429).body("slow down")));
    // Body not read: no match.
    assert!(!matches(&contains, &status(429)));
    // Invalid UTF-8 is decoded lossily.
    assert!(matches(
        &contains,
        &status(429).body(b"\xff\xfe quota \xc3".to_vec())
    ));

    let regex = when(r#"{ body_regex: "(?i)rate\\s+limit" }"#);
    assert!(matches(&regex, &status(429).body("Rate   LIMIT reached")));
    assert!(!matches(&regex, &status(429).body("ratelimit")));
    assert!(!matches(&regex, &status(429)));
}

#[test]
fn json_path_conditions() {
    let body = r#"{"error":{"code":"insufficient_quota","n":3,"f":2.5,"tags":["a","quota-x"],"obj":{"a":1}}}"#;
    let ans = status(429).body(body);
    let case = |cond: &str| matches(&when(&format!("{{ json_path: {cond} }}")), &ans);
    assert!(case(
        r#"{ path: "$.error.code", equals: "insufficient_quota" }"#
    ));
    assert!(!case(r#"{ path: "$.error.code", equals: "rate_limited" }"#));
    assert!(case(r#"{ path: "$.error.n", equals: 3 }"#));
    assert!(case(r#"{ path: "$.error.n", equals: 3.0 }"#));
    assert!(!case(r#"{ path: "$.error.n", equals: "3" }"#));
    assert!(case(r#"{ path: "$.error.obj", equals: { a: 1.0 } }"#));
    assert!(case(
        r#"{ path: "$.error.code", matches: "^insufficient" }"#
    ));
    assert!(!case(r#"{ path: "$.error.n", matches: "3" }"#));
    assert!(case(r#"{ path: "$.error.f", gt: 2 }"#));
    assert!(!case(r#"{ path: "$.error.f", gt: 2.5 }"#));
    assert!(case(r#"{ path: "$.error.n", lt: 3.5 }"#));
    assert!(!case(r#"{ path: "$.error.code", lt: 10 }"#));
    // Several nodes: any of them.
    assert!(case(r#"{ path: "$.error.tags[*]", matches: "^quota" }"#));
    assert!(case(r#"{ path: "$..n", equals: 3 }"#));
    assert!(!case(
        r#"{ path: "$.missing", equals: "insufficient_quota" }"#
    ));

    let rules = when(r#"{ json_path: { path: "$.error.code", equals: "x" } }"#);
    assert!(!matches(&rules, &status(429).body("not json")));
    assert!(!matches(&rules, &status(429)));
    assert!(matches(
        &rules,
        &status(429).body(r#"{"error":{"code":"x"}}"#)
    ));
}

#[test]
fn body_is_decoded_and_parsed_at_most_once() {
    let ans = status(429).body(r#"{"a":1}"#);
    let outcome = ans.outcome();
    let answer = condition::Answer::new(&outcome);
    let first = answer.json().map(std::ptr::from_ref);
    assert!(first.is_some());
    assert_eq!(answer.json().map(std::ptr::from_ref), first);
    let text = answer.text().map(str::as_ptr);
    assert_eq!(answer.text().map(str::as_ptr), text);
}

#[test]
fn header_conditions() {
    let equals = when(r#"{ header: { name: X-RateLimit-Remaining-Requests, equals: "0" } }"#);
    assert!(matches(
        &equals,
        &status(200).header("x-ratelimit-remaining-requests", "0")
    ));
    assert!(!matches(
        &equals,
        &status(200).header("x-ratelimit-remaining-requests", "00")
    ));
    assert!(!matches(&equals, &status(200)));
    // Any of several values.
    let two = status(200)
        .header("x-ratelimit-remaining-requests", "5")
        .header("x-ratelimit-remaining-requests", "0");
    assert!(matches(&equals, &two));

    let contains = when(r#"{ header: { name: content-type, contains: "json" } }"#);
    assert!(matches(
        &contains,
        &status(200).header("content-type", "application/json; charset=utf-8")
    ));
    assert!(!matches(
        &contains,
        &status(200).header("content-type", "text/html")
    ));
    let plain = status(200);
    let outcome = Outcome {
        headers: None,
        ..plain.outcome()
    };
    assert!(contains.evaluate(&outcome, Instant::now()).is_empty());
}

#[test]
fn nesting_all_any_not() {
    // 429 or 503, whose body does not mention "retry", and which is not from a slow answer.
    let rules = when(
        r#"{ all: [ { any: [ { status: 429 }, { status: 503 } ] }, { not: { body_contains: retry } }, { not: { latency_ms_over: 5000 } } ] }"#,
    );
    assert!(matches(&rules, &status(429).body("quota")));
    assert!(matches(&rules, &status(503)));
    assert!(!matches(&rules, &status(500)));
    assert!(!matches(&rules, &status(429).body("please retry")));
    assert!(!matches(&rules, &status(429).latency_ms(6000)));

    // Several keys in one object: all of them.
    let both = when(r#"{ status: 429, body_contains: quota }"#);
    assert!(matches(&both, &status(429).body("quota")));
    assert!(!matches(&both, &status(429).body("slow")));
    assert!(!matches(&both, &status(400).body("quota")));
}

#[test]
fn scope_filters_upstreams_and_credentials() {
    let rules = set(
        "- name: r\n  upstreams: [a, b]\n  credentials: [k1]\n  when: { status: 429 }\n  actions: [ { log: true } ]\n",
    );
    assert!(matches(&rules, &status(429).at("a", "k1")));
    assert!(matches(&rules, &status(429).at("b", "k1")));
    assert!(!matches(&rules, &status(429).at("c", "k1")));
    assert!(!matches(&rules, &status(429).at("a", "k2")));
}

#[test]
fn needs_body_only_when_a_rule_reads_it() {
    assert!(!when("{ status: 429 }").needs_body());
    assert!(!when(r#"{ header: { name: x-a, equals: "1" } }"#).needs_body());
    assert!(when(r#"{ body_regex: "x" }"#).needs_body());
    assert!(
        when(r#"{ any: [ { status: 500 }, { not: { json_path: { path: "$.a", gt: 1 } } } ] }"#)
            .needs_body()
    );
    let disabled = set(
        "- name: r\n  enabled: false\n  when: { body_contains: x }\n  actions: [ { log: true } ]\n",
    );
    assert!(!disabled.needs_body());
    assert!(disabled.is_empty());
    assert!(!RuleSet::empty().needs_body());
}

#[test]
fn compile_refuses_what_validation_refuses() {
    let err = |yaml: &str| {
        RuleSet::compile(&parse(yaml), &no_builtins())
            .unwrap_err()
            .to_string()
    };
    let e = err(
        "- name: r\n  when: { any: [ { status: 1 }, { body_regex: \"(\" } ] }\n  actions: [ { log: true } ]\n",
    );
    assert!(e.starts_with("rule `r`: when.any[0].status:"), "{e}");
    let e = err(
        "- name: r\n  when: { any: [ { status: 500 }, { body_regex: \"(\" } ] }\n  actions: [ { log: true } ]\n",
    );
    assert!(
        e.starts_with("rule `r`: when.any[1].body_regex: not a valid regular expression"),
        "{e}"
    );
    let e = err(
        "- name: r\n  when: { json_path: { path: \"nope\", equals: 1 } }\n  actions: [ { log: true } ]\n",
    );
    assert!(
        e.contains("when.json_path.path: not a valid JSONPath"),
        "{e}"
    );
    let e =
        err("- name: r\n  when: { json_path: { path: \"$.a\" } }\n  actions: [ { log: true } ]\n");
    assert!(e.contains("when.json_path: give exactly one"), "{e}");
    let e = err("- name: r\n  when: { not: {} }\n  actions: [ { log: true } ]\n");
    assert!(e.contains("when.not: an empty condition"), "{e}");
    let e = err("- name: r\n  when: { status: 500 }\n  actions: [ { ban: false } ]\n");
    assert!(e.contains("actions[0]"), "{e}");
    let e = err("- name: r\n  when: { status: 500 }\n  actions: []\n");
    assert!(e.contains("actions"), "{e}");
    let e = err(
        "- name: r\n  when: { status: 500 }\n  threshold: { hits: 0 }\n  actions: [ { log: true } ]\n",
    );
    assert!(e.contains("threshold.hits"), "{e}");
}
