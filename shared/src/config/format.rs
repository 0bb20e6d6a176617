//! Configuration file formats (TOML, YAML) and their decoding into a [`Node`] tree.

use super::reparse::Outline;
use crate::config::Node;
use std::path::Path;

/// A configuration file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// By extension: `.toml`, `.yml` or `.yaml` (case-insensitive); `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("toml") {
            Some(Format::Toml)
        } else if ext.eq_ignore_ascii_case("yml") || ext.eq_ignore_ascii_case("yaml") {
            Some(Format::Yaml)
        } else {
            None
        }
    }

    /// Parses a document into a tree; the error is a one-line message with line and column.
    pub fn parse_tree(self, text: &str) -> Result<Node, String> {
        self.parse_tree_with(text, false).map(|(tree, _)| tree)
    }

    /// As [`Format::parse_tree`], with the outline of a document that a fast parser took
    /// (when `outline`; a document only the slower paths take has none).
    pub(crate) fn parse_tree_with(
        self,
        text: &str,
        outline: bool,
    ) -> Result<(Node, Option<Outline>), String> {
        match self {
            Format::Toml => {
                // Three paths, fastest first. Our own single-pass parser builds the nodes
                // directly (a 10,000-router file: ~6x faster than `toml`); it declines
                // anything it is unsure `toml` accepts as is (datetimes, errors). Then
                // `toml`'s borrowed tree straight into nodes, without `toml::Value`s. Anything
                // that does not take either (a syntax error, an integer out of range) goes
                // the slow way, which words the error.
                let fast = if outline {
                    super::toml_fast::parse_outlined(text).map(|(node, o)| (node, Some(o)))
                } else {
                    super::toml_fast::parse(text).map(|node| (node, None))
                };
                if let Some(parsed) = fast {
                    return Ok(parsed);
                }
                if let Some(node) = toml::de::DeTable::parse(text)
                    .ok()
                    .and_then(|t| Node::from_toml_table(t.get_ref()))
                {
                    return Ok((node, None));
                }
                let value: toml::Table = toml::from_str(text).map_err(|e| {
                    let at = e
                        .span()
                        .map(|span| {
                            let (line, col) = line_col(text, span.start);
                            format!(" at line {line}, column {col}")
                        })
                        .unwrap_or_default();
                    format!("TOML syntax error{at}: {}", e.message().trim())
                })?;
                Ok((Node::from_toml(&toml::Value::Table(value)), None))
            }
            Format::Yaml => {
                // Our own parser of the block subset first (a 10,000-router file: ~10x faster
                // than `serde_norway`); it declines anything else (anchors, tags, block
                // scalars, flow mappings, …), which `serde_norway` parses and words the errors.
                let fast = if outline {
                    let root = super::yaml_fast::Ctx::Root;
                    super::yaml_fast::parse_outlined(text, root).map(|(node, o)| (node, Some(o)))
                } else {
                    super::yaml_fast::parse(text).map(|node| (node, None))
                };
                if let Some(parsed) = fast {
                    return Ok(parsed);
                }
                if text.trim().is_empty() {
                    return Ok((Node::empty(), None));
                }
                let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
                    let at = e
                        .location()
                        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                        .unwrap_or_default();
                    let msg = e.to_string();
                    // serde_norway appends " at line X column Y"; we print our own.
                    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                    format!("YAML syntax error{at}: {msg}")
                })?;
                value
                    .apply_merge()
                    .map_err(|e| format!("YAML merge key error: {e}"))?;
                match value {
                    serde_norway::Value::Null => Ok((Node::empty(), None)),
                    v => Ok((Node::from_yaml(&v), None)),
                }
            }
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.TOML")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("b.yml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("b.yaml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("b.json")), None);
        assert_eq!(Format::from_path(Path::new("toml")), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Format::Toml
            .parse_tree("a = 1\nb = = 2\n")
            .expect_err("bad");
        assert!(err.contains("line 2"), "{err}");
        let err = Format::Yaml
            .parse_tree("a: 1\n b: 2\n  - c\n")
            .expect_err("bad");
        assert!(err.starts_with("YAML syntax error at line"), "{err}");
    }

    /// The borrowed-tree path (the second try) gives exactly the tree of the `toml::Value`
    /// path, and leaves what only the slow path words (errors, out-of-range numbers) to it.
    #[test]
    fn borrowed_tree_path_matches_the_value_path() {
        // The fast parser's corpus, and a datetime (which it leaves to this path).
        let datetimes = "d = 1979-05-27T07:32:00Z\nl = 1979-05-27\ntm = 07:32:00";
        for doc in super::super::toml_fast::tests::VALID
            .iter()
            .copied()
            .chain([datetimes])
        {
            let slow = Node::from_toml(&toml::Value::Table(
                toml::from_str::<toml::Table>(doc).expect("valid"),
            ));
            let fast = toml::de::DeTable::parse(doc)
                .ok()
                .and_then(|t| Node::from_toml_table(t.get_ref()));
            assert_eq!(fast.as_ref(), Some(&slow), "{doc}");
        }
        // What the slow path refuses, the fast one refuses too.
        for bad in [
            "c = -0o17",
            "a = 1\na = 2",
            "[t]\n[t]",
            "a = 0777",
            "a = 1.",
            "k = \"\\q\"",
        ] {
            assert!(toml::from_str::<toml::Table>(bad).is_err(), "{bad}");
            assert!(toml::de::DeTable::parse(bad).is_err(), "{bad}");
        }
        // Beyond 64 bits: the fast path declines, the slow one says why.
        let big = "a = 99999999999999999999";
        assert!(toml::de::DeTable::parse(big)
            .ok()
            .and_then(|t| Node::from_toml_table(t.get_ref()))
            .is_none());
        let err = Format::Toml.parse_tree(big).expect_err("out of range");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn empty_documents_are_empty_trees() {
        assert_eq!(Format::Toml.parse_tree(""), Ok(Node::empty()));
        assert_eq!(Format::Yaml.parse_tree("\n# nothing\n"), Ok(Node::empty()));
        assert_eq!(Format::Yaml.parse_tree("---\n"), Ok(Node::empty()));
    }

    #[test]
    fn yaml_merge_keys_apply() {
        let node = Format::Yaml
            .parse_tree("base: &b\n  x: 1\nother:\n  <<: *b\n  y: 2\n")
            .expect("valid");
        let other = node.get("other").expect("other");
        assert_eq!(other.get("x"), Some(&Node::Leaf("1".into())));
        assert_eq!(other.get("y"), Some(&Node::Leaf("2".into())));
    }
}
