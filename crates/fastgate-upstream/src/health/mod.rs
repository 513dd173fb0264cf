//! Credential health: which provider keys may serve requests, and why not.
//!
//! Each credential has a state (`active`, `disabled`, `banned`, `exhausted`)
//! with a reason, a start and an end, a circuit breaker, a daily quota and
//! counters. The [`HealthRegistry`] owns them across config reloads; the rule
//! engine's firings and the built-ins change them; the health worker stores
//! changes in the database, where every instance picks them up.

mod circuit;
mod clock;
mod credential;
mod observe;
mod registry;
mod state;
mod worker;

pub use circuit::{Circuit, CircuitChange, CircuitSettings, CircuitState};
pub use clock::{Clock, DaySchedule, FakeClock, QuotaDay, SystemClock};
pub use credential::{
    CredentialHealth, CredentialStatus, InFlight, QuotaStatus, StoredUsage, UNLIMITED, UsageDelta,
};
pub use registry::{
    HealthEvent, HealthRegistry, HealthSettings, Observed, RuleEventRecord, StoredState, key_id,
};
pub use state::{CredentialState, Transition};
pub use worker::{HealthWorker, export_metrics, load_states};
