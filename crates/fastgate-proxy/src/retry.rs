//! When a failed upstream attempt may be tried again.
//!
//! A retry must never make the upstream act twice on one client request. So:
//! * a transport error is retried only when the request provably was not sent
//!   (the connection could not be opened; a pooled connection that closed before
//!   the request was written is re-sent by the HTTP client itself);
//! * plain routes retry 502/503/504 answers for idempotent methods, and for other
//!   methods only the statuses the route lists in `retry_on`;
//! * LLM deployments retry 429 and 5xx answers and connection failures: providers
//!   refuse those requests before processing them. A timeout or a reset after the
//!   request was sent is not retried (the provider may be generating and billing).

use std::time::Duration;

use http::{Method, StatusCode};

use crate::error::ProxyError;

/// Statuses a plain route may retry (a set of 502, 503, 504).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStatuses(u8);

impl RetryStatuses {
    pub const GATEWAY_ERRORS: Self = Self(0b111);

    /// From a route's `retry_on` list (validated to 502-504 by the config).
    pub fn from_list(list: &[u16]) -> Self {
        Self(list.iter().fold(0, |bits, s| bits | Self::bit(*s)))
    }

    fn bit(status: u16) -> u8 {
        match status {
            502 => 0b001,
            503 => 0b010,
            504 => 0b100,
            _ => 0,
        }
    }

    pub fn contains(self, status: StatusCode) -> bool {
        self.0 & Self::bit(status.as_u16()) != 0
    }
}

/// The retry rules of one forwarding target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// A plain proxy route: these statuses are retried; an idempotent request
    /// is also re-sent after a transport error.
    Route {
        statuses: RetryStatuses,
        idempotent: bool,
    },
    /// An LLM deployment: 429, 5xx and connection failures are retried.
    Llm,
}

impl RetryPolicy {
    /// A route's policy for one request method: idempotent methods (RFC 9110
    /// §9.2.2) retry 502-504; others only what `retry_on` names.
    pub fn for_route(method: &Method, retry_on: RetryStatuses) -> Self {
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        );
        let statuses = if idempotent && retry_on == RetryStatuses::default() {
            RetryStatuses::GATEWAY_ERRORS
        } else {
            retry_on
        };
        Self::Route {
            statuses,
            idempotent,
        }
    }

    /// May an answer with this status be retried?
    pub fn retries_status(self, status: StatusCode) -> bool {
        match self {
            Self::Route { statuses, .. } => statuses.contains(status),
            Self::Llm => status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        }
    }
}

/// Why one upstream attempt produced no response.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The connection could not be opened: nothing was sent.
    #[error("{0}")]
    Connect(String),
    /// The exchange broke after the request may have been sent.
    #[error("{0}")]
    Transport(String),
    /// No response head within the first-byte timeout (the request was sent).
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

impl AttemptError {
    pub fn from_client(e: &crate::client::ClientError) -> Self {
        let reason = e.to_string();
        if e.is_connect() {
            Self::Connect(reason)
        } else {
            Self::Transport(reason)
        }
    }

    /// A request that provably never left may always be sent again; after a
    /// transport error only an idempotent one (sending it twice is harmless).
    /// A timeout is never retried: the upstream is still working on it.
    pub fn is_retryable(&self, policy: RetryPolicy) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Transport(_) => matches!(
                policy,
                RetryPolicy::Route {
                    idempotent: true,
                    ..
                }
            ),
            Self::Timeout(_) => false,
        }
    }

    pub fn into_proxy_error(self, upstream: &str) -> ProxyError {
        let upstream = upstream.to_string();
        match self {
            Self::Connect(reason) => ProxyError::UpstreamConnect { upstream, reason },
            Self::Transport(reason) => ProxyError::UpstreamFailed { upstream, reason },
            Self::Timeout(wait) => ProxyError::UpstreamTimeout {
                upstream,
                secs: wait.as_secs_f64(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_methods_retry_gateway_errors_by_default() {
        let get = RetryPolicy::for_route(&Method::GET, RetryStatuses::default());
        let post = RetryPolicy::for_route(&Method::POST, RetryStatuses::default());
        for s in [502, 503, 504] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(get.retries_status(s));
            assert!(!post.retries_status(s));
        }
        assert!(!get.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!get.retries_status(StatusCode::TOO_MANY_REQUESTS));
    }

    #[test]
    fn retry_on_opts_non_idempotent_methods_in() {
        let post = RetryPolicy::for_route(&Method::POST, RetryStatuses::from_list(&[503]));
        assert!(post.retries_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!post.retries_status(StatusCode::BAD_GATEWAY));
        let get = RetryPolicy::for_route(&Method::GET, RetryStatuses::from_list(&[504]));
        assert!(get.retries_status(StatusCode::GATEWAY_TIMEOUT));
        assert!(!get.retries_status(StatusCode::BAD_GATEWAY));
    }

    #[test]
    fn llm_retries_refusals() {
        assert!(RetryPolicy::Llm.retries_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(RetryPolicy::Llm.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!RetryPolicy::Llm.retries_status(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn only_unsent_requests_are_retried() {
        let post = RetryPolicy::for_route(&Method::POST, RetryStatuses::default());
        let get = RetryPolicy::for_route(&Method::GET, RetryStatuses::default());
        for p in [RetryPolicy::Llm, post, get] {
            assert!(AttemptError::Connect("refused".into()).is_retryable(p));
            assert!(!AttemptError::Timeout(Duration::from_secs(1)).is_retryable(p));
        }
        assert!(!AttemptError::Transport("reset".into()).is_retryable(RetryPolicy::Llm));
        assert!(!AttemptError::Transport("reset".into()).is_retryable(post));
        assert!(AttemptError::Transport("reset".into()).is_retryable(get));
    }
}
