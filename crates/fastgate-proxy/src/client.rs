//! The upstream client (crate `fastgate-client`): one per distinct (connect
//! timeout, pool settings), so upstreams with the same settings share
//! connections and a config reload keeps warm pools.

pub use fastgate_client::{
    ClientCache, ClientError, ClientSettings, ResponseBody, UpstreamClient, WireError,
};
