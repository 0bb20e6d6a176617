//! The few Go-template forms of Traefik's `providers.docker.defaultRule` that real setups use:
//! `{{ .Name }}`, `{{ normalize .Name }}`, `{{ .ContainerName }}`,
//! `{{ normalize .ContainerName }}` and `{{ index .Labels "key" }}`. Anything else is refused
//! with a message when the provider starts, never guessed at.

use std::collections::BTreeMap;

/// A parsed `defaultRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value { field: Field, normalize: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// `.Name`: the service name (compose-aware, normalized).
    Name,
    /// `.ContainerName`: the container's name without its leading `/`.
    ContainerName,
    /// `index .Labels "key"`: a label's value, empty when absent (as Go's `index`).
    Label(String),
}

/// What a template is evaluated against.
pub struct TemplateModel<'a> {
    pub name: &'a str,
    pub container_name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

const SUPPORTED: &str = "{{ .Name }}, {{ normalize .Name }}, {{ .ContainerName }}, \
                         {{ normalize .ContainerName }}, {{ index .Labels \"key\" }}";

impl RuleTemplate {
    pub fn parse(template: &str) -> Result<RuleTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed \"{{{{\" in template {template:?}"))?;
            let action = after[..end].trim_start_matches('-').trim_end_matches('-');
            pieces.push(parse_action(action.trim()).ok_or_else(|| {
                format!(
                    "template action {:?} is not supported (supported: {SUPPORTED})",
                    &rest[start..start + 2 + end + 2]
                )
            })?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(RuleTemplate { pieces })
    }

    pub fn render(&self, model: &TemplateModel<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value { field, normalize } => {
                    let value = match field {
                        Field::Name => model.name,
                        Field::ContainerName => model.container_name,
                        Field::Label(key) => model.labels.get(key).map_or("", String::as_str),
                    };
                    if *normalize {
                        out.push_str(&super::normalize(value));
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

fn parse_action(action: &str) -> Option<Piece> {
    let words = split_words(action)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (normalize, rest) = match words.split_first() {
        Some((&"normalize", rest)) => (true, rest),
        _ => (false, &words[..]),
    };
    let field = match rest {
        [".Name"] => Field::Name,
        [".ContainerName"] => Field::ContainerName,
        ["index", ".Labels", key] => Field::Label(unquote(key)?),
        _ => return None,
    };
    Some(Piece::Value { field, normalize })
}

/// Splits on whitespace, keeping quoted strings (with their quotes) as one word.
fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' || c == '`' {
            word.push(c);
            chars.next();
            loop {
                let d = chars.next()?;
                word.push(d);
                if d == c {
                    break;
                }
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
        }
        words.push(word);
    }
    Some(words)
}

fn unquote(s: &str) -> Option<String> {
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| s.strip_prefix('`').and_then(|r| r.strip_suffix('`')))?;
    Some(inner.to_string())
}
