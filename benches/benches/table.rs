//! Table compile: a 10,000-router `TableSpec` (as the control plane sends it) compiled into
//! the `RouteTable` the workers use. The target is "live on every worker ≤ 50 ms".

use criterion::{criterion_group, criterion_main, Criterion};
use ringway_shared::table::{
    LoadBalancerSpec, RouteTable, RouterDef, RouterSpec, ServerSpec, ServiceId, ServiceKind,
    ServiceSpec, TableSpec,
};
use std::hint::black_box;
use std::sync::Arc;

fn spec(routers: usize) -> TableSpec {
    let mut t = TableSpec {
        generation: 1,
        ..TableSpec::default()
    };
    for i in 0..routers {
        let rule = format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`)");
        t.services.push(Arc::new(ServiceSpec {
            name: format!("svc{i}@file"),
            kind: ServiceKind::LoadBalancer(LoadBalancerSpec {
                servers: vec![ServerSpec {
                    url: format!("http://10.0.{}.{}:80", i / 250, i % 250),
                    addr: format!("10.0.{}.{}:80", i / 250, i % 250)
                        .parse()
                        .expect("addr"),
                    authority: format!("10.0.{}.{}:80", i / 250, i % 250),
                    weight: 1,
                }],
                pass_host_header: true,
                health_check: None,
            }),
        }));
        t.routers.push(RouterSpec {
            service: ServiceId(i as u32),
            def: Arc::new(RouterDef {
                name: format!("r{i}@file"),
                entry_points: vec!["web".into()],
                priority: rule.len() as i64,
                rule,
                tls: false,
                middlewares: Vec::new(),
            }),
        });
    }
    t
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("table_compile");
    g.sample_size(10);
    for n in [10usize, 1_000, 10_000] {
        let s = spec(n);
        g.bench_function(format!("{n}_routers"), |b| {
            b.iter(|| RouteTable::compile(black_box(&s)).expect("compiles"))
        });
    }
    g.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
