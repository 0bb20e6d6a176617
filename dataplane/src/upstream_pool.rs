//! Per-worker pool of idle keep-alive connections to upstream servers.
//!
//! Owned by one worker thread (`Rc<RefCell<_>>`, never shared): no locks.

use monoio::net::TcpStream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct UpstreamPool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

struct Idle {
    stream: TcpStream,
    since: Instant,
}

impl UpstreamPool {
    pub fn new(max_idle_per_host: usize, idle_timeout: Duration) -> Self {
        UpstreamPool {
            idle: HashMap::new(),
            max_idle_per_host,
            idle_timeout,
        }
    }

    /// The most recently used idle connection to `addr` that has not outlived the idle timeout.
    /// With `verify`, a connection that the server has already closed (or that holds
    /// unexpected bytes) is dropped rather than returned: a request that must not be sent
    /// twice should not find that out by losing its first try.
    pub fn take(&mut self, addr: SocketAddr, now: Instant, verify: bool) -> Option<TcpStream> {
        let list = self.idle.get_mut(&addr)?;
        while let Some(conn) = list.pop() {
            if now.duration_since(conn.since) >= self.idle_timeout {
                // Older ones are further down the stack: all expired.
                list.clear();
                break;
            }
            if !verify || quiet(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Returns a connection whose last exchange completed cleanly.
    pub fn put(&mut self, addr: SocketAddr, stream: TcpStream, now: Instant) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let list = self.idle.entry(addr).or_default();
        if list.len() >= self.max_idle_per_host {
            list.remove(0);
        }
        list.push(Idle { stream, since: now });
    }

    /// Drops every idle connection (on shutdown).
    pub fn clear(&mut self) {
        self.idle.clear();
    }
}

/// Whether an idle connection has nothing to read and no EOF pending (one non-blocking peek).
fn quiet(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: `recv` writes at most one byte into `byte`, which outlives the call; the fd is
    // owned by `stream` for the duration of the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}
