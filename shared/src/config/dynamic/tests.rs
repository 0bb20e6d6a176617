use super::*;

const TOML: &str = r#"
[http.routers.Web]
entryPoints = ["web"]
rule = "Host(`example.com`)"
service = "app"
middlewares = ["auth"]
priority = 10
[http.routers.Web.tls]
certResolver = "le"
[[http.routers.Web.tls.domains]]
main = "example.com"
sans = ["www.example.com"]

[http.services.app.loadBalancer]
passHostHeader = false
[[http.services.app.loadBalancer.servers]]
url = "http://10.0.0.1:8080"
weight = 3
[[http.services.app.loadBalancer.servers]]
url = "http://10.0.0.2:8080/base"
preservePath = true
[http.services.app.loadBalancer.healthCheck]
path = "/health"

[http.services.canary.weighted]
[[http.services.canary.weighted.services]]
name = "app"
weight = 9

[http.middlewares.auth.basicAuth]
users = ["a:b"]

[tcp.routers.db]
rule = "HostSNI(`*`)"
service = "pg"

[tls]
[[tls.certificates]]
certFile = "/a.pem"
keyFile = "/a.key"
"#;

const YAML: &str = r#"
http:
  routers:
    Web:
      entryPoints: [web]
      rule: Host(`example.com`)
      service: app
      middlewares: [auth]
      priority: 10
      tls:
        certResolver: le
        domains:
          - main: example.com
            sans: [www.example.com]
  services:
    app:
      loadBalancer:
        passHostHeader: false
        servers:
          - url: http://10.0.0.1:8080
            weight: 3
          - url: http://10.0.0.2:8080/base
            preservePath: true
        healthCheck:
          path: /health
    canary:
      weighted:
        services:
          - name: app
            weight: 9
  middlewares:
    auth:
      basicAuth:
        users: ["a:b"]
tcp:
  routers:
    db:
      rule: HostSNI(`*`)
      service: pg
tls:
  certificates:
    - certFile: /a.pem
      keyFile: /a.key
"#;

fn errors(r: Result<DynamicConfig, ConfigErrors>) -> Vec<String> {
    r.expect_err("should fail")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn toml_and_yaml_decode_to_the_same_config() {
    let t = parse_dynamic("a.toml", TOML, Format::Toml).expect("toml");
    let y = parse_dynamic("a.toml", YAML, Format::Yaml).expect("yaml");
    assert_eq!(t, y);

    let r = &t.http.routers["Web"];
    assert_eq!(r.entry_points, ["web"]);
    assert_eq!(r.rule, "Host(`example.com`)");
    assert_eq!(r.service, "app");
    assert_eq!(r.middlewares, ["auth"]);
    assert_eq!(r.priority, Some(10));
    let tls = r.tls.as_ref().expect("tls");
    assert_eq!(tls.cert_resolver.as_deref(), Some("le"));
    assert_eq!(tls.domains[0].sans, ["www.example.com"]);

    let lb = t.http.services["app"].load_balancer.as_ref().expect("lb");
    assert_eq!(lb.pass_host_header, Some(false));
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[0].weight, Some(3));
    assert!(lb.servers[1].preserve_path);
    assert!(lb.health_check.is_some());
    let w = t.http.services["canary"]
        .weighted
        .as_ref()
        .expect("weighted");
    assert_eq!(w.services[0].name, "app");
    assert_eq!(w.services[0].weight, Some(9));

    let m = &t.http.middlewares["auth"];
    assert_eq!(m.kind, "basicAuth");
    assert!(t.tcp.is_some());
    assert!(t.tls.is_some());
    assert_eq!(t.origin("http.routers.Web"), Some("a.toml"));
    assert_eq!(t.origin("tcp.routers.db"), Some("a.toml"));
}

#[test]
fn field_names_are_case_insensitive_and_names_keep_case() {
    let cfg = parse_dynamic(
        "x.yml",
        "HTTP:\n  Routers:\n    MyRouter:\n      RULE: Path(`/`)\n      Service: S\n",
        Format::Yaml,
    )
    .expect("valid");
    assert_eq!(cfg.http.routers["MyRouter"].rule, "Path(`/`)");
    assert_eq!(cfg.http.routers["MyRouter"].service, "S");
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let msgs = errors(parse_dynamic(
        "d.toml",
        "[http.routers.r]\nrule = \"Path(`/`)\"\nsevrice = \"s\"\n[http.services.s.loadBalancer]\nservers = [{ uri = \"http://a\" }]\n[htp]\n",
        Format::Toml,
    ));
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    // Unknown sections are reported while scanning a level, before its known sections.
    assert!(
        msgs[0].starts_with("d.toml: htp: unknown key \"htp\""),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with("d.toml: http.routers.r.sevrice: unknown key"),
        "{msgs:?}"
    );
    assert!(
        msgs[2].starts_with("d.toml: http.services.s.loadBalancer.servers[0].uri: unknown key"),
        "{msgs:?}"
    );
}

#[test]
fn wrong_types_are_errors() {
    let msgs = errors(parse_dynamic(
        "d.yml",
        "http:\n  routers:\n    r:\n      rule: {a: 1}\n      priority: high\n",
        Format::Yaml,
    ));
    // Decoding a router stops at its first error.
    assert_eq!(
        msgs,
        ["d.yml: http.routers.r.rule: expected a value, found a section"]
    );
    let msgs = errors(parse_dynamic(
        "d.yml",
        "http:\n  routers: [1]\n",
        Format::Yaml,
    ));
    assert_eq!(
        msgs,
        ["d.yml: http.routers: expected a section, found a list"]
    );
}

#[test]
fn middleware_types() {
    let msgs = errors(parse_dynamic(
        "m.toml",
        "[http.middlewares.a.basicauth]\nusers=[]\n[http.middlewares.b.frobnicate]\n[http.middlewares.c]\n",
        Format::Toml,
    ));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("m.toml: http.middlewares.b.frobnicate: unknown key"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("a middleware has exactly one type (found 0)"),
        "{msgs:?}"
    );
    let cfg =
        parse_dynamic("m.toml", "[http.middlewares.a.BASICAUTH]\n", Format::Toml).expect("ok");
    assert_eq!(cfg.http.middlewares["a"].kind, "basicAuth");
}

#[test]
fn syntax_errors_name_the_file() {
    let msgs = errors(parse_dynamic("bad.toml", "[http\n", Format::Toml));
    assert!(
        msgs[0].starts_with("bad.toml: TOML syntax error at line 1"),
        "{msgs:?}"
    );
}

#[test]
fn empty_documents_are_empty_configs() {
    for (text, format) in [
        ("", Format::Toml),
        ("", Format::Yaml),
        ("http:\n", Format::Yaml),
    ] {
        let cfg = parse_dynamic("e", text, format).expect("valid");
        assert!(cfg.is_empty(), "{text:?}");
    }
}

#[test]
fn from_flat_labels() {
    let node = Node::from_flat([
        ("http.routers.r.rule", "Host(`a`)"),
        ("http.routers.r.entrypoints", "web,websecure"),
        (
            "http.services.s.loadbalancer.servers[0].url",
            "http://10.0.0.1",
        ),
        ("http.services.s.loadbalancer.passhostheader", "false"),
    ])
    .expect("paths");
    let cfg = DynamicConfig::from_node("docker", &node).expect("valid");
    assert_eq!(cfg.http.routers["r"].entry_points, ["web", "websecure"]);
    let lb = cfg.http.services["s"].load_balancer.as_ref().expect("lb");
    assert_eq!(lb.servers[0].url, "http://10.0.0.1");
    assert_eq!(lb.pass_host_header, Some(false));
}

fn cfg(source: &str, text: &str) -> DynamicConfig {
    parse_dynamic(source, text, Format::Toml).expect("valid")
}

#[test]
fn merge_combines_files() {
    let mut a = cfg("a.toml", "[http.routers.r1]\nrule='Path(`/`)'\nservice='s'\n[tcp.routers.t1]\nrule='x'\n[[tls.certificates]]\ncertFile='a'\n");
    let b = cfg("b.toml", "[http.services.s.loadBalancer]\n[tcp.routers.t2]\nrule='y'\n[[tls.certificates]]\ncertFile='b'\n[udp.routers.u]\n");
    a.merge(b).expect("no conflict");
    assert!(a.http.routers.contains_key("r1"));
    assert!(a.http.services.contains_key("s"));
    assert_eq!(a.origin("http.routers.r1"), Some("a.toml"));
    assert_eq!(a.origin("http.services.s"), Some("b.toml"));
    assert_eq!(a.origin("tcp.routers.t2"), Some("b.toml"));
    assert_eq!(a.origin("udp.routers.u"), Some("b.toml"));
    let tcp_routers = a
        .tcp
        .as_ref()
        .and_then(|t| t.get("routers"))
        .and_then(Node::entries)
        .expect("routers");
    assert_eq!(tcp_routers.len(), 2);
    let certs = a
        .tls
        .as_ref()
        .and_then(|t| t.get("certificates"))
        .expect("certs");
    assert!(matches!(certs, Node::List(l) if l.len() == 2));
}

#[test]
fn merge_conflicts_name_both_files() {
    let mut a = cfg(
        "a.toml",
        "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n",
    );
    let b = cfg(
        "b.toml",
        "[http.routers.r]\nrule='Path(`/b`)'\nservice='s'\n",
    );
    let err = a.merge(b).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "b.toml: http.routers.r: defined differently in both a.toml and b.toml"
    );
    // Identical definitions are accepted.
    let mut a = cfg(
        "a.toml",
        "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n",
    );
    let b = cfg(
        "b.toml",
        "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n",
    );
    a.merge(b).expect("identical");
    let mut a = cfg("a.toml", "[tcp.routers.t]\nrule='x'\n");
    let b = cfg("b.toml", "[tcp.routers.t]\nrule='y'\n");
    assert!(a.merge(b).is_err());
}

/// A directory whose large file sorts after the small ones merges the other way round (the
/// large side is the base): whichever side is larger, the result, the origins and the
/// errors are the same as merging in file order.
#[test]
fn merge_gives_the_same_result_whichever_side_is_larger() {
    fn filler(prefix: &str) -> String {
        (0..50)
            .map(|i| {
                format!("[http.routers.{prefix}{i}]\nrule='Path(`/{prefix}{i}`)'\nservice='s'\n")
            })
            .collect()
    }
    fn without_filler(mut c: DynamicConfig) -> DynamicConfig {
        for prefix in ["fillA", "fillB"] {
            for i in 0..50 {
                c.http.routers.remove(&format!("{prefix}{i}"));
                c.origins.remove(&format!("http.routers.{prefix}{i}"));
            }
        }
        c
    }
    // (earlier, later)
    let cases = [
        // shared identical items, items on one side only, raw sections on both
        (
            "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n[http.services.s.loadBalancer]\n[[http.services.s.loadBalancer.servers]]\nurl='http://a'\n[tcp.routers.t1]\nrule='x'\n[[tls.certificates]]\ncertFile='first'\n",
            "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n[http.routers.q]\nrule='Path(`/q`)'\nservice='s'\n[http.middlewares.m.stripPrefix]\nprefixes=['/x']\n[tcp.routers.t2]\nrule='y'\n[[tls.certificates]]\ncertFile='second'\n",
        ),
        // a router defined differently
        (
            "[http.routers.r]\nrule='Path(`/a`)'\nservice='s'\n",
            "[http.routers.r]\nrule='Path(`/b`)'\nservice='s'\n",
        ),
        // a service defined differently, and a TCP router
        (
            "[http.services.s.loadBalancer]\n[[http.services.s.loadBalancer.servers]]\nurl='http://a'\n[tcp.routers.t]\nrule='x'\n",
            "[http.services.s.loadBalancer]\n[[http.services.s.loadBalancer.servers]]\nurl='http://b'\n[tcp.routers.t]\nrule='y'\n",
        ),
    ];
    for (earlier, later) in cases {
        // In file order: the earlier file is the larger.
        let mut normal = cfg("a.toml", &format!("{earlier}{}", filler("fillA")));
        let normal = normal.merge(cfg("b.toml", later)).map(|()| normal);
        // The later file is the larger.
        let mut reversed = cfg("a.toml", earlier);
        let reversed = reversed
            .merge(cfg("b.toml", &format!("{later}{}", filler("fillB"))))
            .map(|()| reversed);
        match (normal, reversed) {
            (Ok(n), Ok(r)) => {
                let (n, r) = (without_filler(n), without_filler(r));
                assert_eq!(n.http, r.http, "{earlier} / {later}");
                assert_eq!(n.tcp, r.tcp, "{earlier} / {later}");
                assert_eq!(n.tls, r.tls, "{earlier} / {later}");
                assert_eq!(n.origins, r.origins, "{earlier} / {later}");
            }
            (Err(n), Err(r)) => assert_eq!(n.to_string(), r.to_string()),
            (n, r) => panic!("{earlier} / {later}: {n:?} against {r:?}"),
        }
    }
}

/// A decode that starts from the previous one gives what a plain decode gives, at every step
/// of a file's life: items changed, added and removed, a section going and coming back, a bad
/// item, the other sections changing beside; unchanged routers and services are the previous
/// `Arc`s.
#[test]
fn a_decode_patching_the_previous_one_gives_the_plain_decode() {
    let router = |name: &str, rule: &str| {
        format!("[http.routers.{name}]\nrule = \"{rule}\"\nservice = \"s\"\n")
    };
    let base = [
        router("a", "Path(`/a`)"),
        router("b", "Path(`/b`)"),
        router("c", "Path(`/c`)"),
        "[http.services.s.loadBalancer]\nservers = [{ url = 'http://127.0.0.1:1' }]\n".into(),
        "[http.services.t.loadBalancer]\nservers = [{ url = 'http://127.0.0.1:2' }]\n".into(),
        "[http.middlewares.m.stripPrefix]\nprefixes = ['/a']\n".into(),
    ]
    .concat();
    let steps = [
        base.clone(),
        // One rule changes, one router comes, one goes.
        base.replace("Path(`/b`)", "Path(`/bb`)")
            .replace("[http.routers.c]", "[http.routers.d]"),
        // The services section goes (the routers then name a missing service: not a decode
        // error), a middleware goes, TLS comes.
        [
            router("a", "Path(`/a`)"),
            "[[tls.certificates]]\ncertFile = 'x'\n".into(),
        ]
        .concat(),
        // Everything back, with the sections in another order.
        format!("[tcp.routers.t]\nrule = 'HostSNI(`*`)'\nservice = 'x'\n{base}"),
        // A router that does not decode: an error, as plainly.
        base.replace("rule = \"Path(`/c`)\"", "rule = 3\nnope = 1"),
        base.clone(),
        String::new(),
        base.clone(),
    ];
    let mut previous: Option<(Node, DynamicConfig)> = None;
    for (i, text) in steps.iter().enumerate() {
        let tree = Format::Toml.parse_tree(text).expect("parses");
        let plain = DynamicConfig::from_node("f.toml", &tree);
        let patched =
            DynamicConfig::from_node_after("f.toml", &tree, previous.as_ref().map(|(t, c)| (t, c)));
        assert_eq!(patched, plain, "step {i}");
        if let (Ok(now), Some((_, before))) = (&patched, &previous) {
            for (name, r) in &now.http.routers {
                if before.http.routers.get(name) == Some(r) {
                    assert!(
                        Arc::ptr_eq(r, &before.http.routers[name]),
                        "step {i}: {name}"
                    );
                }
            }
        }
        // As the file provider: the next decode starts from the last good one.
        if let Ok(c) = patched {
            previous = Some((tree, c));
        }
    }
}

/// A name given twice (a tree from labels or KV keys can have it) is left to the plain
/// decode, where the last definition wins.
#[test]
fn a_name_given_twice_is_decoded_plainly() {
    let router = |rule: &str| {
        Node::Map(vec![
            ("rule".into(), Node::Leaf(rule.into())),
            ("service".into(), Node::Leaf("s".into())),
        ])
    };
    let doc = |routers: Vec<(String, Node)>| {
        Node::Map(vec![(
            "http".into(),
            Node::Map(vec![("routers".into(), Node::Map(routers))]),
        )])
    };
    let first = doc(vec![("a".into(), router("Path(`/1`)"))]);
    let first_cfg = DynamicConfig::from_node("f", &first).expect("decodes");
    let twice = doc(vec![
        ("a".into(), router("Path(`/2`)")),
        ("a".into(), router("Path(`/1`)")),
    ]);
    let plain = DynamicConfig::from_node("f", &twice).expect("decodes");
    assert_eq!(plain.http.routers["a"].rule, "Path(`/1`)");
    assert_eq!(
        DynamicConfig::from_node_after("f", &twice, Some((&first, &first_cfg))),
        Ok(plain)
    );
}
