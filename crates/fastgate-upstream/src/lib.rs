//! Upstreams: everything FastGate knows about the providers it forwards to.
//!
//! The vault keeps provider keys encrypted at rest, so a copy of the database
//! (backup, replica, stolen disk) does not hand out the provider keys by itself.
//! Pools choose which credential serves a request (strategies, usable members,
//! in-flight and quota counts, lock-free). Health keeps each credential's state,
//! circuit, quota and counters; rules decide what answers do to them; alerts
//! tell people.

pub mod alerts;
pub mod health;
pub mod pool;
pub mod rules;
pub mod vault;
pub mod vertex;

pub use alerts::{AlertEvent, AlertStats, Alerter, ChannelStats};
pub use health::{CredentialHealth, CredentialState, HealthRegistry, InFlight};
pub use pool::{PickContext, Pool, Strategy};
pub use rules::{Firing, Outcome, RuleAction, RuleError, RuleSet, redact_secrets};

pub use vault::{
    MASTER_KEY_ENV, MasterKey, MasterKeySource, VaultError, key_hint, sealed_key_id, write_key_file,
};
