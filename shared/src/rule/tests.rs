use super::testing::{
    any_matcher, expr_tree, http_matcher, naive_eval, naive_host, request, TestRequest,
};
use super::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn m(matcher: Matcher) -> Expr {
    Expr::Matcher(matcher)
}

fn host(h: &str) -> Expr {
    m(Matcher::Host(h.into()))
}

fn path(p: &str) -> Expr {
    m(Matcher::Path(p.into()))
}

fn method(v: &str) -> Expr {
    m(Matcher::Method(v.into()))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn ok(rule: &str) -> Expr {
    match parse(rule) {
        Ok(e) => e,
        Err(e) => panic!("{rule}: {e}"),
    }
}

/// The offset and problem of a parse error.
fn err(rule: &str) -> (usize, RuleProblem) {
    match parse(rule) {
        Err(RuleError::Parse {
            rule: r,
            offset,
            problem,
        }) => {
            assert_eq!(r, rule);
            (offset, problem)
        }
        other => panic!("{rule}: expected a parse error, got {other:?}"),
    }
}

fn matches(rule: &str, req: &TestRequest) -> bool {
    let compiled = CompiledRule::new(&ok(rule)).expect("compiles");
    req.with_view(|view| compiled.matches(view))
}

// ---- parsing ----

#[test]
fn parses_every_http_matcher() {
    let cases = [
        ("Host(`a.com`)", Matcher::Host("a.com".into())),
        (
            "HostRegexp(`^.+\\.com$`)",
            Matcher::HostRegexp("^.+\\.com$".into()),
        ),
        ("Path(`/a`)", Matcher::Path("/a".into())),
        ("PathPrefix(`/a`)", Matcher::PathPrefix("/a".into())),
        (
            "PathRegexp(`^/a/[0-9]+`)",
            Matcher::PathRegexp("^/a/[0-9]+".into()),
        ),
        ("Method(`GET`)", Matcher::Method("GET".into())),
        (
            "Header(`X-A`, `1`)",
            Matcher::Header {
                name: "X-A".into(),
                value: "1".into(),
            },
        ),
        (
            "HeaderRegexp(`X-A`, `^1`)",
            Matcher::HeaderRegexp {
                name: "X-A".into(),
                regex: "^1".into(),
            },
        ),
        (
            "Query(`k`)",
            Matcher::Query {
                key: "k".into(),
                value: None,
            },
        ),
        (
            "Query(`k`, `v`)",
            Matcher::Query {
                key: "k".into(),
                value: Some("v".into()),
            },
        ),
        (
            "QueryRegexp(`k`, `^v`)",
            Matcher::QueryRegexp {
                key: "k".into(),
                regex: "^v".into(),
            },
        ),
        // Traefik: QueryRegexp with only a key is Query with only a key.
        (
            "QueryRegexp(`k`)",
            Matcher::Query {
                key: "k".into(),
                value: None,
            },
        ),
        (
            "ClientIP(`10.0.0.0/8`)",
            Matcher::ClientIp(IpNet::new(IpAddr::from([10, 0, 0, 0]), 8).expect("valid")),
        ),
        (
            "ClientIP(`::1`)",
            Matcher::ClientIp(IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("valid")),
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(ok(rule), m(want), "{rule}");
    }
}

#[test]
fn parses_tcp_matchers() {
    assert_eq!(ok("HostSNI(`*`)"), m(Matcher::HostSni("*".into())));
    assert_eq!(
        ok("HostSNIRegexp(`^a`)"),
        m(Matcher::HostSniRegexp("^a".into()))
    );
    assert_eq!(ok("ALPN(`h2`)"), m(Matcher::Alpn("h2".into())));
    assert_eq!(
        ok("HostSNI(`a.com`, `b.com`)"),
        Expr::Or(vec![
            m(Matcher::HostSni("a.com".into())),
            m(Matcher::HostSni("b.com".into()))
        ])
    );
}

#[test]
fn precedence_not_over_and_over_or() {
    assert_eq!(
        ok("Host(`a`) || Host(`b`) && !Path(`/c`)"),
        Expr::Or(vec![host("a"), Expr::And(vec![host("b"), not(path("/c"))])])
    );
    assert_eq!(
        ok("!Host(`a`) && Host(`b`) || Host(`c`)"),
        Expr::Or(vec![Expr::And(vec![not(host("a")), host("b")]), host("c")])
    );
    assert_eq!(
        ok("(Host(`a`) || Host(`b`)) && Path(`/c`)"),
        Expr::And(vec![Expr::Or(vec![host("a"), host("b")]), path("/c")])
    );
    assert_eq!(
        ok("!(Host(`a`) || Host(`b`))"),
        not(Expr::Or(vec![host("a"), host("b")]))
    );
    assert_eq!(ok("!!Host(`a`)"), not(not(host("a"))));
}

#[test]
fn chains_flatten_but_parentheses_nest() {
    assert_eq!(
        ok("Host(`a`) && Host(`b`) && Host(`c`)"),
        Expr::And(vec![host("a"), host("b"), host("c")])
    );
    assert_eq!(
        ok("(Host(`a`) && Host(`b`)) && Host(`c`)"),
        Expr::And(vec![Expr::And(vec![host("a"), host("b")]), host("c")])
    );
    assert_eq!(ok("((Host(`a`)))"), host("a"));
}

#[test]
fn whitespace_anywhere_between_tokens() {
    let want = Expr::And(vec![
        host("a"),
        m(Matcher::Header {
            name: "k".into(),
            value: "v".into(),
        }),
    ]);
    assert_eq!(ok("Host(`a`)&&Header(`k`,`v`)"), want);
    assert_eq!(ok(" \tHost ( `a` ) \n&&\r\n Header( `k` ,\t`v` )  "), want);
    assert_eq!(ok("( Host(`a`) )"), host("a"));
}

#[test]
fn double_quoted_values_and_escapes() {
    assert_eq!(ok(r#"Host("a.com")"#), host("a.com"));
    assert_eq!(ok(r#"Path("/a\"b\\c")"#), path(r#"/a"b\c"#));
    assert_eq!(ok(r#"Path("/a\tb\n")"#), path("/a\tb\n"));
    assert_eq!(ok(r#"Path("/`x`")"#), path("/`x`"));
    // Backticks are raw: backslashes stay.
    assert_eq!(ok(r"Path(`/a\n`)"), path(r"/a\n"));
}

#[test]
fn matcher_names_in_traefiks_four_casings() {
    for name in ["PathPrefix", "pathprefix", "PATHPREFIX", "Pathprefix"] {
        assert_eq!(
            ok(&format!("{name}(`/a`)")),
            m(Matcher::PathPrefix("/a".into()))
        );
    }
    for name in ["ClientIP", "clientip", "CLIENTIP", "Clientip"] {
        assert!(parse(&format!("{name}(`::1`)")).is_ok(), "{name}");
    }
    let (offset, problem) = err("pathPrefix(`/a`)");
    assert_eq!(offset, 0);
    assert_eq!(
        problem,
        RuleProblem::UnknownMatcher {
            name: "pathPrefix".into()
        }
    );
}

#[test]
fn v2_multi_value_forms_are_alternatives() {
    assert_eq!(
        ok("Host(`a`, `b`, `c`)"),
        Expr::Or(vec![host("a"), host("b"), host("c")])
    );
    assert_eq!(ok("Host(`a`,)"), host("a"));
    assert_eq!(
        ok("Method(`GET`, `POST`)"),
        Expr::Or(vec![method("GET"), method("POST")])
    );
    assert_eq!(
        ok("PathPrefix(`/a`, `/b`) && Path(`/c`, `/d`)"),
        Expr::And(vec![
            Expr::Or(vec![
                m(Matcher::PathPrefix("/a".into())),
                m(Matcher::PathPrefix("/b".into()))
            ]),
            Expr::Or(vec![path("/c"), path("/d")]),
        ])
    );
    assert!(matches!(ok("ClientIP(`10.0.0.0/8`, `::1`)"), Expr::Or(v) if v.len() == 2));
    // v2 spellings.
    assert_eq!(ok("HostHeader(`a`)"), host("a"));
    assert_eq!(
        ok("Headers(`k`, `v`)"),
        m(Matcher::Header {
            name: "k".into(),
            value: "v".into()
        })
    );
}

#[test]
fn fixed_arity_matchers_reject_other_counts() {
    for (rule, matcher, expected, got) in [
        ("Header(`k`)", "Header", "2", 1),
        ("Header(`k`, `v`, `w`)", "Header", "2", 3),
        ("HeaderRegexp(`k`)", "HeaderRegexp", "2", 1),
        ("Query(`a`, `b`, `c`)", "Query", "1 or 2", 3),
        ("HostRegexp(`a`, `b`)", "HostRegexp", "1", 2),
        ("PathRegexp(`a`, `b`)", "PathRegexp", "1", 2),
        ("Host()", "Host", "at least 1", 0),
    ] {
        assert_eq!(
            err(rule),
            (
                0,
                RuleProblem::Arity {
                    matcher,
                    expected,
                    got
                }
            ),
            "{rule}"
        );
    }
}

#[test]
fn syntax_errors_point_at_the_fault() {
    let e = parse("Host(`a`").expect_err("unclosed call");
    assert_eq!(
        e.to_string(),
        "rule \"Host(`a`\" at column 9: expected \",\" or \")\""
    );
    assert_eq!(err("Host(`a`").0, 8);
    assert_eq!(err("Host(`a`) && ").0, 13);
    assert_eq!(err("Host(`a`) Path(`/`)").0, 10);
    assert_eq!(err("Host(`a`) & Path(`/`)").0, 10);
    assert_eq!(
        err("Host(a)"),
        (
            5,
            RuleProblem::Expected("a value in backticks or double quotes")
        )
    );
    assert_eq!(err("Host(`a)"), (8, RuleProblem::Expected("\"`\"")));
    assert_eq!(err("Host(\"a)"), (8, RuleProblem::Expected("'\"'")));
    assert_eq!(err("(Host(`a`)"), (10, RuleProblem::Expected("\")\"")));
    assert_eq!(err("Host(`a`))").0, 9);
    assert_eq!(err("Host `a`"), (5, RuleProblem::Expected("\"(\"")));
    assert_eq!(err("&& Host(`a`)").0, 0);
    assert_eq!(err("Host(`a` `b`)").0, 9);
    assert_eq!(err(r#"Host("a\qb")"#).0, 7);
    assert_eq!(
        err("Hots(`a`) && Host(`b`)"),
        (
            0,
            RuleProblem::UnknownMatcher {
                name: "Hots".into()
            }
        )
    );
    assert_eq!(
        err("Host(`a`) || Foo(`b`)").1,
        RuleProblem::UnknownMatcher { name: "Foo".into() }
    );
    let e = parse("Host(`a`) || Foo(`b`)").expect_err("unknown");
    assert!(
        e.to_string().contains("column 14: unknown matcher \"Foo\""),
        "{e}"
    );
}

#[test]
fn empty_rules_are_errors() {
    assert_eq!(parse(""), Err(RuleError::Empty));
    assert_eq!(parse(" \n\t"), Err(RuleError::Empty));
    assert_eq!(
        parse("()").map_err(|e| matches!(e, RuleError::Parse { offset: 1, .. })),
        Err(true)
    );
}

#[test]
fn value_errors_name_the_value() {
    let (offset, problem) = err("Host(`a`) && HostRegexp(`(`)");
    assert_eq!(offset, 24);
    match problem {
        RuleProblem::Regex {
            matcher,
            regex,
            message,
        } => {
            assert_eq!((matcher, regex.as_str()), ("HostRegexp", "("));
            assert!(message.contains("unclosed group"), "{message}");
            assert!(!message.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
    for rule in [
        "PathRegexp(`[`)",
        "HeaderRegexp(`k`, `*`)",
        "QueryRegexp(`k`, `(?P<`)",
    ] {
        assert!(matches!(err(rule).1, RuleProblem::Regex { .. }), "{rule}");
    }
    for bad in [
        "10.0.0.300",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "::1/129",
        "fe80::1%eth0",
        "x",
    ] {
        let rule = format!("ClientIP(`10.0.0.1`, `{bad}`)");
        assert_eq!(
            err(&rule),
            (21, RuleProblem::ClientIp { value: bad.into() }),
            "{bad}"
        );
    }
    let value = |rule| match err(rule).1 {
        RuleProblem::Value { reason, .. } => reason,
        other => panic!("{rule}: {other:?}"),
    };
    assert_eq!(value("Path(`a`)"), "a path must start with '/'");
    assert_eq!(value("PathPrefix(`a`)"), "a path must start with '/'");
    assert_eq!(value("Host(``)"), "empty value");
    assert_eq!(value("Header(`k`, ``)"), "empty value");
    assert_eq!(
        value("Host(`bücher.de`)"),
        "non-ASCII characters are not allowed"
    );
    assert_eq!(value("HostSNI(`a_b`)"), "not a valid host name");
    assert_eq!(
        value("ALPN(`acme-tls/1`)"),
        "\"acme-tls/1\" is reserved for ACME challenges"
    );
}

#[test]
fn nesting_depth_is_bounded() {
    let deep = format!("{}Host(`a`){}", "(".repeat(60), ")".repeat(60));
    assert_eq!(ok(&deep), host("a"));
    let too_deep = format!("{}Host(`a`){}", "(".repeat(200), ")".repeat(200));
    assert!(matches!(err(&too_deep).1, RuleProblem::TooDeep { max: 64 }));
    let nots = format!("{}Host(`a`)", "!".repeat(100_000));
    assert!(matches!(err(&nots).1, RuleProblem::TooDeep { .. }));
    // Long flat chains are fine: they do not nest.
    let chain = vec!["Host(`a`)"; 5000].join(" || ");
    assert!(matches!(ok(&chain), Expr::Or(v) if v.len() == 5000));
}

// ---- printing ----

#[test]
fn prints_canonical_form() {
    let cases = [
        (
            "host(`A`) && (PATH(`/x`) || !method(`GET`))",
            "Host(`A`) && (Path(`/x`) || !Method(`GET`))",
        ),
        ("!(Host(`a`) && Path(`/b`))", "!(Host(`a`) && Path(`/b`))"),
        (
            "Host(\"a\")||Host(`b`)&&Path(`/c`)",
            "Host(`a`) || Host(`b`) && Path(`/c`)",
        ),
        (
            "Host(`a`, `b`) || Path(`/c`)",
            "(Host(`a`) || Host(`b`)) || Path(`/c`)",
        ),
        ("Query(`k`)", "Query(`k`)"),
        ("Query(`k`,`v`)", "Query(`k`, `v`)"),
        ("ClientIP(`10.1.2.3/8`)", "ClientIP(`10.0.0.0/8`)"),
        ("ClientIP(`::ffff:10.0.0.1`)", "ClientIP(`10.0.0.1`)"),
        ("ClientIP(`2001:db8::1/32`)", "ClientIP(`2001:db8::/32`)"),
        ("Path(\"/a`b\")", "Path(\"/a`b\")"),
        ("Path(\"/a`\\\"\\\\\")", "Path(\"/a`\\\"\\\\\")"),
        ("Path(`/\"`)", "Path(`/\"`)"),
        ("hostsni(`*`) && alpn(`h2`)", "HostSNI(`*`) && ALPN(`h2`)"),
    ];
    for (rule, want) in cases {
        let printed = ok(rule).to_string();
        assert_eq!(printed, want, "{rule}");
        assert_eq!(ok(&printed), ok(rule), "{rule} re-parses");
    }
}

#[test]
fn prints_nested_same_operator_with_parentheses() {
    let e = Expr::Or(vec![Expr::Or(vec![host("a"), host("b")]), host("c")]);
    assert_eq!(e.to_string(), "(Host(`a`) || Host(`b`)) || Host(`c`)");
    assert_eq!(ok(&e.to_string()), e);
    let e = Expr::And(vec![host("a"), Expr::Or(vec![host("b"), not(host("c"))])]);
    assert_eq!(e.to_string(), "Host(`a`) && (Host(`b`) || !Host(`c`))");
    assert_eq!(ok(&e.to_string()), e);
}

// ---- kinds ----

#[test]
fn kind_check() {
    let http = ok("Host(`a`) && ClientIP(`10.0.0.0/8`)");
    assert_eq!(http.check_kind(RuleKind::Http), Ok(()));
    assert_eq!(
        http.check_kind(RuleKind::Tcp),
        Err(RuleError::WrongKind {
            matcher: "Host",
            kind: RuleKind::Tcp
        })
    );
    let tcp = ok("HostSNI(`a`) && ClientIP(`::1`) || ALPN(`h2`)");
    assert_eq!(tcp.check_kind(RuleKind::Tcp), Ok(()));
    let e = tcp
        .check_kind(RuleKind::Http)
        .expect_err("TCP matchers in HTTP");
    assert_eq!(e.to_string(), "HostSNI is not allowed in HTTP rules");
    assert_eq!(ok("ClientIP(`::1`)").check_kind(RuleKind::Tcp), Ok(()));
    assert!(CompiledRule::new(&ok("!HostSNI(`a`)")).is_err());
}

#[test]
fn compiling_a_hand_built_bad_regex_fails() {
    let e = CompiledRule::new(&m(Matcher::PathRegexp("(".into()))).expect_err("bad regex");
    assert!(matches!(
        &e,
        RuleError::Matcher { matcher, problem: RuleProblem::Regex { .. } } if matcher == "PathRegexp(`(`)"
    ));
}

// ---- matching ----

#[test]
fn host_matching() {
    let r = |h: &str| TestRequest::get(h, "/");
    let rule = "Host(`Example.com`)";
    for h in [
        "example.com",
        "EXAMPLE.COM",
        "example.com:8080",
        "example.com.",
        "Example.Com.:443",
    ] {
        assert!(matches(rule, &r(h)), "{h}");
    }
    for h in [
        "",
        "example.org",
        "www.example.com",
        "example.com.evil",
        "example.com..",
        ":80",
    ] {
        assert!(!matches(rule, &r(h)), "{h}");
    }
    assert!(matches("Host(`example.com.`)", &r("example.com")));
    assert!(matches("Host(`example.com.`)", &r("example.com.")));
    // IPv6 literals, with and without port or brackets on either side.
    for rule in ["Host(`::1`)", "Host(`[::1]`)"] {
        for h in ["[::1]:8080", "[::1]", "::1"] {
            assert!(matches(rule, &r(h)), "{rule} {h}");
        }
        assert!(!matches(rule, &r("[::2]:8080")), "{rule}");
    }
    // A rule host with a port never matches (the request port is stripped).
    assert!(!matches("Host(`a.com:80`)", &r("a.com:80")));
    // Too long to normalize: no host matches, nothing panics.
    let long = format!("{}.com", "a".repeat(300));
    assert!(!matches(&format!("Host(`{long}`)"), &r(&long)));
    assert!(matches(&format!("!Host(`{long}`)"), &r(&long)));
}

#[test]
fn host_regexp_matching() {
    let r = |h: &str| TestRequest::get(h, "/");
    assert!(matches(
        "HostRegexp(`^[a-z]+\\.example\\.com$`)",
        &r("API.example.com:443")
    ));
    assert!(!matches(
        "HostRegexp(`^[a-z]+\\.example\\.com$`)",
        &r("example.com")
    ));
    // Unanchored, as in Traefik v3.
    assert!(matches("HostRegexp(`example`)", &r("www.example.com")));
    // Case-insensitive.
    assert!(matches("HostRegexp(`^WWW\\.`)", &r("www.a.com")));
    // Sees the normalized host: no port, no trailing dot.
    assert!(matches("HostRegexp(`\\.com$`)", &r("a.com.:8080")));
}

#[test]
fn path_matching() {
    let r = |p: &str| TestRequest::get("a", p);
    assert!(matches("Path(`/a/b`)", &r("/a/b")));
    assert!(!matches("Path(`/a/b`)", &r("/a/b/")));
    assert!(!matches("Path(`/a/b`)", &r("/A/b")));
    assert!(matches("PathPrefix(`/api`)", &r("/api")));
    assert!(matches("PathPrefix(`/api`)", &r("/apis/x")));
    assert!(!matches("PathPrefix(`/api/`)", &r("/api")));
    // v3 PathPrefix is a plain string, not a template.
    assert!(!matches("PathPrefix(`/{id}`)", &r("/42")));
    assert!(matches("PathPrefix(`/{id}`)", &r("/{id}/x")));
    // PathRegexp is unanchored unless anchored.
    assert!(matches("PathRegexp(`[0-9]+`)", &r("/users/42/x")));
    assert!(!matches("PathRegexp(`^/[0-9]+$`)", &r("/users/42")));
    assert!(matches("PathRegexp(`^/users/[0-9]+$`)", &r("/users/42")));
}

#[test]
fn method_matching() {
    let mut req = TestRequest::get("a", "/");
    assert!(matches("Method(`GET`)", &req));
    assert!(!matches("Method(`POST`)", &req));
    // Traefik uppercases the rule value; the request method stays case-sensitive.
    assert!(matches("Method(`get`)", &req));
    req.method = "get".into();
    assert!(!matches("Method(`GET`)", &req));
    assert!(!matches("Method(`get`)", &req));
}

#[test]
fn header_matching() {
    let mut req = TestRequest::get("a", "/");
    req.headers = vec![
        ("X-Env".into(), "staging".into()),
        ("x-env".into(), "canary".into()),
        ("Accept".into(), "text/html".into()),
    ];
    assert!(matches("Header(`X-Env`, `staging`)", &req));
    assert!(matches("Header(`x-ENV`, `canary`)", &req));
    assert!(!matches("Header(`X-Env`, `Canary`)", &req));
    assert!(!matches("Header(`X-Env`, `stag`)", &req));
    assert!(!matches("Header(`X-Other`, `staging`)", &req));
    assert!(matches("HeaderRegexp(`X-ENV`, `^can`)", &req));
    assert!(matches("HeaderRegexp(`accept`, `html`)", &req));
    assert!(!matches("HeaderRegexp(`accept`, `^html`)", &req));
}

#[test]
fn query_matching() {
    let q = |query: &str| {
        let mut req = TestRequest::get("a", "/");
        req.query = query.into();
        req
    };
    assert!(matches("Query(`a`, `1`)", &q("a=1")));
    assert!(matches("Query(`a`, `1`)", &q("b=2&a=0&a=1")));
    assert!(!matches("Query(`a`, `1`)", &q("a=10")));
    assert!(!matches("Query(`a`, `1`)", &q("")));
    assert!(matches("Query(`a`, `x y`)", &q("a=x+y")));
    assert!(matches("Query(`a`, `x y`)", &q("a=x%20y")));
    assert!(matches("Query(`a b`, `=`)", &q("a%20b=%3d")));
    assert!(matches("Query(`k`, `v=w`)", &q("k=v=w")));
    // Like Go: pairs with ';' or a bad escape are dropped.
    assert!(!matches("Query(`a`, `1`)", &q("a=1;b=2")));
    assert!(!matches("Query(`a`, `1%`)", &q("a=1%")));
    assert!(matches("Query(`a`, `1`)", &q("a=%zz&a=1")));
    assert!(!matches("Query(`a`, `1`)", &q("a%=1")));
    // Query(key) wants the key with an empty value, as in Traefik v3.
    assert!(matches("Query(`debug`)", &q("debug")));
    assert!(matches("Query(`debug`)", &q("x=1&debug=")));
    assert!(matches("Query(`debug`)", &q("debug=1&debug")));
    assert!(!matches("Query(`debug`)", &q("debug=1")));
    assert!(!matches("Query(`debug`)", &q("debugger")));
    assert!(matches("QueryRegexp(`a`, `^[0-9]+$`)", &q("a=x&a=42")));
    assert!(!matches("QueryRegexp(`a`, `^[0-9]+$`)", &q("a=4x2")));
    assert!(matches("QueryRegexp(`a`, `^x y$`)", &q("a=x%20y")));
    // Long values decode on the heap.
    let long = "x".repeat(300);
    assert!(matches(
        &format!("QueryRegexp(`a`, `^{long} $`)"),
        &q(&format!("a={long}%20"))
    ));
    assert!(matches(
        &format!("Query(`a`, `{long} `)"),
        &q(&format!("a={long}+"))
    ));
}

#[test]
fn client_ip_matching() {
    let ip = |a: IpAddr| {
        let mut req = TestRequest::get("a", "/");
        req.client_ip = a;
        req
    };
    let v4 = |a, b, c, d| ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    assert!(matches("ClientIP(`10.0.0.0/8`)", &v4(10, 1, 2, 3)));
    assert!(!matches("ClientIP(`10.0.0.0/8`)", &v4(11, 0, 0, 1)));
    assert!(matches("ClientIP(`192.168.1.7`)", &v4(192, 168, 1, 7)));
    assert!(!matches("ClientIP(`192.168.1.7`)", &v4(192, 168, 1, 8)));
    assert!(matches("ClientIP(`0.0.0.0/0`)", &v4(1, 2, 3, 4)));
    assert!(matches(
        "ClientIP(`11.0.0.0/8`, `10.0.0.0/8`)",
        &v4(10, 9, 9, 9)
    ));
    let mapped = ip(IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()));
    assert!(matches("ClientIP(`10.0.0.0/8`)", &mapped));
    assert!(matches("ClientIP(`::ffff:10.0.0.0/104`)", &v4(10, 1, 1, 1)));
    let v6 = ip("2001:db8::5".parse().expect("valid"));
    assert!(matches("ClientIP(`2001:db8::/32`)", &v6));
    assert!(!matches("ClientIP(`2001:db9::/32`)", &v6));
    assert!(!matches("ClientIP(`10.0.0.0/8`)", &v6));
    assert!(!matches("ClientIP(`::/0`)", &v4(10, 0, 0, 1)));
}

#[test]
fn operators_combine() {
    let req = TestRequest::get("a.com", "/api/x");
    assert!(matches("Host(`a.com`) && PathPrefix(`/api`)", &req));
    assert!(!matches("Host(`a.com`) && PathPrefix(`/web`)", &req));
    assert!(matches("Host(`b.com`) || PathPrefix(`/api`)", &req));
    assert!(!matches("Host(`b.com`) || PathPrefix(`/web`)", &req));
    assert!(matches("!Host(`b.com`)", &req));
    assert!(!matches("!(Host(`a.com`) && PathPrefix(`/api`))", &req));
    assert!(matches(
        "Host(`b.com`) || Host(`a.com`) && !Path(`/`)",
        &req
    ));
}

#[test]
fn normalize_host_cases() {
    let mut buf = [0u8; 256];
    for (raw, want) in [
        ("Example.COM", Some("example.com")),
        ("example.com:8080", Some("example.com")),
        ("example.com.", Some("example.com")),
        ("example.com.:8080", Some("example.com")),
        ("[::1]:8080", Some("::1")),
        ("[::1]", Some("::1")),
        ("[::1]x", Some("[::1]x")),
        ("[::1", Some("[::1")),
        ("::1", Some("::1")),
        ("", Some("")),
        ("ÄB.com", Some("Äb.com")),
    ] {
        assert_eq!(normalize_host(raw, &mut buf), want, "{raw}");
    }
    assert_eq!(
        normalize_host(&"a".repeat(256), &mut buf).map(str::len),
        Some(256)
    );
    assert_eq!(
        normalize_host(&format!("{}.", "a".repeat(256)), &mut buf).map(str::len),
        Some(256)
    );
    assert_eq!(normalize_host(&"a".repeat(257), &mut buf), None);
}

#[test]
fn ip_net_parse_print_contains() {
    let net = IpNet::parse("172.16.5.4/12").expect("valid");
    assert_eq!(
        (net.addr(), net.prefix()),
        (IpAddr::from([172, 16, 0, 0]), 12)
    );
    assert_eq!(net.to_string(), "172.16.0.0/12");
    assert!(net.contains(IpAddr::from([172, 31, 255, 255])));
    assert!(!net.contains(IpAddr::from([172, 32, 0, 0])));
    assert_eq!(
        IpNet::parse("1.2.3.4").map(|n| n.to_string()),
        Some("1.2.3.4".into())
    );
    assert_eq!(
        IpNet::parse("1.2.3.4/32").map(|n| n.to_string()),
        Some("1.2.3.4".into())
    );
    assert_eq!(
        IpNet::parse("::/0").map(|n| n.to_string()),
        Some("::/0".into())
    );
    assert_eq!(IpNet::new(IpAddr::from([1, 2, 3, 4]), 33), None);
}

#[test]
fn header_source_impls_agree() {
    let headers = [
        httparse::Header {
            name: "A",
            value: b"1",
        },
        httparse::Header {
            name: "a",
            value: b"2",
        },
    ];
    let seen = |src: &dyn HeaderSource| {
        let mut values = Vec::new();
        src.any_value("A", &mut |v| {
            values.push(v.to_vec());
            false
        });
        values
    };
    let want = vec![b"1".to_vec(), b"2".to_vec()];
    assert_eq!(seen(&headers), want);
    assert_eq!(seen(&&headers[..]), want);
    assert_eq!(seen(&headers.to_vec()), want);
    assert!(headers[..].any_value("a", &mut |v| v == b"1"));
    assert!(!headers[..].any_value("b", &mut |_| true));
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_parse_round_trip(e in expr_tree(any_matcher().boxed())) {
        let printed = e.to_string();
        prop_assert_eq!(parse(&printed), Ok(e), "printed: {}", printed);
    }

    #[test]
    fn compiled_agrees_with_naive(
        e in expr_tree(http_matcher().boxed()),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        let compiled = CompiledRule::new(&e).expect("generated rules compile");
        for req in &reqs {
            let got = req.with_view(|v| compiled.matches(v));
            prop_assert_eq!(got, naive_eval(&e, req), "rule {} on {:?}", e, req);
        }
    }

    #[test]
    fn each_matcher_agrees_with_naive(
        matcher in http_matcher(),
        reqs in prop::collection::vec(request(), 16),
    ) {
        let e = Expr::Matcher(matcher);
        let compiled = CompiledRule::new(&e).expect("generated rules compile");
        for req in &reqs {
            let got = req.with_view(|v| compiled.matches(v));
            prop_assert_eq!(got, naive_eval(&e, req), "rule {} on {:?}", e, req);
        }
    }

    #[test]
    fn normalize_host_agrees_with_naive(raw in "[a-cA-C.:\\[\\]1é]{0,12}") {
        let mut buf = [0u8; 256];
        let want = naive_host(&raw);
        prop_assert_eq!(normalize_host(&raw, &mut buf), Some(want.as_str()));
    }

    /// Arbitrary token soup never panics, and whatever parses prints back to itself.
    #[test]
    fn parse_is_total_and_stable(parts in prop::collection::vec(prop::sample::select(vec![
        "Host", "Path", "Header", "Query", "ClientIP", "(", ")", "!", "&&", "||", "&", ",",
        "`a`", "`/b`", "\"c\\\"\"", "`10.0.0.0/8`", " ", "\"", "`", "é",
    ]), 0..16)) {
        let rule = parts.concat();
        if let Ok(e) = parse(&rule) {
            prop_assert_eq!(parse(&e.to_string()), Ok(e));
        }
    }
}
