//! Invariants of the `config_load` fuzz target, shared by the fuzz target and the
//! corpus test (`tests/fuzz_corpus.rs`), which replays every file of
//! `corpus/config_load/` under `cargo test`. A violated invariant panics.

use fastgate_config::{Config, check_str, validate};
use fastgate_routing::{RouteSpec, RouteTable};

/// Larger inputs are skipped: the loader is not a streaming parser and the gateway
/// reads files an operator wrote.
const MAX_INPUT: usize = 64 * 1024;

/// The environment the fuzzed documents see: a few variables for `${VAR}`
/// interpolation and the admin-token shortcut; every other name is unset.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "FASTGATE_ADMIN_TOKEN" => "tok-4f9a8b7c6d5e4f3a2b1c",
        "OPENAI_API_KEY" | "OPENAI_KEY" => "sk-fuzz-openai",
        "OPENAI_API_KEY_2" => "sk-fuzz-openai-2",
        "ANTHROPIC_API_KEY" => "sk-fuzz-anthropic",
        "FUZZ_VALUE" => "v",
        _ => return None,
    };
    Some(value.to_owned())
}

/// Target `config_load`: the input bytes (lossy UTF-8) are a YAML document. Returns
/// whether it was accepted.
///
/// - loading never panics and gives the same answer twice (same error messages);
/// - a refused document has at least one error, each printable;
/// - an accepted document passes `validate` again, and its routes compile together
///   into one route table, as the gateway builds them.
pub fn config_load(data: &[u8]) -> bool {
    if data.len() > MAX_INPUT {
        return false;
    }
    let text = String::from_utf8_lossy(data);
    let first = check_str(&text, &env);
    let second = check_str(&text, &env);
    match (&first, &second) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            let a: Vec<String> = a.iter().map(ToString::to_string).collect();
            let b: Vec<String> = b.iter().map(ToString::to_string).collect();
            assert!(!a.is_empty(), "refused without an error");
            assert_eq!(a, b, "errors differ between two loads");
        }
        _ => panic!("accepted once and refused once"),
    }
    match first {
        Ok(cfg) => {
            accepted(&cfg);
            true
        }
        Err(_) => false,
    }
}

fn accepted(cfg: &Config) {
    if let Err(e) = validate(cfg) {
        panic!("accepted but validate says: {e}");
    }
    let specs: Vec<RouteSpec> = cfg
        .routes
        .iter()
        .enumerate()
        .map(|(index, route)| route.spec(index))
        .collect();
    if let Err(e) = RouteTable::build(specs) {
        panic!("accepted but the route table refuses it: {e}");
    }
    let _ = cfg.database_url();
}
