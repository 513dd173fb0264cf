//! Environment overrides: `FASTGATE_SECTION__KEY=value` sets `section.key`.
//!
//! Overrides are applied to the parsed YAML value *before* it is deserialized into
//! [`Config`], rather than through figment: serde_path_to_error then reports errors with
//! the same field paths whether a value came from the file or from the environment, and
//! figment has no provider for yaml_serde. The set of overridable settings is derived from
//! `Config::default()`, so the variables are looked up by name (no need to enumerate the
//! environment) and each value is typed by its field: strings stay verbatim (a token or a
//! URL is never re-parsed as YAML), numbers and booleans are parsed as YAML scalars, and
//! lists accept `[a, b]` or `a,b`.

use std::collections::BTreeMap;

use yaml_serde::{Mapping, Value};

use crate::error::ConfigError;
use crate::model::Config;

/// Prefix of every override variable.
pub const ENV_PREFIX: &str = "FASTGATE_";

/// Shortcut variables, applied before the `FASTGATE_SECTION__KEY` form (which wins).
/// In order of increasing precedence.
pub const ENV_SHORTCUTS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("FASTGATE_DATABASE_URL", "database.url"),
    ("FASTGATE_ADMIN_TOKEN", "admin.token"),
    ("FASTGATE_LISTEN", "server.listen"),
];

/// Top-level lists of objects are declared in the file only.
const NOT_OVERRIDABLE: &[&str] = &["upstreams", "routes"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Scalar,
    List,
}

struct Setting {
    path: Vec<String>,
    kind: Kind,
}

impl Setting {
    fn dotted(&self) -> String {
        self.path.join(".")
    }

    fn var(&self) -> String {
        format!("{ENV_PREFIX}{}", self.path.join("__").to_ascii_uppercase())
    }
}

/// Which variable set which field path (for error messages).
pub(crate) type Sources = BTreeMap<String, String>;

fn settings() -> Result<Vec<Setting>, ConfigError> {
    let defaults = yaml_serde::to_value(Config::default()).map_err(|e| ConfigError::Parse {
        path: ".".into(),
        message: format!("internal error listing the settings: {e}"),
    })?;
    let mut out = Vec::new();
    collect(&defaults, &mut Vec::new(), &mut out);
    Ok(out)
}

fn collect(value: &Value, path: &mut Vec<String>, out: &mut Vec<Setting>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let Some(key) = key.as_str() else { continue };
                if path.is_empty() && NOT_OVERRIDABLE.contains(&key) {
                    continue;
                }
                path.push(key.to_owned());
                collect(child, path, out);
                path.pop();
            }
        }
        other => {
            let kind = match other {
                Value::Bool(_) | Value::Number(_) => Kind::Scalar,
                Value::Sequence(_) => Kind::List,
                _ => Kind::Text,
            };
            out.push(Setting {
                path: path.clone(),
                kind,
            });
        }
    }
}

/// Every variable name of the `FASTGATE_SECTION__KEY` form, with the setting it changes.
pub fn override_vars() -> Result<Vec<(String, String)>, ConfigError> {
    Ok(settings()?.iter().map(|s| (s.var(), s.dotted())).collect())
}

/// Refuses `FASTGATE_…__…` variables that name no setting (a typo would otherwise be
/// silently ignored).
pub(crate) fn check_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ConfigError> {
    let known = override_vars()?;
    for name in names {
        if name.starts_with(ENV_PREFIX)
            && name.contains("__")
            && !known.iter().any(|(var, _)| var == name)
        {
            return Err(ConfigError::Env {
                var: name.to_owned(),
                message: "names no setting (FASTGATE_SECTION__KEY, e.g. FASTGATE_SERVER__LISTEN); \
                          see docs/configuration.md"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Applies the overrides found through `env` to `doc` and returns who set what.
pub(crate) fn apply(
    doc: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Sources, ConfigError> {
    let settings = settings()?;
    let mut sources = Sources::new();
    for (var, dotted) in ENV_SHORTCUTS {
        if let Some(raw) = env(var) {
            let Some(setting) = settings.iter().find(|s| s.dotted() == *dotted) else {
                continue;
            };
            if set(doc, &setting.path, typed(setting.kind, &raw)) {
                sources.insert(setting.dotted(), (*var).to_owned());
            }
        }
    }
    for setting in &settings {
        let var = setting.var();
        if let Some(raw) = env(&var)
            && set(doc, &setting.path, typed(setting.kind, &raw))
        {
            sources.insert(setting.dotted(), var);
        }
    }
    Ok(sources)
}

fn typed(kind: Kind, raw: &str) -> Value {
    match kind {
        Kind::Text => Value::String(raw.to_owned()),
        Kind::Scalar => match yaml_serde::from_str::<Value>(raw) {
            Ok(v @ (Value::Bool(_) | Value::Number(_))) => v,
            _ => Value::String(raw.to_owned()),
        },
        Kind::List => {
            let trimmed = raw.trim();
            if trimmed.starts_with('[')
                && let Ok(v @ Value::Sequence(_)) = yaml_serde::from_str::<Value>(trimmed)
            {
                return v;
            }
            Value::Sequence(
                trimmed
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )
        }
    }
}

/// Sets `path` in `doc`, creating mappings on the way. Leaves the document alone (and
/// returns false) where the file has a non-mapping in the way, so that the file's own
/// type error is reported.
fn set(doc: &mut Value, path: &[String], value: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if doc.is_null() {
        *doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = doc else {
        return false;
    };
    let key = Value::String(first.clone());
    if rest.is_empty() {
        map.insert(key, value);
        return true;
    }
    set(map.entry(key).or_insert(Value::Null), rest, value)
}

/// The variable that set `path` or one of its parents, if any.
pub(crate) fn source_of<'a>(path: &str, sources: &'a Sources) -> Option<&'a str> {
    sources.iter().find_map(|(set_path, var)| {
        let under = path
            .strip_prefix(set_path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']));
        under.then_some(var.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_sections_and_keys() {
        let vars = override_vars().unwrap();
        let has = |v: &str, p: &str| vars.iter().any(|(a, b)| a == v && b == p);
        assert!(has("FASTGATE_SERVER__LISTEN", "server.listen"));
        assert!(has(
            "FASTGATE_SERVER__MAX_BODY_BYTES",
            "server.max_body_bytes"
        ));
        assert!(has("FASTGATE_AUDIT__BATCH_SIZE", "audit.batch_size"));
        assert!(has("FASTGATE_ADMIN__TOKEN", "admin.token"));
        assert!(has("FASTGATE_DATABASE__URL", "database.url"));
        assert!(has("FASTGATE_DATA_DIR", "data_dir"));
        assert!(!vars.iter().any(|(_, p)| p.starts_with("routes")));
    }

    #[test]
    fn unknown_names_refused() {
        assert!(check_names(["FASTGATE_SERVER__LISTEN", "FASTGATE_CONFIG", "PATH"]).is_ok());
        let err = check_names(["FASTGATE_SERVER__LISTN"]).unwrap_err();
        assert!(err.to_string().contains("FASTGATE_SERVER__LISTN"), "{err}");
    }

    #[test]
    fn values_are_typed_by_field() {
        assert_eq!(typed(Kind::Scalar, "100"), Value::Number(100.into()));
        assert_eq!(typed(Kind::Scalar, "false"), Value::Bool(false));
        assert_eq!(typed(Kind::Scalar, "abc"), Value::String("abc".into()));
        assert_eq!(typed(Kind::Text, "123"), Value::String("123".into()));
        assert_eq!(typed(Kind::Text, "a #b"), Value::String("a #b".into()));
        let list = Value::Sequence(vec![Value::String("a".into()), Value::String("b".into())]);
        assert_eq!(typed(Kind::List, "a, b"), list);
        assert_eq!(typed(Kind::List, "[a, b]"), list);
        assert_eq!(typed(Kind::List, ""), Value::Sequence(vec![]));
    }

    #[test]
    fn source_matches_children_only() {
        let mut sources = Sources::new();
        sources.insert("server.listen".into(), "FASTGATE_LISTEN".into());
        assert_eq!(
            source_of("server.listen", &sources),
            Some("FASTGATE_LISTEN")
        );
        assert_eq!(source_of("server.listener", &sources), None);
        assert_eq!(source_of("server", &sources), None);
    }
}
