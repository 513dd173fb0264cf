//! Every invalid case reports the field path of the offending value.

use fastgate_config::{ConfigError, load_str};

const TOKEN: &str = "tok-4f9a8b7c6d5e4f3a2b1c";

/// A valid base document; each case replaces one `@name@` placeholder.
const BASE: &str = r#"
server: { listen: "127.0.0.1:8514", max_body_bytes: @body@ }
database: { url: "@db@" }
admin: { token: "@token@" }
audit: { queue_capacity: @queue@, batch_size: @batch@ }
upstreams:
  - name: "@up_name@"
    kind: openai
    base_url: "@base_url@"
    headers: { @up_header@: "v" }
    credentials: [ { name: k1, key: "@key@" }, { name: "@cred2@", key: "sk-2" } ]
  - name: second
    kind: anthropic
    base_url: "https://api.anthropic.com"
routes:
  - name: chat
    match: { path: "@path@", methods: [@method@], headers: { x-team: "ml" } }
    upstream: "@route_up@"
    target_path: "@target@"
    add_headers: { "@add_header@": "@add_value@" }
    remove_headers: [ "@remove@" ]
    timeout: { connect: @connect@, first_byte: 60s, idle: 60s, total: 600s }
  - name: "@route2@"
    match: { path: "/v2/**" }
    upstream: second
"#;

const DEFAULTS: &[(&str, &str)] = &[
    ("body", "1024"),
    ("db", "sqlite://./data/fastgate.db"),
    ("token", TOKEN),
    ("queue", "1000"),
    ("batch", "100"),
    ("up_name", "openai-main"),
    ("base_url", "http://127.0.0.1:9000"),
    ("up_header", "x-org"),
    ("key", "sk-1"),
    ("cred2", "k2"),
    ("path", "/v1/chat/completions"),
    ("method", "POST"),
    ("route_up", "openai-main"),
    ("target", "/v1/chat/completions"),
    ("add_header", "x-from"),
    ("add_value", "fastgate"),
    ("remove", "x-debug"),
    ("connect", "5s"),
    ("route2", "other"),
];

fn doc(overrides: &[(&str, &str)]) -> String {
    let mut text = BASE.to_owned();
    for (name, default) in DEFAULTS {
        let value = overrides
            .iter()
            .find(|(n, _)| n == name)
            .map_or(*default, |(_, v)| *v);
        text = text.replace(&format!("@{name}@"), value);
    }
    text
}

fn load(text: &str) -> Result<fastgate_config::Config, ConfigError> {
    load_str(text, &|_| None)
}

#[track_caller]
#[expect(
    clippy::expect_used,
    reason = "test helper: a valid document is a failure"
)]
fn expect_error(overrides: &[(&str, &str)], path: &str) -> String {
    let err = load(&doc(overrides)).expect_err("should be refused");
    assert_eq!(err.field_path(), Some(path), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}: ")), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn base_document_is_valid() {
    load(&doc(&[])).unwrap();
}

#[test]
fn parse_errors_carry_field_paths() {
    let msg = expect_error(&[("connect", "5 parsecs")], "routes[0].timeout.connect");
    assert!(msg.contains("parsecs"), "{msg}");
    expect_error(&[("body", "lots")], "server.max_body_bytes");
    expect_error(&[("body", "-1")], "server.max_body_bytes");

    let err = load("server: { listn: \"127.0.0.1:1\" }").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(err.to_string().contains("unknown field `listn`"), "{err}");
    assert!(err.field_path().unwrap().starts_with("server"), "{err}");

    let err =
        load("routes: [ { name: a, match: { path: /a }, upstream: u, colour: red } ]").unwrap_err();
    assert!(err.field_path().unwrap().starts_with("routes[0]"), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");

    let err = load("upstreams: [ { name: a, kind: grpc, base_url: \"http://h\" } ]").unwrap_err();
    assert_eq!(err.field_path(), Some("upstreams[0].kind"), "{err}");

    let err = load("server: { listen: \"nowhere\" }").unwrap_err();
    assert_eq!(err.field_path(), Some("server.listen"), "{err}");
}

#[test]
fn yaml_syntax_error_has_line() {
    let err = load("server:\n  listen: [unclosed\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Yaml { line: Some(_), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn type_errors_on_secrets_do_not_echo_them() {
    let err = load("upstreams: [ { name: a, kind: http, base_url: \"http://h\", credentials: [ \"sk-canary\" ] } ]")
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("upstreams[0].credentials[0]: "), "{msg}");
    assert!(!msg.contains("canary"), "{msg}");
    let msg = load("admin: { token: 12345678901234567890 }")
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("admin.token: ") && !msg.contains("1234567890"),
        "{msg}"
    );
}

#[test]
fn upstream_rules() {
    expect_error(&[("up_name", "")], "upstreams[0].name");
    expect_error(&[("up_name", "open ai")], "upstreams[0].name");
    let msg = expect_error(
        &[("up_name", "second"), ("route_up", "second")],
        "upstreams[1].name",
    );
    assert!(msg.contains("duplicate"), "{msg}");
    expect_error(&[("base_url", "ftp://x")], "upstreams[0].base_url");
    expect_error(&[("base_url", "not a url")], "upstreams[0].base_url");
    expect_error(&[("base_url", "http://h/v1?x=1")], "upstreams[0].base_url");
    expect_error(&[("base_url", "http://h/v1#frag")], "upstreams[0].base_url");
    let msg = expect_error(
        &[("base_url", "http://u:sk-canary@h/")],
        "upstreams[0].base_url",
    );
    assert!(!msg.contains("canary"), "{msg}");
    expect_error(
        &[("up_header", "bad name")],
        "upstreams[0].headers.bad name",
    );
    expect_error(
        &[("up_header", "content-length")],
        "upstreams[0].headers.content-length",
    );
    let msg = expect_error(&[("cred2", "k1")], "upstreams[0].credentials[1].name");
    assert!(msg.contains("duplicate"), "{msg}");
    expect_error(&[("key", "")], "upstreams[0].credentials[0].key");
    expect_error(&[("key", "  ")], "upstreams[0].credentials[0].key");
    let msg = expect_error(
        &[("key", "sk-canary\\r\\nx-evil: 1")],
        "upstreams[0].credentials[0].key",
    );
    assert!(!msg.contains("canary"), "{msg}");
}

#[test]
fn route_rules() {
    let msg = expect_error(&[("route2", "chat")], "routes[1].name");
    assert!(msg.contains("duplicate"), "{msg}");
    let msg = expect_error(&[("route_up", "nowhere")], "routes[0].upstream");
    assert!(
        msg.contains("nowhere") && msg.contains("openai-main"),
        "{msg}"
    );
    expect_error(&[("path", "no-slash")], "routes[0].match.path");
    expect_error(&[("path", "/a/**/b")], "routes[0].match.path");
    expect_error(&[("method", "GE T")], "routes[0].match.methods[0]");
    let msg = expect_error(&[("method", "post")], "routes[0].match.methods[0]");
    assert!(msg.contains("POST"), "{msg}");
    expect_error(&[("target", "v1/chat")], "routes[0].target_path");
    let msg = expect_error(&[("target", "/users/{id}")], "routes[0].target_path");
    assert!(msg.contains("{id}"), "{msg}");
    expect_error(&[("target", "/rest/{**}")], "routes[0].target_path");
    load(&doc(&[
        ("path", "/u/{id}/**"),
        ("target", "/users/{id}/{**}"),
    ]))
    .unwrap();
    expect_error(&[("add_header", "x y")], "routes[0].add_headers.x y");
    expect_error(
        &[("add_header", "Transfer-Encoding")],
        "routes[0].add_headers.Transfer-Encoding",
    );
    expect_error(&[("add_value", "a\\r\\nb")], "routes[0].add_headers.x-from");
    expect_error(&[("add_value", "a\\0b")], "routes[0].add_headers.x-from");
    expect_error(&[("remove", "x:debug")], "routes[0].remove_headers[0]");
    expect_error(&[("connect", "0s")], "routes[0].timeout.connect");
    let msg = expect_error(&[("connect", "601s")], "routes[0].timeout.connect");
    assert!(msg.contains("timeout.total"), "{msg}");
}

#[test]
fn validate_all_reports_every_problem() {
    let mut cfg = load(&doc(&[])).unwrap();
    cfg.routes[0].timeout.total = std::time::Duration::from_secs(10);
    cfg.routes[0].retries = 99;
    cfg.server.max_body_bytes = 0;
    let errors = fastgate_config::validate_all(&cfg);
    let paths: Vec<_> = errors.iter().filter_map(|e| e.field_path()).collect();
    assert_eq!(
        paths,
        [
            "server.max_body_bytes",
            "routes[0].timeout.first_byte",
            "routes[0].timeout.idle",
            "routes[0].retries"
        ],
        "{errors:?}"
    );
    let first = fastgate_config::validate(&cfg).unwrap_err();
    assert_eq!(first.field_path(), Some("server.max_body_bytes"));

    let text = doc(&[("body", "0"), ("route_up", "nowhere"), ("token", "")]);
    let errors = fastgate_config::check_str(&text, &|_| None).unwrap_err();
    let paths: Vec<_> = errors.iter().filter_map(|e| e.field_path()).collect();
    assert_eq!(
        paths,
        ["server.max_body_bytes", "admin.token", "routes[0].upstream"]
    );
    let errors = fastgate_config::check_str("server: [", &|_| None).unwrap_err();
    assert_eq!(errors.len(), 1);
}

#[test]
fn global_rules() {
    expect_error(&[("body", "0")], "server.max_body_bytes");
    expect_error(&[("batch", "0")], "audit.batch_size");
    let msg = expect_error(&[("queue", "10")], "audit.queue_capacity");
    assert!(msg.contains("batch_size"), "{msg}");
    let msg = expect_error(&[("db", "mysql://u:sk-canary@h/db")], "database.url");
    assert!(msg.contains("mysql") && !msg.contains("canary"), "{msg}");
    let msg = expect_error(&[("db", "sk-canary")], "database.url");
    assert!(!msg.contains("canary"), "{msg}");
    expect_error(&[("db", "postgres://u:p@h:99999/db")], "database.url");
    load(&doc(&[("db", "postgresql://u:p@h:5432/db")])).unwrap();
    load(&doc(&[("db", "sqlite::memory:")])).unwrap();
}

#[test]
fn weak_admin_tokens_refused() {
    for token in [
        "",
        "   ",
        "sh0rt",
        "aaaaaaaaaaaaaaaaaaaaaa",
        "changeme-changeme-1",
        "has space in the token",
    ] {
        let msg = expect_error(&[("token", token)], "admin.token");
        if !token.trim().is_empty() {
            assert!(!msg.contains(token), "token echoed: {msg}");
        }
    }
}

#[test]
fn trusted_proxies_are_ips_or_cidrs() {
    let err = load("server: { trusted_proxies: [ \"10.0.0.0/8\", \"lb.local\" ] }").unwrap_err();
    assert_eq!(err.field_path(), Some("server.trusted_proxies[1]"), "{err}");
}
