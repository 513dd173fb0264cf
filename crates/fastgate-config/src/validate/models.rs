//! Model groups: names, deployments pointing at LLM-capable upstreams, fallbacks.

use super::routes::{header_body_transforms, timeouts};
use super::{MAX_RETRIES, Report};
use crate::llm::{ModelGroupConfig, PriceConfig};
use crate::model::{Transforms, UpstreamConfig, UpstreamKind};

pub(super) fn check(models: &[ModelGroupConfig], upstreams: &[UpstreamConfig], r: &mut Report) {
    let mut names: Vec<&str> = Vec::with_capacity(models.len());
    for (i, group) in models.iter().enumerate() {
        let path = format!("models[{i}]");
        let name_path = format!("{path}.name");
        if check_model_name(&name_path, &group.name, r) {
            if names.contains(&group.name.as_str()) {
                r.err(&name_path, format!("duplicate model name `{}`", group.name));
            }
            names.push(&group.name);
        }
        if group.deployments.is_empty() {
            r.err(
                format!("{path}.deployments"),
                "needs at least one deployment",
            );
        }
        for (j, d) in group.deployments.iter().enumerate() {
            let dpath = format!("{path}.deployments[{j}]");
            let kind = match upstreams.iter().find(|u| u.name == d.upstream) {
                None => {
                    r.err(
                        format!("{dpath}.upstream"),
                        format!("unknown upstream `{}`", d.upstream),
                    );
                    None
                }
                Some(u) if !u.kind.is_llm() => {
                    r.err(
                        format!("{dpath}.upstream"),
                        format!("upstream `{}` is of kind http; model deployments need openai, azure, vertex, anthropic, gemini or mock", u.name),
                    );
                    None
                }
                Some(u) => Some(u.kind),
            };
            deployment_model(&format!("{dpath}.model"), &d.model, kind, r);
            if d.weight == 0 {
                r.err(format!("{dpath}.weight"), "must be greater than 0");
            }
            if d.retries.is_some_and(|n| n > MAX_RETRIES) {
                r.err(format!("{dpath}.retries"), format!("at most {MAX_RETRIES}"));
            }
            if let Some(t) = &d.timeout {
                timeouts(&format!("{dpath}.timeout"), t, r);
            }
            transforms(&dpath, &d.transforms, r);
            if let Some(p) = &d.price {
                price(&format!("{dpath}.price"), p, r);
            }
        }
        if let Some(p) = &group.price {
            price(&format!("{path}.price"), p, r);
        }
    }
    for (i, group) in models.iter().enumerate() {
        for (j, fb) in group.fallbacks.iter().enumerate() {
            let p = format!("models[{i}].fallbacks[{j}]");
            if fb == &group.name {
                r.err(p, "a model cannot fall back to itself");
            } else if !models.iter().any(|m| &m.name == fb) {
                r.err(p, format!("unknown model `{fb}`"));
            }
        }
    }
}

/// Model names may hold `/`, `:` and `.` (e.g. `openai/gpt-4o`, `llama3:8b`).
fn check_model_name(path: &str, name: &str, r: &mut Report) -> bool {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@+".contains(&b));
    if !ok {
        r.err(
            path,
            "must be 1-200 characters of letters, digits and -_./:@+",
        );
    }
    ok
}

/// A deployment's `model`, the name sent upstream. Gemini puts it into the URL path
/// (`/v1beta/models/{model}:generateContent`, a leading `models/` is accepted), so
/// there it must be one plain path segment: letters, digits and `-._~:@+`, no `..`.
/// Azure puts it (the deployment name) into the path percent-encoded, so only `.`
/// and `..` are refused beyond the common rules.
/// The other kinds send it only inside the JSON body, where `/` is common
/// (`openai/gpt-4o`, `meta-llama/Llama-3-8B`); there whitespace, control characters,
/// `?`, `#` and `%` are still refused, so that no name can ever change a URL.
fn deployment_model(path: &str, model: &str, kind: Option<UpstreamKind>, r: &mut Report) {
    if model.trim().is_empty() {
        r.err(path, "must not be empty");
        return;
    }
    if model.len() > 200 {
        r.err(path, "at most 200 bytes");
        return;
    }
    let bad = model
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\'));
    if let Some(c) = bad {
        r.err(
            path,
            format!(
                "must not contain {}: whitespace, control characters, `?`, `#`, `%` and `\\` \
                 are refused in model names",
                describe(c)
            ),
        );
        return;
    }
    // Azure takes the deployment name in the path, percent-encoded; a dot-only
    // segment would still be read as a relative path step.
    if kind == Some(UpstreamKind::Azure) && model.bytes().all(|b| b == b'.') {
        r.err(
            path,
            "an Azure deployment name goes into the URL path \
             (/openai/deployments/{deployment}/…): `.` and `..` are refused",
        );
        return;
    }
    if kind == Some(UpstreamKind::Gemini) {
        let segment = model.strip_prefix("models/").unwrap_or(model);
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:@+".contains(&b));
        if !plain || segment.is_empty() || segment.contains("..") {
            r.err(
                path,
                "a Gemini model name goes into the URL path (/v1beta/models/{model}:generateContent): \
                 use letters, digits and -._~:@+ only (an optional leading `models/`), without `/` or `..`",
            );
        }
    }
    // Vertex names the model in the path too (`…/publishers/{google|anthropic}/models/{model}:…`).
    if kind == Some(UpstreamKind::Vertex) {
        let plain = model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~@".contains(&b));
        if !plain || model.contains("..") {
            r.err(
                path,
                "a Vertex AI model name goes into the URL path                  (…/publishers/google/models/{model}:generateContent): use letters, digits                  and -._~@ only (e.g. `gemini-2.0-flash`, `claude-sonnet-4@20250514`)",
            );
        }
    }
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    }
}

fn price(path: &str, p: &PriceConfig, r: &mut Report) {
    let values = [Some(p.input), Some(p.output), p.cached_input, p.cache_write];
    if values.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
        r.err(path, "prices must be finite and not negative");
    }
}

pub(super) fn transforms(path: &str, t: &Transforms, r: &mut Report) {
    header_body_transforms(
        path,
        &t.add_headers,
        &t.remove_headers,
        &t.add_body_fields,
        r,
    );
}
