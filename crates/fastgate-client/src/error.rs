//! Why a request got no answer.

/// Why [`crate::UpstreamClient::send`] returned no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be opened (name lookup, TCP, TLS, HTTP handshake or
    /// the connect timeout): nothing was sent.
    #[error("{0}")]
    Connect(String),
    /// The exchange broke after the request may have been sent.
    #[error("{0}")]
    Transport(String),
    /// The request's URI cannot be sent (not `http`/`https`, no host): nothing
    /// was sent.
    #[error("{0}")]
    InvalidUri(String),
}

/// What went wrong on an upstream connection once it was open: the request
/// written, the answer's head or its body read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("upstream connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the upstream answer's body failed: {0}")]
    Body(std::io::Error),
    #[error("the upstream closed the connection before the answer's end")]
    Incomplete,
    #[error("invalid answer from the upstream: {0}")]
    Protocol(&'static str),
}

impl ClientError {
    /// True when no connection could be opened: the request never left, and
    /// another attempt may succeed (an invalid URI never will).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }

    pub(crate) fn connect(context: &str, e: &dyn std::error::Error) -> Self {
        Self::Connect(format!("{context}: {}", chain(e)))
    }

    pub(crate) fn transport(e: &dyn std::error::Error) -> Self {
        Self::Transport(chain(e))
    }
}

/// `e` and its sources, joined by `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
