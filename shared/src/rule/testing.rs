//! Test support: a naive, allocating interpreter of rules written straight from Traefik's
//! semantics, and proptest strategies for rules and requests.

use super::{Expr, IpNet, Matcher, RequestView};
use proptest::prelude::*;
use regex::RegexBuilder;
use std::net::IpAddr;

/// An owned request, viewed as a [`RequestView`] with `view`.
#[derive(Debug, Clone)]
pub(crate) struct TestRequest {
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub client_ip: IpAddr,
}

impl TestRequest {
    pub fn get(host: &str, path: &str) -> TestRequest {
        TestRequest {
            method: "GET".into(),
            host: host.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            client_ip: IpAddr::from([192, 0, 2, 1]),
        }
    }

    /// Calls `f` with a view of the request (headers as `httparse` headers).
    pub fn with_view<R>(&self, f: impl FnOnce(&RequestView<'_>) -> R) -> R {
        let headers: Vec<httparse::Header<'_>> = self
            .headers
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        f(&RequestView {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            client_ip: self.client_ip,
        })
    }
}

/// Evaluates `expr` on `req` the slow, obvious way.
pub(crate) fn naive_eval(expr: &Expr, req: &TestRequest) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| naive_eval(e, req)),
        Expr::Or(items) => items.iter().any(|e| naive_eval(e, req)),
        Expr::Not(inner) => !naive_eval(inner, req),
        Expr::Matcher(m) => naive_matcher(m, req),
    }
}

fn naive_matcher(m: &Matcher, req: &TestRequest) -> bool {
    let host = naive_host(&req.host);
    let header_values = |name: &str| -> Vec<&str> {
        req.headers
            .iter()
            .filter(|(n, _)| n.to_lowercase() == name.to_lowercase())
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let query_values = |key: &str| -> Vec<Vec<u8>> {
        naive_query(&req.query)
            .into_iter()
            .filter(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
            .collect()
    };
    let re = |r: &str, ci: bool| {
        RegexBuilder::new(r)
            .case_insensitive(ci)
            .build()
            .expect("test regexes are valid")
    };
    match m {
        Matcher::Host(h) => {
            let mut want = h.to_lowercase();
            if want.starts_with('[') && want.ends_with(']') {
                want = want[1..want.len() - 1].to_string();
            }
            let want = want.strip_suffix('.').unwrap_or(&want);
            !host.is_empty() && host == want
        }
        Matcher::HostRegexp(r) => re(r, true).is_match(&host),
        Matcher::Path(p) => req.path == *p,
        Matcher::PathPrefix(p) => req.path.starts_with(p.as_str()),
        Matcher::PathRegexp(r) => re(r, false).is_match(&req.path),
        Matcher::Method(v) => req.method == v.to_uppercase(),
        Matcher::Header { name, value } => header_values(name).contains(&value.as_str()),
        Matcher::HeaderRegexp { name, regex } => {
            let re = re(regex, false);
            header_values(name).iter().any(|v| re.is_match(v))
        }
        Matcher::Query { key, value } => {
            let want = value.clone().unwrap_or_default().into_bytes();
            query_values(key).contains(&want)
        }
        Matcher::QueryRegexp { key, regex } => {
            let re = regex::bytes::Regex::new(regex).expect("test regexes are valid");
            query_values(key).iter().any(|v| re.is_match(v))
        }
        Matcher::ClientIp(net) => naive_contains(net, req.client_ip),
        Matcher::HostSni(_) | Matcher::HostSniRegexp(_) | Matcher::Alpn(_) => false,
    }
}

/// Host normalization with strings.
pub(crate) fn naive_host(raw: &str) -> String {
    let mut h = raw.to_string();
    if h.starts_with('[') {
        if let Some(end) = h.find(']') {
            if end + 1 == h.len() || h[end + 1..].starts_with(':') {
                h = h[1..end].to_string();
            }
        }
    } else if h.matches(':').count() == 1 {
        h.truncate(h.find(':').unwrap_or(h.len()));
    }
    if h.ends_with('.') {
        h.pop();
    }
    h.to_ascii_lowercase()
}

/// Go's `url.ParseQuery`, on bytes.
fn naive_query(q: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn unescape(s: &str) -> Option<Vec<u8>> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = b.get(i + 1..i + 3)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        Some(out)
    }
    q.split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((unescape(k)?, unescape(v)?))
        })
        .collect()
}

fn naive_contains(net: &IpNet, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    // Compare bit strings.
    let bits = |a: IpAddr| -> Vec<bool> {
        let octets: Vec<u8> = match a {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        octets
            .iter()
            .flat_map(|o| (0..8).rev().map(move |i| o >> i & 1 == 1))
            .collect()
    };
    let (n, a) = (bits(net.addr()), bits(ip));
    n.len() == a.len() && n[..net.prefix() as usize] == a[..net.prefix() as usize]
}

/// Hosts shared by rule and request strategies, so that matches happen.
pub(crate) const HOSTS: &[&str] = &["a.com", "b.com", "A.Com.", "c.org", "::1", "[::1]"];

fn safe_regex() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", "\\.", ".", "[ab]", "c*", "^", "$", "/", "(a|o)",
        ]),
        1..4,
    )
    .prop_map(|parts| parts.concat())
}

fn value(alphabet: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(prop::sample::select(chars), 1..4).prop_map(|c| c.into_iter().collect())
}

fn query_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "a b"]).prop_map(str::to_string)
}

/// Header values for rules and requests alike, quoting-hostile ones included.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["a", "A", "a`b", "\"", "a b", "\\`"]).prop_map(str::to_string),
        value("aAb`\"\\ "),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "/"]), 0..4)
        .prop_map(|parts| format!("/{}", parts.concat()))
}

fn ip_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p)),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p)),
        (prop::sample::select(vec![8u8, 16, 24, 32]))
            .prop_map(|p| IpNet::new(IpAddr::from([10, 0, 0, 1]), p)),
    ]
    .prop_map(|net| net.expect("prefix in range"))
}

/// HTTP matchers over small alphabets (values include backticks, quotes and backslashes to
/// exercise quoting).
pub(crate) fn http_matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        3 => prop::sample::select(HOSTS).prop_map(|h| Matcher::Host(h.to_string())),
        1 => safe_regex().prop_map(Matcher::HostRegexp),
        1 => path().prop_map(Matcher::Path),
        2 => path().prop_map(Matcher::PathPrefix),
        1 => safe_regex().prop_map(Matcher::PathRegexp),
        1 => prop::sample::select(vec!["GET", "POST", "get"]).prop_map(|m| Matcher::Method(m.into())),
        1 => (prop::sample::select(vec!["X-A", "x-b"]), header_value())
            .prop_map(|(n, v)| Matcher::Header { name: n.into(), value: v }),
        1 => (prop::sample::select(vec!["X-A", "x-b"]), safe_regex())
            .prop_map(|(n, r)| Matcher::HeaderRegexp { name: n.into(), regex: r }),
        1 => (query_key(), prop::option::of(prop::sample::select(vec!["x", "x y", "1", "%"])))
            .prop_map(|(key, value)| Matcher::Query { key, value: value.map(str::to_string) }),
        1 => (query_key(), safe_regex()).prop_map(|(key, regex)| Matcher::QueryRegexp { key, regex }),
        1 => ip_net().prop_map(Matcher::ClientIp),
    ]
}

/// Any matcher, TCP ones included (for printing and parsing).
pub(crate) fn any_matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        6 => http_matcher(),
        1 => prop::sample::select(vec!["*", "a.com", "x-1.b.org"]).prop_map(|h| Matcher::HostSni(h.into())),
        1 => safe_regex().prop_map(Matcher::HostSniRegexp),
        1 => value("h2/1.`").prop_map(Matcher::Alpn),
    ]
}

/// Trees of `leaf` with `And`/`Or` of two to four operands and `Not`.
pub(crate) fn expr_tree(leaf: BoxedStrategy<Matcher>) -> impl Strategy<Value = Expr> {
    leaf.prop_map(Expr::Matcher)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
}

/// Requests drawn from the same small alphabets as the rules.
pub(crate) fn request() -> impl Strategy<Value = TestRequest> {
    let host = prop_oneof![
        prop::sample::select(HOSTS).prop_map(str::to_string),
        prop::sample::select(vec!["A.COM:8080", "b.com.", "[::1]:443", "", "d.net"])
            .prop_map(str::to_string),
    ];
    let header = (
        prop::sample::select(vec!["x-a", "X-B", "y"]),
        header_value(),
    )
        .prop_map(|(n, v)| (n.to_string(), v));
    let query = prop::collection::vec(
        (
            prop::sample::select(vec!["a", "a b", "a+b", "%61", "b", "a;", "%6"]),
            prop::option::of(prop::sample::select(vec![
                "x", "x+y", "x%20y", "1", "%zz", "", "%a2", "x;y",
            ])),
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        Just(IpAddr::from([10, 0, 0, 7])),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        any::<[u8; 4]>().prop_map(|a| IpAddr::V6(std::net::Ipv4Addr::from(a).to_ipv6_mapped())),
    ];
    (
        prop::sample::select(vec!["GET", "POST", "get"]),
        host,
        path(),
        query,
        prop::collection::vec(header, 0..3),
        ip,
    )
        .prop_map(
            |(method, host, path, query, headers, client_ip)| TestRequest {
                method: method.into(),
                host,
                path,
                query,
                headers,
                client_ip,
            },
        )
}
