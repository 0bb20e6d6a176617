//! The canonical printed form of rules, which [`super::parse`] reads back to the same tree.

use super::{Expr, Matcher};
use std::fmt::{self, Display, Formatter, Write};

/// Binding strength of the context an expression is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Top,
    Or,
    And,
    Not,
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_expr(self, Prec::Top, f)
    }
}

/// An operand binding no tighter than its context is parenthesized, so a nested `Or` inside
/// an `Or` keeps its parentheses and re-parses as nested.
fn write_expr(e: &Expr, ctx: Prec, f: &mut Formatter<'_>) -> fmt::Result {
    let (items, prec, op) = match e {
        Expr::Matcher(m) => return m.fmt(f),
        Expr::Not(inner) => {
            f.write_char('!')?;
            return write_expr(inner, Prec::Not, f);
        }
        Expr::Or(items) => (items, Prec::Or, " || "),
        Expr::And(items) => (items, Prec::And, " && "),
    };
    if let [only] = items.as_slice() {
        return write_expr(only, ctx, f);
    }
    let paren = ctx >= prec;
    if paren {
        f.write_char('(')?;
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write_expr(item, prec, f)?;
    }
    if paren {
        f.write_char(')')?;
    }
    Ok(())
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        f.write_char('(')?;
        match self {
            Matcher::Host(v)
            | Matcher::HostRegexp(v)
            | Matcher::Path(v)
            | Matcher::PathPrefix(v)
            | Matcher::PathRegexp(v)
            | Matcher::Method(v)
            | Matcher::HostSni(v)
            | Matcher::HostSniRegexp(v)
            | Matcher::Alpn(v) => quote(v, f)?,
            Matcher::Header { name, value: v }
            | Matcher::HeaderRegexp { name, regex: v }
            | Matcher::QueryRegexp {
                key: name,
                regex: v,
            }
            | Matcher::Query {
                key: name,
                value: Some(v),
            } => {
                quote(name, f)?;
                f.write_str(", ")?;
                quote(v, f)?;
            }
            Matcher::Query { key, value: None } => quote(key, f)?,
            Matcher::ClientIp(net) => write!(f, "`{net}`")?,
        }
        f.write_char(')')
    }
}

/// Backticks, or double quotes with escapes when the value holds a backtick.
fn quote(v: &str, f: &mut Formatter<'_>) -> fmt::Result {
    if !v.contains('`') {
        return write!(f, "`{v}`");
    }
    f.write_char('"')?;
    for c in v.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
