//! Matching TCP router rules (`HostSNI`, `HostSNIRegexp`, `ALPN`, `ClientIP`) against what a
//! connection shows before any byte is forwarded: the ClientHello's SNI and ALPN, and the
//! peer address. TCP routers are few, so they are tried in order rather than indexed.

use crate::rule::{Expr, Matcher, RuleError, RuleKind};
use regex::Regex;
use std::net::IpAddr;

/// What a TCP router can match on.
#[derive(Debug, Clone, Copy)]
pub struct TcpRequest<'a> {
    /// From the ClientHello; `None` for a plain (non-TLS) connection or no SNI.
    pub sni: Option<&'a str>,
    pub alpn: &'a [&'a str],
    pub client_ip: IpAddr,
}

#[derive(Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// `HostSNI(`*`)`: any connection, TLS or not.
    AnySni,
    Sni(String),
    SniRegexp(Regex),
    Alpn(String),
    ClientIp(crate::rule::IpNet),
}

/// A compiled TCP rule.
#[derive(Debug)]
pub struct TcpRule {
    root: Node,
    catch_all: bool,
}

impl TcpRule {
    pub fn compile(expr: &Expr) -> Result<TcpRule, RuleError> {
        expr.check_kind(RuleKind::Tcp)?;
        let root = compile(expr)?;
        let catch_all = matches!(root, Node::AnySni);
        Ok(TcpRule { root, catch_all })
    }

    /// Exactly `HostSNI(`*`)`: matches before the client has sent anything.
    pub fn is_catch_all(&self) -> bool {
        self.catch_all
    }

    /// Whether the rule needs no TLS ClientHello: every `HostSNI` in it is `*` (a plain TCP
    /// router can only match on `*` and `ClientIP`).
    pub fn matches(&self, req: &TcpRequest<'_>) -> bool {
        eval(&self.root, req)
    }
}

fn compile(expr: &Expr) -> Result<Node, RuleError> {
    Ok(match expr {
        Expr::And(v) => Node::And(v.iter().map(compile).collect::<Result<_, _>>()?),
        Expr::Or(v) => Node::Or(v.iter().map(compile).collect::<Result<_, _>>()?),
        Expr::Not(e) => Node::Not(Box::new(compile(e)?)),
        Expr::Matcher(m) => match m {
            Matcher::HostSni(h) if h == "*" => Node::AnySni,
            Matcher::HostSni(h) => Node::Sni(h.trim_end_matches('.').to_ascii_lowercase()),
            Matcher::HostSniRegexp(r) => {
                Node::SniRegexp(Regex::new(&format!("(?i){r}")).map_err(|e| {
                    RuleError::Matcher {
                        matcher: "HostSNIRegexp".into(),
                        problem: crate::rule::RuleProblem::Regex {
                            matcher: "HostSNIRegexp",
                            regex: r.clone(),
                            message: e.to_string(),
                        },
                    }
                })?)
            }
            Matcher::Alpn(a) => Node::Alpn(a.clone()),
            Matcher::ClientIp(net) => Node::ClientIp(*net),
            other => {
                return Err(RuleError::WrongKind {
                    matcher: other.name(),
                    kind: RuleKind::Tcp,
                })
            }
        },
    })
}

fn eval(n: &Node, req: &TcpRequest<'_>) -> bool {
    match n {
        Node::And(v) => v.iter().all(|n| eval(n, req)),
        Node::Or(v) => v.iter().any(|n| eval(n, req)),
        Node::Not(n) => !eval(n, req),
        Node::AnySni => true,
        Node::Sni(h) => req
            .sni
            .is_some_and(|s| s.trim_end_matches('.').eq_ignore_ascii_case(h)),
        Node::SniRegexp(r) => req.sni.is_some_and(|s| r.is_match(s.trim_end_matches('.'))),
        Node::Alpn(a) => req.alpn.iter().any(|p| p == a),
        Node::ClientIp(net) => net.contains(req.client_ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::parse;

    fn rule(s: &str) -> TcpRule {
        TcpRule::compile(&parse(s).expect("parses")).expect("compiles")
    }

    fn req<'a>(sni: Option<&'a str>, alpn: &'a [&'a str], ip: &str) -> TcpRequest<'a> {
        TcpRequest {
            sni,
            alpn,
            client_ip: ip.parse().expect("ip"),
        }
    }

    #[test]
    fn matchers() {
        assert!(rule("HostSNI(`*`)").is_catch_all());
        assert!(rule("HostSNI(`*`)").matches(&req(None, &[], "10.0.0.1")));
        let r = rule("HostSNI(`db.example.com`)");
        assert!(r.matches(&req(Some("DB.example.com."), &[], "10.0.0.1")));
        assert!(!r.matches(&req(None, &[], "10.0.0.1")));
        assert!(!r.is_catch_all());
        let r = rule("HostSNIRegexp(`^.+\\.example\\.com$`) && ALPN(`h2`)");
        assert!(r.matches(&req(Some("a.example.com"), &["http/1.1", "h2"], "10.0.0.1")));
        assert!(!r.matches(&req(Some("a.example.com"), &["http/1.1"], "10.0.0.1")));
        let r = rule("HostSNI(`*`) && ClientIP(`10.0.0.0/8`)");
        assert!(r.matches(&req(None, &[], "10.1.2.3")));
        assert!(!r.matches(&req(None, &[], "192.0.2.1")));
        assert!(TcpRule::compile(&parse("Host(`a`)").expect("parses")).is_err());
    }
}
