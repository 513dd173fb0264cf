//! FastGate configuration: the YAML model, `${VAR}` interpolation, environment
//! overrides and validation with field paths.
//!
//! ```no_run
//! let cfg = fastgate_config::load(Some(std::path::Path::new("fastgate.yaml")))?;
//! println!("listening on {}", cfg.server.listen);
//! # Ok::<(), fastgate_config::ConfigError>(())
//! ```
//!
//! The pipeline and every setting are described in `docs/configuration.md`.

pub mod alerts;
pub mod cors;
mod env;
mod error;
pub mod health;
mod interpolate;
pub mod limits;
pub mod llm;
mod load;
mod model;
pub mod rules;
mod secret;
mod validate;
pub mod vertex;

pub use alerts::{AlertConfig, AlertKind};
pub use cors::CorsConfig;
pub use env::{ENV_PREFIX, ENV_SHORTCUTS, override_vars};
pub use error::ConfigError;
pub use health::{CircuitConfig, CredentialQuota, HealthConfig, ProbeConfig};
pub use limits::{
    FailureMode, LimitsConfig, QuotaFailureMode, RateLimitsConfig, RedisConfig, RedisFailurePolicy,
};
pub use llm::{DeploymentConfig, LlmConfig, ModelGroupConfig, ModelKind, PriceConfig};
pub use load::{DEFAULT_DATA_DIR, check, check_str, load, load_str};
pub use model::*;
pub use rules::{ActionConfig, Condition, RuleConfig};
pub use secret::Secret;
pub use validate::{MAX_RETRIES, MIN_ADMIN_TOKEN_LEN, validate, validate_all};
