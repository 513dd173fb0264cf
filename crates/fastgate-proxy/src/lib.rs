//! FastGate's request path: snapshot state, the proxy phases, forwarding and
//! streaming. See DESIGN.md §1 for the phases.

pub mod admission;
pub mod body;
pub mod client;
pub mod context;
mod cors;
pub mod dry_run;
pub mod error;
pub mod forward;
pub mod handler;
pub mod headers;
pub mod llm;
pub mod metrics;
pub mod request_body;
pub mod retry;
mod root;
pub mod snapshot;
pub mod state;
pub mod sync;
pub mod upstream_body;

pub use error::{ClientProtocol, ProxyError};
pub use handler::proxy_handler;
pub use snapshot::{Snapshot, SnapshotError};
pub use state::{AppState, ConnAbort, PeerAddr, StateParts};
