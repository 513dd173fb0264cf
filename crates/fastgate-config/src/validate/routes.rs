//! Routes: names, the upstream reference, the match, transforms and timeouts.

use fastgate_routing::{RouteError, RouteTable};
use humantime::format_duration;

use super::http::{check_header_name, check_headers, check_method, check_name};
use super::{MAX_RETRIES, Report};
use crate::model::{MatchConfig, RouteConfig, TimeoutConfig, UpstreamConfig};

pub(super) fn check(routes: &[RouteConfig], upstreams: &[UpstreamConfig], r: &mut Report) {
    let mut names: Vec<&str> = Vec::with_capacity(routes.len());
    for (i, route) in routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        let name_path = format!("{path}.name");
        if check_name(&name_path, &route.name, r) {
            if names.contains(&route.name.as_str()) {
                r.err(&name_path, format!("duplicate route name `{}`", route.name));
            }
            names.push(&route.name);
        }
        if !upstreams.iter().any(|u| u.name == route.upstream) {
            let known: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
            let known = if known.is_empty() {
                "none are declared".to_owned()
            } else {
                format!("declared: {}", known.join(", "))
            };
            r.err(
                format!("{path}.upstream"),
                format!("unknown upstream `{}` ({known})", route.upstream),
            );
        }
        let before = r.errors.len();
        matcher(&format!("{path}.match"), &route.matcher, r);
        transforms(&path, route, r);
        if r.errors.len() == before {
            compile(&path, i, route, r);
        }
        timeouts(&format!("{path}.timeout"), &route.timeout, r);
        if route.retries > MAX_RETRIES {
            r.err(
                format!("{path}.retries"),
                format!("at most {MAX_RETRIES}, got {}", route.retries),
            );
        }
        for (j, status) in route.retry_on.iter().enumerate() {
            if !(502..=504).contains(status) {
                r.err(
                    format!("{path}.retry_on[{j}]"),
                    format!("only 502, 503 and 504 can be retried, got {status}"),
                );
            }
        }
    }
}

/// Compiles the route as the gateway will, so that a file that passes `validate` is
/// accepted by the route table too (e.g. `{param}` in `target_path` must be in the
/// pattern, `{**}` needs a pattern ending with `**`).
fn compile(path: &str, index: usize, route: &RouteConfig, r: &mut Report) {
    let spec = route.spec(index);
    match RouteTable::build(vec![spec]) {
        Ok(_) => {}
        Err(RouteError::TargetPath { source, .. }) => {
            r.err(format!("{path}.target_path"), source.to_string());
        }
        Err(RouteError::Pattern { source, .. }) => {
            r.err(format!("{path}.match.path"), source.to_string());
        }
        Err(RouteError::Header { header, reason, .. }) => {
            r.err(format!("{path}.match.headers.{header}"), reason);
        }
        Err(RouteError::Method { method, .. }) => r.err(
            format!("{path}.match.methods"),
            format!("`{}` is not an HTTP method", method.escape_debug()),
        ),
    }
}

fn matcher(path: &str, m: &MatchConfig, r: &mut Report) {
    if let Err(e) = fastgate_routing::PathPattern::parse(&m.path) {
        r.err(format!("{path}.path"), e.to_string());
    }
    for (k, method) in m.methods.iter().enumerate() {
        check_method(&format!("{path}.methods[{k}]"), method, r);
    }
    check_headers(&format!("{path}.headers"), &m.headers, false, r);
    for key in m.body.keys() {
        if key.is_empty() {
            r.err(format!("{path}.body"), "field names must not be empty");
        }
    }
}

fn transforms(path: &str, route: &RouteConfig, r: &mut Report) {
    if let Some(target) = &route.target_path {
        let p = format!("{path}.target_path");
        if !target.starts_with('/') {
            r.err(&p, "must start with `/`");
        } else if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.err(&p, "must not contain spaces or control characters");
        } else if target.contains('#') {
            r.err(&p, "must not contain a fragment (`#`)");
        }
    }
    header_body_transforms(
        path,
        &route.add_headers,
        &route.remove_headers,
        &route.add_body_fields,
        r,
    );
}

/// `add_headers`, `remove_headers` and `add_body_fields` under `path`.
pub(super) fn header_body_transforms(
    path: &str,
    add_headers: &std::collections::BTreeMap<String, String>,
    remove_headers: &[String],
    add_body_fields: &serde_json::Map<String, serde_json::Value>,
    r: &mut Report,
) {
    check_headers(&format!("{path}.add_headers"), add_headers, true, r);
    for (k, name) in remove_headers.iter().enumerate() {
        check_header_name(&format!("{path}.remove_headers[{k}]"), name, r);
    }
    for key in add_body_fields.keys() {
        if key.is_empty() {
            r.err(
                format!("{path}.add_body_fields"),
                "field names must not be empty",
            );
        }
    }
}

pub(super) fn timeouts(path: &str, t: &TimeoutConfig, r: &mut Report) {
    let total = format!("{path}.total");
    r.positive(&total, t.total);
    for (name, value) in [
        ("connect", t.connect),
        ("first_byte", t.first_byte),
        ("idle", t.idle),
    ] {
        let p = format!("{path}.{name}");
        if value.is_zero() {
            r.err(&p, "must be greater than 0");
        } else if value > t.total {
            r.err(
                &p,
                format!(
                    "{} exceeds {total} ({})",
                    format_duration(value),
                    format_duration(t.total)
                ),
            );
        }
    }
}
