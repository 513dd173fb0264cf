//! Loading: the contract example, defaults, interpolation, environment overrides.

use std::collections::HashMap;
use std::time::Duration;

use fastgate_config::{ConfigError, LogFormat, UpstreamKind, load_str};

const TOKEN: &str = "tok-4f9a8b7c6d5e4f3a2b1c";
const OPENAI_KEY: &str = "sk-canary-7d1e0f";

pub const CONTRACT: &str = r#"
server:   { listen: "127.0.0.1:8514", max_body_bytes: 4194304 }
database: { url: "sqlite://./data/fastgate.db" }   # or postgres://...
admin:    { token: "${FASTGATE_ADMIN_TOKEN}" }
upstreams:
  - name: openai-main
    kind: openai            # openai | anthropic | http
    base_url: "http://127.0.0.1:9000"
    credentials: [ { name: k1, key: "${OPENAI_KEY}" } ]
routes:
  - name: chat
    priority: 100
    match: { path: "/v1/chat/completions", methods: [POST],
             headers: { x-team: "ml" }, body: { model: "gpt-4o" } }
    upstream: openai-main
    target_path: "/v1/chat/completions"
    strip_prefix: false
    add_headers: { x-from: fastgate }
    remove_headers: [ x-debug ]
    add_body_fields: { user: "gateway" }
    timeout: { connect: 5s, first_byte: 60s, idle: 60s, total: 600s }
    retries: 1
    audit: { headers: true, bodies: false, body_max_bytes: 10240 }
"#;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn contract_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[("FASTGATE_ADMIN_TOKEN", TOKEN), ("OPENAI_KEY", OPENAI_KEY)])
}

#[test]
fn contract_example_loads() {
    let cfg = load_str(CONTRACT, &contract_env()).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8514");
    assert_eq!(cfg.server.max_body_bytes, 4_194_304);
    assert_eq!(cfg.database_url(), "sqlite://./data/fastgate.db");
    assert_eq!(cfg.admin.token.as_ref().unwrap().expose(), TOKEN);
    let up = &cfg.upstreams[0];
    assert_eq!(up.name, "openai-main");
    assert_eq!(up.kind, UpstreamKind::Openai);
    assert_eq!(up.credentials[0].key.expose(), OPENAI_KEY);
    assert_eq!(up.credentials[0].weight, 1);
    let route = &cfg.routes[0];
    assert_eq!(route.matcher.methods, ["POST"]);
    assert_eq!(route.matcher.headers["x-team"], "ml");
    assert_eq!(route.matcher.body["model"], "gpt-4o");
    assert_eq!(route.add_body_fields["user"], "gateway");
    assert_eq!(route.remove_headers, ["x-debug"]);
    assert_eq!(route.timeout.total, Duration::from_secs(600));
    assert_eq!(route.timeout.connect, Duration::from_secs(5));
    assert!(route.audit.headers && !route.audit.bodies);
    assert!(route.active && route.auth);
}

#[test]
fn secrets_never_printed() {
    let cfg = load_str(CONTRACT, &contract_env()).unwrap();
    let debug = format!("{cfg:?}");
    let pretty = format!("{cfg:#?}");
    let json = serde_json::to_string(&cfg).unwrap();
    for out in [&debug, &pretty, &json] {
        assert!(!out.contains("canary"), "{out}");
        assert!(!out.contains(TOKEN), "{out}");
        assert!(out.contains("redacted"));
    }
}

#[test]
fn empty_document_gives_defaults() {
    for doc in ["", "\n# only a comment\n", "{}", "---\n"] {
        let cfg = load_str(doc, &env_of(&[])).unwrap();
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8514");
        assert_eq!(cfg.data_dir.to_str(), Some("./data"));
        assert_eq!(cfg.database_url(), "sqlite://./data/fastgate.db");
        assert!(cfg.admin.token.is_none());
        assert!(cfg.audit.enabled);
        assert_eq!(cfg.log.format, LogFormat::Text);
        assert!(cfg.upstreams.is_empty() && cfg.routes.is_empty());
    }
}

#[test]
fn data_dir_shapes_default_database_url() {
    let cfg = load_str("data_dir: /var/lib/fastgate\n", &env_of(&[])).unwrap();
    assert_eq!(cfg.database_url(), "sqlite:///var/lib/fastgate/fastgate.db");
    let cfg = load_str("data_dir: /srv/fg/\n", &env_of(&[])).unwrap();
    assert_eq!(cfg.database_url(), "sqlite:///srv/fg/fastgate.db");
}

#[test]
fn interpolation_with_defaults_and_escape() {
    let yaml = "server:\n  listen: \"127.0.0.1:${PORT:-9100}\"\n  max_body_bytes: ${MAX}\nlog:\n  level: \"$${NOT_A_VAR}\"\n";
    let cfg = load_str(yaml, &env_of(&[("MAX", "1024")])).unwrap();
    assert_eq!(cfg.server.listen.port(), 9100);
    assert_eq!(cfg.server.max_body_bytes, 1024);
    assert_eq!(cfg.log.level, "${NOT_A_VAR}");
}

#[test]
fn missing_variable_is_named_with_its_line() {
    let err = load_str(CONTRACT, &env_of(&[("FASTGATE_ADMIN_TOKEN", TOKEN)])).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ConfigError::Env { ref var, .. } if var == "OPENAI_KEY"),
        "{msg}"
    );
    assert!(msg.contains("line 9"), "{msg}");
}

#[test]
fn section_key_overrides() {
    let env = env_of(&[
        ("FASTGATE_SERVER__LISTEN", "127.0.0.1:9000"),
        ("FASTGATE_AUDIT__BATCH_SIZE", "100"),
        ("FASTGATE_AUDIT__ENABLED", "false"),
        ("FASTGATE_AUDIT__FLUSH_INTERVAL", "1s"),
        ("FASTGATE_LOG__FORMAT", "json"),
        ("FASTGATE_SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
    ]);
    let cfg = load_str("server: { max_body_bytes: 10 }\naudit:\n", &env).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(cfg.server.max_body_bytes, 10, "untouched file value kept");
    assert_eq!(cfg.audit.batch_size, 100);
    assert!(!cfg.audit.enabled);
    assert_eq!(cfg.audit.flush_interval, Duration::from_secs(1));
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.server.trusted_proxies, ["10.0.0.0/8", "127.0.0.1"]);
}

#[test]
fn shortcuts() {
    let env = env_of(&[
        ("DATABASE_URL", "postgres://fg:pw@db:5432/fastgate"),
        ("FASTGATE_ADMIN_TOKEN", TOKEN),
        ("FASTGATE_LISTEN", "0.0.0.0:8080"),
        ("FASTGATE_DATA_DIR", "/tmp/fg"),
    ]);
    let cfg = load_str("database: { url: \"sqlite://x.db\" }\n", &env).unwrap();
    assert_eq!(cfg.database_url(), "postgres://fg:pw@db:5432/fastgate");
    assert_eq!(cfg.admin.token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.data_dir.to_str(), Some("/tmp/fg"));
}

#[test]
fn shortcut_precedence() {
    let env = env_of(&[
        ("DATABASE_URL", "postgres://a/one"),
        ("FASTGATE_DATABASE_URL", "postgres://a/two"),
    ]);
    let cfg = load_str("", &env).unwrap();
    assert_eq!(cfg.database_url(), "postgres://a/two");
    let env = env_of(&[
        ("FASTGATE_DATABASE_URL", "postgres://a/two"),
        ("FASTGATE_DATABASE__URL", "postgres://a/three"),
        ("FASTGATE_LISTEN", "0.0.0.0:1"),
        ("FASTGATE_SERVER__LISTEN", "0.0.0.0:2"),
    ]);
    let cfg = load_str("", &env).unwrap();
    assert_eq!(cfg.database_url(), "postgres://a/three");
    assert_eq!(cfg.server.listen.port(), 2);
}

#[test]
fn only_prefixed_variables_override() {
    let env = env_of(&[("SERVER__LISTEN", "0.0.0.0:1"), ("LISTEN", "0.0.0.0:1")]);
    let cfg = load_str("", &env).unwrap();
    assert_eq!(cfg.server.listen.port(), 8514);
}

#[test]
fn bad_override_names_field_and_variable() {
    let env = env_of(&[("FASTGATE_AUDIT__BATCH_SIZE", "lots")]);
    let msg = load_str("", &env).unwrap_err().to_string();
    assert!(msg.starts_with("audit.batch_size: "), "{msg}");
    assert!(msg.contains("FASTGATE_AUDIT__BATCH_SIZE"), "{msg}");

    let env = env_of(&[("FASTGATE_ADMIN_TOKEN", "short")]);
    let msg = load_str("", &env).unwrap_err().to_string();
    assert!(msg.starts_with("admin.token: too short"), "{msg}");
    assert!(msg.contains("FASTGATE_ADMIN_TOKEN"), "{msg}");
}

#[test]
fn empty_admin_token_from_env_refused() {
    let msg = load_str("", &env_of(&[("FASTGATE_ADMIN_TOKEN", "")]))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("admin.token: is empty"), "{msg}");
    let msg = load_str(
        CONTRACT,
        &env_of(&[("FASTGATE_ADMIN_TOKEN", " "), ("OPENAI_KEY", "k")]),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.starts_with("admin.token: is empty"), "{msg}");
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let yaml = r#"
x-timeouts: &t { connect: 1s, first_byte: 2s, idle: 2s, total: 10s }
"#;
    // Unknown top-level keys stay errors, even for anchors.
    let err = load_str(yaml, &env_of(&[])).unwrap_err();
    assert_eq!(err.field_path(), Some("x-timeouts"), "{err}");

    let yaml = r#"
upstreams:
  - &up { name: a, kind: http, base_url: "http://127.0.0.1:1" }
  - { <<: *up, name: b }
"#;
    let cfg = load_str(yaml, &env_of(&[])).unwrap();
    assert_eq!(cfg.upstreams[1].name, "b");
    assert_eq!(cfg.upstreams[1].base_url, "http://127.0.0.1:1");
}

#[test]
fn file_loading_and_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = fastgate_config::load(Some(&missing)).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("nope.yaml"), "{err}");
}

#[test]
fn example_file_loads() {
    let text = include_str!("../examples/fastgate.example.yaml");
    let env = env_of(&[
        ("FASTGATE_ADMIN_TOKEN", TOKEN),
        ("OPENAI_API_KEY", "sk-1"),
        ("OPENAI_API_KEY_2", "sk-2"),
        ("ANTHROPIC_API_KEY", "sk-ant-1"),
    ]);
    let cfg = load_str(text, &env).unwrap();
    assert!(!cfg.upstreams.is_empty() && !cfg.routes.is_empty());
}
