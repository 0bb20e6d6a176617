//! Binding entry-point listeners: one SO_REUSEPORT socket per worker, bound by the supervisor
//! so that an address in use is reported before any worker starts.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// Accept backlog per socket.
const BACKLOG: i32 = 4096;

#[derive(Debug, thiserror::Error)]
#[error("entryPoint {entry_point}: cannot listen on {address}: {source}")]
pub struct BindError {
    pub entry_point: String,
    pub address: SocketAddr,
    pub source: io::Error,
}

/// Binds `count` listening sockets sharing `address` with SO_REUSEPORT, so the kernel spreads
/// connections across workers. Port 0 is resolved by the first socket and reused by the rest.
pub fn bind_reuseport(
    entry_point: &str,
    address: SocketAddr,
    count: usize,
) -> Result<Vec<TcpListener>, BindError> {
    let err = |address: SocketAddr, source: io::Error| BindError {
        entry_point: entry_point.to_string(),
        address,
        source,
    };
    let mut out = Vec::with_capacity(count);
    let mut addr = address;
    for _ in 0..count.max(1) {
        let l = bind_one(addr).map_err(|e| err(addr, e))?;
        if addr.port() == 0 {
            addr = l.local_addr().map_err(|e| err(address, e))?;
        }
        out.push(l);
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // `[::]:80` serves IPv4 too, as Go (and so Traefik) does.
        socket.set_only_v6(false)?;
    }
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_resolves_once_and_is_shared() {
        let ls = bind_reuseport("web", "127.0.0.1:0".parse().expect("addr"), 3).expect("bind");
        assert_eq!(ls.len(), 3);
        let ports: Vec<u16> = ls
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        assert!(ports[0] != 0 && ports.iter().all(|&p| p == ports[0]));
    }

    #[test]
    fn address_in_use_is_a_clear_error() {
        let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = plain.local_addr().expect("addr");
        let e = bind_reuseport("web", addr, 1).expect_err("in use");
        let msg = e.to_string();
        assert!(
            msg.contains("entryPoint web") && msg.contains(&addr.to_string()),
            "{msg}"
        );
    }
}
