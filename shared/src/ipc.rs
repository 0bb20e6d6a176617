//! Messages between the data plane (parent) and the control plane (child) over ipc-channel.
//!
//! The data plane creates an `IpcOneShotServer<ControlToData>` and passes its name to the
//! child in [`SERVER_ENV`]. The child connects, and its first message is
//! [`ControlToData::Hello`], carrying the sender the data plane answers on. Changes to these
//! types are additive; [`PROTOCOL_VERSION`] is checked in the handshake.

use crate::table::TableSpec;
use ipc_channel::ipc::IpcSender;
use serde::{Deserialize, Serialize};

/// Bumped when a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variable holding the one-shot server name for the control plane to connect to.
pub const SERVER_ENV: &str = "RINGWAY_IPC_SERVER";

/// Control plane → data plane.
#[derive(Debug, Serialize, Deserialize)]
pub enum ControlToData {
    /// First message on a new connection.
    Hello {
        protocol: u32,
        pid: u32,
        reply: IpcSender<DataToControl>,
    },
    /// A full routing table; replaces the previous one atomically on every worker.
    Table(Box<TableSpec>),
}

/// Data plane → control plane.
#[derive(Debug, Serialize, Deserialize)]
pub enum DataToControl {
    /// Answer to `Hello`: the last generation the data plane applied, so that a restarted
    /// control plane numbers its tables after it.
    Welcome { protocol: u32, last_generation: u64 },
    /// The table of this generation is live on every worker.
    Ack {
        generation: u64,
        /// Time from receipt to live on all workers.
        apply_micros: u64,
    },
    /// The table of this generation was refused; the previous one keeps serving.
    Nack { generation: u64, error: String },
    /// The data plane is shutting down; the control plane exits.
    Shutdown,
}
