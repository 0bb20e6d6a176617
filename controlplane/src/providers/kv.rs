//! What the Redis and etcd providers share: decoding the keys under `rootKey` into a dynamic
//! configuration (through the same [`Node`] tree and decoder as the file provider), with each
//! bad key or item reported by its key and left out while the others apply; and the
//! watch/reconnect loop that keeps the last good view when the store is unreachable.

use super::ProviderEvent;
use crate::aggregator::ProviderConfig;
use crate::kv::layout::{key_error, tree_from_pairs};
use crate::kv::{KvClient, KvError};
use ringway_shared::config::static_config::KvProvider;
use ringway_shared::config::{ConfigError, DynamicConfig, Node};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

/// First reconnect delay; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a burst of change notifications (a `kv sync` transaction) is coalesced.
const SETTLE: Duration = Duration::from_millis(3);
/// With no change for this long the store is read again in full: a liveness check for a
/// server that stopped answering, and a safety net for changes that send no notification
/// (Redis `FLUSHDB`).
const RESYNC_EVERY: Duration = Duration::from_secs(5);
/// How long a full read may take before the connection counts as dead.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes the pairs under `root` into a dynamic configuration. Items (a router, a service,
/// a middleware, a TLS option, …) that do not decode are left out and reported by key.
pub fn decode(
    source: &str,
    root: &str,
    pairs: &[(String, String)],
) -> (DynamicConfig, Vec<ConfigError>) {
    let (mut tree, mut errors) = tree_from_pairs(source, root, pairs);
    if let Ok(cfg) = DynamicConfig::from_node(source, &tree) {
        return (cfg, errors);
    }
    // Find the failing items, one by one, and drop them.
    let mut failing: HashSet<Vec<String>> = HashSet::new();
    for (unit, node) in units(&tree) {
        let single = wrap(&unit, node.clone());
        if let Err(errs) = DynamicConfig::from_node(source, &single) {
            for e in errs {
                errors.push(key_error(
                    source,
                    &error_key(source, root, &unit, &e),
                    e.message,
                ));
            }
            failing.insert(unit);
        }
    }
    prune(&mut tree, &mut Vec::new(), &failing);
    match DynamicConfig::from_node(source, &tree) {
        Ok(cfg) => (cfg, errors),
        Err(errs) => {
            errors.extend(errs);
            (DynamicConfig::default(), errors)
        }
    }
}

/// Reads the store once (for `ringway check`): the decoded view and the key errors.
pub fn load_once(cfg: &KvProvider) -> Result<(DynamicConfig, Vec<ConfigError>), KvError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (pairs, unreadable) = rt.block_on(async {
        let mut client = KvClient::connect(cfg).await?;
        let pairs = tokio::time::timeout(READ_TIMEOUT, client.list(&format!("{}/", cfg.root_key)))
            .await
            .map_err(|_| KvError::Protocol("a full read timed out".into()))??;
        Ok::<_, KvError>((pairs, client.unreadable()))
    })?;
    let name = cfg.kind.name();
    let (config, mut errors) = decode(name, &cfg.root_key, &pairs);
    errors.extend(
        unreadable
            .into_iter()
            .map(|(k, why)| key_error(name, &k, why)),
    );
    Ok((config, errors))
}

/// The decodable units and their paths: `[section, kind, name]` (`http`, `routers`, `web`),
/// or shorter where the tree stops (a value at `http/routers`, an unknown section).
fn units(tree: &Node) -> Vec<(Vec<String>, &Node)> {
    let mut out = Vec::new();
    let Node::Map(sections) = tree else {
        return out;
    };
    for (section, node) in sections {
        match node {
            Node::Map(kinds) if !kinds.is_empty() => {
                for (kind, node) in kinds {
                    match node {
                        Node::Map(items) if !items.is_empty() => {
                            for (name, item) in items {
                                out.push((vec![section.clone(), kind.clone(), name.clone()], item));
                            }
                        }
                        _ => out.push((vec![section.clone(), kind.clone()], node)),
                    }
                }
            }
            _ => out.push((vec![section.clone()], node)),
        }
    }
    out
}

fn wrap(path: &[String], node: Node) -> Node {
    path.iter()
        .rev()
        .fold(node, |inner, seg| Node::Map(vec![(seg.clone(), inner)]))
}

/// Removes the `failing` units, and the sections they leave empty (an empty section would
/// read as "present"). One pass over the tree.
fn prune(node: &mut Node, path: &mut Vec<String>, failing: &HashSet<Vec<String>>) {
    let Node::Map(entries) = node else { return };
    if path.len() >= 3 {
        return;
    }
    entries.retain_mut(|(k, child)| {
        path.push(k.clone());
        let keep = if failing.contains(path) {
            false
        } else {
            let was_section = matches!(child, Node::Map(e) if !e.is_empty());
            prune(child, path, failing);
            !(was_section && matches!(child, Node::Map(e) if e.is_empty()))
        };
        path.pop();
        keep
    });
}

/// The store key an item's decoding error points at: the item's key plus the rest of the
/// error's dotted path (`http.routers.x.priority` → `traefik/http/routers/x/priority`).
fn error_key(source: &str, root: &str, unit: &[String], e: &ConfigError) -> String {
    let unit_key = format!("{root}/{}", unit.join("/"));
    let path = e
        .location
        .strip_prefix(source)
        .and_then(|p| p.strip_prefix(": "))
        .unwrap_or("");
    let unit_dotted = unit.join(".");
    match path.strip_prefix(&unit_dotted) {
        Some(rest) if !rest.is_empty() => {
            let rest = rest.replace(['.', '['], "/").replace(']', "");
            format!("{unit_key}{rest}")
        }
        Some(_) => unit_key,
        // The error is about a section above the item (an unknown section name).
        None if !path.is_empty() && unit_dotted.starts_with(path) => {
            let depth = path.split('.').count().min(unit.len());
            format!("{root}/{}", unit[..depth].join("/"))
        }
        None => unit_key,
    }
}

/// Runs a KV provider until the receiver is gone: connect, watch, read everything, send the
/// view when it changed; on a store failure keep the last view, reconnect with backoff and
/// read everything again. State changes (up, down) are logged once each.
///
/// `fresh`: the data plane serves no table yet. Then a store that cannot be reached at
/// start counts as empty, so that the other providers' routes go live meanwhile; otherwise
/// (a restarted control plane) nothing is reported until the store has been read, and the
/// data plane keeps serving what it has.
pub async fn run_kv_provider(cfg: KvProvider, tx: mpsc::Sender<ProviderEvent>, fresh: bool) {
    let name = cfg.kind.name();
    let mut state = State {
        last: None,
        last_errors: Vec::new(),
        connected: false,
    };
    let mut backoff = MIN_BACKOFF;
    let mut down_logged = false;
    loop {
        state.connected = false;
        let result = session(&cfg, &tx, &mut state).await;
        if state.connected {
            backoff = MIN_BACKOFF;
        }
        match result {
            Ok(()) => return, // the runtime is gone
            Err(e) => {
                if state.connected || !down_logged {
                    tracing::error!(provider = name, endpoints = ?cfg.endpoints, error = %e, "store unreachable; keeping the last good configuration, reconnecting");
                    down_logged = true;
                } else {
                    tracing::debug!(provider = name, error = %e, "store still unreachable");
                }
                if fresh && state.last.is_none() {
                    tracing::warn!(
                        provider = name,
                        "the store cannot be read yet; the other providers' routes apply meanwhile"
                    );
                    let empty = DynamicConfig::default();
                    state.last = Some(empty.clone());
                    let event = ProviderEvent::Config(Box::new(ProviderConfig {
                        provider: name.to_string(),
                        config: empty,
                    }));
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What survives reconnections.
struct State {
    last: Option<DynamicConfig>,
    last_errors: Vec<ConfigError>,
    /// Set once the session has read the store in full.
    connected: bool,
}

/// One connection's life: Ok when the receiver is gone, Err when the store failed.
async fn session(
    cfg: &KvProvider,
    tx: &mpsc::Sender<ProviderEvent>,
    state: &mut State,
) -> Result<(), KvError> {
    let mut client = KvClient::connect(cfg).await?;
    // Watch before the first read, so that a change made meanwhile is not missed.
    let mut watch = client.watch(cfg).await?;
    let prefix = format!("{}/", cfg.root_key);
    let started = tokio::time::Instant::now();
    let pairs = client.list(&prefix).await?;
    watch.read_took(started.elapsed());
    let unreadable = client.unreadable();
    state.connected = true;
    tracing::info!(provider = cfg.kind.name(), endpoints = ?cfg.endpoints, keys = pairs.len(), "connected to the store; configuration read in full");
    if !publish(cfg, tx, &pairs, &unreadable, state).await {
        return Ok(());
    }
    loop {
        tokio::select! {
            changed = watch.changed() => {
                changed?;
                tokio::time::sleep(SETTLE).await;
                watch.drain().await?;
            }
            _ = tokio::time::sleep(RESYNC_EVERY) => {}
            _ = tx.closed() => return Ok(()),
        }
        let started = tokio::time::Instant::now();
        let pairs = match tokio::time::timeout(READ_TIMEOUT, client.list(&prefix)).await {
            Ok(pairs) => pairs?,
            Err(_) => return Err(KvError::Protocol("a full read timed out".into())),
        };
        watch.read_took(started.elapsed());
        if !publish(cfg, tx, &pairs, &client.unreadable(), state).await {
            return Ok(());
        }
    }
}

/// Decodes and sends the view when it changed; logs the key errors when they changed. False
/// when the receiver is gone.
async fn publish(
    cfg: &KvProvider,
    tx: &mpsc::Sender<ProviderEvent>,
    pairs: &[(String, String)],
    unreadable: &[(String, String)],
    state: &mut State,
) -> bool {
    let name = cfg.kind.name();
    let (config, mut errors) = decode(name, &cfg.root_key, pairs);
    errors.extend(
        unreadable
            .iter()
            .map(|(k, why)| key_error(name, k, why.clone())),
    );
    if errors != state.last_errors {
        for e in &errors {
            tracing::error!(provider = name, "{e}; left out, the other keys apply");
        }
        state.last_errors = errors;
    }
    if state.last.as_ref() == Some(&config) {
        return true;
    }
    state.last = Some(config.clone());
    tx.send(ProviderEvent::Config(Box::new(ProviderConfig {
        provider: name.to_string(),
        config,
    })))
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kv::test_pairs as pairs;

    #[test]
    fn traefik_layout_decodes_like_a_file() {
        let (cfg, errors) = decode(
            "redis",
            "traefik",
            &pairs(&[
                ("traefik/http/routers/web/rule", "Host(`a.test`)"),
                ("traefik/http/routers/web/entrypoints/0", "web"),
                ("traefik/http/routers/web/service", "app"),
                ("traefik/http/routers/web/middlewares/0", "strip"),
                ("traefik/http/routers/web/tls/domains/0/main", "a.test"),
                ("traefik/http/routers/web/tls/domains/0/sans/0", "b.test"),
                (
                    "traefik/http/services/app/loadbalancer/servers/1/url",
                    "http://127.0.0.1:2",
                ),
                (
                    "traefik/http/services/app/loadbalancer/servers/0/url",
                    "http://127.0.0.1:1",
                ),
                (
                    "traefik/http/middlewares/strip/stripPrefix/prefixes/0",
                    "/api",
                ),
                ("traefik/tcp/routers/db/rule", "HostSNI(`*`)"),
                (
                    "traefik/tcp/services/db/loadBalancer/servers/0/address",
                    "127.0.0.1:5432",
                ),
                ("traefik/tls/options/default/minVersion", "VersionTLS12"),
            ]),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let web = &cfg.http.routers["web"];
        assert_eq!(web.entry_points, ["web"]);
        assert_eq!(web.middlewares, ["strip"]);
        let tls = web.tls.as_ref().expect("tls");
        assert_eq!(tls.domains[0].main, "a.test");
        assert_eq!(tls.domains[0].sans, ["b.test"]);
        let servers = &cfg.http.services["app"]
            .load_balancer
            .as_ref()
            .expect("lb")
            .servers;
        assert_eq!(servers[0].url, "http://127.0.0.1:1");
        assert_eq!(servers[1].url, "http://127.0.0.1:2");
        assert_eq!(cfg.http.middlewares["strip"].kind, "stripPrefix");
        assert!(cfg.tcp.is_some() && cfg.tls.is_some());
    }

    #[test]
    fn a_bad_value_names_its_key_and_the_rest_applies() {
        let (cfg, errors) = decode(
            "redis",
            "traefik",
            &pairs(&[
                ("traefik/http/routers/bad/rule", "Host(`b`)"),
                ("traefik/http/routers/bad/priority", "high"),
                ("traefik/http/routers/good/rule", "Host(`g`)"),
                ("traefik/http/middlewares/m/nosuch/x", "1"),
                ("traefik/nosuchsection/x", "1"),
            ]),
        );
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("redis key traefik/http/routers/bad/priority: ")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("redis key traefik/http/middlewares/m/nosuch: ")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("redis key traefik/nosuchsection: ")),
            "{text:?}"
        );
        assert!(cfg.http.routers.contains_key("good"));
        assert!(!cfg.http.routers.contains_key("bad"));
        assert!(cfg.http.middlewares.is_empty());
    }
}
