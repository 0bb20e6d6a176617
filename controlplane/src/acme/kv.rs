//! ACME data in Redis or etcd (`storage = "redis://host:port[/db]"` or `"etcd://host:port"`),
//! for several instances that serve the same routers (high availability):
//!
//! - each resolver's data (Traefik's `acme.json` object for that resolver: account and
//!   certificates) is one JSON value at `ringway-acme/<resolver>`;
//! - an instance orders only while it holds the resolver's lock (`acme/<resolver>`, a lease
//!   with a fencing token, see [`crate::kv::lock`]), reloads the data first (another instance
//!   may have obtained the certificate meanwhile) and writes it back only while it still holds
//!   the lock; a crashed holder's lease expires and another instance takes over;
//! - challenge answers are published at `ringway-acme/challenges/{http/<token>,alpn/<name>}`
//!   and every instance serves them, so the CA may validate through any instance (a load
//!   balancer or VIP in front of them).

use super::store::ResolverData;
use crate::kv::lock::{KvLock, Lease};
use crate::kv::{KvClient, KvWatch};
use ringway_shared::config::static_config::KvProvider;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where ACME data lives in the store (outside any provider's `rootKey`).
pub const ROOT: &str = "ringway-acme";
const CHALLENGES: &str = "ringway-acme/challenges/";

/// How long a holder keeps the lock without renewing it.
pub const LOCK_TTL: Duration = Duration::from_secs(30);
/// How long an instance waits for another's order before trying again later.
pub const LOCK_WAIT: Duration = Duration::from_secs(180);
/// After publishing a challenge, how long the other instances get to serve it before the CA
/// is told to validate (their change feeds answer in tens of milliseconds).
pub const FOLLOW_GRACE: Duration = Duration::from_millis(500);

/// The challenges published in the store by whichever instance orders.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoteChallenges {
    /// token → key authorization.
    pub http: BTreeMap<String, String>,
    /// name → key authorization (each instance makes its own certificate from it).
    pub tls_alpn: BTreeMap<String, String>,
}

/// One connection to the store, made on first use and again after a failure.
pub struct KvAcme {
    provider: KvProvider,
    client: Option<KvClient>,
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl KvAcme {
    /// `storage` is a `redis://` or `etcd://` URL; `None` when it is a file path.
    pub fn from_storage(storage: &str) -> Option<Result<KvAcme, String>> {
        if !(storage.starts_with("redis://") || storage.starts_with("etcd://")) {
            return None;
        }
        Some(
            crate::kv::provider_from_url(storage, Some(ROOT)).map(|provider| KvAcme {
                provider,
                client: None,
            }),
        )
    }

    pub fn provider(&self) -> &KvProvider {
        &self.provider
    }

    /// Another handle on the same store, with a connection of its own.
    pub fn fork(&self) -> KvAcme {
        KvAcme {
            provider: self.provider.clone(),
            client: None,
        }
    }

    async fn client(&mut self) -> Result<&mut KvClient, String> {
        if self.client.is_none() {
            self.client = Some(KvClient::connect(&self.provider).await.map_err(fail)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Runs `f` on the connection; a failure drops it (the next call reconnects).
    async fn with<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut KvClient) -> Result<T, crate::kv::KvError>,
    ) -> Result<T, String> {
        let client = self.client().await?;
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.client = None;
                Err(fail(e))
            }
        }
    }

    fn data_key(resolver: &str) -> String {
        format!("{ROOT}/{resolver}")
    }

    /// The resolver's data; empty when the store has none yet.
    pub async fn load(&mut self, resolver: &str) -> Result<ResolverData, String> {
        let key = Self::data_key(resolver);
        let pairs = self.with(async |c| c.list(&key).await).await?;
        match pairs.into_iter().find(|(k, _)| *k == key) {
            None => Ok(ResolverData::default()),
            Some((_, v)) => serde_json::from_str(&v)
                .map_err(|e| format!("{key}: not a resolver's ACME data: {e}")),
        }
    }

    /// Writes the resolver's data if `lease` still holds the lock; false when it was lost.
    pub async fn save(
        &mut self,
        resolver: &str,
        data: &ResolverData,
        lease: &Lease,
    ) -> Result<bool, String> {
        let key = Self::data_key(resolver);
        let json = serde_json::to_string(data).map_err(fail)?;
        self.with(async |c| c.put_if_held(lease, &key, &json).await)
            .await
    }

    /// Waits up to [`LOCK_WAIT`] for the resolver's lock.
    pub async fn lock(&mut self, resolver: &str) -> Result<Option<Lease>, String> {
        let name = format!("acme/{resolver}");
        self.with(async |c| crate::kv::lock::acquire(c, &name, LOCK_TTL, LOCK_WAIT).await)
            .await
    }

    pub async fn release(&mut self, lease: Lease) {
        if let Err(e) = self.with(async |c| c.release(lease).await).await {
            tracing::warn!("releasing the ACME lock: {e} (it expires by itself)");
        }
    }

    pub async fn publish_http(
        &mut self,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), String> {
        let key = format!("{CHALLENGES}http/{token}");
        let put = [(key, key_authorization.to_string())];
        self.with(async |c| c.apply(&put, &[]).await).await
    }

    pub async fn publish_tls_alpn(
        &mut self,
        name: &str,
        key_authorization: &str,
    ) -> Result<(), String> {
        let key = format!("{CHALLENGES}alpn/{name}");
        let put = [(key, key_authorization.to_string())];
        self.with(async |c| c.apply(&put, &[]).await).await
    }

    /// Removes published challenges (`http/<token>`, `alpn/<name>`).
    pub async fn unpublish(&mut self, keys: &[String]) -> Result<(), String> {
        let deletes: Vec<String> = keys.iter().map(|k| format!("{CHALLENGES}{k}")).collect();
        self.with(async |c| c.apply(&[], &deletes).await).await
    }

    pub async fn challenges(&mut self) -> Result<RemoteChallenges, String> {
        let pairs = self.with(async |c| c.list(CHALLENGES).await).await?;
        let mut out = RemoteChallenges::default();
        for (k, v) in pairs {
            let Some(rest) = k.strip_prefix(CHALLENGES) else {
                continue;
            };
            if let Some(token) = rest.strip_prefix("http/") {
                out.http.insert(token.to_string(), v);
            } else if let Some(name) = rest.strip_prefix("alpn/") {
                out.tls_alpn.insert(name.to_string(), v);
            }
        }
        Ok(out)
    }

    /// A change feed on everything under `ringway-acme/` (its own connection).
    pub async fn watch(&mut self) -> Result<KvWatch, String> {
        let provider = self.provider.clone();
        self.with(async |c| c.watch(&provider).await).await
    }
}

/// Renews `lease` every third of its ttl on a connection of its own until the lease is lost
/// or the store fails; never returns otherwise.
pub async fn keep_renewing(provider: KvProvider, lease: Lease) -> String {
    let mut client = match KvClient::connect(&provider).await {
        Ok(c) => c,
        Err(e) => return format!("cannot renew the ACME lock: {e}"),
    };
    loop {
        tokio::time::sleep(lease.ttl / 3).await;
        match client.renew(&lease).await {
            Ok(true) => {}
            Ok(false) => return "the ACME lock was lost (its lease expired)".into(),
            Err(e) => return format!("cannot renew the ACME lock: {e}"),
        }
    }
}
