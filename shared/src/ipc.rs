//! Messages between the data plane (parent) and the control plane (child) over ipc-channel.
//!
//! The data plane creates an `IpcOneShotServer<ControlToData>` and passes its name to the
//! child in [`SERVER_ENV`]. The child connects, and its first message is
//! [`ControlToData::Hello`], carrying the sender the data plane answers on. Changes to these
//! types are additive; [`PROTOCOL_VERSION`] is checked in the handshake.

use crate::table::TableSpec;
use ipc_channel::ipc::{IpcSender, IpcSharedMemory};
use serde::{Deserialize, Serialize};

/// Bumped when a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 4;

/// Environment variable holding the one-shot server name for the control plane to connect to.
pub const SERVER_ENV: &str = "RINGWAY_IPC_SERVER";

/// Environment variable holding the unix socket the control plane serves the API, the
/// dashboard and the metrics on (in a directory only this user can enter; the data plane
/// forwards `api@internal` and its siblings there).
pub const API_SOCKET_ENV: &str = "RINGWAY_API_SOCKET";

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
    Table(TablePayload),
    /// A table as a change to the one before it ([`crate::table::DecodedDelta`]); the data
    /// plane answers [`DataToControl::NeedFull`] when it does not hold that one.
    Delta(TablePayload),
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
    /// The delta of this generation is based on a table the data plane does not serve (the
    /// base was refused, or the data plane was restarted): send the whole table.
    NeedFull { generation: u64 },
    /// The data plane is shutting down; the control plane exits.
    Shutdown,
    /// Request counters (cumulative, summed over workers) and servers' health, every second
    /// while metrics or the API are on.
    Stats(Box<crate::stats::Stats>),
}

/// A [`TableSpec`], encoded once into a shared-memory segment that travels as one file
/// descriptor. At 10,000 routers the table is ~1.5 MB, which ipc-channel would otherwise copy
/// through the socket in fragments (measured: ~15 ms of the ~45 ms from push to live).
#[derive(Serialize, Deserialize)]
pub struct TablePayload {
    pub generation: u64,
    bytes: IpcSharedMemory,
}

impl TablePayload {
    pub fn encode(spec: &TableSpec) -> Result<TablePayload, String> {
        TablePayload::encode_with(spec, &mut Vec::new())
    }

    /// As [`TablePayload::encode`], through a buffer kept from one table to the next: at
    /// 10,000 routers a fresh one grows by doubling to ~2.5 MB, copying and faulting in new
    /// pages at each step, on the way from a change to the data plane.
    pub fn encode_with(spec: &TableSpec, buffer: &mut Vec<u8>) -> Result<TablePayload, String> {
        TablePayload::encode_value(spec.generation, spec, buffer)
    }

    /// `spec` as a change to `base` (see [`crate::table::Delta`]), through `buffer` as
    /// [`TablePayload::encode_with`].
    pub fn encode_delta(
        base: &TableSpec,
        spec: &TableSpec,
        buffer: &mut Vec<u8>,
    ) -> Result<TablePayload, String> {
        let delta = crate::table::Delta::new(base, spec);
        TablePayload::encode_value(spec.generation, &delta, buffer)
    }

    fn encode_value(
        generation: u64,
        value: &impl Serialize,
        buffer: &mut Vec<u8>,
    ) -> Result<TablePayload, String> {
        buffer.clear();
        bincode::serialize_into(&mut *buffer, value)
            .map_err(|e| format!("cannot encode the table: {e}"))?;
        let payload = TablePayload {
            generation,
            bytes: IpcSharedMemory::from_bytes(buffer),
        };
        // A table that shrank a lot (or a delta after a whole table) does not keep the room
        // of the largest one.
        if buffer.capacity() > 4 * buffer.len().max(64 * 1024) {
            buffer.shrink_to(buffer.len());
        }
        Ok(payload)
    }

    /// The table as a [`TableSpec`], or as the data plane's [`DecodedSpec`] (same encoding).
    ///
    /// [`DecodedSpec`]: crate::table::DecodedSpec
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        bincode::deserialize(&self.bytes).map_err(|e| format!("cannot decode the table: {e}"))
    }
}

impl std::fmt::Debug for TablePayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TablePayload")
            .field("generation", &self.generation)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{
        AcmeHttpChallenge, DecodedSpec, InternalService, MiddlewareSpec, RetrySpec, RouterDef,
        RouterSpec, ServiceId, ServiceKind, ServiceSpec, SniOptionsSpec, TcpRouterSpec,
        TcpServiceKind, TcpServiceSpec, TcpTls, TlsOptionsSpec,
    };
    use std::sync::Arc;

    #[test]
    fn tables_round_trip_through_shared_memory() {
        let spec = full_spec();
        let payload = TablePayload::encode(&spec).expect("encodes");
        assert_eq!(payload.generation, 7);
        let (tx, rx) = ipc_channel::ipc::channel::<ControlToData>().expect("channel");
        tx.send(ControlToData::Table(payload)).expect("sends");
        match rx.recv().expect("receives") {
            ControlToData::Table(p) => {
                assert_eq!(p.decode::<TableSpec>().expect("decodes"), spec);
                // The data plane's type reads the same bytes, every field in its place.
                assert_eq!(
                    p.decode::<DecodedSpec>().expect("decodes"),
                    DecodedSpec::from(spec)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A kept buffer holding the last (larger) table's bytes encodes the next table alone.
    #[test]
    fn a_reused_buffer_encodes_only_the_new_table() {
        let spec = full_spec();
        let mut buffer = vec![0xAB; 1 << 20];
        let payload = TablePayload::encode_with(&spec, &mut buffer).expect("encodes");
        assert_eq!(payload.decode::<TableSpec>().expect("decodes"), spec);
        assert_eq!(
            *payload.bytes,
            *TablePayload::encode(&spec).expect("encodes").bytes
        );
        assert!(
            buffer.capacity() < 1 << 20,
            "a table much smaller lets room go"
        );
    }

    /// A table with something in every field.
    fn full_spec() -> TableSpec {
        let mut spec = TableSpec {
            generation: 7,
            ..TableSpec::default()
        };
        spec.routers.push(RouterSpec {
            service: ServiceId(0),
            def: Arc::new(RouterDef {
                name: "r@file".into(),
                entry_points: vec!["web".into()],
                rule: "Host(`a`)".into(),
                priority: 9,
                tls: true,
                middlewares: vec![MiddlewareSpec::Retry(RetrySpec {
                    attempts: 2,
                    initial_interval: std::time::Duration::from_millis(5),
                })],
            }),
        });
        spec.services.push(Arc::new(ServiceSpec {
            name: "s@file".into(),
            kind: ServiceKind::Internal(InternalService::Noop),
        }));
        spec.tls.sni_options.push(SniOptionsSpec {
            name: "modern@file".into(),
            hosts: vec!["a".into()],
            options: TlsOptionsSpec::default(),
        });
        spec.tcp_routers.push(TcpRouterSpec {
            name: "t@file".into(),
            entry_points: vec!["tcp".into()],
            rule: "HostSNI(`*`)".into(),
            priority: 1,
            service: 0,
            tls: TcpTls::Passthrough,
        });
        spec.tcp_services.push(TcpServiceSpec {
            name: "ts@file".into(),
            kind: TcpServiceKind::Weighted(vec![(0, 1)]),
        });
        spec.acme.http_entry_points.push("web".into());
        spec.acme.http.push(AcmeHttpChallenge {
            token: "t".into(),
            key_authorization: "k".into(),
        });
        spec
    }
}
