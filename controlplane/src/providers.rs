//! Providers: each watches one source and emits its whole view as a Traefik dynamic
//! configuration: file, Docker, Swarm, and the KV stores (Redis, etcd).

pub mod docker;
pub mod etcd;
pub mod file;
pub mod kv;
pub mod redis;
pub mod swarm;

use crate::aggregator::ProviderConfig;
use ringway_shared::config::ConfigErrors;

/// What a provider tells the aggregator.
#[derive(Debug)]
pub enum ProviderEvent {
    /// The provider's complete, parsed view (replaces its previous one).
    Config(Box<ProviderConfig>),
    /// The source could not be read or parsed: the last good view stays.
    Error {
        provider: String,
        error: ConfigErrors,
    },
}
