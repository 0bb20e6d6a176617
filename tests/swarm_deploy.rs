//! End to end: ringway deployed as the seeds deploy Traefik — its own `FROM scratch` image
//! (the repository's Dockerfile, with the static binary built here), `docker stack deploy` of
//! `deploy/stack.yml` as a global service with host-mode ports, the Docker socket mounted,
//! routing over an overlay network to the tasks of a labelled service. Then rolling updates of
//! that 2-replica service (retry middleware and an active health check, from its labels) under
//! constant load: `--update-order start-first` and `stop-first`, ten of each, with zero failed
//! requests.
//!
//! The static build (release, `+crt-static`) takes minutes the first time; later runs reuse
//! it. Everything created (stack, services, network, image) is removed even on failure.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::{docker, docker_raw, wait_marker, DockerEnv};
use support::load::{summary, Load};
use support::{free_port, READY_TIMEOUT};

const UPDATES: usize = 10;

/// Builds the static binary the Dockerfile copies (as its header says) and the image.
fn build_image(tag: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--bin",
            "ringway",
        ])
        .status()
        .expect("run cargo");
    assert!(status.success(), "the static build failed");
    let binary = root.join("target/x86_64-unknown-linux-gnu/release/ringway");
    let file = Command::new("file").arg(&binary).output();
    if let Ok(out) = file {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("statically linked") || text.contains("static-pie"),
            "the image needs a static binary: {text}"
        );
    }
    let out = Command::new("docker")
        .current_dir(root)
        .args(["build", "-q", "-t", tag, "."])
        .output()
        .expect("run docker build");
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Deployed {
    stack: String,
    services: Vec<String>,
    network: String,
    image: String,
}

impl Drop for Deployed {
    fn drop(&mut self) {
        for s in &self.services {
            let _ = docker_raw(&["service", "rm", s]);
        }
        let _ = docker_raw(&["stack", "rm", &self.stack]);
        for s in self
            .services
            .iter()
            .cloned()
            .chain([format!("{}_ringway", self.stack)])
        {
            support::docker::wait_service_gone(&s);
        }
        for _ in 0..100 {
            if docker_raw(&["network", "rm", &self.network])
                .status
                .success()
                || !docker_raw(&["network", "inspect", &self.network])
                    .status
                    .success()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // The stack's containers go away asynchronously: the image is removed once they have.
        for _ in 0..50 {
            if docker_raw(&["rmi", "-f", &self.image]).status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn stack_deploys_and_rolling_updates_drop_no_request() {
    support::docker::ensure_swarm();
    let env = DockerEnv::new("swarm-deploy");
    let id = env.constraint_value().to_string();
    let deployed = Deployed {
        stack: format!("{id}-edge").replace('.', "-"),
        services: vec![format!("{id}-app")],
        network: format!("{id}-public"),
        image: format!("ringway-test-image:{}", std::process::id()),
    };
    build_image(&deployed.image);

    let http = free_port();
    let https = free_port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("docker")
        .current_dir(root)
        .env("RINGWAY_IMAGE", &deployed.image)
        .env("RINGWAY_HTTP_PORT", http.to_string())
        .env("RINGWAY_HTTPS_PORT", https.to_string())
        .env("RINGWAY_NETWORK", &deployed.network)
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            "deploy/stack.yml",
            &deployed.stack,
        ])
        .output()
        .expect("run docker stack deploy");
    assert!(
        out.status.success(),
        "docker stack deploy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The labelled service, on the stack's overlay network, in its own "stack".
    let app = &deployed.services[0];
    let marker = format!("marker-{app}");
    docker(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        app,
        "--network",
        &deployed.network,
        "--replicas",
        "2",
        "--update-parallelism",
        "1",
        "--update-delay",
        "0s",
        "--update-monitor",
        "500ms",
        // busybox's shell is PID 1 and ignores SIGTERM: a short grace, then SIGKILL.
        "--stop-grace-period",
        "1s",
        "--label",
        "traefik.enable=true",
        "--label",
        "traefik.http.routers.app.rule=Host(`app.test`)",
        "--label",
        "traefik.http.routers.app.middlewares=retry",
        "--label",
        "traefik.http.middlewares.retry.retry.attempts=3",
        "--label",
        "traefik.http.middlewares.retry.retry.initialInterval=20ms",
        "--label",
        "traefik.http.services.app.loadbalancer.server.port=8080",
        "--label",
        "traefik.http.services.app.loadbalancer.healthcheck.path=/",
        "--label",
        "traefik.http.services.app.loadbalancer.healthcheck.interval=1s",
        "--label",
        "traefik.http.services.app.loadbalancer.healthcheck.timeout=500ms",
        &env.image,
        "sh",
        "-c",
        &format!("mkdir -p /www && echo {marker} > /www/index.html && httpd -f -p 8080 -h /www"),
    ]);
    let addr = SocketAddr::from(([127, 0, 0, 1], http));
    let ringway_service = format!("{}_ringway", deployed.stack);
    wait_marker(addr, "app.test", &marker, READY_TIMEOUT * 4).unwrap_or_else(|| {
        let logs = docker_raw(&["service", "logs", "--raw", &ringway_service]);
        panic!(
            "the stack never served the labelled service\n{}\n{}{}",
            docker(&["service", "ps", "--no-trunc", &ringway_service]),
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        )
    });
    let logs = docker_raw(&["service", "logs", "--raw", &ringway_service]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    eprintln!(
        "ringway in its scratch image: {}",
        logs.lines()
            .find(|l| l.contains("I/O driver"))
            .unwrap_or("(no driver line)")
    );

    // Rolling updates under constant load.
    let load = Load::start(addr, "app.test", 4, Duration::from_millis(2));
    let mut took = Vec::new();
    for order in ["start-first", "stop-first"] {
        for _ in 0..UPDATES {
            let started = Instant::now();
            docker(&[
                "service",
                "update",
                "--force",
                "--quiet",
                "--update-order",
                order,
                app,
            ]);
            took.push(started.elapsed());
        }
    }
    // A moment more of traffic on the last tasks.
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    eprintln!(
        "swarm rolling updates ({UPDATES} start-first + {UPDATES} stop-first): {} requests, {} \
         failed; {}",
        report.sent,
        report.failed,
        summary("each update took", took)
    );
    assert!(report.sent > 100, "the load did not run: {report:?}");
    assert_eq!(
        report.failed,
        0,
        "requests failed during the rolling updates: {:?}\n{}",
        report.failures,
        String::from_utf8_lossy(
            &docker_raw(&["service", "logs", "--raw", &ringway_service]).stderr
        )
    );
    drop(deployed);
}
