//! Upstreams: everything FastGate knows about the providers it forwards to.
//!
//! The vault keeps provider keys encrypted at rest, so a copy of the database
//! (backup, replica, stolen disk) does not hand out the provider keys by itself.
//! Pools choose which credential serves a request (strategies, usable members,
//! in-flight and quota counts, lock-free). Credential health and rules will live
//! here too.

pub mod pool;
pub mod rules;
pub mod vault;

pub use pool::{InFlight, Pool, Strategy};
pub use rules::{Firing, Outcome, RuleAction, RuleError, RuleSet, redact_secrets};

pub use vault::{
    MASTER_KEY_ENV, MasterKey, MasterKeySource, VaultError, key_hint, sealed_key_id, write_key_file,
};
