//! Upstreams: everything FastGate knows about the providers it forwards to.
//!
//! For now this is the vault that keeps provider keys encrypted at rest, so a
//! copy of the database (backup, replica, stolen disk) does not hand out the
//! provider keys by itself. Credential pools, health and routing rules will
//! live here too.

pub mod vault;

pub use vault::{
    MASTER_KEY_ENV, MasterKey, MasterKeySource, VaultError, key_hint, sealed_key_id, write_key_file,
};
