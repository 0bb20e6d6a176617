//! End to end: deploys under constant load drop no request. A real dockerd runs the
//! containers (busybox httpd, see `support::docker`); ringway follows them with the Docker
//! provider; client threads send `GET /` back to back on keep-alive connections the whole time
//! and count every failure.
//!
//! - blue/green, as compose does it with a `stop_grace_period`: the new container starts,
//!   then the old one gets SIGTERM and keeps serving until it is killed a second later
//!   (`docker stop --time 1`); ten times in a row.
//! - abrupt: one of two replicas is SIGKILLed (no grace at all) and replaced; ten times. The
//!   router's `retry` middleware sends the requests that were on their way to it to the other;
//!   a response the process had begun to send when it died is cut (no proxy can retry it),
//!   so there the assertion is "no error status, no more cuts than requests in flight".
//!
//! Each run prints requests sent, failures, and how long routing took to follow each change
//! (first answer from a new container after `docker run` returned; last answer from an old one
//! after `docker stop`/`kill` was called). Those are measurements, not assertions: the
//! assertion is zero failed requests.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::docker::{docker, wait_marker, DockerEnv, ORIGIN_PORT};
use support::load::{summary, Load};
use support::{free_port, wait_until, Ringway, READY_TIMEOUT};

const ROUNDS: usize = 10;
/// Load clients, each on its own keep-alive connection.
const CLIENTS: usize = 4;
const HOST: &str = "zdt.test";

fn labels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("traefik.http.routers.app.rule", "Host(`zdt.test`)"),
        ("traefik.http.routers.app.service", "app"),
        ("traefik.http.routers.app.middlewares", "again"),
        ("traefik.http.services.app.loadbalancer.server.port", "8080"),
        ("traefik.http.middlewares.again.retry.attempts", "3"),
        (
            "traefik.http.middlewares.again.retry.initialinterval",
            "10ms",
        ),
    ]
}

/// The engine's container events for one test (`docker events`), with their own timestamps:
/// what "from Docker event to routing change" is measured from.
struct Events {
    child: std::process::Child,
    seen: Arc<Mutex<Vec<(String, String, SystemTime)>>>,
}

impl Events {
    fn watch(env: &DockerEnv) -> Events {
        let mut child = Command::new("docker")
            .args([
                "events",
                "--filter",
                "type=container",
                "--filter",
                &format!("label=ringway.test={}", env.constraint_value()),
                "--format",
                "{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker events");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut parts = line.splitn(3, ' ');
                let (Some(nanos), Some(action), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let Ok(nanos) = nanos.parse::<u64>() else {
                    continue;
                };
                let at = UNIX_EPOCH + Duration::from_nanos(nanos);
                s.lock()
                    .expect("lock")
                    .push((name.to_string(), action.to_string(), at));
            }
        });
        // `docker events` subscribes asynchronously: give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        Events { child, seen }
    }

    /// When the engine reported `action` for container `name`.
    fn time_of(&self, name: &str, action: &str) -> Option<SystemTime> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .seen
                .lock()
                .expect("lock")
                .iter()
                .find(|(n, a, _)| n == name && a.split(':').next() == Some(action))
                .map(|(_, _, t)| *t);
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Time from the engine's `action` event for `old` until its last answer, and from the `start`
/// event of `new` until its first answer.
fn event_delays(
    events: &Events,
    load: &Load,
    old: &support::docker::TestContainer,
    action: &str,
    new: &support::docker::TestContainer,
) -> (Option<Duration>, Option<Duration>) {
    let stop = events.time_of(&old.name, action).and_then(|t| {
        load.seen_wall(&old.marker)
            .map(|(_, last)| last.duration_since(t).unwrap_or(Duration::ZERO))
    });
    let start = events.time_of(&new.name, "start").and_then(|t| {
        load.seen_wall(&new.marker)
            .and_then(|(first, _)| first.duration_since(t).ok())
    });
    (stop, start)
}

fn start(env: &DockerEnv) -> (Ringway, SocketAddr) {
    let port = free_port();
    let args = [
        format!("--entrypoints.web.address=127.0.0.1:{port}"),
        "--providers.docker".to_string(),
        format!("--providers.docker.network={}", env.network),
        format!("--providers.docker.constraints={}", env.constraint()),
        "--dataplane.workers=2".to_string(),
        "--log.level=INFO".to_string(),
    ];
    (
        Ringway::start(&args),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

/// Waits until the load has been answered by `marker`; the time since `since`.
fn routed_after(load: &Load, marker: &str, since: Instant, r: &Ringway) -> Duration {
    assert!(
        wait_until(Duration::from_secs(10), || load.count(marker) > 0),
        "the new container {marker} never got traffic\n{}",
        r.logs()
    );
    since.elapsed()
}

/// The time from `since` to the last answer from `marker` (zero if none came after).
fn drained_after(load: &Load, marker: &str, since: SystemTime) -> Duration {
    load.seen_wall(marker)
        .and_then(|(_, last)| last.duration_since(since).ok())
        .unwrap_or(Duration::ZERO)
}

#[test]
fn blue_green_swaps_with_a_grace_period_drop_no_request() {
    let env = DockerEnv::new("zdt-swap");
    let labels = labels();
    // The containers ignore SIGTERM: `docker stop --time 1` leaves each a second of grace.
    let mut current = env.run_with("v0", &labels, &[], true, ORIGIN_PORT);
    let (r, addr) = start(&env);
    wait_marker(addr, HOST, &current.marker, READY_TIMEOUT)
        .unwrap_or_else(|| panic!("never routed to the first container\n{}", r.logs()));

    let events = Events::watch(&env);
    let load = Load::start(addr, HOST, CLIENTS, Duration::from_millis(1));
    let (mut starts, mut drains) = (Vec::new(), Vec::new());
    let (mut ev_starts, mut ev_stops) = (Vec::new(), Vec::new());
    for i in 1..=ROUNDS {
        let next = env.run_with(&format!("v{i}"), &labels, &[], true, ORIGIN_PORT);
        let started = Instant::now();
        // The new one answers first, then the old one goes: only then is it stopped.
        starts.push(routed_after(&load, &next.marker, started, &r));
        let stopping = SystemTime::now();
        docker(&["stop", "--time", "1", &current.name]);
        drains.push(drained_after(&load, &current.marker, stopping));
        let (stop, start) = event_delays(&events, &load, &current, "kill", &next);
        ev_stops.extend(stop);
        ev_starts.extend(start);
        docker(&["rm", &current.name]);
        current = next;
    }
    let report = load.stop();
    eprintln!(
        "blue/green x{ROUNDS}: {} requests, {} failed; {}; {}; {}; {}",
        report.sent,
        report.failed,
        summary("start event -> first answer", ev_starts),
        summary("kill event -> last answer from the old one", ev_stops),
        summary("docker run -> first answer", starts),
        summary("docker stop -> last answer from the old one", drains)
    );
    assert!(report.sent > 100, "the load did not run: {report:?}");
    assert_eq!(
        report.failed,
        0,
        "requests failed during the swaps: {:?}\n{}",
        report.failures,
        r.logs()
    );
}

#[test]
fn replicas_killed_without_grace_drop_no_request_with_retry() {
    let env = DockerEnv::new("zdt-kill");
    let labels = labels();
    let mut a = env.run("a0", &labels, &[]);
    let b = env.run("b", &labels, &[]);
    let (r, addr) = start(&env);
    for c in [&a, &b] {
        wait_marker(addr, HOST, &c.marker, READY_TIMEOUT)
            .unwrap_or_else(|| panic!("never routed to {}\n{}", c.name, r.logs()));
    }
    let events = Events::watch(&env);
    let load = Load::start(addr, HOST, CLIENTS, Duration::from_millis(1));
    let (mut starts, mut drains) = (Vec::new(), Vec::new());
    let (mut ev_starts, mut ev_stops) = (Vec::new(), Vec::new());
    for i in 1..=ROUNDS {
        assert!(
            wait_until(Duration::from_secs(5), || load.count(&a.marker) > 0),
            "{} gets no traffic",
            a.name
        );
        let killed = SystemTime::now();
        docker(&["kill", &a.name]);
        drains.push(drained_after(&load, &a.marker, killed));
        docker(&["rm", "-f", &a.name]);
        let next = env.run(&format!("a{i}"), &labels, &[]);
        let started = Instant::now();
        starts.push(routed_after(&load, &next.marker, started, &r));
        let (stop, start) = event_delays(&events, &load, &a, "kill", &next);
        ev_stops.extend(stop);
        ev_starts.extend(start);
        a = next;
    }
    let report = load.stop();
    eprintln!(
        "kill -9 x{ROUNDS}: {} requests, {} failed; {}; {}; {}; {}",
        report.sent,
        report.failed,
        summary("start event -> first answer", ev_starts),
        summary("kill event -> last answer from the killed one", ev_stops),
        summary("docker run -> first answer", starts),
        summary("docker kill -> last answer from the killed one", drains)
    );
    assert!(report.sent > 100, "the load did not run: {report:?}");
    // Every request that had not started to be answered was retried on the other replica: no
    // error status at all. A response the killed process had begun to send cannot be retried
    // (its head is already with the client): at most one such cut per client per kill.
    let statuses: Vec<&String> = report
        .failures
        .iter()
        .filter(|f| f.starts_with("status"))
        .collect();
    assert!(
        statuses.is_empty(),
        "requests answered with an error around the kills: {statuses:?}\n{}",
        r.logs()
    );
    assert!(
        report.failed <= (CLIENTS * ROUNDS) as u64,
        "more requests cut than were in flight: {:?}",
        report.failures
    );
}
