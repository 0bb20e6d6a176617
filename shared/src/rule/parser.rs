//! Recursive-descent parser for rule strings, with Traefik's operators, quoting and names.

use super::compiled::{check_regex, RegexFlavor};
use super::{Expr, IpNet, Matcher, RuleError, RuleProblem};
use std::mem::take;

/// Parentheses and `!` nested deeper than this are rejected (bounds recursion everywhere).
const MAX_DEPTH: usize = 64;

/// Parses a rule string into an [`Expr`], validating every value (regexes compile, IPs parse,
/// paths start with `/`, no value is empty).
pub fn parse(rule: &str) -> Result<Expr, RuleError> {
    let mut p = Parser {
        src: rule,
        b: rule.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.pos == p.b.len() {
        return Err(RuleError::Empty);
    }
    let expr = p.or()?;
    p.skip_ws();
    if p.pos != p.b.len() {
        return Err(p.expected("\"&&\", \"||\" or the end of the rule"));
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

/// A matcher function as named in a rule; several names map to one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Method,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
    ClientIp,
    HostSni,
    HostSniRegexp,
    Alpn,
}

/// Accepted names; the last three are Traefik v2 spellings of the same functions.
const FUNCS: &[(&str, Func)] = &[
    ("Host", Func::Host),
    ("HostRegexp", Func::HostRegexp),
    ("Path", Func::Path),
    ("PathPrefix", Func::PathPrefix),
    ("PathRegexp", Func::PathRegexp),
    ("Method", Func::Method),
    ("Header", Func::Header),
    ("HeaderRegexp", Func::HeaderRegexp),
    ("Query", Func::Query),
    ("QueryRegexp", Func::QueryRegexp),
    ("ClientIP", Func::ClientIp),
    ("HostSNI", Func::HostSni),
    ("HostSNIRegexp", Func::HostSniRegexp),
    ("ALPN", Func::Alpn),
    ("HostHeader", Func::Host),
    ("Headers", Func::Header),
    ("HeadersRegexp", Func::HeaderRegexp),
];

impl Func {
    /// Finds a function by name in one of Traefik's accepted casings: as written
    /// (`PathPrefix`), lower (`pathprefix`), upper (`PATHPREFIX`) or title (`Pathprefix`).
    fn lookup(name: &str) -> Option<Func> {
        FUNCS
            .iter()
            .find(|(canon, _)| casing_matches(name, canon))
            .map(|&(_, f)| f)
    }

    fn name(self) -> &'static str {
        match self {
            Func::Host => "Host",
            Func::HostRegexp => "HostRegexp",
            Func::Path => "Path",
            Func::PathPrefix => "PathPrefix",
            Func::PathRegexp => "PathRegexp",
            Func::Method => "Method",
            Func::Header => "Header",
            Func::HeaderRegexp => "HeaderRegexp",
            Func::Query => "Query",
            Func::QueryRegexp => "QueryRegexp",
            Func::ClientIp => "ClientIP",
            Func::HostSni => "HostSNI",
            Func::HostSniRegexp => "HostSNIRegexp",
            Func::Alpn => "ALPN",
        }
    }

    /// (minimum, maximum, description) of the argument count. Functions that took several
    /// values in Traefik v2 still do: each value is an alternative.
    fn arity(self) -> (usize, usize, &'static str) {
        match self {
            Func::Host
            | Func::Path
            | Func::PathPrefix
            | Func::Method
            | Func::ClientIp
            | Func::HostSni => (1, usize::MAX, "at least 1"),
            Func::HostRegexp | Func::PathRegexp | Func::HostSniRegexp | Func::Alpn => (1, 1, "1"),
            Func::Header | Func::HeaderRegexp => (2, 2, "2"),
            Func::Query | Func::QueryRegexp => (1, 2, "1 or 2"),
        }
    }
}

fn casing_matches(name: &str, canon: &str) -> bool {
    if name == canon {
        return true;
    }
    if !name.eq_ignore_ascii_case(canon) {
        return false;
    }
    let (n, c) = (name.as_bytes(), canon.as_bytes());
    let lower = n.iter().zip(c).all(|(a, b)| *a == b.to_ascii_lowercase());
    let upper = n.iter().zip(c).all(|(a, b)| *a == b.to_ascii_uppercase());
    let title = n.iter().zip(c).enumerate().all(|(i, (a, b))| {
        *a == if i == 0 {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        }
    });
    lower || upper || title
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.b[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn error_at(&self, offset: usize, problem: RuleProblem) -> RuleError {
        RuleError::Parse {
            rule: self.src.to_string(),
            offset,
            problem,
        }
    }

    fn expected(&self, what: &'static str) -> RuleError {
        self.error_at(self.pos, RuleProblem::Expected(what))
    }

    fn enter(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(self.pos, RuleProblem::TooDeep { max: MAX_DEPTH }));
        }
        Ok(())
    }

    /// `or := and ("||" and)*`
    fn or(&mut self) -> Result<Expr, RuleError> {
        let first = self.and()?;
        if !self.eat("||") {
            return Ok(first);
        }
        let mut items = vec![first, self.and()?];
        while self.eat("||") {
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    /// `and := unary ("&&" unary)*`
    fn and(&mut self) -> Result<Expr, RuleError> {
        let first = self.unary()?;
        if !self.eat("&&") {
            return Ok(first);
        }
        let mut items = vec![first, self.unary()?];
        while self.eat("&&") {
            items.push(self.unary()?);
        }
        Ok(Expr::And(items))
    }

    /// `unary := "!" unary | "(" or ")" | call`
    fn unary(&mut self) -> Result<Expr, RuleError> {
        self.skip_ws();
        match self.peek() {
            Some(b'!') => {
                self.pos += 1;
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Some(b'(') => {
                self.pos += 1;
                self.enter()?;
                let inner = self.or()?;
                if !self.eat(")") {
                    return Err(self.expected("\")\""));
                }
                self.depth -= 1;
                Ok(inner)
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.call(),
            _ => Err(self.expected("a matcher, \"!\" or \"(\"")),
        }
    }

    /// `call := name "(" [value ("," value)* [","]] ")"`
    fn call(&mut self) -> Result<Expr, RuleError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        let name = &self.src[start..self.pos];
        let func = Func::lookup(name).ok_or_else(|| {
            self.error_at(
                start,
                RuleProblem::UnknownMatcher {
                    name: name.to_string(),
                },
            )
        })?;
        if !self.eat("(") {
            return Err(self.expected("\"(\""));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if !self.eat(")") {
            loop {
                self.skip_ws();
                let at = self.pos;
                args.push((self.string()?, at));
                if self.eat(",") {
                    if self.eat(")") {
                        break;
                    }
                } else if self.eat(")") {
                    break;
                } else {
                    return Err(self.expected("\",\" or \")\""));
                }
            }
        }
        self.build(func, start, args)
    }

    /// A value in backticks (raw) or double quotes (Go escapes).
    fn string(&mut self) -> Result<String, RuleError> {
        match self.peek() {
            Some(b'`') => {
                let body = self.pos + 1;
                match self.b[body..].iter().position(|&c| c == b'`') {
                    Some(len) => {
                        self.pos = body + len + 1;
                        Ok(self.src[body..body + len].to_string())
                    }
                    None => {
                        self.pos = self.b.len();
                        Err(self.expected("\"`\""))
                    }
                }
            }
            Some(b'"') => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let rest = &self.src[self.pos..];
                    let Some(i) = rest.find(['"', '\\']) else {
                        self.pos = self.b.len();
                        return Err(self.expected("'\"'"));
                    };
                    out.push_str(&rest[..i]);
                    self.pos += i;
                    if self.b[self.pos] == b'"' {
                        self.pos += 1;
                        return Ok(out);
                    }
                    let escaped = match self.b.get(self.pos + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'a') => '\x07',
                        Some(b'b') => '\x08',
                        Some(b'f') => '\x0c',
                        Some(b'v') => '\x0b',
                        _ => {
                            return Err(self
                                .expected("an escape: \\\" \\\\ \\n \\t \\r \\a \\b \\f or \\v"))
                        }
                    };
                    out.push(escaped);
                    self.pos += 2;
                }
            }
            _ => Err(self.expected("a value in backticks or double quotes")),
        }
    }

    /// Checks the argument count and values, and builds the matcher (an `Or` of matchers
    /// for the v2 multi-value forms).
    fn build(
        &self,
        func: Func,
        at: usize,
        mut args: Vec<(String, usize)>,
    ) -> Result<Expr, RuleError> {
        let (min, max, expected) = func.arity();
        if args.len() < min || args.len() > max {
            return Err(self.error_at(
                at,
                RuleProblem::Arity {
                    matcher: func.name(),
                    expected,
                    got: args.len(),
                },
            ));
        }
        for (value, offset) in &args {
            if value.is_empty() {
                return Err(self.value_error(func, *offset, value, "empty value"));
            }
        }
        let matcher = match (func, args.as_mut_slice()) {
            (Func::Header, [(name, _), (value, _)]) => Matcher::Header {
                name: take(name),
                value: take(value),
            },
            (Func::HeaderRegexp, [(name, _), (regex, offset)]) => {
                self.regex(func, RegexFlavor::Bytes, regex, *offset)?;
                Matcher::HeaderRegexp {
                    name: take(name),
                    regex: take(regex),
                }
            }
            // Traefik: QueryRegexp with only a key is Query with only a key.
            (Func::Query | Func::QueryRegexp, [(key, _)]) => Matcher::Query {
                key: take(key),
                value: None,
            },
            (Func::Query, [(key, _), (value, _)]) => Matcher::Query {
                key: take(key),
                value: Some(take(value)),
            },
            (Func::QueryRegexp, [(key, _), (regex, offset)]) => {
                self.regex(func, RegexFlavor::Bytes, regex, *offset)?;
                Matcher::QueryRegexp {
                    key: take(key),
                    regex: take(regex),
                }
            }
            _ => {
                let mut alternatives = Vec::with_capacity(args.len());
                for (value, offset) in args {
                    alternatives.push(Expr::Matcher(self.single(func, value, offset)?));
                }
                return Ok(match <[Expr; 1]>::try_from(alternatives) {
                    Ok([only]) => only,
                    Err(many) => Expr::Or(many),
                });
            }
        };
        Ok(Expr::Matcher(matcher))
    }

    /// Builds a one-value matcher.
    fn single(&self, func: Func, value: String, offset: usize) -> Result<Matcher, RuleError> {
        let err = |reason| Err(self.value_error(func, offset, &value, reason));
        Ok(match func {
            Func::Host | Func::HostRegexp | Func::HostSni | Func::HostSniRegexp
                if !value.is_ascii() =>
            {
                return err("non-ASCII characters are not allowed");
            }
            Func::Host => Matcher::Host(value),
            Func::HostRegexp => {
                self.regex(func, RegexFlavor::Host, &value, offset)?;
                Matcher::HostRegexp(value)
            }
            Func::Path | Func::PathPrefix if !value.starts_with('/') => {
                return err("a path must start with '/'");
            }
            Func::Path => Matcher::Path(value),
            Func::PathPrefix => Matcher::PathPrefix(value),
            Func::PathRegexp => {
                self.regex(func, RegexFlavor::Text, &value, offset)?;
                Matcher::PathRegexp(value)
            }
            Func::Method => Matcher::Method(value),
            Func::ClientIp => match IpNet::parse(&value) {
                Some(net) => Matcher::ClientIp(net),
                None => {
                    return Err(self.error_at(offset, RuleProblem::ClientIp { value }));
                }
            },
            Func::HostSni
                if value != "*"
                    && !value
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':')) =>
            {
                return err("not a valid host name");
            }
            Func::HostSni => Matcher::HostSni(value),
            Func::HostSniRegexp => {
                self.regex(func, RegexFlavor::Host, &value, offset)?;
                Matcher::HostSniRegexp(value)
            }
            Func::Alpn if value == "acme-tls/1" => {
                return err("\"acme-tls/1\" is reserved for ACME challenges");
            }
            Func::Alpn => Matcher::Alpn(value),
            Func::Header | Func::HeaderRegexp | Func::Query | Func::QueryRegexp => {
                return err("internal: not a one-value matcher");
            }
        })
    }

    fn regex(
        &self,
        func: Func,
        flavor: RegexFlavor,
        regex: &str,
        offset: usize,
    ) -> Result<(), RuleError> {
        check_regex(flavor, regex).map_err(|message| {
            self.error_at(
                offset,
                RuleProblem::Regex {
                    matcher: func.name(),
                    regex: regex.to_string(),
                    message,
                },
            )
        })
    }

    fn value_error(
        &self,
        func: Func,
        offset: usize,
        value: &str,
        reason: &'static str,
    ) -> RuleError {
        self.error_at(
            offset,
            RuleProblem::Value {
                matcher: func.name(),
                value: value.to_string(),
                reason,
            },
        )
    }
}
