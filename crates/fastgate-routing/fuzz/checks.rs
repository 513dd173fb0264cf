//! Invariants of the routing fuzz targets, shared by the fuzz targets
//! (`fuzz_targets/*.rs`) and the corpus test (`tests/fuzz_corpus.rs`), which replays
//! every file of `corpus/<target>/` under `cargo test`. A violated invariant panics.

use fastgate_routing::{
    BodyView, MatchOutcome, PathError, PathPattern, RouteSpec, RouteTable, is_reserved_path,
    normalize_path as normalize,
};

/// Target `normalize_path`: the input bytes (lossy UTF-8) are a raw request path.
///
/// - never panics;
/// - an accepted path starts with '/', is a fixed point, and holds no `//`, `\`,
///   control character, `%` not followed by two hex digits, `%25` followed by two hex
///   digits, nor a segment that is `.` or `..` before `;` / `%3B` parameters;
/// - `/`-prefixed input is refused only for the documented reasons;
/// - the admin-area check agrees with a check of the first segment decoded once.
pub fn normalize_path(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let out = match normalize(&raw) {
        Ok(out) => out,
        Err(PathError::Empty) => return assert!(raw.is_empty()),
        Err(PathError::NotAbsolute) => return assert!(!raw.starts_with('/')),
        Err(PathError::InvalidUtf8) => panic!("&str input cannot be invalid UTF-8: {raw:?}"),
        Err(_) => return,
    };
    assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
    assert_eq!(
        normalize(&out),
        Ok(out.clone()),
        "not a fixed point: {raw:?}"
    );
    assert!(
        !out.contains("//") && !out.contains('\\'),
        "{raw:?} -> {out:?}"
    );
    assert!(
        !out.bytes().any(|b| b < 0x20 || b == 0x7f),
        "control character: {raw:?} -> {out:?}"
    );
    let b = out.as_bytes();
    for (i, _) in out.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        assert!(hex(i + 1) && hex(i + 2), "bad escape: {raw:?} -> {out:?}");
        if b.get(i + 1..i + 3) == Some(b"25") {
            assert!(
                !(hex(i + 3) && hex(i + 4)),
                "double encoding: {raw:?} -> {out:?}"
            );
        }
    }
    for seg in out.split('/') {
        let head = seg.split(';').next().unwrap_or_default();
        let head = head.split("%3B").next().unwrap_or_default();
        assert!(
            head != "." && head != "..",
            "dot segment: {raw:?} -> {out:?}"
        );
    }
    let first = out.split('/').nth(1).unwrap_or_default();
    let first = first.split(';').next().unwrap_or_default();
    let first = first.split("%3B").next().unwrap_or_default();
    let decoded = percent_decode(first);
    assert_eq!(
        is_reserved_path(&out),
        decoded.eq_ignore_ascii_case(b"admin"),
        "admin check: {raw:?} -> {out:?}"
    );
}

/// Target `route_match`. Input (lossy UTF-8), one item per line:
///
/// ```text
/// GET /raw/request/path            method and raw path
/// /v1/** p=3 m=GET,POST strip      a route: pattern, then optional
/// /user/{id} t=/users/{id}/x         p=<priority> m=<methods> strip t=<target_path>
/// ```
///
/// At most 16 routes. Invariants: building and matching never panic; the indexed
/// `find` returns what a linear scan in precedence order returns; the matched pattern
/// matches the path; the upstream path starts with '/', and without `target_path` it
/// is normalised too.
pub fn route_match(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let Some(request) = lines.next() else {
        return;
    };
    let (method, raw_path) = request.split_once(' ').unwrap_or(("GET", request));
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let specs: Vec<RouteSpec> = lines.take(16).enumerate().map(route_spec).collect();
    let Ok(table) = RouteTable::build(specs.clone()) else {
        return;
    };
    let Ok(path) = normalize(raw_path) else {
        return;
    };
    let headers = http::HeaderMap::new();
    let found = table.find(&method, &path, &headers, BodyView::NotLoaded);
    let linear = table.precedence_order().find(|&i| {
        let spec = &specs[i];
        method_allows(&spec.methods, &method)
            && PathPattern::parse(&spec.pattern).is_ok_and(|p| p.matches(&path))
    });
    match found {
        MatchOutcome::Matched(m) => {
            assert_eq!(Some(m.index()), linear, "{method} {path}");
            let spec = &specs[m.index()];
            assert_eq!(m.pattern(), spec.pattern);
            let upstream = m.upstream_path(&path);
            assert!(upstream.starts_with('/'), "{path} -> {upstream:?}");
            if spec.target_path.is_none() {
                assert_eq!(normalize(&upstream), Ok(upstream.clone()), "{path}");
            }
        }
        MatchOutcome::NotFound => assert_eq!(linear, None, "{method} {path}"),
        MatchOutcome::NeedBody => panic!("no route has body conditions"),
    }
}

fn route_spec((index, line): (usize, &str)) -> RouteSpec {
    let mut words = line.split(' ');
    let mut spec = RouteSpec {
        index,
        name: format!("r{index}"),
        pattern: words.next().unwrap_or_default().to_owned(),
        ..RouteSpec::default()
    };
    for word in words {
        if let Some(p) = word.strip_prefix("p=") {
            spec.priority = p.parse().unwrap_or(0);
        } else if let Some(m) = word.strip_prefix("m=") {
            spec.methods = m.split(',').map(str::to_owned).collect();
        } else if let Some(t) = word.strip_prefix("t=") {
            spec.target_path = Some(t.to_owned());
        } else if word == "strip" {
            spec.strip_prefix = true;
        }
    }
    spec
}

/// `RouteSpec.methods` semantics: empty or `ANY` means all; names compare upper-cased.
fn method_allows(methods: &[String], method: &http::Method) -> bool {
    methods.is_empty()
        || methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case("ANY") || m.to_ascii_uppercase() == method.as_str())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}
