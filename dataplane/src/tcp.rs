//! TCP routing: raw byte relays for TCP routers — plain `HostSNI(`*`)` (Redis, Postgres,
//! server-first protocols such as SMTP), TLS passthrough routed on the ClientHello, and TLS
//! terminated here with plain bytes to the backend.

pub mod client_hello;

use crate::proxy::with_timeout;
use crate::worker::WorkerCtx;
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::net::TcpStream;
use ringway_shared::config::static_config::EntryPoint;
use std::net::SocketAddr;

/// Connects to a TCP server (bounded by the dial timeout).
async fn connect(addr: SocketAddr, w: &WorkerCtx) -> Option<TcpStream> {
    match with_timeout(w.upstream.dial, TcpStream::connect_addr(addr)).await {
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        Some(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TCP server unreachable");
            None
        }
        None => {
            tracing::debug!(%addr, "TCP connect timed out");
            None
        }
    }
}

/// Relays a plain client connection to `addr`, sending `prefix` (bytes already read) first,
/// through reused userspace buffers: for the small request/response exchanges of Redis,
/// databases and the like, one io_uring read and one write per message are far cheaper than
/// splicing through a pipe (two splice calls and a readiness wait per message). Each EOF is
/// forwarded as a half-close; an error on either side closes both, and so does
/// `transport.respondingTimeouts.tcp.idleTimeout` of quiet.
pub async fn forward_plain(
    mut client: TcpStream,
    prefix: Vec<u8>,
    addr: SocketAddr,
    ep: &EntryPoint,
    w: &WorkerCtx,
) {
    tracing::debug!(%addr, prefix = prefix.len(), "TCP relay");
    let Some(upstream) = connect(addr, w).await else {
        return;
    };
    crate::proxy::tunnel_relay(&mut client, upstream, prefix, ep.tcp_idle_timeout).await;
}

/// Relays a client stream (TLS terminated here) to `addr` in plain TCP.
pub async fn forward_stream<C: AsyncReadRent + AsyncWriteRent + Split>(
    mut client: C,
    addr: SocketAddr,
    ep: &EntryPoint,
    w: &WorkerCtx,
) {
    let Some(upstream) = connect(addr, w).await else {
        return;
    };
    crate::proxy::tunnel_relay(&mut client, upstream, Vec::new(), ep.tcp_idle_timeout).await;
}
