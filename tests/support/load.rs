//! A steady load for the zero-downtime tests: a few client threads, each on a keep-alive
//! connection, sending `GET /` with a fixed pause, counting every request and every failure
//! (a connection error, a status other than 200, or a body that is no known marker).

use super::Conn;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// What a load run saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub sent: u64,
    pub failed: u64,
    /// The first failures, for the assertion message.
    pub failures: Vec<String>,
    /// Answers per body (marker).
    pub by_body: BTreeMap<String, u64>,
}

struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
    by_body: Mutex<BTreeMap<String, u64>>,
    /// First and last time (wall clock, to compare with the engine's event times).
    seen_wall: Mutex<BTreeMap<String, (SystemTime, SystemTime)>>,
}

pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` threads sending `GET /` with `Host: host` to `addr`, each pausing
    /// `pause` between requests.
    pub fn start(addr: SocketAddr, host: &str, clients: usize, pause: Duration) -> Load {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            by_body: Mutex::new(BTreeMap::new()),
            seen_wall: Mutex::new(BTreeMap::new()),
        });
        let threads = (0..clients)
            .map(|i| {
                let s = shared.clone();
                let host = host.to_string();
                thread::Builder::new()
                    .name(format!("load-{i}"))
                    .spawn(move || client(addr, &host, pause, &s))
                    .expect("spawn load client")
            })
            .collect();
        Load { shared, threads }
    }

    /// When `body` was first and last answered, on the wall clock.
    pub fn seen_wall(&self, body: &str) -> Option<(SystemTime, SystemTime)> {
        self.shared
            .seen_wall
            .lock()
            .expect("lock")
            .get(body)
            .copied()
    }

    /// Requests answered so far with `body`.
    pub fn count(&self, body: &str) -> u64 {
        self.shared
            .by_body
            .lock()
            .expect("lock")
            .get(body)
            .copied()
            .unwrap_or(0)
    }

    pub fn stop(self) -> LoadReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let s = &self.shared;
        LoadReport {
            sent: s.sent.load(Ordering::SeqCst),
            failed: s.failed.load(Ordering::SeqCst),
            failures: s.failures.lock().expect("lock").clone(),
            by_body: s.by_body.lock().expect("lock").clone(),
        }
    }
}

fn client(addr: SocketAddr, host: &str, pause: Duration, s: &Shared) {
    let mut conn: Option<Conn> = None;
    while !s.stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(addr) {
                Ok(c) => {
                    c.set_read_timeout(Duration::from_secs(5));
                    conn.insert(c)
                }
                Err(e) => {
                    fail(s, format!("connect: {e}"));
                    thread::sleep(pause);
                    continue;
                }
            },
        };
        s.sent.fetch_add(1, Ordering::SeqCst);
        match c.get(host, "/") {
            Ok(r) if r.status == 200 => {
                let body = r.text().trim().to_string();
                let now = SystemTime::now();
                s.seen_wall
                    .lock()
                    .expect("lock")
                    .entry(body.clone())
                    .and_modify(|e| e.1 = now)
                    .or_insert((now, now));
                *s.by_body
                    .lock()
                    .expect("lock")
                    .entry(body.clone())
                    .or_default() += 1;
                if r.header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    conn = None;
                }
            }
            Ok(r) => {
                fail(s, format!("status {}: {}", r.status, r.text().trim()));
                conn = None;
            }
            Err(e) => {
                fail(s, format!("request: {e}"));
                conn = None;
            }
        }
        thread::sleep(pause);
    }
}

fn fail(s: &Shared, why: String) {
    s.failed.fetch_add(1, Ordering::SeqCst);
    let mut f = s.failures.lock().expect("lock");
    if f.len() < 10 {
        f.push(why);
    }
}

/// The `p` quantile (0..=1) of sorted durations (zero for none).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `what: p50 …, p99 …, max … over n`, for the measurements the tests print.
pub fn summary(what: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}",
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        v.len()
    )
}
