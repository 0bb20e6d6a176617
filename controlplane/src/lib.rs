//! ringway's control plane: providers, aggregation, validation, and table pushes.
//!
//! Data flow: providers emit whole Traefik dynamic configurations (`providers`); the
//! aggregator qualifies, merges and validates them into a `TableSpec` (`aggregator`); the
//! runtime coalesces changes and pushes full, versioned tables to the data plane (`runtime`).

pub mod acme;
pub mod aggregator;
pub mod api;
pub mod check;
pub mod kv;
pub mod providers;
mod runtime;
pub mod tls;

pub use runtime::run;
