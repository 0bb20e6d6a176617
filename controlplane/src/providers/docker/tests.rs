//! Containers → configuration, without Docker: labels, implicit rules, v1 labels, networks,
//! replicas, stopping containers, templates and constraints.

use super::*;
use ringway_shared::config::static_config::{DOCKER_DEFAULT_ENDPOINT, DOCKER_DEFAULT_RULE};
use std::net::IpAddr;

fn provider() -> DockerProvider {
    DockerProvider {
        endpoint: DOCKER_DEFAULT_ENDPOINT.to_string(),
        exposed_by_default: true,
        network: None,
        default_rule: DOCKER_DEFAULT_RULE.to_string(),
        constraints: None,
        watch: true,
        allow_empty_services: false,
    }
}

fn defaults() -> Settings {
    let (s, errors) = settings(&provider());
    assert!(errors.is_empty(), "{errors:?}");
    s
}

fn container(id: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> Container {
    Container {
        id: id.to_string(),
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        networks: [("net".to_string(), Some(ip.parse::<IpAddr>().expect("ip")))]
            .into_iter()
            .collect(),
        ports: vec![80],
        ..Container::default()
    }
}

fn run(containers: &[Container], s: &Settings) -> Build {
    build(containers, &HashSet::new(), s)
}

fn urls(b: &Build, service: &str) -> Vec<String> {
    let svc = b
        .config
        .http
        .services
        .get(service)
        .unwrap_or_else(|| panic!("no service {service}: {:?}", b.config.http.services));
    svc.load_balancer
        .as_ref()
        .expect("load balancer")
        .servers
        .iter()
        .map(|s| s.url.clone())
        .collect()
}

#[test]
fn explicit_labels_become_routers_and_services() {
    let c = container(
        "1",
        "web",
        "10.0.0.2",
        &[
            ("traefik.http.routers.app.rule", "Host(`a.example.com`)"),
            ("traefik.http.routers.app.entrypoints", "web,websecure"),
            ("traefik.http.routers.app.priority", "42"),
            ("traefik.http.routers.app.middlewares", "m1,m2"),
            ("traefik.http.routers.app.tls.certresolver", "le"),
            (
                "traefik.http.services.appsvc.loadbalancer.server.port",
                "8080",
            ),
            (
                "traefik.http.services.appsvc.loadbalancer.server.scheme",
                "https",
            ),
            (
                "traefik.http.services.appsvc.loadbalancer.passhostheader",
                "false",
            ),
            ("traefik.http.middlewares.m1.redirectscheme.scheme", "https"),
            ("com.example.other", "ignored"),
        ],
    );
    let b = run(&[c], &defaults());
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let r = &b.config.http.routers["app"];
    assert_eq!(r.rule, "Host(`a.example.com`)");
    assert_eq!(r.entry_points, ["web", "websecure"]);
    assert_eq!(r.middlewares, ["m1", "m2"]);
    assert_eq!(r.priority, Some(42));
    assert_eq!(r.service, "appsvc", "the only service is the router's");
    assert_eq!(
        r.tls.as_ref().and_then(|t| t.cert_resolver.as_deref()),
        Some("le")
    );
    assert_eq!(urls(&b, "appsvc"), ["https://10.0.0.2:8080"]);
    let lb = b.config.http.services["appsvc"].load_balancer.as_ref();
    assert_eq!(lb.and_then(|l| l.pass_host_header), Some(false));
    assert_eq!(b.config.http.middlewares["m1"].kind, "redirectScheme");
    assert_eq!(b.config.origin("http.routers.app"), Some("container web"));
}

#[test]
fn implicit_router_and_service_use_default_rule_and_lowest_port() {
    let mut c = container("1", "my_app.1", "10.0.0.3", &[]);
    c.ports = vec![8080, 3000];
    c.ports.sort_unstable();
    let b = run(&[c], &defaults());
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let r = &b.config.http.routers["my-app-1"];
    assert_eq!(r.rule, "Host(`my-app-1`)");
    assert_eq!(r.service, "my-app-1");
    assert_eq!(urls(&b, "my-app-1"), ["http://10.0.0.3:3000"]);
}

#[test]
fn compose_service_name_and_templates() {
    let c = container(
        "1",
        "proj-api-1",
        "10.0.0.4",
        &[
            ("com.docker.compose.service", "api"),
            ("com.docker.compose.project", "proj"),
            ("domain", "example.org"),
        ],
    );
    let mut p = provider();
    p.default_rule =
        "Host(`{{ .Name }}.{{ index .Labels \"domain\" }}`) || Host(`{{ .ContainerName }}`)"
            .to_string();
    let (s, errors) = settings(&p);
    assert!(errors.is_empty(), "{errors:?}");
    let b = run(&[c], &s);
    assert_eq!(
        b.config.http.routers["api-proj"].rule,
        "Host(`api-proj.example.org`) || Host(`proj-api-1`)"
    );
    for bad in [
        "Host(`{{ .Name | upper }}`)",
        "Host(`{{ printf \"%s\" .Name }}`)",
        "{{ .Name",
    ] {
        p.default_rule = bad.to_string();
        let (_, errors) = settings(&p);
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(errors[0].location, "providers.docker.defaultRule");
    }
}

#[test]
fn router_without_rule_gets_default_rule_and_the_only_service() {
    let c = container(
        "1",
        "whoami",
        "10.0.0.5",
        &[("traefik.http.routers.r.entrypoints", "web")],
    );
    let b = run(&[c], &defaults());
    let r = &b.config.http.routers["r"];
    assert_eq!(r.rule, "Host(`whoami`)");
    assert_eq!(r.service, "whoami");
}

#[test]
fn several_services_and_a_router_without_service_is_an_error_naming_the_container() {
    let labels = [
        ("traefik.http.routers.r.rule", "Host(`x`)"),
        ("traefik.http.services.a.loadbalancer.server.port", "80"),
        ("traefik.http.services.b.loadbalancer.server.port", "81"),
    ];
    let bad = container("1", "multi", "10.0.0.6", &labels);
    let good = container("2", "other", "10.0.0.7", &[]);
    let b = run(&[bad, good], &defaults());
    assert_eq!(b.errors.len(), 1, "{:?}", b.errors);
    assert_eq!(b.errors[0].container, "multi");
    assert!(b.errors[0].message.contains("several"), "{}", b.errors[0]);
    assert!(b.config.http.routers.contains_key("other"));
    assert!(!b.config.http.routers.contains_key("r"));
    // Without any router, the default router cannot choose either.
    let labels = [
        ("traefik.http.services.a.loadbalancer.server.port", "80"),
        ("traefik.http.services.b.loadbalancer.server.port", "81"),
    ];
    let b = run(&[container("1", "multi", "10.0.0.6", &labels)], &defaults());
    assert_eq!(b.errors.len(), 1, "{:?}", b.errors);
}

#[test]
fn a_bad_label_leaves_out_only_its_container() {
    let bad = container(
        "1",
        "broken",
        "10.0.0.8",
        &[("traefik.http.routers.x.priority", "abc")],
    );
    let unknown = container(
        "2",
        "typo",
        "10.0.0.9",
        &[("traefik.http.routers.y.rulez", "Host(`y`)")],
    );
    let good = container("3", "fine", "10.0.0.10", &[]);
    let b = run(&[bad, unknown, good], &defaults());
    assert_eq!(b.errors.len(), 2, "{:?}", b.errors);
    assert_eq!(b.errors[0].container, "broken");
    assert!(
        b.errors[0]
            .message
            .contains("traefik.http.routers.x.priority"),
        "{}",
        b.errors[0]
    );
    assert_eq!(b.errors[1].container, "typo");
    assert!(b.errors[1].message.contains("rulez"), "{}", b.errors[1]);
    assert_eq!(
        b.config.http.routers.keys().collect::<Vec<_>>(),
        ["fine"],
        "only the good container is routed"
    );
    let bad_port = container(
        "4",
        "badport",
        "10.0.0.11",
        &[("traefik.http.services.s.loadbalancer.server.port", "http")],
    );
    let b = run(&[bad_port], &defaults());
    assert!(
        b.errors[0].message.contains("invalid port"),
        "{:?}",
        b.errors
    );
}

#[test]
fn replicas_of_a_service_pool_their_servers() {
    let labels = [
        ("traefik.http.routers.app.rule", "Host(`app`)"),
        ("traefik.http.services.app.loadbalancer.server.port", "8080"),
    ];
    let a = container("1", "app-1", "10.0.0.21", &labels);
    let b2 = container("2", "app-2", "10.0.0.22", &labels);
    let b = run(&[b2.clone(), a.clone()], &defaults());
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert_eq!(
        urls(&b, "app"),
        ["http://10.0.0.21:8080", "http://10.0.0.22:8080"]
    );
    // A router defined differently by two containers is dropped, naming both.
    let mut other = b2;
    other.labels.insert(
        "traefik.http.routers.app.rule".into(),
        "Host(`other`)".into(),
    );
    let b = run(&[a, other], &defaults());
    assert!(!b.config.http.routers.contains_key("app"));
    assert_eq!(b.errors.len(), 2, "{:?}", b.errors);
    assert!(
        b.errors[0].message.contains("app-1, app-2"),
        "{}",
        b.errors[0]
    );
}

#[test]
fn stopping_unhealthy_and_paused_containers_have_no_servers() {
    let labels = [
        ("traefik.http.routers.app.rule", "Host(`app`)"),
        ("traefik.http.services.app.loadbalancer.server.port", "80"),
    ];
    let a = container("1", "app-1", "10.0.0.31", &labels);
    let mut b2 = container("2", "app-2", "10.0.0.32", &labels);
    let stopping: HashSet<String> = ["1".to_string()].into_iter().collect();
    let s = defaults();
    assert_eq!(
        urls(&build(&[a.clone(), b2.clone()], &stopping, &s), "app"),
        ["http://10.0.0.32:80"]
    );
    b2.health = Health::Unhealthy;
    let built = build(&[a.clone(), b2.clone()], &stopping, &s);
    assert!(built.config.http.routers.is_empty(), "{:?}", built.config);
    b2.health = Health::Starting;
    assert!(run(&[b2.clone()], &s).config.http.services.is_empty());
    b2.health = Health::Healthy;
    assert_eq!(
        urls(&run(&[b2.clone()], &s), "app"),
        ["http://10.0.0.32:80"]
    );
    b2.paused = true;
    assert!(run(&[b2.clone()], &s).config.http.services.is_empty());
    // allowEmptyServices keeps the service, with no server.
    let mut p = provider();
    p.allow_empty_services = true;
    let (s, _) = settings(&p);
    assert!(urls(&run(&[b2], &s), "app").is_empty());
}

#[test]
fn exposed_by_default_and_enable() {
    let plain = container("1", "plain", "10.0.0.41", &[]);
    let on = container("2", "on", "10.0.0.42", &[("traefik.enable", "true")]);
    let off = container("3", "off", "10.0.0.43", &[("traefik.enable", "false")]);
    let all = [plain, on, off];
    let b = run(&all, &defaults());
    assert_eq!(
        b.config.http.routers.keys().collect::<Vec<_>>(),
        ["on", "plain"]
    );
    let mut p = provider();
    p.exposed_by_default = false;
    let (s, _) = settings(&p);
    let b = run(&all, &s);
    assert_eq!(b.config.http.routers.keys().collect::<Vec<_>>(), ["on"]);
}

#[test]
fn networks_host_mode_and_missing_port() {
    let mut c = container("1", "multi-net", "10.0.0.51", &[]);
    c.networks
        .insert("aaa".into(), Some("10.9.0.2".parse().expect("ip")));
    // No network chosen: the one whose name sorts first.
    assert_eq!(
        urls(&run(&[c.clone()], &defaults()), "multi-net"),
        ["http://10.9.0.2:80"]
    );
    let mut p = provider();
    p.network = Some("net".into());
    let (s, _) = settings(&p);
    assert_eq!(
        urls(&run(&[c.clone()], &s), "multi-net"),
        ["http://10.0.0.51:80"]
    );
    // The label wins over the provider's network.
    c.labels
        .insert("traefik.docker.network".into(), "aaa".into());
    assert_eq!(
        urls(&run(&[c.clone()], &s), "multi-net"),
        ["http://10.9.0.2:80"]
    );
    let mut host = container("2", "hosted", "10.0.0.52", &[]);
    host.host_network = true;
    host.networks.clear();
    assert_eq!(urls(&run(&[host], &s), "hosted"), ["http://127.0.0.1:80"]);
    let mut noport = container("3", "noport", "10.0.0.53", &[]);
    noport.ports.clear();
    let b = run(&[noport], &s);
    assert!(b.errors[0].message.contains("no port"), "{:?}", b.errors);
}

#[test]
fn v1_labels_are_translated_with_a_warning() {
    let c = container(
        "1",
        "legacy",
        "10.0.0.61",
        &[
            ("traefik.enable", "true"),
            ("traefik.frontend.rule", "Host:a.example.com,b.example.com"),
            ("traefik.port", "8080"),
        ],
    );
    let b = run(&[c], &defaults());
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert_eq!(b.warnings.len(), 1);
    assert_eq!(b.warnings[0].container, "legacy");
    let r = &b.config.http.routers["legacy"];
    assert_eq!(r.rule, "Host(`a.example.com`) || Host(`b.example.com`)");
    assert_eq!(urls(&b, "legacy"), ["http://10.0.0.61:8080"]);
    assert_eq!(v1_rule("PathPrefix:/x").as_deref(), Ok("PathPrefix(`/x`)"));
    assert_eq!(
        v1_rule("Host:a,b;PathPrefix:/api").as_deref(),
        Ok("(Host(`a`) || Host(`b`)) && PathPrefix(`/api`)")
    );
    assert!(v1_rule("HostRegexp:{x}").is_err());
    let auth = container(
        "2",
        "auth",
        "10.0.0.62",
        &[("traefik.frontend.auth.basic", "u:p")],
    );
    let b = run(&[auth], &defaults());
    assert!(
        b.errors[0].message.contains("not supported"),
        "{:?}",
        b.errors
    );
}

#[test]
fn tcp_labels_are_kept_with_their_server_address() {
    let c = container(
        "1",
        "redis",
        "10.0.0.71",
        &[
            ("traefik.tcp.routers.r.rule", "HostSNI(`*`)"),
            ("traefik.tcp.routers.r.entrypoints", "redis"),
            ("traefik.tcp.services.r.loadbalancer.server.port", "6379"),
        ],
    );
    let b = run(&[c], &defaults());
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert!(b.config.http.routers.is_empty(), "no implicit HTTP router");
    let tcp = b.config.tcp.expect("tcp section");
    let addr = tcp
        .get("services")
        .and_then(|s| s.get("r"))
        .and_then(|s| s.get("loadBalancer"))
        .and_then(|s| s.get("servers"))
        .and_then(|s| s.get("0"))
        .and_then(|s| s.get("address"));
    assert_eq!(
        addr,
        Some(&ringway_shared::config::Node::Leaf("10.0.0.71:6379".into()))
    );
}

#[test]
fn constraints() {
    let labels: BTreeMap<String, String> = [("env", "prod"), ("team", "web-a")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (expr, want) in [
        ("Label(`env`, `prod`)", true),
        ("Label(`env`,`dev`)", false),
        ("!Label(`env`,`dev`)", true),
        ("Label(`env`,`prod`) && LabelRegex(`team`, `^web-`)", true),
        ("Label(`env`,`dev`) || LabelRegex(`team`, `b$`)", false),
        (
            "(Label(`env`,`dev`) || Label(`team`,`web-a`)) && !Label(`x`,`y`)",
            true,
        ),
    ] {
        let c = Constraint::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(c.matches(&labels), want, "{expr}");
    }
    for bad in [
        "Tag(`a`)",
        "Label(`a`)",
        "Label(`a`,`b`) &",
        "LabelRegex(`a`,`(`)",
    ] {
        assert!(Constraint::parse(bad).is_err(), "{bad}");
    }
    let mut p = provider();
    p.constraints = Some("Label(`env`, `prod`)".into());
    let (s, _) = settings(&p);
    let yes = container("1", "yes", "10.0.0.81", &[("env", "prod")]);
    let no = container("2", "no", "10.0.0.82", &[]);
    let b = run(&[yes.clone(), no], &s);
    assert_eq!(b.config.http.routers.keys().collect::<Vec<_>>(), ["yes"]);
    p.constraints = Some("Nope(`x`,`y`)".into());
    let (s, errors) = settings(&p);
    assert_eq!(errors[0].location, "providers.docker.constraints");
    assert!(run(&[yes], &s).config.http.routers.is_empty());
}

#[test]
fn normalize_like_traefik() {
    assert_eq!(normalize("my_app.1"), "my-app-1");
    assert_eq!(normalize("--a__b--"), "a-b");
    assert_eq!(normalize("Web"), "Web");
}
