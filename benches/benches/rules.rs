//! Rule language benches: parsing, matching through the router index at 10 / 1,000 /
//! 10,000 routers, and compiling a 10,000-router index.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway_shared::router_index::RouterIndex;
use ringway_shared::rule::{self, Expr, HeaderSource, RequestView};
use std::net::IpAddr;

const RULES: &[(&str, &str)] = &[
    ("host", "Host(`svc42.example.com`)"),
    (
        "host_path",
        "Host(`svc42.example.com`) && PathPrefix(`/api`)",
    ),
    (
        "mixed",
        "(Host(`a.example.com`) || Host(`b.example.com`)) && PathPrefix(`/api/v1`) \
         && !Header(`X-Canary`, `1`) && Method(`GET`, `POST`)",
    ),
    (
        "regex",
        "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`) && PathRegexp(`^/users/[0-9]+/orders$`)",
    ),
];

/// Routers that match any host; a few rank above the host routers (longer rules), so every
/// lookup also tries them.
const WILDCARD_RULES: &[&str] = &[
    "HeaderRegexp(`X-Debug-Session`, `^[0-9a-f]{32}$`) && PathPrefix(`/api/debug`)",
    "PathPrefix(`/.well-known/acme-challenge/`) && Method(`GET`)",
    "ClientIP(`203.0.113.0/24`) && PathPrefix(`/api`) && Query(`trace`, `1`)",
    "HostRegexp(`^.+\\.internal$`)",
    "PathPrefix(`/static`)",
];

/// `n` routers `Host(svcN.example.com) && PathPrefix(/api)` plus the wildcard routers, with
/// Traefik's default priority (the rule length).
fn routers(n: usize) -> Vec<(Expr, i64, String, u32)> {
    let host_rules = (0..n).map(|i| format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`)"));
    let rules = host_rules.chain(WILDCARD_RULES.iter().map(|r| r.to_string()));
    rules
        .enumerate()
        .map(|(i, rule)| {
            let expr = rule::parse(&rule).expect("bench rules parse");
            (
                expr,
                rule.len() as i64,
                format!("router{i}@bench"),
                i as u32,
            )
        })
        .collect()
}

/// Request headers as name/value pairs.
struct Headers(&'static [(&'static str, &'static [u8])]);

impl HeaderSource for Headers {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| f(v))
    }
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule_parse");
    for (name, rule) in RULES {
        group.bench_with_input(BenchmarkId::from_parameter(name), rule, |b, rule| {
            b.iter(|| rule::parse(black_box(rule)))
        });
    }
    group.finish();
}

fn bench_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule_match");
    let headers = Headers(&[("User-Agent", b"bench/1.0"), ("Accept", b"*/*")]);
    for n in [10usize, 1_000, 10_000] {
        let index = RouterIndex::build(routers(n)).expect("bench rules compile");
        let host = format!("svc{}.example.com:443", n / 2);
        let req = RequestView {
            method: "GET",
            host: &host,
            path: "/api/v1/users",
            query: "page=2",
            headers: &headers,
            client_ip: IpAddr::from([198, 51, 100, 7]),
        };
        assert_eq!(index.find(&req), Some((n / 2) as u32));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| index.find(black_box(&req)))
        });
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let input = routers(10_000);
    let index = RouterIndex::build(input.clone()).expect("bench rules compile");
    println!(
        "index of {} routers: ~{} KiB",
        index.len(),
        index.memory_bytes() / 1024
    );
    let mut group = c.benchmark_group("index_build");
    group.sample_size(10);
    group.bench_function("10000", |b| {
        b.iter_batched(
            || input.clone(),
            RouterIndex::build,
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_match, bench_build);
criterion_main!(benches);
