//! End to end: the Swarm provider against a real engine in swarm mode (`docker swarm init`
//! when it is not a manager yet; never `swarm leave`: other tests share the engine).
//!
//! - A service on the host network (busybox httpd on a free port), labelled like a seed's
//!   `deploy.labels`: ringway on the host routes to it; a `docker service update
//!   --label-add` that changes the rule is followed (the delay is printed).
//! - Services on an overlay network the test creates: the provider's address choice against
//!   the engine's own data (the task addresses from `docker inspect`, the VIP for `lbswarm`).
//!   This kernel has no IPVS, so the VIP and the mesh cannot forward here, and the host cannot
//!   reach overlay addresses: the choice is checked, not the traffic.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::docker::{docker, docker_raw, wait_marker, DockerEnv};
use support::{free_port, Ringway, READY_TIMEOUT};

/// Removes the services and networks a test created, even when it fails.
struct SwarmObjects {
    services: Vec<String>,
    networks: Vec<String>,
}

impl Drop for SwarmObjects {
    fn drop(&mut self) {
        for s in &self.services {
            let _ = docker_raw(&["service", "rm", s]);
        }
        for s in &self.services {
            support::docker::wait_service_gone(s);
        }
        for n in &self.networks {
            // The service's tasks leave the network asynchronously.
            for _ in 0..50 {
                if docker_raw(&["network", "rm", n]).status.success() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn ringway(env: &DockerEnv, extra: &[String]) -> (Ringway, SocketAddr) {
    let port = free_port();
    let mut args = vec![
        format!("--entrypoints.web.address=127.0.0.1:{port}"),
        "--providers.swarm".to_string(),
        "--providers.swarm.refreshSeconds=30".to_string(),
        format!("--providers.swarm.constraints={}", env.constraint()),
        "--log.level=INFO".to_string(),
    ];
    args.extend(extra.iter().cloned());
    (
        Ringway::start(&args),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

#[test]
fn a_labelled_service_is_routed_and_a_service_update_is_followed() {
    support::docker::ensure_swarm();
    let env = DockerEnv::new("swarm-host");
    let port = free_port();
    let name = env.name("web");
    let marker = format!("marker-{name}");
    let mut objects = SwarmObjects {
        services: Vec::new(),
        networks: Vec::new(),
    };
    objects.services.push(name.clone());
    let script =
        format!("mkdir -p /www && echo {marker} > /www/index.html && httpd -f -p {port} -h /www");
    docker(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &name,
        "--network",
        "host",
        "--label",
        &format!("ringway.test={}", env.constraint_value()),
        "--label",
        "traefik.http.routers.web.rule=Host(`swarm.test`)",
        "--label",
        &format!("traefik.http.services.web.loadbalancer.server.port={port}"),
        &env.image,
        "sh",
        "-c",
        &script,
    ]);
    let (r, addr) = ringway(&env, &[]);
    wait_marker(addr, "swarm.test", &marker, READY_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "the service was never routed\n{}\n{}",
            docker(&["service", "ps", "--no-trunc", &name]),
            r.logs()
        )
    });

    // The seeds change a router by updating the service's labels.
    let started = Instant::now();
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "traefik.http.routers.web.rule=Host(`moved.test`)",
        &name,
    ]);
    let took = wait_marker(addr, "moved.test", &marker, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the updated rule was never routed\n{}", r.logs()));
    eprintln!(
        "docker service update -> new rule routed in {:.0} ms (update command returned after {:.0} ms)",
        started.elapsed().as_secs_f64() * 1e3,
        (started.elapsed() - took).as_secs_f64() * 1e3
    );
    assert_eq!(
        support::docker::status(addr, "swarm.test"),
        404,
        "the old rule still routes"
    );
}

#[test]
fn task_addresses_and_lbswarm_vips_match_the_engine() {
    support::docker::ensure_swarm();
    let env = DockerEnv::new("swarm-overlay");
    let net = env.name("overlay");
    let mut objects = SwarmObjects {
        services: Vec::new(),
        networks: vec![net.clone()],
    };
    docker(&[
        "network",
        "create",
        "--driver",
        "overlay",
        "--attachable",
        &net,
    ]);
    let tasks_svc = env.name("tasks");
    let vip_svc = env.name("vip");
    for (svc, lbswarm, replicas) in [(&tasks_svc, false, "2"), (&vip_svc, true, "1")] {
        objects.services.push(svc.clone());
        let mut args = vec![
            "service".to_string(),
            "create".into(),
            "--detach".into(),
            "--no-resolve-image".into(),
            "--name".into(),
            svc.clone(),
            "--network".into(),
            net.clone(),
            "--replicas".into(),
            replicas.into(),
            "--label".into(),
            format!("traefik.http.routers.{svc}.rule=Host(`{svc}.test`)"),
            "--label".into(),
            format!("traefik.http.services.{svc}.loadbalancer.server.port=8080"),
        ];
        if lbswarm {
            args.extend(["--label".into(), "traefik.swarm.lbswarm=true".into()]);
        }
        args.extend([
            env.image.clone(),
            "sh".into(),
            "-c".into(),
            "httpd -f -p 8080 -h /".into(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&refs);
    }

    // The engine's own view: running tasks' addresses on the overlay, the service VIP.
    let engine_tasks = || -> BTreeSet<String> {
        let ids = docker(&[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            &tasks_svc,
        ]);
        ids.lines()
            .filter_map(|id| {
                let state = docker(&["inspect", "-f", "{{.Status.State}}", id]);
                (state == "running").then(|| {
                    let fmt = format!(
                        "{{{{range .NetworksAttachments}}}}{{{{if eq .Network.Spec.Name \"{net}\"}}}}{{{{index .Addresses 0}}}}{{{{end}}}}{{{{end}}}}"
                    );
                    docker(&["inspect", "-f", &fmt, id])
                })
            })
            .map(|a| format!("http://{}:8080", a.split('/').next().unwrap_or_default()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine_tasks().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the 2 tasks never ran: {}",
            docker(&["service", "ps", "--no-trunc", &tasks_svc])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let vip_fmt = "{{range .Endpoint.VirtualIPs}}{{.NetworkID}} {{.Addr}};{{end}}";
    let net_id = docker(&["network", "inspect", "-f", "{{.Id}}", &net]);
    let vips = docker(&["service", "inspect", "-f", vip_fmt, &vip_svc]);
    let vip = vips
        .split(';')
        .find_map(|e| e.strip_prefix(&format!("{net_id} ")))
        .and_then(|a| a.split('/').next())
        .map(|a| format!("http://{a}:8080"))
        .unwrap_or_else(|| panic!("no VIP on {net}: {vips}"));

    // The provider's view of the same engine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    use ringway_controlplane::providers::docker::{build, settings};
    use ringway_controlplane::providers::swarm::{containers, read_snapshot};
    use ringway_shared::config::static_config::DockerProvider;
    let provider = DockerProvider {
        endpoint: "unix:///var/run/docker.sock".into(),
        exposed_by_default: true,
        network: None,
        default_rule: ringway_shared::config::static_config::DOCKER_DEFAULT_RULE.into(),
        constraints: None,
        watch: true,
        allow_empty_services: false,
    };
    let (s, _) = settings(&provider);
    let servers = |svc: &str| -> BTreeSet<String> {
        let snap = rt
            .block_on(read_snapshot(&provider.endpoint))
            .expect("read the engine");
        let built = build(&containers(&snap), &Default::default(), &s);
        built
            .config
            .http
            .services
            .get(svc)
            .and_then(|c| c.load_balancer.as_ref())
            .map(|lb| lb.servers.iter().map(|s| s.url.clone()).collect())
            .unwrap_or_default()
    };
    let want = engine_tasks();
    assert_eq!(servers(&tasks_svc), want, "task addresses on {net}");
    assert_eq!(
        servers(&vip_svc),
        BTreeSet::from([vip]),
        "lbswarm uses the VIP"
    );
    drop(objects);
}
