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
        if up.kind != UpstreamKind::Mock || !up.base_url.is_empty() {
            base_url(&format!("{path}.base_url"), &up.base_url, r);
        }
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
        credentials(&path, &up.credentials, r);
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

fn credentials(upstream_path: &str, creds: &[CredentialConfig], r: &mut Report) {
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
        } else if let Some(problem) = header_value_problem(key) {
            r.err(format!("{path}.key"), problem);
        }
        if cred.weight == 0 {
            r.err(format!("{path}.weight"), "must be at least 1");
        }
    }
}
