use super::*;

fn p(s: &str) -> PathPattern {
    PathPattern::parse(s).unwrap()
}

fn caps(pattern: &str, path: &str) -> Option<(Vec<String>, String)> {
    let pat = p(pattern);
    let mut caps = Vec::new();
    let rest = pat.match_into(path, &mut caps)?;
    Some((caps, path[rest..].to_owned()))
}

#[test]
fn exact_patterns() {
    let pat = p("/a/b");
    assert!(pat.is_exact());
    assert_eq!(pat.as_str(), "/a/b");
    assert_eq!(pat.to_string(), "/a/b");
    assert!(pat.matches("/a/b"));
    for miss in ["/a", "/a/b/", "/a/b/c", "/a/bc", "/A/b", "/a//b"] {
        assert!(!pat.matches(miss), "{miss}");
    }
    assert!(p("/").matches("/"));
    assert!(!p("/").matches("/a"));
    assert!(p("/a/").matches("/a/"));
    assert!(!p("/a/").matches("/a"));
}

#[test]
fn one_segment_wildcard() {
    let pat = p("/v1/*");
    assert!(pat.matches("/v1/models"));
    for miss in ["/v1", "/v1/", "/v1/a/b", "/v2/a"] {
        assert!(!pat.matches(miss), "{miss}");
    }
    assert!(p("/*/x").matches("/a/x"));
}

#[test]
fn any_depth_wildcard() {
    assert_eq!(caps("/api/v2/**", "/api/v2"), Some((vec![], String::new())));
    assert_eq!(
        caps("/api/v2/**", "/api/v2/"),
        Some((vec![], String::new()))
    );
    assert_eq!(
        caps("/api/v2/**", "/api/v2/x/y"),
        Some((vec![], "x/y".to_owned()))
    );
    assert_eq!(
        caps("/api/v2/**", "/api/v2/x/"),
        Some((vec![], "x/".to_owned()))
    );
    assert_eq!(caps("/api/v2/**", "/api/v2x"), None);
    assert_eq!(caps("/api/v2/**", "/api"), None);
    assert_eq!(caps("/**", "/"), Some((vec![], String::new())));
    assert_eq!(caps("/**", "/a/b"), Some((vec![], "a/b".to_owned())));
    assert!(p("/api/**").has_rest());
}

#[test]
fn parameters() {
    assert_eq!(
        caps("/user/{id}", "/user/42"),
        Some((vec!["42".to_owned()], String::new()))
    );
    assert_eq!(caps("/user/{id}", "/user/"), None);
    assert_eq!(caps("/user/{id}", "/user/1/x"), None);
    assert_eq!(
        caps("/u/{a}/x/{b_2}/**", "/u/1/x/2/r/s"),
        Some((vec!["1".to_owned(), "2".to_owned()], "r/s".to_owned()))
    );
    let pat = p("/u/{a}/{_B9}");
    assert_eq!(pat.param_names().collect::<Vec<_>>(), ["a", "_B9"]);
    assert_eq!(pat.param_index("_B9"), Some(1));
    assert_eq!(pat.param_index("c"), None);
}

#[test]
fn extension_wildcard() {
    let pat = p("/file/*.json");
    assert!(pat.matches("/file/a.json"));
    assert!(pat.matches("/file/a.b.json"));
    for miss in [
        "/file/.json",
        "/file/a.jsonx",
        "/file/a.JSON",
        "/file/a.json/x",
        "/file",
    ] {
        assert!(!pat.matches(miss), "{miss}");
    }
    assert!(p("/f/*.tar.gz").matches("/f/x.tar.gz"));
}

#[test]
fn literal_prefix_and_classes() {
    assert_eq!(p("/openai/**").literal_prefix(), "/openai");
    assert_eq!(p("/a/b/{id}/c").literal_prefix(), "/a/b");
    assert_eq!(p("/{id}").literal_prefix(), "");
    assert_eq!(p("/a/b").literal_prefix(), "/a/b");
    assert_eq!(p("/a/").literal_prefix(), "/a");
    assert_eq!(p("/a/b").class(), Class::Exact);
    assert_eq!(p("/a/{b}").class(), Class::Param);
    assert_eq!(p("/a/{b}/*").class(), Class::Star);
    assert_eq!(p("/a/*.x").class(), Class::Star);
    assert_eq!(p("/a/{b}/**").class(), Class::Rest);
    assert_eq!(p("/a/*/c/{d}").literal_segments(), 2);
    assert_eq!(p("/a/*.x/*.y").ext_segments(), 2);
    assert_eq!(p("/a/**").first_literal(), Some("a"));
    assert_eq!(p("/*/a").first_literal(), None);
    assert_eq!(p("/").first_literal(), None);
}

#[test]
fn rejected_patterns() {
    use PatternError as E;
    let cases: &[(&str, E)] = &[
        ("", E::Empty),
        ("a/b", E::NotAbsolute),
        ("/a/**/b", E::MisplacedDoubleStar),
        ("/a**", E::MisplacedDoubleStar),
        ("/a/**x", E::MisplacedDoubleStar),
        ("/a*b", E::BadWildcard("a*b".into())),
        ("/a/*x", E::BadWildcard("*x".into())),
        ("/a/*.", E::BadWildcard("*.".into())),
        ("/a/*.j*", E::BadWildcard("*.j*".into())),
        ("/a/*.{x}", E::BadWildcard("*.{x}".into())),
        ("/{", E::BadParam("{".into())),
        ("/}", E::BadParam("}".into())),
        ("/a{id}", E::BadParam("a{id}".into())),
        ("/{id}x", E::BadParam("{id}x".into())),
        ("/{{id}}", E::BadParam("{{id}}".into())),
        ("/{}", E::BadParamName(String::new())),
        ("/{1a}", E::BadParamName("1a".into())),
        ("/{a-b}", E::BadParamName("a-b".into())),
        ("/{a}/{a}", E::DuplicateParam("a".into())),
        ("/a//b", E::NotNormalized("/a/b".into())),
        ("/a/./b", E::NotNormalized("/a/b".into())),
        ("/a/../b", E::NotNormalized("/b".into())),
        ("/a\\b", E::NotNormalized("/a/b".into())),
        ("/%61", E::NotNormalized("/a".into())),
        ("/a%2fb", E::NotNormalized("/a/b".into())),
        ("/..", E::InvalidPath(PathError::Traversal)),
        ("/%00", E::InvalidPath(PathError::Nul)),
    ];
    for (pattern, want) in cases {
        assert_eq!(PathPattern::parse(pattern).as_ref(), Err(want), "{pattern}");
    }
}

#[test]
fn error_messages_are_one_line() {
    for bad in [
        "", "x", "/a/**/b", "/a*b", "/{", "/{}", "/{a}/{a}", "/a//b", "/..",
    ] {
        let msg = PathPattern::parse(bad).unwrap_err().to_string();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{bad}: {msg}");
    }
}

#[test]
fn unnormalised_paths_do_not_match() {
    let pat = p("/a/{id}");
    assert!(!pat.matches("a/1"));
    assert!(!pat.matches(""));
}
