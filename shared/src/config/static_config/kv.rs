//! `providers.redis` and `providers.etcd`: key-value stores holding the dynamic configuration
//! in Traefik's key layout.

use super::raw::is_set;
use super::Origins;
use crate::config::node::from_node_at;
use crate::config::{ConfigError, Node};
use serde::Deserialize;
use std::path::PathBuf;

/// Traefik's default `providers.redis.endpoints`.
pub const REDIS_DEFAULT_ENDPOINT: &str = "127.0.0.1:6379";
/// Traefik's default `providers.etcd.endpoints`.
pub const ETCD_DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";
/// Traefik's default `rootKey`.
pub const KV_DEFAULT_ROOT_KEY: &str = "traefik";

/// Which store a [`KvProvider`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvStoreKind {
    Redis,
    Etcd,
}

impl KvStoreKind {
    /// The provider's name (`redis`, `etcd`), as in `router@redis`.
    pub fn name(self) -> &'static str {
        match self {
            KvStoreKind::Redis => "redis",
            KvStoreKind::Etcd => "etcd",
        }
    }
}

/// `providers.redis` / `providers.etcd`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvProvider {
    pub kind: KvStoreKind,
    /// `host:port` of each server, tried in order (at least one).
    pub endpoints: Vec<String>,
    /// Keys live under `<rootKey>/` (default `traefik`).
    pub root_key: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Redis only: the database selected after connecting (default 0).
    pub db: u32,
    /// TLS to the store; plain TCP when `None`.
    pub tls: Option<KvTls>,
}

/// `providers.<kv>.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvTls {
    /// PEM bundle of trusted CAs; the system roots are not loaded, so set this (or
    /// `insecureSkipVerify`).
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct KvProviderRaw {
    endpoints: Vec<String>,
    root_key: Option<String>,
    username: Option<String>,
    password: Option<String>,
    db: Option<u32>,
    tls: Option<KvTlsRaw>,
    /// Redis Sentinel: accepted, not implemented (listed as unsupported).
    sentinel: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct KvTlsRaw {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    insecure_skip_verify: Option<bool>,
    /// Traefik v2's `caOptional`: accepted and ignored (as Traefik v3 does).
    ca_optional: Option<Node>,
}

/// Validates `providers.redis` or `providers.etcd`; `None` when absent or `false`.
pub(super) fn kv_provider(
    kind: KvStoreKind,
    node: &Option<Node>,
    origins: &Origins<'_>,
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<String>,
) -> Option<KvProvider> {
    if !is_set(node) {
        return None;
    }
    let path = format!("providers.{}", kind.name());
    let empty = Node::empty();
    let node = match node {
        Some(n) if !n.is_presence_marker() => n,
        _ => &empty,
    };
    let raw: KvProviderRaw = match from_node_at(node, &path) {
        Ok(r) => r,
        Err(e) => {
            errors.push(origins.error(&e.path.clone(), e.kind.to_string()));
            return None;
        }
    };
    if kind == KvStoreKind::Etcd && raw.db.is_some() {
        errors.push(origins.error(
            &format!("{path}.db"),
            "unknown key \"db\" (etcd has no databases; valid keys: endpoints, rootKey, username, password, tls)",
        ));
    }
    if kind == KvStoreKind::Etcd && raw.sentinel.is_some() {
        errors.push(origins.error(
            &format!("{path}.sentinel"),
            "unknown key \"sentinel\" (Redis only)",
        ));
    } else if is_set(&raw.sentinel) {
        unsupported.push(format!("{path}.sentinel"));
    }
    let mut endpoints: Vec<String> = raw
        .endpoints
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        endpoints.push(
            match kind {
                KvStoreKind::Redis => REDIS_DEFAULT_ENDPOINT,
                KvStoreKind::Etcd => ETCD_DEFAULT_ENDPOINT,
            }
            .to_string(),
        );
    }
    for e in &endpoints {
        if !valid_endpoint(e) {
            errors.push(origins.error(
                &format!("{path}.endpoints"),
                format!("invalid endpoint {e:?}: expected host:port (no scheme)"),
            ));
        }
    }
    let root_key = raw
        .root_key
        .as_deref()
        .map(|r| r.trim().trim_matches('/'))
        .filter(|r| !r.is_empty())
        .unwrap_or(KV_DEFAULT_ROOT_KEY)
        .to_string();
    let tls = raw.tls.map(|t| {
        let p = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(PathBuf::from);
        let _ = t.ca_optional;
        KvTls {
            ca: p(t.ca),
            cert: p(t.cert),
            key: p(t.key),
            insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        }
    });
    if let Some(t) = &tls {
        if t.cert.is_some() != t.key.is_some() {
            errors.push(origins.error(
                &format!("{path}.tls"),
                "cert and key must be given together",
            ));
        }
    }
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Some(KvProvider {
        kind,
        endpoints,
        root_key,
        username: non_empty(raw.username),
        password: non_empty(raw.password),
        db: raw.db.unwrap_or(0),
        tls,
    })
}

/// `host:port`, `[v6]:port`, with a port number.
fn valid_endpoint(e: &str) -> bool {
    if e.contains("://") || e.contains('/') {
        return false; // Traefik's endpoints carry no scheme or path
    }
    let Some((host, port)) = e.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
}
