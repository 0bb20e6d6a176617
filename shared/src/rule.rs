//! The Traefik v3 rule language: rule strings parsed into [`Expr`] trees, printed back in a
//! canonical form, and compiled into [`CompiledRule`] matchers over a [`RequestView`].
//!
//! `parse` accepts Traefik's grammar (`&&`, `||`, `!`, parentheses, values in backticks or
//! double quotes, matcher names in Traefik's four accepted casings) and the v2 multi-value
//! forms (`Host(`a`, `b`)` is `Host(`a`) || Host(`b`)`). Matching follows Traefik v3's
//! `pkg/muxer/http/matcher.go`; the deviations are documented on [`Matcher`].

use std::fmt;
use std::net::IpAddr;

mod compiled;
mod ip;
mod parser;
mod print;
mod query;

pub use compiled::CompiledRule;
pub use ip::IpNet;
pub use parser::parse;

/// A parsed rule.
///
/// `And` and `Or` hold at least two operands; the parser flattens chains of the same operator
/// (`a && b && c` is one `And` of three), but not across parentheses, so printing and
/// re-parsing any well-formed tree gives the same tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Matcher(Matcher),
}

/// One matcher call, with its values as written (validated by [`parse`]).
///
/// Semantics, as in Traefik v3 unless noted:
/// - `Host`: the request host (port stripped, ASCII lowercase, one trailing dot ignored on
///   either side, IPv6 brackets ignored) equals the value.
/// - `HostRegexp`: the regex matches the normalized host, case-insensitively. Unanchored like
///   Traefik v3 (write `^…$` to match the whole host).
/// - `Path` / `PathPrefix` / `PathRegexp`: equality, plain prefix, unanchored regex on
///   [`RequestView::path`].
/// - `Method`: the value, uppercased, equals the request method (case-sensitive).
/// - `Header` / `HeaderRegexp`: some value of the header (name case-insensitive) equals or
///   matches.
/// - `Query`: some value of `key` (query parsed like Go's `url.ParseQuery`) equals `value`;
///   without a value, like Traefik, the key must be present with an empty value (`?key` or
///   `?key=`).
/// - `ClientIp`: the peer address is in the network (IPv4-mapped IPv6 peers match IPv4
///   networks).
/// - `HostSni`, `HostSniRegexp`, `Alpn`: TCP matchers, parsed and kind-checked only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Host(String),
    HostRegexp(String),
    Path(String),
    PathPrefix(String),
    PathRegexp(String),
    Method(String),
    Header { name: String, value: String },
    HeaderRegexp { name: String, regex: String },
    Query { key: String, value: Option<String> },
    QueryRegexp { key: String, regex: String },
    ClientIp(IpNet),
    HostSni(String),
    HostSniRegexp(String),
    Alpn(String),
}

/// Which router family a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Http,
    Tcp,
}

/// Why a rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("empty rule")]
    Empty,
    /// A syntax or value error, at a byte offset of the rule (shown as a 1-based column).
    #[error("rule {rule:?} at column {}: {problem}", .offset + 1)]
    Parse {
        rule: String,
        offset: usize,
        problem: RuleProblem,
    },
    /// A matcher of a hand-built [`Expr`] failed to compile.
    #[error("matcher {matcher}: {problem}")]
    Matcher {
        matcher: String,
        problem: RuleProblem,
    },
    #[error("{matcher} is not allowed in {kind} rules")]
    WrongKind {
        matcher: &'static str,
        kind: RuleKind,
    },
}

/// What is wrong at the position a [`RuleError::Parse`] points to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("expected {0}")]
    Expected(&'static str),
    #[error("unknown matcher {name:?}")]
    UnknownMatcher { name: String },
    #[error("{matcher} takes {expected} argument(s), got {got}")]
    Arity {
        matcher: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("invalid regex {regex:?} in {matcher}: {message}")]
    Regex {
        matcher: &'static str,
        regex: String,
        message: String,
    },
    #[error("invalid IP address or CIDR {value:?} in ClientIP")]
    ClientIp { value: String },
    #[error("invalid value {value:?} for {matcher}: {reason}")]
    Value {
        matcher: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("nested deeper than {max} levels")]
    TooDeep { max: usize },
}

/// What a rule sees of an HTTP request. The data plane builds it from the parsed head.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Raw Host value: any case, may carry `:port` and a trailing dot; `""` if none.
    pub host: &'a str,
    /// The routing path, without the query. Traefik matches the path with percent-escapes of
    /// unreserved characters decoded and reserved ones (`%2F`, `%25`, ...) kept; the data
    /// plane passes that form.
    pub path: &'a str,
    /// Raw query without `?`, `""` if none.
    pub query: &'a str,
    pub headers: &'a dyn HeaderSource,
    pub client_ip: IpAddr,
}

/// Access to request headers for `Header` and `HeaderRegexp`.
pub trait HeaderSource {
    /// Calls `f` with each value of header `name` (ASCII case-insensitive) until `f` returns
    /// true; returns whether it did.
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl HeaderSource for [httparse::Header<'_>] {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .any(|h| f(h.value))
    }
}

/// A slice reference is sized, so `&&headers[..]` coerces to `&dyn HeaderSource`.
impl HeaderSource for &[httparse::Header<'_>] {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        (**self).any_value(name, f)
    }
}

impl<const N: usize> HeaderSource for [httparse::Header<'_>; N] {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self[..].any_value(name, f)
    }
}

impl HeaderSource for Vec<httparse::Header<'_>> {
    fn any_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self[..].any_value(name, f)
    }
}

impl Expr {
    /// Errors if the rule uses a matcher of the other router family (e.g. `HostSNI` in an
    /// HTTP rule). `ClientIP` belongs to both.
    pub fn check_kind(&self, kind: RuleKind) -> Result<(), RuleError> {
        let mut wrong = None;
        self.for_each_matcher(&mut |m| {
            if wrong.is_none() && m.kind().is_some_and(|k| k != kind) {
                wrong = Some(m.name());
            }
        });
        match wrong {
            Some(matcher) => Err(RuleError::WrongKind { matcher, kind }),
            None => Ok(()),
        }
    }

    /// Calls `f` on every matcher of the tree, left to right.
    pub fn for_each_matcher(&self, f: &mut dyn FnMut(&Matcher)) {
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.for_each_matcher(f)),
            Expr::Not(inner) => inner.for_each_matcher(f),
            Expr::Matcher(m) => f(m),
        }
    }
}

impl Matcher {
    /// The canonical Traefik name, as printed.
    pub fn name(&self) -> &'static str {
        match self {
            Matcher::Host(_) => "Host",
            Matcher::HostRegexp(_) => "HostRegexp",
            Matcher::Path(_) => "Path",
            Matcher::PathPrefix(_) => "PathPrefix",
            Matcher::PathRegexp(_) => "PathRegexp",
            Matcher::Method(_) => "Method",
            Matcher::Header { .. } => "Header",
            Matcher::HeaderRegexp { .. } => "HeaderRegexp",
            Matcher::Query { .. } => "Query",
            Matcher::QueryRegexp { .. } => "QueryRegexp",
            Matcher::ClientIp(_) => "ClientIP",
            Matcher::HostSni(_) => "HostSNI",
            Matcher::HostSniRegexp(_) => "HostSNIRegexp",
            Matcher::Alpn(_) => "ALPN",
        }
    }

    /// The router family this matcher belongs to; `None` for both (`ClientIP`).
    pub fn kind(&self) -> Option<RuleKind> {
        match self {
            Matcher::ClientIp(_) => None,
            Matcher::HostSni(_) | Matcher::HostSniRegexp(_) | Matcher::Alpn(_) => {
                Some(RuleKind::Tcp)
            }
            _ => Some(RuleKind::Http),
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleKind::Http => "HTTP",
            RuleKind::Tcp => "TCP",
        })
    }
}

/// Normalizes a raw Host value for matching: port stripped (also after a bracketed IPv6
/// literal, whose brackets are dropped), one trailing dot stripped, ASCII lowercase.
/// Returns `None` when the result does not fit in `out`.
pub fn normalize_host<'b>(raw: &str, out: &'b mut [u8; 256]) -> Option<&'b str> {
    let b = raw.as_bytes();
    let host = match b.first() {
        Some(b'[') => match b.iter().position(|&c| c == b']') {
            Some(end) if end + 1 == b.len() || b[end + 1] == b':' => &b[1..end],
            _ => b,
        },
        _ => match b.iter().position(|&c| c == b':') {
            // Exactly one colon: host:port. More than one is an unbracketed IPv6 literal.
            Some(i) if !b[i + 1..].contains(&b':') => &b[..i],
            _ => b,
        },
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    let dst = out.get_mut(..host.len())?;
    for (d, s) in dst.iter_mut().zip(host) {
        *d = s.to_ascii_lowercase();
    }
    // Only ASCII bytes were cut or changed, so this is still UTF-8.
    std::str::from_utf8(dst).ok()
}

/// Normalizes a `Host` rule value the way [`normalize_host`] normalizes request hosts, except
/// that a port is kept (a rule host with a port never matches, as in Traefik).
pub(crate) fn normalize_rule_host(value: &str) -> Box<str> {
    let v = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let v = v.strip_suffix('.').unwrap_or(v);
    v.to_ascii_lowercase().into_boxed_str()
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
