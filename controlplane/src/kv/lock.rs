//! A distributed lock with a lease and a fencing token, for work that one instance of many
//! must do alone (ordering a certificate): Redis `SET NX PX` plus an `INCR` counter, etcd a
//! lease plus a create-if-absent transaction (the token is the write's revision).
//!
//! A holder that dies stops renewing; its lease expires and another contender takes over
//! with a larger token, so a late write by the old holder can be refused by comparing tokens.

use super::etcd::{b64, int_field};
use super::redis::{server_error, Resp};
use super::{KvClient, KvError};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where locks live (outside any `rootKey`, so providers never read them).
pub const LOCK_PREFIX: &str = "ringway-lock/";

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    /// Strictly larger for every new holder of the same name.
    pub token: u64,
    pub ttl: Duration,
    owner: String,
    /// etcd's lease id.
    etcd_lease: Option<i64>,
}

/// The lock primitive. `try_acquire` does not wait; see [`acquire`].
pub trait KvLock {
    /// `Some` when the caller now holds `name` for `ttl`; `None` when another holder does.
    fn try_acquire(
        &mut self,
        name: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<Lease>, KvError>> + Send;
    /// Extends the lease by its ttl; false when it was lost (expired and maybe taken).
    fn renew(&mut self, lease: &Lease) -> impl Future<Output = Result<bool, KvError>> + Send;
    /// Gives the lock up (no effect when it was lost already).
    fn release(&mut self, lease: Lease) -> impl Future<Output = Result<(), KvError>> + Send;
    /// Writes `key` only while `lease` still holds the lock, atomically with that check (the
    /// fencing a holder that stalled past its lease needs); false when the lock was lost.
    fn put_if_held(
        &mut self,
        lease: &Lease,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<bool, KvError>> + Send;
}

/// Tries to acquire `name` until `wait` has passed, polling a few times per lease.
pub async fn acquire<L: KvLock>(
    lock: &mut L,
    name: &str,
    ttl: Duration,
    wait: Duration,
) -> Result<Option<Lease>, KvError> {
    let deadline = tokio::time::Instant::now() + wait;
    let every = (ttl / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
    loop {
        if let Some(lease) = lock.try_acquire(name, ttl).await? {
            return Ok(Some(lease));
        }
        if tokio::time::Instant::now() + every > deadline {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

fn owner_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

const REDIS_ACQUIRE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
     return redis.call('INCR', KEYS[2]) end return 0";
const REDIS_RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
const REDIS_PUT_IF_HELD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[2], ARGV[2]) return 1 end return 0";
const REDIS_RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) end return 0";

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl KvLock for KvClient {
    async fn try_acquire(&mut self, name: &str, ttl: Duration) -> Result<Option<Lease>, KvError> {
        let key = format!("{LOCK_PREFIX}{name}");
        let owner = owner_id();
        match self {
            KvClient::Redis(c) => {
                let fence = format!("{key}/fence");
                let reply = c
                    .call(&[
                        "EVAL",
                        REDIS_ACQUIRE,
                        "2",
                        &key,
                        &fence,
                        &owner,
                        &millis(ttl),
                    ])
                    .await?;
                match reply {
                    Resp::Int(0) => Ok(None),
                    Resp::Int(t) => Ok(Some(Lease {
                        name: name.to_string(),
                        token: u64::try_from(t).unwrap_or(0),
                        ttl,
                        owner,
                        etcd_lease: None,
                    })),
                    other => Err(server_error("EVAL", other)),
                }
            }
            KvClient::Etcd(c) => {
                let secs = ttl.as_secs().max(1) + u64::from(ttl.subsec_nanos() > 0);
                let grant = c.post("/v3/lease/grant", json!({ "TTL": secs })).await?;
                let id = int_field(&grant, "ID")
                    .ok_or_else(|| KvError::Protocol("lease grant: no ID".into()))?;
                let txn = json!({
                    "compare": [{ "key": b64(&key), "target": "CREATE", "create_revision": "0", "result": "EQUAL" }],
                    "success": [{ "request_put": { "key": b64(&key), "value": b64(&owner), "lease": id.to_string() } }],
                });
                let reply = c.post("/v3/kv/txn", txn).await?;
                if reply.get("succeeded").and_then(serde_json::Value::as_bool) != Some(true) {
                    c.post("/v3/lease/revoke", json!({ "ID": id.to_string() }))
                        .await?;
                    return Ok(None);
                }
                let revision = reply
                    .get("header")
                    .and_then(|h| int_field(h, "revision"))
                    .ok_or_else(|| KvError::Protocol("txn: no revision".into()))?;
                Ok(Some(Lease {
                    name: name.to_string(),
                    token: u64::try_from(revision).unwrap_or(0),
                    ttl,
                    owner,
                    etcd_lease: Some(id),
                }))
            }
        }
    }

    async fn renew(&mut self, lease: &Lease) -> Result<bool, KvError> {
        let key = format!("{LOCK_PREFIX}{}", lease.name);
        match self {
            KvClient::Redis(c) => {
                let reply = c
                    .call(&[
                        "EVAL",
                        REDIS_RENEW,
                        "1",
                        &key,
                        &lease.owner,
                        &millis(lease.ttl),
                    ])
                    .await?;
                match reply {
                    Resp::Int(n) => Ok(n == 1),
                    other => Err(server_error("EVAL", other)),
                }
            }
            KvClient::Etcd(c) => {
                let Some(id) = lease.etcd_lease else {
                    return Ok(false);
                };
                let reply = c
                    .post_first("/v3/lease/keepalive", json!({ "ID": id.to_string() }))
                    .await?;
                let result = reply.get("result").unwrap_or(&reply);
                Ok(int_field(result, "TTL").is_some_and(|t| t > 0))
            }
        }
    }

    async fn release(&mut self, lease: Lease) -> Result<(), KvError> {
        let key = format!("{LOCK_PREFIX}{}", lease.name);
        match self {
            KvClient::Redis(c) => {
                let reply = c
                    .call(&["EVAL", REDIS_RELEASE, "1", &key, &lease.owner])
                    .await?;
                match reply {
                    Resp::Int(_) => Ok(()),
                    other => Err(server_error("EVAL", other)),
                }
            }
            KvClient::Etcd(c) => {
                if let Some(id) = lease.etcd_lease {
                    // Revoking deletes the key attached to it; an expired lease is a no-op.
                    match c
                        .post("/v3/lease/revoke", json!({ "ID": id.to_string() }))
                        .await
                    {
                        Ok(_) | Err(KvError::Server { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    async fn put_if_held(
        &mut self,
        lease: &Lease,
        key: &str,
        value: &str,
    ) -> Result<bool, KvError> {
        let lock_key = format!("{LOCK_PREFIX}{}", lease.name);
        match self {
            KvClient::Redis(c) => {
                let reply = c
                    .call(&[
                        "EVAL",
                        REDIS_PUT_IF_HELD,
                        "2",
                        &lock_key,
                        key,
                        &lease.owner,
                        value,
                    ])
                    .await?;
                match reply {
                    Resp::Int(n) => Ok(n == 1),
                    other => Err(server_error("EVAL", other)),
                }
            }
            KvClient::Etcd(c) => {
                let txn = json!({
                    "compare": [{ "key": b64(&lock_key), "target": "VALUE", "value": b64(&lease.owner), "result": "EQUAL" }],
                    "success": [{ "request_put": { "key": b64(key), "value": b64(value) } }],
                });
                let reply = c.post("/v3/kv/txn", txn).await?;
                Ok(reply.get("succeeded").and_then(serde_json::Value::as_bool) == Some(true))
            }
        }
    }
}
