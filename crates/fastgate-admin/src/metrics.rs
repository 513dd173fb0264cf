//! `GET /metrics` (Prometheus text format).
//!
//! Series labelled by gateway key (`key="…"`: tokens and spend per key) are
//! served only to a scrape that presents the admin token. An anonymous scrape
//! gets every other series, so a plain Prometheus job keeps working without
//! learning key names or per-key spend. `metrics.require_auth: true` refuses
//! anonymous scrapes altogether.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use fastgate_proxy::AppState;
use http::{StatusCode, header};

use crate::error::AdminError;

/// Label whose series are reserved for authenticated scrapes.
const PRIVATE_LABEL: &str = "key";

#[utoipa::path(
    operation_id = "metrics",
    get,
    path = "/metrics",
    tag = "system",
    summary = "Prometheus metrics",
    description = "Prometheus text format. Series labelled by gateway key are served only to a scrape with the admin token; `metrics.require_auth: true` refuses anonymous scrapes.",
    security((), ("admin_token" = [])),
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics.require_auth` is on and no admin token was sent.", body = crate::schemas::ErrorBody),
        (status = 404, description = "Metrics are switched off (`metrics.enabled: false`)."),
    )
)]
pub async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    let cfg = state.inner().config.load();
    let admin = crate::is_admin(&state, req.headers());
    if cfg.metrics.require_auth && !admin {
        return AdminError::Unauthorized.into_response();
    }
    if !cfg.metrics.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    fastgate_proxy::metrics::set_audit_depth(state.audit_queue_depth());
    // Rendering takes about a millisecond of CPU (hundreds of labelled series, every
    // histogram's samples folded in). On the blocking pool it never holds up the
    // requests queued on this worker: the OS interleaves the two threads, where a
    // render on the worker would delay every request that arrived meanwhile.
    let handle = state.inner().metrics.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        handle.run_upkeep();
        let text = handle.render();
        if admin {
            text
        } else {
            without_label(&text, PRIVATE_LABEL)
        }
    })
    .await;
    match rendered {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the metrics failed");
            AdminError::Internal.into_response()
        }
    }
}

/// The label names of a sample line (`name{a="x",b="y\"z"} 1`), in order.
/// `None` when the line has no label set or it does not parse (then it is kept
/// out of an anonymous scrape too, by the caller).
fn label_names(line: &str) -> Option<Vec<&str>> {
    let open = line.find('{')?;
    let mut rest = &line[open + 1..];
    let mut names = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.starts_with('}') {
            return Some(names);
        }
        let eq = rest.find('=')?;
        names.push(rest[..eq].trim());
        let value = rest[eq + 1..].strip_prefix('"')?;
        // Find the closing quote, skipping escaped characters.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in value.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        rest = &value[end? + 1..];
    }
}

/// The metric name of a sample line.
fn sample_name(line: &str) -> &str {
    line.split(['{', ' ']).next().unwrap_or_default()
}

/// Does the family named in a `# HELP`/`# TYPE` line own this sample name?
fn in_family(family: &str, sample: &str) -> bool {
    sample == family
        || sample
            .strip_prefix(family)
            .is_some_and(|s| matches!(s, "_bucket" | "_sum" | "_count"))
}

/// The exposition `text` without the samples that carry label `label` (and
/// without `# HELP`/`# TYPE` lines of families left with no sample).
pub fn without_label(text: &str, label: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            if line.starts_with('#') || line.trim().is_empty() || !line.contains('{') {
                return true;
            }
            label_names(line).is_some_and(|names| !names.contains(&label))
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    for (i, line) in kept.iter().enumerate() {
        let family = line
            .strip_prefix("# TYPE ")
            .or_else(|| line.strip_prefix("# HELP "))
            .and_then(|rest| rest.split(' ').next());
        if let Some(family) = family {
            let has_sample = kept[i + 1..]
                .iter()
                .take_while(|l| l.starts_with('#') || in_family(family, sample_name(l)))
                .any(|l| !l.starts_with('#') && in_family(family, sample_name(l)));
            if !has_sample {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE fastgate_tokens_total counter\n\
fastgate_tokens_total{key=\"alice\",model=\"gpt\",type=\"input\"} 5\n\
fastgate_tokens_total{model=\"gpt\",key=\"bob\",type=\"output\"} 7\n\
\n\
# TYPE fastgate_requests_total counter\n\
fastgate_requests_total{route=\"a,key=\\\"x\\\"\",status=\"200\"} 3\n\
fastgate_requests_total{route=\"monkey\",status=\"404\"} 1\n\
\n\
# TYPE fastgate_request_duration_seconds histogram\n\
fastgate_request_duration_seconds_bucket{route=\"r\",le=\"0.1\"} 1\n\
fastgate_request_duration_seconds_sum{route=\"r\"} 0.05\n\
fastgate_request_duration_seconds_count{route=\"r\"} 1\n\
# TYPE fastgate_requests_in_flight gauge\n\
fastgate_requests_in_flight 0\n";

    #[test]
    fn drops_key_series_and_empty_families() {
        let out = without_label(TEXT, "key");
        assert!(!out.contains("alice") && !out.contains("bob"), "{out}");
        assert!(!out.contains("fastgate_tokens_total"), "{out}");
        // A label value that merely contains `key=` is not the `key` label.
        assert!(out.contains("route=\"a,key=\\\"x\\\"\""), "{out}");
        assert!(out.contains("route=\"monkey\""), "{out}");
        assert!(out.contains("# TYPE fastgate_request_duration_seconds histogram"));
        assert!(out.contains("fastgate_request_duration_seconds_count{route=\"r\"} 1"));
        assert!(
            out.contains("# TYPE fastgate_requests_in_flight gauge\nfastgate_requests_in_flight 0")
        );
    }

    #[test]
    fn unparsable_label_sets_are_dropped() {
        assert_eq!(label_names("m{a=\"x\"} 1"), Some(vec!["a"]));
        assert_eq!(label_names("m{a=\"x} 1"), None);
        assert!(!without_label("m{key=\"x} 1\n", "key").contains("m{"));
    }
}
