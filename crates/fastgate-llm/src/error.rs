//! The crate's error type.

/// Errors of protocol parsing and translation.
///
/// Classification for the proxy: `InvalidJson`, `InvalidRequest` and `Unsupported` raised by
/// [`crate::translate_request`] are client errors (400); raised on an upstream body they mean
/// the upstream answered something unexpected (502). `Stream` and `EventTooLarge` happen
/// mid-stream: send [`crate::StreamProcessor::error_event`] and stop.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The body is not valid JSON or does not have the protocol's shape.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON that the protocol forbids (e.g. no messages).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A feature this translation cannot carry (e.g. audio input to Anthropic, `n > 1`).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The upstream stream is malformed (bad event, ended early).
    #[error("stream error: {0}")]
    Stream(String),
    /// One SSE event exceeded the configured bound.
    #[error("SSE event exceeds {limit} bytes")]
    EventTooLarge {
        /// The bound in bytes.
        limit: usize,
    },
}

impl LlmError {
    pub(crate) fn json(e: serde_json::Error) -> Self {
        LlmError::InvalidJson(e.to_string())
    }
}
