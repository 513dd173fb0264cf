//! The file's objects plus the API's, as one `Config`.

use fastgate_config::{Config, CredentialConfig};

use crate::{LiveError, LiveObjects};

fn clash(kind: &str, name: &str) -> LiveError {
    LiveError::Conflict(format!(
        "{kind} '{name}' is defined in the configuration file; objects of the file and of the API may not share a name"
    ))
}

/// `file` with the API objects appended (upstreams, routes, model groups, rules; provider
/// keys attached to their upstream, whichever its source). A name used by both
/// sources is refused. A stored key whose upstream no longer exists is left out.
pub fn merge(file: &Config, live: &LiveObjects) -> Result<Config, LiveError> {
    let mut merged = file.clone();
    for u in &live.upstreams {
        if file.upstreams.iter().any(|f| f.name == u.name) {
            return Err(clash("upstream", &u.name));
        }
        merged.upstreams.push(u.clone());
    }
    for r in &live.routes {
        if file.routes.iter().any(|f| f.name == r.name) {
            return Err(clash("route", &r.name));
        }
        merged.routes.push(r.clone());
    }
    for m in &live.models {
        if file.models.iter().any(|f| f.name == m.name) {
            return Err(clash("model", &m.name));
        }
        merged.models.push(m.clone());
    }
    for r in &live.rules {
        if file.rules.iter().any(|f| f.name == r.name) {
            return Err(clash("rule", &r.name));
        }
        merged.rules.push(r.clone());
    }
    for c in &live.credentials {
        let Some(up) = merged.upstreams.iter_mut().find(|u| u.name == c.upstream) else {
            continue;
        };
        if up.credentials.iter().any(|f| f.name == c.name) {
            return Err(clash("credential", &format!("{}/{}", c.upstream, c.name)));
        }
        up.credentials.push(CredentialConfig {
            name: c.name.clone(),
            key: c.key.clone(),
            weight: c.weight,
            quota: c.quota.clone(),
        });
    }
    Ok(merged)
}
