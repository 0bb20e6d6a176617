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
    pub fn take(&mut self, addr: SocketAddr, now: Instant) -> Option<TcpStream> {
        let list = self.idle.get_mut(&addr)?;
        while let Some(conn) = list.pop() {
            if now.duration_since(conn.since) < self.idle_timeout {
                return Some(conn.stream);
            }
            // Older ones are further down the stack: all expired.
            list.clear();
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
