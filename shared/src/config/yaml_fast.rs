//! A fast path for YAML files: a line-based parser of the block subset that configurations
//! are written in, building the [`Node`] tree directly.
//!
//! `serde_norway` runs a full YAML parser into a `Value`, which [`Node::from_yaml`] then
//! copies: a 10,000-router file takes ~60 ms, ten times its TOML twin. This parser takes block
//! mappings and sequences (sequences also at their key's indentation), one-line plain,
//! single- and double-quoted scalars, one-line flow sequences of scalars, `{}` and comments,
//! and records the document's outline for partial reparses (see [`Ctx`]). It is
//! a fast path, not a second YAML implementation: anything else (anchors and aliases, tags,
//! block and multi-line scalars, flow mappings, merge keys, several documents, tabs, a plain
//! scalar that may not be a string — `1.0`, `0x10`, `True`, `-1`) it declines with `None`,
//! and the caller takes the `serde_norway` path, which also words the errors. A differential
//! test holds it to that path's trees.

use super::reparse::Outline;
use super::toml_fast::NONE;
use crate::config::Node;
use rustc_hash::FxHashSet;

/// Nesting beyond which we decline (the recursion stays shallow whatever the input).
const MAX_DEPTH: usize = 64;

/// Mappings with more entries than this find a repeated key through hashes.
const SCAN_UP_TO: usize = 8;

fn hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// Parses `text` into the tree the `serde_norway` path gives, or `None` if the document uses
/// something this parser leaves to it.
pub(crate) fn parse(text: &str) -> Option<Node> {
    parse_with(text, Ctx::Root, false).map(|(node, _)| node)
}

/// As [`parse`], with the document's [`Outline`] (see [`Ctx`]); `at` is where the text sits
/// in a document (the root, or a section of `http` for a region of one).
pub(crate) fn parse_outlined(text: &str, at: Ctx) -> Option<(Node, Outline)> {
    u32::try_from(text.len()).ok()?;
    let (node, outline) = parse_with(text, at, true)?;
    Some((node, outline?))
}

/// Where the lines being parsed are, for the outline: a YAML file's sections are the blocks
/// of the items of `http.routers`, `http.services` and `http.middlewares` (an item's key line
/// and every line under it), and each line outside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    Root,
    Http,
    /// The items of a section of `http`: 0 routers, 1 services, 2 middlewares.
    Section(u8),
    Item,
    Other,
}

impl Ctx {
    /// Where the value of `key` (at `self`) is.
    fn child(self, key: &str) -> Ctx {
        match (self, key) {
            (Ctx::Root, "http") => Ctx::Http,
            (Ctx::Http, "routers") => Ctx::Section(0),
            (Ctx::Http, "services") => Ctx::Section(1),
            (Ctx::Http, "middlewares") => Ctx::Section(2),
            (Ctx::Section(_) | Ctx::Item, _) => Ctx::Item,
            _ => Ctx::Other,
        }
    }
}

fn parse_with(text: &str, at: Ctx, outlined: bool) -> Option<(Node, Option<Outline>)> {
    if text.bytes().any(|b| b == b'\t' || b == b'\r') || text.starts_with('\u{feff}') {
        return None;
    }
    let mut lines = Vec::new();
    let mut offset = 0;
    for raw in text.split('\n') {
        let start = offset;
        offset += raw.len() + 1;
        let content = raw.trim_start_matches(' ');
        let indent = raw.len() - content.len();
        let content = content.trim_end_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
            // A document start before anything else; nothing else of the kind.
            if content == "---" && lines.is_empty() {
                continue;
            }
            return None;
        }
        if content.starts_with('%') && indent == 0 {
            return None;
        }
        lines.push(Line {
            indent,
            text: content,
            start,
        });
    }
    let outline = outlined.then(Outline::default);
    if lines.is_empty() {
        return Some((Node::empty(), outline));
    }
    let mut parser = Parser {
        lines,
        at: 0,
        depth: 0,
        outline,
    };
    let indent = parser.lines[0].indent;
    if let Some(outline) = &mut parser.outline {
        outline.indent = indent;
    }
    let node = parser.block(indent, at)?;
    // A block ends at the first line not at its indentation; a line left over is one that no
    // block takes (a multi-line scalar, a key out of line with its siblings).
    (parser.at == parser.lines.len()).then_some((node, parser.outline))
}

#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    /// Without the indentation and trailing spaces; never empty, never a comment alone.
    text: &'a str,
    /// Where the line starts in the text.
    start: usize,
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    at: usize,
    depth: usize,
    outline: Option<Outline>,
}

impl<'a> Parser<'a> {
    fn line(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    /// Records the current line in the outline, at `at`.
    fn note(&mut self, at: Ctx) {
        let (Some(outline), Some(line)) = (&mut self.outline, self.lines.get(self.at)) else {
            return;
        };
        let start = line.start as u32;
        // A `- key: value` line is noted as the item, then as the key.
        if at == Ctx::Item || outline.starts.last() == Some(&start) {
            return;
        }
        outline.starts.push(start);
        match at {
            Ctx::Section(section) => {
                outline.items.push(outline.ids);
                outline.ids += 1;
                outline.sections.push(section);
            }
            _ => {
                outline.items.push(NONE);
                outline.sections.push(u8::MAX);
            }
        }
    }

    /// The node whose first line is the current one, at `indent`.
    fn block(&mut self, indent: usize, at: Ctx) -> Option<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let line = self.line()?;
        let node = if is_item(line.text) {
            self.sequence(indent, at)
        } else {
            self.mapping(indent, at)
        };
        self.depth -= 1;
        node
    }

    fn mapping(&mut self, indent: usize, at: Ctx) -> Option<Node> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        // Past a few entries, the keys' hashes find a repeated key.
        let mut hashes: FxHashSet<u64> = FxHashSet::default();
        while let Some(line) = self.line() {
            if line.indent != indent || is_item(line.text) {
                break;
            }
            let (key, rest) = split_key(line.text)?;
            let repeated = if entries.len() < SCAN_UP_TO {
                entries.iter().any(|(k, _)| *k == key)
            } else {
                if hashes.is_empty() {
                    hashes.extend(entries.iter().map(|(k, _)| hash(k)));
                }
                !hashes.insert(hash(&key)) && entries.iter().any(|(k, _)| *k == key)
            };
            if key == "<<" || repeated {
                // A merge key, or a key given twice: `serde_norway` decides.
                return None;
            }
            self.note(at);
            self.at += 1;
            let value = self.value(indent, rest, at.child(&key))?;
            entries.push((key, value));
        }
        Some(Node::Map(entries))
    }

    /// The value of a key at `indent` whose line goes on with `rest`; the value is `at`.
    fn value(&mut self, indent: usize, rest: &'a str, at: Ctx) -> Option<Node> {
        if rest.is_empty() || rest.starts_with('#') {
            return match self.line() {
                Some(next) if next.indent > indent => self.block(next.indent, at),
                // A sequence may sit at its key's indentation.
                Some(next) if next.indent == indent && is_item(next.text) => {
                    self.depth += 1;
                    let node = (self.depth <= MAX_DEPTH).then(|| self.sequence(indent, at));
                    self.depth -= 1;
                    node?
                }
                _ => Some(Node::Leaf(String::new())),
            };
        }
        scalar_or_flow(rest)
    }

    fn sequence(&mut self, indent: usize, at: Ctx) -> Option<Node> {
        if let (Some(outline), Ctx::Section(_)) = (&mut self.outline, at) {
            // Items that are no named items: never reparsed in part.
            outline.loose = true;
        }
        let mut items = Vec::new();
        while let Some(line) = self.line() {
            if line.indent != indent || !is_item(line.text) {
                break;
            }
            self.note(at);
            let after = &line.text[1..];
            let content = after.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                self.at += 1;
                items.push(match self.line() {
                    Some(next) if next.indent > indent => self.block(next.indent, at)?,
                    _ => Node::Leaf(String::new()),
                });
            } else if is_item(content) {
                return None;
            } else if split_key(content).is_some() {
                // `- key: value`: a mapping at the column of its first key.
                let column = indent + 1 + (after.len() - content.len());
                self.lines[self.at] = Line {
                    indent: column,
                    text: content,
                    start: line.start,
                };
                items.push(self.block(column, at)?);
            } else {
                self.at += 1;
                items.push(scalar_or_flow(content)?);
            }
        }
        Some(Node::List(items))
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: rest` (rest without its leading spaces), the key as `serde_norway` gives it.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, after) = match text.as_bytes()[0] {
        b'"' => {
            let (key, after) = double_quoted(text)?;
            (key, after.trim_start_matches(' '))
        }
        b'\'' => {
            let (key, after) = single_quoted(text)?;
            (key, after.trim_start_matches(' '))
        }
        _ => {
            let colon = text
                .match_indices(':')
                .map(|(i, _)| i)
                .find(|&i| matches!(text.as_bytes().get(i + 1), None | Some(b' ')))?;
            let key = text[..colon].trim_end_matches(' ');
            if key.is_empty() || key.contains(" #") {
                return None;
            }
            let Node::Leaf(key) = plain(key)? else {
                return None;
            };
            (key, &text[colon..])
        }
    };
    let rest = after.strip_prefix(':')?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// A value on the rest of a line: a quoted or plain scalar, or a flow sequence of scalars.
fn scalar_or_flow(text: &str) -> Option<Node> {
    match text.as_bytes()[0] {
        b'"' => {
            let (s, after) = double_quoted(text)?;
            line_end(after).then_some(Node::Leaf(s))
        }
        b'\'' => {
            let (s, after) = single_quoted(text)?;
            line_end(after).then_some(Node::Leaf(s))
        }
        b'[' => flow_sequence(text),
        // An empty flow mapping (`tls: {}`); others are left to `serde_norway`.
        b'{' => {
            let after = text[1..].trim_start_matches(' ').strip_prefix('}')?;
            line_end(after).then(Node::empty)
        }
        _ => {
            let value = match text.find(" #") {
                Some(i) => text[..i].trim_end_matches(' '),
                None => text,
            };
            if value.contains(": ") || value.ends_with(':') {
                return None;
            }
            plain(value)
        }
    }
}

/// Whether what follows a quoted scalar ends the line: nothing, or spaces and a comment.
fn line_end(after: &str) -> bool {
    let rest = after.trim_start_matches(' ');
    rest.is_empty() || (rest.starts_with('#') && rest.len() < after.len())
}

/// `[a, "b", 'c']` on one line, of scalars only.
fn flow_sequence(text: &str) -> Option<Node> {
    let mut rest = &text[1..];
    let mut items = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if items.is_empty() {
            if let Some(after) = rest.strip_prefix(']') {
                return line_end(after).then_some(Node::List(items));
            }
        }
        let (item, after) = match rest.as_bytes().first()? {
            b'"' => double_quoted(rest)?,
            b'\'' => single_quoted(rest)?,
            _ => {
                let end = rest.find([',', ']'])?;
                let value = rest[..end].trim_end_matches(' ');
                if value.is_empty() || value.contains([':', '#', '[', '{', '}']) {
                    return None;
                }
                let Node::Leaf(item) = plain(value)? else {
                    return None;
                };
                (item, &rest[end..])
            }
        };
        items.push(Node::Leaf(item));
        rest = after.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(']') {
            return line_end(after).then_some(Node::List(items));
        }
        rest = rest.strip_prefix(',')?;
    }
}

/// A plain scalar, where it is certain to read as what `serde_norway` then prints: a string
/// that can be nothing else, a decimal integer as written, `true`, `false`, or null (empty).
/// (`serde_norway` reads null, booleans, integers in four bases, then whatever Rust parses as
/// a finite `f64`; everything else is a string.)
fn plain(s: &str) -> Option<Node> {
    let first = s.bytes().next()?;
    if matches!(
        first,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b'+'
            | b'.'
    ) {
        return None;
    }
    match s {
        "null" | "~" => return Some(Node::Leaf(String::new())),
        "true" | "false" => return Some(Node::Leaf(s.to_string())),
        _ => {}
    }
    if first.is_ascii_digit() {
        // A decimal integer prints as written; what else reads as a number (a float, a
        // leading zero, another base, beyond 64 bits) is declined; the rest (`10.0.0.1:80`,
        // `12:30`) is a string.
        let digits = s.bytes().all(|b| b.is_ascii_digit());
        if digits && (s == "0" || first != b'0') && s.len() <= 18 {
            return Some(Node::Leaf(s.to_string()));
        }
        if digits
            || s.starts_with(['0']) && s[1..].starts_with(['x', 'o', 'b'])
            || s.parse::<f64>().is_ok()
        {
            return None;
        }
    }
    // Other spellings of null, booleans and numbers.
    const NOT_STRINGS: &[&str] = &["Null", "NULL", "True", "TRUE", "False", "FALSE"];
    if NOT_STRINGS.contains(&s) || s.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    Some(Node::Leaf(s.to_string()))
}

/// `"…"` on one line with the common escapes, and what follows it.
fn double_quoted(text: &str) -> Option<(String, &str)> {
    let body = &text[1..];
    // Without escapes (nearly always): the text as it is.
    if let Some(end) = body.find(['"', '\\']) {
        if body.as_bytes()[end] == b'"' {
            let s = &body[..end];
            return (!s.chars().any(char::is_control)).then(|| (s.to_string(), &body[end + 1..]));
        }
    }
    let mut out = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[1 + i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '\\' => '\\',
                    '"' => '"',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'x' | 'u' | 'U' => {
                        let digits = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..digits {
                            code = code * 16 + chars.next()?.1.to_digit(16)?;
                        }
                        char::from_u32(code)?
                    }
                    _ => return None,
                });
            }
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    None
}

/// `'…'` on one line (`''` is a quote), and what follows it.
fn single_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let body = &text[1..];
    let mut i = 0;
    while let Some(c) = body[i..].chars().next() {
        if c == '\'' {
            if body[i + 1..].starts_with('\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            return Some((out, &body[i + 1..]));
        }
        if c.is_control() {
            return None;
        }
        out.push(c);
        i += c.len_utf8();
    }
    None
}

#[cfg(test)]
mod tests;
