//! A table sent as a change to the one before it.
//!
//! The control plane keeps the table it sent last, with each router and service behind an
//! `Arc` that an unchanged item keeps from one table to the next. A delta names those by
//! their index in the base table and carries the others whole; the data plane shares what
//! it compiled for the base instead of decoding and compiling 10,000 routers again. Services
//! whose compiled form depends on more than their spec (a weighted one's children are
//! indexes, which move when a service is added; a health-checked one's flags come from the
//! checker) always travel whole.

use super::{
    AcmeChallengesSpec, DecodedRouter, RouterSpec, ServiceId, ServiceKind, ServiceSpec, TableSpec,
    TcpRouterSpec, TcpServiceSpec, TlsSpec,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A delta as the data plane decodes it (the encoding of [`Delta`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DecodedDelta {
    pub generation: u64,
    /// The generation of the table this one changes: the data plane applies the delta only
    /// on top of that table.
    pub base: u64,
    pub routers: Vec<RouterItem>,
    pub services: Vec<ServiceItem>,
    pub tls: TlsSpec,
    pub tcp_routers: Vec<TcpRouterSpec>,
    pub tcp_services: Vec<TcpServiceSpec>,
    pub acme: AcmeChallengesSpec,
}

/// A router of a delta.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum RouterItem {
    /// Router `previous` of the base table, unchanged but for its service's number.
    Same {
        previous: u32,
        service: ServiceId,
    },
    New(DecodedRouter),
}

/// A service of a delta.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum ServiceItem {
    /// Service `previous` of the base table.
    Same(u32),
    New(Box<ServiceSpec>),
}

/// A delta as the control plane encodes it: borrowed from the two tables.
#[derive(Debug, Serialize)]
pub struct Delta<'a> {
    generation: u64,
    base: u64,
    routers: Vec<RouterRef<'a>>,
    services: Vec<ServiceRef<'a>>,
    tls: &'a TlsSpec,
    tcp_routers: &'a [TcpRouterSpec],
    tcp_services: &'a [TcpServiceSpec],
    acme: &'a AcmeChallengesSpec,
}

/// Encodes as [`RouterItem`].
#[derive(Debug, Serialize)]
enum RouterRef<'a> {
    Same { previous: u32, service: ServiceId },
    New(&'a RouterSpec),
}

/// Encodes as [`ServiceItem`].
#[derive(Debug, Serialize)]
enum ServiceRef<'a> {
    Same(u32),
    New(&'a ServiceSpec),
}

impl<'a> Delta<'a> {
    /// `table` as a change to `base`: items that are the very same `Arc` in both (not merely
    /// equal) are named by their index in `base`.
    pub fn new(base: &TableSpec, table: &'a TableSpec) -> Delta<'a> {
        let index_of = |ptrs: &mut dyn Iterator<Item = usize>| -> FxHashMap<usize, u32> {
            ptrs.enumerate()
                .map(|(i, p)| (p, u32::try_from(i).unwrap_or(u32::MAX)))
                .collect()
        };
        let base_services = index_of(&mut base.services.iter().map(addr));
        let base_routers = index_of(&mut base.routers.iter().map(|r| addr(&r.def)));
        let services = table
            .services
            .iter()
            .map(|s| match base_services.get(&addr(s)) {
                Some(&i) if shareable(s) => ServiceRef::Same(i),
                _ => ServiceRef::New(s),
            })
            .collect();
        let routers = table
            .routers
            .iter()
            .map(|r| match base_routers.get(&addr(&r.def)) {
                Some(&previous) => RouterRef::Same {
                    previous,
                    service: r.service,
                },
                None => RouterRef::New(r),
            })
            .collect();
        Delta {
            generation: table.generation,
            base: base.generation,
            routers,
            services,
            tls: &table.tls,
            tcp_routers: &table.tcp_routers,
            tcp_services: &table.tcp_services,
            acme: &table.acme,
        }
    }

    /// How many routers and services travel whole.
    #[cfg(test)]
    fn new_items(&self) -> (usize, usize) {
        (
            self.routers
                .iter()
                .filter(|r| matches!(r, RouterRef::New(_)))
                .count(),
            self.services
                .iter()
                .filter(|s| matches!(s, ServiceRef::New(_)))
                .count(),
        )
    }
}

fn addr<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as usize
}

/// Whether the compiled form of a service depends only on its spec.
fn shareable(s: &ServiceSpec) -> bool {
    match &s.kind {
        ServiceKind::LoadBalancer(lb) => lb.health_check.is_none(),
        ServiceKind::Weighted(_) => false,
        ServiceKind::Internal(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{
        HealthCheckSpec, HealthFlag, InternalService, LoadBalancerSpec, MiddlewareSpec, RetrySpec,
        RouteTable, RouterDef, RuleCache, ServerSpec, TableError, WeightedChild,
    };
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn lb(name: &str, port: u16, health: bool) -> Arc<ServiceSpec> {
        let server = ServerSpec {
            url: format!("http://127.0.0.1:{port}"),
            addr: ([127, 0, 0, 1], port).into(),
            authority: format!("127.0.0.1:{port}"),
            weight: 1,
        };
        Arc::new(ServiceSpec {
            name: name.into(),
            kind: ServiceKind::LoadBalancer(LoadBalancerSpec {
                servers: vec![server],
                pass_host_header: true,
                health_check: health.then(|| HealthCheckSpec {
                    method: "GET".into(),
                    path: "/health".into(),
                    hostname: None,
                    port: None,
                    interval: Duration::from_secs(30),
                    unhealthy_interval: Duration::from_secs(30),
                    timeout: Duration::from_secs(5),
                    status: None,
                    headers: Vec::new(),
                }),
            }),
        })
    }

    fn weighted(name: &str, children: &[u32]) -> Arc<ServiceSpec> {
        Arc::new(ServiceSpec {
            name: name.into(),
            kind: ServiceKind::Weighted(
                children
                    .iter()
                    .map(|&c| WeightedChild {
                        service: ServiceId(c),
                        weight: 1 + c,
                    })
                    .collect(),
            ),
        })
    }

    fn router(name: &str, host: &str, service: u32, tls: bool) -> RouterSpec {
        RouterSpec {
            def: Arc::new(RouterDef {
                name: format!("{name}@file"),
                entry_points: if tls {
                    vec!["websecure".into()]
                } else {
                    vec!["web".into(), "websecure".into()]
                },
                rule: format!("Host(`{host}`)"),
                priority: i64::from(service),
                tls,
                middlewares: vec![MiddlewareSpec::Retry(RetrySpec {
                    attempts: 2,
                    initial_interval: Duration::ZERO,
                })],
            }),
            service: ServiceId(service),
        }
    }

    /// Services: b (load balancer), c (health-checked), d (weighted over b and c), e (internal).
    fn base() -> TableSpec {
        TableSpec {
            generation: 1,
            services: vec![
                lb("b@file", 1001, false),
                lb("c@file", 1002, true),
                weighted("d@file", &[0, 1]),
                Arc::new(ServiceSpec {
                    name: "e@internal".into(),
                    kind: ServiceKind::Internal(InternalService::Noop),
                }),
            ],
            routers: vec![
                router("r0", "r0.test", 0, false),
                router("r1", "r1.test", 1, true),
                router("r2", "r2.test", 2, false),
                router("r3", "r3.test", 3, false),
                router("r4", "r4.test", 0, true),
            ],
            ..TableSpec::default()
        }
    }

    fn up(_: &str, _: &ServerSpec, _: &HealthCheckSpec) -> HealthFlag {
        Arc::new(AtomicBool::new(true))
    }

    fn compiled(spec: &TableSpec) -> RouteTable {
        RouteTable::compile_with(spec, &mut RuleCache::default(), &mut up).expect("compiles")
    }

    /// `table` sent as a delta on `base` and compiled on top of `previous`.
    fn through_delta(
        base: &TableSpec,
        table: &TableSpec,
        previous: &RouteTable,
    ) -> Result<RouteTable, TableError> {
        through_delta_with(base, table, previous, &mut RuleCache::default())
    }

    /// As [`through_delta`], with the rule cache of the previous compile.
    fn through_delta_with(
        base: &TableSpec,
        table: &TableSpec,
        previous: &RouteTable,
        cache: &mut RuleCache,
    ) -> Result<RouteTable, TableError> {
        let bytes = bincode::serialize(&Delta::new(base, table)).expect("encodes");
        let decoded: DecodedDelta = bincode::deserialize(&bytes).expect("decodes");
        assert_eq!(decoded.base, base.generation);
        RouteTable::compile_delta(decoded, previous, cache, &mut up)
    }

    #[test]
    fn a_delta_compiles_to_the_table_of_the_whole_spec() {
        let a = base();
        let previous = compiled(&a);
        // A service added first renumbers every other one; r2 goes, r3 changes, r9 comes;
        // the weighted service's children are renumbered (a new `Arc`, as the control plane
        // builds it).
        let mut b = a.clone();
        b.generation = 2;
        b.services.insert(0, lb("a@file", 1000, false));
        b.services[3] = weighted("d@file", &[1, 2]);
        b.routers.remove(2);
        for r in &mut b.routers {
            r.service.0 += 1;
        }
        b.routers[2] = router("r3", "other.test", 4, false);
        b.routers.push(router("r9", "r9.test", 0, false));
        let delta = Delta::new(&a, &b);
        // r0, r1, r4 and the services b, e travel as indexes; c (health-checked), d
        // (weighted), a and the routers r3, r9 whole.
        assert_eq!(delta.new_items(), (2, 3));
        let via_delta = through_delta(&a, &b, &previous).expect("compiles");
        assert_eq!(via_delta.describe(), compiled(&b).describe());
        // What was shared is the previous table's (the middlewares show it).
        assert!(Arc::ptr_eq(
            &via_delta.router(0).expect("r0").middlewares,
            &previous.router(0).expect("r0").middlewares
        ));

        // Nothing renumbered: the very same compiled routers.
        let mut c = b.clone();
        c.generation = 3;
        c.routers.push(router("r10", "r10.test", 1, true));
        let via_delta_c = through_delta(&b, &c, &via_delta).expect("compiles");
        assert_eq!(via_delta_c.describe(), compiled(&c).describe());
        assert!(std::ptr::eq(
            via_delta_c.router(1).expect("r1"),
            via_delta.router(1).expect("r1")
        ));
    }

    /// A delta's new rules join the cache the next whole table looks them up in; once most
    /// of the cache serves no router, it is made anew.
    #[test]
    fn deltas_keep_the_rule_cache_whole_and_bounded() {
        let a = base();
        let mut cache = RuleCache::default();
        let previous = RouteTable::compile_with(&a, &mut cache, &mut up).expect("compiles");
        assert_eq!(cache.len(), 5);
        let mut b = a.clone();
        b.generation = 2;
        b.routers.push(router("r9", "r9.test", 0, false));
        let second = through_delta_with(&a, &b, &previous, &mut cache).expect("compiles");
        assert_eq!(cache.len(), 6);

        let mut many = b.clone();
        many.generation = 3;
        for i in 0..1100 {
            many.routers
                .push(router(&format!("m{i}"), &format!("m{i}.test"), 0, false));
        }
        let third = through_delta_with(&b, &many, &second, &mut cache).expect("compiles");
        assert_eq!(cache.len(), 1106);
        let mut few = many.clone();
        few.generation = 4;
        few.routers.truncate(1);
        through_delta_with(&many, &few, &third, &mut cache).expect("compiles");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_delta_naming_what_the_previous_table_lacks_is_refused() {
        let a = base();
        let mut b = a.clone();
        b.generation = 2;
        // Compiled on top of a table with fewer routers and services than its base.
        let smaller = compiled(&TableSpec {
            routers: a.routers[..1].to_vec(),
            services: a.services[..1].to_vec(),
            ..TableSpec::default()
        });
        let e = through_delta(&a, &b, &smaller).expect_err("refused");
        assert!(matches!(e, TableError::Reuse { .. }), "{e}");
        assert!(e.to_string().contains("of the previous table out of range"));
    }
}
