//! The stages of a configuration change at 10,000 routers, each timed on its own: the file
//! provider's parse of the dynamic TOML, the control plane's aggregation into a `TableSpec`,
//! the IPC encoding (ipc-channel uses bincode) and the data plane's compile. Their sum bounds
//! "a change live on every worker" (`loadtests/run --only reconfig` measures it end to end).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ringway_controlplane::aggregator::{resolve, resolve_with, Memo, ProviderConfig};
use ringway_shared::config::reparse::Document;
use ringway_shared::config::{parse_dynamic, DynamicConfig, Format, StaticConfig};
use ringway_shared::table::{
    DecodedDelta, DecodedSpec, Delta, HealthCheckSpec, HealthFlag, RouteTable, RuleCache,
    ServerSpec,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

// As in the binary: the allocator is part of what a reload costs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn dynamic_toml(routers: usize) -> String {
    let mut s = String::new();
    for i in 0..routers {
        s.push_str(&format!(
            "[http.routers.r{i}]\nrule = \"Host(`svc{i}.example.com`) && PathPrefix(`/api`)\"\n\
             service = \"s{i}\"\n\n[http.services.s{i}.loadBalancer]\n\
             servers = [{{ url = \"http://127.0.0.1:9000\" }}]\n\n"
        ));
    }
    s
}

fn dynamic_yaml(routers: usize) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for i in 0..routers {
        s.push_str(&format!(
            "    r{i}:\n      rule: \"Host(`svc{i}.example.com`) && PathPrefix(`/api`)\"\n\
             \x20     service: s{i}\n"
        ));
    }
    s.push_str("  services:\n");
    for i in 0..routers {
        s.push_str(&format!(
            "    s{i}:\n      loadBalancer:\n        servers:\n\
             \x20         - url: \"http://127.0.0.1:9000\"\n"
        ));
    }
    s
}

fn no_dns(host: &str, _port: u16) -> Result<Vec<SocketAddr>, String> {
    Err(format!("no DNS in benches ({host})"))
}

fn stages(c: &mut Criterion) {
    let n = 10_000;
    let text = dynamic_toml(n);
    // One entry point, nothing else (no flag at all would be the embedded default, which
    // adds the API's routers).
    let static_cfg = StaticConfig::from_args(&["--entrypoints.web.address=:8000".to_string()])
        .expect("static config");
    let mut g = c.benchmark_group("reconfig_10k");
    g.sample_size(10);
    g.bench_function("parse_toml", |b| {
        b.iter(|| parse_dynamic("bench.toml", black_box(&text), Format::Toml).expect("parses"))
    });
    // The parse's two halves: the syntax into a tree, and the tree into the configuration.
    g.bench_function("parse_toml_tree", |b| {
        b.iter(|| Format::Toml.parse_tree(black_box(&text)).expect("parses"))
    });
    // The same configuration in YAML (Traefik's other file format).
    let yaml = dynamic_yaml(n);
    g.bench_function("parse_yaml_tree", |b| {
        b.iter(|| Format::Yaml.parse_tree(black_box(&yaml)).expect("parses"))
    });
    let tree = Format::Toml.parse_tree(&text).expect("parses");
    g.bench_function("decode_tree", |b| {
        b.iter(|| DynamicConfig::from_node("bench.toml", black_box(&tree)).expect("decodes"))
    });
    // A rewrite of the file with one more router, decoded as a patch of the last decode (as
    // the file provider does).
    let first = DynamicConfig::from_node("bench.toml", &tree).expect("decodes");
    let plus_one = Format::Toml
        .parse_tree(&format!(
            "{text}[http.routers.probe]\nrule = \"Host(`probe`)\"\nservice = \"s0\"\n"
        ))
        .expect("parses");
    g.bench_function("decode_tree_after_one_added", |b| {
        b.iter(|| {
            DynamicConfig::from_node_after(
                "bench.toml",
                black_box(&plus_one),
                Some((&tree, &first)),
            )
            .expect("decodes")
        })
    });
    // The file provider's first step on a rewrite: reparse only the sections that changed
    // (one router appended; a router and its service added in two places far apart), and
    // decode those items on the last configuration.
    let document = Document::parse(&text, Format::Toml).expect("parses");
    let appended =
        format!("{text}[http.routers.probe]\nrule = \"Host(`probe`)\"\nservice = \"s0\"\n");
    let apart = text.replacen(
        "[http.routers.r1]",
        "[http.routers.probe]\nrule = \"Host(`probe`)\"\nservice = \"probe\"\n\n[http.routers.r1]",
        1,
    )
        + "[http.services.probe.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9000\" }]\n";
    for (name, new) in [
        ("reparse_one_appended", &appended),
        ("reparse_two_apart", &apart),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || document.clone(),
                |mut doc| {
                    let changes = doc.reparse(&text, black_box(new)).expect("in part");
                    first.patched("bench.toml", &changes).expect("decodes")
                },
                BatchSize::LargeInput,
            )
        });
    }
    // The same in YAML: a router and its service added among the routers and at the end.
    let yaml_document = Document::parse(&yaml, Format::Yaml).expect("parses");
    let yaml_first = DynamicConfig::from_node("bench.yaml", &yaml_document.tree).expect("decodes");
    let yaml_apart = yaml.replacen(
        "  services:\n",
        "    probe:\n      rule: \"Host(`probe`)\"\n      service: probe\n  services:\n",
        1,
    ) + "    probe:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:9000\"\n";
    g.bench_function("reparse_yaml_two_apart", |b| {
        b.iter_batched(
            || yaml_document.clone(),
            |mut doc| {
                let changes = doc.reparse(&yaml, black_box(&yaml_apart)).expect("in part");
                yaml_first.patched("bench.yaml", &changes).expect("decodes")
            },
            BatchSize::LargeInput,
        )
    });
    let config = parse_dynamic("bench.toml", &text, Format::Toml).expect("parses");
    // The file provider hands the runtime a copy of its cached parse.
    g.bench_function("copy_parsed", |b| b.iter(|| black_box(&config).clone()));
    // A directory: the 10,000-router file and one small file, merged as the file provider
    // does on every change (each file's parse is kept; the merge starts from copies).
    let small = parse_dynamic(
        "probe.toml",
        &dynamic_toml(1)
            .replace("r0", "probe")
            .replace("s0", "probe"),
        Format::Toml,
    )
    .expect("parses");
    g.bench_function("merge_directory", |b| {
        b.iter(|| {
            let mut merged = ringway_shared::config::DynamicConfig::default();
            merged.merge(black_box(&config).clone()).expect("merges");
            merged.merge(small.clone()).expect("merges");
            merged
        })
    });
    g.bench_function("merge_directory_large_file_last", |b| {
        b.iter(|| {
            let mut merged = ringway_shared::config::DynamicConfig::default();
            merged.merge(small.clone()).expect("merges");
            merged.merge(black_box(&config).clone()).expect("merges");
            merged
        })
    });
    let mut with_probe = config.clone();
    with_probe.merge(small.clone()).expect("merges");
    let providers = vec![ProviderConfig {
        provider: "file".into(),
        config,
    }];
    g.bench_function("resolve", |b| {
        b.iter(|| resolve(black_box(&providers), &static_cfg, &no_dns))
    });
    // The runtime keeps what the last resolution built: a reload that adds one router (and
    // its service, which renumbers the others) reuses the 10,000 others.
    let with_probe = vec![ProviderConfig {
        provider: "file".into(),
        config: with_probe,
    }];
    g.bench_function("resolve_one_added", |b| {
        b.iter_batched_ref(
            || {
                let mut memo = Memo::default();
                drop(resolve_with(&providers, &static_cfg, &no_dns, &mut memo));
                memo
            },
            |memo| resolve_with(black_box(&with_probe), &static_cfg, &no_dns, memo),
            criterion::BatchSize::LargeInput,
        )
    });
    let table = resolve(&providers, &static_cfg, &no_dns).table;
    assert_eq!(table.routers.len(), n);
    // Decoded as the data plane does: routers and services by value, not in `Arc`s.
    g.bench_function("ipc_encode_decode", |b| {
        b.iter(|| {
            let bytes = bincode::serialize(black_box(&table)).expect("encodes");
            bincode::deserialize::<DecodedSpec>(&bytes).expect("decodes")
        })
    });
    g.bench_function("compile", |b| {
        b.iter(|| RouteTable::compile(black_box(&table)).expect("compiles"))
    });
    // The data plane keeps the last table's compiled rules: a reload compiles new ones only.
    let mut rules = RuleCache::default();
    let up = &mut |_: &str, _: &ServerSpec, _: &HealthCheckSpec| -> HealthFlag {
        Arc::new(AtomicBool::new(true))
    };
    RouteTable::compile_with(&table, &mut rules, up).expect("compiles");
    // As the data plane does it: the decoded spec is moved into the table (the decode is not
    // timed; a clone would share the spec's routers with `table`, and the compile would copy
    // them).
    let bytes = bincode::serialize(&table).expect("encodes");
    g.bench_function("compile_reusing_rules", |b| {
        b.iter_batched(
            || bincode::deserialize::<DecodedSpec>(&bytes).expect("decodes"),
            |spec| RouteTable::compile_owned(spec, &mut rules, up).expect("compiles"),
            BatchSize::LargeInput,
        )
    });
    // A reload that adds one router goes to the data plane as a delta on the last table:
    // encoded, decoded, and compiled on top of the last compiled table.
    let mut memo = Memo::default();
    let base = resolve_with(&providers, &static_cfg, &no_dns, &mut memo).table;
    let next = resolve_with(&with_probe, &static_cfg, &no_dns, &mut memo).table;
    let previous = RouteTable::compile_with(&base, &mut rules, up).expect("compiles");
    g.bench_function("delta_one_added", |b| {
        b.iter(|| {
            let delta = Delta::new(&base, black_box(&next));
            let bytes = bincode::serialize(&delta).expect("encodes");
            let decoded = bincode::deserialize::<DecodedDelta>(&bytes).expect("decodes");
            RouteTable::compile_delta(decoded, &previous, &mut rules, up).expect("compiles")
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
