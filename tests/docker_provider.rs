//! End to end: the Docker provider against a real dockerd. Containers built from a busybox
//! image serve a marker; ringway runs on the host and reaches them on their bridge network
//! (or on 127.0.0.1 for host networking). Each test sees only its own containers, through
//! `providers.docker.constraints` on a label that the harness sets.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::docker::{body, docker, status, wait_marker, DockerEnv, ORIGIN_PORT};
use support::{free_port, wait_until, Ringway, READY_TIMEOUT};

/// ringway with the Docker provider on `env`'s network, one entry point `web` (plus `extra`).
fn start(env: &DockerEnv, extra: &[String]) -> (Ringway, SocketAddr) {
    let port = free_port();
    let mut args = vec![
        format!("--entrypoints.web.address=127.0.0.1:{port}"),
        "--providers.docker".to_string(),
        format!("--providers.docker.network={}", env.network),
        // Only this test's containers: tests run in parallel against one dockerd.
        format!("--providers.docker.constraints={}", env.constraint()),
        "--dataplane.workers=2".to_string(),
        "--log.level=INFO".to_string(),
    ];
    args.extend(extra.iter().cloned());
    (
        Ringway::start(&args),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

/// How soon after `docker stop` is called (the CLI's own start-up included) the stopping
/// replica gets no more requests.
const DRAIN_DEADLINE: Duration = Duration::from_millis(200);

fn routed(r: &Ringway, addr: SocketAddr, host: &str, marker: &str, timeout: Duration) -> Duration {
    wait_marker(addr, host, marker, timeout).unwrap_or_else(|| {
        panic!(
            "Host {host} never answered {marker:?} within {timeout:?} (last: status {}, body \
             {:?})\n{}",
            status(addr, host),
            body(addr, host),
            r.logs()
        )
    })
}

#[test]
fn labels_route_by_rule_service_port_and_entry_point() {
    let env = DockerEnv::new("labels");
    let other = free_port();
    let c = env.run(
        "app",
        &[
            ("traefik.http.routers.app.rule", "Host(`app.test`)"),
            ("traefik.http.routers.app.entrypoints", "web"),
            (
                "traefik.http.services.appsvc.loadbalancer.server.port",
                "8080",
            ),
        ],
        &[],
    );
    let (r, addr) = start(
        &env,
        &[format!("--entrypoints.other.address=127.0.0.1:{other}")],
    );
    routed(&r, addr, "app.test", &c.marker, READY_TIMEOUT);
    assert_eq!(status(addr, "nothing.test"), 404);
    let other_addr = SocketAddr::from(([127, 0, 0, 1], other));
    assert_eq!(
        status(other_addr, "app.test"),
        404,
        "the router is only on entry point web"
    );
}

#[test]
fn implicit_router_and_service_from_the_container_name_and_exposed_port() {
    let env = DockerEnv::new("implicit");
    let c = env.run("plain", &[], &["--expose", "8080"]);
    let (r, addr) = start(&env, &[]);
    // defaultRule Host(`{{ normalize .Name }}`): the container name is already normal.
    routed(&r, addr, &c.name, &c.marker, READY_TIMEOUT);
}

#[test]
fn traefik_v1_labels_still_route() {
    let env = DockerEnv::new("v1");
    let c = env.run(
        "legacy",
        &[
            ("traefik.frontend.rule", "Host:v1.test,v1b.test"),
            ("traefik.port", "8080"),
        ],
        &[],
    );
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "v1b.test", &c.marker, READY_TIMEOUT);
    routed(&r, addr, "v1.test", &c.marker, Duration::from_secs(1));
    assert!(
        r.logs().contains("deprecated") && r.logs().contains(&c.name),
        "a deprecation warning naming the container\n{}",
        r.logs()
    );
}

#[test]
fn two_replicas_of_a_service_both_get_traffic() {
    let env = DockerEnv::new("replicas");
    let labels = [
        ("traefik.http.routers.scaled.rule", "Host(`scaled.test`)"),
        (
            "traefik.http.services.scaled.loadbalancer.server.port",
            "8080",
        ),
    ];
    let a = env.run("a", &labels, &[]);
    let b = env.run("b", &labels, &[]);
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "scaled.test", &a.marker, READY_TIMEOUT);
    routed(&r, addr, "scaled.test", &b.marker, Duration::from_secs(2));
}

#[test]
fn exposed_by_default_false_routes_only_enabled_containers() {
    let env = DockerEnv::new("exposed");
    let on = env.run(
        "on",
        &[
            ("traefik.enable", "true"),
            ("traefik.http.routers.on.rule", "Host(`on.test`)"),
            ("traefik.http.services.on.loadbalancer.server.port", "8080"),
        ],
        &[],
    );
    let _off = env.run(
        "off",
        &[
            ("traefik.http.routers.off.rule", "Host(`off.test`)"),
            ("traefik.http.services.off.loadbalancer.server.port", "8080"),
        ],
        &[],
    );
    let (r, addr) = start(
        &env,
        &["--providers.docker.exposedByDefault=false".to_string()],
    );
    routed(&r, addr, "on.test", &on.marker, READY_TIMEOUT);
    assert_eq!(status(addr, "off.test"), 404, "{}", r.logs());
}

#[test]
fn a_bad_label_disables_only_its_container() {
    let env = DockerEnv::new("badlabel");
    let bad = env.run(
        "bad",
        &[
            ("traefik.http.routers.bad.rule", "Host(`bad.test`)"),
            ("traefik.http.routers.bad.priority", "abc"),
            ("traefik.http.services.bad.loadbalancer.server.port", "8080"),
        ],
        &[],
    );
    let good = env.run(
        "good",
        &[
            ("traefik.http.routers.good.rule", "Host(`good.test`)"),
            (
                "traefik.http.services.good.loadbalancer.server.port",
                "8080",
            ),
        ],
        &[],
    );
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "good.test", &good.marker, READY_TIMEOUT);
    assert_eq!(status(addr, "bad.test"), 404);
    let logs_ok = wait_until(Duration::from_secs(2), || {
        let logs = r.logs();
        logs.contains(&bad.name) && logs.contains("traefik.http.routers.bad.priority")
    });
    assert!(
        logs_ok,
        "an error naming the container and the label\n{}",
        r.logs()
    );
}

#[test]
fn host_network_container_is_reached_on_localhost() {
    let env = DockerEnv::new("hostnet");
    let port = free_port();
    let port_label = port.to_string();
    let c = env.run_with(
        "host",
        &[
            ("traefik.http.routers.h.rule", "Host(`host.test`)"),
            (
                "traefik.http.services.h.loadbalancer.server.port",
                &port_label,
            ),
        ],
        &["--network", "host"],
        false,
        port,
    );
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "host.test", &c.marker, READY_TIMEOUT);
}

#[test]
fn a_started_container_is_routed_within_a_second() {
    let env = DockerEnv::new("start");
    let first = env.run(
        "first",
        &[("traefik.http.routers.first.rule", "Host(`first.test`)")],
        &["--expose", "8080"],
    );
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "first.test", &first.marker, READY_TIMEOUT);
    let late = env.run(
        "late",
        &[("traefik.http.routers.late.rule", "Host(`late.test`)")],
        &["--expose", "8080"],
    );
    let took = routed(&r, addr, "late.test", &late.marker, Duration::from_secs(1));
    eprintln!("started container routed {took:?} after `docker run` returned");
}

#[test]
fn docker_stop_removes_the_container_before_it_stops() {
    let env = DockerEnv::new("stop");
    let labels = [
        ("traefik.http.routers.drain.rule", "Host(`drain.test`)"),
        (
            "traefik.http.services.drain.loadbalancer.server.port",
            "8080",
        ),
    ];
    let stays = env.run("stays", &labels, &[]);
    let leaves = env.run_with("leaves", &labels, &[], true, ORIGIN_PORT);
    let (r, addr) = start(&env, &[]);
    routed(&r, addr, "drain.test", &stays.marker, READY_TIMEOUT);
    routed(
        &r,
        addr,
        "drain.test",
        &leaves.marker,
        Duration::from_secs(2),
    );

    let name = leaves.name.clone();
    let t0 = Instant::now();
    let stopper = std::thread::spawn(move || docker(&["stop", "--time", "5", &name]));
    // For 600 ms, requests without pause: note when the stopping replica answered last.
    let mut last_hit: Option<Duration> = None;
    let mut after = 0;
    let mut other = Vec::new();
    while t0.elapsed() < Duration::from_millis(600) {
        match body(addr, "drain.test") {
            Some(b) if b == leaves.marker => last_hit = Some(t0.elapsed()),
            Some(b) if b == stays.marker => after += 1,
            got => other.push(got),
        }
    }
    let took = last_hit.unwrap_or_default();
    assert!(
        other.is_empty(),
        "every request is answered by a replica during the drain: {other:?}"
    );
    assert!(
        took < DRAIN_DEADLINE,
        "the stopping container still got traffic {took:?} after `docker stop` (limit \
         {DRAIN_DEADLINE:?})\n{}",
        r.logs()
    );
    assert!(
        after > 10,
        "too few requests during the drain window ({after})"
    );
    assert!(
        env.running(&leaves),
        "the container must still be running (it ignores SIGTERM for 5 s): the drain has to \
         come from the stop event, not from the container dying"
    );
    eprintln!("stopping container drained {took:?} after `docker stop` was called");
    stopper.join().expect("docker stop thread");
    assert!(!env.running(&leaves));
    assert_eq!(
        body(addr, "drain.test").as_deref(),
        Some(stays.marker.as_str())
    );
    // Started again: it comes back.
    docker(&["start", &leaves.name]);
    routed(
        &r,
        addr,
        "drain.test",
        &leaves.marker,
        Duration::from_secs(2),
    );
}

#[test]
fn unreachable_docker_does_not_hold_back_other_providers() {
    let origin = support::Origin::start("files");
    let dynamic = format!(
        "{}{}",
        support::router("r", "Host(`files.test`)", "s"),
        support::lb_service("s", &[&origin])
    );
    let p = support::Proxy::start(
        "docker-down",
        &dynamic,
        &["--providers.docker.endpoint=unix:///nonexistent/docker.sock"],
    );
    support::wait_routed(
        p.addr,
        &p.ringway,
        READY_TIMEOUT,
        "files.test",
        "/",
        "files",
    );
    let logged = wait_until(Duration::from_secs(2), || {
        p.ringway.logs().contains("/nonexistent/docker.sock")
    });
    assert!(
        logged,
        "the unreachable endpoint is logged\n{}",
        p.ringway.logs()
    );
}
