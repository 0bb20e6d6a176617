//! Rules compiled for matching: regexes built once, values pre-normalized, no allocation per
//! match in the common case.

use super::query;
use super::{
    normalize_host, normalize_rule_host, Expr, IpNet, Matcher, RequestView, RuleError, RuleKind,
    RuleProblem,
};
use regex::bytes::Regex as BytesRegex;
use regex::{Regex, RegexBuilder};

/// How a rule regex is compiled.
#[derive(Debug, Clone, Copy)]
pub(super) enum RegexFlavor {
    /// Matched against the normalized (lowercase) host: case-insensitive.
    Host,
    /// Matched against the path.
    Text,
    /// Matched against header and query values, which may not be UTF-8.
    Bytes,
}

/// An HTTP rule ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    root: Node,
    /// Whether any matcher reads the host, so [`CompiledRule::matches`] normalizes it.
    uses_host: bool,
}

#[derive(Debug, Clone)]
enum Node {
    /// All must match (true when empty).
    And(Box<[Node]>),
    /// One must match (false when empty).
    Or(Box<[Node]>),
    Not(Box<Node>),
    /// Normalized as by `normalize_rule_host`.
    Host(Box<str>),
    HostRegexp(Regex),
    Path(Box<str>),
    PathPrefix(Box<str>),
    PathRegexp(Regex),
    /// Uppercased, as Traefik does.
    Method(Box<str>),
    Header {
        name: Box<str>,
        value: Box<[u8]>,
    },
    HeaderRegexp {
        name: Box<str>,
        regex: BytesRegex,
    },
    /// `value` is `""` for `Query(key)`.
    Query {
        key: Box<str>,
        value: Box<str>,
    },
    QueryRegexp {
        key: Box<str>,
        regex: BytesRegex,
    },
    ClientIp(IpNet),
}

impl CompiledRule {
    /// Compiles an HTTP rule; errors on TCP matchers and on invalid regexes (which only a
    /// hand-built `Expr` can hold).
    pub fn new(expr: &Expr) -> Result<CompiledRule, RuleError> {
        expr.check_kind(RuleKind::Http)?;
        let mut uses_host = false;
        let root = compile(expr, &mut uses_host)?;
        Ok(CompiledRule { root, uses_host })
    }

    /// Whether the request matches.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        if self.uses_host {
            let mut buf = [0u8; 256];
            let host = normalize_host(req.host, &mut buf);
            self.root.eval(req, host)
        } else {
            self.root.eval(req, None)
        }
    }

    /// Like [`CompiledRule::matches`], with the host already normalized by
    /// [`normalize_host`] (`None` if it did not fit).
    pub fn matches_normalized(&self, req: &RequestView<'_>, host: Option<&str>) -> bool {
        self.root.eval(req, host)
    }

    /// Approximate heap bytes held (regex internals counted roughly).
    pub fn heap_bytes(&self) -> usize {
        self.root.heap_bytes()
    }
}

fn compile(expr: &Expr, uses_host: &mut bool) -> Result<Node, RuleError> {
    let all = |items: &[Expr], uses_host: &mut bool| {
        items
            .iter()
            .map(|e| compile(e, uses_host))
            .collect::<Result<Box<[Node]>, _>>()
    };
    Ok(match expr {
        Expr::And(items) => Node::And(all(items, uses_host)?),
        Expr::Or(items) => Node::Or(all(items, uses_host)?),
        Expr::Not(inner) => Node::Not(Box::new(compile(inner, uses_host)?)),
        Expr::Matcher(m) => {
            let fail = |problem| RuleError::Matcher {
                matcher: Expr::Matcher(m.clone()).to_string(),
                problem,
            };
            let text = |flavor, regex: &str| {
                compile_text(flavor, regex).map_err(|e| fail(regex_problem(m.name(), regex, &e)))
            };
            let bytes = |regex: &str| {
                compile_bytes(regex).map_err(|e| fail(regex_problem(m.name(), regex, &e)))
            };
            match m {
                Matcher::Host(h) => {
                    *uses_host = true;
                    Node::Host(normalize_rule_host(h))
                }
                Matcher::HostRegexp(r) => {
                    *uses_host = true;
                    Node::HostRegexp(text(RegexFlavor::Host, r)?)
                }
                Matcher::Path(p) => Node::Path(p.as_str().into()),
                Matcher::PathPrefix(p) => Node::PathPrefix(p.as_str().into()),
                Matcher::PathRegexp(r) => Node::PathRegexp(text(RegexFlavor::Text, r)?),
                Matcher::Method(v) => Node::Method(v.to_ascii_uppercase().into()),
                Matcher::Header { name, value } => Node::Header {
                    name: name.as_str().into(),
                    value: value.as_bytes().into(),
                },
                Matcher::HeaderRegexp { name, regex } => Node::HeaderRegexp {
                    name: name.as_str().into(),
                    regex: bytes(regex)?,
                },
                Matcher::Query { key, value } => Node::Query {
                    key: key.as_str().into(),
                    value: value.as_deref().unwrap_or("").into(),
                },
                Matcher::QueryRegexp { key, regex } => Node::QueryRegexp {
                    key: key.as_str().into(),
                    regex: bytes(regex)?,
                },
                Matcher::ClientIp(net) => Node::ClientIp(*net),
                Matcher::HostSni(_) | Matcher::HostSniRegexp(_) | Matcher::Alpn(_) => {
                    return Err(RuleError::WrongKind {
                        matcher: m.name(),
                        kind: RuleKind::Http,
                    });
                }
            }
        }
    })
}

impl Node {
    fn eval(&self, req: &RequestView<'_>, host: Option<&str>) -> bool {
        match self {
            Node::And(items) => items.iter().all(|n| n.eval(req, host)),
            Node::Or(items) => items.iter().any(|n| n.eval(req, host)),
            Node::Not(inner) => !inner.eval(req, host),
            Node::Host(want) => host.is_some_and(|h| !h.is_empty() && h == &**want),
            Node::HostRegexp(re) => host.is_some_and(|h| re.is_match(h)),
            Node::Path(p) => req.path == &**p,
            Node::PathPrefix(p) => req.path.starts_with(&**p),
            Node::PathRegexp(re) => re.is_match(req.path),
            Node::Method(m) => req.method == &**m,
            Node::Header { name, value } => req.headers.any_value(name, &mut |v| v == &**value),
            Node::HeaderRegexp { name, regex } => {
                req.headers.any_value(name, &mut |v| regex.is_match(v))
            }
            Node::Query { key, value } => {
                query::any_value(req.query, key, &mut |v| v == value.as_bytes())
            }
            Node::QueryRegexp { key, regex } => {
                query::any_value(req.query, key, &mut |v| regex.is_match(v))
            }
            Node::ClientIp(net) => net.contains(req.client_ip),
        }
    }

    fn heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<Node>();
        match self {
            Node::And(items) | Node::Or(items) => {
                items.iter().map(|n| node + n.heap_bytes()).sum::<usize>()
            }
            Node::Not(inner) => node + inner.heap_bytes(),
            Node::Host(s) | Node::Path(s) | Node::PathPrefix(s) | Node::Method(s) => s.len(),
            Node::HostRegexp(re) | Node::PathRegexp(re) => regex_bytes(re.as_str()),
            Node::Header { name, value } => name.len() + value.len(),
            Node::HeaderRegexp { name, regex } | Node::QueryRegexp { key: name, regex } => {
                name.len() + regex_bytes(regex.as_str())
            }
            Node::Query { key, value } => key.len() + value.len(),
            Node::ClientIp(_) => 0,
        }
    }
}

/// A rough guess of a compiled regex's heap size, for reporting only.
fn regex_bytes(source: &str) -> usize {
    2048 + 64 * source.len()
}

pub(super) fn compile_text(flavor: RegexFlavor, regex: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(regex)
        .case_insensitive(matches!(flavor, RegexFlavor::Host))
        .build()
}

pub(super) fn compile_bytes(regex: &str) -> Result<BytesRegex, regex::Error> {
    BytesRegex::new(regex)
}

/// Compiles a regex as the matcher would, to validate it; the error is one line.
pub(super) fn check_regex(flavor: RegexFlavor, regex: &str) -> Result<(), String> {
    let result = match flavor {
        RegexFlavor::Host | RegexFlavor::Text => compile_text(flavor, regex).map(drop),
        RegexFlavor::Bytes => compile_bytes(regex).map(drop),
    };
    result.map_err(|e| regex_message(&e))
}

fn regex_problem(matcher: &'static str, regex: &str, e: &regex::Error) -> RuleProblem {
    RuleProblem::Regex {
        matcher,
        regex: regex.to_string(),
        message: regex_message(e),
    }
}

/// The `error: …` line of the regex crate's multi-line syntax errors.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string()
}
