//! Key-value stores (Redis, etcd v3) holding Traefik's dynamic configuration: clients, the
//! key layout, `ringway kv sync|export`, and a distributed lock with fencing tokens.
//!
//! Data flow: `kv sync` turns a dynamic file into `rootKey/...` pairs (`layout`) and writes
//! the difference in one transaction; the KV providers (`providers::kv`) list and watch the
//! same keys and decode them back into a dynamic configuration.

pub mod cli;
pub mod etcd;
pub mod layout;
pub mod lock;
mod net;
pub use net::accept_any_verifier;
pub mod redis;

use ringway_shared::config::static_config::{KvProvider, KvStoreKind, KV_DEFAULT_ROOT_KEY};

/// A store failure. Every variant means "this connection is done": reconnect.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the store closed the connection")]
    Closed,
    #[error("the store refused {command}: {message}")]
    Server { command: String, message: String },
    #[error("unexpected answer from the store: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Config(String),
}

/// A connection to either store.
pub enum KvClient {
    Redis(redis::RedisConn),
    Etcd(etcd::EtcdConn),
}

/// A change feed on the keys under a prefix.
pub enum KvWatch {
    Redis(redis::RedisWatch),
    Etcd(etcd::EtcdWatch),
}

impl KvClient {
    pub async fn connect(cfg: &KvProvider) -> Result<KvClient, KvError> {
        Ok(match cfg.kind {
            KvStoreKind::Redis => KvClient::Redis(redis::RedisConn::connect(cfg).await?),
            KvStoreKind::Etcd => KvClient::Etcd(etcd::EtcdConn::connect(cfg).await?),
        })
    }

    /// Every `key, value` under `prefix`, sorted by key.
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<(String, String)>, KvError> {
        match self {
            KvClient::Redis(c) => c.list(prefix).await,
            KvClient::Etcd(c) => c.list(prefix).await,
        }
    }

    /// Keys of the last `list` that cannot be configuration (a Redis hash), with the reason.
    pub fn unreadable(&self) -> Vec<(String, String)> {
        match self {
            KvClient::Redis(c) => c
                .not_strings()
                .iter()
                .map(|(k, t)| (k.clone(), format!("holds a {t}, not a string value")))
                .collect(),
            KvClient::Etcd(_) => Vec::new(),
        }
    }

    /// Writes `puts` and deletes `deletes` in one transaction (Redis MULTI/EXEC, etcd txn).
    pub async fn apply(
        &mut self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<(), KvError> {
        match self {
            KvClient::Redis(c) => c.apply(puts, deletes).await,
            KvClient::Etcd(c) => c.apply(puts, deletes).await,
        }
    }

    /// Starts watching the keys under `cfg.root_key` (on a connection of its own).
    pub async fn watch(&mut self, cfg: &KvProvider) -> Result<KvWatch, KvError> {
        let prefix = format!("{}/", cfg.root_key);
        Ok(match self {
            KvClient::Redis(_) => KvWatch::Redis(redis::RedisWatch::start(cfg, &prefix).await?),
            KvClient::Etcd(c) => {
                KvWatch::Etcd(etcd::EtcdWatch::start(cfg, c.token(), &prefix).await?)
            }
        })
    }
}

impl KvWatch {
    /// Waits for the next change.
    pub async fn changed(&mut self) -> Result<(), KvError> {
        match self {
            KvWatch::Redis(w) => w.changed().await,
            KvWatch::Etcd(w) => w.changed().await,
        }
    }

    /// Tells a polling watch how long the last full read took (it polls no faster than ten
    /// times that).
    pub fn read_took(&mut self, took: std::time::Duration) {
        if let KvWatch::Redis(redis::RedisWatch::Poll { every }) = self {
            *every = redis::POLL_EVERY.max(took * 10);
        }
    }

    /// Consumes the changes already announced, without waiting.
    pub async fn drain(&mut self) -> Result<(), KvError> {
        if matches!(self, KvWatch::Redis(redis::RedisWatch::Poll { .. })) {
            return Ok(());
        }
        loop {
            match tokio::time::timeout(std::time::Duration::ZERO, self.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        }
    }
}

/// A store named by URL, as the `kv` commands take it: `redis://[user:password@]host:port[/db]`
/// or `etcd://[user:password@]host:port`. Several hosts may be given comma-separated.
pub fn provider_from_url(url: &str, root_key: Option<&str>) -> Result<KvProvider, String> {
    let (kind, rest) = if let Some(r) = url.strip_prefix("redis://") {
        (KvStoreKind::Redis, r)
    } else if let Some(r) = url.strip_prefix("etcd://") {
        (KvStoreKind::Etcd, r)
    } else {
        return Err(format!(
            "unsupported endpoint {url:?}: expected redis://host:port[/db] or etcd://host:port"
        ));
    };
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let (hosts, db) = match rest.split_once('/') {
        Some((h, d)) if !d.is_empty() => {
            if kind == KvStoreKind::Etcd {
                return Err(format!("{url:?}: etcd has no databases"));
            }
            let db = d
                .parse::<u32>()
                .map_err(|_| format!("{url:?}: invalid database number {d:?}"))?;
            (h, db)
        }
        Some((h, _)) => (h, 0),
        None => (rest, 0),
    };
    let endpoints: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    if endpoints.is_empty() || endpoints.iter().any(|e| !e.contains(':')) {
        return Err(format!("{url:?}: expected host:port"));
    }
    let (username, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (
                Some(u.to_string()).filter(|u| !u.is_empty()),
                Some(p.to_string()),
            ),
            None => (None, Some(a.to_string())),
        },
    };
    Ok(KvProvider {
        kind,
        endpoints,
        root_key: root_key
            .map(|r| r.trim_matches('/').to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| KV_DEFAULT_ROOT_KEY.to_string()),
        username,
        password,
        db,
        tls: None,
    })
}

/// `(key, value)` pairs from string literals, for the unit tests of the KV modules.
#[cfg(test)]
pub(crate) fn test_pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let p = provider_from_url("redis://:pw@127.0.0.1:6379/2", None).expect("valid");
        assert_eq!(p.kind, KvStoreKind::Redis);
        assert_eq!(p.endpoints, ["127.0.0.1:6379"]);
        assert_eq!(p.db, 2);
        assert_eq!(p.password.as_deref(), Some("pw"));
        assert_eq!(p.username, None);
        assert_eq!(p.root_key, "traefik");
        let p = provider_from_url("etcd://a:1,b:2", Some("/edge/")).expect("valid");
        assert_eq!(p.endpoints, ["a:1", "b:2"]);
        assert_eq!(p.root_key, "edge");
        assert!(provider_from_url("http://x:1", None).is_err());
        assert!(provider_from_url("etcd://x:1/3", None).is_err());
        assert!(provider_from_url("redis://x", None).is_err());
    }
}
