//! Harness for the end-to-end tests: the `ringway` process, a test origin, raw HTTP/1.1 clients.
//!
//! Every test file includes it with `mod support;` and uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod docker;
pub mod load;
pub mod origin;
pub mod pebble;
pub mod process;
pub mod tls;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use client::{http_get, raw_exchange, raw_request, Conn, RawReply, Response};
pub use origin::{chunk_payload, pattern_bytes, Cksum, Origin, RecordedRequest};
pub use process::{is_alive, rss_kib, Ringway};

/// How long a freshly started ringway gets to serve its first routed response.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Polls `f` every 10 ms until it returns true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || f().then_some(())).is_some()
}

/// Polls `f` every 10 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_every(timeout, Duration::from_millis(10), f)
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn wait_for_every<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

/// Waits until `GET path` with `Host: host` on `addr` is answered 200 by the origin named
/// `origin`; panics with `ringway`'s logs and the last outcome otherwise.
pub fn wait_routed(
    addr: SocketAddr,
    ringway: &Ringway,
    timeout: Duration,
    host: &str,
    path: &str,
    origin: &str,
) {
    let mut last = String::from("no attempt");
    let ok = wait_until(timeout, || match http_get(addr, host, path) {
        _ if !ringway.is_running() => {
            last = format!("ringway exited: {:?}", ringway.try_exit());
            true
        }
        Ok(r) if r.status == 200 && r.origin() == Some(origin) => true,
        Ok(r) => {
            last = format!("status {} x-origin {:?}", r.status, r.origin());
            false
        }
        Err(e) => {
            last = e.to_string();
            false
        }
    });
    assert!(
        ok && ringway.is_running(),
        "Host {host} {path} was not routed to origin {origin} (waited up to {timeout:?}; \
         last: {last})\n{}",
        ringway.logs()
    );
}

/// Raises its flag when dropped, so helper threads stop even when the test panics.
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A directory under the system temp dir, unique to this test, removed on drop unless the
/// test failed (then its path is printed so the logs can be read).
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringway-e2e-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test dir");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept test dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes a whole file atomically (temp file in the same directory, then rename), so a
/// watcher never reads half of it. The temp name ends in `.tmp` and starts with a dot, so a
/// directory provider ignores it.
pub fn write_dynamic(path: &Path, content: &str) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = path.parent().expect("config file has a parent dir");
    let name = path
        .file_name()
        .expect("config file name")
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, content).expect("write temp config");
    fs::rename(&tmp, path).expect("rename config into place");
}

/// A TOML load-balancer service block with one server per origin.
pub fn lb_service(name: &str, origins: &[&Origin]) -> String {
    let servers: Vec<String> = origins
        .iter()
        .map(|o| format!("{{ url = \"{}\" }}", o.url()))
        .collect();
    format!(
        "[http.services.{name}.loadBalancer]\nservers = [{}]\n",
        servers.join(", ")
    )
}

/// The values of header `name` (case-insensitive) in a parsed header list.
pub fn header_values<'a, 'n>(
    headers: &'a [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A TOML router block.
pub fn router(name: &str, rule: &str, service: &str) -> String {
    format!("[http.routers.{name}]\nrule = \"{rule}\"\nservice = \"{service}\"\n")
}

/// A ringway started on its own port with a dynamic file (TOML) in its own directory.
pub struct Proxy {
    pub addr: SocketAddr,
    pub port: u16,
    pub dynamic: PathBuf,
    pub ringway: Ringway,
    pub dir: TestDir,
}

impl Proxy {
    /// Writes `dynamic_toml` and starts ringway with the standard flags
    /// (`--entrypoints.web.address`, `--providers.file.filename`, `--dataplane.workers=2`
    /// unless `extra` sets it, `--log.level=DEBUG`) plus `extra`. Does not wait for readiness.
    pub fn start(label: &str, dynamic_toml: &str, extra: &[&str]) -> Proxy {
        let dir = TestDir::new(label);
        let dynamic = dir.join("dynamic.toml");
        write_dynamic(&dynamic, dynamic_toml);
        let port = free_port();
        let mut args = vec![
            format!("--entrypoints.web.address=127.0.0.1:{port}"),
            format!("--providers.file.filename={}", dynamic.display()),
            "--log.level=DEBUG".to_string(),
        ];
        let sets_workers = extra
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("--dataplane.workers="));
        if !sets_workers {
            args.push("--dataplane.workers=2".to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let ringway = Ringway::start_in(dir.path(), &args);
        Proxy {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            port,
            dynamic,
            ringway,
            dir,
        }
    }

    /// Waits until `GET path` with `Host: host` is answered 200 by the origin named `origin`;
    /// panics with ringway's logs otherwise.
    pub fn wait_routed(&self, host: &str, path: &str, origin: &str) {
        wait_routed(self.addr, &self.ringway, READY_TIMEOUT, host, path, origin);
    }

    /// One request on a new connection (`Connection: close`); panics on I/O errors.
    pub fn get(&self, host: &str, path: &str) -> Response {
        http_get(self.addr, host, path).unwrap_or_else(|e| {
            panic!(
                "GET {path} Host {host} failed: {e}\n{}",
                self.ringway.logs()
            )
        })
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr).expect("connect to ringway")
    }

    /// Replaces the dynamic file atomically.
    pub fn reconfigure(&self, dynamic_toml: &str) {
        write_dynamic(&self.dynamic, dynamic_toml);
    }
}
