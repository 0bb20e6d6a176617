//! Merging the dynamic configurations of several files (the file provider's directory mode).

use super::{DynamicConfig, Map};
use crate::config::{ConfigError, ConfigErrors, Node};

pub(super) fn merge(into: &mut DynamicConfig, other: DynamicConfig) -> Result<(), ConfigErrors> {
    if *into == DynamicConfig::default() {
        // The first source: nothing to check it against (and 10,000 routers are moved, not
        // re-inserted one by one).
        *into = other;
        return Ok(());
    }
    // Merge from the larger side: when the later source is the larger (a directory whose
    // 10,000-router file sorts after the small ones) it becomes the base (a copy of a map
    // shares its nodes) and the earlier source's items go into it, still counting as first:
    // identical definitions keep the earlier's origin, a different one is the same error, and
    // the earlier's definition is the one kept. The work is the size of the smaller side.
    let mut other = other;
    let into_is_later = size(&other) > size(into);
    let later_origins = if into_is_later {
        std::mem::swap(into, &mut other);
        // Raw sections are small and ordered (lists append): merged the usual way round.
        std::mem::swap(&mut into.tcp, &mut other.tcp);
        std::mem::swap(&mut into.udp, &mut other.udp);
        std::mem::swap(&mut into.tls, &mut other.tls);
        let later = into.origins.clone();
        for (path, src) in &other.origins {
            into.origins.insert(path.clone(), src.clone());
        }
        Some(later)
    } else {
        None
    };
    let mut m = Merger {
        origins: &mut into.origins,
        other_origins: later_origins.as_ref().unwrap_or(&other.origins),
        into_is_later,
        errors: Vec::new(),
    };
    m.named("http.routers", &mut into.http.routers, other.http.routers);
    m.named(
        "http.services",
        &mut into.http.services,
        other.http.services,
    );
    m.named(
        "http.middlewares",
        &mut into.http.middlewares,
        other.http.middlewares,
    );
    m.named(
        "http.serversTransports",
        &mut into.http.servers_transports,
        other.http.servers_transports,
    );
    m.named("http.models", &mut into.http.models, other.http.models);
    m.into_is_later = false;
    m.raw("tcp", &mut into.tcp, other.tcp);
    m.raw("udp", &mut into.udp, other.udp);
    m.raw("tls", &mut into.tls, other.tls);
    if m.errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(m.errors))
    }
}

fn size(cfg: &DynamicConfig) -> usize {
    cfg.http.routers.len() + cfg.http.services.len() + cfg.origins.len()
}

/// `origins` is the merged view's, where the first definer of a path is found;
/// `other_origins` the later source's.
struct Merger<'a> {
    origins: &'a mut Map<String, String>,
    other_origins: &'a Map<String, String>,
    /// The named maps being merged into are the later source's (merged from the larger side):
    /// the items added are the earlier source's, whose origins are in `origins` already.
    into_is_later: bool,
    errors: Vec<ConfigError>,
}

fn source_of<'s>(origins: &'s Map<String, String>, path: &str) -> &'s str {
    origins.get(path).map_or("another source", String::as_str)
}

impl Merger<'_> {
    /// Whether to put the item at `path` in: yes if new; identical is fine, different an error
    /// (and the first definition is the one kept).
    fn add<T: PartialEq>(&mut self, path: String, existing: Option<&T>, new: &T) -> bool {
        match existing {
            None => {
                if !self.into_is_later {
                    let src = source_of(self.other_origins, &path).to_string();
                    self.origins.insert(path, src);
                }
                true
            }
            Some(old) if old == new => false,
            Some(_) => {
                let first = source_of(self.origins, &path);
                let second = source_of(self.other_origins, &path);
                self.errors.push(ConfigError::new(
                    format!("{second}: {path}"),
                    format!("defined differently in both {first} and {second}"),
                ));
                self.into_is_later
            }
        }
    }

    fn named<T: PartialEq + Clone>(
        &mut self,
        section: &str,
        into: &mut Map<String, T>,
        from: Map<String, T>,
    ) {
        for (name, item) in from {
            let path = format!("{section}.{name}");
            if self.add(path, into.get(&name), &item) {
                into.insert(name, item);
            }
        }
    }

    fn copy_origins(&mut self, prefix: &str) {
        for (path, src) in self.other_origins.range(prefix.to_string()..) {
            if !path.starts_with(prefix) {
                break;
            }
            self.origins.insert(path.clone(), src.clone());
        }
    }

    /// Raw sections (`tcp`, `udp`, `tls`) have canonical section keys (set when decoded):
    /// their named items merge like the typed ones, lists (`tls.certificates`) append.
    fn raw(&mut self, top: &str, into: &mut Option<Node>, from: Option<Node>) {
        let Some(from) = from else { return };
        let Some(base) = into else {
            self.copy_origins(&format!("{top}."));
            *into = Some(from);
            return;
        };
        let (Node::Map(base_sections), Node::Map(from_sections)) = (base, from) else {
            return;
        };
        for (section, value) in from_sections {
            let Some(idx) = base_sections.iter().position(|(k, _)| *k == section) else {
                self.copy_origins(&format!("{top}.{section}."));
                base_sections.push((section, value));
                continue;
            };
            match (&mut base_sections[idx].1, value) {
                (Node::List(a), Node::List(b)) => a.extend(b),
                (Node::Map(a), Node::Map(b)) => {
                    for (name, item) in b {
                        let path = format!("{top}.{section}.{name}");
                        let existing = a.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
                        if self.add(path, existing, &item) {
                            a.push((name, item));
                        }
                    }
                }
                (_, b) if b.is_presence_marker() => {}
                (a, b) if a.is_presence_marker() => *a = b,
                _ => self.errors.push(ConfigError::new(
                    format!("{top}.{section}"),
                    "defined with different shapes in two sources",
                )),
            }
        }
    }
}
