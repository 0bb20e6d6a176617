use super::*;
use std::fs;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// An environment with no config file and no default directory.
fn empty_env(dir: &Path) -> ConfigEnv {
    ConfigEnv {
        search_dirs: vec![dir.join("search")],
        default_dynamic_dir: dir.join("ringway.d"),
    }
}

fn parse(a: &[&str]) -> Result<StaticConfig, ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    StaticConfig::from_args_with(&args(a), &empty_env(dir.path()))
}

fn messages(errs: &ConfigErrors) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_with_nothing_configured() {
    let cfg = parse(&[]).expect("valid");
    // The embedded default: `web`, and the dashboard, API and ping on loopback only.
    assert_eq!(cfg.entry_point_names(), ["traefik", "web"]);
    assert_eq!(cfg.default_entry_points(), ["web"]);
    let traefik = &cfg.entry_points["traefik"];
    assert_eq!(traefik.address, "127.0.0.1:8080".parse().expect("addr"));
    assert!(traefik.ping.is_some());
    assert!(cfg.api.as_ref().is_some_and(|a| a.insecure && a.dashboard));
    assert!(cfg.metrics.is_none());
    let web = &cfg.entry_points["web"];
    assert_eq!(web.address, "0.0.0.0:8000".parse().expect("addr"));
    assert_eq!(web.read_timeout, Duration::from_secs(60));
    assert_eq!(web.write_timeout, Duration::ZERO);
    assert_eq!(web.idle_timeout, Duration::from_secs(180));
    assert_eq!(web.grace_timeout, Duration::from_secs(10));
    assert_eq!(web.request_accept_grace_timeout, Duration::ZERO);
    assert!(!web.trusts("10.0.0.1".parse().expect("ip")));
    assert_eq!(cfg.providers.file, None);
    assert_eq!(cfg.providers.throttle, Duration::ZERO);
    assert_eq!(cfg.log, Log::default());
    assert_eq!(cfg.log.level, LogLevel::Error);
    assert_eq!(cfg.servers_transport, ServersTransport::default());
    assert_eq!(cfg.servers_transport.max_idle_conns_per_host, 200);
    assert_eq!(cfg.dataplane.workers, None);
    assert!(cfg.unsupported.is_empty());
    assert_eq!(cfg.config_file, None);
}

#[test]
fn default_file_provider_when_ringway_d_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = empty_env(dir.path());
    fs::create_dir(&env.default_dynamic_dir).expect("mkdir");
    let cfg = StaticConfig::from_args_with(&[], &env).expect("valid");
    assert_eq!(
        cfg.providers.file,
        Some(FileProvider {
            filename: None,
            directory: Some(env.default_dynamic_dir.clone()),
            watch: true,
        })
    );
    // Any configured provider turns the default off, even an unsupported one.
    let cfg = StaticConfig::from_args_with(&args(&["--providers.docker"]), &env).expect("valid");
    assert_eq!(cfg.providers.file, None);
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
    let cfg = StaticConfig::from_args_with(&args(&["--providers.swarm"]), &env).expect("valid");
    assert_eq!(cfg.providers.file, None);
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
    let cfg =
        StaticConfig::from_args_with(&args(&["--providers.consulCatalog"]), &env).expect("valid");
    assert_eq!(cfg.providers.file, None);
    assert_eq!(cfg.unsupported, ["providers.consulCatalog"]);
}

#[test]
fn swarm_provider_v3_and_v2_swarm_mode() {
    use super::{DOCKER_DEFAULT_ENDPOINT, DOCKER_DEFAULT_RULE};
    use std::time::Duration;
    let cfg = parse(&[
        "--providers.swarm.network=front",
        "--providers.swarm.refreshSeconds=5",
        "--providers.swarm.exposedByDefault=false",
    ])
    .expect("valid");
    let swarm = cfg.providers.swarm.expect("swarm");
    assert_eq!(swarm.name, "swarm");
    assert_eq!(swarm.refresh, Duration::from_secs(5));
    assert_eq!(swarm.docker.network.as_deref(), Some("front"));
    assert!(!swarm.docker.exposed_by_default);
    assert_eq!(swarm.docker.endpoint, DOCKER_DEFAULT_ENDPOINT);
    assert_eq!(swarm.docker.default_rule, DOCKER_DEFAULT_RULE);
    assert!(cfg.providers.docker.is_none());

    // v2: the Docker provider in swarm mode is the Swarm provider, named "docker".
    let cfg = parse(&[
        "--providers.docker.swarmMode=true",
        "--providers.docker.swarmModeRefreshSeconds=30s",
    ])
    .expect("valid");
    assert!(cfg.providers.docker.is_none());
    let swarm = cfg.providers.swarm.expect("swarm");
    assert_eq!(swarm.name, "docker");
    assert_eq!(swarm.refresh, Duration::from_secs(30));
    let cfg = parse(&["--providers.swarm"]).expect("valid");
    assert_eq!(
        cfg.providers.swarm.expect("swarm").refresh,
        Duration::from_secs(15)
    );

    // Options of the other version are errors naming them.
    let err = parse(&["--providers.swarm.swarmMode=true"]).expect_err("v2 option on v3");
    assert!(
        err.to_string().contains("providers.swarm.swarmMode"),
        "{err}"
    );
    let err = parse(&["--providers.docker.refreshSeconds=3"]).expect_err("v3 option on docker");
    assert!(
        err.to_string().contains("providers.docker.refreshSeconds"),
        "{err}"
    );
}

#[test]
fn docker_provider_flags_and_defaults() {
    use super::{DockerProvider, DOCKER_DEFAULT_ENDPOINT, DOCKER_DEFAULT_RULE};
    let cfg = parse(&["--providers.docker"]).expect("valid");
    assert_eq!(
        cfg.providers.docker,
        Some(DockerProvider {
            endpoint: DOCKER_DEFAULT_ENDPOINT.to_string(),
            exposed_by_default: true,
            network: None,
            default_rule: DOCKER_DEFAULT_RULE.to_string(),
            constraints: None,
            watch: true,
            allow_empty_services: false,
        })
    );
    let cfg = parse(&[
        "--providers.docker.endpoint=tcp://127.0.0.1:2375",
        "--providers.docker.exposedByDefault=false",
        "--providers.docker.network=web",
        "--providers.docker.defaultRule=Host(`{{ .Name }}.example.com`)",
        "--providers.docker.constraints=Label(`a`,`b`)",
        "--providers.docker.watch=false",
        "--providers.docker.allowEmptyServices=true",
        "--providers.docker.tls.ca=/ca.pem",
    ])
    .expect("valid");
    let d = cfg.providers.docker.expect("docker provider");
    assert_eq!(d.endpoint, "tcp://127.0.0.1:2375");
    assert!(!d.exposed_by_default && !d.watch && d.allow_empty_services);
    assert_eq!(d.network.as_deref(), Some("web"));
    assert_eq!(d.default_rule, "Host(`{{ .Name }}.example.com`)");
    assert_eq!(d.constraints.as_deref(), Some("Label(`a`,`b`)"));
    assert_eq!(cfg.unsupported, ["providers.docker.tls"]);
    assert_eq!(
        parse(&["--providers.docker=false"])
            .expect("valid")
            .providers
            .docker,
        None
    );
    let err = parse(&["--providers.docker.exposedByDefault=maybe"]).expect_err("bad bool");
    assert!(err.to_string().contains("exposedByDefault"), "{err}");
}

#[test]
fn entry_points_from_flags() {
    let cfg = parse(&[
        "--entrypoints.web.address=:80",
        "--entryPoints.websecure.address",
        "[::]:443",
        "--entrypoints.local.address=127.0.0.1:8080/tcp",
        "--entrypoints.web.transport.respondingTimeouts.readTimeout=5s",
        "--entrypoints.web.transport.lifeCycle.graceTimeOut=2",
        "--entrypoints.web.transport.lifecycle.requestacceptgracetimeout=1s",
        "--entrypoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,192.168.1.1",
        "--entrypoints.websecure.forwardedheaders.insecure",
        "--entrypoints.websecure.asDefault=true",
        "--entrypoints.websecure.transport.respondingTimeouts.http.idleTimeout=7s",
        "--entrypoints.websecure.transport.respondingTimeouts.tcp.idleTimeout=1m",
    ])
    .expect("valid");
    assert_eq!(cfg.entry_point_names(), ["local", "web", "websecure"]);
    let web = &cfg.entry_points["web"];
    assert_eq!(web.address, "0.0.0.0:80".parse().expect("addr"));
    assert_eq!(web.read_timeout, Duration::from_secs(5));
    assert_eq!(web.grace_timeout, Duration::from_secs(2));
    assert_eq!(web.request_accept_grace_timeout, Duration::from_secs(1));
    assert!(web.trusts("10.1.2.3".parse().expect("ip")));
    assert!(web.trusts("::ffff:10.1.2.3".parse().expect("ip")));
    assert!(web.trusts("192.168.1.1".parse().expect("ip")));
    assert!(!web.trusts("192.168.1.2".parse().expect("ip")));
    assert_eq!(web.tcp_idle_timeout, Duration::ZERO);
    let ws = &cfg.entry_points["websecure"];
    assert_eq!(ws.address, "[::]:443".parse().expect("addr"));
    assert_eq!(ws.idle_timeout, Duration::from_secs(7));
    assert_eq!(ws.tcp_idle_timeout, Duration::from_secs(60));
    assert!(ws.trusts("8.8.8.8".parse().expect("ip")));
    assert_eq!(
        cfg.entry_points["local"].address,
        "127.0.0.1:8080".parse().expect("addr")
    );
    assert_eq!(cfg.default_entry_points(), ["websecure"]);
}

#[test]
fn default_entry_points_are_all_but_traefik_without_as_default() {
    let cfg = parse(&[
        "--entrypoints.web.address=:80",
        "--entrypoints.other.address=:81",
        "--entrypoints.traefik.address=:8080",
    ])
    .expect("valid");
    assert_eq!(cfg.default_entry_points(), ["other", "web"]);
}

#[test]
fn unknown_keys_are_errors_naming_the_flag() {
    let errs = parse(&["--entrypoints.web.adress=:80", "--log.levle=debug"]).expect_err("bad");
    let msgs = messages(&errs);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("flag --entrypoints.web.adress: unknown key \"adress\""),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with("flag --log.levle: unknown key"),
        "{msgs:?}"
    );
}

#[test]
fn invalid_values_name_the_flag() {
    let errs = parse(&[
        "--entrypoints.web.address=:80",
        "--entrypoints.web.transport.respondingTimeouts.readTimeout=abc",
    ])
    .expect_err("bad");
    assert_eq!(
        messages(&errs),
        ["flag --entrypoints.web.transport.respondingTimeouts.readTimeout: invalid duration \"abc\""]
    );
    let errs = parse(&["--entrypoints.dns.address=:53/udp"]).expect_err("udp");
    assert_eq!(
        messages(&errs),
        ["flag --entrypoints.dns.address: invalid address \":53/udp\": udp not supported yet"]
    );
    let errs = parse(&["--entrypoints.web.address=example.com:80"]).expect_err("host");
    assert!(messages(&errs)[0].contains("must be an IP address"));
    let errs =
        parse(&["--entrypoints.web.forwardedheaders.trustedips=10.0.0.0/99"]).expect_err("cidr");
    let msgs = messages(&errs);
    assert!(
        msgs.iter()
            .any(|m| m.contains("invalid IP address or CIDR range")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("address is required")),
        "{msgs:?}"
    );
}

#[test]
fn entry_point_redirections_resolve_the_target_port() {
    let cfg = parse(&[
        "--entrypoints.web.address=:80",
        "--entrypoints.websecure.address=:8443",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
    ])
    .expect("valid");
    let r = cfg.entry_points["web"].redirect.clone().expect("redirect");
    assert_eq!(
        (r.scheme.as_str(), r.port, r.permanent),
        ("https", 8443, true)
    );
    assert!(parse(&[
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=nowhere",
    ])
    .is_err());
}

#[test]
fn well_known_traefik_settings_are_listed_not_refused() {
    let cfg = parse(&[
        "--api.insecure=true",
        "--api.dashboard",
        "--metrics.prometheus",
        "--accesslog",
        "--ping",
        "--providers.docker.exposedbydefault=false",
        "--providers.redis.endpoints=127.0.0.1:6379",
        "--global.checknewversion=false",
        "--global.sendAnonymousUsage",
        "--serverstransport.insecureskipverify=true",
        "--certificatesresolvers.le.acme.email=a@b.c",
        "--certificatesresolvers.le.acme.tlschallenge=true",
        "--experimental.plugins.x.modulename=github.com/x/y",
        "--tracing.otlp",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http2.maxConcurrentStreams=10",
        "--entrypoints.web.proxyProtocol.trustedIPs=10.0.0.1",
        "--entrypoints.websecure.address=:443",
        "--entrypoints.websecure.http.tls.certresolver=le",
        "--providers.file.directory=/etc/x",
    ])
    .expect("valid");
    assert_eq!(
        cfg.unsupported,
        [
            "serversTransport.insecureSkipVerify",
            "entryPoints.web.proxyProtocol",
            "entryPoints.web.http2",
            "tracing",
            "experimental",
        ]
    );
    // The entry point TLS model is applied to routers by the aggregator.
    assert_eq!(
        cfg.entry_points["websecure"].http_tls,
        Some(EntryPointTls {
            cert_resolver: Some("le".into()),
            ..Default::default()
        })
    );
    // ping is implemented: on the `traefik` entry point, created on :8080.
    let traefik = cfg
        .entry_points
        .get("traefik")
        .expect("traefik entry point");
    assert_eq!(traefik.address.port(), 8080);
    assert!(traefik.ping.is_some());
    assert_eq!(
        cfg.api,
        Some(Api {
            insecure: true,
            dashboard: true,
            base_path: String::new()
        })
    );
    assert_eq!(cfg.metrics, Some(Prometheus::default()));
    assert_eq!(
        cfg.providers.file,
        Some(FileProvider {
            filename: None,
            directory: Some(PathBuf::from("/etc/x")),
            watch: true
        })
    );
}

#[test]
fn entry_point_middlewares_are_refused() {
    let errs = parse(&[
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.middlewares=auth@file",
    ])
    .expect_err("refused");
    assert_eq!(
        messages(&errs),
        ["flag --entrypoints.web.http.middlewares: entry point middlewares are not supported yet"]
    );
}

#[test]
fn log_settings() {
    let cfg = parse(&[
        "--log.level=debug",
        "--log.format",
        "JSON",
        "--log.filePath=/var/log/r.log",
    ])
    .expect("valid");
    assert_eq!(cfg.log.level, LogLevel::Debug);
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.log.file_path, Some(PathBuf::from("/var/log/r.log")));
    let errs = parse(&["--log.level=loud"]).expect_err("bad");
    assert!(messages(&errs)[0].starts_with("flag --log.level: invalid log level \"loud\""));
    assert_eq!("warning".parse::<LogLevel>(), Ok(LogLevel::Warn));
}

#[test]
fn servers_transport_and_dataplane() {
    let cfg = parse(&[
        "--serversTransport.forwardingTimeouts.dialTimeout=5s",
        "--serverstransport.forwardingtimeouts.responseheadertimeout=10s",
        "--serverstransport.maxidleconnsperhost=-1",
        "--dataplane.workers=3",
        "--providers.providersThrottleDuration=2s",
    ])
    .expect("valid");
    let t = cfg.servers_transport.forwarding_timeouts;
    assert_eq!(t.dial, Duration::from_secs(5));
    assert_eq!(t.response_header, Duration::from_secs(10));
    assert_eq!(t.idle_conn, Duration::from_secs(90));
    assert_eq!(cfg.servers_transport.max_idle_conns_per_host, 0);
    assert_eq!(cfg.dataplane.workers, Some(3));
    assert_eq!(cfg.providers.throttle, Duration::from_secs(2));
    assert!(parse(&["--dataplane.workers=0"]).is_err());
}

#[test]
fn file_provider_settings() {
    let cfg = parse(&[
        "--providers.file.filename=/etc/dyn.toml",
        "--providers.file.watch=false",
    ])
    .expect("valid");
    assert_eq!(
        cfg.providers.file,
        Some(FileProvider {
            filename: Some(PathBuf::from("/etc/dyn.toml")),
            directory: None,
            watch: false
        })
    );
    let errs = parse(&["--providers.file"]).expect_err("nothing to read");
    assert_eq!(
        messages(&errs),
        ["flag --providers.file: neither filename nor directory is defined"]
    );
}

#[test]
fn duplicate_addresses_are_refused() {
    let errs = parse(&[
        "--entrypoints.a.address=:80",
        "--entrypoints.b.address=0.0.0.0:80",
    ])
    .expect_err("dup");
    assert!(
        messages(&errs)[0].contains("also used by entry point"),
        "{errs}"
    );
}

const TOML: &str = r#"
[entryPoints.web]
address = ":80"
[entryPoints.web.transport.respondingTimeouts]
readTimeout = 30
[providers.file]
directory = "/etc/ringway.d"
watch = false
[log]
level = "INFO"
[api]
dashboard = true
"#;

#[test]
fn config_file_then_flags_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("traefik.toml");
    fs::write(&file, TOML).expect("write");
    let configfile = format!("--configfile={}", file.display());
    let cfg = StaticConfig::from_args_with(
        &args(&[
            &configfile,
            "--log.level=debug",
            "--providers.file.watch=true",
        ]),
        &empty_env(dir.path()),
    )
    .expect("valid");
    assert_eq!(cfg.config_file.as_deref(), Some(file.as_path()));
    assert_eq!(
        cfg.entry_points["web"].read_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(cfg.log.level, LogLevel::Debug);
    let fp = cfg.providers.file.expect("file provider");
    assert!(fp.watch);
    assert_eq!(fp.directory, Some(PathBuf::from("/etc/ringway.d")));
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
    assert!(cfg.api.is_some_and(|a| a.dashboard && !a.insecure));
}

#[test]
fn config_file_found_on_the_search_path_only_without_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = empty_env(dir.path());
    fs::create_dir(&env.search_dirs[0]).expect("mkdir");
    let yaml = "entryPoints:\n  web:\n    address: ':9000'\nlog:\n  level: warn\n";
    let file = env.search_dirs[0].join("traefik.yml");
    fs::write(&file, yaml).expect("write");
    let cfg = StaticConfig::from_args_with(&[], &env).expect("valid");
    assert_eq!(cfg.config_file.as_deref(), Some(file.as_path()));
    assert_eq!(cfg.entry_points["web"].address.port(), 9000);
    assert_eq!(cfg.log.level, LogLevel::Warn);
    let cfg = StaticConfig::from_args_with(&args(&["--log.level=info"]), &env).expect("valid");
    assert_eq!(cfg.config_file, None);
    assert_eq!(cfg.entry_points["web"].address.port(), 8000);
}

#[test]
fn every_file_error_is_reported_with_file_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("traefik.toml");
    fs::write(
        &file,
        "[entryPoints.web]\nadress = \":80\"\n[entryPoints.web.transport.respondingTimeouts]\nreadTimeout = \"abc\"\n[lgo]\nlevel = 1\n",
    )
    .expect("write");
    let errs = StaticConfig::from_args_with(
        &args(&["--configFile", &file.display().to_string()]),
        &empty_env(dir.path()),
    )
    .expect_err("bad");
    let msgs = messages(&errs);
    let f = file.display();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[0].starts_with(&format!("{f}: entryPoints.web.adress: unknown key")),
        "{msgs:?}"
    );
    assert_eq!(
        msgs[1],
        format!("{f}: entryPoints.web.transport.respondingTimeouts.readTimeout: invalid duration \"abc\"")
    );
    assert!(
        msgs[2].starts_with(&format!("{f}: lgo: unknown key")),
        "{msgs:?}"
    );
}

#[test]
fn missing_or_unparsable_config_file() {
    let errs = parse(&["--configfile=/nonexistent/traefik.toml"]).expect_err("missing");
    assert!(messages(&errs)[0].starts_with("/nonexistent/traefik.toml: cannot read"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("traefik.toml");
    fs::write(&file, "[entryPoints\n").expect("write");
    let errs = StaticConfig::from_args_with(
        &args(&[&format!("--configfile={}", file.display())]),
        &empty_env(dir.path()),
    )
    .expect_err("syntax");
    assert!(
        messages(&errs)[0].contains("TOML syntax error at line 1"),
        "{errs}"
    );
}

#[test]
fn addresses() {
    let ok = |s: &str| parse_entry_point_address(s).expect(s);
    assert_eq!(ok(":80"), "0.0.0.0:80".parse().expect("a"));
    assert_eq!(ok("[::1]:80"), "[::1]:80".parse().expect("a"));
    assert_eq!(ok("localhost:80"), "127.0.0.1:80".parse().expect("a"));
    assert_eq!(ok(":0"), "0.0.0.0:0".parse().expect("a"));
    for bad in ["80", ":http", ":70000", "[::1:80", "::1:80", ":80/sctp", ""] {
        assert!(parse_entry_point_address(bad).is_err(), "{bad}");
    }
}

#[test]
fn kv_providers_as_traefik() {
    let cfg = parse(&["--providers.redis", "--providers.etcd=true"]).expect("valid");
    let redis = cfg.providers.redis.expect("redis");
    assert_eq!(redis.endpoints, ["127.0.0.1:6379"]);
    assert_eq!(redis.root_key, "traefik");
    assert_eq!(redis.db, 0);
    assert_eq!(redis.tls, None);
    let etcd = cfg.providers.etcd.expect("etcd");
    assert_eq!(etcd.kind, KvStoreKind::Etcd);
    assert_eq!(etcd.endpoints, ["127.0.0.1:2379"]);
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);

    let cfg = parse(&[
        "--providers.redis.endpoints=10.0.0.1:6380,10.0.0.2:6380",
        "--providers.redis.rootKey=/edge/",
        "--providers.redis.db=3",
        "--providers.redis.username=u",
        "--providers.redis.password=p",
        "--providers.redis.tls.ca=/ca.pem",
        "--providers.redis.tls.insecureSkipVerify=true",
    ])
    .expect("valid");
    let redis = cfg.providers.redis.expect("redis");
    assert_eq!(redis.endpoints, ["10.0.0.1:6380", "10.0.0.2:6380"]);
    assert_eq!(redis.root_key, "edge");
    assert_eq!(redis.db, 3);
    assert_eq!(redis.username.as_deref(), Some("u"));
    assert_eq!(redis.password.as_deref(), Some("p"));
    let tls = redis.tls.expect("tls");
    assert_eq!(tls.ca, Some(PathBuf::from("/ca.pem")));
    assert!(tls.insecure_skip_verify);

    let err = parse(&[
        "--providers.redis.endpoints=nohost",
        "--providers.etcd.db=1",
    ])
    .expect_err("invalid");
    let text = err.to_string();
    assert!(text.contains("invalid endpoint \"nohost\""), "{text}");
    assert!(text.contains("providers.etcd.db"), "{text}");
    let err = parse(&["--providers.etcd.endpoints=http://etcd:2379"]).expect_err("invalid");
    assert!(err.to_string().contains("no scheme"), "{err}");
    let err = parse(&["--providers.redis.tls.cert=/c.pem"]).expect_err("invalid");
    assert!(err.to_string().contains("cert and key"), "{err}");
}

#[test]
fn acme_resolver_defaults_and_values() {
    let cfg = parse(&[
        "--entrypoints.web.address=:8000",
        "--entrypoints.websecure.address=:8443",
        "--certificatesresolvers.le.acme.email=a@example.com",
        "--certificatesresolvers.le.acme.httpchallenge.entrypoint=web",
        "--certificatesresolvers.pb.acme.tlschallenge=true",
        "--certificatesresolvers.pb.acme.caserver=https://127.0.0.1:14000/dir",
        "--certificatesresolvers.pb.acme.storage=/tmp/pb.json",
        "--certificatesresolvers.pb.acme.keytype=EC256",
        "--certificatesresolvers.pb.acme.certificatesduration=24",
        "--certificatesresolvers.pb.acme.eab.kid=k1",
        "--certificatesresolvers.pb.acme.eab.hmacencoded=aGVsbG8",
    ])
    .expect("valid");
    let le = &cfg.certificates_resolvers["le"];
    assert_eq!(le.email.as_deref(), Some("a@example.com"));
    assert_eq!(le.storage, PathBuf::from("acme.json"));
    assert_eq!(le.ca_server, LETS_ENCRYPT_PRODUCTION);
    assert_eq!(le.key_type, AcmeKeyType::Rsa4096);
    assert_eq!(le.certificates_duration_hours, 2160);
    assert_eq!(le.http_challenge_entry_point.as_deref(), Some("web"));
    assert!(!le.tls_challenge);
    let pb = &cfg.certificates_resolvers["pb"];
    assert!(pb.tls_challenge);
    assert_eq!(pb.ca_server, "https://127.0.0.1:14000/dir");
    assert_eq!(pb.storage, PathBuf::from("/tmp/pb.json"));
    assert_eq!(pb.key_type, AcmeKeyType::Ec256);
    assert_eq!(pb.certificates_duration_hours, 24);
    assert_eq!(
        pb.eab,
        Some(AcmeEab {
            kid: "k1".into(),
            hmac_encoded: "aGVsbG8".into()
        })
    );
    assert!(!cfg
        .unsupported
        .iter()
        .any(|u| u.contains("certificatesResolvers")));
}

#[test]
fn acme_resolver_errors_name_the_key() {
    let errs = parse(&[
        "--entrypoints.web.address=:8000",
        "--certificatesresolvers.le.acme.keytype=DSA",
        "--certificatesresolvers.le.acme.httpchallenge.entrypoint=nope",
    ])
    .expect_err("invalid");
    let m = messages(&errs).join("\n");
    assert!(m.contains("--certificatesresolvers.le.acme.keytype"), "{m}");
    assert!(m.contains("DSA"), "{m}");
    assert!(
        m.contains("--certificatesresolvers.le.acme.httpchallenge.entrypoint"),
        "{m}"
    );
    assert!(m.contains("nope"), "{m}");
}

#[test]
fn api_and_prometheus_settings_with_traefik_defaults() {
    let cfg = parse(&[
        "--api.dashboard=false",
        "--api.basepath=/proxy/",
        "--metrics.prometheus.buckets=0.05,0.5,2",
        "--metrics.prometheus.addrouterslabels=true",
        "--metrics.prometheus.entrypoint=web",
        "--metrics.statsd.address=localhost:8125",
        "--ping.manualrouting=true",
        "--entrypoints.web.address=:80",
    ])
    .expect("valid");
    let api = cfg.api.expect("api on");
    assert!(!api.insecure && !api.dashboard);
    assert_eq!(api.base_path, "/proxy");
    let m = cfg.metrics.expect("metrics on");
    assert_eq!(m.buckets, [0.05, 0.5, 2.0]);
    assert!(m.add_routers_labels && m.add_services_labels && m.add_entry_points_labels);
    assert_eq!(m.entry_point, "web");
    assert_eq!(cfg.unsupported, ["metrics.statsD"]);
    // Nothing needed the `traefik` entry point: ping is routed by hand.
    assert!(!cfg.entry_points.contains_key("traefik"));
    assert!(cfg.ping_manual.is_some());
    assert!(cfg.entry_points["web"].ping.is_none());

    for (flag, message) in [
        ("--metrics.prometheus.buckets=1,0.5", "ascending"),
        ("--metrics.prometheus.entrypoint=nope", "doesn't exist"),
        ("--api.basepath=proxy", "must start with '/'"),
    ] {
        let err = parse(&[flag]).expect_err(flag).to_string();
        assert!(err.contains(message), "{flag}: {err}");
    }
    assert!(parse(&["--api=false"]).expect("valid").api.is_none());
}
