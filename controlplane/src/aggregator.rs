//! The aggregator: qualifies the names of every provider's configuration (`name@provider`),
//! validates routers and services, and produces the `TableSpec` the data plane compiles.
//!
//! Errors never fail the whole table: a router with a bad rule, a missing service, an unknown
//! entry point or an unsupported middleware is disabled and reported; the rest is served.

use ringway_shared::config::dynamic::{
    LoadBalancerConfig, RouterConfig, ServiceConfig, WeightedConfig,
};
use ringway_shared::config::{ConfigError, DynamicConfig, StaticConfig};
use ringway_shared::rule::{self, RuleKind};
use ringway_shared::table::{
    LoadBalancerSpec, RouterSpec, ServerSpec, ServiceId, ServiceKind, ServiceSpec, TableSpec,
    WeightedChild,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// One provider's whole view.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// `file`, `docker`, …: the suffix of qualified names.
    pub provider: String,
    pub config: DynamicConfig,
}

/// The outcome of aggregating every provider.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Generation 0: the caller numbers it.
    pub table: TableSpec,
    pub routers: Vec<RouterStatus>,
    pub services: Vec<ServiceStatus>,
    pub errors: Vec<ConfigError>,
}

/// A router as the API reports it: enabled or disabled, with its errors.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterStatus {
    pub name: String,
    pub provider: String,
    pub rule: String,
    pub priority: i64,
    pub entry_points: Vec<String>,
    pub service: String,
    pub enabled: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    pub provider: String,
    pub kind: &'static str,
    pub servers: Vec<String>,
    pub errors: Vec<String>,
}

/// Resolves a host name to addresses (the control plane does DNS; the data plane never does).
pub type Resolver<'a> = &'a dyn Fn(&str, u16) -> Result<Vec<SocketAddr>, String>;

/// Qualifies `name` in `provider` unless it already names one (`svc@docker`).
pub fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') {
        name.to_string()
    } else {
        format!("{name}@{provider}")
    }
}

/// Aggregates every provider's configuration into one table.
pub fn resolve(
    providers: &[ProviderConfig],
    static_cfg: &StaticConfig,
    resolve_addr: Resolver<'_>,
) -> Resolution {
    let mut out = Resolution::default();

    // Services first: routers refer to them by index.
    let mut raw: BTreeMap<String, (&str, &ServiceConfig, String)> = BTreeMap::new();
    for p in providers {
        for (name, svc) in &p.config.http.services {
            let location = location(&p.config, "http.services", name, &p.provider);
            raw.insert(
                qualify(name, &p.provider),
                (p.provider.as_str(), svc, location),
            );
        }
    }
    let services = Services::build(&raw, resolve_addr, &mut out);
    out.table.services = services.specs;

    let known_eps = static_cfg.entry_point_names();
    let default_eps = static_cfg.default_entry_points();
    for p in providers {
        for (name, r) in &p.config.http.routers {
            let qualified = qualify(name, &p.provider);
            let loc = location(&p.config, "http.routers", name, &p.provider);
            let status = router(
                &qualified,
                &p.provider,
                r,
                &p.config,
                &services.ids,
                &known_eps,
                &default_eps,
            );
            for e in &status.errors {
                out.errors.push(ConfigError::new(loc.clone(), e.clone()));
            }
            if status.enabled {
                if let Some(&id) = services.ids.get(&status.service) {
                    out.table.routers.push(RouterSpec {
                        name: qualified.clone(),
                        entry_points: status.entry_points.clone(),
                        rule: status.rule.clone(),
                        priority: status.priority,
                        service: id,
                        tls: r.tls.is_some(),
                    });
                }
            }
            out.routers.push(status);
        }
    }
    out
}

/// Where an item was defined, for error messages: `file.toml: http.routers.x`.
fn location(cfg: &DynamicConfig, section: &str, name: &str, provider: &str) -> String {
    let path = format!("{section}.{name}");
    match cfg.origins.get(&path) {
        Some(src) => format!("{src}: {path}"),
        None => format!("provider {provider}: {path}"),
    }
}

fn router(
    qualified: &str,
    provider: &str,
    r: &RouterConfig,
    cfg: &DynamicConfig,
    service_ids: &HashMap<String, ServiceId>,
    known_eps: &[String],
    default_eps: &[String],
) -> RouterStatus {
    let mut errors = Vec::new();
    let service = qualify(&r.service, provider);
    let priority = r
        .priority
        .filter(|&p| p != 0)
        .unwrap_or(r.rule.len() as i64);

    if r.rule.trim().is_empty() {
        errors.push("rule is empty".to_string());
    } else if let Some(syntax) = r
        .rule_syntax
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case("v3"))
    {
        errors.push(format!("ruleSyntax {syntax:?} is not supported (only v3)"));
    } else {
        match rule::parse(&r.rule).and_then(|e| e.check_kind(RuleKind::Http).map(|()| e)) {
            Ok(expr) => {
                if let Err(e) = rule::CompiledRule::new(&expr) {
                    errors.push(format!("invalid rule: {e}"));
                }
            }
            Err(e) => errors.push(format!("invalid rule: {e}")),
        }
    }

    let mut entry_points = Vec::new();
    if r.entry_points.is_empty() {
        entry_points.extend(default_eps.iter().cloned());
    } else {
        for ep in &r.entry_points {
            if known_eps.iter().any(|k| k == ep) {
                entry_points.push(ep.clone());
            } else {
                errors.push(format!("entryPoint {ep:?} doesn't exist"));
            }
        }
    }
    if entry_points.is_empty() && errors.is_empty() {
        errors.push("no valid entryPoint for this router".to_string());
    }

    if r.service.is_empty() {
        errors.push("the service is missing on the router".to_string());
    } else if !service_ids.contains_key(&service) {
        errors.push(format!("the service {service:?} does not exist"));
    }

    for m in &r.middlewares {
        let q = qualify(m, provider);
        let local = m.split('@').next().unwrap_or(m);
        let defined_here = !m.contains('@') || m.ends_with(&format!("@{provider}"));
        let kind = defined_here
            .then(|| cfg.http.middlewares.get(local))
            .flatten()
            .map(|mw| mw.kind);
        match kind {
            // The data plane implements no middleware yet: serving the router without it
            // could drop authentication or an IP allow list, so the router is disabled.
            Some(kind) => errors.push(format!(
                "middleware {q:?} of type {kind:?} is not supported yet"
            )),
            None => errors.push(format!("middleware {q:?} does not exist")),
        }
    }

    RouterStatus {
        name: qualified.to_string(),
        provider: provider.to_string(),
        rule: r.rule.clone(),
        priority,
        entry_points,
        service,
        enabled: errors.is_empty(),
        errors,
    }
}

/// Services validated and numbered.
struct Services {
    specs: Vec<ServiceSpec>,
    ids: HashMap<String, ServiceId>,
}

impl Services {
    fn build(
        raw: &BTreeMap<String, (&str, &ServiceConfig, String)>,
        resolve_addr: Resolver<'_>,
        out: &mut Resolution,
    ) -> Services {
        // Kinds first, so weighted children can be checked against valid services only.
        let kinds: BTreeMap<&str, Result<Kind<'_>, String>> = raw
            .iter()
            .map(|(name, (_, svc, _))| (name.as_str(), kind_of(svc)))
            .collect();
        // Weighted services whose children are missing or form a cycle are invalid.
        let mut invalid_weighted: BTreeMap<&str, String> = BTreeMap::new();
        for (name, k) in &kinds {
            if let Ok(Kind::Weighted(w)) = k {
                let provider = raw.get(*name).map_or("", |r| r.0);
                if let Err(e) = check_weighted(name, w, provider, raw, &mut Vec::new()) {
                    invalid_weighted.insert(name, e);
                }
            }
        }
        let mut specs = Vec::new();
        let mut ids = HashMap::new();
        let mut pending_children = Vec::new();
        for (name, (provider, _, loc)) in raw {
            let mut status = ServiceStatus {
                name: name.clone(),
                provider: provider.to_string(),
                kind: "",
                servers: Vec::new(),
                errors: Vec::new(),
            };
            let kind = match kinds.get(name.as_str()) {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    status.errors.push(e.clone());
                    out.errors.push(ConfigError::new(loc.clone(), e.clone()));
                    out.services.push(status);
                    continue;
                }
                None => continue,
            };
            if let Some(e) = invalid_weighted.get(name.as_str()) {
                status.kind = "weighted";
                status.errors.push(e.clone());
                out.errors.push(ConfigError::new(loc.clone(), e.clone()));
                out.services.push(status);
                continue;
            }
            let id = ServiceId(specs.len() as u32);
            ids.insert(name.clone(), id);
            let spec_kind = match kind {
                Kind::LoadBalancer(lb) => {
                    status.kind = "loadbalancer";
                    let mut servers = Vec::new();
                    for s in &lb.servers {
                        match server(&s.url, s.weight.unwrap_or(1), s.preserve_path, resolve_addr) {
                            Ok(spec) => {
                                status.servers.push(spec.url.clone());
                                servers.push(spec);
                            }
                            Err(e) => {
                                let msg = format!("server {:?}: {e}", s.url);
                                out.errors.push(ConfigError::new(loc.clone(), msg.clone()));
                                status.errors.push(msg);
                            }
                        }
                    }
                    ServiceKind::LoadBalancer(LoadBalancerSpec {
                        servers,
                        pass_host_header: lb.pass_host_header.unwrap_or(true),
                    })
                }
                Kind::Weighted(w) => {
                    status.kind = "weighted";
                    pending_children.push((specs.len(), *provider, *w));
                    ServiceKind::Weighted(Vec::new())
                }
            };
            specs.push(ServiceSpec {
                name: name.clone(),
                kind: spec_kind,
            });
            out.services.push(status);
        }
        for (index, provider, w) in pending_children {
            let children = w
                .services
                .iter()
                .filter_map(|c| {
                    ids.get(&qualify(&c.name, provider))
                        .map(|&service| WeightedChild {
                            service,
                            weight: c.weight.unwrap_or(1),
                        })
                })
                .collect();
            specs[index].kind = ServiceKind::Weighted(children);
        }
        Services { specs, ids }
    }
}

enum Kind<'a> {
    LoadBalancer(&'a LoadBalancerConfig),
    Weighted(&'a WeightedConfig),
}

fn kind_of(svc: &ServiceConfig) -> Result<Kind<'_>, String> {
    let mut kinds = Vec::new();
    if svc.load_balancer.is_some() {
        kinds.push("loadBalancer");
    }
    if svc.weighted.is_some() {
        kinds.push("weighted");
    }
    if svc.mirroring.is_some() {
        kinds.push("mirroring");
    }
    if svc.failover.is_some() {
        kinds.push("failover");
    }
    if svc.highest_random_weight.is_some() {
        kinds.push("highestRandomWeight");
    }
    if kinds.len() > 1 {
        return Err(format!(
            "a service has exactly one type; this one has {}",
            kinds.join(", ")
        ));
    }
    if let Some(lb) = &svc.load_balancer {
        if let Some(s) = lb
            .strategy
            .as_deref()
            .filter(|s| !s.eq_ignore_ascii_case("wrr"))
        {
            return Err(format!(
                "loadBalancer strategy {s:?} is not supported yet (wrr is)"
            ));
        }
        for (set, what) in [
            (lb.sticky.is_some(), "sticky"),
            (lb.health_check.is_some(), "healthCheck"),
            (lb.passive_health_check.is_some(), "passiveHealthCheck"),
        ] {
            if set {
                return Err(format!("loadBalancer.{what} is not supported yet"));
            }
        }
        return Ok(Kind::LoadBalancer(lb));
    }
    if let Some(w) = &svc.weighted {
        if w.sticky.is_some() || w.health_check.is_some() {
            return Err("weighted sticky/healthCheck is not supported yet".to_string());
        }
        return Ok(Kind::Weighted(w));
    }
    match kinds.first() {
        Some(k) => Err(format!("service type {k} is not supported yet")),
        None => Err("the service has no type (loadBalancer, weighted, …)".to_string()),
    }
}

/// Checks that every child of a weighted service exists and that no cycle goes through it.
fn check_weighted<'a>(
    name: &'a str,
    w: &'a WeightedConfig,
    provider: &str,
    raw: &'a BTreeMap<String, (&str, &ServiceConfig, String)>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if path.iter().any(|p| p == name) {
        path.push(name.to_string());
        return Err(format!(
            "weighted services form a cycle: {}",
            path.join(" → ")
        ));
    }
    if w.services.is_empty() {
        return Err("weighted service has no services".to_string());
    }
    path.push(name.to_string());
    for c in &w.services {
        let child = qualify(&c.name, provider);
        let Some((child_provider, svc, _)) = raw.get(&child) else {
            return Err(format!("weighted child service {child:?} does not exist"));
        };
        match kind_of(svc) {
            Ok(Kind::Weighted(cw)) => check_weighted(&child, cw, child_provider, raw, path)?,
            Ok(Kind::LoadBalancer(_)) => {}
            Err(e) => return Err(format!("weighted child service {child:?} is invalid: {e}")),
        }
    }
    path.pop();
    Ok(())
}

/// Validates a server URL and resolves its address.
fn server(
    url: &str,
    weight: u32,
    preserve_path: bool,
    resolve_addr: Resolver<'_>,
) -> Result<ServerSpec, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL (expected http://host[:port])")?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err("https servers are not supported yet".to_string());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("scheme {scheme:?} is not supported (http)"));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("invalid host".to_string());
    }
    let (host, port) = split_host_port(authority)?;
    let addrs = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve_addr(host, port).map_err(|e| format!("cannot resolve {host:?}: {e}"))?,
    };
    let addr = addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;
    let path = path.trim_end_matches('/');
    if preserve_path && !path.is_empty() {
        return Err("preservePath with a URL path is not supported yet".to_string());
    }
    Ok(ServerSpec {
        url: url.to_string(),
        addr,
        authority: authority.to_string(),
        path_prefix: String::new(),
        weight,
    })
}

fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in host")?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err("empty host".to_string());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests;
