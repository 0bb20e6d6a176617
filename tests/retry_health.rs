//! End to end: the `retry` middleware and active health checks (`loadBalancer.healthCheck`),
//! through the real binary against real sockets: a server that refuses connections, one
//! that resets them after reading the request, one whose `/health` fails.

mod support;

use std::net::TcpListener;
use std::time::Duration;
use support::{free_port, http_get, router, wait_until, Conn, Origin, Proxy};

/// A `host:port` where nothing listens: connections are refused.
fn refused_url() -> String {
    let port = free_port();
    format!("http://127.0.0.1:{port}")
}

fn service(name: &str, urls: &[String], extra: &str) -> String {
    let servers: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ url = \"{u}\" }}"))
        .collect();
    format!(
        "[http.services.{name}.loadBalancer]\nservers = [{}]\n{extra}\n",
        servers.join(", ")
    )
}

fn retry_middleware(name: &str, attempts: u32) -> String {
    format!("[http.middlewares.{name}.retry]\nattempts = {attempts}\ninitialInterval = \"5ms\"\n")
}

/// Statuses of `n` GETs on fresh connections.
fn statuses(p: &Proxy, host: &str, path: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| http_get(p.addr, host, path).map_or(0, |r| r.status))
        .collect()
}

#[test]
fn retry_sends_requests_past_a_server_that_refuses_connections() {
    let live = Origin::start("live");
    let dead = refused_url();
    let cfg = [
        "[http.routers.with]\nrule = \"Host(`retry.test`)\"\nservice = \"s\"\nmiddlewares = [\"again\"]\n\n",
        &router("without", "Host(`plain.test`)", "s"),
        &service("s", &[dead.clone(), live.url()], ""),
        &retry_middleware("again", 2),
    ]
    .concat();
    let p = Proxy::start("retry-refused", &cfg, &[]);
    p.wait_routed("retry.test", "/", "live");

    // Without retry, round robin sends every other request to the dead server: 502.
    let plain = statuses(&p, "plain.test", "/", 10);
    assert_eq!(plain.iter().filter(|&&s| s == 502).count(), 5, "{plain:?}");
    // With it, each of those goes on to the live one.
    let retried = statuses(&p, "retry.test", "/", 10);
    assert!(retried.iter().all(|&s| s == 200), "{retried:?}");

    // No byte reached the dead server, so even a POST with a body is retried.
    let mut c = Conn::connect(p.addr).expect("connect");
    for _ in 0..4 {
        let r = c
            .request("POST", "retry.test", "/submit", &[], b"payload")
            .expect("answer");
        assert_eq!(r.status, 200, "{}", p.ringway.logs());
    }
    let posted = live.requests_to("/submit");
    assert_eq!(posted.len(), 4);
    assert!(posted.iter().all(|r| r.body_len == 7 && r.body_complete));
}

#[test]
fn retry_repeats_idempotent_requests_only_once_bytes_reached_a_server() {
    let live = Origin::start("live");
    let resetting = Origin::start("resetting");
    let cfg = [
        "[http.routers.r]\nrule = \"Host(`idem.test`)\"\nservice = \"s\"\nmiddlewares = [\"again\"]\n\n",
        &service("s", &[resetting.url(), live.url()], ""),
        &retry_middleware("again", 3),
    ]
    .concat();
    let p = Proxy::start("retry-reset", &cfg, &[]);
    p.wait_routed("idem.test", "/", "live");
    // From now on `resetting` reads each request and resets the connection.
    resetting.reset_requests();

    // GET is idempotent: the reset server's failures are retried on the live one.
    let gets = statuses(&p, "idem.test", "/reset", 8);
    assert!(gets.iter().all(|&s| s == 200), "{gets:?}");
    assert!(
        !resetting.requests_to("/reset").is_empty(),
        "the resetting server was never tried"
    );

    // POST is not: once it may have reached the resetting server, the client gets 502.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let mut c = Conn::connect(p.addr).expect("connect");
        let r = c.request(
            "POST",
            "idem.test",
            "/reset",
            &[("Connection", "close")],
            b"x",
        );
        codes.push(r.map_or(0, |r| r.status));
    }
    let reset_posts = resetting
        .requests_to("/reset")
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(
        reset_posts > 0,
        "no POST went to the resetting server: {codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|&&s| s == 502).count(),
        reset_posts,
        "each POST that reached the resetting server failed, and only those: {codes:?}"
    );
    let live_posts = live
        .requests_to("/reset")
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        live_posts + reset_posts,
        6,
        "no POST was sent twice: {codes:?}"
    );
}

#[test]
fn retry_gives_up_after_its_attempts() {
    let cfg = [
        "[http.routers.r]\nrule = \"Host(`gone.test`)\"\nservice = \"s\"\nmiddlewares = [\"again\"]\n\n",
        &service("s", &[refused_url(), refused_url()], ""),
        &retry_middleware("again", 3),
        &router("probe", "Host(`probe.test`)", "probe"),
    ]
    .concat();
    let probe = Origin::start("probe");
    let cfg = format!("{cfg}{}", service("probe", &[probe.url()], ""));
    let p = Proxy::start("retry-exhausted", &cfg, &[]);
    p.wait_routed("probe.test", "/", "probe");
    assert_eq!(statuses(&p, "gone.test", "/", 3), vec![502, 502, 502]);
}

#[test]
fn bad_retry_and_health_check_settings_disable_their_routers_with_errors() {
    let origin = Origin::start("o");
    let cfg = [
        "[http.routers.badretry]\nrule = \"Host(`a.test`)\"\nservice = \"ok\"\nmiddlewares = [\"zero\"]\n\n",
        "[http.middlewares.zero.retry]\nattempts = 0\n\n",
        &router("badcheck", "Host(`b.test`)", "checked"),
        &service(
            "checked",
            &[origin.url()],
            "[http.services.checked.loadBalancer.healthCheck]\npath = \"no-slash\"\n",
        ),
        &router("good", "Host(`c.test`)", "ok"),
        &service("ok", &[origin.url()], ""),
    ]
    .concat();
    let p = Proxy::start("bad-settings", &cfg, &[]);
    p.wait_routed("c.test", "/", "o");
    assert_eq!(p.get("a.test", "/").status, 404);
    assert_eq!(p.get("b.test", "/").status, 404);
    let logs = p.ringway.logs();
    assert!(logs.contains("attempts must be more than 0"), "{logs}");
    assert!(
        logs.contains("path \\\"no-slash\\\"") || logs.contains("path \"no-slash\""),
        "{logs}"
    );
}

#[test]
fn health_checks_take_failing_servers_out_and_bring_them_back() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let check = "[http.services.s.loadBalancer.healthCheck]\npath = \"/health\"\n\
                 interval = \"100ms\"\ntimeout = \"1s\"\n";
    let cfg = [
        router("r", "Host(`hc.test`)", "s"),
        service("s", &[a.url(), b.url()], check),
    ]
    .concat();
    let p = Proxy::start("health", &cfg, &[]);
    p.wait_routed("hc.test", "/", "a");
    let origins = |n| -> Vec<String> {
        (0..n)
            .map(|_| p.get("hc.test", "/").origin().unwrap_or("none").to_string())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(5), || !a
            .requests_to("/health")
            .is_empty()
            && !b.requests_to("/health").is_empty()),
        "both servers are probed"
    );
    let probe = &a.requests_to("/health")[0];
    assert_eq!(probe.method, "GET");
    assert_eq!(probe.header("user-agent"), Some("ringway-healthcheck"));

    // a fails its check: within a few intervals every request goes to b.
    a.set_health(503);
    assert!(
        wait_until(Duration::from_secs(5), || origins(4)
            .iter()
            .all(|o| o == "b")),
        "a still served after failing its health check\n{}",
        p.ringway.logs()
    );
    assert!(origins(20).iter().all(|o| o == "b"));
    assert!(p.ringway.logs().contains("server is down"));

    // Both down: 503, as Traefik.
    b.set_health(500);
    assert!(
        wait_until(Duration::from_secs(5), || p.get("hc.test", "/").status
            == 503),
        "no 503 with every server down"
    );

    // a recovers: it serves again, alone.
    a.set_health(200);
    assert!(
        wait_until(Duration::from_secs(5), || origins(4)
            .iter()
            .all(|o| o == "a")),
        "a never came back"
    );
    assert!(p.ringway.logs().contains("server is up again"));
}

#[test]
fn health_check_options_are_honoured_and_state_survives_reloads() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    // A separate health port: a listener that accepts and answers nothing (timeout).
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let check = format!(
        "[http.services.s.loadBalancer.healthCheck]\npath = \"/status/418\"\nstatus = 418\n\
         hostname = \"health.internal\"\ninterval = \"100ms\"\ntimeout = \"300ms\"\n\
         [http.services.s.loadBalancer.healthCheck.headers]\nX-Check = \"yes\"\n\
         [http.services.t.loadBalancer.healthCheck]\npath = \"/\"\nport = {silent_port}\n\
         interval = \"100ms\"\ntimeout = \"200ms\"\n"
    );
    let cfg = [
        router("r", "Host(`opt.test`)", "s"),
        router("t", "Host(`silent.test`)", "t"),
        service("s", &[a.url(), b.url()], ""),
        service("t", &[b.url()], ""),
        check,
    ]
    .concat();
    let p = Proxy::start("health-options", &cfg, &[]);
    p.wait_routed("opt.test", "/", "a");
    // 418 is the expected status: both stay up; the probe carries hostname and headers.
    assert!(wait_until(Duration::from_secs(5), || a
        .requests_to("/status/418")
        .len()
        >= 2));
    let probe = &a.requests_to("/status/418")[0];
    assert_eq!(probe.header("host"), Some("health.internal"));
    assert_eq!(probe.header("x-check"), Some("yes"));
    let seen: Vec<String> = (0..6)
        .map(|_| {
            p.get("opt.test", "/")
                .origin()
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    assert!(
        seen.iter().any(|o| o == "a") && seen.iter().any(|o| o == "b"),
        "{seen:?}"
    );
    // The port option probes the silent listener: timeouts take t's only server out.
    assert!(
        wait_until(Duration::from_secs(5), || p.get("silent.test", "/").status
            == 503),
        "a server whose health port never answers stays in\n{}",
        p.ringway.logs()
    );

    // A reload that keeps the service keeps the state: t stays down at once, no 200 between.
    p.reconfigure(&format!(
        "{cfg}\n{}",
        router("extra", "Host(`extra.test`)", "s")
    ));
    p.wait_routed("extra.test", "/", "a");
    for _ in 0..10 {
        assert_eq!(p.get("silent.test", "/").status, 503);
    }
    drop(silent);
}
