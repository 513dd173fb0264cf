//! `cors:` — Cross-Origin Resource Sharing for the proxy endpoints (the LLM
//! endpoints, routes and `GET /`), so that web pages on other origins can call the
//! gateway from a browser. Off by default. Never applied to `/admin/...`, `/health`
//! or `/metrics`. Served by `fastgate_proxy::cors`; checked by `validate::cors`.

use serde::{Deserialize, Serialize};

/// `cors:`. No section, or an empty `allowed_origins`: no CORS header is ever sent
/// and `OPTIONS` requests are proxied like any other.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to read responses, exactly as browsers send them in `Origin`
    /// (`scheme://host[:port]`, lowercase, no path, no default port), or the one
    /// entry `*` for every origin.
    pub allowed_origins: Vec<String>,
    /// Request headers a page may send (answered to preflights).
    pub allowed_headers: Vec<String>,
    /// Methods a page may use (answered to preflights).
    pub allowed_methods: Vec<String>,
    /// Response headers a page may read besides the CORS-safelisted ones.
    pub expose_headers: Vec<String>,
    /// How long, in seconds, a browser may cache a preflight answer (at most 86400).
    pub max_age: u32,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, TLS client
    /// certificates). Refused with `*` anywhere.
    pub allow_credentials: bool,
}

/// Request headers the official OpenAI, Anthropic and Gemini browser SDKs send.
pub const DEFAULT_ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "x-request-id",
    "x-stainless-arch",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
];

/// The methods of the LLM endpoints.
pub const DEFAULT_ALLOWED_METHODS: &[&str] = &["GET", "POST", "OPTIONS"];

/// The gateway's request ids, `Retry-After` and the rate-limit headers.
pub const DEFAULT_EXPOSE_HEADERS: &[&str] = &[
    "x-request-id",
    "x-fastgate-request-id",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// Default `max_age`: ten minutes.
pub const DEFAULT_MAX_AGE: u32 = 600;

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_headers: owned(DEFAULT_ALLOWED_HEADERS),
            allowed_methods: owned(DEFAULT_ALLOWED_METHODS),
            expose_headers: owned(DEFAULT_EXPOSE_HEADERS),
            max_age: DEFAULT_MAX_AGE,
            allow_credentials: false,
        }
    }
}

impl CorsConfig {
    /// True when some origin is allowed (otherwise CORS is off).
    pub fn is_enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    /// True when every origin is allowed (`*`).
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}
