use super::*;
use proptest::prelude::*;

type Case = (&'static str, Result<&'static str, PathError>);

const CASES: &[Case] = &[
    ("/v1/../admin", Ok("/admin")),
    ("/v1/%2e%2e/admin", Ok("/admin")),
    ("/v1/%2E%2E%2Fadmin", Ok("/admin")),
    ("//admin", Ok("/admin")),
    ("/a/./b", Ok("/a/b")),
    ("/a%5c..%5cadmin", Ok("/admin")),
    ("/a%5C..%5Cadmin", Ok("/admin")),
    ("/a\\..\\admin", Ok("/admin")),
    ("/%00", Err(PathError::Nul)),
    ("/a\0", Err(PathError::Nul)),
    ("/..", Err(PathError::Traversal)),
    ("/A%2fB", Ok("/A/B")),
    ("/", Ok("/")),
    ("", Err(PathError::Empty)),
    ("admin", Err(PathError::NotAbsolute)),
    ("\\admin", Err(PathError::NotAbsolute)),
    ("%2fadmin", Err(PathError::NotAbsolute)),
    ("/a/b/", Ok("/a/b/")),
    ("/a/b/..", Ok("/a/")),
    ("/a/.", Ok("/a/")),
    ("/a//", Ok("/a/")),
    ("///", Ok("/")),
    ("/.", Ok("/")),
    ("/./", Ok("/")),
    ("/a/..", Ok("/")),
    ("/%2e%2e", Err(PathError::Traversal)),
    ("/.%2E/x", Err(PathError::Traversal)),
    ("/a/../..", Err(PathError::Traversal)),
    ("/a/..%2f..%2fb", Err(PathError::Traversal)),
    ("/a/b/../../c", Ok("/c")),
    ("/%2F%2Fadmin", Ok("/admin")),
    ("/%41dmin", Ok("/Admin")),
    ("/adm%69n", Ok("/admin")),
    ("/%7euser", Ok("/~user")),
    ("/%2D%5F%30", Ok("/-_0")),
    ("/a%3bb", Ok("/a%3Bb")),
    ("/a;b/c", Ok("/a;b/c")),
    ("/admin;x/../y", Ok("/y")),
    ("/%252e%252e/admin", Err(PathError::DoubleEncoded)),
    ("/%25", Ok("/%25")),
    ("/100%25", Ok("/100%25")),
    ("/%25zz", Ok("/%25zz")),
    ("/%25/2e", Ok("/%25/2e")),
    ("/%252e", Err(PathError::DoubleEncoded)),
    ("/%252E", Err(PathError::DoubleEncoded)),
    ("/%252f", Err(PathError::DoubleEncoded)),
    ("/%2541dmin", Err(PathError::DoubleEncoded)),
    ("/%25%32%65", Err(PathError::DoubleEncoded)),
    ("/%25%32e", Err(PathError::DoubleEncoded)),
    ("/%2525", Err(PathError::DoubleEncoded)),
    ("/a/%25ab/../c", Err(PathError::DoubleEncoded)),
    ("/x/..;/admin", Err(PathError::DotSegmentParams)),
    ("/x/..;", Err(PathError::DotSegmentParams)),
    ("/x/.;x/y", Err(PathError::DotSegmentParams)),
    ("/x/.;", Err(PathError::DotSegmentParams)),
    ("/x/..;jsessionid=1/admin", Err(PathError::DotSegmentParams)),
    ("/..;/admin", Err(PathError::DotSegmentParams)),
    ("/x/%2e%2e;/admin", Err(PathError::DotSegmentParams)),
    ("/x/.%2E;a=b/admin", Err(PathError::DotSegmentParams)),
    ("/x/..%3b/admin", Err(PathError::DotSegmentParams)),
    ("/x/..%3Bx/admin", Err(PathError::DotSegmentParams)),
    ("/x%2F..;%2Fadmin", Err(PathError::DotSegmentParams)),
    ("/x%5C..;%5Cadmin", Err(PathError::DotSegmentParams)),
    ("/x/...;/y", Ok("/x/...;/y")),
    ("/x/..a;/y", Ok("/x/..a;/y")),
    ("/x/;/y", Ok("/x/;/y")),
    ("/x/;..;/y", Ok("/x/;..;/y")),
    ("/x/a;..", Ok("/x/a;..")),
    ("/v1/files/a%2Fb", Ok("/v1/files/a/b")),
    ("/a%2", Err(PathError::InvalidEscape(2))),
    ("/a%", Err(PathError::InvalidEscape(2))),
    ("/a%zz", Err(PathError::InvalidEscape(2))),
    ("/a%1f", Err(PathError::ControlChar)),
    ("/a%0a", Err(PathError::ControlChar)),
    ("/a\r\n", Err(PathError::ControlChar)),
    ("/a\x01", Err(PathError::ControlChar)),
    ("/a\x7f", Err(PathError::ControlChar)),
    ("/a%7F", Err(PathError::ControlChar)),
    ("/\u{e9}t\u{e9}", Ok("/\u{e9}t\u{e9}")),
    ("/%c3%a9", Ok("/%C3%A9")),
    ("/a/.../b", Ok("/a/.../b")),
    ("/a/..b/c", Ok("/a/..b/c")),
    ("/a b", Ok("/a b")),
    ("/v1/chat/completions", Ok("/v1/chat/completions")),
];

#[test]
fn normalisation_table() {
    for (input, want) in CASES {
        let got = normalize_path(input);
        assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "input {input:?}");
    }
}

#[test]
fn table_outputs_are_fixed_points() {
    for (input, want) in CASES {
        if let Ok(out) = want {
            assert_eq!(normalize_path(out).as_deref(), Ok(*out), "input {input:?}");
        }
    }
}

#[test]
fn reserved_paths() {
    for p in [
        "/admin",
        "/admin/",
        "/ADMIN/x",
        "/Admin;jsessionid=1",
        "/admin;x/y",
        "/admin%3Bx/y",
    ] {
        assert!(is_reserved_path(p), "{p}");
    }
    for p in [
        "/administrator",
        "/",
        "/v1/admin",
        "admin",
        "",
        "/adminx/y",
        "/%61dmin",
    ] {
        assert!(!is_reserved_path(p), "{p}");
    }
}

#[test]
fn admin_tricks_are_all_reserved_after_normalisation() {
    for raw in [
        "/v1/../admin",
        "/v1/%2e%2e/admin",
        "/v1/%2E%2E%2Fadmin",
        "//admin",
        "/a%5c..%5cadmin",
        "/%41DMIN/keys",
        "/./admin/",
        "/x/%2e%2e%5cADMIN;a",
    ] {
        let n = normalize_path(raw).unwrap();
        assert!(is_reserved_path(&n), "{raw} -> {n}");
    }
}

const TOKENS: &[&str] = &[
    "/",
    "//",
    "\\",
    "admin",
    "ADMIN",
    "aDmIn",
    "%61dmin",
    "%41DMIN",
    "adm%69n",
    "..",
    ".",
    "%2e",
    "%2E",
    "%2e%2e",
    ".%2E",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "v1",
    "x",
    ";",
    ";x",
    "%25",
    "%252e",
    "%2e;",
    "..;",
    ";x",
    "%3b",
    "2",
    "e",
    "administrator",
    "-",
    "~",
    "%7E",
    "%20",
];

/// Paths built from tokens that play the usual encoding games.
fn tricky_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..14).prop_map(|ts| {
        let mut s = String::from("/");
        s.extend(ts);
        s
    })
}

/// Reference model: decode every escape once (the token set only encodes characters
/// that normalisation also decodes, plus `%25`, `%3b` and `%20`); a `%` left in the
/// result that is followed by two hex digits means double encoding; treat '\\' as '/';
/// refuse segments that are `.`/`..` before a ';'; resolve dot segments with a stack,
/// and report whether the first segment is `admin`.
fn reference_reserved(raw: &str) -> Result<bool, PathError> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let b = decoded.as_bytes();
    let double = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    });
    if double {
        return Err(PathError::DoubleEncoded);
    }
    let decoded = decoded.replace('\\', "/");
    let mut stack: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        let (head, params) = match seg.split_once(';') {
            Some((head, _)) => (head, true),
            None => (seg, false),
        };
        if params && matches!(head, "." | "..") {
            return Err(PathError::DotSegmentParams);
        }
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop().ok_or(PathError::Traversal)?;
            }
            s => stack.push(s),
        }
    }
    Ok(stack
        .first()
        .is_some_and(|s| s.split(';').next().unwrap().eq_ignore_ascii_case("admin")))
}

/// The output shapes normalisation never produces: empty, `.`/`..` segments (with or
/// without `;params`), backslashes, control characters, double encoding.
fn assert_clean(out: &str) {
    assert!(out.starts_with('/'), "{out}");
    assert!(!out.contains("//"), "{out}");
    assert!(!out.contains('\\'), "{out}");
    assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f), "{out:?}");
    for seg in out.split('/') {
        let head = seg.split(';').next().unwrap();
        let head = head.split("%3B").next().unwrap();
        assert!(head != "." && head != "..", "{out}");
    }
    let b = out.as_bytes();
    for (i, w) in b.windows(3).enumerate() {
        if w == b"%25" {
            let next: Vec<u8> = b.iter().skip(i + 3).take(2).copied().collect();
            assert!(
                !(next.len() == 2 && next.iter().all(u8::is_ascii_hexdigit)),
                "double encoding in {out}"
            );
        }
    }
}

/// The definition `is_reserved_path` implements by looking at the first bytes: the
/// first segment, cut at its first `;` and then at its first `%3B`, is `admin`.
fn reserved_by_definition(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or("");
    let first = first.split(';').next().unwrap_or("");
    let first = first.split("%3B").next().unwrap_or("");
    first.eq_ignore_ascii_case("admin")
}

proptest! {
    #[test]
    fn reserved_check_matches_its_definition(p in "/?(admin|ADMIN|aDmIn|admi|n|;|/|%3B|%3b|%3|x){0,6}") {
        prop_assert_eq!(is_reserved_path(&p), reserved_by_definition(&p), "{}", p);
    }

    #[test]
    fn idempotent_on_tricky_paths(raw in tricky_path()) {
        if let Ok(once) = normalize_path(&raw) {
            assert_clean(&once);
            prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
        }
    }

    #[test]
    fn idempotent_on_printable_ascii(raw in "/[ -~]{0,40}") {
        if let Ok(once) = normalize_path(&raw) {
            assert_clean(&once);
            prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
        }
    }

    #[test]
    fn idempotent_on_any_string(raw in "/\\PC{0,30}") {
        if let Ok(once) = normalize_path(&raw) {
            assert_clean(&once);
            prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
        }
    }

    #[test]
    fn idempotent_on_escape_soup(raw in "/([./;%25A-Fa-f0-9\\\\]|%2[5eEfF]|%3[bB]|%5[cC]){0,24}") {
        if let Ok(once) = normalize_path(&raw) {
            assert_clean(&once);
            prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
        }
    }

    #[test]
    fn reserved_iff_resolved_path_is_under_admin(raw in tricky_path()) {
        let want = reference_reserved(&raw);
        match normalize_path(&raw) {
            Ok(n) => prop_assert_eq!(Ok(is_reserved_path(&n)), want, "{} -> {}", raw, n),
            Err(e @ (PathError::Traversal | PathError::DotSegmentParams | PathError::DoubleEncoded)) => {
                prop_assert_eq!(want, Err(e), "{}", raw)
            }
            Err(e) => prop_assert!(false, "unexpected error {e:?} for {raw}"),
        }
    }
}
