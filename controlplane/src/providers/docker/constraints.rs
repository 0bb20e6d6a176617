//! Traefik's `providers.docker.constraints` expressions: `Label(`key`, `value`)`,
//! `LabelRegex(`key`, `regex`)`, `!`, `&&`, `||` and parentheses, matched against a
//! container's labels. A regex matches anywhere in the value (Go's `MatchString`).

use regex::Regex;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub enum Constraint {
    Label(String, String),
    LabelRegex(String, Regex),
    Not(Box<Constraint>),
    And(Box<Constraint>, Box<Constraint>),
    Or(Box<Constraint>, Box<Constraint>),
    /// Matches no container (what an invalid expression falls back to).
    Nothing,
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let c = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(c),
            Some(t) => Err(format!("unexpected {t:?} in constraints {text:?}")),
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Constraint::Label(k, v) => labels.get(k).is_some_and(|x| x == v),
            Constraint::LabelRegex(k, re) => labels.get(k).is_some_and(|x| re.is_match(x)),
            Constraint::Not(c) => !c.matches(labels),
            Constraint::And(a, b) => a.matches(labels) && b.matches(labels),
            Constraint::Or(a, b) => a.matches(labels) || b.matches(labels),
            Constraint::Nothing => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Not,
    And,
    Or,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            '!' => out.push(Token::Not),
            '&' | '|' => {
                if chars.next() != Some(c) {
                    return Err(format!("expected \"{c}{c}\" in constraints {text:?}"));
                }
                out.push(if c == '&' { Token::And } else { Token::Or });
            }
            '`' | '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(d) if d == c => break,
                        Some(d) => s.push(d),
                        None => return Err(format!("unterminated string in constraints {text:?}")),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_alphabetic() => {
                let mut s = String::from(c);
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
                    s.push(d);
                    chars.next();
                }
                out.push(Token::Ident(s));
            }
            c => return Err(format!("unexpected {c:?} in constraints {text:?}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.tokens.get(self.pos) == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Constraint, String> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = Constraint::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Constraint, String> {
        let mut left = self.unary()?;
        while self.eat(&Token::And) {
            left = Constraint::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Constraint, String> {
        match self.next() {
            Some(Token::Not) => Ok(Constraint::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let c = self.or()?;
                self.expect(Token::Close)?;
                Ok(c)
            }
            Some(Token::Ident(name)) => {
                self.expect(Token::Open)?;
                let key = self.string()?;
                self.expect(Token::Comma)?;
                let value = self.string()?;
                self.expect(Token::Close)?;
                match name.as_str() {
                    "Label" => Ok(Constraint::Label(key, value)),
                    "LabelRegex" => Regex::new(&value)
                        .map(|re| Constraint::LabelRegex(key, re))
                        .map_err(|e| format!("invalid regex {value:?}: {e}")),
                    other => Err(format!(
                        "constraint {other:?} is not supported (supported: Label, LabelRegex)"
                    )),
                }
            }
            Some(t) => Err(format!("unexpected {t:?} in constraints")),
            None => Err("constraints end too early".to_string()),
        }
    }

    fn expect(&mut self, t: Token) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => Err(format!("expected {t:?} in constraints, found {got:?}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            got => Err(format!(
                "expected a quoted string in constraints, found {got:?}"
            )),
        }
    }
}
