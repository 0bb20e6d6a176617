//! The serde deserializer over a [`Node`]: case-insensitive struct fields, verbatim map keys,
//! string leaves coerced to the wanted type, and errors that carry the key path.

use super::{join, Node, NodeError, NodeErrorKind};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// Decodes `T` from a tree.
pub fn from_node<'de, T: Deserialize<'de>>(node: &'de Node) -> Result<T, NodeError> {
    T::deserialize(NodeDeserializer::new(node))
}

/// Decodes `T` from a subtree found at `path` (used as the prefix of error paths).
pub fn from_node_at<'de, T: Deserialize<'de>>(node: &'de Node, path: &str) -> Result<T, NodeError> {
    T::deserialize(NodeDeserializer::at(node, Path::Root(path)))
}

/// The key path of the value being decoded, written out only when an error names it: a file
/// of 10,000 routers decodes ~100,000 values, and formatting each one's path cost more than
/// decoding it.
#[derive(Clone, Copy)]
pub enum Path<'p> {
    Root(&'p str),
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// `a.b[0].c`.
    fn render(&self) -> String {
        match self {
            Path::Root(s) => s.to_string(),
            Path::Key(parent, key) => join(&parent.render(), key),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// One step below a list: an index, or a numeric key (`servers.0.url`).
#[derive(Clone, Copy)]
enum Step<'de> {
    Index(usize),
    Key(&'de str),
}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError::new(String::new(), NodeErrorKind::Custom(msg.to_string()))
    }
}

impl NodeError {
    /// Gives a path to an error raised below the deserializer (by a visitor) that has none.
    fn or_path(mut self, path: &Path<'_>) -> NodeError {
        if self.path.is_empty() {
            self.path = path.render();
        }
        self
    }
}

#[derive(Clone, Copy)]
enum Input<'de> {
    Str(&'de str),
    List(&'de [Node]),
    Map(&'de [(String, Node)]),
}

/// A serde `Deserializer` over a borrowed [`Node`].
pub struct NodeDeserializer<'de, 'p> {
    input: Input<'de>,
    path: Path<'p>,
}

impl<'de> NodeDeserializer<'de, 'static> {
    pub fn new(node: &'de Node) -> Self {
        Self::at(node, Path::Root(""))
    }
}

impl<'de, 'p> NodeDeserializer<'de, 'p> {
    /// A deserializer whose errors are reported under `path`.
    pub fn at(node: &'de Node, path: Path<'p>) -> Self {
        NodeDeserializer {
            input: input_of(node),
            path,
        }
    }

    fn err(&self, kind: NodeErrorKind) -> NodeError {
        NodeError::new(self.path.render(), kind)
    }

    fn found(&self) -> &'static str {
        match self.input {
            Input::Str(_) => "a value",
            Input::List(_) => "a list",
            Input::Map(_) => "a section",
        }
    }

    fn wrong_type(&self, expected: &'static str) -> NodeError {
        self.err(NodeErrorKind::WrongType {
            expected,
            found: self.found(),
        })
    }

    fn leaf(&self, expected: &'static str) -> Result<&'de str, NodeError> {
        match self.input {
            Input::Str(s) => Ok(s),
            _ => Err(self.wrong_type(expected)),
        }
    }

    fn parse<T: std::str::FromStr>(&self, expected: &'static str) -> Result<T, NodeError> {
        let s = self.leaf(expected)?;
        s.trim().parse().map_err(|_| {
            self.err(NodeErrorKind::InvalidValue {
                expected,
                value: s.to_string(),
            })
        })
    }

    /// Entries of a section; a presence marker (`true`, empty) is an empty section.
    fn entries(&self, expected: &'static str) -> Result<&'de [(String, Node)], NodeError> {
        match self.input {
            Input::Map(entries) => Ok(entries),
            Input::Str(s) if s.is_empty() || s.eq_ignore_ascii_case("true") => Ok(&[]),
            _ => Err(self.wrong_type(expected)),
        }
    }

    /// Items of a list: a list, a comma-separated leaf, or a section with numeric keys
    /// (`servers.0.url`, `servers.1.url`).
    fn items(&self) -> Result<Vec<(Input<'de>, Step<'de>)>, NodeError> {
        match self.input {
            Input::List(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, n)| (input_of(n), Step::Index(i)))
                .collect()),
            Input::Str(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
                .map(|(i, p)| (Input::Str(p), Step::Index(i)))
                .collect()),
            Input::Map(entries) => {
                let mut indexed = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let idx: usize = k.parse().map_err(|_| self.wrong_type("a list"))?;
                    indexed.push((idx, input_of(v), Step::Key(k.as_str())));
                }
                indexed.sort_by_key(|(i, _, _)| *i);
                Ok(indexed.into_iter().map(|(_, n, p)| (n, p)).collect())
            }
        }
    }
}

fn input_of(node: &Node) -> Input<'_> {
    match node {
        Node::Leaf(s) => Input::Str(s),
        Node::List(items) => Input::List(items),
        Node::Map(entries) => Input::Map(entries),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $visit:ident : $ty:ty, $expected:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
                let v: $ty = self.parse($expected)?;
                visitor.$visit(v).map_err(|e: NodeError| e.or_path(&self.path))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de, '_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let path = self.path;
        match self.input {
            Input::Str(s) => visitor.visit_borrowed_str(s),
            Input::List(_) => self.deserialize_seq(visitor),
            Input::Map(_) => self.deserialize_map(visitor),
        }
        .map_err(|e: NodeError| e.or_path(&path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let s = self.leaf("a boolean")?;
        match parse_bool(s) {
            Some(b) => visitor
                .visit_bool(b)
                .map_err(|e: NodeError| e.or_path(&self.path)),
            None => Err(self.err(NodeErrorKind::InvalidValue {
                expected: "boolean",
                value: s.to_string(),
            })),
        }
    }

    deserialize_number! {
        deserialize_i8 => visit_i8: i8, "integer";
        deserialize_i16 => visit_i16: i16, "integer";
        deserialize_i32 => visit_i32: i32, "integer";
        deserialize_i64 => visit_i64: i64, "integer";
        deserialize_u8 => visit_u8: u8, "unsigned integer";
        deserialize_u16 => visit_u16: u16, "unsigned integer";
        deserialize_u32 => visit_u32: u32, "unsigned integer";
        deserialize_u64 => visit_u64: u64, "unsigned integer";
        deserialize_f32 => visit_f32: f32, "number";
        deserialize_f64 => visit_f64: f64, "number";
        deserialize_char => visit_char: char, "character";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let s = self.leaf("a value")?;
        visitor
            .visit_borrowed_str(s)
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    /// A node that exists is `Some`: `--providers.file` alone enables the file provider.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let path = self.path;
        visitor
            .visit_some(self)
            .map_err(|e: NodeError| e.or_path(&path))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        visitor
            .visit_unit()
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let path = self.path;
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: NodeError| e.or_path(&path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let items = self.items()?;
        let mut access = SeqItems {
            items: items.into_iter(),
            parent: self.path,
        };
        visitor
            .visit_seq(&mut access)
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_seq(visitor)
    }

    /// Map keys are kept verbatim: router and service names are case-sensitive.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let entries = self.entries("a section")?;
        let mut access = MapEntries {
            entries: entries.iter(),
            path: self.path,
            pending: None,
        };
        visitor
            .visit_map(&mut access)
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    /// Field names match keys ASCII-case-insensitively; a key that matches no field is an
    /// error naming its full path.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let entries = self.entries("a section")?;
        let mut access = StructFields {
            entries: entries.iter(),
            fields,
            seen: vec![None; fields.len()],
            path: self.path,
            pending: None,
        };
        visitor
            .visit_map(&mut access)
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    /// Unit variants from a value (`level = "debug"`), others from a one-key section;
    /// variant names match case-insensitively.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let (key, value) = match self.input {
            Input::Str(s) => (s, None),
            Input::Map([(k, v)]) => (k.as_str(), Some(v)),
            _ => return Err(self.wrong_type("a value or a section with one key")),
        };
        let variant = variants
            .iter()
            .find(|v| v.eq_ignore_ascii_case(key.trim()))
            .ok_or_else(|| {
                self.err(NodeErrorKind::UnknownVariant {
                    value: key.to_string(),
                    valid: variants.join(", "),
                })
            })?;
        visitor
            .visit_enum(EnumInput {
                variant,
                value,
                parent: self.path,
                key: value.map(|_| key),
            })
            .map_err(|e: NodeError| e.or_path(&self.path))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        visitor.visit_unit()
    }
}

struct SeqItems<'de, 'p> {
    items: std::vec::IntoIter<(Input<'de>, Step<'de>)>,
    parent: Path<'p>,
}

impl<'de> de::SeqAccess<'de> for SeqItems<'de, '_> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.items.next() {
            Some((input, step)) => {
                let path = match step {
                    Step::Index(i) => Path::Index(&self.parent, i),
                    Step::Key(k) => Path::Key(&self.parent, k),
                };
                seed.deserialize(NodeDeserializer { input, path }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapEntries<'de, 'p> {
    entries: std::slice::Iter<'de, (String, Node)>,
    path: Path<'p>,
    pending: Option<&'de (String, Node)>,
}

impl<'de> de::MapAccess<'de> for MapEntries<'de, '_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        let key: BorrowedStrDeserializer<'de, NodeError> = BorrowedStrDeserializer::new(&entry.0);
        seed.deserialize(key)
            .map(Some)
            .map_err(|e: NodeError| e.or_path(&Path::Key(&self.path, &entry.0)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let (key, value) = self.pending.take().ok_or_else(|| {
            NodeError::new(
                self.path.render(),
                NodeErrorKind::Custom("value without a key".into()),
            )
        })?;
        seed.deserialize(NodeDeserializer::at(value, Path::Key(&self.path, key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct StructFields<'de, 'p> {
    entries: std::slice::Iter<'de, (String, Node)>,
    fields: &'static [&'static str],
    /// The key spelling that matched each field, to report duplicates.
    seen: Vec<Option<&'de str>>,
    path: Path<'p>,
    pending: Option<&'de (String, Node)>,
}

impl<'de> de::MapAccess<'de> for StructFields<'de, '_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let key = entry.0.as_str();
        let path = Path::Key(&self.path, key);
        let Some(i) = self.fields.iter().position(|f| f.eq_ignore_ascii_case(key)) else {
            return Err(NodeError::new(
                path.render(),
                NodeErrorKind::UnknownKey {
                    key: key.to_string(),
                    valid: self.fields.join(", "),
                },
            ));
        };
        if let Some(first) = self.seen[i] {
            return Err(NodeError::new(
                path.render(),
                NodeErrorKind::DuplicateKey {
                    first: first.to_string(),
                    second: key.to_string(),
                },
            ));
        }
        self.seen[i] = Some(key);
        self.pending = Some(entry);
        let field: BorrowedStrDeserializer<'de, NodeError> =
            BorrowedStrDeserializer::new(self.fields[i]);
        seed.deserialize(field)
            .map(Some)
            .map_err(|e: NodeError| e.or_path(&path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let (key, value) = self.pending.take().ok_or_else(|| {
            NodeError::new(
                self.path.render(),
                NodeErrorKind::Custom("value without a key".into()),
            )
        })?;
        seed.deserialize(NodeDeserializer::at(value, Path::Key(&self.path, key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumInput<'de, 'p> {
    variant: &'static str,
    value: Option<&'de Node>,
    parent: Path<'p>,
    /// The variant's key when it has a value (`{ variant = … }`): part of the value's path.
    key: Option<&'de str>,
}

impl<'de, 'p> de::EnumAccess<'de> for EnumInput<'de, 'p> {
    type Error = NodeError;
    type Variant = VariantInput<'de, 'p>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), NodeError> {
        let name: BorrowedStrDeserializer<'de, NodeError> =
            BorrowedStrDeserializer::new(self.variant);
        let v = seed.deserialize(name)?;
        Ok((
            v,
            VariantInput {
                value: self.value,
                parent: self.parent,
                key: self.key,
            },
        ))
    }
}

struct VariantInput<'de, 'p> {
    value: Option<&'de Node>,
    parent: Path<'p>,
    key: Option<&'de str>,
}

impl<'de, 'p> VariantInput<'de, 'p> {
    /// The value's path, written out (for errors).
    fn path(&self) -> String {
        match self.key {
            Some(key) => Path::Key(&self.parent, key).render(),
            None => self.parent.render(),
        }
    }

    /// A deserializer over the variant's value, under its path.
    fn decode<R>(
        &self,
        node: &'de Node,
        f: impl FnOnce(NodeDeserializer<'de, '_>) -> Result<R, NodeError>,
    ) -> Result<R, NodeError> {
        match self.key {
            Some(key) => f(NodeDeserializer::at(node, Path::Key(&self.parent, key))),
            None => f(NodeDeserializer::at(node, self.parent)),
        }
    }

    fn missing(&self) -> NodeError {
        NodeError::new(
            self.path(),
            NodeErrorKind::WrongType {
                expected: "a section",
                found: "a value",
            },
        )
    }
}

impl<'de> de::VariantAccess<'de> for VariantInput<'de, '_> {
    type Error = NodeError;

    fn unit_variant(self) -> Result<(), NodeError> {
        match self.value {
            None => Ok(()),
            Some(n) if n.is_presence_marker() => Ok(()),
            Some(n) => Err(NodeError::new(
                self.path(),
                NodeErrorKind::WrongType {
                    expected: "nothing",
                    found: n.kind_name(),
                },
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        match self.value {
            Some(n) => self.decode(n, |d| seed.deserialize(d)),
            None => Err(self.missing()),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        match self.value {
            Some(n) => self.decode(n, |d| de::Deserializer::deserialize_seq(d, visitor)),
            None => Err(self.missing()),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        match self.value {
            Some(n) => self.decode(n, |d| {
                de::Deserializer::deserialize_struct(d, "", fields, visitor)
            }),
            None => Err(self.missing()),
        }
    }
}

impl<'de> IntoDeserializer<'de, NodeError> for &'de Node {
    type Deserializer = NodeDeserializer<'de, 'static>;
    fn into_deserializer(self) -> NodeDeserializer<'de, 'static> {
        NodeDeserializer::new(self)
    }
}
