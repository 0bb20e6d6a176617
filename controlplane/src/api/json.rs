//! Traefik's API (`/api/...`): the same endpoints, JSON shapes, filters and pagination.

use super::server::Response;
use super::{rfc3339, Api, View};
use crate::aggregator::{MiddlewareStatus, RouterStatus, ServiceStatus};
use ringway_shared::config::static_config::EntryPoint;
use ringway_shared::config::Node;
use ringway_shared::table::{ServiceKind, TcpServiceKind};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Traefik's default page size.
const PER_PAGE: usize = 100;

/// `rest` is the path after `/api`.
pub fn handle(api: &Api, rest: &str, query: &[(String, String)]) -> Response {
    let view = api.view();
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| super::server::parse_query(&format!("x={s}"))[0].1.clone())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let model = Model::new(api, &view);
    match segs.as_slice() {
        ["overview"] => Response::json(&model.overview()),
        ["version"] => Response::json(&json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "Codename": "ringway",
            "startDate": rfc3339(api.settings.start),
        })),
        ["rawdata"] => Response::json(&model.rawdata()),
        ["entrypoints"] => list(model.entry_points(), query, &[]),
        ["entrypoints", name] => item(model.entry_points(), name, "entry point"),
        [proto @ ("http" | "tcp"), kind @ ("routers" | "services" | "middlewares")] => {
            list(model.items(proto, kind), query, &filters(kind))
        }
        [proto @ ("http" | "tcp"), kind @ ("routers" | "services" | "middlewares"), name] => {
            let what = kind.trim_end_matches('s');
            item(model.items_named(proto, kind, Some(name)), name, what)
        }
        ["udp", "routers" | "services"] => list(Vec::new(), query, &[]),
        ["ringway", "rates"] => {
            let rates = api.rates();
            Response::json(&json!({
                "generation": view.generation,
                "routers": rates.routers,
                "services": rates.services,
            }))
        }
        _ => Response::error(404, "not found"),
    }
}

/// The extra filters each list takes (`search`, `status` and `provider` apply to all).
fn filters(kind: &str) -> Vec<&'static str> {
    match kind {
        "routers" => vec!["serviceName", "middlewareName"],
        _ => Vec::new(),
    }
}

/// One item by name, or Traefik's 404.
fn item(items: Vec<Value>, name: &str, what: &str) -> Response {
    match items.into_iter().find(|v| v["name"] == name) {
        Some(v) => Response::json(&v),
        None => Response::error(404, &format!("{what} not found")),
    }
}

/// Filters, sorts and paginates a list as Traefik does: `search` (in the name, rule or
/// service), `status`, `provider`, `serviceName`, `middlewareName`, `sortBy`/`direction`,
/// `page`/`per_page` with `X-Next-Page` (1 when there is no next page).
fn list(mut items: Vec<Value>, query: &[(String, String)], extra: &[&str]) -> Response {
    let param = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(search) = param("search").map(str::to_lowercase) {
        items.retain(|v| {
            ["name", "rule", "service"].iter().any(|f| {
                v[*f]
                    .as_str()
                    .is_some_and(|s| s.to_lowercase().contains(&search))
            })
        });
    }
    for f in ["status", "provider"] {
        if let Some(want) = param(f) {
            items.retain(|v| v[f].as_str().is_some_and(|s| s.eq_ignore_ascii_case(want)));
        }
    }
    if extra.contains(&"serviceName") {
        if let Some(want) = param("serviceName") {
            items.retain(|v| v["service"] == want);
        }
    }
    if extra.contains(&"middlewareName") {
        if let Some(want) = param("middlewareName") {
            items.retain(|v| {
                v["middlewares"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x == want))
            });
        }
    }
    let sort_by = param("sortBy").unwrap_or("name");
    items.sort_by(|a, b| {
        let key = |v: &Value| match &v[sort_by] {
            Value::Number(n) => (n.as_f64().unwrap_or(0.0), String::new()),
            Value::String(s) => (0.0, s.to_lowercase()),
            other => (0.0, other.to_string()),
        };
        let (ka, kb) = (key(a), key(b));
        ka.partial_cmp(&kb)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
    });
    if param("direction").is_some_and(|d| d.eq_ignore_ascii_case("desc")) {
        items.reverse();
    }
    let number = |k: &str, default: usize| match param(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid request: {k}: {v:?} is not a positive number")),
    };
    let (page, per_page) = match (number("page", 1), number("per_page", PER_PAGE)) {
        (Ok(p), Ok(pp)) => (p, pp),
        (Err(e), _) | (_, Err(e)) => return Response::error(400, &e),
    };
    let start = (page - 1).saturating_mul(per_page);
    if start != 0 && start >= items.len() {
        return Response::error(
            400,
            &format!("invalid request: page: {page}, per_page: {per_page}"),
        );
    }
    let end = start.saturating_add(per_page).min(items.len());
    let next = if page.saturating_mul(per_page) < items.len() {
        page + 1
    } else {
        1
    };
    let mut r = Response::json(&Value::Array(items[start..end].to_vec()));
    r.headers.push(("X-Next-Page", next.to_string()));
    r
}

/// The JSON objects of one view.
struct Model<'a> {
    api: &'a Api,
    view: &'a View,
    /// Routers using each service and each middleware, made when first needed.
    used_by: std::cell::OnceCell<HashMap<String, Vec<String>>>,
    /// Health-checked servers found down, (service, url), made when first needed.
    servers_down: std::cell::OnceCell<std::collections::HashSet<(&'a str, &'a str)>>,
}

impl<'a> Model<'a> {
    fn new(api: &'a Api, view: &'a View) -> Model<'a> {
        Model {
            api,
            view,
            used_by: std::cell::OnceCell::new(),
            servers_down: std::cell::OnceCell::new(),
        }
    }

    /// The routers using `name` (a TCP service's name is prefixed with `tcp:`).
    fn used_by(&self, name: &str) -> Vec<String> {
        let map = self.used_by.get_or_init(|| {
            let mut used_by: HashMap<String, Vec<String>> = HashMap::new();
            for r in &self.view.runtime.routers {
                let key = |name: &str| {
                    if r.tcp {
                        format!("tcp:{name}")
                    } else {
                        name.to_string()
                    }
                };
                used_by
                    .entry(key(&r.service))
                    .or_default()
                    .push(r.name.clone());
                for m in &r.middleware_names {
                    used_by.entry(key(m)).or_default().push(r.name.clone());
                }
            }
            for v in used_by.values_mut() {
                v.sort();
                v.dedup();
            }
            used_by
        });
        map.get(name).cloned().unwrap_or_default()
    }

    fn items(&self, proto: &str, kind: &str) -> Vec<Value> {
        self.items_named(proto, kind, None)
    }

    /// The items of a list, or only the one named `only` (without building the others).
    fn items_named(&self, proto: &str, kind: &str, only: Option<&str>) -> Vec<Value> {
        let rt = &self.view.runtime;
        let tcp = proto == "tcp";
        let wanted = |name: &str| only.is_none_or(|o| o == name);
        match kind {
            "routers" => rt
                .routers
                .iter()
                .filter(|r| r.tcp == tcp && wanted(&r.name))
                .map(|r| self.router(r))
                .collect(),
            "services" if tcp => self.tcp_services(only),
            "services" => rt
                .services
                .iter()
                .filter(|s| wanted(&s.name))
                .map(|s| self.service(s))
                .collect(),
            "middlewares" if tcp => Vec::new(),
            _ => rt
                .middlewares
                .iter()
                .filter(|m| wanted(&m.name))
                .map(|m| self.middleware(m))
                .collect(),
        }
    }

    fn router(&self, r: &RouterStatus) -> Value {
        let mut o = Map::new();
        o.insert("entryPoints".into(), json!(r.declared_entry_points));
        if !r.middleware_names.is_empty() {
            o.insert("middlewares".into(), json!(r.middleware_names));
        }
        o.insert("service".into(), json!(configured(&r.service, &r.provider)));
        o.insert("rule".into(), json!(r.rule));
        o.insert("priority".into(), json!(r.priority));
        if r.tcp {
            let mut tls = Map::new();
            if let Some(t) = &r.tls {
                tls.insert("passthrough".into(), json!(r.passthrough));
                tls_fields(&mut tls, t);
                o.insert("tls".into(), Value::Object(tls));
            }
        } else if let Some(t) = &r.tls {
            let mut tls = Map::new();
            tls_fields(&mut tls, t);
            o.insert("tls".into(), Value::Object(tls));
        }
        status_fields(&mut o, r.enabled, &r.errors);
        o.insert("using".into(), json!(r.entry_points));
        o.insert("name".into(), json!(r.name));
        o.insert("provider".into(), json!(r.provider));
        Value::Object(o)
    }

    fn service(&self, s: &ServiceStatus) -> Value {
        let rt = &self.view.runtime;
        let mut o = Map::new();
        let spec = rt.spec(&s.name);
        let down = self
            .servers_down
            .get_or_init(|| self.view.stats.servers_down());
        let mut kind = None;
        match spec.map(|x| &x.kind) {
            Some(ServiceKind::LoadBalancer(lb)) => {
                kind = Some("loadbalancer");
                let servers: Vec<Value> = lb
                    .servers
                    .iter()
                    .map(|srv| {
                        if srv.weight == 1 {
                            json!({ "url": srv.url })
                        } else {
                            json!({ "url": srv.url, "weight": srv.weight })
                        }
                    })
                    .collect();
                let mut lbo = Map::new();
                lbo.insert("servers".into(), Value::Array(servers));
                lbo.insert("strategy".into(), json!("wrr"));
                lbo.insert("passHostHeader".into(), json!(lb.pass_host_header));
                if let Some(hc) = &lb.health_check {
                    let mut h = Map::new();
                    h.insert("path".into(), json!(hc.path));
                    h.insert("method".into(), json!(hc.method));
                    h.insert("interval".into(), json!(go_duration(hc.interval)));
                    h.insert("timeout".into(), json!(go_duration(hc.timeout)));
                    if let Some(host) = &hc.hostname {
                        h.insert("hostname".into(), json!(host));
                    }
                    if let Some(port) = hc.port {
                        h.insert("port".into(), json!(port));
                    }
                    lbo.insert("healthCheck".into(), Value::Object(h));
                }
                o.insert("loadBalancer".into(), Value::Object(lbo));
                let status: Map<String, Value> = lb
                    .servers
                    .iter()
                    .map(|srv| {
                        let up = !down.contains(&(s.name.as_str(), srv.url.as_str()));
                        (srv.url.clone(), json!(if up { "UP" } else { "DOWN" }))
                    })
                    .collect();
                o.insert("serverStatus".into(), Value::Object(status));
            }
            Some(ServiceKind::Weighted(children)) => {
                kind = Some("weighted");
                let services: Vec<Value> = children
                    .iter()
                    .filter_map(|c| rt.service_specs.get(c.service.0 as usize))
                    .zip(children)
                    .map(|(child, c)| {
                        json!({ "name": configured(&child.name, &s.provider), "weight": c.weight })
                    })
                    .collect();
                o.insert("weighted".into(), json!({ "services": services }));
            }
            Some(ServiceKind::Internal(_)) | None => {}
        }
        status_fields(&mut o, s.enabled, &s.errors);
        o.insert("usedBy".into(), json!(self.used_by(&s.name)));
        o.insert("name".into(), json!(s.name));
        o.insert("provider".into(), json!(s.provider));
        if let Some(k) = kind.or(match s.kind {
            "loadBalancer" => Some("loadbalancer"),
            "weighted" => Some("weighted"),
            _ => None,
        }) {
            o.insert("type".into(), json!(k));
        }
        Value::Object(o)
    }

    fn tcp_services(&self, only: Option<&str>) -> Vec<Value> {
        self.view
            .runtime
            .tcp_service_specs
            .iter()
            .filter(|s| only.is_none_or(|o| o == s.name))
            .map(|s| {
                let mut o = Map::new();
                let provider = s.name.rsplit_once('@').map_or("", |(_, p)| p);
                match &s.kind {
                    TcpServiceKind::LoadBalancer(servers) => {
                        let servers: Vec<Value> = servers
                            .iter()
                            .map(|x| json!({ "address": x.address }))
                            .collect();
                        o.insert("loadBalancer".into(), json!({ "servers": servers }));
                        o.insert("type".into(), json!("loadbalancer"));
                    }
                    TcpServiceKind::Weighted(children) => {
                        let services: Vec<Value> = children
                            .iter()
                            .filter_map(|(i, w)| {
                                self.view
                                    .runtime
                                    .tcp_service_specs
                                    .get(*i as usize)
                                    .map(|c| json!({ "name": c.name, "weight": w }))
                            })
                            .collect();
                        o.insert("weighted".into(), json!({ "services": services }));
                        o.insert("type".into(), json!("weighted"));
                    }
                }
                status_fields(&mut o, true, &[]);
                o.insert(
                    "usedBy".into(),
                    json!(self.used_by(&format!("tcp:{}", s.name))),
                );
                o.insert("name".into(), json!(s.name));
                o.insert("provider".into(), json!(provider));
                Value::Object(o)
            })
            .collect()
    }

    fn middleware(&self, m: &MiddlewareStatus) -> Value {
        let mut o = Map::new();
        o.insert(m.kind.into(), node_json(&m.config));
        let errors: Vec<String> = m.error.iter().cloned().collect();
        status_fields(&mut o, m.error.is_none(), &errors);
        o.insert("usedBy".into(), json!(self.used_by(&m.name)));
        o.insert("name".into(), json!(m.name));
        o.insert("provider".into(), json!(m.provider));
        o.insert("type".into(), json!(m.kind.to_lowercase()));
        Value::Object(o)
    }

    fn entry_points(&self) -> Vec<Value> {
        self.api
            .settings
            .cfg
            .entry_points
            .values()
            .map(entry_point)
            .collect()
    }

    fn overview(&self) -> Value {
        // Counted from the statuses, without building every item's JSON.
        let counts = |statuses: &mut dyn Iterator<Item = &'static str>| {
            let (mut total, mut warnings, mut errors) = (0, 0, 0);
            for st in statuses {
                total += 1;
                match st {
                    "warning" => warnings += 1,
                    "disabled" => errors += 1,
                    _ => {}
                }
            }
            json!({ "total": total, "warnings": warnings, "errors": errors })
        };
        let rt = &self.view.runtime;
        let routers = |tcp: bool| {
            counts(
                &mut rt
                    .routers
                    .iter()
                    .filter(move |r| r.tcp == tcp)
                    .map(|r| status(r.enabled, !r.errors.is_empty())),
            )
        };
        let http = json!({
            "routers": routers(false),
            "services": counts(
                &mut rt.services.iter().map(|s| status(s.enabled, !s.errors.is_empty()))
            ),
            "middlewares": counts(
                &mut rt.middlewares.iter().map(|m| status(m.error.is_none(), m.error.is_some()))
            ),
        });
        let tcp = json!({
            "routers": routers(true),
            "services": counts(&mut rt.tcp_service_specs.iter().map(|_| status(true, false))),
            "middlewares": counts(&mut std::iter::empty()),
        });
        let cfg = &self.api.settings.cfg;
        let p = &cfg.providers;
        let mut providers = Vec::new();
        for (on, name) in [
            (p.docker.is_some(), "Docker"),
            (p.swarm.is_some(), "Swarm"),
            (p.file.is_some(), "File"),
            (p.redis.is_some(), "Redis"),
            (p.etcd.is_some(), "Etcd"),
        ] {
            if on {
                providers.push(name);
            }
        }
        let zero = json!({ "total": 0, "warnings": 0, "errors": 0 });
        json!({
            "http": http,
            "tcp": tcp,
            "udp": { "routers": zero, "services": zero },
            "features": {
                "tracing": "",
                "metrics": if cfg.metrics.is_some() { "prometheus" } else { "" },
                "accessLog": cfg.access_log.is_some(),
            },
            "providers": providers,
        })
    }

    fn rawdata(&self) -> Value {
        let by_name = |items: Vec<Value>| -> Value {
            let m: BTreeMap<String, Value> = items
                .into_iter()
                .map(|mut v| {
                    let name = v["name"].as_str().unwrap_or_default().to_string();
                    if let Value::Object(o) = &mut v {
                        o.remove("name");
                    }
                    (name, v)
                })
                .collect();
            json!(m)
        };
        json!({
            "routers": by_name(self.items("http", "routers")),
            "middlewares": by_name(self.items("http", "middlewares")),
            "services": by_name(self.items("http", "services")),
            "tcpRouters": by_name(self.items("tcp", "routers")),
            "tcpServices": by_name(self.items("tcp", "services")),
        })
    }
}

/// `status` (`enabled`, `warning` when enabled with errors, `disabled`) and `error`.
fn status_fields(o: &mut Map<String, Value>, enabled: bool, errors: &[String]) {
    if !errors.is_empty() {
        o.insert("error".into(), json!(errors));
    }
    o.insert("status".into(), json!(status(enabled, !errors.is_empty())));
}

/// Traefik's status: `disabled`, `warning` (enabled with errors), `enabled`.
fn status(enabled: bool, has_errors: bool) -> &'static str {
    match (enabled, has_errors) {
        (false, _) => "disabled",
        (true, true) => "warning",
        (true, false) => "enabled",
    }
}

fn tls_fields(o: &mut Map<String, Value>, t: &ringway_shared::config::dynamic::RouterTlsConfig) {
    if let Some(opt) = t.options.as_deref().filter(|s| !s.is_empty()) {
        o.insert("options".into(), json!(opt));
    }
    if let Some(r) = t.cert_resolver.as_deref().filter(|s| !s.is_empty()) {
        o.insert("certResolver".into(), json!(r));
    }
    if !t.domains.is_empty() {
        let domains: Vec<Value> = t
            .domains
            .iter()
            .map(|d| {
                if d.sans.is_empty() {
                    json!({ "main": d.main })
                } else {
                    json!({ "main": d.main, "sans": d.sans })
                }
            })
            .collect();
        o.insert("domains".into(), Value::Array(domains));
    }
}

/// The service as a router's configuration names it: without `@provider` when it is the
/// router's own provider (as Traefik shows it).
fn configured(service: &str, provider: &str) -> String {
    match service.rsplit_once('@') {
        Some((name, p)) if p == provider && p != "internal" => name.to_string(),
        _ => service.to_string(),
    }
}

fn entry_point(ep: &EntryPoint) -> Value {
    let address = if ep.address.ip().is_unspecified() && ep.address.is_ipv4() {
        format!(":{}", ep.address.port())
    } else {
        ep.address.to_string()
    };
    let mut forwarded = Map::new();
    if ep.forwarded_insecure {
        forwarded.insert("insecure".into(), json!(true));
    }
    if !ep.trusted_ips.is_empty() {
        let ips: Vec<String> = ep.trusted_ips.iter().map(ToString::to_string).collect();
        forwarded.insert("trustedIPs".into(), json!(ips));
    }
    let mut http = Map::new();
    if let Some(r) = &ep.redirect {
        http.insert(
            "redirections".into(),
            json!({ "entryPoint": { "to": format!(":{}", r.port), "scheme": r.scheme, "permanent": r.permanent } }),
        );
    }
    // Zero durations are left out, as Traefik's JSON does.
    let durations = |pairs: &[(&str, std::time::Duration)]| -> Value {
        Value::Object(
            pairs
                .iter()
                .filter(|(_, d)| !d.is_zero())
                .map(|(k, d)| (k.to_string(), json!(go_duration(*d))))
                .collect(),
        )
    };
    json!({
        "address": address,
        "transport": {
            "lifeCycle": durations(&[
                ("requestAcceptGraceTimeout", ep.request_accept_grace_timeout),
                ("graceTimeOut", ep.grace_timeout),
            ]),
            "respondingTimeouts": durations(&[
                ("readTimeout", ep.read_timeout),
                ("writeTimeout", ep.write_timeout),
                ("idleTimeout", ep.idle_timeout),
            ]),
        },
        "forwardedHeaders": forwarded,
        "http": http,
        "name": ep.name,
    })
}

/// Go's `time.Duration` string for whole and fractional seconds: `60s`, `3m0s`, `100ms`, `0s`.
fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let frac = d.subsec_millis();
    let s = if frac == 0 {
        format!("{}s", secs % 60)
    } else {
        let digits = format!("{frac:03}");
        format!("{}.{}s", secs % 60, digits.trim_end_matches('0'))
    };
    match (secs / 3600, secs % 3600 / 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// A configuration tree as JSON: numbers and booleans written as such.
fn node_json(n: &Node) -> Value {
    match n {
        Node::Leaf(s) => {
            if let Ok(i) = s.parse::<i64>() {
                json!(i)
            } else if s == "true" || s == "false" {
                json!(s == "true")
            } else {
                json!(s)
            }
        }
        Node::List(items) => Value::Array(items.iter().map(node_json).collect()),
        Node::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), node_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(180)), "3m0s");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3700)), "1h1m40s");
    }

    fn page(items: usize, query: &str) -> (u16, Vec<String>, String) {
        let values = (0..items)
            .map(|i| json!({ "name": format!("r{i:02}@file"), "status": "enabled", "provider": "file" }))
            .collect();
        let r = list(values, &super::super::server::parse_query(query), &[]);
        let body: Value = serde_json::from_slice(&r.body).expect("json");
        let names = body
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let next = r
            .headers
            .iter()
            .find(|(k, _)| *k == "X-Next-Page")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        (r.status, names, next)
    }

    #[test]
    fn lists_paginate_as_traefik() {
        let (status, names, next) = page(5, "per_page=2");
        assert_eq!((status, names.len(), next.as_str()), (200, 2, "2"));
        assert_eq!(names, ["r00@file", "r01@file"]);
        let (_, names, next) = page(5, "per_page=2&page=3");
        assert_eq!((names, next.as_str()), (vec!["r04@file".to_string()], "1"));
        assert_eq!(page(5, "per_page=2&page=4").0, 400);
        assert_eq!(page(0, "").0, 200);
        assert_eq!(page(5, "page=x").0, 400);
        let (_, names, _) = page(12, "search=R1&direction=desc");
        assert_eq!(names, ["r11@file", "r10@file"]);
    }
}
