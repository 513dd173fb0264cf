//! Live configuration: upstreams, provider keys, routes, model groups and
//! credential health rules created through the admin API (or the CLI) and stored
//! in the database, merged with the config file's objects into the one `Config`
//! the gateway builds its snapshot from.
//!
//! The rule (issue "live configuration"): every object has one source. Objects of
//! the file are read-only here; objects stored here may not share a name with the
//! file's. A change is planned against the whole merged configuration and
//! validated by the same rules as `fastgate check` before anything is stored.

mod error;
mod merge;
mod objects;
mod plan;
mod plan_rules;
mod view;

pub use error::LiveError;
pub use merge::merge;
pub use objects::{LiveCredential, LiveObjects, load, store_change};
pub use plan::{Change, CredentialInput, Planned, plan};
pub use view::{CredentialView, Source, credential_views, route_view, rule_view, upstream_view};

#[cfg(test)]
mod plan_rules_tests;
#[cfg(test)]
mod plan_tests;
