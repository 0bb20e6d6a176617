//! Service validation: one type per service, weighted children that exist and form no
//! cycle, server URLs parsed and resolved, and `ServiceId` numbering.

use super::{qualify, Memo, Resolution, Resolver, ServiceStatus};
use ringway_shared::config::dynamic::{LoadBalancerConfig, ServiceConfig, WeightedConfig};
use ringway_shared::config::node::from_node_at;
use ringway_shared::config::{ConfigError, Node, TraefikDuration};
use ringway_shared::table::{
    HealthCheckSpec, LoadBalancerSpec, ServerSpec, ServiceId, ServiceKind, ServiceSpec,
    WeightedChild,
};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A provider's service before validation, under its qualified name.
pub(super) struct RawService<'a> {
    pub provider: &'a str,
    pub config: &'a Arc<ServiceConfig>,
    /// `file.toml: http.services.x`.
    pub location: super::Loc<'a>,
}

/// Services validated and numbered.
pub(super) struct Services {
    pub specs: Vec<Arc<ServiceSpec>>,
    pub ids: HashMap<String, ServiceId>,
}

impl Services {
    pub fn build(
        raw: &BTreeMap<String, RawService<'_>>,
        resolve_addr: Resolver<'_>,
        memo: &mut Memo,
        out: &mut Resolution,
    ) -> Services {
        let mut specs = Vec::with_capacity(raw.len());
        let mut ids = HashMap::with_capacity_and_hasher(raw.len(), Default::default());
        out.services.reserve(raw.len());
        let mut pending_children = Vec::new();
        let mut weighted_ok = HashSet::default();
        // Whether a server's host name was looked up: such a service is not kept (it is
        // looked up again next time).
        let looked_up = Cell::new(false);
        let resolve_addr = |host: &str, port: u16| {
            looked_up.set(true);
            resolve_addr(host, port)
        };
        let resolve_addr: Resolver<'_> = &resolve_addr;
        for (name, svc) in raw {
            if let Some((status, spec)) = memo.service(name, svc.config) {
                ids.insert(name.clone(), ServiceId(specs.len() as u32));
                specs.push(spec);
                out.services.push(status);
                continue;
            }
            looked_up.set(false);
            let warnings_before = out.warnings.len();
            let mut status = ServiceStatus {
                name: name.clone(),
                provider: svc.provider.to_string(),
                kind: "",
                enabled: false,
                servers: Vec::new(),
                errors: Vec::new(),
            };
            let mut fail = |status: &mut ServiceStatus, e: String| {
                out.errors.push(ConfigError::new(svc.location, e.clone()));
                status.errors.push(e);
            };
            let kind = match kind_of(svc.config) {
                Ok((kind, warnings)) => {
                    for w in warnings {
                        out.warnings.push(ConfigError::new(svc.location, w));
                    }
                    kind
                }
                Err(e) => {
                    fail(&mut status, e);
                    out.services.push(Arc::new(status));
                    continue;
                }
            };
            let spec_kind = match kind {
                Kind::LoadBalancer(lb) => {
                    status.kind = "loadBalancer";
                    let mut servers = Vec::new();
                    for s in &lb.servers {
                        let weight = s.weight.unwrap_or(1);
                        match server(&s.url, weight, s.preserve_path, resolve_addr) {
                            Ok(spec) => {
                                status.servers.push(spec.url.clone());
                                servers.push(spec);
                            }
                            Err(e) => fail(&mut status, format!("server {:?}: {e}", s.url)),
                        }
                    }
                    let health_check = match lb.health_check.as_ref().map(health_check) {
                        None => None,
                        Some(Ok(spec)) => Some(spec),
                        Some(Err(e)) => {
                            fail(&mut status, format!("loadBalancer.healthCheck: {e}"));
                            out.services.push(Arc::new(status));
                            continue;
                        }
                    };
                    ServiceKind::LoadBalancer(LoadBalancerSpec {
                        servers,
                        pass_host_header: lb.pass_host_header.unwrap_or(true),
                        health_check,
                    })
                }
                Kind::Weighted(w) => {
                    status.kind = "weighted";
                    let mut path = Vec::new();
                    if let Err(e) =
                        check_weighted(name, w, svc.provider, raw, &mut path, &mut weighted_ok)
                    {
                        fail(&mut status, e);
                        out.services.push(Arc::new(status));
                        continue;
                    }
                    pending_children.push((specs.len(), svc.provider, w));
                    ServiceKind::Weighted(Vec::new())
                }
            };
            status.enabled = true;
            ids.insert(name.clone(), ServiceId(specs.len() as u32));
            let spec = Arc::new(ServiceSpec {
                name: name.clone(),
                kind: spec_kind,
            });
            let status = Arc::new(status);
            let alone = matches!(spec.kind, ServiceKind::LoadBalancer(_))
                && status.errors.is_empty()
                && out.warnings.len() == warnings_before
                && !looked_up.get();
            if alone {
                memo.keep_service(name, svc.config, (&status, &spec));
            }
            specs.push(spec);
            out.services.push(status);
        }
        // Every child of a valid weighted service is valid (checked above), so has an id.
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
            // Built in this resolution, not shared yet: nothing is copied.
            Arc::make_mut(&mut specs[index]).kind = ServiceKind::Weighted(children);
        }
        Services { specs, ids }
    }
}

enum Kind<'a> {
    LoadBalancer(&'a LoadBalancerConfig),
    Weighted(&'a WeightedConfig),
}

/// The service's one type, with warnings for the settings ignored; an error when it has none,
/// several, or one not implemented yet.
fn kind_of(svc: &ServiceConfig) -> Result<(Kind<'_>, Vec<String>), String> {
    let kinds: Vec<&str> = [
        (svc.load_balancer.is_some(), "loadBalancer"),
        (svc.weighted.is_some(), "weighted"),
        (svc.mirroring.is_some(), "mirroring"),
        (svc.failover.is_some(), "failover"),
        (svc.highest_random_weight.is_some(), "highestRandomWeight"),
    ]
    .into_iter()
    .filter_map(|(set, k)| set.then_some(k))
    .collect();
    if kinds.len() > 1 {
        return Err(format!(
            "a service has exactly one type; this one has {}",
            kinds.join(", ")
        ));
    }
    if !svc.middlewares.is_empty() {
        // Like router middlewares: refused, never skipped.
        return Err("service middlewares are not supported yet".to_string());
    }
    let mut warnings = Vec::new();
    let mut ignored = |set: bool, what: &str| {
        if set {
            warnings.push(format!("{what} not supported yet, ignored"));
        }
    };
    if let Some(lb) = &svc.load_balancer {
        if let Some(s) = lb.strategy.as_deref() {
            ignored(
                !s.eq_ignore_ascii_case("wrr"),
                &format!("loadBalancer.strategy {s:?} (weighted round robin is used)"),
            );
        }
        ignored(lb.sticky.is_some(), "loadBalancer.sticky");
        ignored(
            lb.passive_health_check.is_some(),
            "loadBalancer.passiveHealthCheck",
        );
        ignored(
            lb.response_forwarding.is_some(),
            "loadBalancer.responseForwarding",
        );
        ignored(
            lb.servers_transport.is_some(),
            "loadBalancer.serversTransport",
        );
        return Ok((Kind::LoadBalancer(lb), warnings));
    }
    if let Some(w) = &svc.weighted {
        ignored(w.sticky.is_some(), "weighted.sticky");
        ignored(w.health_check.is_some(), "weighted.healthCheck");
        return Ok((Kind::Weighted(w), warnings));
    }
    match kinds.first() {
        Some(k) => Err(format!("service type {k} is not supported yet")),
        None => Err("the service has no type (loadBalancer, weighted, …)".to_string()),
    }
}

/// Checks that every child of a weighted service exists, is valid, and that no cycle goes
/// through it. `ok` memoizes the weighted services already proven valid.
fn check_weighted(
    name: &str,
    w: &WeightedConfig,
    provider: &str,
    raw: &BTreeMap<String, RawService<'_>>,
    path: &mut Vec<String>,
    ok: &mut HashSet<String>,
) -> Result<(), String> {
    if ok.contains(name) {
        return Ok(());
    }
    if let Some(start) = path.iter().position(|p| p == name) {
        let mut cycle = path[start..].to_vec();
        cycle.push(name.to_string());
        return Err(format!(
            "weighted services form a cycle: {}",
            cycle.join(" → ")
        ));
    }
    if w.services.is_empty() {
        return Err("weighted service has no services".to_string());
    }
    path.push(name.to_string());
    for c in &w.services {
        let child = qualify(&c.name, provider);
        let Some(child_svc) = raw.get(&child) else {
            return Err(format!("weighted child service {child:?} does not exist"));
        };
        match kind_of(child_svc.config) {
            Ok((Kind::Weighted(cw), _)) => {
                check_weighted(&child, cw, child_svc.provider, raw, path, ok)?
            }
            Ok((Kind::LoadBalancer(_), _)) => {}
            Err(e) => return Err(format!("weighted child service {child:?} is invalid: {e}")),
        }
    }
    path.pop();
    ok.insert(name.to_string());
    Ok(())
}

/// Validates a server URL (`http://host[:port][/path]`) and resolves its address: IP
/// literals directly, names through `resolve_addr` (the first address is used).
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
    if authority.contains('@') {
        return Err("credentials in server URLs are not supported".to_string());
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
    // Traefik ignores the URL's path unless preservePath is set.
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    if preserve_path && !path.is_empty() {
        return Err("preservePath with a URL path is not supported yet".to_string());
    }
    Ok(ServerSpec {
        url: url.to_string(),
        addr,
        authority: authority.to_string(),
        weight,
    })
}

/// `host[:port]` or `[v6][:port]`; the port defaults to 80.
fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in host")?;
        let after = &rest[end + 1..];
        if !after.is_empty() && !after.starts_with(':') {
            return Err(format!("invalid host {authority:?}"));
        }
        (&rest[..end], after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("empty host".to_string());
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port {p:?}")),
            Ok(n) => n,
        },
        None => 80,
    };
    Ok((host, port))
}

#[cfg(test)]
mod url_tests {
    use super::*;

    fn no_dns(host: &str, _: u16) -> Result<Vec<SocketAddr>, String> {
        Err(format!("no DNS ({host})"))
    }

    #[test]
    fn server_urls() {
        let ok = |u: &str| server(u, 1, false, &no_dns).expect(u);
        assert_eq!(
            ok("http://10.0.0.1").addr,
            SocketAddr::from(([10, 0, 0, 1], 80))
        );
        assert_eq!(ok("HTTP://10.0.0.1:8080/").addr.port(), 8080);
        let v6 = ok("http://[::1]:9000/base?x=1");
        assert_eq!(v6.addr, "[::1]:9000".parse().expect("addr"));
        assert_eq!(v6.authority, "[::1]:9000");
        for bad in [
            "10.0.0.1:80",
            "https://10.0.0.1",
            "ftp://10.0.0.1",
            "http://",
            "http://:80",
            "http://10.0.0.1:",
            "http://10.0.0.1:0",
            "http://10.0.0.1:99999",
            "http://u:p@10.0.0.1",
            "http://[::1",
            "http://[::1]x",
            "http://unresolvable",
        ] {
            assert!(server(bad, 1, false, &no_dns).is_err(), "{bad}");
        }
        assert!(server("http://10.0.0.1/base", 1, true, &no_dns).is_err());
        assert!(server("http://10.0.0.1/", 1, true, &no_dns).is_ok());
    }
}

/// `loadBalancer.healthCheck` as Traefik v3 spells it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HealthCheckConfig {
    scheme: Option<String>,
    mode: Option<String>,
    path: Option<String>,
    method: Option<String>,
    status: Option<u16>,
    port: Option<u16>,
    hostname: Option<String>,
    interval: Option<TraefikDuration>,
    unhealthy_interval: Option<TraefikDuration>,
    timeout: Option<TraefikDuration>,
    headers: BTreeMap<String, String>,
    /// Accepted; redirects are never followed (a 3xx answer counts as healthy).
    #[allow(dead_code)]
    follow_redirects: Option<bool>,
}

/// Validates a health check; Traefik's defaults: every 30 s, 5 s timeout, GET, 2xx/3xx.
fn health_check(node: &Node) -> Result<HealthCheckSpec, String> {
    let c: HealthCheckConfig = from_node_at(node, "healthCheck").map_err(|e| e.to_string())?;
    if let Some(scheme) = c
        .scheme
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case("http"))
    {
        return Err(format!(
            "scheme {scheme:?} is not supported yet (http only)"
        ));
    }
    if let Some(mode) = c
        .mode
        .as_deref()
        .filter(|m| !m.eq_ignore_ascii_case("http"))
    {
        return Err(format!("mode {mode:?} is not supported yet (http only)"));
    }
    let path = c.path.unwrap_or_default();
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "path {path:?} must start with / and hold no spaces"
        ));
    }
    let method = c
        .method
        .unwrap_or_else(|| "GET".to_string())
        .to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("method {method:?} is not a method"));
    }
    if let Some(s) = c.status.filter(|s| !(100..=599).contains(s)) {
        return Err(format!("status {s} is not an HTTP status"));
    }
    if c.port == Some(0) {
        return Err("port 0 is not a port".to_string());
    }
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    let value = |s: &str| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if let Some(h) = c
        .hostname
        .as_deref()
        .filter(|h| !token(h) || h.contains('/'))
    {
        return Err(format!("hostname {h:?} is not a host name"));
    }
    for (name, v) in &c.headers {
        if !token(name) || !value(v) {
            return Err(format!("header {name:?}: {v:?} is not a valid header"));
        }
    }
    let interval = c.interval.map_or(Duration::from_secs(30), |d| d.0);
    let timeout = c.timeout.map_or(Duration::from_secs(5), |d| d.0);
    if interval.is_zero() || timeout.is_zero() {
        return Err("interval and timeout must be more than 0".to_string());
    }
    Ok(HealthCheckSpec {
        method,
        path,
        hostname: c.hostname,
        port: c.port,
        interval,
        unhealthy_interval: c.unhealthy_interval.map_or(interval, |d| d.0),
        timeout,
        status: c.status,
        headers: c.headers.into_iter().collect(),
    })
}
