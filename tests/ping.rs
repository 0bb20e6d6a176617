//! End to end: `--ping` answered by the data plane on the `traefik` entry point (created on
//! :8080 when not configured, as Traefik; here on a free port), the terminating status once a
//! stop signal arrives (during `requestAcceptGraceTimeout`, while requests are still accepted),
//! and `ringway healthcheck`, which exits 0 only when ping answers 200.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::{free_port, raw_request, wait_until, Ringway, READY_TIMEOUT};

fn ping_args(web: u16, traefik: u16) -> Vec<String> {
    vec![
        format!("--entrypoints.web.address=127.0.0.1:{web}"),
        format!("--entrypoints.traefik.address=127.0.0.1:{traefik}"),
        "--entrypoints.traefik.transport.lifeCycle.requestAcceptGraceTimeout=3s".into(),
        "--ping".into(),
    ]
}

fn healthcheck(args: &[String]) -> (i32, String) {
    let mut all = vec!["healthcheck".to_string()];
    all.extend(args.iter().cloned());
    let (status, stdout, stderr) = Ringway::run(&all, Duration::from_secs(20));
    (status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

#[test]
fn ping_answers_ok_then_the_terminating_status_and_healthcheck_follows() {
    let (web, traefik) = (free_port(), free_port());
    let args = ping_args(web, traefik);
    let r = Ringway::start(&args);
    let ping = SocketAddr::from(([127, 0, 0, 1], traefik));
    let get = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(
        wait_until(READY_TIMEOUT, || std::net::TcpStream::connect(ping).is_ok()
            && raw_request(ping, get).starts_with("HTTP/1.1 200")),
        "ping never answered\n{}",
        r.logs()
    );
    let ok = raw_request(ping, get);
    assert!(ok.ends_with("\r\n\r\nOK"), "{ok}");
    let head = raw_request(
        ping,
        b"HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let post = raw_request(
        ping,
        b"POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    // Only on its entry point.
    let web_addr = SocketAddr::from(([127, 0, 0, 1], web));
    assert!(raw_request(web_addr, get).starts_with("HTTP/1.1 404"));

    let (code, out) = healthcheck(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("OK: http://127.0.0.1:{traefik}/ping")),
        "{out}"
    );

    // A stop signal: while new requests are still accepted, ping says 503.
    r.signal(libc::SIGTERM);
    assert!(
        wait_until(Duration::from_secs(2), || raw_request(ping, get)
            .starts_with("HTTP/1.1 503 Service Unavailable")),
        "ping did not turn 503 on SIGTERM\n{}",
        r.logs()
    );
    let (code, out) = healthcheck(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Bad healthcheck status: 503"), "{out}");
    assert!(
        r.wait_exit(Duration::from_secs(20)).is_some(),
        "ringway did not exit"
    );
}

#[test]
fn healthcheck_fails_without_ping_or_without_an_answer() {
    let (web, traefik) = (free_port(), free_port());
    let (code, out) = healthcheck(&[format!("--entrypoints.web.address=127.0.0.1:{web}")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ping is not enabled"), "{out}");
    // Nothing listens: a clear error, exit 1.
    let (code, out) = healthcheck(&ping_args(web, traefik));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Error calling healthcheck"), "{out}");
    // A ping entry point that does not exist is a configuration error.
    let (code, out) = healthcheck(&[
        format!("--entrypoints.web.address=127.0.0.1:{web}"),
        "--ping.entryPoint=nowhere".into(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("ping.entryPoint") && out.contains("nowhere"),
        "{out}"
    );
}
