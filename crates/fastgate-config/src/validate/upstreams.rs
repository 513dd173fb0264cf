//! Upstreams and their credential pools.

use super::Report;
use super::http::{
    check_header_name, check_headers, check_name, header_value_problem, is_framing_header,
};
use crate::model::{CredentialConfig, UpstreamConfig, UpstreamKind};

pub(super) fn check(upstreams: &[UpstreamConfig], r: &mut Report) {
    let mut names: Vec<&str> = Vec::with_capacity(upstreams.len());
    for (i, up) in upstreams.iter().enumerate() {
        let path = format!("upstreams[{i}]");
        let name_path = format!("{path}.name");
        if check_name(&name_path, &up.name, r) {
            if names.contains(&up.name.as_str()) {
                r.err(&name_path, format!("duplicate upstream name `{}`", up.name));
            }
            names.push(&up.name);
        }
        let base_optional = matches!(up.kind, UpstreamKind::Mock | UpstreamKind::Vertex);
        if !base_optional || !up.base_url.is_empty() {
            base_url(&format!("{path}.base_url"), &up.base_url, r);
        }
        azure(&path, up, r);
        responses_api(&path, up, r);
        vertex(&path, up, r);
        if let Some(t) = &up.timeout {
            super::routes::timeouts(&format!("{path}.timeout"), t, r);
        }
        if up.retries.is_some_and(|n| n > super::MAX_RETRIES) {
            r.err(
                format!("{path}.retries"),
                format!("at most {}", super::MAX_RETRIES),
            );
        }
        super::models::transforms(&path, &up.transforms, r);
        if let Some(header) = &up.auth_header {
            let p = format!("{path}.auth_header");
            if check_header_name(&p, header, r) && is_framing_header(header) {
                r.err(
                    &p,
                    "framing, hop-by-hop and `host` headers cannot carry a credential",
                );
            }
        }
        if let Some(scheme) = &up.auth_scheme
            && let Some(problem) = header_value_problem(scheme)
        {
            r.err(format!("{path}.auth_scheme"), problem);
        }
        check_headers(&format!("{path}.headers"), &up.headers, true, r);
        credentials(&path, &up.credentials, up.kind == UpstreamKind::Vertex, r);
    }
}

/// `http`/`https` with a host; no query, fragment or user info (credentials belong in
/// `credentials`, where they are redacted). The value is never echoed.
fn base_url(path: &str, value: &str, r: &mut Report) {
    let url = match url::Url::parse(value) {
        Ok(url) => url,
        Err(e) => {
            r.err(
                path,
                format!("not a valid URL: {e} (e.g. https://api.openai.com)"),
            );
            return;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        r.err(
            path,
            format!("scheme must be http or https, not `{}`", url.scheme()),
        );
    } else if url.host_str().is_none_or(str::is_empty) {
        r.err(path, "must include a host");
    } else if !url.username().is_empty() || url.password().is_some() {
        r.err(
            path,
            "must not contain user info; put keys under `credentials`",
        );
    } else if url.query().is_some() {
        r.err(path, "must not contain a query string (`?…`)");
    } else if url.fragment().is_some() {
        r.err(path, "must not contain a fragment (`#…`)");
    }
}

/// `api_version` belongs to `azure` upstreams, which need it (Azure answers 404
/// without one); their `base_url` is the resource, to which FastGate adds
/// `/openai/deployments/{deployment}/…`.
/// Only `openai` upstreams can serve the Responses API natively: the other kinds'
/// own APIs have no `/v1/responses` (Azure's has one, but at another path and with
/// its own versioning, which FastGate does not speak; it is served by translation).
fn responses_api(path: &str, up: &UpstreamConfig, r: &mut Report) {
    if up.responses_api == Some(crate::model::ResponsesApi::Native)
        && up.kind != UpstreamKind::Openai
    {
        r.err(
            format!("{path}.responses_api"),
            format!(
                "only upstreams of kind openai serve the Responses API natively (this one is {}): \
                 leave it unset or say `chat`",
                kind_name(up.kind)
            ),
        );
    }
}

fn azure(path: &str, up: &UpstreamConfig, r: &mut Report) {
    let field = format!("{path}.api_version");
    match (&up.api_version, up.kind) {
        (None, UpstreamKind::Azure) => r.err(
            field,
            "required for kind azure: the Azure OpenAI API version, e.g. `2024-10-21`",
        ),
        (Some(_), kind) if kind != UpstreamKind::Azure => r.err(
            field,
            format!(
                "only upstreams of kind azure take an api_version (this one is {})",
                kind_name(kind)
            ),
        ),
        (Some(v), _) if !is_api_version(v) => r.err(
            field,
            "must look like `YYYY-MM-DD` or `YYYY-MM-DD-preview` (e.g. `2024-10-21`)",
        ),
        _ => {}
    }
    if up.kind == UpstreamKind::Azure
        && let Ok(url) = url::Url::parse(&up.base_url)
    {
        let p = url.path().trim_end_matches('/');
        if p.ends_with("/openai") || p.contains("/openai/deployments") {
            r.err(
                format!("{path}.base_url"),
                "give the resource URL (e.g. https://myres.openai.azure.com) without `/openai…`: \
                 FastGate adds /openai/deployments/{deployment}/… itself",
            );
        }
    }
}

/// `project` and `location` belong to `vertex` upstreams, which need both: they
/// go into every path (`/v1/projects/{project}/locations/{location}/…`) and the
/// location into the default host.
fn vertex(path: &str, up: &UpstreamConfig, r: &mut Report) {
    let is_vertex = up.kind == UpstreamKind::Vertex;
    for (field, value, example, domain) in [
        ("project", &up.project, "my-project", true),
        ("location", &up.location, "us-central1` or `global", false),
    ] {
        let p = format!("{path}.{field}");
        match value {
            None if is_vertex => r.err(
                p,
                format!("required for kind vertex: the Google Cloud {field}, e.g. `{example}`"),
            ),
            Some(_) if !is_vertex => r.err(
                p,
                format!(
                    "only upstreams of kind vertex take a {field} (this one is {})",
                    kind_name(up.kind)
                ),
            ),
            Some(v) if !crate::vertex::is_path_safe(v, domain) => r.err(
                p,
                "only lower-case letters, digits and `-` (it goes into the URL)",
            ),
            _ => {}
        }
    }
}

fn kind_name(kind: UpstreamKind) -> &'static str {
    match kind {
        UpstreamKind::Openai => "openai",
        UpstreamKind::Anthropic => "anthropic",
        UpstreamKind::Http => "http",
        UpstreamKind::Gemini => "gemini",
        UpstreamKind::Azure => "azure",
        UpstreamKind::Vertex => "vertex",
        UpstreamKind::Mock => "mock",
    }
}

/// `YYYY-MM-DD` with an optional `-preview` (month 01-12, day 01-31).
pub(crate) fn is_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if !digits(&b[..4]) || !digits(&b[5..7]) || !digits(&b[8..]) {
        return false;
    }
    let num = |s: &[u8]| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    (1..=12).contains(&num(&b[5..7])) && (1..=31).contains(&num(&b[8..]))
}

fn credentials(upstream_path: &str, creds: &[CredentialConfig], vertex: bool, r: &mut Report) {
    let mut names: Vec<&str> = Vec::with_capacity(creds.len());
    for (j, cred) in creds.iter().enumerate() {
        let path = format!("{upstream_path}.credentials[{j}]");
        let name_path = format!("{path}.name");
        if check_name(&name_path, &cred.name, r) {
            if names.contains(&cred.name.as_str()) {
                r.err(
                    &name_path,
                    format!("duplicate credential name `{}` in this upstream", cred.name),
                );
            }
            names.push(&cred.name);
        }
        let key = cred.key.expose();
        if key.trim().is_empty() {
            r.err(
                format!("{path}.key"),
                "must not be empty (an unset `${VAR:-}` interpolation?)",
            );
        } else if vertex {
            // A service-account JSON (or its path); the message never quotes it.
            if let Err(e) = crate::vertex::load_service_account(key) {
                r.err(format!("{path}.key"), e.to_string());
            }
        } else if let Some(problem) = header_value_problem(key) {
            r.err(format!("{path}.key"), problem);
        }
        if cred.weight == 0 {
            r.err(format!("{path}.weight"), "must be at least 1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_api_version;

    #[test]
    fn api_version_shapes() {
        for ok in ["2024-10-21", "2025-04-01-preview", "2023-12-31"] {
            assert!(is_api_version(ok), "{ok}");
        }
        for bad in [
            "",
            " ",
            "2024-10-21 ",
            "2024-13-01",
            "2024-00-10",
            "2024-10-32",
            "2024-1-21",
            "24-10-21",
            "2024/10/21",
            "2024-10-21-beta",
            "preview",
            "v1",
            "2024-10-21-preview-preview",
        ] {
            assert!(!is_api_version(bad), "{bad:?}");
        }
    }
}
