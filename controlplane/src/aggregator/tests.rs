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
    assert_eq!(router.def.name, "r1@file");
    assert_eq!(router.def.priority, "Host(`a`)".len() as i64);
    assert_eq!(
        router.def.entry_points,
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
    let names: Vec<&str> = r
        .table
        .routers
        .iter()
        .map(|r| r.def.name.as_str())
        .collect();
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
    assert_eq!(r.table.routers[0].def.name, "r@docker");
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
    assert_eq!(r.table.routers[0].def.priority, 42);
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
    assert_eq!(r.table.routers[0].def.entry_points, vec!["web".to_string()]);
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
    assert_eq!(
        r.table.routers[0].def.entry_points,
        vec!["admin".to_string()]
    );
    assert!(r.table.routers[0].def.tls);
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
    assert_eq!(r.table.routers[0].def.priority, "Host(`abc`)".len() as i64);
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
    match router.def.middlewares.as_slice() {
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

/// `websecure` has a TLS model (`entryPoints.websecure.http.tls`), `web` none.
fn models_cfg() -> StaticConfig {
    StaticConfig::from_args(&[
        "--entrypoints.web.address=:8000".to_string(),
        "--entrypoints.websecure.address=:8443".to_string(),
        "--entrypoints.websecure.http.tls.certresolver=le".to_string(),
        "--certificatesresolvers.le.acme.tlschallenge=true".to_string(),
    ])
    .expect("static config")
}

#[test]
fn entry_point_tls_models_give_routers_tls_and_split_multi_entry_point_ones() {
    let cfg = models_cfg();
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
        .map(|x| {
            (
                x.def.name.as_str(),
                x.def.entry_points.as_slice(),
                x.def.tls,
            )
        })
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
    let names: Vec<&str> = r
        .table
        .routers
        .iter()
        .map(|r| r.def.name.as_str())
        .collect();
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
            .find(|x| x.def.name == name)
            .map(|x| (x.def.entry_points.clone(), x.def.rule.clone()))
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

/// Resolves each configuration in turn twice: with one memo kept across them, and afresh.
/// Both must give the same, whatever changed; returns the memo's resolutions.
fn with_and_without_memo(
    cfg: &StaticConfig,
    steps: &[String],
    dns: Resolver<'_>,
) -> Vec<Resolution> {
    let mut memo = Memo::default();
    let mut out = Vec::new();
    for (i, toml) in steps.iter().enumerate() {
        let providers = [provider("file", toml), provider("docker", DOCKER)];
        let kept = resolve_with(&providers, cfg, dns, &mut memo);
        let fresh = resolve(&providers, cfg, dns);
        assert_eq!(kept.table, fresh.table, "step {i}");
        assert_eq!(kept.routers, fresh.routers, "step {i}");
        assert_eq!(kept.services, fresh.services, "step {i}");
        assert_eq!(kept.middlewares, fresh.middlewares, "step {i}");
        assert_eq!(kept.errors, fresh.errors, "step {i}");
        assert_eq!(kept.warnings, fresh.warnings, "step {i}");
        assert_eq!(kept.cert_requests, fresh.cert_requests, "step {i}");
        out.push(kept);
    }
    out
}

const DOCKER: &str = r#"
[http.routers.d]
rule = "Host(`d.test`)"
service = "s1@file"
"#;

/// Routers and services of every kind the memo keeps or must not keep.
fn memo_config(extra: &str, r1_rule: &str, attempts: u32, with_s3: bool) -> String {
    let s3 = if with_s3 {
        "[http.services.s3.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9003\" }]\n"
    } else {
        ""
    };
    format!(
        r#"{BASE}
{extra}
{s3}
[http.services.dns.loadBalancer]
servers = [{{ url = "http://backend:80" }}]
[http.services.w.weighted]
services = [{{ name = "s1", weight = 1 }}, {{ name = "s3", weight = 2 }}]
[http.middlewares.m.retry]
attempts = {attempts}
[http.routers.r1]
rule = "{r1_rule}"
service = "s1"
[http.routers.r2]
rule = "Host(`r2.test`)"
service = "s1"
middlewares = ["m"]
[http.routers.r3]
rule = "Host(`r3.test`)"
service = "s3"
[http.routers.rdns]
rule = "Host(`dns.test`)"
service = "dns"
[http.routers.rw]
rule = "Host(`w.test`)"
service = "w"
[http.routers.t]
rule = "Host(`t.test`)"
service = "s1"
tls = {{}}
[http.routers.ep]
rule = "Host(`ep.test`)"
service = "s1"
entryPoints = ["web", "nowhere"]
"#
    )
}

fn router<'a>(r: &'a Resolution, name: &str) -> &'a Arc<RouterStatus> {
    r.routers.iter().find(|s| s.name == name).expect(name)
}

fn service<'a>(r: &'a Resolution, name: &str) -> &'a Arc<ServiceStatus> {
    r.services.iter().find(|s| s.name == name).expect(name)
}

#[test]
fn a_resolution_reuses_what_did_not_change_and_gives_what_a_fresh_one_gives() {
    let lookups = std::cell::Cell::new(0);
    let dns = |host: &str, port: u16| {
        lookups.set(lookups.get() + 1);
        match host {
            "backend" => Ok(vec![SocketAddr::from(([127, 0, 0, 9], port))]),
            _ => no_dns(host, port),
        }
    };
    let added =
        "[http.services.a0.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9000\" }]\n\
                 [http.routers.a0]\nrule = \"Host(`a0.test`)\"\nservice = \"a0\"\n";
    let steps = [
        memo_config("", "Host(`r1.test`)", 2, true),
        // A service that sorts first renumbers every other one.
        memo_config(added, "Host(`r1.test`)", 2, true),
        memo_config(added, "Host(`r1.test`) && Path(`/x`)", 2, true),
        memo_config(added, "Host(`r1.test`) && Path(`/x`)", 3, true),
        // r3's service goes: r3 is disabled, and w (which weighs it) is invalid.
        memo_config(added, "Host(`r1.test`) && Path(`/x`)", 3, false),
        memo_config(added, "Host(`r1.test`) && Path(`/x`)", 3, true),
        memo_config(added, "Host(`r1.test`) && Path(`/x`)", 3, true),
    ];
    let r = with_and_without_memo(&static_cfg(), &steps, &dns);
    assert!(
        lookups.get() >= 2 * steps.len(),
        "the host name is looked up every time"
    );

    let shared =
        |name: &str, a: usize, b: usize| Arc::ptr_eq(router(&r[a], name), router(&r[b], name));
    // Renumbered by a0: shared, with its service's new number.
    assert!(shared("r1@file", 0, 1) && shared("d@docker", 0, 1));
    let spec = |i: usize, name: &str| {
        r[i].table
            .routers
            .iter()
            .find(|x| x.def.name == name)
            .cloned()
            .expect(name)
    };
    assert!(Arc::ptr_eq(
        &spec(0, "r1@file").def,
        &spec(1, "r1@file").def
    ));
    assert_eq!(
        spec(1, "r1@file").service.0,
        spec(0, "r1@file").service.0 + 1
    );
    assert!(!shared("r1@file", 1, 2), "its rule changed");
    assert!(
        shared("r2@file", 1, 2) && !shared("r2@file", 2, 3),
        "its middleware changed"
    );
    assert_eq!(
        spec(3, "r2@file").def.middlewares,
        vec![MiddlewareSpec::Retry(RetrySpec {
            attempts: 3,
            initial_interval: std::time::Duration::from_millis(100),
        })]
    );
    assert!(!router(&r[4], "r3@file").enabled, "its service is gone");
    assert!(router(&r[5], "r3@file").enabled && !shared("r3@file", 4, 5));
    // Never kept: a TLS router, one with an error, one to a weighted service is (its
    // service is valid), one to a service behind a host name too.
    assert!(!shared("t@file", 5, 6) && !shared("ep@file", 5, 6));
    assert!(shared("rw@file", 5, 6) && shared("rdns@file", 5, 6));
    let same_service = |name: &str| Arc::ptr_eq(service(&r[5], name), service(&r[6], name));
    assert!(same_service("s1@file") && same_service("a0@file"));
    assert!(!same_service("w@file") && !same_service("dns@file"));
}

#[test]
fn routers_under_an_entry_point_model_are_built_every_time() {
    let cfg = models_cfg();
    let steps = [
        memo_config("", "Host(`r1.test`)", 2, true),
        memo_config("", "Host(`r1.test`)", 2, true),
    ];
    let r = with_and_without_memo(&cfg, &steps, &no_dns);
    // r1 is on both entry points (the default): split, and never kept.
    assert!(r[1].routers.iter().any(|s| s.name == "websecure-r1@file"));
    assert!(!Arc::ptr_eq(
        router(&r[0], "r1@file"),
        router(&r[1], "r1@file")
    ));
    // ep names web and an unknown one: kept only while error-free, so built again too.
    assert!(!Arc::ptr_eq(
        router(&r[0], "ep@file"),
        router(&r[1], "ep@file")
    ));
}

#[test]
fn a_view_handed_on_unchanged_is_reused_by_pointer() {
    let providers = [provider(
        "file",
        &memo_config("", "Host(`r1.test`)", 2, true),
    )];
    let mut memo = Memo::default();
    let first = resolve_with(&providers, &static_cfg(), &no_dns, &mut memo);
    // The file provider hands on a copy of its view: the same routers and services, shared.
    let copy = [providers[0].clone()];
    let a = &providers[0].config.http.routers["r1"];
    assert!(Arc::ptr_eq(a, &copy[0].config.http.routers["r1"]));
    let second = resolve_with(&copy, &static_cfg(), &no_dns, &mut memo);
    assert_eq!(first.table, second.table);
    assert!(Arc::ptr_eq(
        router(&first, "r1@file"),
        router(&second, "r1@file")
    ));
    assert!(Arc::ptr_eq(
        service(&first, "s1@file"),
        service(&second, "s1@file")
    ));
    // The same text parsed again: equal, so reused, and the memory lets the old parse go.
    assert_eq!(Arc::strong_count(a), 2, "the view's and the memory's");
    let reparsed = [provider(
        "file",
        &memo_config("", "Host(`r1.test`)", 2, true),
    )];
    let third = resolve_with(&reparsed, &static_cfg(), &no_dns, &mut memo);
    assert!(Arc::ptr_eq(
        router(&first, "r1@file"),
        router(&third, "r1@file")
    ));
    assert_eq!(Arc::strong_count(a), 1, "the view's only");
}
