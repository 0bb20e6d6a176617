//! The Docker provider: routers and services from the labels of running containers, kept up
//! to date from Docker's event stream (no polling).
//!
//! Data flow: a full sync (list + inspect) fills a cache of [`Container`]s; each container
//! event updates that cache (one inspect, or nothing for `kill`/`stop`) and, after a 5 ms
//! coalescing window, the whole view is rebuilt by [`labels::build`] and sent when it
//! changed. A container that receives `kill` or `stop` is marked "stopping" and its servers
//! leave the view at once, before it stops listening; `start` or `die` clears the mark.
//!
//! Errors: a container whose labels do not parse is left out and logged (`tracing::error!`,
//! once per change of the set of errors) with its name and the label; the other containers
//! keep routing. Invalid provider settings (`constraints`, `defaultRule`, `endpoint`) are sent
//! as [`ProviderEvent::Error`]. When Docker cannot be reached the provider logs it once per
//! state change, sends an empty view (so that the other providers' routes are served) and
//! retries with backoff; a broken event stream is reconnected the same way, then fully resynced.

mod constraints;
mod labels;
mod template;
#[cfg(test)]
mod tests;

pub use constraints::Constraint;
pub use labels::{build, normalize, service_name, v1_rule, Build, Container, ContainerError};
pub use labels::{Health, Settings};
pub use template::{RuleTemplate, TemplateModel};

use super::ProviderEvent;
use crate::aggregator::ProviderConfig;
use bollard::models::{ContainerInspectResponse, EventMessage, HealthStatusEnum};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use ringway_shared::config::static_config::DockerProvider;
use ringway_shared::config::{ConfigError, ConfigErrors, DynamicConfig};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

pub const PROVIDER: &str = "docker";

/// Events arriving together (a `docker compose up` of several containers) are applied once.
const COALESCE: Duration = Duration::from_millis(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Read/write timeout of each Docker API request (not of the event stream's body).
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// Signals after which a container keeps running: `kill -s HUP` is no reason to drain it.
const NON_STOPPING_SIGNALS: &[&str] = &[
    "1", "10", "12", "28", "SIGHUP", "HUP", "SIGUSR1", "USR1", "SIGUSR2", "USR2", "SIGWINCH",
    "WINCH",
];

/// Parses the provider's settings. `defaultRule` errors do not stop the provider (only
/// containers that need the default rule fail); they are returned alongside.
pub fn settings(cfg: &DockerProvider) -> (Settings, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let default_rule = RuleTemplate::parse(&cfg.default_rule);
    if let Err(e) = &default_rule {
        errors.push(ConfigError::new("providers.docker.defaultRule", e.clone()));
    }
    let constraints = match cfg.constraints.as_deref().map(Constraint::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            errors.push(ConfigError::new(
                "providers.docker.constraints",
                format!("{e}; no container is exposed"),
            ));
            // Exposing every container when the filter is broken would be the unsafe choice.
            Some(Constraint::Nothing)
        }
    };
    (
        Settings {
            exposed_by_default: cfg.exposed_by_default,
            network: cfg.network.clone(),
            default_rule,
            constraints,
            allow_empty_services: cfg.allow_empty_services,
        },
        errors,
    )
}

/// Runs until the receiver is gone (or, with `watch=false`, after the first successful read).
pub async fn run_docker_provider(cfg: DockerProvider, tx: mpsc::Sender<ProviderEvent>) {
    let (settings, errors) = settings(&cfg);
    if !errors.is_empty() {
        let event = ProviderEvent::Error {
            provider: PROVIDER.to_string(),
            error: ConfigErrors(errors),
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
    let mut state = State {
        settings,
        tx,
        containers: HashMap::new(),
        stopping: HashSet::new(),
        last: None,
        last_problems: Vec::new(),
    };
    let mut backoff = BACKOFF_MIN;
    let mut last_failure: Option<String> = None;
    loop {
        let outcome = match connect_docker(&cfg.endpoint).await {
            Ok(docker) => {
                if last_failure.take().is_some() {
                    tracing::info!(endpoint = %cfg.endpoint, "docker provider: connected to Docker");
                }
                state.session(&docker, cfg.watch, &mut backoff).await
            }
            Err(e) => Err(e),
        };
        let failure = match outcome {
            Ok(()) => return,
            Err(e) => e,
        };
        if last_failure.as_ref() != Some(&failure) {
            tracing::error!(endpoint = %cfg.endpoint, "docker provider: {failure}; retrying");
            last_failure = Some(failure);
        }
        if state.last.is_none() {
            // Docker is down: say "no containers" so the other providers' routes are served.
            if !state.send(DynamicConfig::default()).await {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = state.tx.closed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Opens a client for `unix://path`, `tcp://host:port` or `http://host:port`, negotiates
/// the API version (Docker 20.10 speaks 1.41) and checks that the daemon answers.
/// A client for the engine at `endpoint`, checked with a ping.
pub(crate) async fn connect_docker(endpoint: &str) -> Result<Docker, String> {
    let docker = if endpoint.starts_with("unix://") {
        Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
        Docker::connect_with_http(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else {
        return Err(format!(
            "endpoint {endpoint:?} is not supported (unix://, tcp:// or http://)"
        ));
    }
    .map_err(|e| format!("cannot reach Docker at {endpoint}: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("cannot reach Docker at {endpoint}: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("cannot reach Docker at {endpoint}: {e}"))?;
    Ok(docker)
}

struct State {
    settings: Settings,
    tx: mpsc::Sender<ProviderEvent>,
    /// Running containers by id.
    containers: HashMap<String, Container>,
    /// Containers that got `kill` or `stop` and have not died or restarted yet.
    stopping: HashSet<String>,
    last: Option<DynamicConfig>,
    last_problems: Vec<String>,
}

impl State {
    /// One connection: full sync, then events until the stream breaks (`Err`) or the
    /// receiver is gone / there is nothing to watch (`Ok`).
    async fn session(
        &mut self,
        docker: &Docker,
        watch: bool,
        backoff: &mut Duration,
    ) -> Result<(), String> {
        // Events from one second before the sync on: none is lost between list and stream
        // (a replayed one only causes an extra inspect).
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(1));
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        let options = EventsOptionsBuilder::default()
            .since(&since.to_string())
            .filters(&filters)
            .build();
        let mut events = Box::pin(docker.events(Some(options)));

        self.containers = list(docker).await?;
        self.stopping.retain(|id| self.containers.contains_key(id));
        if !self.emit().await || !watch {
            return Ok(());
        }
        *backoff = BACKOFF_MIN;
        let mut due: Option<Instant> = None;
        loop {
            let wake = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(msg)) => {
                        if self.handle(docker, msg).await {
                            due.get_or_insert_with(|| Instant::now() + COALESCE);
                        }
                    }
                    Some(Err(e)) => return Err(format!("Docker event stream failed: {e}")),
                    None => return Err("Docker event stream ended".to_string()),
                },
                _ = tokio::time::sleep_until(wake.into()), if due.is_some() => {
                    due = None;
                    if !self.emit().await {
                        return Ok(());
                    }
                }
                _ = self.tx.closed() => return Ok(()),
            }
        }
    }

    /// Applies one container event; true when the view may have changed.
    async fn handle(&mut self, docker: &Docker, msg: EventMessage) -> bool {
        let Some(actor) = msg.actor else {
            return false;
        };
        let Some(id) = actor.id else {
            return false;
        };
        let action = msg.action.unwrap_or_default();
        let action = action.split(':').next().unwrap_or("").trim();
        match action {
            "kill" => {
                let signal = actor
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("signal"))
                    .map(String::as_str)
                    .unwrap_or("");
                if NON_STOPPING_SIGNALS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(signal))
                {
                    return false;
                }
                self.containers.contains_key(&id) && self.stopping.insert(id)
            }
            "stop" => self.containers.contains_key(&id) && self.stopping.insert(id),
            "die" | "destroy" => {
                self.stopping.remove(&id);
                self.containers.remove(&id).is_some()
            }
            "start" | "restart" | "unpause" | "pause" | "health_status" | "rename" => {
                if action == "start" {
                    self.stopping.remove(&id);
                }
                match docker.inspect_container(&id, None).await {
                    Ok(info) => match container_from(info) {
                        Some(c) => {
                            self.containers.insert(id, c);
                        }
                        None => {
                            self.containers.remove(&id);
                        }
                    },
                    Err(e) => {
                        tracing::debug!(container = %id, error = %e, "docker provider: inspect failed");
                        self.containers.remove(&id);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Rebuilds the view and sends it if it changed; false when the receiver is gone.
    async fn emit(&mut self) -> bool {
        let containers: Vec<Container> = self.containers.values().cloned().collect();
        let built = build(&containers, &self.stopping, &self.settings);
        let problems: Vec<String> = built
            .errors
            .iter()
            .map(|e| format!("error: {e}"))
            .chain(built.warnings.iter().map(|w| format!("warning: {w}")))
            .collect();
        if problems != self.last_problems {
            for e in &built.errors {
                tracing::error!(container = %e.container, "docker provider: {e}; container left out");
            }
            for w in &built.warnings {
                tracing::warn!(container = %w.container, "docker provider: {w}");
            }
            self.last_problems = problems;
        }
        self.send(built.config).await
    }

    async fn send(&mut self, config: DynamicConfig) -> bool {
        if self.last.as_ref() == Some(&config) {
            return true;
        }
        self.last = Some(config.clone());
        let event = ProviderEvent::Config(Box::new(ProviderConfig {
            provider: PROVIDER.to_string(),
            config,
        }));
        self.tx.send(event).await.is_ok()
    }
}

/// Every running container, inspected.
async fn list(docker: &Docker) -> Result<HashMap<String, Container>, String> {
    let options = ListContainersOptionsBuilder::default().all(false).build();
    let summaries = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| format!("cannot list containers: {e}"))?;
    let inspections = futures_util::future::join_all(
        summaries
            .iter()
            .filter_map(|s| s.id.as_deref())
            .map(|id| docker.inspect_container(id, None)),
    )
    .await;
    let mut out = HashMap::new();
    for info in inspections {
        match info {
            Ok(info) => {
                if let Some(c) = container_from(info) {
                    out.insert(c.id.clone(), c);
                }
            }
            // Gone between list and inspect: its `die` event follows.
            Err(e) => tracing::debug!(error = %e, "docker provider: inspect failed"),
        }
    }
    Ok(out)
}

/// The provider's view of an inspected container; `None` unless it is running.
fn container_from(info: ContainerInspectResponse) -> Option<Container> {
    let state = info.state.unwrap_or_default();
    if state.running != Some(true) {
        return None;
    }
    let config = info.config.unwrap_or_default();
    let net = info.network_settings.unwrap_or_default();
    let mut ports: Vec<u16> = config
        .exposed_ports
        .unwrap_or_default()
        .iter()
        .chain(
            net.ports
                .as_ref()
                .map(|p| p.keys().collect::<Vec<_>>())
                .unwrap_or_default(),
        )
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            (proto == "tcp").then(|| port.parse().ok()).flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let networks: BTreeMap<String, Option<std::net::IpAddr>> = net
        .networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| {
            let ip = ep
                .ip_address
                .as_deref()
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse().ok());
            (name, ip)
        })
        .collect();
    let host_network = info
        .host_config
        .and_then(|h| h.network_mode)
        .is_some_and(|m| m == "host");
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::None,
    };
    Some(Container {
        id: info.id?,
        name: info
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        networks,
        host_network,
        ports,
        health,
        paused: state.paused == Some(true),
    })
}
