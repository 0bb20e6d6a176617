//! The Swarm provider (`providers.swarm`, and v2's `providers.docker.swarmMode`): routers and
//! services from the labels of Swarm services (what compose's `deploy.labels` sets), servers
//! at the addresses of their running tasks, or at the service's virtual IP with
//! `traefik.swarm.lbswarm=true` (`traefik.docker.lbswarm` in v2).
//!
//! Each service becomes one [`Container`] per running task (or one for its VIP), named after
//! the service, and goes through the Docker provider's label code: the same grammar, implicit
//! router and service, constraints, errors naming the service and the label. The network is
//! `traefik.swarm.network` (or `traefik.docker.network`), else the provider's `network`, else
//! the task's network whose name sorts first, never the routing mesh's `ingress`.
//!
//! Refresh: the engine's service and container events (a `docker service update` is followed
//! by reads every 200 ms for a few seconds, while its tasks are replaced), plus a full read
//! every `refreshSeconds`. The task list is read with the engine's HTTP API directly, because
//! bollard's task model lacks the tasks' network attachments.

use super::docker::{build, connect_docker, settings, Container, Settings};
use super::ProviderEvent;
use crate::aggregator::ProviderConfig;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use ringway_shared::config::static_config::SwarmProvider;
use ringway_shared::config::{ConfigError, ConfigErrors};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// After an event, how often and how long the services are re-read.
const BURST_EVERY: Duration = Duration::from_millis(200);
const BURST_FOR: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A Swarm service, as `GET /services` gives it (the fields ringway reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmService {
    #[serde(rename = "ID")]
    pub id: String,
    pub spec: ServiceSpec,
    pub endpoint: Option<ServiceEndpoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSpec {
    pub name: String,
    pub labels: Option<HashMap<String, String>>,
    pub task_template: Option<TaskTemplate>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskTemplate {
    pub networks: Option<Vec<NetworkTarget>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkTarget {
    pub target: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceEndpoint {
    #[serde(rename = "VirtualIPs")]
    pub virtual_ips: Option<Vec<VirtualIp>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VirtualIp {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `10.0.1.2/24`.
    pub addr: String,
}

/// A task, as `GET /tasks` gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmTask {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub desired_state: String,
    pub status: TaskStatus,
    pub networks_attachments: Option<Vec<NetworkAttachment>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatus {
    pub state: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAttachment {
    pub network: AttachedNetwork,
    pub addresses: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedNetwork {
    #[serde(rename = "ID")]
    pub id: String,
    pub spec: AttachedNetworkSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedNetworkSpec {
    pub name: String,
    pub ingress: bool,
}

/// A network, as `GET /networks` gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmNetwork {
    #[serde(rename = "Id")]
    pub id: String,
    pub name: String,
    pub ingress: bool,
}

/// What the engine says of the swarm at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub services: Vec<SwarmService>,
    pub tasks: Vec<SwarmTask>,
    pub networks: Vec<SwarmNetwork>,
}

/// The containers (one per running task, or one per `lbswarm` service) that stand for the
/// services in the Docker provider's label code.
pub fn containers(snap: &Snapshot) -> Vec<Container> {
    let net_names: HashMap<&str, (&str, bool)> = snap
        .networks
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                (n.name.as_str(), n.ingress || n.name == "ingress"),
            )
        })
        .collect();
    let mut out = Vec::new();
    for svc in &snap.services {
        let raw = svc.spec.labels.clone().unwrap_or_default();
        let lbswarm = raw
            .iter()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case("traefik.swarm.lbswarm")
                    || k.eq_ignore_ascii_case("traefik.docker.lbswarm")
            })
            .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("true"));
        let labels: BTreeMap<String, String> = raw
            .into_iter()
            .filter_map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                if lower == "traefik.swarm.network" {
                    Some(("traefik.docker.network".to_string(), v))
                } else if lower.starts_with("traefik.swarm.") || lower == "traefik.docker.lbswarm" {
                    None
                } else {
                    Some((k, v))
                }
            })
            .collect();
        let host_network = svc
            .spec
            .task_template
            .as_ref()
            .and_then(|t| t.networks.as_ref())
            .is_some_and(|nets| {
                nets.iter().any(|n| {
                    n.target == "host"
                        || net_names
                            .get(n.target.as_str())
                            .is_some_and(|(name, _)| *name == "host")
                })
            });
        let base = Container {
            id: svc.id.clone(),
            name: svc.spec.name.clone(),
            labels,
            host_network,
            ..Container::default()
        };
        if lbswarm {
            let mut c = base;
            for vip in svc
                .endpoint
                .as_ref()
                .and_then(|e| e.virtual_ips.as_ref())
                .into_iter()
                .flatten()
            {
                if let Some(&(name, ingress)) = net_names.get(vip.network_id.as_str()) {
                    if !ingress {
                        c.networks.insert(name.to_string(), ip_of(&vip.addr));
                    }
                }
            }
            out.push(c);
            continue;
        }
        for task in snap.tasks.iter().filter(|t| t.service_id == svc.id) {
            if !task.desired_state.eq_ignore_ascii_case("running")
                || !task.status.state.eq_ignore_ascii_case("running")
            {
                continue;
            }
            let mut c = base.clone();
            c.id = task.id.clone();
            for att in task.networks_attachments.iter().flatten() {
                let net = &att.network.spec;
                if net.ingress || net.name == "ingress" {
                    continue;
                }
                let ip = att.addresses.iter().flatten().find_map(|a| ip_of(a));
                c.networks.insert(net.name.clone(), ip);
            }
            out.push(c);
        }
    }
    out
}

/// `10.0.1.3/24` → 10.0.1.3.
fn ip_of(addr: &str) -> Option<IpAddr> {
    addr.split('/').next().and_then(|a| a.parse().ok())
}

/// Runs until the receiver is gone (or, with `watch=false`, after the first successful read).
pub async fn run_swarm_provider(cfg: SwarmProvider, tx: mpsc::Sender<ProviderEvent>) {
    let name = cfg.name;
    let (settings, errors) = settings(&cfg.docker);
    if !errors.is_empty() {
        let errors = errors
            .into_iter()
            .map(|e| {
                ConfigError::new(
                    e.location
                        .replacen("providers.docker", &format!("providers.{name}"), 1),
                    e.message,
                )
            })
            .collect();
        let event = ProviderEvent::Error {
            provider: name.to_string(),
            error: ConfigErrors(errors),
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
    let mut state = State {
        name,
        settings,
        tx,
        last: None,
        last_problems: Vec::new(),
    };
    let mut backoff = BACKOFF_MIN;
    let mut last_failure: Option<String> = None;
    loop {
        let outcome = state.session(&cfg, &mut backoff).await;
        let failure = match outcome {
            Ok(()) => return,
            Err(e) => e,
        };
        if state.tx.is_closed() {
            return;
        }
        if last_failure.as_deref() != Some(failure.as_str()) {
            tracing::error!(provider = name, "swarm provider: {failure}; retrying");
            last_failure = Some(failure);
        }
        if state.last.is_none() {
            // Never read: let the other providers' routes go live meanwhile.
            state.send(super::docker::Build::default()).await;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

struct State {
    name: &'static str,
    settings: Settings,
    tx: mpsc::Sender<ProviderEvent>,
    last: Option<ringway_shared::config::DynamicConfig>,
    last_problems: Vec<String>,
}

impl State {
    /// One connection to the engine: a full read, then events and polling until an error.
    async fn session(&mut self, cfg: &SwarmProvider, backoff: &mut Duration) -> Result<(), String> {
        let endpoint = &cfg.docker.endpoint;
        let docker = connect_docker(endpoint).await?;
        let mut filters = HashMap::new();
        filters.insert(
            "type".to_string(),
            vec!["service".to_string(), "container".to_string()],
        );
        let mut events = cfg.docker.watch.then(|| {
            docker.events(Some(
                EventsOptionsBuilder::default().filters(&filters).build(),
            ))
        });
        self.refresh(endpoint).await?;
        *backoff = BACKOFF_MIN;
        if events.is_none() {
            return Ok(());
        }
        let mut next_poll = Instant::now() + cfg.refresh;
        let mut burst_until: Option<Instant> = None;
        loop {
            let wake = match burst_until {
                Some(until) if Instant::now() < until => {
                    (Instant::now() + BURST_EVERY).min(next_poll)
                }
                _ => next_poll,
            };
            let ev = async {
                match events.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = ev => match ev {
                    Some(Ok(_)) => {
                        // Coalesce what arrives together, then read at once and keep reading
                        // while the update replaces tasks.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        self.refresh(endpoint).await?;
                        burst_until = Some(Instant::now() + BURST_FOR);
                    }
                    Some(Err(e)) => return Err(format!("event stream: {e}")),
                    None => return Err("event stream ended".to_string()),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.refresh(endpoint).await?;
                    if Instant::now() >= next_poll {
                        next_poll = Instant::now() + cfg.refresh;
                    }
                }
                _ = self.tx.closed() => return Ok(()),
            }
        }
    }

    async fn refresh(&mut self, endpoint: &str) -> Result<(), String> {
        let snap = read_snapshot(endpoint).await?;
        let built = build(&containers(&snap), &HashSet::new(), &self.settings);
        self.send(built).await;
        Ok(())
    }

    async fn send(&mut self, built: super::docker::Build) {
        let problems: Vec<String> = built
            .errors
            .iter()
            .map(|e| {
                format!(
                    "error: {}",
                    e.to_string().replacen("container", "service", 1)
                )
            })
            .chain(built.warnings.iter().map(|w| {
                format!(
                    "warning: {}",
                    w.to_string().replacen("container", "service", 1)
                )
            }))
            .collect();
        if problems != self.last_problems {
            for p in &problems {
                if let Some(e) = p.strip_prefix("error: ") {
                    tracing::error!(provider = self.name, "{e}");
                } else {
                    tracing::warn!(
                        provider = self.name,
                        "{}",
                        p.trim_start_matches("warning: ")
                    );
                }
            }
            self.last_problems = problems;
        }
        if self.last.as_ref() == Some(&built.config) {
            return;
        }
        self.last = Some(built.config.clone());
        let _ = self
            .tx
            .send(ProviderEvent::Config(Box::new(ProviderConfig {
                provider: self.name.to_string(),
                config: built.config,
            })))
            .await;
    }
}

/// Services, tasks and networks, read from the engine's HTTP API.
pub async fn read_snapshot(endpoint: &str) -> Result<Snapshot, String> {
    let services: Vec<SwarmService> = get_json(endpoint, "/services").await?;
    let filter = r#"{"desired-state":["running"]}"#;
    let tasks: Vec<SwarmTask> = get_json(
        endpoint,
        &format!("/tasks?filters={}", percent_encode(filter)),
    )
    .await?;
    let mut networks: Vec<SwarmNetwork> = get_json(endpoint, "/networks").await?;
    // Swarm-scoped networks such as the `host` of `--network host` services are not always
    // listed: look up the ones the services name.
    let known: HashSet<String> = networks.iter().map(|n| n.id.clone()).collect();
    let missing: BTreeSet<String> = services
        .iter()
        .filter_map(|s| s.spec.task_template.as_ref()?.networks.as_ref())
        .flatten()
        .map(|n| n.target.clone())
        .filter(|t| !known.contains(t) && !networks.iter().any(|n| n.name == *t))
        .collect();
    for id in missing {
        if let Ok(n) =
            get_json::<SwarmNetwork>(endpoint, &format!("/networks/{}", percent_encode(&id))).await
        {
            networks.push(n);
        }
    }
    Ok(Snapshot {
        services,
        tasks,
        networks,
    })
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` (HTTP/1.0: the whole body, then close) on the engine's socket, decoded.
async fn get_json<T: serde::de::DeserializeOwned>(endpoint: &str, path: &str) -> Result<T, String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    let mut raw = Vec::new();
    let io = async {
        if let Some(socket) = endpoint.strip_prefix("unix://") {
            let mut s = tokio::net::UnixStream::connect(socket).await?;
            s.write_all(request.as_bytes()).await?;
            s.read_to_end(&mut raw).await?;
        } else {
            let host = endpoint
                .strip_prefix("tcp://")
                .or_else(|| endpoint.strip_prefix("http://"))
                .unwrap_or(endpoint)
                .trim_end_matches('/');
            let mut s = tokio::net::TcpStream::connect(host).await?;
            s.write_all(request.as_bytes()).await?;
            s.read_to_end(&mut raw).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, io).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("cannot reach Docker at {endpoint}: {e}")),
        Err(_) => return Err(format!("Docker at {endpoint} did not answer {path}")),
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("Docker answered {path} without a complete head"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split(' ').nth(1).unwrap_or_default();
    let body = &raw[split + 4..];
    if status != "200" {
        return Err(format!(
            "Docker answered {path} with {status}: {}",
            String::from_utf8_lossy(body).trim()
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("Docker's answer to {path}: {e}"))
}

#[cfg(test)]
mod tests;
