//! The HTTP mode of the live-configuration commands: with `--admin-url` and
//! `--admin-token` they call a running gateway's admin API instead of writing to
//! the database of `--config`.

use std::time::Duration;

use clap::Args;
use reqwest::{Method, Url};
use serde_json::Value;

/// Where a command applies its change: a running gateway (both set) or the
/// database of `--config` (neither set).
#[derive(Debug, Clone, Default, Args)]
pub struct AdminArgs {
    /// Base URL of a running gateway (e.g. `http://127.0.0.1:8080`): the command
    /// calls its admin API. Without it, the command works on the database of
    /// `--config` directly.
    #[arg(long, global = true, env = "FASTGATE_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Admin token for `--admin-url` (prefer the environment variable: argv is
    /// visible to other users in `ps`).
    #[arg(
        long,
        global = true,
        env = "FASTGATE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

/// Why an admin API call failed. Never carries the admin token.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("--admin-url needs an admin token: pass --admin-token or set FASTGATE_ADMIN_TOKEN")]
    MissingToken,
    #[error("invalid --admin-url '{url}': {message}")]
    BadUrl { url: String, message: String },
    /// The gateway answered with an error; `message` is its `error.message`.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    /// (The cause, with the URL, follows in the error chain.)
    #[error("cannot reach the admin API")]
    Transport(#[source] reqwest::Error),
    #[error("the admin API answered HTTP {status} with a body that is not JSON")]
    NotJson { status: u16 },
}

/// A client of one gateway's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

/// Connecting and answering must both be quick for an admin call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl AdminClient {
    /// `None` when no admin URL is given (database mode).
    pub fn from_args(args: &AdminArgs) -> Result<Option<AdminClient>, AdminClientError> {
        let Some(url) = args.admin_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let token = args
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or(AdminClientError::MissingToken)?;
        let bad = |message: String| AdminClientError::BadUrl {
            url: url.to_owned(),
            message,
        };
        let base = Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(AdminClientError::Transport)?;
        Ok(Some(AdminClient { base, token, http }))
    }

    /// `base` + `/admin/api/` + the segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["admin", "api"])
                .extend(segments);
        }
        url
    }

    /// Call `/admin/api/<segments>`; the JSON answer, or `Value::Null` for an
    /// empty one (204). An error status becomes [`AdminClientError::Api`] with
    /// the API's message.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<Value, AdminClientError> {
        let mut request = self
            .http
            .request(method, self.url(segments))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(AdminClientError::Transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(AdminClientError::Transport)?;
        let parsed: Option<Value> = if bytes.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if (200..300).contains(&status) {
            return parsed.ok_or(AdminClientError::NotJson { status });
        }
        let message = parsed
            .as_ref()
            .and_then(|v| v["error"]["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
            });
        Err(AdminClientError::Api { status, message })
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value, AdminClientError> {
        self.call(Method::GET, segments, None).await
    }

    /// The `data` of a list answer (`{"object":"list","data":[...]}`).
    pub async fn list(&self, segments: &[&str]) -> Result<Vec<Value>, AdminClientError> {
        let v = self.get(segments).await?;
        Ok(match v {
            Value::Array(items) => items,
            mut other => match other["data"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn client(url: &str) -> AdminClient {
        AdminClient::from_args(&AdminArgs {
            admin_url: Some(url.into()),
            admin_token: Some("t".into()),
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn urls_are_joined_and_encoded() {
        let c = client("http://127.0.0.1:9/");
        assert_eq!(
            c.url(&["upstreams", "a b/c"]).as_str(),
            "http://127.0.0.1:9/admin/api/upstreams/a%20b%2Fc"
        );
        let c = client("http://gw.example/prefix");
        assert_eq!(
            c.url(&["routes"]).as_str(),
            "http://gw.example/prefix/admin/api/routes"
        );
    }

    #[test]
    fn url_without_token_or_with_bad_scheme_is_refused() {
        let no_token = AdminClient::from_args(&AdminArgs {
            admin_url: Some("http://x".into()),
            admin_token: None,
        });
        assert!(matches!(no_token, Err(AdminClientError::MissingToken)));
        let bad = AdminClient::from_args(&AdminArgs {
            admin_url: Some("ftp://x".into()),
            admin_token: Some("t".into()),
        });
        assert!(matches!(bad, Err(AdminClientError::BadUrl { .. })));
        let none = AdminClient::from_args(&AdminArgs::default()).unwrap();
        assert!(none.is_none());
    }
}
