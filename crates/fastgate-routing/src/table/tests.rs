use super::*;
use crate::{PatternError, TemplateError};
use http::HeaderValue;
use proptest::prelude::*;
use serde_json::json;

fn spec(index: usize, priority: i32, pattern: &str) -> RouteSpec {
    RouteSpec {
        index,
        name: format!("r{index}"),
        priority,
        pattern: pattern.to_owned(),
        ..RouteSpec::default()
    }
}

fn table(specs: Vec<RouteSpec>) -> RouteTable {
    RouteTable::build(specs).unwrap()
}

fn no_headers() -> HeaderMap {
    HeaderMap::new()
}

/// Index of the route matching GET `path` without headers or body, if any.
fn hit(t: &RouteTable, path: &str) -> Option<usize> {
    match t.find(&Method::GET, path, &no_headers(), BodyView::NotLoaded) {
        MatchOutcome::Matched(m) => Some(m.index()),
        MatchOutcome::NotFound => None,
        MatchOutcome::NeedBody => panic!("unexpected NeedBody for {path}"),
    }
}

fn matched<'t>(o: MatchOutcome<'t>) -> RouteMatch<'t> {
    match o {
        MatchOutcome::Matched(m) => m,
        other => panic!("expected a match, got {other:?}"),
    }
}

#[test]
fn every_pattern_kind_routes() {
    let t = table(vec![
        spec(0, 0, "/a/b"),
        spec(1, 0, "/v1/*"),
        spec(2, 0, "/api/v2/**"),
        spec(3, 0, "/user/{id}"),
        spec(4, 0, "/file/*.json"),
    ]);
    assert_eq!(t.len(), 5);
    assert!(!t.is_empty());
    assert_eq!(hit(&t, "/a/b"), Some(0));
    assert_eq!(hit(&t, "/v1/models"), Some(1));
    assert_eq!(hit(&t, "/api/v2"), Some(2));
    assert_eq!(hit(&t, "/api/v2/x/y"), Some(2));
    assert_eq!(hit(&t, "/user/7"), Some(3));
    assert_eq!(hit(&t, "/file/x.json"), Some(4));
    for miss in ["/", "/a", "/a/b/c", "/v1", "/api", "/user/", "/file/x.xml"] {
        assert_eq!(hit(&t, miss), None, "{miss}");
    }
    assert!(RouteTable::build(vec![]).unwrap().is_empty());
}

#[test]
fn priority_beats_specificity() {
    let t = table(vec![spec(0, 10, "/a/b"), spec(1, 1, "/**")]);
    assert_eq!(hit(&t, "/a/b"), Some(1));
    let t = table(vec![spec(0, 1, "/a/b"), spec(1, 10, "/a/*")]);
    assert_eq!(hit(&t, "/a/b"), Some(0));
    assert_eq!(hit(&t, "/a/c"), Some(1));
    let t = table(vec![spec(0, -5, "/{x}/b"), spec(1, 0, "/a/b")]);
    assert_eq!(hit(&t, "/a/b"), Some(0));
}

#[test]
fn tie_break_ordering() {
    // All priority 0: expected precedence order by index below.
    let t = table(vec![
        spec(0, 0, "/**"),
        spec(1, 0, "/a/**"),
        spec(2, 0, "/a/b/**"),
        spec(3, 0, "/a/*"),
        spec(4, 0, "/a/*.json"),
        spec(5, 0, "/a/{id}"),
        spec(6, 0, "/a/b"),
        spec(7, 0, "/{x}/b"),
        spec(8, 0, "/a/{id}/c"),
        spec(9, 0, "/a/b"),
        spec(10, 0, "/ab/{id}/c"),
    ]);
    let order: Vec<usize> = t.precedence_order().collect();
    assert_eq!(order, [6, 9, 10, 8, 5, 7, 4, 3, 2, 1, 0]);
    assert_eq!(hit(&t, "/a/b"), Some(6));
    assert_eq!(hit(&t, "/a/x"), Some(5));
    assert_eq!(hit(&t, "/z/b"), Some(7));
    assert_eq!(hit(&t, "/a/1/c"), Some(8));
    assert_eq!(hit(&t, "/a/b/c"), Some(8));
    assert_eq!(hit(&t, "/a/b/c/d"), Some(2));
    assert_eq!(hit(&t, "/a/x/y"), Some(1));
    assert_eq!(hit(&t, "/q"), Some(0));
    // Input order does not matter.
    let mut specs: Vec<RouteSpec> = (0..11).map(|i| spec(i, 0, "/x")).collect();
    specs.reverse();
    let t = table(specs);
    assert_eq!(
        t.precedence_order().collect::<Vec<_>>(),
        (0..11).collect::<Vec<_>>()
    );
}

#[test]
fn ext_beats_plain_star() {
    let t = table(vec![spec(0, 0, "/f/*"), spec(1, 0, "/f/*.json")]);
    assert_eq!(hit(&t, "/f/a.json"), Some(1));
    assert_eq!(hit(&t, "/f/a.xml"), Some(0));
}

#[test]
fn captures_do_not_leak_between_candidates() {
    let t = table(vec![spec(0, 0, "/u/{a}/x"), spec(1, 1, "/u/{b}/y")]);
    let path = "/u/7/y";
    let m = matched(t.find(&Method::GET, path, &no_headers(), BodyView::NotLoaded));
    assert_eq!(m.index(), 1);
    assert_eq!(m.param("b"), Some("7"));
    assert_eq!(m.param("a"), None);
    assert_eq!(m.params().collect::<Vec<_>>(), [("b", "7")]);
}

#[test]
fn method_conditions() {
    let mut get = spec(0, 0, "/m");
    get.methods = vec!["get".into(), "HEAD".into()];
    let mut purge = spec(1, 0, "/m");
    purge.methods = vec!["PURGE".into()];
    let mut any = spec(2, 0, "/m");
    any.methods = vec!["POST".into(), "any".into()];
    let t = table(vec![get, purge, any]);
    let find = |m: Method| matched(t.find(&m, "/m", &no_headers(), BodyView::NotLoaded)).index();
    assert_eq!(find(Method::GET), 0);
    assert_eq!(find(Method::HEAD), 0);
    assert_eq!(find(Method::from_bytes(b"PURGE").unwrap()), 1);
    assert_eq!(find(Method::DELETE), 2);

    let mut only_post = spec(0, 0, "/p/**");
    only_post.methods = vec!["POST".into()];
    let t = table(vec![only_post]);
    assert_eq!(hit(&t, "/p/x"), None);

    let mut bad = spec(3, 0, "/m");
    bad.name = "bad".into();
    bad.methods = vec!["GE T".into()];
    let err = RouteTable::build(vec![bad]).unwrap_err();
    assert!(
        matches!(&err, RouteError::Method { route, method } if route == "bad" && method == "GE T")
    );
    assert!(err.to_string().contains("route \"bad\""));
}

#[test]
fn header_conditions() {
    let mut s = spec(0, 0, "/h");
    s.headers = vec![("X-Tenant".into(), "acme".into())];
    let t = table(vec![s, spec(1, 1, "/h")]);
    let find = |h: &HeaderMap| matched(t.find(&Method::GET, "/h", h, BodyView::NotLoaded)).index();
    let mut h = HeaderMap::new();
    assert_eq!(find(&h), 1);
    h.insert("x-tenant", HeaderValue::from_static("ACME"));
    assert_eq!(find(&h), 1, "values are case-sensitive");
    h.append("x-tenant", HeaderValue::from_static("acme"));
    assert_eq!(find(&h), 0, "any of several values");
    h.insert("X-TENANT", HeaderValue::from_static("acme"));
    assert_eq!(find(&h), 0);

    for (name, value) in [("x_api_key", "v"), ("bad name", "v"), ("x-ok", "a\nb")] {
        let mut s = spec(0, 0, "/h");
        s.headers = vec![(name.into(), value.into())];
        let err = RouteTable::build(vec![s]).unwrap_err();
        assert!(matches!(err, RouteError::Header { .. }), "{name}: {err}");
    }
}

fn body_table() -> RouteTable {
    let mut gpt4 = spec(0, 0, "/v1/chat");
    gpt4.body = vec![("model".into(), json!("gpt-4")), ("n".into(), json!(1))];
    let mut plain = spec(1, 1, "/v1/chat");
    plain.methods = vec!["POST".into()];
    let mut other_path = spec(2, -1, "/v1/other");
    other_path.body = vec![("model".into(), json!("x"))];
    table(vec![gpt4, plain, other_path])
}

#[test]
fn need_body_flow() {
    let t = body_table();
    let h = no_headers();
    let post = Method::POST;
    assert!(matches!(
        t.find(&post, "/v1/chat", &h, BodyView::NotLoaded),
        MatchOutcome::NeedBody
    ));
    let body = json!({"model": "gpt-4", "n": 1.0, "extra": true});
    let m = matched(t.find(&post, "/v1/chat", &h, BodyView::Json(&body)));
    assert_eq!((m.index(), m.name()), (0, "r0"));
    for other in [
        json!({"model": "gpt-3", "n": 1}),
        json!({"model": "gpt-4"}),
        json!([1]),
        json!("s"),
    ] {
        let m = matched(t.find(&post, "/v1/chat", &h, BodyView::Json(&other)));
        assert_eq!(m.index(), 1, "{other}");
    }
    // A body route whose path or method does not match never asks for the body.
    assert_eq!(hit(&t, "/v1/nothing"), None);
    let t2 = table(vec![{
        let mut s = spec(0, 0, "/b");
        s.methods = vec!["POST".into()];
        s.body = vec![("k".into(), json!(1))];
        s
    }]);
    assert_eq!(hit(&t2, "/b"), None);
    // A body-less route ahead of the body route matches without reading the body.
    let mut first = spec(5, -10, "/v1/**");
    first.headers = vec![("x-fast".into(), "1".into())];
    let mut specs = vec![first];
    specs.extend(body_table().routes.iter().map(|r| {
        let mut s = spec(r.index, r.priority, r.pattern.as_str());
        s.body = if r.index == 1 {
            vec![]
        } else {
            vec![("model".into(), json!("gpt-4"))]
        };
        s
    }));
    let t3 = table(specs);
    let mut fast = HeaderMap::new();
    fast.insert("x-fast", HeaderValue::from_static("1"));
    let m = matched(t3.find(&post, "/v1/chat", &fast, BodyView::NotLoaded));
    assert_eq!(m.index(), 5);
}

#[test]
fn numbers_compare_by_value_but_big_ints_stay_exact() {
    let mut s = spec(0, 0, "/n");
    s.body = vec![("a".into(), json!(9007199254740993u64))];
    let t = table(vec![s]);
    let find = |b: serde_json::Value| {
        matches!(
            t.find(&Method::POST, "/n", &no_headers(), BodyView::Json(&b)),
            MatchOutcome::Matched(_)
        )
    };
    assert!(find(json!({"a": 9007199254740993u64})));
    assert!(!find(json!({"a": 9007199254740992u64})));
    assert!(!find(json!({"a": "9007199254740993"})));
}

fn upstream(spec: RouteSpec, path: &str) -> String {
    let t = table(vec![spec]);
    let m = matched(t.find(&Method::GET, path, &no_headers(), BodyView::NotLoaded));
    m.upstream_path(path)
}

fn with_target(pattern: &str, target: &str) -> RouteSpec {
    let mut s = spec(0, 0, pattern);
    s.target_path = Some(target.into());
    s
}

fn with_strip(pattern: &str) -> RouteSpec {
    let mut s = spec(0, 0, pattern);
    s.strip_prefix = true;
    s
}

#[test]
fn upstream_path_rendering() {
    let cases: Vec<(RouteSpec, &str, &str)> = vec![
        (with_target("/api/**", "/v2/{**}"), "/api/a/b", "/v2/a/b"),
        (with_target("/api/**", "/v2/{**}"), "/api", "/v2/"),
        (with_target("/api/**", "/v2/{**}"), "/api/", "/v2/"),
        (with_target("/api/**", "/v2/{**}"), "/api/a/", "/v2/a/"),
        (with_target("/api/**", "/v2{**}"), "/api/a", "/v2/a"),
        (with_target("/api/**", "/v2{**}"), "/api", "/v2"),
        (
            with_target("/u/{id}/p/{pid}", "/users/{id}/posts/{pid}"),
            "/u/1/p/%20",
            "/users/1/posts/%20",
        ),
        (
            with_target("/u/{id}/**", "/x/{id}/{**}"),
            "/u/9/a/b",
            "/x/9/a/b",
        ),
        (with_target("/a/b", "/fixed"), "/a/b", "/fixed"),
        (with_strip("/openai/**"), "/openai/v1/chat", "/v1/chat"),
        (with_strip("/openai/**"), "/openai", "/"),
        (with_strip("/openai/**"), "/openai/", "/"),
        (with_strip("/a/b"), "/a/b", "/"),
        (with_strip("/a/{id}/c"), "/a/1/c", "/1/c"),
        (with_strip("/{id}/c"), "/1/c", "/1/c"),
        (with_strip("/**"), "/x/y", "/x/y"),
        (
            spec(0, 0, "/openai/**"),
            "/openai/v1/chat",
            "/openai/v1/chat",
        ),
        (
            RouteSpec {
                strip_prefix: true,
                ..with_target("/o/**", "/t/{**}")
            },
            "/o/x",
            "/t/x",
        ),
    ];
    for (s, path, want) in cases {
        let label = format!("{} {:?} {path}", s.pattern, s.target_path);
        assert_eq!(upstream(s, path), want, "{label}");
    }
}

#[test]
fn remainder_accessor() {
    let t = table(vec![spec(0, 0, "/api/**"), spec(1, 0, "/x/{id}")]);
    let m = matched(t.find(&Method::GET, "/api/a/b", &no_headers(), BodyView::NotLoaded));
    assert_eq!(m.remainder("/api/a/b"), "a/b");
    assert_eq!(m.pattern(), "/api/**");
    assert_eq!(m.priority(), 0);
    let m = matched(t.find(&Method::GET, "/x/1", &no_headers(), BodyView::NotLoaded));
    assert_eq!(m.remainder("/x/1"), "");
    assert_eq!(m.remainder(""), "");
}

#[test]
fn build_errors_name_the_route() {
    let mut bad_pattern = spec(0, 0, "/a/**/b");
    bad_pattern.name = "chat".into();
    let err = RouteTable::build(vec![spec(1, 0, "/ok"), bad_pattern]).unwrap_err();
    assert_eq!(
        err,
        RouteError::Pattern {
            route: "chat".into(),
            pattern: "/a/**/b".into(),
            source: PatternError::MisplacedDoubleStar
        }
    );
    assert!(
        err.to_string()
            .starts_with(r#"route "chat": bad pattern "/a/**/b""#)
    );
    let target_cases = [
        (
            "/u/{id}",
            "/x/{name}",
            TemplateError::UnknownParam("name".into()),
        ),
        ("/u/{id}", "/x/{**}", TemplateError::RestWithoutWildcard),
        ("/u/*", "/x/{**}", TemplateError::RestWithoutWildcard),
        ("/u/**", "x/{**}", TemplateError::NotAbsolute),
        ("/u/**", "/x/{**", TemplateError::Unbalanced),
        ("/u/**", "/x/}", TemplateError::Unbalanced),
        (
            "/u/**",
            "/x/{}",
            TemplateError::BadPlaceholder(String::new()),
        ),
        (
            "/u/**",
            "/x/{a-b}",
            TemplateError::BadPlaceholder("a-b".into()),
        ),
        ("/u/**", "/x/\n", TemplateError::ControlChar),
    ];
    for (pattern, target, want) in target_cases {
        let err = RouteTable::build(vec![with_target(pattern, target)]).unwrap_err();
        match &err {
            RouteError::TargetPath { route, source, .. } => {
                assert_eq!((route.as_str(), source), ("r0", &want), "{target}");
            }
            other => panic!("{target}: {other:?}"),
        }
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn merge_yields_ascending_union() {
    let m = Merge3 {
        lists: [&[0, 4, 7], &[1, 2, 8], &[3, 5]],
    };
    assert_eq!(m.collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 7, 8]);
}

const PATTERNS: &[&str] = &[
    "/",
    "/a",
    "/a/b",
    "/a/b/",
    "/a/*",
    "/a/*.json",
    "/a/{id}",
    "/a/**",
    "/**",
    "/{x}/b",
    "/*/b/**",
    "/a/b/{c}",
    "/b/**",
    "/b/{x}/{y}",
    "/a/{id}/*.json",
];
const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/",
    "/a/b",
    "/a/b/",
    "/a/x.json",
    "/a/b/c",
    "/b",
    "/b/b",
    "/c/b/d",
    "/a/1/f.json",
    "/b/1/2",
    "/zz",
];

proptest! {
    /// The indexed lookup returns what a linear scan in precedence order returns.
    #[test]
    fn indexed_find_equals_linear_scan(
        routes in prop::collection::vec((prop::sample::select(PATTERNS), 0i32..3), 1..12),
        path in prop::sample::select(PATHS),
    ) {
        let specs = routes.iter().enumerate().map(|(i, (p, prio))| spec(i, *prio, p)).collect();
        let t = table(specs);
        let linear = t.routes.iter().find(|r| r.pattern.matches(path)).map(|r| r.index);
        prop_assert_eq!(hit(&t, path), linear);
    }
}
