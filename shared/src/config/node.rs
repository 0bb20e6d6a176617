//! A source-independent configuration tree, as Traefik's paerser builds from flags, files,
//! labels and KV keys, and its case-insensitive serde deserializer ([`from_node`]).

mod de;
#[cfg(test)]
mod tests;

pub use de::{from_node, from_node_at, NodeDeserializer, Path as NodePath};

use std::fmt;

/// One configuration tree. Leaves are strings whatever the source (TOML and YAML numbers and
/// booleans are printed); the deserializer converts them to what the target type wants.
/// Map keys keep their original case; struct fields match them case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// An error decoding a [`Node`], with the dotted key path where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NodeError {
    /// `entryPoints.web.transport.respondingTimeouts.readTimeout`, or empty for the root.
    pub path: String,
    pub kind: NodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeErrorKind {
    #[error("unknown key {key:?} (valid keys: {valid})")]
    UnknownKey { key: String, valid: String },
    #[error("key given twice (as {first:?} and {second:?})")]
    DuplicateKey { first: String, second: String },
    #[error("invalid {expected} {value:?}")]
    InvalidValue {
        expected: &'static str,
        value: String,
    },
    #[error("invalid value {value:?} (valid: {valid})")]
    UnknownVariant { value: String, valid: String },
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("{key:?} is set both to a value and to a section")]
    Conflict { key: String },
    #[error("invalid key path {path:?}")]
    BadPath { path: String },
    #[error("{0}")]
    Custom(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

impl NodeError {
    pub fn new(path: impl Into<String>, kind: NodeErrorKind) -> NodeError {
        NodeError {
            path: path.into(),
            kind,
        }
    }
}

impl Node {
    /// An empty section.
    pub fn empty() -> Node {
        Node::Map(Vec::new())
    }

    /// A leaf that only says "present": `--providers.file`, YAML `api:` with no value.
    pub fn is_presence_marker(&self) -> bool {
        matches!(self, Node::Leaf(s) if s.is_empty() || s.eq_ignore_ascii_case("true"))
    }

    /// A short name of the node's shape, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Leaf(_) => "a value",
            Node::List(_) => "a list",
            Node::Map(_) => "a section",
        }
    }

    /// The child whose key matches `key` ASCII-case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The map entries, treating a presence marker as an empty map; `None` for other shapes.
    pub fn entries(&self) -> Option<&[(String, Node)]> {
        match self {
            Node::Map(entries) => Some(entries),
            n if n.is_presence_marker() => Some(&[]),
            _ => None,
        }
    }

    /// Converts a parsed TOML document.
    pub fn from_toml(value: &toml::Value) -> Node {
        match value {
            toml::Value::String(s) => Node::Leaf(s.clone()),
            toml::Value::Integer(i) => Node::Leaf(i.to_string()),
            toml::Value::Float(f) => Node::Leaf(f.to_string()),
            toml::Value::Boolean(b) => Node::Leaf(b.to_string()),
            toml::Value::Datetime(d) => Node::Leaf(d.to_string()),
            toml::Value::Array(a) => Node::List(a.iter().map(Node::from_toml).collect()),
            toml::Value::Table(t) => Node::Map(
                t.iter()
                    .map(|(k, v)| (k.clone(), Node::from_toml(v)))
                    .collect(),
            ),
        }
    }

    /// Converts the parser's borrowed tree, leaves printed as [`Node::from_toml`] prints
    /// them; `None` where a value is not valid TOML after all (an integer beyond 64 bits, a
    /// float that overflows), so that the caller reports it.
    pub fn from_toml_table(table: &toml::de::DeTable<'_>) -> Option<Node> {
        let mut entries = Vec::with_capacity(table.len());
        for (k, v) in table {
            entries.push((k.get_ref().to_string(), Node::from_toml_value(v.get_ref())?));
        }
        Some(Node::Map(entries))
    }

    fn from_toml_value(value: &toml::de::DeValue<'_>) -> Option<Node> {
        use toml::de::DeValue;
        Some(match value {
            DeValue::String(s) => Node::Leaf(s.to_string()),
            DeValue::Integer(i) => {
                Node::Leaf(i64::from_str_radix(i.as_str(), i.radix()).ok()?.to_string())
            }
            DeValue::Float(f) => {
                let v: f64 = f.as_str().parse().ok()?;
                if v.is_infinite() && !f.as_str().contains("inf") {
                    return None;
                }
                Node::Leaf(v.to_string())
            }
            DeValue::Boolean(b) => Node::Leaf(b.to_string()),
            DeValue::Datetime(d) => Node::Leaf(d.to_string()),
            DeValue::Array(a) => Node::List(
                a.iter()
                    .map(|v| Node::from_toml_value(v.get_ref()))
                    .collect::<Option<_>>()?,
            ),
            DeValue::Table(t) => Node::from_toml_table(t)?,
        })
    }

    /// Converts a parsed YAML document (merge keys `<<` must already be applied). A YAML
    /// null becomes an empty leaf: "present, with defaults" where a section is expected.
    pub fn from_yaml(value: &serde_norway::Value) -> Node {
        use serde_norway::Value;
        match value {
            Value::Null => Node::Leaf(String::new()),
            Value::Bool(b) => Node::Leaf(b.to_string()),
            Value::Number(n) => Node::Leaf(n.to_string()),
            Value::String(s) => Node::Leaf(s.clone()),
            Value::Sequence(seq) => Node::List(seq.iter().map(Node::from_yaml).collect()),
            Value::Mapping(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (yaml_key(k), Node::from_yaml(v)))
                    .collect(),
            ),
            Value::Tagged(tagged) => Node::from_yaml(&tagged.value),
        }
    }

    /// Builds a tree from flat `(path, value)` pairs: flags (`entrypoints.web.address`,
    /// `:80`), labels, KV keys. Path segments are separated by dots; `servers[0].url` is the
    /// same as `servers.0.url` (numeric segments become list items where a list is expected,
    /// and a comma-separated leaf becomes a list there too). Segments match existing keys
    /// case-insensitively, the first spelling is kept. A later value for the same path wins;
    /// a presence marker (`true` or empty) on a path that also has children is absorbed.
    pub fn from_flat<I, K, V>(pairs: I) -> Result<Node, NodeError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut root = Node::empty();
        for (path, value) in pairs {
            let path = path.as_ref();
            let segments = split_path(path)?;
            root.insert(&segments, value.into(), path)?;
        }
        Ok(root)
    }

    fn insert(&mut self, segments: &[String], value: String, full: &str) -> Result<(), NodeError> {
        let Some((first, rest)) = segments.split_first() else {
            let new = Node::Leaf(value);
            match self {
                Node::Map(entries) if !entries.is_empty() => {
                    if new.is_presence_marker() {
                        return Ok(());
                    }
                    return Err(NodeError::new(
                        full,
                        NodeErrorKind::Conflict {
                            key: full.to_string(),
                        },
                    ));
                }
                _ => *self = new,
            }
            return Ok(());
        };
        if self.is_presence_marker() || matches!(self, Node::List(_)) {
            *self = Node::empty();
        }
        let Node::Map(entries) = self else {
            return Err(NodeError::new(
                full,
                NodeErrorKind::Conflict {
                    key: full.to_string(),
                },
            ));
        };
        let idx = match entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(first))
        {
            Some(i) => i,
            None => {
                entries.push((first.clone(), Node::empty()));
                entries.len() - 1
            }
        };
        entries[idx].1.insert(rest, value, full)
    }

    /// Overlays `other` on `self`: maps merge key by key (case-insensitively), anything else
    /// in `other` replaces what `self` had, except a presence marker over a section.
    pub fn merge(&mut self, other: Node) {
        match (self, other) {
            (Node::Map(base), Node::Map(over)) => {
                for (k, v) in over {
                    match base.iter_mut().find(|(bk, _)| bk.eq_ignore_ascii_case(&k)) {
                        Some((_, existing)) => existing.merge(v),
                        None => base.push((k, v)),
                    }
                }
            }
            (Node::Map(_), over) if over.is_presence_marker() => {}
            (this, over) => *this = over,
        }
    }

    /// Splits the tree into one single-path tree per leaf (lists and empty sections count as
    /// leaves), with the dotted path of each: decoding each alone reports every bad key of a
    /// source instead of stopping at the first.
    pub fn split_leaves(&self) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        split_into(self, "", &mut |path, leaf| out.push((path, leaf)));
        out
    }
}

fn split_into(node: &Node, path: &str, out: &mut dyn FnMut(String, Node)) {
    match node {
        Node::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                let child_path = join(path, k);
                split_into(v, &child_path, &mut |p, leaf| {
                    out(p, Node::Map(vec![(k.clone(), leaf)]));
                });
            }
        }
        other => out(path.to_string(), other.clone()),
    }
}

/// `parent.key`, or `key` at the root.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Splits `a.b[0].c` into `a`, `b`, `0`, `c`.
fn split_path(path: &str) -> Result<Vec<String>, NodeError> {
    let bad = || {
        NodeError::new(
            path,
            NodeErrorKind::BadPath {
                path: path.to_string(),
            },
        )
    };
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() || name.contains(']') {
            return Err(bad());
        }
        out.push(name.to_string());
        while !indexes.is_empty() {
            let close = indexes.find(']').ok_or_else(bad)?;
            let idx = match indexes.get(1..close) {
                Some(idx) if indexes.starts_with('[') => idx,
                _ => return Err(bad()),
            };
            if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            out.push(idx.to_string());
            indexes = &indexes[close + 1..];
        }
    }
    Ok(out)
}

fn yaml_key(key: &serde_norway::Value) -> String {
    use serde_norway::Value;
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        Value::Tagged(t) => yaml_key(&t.value),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any configuration value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Leaf(v))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf(String::new()))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf(String::new()))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}
