//! Active health checks (`loadBalancer.healthCheck`), run by the data plane.
//!
//! One thread probes every health-checked server of the current table, each on its own
//! interval, and flips the server's [`HealthFlag`] when its state changes. The workers read
//! the flag on each pick: a flag is a shared cache line that is written only when a server
//! goes down or comes back, so reading it costs no contention (no worker ever writes it).
//!
//! A server keeps its flag (and so its state) across tables as long as it stays in its
//! service with the same check; a new server starts up, as in Traefik.

use futures_channel::mpsc;
use futures_util::StreamExt;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use ringway_shared::table::{HealthCheckSpec, HealthFlag, ServerSpec};
use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A server of a service, as the checks know it.
type Key = (String, String);

/// One server to probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub service: String,
    pub url: String,
    pub addr: SocketAddr,
    pub authority: String,
    pub check: HealthCheckSpec,
    pub flag: HealthFlag,
}

/// The probes of the current table, and the channel to the checker thread.
pub struct Health {
    current: Mutex<HashMap<Key, Probe>>,
    to_checker: mpsc::UnboundedSender<Vec<Probe>>,
}

impl Health {
    /// Starts the checker thread (idle until a table has health checks).
    pub fn start() -> std::io::Result<Arc<Health>> {
        let (to_checker, from_lists) = mpsc::unbounded();
        std::thread::Builder::new()
            .name("health-check".into())
            .spawn(move || checker(from_lists))?;
        Ok(Arc::new(Health {
            current: Mutex::new(HashMap::new()),
            to_checker,
        }))
    }

    /// The flag for `server` of `service` in a table being compiled: the current one when the
    /// server is already probed with the same check, else a new one (up). The probe is
    /// recorded in `next`, applied by [`Health::apply`] once the table is published.
    pub fn flag_for(
        &self,
        next: &mut HashMap<Key, Probe>,
        service: &str,
        server: &ServerSpec,
        check: &HealthCheckSpec,
    ) -> HealthFlag {
        let key = (service.to_string(), server.url.clone());
        let flag = self
            .current
            .lock()
            .ok()
            .and_then(|cur| {
                cur.get(&key)
                    .filter(|p| p.check == *check && p.addr == server.addr)
                    .map(|p| p.flag.clone())
            })
            .unwrap_or_else(|| Arc::new(AtomicBool::new(true)));
        next.insert(
            key,
            Probe {
                service: service.to_string(),
                url: server.url.clone(),
                addr: server.addr,
                authority: server.authority.clone(),
                check: check.clone(),
                flag: flag.clone(),
            },
        );
        flag
    }

    /// Every probed server and whether it is up.
    pub fn states(&self) -> Vec<ringway_shared::stats::ServerState> {
        let Ok(cur) = self.current.lock() else {
            return Vec::new();
        };
        cur.values()
            .map(|p| ringway_shared::stats::ServerState {
                service: p.service.clone(),
                url: p.url.clone(),
                up: p.flag.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Makes `next` the set of probes (after its table went live).
    pub fn apply(&self, next: HashMap<Key, Probe>) {
        let list = next.values().cloned().collect();
        if let Ok(mut cur) = self.current.lock() {
            *cur = next;
        }
        let _ = self.to_checker.unbounded_send(list);
    }
}

/// The checker thread: one task per probe, replaced when the probe set changes.
fn checker(mut lists: mpsc::UnboundedReceiver<Vec<Probe>>) {
    let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build();
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "health checks cannot run: no runtime");
            return;
        }
    };
    rt.block_on(async move {
        // Running probes, with the flag that stops each.
        let mut running: HashMap<Key, (Probe, Rc<Cell<bool>>)> = HashMap::new();
        while let Some(list) = lists.next().await {
            let mut keep: HashMap<Key, (Probe, Rc<Cell<bool>>)> = HashMap::new();
            for probe in list {
                let key = (probe.service.clone(), probe.url.clone());
                match running.remove(&key) {
                    Some((old, stop))
                        if old.check == probe.check
                            && old.addr == probe.addr
                            && Arc::ptr_eq(&old.flag, &probe.flag) =>
                    {
                        keep.insert(key, (old, stop));
                    }
                    other => {
                        if let Some((_, stop)) = other {
                            stop.set(true);
                        }
                        let stop = Rc::new(Cell::new(false));
                        monoio::spawn(run_probe(probe.clone(), stop.clone()));
                        keep.insert(key, (probe, stop));
                    }
                }
            }
            for (_, (_, stop)) in running.drain() {
                stop.set(true);
            }
            running = keep;
        }
    });
}

/// Probes one server until stopped: at once, then every interval (`unhealthy_interval`
/// while it is down).
async fn run_probe(p: Probe, stop: Rc<Cell<bool>>) {
    while !stop.get() {
        let result = check_once(&p).await;
        let up = result.is_ok();
        if stop.get() {
            return;
        }
        if p.flag.swap(up, Ordering::Relaxed) != up {
            match &result {
                Ok(()) => {
                    tracing::info!(service = %p.service, server = %p.url, "health check: server is up again")
                }
                Err(why) => {
                    tracing::warn!(service = %p.service, server = %p.url, reason = %why, "health check: server is down")
                }
            }
        }
        let wait = if up {
            p.check.interval
        } else {
            p.check.unhealthy_interval
        };
        monoio::time::sleep(wait).await;
    }
}

/// One probe: the request, then the status line of the answer, within the timeout.
async fn check_once(p: &Probe) -> Result<(), String> {
    let check = &p.check;
    match monoio::time::timeout(check.timeout, exchange(p)).await {
        Ok(Ok(status)) => {
            let healthy = match check.status {
                Some(want) => status == want,
                None => (200..400).contains(&status),
            };
            if healthy {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {:?}", check.timeout)),
    }
}

async fn exchange(p: &Probe) -> Result<u16, String> {
    let check = &p.check;
    let mut addr = p.addr;
    if let Some(port) = check.port {
        addr.set_port(port);
    }
    let mut stream = TcpStream::connect_addr(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let host = match (&check.hostname, check.port) {
        (Some(h), _) => h.clone(),
        (None, Some(port)) => format!("{}:{port}", addr.ip()),
        (None, None) => p.authority.clone(),
    };
    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-healthcheck\r\nConnection: close\r\n",
        check.method, check.path
    );
    for (name, value) in &check.headers {
        req.push_str(name);
        req.push_str(": ");
        req.push_str(value);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let (res, _) = stream.write_all(req.into_bytes()).await;
    res.map_err(|e| format!("send: {e}"))?;
    let mut got: Vec<u8> = Vec::with_capacity(256);
    loop {
        if let Some(status) = status_of(&got)? {
            return Ok(status);
        }
        if got.len() > 8192 {
            return Err("status line too long".into());
        }
        let buf = Vec::with_capacity(1024);
        let (res, buf) = stream.read(buf).await;
        match res {
            Ok(0) => return Err("connection closed before the status line".into()),
            Ok(_) => got.extend_from_slice(&buf),
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

/// The status of `HTTP/1.x NNN ...` once its line is complete.
fn status_of(got: &[u8]) -> Result<Option<u16>, String> {
    let Some(end) = got.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&got[..end]);
    let mut parts = line.trim_end().splitn(3, ' ');
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && code.len() == 3 => code
            .parse()
            .map(Some)
            .map_err(|_| format!("bad status line {line:?}")),
        _ => Err(format!("bad status line {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(status_of(b"HTTP/1.0 503\r\n"), Ok(Some(503)));
        assert_eq!(status_of(b"HTTP/1.1 20"), Ok(None));
        assert!(status_of(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 2x0 OK\r\n").is_err());
    }
}
