//! A real Docker engine for the Docker provider's tests: a test image built from the
//! statically linked busybox (no registry needed), a bridge network of its own, containers
//! serving a marker over HTTP with `busybox httpd`. Everything is removed on drop.
//!
//! `scripts/test` installs and starts dockerd; when it is not reachable the tests fail with
//! a message saying so (they never skip).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{http_get, wait_for, TestDir};

/// The port every test container's httpd listens on.
pub const ORIGIN_PORT: u16 = 8080;

/// Runs `docker args...`, returning its output (whatever the status).
pub fn docker_raw(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the docker CLI ({e}): run scripts/test, which installs docker.io")
        })
}

/// Runs `docker args...` and returns its trimmed stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = docker_raw(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fails the test unless a Docker engine answers.
pub fn require_docker() {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the Docker provider tests need a running dockerd, and `docker info` failed: {}\n\
             scripts/test installs docker.io and starts dockerd (as root); see /tmp/ringway-dockerd.log",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "the Docker provider tests need the docker CLI and a running dockerd ({e}); \
             scripts/test installs docker.io and starts dockerd (as root)"
        ),
    }
}

/// Puts the engine in swarm mode unless it already is (never `swarm leave`: tests share it).
pub fn ensure_swarm() {
    require_docker();
    if docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]) != "active" {
        let out = docker_raw(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        // Another test may have initialized it meanwhile.
        assert_eq!(
            docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
            "active",
            "docker swarm init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One test's Docker resources: an image, a bridge network, containers.
pub struct DockerEnv {
    pub network: String,
    pub image: String,
    prefix: String,
    containers: std::cell::RefCell<Vec<String>>,
}

/// A running test container.
#[derive(Debug, Clone)]
pub struct TestContainer {
    pub name: String,
    pub id: String,
    /// What its `GET /` answers.
    pub marker: String,
}

impl DockerEnv {
    pub fn new(label: &str) -> DockerEnv {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        require_docker();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("rwt-{label}-{}-{n}", std::process::id());
        let env = DockerEnv {
            network: format!("ringway-test-{}-{n}", std::process::id()),
            image: format!("ringway-test-origin:{}-{n}", std::process::id()),
            prefix,
            containers: Default::default(),
        };
        build_image(&env.image);
        docker(&["network", "create", &env.network]);
        env
    }

    /// The constraint that selects this environment's containers (they all carry the label
    /// `ringway.test=<prefix>`).
    pub fn constraint(&self) -> String {
        format!("Label(`ringway.test`,`{}`)", self.prefix)
    }

    /// The value of the `ringway.test` label that [`DockerEnv::constraint`] selects.
    pub fn constraint_value(&self) -> &str {
        &self.prefix
    }

    /// A unique container name for `name`.
    pub fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Starts a container on the test network serving `marker` on :8080, with `labels`.
    pub fn run(&self, name: &str, labels: &[(&str, &str)], extra: &[&str]) -> TestContainer {
        self.run_with(name, labels, extra, false, ORIGIN_PORT)
    }

    /// As [`DockerEnv::run`]; `ignore_term` makes the container ignore SIGTERM (so that
    /// `docker stop --time N` takes N seconds); `extra` may set `--network host`.
    pub fn run_with(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        extra: &[&str],
        ignore_term: bool,
        port: u16,
    ) -> TestContainer {
        let full = self.name(name);
        let marker = format!("marker-{full}");
        let trap = if ignore_term { "trap '' TERM; " } else { "" };
        let script = format!(
            "{trap}mkdir -p /www && echo {marker} > /www/index.html && httpd -f -p {port} -h /www"
        );
        let network_arg = format!("--network={}", self.network);
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), full.clone()];
        if !extra.iter().any(|a| a.starts_with("--network")) {
            args.push(network_arg);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--label".into());
        args.push(format!("ringway.test={}", self.prefix));
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.push(self.image.clone());
        args.extend(["sh".to_string(), "-c".to_string(), script]);
        self.containers.borrow_mut().push(full.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker(&refs);
        TestContainer {
            name: full,
            id,
            marker,
        }
    }

    /// Whether the container is still running.
    pub fn running(&self, c: &TestContainer) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", &c.name]) == "true"
    }
}

impl Drop for DockerEnv {
    fn drop(&mut self) {
        let names = self.containers.borrow().clone();
        if !names.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(names.iter().map(String::as_str));
            let _ = docker_raw(&args);
        }
        let _ = docker_raw(&["network", "rm", &self.network]);
        let _ = docker_raw(&["rmi", "-f", &self.image]);
    }
}

/// Waits (up to 30 s) until no container of the Swarm service `name` is left, so that its
/// image can be removed (a removed service's tasks stop asynchronously).
pub fn wait_service_gone(name: &str) {
    let filter = format!("label=com.docker.swarm.service.name={name}");
    for _ in 0..150 {
        let out = docker_raw(&["ps", "-aq", "--filter", &filter]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `docker import`s a root file system with the static busybox and its applet links.
fn build_image(tag: &str) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| panic!("busybox is missing: scripts/test installs busybox-static"));
    let dir = TestDir::new("docker-image");
    let root = dir.join("root");
    fs::create_dir_all(root.join("bin")).expect("mkdir bin");
    fs::create_dir_all(root.join("www")).expect("mkdir www");
    fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "httpd", "echo", "mkdir", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    let tar = dir.join("root.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    docker(&[
        "import",
        "--change",
        "ENV PATH=/bin",
        &tar.to_string_lossy(),
        tag,
    ]);
}

/// The body of `GET /` with `Host: host`, if 200.
pub fn body(addr: SocketAddr, host: &str) -> Option<String> {
    match http_get(addr, host, "/") {
        Ok(r) if r.status == 200 => Some(r.text().trim().to_string()),
        _ => None,
    }
}

/// The status of `GET /` with `Host: host` (0 when the connection failed).
pub fn status(addr: SocketAddr, host: &str) -> u16 {
    http_get(addr, host, "/").map_or(0, |r| r.status)
}

/// Waits until `Host: host` answers with `marker`; returns how long it took.
pub fn wait_marker(
    addr: SocketAddr,
    host: &str,
    marker: &str,
    timeout: Duration,
) -> Option<Duration> {
    let start = std::time::Instant::now();
    wait_for(timeout, || {
        (body(addr, host).as_deref() == Some(marker)).then(|| start.elapsed())
    })
}
