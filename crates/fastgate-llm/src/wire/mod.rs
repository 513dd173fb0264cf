//! Wire types, one module per protocol. Public so the proxy and tests can build or inspect
//! bodies; they type only what FastGate reads or writes.

pub mod anthropic;
pub mod gemini;
pub mod openai;
