//! End to end: the process model. The data plane keeps serving while its control-plane child
//! dies and is replaced, drains gracefully on SIGTERM, and starts with no arguments at all.

mod support;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    http_get, is_alive, lb_service, router, wait_for, wait_until, Conn, Origin, Proxy, Ringway,
    StopOnDrop,
};

/// Upper bound on the requests the load threads send, whatever happens.
const MAX_REQUESTS: usize = 50_000;

/// Reports from the load threads.
#[derive(Default)]
struct Load {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn fail(&self, what: String) {
        self.failures.lock().expect("failures").push(what);
    }

    fn done(&self, stop: &AtomicBool) -> bool {
        stop.load(Ordering::SeqCst) || self.ok.load(Ordering::SeqCst) >= MAX_REQUESTS
    }
}

/// Keep-alive client: 50 requests per connection, then a new connection.
fn keep_alive_load(addr: SocketAddr, load: &Load, stop: &AtomicBool) {
    while !load.done(stop) {
        let mut c = match Conn::connect(addr) {
            Ok(c) => c,
            Err(e) => {
                load.fail(format!("keep-alive connect: {e}"));
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        for _ in 0..50 {
            match c.get("cp.test", "/ka") {
                Ok(r) if r.status == 200 => {
                    load.ok.fetch_add(1, Ordering::SeqCst);
                }
                Ok(r) => load.fail(format!("keep-alive status {}", r.status)),
                Err(e) => {
                    load.fail(format!("keep-alive request: {e}"));
                    break;
                }
            }
        }
    }
}

/// One new connection per request, at most ~500 a second so the client never runs out of
/// ephemeral ports (TIME_WAIT) whatever ringway's speed.
fn new_connection_load(addr: SocketAddr, load: &Load, stop: &AtomicBool) {
    while !load.done(stop) {
        thread::sleep(Duration::from_millis(2));
        match http_get(addr, "cp.test", "/new") {
            Ok(r) if r.status == 200 => {
                load.ok.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => load.fail(format!("new-connection status {}", r.status)),
            Err(e) => load.fail(format!("new-connection request: {e}")),
        }
    }
}

#[test]
fn control_plane_crash_does_not_interrupt_traffic_and_it_is_replaced() {
    let o = Origin::start("cp");
    let cfg = [router("r", "Host(`cp.test`)", "s"), lb_service("s", &[&o])].concat();
    let p = Proxy::start(
        "cp-crash",
        &cfg,
        &["--providers.providersThrottleDuration=10ms"],
    );
    p.wait_routed("cp.test", "/", "cp");
    let first_cp = p.ringway.wait_controlplane(Duration::from_secs(10), None);

    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = StopOnDrop(stop.clone());
    let loads: [fn(SocketAddr, &Load, &AtomicBool); 2] = [keep_alive_load, new_connection_load];
    let workers: Vec<_> = loads
        .into_iter()
        .map(|f| {
            let (load, stop, addr) = (load.clone(), stop.clone(), p.addr);
            thread::spawn(move || f(addr, &load, &stop))
        })
        .collect();

    assert!(
        wait_until(Duration::from_secs(20), || load.ok.load(Ordering::SeqCst)
            >= 300),
        "load did not get going"
    );
    // SAFETY: kill(2) on the control plane our ringway spawned (found among its children
    // with `controlplane` in its command line).
    let rc = unsafe { libc::kill(first_cp as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 control plane {first_cp}");
    let killed_at = Instant::now();

    let second_cp = p
        .ringway
        .wait_controlplane(Duration::from_secs(10), Some(first_cp));
    println!(
        "control plane {first_cp} killed; {second_cp} running after {:?}",
        killed_at.elapsed()
    );
    assert!(
        !is_alive(first_cp),
        "the killed control plane is still running"
    );

    // The new control plane re-sent the table and watches the file.
    let cfg2 = [
        router("r", "Host(`cp.test`)", "s"),
        router("r2", "Host(`after.test`)", "s"),
        lb_service("s", &[&o]),
    ]
    .concat();
    p.reconfigure(&cfg2);
    support::wait_routed(
        p.addr,
        &p.ringway,
        Duration::from_secs(10),
        "after.test",
        "/",
        "cp",
    );

    let enough = wait_until(Duration::from_secs(30), || {
        load.ok.load(Ordering::SeqCst) >= 2000
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("load thread");
    }
    let ok = load.ok.load(Ordering::SeqCst);
    let failures = load.failures.lock().expect("failures");
    println!("{ok} requests served across the control-plane restart");
    assert!(
        failures.is_empty(),
        "{} failed requests, first ones: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(10)],
        p.ringway.logs()
    );
    assert!(enough, "only {ok} requests completed");
}

/// A client connection open while a crashed control plane is replaced must not be inherited by
/// the new one: when the data plane closes it, the client sees the end at once (before the
/// fix, io_uring-accepted sockets lacked close-on-exec and the new control plane kept every
/// open connection alive until it exited; a client waiting for the close hung).
#[test]
fn a_replaced_control_plane_holds_no_client_connection() {
    let o = Origin::start("inherit");
    let cfg = [
        router("r", "Host(`inherit.test`)", "s"),
        lb_service("s", &[&o]),
    ]
    .concat();
    let p = Proxy::start("cp-inherit", &cfg, &[]);
    p.wait_routed("inherit.test", "/", "inherit");
    let first_cp = p.ringway.wait_controlplane(Duration::from_secs(10), None);

    // Open connections, each with one request answered, so the data plane owns them.
    let mut clients: Vec<Conn> = (0..8)
        .map(|_| {
            let mut c = Conn::connect(p.addr).expect("connect");
            let r = c.get("inherit.test", "/").expect("first response");
            assert_eq!(r.status, 200, "first response");
            c
        })
        .collect();
    // SAFETY: kill(2) on the control plane our ringway spawned.
    let rc = unsafe { libc::kill(first_cp as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 control plane {first_cp}");
    let second_cp = p
        .ringway
        .wait_controlplane(Duration::from_secs(10), Some(first_cp));
    // Let it come up and take over the table, then make the data plane close every connection.
    p.wait_routed("inherit.test", "/", "inherit");
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c
            .request("GET", "inherit.test", "/", &[("Connection", "close")], b"")
            .expect("second response");
        assert_eq!(r.status, 200, "connection {i}");
        if let Err(e) = c.wait_closed(Duration::from_secs(5)) {
            panic!(
                "connection {i}: no end after the data plane answered `Connection: close` \
                 ({e}); control plane {second_cp} holds {}\n{}",
                sockets_of(second_cp),
                p.ringway.logs()
            );
        }
    }
}

/// The socket descriptors of process `pid`, for a failure message.
fn sockets_of(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return "(gone)".into();
    };
    let links: Vec<String> = dir
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| l.starts_with("socket:"))
        .collect();
    format!("{} sockets {links:?}", links.len())
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let o = Origin::start("drain");
    let cfg = [
        router("r", "Host(`drain.test`)", "s"),
        lb_service("s", &[&o]),
    ]
    .concat();
    let p = Proxy::start(
        "sigterm",
        &cfg,
        &["--entrypoints.web.transport.lifeCycle.graceTimeOut=5s"],
    );
    p.wait_routed("drain.test", "/", "drain");
    let cp = p.ringway.wait_controlplane(Duration::from_secs(10), None);

    // An idle keep-alive connection, used once.
    let mut idle = p.connect();
    let r = idle
        .get("drain.test", "/idle")
        .expect("request on the idle connection");
    assert_eq!(r.status, 200);

    let in_flight: Vec<_> = (0..4)
        .map(|i| {
            let addr = p.addr;
            thread::spawn(move || {
                let r = http_get(addr, "drain.test", &format!("/delay/1500?i={i}"));
                (
                    Instant::now(),
                    r.map(|r| r.status).map_err(|e| e.to_string()),
                )
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || o.requests_to("/delay/").len()
            == 4),
        "the slow requests did not reach the origin"
    );

    let term_at = Instant::now();
    p.ringway.signal(libc::SIGTERM);

    // New connections are refused while the in-flight requests are still being served.
    let mut refused_while_running = false;
    let refused = wait_until(Duration::from_secs(3), || match TcpStream::connect_timeout(
        &p.addr,
        Duration::from_millis(500),
    ) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            refused_while_running = p.ringway.is_running();
            true
        }
        _ => false,
    });
    assert!(refused, "new connections still accepted 3 s after SIGTERM");
    assert!(
        refused_while_running,
        "the listener only went away when the process exited"
    );

    // The idle keep-alive connection is closed by ringway (without a response).
    let closed = idle.wait_closed(Duration::from_secs(5));
    let idle_closed_while_running = p.ringway.is_running();
    let received = closed.unwrap_or_else(|e| panic!("idle connection not closed: {e}"));
    assert!(
        received.is_empty(),
        "idle connection got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        idle_closed_while_running,
        "the idle connection was only closed when the process exited"
    );

    for t in in_flight {
        let (_, result) = t.join().expect("in-flight thread");
        assert_eq!(result, Ok(200), "an in-flight request was not completed");
    }

    let status = p
        .ringway
        .wait_exit(
            Duration::from_secs(5).saturating_sub(term_at.elapsed()) + Duration::from_millis(500),
        )
        .unwrap_or_else(|| {
            panic!(
                "ringway still running after graceTimeOut\n{}",
                p.ringway.logs()
            )
        });
    println!("exited {status} {:?} after SIGTERM", term_at.elapsed());
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        p.ringway.logs()
    );
    assert!(
        wait_until(Duration::from_secs(5), || !is_alive(cp)),
        "the control plane {cp} outlived the data plane"
    );
}

#[test]
fn starts_with_no_arguments_on_port_8000_with_the_dashboard_on_loopback() {
    for port in ["0.0.0.0:8000", "127.0.0.1:8080"] {
        match TcpListener::bind(port) {
            Ok(l) => drop(l),
            Err(e) => panic!(
                "this test needs {port} free (ringway's embedded default: web on :8000, \
                 dashboard on 127.0.0.1:8080) but it is taken on this machine: {e}"
            ),
        }
    }
    let no_args: [&str; 0] = [];
    let rw = Ringway::start(&no_args);
    let mentioned = wait_until(Duration::from_secs(5), || rw.stdout().contains(":8000"));
    assert!(
        mentioned,
        "stdout does not mention :8000 within 5 s\n{}",
        rw.logs()
    );
    assert!(
        wait_until(Duration::from_secs(5), || rw
            .stdout()
            .contains("dashboard on http://127.0.0.1:8080/dashboard/")),
        "stdout does not say where the dashboard is\n{}",
        rw.logs()
    );
    let dashboard = SocketAddr::from(([127, 0, 0, 1], 8080));
    let page = wait_for(Duration::from_secs(10), || {
        let r = http_get(dashboard, "localhost", "/dashboard/").ok()?;
        (r.status == 200).then_some(r)
    })
    .unwrap_or_else(|| panic!("no dashboard on 127.0.0.1:8080\n{}", rw.logs()));
    assert!(page.text().contains("ringway dashboard"));
    let ping = http_get(dashboard, "localhost", "/ping").expect("ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));
    rw.signal(libc::SIGTERM);
    let status = rw
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", rw.logs()));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
