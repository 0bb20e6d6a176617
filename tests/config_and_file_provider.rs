//! End to end: Traefik static configuration (flags and files), `ringway check`, and the file
//! provider (file, directory, watch, bad input keeps the last good configuration).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{
    free_port, http_get, lb_service, router, wait_for_every, wait_routed, write_dynamic, Origin,
    Proxy, Ringway, TestDir, READY_TIMEOUT,
};

/// How long a change to a watched file may take to apply (a generous deadline; the target
/// is well under 100 ms and the measured delays are printed).
const CHANGE_DEADLINE: Duration = Duration::from_secs(5);

/// Keeps the provider throttle short so several changes in a row apply promptly.
const THROTTLE: &str = "--providers.providersThrottleDuration=10ms";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn one_route(host: &str, origin: &Origin) -> String {
    [
        router("r", &format!("Host(`{host}`)"), "s"),
        lb_service("s", &[origin]),
    ]
    .concat()
}

fn dynamic_yaml(host: &str, origin: &Origin) -> String {
    format!(
        "http:\n  routers:\n    r:\n      rule: \"Host(`{host}`)\"\n      service: s\n\
         \x20 services:\n    s:\n      loadBalancer:\n        servers:\n\
         \x20         - url: \"{}\"\n",
        origin.url()
    )
}

/// Waits until `host` is routed to `origin` or the deadline passes; `Some(delay)` if it was.
fn live_within(addr: SocketAddr, host: &str, origin: &str, since: Instant) -> Option<Duration> {
    wait_for_every(
        CHANGE_DEADLINE,
        Duration::from_millis(5),
        || match http_get(addr, host, "/") {
            Ok(r) if r.status == 200 && r.origin() == Some(origin) => Some(since.elapsed()),
            _ => None,
        },
    )
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

#[test]
fn static_configuration_from_a_toml_file() {
    let o = Origin::start("toml");
    let dir = TestDir::new("static-toml");
    let dynamic = dir.join("dynamic.toml");
    write_dynamic(&dynamic, &one_route("toml.test", &o));
    let port = free_port();
    let static_file = dir.join("traefik.toml");
    write_dynamic(
        &static_file,
        &format!(
            "[entryPoints.web]\naddress = \"127.0.0.1:{port}\"\n\n\
             [providers.file]\nfilename = \"{}\"\nwatch = true\n\n[log]\nlevel = \"DEBUG\"\n",
            dynamic.display()
        ),
    );
    let rw = Ringway::start_in(
        dir.path(),
        &[format!("--configfile={}", static_file.display())],
    );
    wait_routed(addr(port), &rw, READY_TIMEOUT, "toml.test", "/", "toml");
}

#[test]
fn static_configuration_from_a_yaml_file_with_a_yaml_dynamic_file() {
    let o = Origin::start("yaml");
    let dir = TestDir::new("static-yaml");
    let dynamic = dir.join("dynamic.yaml");
    write_dynamic(&dynamic, &dynamic_yaml("yaml.test", &o));
    let port = free_port();
    let static_file = dir.join("traefik.yaml");
    write_dynamic(
        &static_file,
        &format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\n\
             providers:\n  file:\n    filename: \"{}\"\n    watch: true\n\
             log:\n  level: DEBUG\n",
            dynamic.display()
        ),
    );
    let rw = Ringway::start_in(
        dir.path(),
        &[format!("--configfile={}", static_file.display())],
    );
    wait_routed(addr(port), &rw, READY_TIMEOUT, "yaml.test", "/", "yaml");
}

#[test]
fn static_flag_keys_are_case_insensitive() {
    let o = Origin::start("ci");
    let dir = TestDir::new("flags-case");
    let dynamic = dir.join("dynamic.toml");
    write_dynamic(&dynamic, &one_route("ci.test", &o));
    let port = free_port();
    let rw = Ringway::start_in(
        dir.path(),
        &[
            format!("--entryPoints.web.address=127.0.0.1:{port}"),
            format!("--Providers.File.FileName={}", dynamic.display()),
            "--DataPlane.Workers=1".to_string(),
            "--LOG.LEVEL=DEBUG".to_string(),
        ],
    );
    wait_routed(addr(port), &rw, READY_TIMEOUT, "ci.test", "/", "ci");
}

/// Starts ringway with `bad` among valid flags and expects a non-zero exit naming `key`.
fn assert_rejected_naming(bad: &str, key: &str) {
    let o = Origin::start("unused");
    let dir = TestDir::new("bad-static");
    let dynamic = dir.join("dynamic.toml");
    write_dynamic(&dynamic, &one_route("x.test", &o));
    let port = free_port();
    let rw = Ringway::start_in(
        dir.path(),
        &[
            format!("--entrypoints.web.address=127.0.0.1:{port}"),
            format!("--providers.file.filename={}", dynamic.display()),
            bad.to_string(),
        ],
    );
    let status = rw
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("ringway kept running with {bad}\n{}", rw.logs()));
    assert!(!status.success(), "ringway exited 0 with {bad}");
    assert!(
        lower(&rw.stderr()).contains(key),
        "stderr does not name {key}\n{}",
        rw.logs()
    );
}

#[test]
fn unknown_static_key_is_rejected_by_name() {
    assert_rejected_naming(
        "--entrypoints.web.adress=127.0.0.1:1",
        "entrypoints.web.adress",
    );
}

#[test]
fn bad_duration_value_is_rejected_by_key() {
    assert_rejected_naming(
        "--entrypoints.web.transport.respondingTimeouts.readTimeout=abc",
        "entrypoints.web.transport.respondingtimeouts.readtimeout",
    );
}

fn check_args(port: u16, dynamic: &Path) -> Vec<String> {
    vec![
        "check".to_string(),
        format!("--entrypoints.web.address=127.0.0.1:{port}"),
        format!("--providers.file.filename={}", dynamic.display()),
    ]
}

#[test]
fn check_accepts_a_valid_configuration() {
    let o = Origin::start("unused");
    let dir = TestDir::new("check-ok");
    let dynamic = dir.join("dynamic.toml");
    write_dynamic(&dynamic, &one_route("x.test", &o));
    let (status, out, err) =
        Ringway::run(&check_args(free_port(), &dynamic), Duration::from_secs(20));
    assert!(
        status.success(),
        "check failed on a valid config ({status})\nstdout:\n{out}\nstderr:\n{err}"
    );
}

#[test]
fn check_reports_every_error_with_its_location() {
    let o = Origin::start("unused");
    let dir = TestDir::new("check-bad");
    let dynamic = dir.join("broken-routes.toml");
    let cfg = [
        router("fine", "Host(`fine.test`)", "s"),
        router("orphan", "Host(`orphan.test`)", "missing-svc"),
        router("badrule", "Host(`bad.test`", "s"),
        lb_service("s", &[&o]),
    ]
    .concat();
    write_dynamic(&dynamic, &cfg);
    let (status, out, err) =
        Ringway::run(&check_args(free_port(), &dynamic), Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(1),
        "check exit status\nstdout:\n{out}\nstderr:\n{err}"
    );
    for needle in ["orphan", "missing-svc", "badrule", "broken-routes.toml"] {
        assert!(
            err.contains(needle),
            "stderr does not mention {needle}\nstderr:\n{err}"
        );
    }
}

#[test]
fn check_rejects_an_unknown_static_key() {
    let o = Origin::start("unused");
    let dir = TestDir::new("check-static");
    let dynamic = dir.join("dynamic.toml");
    write_dynamic(&dynamic, &one_route("x.test", &o));
    let mut args = check_args(free_port(), &dynamic);
    args.push("--entrypoints.web.adress=127.0.0.1:1".to_string());
    let (status, out, err) = Ringway::run(&args, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        lower(&err).contains("entrypoints.web.adress"),
        "stderr:\n{err}"
    );
}

#[test]
fn watched_file_changes_apply_promptly() {
    let o = Origin::start("w");
    let routes = |n: usize| -> String {
        let mut cfg: String = (0..=n)
            .map(|i| router(&format!("w{i}"), &format!("Host(`w{i}.test`)"), "s"))
            .collect();
        cfg.push_str(&lb_service("s", &[&o]));
        cfg
    };
    let p = Proxy::start("watch", &routes(0), &[THROTTLE]);
    p.wait_routed("w0.test", "/", "w");

    let mut delays = Vec::new();
    for i in 1..=10 {
        let host = format!("w{i}.test");
        let written = Instant::now();
        p.reconfigure(&routes(i));
        let delay = live_within(p.addr, &host, "w", written).unwrap_or_else(|| {
            panic!(
                "change {i} (new router {host}) not live within {CHANGE_DEADLINE:?}\n{}",
                p.ringway.logs()
            )
        });
        delays.push(delay);
        let prev = format!("w{}.test", i - 1);
        let r = p.get(&prev, "/");
        assert_eq!(r.status, 200, "router {prev} lost after change {i}");
    }
    delays.sort();
    println!(
        "file watch: rename to first routed request over 10 changes: min {:?}, median {:?}, \
         max {:?}",
        delays[0], delays[5], delays[9]
    );
}

#[test]
fn directory_provider_merges_files_and_watches_new_ones() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let dir = TestDir::new("directory");
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).expect("create conf.d");
    write_dynamic(
        &conf.join("a.toml"),
        &[
            router("ra", "Host(`a.test`)", "sa"),
            lb_service("sa", &[&a]),
        ]
        .concat(),
    );
    write_dynamic(
        &conf.join("b.yaml"),
        &format!(
            "http:\n  routers:\n    rb:\n      rule: \"Host(`b.test`)\"\n      service: sb\n\
             \x20 services:\n    sb:\n      loadBalancer:\n        servers:\n\
             \x20         - url: \"{}\"\n",
            b.url()
        ),
    );
    // A router in one file using a service defined in another.
    write_dynamic(&conf.join("c.toml"), &router("rc", "Host(`c.test`)", "sa"));
    let port = free_port();
    let rw = Ringway::start_in(
        dir.path(),
        &[
            format!("--entrypoints.web.address=127.0.0.1:{port}"),
            format!("--providers.file.directory={}", conf.display()),
            "--dataplane.workers=2".to_string(),
            "--log.level=DEBUG".to_string(),
            THROTTLE.to_string(),
        ],
    );
    wait_routed(addr(port), &rw, READY_TIMEOUT, "a.test", "/", "a");
    wait_routed(addr(port), &rw, READY_TIMEOUT, "b.test", "/", "b");
    wait_routed(addr(port), &rw, READY_TIMEOUT, "c.test", "/", "a");

    let written = Instant::now();
    write_dynamic(
        &conf.join("d.yml"),
        "http:\n  routers:\n    rd:\n      rule: \"Host(`d.test`)\"\n      service: sb\n",
    );
    let delay = live_within(addr(port), "d.test", "b", written)
        .unwrap_or_else(|| panic!("new file d.yml not applied\n{}", rw.logs()));
    println!("directory provider: new file live after {delay:?}");
    for (host, origin) in [("a.test", "a"), ("b.test", "b"), ("c.test", "a")] {
        let r = http_get(addr(port), host, "/").expect("GET");
        assert_eq!(
            (r.status, r.origin()),
            (200, Some(origin)),
            "{host} after d.yml"
        );
    }
}

#[test]
fn unparsable_file_keeps_the_last_good_configuration() {
    let a = Origin::start("a");
    let p = Proxy::start("unparsable", &one_route("a.test", &a), &[THROTTLE]);
    p.wait_routed("a.test", "/", "a");

    p.reconfigure("[http.routers.r\nrule = \"Host(`a.test`)\n this is not toml ]]]\n");
    // Observe for well over the time a change takes to apply: every request still routed.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut n = 0;
    while Instant::now() < until {
        let r = p.get("a.test", "/");
        assert_eq!(
            (r.status, r.origin()),
            (200, Some("a")),
            "request {n} after the unparsable write\n{}",
            p.ringway.logs()
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }

    let fixed = [
        router("r", "Host(`a.test`)", "s"),
        router("r2", "Host(`b.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let written = Instant::now();
    p.reconfigure(&fixed);
    live_within(p.addr, "b.test", "a", written).unwrap_or_else(|| {
        panic!(
            "valid version after the unparsable one not applied\n{}",
            p.ringway.logs()
        )
    });
    assert_eq!(p.get("a.test", "/").status, 200);
}

#[test]
fn router_with_an_invalid_rule_is_disabled_and_others_keep_working() {
    let a = Origin::start("a");
    let cfg = [
        router("good", "Host(`good.test`)", "s"),
        router("unclosed", "Host(`bad.test`", "s"),
        router("unknown-matcher", "Hots(`bad2.test`)", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start("badrule", &cfg, &[THROTTLE]);
    p.wait_routed("good.test", "/", "a");
    assert_eq!(p.get("bad.test", "/").status, 404);
    assert_eq!(p.get("bad2.test", "/").status, 404);

    // The same on a reload: the new good router applies, the new bad one does not.
    let cfg2 = [
        router("good", "Host(`good.test`)", "s"),
        router("good2", "Host(`good2.test`)", "s"),
        router("bad3", "Host(`bad3.test`) &&", "s"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let written = Instant::now();
    p.reconfigure(&cfg2);
    live_within(p.addr, "good2.test", "a", written).unwrap_or_else(|| {
        panic!(
            "a reload with one invalid rule was not applied for the valid routers\n{}",
            p.ringway.logs()
        )
    });
    assert_eq!(p.get("good.test", "/").status, 200);
    assert_eq!(p.get("bad3.test", "/").status, 404);
}

#[test]
fn router_with_a_missing_service_is_disabled_and_others_keep_working() {
    let a = Origin::start("a");
    let cfg = [
        router("good", "Host(`good.test`)", "s"),
        router("orphan", "Host(`orphan.test`)", "nope"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let p = Proxy::start("orphan", &cfg, &[THROTTLE]);
    p.wait_routed("good.test", "/", "a");
    assert_eq!(p.get("orphan.test", "/").status, 404);

    let cfg2 = [
        router("good", "Host(`good.test`)", "s"),
        router("good2", "Host(`good2.test`)", "s"),
        router("orphan2", "Host(`orphan2.test`)", "nope2"),
        lb_service("s", &[&a]),
    ]
    .concat();
    let written = Instant::now();
    p.reconfigure(&cfg2);
    live_within(p.addr, "good2.test", "a", written).unwrap_or_else(|| {
        panic!(
            "a reload with a missing service was not applied for the valid routers\n{}",
            p.ringway.logs()
        )
    });
    assert_eq!(p.get("good.test", "/").status, 200);
    assert_eq!(p.get("orphan2.test", "/").status, 404);
}

/// The last `reparsed_in_part=N` the file provider logged (files reparsed in part so far).
fn reparsed_in_part(logs: &str) -> usize {
    logs.lines()
        .rev()
        .find_map(|l| l.split("reparsed_in_part=").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0)
}

/// A file of 100 routers laid out as Traefik's documentation does (routers, then services),
/// rewritten in place: a router re-pointed, a router and its service added far apart, a
/// router removed. Each rewrite is reparsed only where it changed (the provider says so in its
/// debug log) and routes as a fresh start would; a rewrite that is not confined to items
/// (a section of no item added) is parsed whole and routes too.
#[test]
fn a_large_file_rewritten_in_places_routes_each_change() {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let routers = |extra: &str, service_of_50: &str, without: Option<usize>| -> String {
        let mut cfg = String::new();
        for i in 0..100 {
            if Some(i) == without {
                continue;
            }
            let service = if i == 50 { service_of_50 } else { "sa" };
            cfg.push_str(&router(
                &format!("r{i}"),
                &format!("Host(`r{i}.test`)"),
                service,
            ));
            cfg.push('\n');
            if i == 0 {
                cfg.push_str(extra);
            }
        }
        cfg
    };
    let services = |with_c: bool| -> String {
        let mut cfg = lb_service("sa", &[&a]) + "\n" + &lb_service("sb", &[&b]);
        if with_c {
            cfg.push('\n');
            cfg.push_str(&lb_service("sc", &[&c]));
        }
        cfg
    };
    let p = Proxy::start(
        "in-place",
        &(routers("", "sa", None) + &services(false)),
        &[THROTTLE],
    );
    p.wait_routed("r50.test", "/", "a");
    let added = router("new", "Host(`new.test`)", "sc") + "\n";
    // What each rewrite is, what shows it applied (a host answered by an origin, or 404),
    // and the files reparsed in part so far.
    let steps: [(&str, String, &str, Option<&str>, usize); 4] = [
        (
            "r50 re-pointed",
            routers("", "sb", None) + &services(false),
            "r50.test",
            Some("b"),
            1,
        ),
        (
            "a router and its service added apart",
            routers(&added, "sb", None) + &services(true),
            "new.test",
            Some("c"),
            2,
        ),
        (
            "r10 removed",
            routers(&added, "sb", Some(10)) + &services(true),
            "r10.test",
            None,
            3,
        ),
        (
            "a section of no item added",
            "[http.routers]\n".to_string() + &routers(&added, "sa", Some(10)) + &services(true),
            "r50.test",
            Some("a"),
            3,
        ),
    ];
    for (what, text, host, origin, reparsed) in steps {
        p.reconfigure(&text);
        wait_for_every(CHANGE_DEADLINE, Duration::from_millis(5), || {
            let r = http_get(p.addr, host, "/").ok()?;
            match origin {
                Some(o) => (r.status == 200 && r.origin() == Some(o)).then_some(()),
                None => (r.status == 404).then_some(()),
            }
        })
        .unwrap_or_else(|| panic!("{what}: not applied\n{}", p.ringway.logs()));
        assert_eq!(p.get("r99.test", "/").origin(), Some("a"), "{what}");
        assert_eq!(p.get("r11.test", "/").origin(), Some("a"), "{what}");
        assert_eq!(reparsed_in_part(&p.ringway.logs()), reparsed, "{what}");
    }
}
