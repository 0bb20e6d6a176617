//! Traefik v3 dynamic configuration (file provider TOML/YAML; later labels and KV), decoded
//! through the case-insensitive [`Node`] deserializer and merged across files.
//!
//! Unknown keys inside the sections ringway knows are errors naming their path; Traefik
//! sections that ringway does not implement yet (`tcp`, `udp`, `tls`, `serversTransports`,
//! middleware bodies, sticky sessions, health checks, …) are kept raw, never refused here: the
//! aggregator decides what to do with them.

mod merge;
#[cfg(test)]
mod tests;

pub use super::format::Format;

use super::node::{from_node_at, join};
use super::reparse::{ItemChange, ItemSection};
use super::{ConfigError, ConfigErrors, Node, NodeError};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use std::sync::Arc;

/// One provider's dynamic configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamicConfig {
    pub http: HttpConfig,
    /// `tcp` (`routers`, `services`, `middlewares`, `serversTransports`): not implemented yet.
    pub tcp: Option<Node>,
    /// `udp` (`routers`, `services`): not implemented yet.
    pub udp: Option<Node>,
    /// `tls` (`certificates`, `options`, `stores`): not implemented yet.
    pub tls: Option<Node>,
    /// Where each named item was defined, by path: `http.routers.web` →
    /// `/etc/ringway.d/web.toml`.
    pub origins: Map<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpConfig {
    /// Each router and service behind an `Arc`: a copied map node copies pointers, and the
    /// control plane keeps what it built from a configuration by holding the same `Arc`
    /// (unchanged since: the same pointer, compared without reading it).
    pub routers: Map<String, Arc<RouterConfig>>,
    pub services: Map<String, Arc<ServiceConfig>>,
    pub middlewares: Map<String, MiddlewareConfig>,
    /// Kept raw: not implemented yet.
    pub servers_transports: Map<String, Node>,
    /// Entry point models (`http.models`), kept raw: not implemented yet.
    pub models: Map<String, Node>,
}

/// The named items of a configuration: an ordered map whose copies share their nodes, so
/// that a provider's view of 10,000 routers is handed on, kept and merged without copying
/// every router (`imbl`'s B-tree: a clone is O(1), an insert copies one path).
pub type Map<K, V> = imbl::OrdMap<K, V>;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouterConfig {
    /// Empty: the static configuration's default entry points.
    pub entry_points: Vec<String>,
    pub middlewares: Vec<String>,
    pub service: String,
    pub rule: String,
    /// `v3` (the default) or `v2`.
    pub rule_syntax: Option<String>,
    /// `None` or `0`: the rule's length.
    pub priority: Option<i64>,
    pub tls: Option<RouterTlsConfig>,
    pub observability: Option<Node>,
    /// Multi-layer routing: not implemented yet.
    pub parent_refs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouterTlsConfig {
    pub options: Option<String>,
    pub cert_resolver: Option<String>,
    pub domains: Vec<TlsDomain>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TlsDomain {
    pub main: String,
    pub sans: Vec<String>,
}

/// A service; exactly one kind must be set (checked by the aggregator, so that one bad
/// service does not reject the whole file).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceConfig {
    pub load_balancer: Option<LoadBalancerConfig>,
    pub weighted: Option<WeightedConfig>,
    pub mirroring: Option<Node>,
    pub failover: Option<Node>,
    pub highest_random_weight: Option<Node>,
    /// Service middlewares: not implemented yet.
    pub middlewares: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LoadBalancerConfig {
    pub servers: Vec<ServerConfig>,
    /// Default true.
    pub pass_host_header: Option<bool>,
    /// `wrr` (default), `p2c`, `hrw`, `leasttime`.
    pub strategy: Option<String>,
    pub sticky: Option<Node>,
    pub health_check: Option<Node>,
    pub passive_health_check: Option<Node>,
    pub response_forwarding: Option<Node>,
    pub servers_transport: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerConfig {
    pub url: String,
    /// Default 1.
    pub weight: Option<u32>,
    /// Prepend the URL's path to the request path (otherwise Traefik ignores it).
    pub preserve_path: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WeightedConfig {
    pub services: Vec<WeightedServiceConfig>,
    pub sticky: Option<Node>,
    pub health_check: Option<Node>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WeightedServiceConfig {
    pub name: String,
    /// Default 1.
    pub weight: Option<u32>,
}

/// A middleware: its type (Traefik's spelling, e.g. `basicAuth`) and its raw settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MiddlewareConfig {
    pub kind: &'static str,
    pub config: Node,
}

/// Traefik v3's HTTP middleware types.
pub const MIDDLEWARE_KINDS: &[&str] = &[
    "addPrefix",
    "basicAuth",
    "buffering",
    "chain",
    "circuitBreaker",
    "compress",
    "contentType",
    "digestAuth",
    "encodedCharacters",
    "errors",
    "forwardAuth",
    "grpcWeb",
    "headers",
    "inFlightReq",
    "ipAllowList",
    "ipWhiteList",
    "passTLSClientCert",
    "plugin",
    "rateLimit",
    "redirectRegex",
    "redirectScheme",
    "replacePath",
    "replacePathRegex",
    "retry",
    "stripPrefix",
    "stripPrefixRegex",
];

const TOP_LEVEL: &[&str] = &["http", "tcp", "udp", "tls"];
const HTTP_SECTIONS: &[&str] = &[
    "routers",
    "services",
    "middlewares",
    "serversTransports",
    "models",
];
const TCP_SECTIONS: &[&str] = &["routers", "services", "middlewares", "serversTransports"];
const UDP_SECTIONS: &[&str] = &["routers", "services"];
const TLS_SECTIONS: &[&str] = &["certificates", "options", "stores"];

/// Parses one file's text; `source` (its path) prefixes every error location.
pub fn parse_dynamic(
    source: &str,
    text: &str,
    format: Format,
) -> Result<DynamicConfig, ConfigErrors> {
    let node = format
        .parse_tree(text)
        .map_err(|message| ConfigErrors::one(source, message))?;
    DynamicConfig::from_node(source, &node)
}

impl DynamicConfig {
    /// Decodes a tree (from a file, or from flat labels or KV keys through
    /// [`Node::from_flat`]). Every error is reported, not only the first.
    pub fn from_node(source: &str, root: &Node) -> Result<DynamicConfig, ConfigErrors> {
        DynamicConfig::from_node_after(source, root, None)
    }

    /// As [`DynamicConfig::from_node`], starting from the last decode of the same source
    /// (`previous`: its tree and what it gave): routers and services whose subtree did not
    /// change are taken from it, the same `Arc`, without decoding them again. A file of
    /// 10,000 routers rewritten with one more then costs one decode, and what the control
    /// plane built from the others is recognised by pointer. `previous` must be a tree and
    /// the configuration it decoded to; the result is then the one `from_node` gives.
    pub fn from_node_after(
        source: &str,
        root: &Node,
        previous: Option<(&Node, &DynamicConfig)>,
    ) -> Result<DynamicConfig, ConfigErrors> {
        let mut cx = Decoder {
            source,
            errors: Vec::new(),
            cfg: DynamicConfig::default(),
            previous,
            kept_origins: None,
            patched: Vec::new(),
        };
        match root.entries() {
            Some(entries) => {
                for (section, value) in cx.sections(entries, "", TOP_LEVEL) {
                    match section {
                        "http" => cx.http(value),
                        "tcp" => {
                            cx.cfg.tcp = cx.raw("tcp", value, TCP_SECTIONS);
                            cx.cfg.origins.insert("tcp".into(), source.to_string());
                        }
                        "udp" => cx.cfg.udp = cx.raw("udp", value, UDP_SECTIONS),
                        _ => {
                            cx.cfg.tls = cx.raw("tls", value, TLS_SECTIONS);
                            cx.cfg.origins.insert("tls".into(), source.to_string());
                        }
                    }
                }
            }
            None => cx.error(
                "",
                format!("expected a section, found {}", root.kind_name()),
            ),
        }
        if let Some(mut origins) = cx.kept_origins.take() {
            // A section the previous decode had and this one does not: its origins go.
            for (section, prefix) in [("routers", "http.routers."), ("services", "http.services.")]
            {
                if cx.patched.contains(&section) {
                    continue;
                }
                let gone: Vec<String> = origins
                    .range(prefix.to_string()..)
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(prefix))
                    .cloned()
                    .collect();
                for k in &gone {
                    origins.remove(k);
                }
            }
            for (k, v) in std::mem::take(&mut cx.cfg.origins) {
                origins.insert(k, v);
            }
            cx.cfg.origins = origins;
        }
        if cx.errors.is_empty() {
            Ok(cx.cfg)
        } else {
            Err(ConfigErrors(cx.errors))
        }
    }

    /// This configuration (decoded from `source`) with the items a partial reparse changed
    /// (see [`Document::reparse`](super::reparse::Document::reparse)): each changed
    /// item decoded, each gone one removed, everything else shared as it is. What
    /// [`DynamicConfig::from_node`] gives for the whole new tree.
    pub fn patched(
        &self,
        source: &str,
        changes: &[ItemChange],
    ) -> Result<DynamicConfig, ConfigErrors> {
        let mut cx = Decoder {
            source,
            errors: Vec::new(),
            cfg: self.clone(),
            previous: None,
            kept_origins: None,
            patched: Vec::new(),
        };
        for change in changes {
            let path = format!("http.{}.{}", change.section.key(), change.name);
            let name = &change.name;
            let ok = match (&change.node, change.section) {
                (None, section) => {
                    let http = &mut cx.cfg.http;
                    match section {
                        ItemSection::Routers => drop(http.routers.remove(name)),
                        ItemSection::Services => drop(http.services.remove(name)),
                        ItemSection::Middlewares => drop(http.middlewares.remove(name)),
                    }
                    false
                }
                (Some(item), ItemSection::Routers) => cx.typed(&path, item, |cfg, v| {
                    cfg.http.routers.insert(name.clone(), Arc::new(v));
                }),
                (Some(item), ItemSection::Services) => cx.typed(&path, item, |cfg, v| {
                    cfg.http.services.insert(name.clone(), Arc::new(v));
                }),
                (Some(item), ItemSection::Middlewares) => cx.middleware(&path, name, item),
            };
            if ok {
                cx.cfg.origins.insert(path, source.to_string());
            } else {
                cx.cfg.origins.remove(&path);
            }
        }
        if cx.errors.is_empty() {
            Ok(cx.cfg)
        } else {
            Err(ConfigErrors(cx.errors))
        }
    }

    /// Merges another file's configuration into this one (directory provider). A name defined
    /// in two files with different content is an error naming both; identical definitions
    /// are accepted, as Traefik does.
    pub fn merge(&mut self, other: DynamicConfig) -> Result<(), ConfigErrors> {
        merge::merge(self, other)
    }

    /// The source of a named item (`http.routers.web`), if known.
    pub fn origin(&self, path: &str) -> Option<&str> {
        self.origins.get(path).map(String::as_str)
    }

    /// True when nothing at all is configured.
    pub fn is_empty(&self) -> bool {
        self.http == HttpConfig::default()
            && self.tcp.is_none()
            && self.udp.is_none()
            && self.tls.is_none()
    }
}

struct Decoder<'a> {
    source: &'a str,
    errors: Vec<ConfigError>,
    cfg: DynamicConfig,
    previous: Option<(&'a Node, &'a DynamicConfig)>,
    /// The origins of patched sections (from the previous decode, then patched), and those
    /// sections' paths (see `patch_items`).
    kept_origins: Option<Map<String, String>>,
    patched: Vec<&'static str>,
}

impl<'a> Decoder<'a> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let location = if path.is_empty() {
            self.source.to_string()
        } else {
            format!("{}: {path}", self.source)
        };
        self.errors.push(ConfigError::new(location, message));
    }

    fn node_error(&mut self, e: NodeError) {
        self.error(&e.path.clone(), e.kind.to_string());
    }

    /// Resolves section keys to their canonical spelling; unknown and repeated keys are errors.
    fn sections<'n>(
        &mut self,
        entries: &'n [(String, Node)],
        path: &str,
        valid: &[&'static str],
    ) -> Vec<(&'static str, &'n Node)> {
        let mut out: Vec<(&'static str, &'n Node)> = Vec::new();
        for (key, value) in entries {
            let key_path = join(path, key);
            match valid.iter().find(|v| v.eq_ignore_ascii_case(key)) {
                None => self.error(
                    &key_path,
                    format!("unknown key {key:?} (valid keys: {})", valid.join(", ")),
                ),
                Some(canonical) if out.iter().any(|(c, _)| c == canonical) => {
                    self.error(&key_path, "key given twice")
                }
                Some(canonical) => out.push((canonical, value)),
            }
        }
        out
    }

    /// The named items of a section (`http.routers`).
    fn items<'n>(&mut self, path: &str, node: &'n Node) -> &'n [(String, Node)] {
        match node.entries() {
            Some(entries) => {
                for (name, _) in entries {
                    if name.is_empty() {
                        self.error(path, "empty name");
                    }
                }
                entries
            }
            None => {
                self.error(
                    path,
                    format!("expected a section, found {}", node.kind_name()),
                );
                &[]
            }
        }
    }

    fn http(&mut self, node: &Node) {
        let Some(entries) = node.entries() else {
            return self.error(
                "http",
                format!("expected a section, found {}", node.kind_name()),
            );
        };
        for (section, value) in self.sections(entries, "http", HTTP_SECTIONS) {
            let path = join("http", section);
            if matches!(section, "routers" | "services") && self.patch(&path, section, value) {
                continue;
            }
            for (name, item) in self.items(&path, value) {
                let item_path = join(&path, name);
                let ok = match section {
                    "routers" => self.typed(&item_path, item, |cfg, v| {
                        cfg.http.routers.insert(name.clone(), Arc::new(v));
                    }),
                    "services" => self.typed(&item_path, item, |cfg, v| {
                        cfg.http.services.insert(name.clone(), Arc::new(v));
                    }),
                    "middlewares" => self.middleware(&item_path, name, item),
                    "serversTransports" => {
                        self.cfg
                            .http
                            .servers_transports
                            .insert(name.clone(), item.clone());
                        true
                    }
                    _ => {
                        self.cfg.http.models.insert(name.clone(), item.clone());
                        true
                    }
                };
                if ok {
                    self.cfg.origins.insert(item_path, self.source.to_string());
                }
            }
        }
    }

    /// Decodes `http.routers` or `http.services` as a patch of the previous decode's map:
    /// what the previous tree held unchanged is kept, what changed is decoded, what went is
    /// removed (with its origin). False, having done nothing, when there is nothing to start
    /// from or a name is given twice (the plain decode then lets the last one win).
    fn patch(&mut self, path: &str, section: &'static str, node: &Node) -> bool {
        let Some((_, prev_cfg)) = self.previous else {
            return false;
        };
        if section == "routers" {
            self.patch_items(path, section, node, &prev_cfg.http.routers, |http| {
                &mut http.routers
            })
        } else {
            self.patch_items(path, section, node, &prev_cfg.http.services, |http| {
                &mut http.services
            })
        }
    }

    fn patch_items<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        section: &'static str,
        node: &Node,
        prev_map: &Map<String, Arc<T>>,
        map: fn(&mut HttpConfig) -> &mut Map<String, Arc<T>>,
    ) -> bool {
        let (Some(entries), Some((prev_root, prev_cfg))) = (node.entries(), self.previous) else {
            return false;
        };
        let mut names: FxHashSet<&str> = FxHashSet::default();
        names.reserve(entries.len());
        if !entries.iter().all(|(name, _)| names.insert(name)) {
            return false;
        }
        let before: FxHashMap<&str, &Node> = prev_root
            .get("http")
            .and_then(|http| http.get(section))
            .and_then(Node::entries)
            .unwrap_or(&[])
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let origins = self.kept_origins.get_or_insert_with(|| {
            // The origins of the patched sections come from the previous decode, those of
            // everything else from this one (joined at the end).
            let mut origins = prev_cfg.origins.clone();
            let others: Vec<String> = origins
                .keys()
                .filter(|k| !is_patched_origin(k))
                .cloned()
                .collect();
            for k in &others {
                origins.remove(k);
            }
            origins
        });
        let mut items = prev_map.clone();
        for name in before.keys() {
            if !names.contains(name) {
                items.remove(*name);
                origins.remove(&join(path, name));
            }
        }
        self.patched.push(section);
        *map(&mut self.cfg.http) = items;
        for (name, item) in self.items(path, node) {
            // Unchanged: the previous decode of that tree holds it (it succeeded).
            if before.get(name.as_str()).is_some_and(|prev| *prev == item) {
                continue;
            }
            let item_path = join(path, name);
            match decode_owned::<T>(item, &item_path) {
                Ok(v) => {
                    map(&mut self.cfg.http).insert(name.clone(), Arc::new(v));
                    self.kept_origins
                        .get_or_insert_default()
                        .insert(item_path, self.source.to_string());
                }
                Err(e) => {
                    // As the plain decode: neither the item nor its origin.
                    map(&mut self.cfg.http).remove(name);
                    self.kept_origins.get_or_insert_default().remove(&item_path);
                    self.node_error(e);
                }
            }
        }
        true
    }

    fn middleware(&mut self, path: &str, name: &str, node: &Node) -> bool {
        match middleware_from_node(node, path) {
            Ok(m) => {
                self.cfg.http.middlewares.insert(name.to_string(), m);
                true
            }
            Err(e) => {
                self.node_error(e);
                false
            }
        }
    }

    fn typed<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        node: &Node,
        insert: impl FnOnce(&mut DynamicConfig, T),
    ) -> bool {
        // Decoding borrows nothing from the tree: every field is owned.
        match decode_owned::<T>(node, path) {
            Ok(v) => {
                insert(&mut self.cfg, v);
                true
            }
            Err(e) => {
                self.node_error(e);
                false
            }
        }
    }

    /// A section kept raw, with its keys checked and respelled canonically.
    fn raw(&mut self, name: &str, node: &Node, valid: &[&'static str]) -> Option<Node> {
        let Some(entries) = node.entries() else {
            self.error(
                name,
                format!("expected a section, found {}", node.kind_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (section, value) in self.sections(entries, name, valid) {
            let path = join(name, section);
            self.cfg
                .origins
                .entry(path.clone())
                .or_insert_with(|| self.source.to_string());
            if let Node::List(_) = value {
                // tls.certificates is a list.
                out.push((section.to_string(), value.clone()));
                continue;
            }
            for (item, _) in self.items(&path, value) {
                self.cfg
                    .origins
                    .insert(join(&path, item), self.source.to_string());
            }
            out.push((section.to_string(), value.clone()));
        }
        Some(Node::Map(out))
    }
}

/// An origin that a patched decode takes from the previous one: a router's or a service's.
fn is_patched_origin(path: &str) -> bool {
    path.starts_with("http.routers.") || path.starts_with("http.services.")
}

fn decode_owned<T: for<'de> Deserialize<'de>>(node: &Node, path: &str) -> Result<T, NodeError> {
    from_node_at(node, path)
}

/// A middleware is a section with exactly one key, its type.
fn middleware_from_node(node: &Node, path: &str) -> Result<MiddlewareConfig, NodeError> {
    use super::node::NodeErrorKind;
    let entries = node.entries().unwrap_or(&[]);
    let [(kind, config)] = entries else {
        return Err(NodeError::new(
            path,
            NodeErrorKind::Custom(format!(
                "a middleware has exactly one type (found {}): one of {}",
                entries.len(),
                MIDDLEWARE_KINDS.join(", ")
            )),
        ));
    };
    let canonical = MIDDLEWARE_KINDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kind))
        .ok_or_else(|| {
            NodeError::new(
                join(path, kind),
                NodeErrorKind::UnknownKey {
                    key: kind.clone(),
                    valid: MIDDLEWARE_KINDS.join(", "),
                },
            )
        })?;
    Ok(MiddlewareConfig {
        kind: canonical,
        config: config.clone(),
    })
}
