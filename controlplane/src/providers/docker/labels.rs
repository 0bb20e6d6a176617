//! Containers → one Traefik dynamic configuration, without I/O: labels (v2/v3 syntax, and the
//! v1 syntax of older stacks), Traefik's implicit router and service, server addresses, and
//! the merge of replicas that share a service name.
//!
//! A container whose labels do not make sense is left out with an error naming it and the
//! label; the other containers are unaffected.

use super::constraints::Constraint;
use super::template::{RuleTemplate, TemplateModel};
use ringway_shared::config::dynamic::{LoadBalancerConfig, RouterConfig, ServerConfig};
use ringway_shared::config::{DynamicConfig, Node};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// What the provider knows of one running container (from `docker inspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Network name → the container's address on it.
    pub networks: BTreeMap<String, Option<IpAddr>>,
    /// `network_mode: host`: servers are on 127.0.0.1.
    pub host_network: bool,
    /// Exposed and published TCP ports, sorted, unique.
    pub ports: Vec<u16>,
    pub health: Health,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Health {
    /// No health check.
    #[default]
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// The provider's settings, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub exposed_by_default: bool,
    pub network: Option<String>,
    pub default_rule: Result<RuleTemplate, String>,
    pub constraints: Option<Constraint>,
    pub allow_empty_services: bool,
}

/// A container left out (or part of it), and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerError {
    pub container: String,
    pub message: String,
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "container {:?}: {}", self.container, self.message)
    }
}

/// The provider's whole view, and what was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Build {
    pub config: DynamicConfig,
    pub errors: Vec<ContainerError>,
    /// Deprecations and fallbacks (v1 labels, a missing network).
    pub warnings: Vec<ContainerError>,
}

const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";

/// Builds the configuration of every container but those in `stopping` (their servers are
/// left out, so that a container being stopped leaves the load balancer at once).
pub fn build(containers: &[Container], stopping: &HashSet<String>, settings: &Settings) -> Build {
    let mut sorted: Vec<&Container> = containers.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let mut out = Build::default();
    let mut merger = Merger::default();
    for c in sorted {
        let serving = !stopping.contains(&c.id)
            && !c.paused
            && !matches!(c.health, Health::Starting | Health::Unhealthy);
        if !serving && !settings.allow_empty_services {
            continue;
        }
        match container_config(c, serving, settings, &mut out.warnings) {
            Ok(Some(cfg)) => merger.add(&c.name, cfg),
            Ok(None) => {}
            Err(message) => out.errors.push(ContainerError {
                container: c.name.clone(),
                message,
            }),
        }
    }
    out.config = merger.finish(&mut out.errors);
    out.errors.sort();
    out
}

/// Traefik's `provider.Normalize`: runs of characters other than letters and digits become
/// one `-`, with none at either end.
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The container's service name: `<service>-<project>` for compose, else its name.
pub fn service_name(c: &Container) -> String {
    match (c.labels.get(COMPOSE_SERVICE), c.labels.get(COMPOSE_PROJECT)) {
        (Some(s), Some(p)) => normalize(&format!("{s}_{p}")),
        _ => normalize(&c.name),
    }
}

fn label<'a>(c: &'a Container, key: &str) -> Option<&'a str> {
    c.labels
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" => Ok(true),
        "false" | "0" | "f" => Ok(false),
        _ => Err(format!("label {key:?}: invalid boolean {value:?}")),
    }
}

/// One container's configuration; `None` when it is not exposed.
fn container_config(
    c: &Container,
    serving: bool,
    settings: &Settings,
    warnings: &mut Vec<ContainerError>,
) -> Result<Option<DynamicConfig>, String> {
    let enable = match label(c, "traefik.enable") {
        Some(v) => Some(parse_bool("traefik.enable", v)?),
        None => None,
    };
    if enable == Some(false) || (!settings.exposed_by_default && enable != Some(true)) {
        return Ok(None);
    }
    if let Some(cons) = &settings.constraints {
        if !cons.matches(&c.labels) {
            return Ok(None);
        }
    }
    let service = service_name(c);
    let mut flat: Vec<(String, String)> = Vec::new();
    let mut v1 = Vec::new();
    for (key, value) in &c.labels {
        let Some(rest) = strip_prefix_ci(key, "traefik.") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        if lower == "enable" || lower.starts_with("docker.") {
            continue;
        }
        if is_v1(&lower) {
            v1.push((key.as_str(), lower, value.as_str()));
        } else {
            flat.push((rest.to_string(), value.clone()));
        }
    }
    if !v1.is_empty() {
        let names: Vec<&str> = v1.iter().map(|(k, _, _)| *k).collect();
        warnings.push(ContainerError {
            container: c.name.clone(),
            message: format!(
                "Traefik v1 labels ({}) are deprecated: use traefik.http.routers.* and \
                 traefik.http.services.* labels",
                names.join(", ")
            ),
        });
        flat.extend(translate_v1(&v1, &service)?);
    }

    // `<proto>.services.<name>.loadBalancer.server.<field>`: the container's own server.
    let mut servers: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    let mut rest = Vec::new();
    for (path, value) in flat {
        let parts: Vec<&str> = path.split('.').collect();
        match parts.as_slice() {
            [proto, services, name, lb, server, field]
                if services.eq_ignore_ascii_case("services")
                    && lb.eq_ignore_ascii_case("loadbalancer")
                    && server.eq_ignore_ascii_case("server") =>
            {
                servers
                    .entry((proto.to_ascii_lowercase(), name.to_string()))
                    .or_default()
                    .insert(field.to_ascii_lowercase(), value);
            }
            _ => rest.push((path, value)),
        }
    }
    // The server address, computed once (it may warn about the network).
    let mut ip: Option<IpAddr> = None;
    let mut host = |warnings: &mut Vec<ContainerError>| -> Result<IpAddr, String> {
        if let Some(ip) = ip {
            return Ok(ip);
        }
        let found = server_ip(c, settings, warnings)?;
        ip = Some(found);
        Ok(found)
    };
    // TCP servers are plain `ip:port` addresses in the raw `tcp` section.
    for ((proto, name), fields) in &servers {
        let label_of = |f: &str| format!("traefik.{proto}.services.{name}.loadbalancer.server.{f}");
        match proto.as_str() {
            "http" => {
                for f in fields.keys() {
                    if !["port", "scheme", "url", "weight", "preservepath"].contains(&f.as_str()) {
                        return Err(format!("label {:?}: unknown key", label_of(f)));
                    }
                }
            }
            "tcp" => {
                for f in fields.keys() {
                    if f != "port" {
                        return Err(format!(
                            "label {:?}: not supported yet (only server.port)",
                            label_of(f)
                        ));
                    }
                }
                if serving {
                    let port = port_of(c, fields.get("port"), &label_of("port"))?;
                    let host = host(warnings)?;
                    rest.push((
                        format!("tcp.services.{name}.loadBalancer.servers.0.address"),
                        socket(host, port),
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "label {:?}: {proto} services are not supported",
                    label_of("port")
                ))
            }
        }
    }

    let source = format!("container {}", c.name);
    let node = Node::from_flat(rest.iter().map(|(k, v)| (k.as_str(), v.clone())))
        .map_err(|e| format!("label \"traefik.{}\": {}", e.path, e.kind))?;
    let mut cfg = DynamicConfig::from_node(&source, &node).map_err(|errs| {
        let prefix = format!("{source}: ");
        errs.iter()
            .map(|e| {
                let path = e.location.strip_prefix(&prefix).unwrap_or(&e.location);
                format!("label \"traefik.{path}\": {}", e.message)
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;

    let tcp_or_udp = cfg.tcp.is_some() || cfg.udp.is_some();
    let http = &mut cfg.http;
    if tcp_or_udp
        && http.routers.is_empty()
        && http.services.is_empty()
        && http.middlewares.is_empty()
    {
        return Ok(Some(cfg));
    }
    for (proto, name) in servers.keys() {
        if proto == "http" && !http.services.contains_key(name) {
            http.services.insert(name.clone(), Default::default());
        }
    }
    if http.services.is_empty() {
        http.services.insert(service.clone(), Default::default());
    }
    let names: Vec<String> = http.services.keys().cloned().collect();
    for name in &names {
        let Some(svc) = http.services.get_mut(name) else {
            continue;
        };
        let svc = Arc::make_mut(svc);
        if svc.weighted.is_some()
            || svc.mirroring.is_some()
            || svc.failover.is_some()
            || svc.highest_random_weight.is_some()
        {
            continue;
        }
        let lb = svc
            .load_balancer
            .get_or_insert_with(LoadBalancerConfig::default);
        if !lb.servers.is_empty() || !serving {
            continue;
        }
        let fields = servers
            .get(&("http".to_string(), name.clone()))
            .cloned()
            .unwrap_or_default();
        let label_of = |f: &str| format!("traefik.http.services.{name}.loadbalancer.server.{f}");
        let url = match fields.get("url") {
            Some(u) => u.clone(),
            None => {
                let scheme = fields.get("scheme").map_or("http", String::as_str);
                let port = port_of(c, fields.get("port"), &label_of("port"))?;
                let host = host(warnings)?;
                format!("{scheme}://{}", socket(host, port))
            }
        };
        let weight =
            match fields.get("weight") {
                Some(w) => Some(w.trim().parse::<u32>().map_err(|_| {
                    format!("label {:?}: invalid weight {w:?}", label_of("weight"))
                })?),
                None => None,
            };
        let preserve_path = match fields.get("preservepath") {
            Some(v) => parse_bool(&label_of("preservePath"), v)?,
            None => false,
        };
        lb.servers.push(ServerConfig {
            url,
            weight,
            preserve_path,
        });
    }

    if http.routers.is_empty() {
        if http.services.len() > 1 {
            return Err(format!(
                "cannot create a default router: the container defines several services ({}); \
                 add a router label naming one",
                http.services.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        http.routers
            .insert(service.clone(), Arc::new(RouterConfig::default()));
    }
    let container_name = c.name.as_str();
    let model = TemplateModel {
        name: &service,
        container_name,
        labels: &c.labels,
    };
    let only_service = (http.services.len() == 1)
        .then(|| http.services.keys().next().cloned())
        .flatten();
    let names: Vec<String> = http.routers.keys().cloned().collect();
    for name in &names {
        let Some(router) = http.routers.get_mut(name) else {
            continue;
        };
        let router = Arc::make_mut(router);
        if router.rule.is_empty() {
            let template = settings.default_rule.as_ref().map_err(|e| {
                format!("router {name:?} has no rule and defaultRule is invalid: {e}")
            })?;
            router.rule = template.render(&model);
        }
        if router.service.is_empty() {
            router.service = only_service.clone().ok_or_else(|| {
                format!(
                    "router {name:?} names no service and the container defines several ({}): \
                     add label \"traefik.http.routers.{name}.service\"",
                    http.services.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        }
    }
    for section in ["routers", "services"] {
        let names: Vec<String> = if section == "routers" {
            http.routers.keys().cloned().collect()
        } else {
            http.services.keys().cloned().collect()
        };
        for n in names {
            cfg.origins
                .entry(format!("http.{section}.{n}"))
                .or_insert_with(|| source.clone());
        }
    }
    Ok(Some(cfg))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Traefik v1's label keys (lower case, without `traefik.`).
fn is_v1(lower: &str) -> bool {
    lower.starts_with("frontend.")
        || lower.starts_with("backend")
        || matches!(lower, "port" | "protocol" | "weight" | "tags")
}

/// Traefik v1 labels → v2 flat keys for one router and one service named `service`.
fn translate_v1(
    labels: &[(&str, String, &str)],
    service: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut name = service.to_string();
    if let Some((_, _, backend)) = labels.iter().find(|(_, k, _)| k == "backend") {
        name = normalize(backend);
    }
    let mut out = Vec::new();
    for (key, lower, value) in labels {
        let (target, value) = match lower.as_str() {
            "backend" | "tags" => continue,
            "frontend.rule" => (
                format!("http.routers.{name}.rule"),
                v1_rule(value).map_err(|e| format!("label {key:?}: {e}"))?,
            ),
            "frontend.entrypoints" => (
                format!("http.routers.{name}.entryPoints"),
                value.to_string(),
            ),
            "frontend.priority" => (format!("http.routers.{name}.priority"), value.to_string()),
            "frontend.passhostheader" => (
                format!("http.services.{name}.loadBalancer.passHostHeader"),
                value.to_string(),
            ),
            "port" => (
                format!("http.services.{name}.loadBalancer.server.port"),
                value.to_string(),
            ),
            "protocol" => (
                format!("http.services.{name}.loadBalancer.server.scheme"),
                value.to_string(),
            ),
            "weight" => (
                format!("http.services.{name}.loadBalancer.server.weight"),
                value.to_string(),
            ),
            _ => {
                return Err(format!(
                    "Traefik v1 label {key:?} is not supported: rewrite it in v2 syntax"
                ))
            }
        };
        out.push((target, value));
    }
    // A v1 service exists even with only `traefik.port`; a router only with frontend labels.
    if !out.iter().any(|(k, _)| k.starts_with("http.services.")) {
        out.push((
            format!("http.services.{name}.loadBalancer.passHostHeader"),
            "true".to_string(),
        ));
    }
    if out.iter().any(|(k, _)| k.starts_with("http.routers.")) {
        out.push((format!("http.routers.{name}.service"), name.clone()));
    }
    Ok(out)
}

/// A v1 frontend rule (`Host:a.com,b.com;PathPrefix:/api`) in v3 syntax.
pub fn v1_rule(rule: &str) -> Result<String, String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for part in rule.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (matcher, values) = part
            .split_once(':')
            .ok_or_else(|| format!("invalid v1 rule {rule:?}: expected Matcher:value"))?;
        let v3 = match matcher.trim().to_ascii_lowercase().as_str() {
            "host" => "Host",
            "path" => "Path",
            "pathprefix" => "PathPrefix",
            "method" => "Method",
            other => {
                return Err(format!(
                    "v1 rule matcher {other:?} is not supported (Host, Path, PathPrefix, Method)"
                ))
            }
        };
        let ors: Vec<String> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{v3}(`{v}`)"))
            .collect();
        if ors.is_empty() {
            return Err(format!("invalid v1 rule {rule:?}: {matcher} has no value"));
        }
        groups.push(ors);
    }
    match groups.as_slice() {
        [] => Err(format!("invalid v1 rule {rule:?}")),
        [one] => Ok(one.join(" || ")),
        many => Ok(many
            .iter()
            .map(|g| match g.as_slice() {
                [one] => one.clone(),
                _ => format!("({})", g.join(" || ")),
            })
            .collect::<Vec<_>>()
            .join(" && ")),
    }
}

/// The address of the container's servers: on the network its `traefik.docker.network`
/// label names, else the provider's `network`, else on the network whose name sorts first
/// (stable across restarts). 127.0.0.1 for host networking.
fn server_ip(
    c: &Container,
    settings: &Settings,
    warnings: &mut Vec<ContainerError>,
) -> Result<IpAddr, String> {
    if c.host_network {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let wanted = label(c, "traefik.docker.network").or(settings.network.as_deref());
    if let Some(net) = wanted {
        if let Some(Some(ip)) = c.networks.get(net) {
            return Ok(*ip);
        }
        warnings.push(ContainerError {
            container: c.name.clone(),
            message: format!(
                "not on network {net:?} (on: {}); using the first one",
                c.networks.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    c.networks
        .values()
        .find_map(|ip| *ip)
        .ok_or_else(|| "the container has no IP address on any network".to_string())
}

fn port_of(c: &Container, label_value: Option<&String>, label: &str) -> Result<u16, String> {
    match label_value {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("label {label:?}: invalid port {p:?}")),
        None => c
            .ports
            .first()
            .copied()
            .ok_or_else(|| format!("no port: the container exposes none; set label {label:?}")),
    }
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Merges the containers' configurations. Replicas defining the same service (same settings)
/// pool their servers; the same router defined identically is kept once. Names defined
/// differently by two containers are dropped with an error naming both (as Traefik).
#[derive(Default)]
struct Merger {
    cfg: DynamicConfig,
    /// `http.routers.x` → the containers defining it.
    owners: BTreeMap<String, Vec<String>>,
    conflicts: BTreeSet<String>,
}

impl Merger {
    fn add(&mut self, container: &str, cfg: DynamicConfig) {
        let mut note =
            |path: String, conflict: bool, owners: &mut BTreeMap<String, Vec<String>>| {
                owners
                    .entry(path.clone())
                    .or_default()
                    .push(container.to_string());
                if conflict {
                    self.conflicts.insert(path);
                }
            };
        for (name, r) in cfg.http.routers {
            let path = format!("http.routers.{name}");
            let conflict = self.cfg.http.routers.get(&name).is_some_and(|o| *o != r);
            self.cfg.http.routers.entry(name).or_insert(r);
            note(path, conflict, &mut self.owners);
        }
        for (name, s) in cfg.http.services {
            let path = format!("http.services.{name}");
            let conflict = match self.cfg.http.services.get_mut(&name) {
                None => {
                    self.cfg.http.services.insert(name, s);
                    false
                }
                Some(existing) => {
                    let strip = |s: &ringway_shared::config::dynamic::ServiceConfig| {
                        let mut s = s.clone();
                        if let Some(lb) = &mut s.load_balancer {
                            lb.servers.clear();
                        }
                        s
                    };
                    if strip(existing) == strip(&s) {
                        let existing = Arc::make_mut(existing);
                        let s = Arc::unwrap_or_clone(s);
                        if let (Some(a), Some(b)) = (&mut existing.load_balancer, s.load_balancer) {
                            for server in b.servers {
                                if !a.servers.contains(&server) {
                                    a.servers.push(server);
                                }
                            }
                        }
                        false
                    } else {
                        true
                    }
                }
            };
            note(path, conflict, &mut self.owners);
        }
        for (name, m) in cfg.http.middlewares {
            let path = format!("http.middlewares.{name}");
            let conflict = self
                .cfg
                .http
                .middlewares
                .get(&name)
                .is_some_and(|o| *o != m);
            self.cfg.http.middlewares.entry(name).or_insert(m);
            note(path, conflict, &mut self.owners);
        }
        for (slot, raw) in [
            (&mut self.cfg.tcp, cfg.tcp),
            (&mut self.cfg.udp, cfg.udp),
            (&mut self.cfg.tls, cfg.tls),
        ] {
            if let Some(raw) = raw {
                match slot {
                    Some(existing) => existing.merge(raw),
                    None => *slot = Some(raw),
                }
            }
        }
        for (path, origin) in cfg.origins {
            self.cfg.origins.entry(path).or_insert(origin);
        }
    }

    fn finish(mut self, errors: &mut Vec<ContainerError>) -> DynamicConfig {
        for path in &self.conflicts {
            let owners = self.owners.get(path).cloned().unwrap_or_default();
            let mut parts = path.splitn(3, '.');
            let (_, section, name) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            match section {
                Some("routers") => {
                    self.cfg.http.routers.remove(name);
                }
                Some("services") => {
                    self.cfg.http.services.remove(name);
                }
                _ => {
                    self.cfg.http.middlewares.remove(name);
                }
            }
            self.cfg.origins.remove(path);
            for owner in BTreeSet::<&String>::from_iter(owners.iter()) {
                errors.push(ContainerError {
                    container: owner.clone(),
                    message: format!(
                        "{path} is defined differently by containers {}: left out",
                        owners.join(", ")
                    ),
                });
            }
        }
        self.cfg
    }
}
