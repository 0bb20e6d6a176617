//! Traefik-compatible configuration: static (flags and file) and dynamic (providers).
//!
//! Every source (command-line flags, TOML and YAML files, later labels and KV keys) is first
//! decoded into one [`Node`] tree, then into typed structs through a case-insensitive serde
//! deserializer, the way Traefik's paerser does. Raw `*Config` structs mirror Traefik's schema;
//! [`StaticConfig`] is the validated form the processes use, and the control plane's aggregator
//! validates [`DynamicConfig`] into a [`crate::table::TableSpec`].

pub mod duration;
pub mod dynamic;
mod error;
mod format;
pub mod node;
pub mod reparse;
pub mod static_config;
#[cfg(test)]
mod testing;
mod toml_fast;
mod yaml_fast;

pub use duration::TraefikDuration;
pub use dynamic::{parse_dynamic, DynamicConfig};
pub use error::{ConfigError, ConfigErrors};
pub use format::Format;
pub use node::{Node, NodeError};
pub use static_config::{
    ConfigEnv, Dataplane, EntryPoint, EntryPointRedirect, FileProvider, Log, LogFormat, LogLevel,
    Providers, ServersTransport, StaticConfig,
};
