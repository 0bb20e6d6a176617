//! TCP routing: raw byte relays for TCP routers — plain `HostSNI(`*`)` (Redis, Postgres,
//! server-first protocols such as SMTP), TLS passthrough routed on the ClientHello, and TLS
//! terminated here with plain bytes to the backend.

pub mod client_hello;

use crate::proxy::{splice, with_timeout, IdleClock, PipePool};
use crate::worker::WorkerCtx;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;
use ringway_shared::config::static_config::EntryPoint;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

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

/// Half-closes the write side of a socket (forwarding the peer's EOF).
fn shutdown_write(s: &TcpStream) {
    // SAFETY: shutdown(2) on a descriptor owned by `s`, which outlives the call.
    unsafe {
        libc::shutdown(s.as_raw_fd(), libc::SHUT_WR);
    }
}

/// Relays a plain client connection to `addr`, sending `prefix` (bytes already read) first.
/// Both directions are spliced; each EOF is forwarded as a half-close; an error on either
/// side closes both, and so does `transport.respondingTimeouts.tcp.idleTimeout` of quiet.
pub async fn forward_plain(
    client: TcpStream,
    prefix: Vec<u8>,
    addr: SocketAddr,
    ep: &EntryPoint,
    w: &WorkerCtx,
) {
    tracing::debug!(%addr, prefix = prefix.len(), "TCP relay");
    let Some(mut upstream) = connect(addr, w).await else {
        return;
    };
    if !prefix.is_empty() {
        let (r, _) = upstream.write_all(prefix).await;
        if r.is_err() {
            return;
        }
    }
    relay_plain(
        &client,
        &upstream,
        &w.pipes,
        &IdleClock::new(ep.tcp_idle_timeout),
    )
    .await;
}

async fn relay_plain(a: &TcpStream, b: &TcpStream, pipes: &PipePool, idle: &IdleClock) {
    let up = async {
        let r = splice::relay(a, b, None, pipes, idle).await;
        if r.is_ok() {
            shutdown_write(b);
        }
        r.is_ok()
    };
    let down = async {
        let r = splice::relay(b, a, None, pipes, idle).await;
        if r.is_ok() {
            shutdown_write(a);
        }
        r.is_ok()
    };
    let mut up = std::pin::pin!(up);
    let mut down = std::pin::pin!(down);
    // The first direction to end decides: after a clean EOF the other may go on (half-close);
    // after an error both sides are closed.
    monoio::select! {
        ok = &mut up => if ok { down.await; },
        ok = &mut down => if ok { up.await; },
    }
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
