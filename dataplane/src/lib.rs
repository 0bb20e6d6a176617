//! ringway's data plane: the supervisor process and its io_uring workers.
//!
//! Data flow: the supervisor binds the listeners and starts one worker thread per core; the
//! control link receives `TableSpec`s from the control plane, compiles them into
//! `RouteTable`s and publishes them (`snapshot`); each worker's accept loops hand connections
//! to `proxy`, which parses (`http`), routes, and forwards over per-worker upstream pools.

mod accesslog;
mod control_link;
mod health;
pub mod http;
mod listener;
mod proxy;
mod shutdown;
mod snapshot;
mod supervisor;
mod tcp;
mod tls;
mod upstream_pool;
mod worker;

pub use supervisor::run;
