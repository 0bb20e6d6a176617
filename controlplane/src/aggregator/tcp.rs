//! TCP routers and services (`tcp.routers`, `tcp.services`): decoded, qualified and validated
//! like their HTTP counterparts; a bad router is disabled with its errors, the rest served.

use super::{qualify, ProviderConfig, Resolution, Resolver, RouterStatus};
use crate::tls::HostOptions;
use ringway_shared::config::dynamic::RouterTlsConfig;
use ringway_shared::config::node::from_node_at;
use ringway_shared::config::{ConfigError, Node, StaticConfig};
use ringway_shared::rule::{self, Matcher, RuleKind};
use ringway_shared::table::{
    TcpRouterSpec, TcpServerSpec, TcpServiceKind, TcpServiceSpec, TcpTls, TlsOptionsSpec,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpSection {
    routers: BTreeMap<String, TcpRouterConfig>,
    services: BTreeMap<String, TcpServiceConfig>,
    middlewares: BTreeMap<String, Node>,
    servers_transports: BTreeMap<String, Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpRouterConfig {
    entry_points: Vec<String>,
    rule: String,
    rule_syntax: Option<String>,
    priority: Option<i64>,
    service: String,
    middlewares: Vec<String>,
    tls: Option<TcpRouterTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpRouterTls {
    passthrough: bool,
    options: Option<String>,
    cert_resolver: Option<String>,
    domains: Vec<ringway_shared::config::dynamic::TlsDomain>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpServiceConfig {
    load_balancer: Option<TcpLoadBalancer>,
    weighted: Option<TcpWeighted>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpLoadBalancer {
    servers: Vec<TcpServerConfig>,
    proxy_protocol: Option<Node>,
    termination_delay: Option<Node>,
    servers_transport: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpServerConfig {
    address: String,
    tls: Option<bool>,
    weight: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpWeighted {
    services: Vec<TcpWeightedChild>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TcpWeightedChild {
    name: String,
    weight: Option<u32>,
}

/// Adds every provider's TCP routers and services to `out`.
pub(super) fn resolve_tcp(
    providers: &[ProviderConfig],
    static_cfg: &StaticConfig,
    resolve_addr: Resolver<'_>,
    (tls_options, host_options): (&BTreeMap<String, TlsOptionsSpec>, &mut HostOptions),
    out: &mut Resolution,
) {
    let mut sections = Vec::new();
    for p in providers {
        let Some(node) = &p.config.tcp else { continue };
        let loc = |path: &str| match p.config.origin("tcp").or_else(|| p.config.origin(path)) {
            Some(src) => format!("{src}: {path}"),
            None => format!("provider {}: {path}", p.provider),
        };
        match from_node_at::<TcpSection>(node, "tcp") {
            Ok(section) => sections.push((p, section, loc("tcp"))),
            Err(e) => out.errors.push(ConfigError::new(loc("tcp"), e.to_string())),
        }
    }
    let location = |base: &str, path: &str| {
        let file = base.strip_suffix(": tcp").unwrap_or(base);
        format!("{file}: {path}")
    };

    // Services: load balancers first, then weighted ones (which refer to them by name).
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut weighted = Vec::new();
    for (p, section, base) in &sections {
        for (name, svc) in &section.services {
            let q = qualify(name, &p.provider);
            let loc = location(base, &format!("tcp.services.{name}"));
            match (&svc.load_balancer, &svc.weighted) {
                (Some(lb), None) => {
                    if lb.proxy_protocol.is_some()
                        || lb.termination_delay.is_some()
                        || lb.servers_transport.is_some()
                    {
                        out.warnings.push(ConfigError::new(
                            loc.clone(),
                            "proxyProtocol, terminationDelay and serversTransport are not supported yet, ignored",
                        ));
                    }
                    let mut servers = Vec::new();
                    for s in &lb.servers {
                        if s.tls == Some(true) {
                            out.errors.push(ConfigError::new(
                                loc.clone(),
                                format!(
                                    "server {:?}: TLS to TCP servers is not supported yet",
                                    s.address
                                ),
                            ));
                            continue;
                        }
                        match server(&s.address, resolve_addr) {
                            Ok(addr) => servers.push(TcpServerSpec {
                                address: s.address.clone(),
                                addr,
                                weight: s.weight.unwrap_or(1),
                            }),
                            Err(e) => out.errors.push(ConfigError::new(
                                loc.clone(),
                                format!("server {:?}: {e}", s.address),
                            )),
                        }
                    }
                    ids.insert(q.clone(), out.table.tcp_services.len() as u32);
                    out.table.tcp_services.push(TcpServiceSpec {
                        name: q,
                        kind: TcpServiceKind::LoadBalancer(servers),
                    });
                }
                (None, Some(w)) => weighted.push((q, p.provider.as_str(), w, loc)),
                _ => out.errors.push(ConfigError::new(
                    loc,
                    "a TCP service needs exactly one of loadBalancer or weighted",
                )),
            }
        }
    }
    for (q, provider, w, loc) in weighted {
        let mut children = Vec::new();
        let mut bad = false;
        for c in &w.services {
            match ids.get(&qualify(&c.name, provider)) {
                Some(&id) => children.push((id, c.weight.unwrap_or(1))),
                None => {
                    // Weighted-of-weighted is not supported for TCP; nor are missing children.
                    out.errors.push(ConfigError::new(
                        loc.clone(),
                        format!(
                            "child service {:?} is not a TCP load balancer",
                            qualify(&c.name, provider)
                        ),
                    ));
                    bad = true;
                }
            }
        }
        if !bad && !children.is_empty() {
            ids.insert(q.clone(), out.table.tcp_services.len() as u32);
            out.table.tcp_services.push(TcpServiceSpec {
                name: q,
                kind: TcpServiceKind::Weighted(children),
            });
        }
    }

    let known_eps = static_cfg.entry_point_names();
    let default_eps = static_cfg.default_entry_points();
    for (p, section, base) in &sections {
        for name in section
            .middlewares
            .keys()
            .chain(section.servers_transports.keys())
        {
            out.warnings.push(ConfigError::new(
                location(base, &format!("tcp.{name}")),
                "TCP middlewares and serversTransports are not supported yet, ignored",
            ));
        }
        for (name, r) in &section.routers {
            let q = qualify(name, &p.provider);
            let loc = location(base, &format!("tcp.routers.{name}"));
            let mut errors = Vec::new();
            if r.rule_syntax
                .as_deref()
                .is_some_and(|s| !s.eq_ignore_ascii_case("v3"))
            {
                errors.push("only ruleSyntax v3 is supported".to_string());
            }
            match rule::parse(&r.rule).and_then(|e| e.check_kind(RuleKind::Tcp).map(|()| e)) {
                Ok(expr) => {
                    if let Err(e) = ringway_shared::tcp_rule::TcpRule::compile(&expr) {
                        errors.push(format!("invalid rule: {e}"));
                    }
                }
                Err(e) => errors.push(format!("invalid rule: {e}")),
            }
            let tls = match &r.tls {
                None => TcpTls::None,
                Some(t) if t.passthrough => TcpTls::Passthrough,
                Some(_) => TcpTls::Terminate,
            };
            let mut options = None;
            let mut resolver = None;
            if let Some(t) = &r.tls {
                if tls == TcpTls::Terminate {
                    resolver = t.cert_resolver.as_deref().filter(|r| !r.is_empty());
                    if let Some(res) = resolver {
                        if !static_cfg.certificates_resolvers.contains_key(res) {
                            out.errors.push(ConfigError::new(
                                loc.clone(),
                                format!(
                                    "the certificate resolver {res:?} does not exist; \
                                     the router is served with the other certificates"
                                ),
                            ));
                            resolver = None;
                        }
                    }
                    let name = crate::tls::options_name(t.options.as_deref(), &p.provider);
                    if name != "default" && !tls_options.contains_key(&name) {
                        errors.push(format!("unknown TLS options: {name}"));
                    }
                    options = Some(name);
                }
            }
            if tls == TcpTls::None && !r.rule.replace(' ', "").starts_with("HostSNI(`*`)") {
                // Without TLS there is no SNI: only HostSNI(`*`) (optionally with ClientIP) matches.
                if r.rule.contains("HostSNI(") && !r.rule.contains("HostSNI(`*`)") {
                    errors.push("a router without tls can only use HostSNI(`*`)".to_string());
                }
            }
            if !r.middlewares.is_empty() {
                errors.push("TCP middlewares are not supported yet".to_string());
            }
            let service = qualify(&r.service, &p.provider);
            let service_id = ids.get(&service).copied();
            if service_id.is_none() {
                errors.push(format!(
                    "the TCP service {service:?} does not exist or is invalid"
                ));
            }
            let entry_points: Vec<String> = if r.entry_points.is_empty() {
                default_eps.clone()
            } else {
                r.entry_points
                    .iter()
                    .filter(|ep| {
                        let known = known_eps.contains(ep);
                        if !known {
                            out.errors.push(ConfigError::new(
                                loc.clone(),
                                format!("entryPoint {ep:?} doesn't exist"),
                            ));
                        }
                        known
                    })
                    .cloned()
                    .collect()
            };
            if entry_points.is_empty() {
                errors.push("no valid entryPoint for this router".to_string());
            }
            for e in &errors {
                out.errors.push(ConfigError::new(loc.clone(), e.clone()));
            }
            let priority = r
                .priority
                .filter(|&p| p != 0)
                .unwrap_or(r.rule.len() as i64);
            let enabled = errors.is_empty();
            if let (true, Some(options)) = (enabled, &options) {
                // Terminated here: the rule's HostSNI names get the router's options, and its
                // certificate (tls.domains, else those names) from its resolver.
                let mut names = Vec::new();
                if let Ok(expr) = rule::parse(&r.rule) {
                    expr.for_each_matcher(&mut |m| {
                        if let Matcher::HostSni(h) = m {
                            if h != "*" {
                                host_options.add(h, options, &q, &mut out.warnings);
                                names.push(h.to_ascii_lowercase());
                            }
                        }
                    });
                }
                if let (Some(res), Some(t)) = (resolver, &r.tls) {
                    let sets: Vec<Vec<String>> = if t.domains.is_empty() {
                        vec![names]
                    } else {
                        t.domains
                            .iter()
                            .map(|d| std::iter::once(&d.main).chain(&d.sans).cloned().collect())
                            .collect()
                    };
                    out.cert_requests.extend(
                        sets.into_iter()
                            .filter_map(|names| super::cert_request(res, names)),
                    );
                }
            }
            if let (true, Some(service_id)) = (enabled, service_id) {
                out.table.tcp_routers.push(TcpRouterSpec {
                    name: q.clone(),
                    entry_points: entry_points.clone(),
                    rule: r.rule.clone(),
                    priority,
                    service: service_id,
                    tls,
                });
            }
            out.routers.push(Arc::new(RouterStatus {
                name: q,
                provider: p.provider.clone(),
                rule: r.rule.clone(),
                priority,
                entry_points,
                service,
                enabled,
                errors,
                middlewares: Vec::new(),
                middleware_names: r
                    .middlewares
                    .iter()
                    .map(|m| qualify(m, &p.provider))
                    .collect(),
                tls: r.tls.as_ref().map(|t| RouterTlsConfig {
                    options: t.options.clone(),
                    cert_resolver: t.cert_resolver.clone(),
                    domains: t.domains.clone(),
                }),
                tcp: true,
                declared_entry_points: r.entry_points.clone(),
                passthrough: r.tls.as_ref().is_some_and(|t| t.passthrough),
            }));
        }
    }
}

/// `host:port` resolved to one address.
fn server(address: &str, resolve_addr: Resolver<'_>) -> Result<std::net::SocketAddr, String> {
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => return Err("expected host:port".to_string()),
    };
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    resolve_addr(host, port)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{host:?} resolves to no address"))
}
