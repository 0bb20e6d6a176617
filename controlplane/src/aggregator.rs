//! The aggregator: qualifies the names of every provider's configuration (`name@provider`),
//! validates routers and services, and produces the `TableSpec` the data plane compiles.
//!
//! Errors never fail the whole table: a router with a bad rule, a missing service or an
//! unsupported middleware is disabled and reported; the rest is served. Settings that ringway
//! does not implement yet but that cannot weaken security (health checks, sticky sessions,
//! `tcp` routers, …) are reported as warnings and ignored; those that could (middlewares) are
//! errors that disable what uses them.

mod memo;
mod services;
mod tcp;
pub use memo::Memo;
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RedirectSchemeConfig {
    scheme: Option<String>,
    port: Option<String>,
    permanent: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RetryConfig {
    attempts: Option<u32>,
    initial_interval: Option<ringway_shared::config::TraefikDuration>,
}

/// What the data plane gets for a middleware, or why it cannot have it (a phrase that follows
/// the middleware's name: `of type "basicAuth" is not supported yet`).
fn middleware_spec(m: &MiddlewareConfig) -> Result<MiddlewareSpec, String> {
    let invalid = |e: String| format!("of type {:?} is invalid: {e}", m.kind);
    match m.kind {
        "redirectScheme" => {
            let c: RedirectSchemeConfig =
                from_node_at(&m.config, "redirectScheme").map_err(|e| e.to_string())?;
            let scheme = c
                .scheme
                .unwrap_or_else(|| "https".to_string())
                .to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(format!(
                    "redirectScheme: scheme {scheme:?} must be http or https"
                ));
            }
            let port = match c.port.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                None => None,
                Some(p) => Some(
                    p.trim_start_matches(':')
                        .parse::<u16>()
                        .map_err(|_| invalid(format!("port {p:?} is not a port number")))?,
                ),
            };
            Ok(MiddlewareSpec::RedirectScheme(RedirectSpec {
                scheme,
                port,
                permanent: c.permanent.unwrap_or(false),
            }))
        }
        "retry" => {
            let c: RetryConfig = from_node_at(&m.config, "retry").map_err(|e| e.to_string())?;
            let attempts = c
                .attempts
                .filter(|&a| a > 0)
                .ok_or_else(|| invalid("attempts must be more than 0".to_string()))?;
            Ok(MiddlewareSpec::Retry(RetrySpec {
                attempts,
                initial_interval: c
                    .initial_interval
                    .map_or(std::time::Duration::from_millis(100), |d| d.0),
            }))
        }
        kind => Err(format!("of type {kind:?} is not supported yet")),
    }
}

#[cfg(test)]
mod tests;

use ringway_shared::config::dynamic::{MiddlewareConfig, RouterConfig, RouterTlsConfig};
use ringway_shared::config::node::from_node_at;
use ringway_shared::config::static_config::EntryPointTls;
use ringway_shared::config::{ConfigError, DynamicConfig, Node, StaticConfig};
use ringway_shared::rule::{self, RuleKind};
use ringway_shared::table::{
    InternalService, MiddlewareSpec, RedirectSpec, RetrySpec, RouterDef, RouterSpec, ServiceId,
    ServiceKind, ServiceSpec, TableSpec, TlsOptionsSpec,
};
use rustc_hash::FxHashMap as HashMap;
use services::Services;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// Every router, enabled or not, sorted by provider then name (shared with the
    /// previous resolution while unchanged).
    pub routers: Vec<Arc<RouterStatus>>,
    /// Every service, valid or not, sorted by qualified name.
    pub services: Vec<Arc<ServiceStatus>>,
    /// Every HTTP middleware, sorted by qualified name.
    pub middlewares: Vec<MiddlewareStatus>,
    /// Faults: each disabled a router, a service or a server.
    pub errors: Vec<ConfigError>,
    /// Settings accepted but not implemented yet, ignored (`tcp`, `healthCheck`, …).
    pub warnings: Vec<ConfigError>,
    /// Certificates that enabled routers ask of ACME resolvers (`tls.certResolver`).
    pub cert_requests: Vec<crate::acme::CertRequest>,
}

/// A router as the API reports it: enabled or disabled, with its errors.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterStatus {
    /// Qualified: `name@provider`.
    pub name: String,
    pub provider: String,
    pub rule: String,
    pub priority: i64,
    /// The entry points it is attached to (valid ones only).
    pub entry_points: Vec<String>,
    /// The entry points as configured (the default ones when none is).
    pub declared_entry_points: Vec<String>,
    /// Qualified service name.
    pub service: String,
    pub enabled: bool,
    pub errors: Vec<String>,
    /// The middlewares the data plane applies, in order.
    pub middlewares: Vec<MiddlewareSpec>,
    /// The middlewares as configured, qualified (for the API).
    pub middleware_names: Vec<String>,
    /// The `tls` section as configured.
    pub tls: Option<RouterTlsConfig>,
    /// A TCP router (`tcp.routers`), and whether it passes TLS through.
    pub tcp: bool,
    pub passthrough: bool,
}

/// A middleware as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MiddlewareStatus {
    /// Qualified: `name@provider`.
    pub name: String,
    pub provider: String,
    /// `redirectScheme`, …
    pub kind: &'static str,
    pub config: Node,
    /// Why routers using it are disabled (unsupported or invalid).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    /// Qualified: `name@provider`.
    pub name: String,
    pub provider: String,
    /// `loadBalancer`, `weighted`, or `""` when it has no valid type.
    pub kind: &'static str,
    /// In the table; `false` when the service itself is invalid.
    pub enabled: bool,
    /// URLs of the servers that were kept.
    pub servers: Vec<String>,
    /// Errors about the service or about dropped servers.
    pub errors: Vec<String>,
}

/// Resolves a host name to addresses (the control plane does DNS; the data plane never does).
pub type Resolver<'a> = &'a dyn Fn(&str, u16) -> Result<Vec<SocketAddr>, String>;

/// Qualifies `name` in `provider` unless it already names one (`svc@docker`).
pub fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') {
        name.to_string()
    } else {
        // Not `format!`: this runs twice per router and once per service on every reload.
        let mut q = String::with_capacity(name.len() + 1 + provider.len());
        q.push_str(name);
        q.push('@');
        q.push_str(provider);
        q
    }
}

/// Every provider's middlewares, qualified, with their type and what the data plane gets (or
/// why it cannot have it).
type MiddlewareResults = HashMap<String, (&'static str, Result<MiddlewareSpec, String>)>;

/// Aggregates every provider's configuration into one table.
pub fn resolve(
    providers: &[ProviderConfig],
    static_cfg: &StaticConfig,
    resolve_addr: Resolver<'_>,
) -> Resolution {
    resolve_with(providers, static_cfg, resolve_addr, &mut Memo::default())
}

/// As [`resolve`], reusing what the last resolution with the same `memo` built for routers
/// and services that did not change (and keeping this one's for the next).
pub fn resolve_with(
    providers: &[ProviderConfig],
    static_cfg: &StaticConfig,
    resolve_addr: Resolver<'_>,
    memo: &mut Memo,
) -> Resolution {
    let mut out = Resolution::default();
    for p in providers {
        section_warnings(p, &mut out.warnings);
    }
    let (tls, tls_options) = crate::tls::resolve_tls(providers, &mut out.errors, &mut out.warnings);
    out.table.tls = tls;
    let mut host_options = crate::tls::HostOptions::default();
    tcp::resolve_tcp(
        providers,
        static_cfg,
        resolve_addr,
        (&tls_options, &mut host_options),
        &mut out,
    );

    // Services first: routers refer to them by index. Collected, then built into the map in
    // one pass (each provider's services come sorted): 10,000 inserts cost more.
    let n_services: usize = providers.iter().map(|p| p.config.http.services.len()).sum();
    let n_routers: usize = providers.iter().map(|p| p.config.http.routers.len()).sum();
    let mut raw = Vec::with_capacity(n_services);
    for p in providers {
        for (name, svc) in &p.config.http.services {
            let loc = location(&p.config, "http.services", name, &p.provider);
            if name.contains('@') {
                out.errors
                    .push(ConfigError::new(loc, "a service name cannot contain '@'"));
                continue;
            }
            raw.push((
                qualify(name, &p.provider),
                services::RawService {
                    provider: &p.provider,
                    config: svc,
                    location: loc,
                },
            ));
        }
    }
    let raw: BTreeMap<String, services::RawService<'_>> = raw.into_iter().collect();
    out.routers.reserve(n_routers);
    out.table.routers.reserve(n_routers);
    let known_eps = static_cfg.entry_point_names();
    let default_eps = static_cfg.default_entry_points();
    memo.begin(&known_eps, &default_eps);
    let mut services = Services::build(&raw, resolve_addr, memo, &mut out);
    let noop_used = providers.iter().any(|p| {
        p.config
            .http
            .routers
            .values()
            .any(|r| r.service == "noop@internal")
    });
    add_internal_services(static_cfg, noop_used, &mut services, &mut out);

    // What the data plane gets for each middleware, and what the API shows of it.
    let mut middlewares = MiddlewareResults::default();
    for p in providers {
        for (name, m) in &p.config.http.middlewares {
            let q = qualify(name, &p.provider);
            let spec = middleware_spec(m);
            out.middlewares.push(MiddlewareStatus {
                error: spec.as_ref().err().cloned(),
                name: q.clone(),
                provider: p.provider.clone(),
                kind: m.kind,
                config: m.config.clone(),
            });
            middlewares.insert(q, (m.kind, spec));
        }
    }
    out.middlewares.sort_by(|a, b| a.name.cmp(&b.name));
    let cx = RouterContext {
        service_ids: &services.ids,
        middlewares: &middlewares,
        known_eps,
        default_eps,
        tls_options: &tls_options,
        rule_checks: std::cell::RefCell::new(std::mem::take(&mut memo.rule_checks)),
    };
    let models: BTreeMap<&str, &EntryPointTls> = static_cfg
        .entry_points
        .iter()
        .filter_map(|(n, ep)| ep.http_tls.as_ref().map(|t| (n.as_str(), t)))
        .collect();
    for p in providers {
        for (configured, config) in &p.config.http.routers {
            let modelled = models_apply(config, &models, &cx.default_eps);
            if !modelled {
                let kept =
                    memo.router(&p.provider, configured, config, &services.ids, &middlewares);
                if let Some((status, spec)) = kept {
                    out.routers.push(status);
                    out.table.routers.push(spec);
                    continue;
                }
            }
            for (name, r) in apply_models(configured, config, &models, &cx.default_eps) {
                let (name, r) = (name.as_ref(), r.as_ref());
                let loc = location(&p.config, "http.routers", name, &p.provider);
                let mut status = cx.router(qualify(name, &p.provider), &p.provider, r);
                let qualified = status.name.as_str();
                if name.contains('@') {
                    status
                        .errors
                        .push("a router name cannot contain '@'".to_string());
                    status.enabled = false;
                }
                for e in &status.errors {
                    out.errors.push(ConfigError::new(loc, e.clone()));
                }
                if let (true, Some(tls)) = (status.enabled, &r.tls) {
                    let options = crate::tls::options_name(tls.options.as_deref(), &p.provider);
                    for host in router_hosts(tls, &r.rule) {
                        host_options.add(&host, &options, qualified, &mut out.warnings);
                    }
                    if let Some(resolver) = tls.cert_resolver.as_deref().filter(|r| !r.is_empty()) {
                        if static_cfg.certificates_resolvers.contains_key(resolver) {
                            out.cert_requests
                                .extend(cert_requests(resolver, tls, &r.rule));
                        } else {
                            out.errors.push(ConfigError::new(
                                loc,
                                format!(
                                    "the certificate resolver {resolver:?} does not exist; \
                                 the router is served with the other certificates"
                                ),
                            ));
                        }
                    }
                }
                let status = Arc::new(status);
                if status.enabled {
                    if let Some(&service) = services.ids.get(&status.service) {
                        let def = Arc::new(RouterDef {
                            name: status.name.clone(),
                            entry_points: status.entry_points.clone(),
                            rule: status.rule.clone(),
                            priority: status.priority,
                            tls: r.tls.is_some(),
                            middlewares: status.middlewares.clone(),
                        });
                        if !modelled && r.tls.is_none() && status.errors.is_empty() {
                            memo.keep_router(&p.provider, configured, config, (&status, &def));
                        }
                        out.table.routers.push(RouterSpec { def, service });
                    }
                }
                out.routers.push(status);
            }
        }
    }
    memo.rule_checks = cx.rule_checks.into_inner();
    memo.end();
    add_internal_routers(static_cfg, &services.ids, &mut out);
    out.table.services = services.specs;
    out.table.tls.sni_options = host_options.into_specs(&tls_options);
    out
}

/// Traefik's internal services that the static configuration turns on.
/// `noop@internal` only when a router uses it.
fn internal_services(
    static_cfg: &StaticConfig,
    noop_used: bool,
) -> Vec<(&'static str, InternalService)> {
    let mut out = Vec::new();
    if noop_used {
        out.push(("noop@internal", InternalService::Noop));
    }
    if let Some(api) = &static_cfg.api {
        out.push(("api@internal", InternalService::Api));
        if api.dashboard {
            out.push(("dashboard@internal", InternalService::Dashboard));
        }
    }
    if static_cfg.metrics.is_some() {
        out.push(("prometheus@internal", InternalService::Prometheus));
    }
    if let Some(p) = static_cfg.ping_manual {
        out.push((
            "ping@internal",
            InternalService::Ping {
                terminating_status: p.terminating_status,
            },
        ));
    }
    out
}

fn add_internal_services(
    static_cfg: &StaticConfig,
    noop_used: bool,
    services: &mut Services,
    out: &mut Resolution,
) {
    for (name, kind) in internal_services(static_cfg, noop_used) {
        services
            .ids
            .insert(name.to_string(), ServiceId(services.specs.len() as u32));
        services.specs.push(Arc::new(ServiceSpec {
            name: name.to_string(),
            kind: ServiceKind::Internal(kind),
        }));
        out.services.push(Arc::new(ServiceStatus {
            name: name.to_string(),
            provider: "internal".to_string(),
            kind: "",
            enabled: true,
            servers: Vec::new(),
            errors: Vec::new(),
        }));
    }
}

/// The routers Traefik makes itself: `api@internal` and `dashboard@internal` with
/// `api.insecure`, `prometheus@internal` unless `metrics.prometheus.manualRouting`.
fn add_internal_routers(
    static_cfg: &StaticConfig,
    ids: &HashMap<String, ServiceId>,
    out: &mut Resolution,
) {
    let mut routers = Vec::new();
    if let Some(api) = static_cfg.api.as_ref().filter(|a| a.insecure) {
        let base = &api.base_path;
        routers.push((
            "api@internal",
            format!("PathPrefix(`{base}/api`)"),
            i64::MAX - 1,
            INTERNAL_ENTRY_POINT,
        ));
        if api.dashboard {
            routers.push((
                "dashboard@internal",
                format!("PathPrefix(`{base}/`)"),
                i64::MAX - 2,
                INTERNAL_ENTRY_POINT,
            ));
        }
    }
    if let Some(m) = static_cfg.metrics.as_ref().filter(|m| !m.manual_routing) {
        routers.push((
            "prometheus@internal",
            "PathPrefix(`/metrics`)".to_string(),
            i64::MAX,
            m.entry_point.as_str(),
        ));
    }
    for (name, rule, priority, ep) in routers {
        let Some(&service) = ids.get(name) else {
            continue;
        };
        out.table.routers.push(RouterSpec {
            def: Arc::new(RouterDef {
                name: name.to_string(),
                entry_points: vec![ep.to_string()],
                rule: rule.clone(),
                priority,
                tls: false,
                middlewares: Vec::new(),
            }),
            service,
        });
        out.routers.push(Arc::new(RouterStatus {
            name: name.to_string(),
            provider: "internal".to_string(),
            rule,
            priority,
            entry_points: vec![ep.to_string()],
            declared_entry_points: vec![ep.to_string()],
            service: name.to_string(),
            enabled: true,
            errors: Vec::new(),
            middlewares: Vec::new(),
            middleware_names: Vec::new(),
            tls: None,
            tcp: false,
            passthrough: false,
        }));
    }
}

/// Traefik's internal entry point (API, dashboard, metrics by default).
const INTERNAL_ENTRY_POINT: &str = "traefik";

/// Traefik's entry point models (`entryPoints.<n>.http.tls`): a router gets the TLS settings
/// of its entry points that have a model when it has none of its own; a router on several
/// entry points is split into one copy per entry point with a model, named `<ep>-<name>`,
/// the other entry points staying with the original.
fn apply_models<'a>(
    name: &'a str,
    r: &'a RouterConfig,
    models: &BTreeMap<&str, &EntryPointTls>,
    default_eps: &[String],
) -> Vec<(Cow<'a, str>, Cow<'a, RouterConfig>)> {
    if !models_apply(r, models, default_eps) {
        return vec![(Cow::Borrowed(name), Cow::Borrowed(r))];
    }
    let eps = router_entry_points(r, default_eps);
    let mut out = Vec::new();
    let mut plain = Vec::new();
    for ep in eps {
        match models.get(ep.as_str()) {
            Some(model) => {
                let mut cp = r.clone();
                cp.entry_points = vec![ep.clone()];
                if cp.tls.is_none() {
                    cp.tls = Some(RouterTlsConfig {
                        options: model.options.clone(),
                        cert_resolver: model.cert_resolver.clone(),
                        domains: model
                            .domains
                            .iter()
                            .map(|(main, sans)| ringway_shared::config::dynamic::TlsDomain {
                                main: main.clone(),
                                sans: sans.clone(),
                            })
                            .collect(),
                    });
                }
                let n = if eps.len() > 1 {
                    Cow::Owned(format!("{ep}-{name}"))
                } else {
                    Cow::Borrowed(name)
                };
                out.push((n, Cow::Owned(cp)));
            }
            None => plain.push(ep.clone()),
        }
    }
    if !plain.is_empty() {
        let mut cp = r.clone();
        cp.entry_points = plain;
        out.push((Cow::Borrowed(name), Cow::Owned(cp)));
    }
    out
}

/// Whether one of the router's entry points has a TLS model (then [`apply_models`] changes it).
fn models_apply(
    r: &RouterConfig,
    models: &BTreeMap<&str, &EntryPointTls>,
    default_eps: &[String],
) -> bool {
    !models.is_empty()
        && router_entry_points(r, default_eps)
            .iter()
            .any(|ep| models.contains_key(ep.as_str()))
}

/// The entry points a router names, or the default ones when it names none.
fn router_entry_points<'a>(r: &'a RouterConfig, default_eps: &'a [String]) -> &'a [String] {
    if r.entry_points.is_empty() {
        default_eps
    } else {
        &r.entry_points
    }
}

/// What a router asks its resolver for, as Traefik: one certificate per `tls.domains` entry
/// (main and SANs), else one for all the rule's `Host()` names.
fn cert_requests(
    resolver: &str,
    tls: &RouterTlsConfig,
    rule: &str,
) -> Vec<crate::acme::CertRequest> {
    let sets: Vec<Vec<String>> = if tls.domains.is_empty() {
        vec![router_hosts(tls, rule)]
    } else {
        tls.domains
            .iter()
            .map(|d| std::iter::once(&d.main).chain(&d.sans).cloned().collect())
            .collect()
    };
    sets.into_iter()
        .filter_map(|names| cert_request(resolver, names))
        .collect()
}

/// One certificate request: names trimmed, lowercased, deduplicated, main first.
fn cert_request(resolver: &str, names: Vec<String>) -> Option<crate::acme::CertRequest> {
    let mut domains: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        if !n.is_empty() && !domains.contains(&n) {
            domains.push(n);
        }
    }
    (!domains.is_empty()).then(|| crate::acme::CertRequest {
        resolver: resolver.to_string(),
        domains,
    })
}

/// The host names a TLS router serves: `tls.domains` (main and SANs) when given, else the
/// values of the rule's `Host` matchers (as Traefik does).
fn router_hosts(tls: &RouterTlsConfig, rule: &str) -> Vec<String> {
    if !tls.domains.is_empty() {
        return tls
            .domains
            .iter()
            .flat_map(|d| std::iter::once(&d.main).chain(&d.sans))
            .cloned()
            .collect();
    }
    let mut hosts = Vec::new();
    if let Ok(expr) = ringway_shared::rule::parse(rule) {
        expr.for_each_matcher(&mut |m| {
            if let ringway_shared::rule::Matcher::Host(h) = m {
                hosts.push(h.clone());
            }
        });
    }
    hosts
}

/// Where an item was defined, for messages: `file.toml: http.routers.x`, or
/// `provider docker: http.routers.x` when the provider gave no origin. Written out only when
/// a message needs it (10,000 routers without errors format nothing).
#[derive(Debug, Clone, Copy)]
pub struct Loc<'a> {
    cfg: &'a DynamicConfig,
    section: &'static str,
    name: &'a str,
    provider: &'a str,
}

fn location<'a>(
    cfg: &'a DynamicConfig,
    section: &'static str,
    name: &'a str,
    provider: &'a str,
) -> Loc<'a> {
    Loc {
        cfg,
        section,
        name,
        provider,
    }
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = format!("{}.{}", self.section, self.name);
        match self.cfg.origin(&path) {
            Some(src) => write!(f, "{src}: {path}"),
            None => write!(f, "provider {}: {path}", self.provider),
        }
    }
}

impl From<Loc<'_>> for String {
    fn from(loc: Loc<'_>) -> String {
        loc.to_string()
    }
}

/// Warnings for whole sections ringway ignores.
fn section_warnings(p: &ProviderConfig, warnings: &mut Vec<ConfigError>) {
    let cfg = &p.config;
    let mut warn = |path: String, what: &str| {
        let loc = match cfg.origin(&path) {
            Some(src) => format!("{src}: {path}"),
            None => format!("provider {}: {path}", p.provider),
        };
        warnings.push(ConfigError::new(
            loc,
            format!("{what} not supported yet, ignored"),
        ));
    };
    for (top, raw) in [("udp", &cfg.udp)] {
        for (section, items) in raw.as_ref().and_then(Node::entries).unwrap_or(&[]) {
            for (name, _) in items.entries().unwrap_or(&[]) {
                warn(
                    format!("{top}.{section}.{name}"),
                    &format!("{top} {section} are"),
                );
            }
        }
    }
    for name in cfg.http.servers_transports.keys() {
        warn(
            format!("http.serversTransports.{name}"),
            "serversTransports are",
        );
    }
    for name in cfg.http.models.keys() {
        warn(format!("http.models.{name}"), "models are");
    }
}

impl RuleChecks {
    /// Whether an HTTP rule parses and compiles, remembered (kept in the [`Memo`] across
    /// resolutions: a change to one router of 10,000 re-checks one rule).
    fn check(&mut self, rule_text: &str) -> Result<(), String> {
        if let Some(result) = self.get(rule_text) {
            return result;
        }
        let result = rule::parse(rule_text)
            .and_then(|e| e.check_kind(RuleKind::Http).map(|()| e))
            .and_then(|e| rule::CompiledRule::new(&e).map(drop))
            .map_err(|e| e.to_string());
        self.insert(rule_text, result.clone());
        result
    }
}

/// Two generations of checked rules: lookups promote from the previous one, and a full
/// current generation becomes the previous one (the older is dropped). Bounded: two
/// generations of at most 100,000 rules.
#[derive(Default)]
struct RuleChecks {
    current: HashMap<String, Result<(), String>>,
    previous: HashMap<String, Result<(), String>>,
}

impl RuleChecks {
    /// Bound on remembered rules: past it, the older generation is dropped.
    const MAX: usize = 200_000;

    fn get(&mut self, rule_text: &str) -> Option<Result<(), String>> {
        if let Some(r) = self.current.get(rule_text) {
            return Some(r.clone());
        }
        let r = self.previous.remove(rule_text)?;
        self.insert(rule_text, r.clone());
        Some(r)
    }

    fn insert(&mut self, rule_text: &str, result: Result<(), String>) {
        if self.current.len() >= Self::MAX / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(rule_text.to_string(), result);
    }
}

struct RouterContext<'a> {
    service_ids: &'a HashMap<String, ServiceId>,
    /// Every provider's middlewares, qualified, with their type and what the data plane gets.
    middlewares: &'a HashMap<String, (&'static str, Result<MiddlewareSpec, String>)>,
    known_eps: Vec<String>,
    default_eps: Vec<String>,
    /// The named TLS options sets (`default` is always there).
    tls_options: &'a BTreeMap<String, TlsOptionsSpec>,
    rule_checks: std::cell::RefCell<RuleChecks>,
}

impl RouterContext<'_> {
    fn router(&self, qualified: String, provider: &str, r: &RouterConfig) -> RouterStatus {
        // Every error but an unknown entry point disables the router.
        let mut errors = Vec::new();
        let mut disabled = false;
        let mut fatal = |errors: &mut Vec<String>, e: String| {
            errors.push(e);
            disabled = true;
        };
        let service = qualify(&r.service, provider);
        let priority = r
            .priority
            .filter(|&p| p != 0)
            .unwrap_or(r.rule.len() as i64);

        if r.rule.trim().is_empty() {
            fatal(&mut errors, "rule is empty".to_string());
        } else if let Some(syntax) = r
            .rule_syntax
            .as_deref()
            .filter(|s| !s.eq_ignore_ascii_case("v3"))
        {
            fatal(
                &mut errors,
                format!("ruleSyntax {syntax:?} is not supported (only v3)"),
            );
        } else {
            if let Err(e) = self.rule_checks.borrow_mut().check(&r.rule) {
                fatal(&mut errors, format!("invalid rule: {e}"));
            }
        }

        let mut entry_points = Vec::new();
        if r.entry_points.is_empty() {
            entry_points.extend(self.default_eps.iter().cloned());
        } else {
            for ep in &r.entry_points {
                if self.known_eps.iter().any(|k| k == ep) {
                    if !entry_points.contains(ep) {
                        entry_points.push(ep.clone());
                    }
                } else {
                    errors.push(format!("entryPoint {ep:?} doesn't exist"));
                }
            }
        }
        if entry_points.is_empty() {
            fatal(
                &mut errors,
                "no valid entryPoint for this router".to_string(),
            );
        }

        if r.service.is_empty() {
            fatal(
                &mut errors,
                "the service is missing on the router".to_string(),
            );
        } else if service.ends_with("@internal") && !self.service_ids.contains_key(&service) {
            fatal(
                &mut errors,
                format!(
                    "internal service {service:?} is not enabled: api@internal and \
                     dashboard@internal need `api`, prometheus@internal `metrics.prometheus`, \
                     ping@internal `ping.manualRouting`"
                ),
            );
        } else if !self.service_ids.contains_key(&service) {
            fatal(
                &mut errors,
                format!("the service {service:?} does not exist or is invalid"),
            );
        }

        let mut specs = Vec::new();
        for m in &r.middlewares {
            let q = qualify(m, provider);
            match self.middlewares.get(&q) {
                Some((_, Ok(spec))) => specs.push(spec.clone()),
                // A middleware the data plane does not implement: serving the router without it
                // could drop authentication or an IP allow list, so the router is disabled.
                Some((_, Err(e))) => fatal(&mut errors, format!("middleware {q:?} {e}")),
                None => fatal(&mut errors, format!("middleware {q:?} does not exist")),
            }
        }
        if !r.parent_refs.is_empty() {
            fatal(
                &mut errors,
                "parentRefs (multi-layer routing) are not supported yet".to_string(),
            );
        }

        if let Some(tls) = &r.tls {
            let options = crate::tls::options_name(tls.options.as_deref(), provider);
            if options != "default" && !self.tls_options.contains_key(&options) {
                fatal(&mut errors, format!("unknown TLS options: {options}"));
            }
        }

        RouterStatus {
            name: qualified,
            provider: provider.to_string(),
            rule: r.rule.clone(),
            priority,
            entry_points,
            service,
            enabled: !disabled,
            declared_entry_points: if r.entry_points.is_empty() {
                self.default_eps.clone()
            } else {
                r.entry_points.clone()
            },
            middlewares: specs,
            middleware_names: r.middlewares.iter().map(|m| qualify(m, provider)).collect(),
            tls: r.tls.clone(),
            tcp: false,
            passthrough: false,
            errors,
        }
    }
}
