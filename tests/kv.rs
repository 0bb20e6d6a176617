//! End to end: the KV providers against real stores (Debian's redis-server and etcd, started
//! here on free loopback ports with their data in temp dirs). A dynamic file synced into the
//! store routes like the file provider; key changes are live through watches (latency
//! printed); a store restart mid-traffic fails no request; a malformed key is named and the
//! rest keeps working; `kv sync --dry-run` shows the diff; `kv export` round-trips; the lock
//! passes from a dead holder (a dropped client, a SIGKILLed `ringway kv lock`) to a waiting
//! contender with a larger fencing token; TLS with client certificates, Redis ACL users and
//! etcd authentication; the poll fallback; a store down at start.

mod support;

use ringway_controlplane::kv::lock::{acquire, KvLock};
use ringway_controlplane::kv::{provider_from_url, KvClient};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::{free_port, http_get, wait_routed, wait_until, Origin, Ringway, StopOnDrop, TestDir};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Redis,
    Etcd,
}

/// A store process of our own; killed on drop.
struct Store {
    kind: Kind,
    extra: Vec<String>,
    port: u16,
    peer_port: u16,
    dir: TestDir,
    child: Option<Child>,
}

impl Store {
    fn start(kind: Kind) -> Store {
        let mut s = Store::new(kind, &[]);
        s.spawn();
        s
    }

    /// Not started yet: `spawn` starts it.
    fn new(kind: Kind, extra: &[&str]) -> Store {
        Store {
            kind,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            port: free_port(),
            peer_port: free_port(),
            dir: TestDir::new(match kind {
                Kind::Redis => "redis",
                Kind::Etcd => "etcd",
            }),
            child: None,
        }
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                // Append-only with fsync per write: the data survives the restart test.
                c.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "yes", "--appendfsync", "always"])
                    .arg("--dir")
                    .arg(self.dir.path());
                c
            }
            Kind::Etcd => {
                let client = format!("http://127.0.0.1:{}", self.port);
                let peer = format!("http://127.0.0.1:{}", self.peer_port);
                let mut c = Command::new("etcd");
                c.args(["--name", "t"])
                    .arg("--data-dir")
                    .arg(self.dir.join("data"))
                    .args([
                        "--listen-client-urls",
                        &client,
                        "--advertise-client-urls",
                        &client,
                    ])
                    .args([
                        "--listen-peer-urls",
                        &peer,
                        "--initial-advertise-peer-urls",
                        &peer,
                    ])
                    .args(["--initial-cluster", &format!("t={peer}")])
                    .args([
                        "--listen-metrics-urls",
                        &format!("http://127.0.0.1:{}", free_port()),
                    ]);
                c
            }
        };
        cmd.args(&self.extra);
        let log = std::fs::File::create(self.dir.join("store.log")).expect("store log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{:?} is installed by scripts/test: {e}", self.kind));
        self.child = Some(child);
        let url = self.url();
        assert!(
            wait_until(Duration::from_secs(20), || block_on(async {
                match KvClient::connect(&provider_from_url(&url, None).expect("url")).await {
                    Ok(mut c) => c.list("traefik/").await.is_ok(),
                    Err(_) => false,
                }
            })),
            "{:?} did not start on port {}",
            self.kind,
            self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        match self.kind {
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
            Kind::Etcd => format!("etcd://127.0.0.1:{}", self.port),
        }
    }

    fn provider_flags(&self, root: &str) -> Vec<String> {
        let name = match self.kind {
            Kind::Redis => "redis",
            Kind::Etcd => "etcd",
        };
        vec![
            format!("--providers.{name}.endpoints=127.0.0.1:{}", self.port),
            format!("--providers.{name}.rootKey={root}"),
        ]
    }

    /// Writes keys directly (one transaction), as another tool would.
    fn put(&self, pairs: &[(&str, &str)]) {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let url = self.url();
        block_on(async {
            let mut c = KvClient::connect(&provider_from_url(&url, None).expect("url"))
                .await
                .expect("connect");
            c.apply(&pairs, &[]).await.expect("put");
        });
    }

    fn list(&self, prefix: &str) -> Vec<(String, String)> {
        let url = self.url();
        block_on(async {
            let mut c = KvClient::connect(&provider_from_url(&url, None).expect("url"))
                .await
                .expect("connect");
            c.list(prefix).await.expect("list")
        })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn kv(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = Ringway::run(args, Duration::from_secs(30));
    (status.success(), out, err)
}

fn dynamic(a: &Origin, b: &Origin) -> String {
    format!(
        "[http.routers.a]\nrule = \"Host(`a.test`)\"\nentryPoints = [\"web\"]\nservice = \"a\"\n\
         [http.routers.b]\nrule = \"Host(`b.test`) && PathPrefix(`/api`)\"\nservice = \"b\"\n\
         [http.routers.r]\nrule = \"Host(`r.test`)\"\nservice = \"a\"\nmiddlewares = [\"tohttps\"]\n\
         [http.middlewares.tohttps.redirectScheme]\nscheme = \"https\"\npermanent = true\n\
         [http.services.a.loadBalancer]\nservers = [{{ url = \"{}\" }}]\n\
         [http.services.b.loadBalancer]\nservers = [{{ url = \"{}\" }}]\n",
        a.url(),
        b.url()
    )
}

fn start_ringway(extra: &[String]) -> (Ringway, SocketAddr) {
    let port = free_port();
    let mut args = vec![
        format!("--entrypoints.web.address=127.0.0.1:{port}"),
        "--dataplane.workers=1".to_string(),
        "--log.level=info".to_string(),
    ];
    args.extend_from_slice(extra);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    (Ringway::start(&args), addr)
}

/// (status, origin, location) of `GET path` with `Host: host`.
fn answer(addr: SocketAddr, host: &str, path: &str) -> (u16, Option<String>, String) {
    match http_get(addr, host, path) {
        Ok(r) => (
            r.status,
            r.origin().map(str::to_string),
            r.header("location").unwrap_or_default().to_string(),
        ),
        Err(e) => (0, None, e.to_string()),
    }
}

/// Polls without sleeping until `host` reaches `origin`; the time it took.
fn time_until_routed(addr: SocketAddr, r: &Ringway, host: &str, origin: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if answer(addr, host, "/").1.as_deref() == Some(origin) {
            return start.elapsed();
        }
    }
    panic!("{host} never reached {origin}\n{}", r.logs());
}

fn layout_round_trip_and_watch(kind: Kind) {
    let store = Store::start(kind);
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let dir = TestDir::new("kv-sync");
    let file = dir.join("dynamic.toml");
    std::fs::write(&file, dynamic(&a, &b)).expect("write");
    let file_s = file.display().to_string();

    // The file, synced into the store.
    let url = store.url();
    let (ok, out, err) = kv(&["kv", "sync", "--endpoint", &url, &file_s]);
    assert!(ok, "sync failed: {out}{err}");
    assert!(
        out.contains("+ traefik/http/routers/r/middlewares/0 = tohttps"),
        "{out}"
    );
    assert!(store
        .list("traefik/")
        .iter()
        .any(|(k, v)| k == "traefik/http/services/a/loadBalancer/servers/0/url" && *v == a.url()));

    // The same routes through the store as through the file provider.
    let (by_file, file_addr) = start_ringway(&[format!("--providers.file.filename={file_s}")]);
    let (by_kv, kv_addr) = start_ringway(&store.provider_flags("traefik"));
    wait_routed(
        file_addr,
        &by_file,
        Duration::from_secs(15),
        "a.test",
        "/",
        "a",
    );
    wait_routed(kv_addr, &by_kv, Duration::from_secs(15), "a.test", "/", "a");
    for (host, path) in [
        ("a.test", "/"),
        ("b.test", "/api/x"),
        ("b.test", "/other"),
        ("r.test", "/x"),
        ("c.test", "/"),
    ] {
        let want = answer(file_addr, host, path);
        let got = answer(kv_addr, host, path);
        assert_eq!(got, want, "{host}{path}: kv vs file\n{}", by_kv.logs());
    }
    assert_eq!(answer(kv_addr, "b.test", "/api/x").1.as_deref(), Some("b"));
    assert_eq!(answer(kv_addr, "r.test", "/x").2, "https://r.test/x");
    drop(by_file);

    // A key written by another tool is live at once: measure it.
    store.put(&[
        ("traefik/http/routers/c/rule", "Host(`c.test`)"),
        ("traefik/http/routers/c/service", "c"),
        (
            "traefik/http/services/c/loadBalancer/servers/0/url",
            &c.url(),
        ),
    ]);
    let added = time_until_routed(kv_addr, &by_kv, "c.test", "c");
    store.put(&[("traefik/http/routers/c/rule", "Host(`c2.test`)")]);
    let changed = time_until_routed(kv_addr, &by_kv, "c2.test", "c");
    println!("{kind:?} watch latency (write acknowledged -> routed through ringway): add {added:?}, change {changed:?}");

    // A malformed value and a malformed key: named, left out; the rest keeps working.
    store.put(&[
        ("traefik/http/routers/bad/rule", "Host(`bad.test`)"),
        ("traefik/http/routers/bad/priority", "high"),
        ("traefik/http/routers/c/service/oops", "x"),
    ]);
    let name = if kind == Kind::Redis { "redis" } else { "etcd" };
    assert!(
        wait_until(Duration::from_secs(10), || by_kv.logs().contains(&format!(
            "{name} key traefik/http/routers/bad/priority: invalid integer \"high\""
        ))),
        "the bad key is not named\n{}",
        by_kv.logs()
    );
    assert!(
        by_kv
            .logs()
            .contains(&format!("{name} key traefik/http/routers/c/service/oops")),
        "{}",
        by_kv.logs()
    );
    if kind == Kind::Redis {
        // A hash where a value belongs: named too.
        let url = store.url();
        block_on(async {
            let mut c = KvClient::connect(&provider_from_url(&url, None).expect("url"))
                .await
                .expect("connect");
            let KvClient::Redis(conn) = &mut c else {
                unreachable!()
            };
            conn.call(&["HSET", "traefik/http/routers/h/rule", "f", "v"])
                .await
                .expect("hset");
        });
        assert!(
            wait_until(Duration::from_secs(10), || by_kv.logs().contains(
                "redis key traefik/http/routers/h/rule: holds a hash, not a string value"
            )),
            "{}",
            by_kv.logs()
        );
    }
    store.put(&[
        ("traefik/http/routers/d/rule", "Host(`d.test`)"),
        ("traefik/http/routers/d/service", "a"),
    ]);
    time_until_routed(kv_addr, &by_kv, "d.test", "a");
    assert_eq!(answer(kv_addr, "a.test", "/").1.as_deref(), Some("a"));
    assert_eq!(answer(kv_addr, "bad.test", "/").0, 404);

    // `ringway check` reads the store too and names the bad keys.
    let mut check_args = vec![
        "check".to_string(),
        "--entrypoints.web.address=127.0.0.1:0".into(),
    ];
    check_args.extend(store.provider_flags("traefik"));
    let (status, out, err) = Ringway::run(&check_args, Duration::from_secs(30));
    assert!(!status.success(), "check passed a bad key: {out}{err}");
    assert!(
        err.contains(&format!(
            "{name} key traefik/http/routers/bad/priority: invalid integer"
        )),
        "{err}"
    );
    assert!(out.contains("routers"), "{out}");

    // Dry run: the diff against the file, nothing written.
    let (ok, out, err) = kv(&["kv", "sync", "--dry-run", "--endpoint", &url, &file_s]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("- traefik/http/routers/bad/priority\n"),
        "{out}"
    );
    assert!(out.contains("- traefik/http/routers/d/rule\n"), "{out}");
    if kind == Kind::Redis {
        assert!(
            out.contains("- traefik/http/routers/h/rule\n"),
            "the hash is not cleaned up: {out}"
        );
    }
    assert!(out.contains("dry run: 0 to add, 0 to change, "), "{out}");
    assert!(store
        .list("traefik/")
        .iter()
        .any(|(k, _)| k == "traefik/http/routers/d/rule"));

    // The real sync deletes what the file does not have, in one transaction.
    std::fs::write(&file, dynamic(&a, &c)).expect("write");
    let (ok, out, err) = kv(&["kv", "sync", "--endpoint", &url, &file_s]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "~ traefik/http/services/b/loadBalancer/servers/0/url: {} -> {}",
            b.url(),
            c.url()
        )),
        "{out}"
    );
    let keys = store.list("traefik/");
    assert!(
        !keys
            .iter()
            .any(|(k, _)| k.starts_with("traefik/http/routers/d/") || k.contains("/bad/")),
        "{keys:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || answer(
        kv_addr, "d.test", "/"
    )
    .0 == 404));
    assert!(wait_until(Duration::from_secs(5), || answer(
        kv_addr, "b.test", "/api"
    )
    .1
    .as_deref()
        == Some("c")));

    // Export, then sync the export back: nothing to change.
    for ext in ["yaml", "toml"] {
        let out_file = dir.join(&format!("export.{ext}"));
        let out_s = out_file.display().to_string();
        let (ok, out, err) = kv(&["kv", "export", "--endpoint", &url, "--output", &out_s]);
        assert!(ok, "{out}{err}");
        let (ok, out, err) = kv(&["kv", "sync", "--dry-run", "--endpoint", &url, &out_s]);
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("dry run: 0 to add, 0 to change, 0 to delete"),
            "{ext}: {out}\n{}",
            std::fs::read_to_string(&out_file).unwrap_or_default()
        );
    }
}

/// Traefik's keys for router `a` (`Host(`a.test`)`) and its service on `a`.
fn router_a_pairs(a: &Origin) -> Vec<(String, String)> {
    vec![
        (
            "traefik/http/routers/a/rule".to_string(),
            "Host(`a.test`)".to_string(),
        ),
        (
            "traefik/http/routers/a/service".to_string(),
            "a".to_string(),
        ),
        (
            "traefik/http/services/a/loadBalancer/servers/0/url".to_string(),
            a.url(),
        ),
    ]
}

/// Writes `pairs` into the store, retrying until it accepts them or `timeout` passes (the
/// store may still be starting); the last error otherwise.
fn write_until(
    cfg: &ringway_shared::config::static_config::KvProvider,
    pairs: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let mut last = String::new();
    let written = wait_until(timeout, || {
        let r = block_on(async {
            let mut c = KvClient::connect(cfg).await?;
            c.apply(pairs, &[]).await
        });
        r.map_err(|e| last = e.to_string()).is_ok()
    });
    if written {
        Ok(())
    } else {
        Err(last)
    }
}
#[test]
fn redis_layout_round_trip_watch_and_sync() {
    layout_round_trip_and_watch(Kind::Redis);
}

#[test]
fn etcd_layout_round_trip_watch_and_sync() {
    layout_round_trip_and_watch(Kind::Etcd);
}

fn restart_mid_traffic(kind: Kind) {
    let mut store = Store::start(kind);
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let dir = TestDir::new("kv-restart");
    let file = dir.join("dynamic.yaml");
    std::fs::write(
        &file,
        format!(
            "http:\n  routers:\n    a:\n      rule: Host(`a.test`)\n      service: a\n  services:\n    a:\n      loadBalancer:\n        servers:\n          - url: {}\n",
            a.url()
        ),
    )
    .expect("write");
    let url = store.url();
    let (ok, out, err) = kv(&[
        "kv",
        "sync",
        "--endpoint",
        &url,
        "--root-key",
        "edge",
        &file.display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let (r, addr) = start_ringway(&store.provider_flags("edge"));
    wait_routed(addr, &r, Duration::from_secs(15), "a.test", "/", "a");

    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                sent.fetch_add(1, Ordering::SeqCst);
                let got = answer(addr, "a.test", "/");
                if got.0 != 200 || got.1.as_deref() != Some("a") {
                    failed.fetch_add(1, Ordering::SeqCst);
                    failures.push(format!("{got:?}"));
                }
                thread::sleep(Duration::from_millis(2));
            }
            failures
        })
    };
    thread::sleep(Duration::from_millis(200));
    store.stop();
    let name = if kind == Kind::Redis { "redis" } else { "etcd" };
    assert!(
        wait_until(Duration::from_secs(10), || r
            .logs()
            .contains("store unreachable")),
        "the outage is not logged\n{}",
        r.logs()
    );
    thread::sleep(Duration::from_millis(500)); // traffic while the store is down
    store.spawn();
    // After the reconnect (a full resync, notifications/watch set up again), a change applies.
    store.put(&[
        ("edge/http/routers/b/rule", "Host(`b.test`)"),
        ("edge/http/routers/b/service", "b"),
        ("edge/http/services/b/loadBalancer/servers/0/url", &b.url()),
    ]);
    wait_routed(addr, &r, Duration::from_secs(15), "b.test", "/", "b");
    stop.store(true, Ordering::SeqCst);
    let failures = traffic.join().expect("traffic thread");
    let sent = sent.load(Ordering::SeqCst);
    println!(
        "{kind:?} restart: {sent} requests during the outage and reconnect, {} failed",
        failures.len()
    );
    assert!(sent > 50, "too little traffic to show anything: {sent}");
    assert!(
        failures.is_empty(),
        "requests failed while {name} restarted: {failures:?}\n{}",
        r.logs()
    );
    let logs = r.logs();
    assert_eq!(
        logs.matches("store unreachable").count(),
        1,
        "the outage is logged once\n{logs}"
    );
}

#[test]
fn redis_restart_mid_traffic_fails_no_request() {
    restart_mid_traffic(Kind::Redis);
}

#[test]
fn etcd_restart_mid_traffic_fails_no_request() {
    restart_mid_traffic(Kind::Etcd);
}

fn lock_passes_from_dead_holder(kind: Kind) {
    let store = Store::start(kind);
    let cfg = provider_from_url(&store.url(), None).expect("url");
    block_on(async {
        let mut holder = KvClient::connect(&cfg).await.expect("connect");
        let mut waiter = KvClient::connect(&cfg).await.expect("connect");
        let ttl = Duration::from_secs(1);
        let first = holder
            .try_acquire("order/a.test", ttl)
            .await
            .expect("acquire")
            .expect("free lock");
        assert!(
            waiter
                .try_acquire("order/a.test", ttl)
                .await
                .expect("try")
                .is_none(),
            "two holders"
        );
        assert!(
            holder.renew(&first).await.expect("renew"),
            "the holder lost its lease"
        );
        // Another name is independent.
        let other = waiter
            .try_acquire("order/b.test", ttl)
            .await
            .expect("try")
            .expect("free lock");
        waiter.release(other).await.expect("release");
        // The holder dies: no renew, no release, its connection gone.
        drop(holder);
        let started = Instant::now();
        let second = acquire(&mut waiter, "order/a.test", ttl, Duration::from_secs(10))
            .await
            .expect("acquire")
            .expect("the lease never expired");
        let took = started.elapsed();
        println!("{kind:?} lock: taken over {took:?} after the holder died (lease {ttl:?})");
        assert!(
            second.token > first.token,
            "fencing token did not grow: {} then {}",
            first.token,
            second.token
        );
        let mut late = KvClient::connect(&cfg).await.expect("connect");
        assert!(
            !late.renew(&first).await.expect("renew"),
            "a dead holder renewed a lease it lost"
        );
        // Fencing: the old holder's write is refused, the new holder's goes through.
        assert!(!late
            .put_if_held(&first, "ringway-test/cert", "old")
            .await
            .expect("put"));
        assert!(waiter
            .put_if_held(&second, "ringway-test/cert", "new")
            .await
            .expect("put"));
        assert_eq!(
            late.list("ringway-test/").await.expect("list"),
            [("ringway-test/cert".to_string(), "new".to_string())]
        );
        waiter.release(second).await.expect("release");
        let third = late
            .try_acquire("order/a.test", ttl)
            .await
            .expect("try")
            .expect("released lock is free");
        assert!(third.token > first.token);
        late.release(third).await.expect("release");
    });
}

#[test]
fn redis_lock_passes_from_dead_holder() {
    lock_passes_from_dead_holder(Kind::Redis);
}

#[test]
fn etcd_lock_passes_from_dead_holder() {
    lock_passes_from_dead_holder(Kind::Etcd);
}

#[test]
fn kv_lines_format_and_bad_input() {
    let store = Store::start(Kind::Redis);
    let dir = TestDir::new("kv-lines");
    let lines = dir.join("seed.txt");
    std::fs::write(&lines, "# seed 002 bootstrap\ntraefik/http/routers/r/rule,Host(`a`) || Host(`b`)\nhttp/routers/r/service,s\ntraefik/http/services/s/loadBalancer/servers/0/url,http://127.0.0.1:1\n").expect("write");
    let url = store.url();
    let (ok, out, err) = kv(&[
        "kv",
        "sync",
        "--endpoint",
        &url,
        &lines.display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let keys = store.list("traefik/");
    assert!(
        keys.contains(&(
            "traefik/http/routers/r/rule".into(),
            "Host(`a`) || Host(`b`)".into()
        )),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("traefik/http/routers/r/service".into(), "s".into())),
        "{keys:?}"
    );

    // A bad file is refused with its key named, and nothing is written.
    std::fs::write(&lines, "http/routers/r/priority,high\n").expect("write");
    let (ok, out, err) = kv(&[
        "kv",
        "sync",
        "--endpoint",
        &url,
        &lines.display().to_string(),
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("key traefik/http/routers/r/priority: invalid integer \"high\""),
        "{err}"
    );
    assert_eq!(store.list("traefik/"), keys);
    let (ok, _, err) = kv(&[
        "kv",
        "sync",
        "--endpoint",
        "http://127.0.0.1:1",
        &lines.display().to_string(),
    ]);
    assert!(!ok && err.contains("unsupported endpoint"), "{err}");
    // An unreachable store is an error naming it, not a hang.
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let (ok, _, err) = kv(&["kv", "export", "--endpoint", &dead]);
    assert!(!ok && err.contains("cannot connect to 127.0.0.1:"), "{err}");
}

#[test]
fn redis_without_keyspace_notifications_is_polled() {
    // A managed Redis that refuses CONFIG: the provider polls instead.
    let mut store = Store::new(Kind::Redis, &["--rename-command", "CONFIG", ""]);
    store.spawn();
    let a = Origin::start("a");
    let (r, addr) = start_ringway(&store.provider_flags("traefik"));
    assert!(
        wait_until(Duration::from_secs(15), || r
            .logs()
            .contains("configuration read in full")),
        "{}",
        r.logs()
    );
    store.put(&[
        ("traefik/http/routers/a/rule", "Host(`a.test`)"),
        ("traefik/http/routers/a/service", "a"),
        (
            "traefik/http/services/a/loadBalancer/servers/0/url",
            &a.url(),
        ),
    ]);
    let took = time_until_routed(addr, &r, "a.test", "a");
    println!("Redis poll mode: routed {took:?} after the write");
    assert!(
        r.logs().contains("refuses CONFIG SET; polling every 50 ms"),
        "{}",
        r.logs()
    );
}

#[test]
fn store_down_at_start_then_up_and_several_instances_agree() {
    let mut store = Store::new(Kind::Redis, &[]);
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let dir = TestDir::new("kv-start");
    let file = dir.join("file.yaml");
    std::fs::write(
        &file,
        format!("http:\n  routers:\n    f:\n      rule: Host(`f.test`)\n      service: f\n  services:\n    f:\n      loadBalancer:\n        servers:\n          - url: {}\n", a.url()),
    )
    .expect("write");
    // The store is down: the file's routes go live anyway.
    let mut flags = store.provider_flags("traefik");
    flags.push(format!("--providers.file.filename={}", file.display()));
    let (first, first_addr) = start_ringway(&flags);
    wait_routed(
        first_addr,
        &first,
        Duration::from_secs(15),
        "f.test",
        "/",
        "a",
    );
    assert!(
        wait_until(Duration::from_secs(5), || first
            .logs()
            .contains("store unreachable")),
        "{}",
        first.logs()
    );

    // The store comes up with a configuration: picked up by the reconnect.
    store.spawn();
    store.put(&[
        ("traefik/http/routers/k/rule", "Host(`k.test`)"),
        ("traefik/http/routers/k/service", "k"),
        (
            "traefik/http/services/k/loadBalancer/servers/0/url",
            &b.url(),
        ),
    ]);
    wait_routed(
        first_addr,
        &first,
        Duration::from_secs(15),
        "k.test",
        "/",
        "b",
    );
    assert_eq!(answer(first_addr, "f.test", "/").1.as_deref(), Some("a"));

    // A second instance on the same store serves the same; a change reaches both.
    let (second, second_addr) = start_ringway(&store.provider_flags("traefik"));
    wait_routed(
        second_addr,
        &second,
        Duration::from_secs(15),
        "k.test",
        "/",
        "b",
    );
    store.put(&[("traefik/http/routers/k/rule", "Host(`k2.test`)")]);
    time_until_routed(first_addr, &first, "k2.test", "b");
    time_until_routed(second_addr, &second, "k2.test", "b");
}

#[test]
fn kv_sync_watch_follows_the_file() {
    let mut store = Store::start(Kind::Etcd);
    let dir = TestDir::new("kv-watch");
    let file = dir.join("dynamic.yml");
    let write = |rule: &str| {
        std::fs::write(
            &file,
            format!("http:\n  routers:\n    r:\n      rule: {rule}\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n"),
        )
        .expect("write")
    };
    write("Host(`one.test`)");
    let sync = Ringway::start(&[
        "kv".to_string(),
        "sync".into(),
        "--watch".into(),
        "--endpoint".into(),
        store.url(),
        file.display().to_string(),
    ]);
    let rule = |store: &Store| {
        store
            .list("traefik/")
            .into_iter()
            .find(|(k, _)| k == "traefik/http/routers/r/rule")
            .map(|(_, v)| v)
    };
    assert!(
        wait_until(Duration::from_secs(15), || rule(&store).as_deref()
            == Some("Host(`one.test`)")),
        "first sync\n{}",
        sync.logs()
    );
    write("Host(`two.test`)");
    assert!(
        wait_until(Duration::from_secs(15), || rule(&store).as_deref()
            == Some("Host(`two.test`)")),
        "re-sync on change\n{}",
        sync.logs()
    );
    // A change while the store is down is synced once it is back.
    store.stop();
    write("Host(`three.test`)");
    assert!(
        wait_until(Duration::from_secs(15), || sync
            .logs()
            .contains("cannot connect")),
        "the failed sync is not reported\n{}",
        sync.logs()
    );
    store.spawn();
    assert!(
        wait_until(Duration::from_secs(15), || rule(&store).as_deref()
            == Some("Host(`three.test`)")),
        "no retry after the store came back\n{}",
        sync.logs()
    );
    assert!(sync.is_running(), "{}", sync.logs());
}

#[test]
fn redis_over_mutual_tls() {
    use ringway_shared::config::static_config::KvTls;
    let dir = TestDir::new("redis-tls");
    test_pki(&dir);
    let port = free_port();
    let path = |n: &str| dir.join(n).display().to_string();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            &path("server.pem"),
            "--tls-key-file",
            &path("server.key"),
        ])
        .args([
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "yes",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed by scripts/test");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut redis);
    let tls = KvTls {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client.key")),
        insecure_skip_verify: false,
    };
    let mut cfg = provider_from_url(&format!("redis://127.0.0.1:{port}"), None).expect("url");
    cfg.tls = Some(tls.clone());
    let a = Origin::start("a");
    let pairs = router_a_pairs(&a);
    write_until(&cfg, &pairs, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("cannot write to redis over TLS: {e}"));
    // Without a client certificate the server refuses us.
    let mut no_cert = cfg.clone();
    no_cert.tls = Some(KvTls {
        cert: None,
        key: None,
        ..tls
    });
    let refused = block_on(async {
        match KvClient::connect(&no_cert).await {
            Ok(mut c) => c.list("traefik/").await.is_err(),
            Err(_) => true,
        }
    });
    assert!(refused, "redis accepted a client without certificate");

    let (r, addr) = start_ringway(&[
        format!("--providers.redis.endpoints=127.0.0.1:{port}"),
        format!("--providers.redis.tls.ca={}", path("ca.pem")),
        format!("--providers.redis.tls.cert={}", path("client.pem")),
        format!("--providers.redis.tls.key={}", path("client.key")),
    ]);
    wait_routed(addr, &r, Duration::from_secs(15), "a.test", "/", "a");
    let url = format!("redis://127.0.0.1:{port}");
    let (ok, out, err) = kv(&[
        "kv",
        "export",
        "--endpoint",
        &url,
        "--tls.ca",
        &path("ca.pem"),
        "--tls.cert",
        &path("client.pem"),
        "--tls.key",
        &path("client.key"),
    ]);
    assert!(
        ok && out.contains("Host(`a.test`)"),
        "export over TLS: {out}{err}"
    );
    block_on(async {
        let mut c = KvClient::connect(&cfg).await.expect("connect");
        c.apply(
            &[(
                "traefik/http/routers/a/rule".into(),
                "Host(`b.test`)".into(),
            )],
            &[],
        )
        .await
        .expect("put");
    });
    time_until_routed(addr, &r, "b.test", "a");
}

fn lock_across_processes(kind: Kind) {
    let store = Store::start(kind);
    let url = store.url();
    let token = |r: &Ringway| {
        r.stdout()
            .lines()
            .find_map(|l| l.strip_prefix("acquired certs/a.test token "))
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let holder = Ringway::start(&[
        "kv",
        "lock",
        "--endpoint",
        &url,
        "--ttl",
        "1s",
        "certs/a.test",
    ]);
    let first = support::wait_for(Duration::from_secs(15), || token(&holder))
        .unwrap_or_else(|| panic!("the holder did not get the lock\n{}", holder.logs()));
    // Held elsewhere: exit 3 at once.
    let (status, out, err) = Ringway::run(
        &[
            "kv",
            "lock",
            "--endpoint",
            &url,
            "certs/a.test",
            "--",
            "true",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(3), "{out}{err}");
    let waiter = Ringway::start(&[
        "kv",
        "lock",
        "--endpoint",
        &url,
        "--ttl",
        "1s",
        "--wait",
        "60s",
        "certs/a.test",
        "--",
        "sh",
        "-c",
        "echo ran-under-lock",
    ]);
    // Longer than the lease: the holder's renewals keep the waiter out.
    thread::sleep(Duration::from_millis(2500));
    assert!(
        token(&waiter).is_none() && waiter.is_running(),
        "two holders\n{}",
        waiter.logs()
    );
    let killed = Instant::now();
    holder.signal(libc::SIGKILL);
    let status = waiter
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the waiter never got the lock\n{}", waiter.logs()));
    println!(
        "{kind:?} lock across processes: taken over {:?} after SIGKILL of the holder (lease 1s)",
        killed.elapsed()
    );
    assert!(status.success(), "{}", waiter.logs());
    let second = token(&waiter).expect("token");
    assert!(
        second > first,
        "fencing token did not grow: {first} then {second}"
    );
    assert!(
        waiter.stdout().contains("ran-under-lock"),
        "{}",
        waiter.logs()
    );
}

#[test]
fn redis_lock_across_processes() {
    lock_across_processes(Kind::Redis);
}

#[test]
fn etcd_lock_across_processes() {
    lock_across_processes(Kind::Etcd);
}

#[test]
fn stores_with_authentication() {
    // Redis ACL user, etcd user with auth enabled: the providers log in with
    // username/password; without them they are refused and say so.
    let redis = Store::start(Kind::Redis);
    let etcd = Store::start(Kind::Etcd);
    let a = Origin::start("a");
    let keys = |root: &str| {
        vec![
            (
                format!("{root}/http/routers/a/rule"),
                "Host(`a.test`)".to_string(),
            ),
            (format!("{root}/http/routers/a/service"), "a".to_string()),
            (
                format!("{root}/http/services/a/loadBalancer/servers/0/url"),
                a.url(),
            ),
        ]
    };
    block_on(async {
        let mut r = KvClient::connect(&provider_from_url(&redis.url(), None).expect("url"))
            .await
            .expect("connect");
        r.apply(&keys("traefik"), &[]).await.expect("put");
        let KvClient::Redis(conn) = &mut r else {
            unreachable!()
        };
        for cmd in [
            vec![
                "ACL", "SETUSER", "edge", "on", ">s3cret", "~*", "&*", "+@all",
            ],
            vec!["ACL", "SETUSER", "default", "off"],
        ] {
            let reply = conn.call(&cmd).await.expect("acl");
            assert_eq!(format!("{reply:?}"), "Simple(\"OK\")", "{cmd:?}");
        }
        let mut e = KvClient::connect(&provider_from_url(&etcd.url(), None).expect("url"))
            .await
            .expect("connect");
        e.apply(&keys("edge"), &[]).await.expect("put");
        let KvClient::Etcd(conn) = &mut e else {
            unreachable!()
        };
        for (path, body) in [
            (
                "/v3/auth/user/add",
                serde_json::json!({"name": "root", "password": "s3cret"}),
            ),
            ("/v3/auth/role/add", serde_json::json!({"name": "root"})),
            (
                "/v3/auth/user/grant",
                serde_json::json!({"user": "root", "role": "root"}),
            ),
            ("/v3/auth/enable", serde_json::json!({})),
        ] {
            conn.post(path, body)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    });
    let (r, addr) = start_ringway(&[
        format!("--providers.redis.endpoints=127.0.0.1:{}", redis.port),
        "--providers.redis.username=edge".to_string(),
        "--providers.redis.password=s3cret".to_string(),
        format!("--providers.etcd.endpoints=127.0.0.1:{}", etcd.port),
        "--providers.etcd.rootKey=edge".to_string(),
        "--providers.etcd.username=root".to_string(),
        "--providers.etcd.password=s3cret".to_string(),
    ]);
    wait_routed(addr, &r, Duration::from_secs(15), "a.test", "/", "a");
    let logs = r.logs();
    assert!(
        logs.contains("provider=\"redis\" endpoints")
            && logs.contains("provider=\"etcd\" endpoints"),
        "{logs}"
    );
    assert!(!logs.contains("store unreachable"), "{logs}");
    // A change through etcd (authenticated) reaches the data plane.
    let mut auth = provider_from_url(
        &format!("etcd://root:s3cret@127.0.0.1:{}", etcd.port),
        Some("edge"),
    )
    .expect("url");
    auth.root_key = "edge".into();
    block_on(async {
        let mut c = KvClient::connect(&auth).await.expect("login");
        c.apply(
            &[("edge/http/routers/a/rule".into(), "Host(`e.test`)".into())],
            &[],
        )
        .await
        .expect("put");
    });
    time_until_routed(addr, &r, "e.test", "a");
    // Without credentials: refused, with the store's reason.
    let (ok, _, err) = kv(&["kv", "export", "--endpoint", &redis.url()]);
    assert!(!ok && err.contains("NOAUTH"), "{err}");
    let (ok, _, err) = kv(&[
        "kv",
        "export",
        "--endpoint",
        &etcd.url(),
        "--root-key",
        "edge",
    ]);
    assert!(!ok && err.contains("user name is empty"), "{err}");
    let (ok, out, err) = kv(&[
        "kv",
        "export",
        "--endpoint",
        &format!("redis://edge:s3cret@127.0.0.1:{}", redis.port),
    ]);
    assert!(ok && out.contains("Host(`a.test`)"), "{out}{err}");
}

/// Writes `ca.pem`, `server.pem`/`.key` (for 127.0.0.1) and `client.pem`/`.key`, both signed
/// by the CA, into `dir`.
fn test_pki(dir: &TestDir) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct subjects: OpenSSL takes a leaf whose issuer equals its subject as self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ringway test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    for (name, san) in [("server", "127.0.0.1"), ("client", "ringway-client")] {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![san.to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let c = params.signed_by(&key, &ca).expect("cert");
        std::fs::write(dir.join(&format!("{name}.pem")), c.pem()).expect("write");
        std::fs::write(dir.join(&format!("{name}.key")), key.serialize_pem()).expect("write");
    }
}

#[test]
fn etcd_over_mutual_tls() {
    use ringway_shared::config::static_config::KvTls;
    let dir = TestDir::new("etcd-tls");
    test_pki(&dir);
    let path = |n: &str| dir.join(n).display().to_string();
    let (port, peer) = (free_port(), free_port());
    let client_url = format!("https://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut etcd = Command::new("etcd")
        .args(["--name", "t", "--data-dir", &path("data")])
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("t={peer_url}")])
        .args([
            "--listen-metrics-urls",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .args([
            "--cert-file",
            &path("server.pem"),
            "--key-file",
            &path("server.key"),
        ])
        .args(["--trusted-ca-file", &path("ca.pem"), "--client-cert-auth"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("etcd.log")).expect("log"))
        .spawn()
        .expect("etcd is installed by scripts/test");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut etcd);
    let mut cfg = provider_from_url(&format!("etcd://127.0.0.1:{port}"), None).expect("url");
    cfg.tls = Some(KvTls {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client.key")),
        insecure_skip_verify: false,
    });
    let a = Origin::start("a");
    let pairs = router_a_pairs(&a);
    write_until(&cfg, &pairs, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("cannot write to etcd over TLS: {e}"));
    let (r, addr) = start_ringway(&[
        format!("--providers.etcd.endpoints=127.0.0.1:{port}"),
        format!("--providers.etcd.tls.ca={}", path("ca.pem")),
        format!("--providers.etcd.tls.cert={}", path("client.pem")),
        format!("--providers.etcd.tls.key={}", path("client.key")),
    ]);
    wait_routed(addr, &r, Duration::from_secs(15), "a.test", "/", "a");
    block_on(async {
        let mut c = KvClient::connect(&cfg).await.expect("connect");
        c.apply(
            &[(
                "traefik/http/routers/a/rule".into(),
                "Host(`b.test`)".into(),
            )],
            &[],
        )
        .await
        .expect("put");
    });
    time_until_routed(addr, &r, "b.test", "a");
    // Without the client certificate: refused.
    let (ok, _, err) = kv(&[
        "kv",
        "export",
        "--endpoint",
        &format!("etcd://127.0.0.1:{port}"),
        "--tls.ca",
        &path("ca.pem"),
    ]);
    assert!(!ok, "etcd accepted a client without certificate: {err}");
}

/// ringway with `web`/`websecure` on their own ports, a file provider, and resolver `le`
/// (http-01 on web) storing its data in `store`.
fn acme_instance(
    store: &Store,
    pebble: &support::pebble::Pebble,
    (http, https): (u16, u16),
    file: &std::path::Path,
) -> Ringway {
    let p = "--certificatesresolvers.le.acme";
    Ringway::start(&[
        format!("--entrypoints.web.address=127.0.0.1:{http}"),
        format!("--entrypoints.websecure.address=127.0.0.1:{https}"),
        format!("--providers.file.filename={}", file.display()),
        "--dataplane.workers=1".to_string(),
        "--log.level=DEBUG".to_string(),
        format!("{p}.email=ops@example.test"),
        format!("{p}.storage={}", store.url()),
        format!("{p}.caserver={}", pebble.directory),
        format!("{p}.cacertificates={}", pebble.tls_ca_path.display()),
        format!("{p}.keytype=EC256"),
        format!("{p}.httpchallenge.entrypoint=web"),
    ])
}

/// With `kill_holder`, a second domain is then ordered by instance 1 or 2, and the one that
/// holds the lock is SIGKILLed mid-order: the other completes once the lease expires.
fn shared_acme_certificates(kind: Kind, kill_holder: bool) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    use support::pebble::{verified, Pebble};
    let store = Store::start(kind);
    let dir = TestDir::new("acme-ha");
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    // Pebble validates through instance 0 only, as a load balancer would pick one instance.
    let pebble = Pebble::start(&dir, ports[0].0, ports[0].1);
    let root = pebble.issuing_root_der();
    let origin = Origin::start("app");
    let wants = format!(
        "{}[http.routers.a]\nrule = \"Host(`a.test`)\"\nservice = \"app\"\n\
         entryPoints = [\"websecure\"]\ntls = {{ certResolver = \"le\" }}\n",
        support::lb_service("app", &[&origin])
    );
    let idle = support::lb_service("app", &[&origin]);
    let files: Vec<std::path::PathBuf> = (0..3)
        .map(|i| dir.join(&format!("dynamic{i}.toml")))
        .collect();
    // Instance 0 has no router for a.test yet: it only follows the store (and so answers the
    // challenges the others publish).
    support::write_dynamic(&files[0], &idle);
    support::write_dynamic(&files[1], &wants);
    support::write_dynamic(&files[2], &wants);

    // A holder of the resolver's lock that dies: nobody orders until its lease expires.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args([
            "kv",
            "lock",
            "--endpoint",
            &store.url(),
            "--ttl",
            "3s",
            "acme/le",
        ])
        .args(["--", "sleep", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("kv lock");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("holder output");
    assert!(line.starts_with("acquired acme/le token"), "{line}");

    let instances: Vec<Ringway> = (0..3)
        .map(|i| acme_instance(&store, &pebble, ports[i], &files[i]))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pebble.orders(),
        0,
        "ordered while the lock was held elsewhere"
    );
    // SAFETY: kill(2) on the holder's own process group.
    unsafe {
        libc::kill(-(holder.id() as i32), libc::SIGKILL);
    }
    let _ = holder.wait();

    let serving = |i: usize| {
        support::wait_for(Duration::from_secs(60), || {
            verified(ports[i].1, "a.test", &root).ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "instance {i} never served a.test\n{}\n--- pebble ---\n{}",
                instances[i].logs(),
                pebble.logs()
            )
        })
        .0
    };
    let one = serving(1);
    let two = serving(2);
    assert_eq!(one, two, "both instances serve the one certificate");
    assert_eq!(pebble.orders(), 1, "exactly one order\n{}", pebble.logs());
    let holders: Vec<usize> = (1..3)
        .filter(|&i| instances[i].stderr().contains("certificate obtained"))
        .collect();
    assert_eq!(holders.len(), 1, "one instance ordered: {holders:?}");
    println!(
        "{kind:?}: instance {} ordered after the dead holder's lease expired; pebble validated through instance 0",
        holders[0]
    );

    // Instance 0 now wants it too: loaded from the store, no new order.
    support::write_dynamic(&files[0], &wants);
    assert_eq!(serving(0), one);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pebble.orders(), 1, "instance 0 ordered again");
    if !kill_holder {
        return;
    }

    // b.test for instances 1 and 2: kill whichever takes the lock, during its order (it waits
    // half a second for the others to serve its challenge before asking the CA to validate).
    let both = format!(
        "{wants}[http.routers.b]\nrule = \"Host(`b.test`)\"\nservice = \"app\"\n\
         entryPoints = [\"websecure\"]\ntls = {{ certResolver = \"le\" }}\n"
    );
    let count = |i: usize, what: &str| instances[i].stderr().matches(what).count();
    let ordering_before: Vec<usize> = (1..3).map(|i| count(i, "ordering a certificate")).collect();
    let obtained_before: Vec<usize> = (1..3).map(|i| count(i, "certificate obtained")).collect();
    support::write_dynamic(&files[1], &both);
    support::write_dynamic(&files[2], &both);
    let victim = support::wait_for(Duration::from_secs(20), || {
        (1..3).find(|&i| count(i, "ordering a certificate") > ordering_before[i - 1])
    })
    .expect("nobody took the lock for b.test");
    instances[victim].signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let survivor = 3 - victim;
    let b = support::wait_for(Duration::from_secs(90), || {
        verified(ports[survivor].1, "b.test", &root).ok()
    });
    assert!(
        b.is_some(),
        "instance {survivor} did not take over\n{}",
        instances[survivor].logs()
    );
    println!(
        "{kind:?}: holder {victim} killed mid-order; instance {survivor} served b.test {:?} later (lease {} s)",
        killed_at.elapsed(),
        30
    );
    assert_eq!(
        count(victim, "certificate obtained"),
        obtained_before[victim - 1],
        "the victim finished its order before it was killed"
    );
}

#[test]
fn redis_instances_share_acme_certificates_and_survive_a_holder_killed_mid_order() {
    shared_acme_certificates(Kind::Redis, true);
}

#[test]
fn etcd_instances_share_acme_certificates_through_one_order() {
    shared_acme_certificates(Kind::Etcd, false);
}
