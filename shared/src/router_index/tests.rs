use super::*;
use crate::rule::testing::{
    expr_tree, http_matcher, naive_eval, naive_host, request, TestRequest, HOSTS,
};
use crate::rule::{parse, RuleKind};
use proptest::prelude::*;

fn index(routers: &[(&str, i64, &str)]) -> RouterIndex {
    let input = routers
        .iter()
        .enumerate()
        .map(|(i, (rule, priority, name))| {
            let expr = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            (expr, *priority, name.to_string(), i as u32)
        })
        .collect();
    RouterIndex::build(input).unwrap_or_else(|(name, e)| panic!("{name}: {e}"))
}

fn find(index: &RouterIndex, req: &TestRequest) -> Option<u32> {
    req.with_view(|v| index.find(v))
}

fn hosts(rule: &str) -> Option<Vec<&'static str>> {
    let expr = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    required_hosts(&expr).map(|mut hosts| {
        hosts.sort();
        hosts.into_iter().map(|h| &*Box::leak(h)).collect()
    })
}

#[test]
fn required_host_sets() {
    assert_eq!(hosts("Host(`A.com.`)"), Some(vec!["a.com"]));
    assert_eq!(hosts("Host(`[::1]`)"), Some(vec!["::1"]));
    assert_eq!(hosts("Host(`a`) && Path(`/x`)"), Some(vec!["a"]));
    assert_eq!(hosts("Path(`/x`) && Host(`a`, `b`)"), Some(vec!["a", "b"]));
    assert_eq!(hosts("Host(`a`, `b`) && Host(`c`)"), Some(vec!["c"]));
    assert_eq!(hosts("Host(`a`) || Host(`b`)"), Some(vec!["a", "b"]));
    assert_eq!(
        hosts("Host(`a`) || Host(`b`) && Path(`/`)"),
        Some(vec!["a", "b"])
    );
    assert_eq!(hosts("Host(`a`) || Path(`/x`)"), None);
    assert_eq!(hosts("!Host(`a`)"), None);
    assert_eq!(hosts("!!Host(`a`)"), None);
    assert_eq!(hosts("HostRegexp(`a`)"), None);
    assert_eq!(hosts("Path(`/x`)"), None);
    assert_eq!(
        hosts("(Host(`a`) || Host(`b`)) && (Host(`b`) || Path(`/`))"),
        Some(vec!["a", "b"])
    );
}

#[test]
fn orders_by_priority_then_name_then_input() {
    let idx = index(&[
        ("PathPrefix(`/`)", 1, "low"),
        ("PathPrefix(`/`)", 5, "zz"),
        ("PathPrefix(`/`)", 5, "aa"),
        ("PathPrefix(`/`)", 5, "aa"),
    ]);
    assert_eq!(find(&idx, &TestRequest::get("x", "/")), Some(2));
    let names: Vec<_> = idx
        .entries()
        .iter()
        .map(|e| (e.priority, &*e.name, e.value))
        .collect();
    assert_eq!(
        names,
        [(5, "aa", 2), (5, "aa", 3), (5, "zz", 1), (1, "low", 0)]
    );
}

#[test]
fn merges_host_bucket_with_wildcards_in_order() {
    let idx = index(&[
        ("Host(`a.com`) && PathPrefix(`/api`)", 10, "a-api"),
        ("PathPrefix(`/api/admin`)", 20, "admin"),
        ("PathPrefix(`/`)", 1, "fallback"),
        ("Host(`a.com`)", 5, "a"),
        ("Host(`b.com`)", 50, "b"),
    ]);
    let get = |h, p| find(&idx, &TestRequest::get(h, p));
    assert_eq!(get("a.com", "/api/x"), Some(0));
    assert_eq!(get("a.com", "/api/admin/x"), Some(1));
    assert_eq!(get("a.com", "/web"), Some(3));
    assert_eq!(get("A.COM.:8443", "/web"), Some(3));
    assert_eq!(get("b.com", "/api/x"), Some(4));
    assert_eq!(get("c.com", "/api/x"), Some(2));
    assert_eq!(get("", "/api/admin"), Some(1));
    let long = "x".repeat(300);
    assert_eq!(get(&long, "/"), Some(2));
}

#[test]
fn multi_host_rules_sit_in_every_bucket() {
    let idx = index(&[
        ("Host(`a.com`, `b.com`) && Path(`/x`)", 10, "ab"),
        ("Host(`c.com`) || Host(`[::1]`)", 10, "c"),
        ("!Host(`a.com`)", 1, "not-a"),
    ]);
    let get = |h, p| find(&idx, &TestRequest::get(h, p));
    assert_eq!(get("a.com", "/x"), Some(0));
    assert_eq!(get("b.com", "/x"), Some(0));
    assert_eq!(get("a.com", "/y"), None);
    assert_eq!(get("b.com", "/y"), Some(2));
    assert_eq!(get("c.com", "/y"), Some(1));
    assert_eq!(get("[::1]:8080", "/y"), Some(1));
    assert_eq!(idx.by_host.get("a.com").map(|b| b.len()), Some(1));
    assert_eq!(idx.by_host.get("::1").map(|b| b.len()), Some(1));
    assert_eq!(idx.wildcard.len(), 1);
}

#[test]
fn empty_index_finds_nothing() {
    let idx = RouterIndex::build(Vec::new()).expect("empty");
    assert!(idx.is_empty());
    assert_eq!(idx.len(), 0);
    assert_eq!(find(&idx, &TestRequest::get("a", "/")), None);
    assert_eq!(
        find(&RouterIndex::default(), &TestRequest::get("a", "/")),
        None
    );
}

#[test]
fn build_rejects_tcp_rules_naming_the_router() {
    let input = vec![
        (parse("Host(`a`)").expect("valid"), 1, "ok".to_string(), 0),
        (
            parse("HostSNI(`a`)").expect("valid"),
            1,
            "tcp@file".to_string(),
            1,
        ),
    ];
    let (name, e) = RouterIndex::build(input).expect_err("TCP matcher");
    assert_eq!(name, "tcp@file");
    assert_eq!(
        e,
        RuleError::WrongKind {
            matcher: "HostSNI",
            kind: RuleKind::Http
        }
    );
}

#[test]
fn ten_thousand_hosts_each_in_its_own_bucket() {
    let mut input = Vec::new();
    for i in 0..10_000u32 {
        let rule = format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`)");
        input.push((
            parse(&rule).expect("valid"),
            rule.len() as i64,
            format!("r{i}"),
            i,
        ));
    }
    input.push((
        parse("PathPrefix(`/static`)").expect("valid"),
        100,
        "static".into(),
        10_000,
    ));
    let idx = RouterIndex::build(input).expect("builds");
    assert_eq!(idx.len(), 10_001);
    assert_eq!(idx.by_host.len(), 10_000);
    assert!(idx.by_host.values().all(|b| b.len() == 1));
    assert_eq!(idx.wildcard.len(), 1);
    for i in [0u32, 4999, 9999] {
        let host = format!("SVC{i}.example.com:443");
        assert_eq!(find(&idx, &TestRequest::get(&host, "/api/v1")), Some(i));
        assert_eq!(
            find(&idx, &TestRequest::get(&host, "/static/x")),
            Some(10_000)
        );
        assert_eq!(find(&idx, &TestRequest::get(&host, "/web")), None);
    }
    let bytes = idx.memory_bytes();
    assert!(bytes > 10_000 * 50 && bytes < 10_000 * 2_000, "{bytes}");
}

fn router_rule() -> impl Strategy<Value = Expr> {
    let tree = expr_tree(http_matcher().boxed()).boxed();
    let host = prop::sample::select(HOSTS)
        .prop_map(|h| Expr::Matcher(Matcher::Host(h.into())))
        .boxed();
    prop_oneof![
        2 => tree.clone(),
        1 => host.clone(),
        3 => (host.clone(), tree.clone()).prop_map(|(h, t)| Expr::And(vec![h, t])),
        1 => prop::collection::vec(host.clone(), 2..4).prop_map(Expr::Or),
        1 => (prop::collection::vec(host.clone(), 2..4), tree.clone())
            .prop_map(|(hs, t)| Expr::And(vec![t, Expr::Or(hs)])),
        1 => (host, tree).prop_map(|(h, t)| Expr::Not(Box::new(Expr::And(vec![h, t])))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The index returns what a linear scan in order with the naive interpreter returns.
    #[test]
    fn index_agrees_with_linear_scan(
        routers in prop::collection::vec(
            (router_rule(), 0i64..4, prop::sample::select(vec!["a", "b", "c"])),
            0..16,
        ),
        reqs in prop::collection::vec(request(), 1..16),
    ) {
        let input: Vec<_> = routers
            .iter()
            .enumerate()
            .map(|(i, (e, p, n))| (e.clone(), *p, n.to_string(), i as u32))
            .collect();
        let idx = RouterIndex::build(input).expect("generated rules compile");
        let mut order: Vec<usize> = (0..routers.len()).collect();
        order.sort_by(|&a, &b| {
            let ((_, pa, na), (_, pb, nb)) = (&routers[a], &routers[b]);
            pb.cmp(pa).then(na.cmp(nb)).then(a.cmp(&b))
        });
        for req in &reqs {
            let want = order
                .iter()
                .find(|&&i| naive_eval(&routers[i].0, req))
                .map(|&i| i as u32);
            prop_assert_eq!(find(&idx, req), want, "request {:?}", req);
        }
    }

    /// Whenever a rule matches, the request host is in the rule's required hosts.
    #[test]
    fn required_hosts_are_sound(e in router_rule(), reqs in prop::collection::vec(request(), 8)) {
        if let Some(hosts) = required_hosts(&e) {
            for req in &reqs {
                if naive_eval(&e, req) {
                    let host = naive_host(&req.host);
                    prop_assert!(hosts.iter().any(|h| **h == *host), "{} matched {:?}", e, req);
                }
            }
        }
    }
}
