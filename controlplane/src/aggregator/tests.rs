use super::*;
use ringway_shared::config::{parse_dynamic, Format};
use ringway_shared::table::ServiceKind;

fn static_cfg() -> StaticConfig {
    StaticConfig::from_args(&[
        "--entrypoints.web.address=:8000".to_string(),
        "--entrypoints.admin.address=:8081".to_string(),
    ])
    .expect("static config")
}

fn provider(name: &str, toml: &str) -> ProviderConfig {
    ProviderConfig {
        provider: name.to_string(),
        config: parse_dynamic(&format!("{name}.toml"), toml, Format::Toml).expect("parses"),
    }
}

fn no_dns(host: &str, _: u16) -> Result<Vec<SocketAddr>, String> {
    Err(format!("no DNS in tests ({host})"))
}

fn run(providers: &[ProviderConfig]) -> Resolution {
    resolve(providers, &static_cfg(), &no_dns)
}

const BASE: &str = r#"
[http.services.s1.loadBalancer]
servers = [{ url = "http://127.0.0.1:9001" }, { url = "http://127.0.0.1:9002", weight = 3 }]
"#;

#[test]
fn valid_router_gets_qualified_names_default_priority_and_all_entry_points() {
    let r = run(&[provider(
        "file",
        &format!("{BASE}\n[http.routers.r1]\nrule = \"Host(`a`)\"\nservice = \"s1\"\n"),
    )]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.table.routers.len(), 1);
    let router = &r.table.routers[0];
    assert_eq!(router.name, "r1@file");
    assert_eq!(router.priority, "Host(`a`)".len() as i64);
    assert_eq!(
        router.entry_points,
        vec!["admin".to_string(), "web".to_string()]
    );
    let ServiceKind::LoadBalancer(lb) = &r.table.services[router.service.0 as usize].kind else {
        panic!("load balancer expected");
    };
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[1].weight, 3);
    assert!(lb.pass_host_header);
}

#[test]
fn missing_service_bad_rule_and_unknown_entry_point_disable_only_that_router() {
    let toml = format!(
        "{BASE}
[http.routers.good]
rule = \"Path(`/ok`)\"
service = \"s1\"
[http.routers.nosvc]
rule = \"Path(`/x`)\"
service = \"missing\"
[http.routers.badrule]
rule = \"Path(`/x`\"
service = \"s1\"
[http.routers.badep]
rule = \"Path(`/y`)\"
service = \"s1\"
entryPoints = [\"nope\"]
"
    );
    let r = run(&[provider("file", &toml)]);
    let names: Vec<&str> = r.table.routers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["good@file"]);
    let text: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("http.routers.nosvc") && e.contains("missing@file")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("http.routers.badrule") && e.contains("invalid rule")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("http.routers.badep") && e.contains("\"nope\"")),
        "{text:?}"
    );
    assert!(
        text.iter().all(|e| e.starts_with("file.toml: ")),
        "{text:?}"
    );
    assert_eq!(r.routers.iter().filter(|r| !r.enabled).count(), 3);
}

#[test]
fn cross_provider_references_resolve() {
    let a = provider("file", BASE);
    let b = provider(
        "docker",
        "[http.routers.r]\nrule = \"Host(`b`)\"\nservice = \"s1@file\"\n",
    );
    let r = run(&[a, b]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.table.routers[0].name, "r@docker");
    assert_eq!(
        r.table.services[r.table.routers[0].service.0 as usize].name,
        "s1@file"
    );
}

#[test]
fn weighted_children_resolve_and_cycles_are_errors() {
    let toml = format!(
        "{BASE}
[http.services.canary.weighted]
services = [{{ name = \"s1\", weight = 3 }}, {{ name = \"s2\", weight = 1 }}]
[http.services.s2.loadBalancer]
servers = [{{ url = \"http://127.0.0.1:9003\" }}]
[http.services.loop1.weighted]
services = [{{ name = \"loop2\" }}]
[http.services.loop2.weighted]
services = [{{ name = \"loop1\" }}]
[http.services.orphan.weighted]
services = [{{ name = \"ghost\" }}]
"
    );
    let r = run(&[provider("file", &toml)]);
    let canary = r
        .table
        .services
        .iter()
        .find(|s| s.name == "canary@file")
        .expect("canary");
    let ServiceKind::Weighted(children) = &canary.kind else {
        panic!("weighted expected")
    };
    let weights: Vec<u32> = children.iter().map(|c| c.weight).collect();
    assert_eq!(weights, vec![3, 1]);
    let text: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("loop1") && e.contains("cycle")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("orphan") && e.contains("ghost@file")),
        "{text:?}"
    );
    assert!(!r.table.services.iter().any(|s| s.name.starts_with("loop")));
}

#[test]
fn explicit_priority_is_kept() {
    let r = run(&[provider(
        "file",
        &format!(
            "{BASE}\n[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s1\"\npriority = 42\n"
        ),
    )]);
    assert_eq!(r.table.routers[0].priority, 42);
}

#[test]
fn middlewares_are_refused_rather_than_ignored() {
    let toml = format!(
        "{BASE}
[http.middlewares.auth.basicAuth]
users = [\"u:p\"]
[http.routers.r]
rule = \"Host(`a`)\"
service = \"s1\"
middlewares = [\"auth\"]
"
    );
    let r = run(&[provider("file", &toml)]);
    assert!(r.table.routers.is_empty());
    let text: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|e| e.contains("auth@file")
            && e.contains("basicAuth")
            && e.contains("not supported")),
        "{text:?}"
    );
}

#[test]
fn server_urls_are_validated_and_hosts_resolved_by_the_callback() {
    let toml = r#"
[http.services.s.loadBalancer]
servers = [{ url = "http://127.0.0.1" }, { url = "https://127.0.0.1:8443" }, { url = "http://backend:81" }, { url = "nonsense" }]
"#;
    let resolver = |host: &str, port: u16| -> Result<Vec<SocketAddr>, String> {
        if host == "backend" {
            Ok(vec![SocketAddr::from(([10, 1, 2, 3], port))])
        } else {
            Err("unknown".into())
        }
    };
    let r = resolve(&[provider("file", toml)], &static_cfg(), &resolver);
    let ServiceKind::LoadBalancer(lb) = &r.table.services[0].kind else {
        panic!("lb")
    };
    let addrs: Vec<String> = lb.servers.iter().map(|s| s.addr.to_string()).collect();
    assert_eq!(addrs, vec!["127.0.0.1:80", "10.1.2.3:81"]);
    assert_eq!(lb.servers[1].authority, "backend:81");
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
}

#[test]
fn empty_servers_list_is_valid() {
    let toml = "[http.services.empty.loadBalancer]\nservers = []\n[http.routers.r]\nrule = \"Host(`e`)\"\nservice = \"empty\"\n";
    let r = run(&[provider("file", toml)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.table.routers.len(), 1);
}

fn texts(errors: &[ConfigError]) -> Vec<String> {
    errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn unknown_entry_point_disables_the_router_only_there() {
    let toml = format!(
        "{BASE}\n[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s1\"\nentryPoints = [\"web\", \"nope\", \"web\"]\n"
    );
    let r = run(&[provider("file", &toml)]);
    assert_eq!(r.table.routers.len(), 1);
    assert_eq!(r.table.routers[0].entry_points, vec!["web".to_string()]);
    assert!(r.routers[0].enabled);
    assert_eq!(
        texts(&r.errors),
        vec!["file.toml: http.routers.r: entryPoint \"nope\" doesn't exist".to_string()]
    );
}

#[test]
fn as_default_entry_points_are_the_default() {
    let cfg = StaticConfig::from_args(&[
        "--entrypoints.web.address=:8000".to_string(),
        "--entrypoints.admin.address=:8081".to_string(),
        "--entrypoints.admin.asdefault=true".to_string(),
    ])
    .expect("static config");
    let toml = format!(
        "{BASE}\n[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s1\"\n[http.routers.r.tls]\n"
    );
    let r = resolve(&[provider("file", &toml)], &cfg, &no_dns);
    assert_eq!(r.table.routers[0].entry_points, vec!["admin".to_string()]);
    assert!(r.table.routers[0].tls);
}

#[test]
fn middlewares_of_other_providers_and_missing_ones_are_refused() {
    let a = provider(
        "file",
        &format!("{BASE}\n[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s1\"\nmiddlewares = [\"ip@docker\", \"ghost\"]\n"),
    );
    let b = provider(
        "docker",
        "[http.middlewares.ip.ipAllowList]\nsourceRange = [\"10.0.0.0/8\"]\n",
    );
    let r = run(&[a, b]);
    assert!(r.table.routers.is_empty());
    assert_eq!(
        r.routers[0].errors,
        vec![
            "middleware \"ip@docker\" of type \"ipAllowList\" is not supported yet".to_string(),
            "middleware \"ghost@file\" does not exist".to_string(),
        ]
    );
}

#[test]
fn service_middlewares_are_refused_and_unimplemented_settings_warn() {
    let toml = r#"
[http.services.guarded.loadBalancer]
servers = [{ url = "http://127.0.0.1:9001" }]
[http.services.guarded]
middlewares = ["auth"]
[http.services.checked.loadBalancer]
servers = [{ url = "http://127.0.0.1:9001" }]
strategy = "p2c"
[http.services.checked.loadBalancer.healthCheck]
path = "/health"
[http.services.checked.loadBalancer.sticky.cookie]
[http.services.mirror.mirroring]
service = "checked"
[http.services.two.loadBalancer]
[http.services.two.weighted]
[http.services.none]
"#;
    let r = run(&[provider("file", toml)]);
    let names: Vec<&str> = r.table.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["checked@file"]);
    let errors = texts(&r.errors);
    assert!(
        errors.contains(
            &"file.toml: http.services.guarded: service middlewares are not supported yet"
                .to_string()
        ),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("mirror") && e.contains("mirroring is not supported yet")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("two") && e.contains("exactly one type")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("none") && e.contains("no type")),
        "{errors:?}"
    );
    // strategy and sticky are ignored with a warning; the health check is implemented.
    let warnings = texts(&r.warnings);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("file.toml: http.services.checked: ")),
        "{warnings:?}"
    );
    let statuses: Vec<(&str, bool)> = r
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.enabled))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("checked@file", true),
            ("guarded@file", false),
            ("mirror@file", false),
            ("none@file", false),
            ("two@file", false)
        ]
    );
}

#[test]
fn unimplemented_sections_warn() {
    let toml = r#"
[udp.services.dns.loadBalancer]
[tls.options.modern]
minVersion = "VersionTLS13"
[http.serversTransports.st]
insecureSkipVerify = true
"#;
    let r = run(&[provider("file", toml)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        texts(&r.warnings),
        vec![
            "file.toml: udp.services.dns: udp services are not supported yet, ignored".to_string(),
            "file.toml: http.serversTransports.st: serversTransports are not supported yet, ignored".to_string(),
        ]
    );
}

#[test]
fn names_internal_services_parent_refs_and_rule_syntax() {
    let toml = format!(
        "{BASE}
[http.routers.api]
rule = \"PathPrefix(`/api`)\"
service = \"api@internal\"
[http.routers.child]
rule = \"Path(`/c`)\"
service = \"s1\"
parentRefs = [\"parent\"]
[http.routers.old]
rule = \"Path(`/o`)\"
service = \"s1\"
ruleSyntax = \"v2\"
[http.routers.empty]
service = \"s1\"
[http.routers.nosvc]
rule = \"Path(`/n`)\"
[http.routers.tcp]
rule = \"HostSNI(`a`)\"
service = \"s1\"
"
    );
    let r = run(&[provider("file", &toml)]);
    assert!(r.table.routers.is_empty());
    let errors = texts(&r.errors);
    for want in [
        "http.routers.api: internal service \"api@internal\" is not enabled",
        "http.routers.child: parentRefs (multi-layer routing) are not supported yet",
        "http.routers.old: ruleSyntax \"v2\" is not supported (only v3)",
        "http.routers.empty: rule is empty",
        "http.routers.nosvc: the service is missing on the router",
        "http.routers.tcp: invalid rule",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want}: {errors:?}"
        );
    }
    let r = run(&[ProviderConfig {
        provider: "docker".into(),
        config: DynamicConfig {
            http: ringway_shared::config::dynamic::HttpConfig {
                routers: [(
                    "r@x".to_string(),
                    RouterConfig {
                        rule: "Path(`/`)".into(),
                        service: "s".into(),
                        ..RouterConfig::default()
                    },
                )]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            ..Default::default()
        },
    }]);
    let errors = texts(&r.errors);
    assert!(
        errors.contains(
            &"provider docker: http.routers.r@x: a router name cannot contain '@'".to_string()
        ),
        "{errors:?}"
    );
}

#[test]
fn weighted_diamonds_are_valid_and_invalid_children_propagate() {
    // 20 layers of diamonds: exponential without memoization.
    let mut toml = String::from(BASE);
    for i in 0..20 {
        let next = if i == 19 {
            "s1".to_string()
        } else {
            format!("w{}", i + 1)
        };
        toml.push_str(&format!(
            "[http.services.w{i}.weighted]\nservices = [{{ name = \"{next}\" }}, {{ name = \"{next}\" }}]\n"
        ));
    }
    toml.push_str("[http.services.bad.mirroring]\nservice = \"s1\"\n[http.services.parent.weighted]\nservices = [{ name = \"bad\" }]\n");
    let r = run(&[provider("file", &toml)]);
    assert_eq!(r.table.services.len(), 21, "{:?}", r.errors);
    let errors = texts(&r.errors);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("http.services.parent") && e.contains("\"bad@file\" is invalid")),
        "{errors:?}"
    );
}

#[test]
fn priority_zero_means_rule_length() {
    let r = run(&[provider(
        "file",
        &format!(
            "{BASE}\n[http.routers.r]\nrule = \"Host(`abc`)\"\nservice = \"s1\"\npriority = 0\n"
        ),
    )]);
    assert_eq!(r.table.routers[0].priority, "Host(`abc`)".len() as i64);
}

#[test]
fn retry_middlewares_and_health_checks_reach_the_table() {
    use ringway_shared::table::{MiddlewareSpec, ServiceKind};
    let toml = r#"
[http.routers.r]
rule = "Host(`a`)"
service = "s"
middlewares = ["again"]
[http.middlewares.again.retry]
attempts = 3
initialInterval = "250ms"
[http.services.s.loadBalancer]
servers = [{ url = "http://127.0.0.1:9001" }]
[http.services.s.loadBalancer.healthCheck]
path = "/ready?full=1"
interval = "2s"
timeout = "1s"
status = 204
port = 9100
hostname = "probe.internal"
method = "head"
[http.services.s.loadBalancer.healthCheck.headers]
X-Probe = "1"
"#;
    let r = run(&[provider("file", toml)]);
    assert!(r.errors.is_empty(), "{:?}", texts(&r.errors));
    let router = &r.table.routers[0];
    match router.middlewares.as_slice() {
        [MiddlewareSpec::Retry(spec)] => {
            assert_eq!(spec.attempts, 3);
            assert_eq!(spec.initial_interval, std::time::Duration::from_millis(250));
        }
        other => panic!("unexpected middlewares {other:?}"),
    }
    let ServiceKind::LoadBalancer(lb) = &r.table.services[0].kind else {
        panic!("not a load balancer");
    };
    let hc = lb.health_check.as_ref().expect("health check");
    assert_eq!(hc.path, "/ready?full=1");
    assert_eq!(hc.method, "HEAD");
    assert_eq!(hc.interval, std::time::Duration::from_secs(2));
    assert_eq!(hc.unhealthy_interval, std::time::Duration::from_secs(2));
    assert_eq!(hc.timeout, std::time::Duration::from_secs(1));
    assert_eq!(hc.status, Some(204));
    assert_eq!(hc.port, Some(9100));
    assert_eq!(hc.hostname.as_deref(), Some("probe.internal"));
    assert_eq!(hc.headers, vec![("X-Probe".to_string(), "1".to_string())]);
}

#[test]
fn bad_health_checks_and_retries_are_errors() {
    for (section, want) in [
        (
            "[http.services.s.loadBalancer.healthCheck]\npath = \"x\"",
            "must start with /",
        ),
        (
            "[http.services.s.loadBalancer.healthCheck]\npath = \"/\"\nscheme = \"https\"",
            "http only",
        ),
        (
            "[http.services.s.loadBalancer.healthCheck]\npath = \"/\"\nstatus = 999",
            "not an HTTP status",
        ),
        (
            "[http.services.s.loadBalancer.healthCheck]\npath = \"/\"\ninterval = \"0s\"",
            "more than 0",
        ),
        (
            "[http.services.s.loadBalancer.healthCheck]\npath = \"/\"\ninterval = \"soon\"",
            "invalid duration",
        ),
    ] {
        let toml = format!(
            "[http.services.s.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:9001\" }}]\n{section}\n"
        );
        let r = run(&[provider("file", &toml)]);
        assert!(r.table.services.is_empty(), "{section}");
        let errors = texts(&r.errors);
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{section}: {errors:?}"
        );
    }
    let toml = "[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s\"\nmiddlewares = [\"m\"]\n\
                [http.middlewares.m.retry]\n\
                [http.services.s.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9001\" }]\n";
    let r = run(&[provider("file", toml)]);
    assert!(r.table.routers.is_empty());
    assert!(texts(&r.errors)
        .iter()
        .any(|e| e.contains("attempts must be more than 0")));
}

#[test]
fn routers_choose_tls_options_for_their_hosts_and_disagreements_get_the_default() {
    let toml = format!(
        r#"{BASE}
[tls.options.modern]
minVersion = "VersionTLS13"
[http.routers.a]
rule = "Host(`a.test`) || Host(`A2.test`)"
service = "s1"
tls = {{ options = "modern" }}
[http.routers.b]
rule = "Host(`b.test`)"
service = "s1"
tls = {{}}
[http.routers.c1]
rule = "Host(`c.test`)"
service = "s1"
tls = {{ options = "modern@file" }}
[http.routers.c2]
rule = "Host(`c.test`) && Path(`/x`)"
service = "s1"
tls = {{}}
[http.routers.d]
rule = "Host(`d.test`)"
service = "s1"
[http.routers.d.tls]
options = "modern"
domains = [{{ main = "*.d.test", sans = ["d.test"] }}]
[http.routers.missing]
rule = "Host(`m.test`)"
service = "s1"
tls = {{ options = "nope" }}
[tcp.routers.t]
rule = "HostSNI(`t.test`)"
service = "ts"
tls = {{ options = "modern" }}
[tcp.services.ts.loadBalancer]
servers = [{{ address = "127.0.0.1:6379" }}]
"#
    );
    let r = run(&[provider("file", &toml)]);
    let sets = &r.table.tls.sni_options;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0].name, "modern@file");
    assert_eq!(sets[0].options.min_version, 13);
    assert_eq!(
        sets[0].hosts,
        ["*.d.test", "a.test", "a2.test", "d.test", "t.test"]
    );
    let missing = r
        .routers
        .iter()
        .find(|s| s.name == "missing@file")
        .expect("status");
    assert!(!missing.enabled);
    assert_eq!(missing.errors, ["unknown TLS options: nope@file"]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.location.contains("c.test") && w.message.contains("c1@file")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.table.routers.len(), 5);
}

#[test]
fn entry_point_tls_models_give_routers_tls_and_split_multi_entry_point_ones() {
    let cfg = StaticConfig::from_args(&[
        "--entrypoints.web.address=:8000".to_string(),
        "--entrypoints.websecure.address=:8443".to_string(),
        "--entrypoints.websecure.http.tls.certresolver=le".to_string(),
        "--certificatesresolvers.le.acme.tlschallenge=true".to_string(),
    ])
    .expect("static config");
    let toml = format!(
        "{BASE}
[http.routers.a]
rule = \"Host(`a.test`)\"
service = \"s1\"
[http.routers.b]
rule = \"Host(`b.test`)\"
service = \"s1\"
entryPoints = [\"websecure\"]
tls = {{}}
[http.routers.c]
rule = \"Host(`c.test`)\"
service = \"s1\"
entryPoints = [\"websecure\"]
"
    );
    let r = resolve(&[provider("file", &toml)], &cfg, &no_dns);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let routers: Vec<(&str, &[String], bool)> = r
        .table
        .routers
        .iter()
        .map(|x| (x.name.as_str(), x.entry_points.as_slice(), x.tls))
        .collect();
    let web = ["web".to_string()];
    let secure = ["websecure".to_string()];
    assert_eq!(
        routers,
        vec![
            ("websecure-a@file", &secure[..], true),
            ("a@file", &web[..], false),
            ("b@file", &secure[..], true),
            ("c@file", &secure[..], true),
        ]
    );
    let requested: Vec<&[String]> = r
        .cert_requests
        .iter()
        .map(|c| c.domains.as_slice())
        .collect();
    assert_eq!(
        requested,
        [["a.test".to_string()], ["c.test".to_string()]],
        "b has its own tls section without a resolver"
    );
}

#[test]
fn internal_services_and_routers_follow_the_static_configuration() {
    let cfg = StaticConfig::from_args(&[
        "--entrypoints.web.address=:8000".to_string(),
        "--entrypoints.traefik.address=127.0.0.1:8080".to_string(),
        "--api.insecure=true".to_string(),
        "--metrics.prometheus=true".to_string(),
    ])
    .expect("static config");
    let p = provider(
        "file",
        "[http.routers.admin]\nrule = \"Host(`admin`)\"\nservice = \"api@internal\"\n\
         [http.routers.teapot]\nrule = \"Host(`tea`)\"\nservice = \"noop@internal\"\n\
         [http.routers.pinged]\nrule = \"Host(`p`)\"\nservice = \"ping@internal\"\n",
    );
    let r = resolve(&[p], &cfg, &no_dns);
    let kind = |name: &str| {
        r.table
            .services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.kind.clone())
    };
    assert_eq!(
        kind("api@internal"),
        Some(ServiceKind::Internal(InternalService::Api))
    );
    assert_eq!(
        kind("dashboard@internal"),
        Some(ServiceKind::Internal(InternalService::Dashboard))
    );
    assert_eq!(
        kind("prometheus@internal"),
        Some(ServiceKind::Internal(InternalService::Prometheus))
    );
    assert_eq!(
        kind("noop@internal"),
        Some(ServiceKind::Internal(InternalService::Noop))
    );
    // ping@internal needs ping.manualRouting: that router is disabled, the others served.
    let names: Vec<&str> = r.table.routers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin@file",
            "teapot@file",
            "api@internal",
            "dashboard@internal",
            "prometheus@internal"
        ]
    );
    let internal = |name: &str| {
        r.table
            .routers
            .iter()
            .find(|x| x.name == name)
            .map(|x| (x.entry_points.clone(), x.rule.clone()))
    };
    assert_eq!(
        internal("prometheus@internal"),
        Some((
            vec!["traefik".to_string()],
            "PathPrefix(`/metrics`)".to_string()
        ))
    );
    assert_eq!(
        internal("api@internal").map(|x| x.1),
        Some("PathPrefix(`/api`)".to_string())
    );
    assert!(texts(&r.errors)
        .iter()
        .any(|e| e.contains("pinged") && e.contains("ping.manualRouting")));
}
