//! The compiled, immutable routing table the workers match requests against.

use super::delta::{DecodedDelta, RouterItem, ServiceItem};
use super::TcpTls;
use super::{
    AcmeChallengesSpec, DecodedRouter, DecodedSpec, HealthCheckSpec, InternalService,
    MiddlewareSpec, ServerSpec, ServiceId, ServiceKind, ServiceSpec, TableSpec, TcpRouterSpec,
    TcpServiceSpec,
};
use crate::router_index::{IndexedRule, RouterIndex};
use crate::rule::{self, RequestView};
use crate::tcp_rule::{TcpRequest, TcpRule};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A table as the workers use it: per entry point, an index of routers (plain and TLS).
#[derive(Debug)]
pub struct RouteTable {
    pub generation: u64,
    entry_points: HashMap<String, EntryRoutes>,
    /// Shared with the next table where it reuses them (a delta, see [`RouteTable::compile_delta`]).
    routers: Vec<Arc<CompiledRouter>>,
    services: Vec<Arc<CompiledService>>,
    tcp_entry_points: HashMap<String, TcpEntryRoutes>,
    tcp_services: Vec<super::TcpServiceSpec>,
    acme_http: Option<Box<AcmeHttp>>,
}

/// The http-01 answers of a table and the entry points that give them.
#[derive(Debug, Default)]
pub struct AcmeHttp {
    entry_points: Vec<String>,
    answers: HashMap<String, String>,
}

impl AcmeHttp {
    /// The path prefix of http-01 challenges.
    pub const PREFIX: &'static str = "/.well-known/acme-challenge/";

    /// Whether `entry_point` answers challenges.
    pub fn serves(&self, entry_point: &str) -> bool {
        self.entry_points.iter().any(|e| e == entry_point)
    }

    /// The key authorization for a token.
    pub fn answer(&self, token: &str) -> Option<&str> {
        self.answers.get(token).map(String::as_str)
    }
}

/// The TCP routers of one entry point, in priority order (then by name).
#[derive(Debug, Default)]
pub struct TcpEntryRoutes {
    routes: Vec<TcpRoute>,
}

#[derive(Debug)]
pub struct TcpRoute {
    pub name: String,
    pub rule: TcpRule,
    pub tls: TcpTls,
    pub service: u32,
}

impl TcpEntryRoutes {
    /// A plain `HostSNI(`*`)` router that can take the connection before the client speaks,
    /// when it is the only thing on the entry point that could match.
    pub fn immediate(&self) -> Option<&TcpRoute> {
        match self.routes.as_slice() {
            [only] if only.tls == TcpTls::None && only.rule.is_catch_all() => Some(only),
            _ => None,
        }
    }

    /// The first router that matches a TLS connection's ClientHello.
    pub fn find_tls(&self, req: &TcpRequest<'_>) -> Option<&TcpRoute> {
        self.routes
            .iter()
            .find(|r| r.tls != TcpTls::None && r.rule.matches(req))
    }

    /// The first plain-TCP router that matches a non-TLS connection.
    pub fn find_plain(&self, req: &TcpRequest<'_>) -> Option<&TcpRoute> {
        self.routes
            .iter()
            .find(|r| r.tls == TcpTls::None && r.rule.matches(req))
    }

    pub fn has_tls_routes(&self) -> bool {
        self.routes.iter().any(|r| r.tls != TcpTls::None)
    }

    pub fn has_plain_routes(&self) -> bool {
        self.routes.iter().any(|r| r.tls == TcpTls::None)
    }
}

/// The routers attached to one entry point.
#[derive(Debug)]
pub struct EntryRoutes {
    /// Routers without `tls`: matched on plain connections.
    plain: RouterIndex,
    /// Routers with `tls`: matched on TLS connections.
    tls: RouterIndex,
}

/// Cloned by sharing: every field is an `Arc` or a number.
#[derive(Debug, Clone)]
pub struct CompiledRouter {
    pub name: Arc<str>,
    pub service: ServiceId,
    pub middlewares: Arc<[MiddlewareSpec]>,
    /// What indexing the router again takes when a later table reuses it: shared, so that a
    /// reused router costs no allocation.
    rule: Arc<IndexedRule>,
    /// The rule's text: the [`RuleCache`]'s key (shared with it).
    rule_text: Arc<str>,
    priority: i64,
    tls: bool,
    entry_points: Arc<[String]>,
}

/// Whether a health-checked server is up: written by the health checker when the state
/// changes (rarely), read by the workers on each pick (a shared, read-mostly cache line).
pub type HealthFlag = Arc<AtomicBool>;

#[derive(Debug)]
pub enum CompiledService {
    LoadBalancer {
        name: String,
        servers: Vec<ServerSpec>,
        weights: Vec<u32>,
        pass_host_header: bool,
        /// One flag per server when the service is health-checked; empty otherwise.
        health: Box<[HealthFlag]>,
    },
    Weighted {
        name: String,
        children: Vec<ServiceId>,
        weights: Vec<u32>,
    },
    Internal {
        name: String,
        kind: InternalService,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("router {router}: {source}")]
    Rule {
        router: String,
        source: rule::RuleError,
    },
    #[error("router {router}: service index {service} out of range ({len} services)")]
    ServiceIndex {
        router: String,
        service: u32,
        len: usize,
    },
    #[error("service {service}: child service index {child} out of range")]
    ChildIndex { service: String, child: u32 },
    #[error("delta: {what} {index} of the previous table out of range ({len})")]
    Reuse {
        what: &'static str,
        index: u32,
        len: usize,
    },
}

impl RouteTable {
    /// An empty table: every request gets 404.
    pub fn empty() -> RouteTable {
        RouteTable {
            generation: 0,
            entry_points: HashMap::new(),
            routers: Vec::new(),
            services: Vec::new(),
            tcp_entry_points: HashMap::new(),
            tcp_services: Vec::new(),
            acme_http: None,
        }
    }

    /// Compiles a spec: parses and indexes every rule, checks every reference. Health-checked
    /// servers start up, each with a flag of its own.
    pub fn compile(spec: &TableSpec) -> Result<RouteTable, TableError> {
        RouteTable::compile_with(spec, &mut RuleCache::default(), &mut |_, _, _| {
            Arc::new(AtomicBool::new(true))
        })
    }

    /// As [`RouteTable::compile`], with the flag of each health-checked server from
    /// `health_of(service, server, check)` (so that a server keeps its state across tables),
    /// and the rules `cache` compiled for the last table taken from it; on success the cache
    /// holds this table's rules.
    pub fn compile_with(
        spec: &TableSpec,
        cache: &mut RuleCache,
        health_of: &mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag,
    ) -> Result<RouteTable, TableError> {
        RouteTable::compile_owned(DecodedSpec::from(spec.clone()), cache, health_of)
    }

    /// As [`RouteTable::compile_with`], taking the spec: names, servers and middlewares move
    /// into the table instead of being copied (the data plane's path: it decodes a spec for
    /// each table and has no other use for it).
    pub fn compile_owned(
        spec: DecodedSpec,
        cache: &mut RuleCache,
        health_of: &mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag,
    ) -> Result<RouteTable, TableError> {
        let DecodedSpec {
            generation,
            routers,
            services,
            tls: _,
            tcp_routers,
            tcp_services,
            acme,
        } = spec;
        let parts = Parts {
            generation,
            tcp_routers,
            tcp_services,
            acme,
        };
        let services = services.into_iter().map(ServiceSource::Spec);
        let routers = routers.into_iter().map(RouterItem::New);
        build(parts, services, routers, None, cache, health_of)
    }

    /// The table of a delta: what it marks as unchanged is taken from `previous` (the table
    /// of its base generation) and shared with it, the rest compiled as
    /// [`RouteTable::compile_owned`] does. At 10,000 routers with one changed, this is what
    /// makes a reload cost the change instead of the table.
    pub fn compile_delta(
        delta: DecodedDelta,
        previous: &RouteTable,
        cache: &mut RuleCache,
        health_of: &mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag,
    ) -> Result<RouteTable, TableError> {
        let DecodedDelta {
            generation,
            base: _,
            routers,
            services,
            tls: _,
            tcp_routers,
            tcp_services,
            acme,
        } = delta;
        let parts = Parts {
            generation,
            tcp_routers,
            tcp_services,
            acme,
        };
        let services = services.into_iter().map(|s| match s {
            ServiceItem::New(s) => ServiceSource::Spec(*s),
            ServiceItem::Same(i) => ServiceSource::Previous(i),
        });
        build(
            parts,
            services,
            routers.into_iter(),
            Some(previous),
            cache,
            health_of,
        )
    }

    /// The http-01 challenge answers, when a resolver uses http-01.
    pub fn acme_http(&self) -> Option<&AcmeHttp> {
        self.acme_http.as_deref()
    }

    /// The TCP routers of an entry point, if it has any.
    pub fn tcp_entry_point(&self, name: &str) -> Option<&TcpEntryRoutes> {
        self.tcp_entry_points.get(name)
    }

    /// Whether an entry point has any HTTP router.
    pub fn has_http_routes(&self, entry_point: &str) -> bool {
        self.entry_points.contains_key(entry_point)
    }

    pub fn tcp_service(&self, index: u32) -> Option<&super::TcpServiceSpec> {
        self.tcp_services.get(index as usize)
    }

    pub fn tcp_services_len(&self) -> usize {
        self.tcp_services.len()
    }

    pub fn entry_point(&self, name: &str) -> Option<&EntryRoutes> {
        self.entry_points.get(name)
    }

    pub fn router(&self, index: u32) -> Option<&CompiledRouter> {
        self.routers.get(index as usize).map(|r| &**r)
    }

    pub fn service(&self, id: ServiceId) -> Option<&CompiledService> {
        self.services.get(id.0 as usize).map(|s| &**s)
    }

    pub fn services_len(&self) -> usize {
        self.services.len()
    }

    pub fn routers_len(&self) -> usize {
        self.routers.len()
    }
}

type IndexInput = (Arc<IndexedRule>, i64, Arc<str>, u32);

/// An entry point's plain and TLS routers, before indexing.
type EntryInputs = (Vec<IndexInput>, Vec<IndexInput>);

/// A service of a table being built: its spec, or its index in the previous table.
// Passed one at a time through an iterator, never stored: boxing the spec would cost an
// allocation per service of a whole table.
#[allow(clippy::large_enum_variant)]
enum ServiceSource {
    Spec(ServiceSpec),
    Previous(u32),
}

/// What a table has besides its HTTP routers and services.
struct Parts {
    generation: u64,
    tcp_routers: Vec<TcpRouterSpec>,
    tcp_services: Vec<TcpServiceSpec>,
    acme: AcmeChallengesSpec,
}

/// Builds a table from its services and routers, each given whole or (with `previous`, the
/// table a delta is based on) as an index into the previous table's.
fn build(
    parts: Parts,
    services: impl ExactSizeIterator<Item = ServiceSource>,
    routers: impl ExactSizeIterator<Item = RouterItem>,
    previous: Option<&RouteTable>,
    cache: &mut RuleCache,
    health_of: &mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag,
) -> Result<RouteTable, TableError> {
    let reuse = |what: &'static str, index: u32, len: usize| TableError::Reuse { what, index, len };
    let services_len = services.len();
    let mut compiled_services = Vec::with_capacity(services_len);
    for item in services {
        compiled_services.push(match item {
            ServiceSource::Spec(s) => Arc::new(compile_service(s, services_len, health_of)?),
            ServiceSource::Previous(i) => {
                let prev = previous.map_or(&[][..], |p| &p.services[..]);
                prev.get(i as usize)
                    .ok_or_else(|| reuse("service", i, prev.len()))?
                    .clone()
            }
        });
    }

    // Per entry point (a handful: searched, not hashed), the plain and the TLS routers.
    let mut per_ep: Vec<(String, EntryInputs)> = Vec::new();
    let mut compiled_routers = Vec::with_capacity(routers.len());
    // A whole table's rules make the cache anew (the last table's are looked up in it); a
    // delta's new rules are added to it, the reused routers' being there already.
    let mut fresh = previous
        .is_none()
        .then(|| RuleCache::with_capacity(routers.len()));
    let nothing = RuleCache::default();
    for (i, item) in routers.enumerate() {
        let router = match item {
            RouterItem::New(DecodedRouter { def: r, service }) => {
                let found = match &mut fresh {
                    Some(rules) => rules.get_or_compile(&r.rule, cache),
                    None => cache.get_or_compile(&r.rule, &nothing),
                };
                let (rule_text, rule) = match found {
                    Ok(found) => found,
                    Err(source) => {
                        return Err(TableError::Rule {
                            router: r.name,
                            source,
                        })
                    }
                };
                Arc::new(CompiledRouter {
                    name: Arc::from(r.name),
                    service,
                    middlewares: Arc::from(r.middlewares),
                    rule,
                    rule_text,
                    priority: r.priority,
                    tls: r.tls,
                    entry_points: Arc::from(r.entry_points),
                })
            }
            RouterItem::Same {
                previous: j,
                service,
            } => {
                let prev = previous.map_or(&[][..], |p| &p.routers[..]);
                let r = prev
                    .get(j as usize)
                    .ok_or_else(|| reuse("router", j, prev.len()))?;
                if r.service == service {
                    r.clone()
                } else {
                    // Its service moved (one was added or removed before it).
                    Arc::new(CompiledRouter {
                        service,
                        ..CompiledRouter::clone(r)
                    })
                }
            }
        };
        if router.service.0 as usize >= services_len {
            return Err(TableError::ServiceIndex {
                router: router.name.to_string(),
                service: router.service.0,
                len: services_len,
            });
        }
        for ep in router.entry_points.iter() {
            let at = match per_ep.iter().position(|(name, _)| name == ep) {
                Some(at) => at,
                None => {
                    per_ep.push((ep.clone(), EntryInputs::default()));
                    per_ep.len() - 1
                }
            };
            let lists = &mut per_ep[at].1;
            let list = if router.tls {
                &mut lists.1
            } else {
                &mut lists.0
            };
            list.push((
                router.rule.clone(),
                router.priority,
                router.name.clone(),
                i as u32,
            ));
        }
        compiled_routers.push(router);
    }
    let mut entry_points = HashMap::with_capacity(per_ep.len());
    for (ep, (plain, tls)) in per_ep {
        let plain = RouterIndex::build_compiled(plain);
        let tls = RouterIndex::build_compiled(tls);
        entry_points.insert(ep, EntryRoutes { plain, tls });
    }
    let Parts {
        generation,
        tcp_routers,
        tcp_services,
        acme,
    } = parts;
    let tcp_entry_points = compile_tcp(&tcp_routers, &tcp_services)?;
    match fresh {
        Some(rules) => *cache = rules,
        // Deltas only add: once the cache holds many rules no router uses any more, it is
        // made anew from this table's.
        None if cache.len() > 2 * compiled_routers.len() + 1024 => {
            let mut rules = RuleCache::with_capacity(compiled_routers.len());
            for r in &compiled_routers {
                rules.keep(&r.rule_text, &r.rule);
            }
            *cache = rules;
        }
        None => {}
    }
    let acme_http = (!acme.http_entry_points.is_empty()).then(|| {
        Box::new(AcmeHttp {
            answers: acme
                .http
                .into_iter()
                .map(|c| (c.token, c.key_authorization))
                .collect(),
            entry_points: acme.http_entry_points,
        })
    });
    Ok(RouteTable {
        generation,
        entry_points,
        routers: compiled_routers,
        services: compiled_services,
        tcp_entry_points,
        tcp_services,
        acme_http,
    })
}

/// A service of a table with `services_len` services.
fn compile_service(
    s: ServiceSpec,
    services_len: usize,
    health_of: &mut dyn FnMut(&str, &ServerSpec, &HealthCheckSpec) -> HealthFlag,
) -> Result<CompiledService, TableError> {
    Ok(match s.kind {
        ServiceKind::LoadBalancer(lb) => CompiledService::LoadBalancer {
            weights: lb.servers.iter().map(|srv| srv.weight).collect(),
            health: match &lb.health_check {
                Some(check) => lb
                    .servers
                    .iter()
                    .map(|srv| health_of(&s.name, srv, check))
                    .collect(),
                None => Box::default(),
            },
            name: s.name,
            servers: lb.servers,
            pass_host_header: lb.pass_host_header,
        },
        ServiceKind::Weighted(children) => {
            for c in &children {
                if c.service.0 as usize >= services_len {
                    return Err(TableError::ChildIndex {
                        service: s.name,
                        child: c.service.0,
                    });
                }
            }
            CompiledService::Weighted {
                name: s.name,
                children: children.iter().map(|c| c.service).collect(),
                weights: children.iter().map(|c| c.weight).collect(),
            }
        }
        ServiceKind::Internal(kind) => CompiledService::Internal { name: s.name, kind },
    })
}

/// HTTP rules compiled for a table, by rule text. The data plane keeps the last table's, so
/// that a reload compiles only the rules that are new (at 10,000 routers, parsing and
/// compiling every rule again was a third of the compile). Rules are immutable and shared
/// (`Arc`) between the tables that use them.
#[derive(Debug, Default)]
pub struct RuleCache {
    rules: FxHashMap<Arc<str>, Arc<IndexedRule>>,
}

impl RuleCache {
    fn with_capacity(n: usize) -> RuleCache {
        RuleCache {
            rules: FxHashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// The compiled `text`: from this cache, else from `previous`, else compiled now (and
    /// kept here in each case).
    fn get_or_compile(
        &mut self,
        text: &str,
        previous: &RuleCache,
    ) -> Result<(Arc<str>, Arc<IndexedRule>), rule::RuleError> {
        if let Some((key, rule)) = self.rules.get_key_value(text) {
            return Ok((key.clone(), rule.clone()));
        }
        let (key, rule) = match previous.rules.get_key_value(text) {
            Some((key, rule)) => (key.clone(), rule.clone()),
            None => (
                Arc::from(text),
                Arc::new(IndexedRule::new(&rule::parse(text)?)?),
            ),
        };
        self.rules.insert(key.clone(), rule.clone());
        Ok((key, rule))
    }

    /// Keeps an already compiled rule for the next table.
    fn keep(&mut self, text: &Arc<str>, rule: &Arc<IndexedRule>) {
        self.rules.insert(text.clone(), rule.clone());
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn compile_tcp(
    tcp_routers: &[TcpRouterSpec],
    tcp_services: &[TcpServiceSpec],
) -> Result<HashMap<String, TcpEntryRoutes>, TableError> {
    let len = tcp_services.len();
    for s in tcp_services {
        if let super::TcpServiceKind::Weighted(children) = &s.kind {
            if let Some((child, _)) = children.iter().find(|(c, _)| *c as usize >= len) {
                return Err(TableError::ChildIndex {
                    service: s.name.clone(),
                    child: *child,
                });
            }
        }
    }
    let mut order: Vec<&TcpRouterSpec> = tcp_routers.iter().collect();
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut eps: HashMap<String, TcpEntryRoutes> = HashMap::new();
    for r in order {
        if r.service as usize >= len {
            return Err(TableError::ServiceIndex {
                router: r.name.clone(),
                service: r.service,
                len,
            });
        }
        let err = |source| TableError::Rule {
            router: r.name.clone(),
            source,
        };
        let expr = rule::parse(&r.rule).map_err(err)?;
        for ep in &r.entry_points {
            let compiled = TcpRule::compile(&expr).map_err(err)?;
            eps.entry(ep.clone()).or_default().routes.push(TcpRoute {
                name: r.name.clone(),
                rule: compiled,
                tls: r.tls,
                service: r.service,
            });
        }
    }
    Ok(eps)
}

impl CompiledService {
    /// The qualified name (`app@docker`).
    pub fn name(&self) -> &str {
        match self {
            CompiledService::LoadBalancer { name, .. }
            | CompiledService::Weighted { name, .. }
            | CompiledService::Internal { name, .. } => name,
        }
    }

    /// Whether server `i` of a load balancer may be picked (not known to be down).
    pub fn server_up(&self, i: usize) -> bool {
        match self {
            CompiledService::LoadBalancer { health, .. } => {
                health.get(i).is_none_or(|h| h.load(Ordering::Relaxed))
            }
            CompiledService::Weighted { .. } | CompiledService::Internal { .. } => true,
        }
    }

    /// Whether any server could be picked (a weighted child with none is skipped).
    pub fn any_up(&self) -> bool {
        match self {
            CompiledService::LoadBalancer {
                health, servers, ..
            } => {
                !servers.is_empty()
                    && (health.is_empty() || health.iter().any(|h| h.load(Ordering::Relaxed)))
            }
            CompiledService::Weighted { .. } => true,
            // Not a weighted child: the control plane refuses that.
            CompiledService::Internal { .. } => false,
        }
    }
}

impl EntryRoutes {
    /// Finds the router for a request; `tls` selects the TLS routers.
    pub fn find(&self, req: &RequestView<'_>, tls: bool) -> Option<u32> {
        if tls {
            self.tls.find(req)
        } else {
            self.plain.find(req)
        }
    }
}

#[cfg(test)]
impl RouteTable {
    /// Everything a worker can see of the table, in a stable order, for tests that require
    /// two tables to be the same.
    pub(super) fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("generation {}\n", self.generation);
        for (i, r) in self.routers.iter().enumerate() {
            let _ = writeln!(
                out,
                "router {i} {} service {} priority {} tls {} eps {:?} rule {} mw {:?}",
                r.name, r.service.0, r.priority, r.tls, r.entry_points, r.rule_text, r.middlewares
            );
        }
        for (i, s) in self.services.iter().enumerate() {
            let _ = writeln!(out, "service {i} {s:?}");
        }
        let mut eps: Vec<_> = self.entry_points.iter().collect();
        eps.sort_by(|a, b| a.0.cmp(b.0));
        for (name, routes) in eps {
            for (kind, index) in [("plain", &routes.plain), ("tls", &routes.tls)] {
                for e in index.entries() {
                    let _ = writeln!(
                        out,
                        "{name} {kind} {} {} -> {} hosts {:?}",
                        e.name, e.priority, e.value, e.rule.hosts
                    );
                }
            }
        }
        let mut tcp: Vec<_> = self.tcp_entry_points.iter().collect();
        tcp.sort_by(|a, b| a.0.cmp(b.0));
        for (name, routes) in tcp {
            for r in &routes.routes {
                let _ = writeln!(out, "tcp {name} {} {:?} -> {}", r.name, r.tls, r.service);
            }
        }
        let _ = writeln!(out, "tcp services {:?}", self.tcp_services);
        let _ = writeln!(out, "acme {:?}", self.acme_http);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{LoadBalancerSpec, RouterDef, RouterSpec, ServiceSpec};

    fn spec(rules: &[&str]) -> TableSpec {
        TableSpec {
            routers: rules
                .iter()
                .enumerate()
                .map(|(i, rule)| RouterSpec {
                    service: ServiceId(0),
                    def: Arc::new(RouterDef {
                        name: format!("r{i}@file"),
                        entry_points: vec!["web".into(), "other".into()],
                        rule: rule.to_string(),
                        priority: 0,
                        tls: false,
                        middlewares: Vec::new(),
                    }),
                })
                .collect(),
            services: vec![Arc::new(ServiceSpec {
                name: "s@file".into(),
                kind: ServiceKind::LoadBalancer(LoadBalancerSpec {
                    servers: Vec::new(),
                    pass_host_header: true,
                    health_check: None,
                }),
            })],
            ..TableSpec::default()
        }
    }

    fn rule_of(table: &RouteTable, ep: &str, i: usize) -> Arc<IndexedRule> {
        table.entry_points[ep].plain.entries()[i].rule.clone()
    }

    #[test]
    fn a_reload_reuses_the_rules_of_the_last_table_and_compiles_only_new_ones() {
        let mut cache = RuleCache::default();
        let up = &mut |_: &str, _: &ServerSpec, _: &HealthCheckSpec| -> HealthFlag {
            Arc::new(AtomicBool::new(true))
        };
        let a = "Host(`a.test`)";
        let first = RouteTable::compile_with(&spec(&[a]), &mut cache, up).expect("compiles");
        assert_eq!(cache.len(), 1);
        // One compiled rule serves both entry points.
        assert!(Arc::ptr_eq(
            &rule_of(&first, "web", 0),
            &rule_of(&first, "other", 0)
        ));

        let b = "Host(`b.test`) && PathPrefix(`/x`)";
        let second = RouteTable::compile_with(&spec(&[a, b]), &mut cache, up).expect("compiles");
        assert_eq!(cache.len(), 2);
        let web = second.entry_points["web"].plain.entries();
        let reused = web.iter().find(|e| &*e.name == "r0@file").expect("r0");
        assert!(Arc::ptr_eq(&reused.rule, &rule_of(&first, "web", 0)));

        // A table that fails leaves the cache as it was; one without a rule drops it.
        let bad = RouteTable::compile_with(&spec(&[a, "Host(`c.test`"]), &mut cache, up);
        assert!(matches!(bad, Err(TableError::Rule { .. })));
        assert_eq!(cache.len(), 2);
        RouteTable::compile_with(&spec(&[b]), &mut cache, up).expect("compiles");
        assert_eq!(cache.len(), 1);
    }
}
