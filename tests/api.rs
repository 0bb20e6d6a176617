//! End to end: the API (`--api.*`) and its JSON shapes against fixtures written from Traefik's
//! documented examples, pagination and filters; `/metrics` scraped and parsed after known
//! traffic (counts must match exactly); the internal services routed by ordinary routers; and
//! the dashboard in a real browser (Debian's chromium driven by playwright-core).

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{free_port, http_get, lb_service, router, wait_for, Origin, Proxy, Response};

const TRAEFIK_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api");

fn get(addr: SocketAddr, path: &str) -> Response {
    http_get(addr, "localhost", path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

fn fixture(name: &str) -> Value {
    let path = Path::new(TRAEFIK_FIXTURES).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Prometheus' text format: `name{labels}` (labels sorted) → value.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    parse_metrics(&r.text())
}

fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("closing brace");
                let mut pairs: Vec<&str> = split_labels(labels);
                pairs.sort();
                format!("{name}{{{}}}", pairs.join(","))
            }
        };
        assert!(out.insert(key, value).is_none(), "series twice: {line}");
    }
    out
}

/// `a="x",b="y,z"` → [`a="x"`, `b="y,z"`] (commas inside quotes kept).
fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn value(m: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(&key(name, labels)).copied().unwrap_or(0.0)
}

fn send(addr: SocketAddr, method: &str, host: &str, n: usize) {
    for _ in 0..n {
        let reply = support::raw_request(
            addr,
            format!("{method} /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(reply.starts_with("HTTP/1.1 "), "{reply}");
    }
}

#[test]
fn metrics_count_known_traffic_exactly_with_traefiks_names_and_labels() {
    let origin = Origin::start("o");
    let traefik_port = free_port();
    let dir = support::TestDir::new("metrics-cert");
    let (cert, key_file) = (dir.join("c.pem"), dir.join("c.key"));
    let not_after = write_cert(&cert, &key_file);
    let config = format!(
        "{}{}{}\
         [http.services.dead.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:1\" }}]\n\
         [http.services.dead.loadBalancer.healthCheck]\npath = \"/health\"\ninterval = \"100ms\"\n\
         [http.routers.flaky]\nrule = \"Host(`flaky.test`)\"\nservice = \"gone\"\nmiddlewares = [\"again\"]\n\
         [http.middlewares.again.retry]\nattempts = 3\ninitialInterval = \"1ms\"\n\
         [http.services.gone.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:1\" }}]\n\
         [[tls.certificates]]\ncertFile = \"{}\"\nkeyFile = \"{}\"\n",
        router("app", "Host(`app.test`)", "app"),
        router("dead", "Host(`dead.test`)", "dead"),
        lb_service("app", &[&origin]),
        cert.display(),
        key_file.display(),
    );
    let p = Proxy::start(
        "metrics",
        &config,
        &[
            "--metrics.prometheus=true",
            "--metrics.prometheus.addrouterslabels=true",
            "--metrics.prometheus.buckets=0.05,0.5,5",
            &format!("--entrypoints.traefik.address=127.0.0.1:{traefik_port}"),
        ],
    );
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], traefik_port));
    p.wait_routed("app.test", "/", "o");
    // The dead server is found down by its health check.
    let down = key(
        "traefik_service_server_up",
        &[("service", "dead@file"), ("url", "http://127.0.0.1:1")],
    );
    let m = wait_for(Duration::from_secs(10), || {
        let m = scrape(metrics_addr);
        (m.get(&down) == Some(&0.0)).then_some(m)
    })
    .unwrap_or_else(|| panic!("dead server never reported down\n{}", p.ringway.logs()));
    let up = key(
        "traefik_service_server_up",
        &[("service", "app@file"), ("url", &origin.url())],
    );
    assert_eq!(m.get(&up), Some(&1.0), "{m:#?}");
    assert!(m["traefik_config_reloads_total"] >= 1.0);
    assert!(m["traefik_config_last_reload_success"] > 1.7e9);
    assert_eq!(
        m.get(&key(
            "traefik_tls_certs_not_after",
            &[
                ("cn", "metrics.test"),
                ("sans", "metrics.test,alt.metrics.test"),
                ("serial", "2a")
            ]
        )),
        Some(&(not_after as f64)),
        "{m:#?}"
    );

    // Known traffic, on top of what the readiness probe sent (counted once the workers'
    // counters, shipped every second, have settled).
    let before = settled(metrics_addr);
    send(p.addr, "GET", "app.test", 7);
    send(p.addr, "POST", "app.test", 2);
    send(p.addr, "BREW", "app.test", 1);
    send(p.addr, "GET", "nowhere.test", 3);
    send(p.addr, "GET", "dead.test", 4);
    send(p.addr, "GET", "flaky.test", 2);
    let ep = |code: &'static str, method: &'static str| {
        vec![
            ("code", code),
            ("method", method),
            ("protocol", "http"),
            ("entrypoint", "web"),
        ]
    };
    let expected: Vec<(String, f64)> = vec![
        (
            key("traefik_entrypoint_requests_total", &ep("200", "GET")),
            7.0,
        ),
        (
            key("traefik_entrypoint_requests_total", &ep("200", "POST")),
            2.0,
        ),
        (
            key(
                "traefik_entrypoint_requests_total",
                &ep("200", "EXTENSION_METHOD"),
            ),
            1.0,
        ),
        (
            key("traefik_entrypoint_requests_total", &ep("404", "GET")),
            3.0,
        ),
        (
            key("traefik_entrypoint_requests_total", &ep("503", "GET")),
            4.0,
        ),
        (
            key("traefik_entrypoint_requests_total", &ep("502", "GET")),
            2.0,
        ),
        (
            key(
                "traefik_router_requests_total",
                &[
                    ("code", "200"),
                    ("method", "GET"),
                    ("protocol", "http"),
                    ("router", "app@file"),
                    ("service", "app@file"),
                ],
            ),
            7.0,
        ),
        (
            key(
                "traefik_service_requests_total",
                &[
                    ("code", "503"),
                    ("method", "GET"),
                    ("protocol", "http"),
                    ("service", "dead@file"),
                ],
            ),
            4.0,
        ),
        (
            key(
                "traefik_service_requests_total",
                &[
                    ("code", "502"),
                    ("method", "GET"),
                    ("protocol", "http"),
                    ("service", "gone@file"),
                ],
            ),
            2.0,
        ),
        // Three attempts each: two retries per request.
        (
            key("traefik_service_retries_total", &[("service", "gone@file")]),
            4.0,
        ),
    ];
    let delta = |m: &BTreeMap<String, f64>, k: &str| {
        m.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0)
    };
    let after = wait_for(Duration::from_secs(10), || {
        let m = scrape(metrics_addr);
        expected
            .iter()
            .all(|(k, v)| delta(&m, k) >= *v)
            .then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "counts never reached {expected:#?}\n{:#?}",
            scrape(metrics_addr)
        )
    });
    // Exactly, and still so a while later (nothing counted twice across workers or seconds).
    std::thread::sleep(Duration::from_millis(1500));
    let later = scrape(metrics_addr);
    for (k, v) in &expected {
        assert_eq!(delta(&after, k), *v, "{k}");
        assert_eq!(delta(&later, k), *v, "{k} a second later");
    }
    // Histograms agree with the counters; the buckets are the configured ones.
    let labels = ep("200", "GET");
    let count = value(
        &later,
        "traefik_entrypoint_request_duration_seconds_count",
        &labels,
    );
    assert_eq!(
        count,
        value(&later, "traefik_entrypoint_requests_total", &labels)
    );
    let mut inf = labels.clone();
    inf.push(("le", "+Inf"));
    assert_eq!(
        value(
            &later,
            "traefik_entrypoint_request_duration_seconds_bucket",
            &inf
        ),
        count
    );
    let mut le5 = labels.clone();
    le5.push(("le", "5"));
    assert_eq!(
        value(
            &later,
            "traefik_entrypoint_request_duration_seconds_bucket",
            &le5
        ),
        count,
        "every request took less than 5 s"
    );
    assert!(
        value(
            &later,
            "traefik_entrypoint_request_duration_seconds_sum",
            &labels
        ) > 0.0
    );
    assert!(later
        .keys()
        .any(|k| k.starts_with("traefik_entrypoint_responses_bytes_total{")));
    assert!(later.contains_key(&key(
        "traefik_open_connections",
        &[("entrypoint", "web"), ("protocol", "TCP")]
    )));
    // The process metrics of both processes, as Prometheus' Go client names them.
    assert!(later["process_resident_memory_bytes"] > 1e6, "{later:#?}");
    assert!(later["process_cpu_seconds_total"] > 0.0);
    assert!(later["process_open_fds"] >= 4.0);
    assert!(later["process_start_time_seconds"] > 1.7e9);
    // The metrics endpoint itself (an internal router) is not counted.
    assert!(!later
        .keys()
        .any(|k| k.contains("entrypoint=\"traefik\"") && k.contains("requests_total")));
}

/// The metrics once two scrapes 1.6 s apart agree on every request counter.
fn settled(addr: SocketAddr) -> BTreeMap<String, f64> {
    let counters = |m: &BTreeMap<String, f64>| -> Vec<(String, f64)> {
        m.iter()
            .filter(|(k, _)| k.contains("requests_total"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let mut last = scrape(addr);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(1600));
        let now = scrape(addr);
        if counters(&now) == counters(&last) {
            return now;
        }
        last = now;
    }
    panic!("request counters never settled: {last:#?}");
}

/// A certificate for `metrics.test` (serial 0x2a) expiring at a known time; returns it.
fn write_cert(cert: &Path, key: &Path) -> i64 {
    let kp = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![
        "metrics.test".to_string(),
        "alt.metrics.test".to_string(),
    ])
    .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "metrics.test");
    params.serial_number = Some(rcgen::SerialNumber::from(vec![0x2a]));
    let not_after = time::OffsetDateTime::from_unix_timestamp(1_893_456_000).expect("date");
    params.not_after = not_after;
    let c = params.self_signed(&kp).expect("cert");
    std::fs::write(cert, c.pem()).expect("write cert");
    std::fs::write(key, kp.serialize_pem()).expect("write key");
    not_after.unix_timestamp()
}

/// Everything the API fixtures describe.
fn api_config(origin: &Origin) -> String {
    format!(
        "[http.routers.app]\nrule = \"Host(`app.test`)\"\nservice = \"app\"\nentryPoints = [\"web\"]\n\
         middlewares = [\"to-https\"]\n[http.routers.app.tls]\ncertResolver = \"\"\noptions = \"modern\"\n\
         [[http.routers.app.tls.domains]]\nmain = \"app.test\"\nsans = [\"www.app.test\"]\n\
         [http.routers.broken]\nrule = \"Host(`broken.test`)\"\nservice = \"missing\"\nentryPoints = [\"web\"]\n\
         [http.routers.half]\nrule = \"Host(`half.test`)\"\nservice = \"app\"\nentryPoints = [\"web\", \"nope\"]\n\
         [http.middlewares.to-https.redirectScheme]\nscheme = \"https\"\npermanent = true\n\
         [http.middlewares.auth.basicAuth]\nusers = [\"test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\"]\n\
         [http.services.app.loadBalancer]\npassHostHeader = false\nservers = [{{ url = \"{}\" }}]\n\
         [http.services.canary.weighted]\nservices = [{{ name = \"app\", weight = 3 }}]\n\
         [tls.options.modern]\nminVersion = \"VersionTLS13\"\n\
         [tcp.routers.redis]\nrule = \"HostSNI(`*`)\"\nservice = \"redis\"\nentryPoints = [\"web\"]\n\
         [tcp.services.redis.loadBalancer]\nservers = [{{ address = \"127.0.0.1:6379\" }}]\n",
        origin.url()
    )
}

#[test]
fn api_answers_traefiks_endpoints_with_its_json_shapes() {
    let origin = Origin::start("o");
    let traefik_port = free_port();
    let p = Proxy::start(
        "api",
        &api_config(&origin),
        &[
            "--api.insecure=true",
            &format!("--entrypoints.traefik.address=127.0.0.1:{traefik_port}"),
        ],
    );
    let api = SocketAddr::from(([127, 0, 0, 1], traefik_port));
    // The TCP router takes the web entry point's plain bytes; the API is on its own.
    let ready = wait_for(Duration::from_secs(10), || {
        let r = http_get(api, "localhost", "/api/http/routers/half@file").ok()?;
        (r.status == 200).then_some(())
    });
    assert!(ready.is_some(), "{}", p.ringway.logs());
    let origin_url = origin.url();
    let with_origin = |v: Value| -> Value {
        serde_json::from_str(&v.to_string().replace("ORIGIN", &origin_url)).expect("json")
    };

    assert_eq!(
        get_json(api, "/api/http/routers/app@file"),
        fixture("router-enabled.json")
    );
    assert_eq!(
        get_json(api, "/api/http/routers/broken@file"),
        fixture("router-disabled.json")
    );
    assert_eq!(
        get_json(api, "/api/http/routers/half@file"),
        fixture("router-warning.json")
    );
    assert_eq!(
        get_json(api, "/api/http/services/app@file"),
        with_origin(fixture("service-loadbalancer.json"))
    );
    assert_eq!(
        get_json(api, "/api/http/services/canary@file"),
        fixture("service-weighted.json")
    );
    assert_eq!(
        get_json(api, "/api/http/middlewares/to-https@file"),
        fixture("middleware.json")
    );
    assert_eq!(
        get_json(api, "/api/http/middlewares/auth@file")["status"],
        "disabled"
    );
    assert_eq!(
        get_json(api, "/api/tcp/routers/redis@file"),
        fixture("tcp-router.json")
    );
    assert_eq!(
        get_json(api, "/api/tcp/services/redis@file"),
        fixture("tcp-service.json")
    );
    let mut ep = fixture("entrypoint.json");
    ep["address"] = json!(format!("127.0.0.1:{}", p.port));
    assert_eq!(get_json(api, "/api/entrypoints/web"), ep);
    assert_eq!(get_json(api, "/api/overview"), fixture("overview.json"));
    let version = get_json(api, "/api/version");
    assert!(version["Version"].is_string() && version["startDate"].is_string());
    let raw = get_json(api, "/api/rawdata");
    for section in [
        "routers",
        "services",
        "middlewares",
        "tcpRouters",
        "tcpServices",
    ] {
        assert!(raw[section].is_object(), "{section}: {raw}");
    }
    assert_eq!(raw["routers"]["broken@file"]["status"], "disabled");
    assert_eq!(raw["tcpServices"]["redis@file"]["type"], "loadbalancer");

    // Not found, wrong method: Traefik's error body.
    let r = get(api, "/api/http/routers/nothing@file");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"message": "router not found"}))
    );

    // Filters and pagination.
    let names = |path: &str| -> (Vec<String>, Option<String>) {
        let r = get(api, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let names = r
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v["name"].as_str().expect("name").to_string())
            .collect();
        (names, r.header("x-next-page").map(str::to_string))
    };
    assert_eq!(
        names("/api/http/routers?status=disabled").0,
        ["broken@file"]
    );
    assert_eq!(names("/api/http/routers?status=warning").0, ["half@file"]);
    assert_eq!(names("/api/http/routers?search=HALF").0, ["half@file"]);
    assert_eq!(
        names("/api/http/routers?provider=internal").0,
        ["api@internal", "dashboard@internal"]
    );
    let (page1, next) = names("/api/http/routers?per_page=2");
    assert_eq!((page1.len(), next.as_deref()), (2, Some("2")));
    let (page3, next) = names("/api/http/routers?per_page=2&page=3");
    assert_eq!((page3.len(), next.as_deref()), (1, Some("1")));
    assert_eq!(get(api, "/api/http/routers?per_page=2&page=9").status, 400);

    // The dashboard is served, and `/` redirects to it.
    let r = get(api, "/");
    assert_eq!((r.status, r.header("location")), (302, Some("/dashboard/")));
    let r = get(api, "/dashboard/");
    assert!(r.status == 200 && r.text().contains("<script src=\"app.js\">"));
    assert_eq!(get(api, "/dashboard/app.js").status, 200);
}

#[test]
fn internal_services_are_routed_by_ordinary_routers() {
    let origin = Origin::start("o");
    let config = format!(
        "{}{}{}{}{}",
        router("app", "Host(`app.test`)", "app"),
        router(
            "api",
            "Host(`admin.test`) && (PathPrefix(`/api`) || PathPrefix(`/dashboard`))",
            "api@internal"
        ),
        router(
            "metrics",
            "Host(`admin.test`) && Path(`/metrics`)",
            "prometheus@internal"
        ),
        router(
            "ping",
            "Host(`admin.test`) && Path(`/ping`)",
            "ping@internal"
        ),
        lb_service("app", &[&origin]),
    );
    let p = Proxy::start(
        "api-routed",
        &config,
        &[
            "--api=true",
            "--metrics.prometheus.manualrouting=true",
            "--ping.manualrouting=true",
        ],
    );
    p.wait_routed("app.test", "/", "o");
    let admin = |path: &str| {
        wait_for(Duration::from_secs(10), || {
            let r = http_get(p.addr, "admin.test", path).ok()?;
            (r.status == 200).then_some(r)
        })
        .unwrap_or_else(|| panic!("{path} never answered\n{}", p.ringway.logs()))
    };
    assert_eq!(
        admin("/api/http/routers/api@file").json()["service"],
        "api@internal"
    );
    assert!(admin("/metrics")
        .text()
        .contains("# TYPE traefik_config_reloads_total counter"));
    assert_eq!(admin("/ping").text(), "OK");
    assert!(admin("/dashboard/").text().contains("ringway dashboard"));
    // Only through those routers: no `traefik` entry point was made, another host gets 404.
    assert_eq!(p.get("app.test", "/api/overview").origin(), Some("o"));
    assert_eq!(p.get("other.test", "/api/overview").status, 404);
    // A service that is not enabled is a router error, not a crash.
    p.reconfigure(&format!(
        "{config}{}",
        router("nope", "Host(`nope.test`)", "rest@internal")
    ));
    let r = wait_for(Duration::from_secs(10), || {
        let r = http_get(p.addr, "admin.test", "/api/http/routers/nope@file").ok()?;
        (r.status == 200).then_some(r.json())
    })
    .expect("router listed");
    assert_eq!(r["status"], "disabled");
    assert!(
        r["error"][0]
            .as_str()
            .unwrap_or("")
            .contains("rest@internal"),
        "{r}"
    );
}

#[test]
fn dashboard_shows_the_configuration_live_in_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run scripts/test (or `npm ci` in tests/browser)"
    );
    let origin = Origin::start("o");
    let traefik_port = free_port();
    let dir = support::TestDir::new("dashboard");
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    support::write_dynamic(
        &conf.join("base.toml"),
        &format!(
            "{}{}{}\
             [http.services.dead.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:1\" }}]\n\
             [http.services.dead.loadBalancer.healthCheck]\npath = \"/health\"\ninterval = \"100ms\"\n\
             [http.middlewares.auth.basicAuth]\nusers = [\"a:b\"]\n\
             [tcp.routers.redis]\nrule = \"HostSNI(`redis.test`)\"\nservice = \"redis\"\nentryPoints = [\"web\"]\n\
             [tcp.routers.redis.tls]\npassthrough = true\n\
             [tcp.services.redis.loadBalancer]\nservers = [{{ address = \"127.0.0.1:6379\" }}]\n",
            router("app", "Host(`app.test`)", "app"),
            router("broken", "Host(`broken.test`)", "missing"),
            lb_service("app", &[&origin]),
        ),
    );
    let web = free_port();
    let ringway = support::Ringway::start_in(
        dir.path(),
        &[
            format!("--entrypoints.web.address=127.0.0.1:{web}"),
            format!("--entrypoints.traefik.address=127.0.0.1:{traefik_port}"),
            format!("--providers.file.directory={}", conf.display()),
            "--api.insecure=true".to_string(),
            "--dataplane.workers=2".to_string(),
        ],
    );
    let web_addr = SocketAddr::from(([127, 0, 0, 1], web));
    support::wait_routed(
        web_addr,
        &ringway,
        Duration::from_secs(15),
        "app.test",
        "/",
        "o",
    );
    // Traffic while the browser looks, for the live rates.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _stop = support::StopOnDrop(stop.clone());
    let load = std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 20_000 {
            let _ = http_get(web_addr, "app.test", "/");
            n += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let out = std::process::Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{traefik_port}/dashboard/"))
        .arg(conf.join("added.toml"))
        .arg(&screenshot)
        .output()
        .expect("run node (scripts/test installs it)");
    drop(_stop);
    let _ = load.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test failed: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ringway.logs()
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!("dashboard: {result} (screenshot {})", screenshot.display());
    assert_eq!(result["disabled_status"], "disabled", "{result}");
    assert!(
        result["disabled_error"]
            .as_str()
            .unwrap_or("")
            .contains("missing@file"),
        "{result}"
    );
    assert_eq!(result["server_status"], "server DOWN", "{result}");
    assert_eq!(result["middleware_status"], "disabled", "{result}");
    assert_eq!(result["tcp_router"], true, "{result}");
    assert!(result["rate"].as_f64().unwrap_or(0.0) > 0.0, "{result}");
    assert_eq!(result["console_errors"], json!([]), "{result}");
    // The bar: a router added to a file shows within a second.
    let ms = result["appeared_ms"].as_u64().expect("appeared_ms");
    assert!(ms <= 1000, "the new router took {ms} ms to show");
    assert!(std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000));
}

#[test]
fn base_path_moves_the_api_and_the_dashboard() {
    let origin = Origin::start("o");
    let traefik_port = free_port();
    let p = Proxy::start(
        "api-base-path",
        &format!(
            "{}{}",
            router("app", "Host(`app.test`)", "app"),
            lb_service("app", &[&origin])
        ),
        &[
            "--api.insecure=true",
            "--api.basepath=/proxy/",
            &format!("--entrypoints.traefik.address=127.0.0.1:{traefik_port}"),
        ],
    );
    p.wait_routed("app.test", "/", "o");
    let api = SocketAddr::from(([127, 0, 0, 1], traefik_port));
    let version = wait_for(Duration::from_secs(10), || {
        let r = http_get(api, "localhost", "/proxy/api/version").ok()?;
        (r.status == 200).then_some(r.json())
    })
    .unwrap_or_else(|| panic!("no API under /proxy\n{}", p.ringway.logs()));
    assert!(version["Version"].is_string());
    let r = get(api, "/proxy/");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/proxy/dashboard/"))
    );
    assert_eq!(get(api, "/proxy/dashboard/").status, 200);
    assert_eq!(get(api, "/api/version").status, 404);
}
