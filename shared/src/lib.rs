//! ringway's I/O-free core, shared by the data plane and the control plane.
//!
//! Data flow: providers produce a Traefik dynamic configuration ([`config::dynamic`]);
//! the control plane validates it into a serializable [`table::TableSpec`] and sends it over
//! IPC ([`ipc`]); the data plane compiles the spec into an immutable [`table::RouteTable`]
//! (rules parsed by [`rule`], indexed by [`router_index`]) and publishes it to its workers.

pub mod civil;
pub mod config;
pub mod ipc;
pub mod lb;
pub mod log_reopen;
pub mod router_index;
pub mod rule;
pub mod stats;
pub mod table;
pub mod tcp_rule;
