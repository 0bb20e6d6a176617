//! Traefik's KV key layout: `<rootKey>/http/routers/<name>/entryPoints/0` = `web`. Converts
//! flat key/value pairs to a [`Node`] tree (what the KV provider decodes) and back (what
//! `ringway kv sync` writes and `kv export` prints).
//!
//! Segments are separated by `/` only (a router named `a.b` is one segment); a list is a
//! section whose keys are indexes; keys match case-insensitively, as in Traefik.

use ringway_shared::config::{ConfigError, Node};
use std::collections::HashMap;

/// A key that cannot be placed in the tree, with the reason.
pub fn key_error(source: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("{source} key {key}"), message)
}

/// Builds the tree of the pairs under `root` (`traefik`): keys outside it are ignored. Keys
/// that do not fit (empty segments, a value where another key has a section) are reported,
/// naming the key, and left out; the others are kept.
pub fn tree_from_pairs(
    source: &str,
    root: &str,
    pairs: &[(String, String)],
) -> (Node, Vec<ConfigError>) {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    // Deterministic whatever order the store listed them in; parents before children.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tree = Builder::default();
    let mut errors = Vec::new();
    let prefix = format!("{root}/");
    for (key, value) in sorted {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            errors.push(key_error(
                source,
                key,
                "empty path segment (`//` or a trailing `/`)",
            ));
            continue;
        }
        if let Err(message) = tree.insert(&segments, value) {
            errors.push(key_error(source, key, message));
        }
    }
    (tree.into_node(true), errors)
}

/// A tree under construction: children found through a case-insensitive index, so that
/// building is linear in the number of keys (a store may hold tens of thousands).
#[derive(Default)]
struct Builder {
    leaf: Option<String>,
    children: Vec<(String, Builder)>,
    index: HashMap<String, usize>,
}

impl Builder {
    fn insert(&mut self, segments: &[&str], value: &str) -> Result<(), String> {
        let Some((first, rest)) = segments.split_first() else {
            if !self.children.is_empty() {
                if is_presence(value) {
                    return Ok(());
                }
                return Err(format!(
                    "has the value {value:?} but other keys below it make it a section"
                ));
            }
            self.leaf = Some(value.to_string());
            return Ok(());
        };
        match &self.leaf {
            Some(v) if is_presence(v) => self.leaf = None,
            Some(_) => return Err("a key above it already has a value".to_string()),
            None => {}
        }
        let folded = first.to_ascii_lowercase();
        let idx = match self.index.get(&folded) {
            Some(&i) => i,
            None => {
                self.children.push((first.to_string(), Builder::default()));
                self.index.insert(folded, self.children.len() - 1);
                self.children.len() - 1
            }
        };
        self.children[idx].1.insert(rest, value)
    }

    fn into_node(self, root: bool) -> Node {
        if self.children.is_empty() && !root {
            return Node::Leaf(self.leaf.unwrap_or_default());
        }
        Node::Map(
            self.children
                .into_iter()
                .map(|(k, b)| (k, b.into_node(false)))
                .collect(),
        )
    }
}

/// Traefik's "present, with defaults": `true` or empty.
fn is_presence(v: &str) -> bool {
    v.is_empty() || v.eq_ignore_ascii_case("true")
}

/// Flattens a tree (a parsed dynamic configuration file) into `root/...` pairs: lists become
/// indexes, an empty section `true` (Traefik's "present"), an empty list nothing.
pub fn pairs_from_tree(root: &str, tree: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten(tree, root, &mut out);
    out.sort();
    out
}

fn flatten(node: &Node, path: &str, out: &mut Vec<(String, String)>) {
    match node {
        Node::Leaf(v) => out.push((path.to_string(), v.clone())),
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(item, &format!("{path}/{i}"), out);
            }
        }
        // Traefik's "present, with defaults" (`tls=true`, as in labels).
        Node::Map(entries) if entries.is_empty() => out.push((path.to_string(), "true".into())),
        Node::Map(entries) => {
            for (k, v) in entries {
                flatten(v, &format!("{path}/{k}"), out);
            }
        }
    }
}

/// The tree with every section whose keys are all indexes turned into a list (sorted by
/// index), for writing a file back out.
pub fn lists_restored(node: &Node) -> Node {
    match node {
        Node::Leaf(_) => node.clone(),
        Node::List(items) => Node::List(items.iter().map(lists_restored).collect()),
        Node::Map(entries) => {
            let indexes: Option<Vec<usize>> = entries.iter().map(|(k, _)| k.parse().ok()).collect();
            match indexes {
                Some(mut idx) if !entries.is_empty() => {
                    let mut items: Vec<(usize, Node)> = idx
                        .drain(..)
                        .zip(entries.iter().map(|(_, v)| lists_restored(v)))
                        .collect();
                    items.sort_by_key(|(i, _)| *i);
                    Node::List(items.into_iter().map(|(_, n)| n).collect())
                }
                _ => Node::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), lists_restored(v)))
                        .collect(),
                ),
            }
        }
    }
}

/// Parses the seed's bootstrap format: one `key,value` per line (the value may contain
/// commas), blank lines and `#` comments skipped. Keys may start with `root/` or be relative
/// to it. Errors name the line.
pub fn parse_key_value_lines(
    source: &str,
    root: &str,
    text: &str,
) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    let prefix = format!("{root}/");
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(',') else {
            errors.push(ConfigError::new(
                format!("{source}:{}", n + 1),
                format!("expected `key,value`, found {line:?}"),
            ));
            continue;
        };
        let key = key.trim().trim_start_matches('/');
        if key.is_empty() {
            errors.push(ConfigError::new(format!("{source}:{}", n + 1), "empty key"));
            continue;
        }
        let full = if key.starts_with(&prefix) {
            key.to_string()
        } else {
            format!("{prefix}{key}")
        };
        pairs.push((full, value.to_string()));
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringway_shared::config::Format;

    use crate::kv::test_pairs as pairs;

    #[test]
    fn keys_become_a_tree_and_back() {
        let input = pairs(&[
            ("traefik/http/routers/a.b/rule", "Host(`x`)"),
            ("traefik/http/routers/a.b/entryPoints/1", "websecure"),
            ("traefik/http/routers/a.b/entryPoints/0", "web"),
            ("traefik/http/routers/a.b/tls", ""),
            ("other/ignored", "1"),
        ]);
        let (tree, errors) = tree_from_pairs("redis", "traefik", &input);
        assert!(errors.is_empty(), "{errors:?}");
        let router = tree
            .get("http")
            .and_then(|h| h.get("routers"))
            .and_then(|r| r.get("a.b"))
            .expect("router a.b is one segment");
        assert_eq!(router.get("rule"), Some(&Node::Leaf("Host(`x`)".into())));
        let restored = lists_restored(router);
        assert_eq!(
            restored.get("entryPoints"),
            Some(&Node::List(vec![
                Node::Leaf("web".into()),
                Node::Leaf("websecure".into())
            ]))
        );
        let back = pairs_from_tree("traefik", &tree);
        assert_eq!(back.len(), 4);
        assert!(back.contains(&("traefik/http/routers/a.b/tls".into(), String::new())));
    }

    #[test]
    fn bad_keys_are_named_and_left_out() {
        let input = pairs(&[
            ("traefik/http/routers/x/rule", "Host(`x`)"),
            ("traefik/http/routers/x/rule/extra", "oops"),
            ("traefik/http//services", "1"),
            ("traefik/http/routers/y/rule", "Host(`y`)"),
        ]);
        let (tree, errors) = tree_from_pairs("redis", "traefik", &input);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("redis key traefik/http//services:"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("redis key traefik/http/routers/x/rule/extra:"),
            "{text:?}"
        );
        let routers = tree
            .get("http")
            .and_then(|h| h.get("routers"))
            .expect("routers");
        assert!(routers.get("x").is_some() && routers.get("y").is_some());
    }

    #[test]
    fn a_file_flattens_to_traefik_keys() {
        let tree = Format::Toml
            .parse_tree(
                "[http.routers.r]\nrule = \"Host(`a`)\"\nentryPoints = [\"web\"]\n\
                 [[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n\
                 [http.middlewares.m.headers]\n",
            )
            .expect("toml");
        let flat = pairs_from_tree("traefik", &tree);
        assert_eq!(
            flat,
            pairs(&[
                ("traefik/http/middlewares/m/headers", "true"),
                ("traefik/http/routers/r/entryPoints/0", "web"),
                ("traefik/http/routers/r/rule", "Host(`a`)"),
                (
                    "traefik/http/services/s/loadBalancer/servers/0/url",
                    "http://127.0.0.1:1"
                ),
            ])
        );
    }

    #[test]
    fn key_value_lines() {
        let text = "# seed\ntraefik/http/routers/r/rule,Host(`a`) || Host(`b`)\n\nhttp/routers/r/service,s\n";
        let got = parse_key_value_lines("seed.txt", "traefik", text).expect("valid");
        assert_eq!(
            got,
            pairs(&[
                ("traefik/http/routers/r/rule", "Host(`a`) || Host(`b`)"),
                ("traefik/http/routers/r/service", "s"),
            ])
        );
        let err = parse_key_value_lines("seed.txt", "traefik", "a,b\nnocomma\n").expect_err("bad");
        assert_eq!(err[0].location, "seed.txt:2");
    }
}
